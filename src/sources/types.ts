/** Typed sample arrays a decoded TIFF block can hold (native byte order). */
export type Samples =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array;

/** How one block (a tile or a strip) of a TIFF image is stored. */
export interface BlockLayout {
  /** TIFF Compression tag 259: 1 none, 5 LZW, 8/32946 DEFLATE, 32773 PackBits, 50000 ZSTD. */
  compression: number;
  /** TIFF Predictor tag 317: 1 none, 2 horizontal differencing, 3 floating point. */
  predictor: number;
  /** Pixels per row of the block (TileWidth, or ImageWidth for strips). */
  width: number;
  /** Rows in this block (TileLength; for strips RowsPerStrip, less for the last strip). */
  height: number;
  /** Interleaved samples per pixel in this block: SamplesPerPixel when chunky, 1 when planar. */
  samples: number;
  /** BitsPerSample tag 258: 8, 16, 32 or 64. */
  bitsPerSample: number;
  /** SampleFormat tag 339: 1 unsigned integer, 2 signed integer, 3 IEEE float. */
  sampleFormat: number;
  /** Byte order of the file ("II" is little-endian). */
  littleEndian: boolean;
}
