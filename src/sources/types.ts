/**
 * The values of the TIFF fields that say how blocks are stored, and the typed samples they
 * decode to. Section numbers refer to the TIFF 6.0 specification (Adobe, 1992); the names
 * follow cogeotiff's `const/tiff.tag.id.ts`. Fields hold plain numbers (a file may carry any
 * value), compared with these constants.
 */
import { SourceError } from '../errors.js';

/**
 * Compression, tag 259: Section 3 (1), 9 (PackBits), 13 (LZW); 8 is Adobe's DEFLATE code from
 * the TIFF supplement, 32946 the older one for the same zlib format; 50000 is libtiff's ZSTD.
 * The codecs that read each are listed in codecs/decompressors.ts.
 */
export const Compression = {
  None: 1,
  Lzw: 5,
  AdobeDeflate: 8,
  PackBits: 32773,
  Deflate: 32946,
  Zstd: 50000,
  /** TIFF Technical Note 2 ("new-style" JPEG). */
  Jpeg: 7,
  /** Esri's LERC, as libtiff writes it (with LercParameters, tag 50674). */
  Lerc: 34887,
  /** libtiff's WebP. */
  Webp: 50001,
} as const;

/** The name GDAL gives each compression (its COMPRESSION metadata), for /layers/{layer}. */
export function compressionName(c: number): string {
  const names: Record<number, string> = {
    1: 'NONE',
    5: 'LZW',
    7: 'JPEG',
    8: 'DEFLATE',
    32773: 'PACKBITS',
    32946: 'DEFLATE',
    34887: 'LERC',
    50000: 'ZSTD',
    50001: 'WEBP',
  };
  return names[c] ?? `${c}`;
}

/** Predictor, tag 317: Section 14 (2); 3 is Adobe Photoshop TIFF Technical Note 3. */
export const Predictor = {
  None: 1,
  Horizontal: 2,
  FloatingPoint: 3,
} as const;

/** SampleFormat, tag 339 (Section 19). */
export const SampleFormat = {
  Uint: 1,
  Int: 2,
  Float: 3,
  /** "Undefined data format": Section 19 tells readers to treat it as unsigned integers. */
  Void: 4,
} as const;

/** PlanarConfiguration, tag 284 (Section 8). */
export const PlanarConfiguration = {
  /** Chunky: the samples of a pixel are stored together. */
  Contig: 1,
  /** Planar: one set of blocks per sample. */
  Separate: 2,
} as const;

/** PhotometricInterpretation, tag 262 (Sections 3-6); only the values read here. */
export const Photometric = {
  MinIsBlack: 1,
  Rgb: 2,
  /** Only with JPEG compression, whose decoder converts it to RGB. */
  YCbCr: 6,
  Palette: 3,
} as const;

/** Bits of NewSubfileType, tag 254 (Section 8). */
export const SubfileType = {
  /** A reduced-resolution version of another image: an overview. */
  ReducedImage: 1,
  /** A transparency mask for another image (GDAL's internal mask). */
  Mask: 4,
} as const;

/** Typed sample arrays a decoded TIFF block can hold (native byte order). */
export type Samples = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

interface SamplesConstructor {
  new (length: number): Samples;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): Samples;
}

/**
 * Every sample type tilegraph reads, one row each: BitsPerSample (tag 258) x SampleFormat, the
 * typed array its samples decode to, and the name a layer's metadata gives it. Anything else
 * (1-bit images, 16-bit floats, 64-bit integers, complex samples) is refused when a file opens.
 */
const SAMPLE_TYPES = [
  { bits: 8, format: SampleFormat.Uint, dataType: 'uint8', array: Uint8Array },
  { bits: 8, format: SampleFormat.Int, dataType: 'int8', array: Int8Array },
  { bits: 16, format: SampleFormat.Uint, dataType: 'uint16', array: Uint16Array },
  { bits: 16, format: SampleFormat.Int, dataType: 'int16', array: Int16Array },
  { bits: 32, format: SampleFormat.Uint, dataType: 'uint32', array: Uint32Array },
  { bits: 32, format: SampleFormat.Int, dataType: 'int32', array: Int32Array },
  { bits: 32, format: SampleFormat.Float, dataType: 'float32', array: Float32Array },
  { bits: 64, format: SampleFormat.Float, dataType: 'float64', array: Float64Array },
] as const;

export type DataType = (typeof SAMPLE_TYPES)[number]['dataType'];

export interface SampleType {
  bits: number;
  dataType: DataType;
  array: SamplesConstructor;
}

/**
 * The sample type of BitsPerSample x SampleFormat. SampleFormat 4 ("undefined") reads as
 * unsigned integers, as Section 19 advises and as GDAL's GTiff driver does (a UInt16 file with
 * its SampleFormat patched to 4 reads as UInt16 in GDAL 3.6).
 */
export function sampleType(bits: number, format: number): SampleType {
  const f = format === SampleFormat.Void ? SampleFormat.Uint : format;
  const t = SAMPLE_TYPES.find((s) => s.bits === bits && s.format === f);
  if (!t) throw new SourceError(`unsupported TIFF sample type: ${bits}-bit, sample format ${format}`);
  return t;
}

/** How one block (a tile or a strip) of a TIFF image is stored. */
export interface BlockLayout {
  /** TIFF Compression tag 259: a `Compression` value. */
  compression: number;
  /** TIFF Predictor tag 317: a `Predictor` value. */
  predictor: number;
  /** Pixels per row of the block (TileWidth, or ImageWidth for strips). */
  width: number;
  /** Rows in this block (TileLength; for strips RowsPerStrip, less for the last strip). */
  height: number;
  /** Interleaved samples per pixel in this block: SamplesPerPixel when chunky, 1 when planar. */
  samples: number;
  /** BitsPerSample tag 258: 8, 16, 32 or 64. */
  bitsPerSample: number;
  /** SampleFormat tag 339: a `SampleFormat` value. */
  sampleFormat: number;
  /** Byte order of the file ("II" is little-endian). */
  littleEndian: boolean;
}
