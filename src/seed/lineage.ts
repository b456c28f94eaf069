/**
 * The lineage a seeding manifest records of its layer, and from two of them the tiles a source
 * change can affect (`tilegraph seed LAYER --since MANIFEST`): every other tile is carried over.
 *
 * - A COG file is recorded block by block: each level's blocks (and its internal mask's) with
 *   their offsets, byte counts and a hash of their compressed bytes. Blocks are compared by
 *   (level, plane, block index), never by offset: `gdal_translate` moves unchanged blocks to new
 *   offsets with the same bytes.
 * - A tile is stale when a read of the graph, planned for it as the renderer plans it
 *   (src/render/renderer.ts: `readGroups`, `planRead` on the tile grid with the graph's
 *   buffer), reads a window of a level that meets a changed block of that level. A Web Mercator
 *   box around each change first rules out the tiles far from all of them without planning.
 * - A mosaic is recorded member by member (location, version, Web Mercator box); a member
 *   added, removed or replaced makes stale the tiles that look it up (src/tiles/mosaic.ts).
 * - A changed layer file, a source added or removed, or a changed source whose percentiles
 *   `rescale: {from: auto}` takes: every tile.
 */
import { createHash, webcrypto } from 'node:crypto';
import Flatbush from 'flatbush';
import type { Converter } from 'proj4';
import proj4 from '../proj4.js';
import { z } from 'zod';
import { SourceError, TileError } from '../errors.js';
import type { Layer, LayerSource } from '../layers/layer.js';
import type { Mosaic } from '../layers/mosaic.js';
import { readGroups, type ReadGroup } from '../ops/builtin/read.js';
import { BufferPool, TileArena } from '../render/arena.js';
import { planSourceOf } from '../render/mosaic.js';
import { byteSource, type ByteSource } from '../sources/bytesource.js';
import { CELL_HASH_HEX, cellGrid, CELLS, type CellRecord } from '../sources/cells.js';
import { Cog, MAX_BLOCK_BYTES, type CogMeta } from '../sources/cog.js';
import { blocksAcross, blocksDown, Tag, type TagValue, type TiffImage } from '../sources/tiff.js';
import { PlanarConfiguration } from '../sources/types.js';
import { outline, splitAtAntimeridian } from '../tiles/footprint.js';
import { HALF_WORLD, lonLatToMercator, tileBounds, type TileId } from '../tiles/mercator.js';
import { KERNEL_REACH_PX, TILE_MARGIN_PX as MEMBER_MARGIN_PX } from '../tiles/mosaic.js';
import { chooseLevel, planRead, type PlanSource, type TileGrid } from '../tiles/plan.js';

// ---------------------------------------------------------------------------------------
// What a manifest stores

/** One image of a level (the level itself, or its mask): its block grid and every block. */
export interface ImageDigest {
  width: number;
  height: number;
  blockWidth: number;
  blockHeight: number;
  /** 1 for interleaved samples; the samples per pixel for PlanarConfiguration 2 (a block set each). */
  planes: number;
  /** Per block in TIFF order (plane, then row, then column): where it starts, and its bytes (0: sparse). */
  offsets: number[];
  counts: number[];
  /** HASH_HEX hex digits per block, in the same order, one string: SHA-256 of the block's compressed bytes. */
  hashes: string;
  /**
   * The cells of each block (src/sources/cells.ts), in the same order: CELL_HASH_HEX hex digits a
   * cell, row by row, or '' for a block whose cells are not known (no render decoded it). A
   * changed block whose cells are known before and after is compared cell by cell.
   */
  cells?: { across: number; down: number; hashes: string[] };
}

/** One level of the pyramid as the renderer reads it (src/sources/cog.ts `Level`). */
export interface LevelDigest extends ImageDigest {
  mask?: ImageDigest;
}

export interface SourceDigest {
  /** The source's version identity while it was read (size and mtime of a file). */
  version: string;
  size: number;
  /** What decodes and places the blocks (byte order, codec parameters, nodata, georeferencing, palette): a hash. */
  header: string;
  /** Full resolution first, then the overviews. */
  levels: LevelDigest[];
}

/** A source's pixel grid, as tile planning takes it (src/tiles/plan.ts `PlanSource`). */
export interface GridLineage {
  width: number;
  height: number;
  geoTransform: [number, number, number, number, number, number];
  proj4: string;
  /** [width, height] of each level, full resolution first. */
  levels: [number, number][];
}

export interface FileLineage {
  name: string;
  /** As the layer file names it. */
  ref: string;
  /** `file`: a COG on disk, digested block by block; `url`: an http(s) COG, recorded by its version only. */
  kind: 'file' | 'url';
  version: string;
  grid: GridLineage;
  digest?: SourceDigest;
}

export interface MemberLineage {
  location: string;
  version: string;
  /** Web Mercator [minX, minY, maxX, maxY] of its footprint widened by a kernel's reach; twice that across the antimeridian. */
  bbox: number[];
}

export interface MosaicLineage {
  name: string;
  ref: string;
  kind: 'mosaic';
  /** A hash of every member's location and version. */
  version: string;
  /** A hash of what the first member says for all (bands, data type, nodata, palette). */
  shared: string;
  members: MemberLineage[];
}

export type SourceLineage = FileLineage | MosaicLineage;

/** What a seeding manifest records of its layer for a later `--since`. */
export interface ManifestLineage {
  format: 1;
  /** The layer's config hash (SHA-256 of its canonical config). */
  configHash: string;
  /** The layer version the run rendered. */
  version: string;
  sources: SourceLineage[];
}

// ---------------------------------------------------------------------------------------
// Digests of COG files

/** Hex digits kept of each block's SHA-256: 64 bits, compared only with the block of the same index. */
const HASH_HEX = 16;
/** Bytes read at once: neighbouring blocks are read together up to this, larger blocks in pieces. */
const READ_CHUNK = 4 * 1024 * 1024;
/** Bytes between two blocks that are read through rather than skipped (GDAL's leaders and trailers, IFDs). */
const MAX_GAP = 64 * 1024;
/** Blocks a digest holds, masks and overviews included: about 30 MB of manifest. */
const MAX_DIGEST_BLOCKS = 1 << 20;

const shortHash = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex').slice(0, HASH_HEX);
/** A sparse block (GDAL SPARSE_OK, byte count 0) reads as nodata: every sparse block is the same. */
const EMPTY_HASH = shortHash('');

interface BlockRef {
  /** Position of the image in `out`. */
  image: number;
  index: number;
  offset: number;
  count: number;
}

/**
 * The block digest of a COG, a file or (through the project's byte source) a URL: the levels
 * and masks the renderer reads (picked by `Cog.open` exactly as for a render), every block's
 * offset, byte count and content hash. Blocks are read in chunks of at most READ_CHUNK bytes.
 */
export async function digestSource(location: string, earlier?: SourceDigest): Promise<SourceDigest> {
  const src = byteSource(location);
  // The renderer's own reader: readTiff, then the levels and masks buildMeta keeps.
  const cog = await Cog.open(location, src);
  try {
    const { size, version } = await src.identity();
    if (version !== cog.meta.version) throw new SourceError(`${location}: replaced while its digest was taken`);
    const head = await src.read(0, 2);
    const littleEndian = head[0] === 0x49;
    const images: TiffImage[] = [];
    const levels: LevelDigest[] = cog.meta.levels.map((lv) => {
      images.push(lv.image);
      const level: LevelDigest = imageDigest(lv.image);
      if (lv.mask) {
        images.push(lv.mask);
        level.mask = imageDigest(lv.mask);
      }
      return level;
    });
    const digests = levels.flatMap((lv) => (lv.mask ? [lv, lv.mask] : [lv]));
    const refs: BlockRef[] = [];
    digests.forEach((d, image) => {
      const im = images[image]!;
      const n = d.offsets.length;
      if (refs.length + n > MAX_DIGEST_BLOCKS) throw new SourceError(`${location}: more than ${MAX_DIGEST_BLOCKS} blocks to digest`);
      for (let index = 0; index < n; index++) {
        const offset = im.blockOffsets[index]!;
        const count = im.blockByteCounts[index]!;
        checkBlock(location, im, index, offset, count, size);
        refs.push({ image, index, offset, count });
      }
    });
    const hashes = digests.map((d) => new Array<string>(d.offsets.length).fill(EMPTY_HASH));
    await hashBlocks(src, location, refs, hashes);
    digests.forEach((d, k) => (d.hashes = hashes[k]!.join('')));
    const digest: SourceDigest = { version, size, header: headerOf(cog.meta, littleEndian), levels };
    if (earlier && structureChange(earlier, digest) === null) await followCells(cog, earlier, digest);
    if ((await src.identity()).version !== version) throw new SourceError(`${location}: replaced while its digest was taken`);
    return digest;
  } finally {
    await cog.close().catch(() => {});
  }
}

function imageDigest(im: TiffImage): ImageDigest {
  const planes = im.planar === PlanarConfiguration.Separate ? im.samplesPerPixel : 1;
  // readTiff checked that the file lists at least this many; any further entries are never read.
  const n = blocksAcross(im) * blocksDown(im) * planes;
  return {
    width: im.width,
    height: im.height,
    blockWidth: im.blockWidth,
    blockHeight: im.blockHeight,
    planes,
    offsets: im.blockOffsets.slice(0, n),
    counts: im.blockByteCounts.slice(0, n),
    hashes: '',
  };
}

/** Blocks of one source whose cells a digest keeps (past it, changes are told block by block): about 16 MB of manifest. */
const MAX_CELL_BLOCKS = 1 << 16;

const blockCount = (d: SourceDigest) => d.levels.reduce((n, l) => n + l.offsets.length + (l.mask?.offsets.length ?? 0), 0);

/**
 * The cells of `now` where `earlier` (of the same structure) knows them: a block with the same
 * bytes keeps its cells; a changed one is decoded and its cells taken again, so that the two
 * can be compared cell by cell.
 */
async function followCells(cog: Cog, earlier: SourceDigest, now: SourceDigest): Promise<void> {
  if (blockCount(now) > MAX_CELL_BLOCKS) return;
  for (const [k, level] of now.levels.entries()) {
    const pairs: [ImageDigest | undefined, ImageDigest | undefined, boolean][] = [
      [earlier.levels[k], level, false],
      [earlier.levels[k]!.mask, level.mask, true],
    ];
    for (const [was, is, mask] of pairs) {
      if (!was?.cells || !is) continue;
      const grid = cellGrid(is.blockWidth, is.blockHeight);
      if (was.cells.across !== grid.across || was.cells.down !== grid.down) continue;
      const hashes: string[] = [];
      for (const [i, h] of was.cells.hashes.entries()) {
        const same = was.hashes.slice(i * HASH_HEX, (i + 1) * HASH_HEX) === is.hashes.slice(i * HASH_HEX, (i + 1) * HASH_HEX);
        // Unknown before ('') stays unknown: there is nothing to compare the block's cells with.
        hashes.push(same || !h ? h : await cog.blockCells(k, mask, i));
      }
      is.cells = { across: grid.across, down: grid.down, hashes };
    }
  }
}

/**
 * The lineage with the cells render threads recorded (`records`, of the blocks they decoded) put
 * in its file sources' digests, where the digest does not know them already: of the same file
 * at the same version, within MAX_CELL_BLOCKS.
 */
export function withCells<L extends ManifestLineage | { error: string }>(lineage: L, layer: Layer, records: readonly CellRecord[]): L {
  if ('error' in lineage || records.length === 0) return lineage;
  for (const entry of lineage.sources) {
    if (entry.kind !== 'file' || !entry.digest) continue;
    const digest = entry.digest;
    const source = layer.sources.find((s) => s.name === entry.name);
    if (!source || source.mosaic || blockCount(digest) > MAX_CELL_BLOCKS) continue;
    // The digest's images by their index in the TIFF.
    const images = new Map<number, ImageDigest>();
    source.meta.levels.forEach((lv, k) => {
      const level = digest.levels[k];
      if (!level) return;
      images.set(lv.image.index, level);
      if (lv.mask && level.mask) images.set(lv.mask.index, level.mask);
    });
    for (const r of records) {
      if (r.location !== source.location || r.version !== digest.version) continue;
      const image = images.get(r.image);
      if (!image || r.index >= image.offsets.length) continue;
      const grid = cellGrid(image.blockWidth, image.blockHeight);
      if (r.hashes.length !== grid.across * grid.down * CELL_HASH_HEX) continue;
      image.cells ??= { across: grid.across, down: grid.down, hashes: new Array<string>(image.offsets.length).fill('') };
      if (!image.cells.hashes[r.index]) image.cells.hashes[r.index] = r.hashes;
    }
  }
  return lineage;
}

/** TIFF 6.0 §8: TileOffsets/TileByteCounts are whatever the file says; checked as src/sources/cog.ts checks them before a read. */
function checkBlock(location: string, im: TiffImage, index: number, offset: number, count: number, size: number): void {
  const at = `${location}: block ${index} of image ${im.index}`;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(count) || offset < 0 || count < 0)
    throw new SourceError(`${at} has offset ${offset} and byte count ${count}`);
  if (count > MAX_BLOCK_BYTES) throw new SourceError(`${at} at byte ${offset} claims ${count} bytes; a block holds at most ${MAX_BLOCK_BYTES}`);
  if (count > 0 && offset + count > size)
    throw new SourceError(
      `${at} at byte ${offset} is truncated (it needs ${count} bytes; the file of ${size} bytes ends ${Math.max(0, size - offset)} bytes after it)`,
    );
}

/** Chunks whose blocks are being hashed at once, off this thread (each a copy of READ_CHUNK bytes at most). */
const HASHING_CHUNKS = 4;

/**
 * Hashes every stored block, reading neighbours together (in file order) and large blocks in
 * pieces. The blocks of a chunk are hashed in libuv's threads (WebCrypto's digest, which copies
 * what it is given) while the next chunks are read: a --since run waits for the digest before
 * its first tile, and its render threads are still loading then.
 */
async function hashBlocks(src: ByteSource, location: string, refs: BlockRef[], out: string[][]): Promise<void> {
  // One buffer for every read, its bytes copied by the digest when it is called (as WebCrypto
  // specifies): fresh memory for each of a large file's chunks costs a page fault every 4 KB.
  const scratch = new Uint8Array(READ_CHUNK);
  const read = async (offset: number, length: number) => {
    const bytes = await src.read(offset, length, scratch);
    if (bytes.length < length) throw new SourceError(`${location}: ${length} bytes at byte ${offset} are truncated (${bytes.length} read)`);
    return bytes;
  };
  let hashing: Promise<void>[] = [];
  // The bytes lie in `scratch`, an ArrayBuffer of this thread's.
  const digestInto = (b: BlockRef, bytes: Uint8Array) =>
    webcrypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>).then((d) => {
      out[b.image]![b.index] = Buffer.from(d).toString('hex').slice(0, HASH_HEX);
    });
  const stored = refs.filter((r) => r.count > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 0; i < stored.length;) {
    const first = stored[i]!;
    if (first.count > READ_CHUNK) {
      const h = createHash('sha256');
      for (let at = 0; at < first.count; at += READ_CHUNK) h.update(await read(first.offset + at, Math.min(READ_CHUNK, first.count - at)));
      out[first.image]![first.index] = h.digest('hex').slice(0, HASH_HEX);
      i++;
      continue;
    }
    let end = first.offset + first.count;
    let j = i + 1;
    for (; j < stored.length; j++) {
      const b = stored[j]!;
      const reach = Math.max(end, b.offset + b.count);
      if (b.offset - end > MAX_GAP || reach - first.offset > READ_CHUNK) break;
      end = reach;
    }
    const bytes = await read(first.offset, end - first.offset);
    const chunk: Promise<void>[] = [];
    for (let k = i; k < j; k++) {
      const b = stored[k]!;
      chunk.push(digestInto(b, bytes.subarray(b.offset - first.offset, b.offset - first.offset + b.count)));
    }
    const hashed = Promise.all(chunk).then(() => {});
    // Awaited below; until then a failure must not count as unhandled.
    hashed.catch(() => {});
    hashing.push(hashed);
    if (hashing.length >= HASHING_CHUNKS) {
      await hashing[0];
      hashing = hashing.slice(1);
    }
    i = j;
  }
  await Promise.all(hashing);
}

/**
 * Everything besides the blocks' bytes that decides what they decode to and where they land:
 * the byte order, each image's codec fields (and JPEGTables, LercParameters), nodata, the
 * georeferencing and the palette. A rewrite by GDAL with the same options keeps all of it.
 */
function headerOf(meta: CogMeta, littleEndian: boolean): string {
  const tag = (v: TagValue | undefined) => (v === undefined ? null : shortHash(JSON.stringify(v)));
  const image = (im: TiffImage | undefined) =>
    im && [
      im.compression,
      im.predictor,
      im.photometric,
      im.planar,
      im.bitsPerSample,
      im.sampleFormat,
      im.samplesPerPixel,
      im.tiled,
      tag(im.tags.get(Tag.JPEGTables)),
      tag(im.tags.get(Tag.LercParameters)),
    ];
  return shortHash(
    JSON.stringify({
      littleEndian,
      bands: meta.bands,
      dataType: meta.dataType,
      nodata: String(meta.nodata),
      geoTransform: meta.geoTransform,
      crs: meta.crs.proj4,
      palette: meta.palette ? shortHash(meta.palette) : null,
      levels: meta.levels.map((lv) => [image(lv.image), image(lv.mask)]),
    }),
  );
}

// ---------------------------------------------------------------------------------------
// Comparing digests

/** Pixels of one level, [x0, y0, x1, y1) (x1, y1 excluded). */
export type PixelRect = [number, number, number, number];

/** Why two digests cannot be compared block by block (a differing header or block layout), or null when they can. */
export function structureChange(before: SourceDigest, after: SourceDigest): string | null {
  if (before.levels.length !== after.levels.length) return `it has ${after.levels.length} level(s), it had ${before.levels.length}`;
  for (const [k, now] of after.levels.entries()) {
    const was = before.levels[k]!;
    const layout = (d: ImageDigest) => `${d.width}x${d.height} in ${d.blockWidth}x${d.blockHeight} blocks of ${d.planes} plane(s)`;
    if (layout(was) !== layout(now)) return `level ${k} is ${layout(now)}, it was ${layout(was)}`;
    if (!was.mask !== !now.mask) return `level ${k} ${now.mask ? 'has a mask now' : 'has no mask now'}`;
    if (was.mask && now.mask && layout(was.mask) !== layout(now.mask)) return `the mask of level ${k} is ${layout(now.mask)}, it was ${layout(was.mask)}`;
  }
  if (before.header !== after.header) return 'its header differs (georeferencing, nodata, palette or codec fields)';
  return null;
}

/**
 * Per level, the pixel rectangles of the blocks whose bytes differ (a block of any plane or of
 * the level's mask counts for its pixels), in ascending block order; 'all' when the digests
 * cannot be compared block by block (`structureChange`).
 */
export function changedBlocks(before: SourceDigest, after: SourceDigest): PixelRect[][] | 'all' {
  if (structureChange(before, after) !== null) return 'all';
  return after.levels.map((now, k) => {
    const was = before.levels[k]!;
    const rects = changedRects(was, now);
    if (!now.mask) return rects;
    const seen = new Set(rects.map((r) => r.join()));
    for (const r of changedRects(was.mask!, now.mask)) if (!seen.has(r.join())) rects.push(r);
    return rects;
  });
}

/** How many block positions of a level differ, in any plane or in its mask. */
function changedPositions(was: LevelDigest, now: LevelDigest): number {
  const positions = new Set<number>();
  for (const [x, y] of [[was, now] as const, [was.mask, now.mask] as const]) {
    if (!x || !y) continue;
    const perPlane = Math.ceil(y.width / y.blockWidth) * Math.ceil(y.height / y.blockHeight);
    for (let i = 0; i * HASH_HEX < y.hashes.length; i++)
      if (x.hashes.slice(i * HASH_HEX, (i + 1) * HASH_HEX) !== y.hashes.slice(i * HASH_HEX, (i + 1) * HASH_HEX)) positions.add(i % perPlane);
  }
  return positions.size;
}

/**
 * The pixels of the blocks whose bytes differ, in ascending block order: of a whole block, or,
 * where both digests know its cells (in the same grid), of the cells that differ, each run of
 * neighbouring cells in a row of cells as one rectangle.
 */
function changedRects(was: ImageDigest, now: ImageDigest): PixelRect[] {
  const across = Math.ceil(now.width / now.blockWidth);
  const perPlane = across * Math.ceil(now.height / now.blockHeight);
  const grid = cellGrid(now.blockWidth, now.blockHeight);
  const cellsKnown = was.cells && now.cells && was.cells.across === grid.across && was.cells.down === grid.down;
  const whole = grid.across * grid.down;
  // Per block position, its changed cells as bits (every bit: the whole block), over all planes.
  const positions = new Map<number, boolean[]>();
  for (let i = 0; i < perPlane * now.planes; i++) {
    const at = i * HASH_HEX;
    if (was.hashes.slice(at, at + HASH_HEX) === now.hashes.slice(at, at + HASH_HEX)) continue;
    const p = i % perPlane;
    const changed = positions.get(p) ?? new Array<boolean>(whole).fill(false);
    positions.set(p, changed);
    const a = cellsKnown ? was.cells!.hashes[i] : undefined;
    const b = cellsKnown ? now.cells!.hashes[i] : undefined;
    for (let c = 0; c < whole; c++)
      changed[c] ||= !a || !b || a.slice(c * CELL_HASH_HEX, (c + 1) * CELL_HASH_HEX) !== b.slice(c * CELL_HASH_HEX, (c + 1) * CELL_HASH_HEX);
  }
  const rects: PixelRect[] = [];
  for (const p of [...positions.keys()].sort((a, b) => a - b)) {
    const changed = positions.get(p)!;
    const x0 = (p % across) * now.blockWidth,
      y0 = Math.floor(p / across) * now.blockHeight;
    const clip = (r: PixelRect): PixelRect => [r[0], r[1], Math.min(r[2], now.width), Math.min(r[3], now.height)];
    if (changed.every(Boolean)) {
      rects.push(clip([x0, y0, x0 + now.blockWidth, y0 + now.blockHeight]));
      continue;
    }
    for (let cy = 0; cy < grid.down; cy++)
      for (let cx = 0; cx < grid.across; cx++) {
        if (!changed[cy * grid.across + cx] || (cx > 0 && changed[cy * grid.across + cx - 1])) continue;
        let end = cx + 1;
        while (end < grid.across && changed[cy * grid.across + end]) end++;
        const r = clip([
          x0 + cx * grid.width,
          y0 + cy * grid.height,
          Math.min(x0 + end * grid.width, x0 + now.blockWidth),
          Math.min(y0 + (cy + 1) * grid.height, y0 + now.blockHeight),
        ]);
        if (r[0] < r[2] && r[1] < r[3]) rects.push(r);
      }
  }
  return rects;
}

// ---------------------------------------------------------------------------------------
// A layer's lineage

const isUrl = (location: string) => /^https?:\/\//i.test(location);

/**
 * What a manifest records of the layer as loaded: its config hash and version, and per source
 * its name, reference, kind and version with its grid and block digest (a COG file), its grid
 * alone (a URL: reading all of it is not the lineage's business), or its members (a mosaic).
 * Take it when the run starts: a source replaced since the layer was loaded is refused.
 * A file source with the same ref and version (size and mtime, the identity the layer version
 * and the caches key on) in `earlier` keeps that digest instead of being read again: a
 * `--since` run reads only the sources that changed.
 */
export async function lineageOf(layer: Layer, earlier?: ManifestLineage): Promise<ManifestLineage> {
  const sources: SourceLineage[] = [];
  for (const s of layer.sources) {
    if (s.mosaic) {
      sources.push(mosaicLineage(s, s.mosaic));
      continue;
    }
    const kind = isUrl(s.location) ? 'url' : 'file';
    const entry: FileLineage = { name: s.name, ref: s.ref, kind, version: s.version, grid: gridOf(s.meta) };
    const same = (e: SourceLineage): e is FileLineage => e.kind === 'file' && e.name === s.name && e.ref === s.ref && e.version === s.version;
    const earlierDigest = kind === 'file' ? earlier?.sources.find(same)?.digest : undefined;
    if (earlierDigest) entry.digest = earlierDigest;
    else if (kind === 'file') {
      // The same source at another version: its cells are followed (see followCells).
      const before = earlier?.sources.find((e): e is FileLineage => e.kind === 'file' && e.name === s.name && e.ref === s.ref)?.digest;
      const digest = await digestSource(s.location, before).catch((err: Error) => {
        throw new Error(`source '${s.name}': ${err.message.split(s.location).join(s.ref)}`, { cause: err });
      });
      if (digest.version !== s.version)
        throw new Error(
          `source '${s.name}' (${s.ref}) was replaced since layer '${layer.name}' was loaded (version ${s.version}, now ${digest.version}): load it again`,
        );
      entry.digest = digest;
    }
    sources.push(entry);
  }
  return { format: 1, configHash: layer.hash, version: layer.version, sources };
}

function gridOf(meta: CogMeta): GridLineage {
  const p = planSourceOf(meta);
  return {
    width: p.width,
    height: p.height,
    geoTransform: [...p.geoTransform] as GridLineage['geoTransform'],
    proj4: p.proj4,
    levels: p.levels.map((l) => [l.width, l.height]),
  };
}

function planSourceOfGrid(g: GridLineage): PlanSource {
  return { width: g.width, height: g.height, geoTransform: g.geoTransform, proj4: g.proj4, levels: g.levels.map(([width, height]) => ({ width, height })) };
}

function mosaicLineage(s: LayerSource, mosaic: Mosaic): MosaicLineage {
  const members = mosaic.members.map((m) => ({ location: m.location, version: m.version, bbox: memberBoxes(m.meta) }));
  const first = mosaic.members[0]!.meta;
  return {
    name: s.name,
    ref: s.ref,
    kind: 'mosaic',
    version: shortHash(members.map((m) => `${m.location}@${m.version}\n`).join('')),
    shared: shortHash(
      JSON.stringify({ bands: first.bands, dataType: first.dataType, nodata: String(first.nodata), palette: first.palette ? shortHash(first.palette) : null }),
    ),
    members,
  };
}

/** The Web Mercator box of a member's footprint as src/tiles/mosaic.ts indexes it (widened by KERNEL_REACH_PX), in whole metres outwards. */
function memberBoxes(meta: CogMeta): number[] {
  const ring = outline(meta, KERNEL_REACH_PX);
  if (!ring) return [-HALF_WORLD, -HALF_WORLD, HALF_WORLD, HALF_WORLD].map((v) => Math.round(v));
  return splitAtAntimeridian(ring).flatMap((part) => {
    const [x0, y0, x1, y1] = mercatorBox(part);
    return [Math.floor(x0), Math.floor(y0), Math.ceil(x1), Math.ceil(y1)];
  });
}

function mercatorBox(lonLat: readonly [number, number][]): Box {
  const box: Box = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [lon, lat] of lonLat) {
    const [x, y] = lonLatToMercator(lon, lat);
    box[0] = Math.min(box[0], x);
    box[1] = Math.min(box[1], y);
    box[2] = Math.max(box[2], x);
    box[3] = Math.max(box[3], y);
  }
  return box;
}

// ---------------------------------------------------------------------------------------
// Reading a lineage back

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const dim = z
  .number()
  .int()
  .min(1)
  .max(2 ** 31);
const hexOf = (n: number) => z.string().regex(new RegExp(`^[0-9a-f]{${n}}$`), `expected ${n} hex digits`);

const imageFields = {
  width: dim,
  height: dim,
  blockWidth: dim,
  blockHeight: dim,
  planes: z.number().int().min(1).max(65535),
  offsets: z.array(z.number().int().min(0)).max(MAX_DIGEST_BLOCKS),
  counts: z.array(z.number().int().min(0).max(MAX_BLOCK_BYTES)).max(MAX_DIGEST_BLOCKS),
  hashes: z.string().regex(/^[0-9a-f]*$/, 'expected hex digits'),
  cells: z
    .strictObject({
      across: z.number().int().min(1).max(CELLS),
      down: z.number().int().min(1).max(CELLS),
      hashes: z.array(z.string().regex(/^[0-9a-f]*$/, 'expected hex digits')).max(MAX_CELL_BLOCKS),
    })
    .optional(),
};

/** One entry per block, as many blocks as the sizes make. */
function checkBlocks(d: ImageDigest, ctx: z.RefinementCtx): void {
  const n = Math.ceil(d.width / d.blockWidth) * Math.ceil(d.height / d.blockHeight) * d.planes;
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (d.offsets.length !== n) issue('offsets', `${d.offsets.length} offsets for ${n} blocks`);
  if (d.counts.length !== n) issue('counts', `${d.counts.length} byte counts for ${n} blocks`);
  if (d.hashes.length !== n * HASH_HEX) issue('hashes', `${d.hashes.length} hex digits for ${n} blocks of ${HASH_HEX}`);
  if (d.cells) {
    const grid = cellGrid(d.blockWidth, d.blockHeight);
    const digits = grid.across * grid.down * CELL_HASH_HEX;
    if (d.cells.across !== grid.across || d.cells.down !== grid.down)
      issue('cells', `${d.cells.across}x${d.cells.down} cells a block, not the ${grid.across}x${grid.down} of ${d.blockWidth}x${d.blockHeight} blocks`);
    else if (d.cells.hashes.length !== n) issue('cells', `cells of ${d.cells.hashes.length} blocks, not ${n}`);
    else if (d.cells.hashes.some((h) => h.length !== 0 && h.length !== digits)) issue('cells', `a block's cells are ${digits} hex digits (or none)`);
  }
}

const ImageDigestSchema = z.strictObject(imageFields).superRefine(checkBlocks);
const LevelDigestSchema = z.strictObject({ ...imageFields, mask: ImageDigestSchema.optional() }).superRefine(checkBlocks);

const SourceDigestSchema = z.strictObject({
  version: z.string().min(1).max(1000),
  size: z.number().int().min(0),
  header: hexOf(HASH_HEX),
  levels: z.array(LevelDigestSchema).min(1).max(64),
});

const GridSchema = z
  .strictObject({
    width: dim,
    height: dim,
    geoTransform: z.tuple([z.number(), z.number(), z.number(), z.number(), z.number(), z.number()]),
    proj4: z.string().min(1).max(4000),
    levels: z
      .array(z.tuple([dim, dim]))
      .min(1)
      .max(64),
  })
  .superRefine((g, ctx) => {
    const [, b, c, , e, f] = g.geoTransform;
    if (!g.geoTransform.every(Number.isFinite) || b * f - c * e === 0)
      ctx.addIssue({ code: 'custom', path: ['geoTransform'], message: 'a degenerate geotransform' });
    const full = g.levels[0];
    if (full && (full[0] !== g.width || full[1] !== g.height))
      ctx.addIssue({ code: 'custom', path: ['levels', 0], message: `level 0 is ${full.join('x')}, the grid ${g.width}x${g.height}` });
    try {
      proj4(g.proj4, 'EPSG:4326');
    } catch {
      ctx.addIssue({ code: 'custom', path: ['proj4'], message: 'not a CRS definition proj4 reads' });
    }
  });

const FileLineageSchema = z
  .strictObject({
    name: z.string().regex(IDENTIFIER, 'a source name'),
    ref: z.string().min(1).max(2000),
    kind: z.enum(['file', 'url']),
    version: z.string().min(1).max(1000),
    grid: GridSchema,
    digest: SourceDigestSchema.optional(),
  })
  .superRefine((s, ctx) => {
    const sizes = (levels: readonly { width: number; height: number }[]) => levels.map((l) => `${l.width}x${l.height}`).join(', ');
    if (s.digest && sizes(s.digest.levels) !== sizes(s.grid.levels.map(([width, height]) => ({ width, height }))))
      ctx.addIssue({ code: 'custom', path: ['digest', 'levels'], message: `levels ${sizes(s.digest.levels)} disagree with the grid's` });
  });

const MosaicLineageSchema = z.strictObject({
  name: z.string().regex(IDENTIFIER, 'a source name'),
  ref: z.string().min(1).max(2000),
  kind: z.literal('mosaic'),
  version: hexOf(HASH_HEX),
  shared: hexOf(HASH_HEX),
  members: z
    .array(
      z.strictObject({
        location: z.string().min(1).max(4000),
        version: z.string().min(1).max(1000),
        bbox: z
          .array(z.number())
          .min(4)
          .max(8)
          .refine((b) => b.length % 4 === 0 && b.every(Number.isFinite), 'one or two boxes [minX, minY, maxX, maxY] of finite numbers'),
      }),
    )
    .min(1)
    .max(50_000),
});

const LineageSchema = z.strictObject({
  format: z.literal(1, { error: 'expected lineage format 1' }),
  configHash: hexOf(64),
  version: z.string().min(1).max(200),
  sources: z
    .array(z.discriminatedUnion('kind', [FileLineageSchema, MosaicLineageSchema]))
    .min(1)
    .max(16)
    .refine((s) => new Set(s.map((x) => x.name)).size === s.length, 'two sources of one name'),
});

/**
 * A lineage read back from a manifest (JSON: user input), checked: an Error naming what is
 * wrong and where (`sources.0.digest.levels.1.hashes: ...`) when it is malformed.
 */
export function parseLineage(value: unknown, what = 'the manifest'): ManifestLineage {
  if (value === undefined || value === null) throw new Error(`${what}: no lineage (a manifest of a tilegraph before --since?): seed once without --since`);
  const parsed = LineageSchema.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`);
    throw new Error(`${what}: malformed lineage: ${first.join('; ')}`);
  }
  return parsed.data as ManifestLineage;
}

// ---------------------------------------------------------------------------------------
// Stale tiles

export interface StaleTiles {
  /** Every tile is stale (reasons[0] says why). */
  all: boolean;
  /** What changed, one line per cause, for the run's log and manifest. */
  reasons: string[];
  /** Whether the tile must be rendered again (true for every tile when `all`). */
  isStale(t: TileId): boolean;
}

type Box = [number, number, number, number];

/** Level pixels each changed rectangle is widened by before it is projected: the reach of a cubic kernel (2) and the window's rounding (2), twice. */
const LEVEL_MARGIN_PX = 8;
/**
 * Output pixels a tile's square is widened by, past one tile and the graph's buffer, before
 * the boxes of the changes are asked: a kernel downsampling anisotropic pixels reaches
 * 2·(aspect) output pixels. The tile's own size on every side covers the excess of a window
 * (the bounding box, in the source, of a tile turned by up to 45°) over the tile.
 */
const TILE_MARGIN_PX = 16;

/**
 * Which tiles of `layer` (as loaded now, whose lineage is `after`) differ from those a run
 * with lineage `before` rendered. The answer for each tile is the renderer's own plan of its
 * reads; tiles far from every change are answered without planning. `before` is checked
 * (`parseLineage`): a malformed one is an Error.
 */
export function staleTiles(layer: Layer, before: ManifestLineage, after: ManifestLineage): StaleTiles {
  const was = parseLineage(before, 'the earlier lineage');
  const now = parseLineage(after, 'the current lineage');
  if (now.configHash !== layer.hash || now.version !== layer.version)
    throw new Error(`the current lineage is of version ${now.version}, layer '${layer.name}' is loaded at ${layer.version}: take it with lineageOf(layer)`);
  const everything = (reason: string): StaleTiles => ({ all: true, reasons: [reason], isStale: () => true });
  if (was.configHash !== now.configHash)
    return everything(`the layer's configuration changed (config hash ${was.configHash.slice(0, 12)}, now ${now.configHash.slice(0, 12)}): every tile`);
  const old = new Map(was.sources.map((s) => [s.name, s]));
  const cur = new Map(now.sources.map((s) => [s.name, s]));
  for (const name of cur.keys()) if (!old.has(name)) return everything(`source '${name}' was added: every tile`);
  for (const name of old.keys()) if (!cur.has(name)) return everything(`source '${name}' was removed: every tile`);
  for (const [name, a] of cur) {
    const b = old.get(name)!;
    if (a.kind !== b.kind || a.ref !== b.ref) return everything(`source '${name}' was ${b.kind} '${b.ref}', it is ${a.kind} '${a.ref}': every tile`);
  }

  const auto = percentileSources(layer.config.pipeline);
  const takesPercentiles = (name: string) => auto === null || auto.has(name);
  const groups = readGroups(layer.graph);
  const buffer = layer.graph.buffer();
  const size = layer.config.tileSize;
  const reasons: string[] = [];
  const tests: TileTest[] = [];
  for (const [name, a] of cur) {
    const b = old.get(name)!;
    const change = a.kind === 'mosaic' ? mosaicChange(name, b as MosaicLineage, a, buffer, size) : fileChange(name, b as FileLineage, a, layer, groups);
    if (!change) continue;
    if ('everything' in change) return everything(change.everything);
    if (change.percentiles && takesPercentiles(name))
      return everything(`source '${name}' changed and rescale from: auto takes its range from the whole source: every tile`);
    reasons.push(change.reason);
    if (change.test) tests.push(change.test);
  }
  return {
    all: false,
    reasons,
    isStale(t) {
      if (tests.length === 0) return false;
      const bounds = tileBounds(t);
      const grid: TileGrid = { z: t.z, size, buffer, bounds };
      return tests.some((test) => test(grid));
    },
  };
}

/** Whether a tile (on its grid) is affected by one source's change. */
type TileTest = (grid: TileGrid) => boolean;

interface SourceChange {
  reason: string;
  /** Absent when no tile is affected. */
  test?: TileTest;
  /** The source's own values changed: a range taken from the whole source changes with them. */
  percentiles?: boolean;
}

function fileChange(name: string, b: FileLineage, a: FileLineage, layer: Layer, groups: ReadGroup[]): SourceChange | { everything: string } | null {
  const reads = groups.filter((g) => g.source === name);
  const source = layer.sources.find((s) => s.name === name)!;
  const current = planSourceOf(source.meta);
  if (b.digest && a.digest) {
    const why = structureChange(b.digest, a.digest);
    const changes = why === null ? changedBlocks(b.digest, a.digest) : 'all';
    if (changes !== 'all') {
      const counts = a.digest.levels.map((now, k) => changedPositions(b.digest!.levels[k]!, now));
      const total = counts.reduce((x, y) => x + y, 0);
      if (total === 0)
        return b.version === a.version
          ? null
          : { reason: `source '${name}': rewritten (version ${b.version}, now ${a.version}), every block the same: no tile` };
      const levels = counts.flatMap((n, k) => (n ? [`${n} at level ${k}`] : [])).join(', ');
      if (changes.every((r) => r.length === 0))
        return { reason: `source '${name}': ${total} block(s) changed (${levels}), every cell of them the same: no tile` };
      const area = new ChangedArea(
        current,
        changes,
        a.digest.levels.map((l) => [l.blockWidth, l.blockHeight]),
      );
      return {
        reason: `source '${name}': ${total} block(s) changed (${levels}): the tiles that read them`,
        test: readsChange([area], reads),
        percentiles: true,
      };
    }
    return incomparable(name, `${why}`, b, a, current, reads);
  }
  if (b.version === a.version) return null;
  return incomparable(
    name,
    `its version changed (${b.version}, now ${a.version}) and ${b.digest ? 'this' : 'the earlier'} run has no block digest of it`,
    b,
    a,
    current,
    reads,
  );
}

/** A change that cannot be told block by block: the tiles that read the source, as it was or as it is. */
function incomparable(name: string, why: string, b: FileLineage, a: FileLineage, current: PlanSource, reads: ReadGroup[]): SourceChange {
  const whole = (p: PlanSource) => new ChangedArea(p, 'all', []);
  const areas = [whole(current)];
  if (JSON.stringify(b.grid) !== JSON.stringify(a.grid)) areas.push(whole(planSourceOfGrid(b.grid)));
  return { reason: `source '${name}': ${why}: every tile that reads it`, test: readsChange(areas, reads), percentiles: true };
}

/** Planning is exact, and cheap but not free: a pool of the planner's arrays, recycled from tile to tile. */
const planBuffers = new BufferPool(16 * 1024 * 1024);

/** A tile is affected when one of the source's reads, planned for it, reads a window that meets a changed area at its level. */
function readsChange(areas: ChangedArea[], reads: ReadGroup[]): TileTest {
  return (grid) => {
    const [x0, y0, x1, y1] = grid.bounds;
    const res = (x1 - x0) / grid.size;
    const pad = x1 - x0 + (grid.buffer + TILE_MARGIN_PX) * res;
    const wide: Box = [x0 - pad, y0 - pad, x1 + pad, y1 + pad];
    for (const area of areas) {
      if (!area.near(grid, wide)) continue;
      for (const g of reads) {
        const arena = new TileArena(planBuffers);
        try {
          const plan = planRead(area.plan, grid, g.resampling, arena);
          if (plan && area.meets(plan.level, plan.window)) return true;
        } catch (err) {
          // A plan the renderer refuses (a window past MAX_WINDOW_PIXELS: overviews missing): the
          // tile fails to render either way, and is left to the run to report.
          if (err instanceof TileError) return true;
          throw err;
        } finally {
          arena.release();
        }
      }
    }
    return false;
  };
}

/**
 * The changed pixels of one source grid, per level, and the Web Mercator boxes around them. A
 * tile is planned only when it lies near a box of a level the planner could choose for it.
 */
class ChangedArea {
  private readonly levels: (RectIndex | null)[];
  /** Per level, the boxes of its changes; 'everywhere' when one could not be projected (every tile is planned). */
  private readonly trees: (Flatbush | 'everywhere' | null)[];
  private readonly ratioAt: (x: number, y: number, res: number) => number;

  /** `changes`: per level, the changed rectangles; 'all': every pixel. `blocks`: each level's block size, for grouping rectangles. */
  constructor(
    readonly plan: PlanSource,
    changes: PixelRect[][] | 'all',
    blocks: [number, number][],
  ) {
    const rects: PixelRect[][] = changes === 'all' ? plan.levels.map((l) => [[0, 0, l.width, l.height]]) : changes;
    this.levels = rects.map((r, k) => (r.length ? new RectIndex(r, changes === 'all' ? [plan.levels[k]!.width, plan.levels[k]!.height] : blocks[k]!) : null));
    this.trees = rects.map((list, k) => {
      const boxes: Box[] = [];
      for (const r of coarsen(list)) {
        const box = projectRect(plan, k, r);
        if (box === null) return 'everywhere';
        boxes.push(...box);
      }
      if (!boxes.length) return null;
      const tree = new Flatbush(boxes.length);
      for (const b of boxes) tree.add(b[0], b[1], b[2], b[3]);
      tree.finish();
      return tree;
    });
    this.ratioAt = ratioFunction(plan);
  }

  /** Whether a tile, its square widened to `wide`, lies near a change of a level the planner could read for it; across ±180 too. */
  near(grid: TileGrid, wide: Box): boolean {
    const [lo, hi] = this.levelsFor(grid);
    for (let k = lo; k <= hi; k++) {
      const tree = this.trees[k];
      if (!tree) continue;
      if (tree === 'everywhere') return true;
      const meets = (shift: number) => tree.search(wide[0] + shift, wide[1], wide[2] + shift, wide[3]).length > 0;
      if (meets(0) || (wide[0] < -HALF_WORLD && meets(2 * HALF_WORLD)) || (wide[2] > HALF_WORLD && meets(-2 * HALF_WORLD))) return true;
    }
    return false;
  }

  meets(level: number, window: PixelRect): boolean {
    return this.levels[level]?.meets(window) ?? false;
  }

  /**
   * The levels `planRead` could choose for the tile: `chooseLevel` of the ratio at the tile's
   * centre, give or take RATIO_SLACK (the planner measures it on its interpolated grid, half a
   * pixel away); every level when the centre does not transform.
   */
  private levelsFor(grid: TileGrid): [number, number] {
    const [x0, y0, x1, y1] = grid.bounds;
    const r = this.ratioAt((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / grid.size);
    if (!(r > 0 && Number.isFinite(r))) return [0, this.plan.levels.length - 1];
    return [chooseLevel(this.plan, Math.min(r / RATIO_SLACK, r - 0.5)), chooseLevel(this.plan, Math.max(r * RATIO_SLACK, r + 0.5))];
  }
}

/**
 * How far the ratio the planner chooses a level by may be from the one measured here: its grid
 * interpolation is within 0.125 source pixels (times a margin of 1.5) at each point, so a
 * difference of two points within 0.375; as a factor for ratios well above that.
 */
const RATIO_SLACK = 1.5;

/**
 * Full-resolution source pixels per output pixel at a Web Mercator point (the smaller of the
 * two axes, as `planRead` takes it for the level), from three exact transforms; NaN where one fails.
 */
function ratioFunction(plan: PlanSource): (x: number, y: number, res: number) => number {
  let conv: Converter;
  try {
    conv = proj4('EPSG:3857', plan.proj4);
  } catch {
    return () => NaN;
  }
  const [, b, c, , e, f] = plan.geoTransform;
  const det = b * f - c * e;
  const geographic = /\+proj=(longlat|latlong|lonlat|latlon)\b/.test(plan.proj4);
  const at = (x: number, y: number): number[] => {
    try {
      return conv.forward([x, y]);
    } catch {
      return [NaN, NaN];
    }
  };
  return (x, y, res) => {
    const p = at(x, y);
    const step = (q: number[]) => {
      let dx = q[0]! - p[0]!;
      const dy = q[1]! - p[1]!;
      // A step across the antimeridian: the same meridian, 360 degrees on.
      if (geographic && Math.abs(dx) > 180) dx -= 360 * Math.sign(dx);
      return Math.hypot((f * dx - c * dy) / det, (b * dy - e * dx) / det);
    };
    return Math.min(step(at(x + res, y)), step(at(x, y - res)));
  };
}

/** At most this many boxes a level: past it, neighbouring rectangles are boxed together. */
const MAX_BOXES_PER_LEVEL = 256;

/** Rectangles merged into the boxes of cells twice as large each round, until there are few. */
function coarsen(rects: PixelRect[]): PixelRect[] {
  if (rects.length <= MAX_BOXES_PER_LEVEL) return rects;
  const width = Math.max(...rects.map((r) => r[2] - r[0])),
    height = Math.max(...rects.map((r) => r[3] - r[1]));
  for (let cell = 2; ; cell *= 2) {
    const cells = new Map<string, PixelRect>();
    for (const r of rects) {
      const key = `${Math.floor(r[0] / (width * cell))},${Math.floor(r[1] / (height * cell))}`;
      const c = cells.get(key);
      cells.set(key, c ? [Math.min(c[0], r[0]), Math.min(c[1], r[1]), Math.max(c[2], r[2]), Math.max(c[3], r[3])] : [...r]);
    }
    if (cells.size <= MAX_BOXES_PER_LEVEL) return [...cells.values()];
  }
}

/**
 * The Web Mercator boxes of a rectangle of a level widened by LEVEL_MARGIN_PX (its outline,
 * sampled and projected as src/tiles/footprint.ts does; two boxes across ±180), or null when
 * no point of it projects.
 */
function projectRect(plan: PlanSource, level: number, [x0, y0, x1, y1]: PixelRect): Box[] | null {
  const lv = plan.levels[level]!;
  const [a, b, c, d, e, f] = plan.geoTransform;
  // Full-resolution pixels per level pixel, as planRead scales them.
  const kx = plan.width / lv.width,
    ky = plan.height / lv.height;
  const geoTransform = [a + b * kx * x0 + c * ky * y0, b * kx, c * ky, d + e * kx * x0 + f * ky * y0, e * kx, f * ky];
  const ring = outline({ geoTransform, width: x1 - x0, height: y1 - y0, crs: { proj4: plan.proj4 } }, LEVEL_MARGIN_PX);
  if (!ring) return null;
  return splitAtAntimeridian(ring).map((part) => mercatorBox(part));
}

/** Rectangles of one level, bucketed by cells of (about) a block: which of them a window meets. */
class RectIndex {
  private readonly cells = new Map<number, PixelRect[]>();
  private readonly cellW: number;
  private readonly cellH: number;

  constructor(rects: readonly PixelRect[], [blockW, blockH]: [number, number]) {
    // Strips of a few rows make thin cells: at least 256 pixels a side.
    this.cellW = Math.max(256, blockW);
    this.cellH = Math.max(256, blockH);
    for (const r of rects) {
      for (let cy = Math.floor(r[1] / this.cellH); cy * this.cellH < r[3]; cy++)
        for (let cx = Math.floor(r[0] / this.cellW); cx * this.cellW < r[2]; cx++) {
          const key = cy * 0x200000 + cx;
          const list = this.cells.get(key);
          if (list) list.push(r);
          else this.cells.set(key, [r]);
        }
    }
  }

  /** Whether the window [x0, y0, x1, y1) shares a pixel with a rectangle. */
  meets([x0, y0, x1, y1]: PixelRect): boolean {
    for (let cy = Math.floor(y0 / this.cellH); cy * this.cellH < y1; cy++)
      for (let cx = Math.floor(x0 / this.cellW); cx * this.cellW < x1; cx++) {
        for (const r of this.cells.get(cy * 0x200000 + cx) ?? []) if (x0 < r[2] && r[0] < x1 && y0 < r[3] && r[1] < y1) return true;
      }
    return false;
  }
}

/** A mosaic's members added, removed or replaced: the tiles that look any of them up, as it was or as it is. */
function mosaicChange(name: string, b: MosaicLineage, a: MosaicLineage, buffer: number, size: number): SourceChange | { everything: string } | null {
  if (b.version === a.version && b.shared === a.shared) return null;
  if (b.shared !== a.shared) return { everything: `mosaic '${name}': its first member, which describes the bands of all, changed them: every tile` };
  const was = new Map(b.members.map((m) => [m.location, m]));
  const is = new Map(a.members.map((m) => [m.location, m]));
  const boxes: Box[] = [];
  const add = (bbox: number[]) => {
    for (let k = 0; k + 3 < bbox.length; k += 4) boxes.push([bbox[k]!, bbox[k + 1]!, bbox[k + 2]!, bbox[k + 3]!]);
  };
  let added = 0,
    removed = 0,
    replaced = 0;
  for (const [location, m] of is) {
    const old = was.get(location);
    if (!old) {
      added++;
      add(m.bbox);
    } else if (old.version !== m.version) {
      replaced++;
      add(old.bbox);
      add(m.bbox);
    }
  }
  for (const [location, m] of was) {
    if (!is.has(location)) {
      removed++;
      add(m.bbox);
    }
  }
  // The first member gives the range of rescale from: auto (the render threads open it as the source).
  const firstChanged = b.members[0]!.location !== a.members[0]!.location || b.members[0]!.version !== a.members[0]!.version;
  const reason = `mosaic '${name}': ${added} member(s) added, ${removed} removed, ${replaced} replaced: the tiles that look them up`;
  // The same members in another order (a STAC collection reordered): which one is first where they overlap changed.
  if (boxes.length === 0) return { everything: `mosaic '${name}': its members are listed in another order: every tile` };
  const tree = new Flatbush(boxes.length);
  for (const box of boxes) tree.add(box[0], box[1], box[2], box[3]);
  tree.finish();
  return {
    reason,
    percentiles: firstChanged,
    test: (grid) => {
      // The tile's square as MosaicIndex.forTile widens it for its lookup.
      const [x0, y0, x1, y1] = grid.bounds;
      const pad = ((buffer + MEMBER_MARGIN_PX) * (x1 - x0)) / size;
      return tree.search(x0 - pad, y0 - pad, x1 + pad, y1 + pad).length > 0;
    },
  };
}

/**
 * The sources whose percentiles a `rescale: {from: auto}` takes (src/ops/builtin/rescale.ts:
 * the read just before it), from the canonical pipeline; null when one cannot be told (then
 * every source counts).
 */
function percentileSources(pipeline: unknown): Set<string> | null {
  const out = new Set<string>();
  const record = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined);
  const sourceOf = (read: unknown) => {
    const s = record(read)?.source;
    return typeof s === 'string' ? s : undefined;
  };
  if (Array.isArray(pipeline)) {
    for (let i = 0; i < pipeline.length; i++) {
      if (record(record(pipeline[i])?.rescale)?.from !== 'auto') continue;
      const s = sourceOf(record(pipeline[i - 1])?.read);
      if (s === undefined) return null;
      out.add(s);
    }
    return out;
  }
  const nodes = record(record(pipeline)?.nodes) ?? {};
  for (const node of Object.values(nodes).map(record)) {
    if (node?.op !== 'rescale' || node.from !== 'auto') continue;
    const input = Array.isArray(node.in) ? record(nodes[String(node.in[0])]) : undefined;
    const s = input?.op === 'read' ? sourceOf(input) : undefined;
    if (s === undefined) return null;
    out.add(s);
  }
  return out;
}
