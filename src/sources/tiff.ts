import { SourceError } from '../errors.js';
import type { ByteSource } from './bytesource.js';
import { Compression, Photometric, PlanarConfiguration, Predictor, SampleFormat } from './types.js';

/**
 * A TIFF / BigTIFF directory reader that keeps only what tile rendering needs.
 * TIFF 6.0 §2 (header, IFD), BigTIFF (header 43, 8-byte offsets, 20-byte entries).
 */

export const Tag = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  PlanarConfiguration: 284,
  Predictor: 317,
  ColorMap: 320,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  ExtraSamples: 338,
  SampleFormat: 339,
  JPEGTables: 347,
  LercParameters: 50674,
  ModelPixelScale: 33550,
  ModelTiepoint: 33922,
  ModelTransformation: 34264,
  GeoKeyDirectory: 34735,
  GeoDoubleParams: 34736,
  GeoAsciiParams: 34737,
  GdalMetadata: 42112,
  GdalNodata: 42113,
} as const;

export type TagValue = number[] | string;

export interface TiffImage {
  /** Position in the IFD chain. */
  index: number;
  width: number;
  height: number;
  /** Block size: TileWidth × TileLength, or ImageWidth × RowsPerStrip for strips. */
  blockWidth: number;
  blockHeight: number;
  tiled: boolean;
  samplesPerPixel: number;
  bitsPerSample: number;
  sampleFormat: number;
  /** PlanarConfiguration: Contig (interleaved) or Separate (a block set per sample). */
  planar: number;
  compression: number;
  predictor: number;
  photometric: number;
  /** NewSubfileType: bit 0 reduced-resolution image (overview), bit 2 transparency mask. */
  subfileType: number;
  blockOffsets: number[];
  blockByteCounts: number[];
  tags: Map<number, TagValue>;
}

const TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
  16: 8,
  17: 8,
  18: 8,
};

/** Reads the header and every IFD, fetching beyond the first chunk only where needed. */
export async function readTiff(src: ByteSource, fileSize: number): Promise<{ littleEndian: boolean; images: TiffImage[] }> {
  if (fileSize < 8) throw new SourceError(`${src.location}: ${fileSize} bytes is too short for a TIFF header`);
  const reader = new ChunkReader(src, fileSize);
  await reader.ensure(0, Math.min(fileSize, 64 * 1024));
  const b0 = reader.u8(0);
  const b1 = reader.u8(1);
  if (b0 !== b1 || (b0 !== 0x49 && b0 !== 0x4d)) throw new SourceError(`${src.location}: not a TIFF file (bad byte-order mark)`);
  reader.littleEndian = b0 === 0x49;
  const magic = reader.u16(2);
  let big: boolean;
  let ifdOffset: number;
  if (magic === 42) {
    big = false;
    ifdOffset = reader.u32(4);
  } else if (magic === 43) {
    big = true;
    if (fileSize < 16) throw new SourceError(`${src.location}: ${fileSize} bytes is too short for a BigTIFF header`);
    if (reader.u16(4) !== 8) throw new SourceError(`${src.location}: unsupported BigTIFF offset size`);
    ifdOffset = reader.u64(8);
  } else {
    throw new SourceError(`${src.location}: not a TIFF file (magic ${magic})`);
  }

  const images: TiffImage[] = [];
  const seen = new Set<number>();
  while (ifdOffset !== 0) {
    if (seen.has(ifdOffset) || images.length > 256) throw new SourceError(`${src.location}: IFD chain loops at byte ${ifdOffset}`);
    if (ifdOffset >= fileSize) throw new SourceError(`${src.location}: IFD offset ${ifdOffset} is past the end of the file (${fileSize} bytes)`);
    seen.add(ifdOffset);
    const entrySize = big ? 20 : 12;
    await reader.ensure(ifdOffset, big ? 8 : 2);
    const count = big ? reader.u64(ifdOffset) : reader.u16(ifdOffset);
    const first = ifdOffset + (big ? 8 : 2);
    if (count > 4096) throw new SourceError(`${src.location}: IFD at byte ${ifdOffset} claims ${count} entries`);
    await reader.ensure(first, count * entrySize + (big ? 8 : 4));
    const tags = new Map<number, TagValue>();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const e = first + i * entrySize;
      const tag = reader.u16(e);
      const type = reader.u16(e + 2);
      const n = big ? reader.u64(e + 4) : reader.u32(e + 4);
      const size = TYPE_SIZE[type];
      if (size === undefined) continue; // unknown field types are skipped (TIFF 6.0 §2)
      const bytes = size * n;
      const inline = big ? 8 : 4;
      const valueAt = bytes <= inline ? e + (big ? 12 : 8) : big ? reader.u64(e + 12) : reader.u32(e + 8);
      if (valueAt + bytes > fileSize) throw new SourceError(`${src.location}: tag ${tag} points past the end of the file`);
      pending.push(
        reader.ensure(valueAt, bytes).then(() => {
          tags.set(tag, reader.values(type, n, valueAt));
        }),
      );
    }
    await Promise.all(pending);
    const next = first + count * entrySize;
    ifdOffset = big ? reader.u64(next) : reader.u32(next);
    images.push(toImage(images.length, tags, src.location));
  }
  if (images.length === 0) throw new SourceError(`${src.location}: TIFF has no images`);
  return { littleEndian: reader.littleEndian, images };
}

function num(tags: Map<number, TagValue>, tag: number, fallback?: number): number {
  const v = tags.get(tag);
  if (Array.isArray(v) && v.length > 0) return v[0]!;
  if (fallback === undefined) throw new Error(`missing TIFF tag ${tag}`);
  return fallback;
}

function arr(tags: Map<number, TagValue>, tag: number): number[] {
  const v = tags.get(tag);
  return Array.isArray(v) ? v : [];
}

/**
 * A size or count field: a whole number of at least 1. Any field type is read as a number, so
 * a file may give a width as a FLOAT (1.8e-43), a DOUBLE or a negative SSHORT; sizes like that
 * would reach typed-array lengths and loops further on.
 */
function size(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} ${value} is not a whole number of at least 1`);
  return value;
}

function toImage(index: number, tags: Map<number, TagValue>, location: string): TiffImage {
  try {
    const width = size('ImageWidth', num(tags, Tag.ImageWidth));
    const height = size('ImageLength', num(tags, Tag.ImageLength));
    const tiled = tags.has(Tag.TileWidth);
    const bits = arr(tags, Tag.BitsPerSample);
    const bitsPerSample = size('BitsPerSample', bits[0] ?? 1);
    if (bits.some((b) => b !== bitsPerSample)) throw new Error('bands of different bit depths are not supported');
    const formats = arr(tags, Tag.SampleFormat);
    const image: TiffImage = {
      index,
      width,
      height,
      tiled,
      blockWidth: tiled ? size('TileWidth', num(tags, Tag.TileWidth)) : width,
      blockHeight: tiled ? size('TileLength', num(tags, Tag.TileLength)) : Math.min(size('RowsPerStrip', num(tags, Tag.RowsPerStrip, height)), height),
      samplesPerPixel: size('SamplesPerPixel', num(tags, Tag.SamplesPerPixel, 1)),
      bitsPerSample,
      sampleFormat: formats[0] ?? SampleFormat.Uint,
      planar: num(tags, Tag.PlanarConfiguration, PlanarConfiguration.Contig),
      compression: num(tags, Tag.Compression, Compression.None),
      predictor: num(tags, Tag.Predictor, Predictor.None),
      photometric: num(tags, Tag.Photometric, Photometric.MinIsBlack),
      subfileType: num(tags, Tag.NewSubfileType, 0),
      blockOffsets: arr(tags, tiled ? Tag.TileOffsets : Tag.StripOffsets),
      blockByteCounts: arr(tags, tiled ? Tag.TileByteCounts : Tag.StripByteCounts),
      tags,
    };
    const expected = blocksAcross(image) * blocksDown(image) * (image.planar === PlanarConfiguration.Separate ? image.samplesPerPixel : 1);
    if (image.blockOffsets.length < expected || image.blockByteCounts.length < expected) {
      throw new Error(`has ${image.blockOffsets.length} block offsets, expected ${expected}`);
    }
    return image;
  } catch (err) {
    // The checks above throw plain Errors: this is where the file is named.
    throw new SourceError(`${location}: image ${index}: ${(err as Error).message}`);
  }
}

export const blocksAcross = (im: TiffImage): number => Math.ceil(im.width / im.blockWidth);
export const blocksDown = (im: TiffImage): number => Math.ceil(im.height / im.blockHeight);

/** Holds the byte ranges read so far; most COG headers fit in the first 64 KiB. */
class ChunkReader {
  littleEndian = true;
  private chunks: { start: number; bytes: Uint8Array; view: DataView }[] = [];
  constructor(
    private readonly src: ByteSource,
    private readonly fileSize: number,
  ) {}

  async ensure(offset: number, length: number): Promise<void> {
    if (length <= 0 || this.find(offset, length)) return;
    // Read ahead a little: tag arrays of one IFD tend to sit together.
    const want = Math.min(Math.max(length, 16 * 1024), this.fileSize - offset);
    const bytes = await this.src.read(offset, want);
    if (bytes.length < length) throw new SourceError(`${this.src.location}: file ends at byte ${offset + bytes.length}, needed ${offset + length}`);
    this.chunks.push({ start: offset, bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
  }

  private find(offset: number, length: number) {
    for (const c of this.chunks) if (offset >= c.start && offset + length <= c.start + c.bytes.length) return c;
    return undefined;
  }

  private at(offset: number, length: number): { view: DataView; pos: number } {
    const c = this.find(offset, length);
    if (!c) throw new Error(`internal: bytes ${offset}+${length} not loaded`);
    return { view: c.view, pos: offset - c.start };
  }

  u8(o: number): number {
    const { view, pos } = this.at(o, 1);
    return view.getUint8(pos);
  }
  u16(o: number): number {
    const { view, pos } = this.at(o, 2);
    return view.getUint16(pos, this.littleEndian);
  }
  u32(o: number): number {
    const { view, pos } = this.at(o, 4);
    return view.getUint32(pos, this.littleEndian);
  }
  u64(o: number): number {
    const { view, pos } = this.at(o, 8);
    const v = view.getBigUint64(pos, this.littleEndian);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new SourceError(`${this.src.location}: 64-bit offset too large at byte ${o}`);
    return Number(v);
  }

  values(type: number, n: number, offset: number): TagValue {
    const { view, pos } = this.at(offset, TYPE_SIZE[type]! * n);
    const le = this.littleEndian;
    if (type === 2) {
      let s = '';
      for (let i = 0; i < n; i++) s += String.fromCharCode(view.getUint8(pos + i));
      return s.replace(/\0+$/, '');
    }
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      switch (type) {
        case 1:
        case 7:
          out[i] = view.getUint8(pos + i);
          break;
        case 6:
          out[i] = view.getInt8(pos + i);
          break;
        case 3:
          out[i] = view.getUint16(pos + 2 * i, le);
          break;
        case 8:
          out[i] = view.getInt16(pos + 2 * i, le);
          break;
        case 4:
        case 13:
          out[i] = view.getUint32(pos + 4 * i, le);
          break;
        case 9:
          out[i] = view.getInt32(pos + 4 * i, le);
          break;
        case 5:
          out[i] = view.getUint32(pos + 8 * i, le) / view.getUint32(pos + 8 * i + 4, le);
          break;
        case 10:
          out[i] = view.getInt32(pos + 8 * i, le) / view.getInt32(pos + 8 * i + 4, le);
          break;
        case 11:
          out[i] = view.getFloat32(pos + 4 * i, le);
          break;
        case 12:
          out[i] = view.getFloat64(pos + 8 * i, le);
          break;
        case 16:
        case 18:
          out[i] = Number(view.getBigUint64(pos + 8 * i, le));
          break;
        case 17:
          out[i] = Number(view.getBigInt64(pos + 8 * i, le));
          break;
      }
    }
    return out;
  }
}
