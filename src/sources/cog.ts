import type { Crs } from '../crs/crs.js';
import { crsFromGeoKeys } from '../crs/geotiff.js';
import { GeoKey, GeoKeys, RasterType } from '../crs/geokeys.js';
import { SourceError } from '../errors.js';
import { byteSource, type ByteSource } from './bytesource.js';
import { blockCache } from './blockcache.js';
import { addCells, cellHashes, recordsCells, type BlockPlace } from './cells.js';
import { blockShape, decodeBlock } from './codecs/block.js';
import { MAX_BLOCK_BYTES as MAX_DECODED_BYTES } from './codecs/output.js';
import { DECOMPRESSORS } from './codecs/decompressors.js';
import { decodeImageBlock, IMAGE_COMPRESSIONS, imageCodecProblem, imageCodecReady } from './codecs/image.js';
import { blocksAcross, readTiff, Tag, type TagValue, type TiffImage } from './tiff.js';
import {
  compressionName,
  Photometric,
  PlanarConfiguration,
  SampleFormat,
  sampleType,
  SubfileType,
  type DataType,
  type Samples,
  type SampleType,
} from './types.js';

/** One resolution of the pyramid: level 0 is full resolution, then the overviews. */
export interface Level {
  width: number;
  height: number;
  image: TiffImage;
  /** The internal transparency mask of this level (GDAL's per-dataset mask), if any. */
  mask?: TiffImage;
}

export interface CogMeta {
  location: string;
  /** size + mtime for files, ETag or Last-Modified for URLs. */
  version: string;
  width: number;
  height: number;
  bands: number;
  dataType: DataType;
  /** The full-resolution image's compression, as GDAL names it (DEFLATE, JPEG, LERC, ...). */
  compression: string;
  nodata: number | null;
  /** GDAL order: [originX, pixelWidth, rowRotation, originY, columnRotation, pixelHeight], pixel-is-area. */
  geoTransform: [number, number, number, number, number, number];
  crs: Crs;
  levels: Level[];
  /** The file's colour table as 256 RGBA entries (TIFF ColorMap, photometric palette). */
  palette?: Uint8Array;
  /** Bounds in the source CRS: [minX, minY, maxX, maxY]. */
  bounds: [number, number, number, number];
}

/** Compressed bytes one block may take: a 1024² block of four Float64 bands, uncompressed, is 32 MiB. */
export const MAX_BLOCK_BYTES = 64 * 1024 * 1024;

/**
 * Buffers a thread lends to its block reads, kept for the next ones. A thread decodes one
 * block at a time but may read many at once (every block of a window), so a new buffer is
 * sized to its block, rounded up to a power of two (at least READ_BUFFER_MIN), and a read
 * takes the smallest free one that fits. READ_BUFFERS_KEPT are kept, the largest first, and
 * none past READ_BUFFER_KEPT_MAX bytes (a block may claim up to MAX_BLOCK_BYTES).
 */
const readBuffers = {
  free: [] as Uint8Array[],
  take(bytes: number): Uint8Array {
    let best = -1;
    this.free.forEach((b, i) => {
      if (b.byteLength >= bytes && (best < 0 || b.byteLength < this.free[best]!.byteLength)) best = i;
    });
    if (best >= 0) return this.free.splice(best, 1)[0]!;
    return new Uint8Array(Math.max(READ_BUFFER_MIN, 2 ** Math.ceil(Math.log2(bytes))));
  },
  give(buffer: Uint8Array): void {
    if (buffer.byteLength > READ_BUFFER_KEPT_MAX) return;
    if (this.free.length < READ_BUFFERS_KEPT) {
      this.free.push(buffer);
      return;
    }
    const smallest = this.free.reduce((k, b, i) => (b.byteLength < this.free[k]!.byteLength ? i : k), 0);
    if (this.free[smallest]!.byteLength < buffer.byteLength) this.free[smallest] = buffer;
  },
};
const READ_BUFFER_MIN = 64 << 10;
const READ_BUFFERS_KEPT = 4;
const READ_BUFFER_KEPT_MAX = 8 << 20;

export class Cog {
  private constructor(
    readonly meta: CogMeta,
    private readonly src: ByteSource,
    private readonly littleEndian: boolean,
    /** Bytes in the file when it was opened: no block may run past them. */
    private readonly size: number,
  ) {}

  static async open(location: string, src: ByteSource = byteSource(location)): Promise<Cog> {
    try {
      const { size, version } = await src.identity();
      const { littleEndian, images } = await readTiff(src, size);
      const meta = buildMeta(location, version, images);
      for (const lv of meta.levels) await imageCodecReady(lv.image.compression);
      return new Cog(meta, src, littleEndian, size);
    } catch (err) {
      await src.close().catch(() => {});
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.src.close();
  }

  /**
   * One decoded block of one plane. Blocks are cached in this thread by source version,
   * so a replaced file is never answered from stale blocks.
   */
  readBlock(level: number, plane: number, bx: number, by: number): Promise<Samples> {
    const lv = this.meta.levels[level];
    if (!lv) throw new Error(`${this.meta.location}: no level ${level}`);
    return this.block(lv.image, plane, bx, by, false);
  }

  /** The internal mask block as one byte per pixel (0 masked, non-zero valid), or undefined if no mask. */
  readMaskBlock(level: number, bx: number, by: number): Promise<Samples> | undefined {
    const m = this.meta.levels[level]?.mask;
    return m ? this.block(m, 0, bx, by, true) : undefined;
  }

  private block(im: TiffImage, plane: number, bx: number, by: number, mask: boolean): Promise<Samples> {
    const across = blocksAcross(im);
    const perPlane = across * Math.ceil(im.height / im.blockHeight);
    const index = plane * perPlane + by * across + bx;
    const key = `${this.meta.location}@${this.meta.version}:${im.index}:${index}`;
    // Worked out on a miss only: most requests are answered from the cache.
    const load = async ({ rows, samples }: BlockPlace) => {
      const offset = im.blockOffsets[index]!;
      const count = im.blockByteCounts[index]!;
      if (mask) {
        // Unpacked to a byte a pixel: eight times what the packed block decodes to.
        if (im.blockWidth * rows > MAX_DECODED_BYTES) {
          throw new SourceError(
            `${this.meta.location}: mask block ${index} of image ${im.index} is ${im.blockWidth}x${rows} pixels, more than ${MAX_DECODED_BYTES} unpacked`,
          );
        }
        const packed = await this.decode(
          im,
          offset,
          count,
          {
            width: Math.ceil(im.blockWidth / 8),
            height: rows,
            samples: 1,
            bitsPerSample: 8,
            sampleFormat: SampleFormat.Uint,
          },
          index,
        );
        return unpackBits(packed as Uint8Array, im.blockWidth, rows);
      }
      return this.decode(
        im,
        offset,
        count,
        { width: im.blockWidth, height: rows, samples, bitsPerSample: im.bitsPerSample, sampleFormat: im.sampleFormat },
        index,
      );
    };
    if (!recordsCells()) return blockCache.get(key, () => load(placeOf(im, bx, by, mask)));
    // A seeding thread: the cells of what it decodes, for the run's manifest (src/sources/cells.ts).
    return blockCache.get(key, async () => {
      const place = placeOf(im, bx, by, mask);
      const decoded = await load(place);
      const { location, version } = this.meta;
      const hashes = cellHashes(decoded, place);
      if (hashes) addCells({ location, version, image: im.index, index, hashes });
      return decoded;
    });
  }

  /** The cells of one block of a level (or of its mask) as `cellHashes` gives them, from a decode of it ('' when unknown). */
  async blockCells(level: number, mask: boolean, index: number): Promise<string> {
    const lv = this.meta.levels[level]!;
    const im = mask ? lv.mask! : lv.image;
    const across = blocksAcross(im);
    const perPlane = across * Math.ceil(im.height / im.blockHeight);
    const plane = Math.floor(index / perPlane),
      p = index % perPlane;
    const bx = p % across,
      by = Math.floor(p / across);
    const decoded = await (mask ? this.readMaskBlock(level, bx, by)! : this.readBlock(level, plane, bx, by));
    return cellHashes(decoded, placeOf(im, bx, by, mask)) ?? '';
  }

  private async decode(
    im: TiffImage,
    offset: number,
    count: number,
    shape: { width: number; height: number; samples: number; bitsPerSample: number; sampleFormat: number },
    index: number,
  ): Promise<Samples> {
    const layout = { ...shape, compression: im.compression, predictor: im.predictor, littleEndian: this.littleEndian };
    const where = `${this.meta.location}: block ${index} of image ${im.index}`;
    if (count === 0) {
      // A sparse block (GDAL SPARSE_OK): reads as nodata, or zero without one. Its size is the
      // file's word as much as a stored block's, and checked the same way; it costs no bytes in
      // the file, so a file can have many. Fresh memory is zero: with zero as the value it stays
      // unwritten, and takes no resident memory. In shared memory when the threads share blocks,
      // as a stored block is decoded, so that sharing it is no copy.
      let empty: { type: SampleType; sampleCount: number; bytes: number };
      try {
        empty = blockShape(shape);
      } catch (err) {
        throw new SourceError(`${where} (sparse): ${(err as Error).message}`);
      }
      const out = new empty.type.array(blockCache.sharing ? new SharedArrayBuffer(empty.bytes) : new ArrayBuffer(empty.bytes), 0, empty.sampleCount);
      const nodata = this.meta.nodata;
      if (nodata !== null && nodata !== 0) out.fill(nodata as never);
      return out;
    }
    // TIFF 6.0 §8: TileOffsets/TileByteCounts are whatever the file says. Checked against the
    // file before they reach an allocation or a read: a count of 2^31 once aborted the process.
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(count) || offset < 0 || count < 0) {
      throw new SourceError(`${this.meta.location}: block ${index} of image ${im.index} has offset ${offset} and byte count ${count}`);
    }
    if (count > MAX_BLOCK_BYTES) {
      throw new SourceError(
        `${this.meta.location}: block ${index} of image ${im.index} at byte ${offset} claims ${count} bytes; a block holds at most ${MAX_BLOCK_BYTES}`,
      );
    }
    if (offset + count > this.size) {
      throw new SourceError(
        `${this.meta.location}: block ${index} of image ${im.index} at byte ${offset} is truncated (it needs ${count} bytes; the file of ${this.size} bytes ends ${Math.max(0, this.size - offset)} bytes after it)`,
      );
    }
    // The compressed bytes are read into a buffer of this thread's, lent for the block's decoding
    // (which never keeps them): fresh memory for each block would cost a page fault every 4 KB.
    const lent = readBuffers.take(count);
    try {
      const bytes = await this.src.read(offset, count, lent);
      if (bytes.length < count)
        throw new SourceError(`${this.meta.location}: block ${index} of image ${im.index} at byte ${offset} is truncated (${bytes.length} of ${count} bytes)`);
      try {
        if (IMAGE_COMPRESSIONS.has(im.compression)) {
          const tables = im.tags.get(Tag.JPEGTables);
          const lerc = im.tags.get(Tag.LercParameters);
          return await decodeImageBlock(
            bytes,
            {
              ...shape,
              compression: im.compression,
              jpegTables: Array.isArray(tables) ? Uint8Array.from(tables) : undefined,
              lercAdditional: Array.isArray(lerc) ? lerc[1] : 0,
            },
            blockCache.sharing,
          );
        }
        // Shared between threads: decoded straight into a SharedArrayBuffer, saving a copy.
        return decodeBlock(bytes, layout, { shared: blockCache.sharing });
      } catch (err) {
        throw new SourceError(`${this.meta.location}: block ${index} of image ${im.index} at byte ${offset}: ${(err as Error).message}`);
      }
    } finally {
      readBuffers.give(lent);
    }
  }
}

/** Where block (bx, by) of an image lies, the rows it decodes to (a strip image's last is short) and its samples a pixel (a mask's: one). */
function placeOf(im: TiffImage, bx: number, by: number, mask: boolean): BlockPlace {
  return {
    imageWidth: im.width,
    imageHeight: im.height,
    blockWidth: im.blockWidth,
    blockHeight: im.blockHeight,
    bx,
    by,
    rows: im.tiled ? im.blockHeight : Math.min(im.blockHeight, im.height - by * im.blockHeight),
    samples: mask || im.planar === PlanarConfiguration.Separate ? 1 : im.samplesPerPixel,
  };
}

/** Why the blocks of an image cannot be decoded here, or undefined when they can. */
function codecProblem(im: TiffImage): string | undefined {
  if (IMAGE_COMPRESSIONS.has(im.compression)) return imageCodecProblem(im);
  if (!DECOMPRESSORS.has(im.compression)) return `unsupported TIFF compression ${im.compression}`;
  if (im.photometric === Photometric.YCbCr) return 'YCbCr samples without JPEG compression';
  return undefined;
}

function unpackBits(packed: Uint8Array, width: number, rows: number): Uint8Array {
  // TIFF 6.0 §3 (bilevel): 1-bit rows are padded to a whole byte, most significant bit first.
  const stride = Math.ceil(width / 8);
  const out = new Uint8Array(width * rows);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < width; x++) out[y * width + x] = (packed[y * stride + (x >> 3)]! >> (7 - (x & 7))) & 1;
  }
  return out;
}

function buildMeta(location: string, version: string, images: TiffImage[]): CogMeta {
  const full = images[0]!;
  const fail = (why: string): never => {
    throw new SourceError(`${location}: ${why}`);
  };
  const problem = codecProblem(full);
  if (problem) fail(problem);
  let dataType: DataType;
  try {
    dataType = sampleType(full.bitsPerSample, full.sampleFormat).dataType;
  } catch (err) {
    return fail((err as Error).message);
  }
  const isMask = (im: TiffImage) => (im.subfileType & SubfileType.Mask) !== 0;

  // COG layout (GDAL): full resolution, its overviews (NewSubfileType bit 0), and masks
  // (bit 2) for each of them, matched by size.
  const levels: Level[] = [{ width: full.width, height: full.height, image: full }];
  for (const im of images.slice(1)) {
    if (!isMask(im) && im.subfileType & SubfileType.ReducedImage && im.samplesPerPixel === full.samplesPerPixel) {
      const overviewProblem = codecProblem(im);
      if (overviewProblem) fail(`overview ${im.index}: ${overviewProblem}`);
      levels.push({ width: im.width, height: im.height, image: im });
    }
  }
  levels.sort((a, b) => b.width - a.width);
  for (const im of images) {
    if (!isMask(im) || im.bitsPerSample !== 1) continue;
    const lv = levels.find((l) => l.width === im.width && l.height === im.height);
    if (lv && !lv.mask && DECOMPRESSORS.has(im.compression)) lv.mask = im;
  }

  const directory = full.tags.get(Tag.GeoKeyDirectory);
  checkGeoKeyDirectory(directory, fail);
  const keys = GeoKeys.fromDirectory(directory, full.tags.get(Tag.GeoDoubleParams), full.tags.get(Tag.GeoAsciiParams));
  if (!keys) return fail('no GeoTIFF keys (GeoKeyDirectoryTag 34735): not a georeferenced raster');
  let crs: Crs;
  try {
    crs = crsFromGeoKeys(keys);
  } catch (err) {
    return fail((err as Error).message);
  }
  const geoTransform = readGeoTransform(full.tags, keys, location);

  const nodataText = full.tags.get(Tag.GdalNodata);
  let nodata: number | null = null;
  if (typeof nodataText === 'string' && nodataText.trim() !== '') {
    const t = nodataText.trim().toLowerCase();
    nodata = t === 'nan' ? NaN : t === 'inf' ? Infinity : t === '-inf' ? -Infinity : Number(t);
    if (!Number.isNaN(nodata) && t !== 'nan' && !Number.isFinite(Number(t)) && !t.includes('inf')) nodata = null;
  }

  let palette: Uint8Array | undefined;
  const cmap = full.tags.get(Tag.ColorMap);
  if (full.photometric === Photometric.Palette && Array.isArray(cmap) && full.samplesPerPixel === 1) palette = readPalette(cmap, full.bitsPerSample);

  const [a, b, c, d, e, f] = geoTransform;
  const xs = [a, a + b * full.width, a + c * full.height, a + b * full.width + c * full.height];
  const ys = [d, d + e * full.width, d + f * full.height, d + e * full.width + f * full.height];
  return {
    location,
    version,
    width: full.width,
    height: full.height,
    bands: full.samplesPerPixel,
    dataType,
    nodata,
    geoTransform,
    crs,
    levels,
    compression: compressionName(full.compression),
    palette,
    bounds: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)],
  };
}

/**
 * GeoTIFF 1.1 §7.1.2: the GeoKeyDirectory is SHORTs, a header of four (its last the number of
 * keys) and four per key. The number of keys is the file's word: one read as a LONG8 (a field
 * type damaged) claimed 10^18 keys and held the loader in a loop.
 */
function checkGeoKeyDirectory(directory: TagValue | undefined, fail: (why: string) => never): void {
  if (!Array.isArray(directory) || directory.length < 4) return;
  const bad = directory.find((v) => !Number.isInteger(v) || v < 0 || v > 0xffff);
  if (bad !== undefined) fail(`GeoKeyDirectory (tag 34735) holds ${bad}; its values are SHORTs`);
  const keys = directory[3]!;
  if (4 + 4 * keys > directory.length)
    fail(`GeoKeyDirectory (tag 34735) claims ${keys} keys; its ${directory.length} values hold ${(directory.length >> 2) - 1}`);
}

/** TIFF ColorMap (tag 320): all reds, then greens, then blues, 16 bits each. */
function readPalette(cmap: number[], bits: number): Uint8Array {
  const n = Math.min(1 << bits, Math.floor(cmap.length / 3));
  // GDAL divides by 257 unless the table was written as value*256 (GTiff driver).
  const by256 = cmap.every((v) => v % 256 === 0) && !cmap.every((v) => v % 257 === 0);
  const scale = cmap.every((v) => v < 256) ? 1 : by256 ? 256 : 257;
  const out = new Uint8Array(256 * 4);
  for (let i = 0; i < n && i < 256; i++) {
    out[4 * i] = Math.round(cmap[i]! / scale);
    out[4 * i + 1] = Math.round(cmap[n + i]! / scale);
    out[4 * i + 2] = Math.round(cmap[2 * n + i]! / scale);
    out[4 * i + 3] = 255;
  }
  return out;
}

function readGeoTransform(tags: Map<number, number[] | string>, keys: GeoKeys, location: string): CogMeta['geoTransform'] {
  const m = tags.get(Tag.ModelTransformation);
  let gt: CogMeta['geoTransform'];
  if (Array.isArray(m) && m.length >= 16) {
    gt = [m[3]!, m[0]!, m[1]!, m[7]!, m[4]!, m[5]!];
  } else {
    const scale = tags.get(Tag.ModelPixelScale);
    const tie = tags.get(Tag.ModelTiepoint);
    if (!Array.isArray(scale) || !Array.isArray(tie) || scale.length < 2 || tie.length < 6) {
      throw new SourceError(`${location}: no ModelTiepoint/ModelPixelScale or ModelTransformation: cannot place the raster`);
    }
    const [i, j, , x, y] = tie as [number, number, number, number, number];
    gt = [x - i * scale[0]!, scale[0]!, 0, y + j * scale[1]!, 0, -scale[1]!];
  }
  // GTRasterTypeGeoKey = 2 (RasterPixelIsPoint): the tie point is a pixel centre; GDAL
  // shifts by half a pixel to get the corner (GTIFF_POINT_GEO_IGNORE=NO, its default).
  if (keys.get(GeoKey.GTRasterType) === RasterType.PixelIsPoint) {
    gt[0] -= (gt[1] + gt[2]) / 2;
    gt[3] -= (gt[4] + gt[5]) / 2;
  }
  if (!gt.every(Number.isFinite) || gt[1] * gt[5] - gt[2] * gt[4] === 0) throw new SourceError(`${location}: degenerate geotransform`);
  return gt;
}
