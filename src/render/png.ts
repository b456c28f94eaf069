import { crc32, deflateSync } from 'node:zlib';
import { deflateRuns, deflateZlib, indexRows, kernelsInUse, rgbUpRows } from '../kernels.js';
import type { TableCodes } from '../ops/raster.js';
import { PNG_LEVEL } from './encode.js';
import { deflateRunsReference } from './runs.js';

/**
 * zlib level of indexed PNGs, chosen by `npm run bench`'s encoder table (see bench/encode.ts):
 * an index byte a pixel is a quarter of RGBA's input, so a higher level than sharp's costs
 * less time than sharp's level 4 on RGBA does. libdeflate (src/kernels.ts) writes the same
 * pixels at this level, faster and smaller, unless KERNELS=reference.
 */
export const INDEXED_PNG_LEVEL = 4;

/**
 * How indexed PNGs of a ramp's entries, filtered by the row above (indexedPngOfCodes), are
 * compressed: `runs`, src/render/runs.ts (its small differences and runs of one value need no
 * search for longer matches: 10% fewer bytes than libdeflate's level 1 on the bench's DEM
 * tiles, 0.5% more on its NDVI tiles, the deflate in 83% and 53% of the time; `npm run
 * bench`, step `encode`), or a zlib level.
 */
export const ORDERED_PNG_LEVEL = 'runs';

/**
 * zlib level of opaque tiles of more than 256 colours, written as RGB less the row above
 * (rgbaPng). On the shipped shaded relief's tiles: 54.5 KB and 0.85 ms a tile at level 1, 53.1
 * KB and 1.43 ms at level 2, where the unfiltered RGBA took 88.5 KB and 2.26 ms at level 4.
 */
export const OPAQUE_PNG_LEVEL = 1;

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
const HASH_BITS = 9;

/**
 * The tile as an 8-bit indexed PNG (colour type 3) when it holds at most 256 distinct RGBA
 * values, else null. It is lossless: every decoder gives back the same RGBA as the straight
 * RGBA PNG would, because each distinct 32-bit pixel gets its own palette entry. Colour-mapped
 * tiles nearly always qualify (one lookup table, a few hundred entries at most, and a tile
 * spans part of it), and their PNG input shrinks to a byte a pixel.
 *
 * A tRNS chunk is always written, so decoders expand the image to RGBA as they did before.
 */
export function indexedPng(rgba: Uint8Array, size: number, level = INDEXED_PNG_LEVEL): Uint8Array | null {
  const n = size * size;
  if (rgba.length !== n * 4) throw new Error(`indexedPng: expected ${n * 4} bytes for ${size}x${size} RGBA, got ${rgba.length}`);
  const words = rgba.byteOffset % 4 === 0 ? new Uint32Array(rgba.buffer, rgba.byteOffset, n) : new Uint32Array(rgba.slice().buffer);
  const palette = new Palette();
  // Scanlines: a filter byte (0, none: the PNG spec's advice for palette images) and the indices.
  const rows = new Uint8Array(n + size);
  let prev = 0,
    prevIndex = -1;
  for (let y = 0, i = 0, o = 0; y < size; y++) {
    rows[o++] = NONE;
    for (let x = 0; x < size; x++, i++) {
      const w = words[i]!;
      if (w !== prev || prevIndex < 0) {
        prevIndex = palette.indexOf(w);
        if (prevIndex < 0) return null;
        prev = w;
      }
      rows[o++] = prevIndex;
    }
  }
  // Entries with alpha below 255 go first, so that tRNS stops at the last of them.
  const { colours, count } = palette;
  const order = new Uint8Array(count);
  const remap = new Uint8Array(256);
  let translucent = 0;
  for (let c = 0; c < count; c++) if (colours[c]! >>> 24 !== 255) order[translucent++] = c;
  for (let c = 0, k = translucent; c < count; c++) if (colours[c]! >>> 24 === 255) order[k++] = c;
  for (let k = 0; k < count; k++) remap[order[k]!] = k;
  let identity = true;
  for (let k = 0; k < count && identity; k++) identity = order[k] === k;
  if (!identity) for (let o = 0; o < rows.length; o += size + 1) for (let x = o + 1; x <= o + size; x++) rows[x] = remap[rows[x]!]!;
  return indexedFile(rows, identity ? colours : Uint32Array.from(order, (c) => colours[c]!), count, size, level);
}

/**
 * The tile as an indexed PNG from a colour map's entries instead of its RGBA, or null beyond
 * 256 colours (as indexedPng): `index` holds each pixel's entry (0 where nothing is drawn, k
 * for `lut[k - 1]`), as colormap records them beside the RGBA it draws. The same pixels as
 * indexedPng gives, with the palette in the table's order. When the table runs along the
 * values (`ordered`: a ramp), neighbouring pixels get neighbouring indices, and each row is
 * written less the row above it (PNG filter 2, Up): small differences and runs of one value,
 * which compress to 10-26% fewer bytes than the indices themselves did at level 4, in a third
 * of the time (the bench's DEM and NDVI tiles, step `encode`), compressed as ORDERED_PNG_LEVEL
 * says when `level` is not given.
 * A palette of classes is written as indexedPng writes it.
 */
export function indexedPngOfCodes(codes: TableCodes, size: number, level?: number | 'runs'): Uint8Array | null {
  const { index, lut, ordered } = codes;
  const n = size * size;
  if (index.length !== n) throw new Error(`indexedPngOfCodes: expected ${n} codes for ${size}x${size}, got ${index.length}`);
  const palette = new Palette();
  const indices = (used: Uint8Array, highest: number) => paletteEntries(palette, lut, used, highest);
  const filter = ordered ? UP : NONE;
  // Undefined when the kernel did not run; null when the palette gave up.
  const fast = indexRows(index, size, filter, indices);
  const rows = fast === undefined ? indexRowsReference(index, size, filter, indices) : fast;
  return rows && indexedFile(rows, palette.colours, palette.count, size, level ?? (ordered ? ORDERED_PNG_LEVEL : INDEXED_PNG_LEVEL));
}

/**
 * Given the entries of `lut` a tile uses (and 0, nothing drawn): their colours added to
 * `palette` in table order, those with alpha below 255 first (see indexedFile), and each
 * entry's index into it; null when the palette gave up. A function of its own, not a closure
 * made for each tile, so that V8 keeps its optimised code (see src/tiles/plan.ts SourcePixels).
 */
function paletteEntries(palette: Palette, lut: Uint32Array, used: Uint8Array, highest: number): Uint8Array | null {
  // Undefined past the table: refused, never drawn as another colour.
  if (highest > lut.length) throw new Error(`indexedPngOfCodes: code ${highest} past the ${lut.length} entries of the table`);
  const entry = new Uint8Array(highest + 1);
  for (const opaque of [false, true])
    for (let c = 0; c <= highest; c++) {
      if (!used[c]) continue;
      const w = c === 0 ? 0 : lut[c - 1]!;
      if ((w >>> 24 === 255) !== opaque) continue;
      const k = palette.indexOf(w);
      if (k < 0) return null;
      entry[c] = k;
    }
  return entry;
}

/** The JavaScript twin of src/kernels.ts `indexRows`, and the reference it is tested against. */
function indexRowsReference(
  codes: Uint16Array,
  size: number,
  filter: 0 | 2,
  palette: (used: Uint8Array, highest: number) => Uint8Array | null,
): Uint8Array | null {
  const n = size * size;
  const used = new Uint8Array(65536);
  let highest = 0;
  for (let i = 0; i < n; i++) {
    const c = codes[i]!;
    if (c > highest) highest = c;
    used[c] = 1;
  }
  const entry = palette(used.subarray(0, highest + 1), highest);
  if (!entry) return null;
  // Scanlines: a filter byte and the indices, each less the one above it for Up (the first row's less 0).
  const rows = new Uint8Array(n + size);
  const above = new Uint8Array(size);
  for (let y = 0, i = 0, o = 0; y < size; y++) {
    rows[o++] = filter;
    if (filter === UP)
      for (let x = 0; x < size; x++, i++) {
        const k = entry[codes[i]!]!;
        rows[o++] = k - above[x]!;
        above[x] = k;
      }
    else for (let x = 0; x < size; x++, i++) rows[o++] = entry[codes[i]!]!;
  }
  return rows;
}

/** PNG filter types of a scanline. */
const NONE = 0 as const;
const UP = 2 as const;

const HASH_SLOTS = 1 << HASH_BITS;

/** Distinct 32-bit colours in first-seen order, at most 256: an open-addressing table of 512 slots, at most half full. */
class Palette {
  private readonly keys = new Uint32Array(HASH_SLOTS);
  private readonly slots = new Int16Array(HASH_SLOTS).fill(-1);
  readonly colours = new Uint32Array(256);
  count = 0;

  /** The colour's entry, a new one the first time; -1 once 256 are taken. */
  indexOf(w: number): number {
    let h = Math.imul(w, 0x9e3779b1) >>> (32 - HASH_BITS);
    for (;;) {
      const s = this.slots[h]!;
      if (s < 0) {
        if (this.count === 256) return -1;
        this.keys[h] = w;
        this.slots[h] = this.count;
        this.colours[this.count] = w;
        return this.count++;
      }
      if (this.keys[h] === w) return s;
      h = (h + 1) & (HASH_SLOTS - 1);
    }
  }
}

/**
 * The PNG of scanlines of palette indices and their palette: `colours[0..count)`, those with
 * alpha below 255 first, so that tRNS stops at the last of them.
 */
function indexedFile(rows: Uint8Array, colours: Uint32Array, count: number, size: number, level: number | 'runs'): Uint8Array {
  let translucent = 0;
  while (translucent < count && colours[translucent]! >>> 24 !== 255) translucent++;
  const plte = new Uint8Array(count * 3);
  const trns = new Uint8Array(Math.max(1, translucent));
  trns[0] = 255;
  for (let k = 0; k < count; k++) {
    const w = colours[k]!;
    plte[k * 3] = w & 0xff;
    plte[k * 3 + 1] = (w >>> 8) & 0xff;
    plte[k * 3 + 2] = (w >>> 16) & 0xff;
    if (k < translucent) trns[k] = w >>> 24;
  }
  const idat = level === 'runs' ? (deflateRuns(rows) ?? deflateRunsReference(rows)) : (deflateZlib(rows, level) ?? deflateSync(rows, { level }));
  return pngFile([
    ['IHDR', header(size, PALETTE)],
    ['PLTE', plte],
    ['tRNS', trns],
    ['IDAT', idat],
    ['IEND', new Uint8Array(0)],
  ]);
}

/**
 * The tile as a PNG for tiles of more than 256 colours, compressed by libdeflate in the render
 * thread; undefined with KERNELS=reference, when the server's encoder (sharp) writes it.
 * - Opaque (every alpha 255: a hillshade blended over a colour relief, an RGB image): 8-bit RGB
 *   (colour type 2), each row less the row above (filter 2, Up) at OPAQUE_PNG_LEVEL: three
 *   bytes a pixel instead of four, whose differences compress to fewer bytes than the RGBA
 *   did at level 4 (2-38% fewer on the bench's DEM and the shipped shaded relief), in less
 *   than half the time.
 * - Otherwise 8-bit RGBA (colour type 6), every row unfiltered (as the server's sharp encoder
 *   writes them, `adaptiveFiltering: false`) at the server's PNG level; 66-87% of sharp's CPU
 *   time for the same tile (`npm run bench`, step `encode`).
 */
export function rgbaPng(rgba: Uint8Array, size: number, level = PNG_LEVEL): Uint8Array | undefined {
  const stride = size * 4;
  if (rgba.length !== stride * size) throw new Error(`rgbaPng: expected ${stride * size} bytes for ${size}x${size} RGBA, got ${rgba.length}`);
  if (kernelsInUse().inflate !== 'libdeflate') return undefined;
  const fast = rgbUpRows(rgba, size);
  const rgb = fast === undefined ? rgbUpRowsReference(rgba, size) : fast;
  if (rgb)
    return pngFile([
      ['IHDR', header(size, RGB)],
      ['IDAT', deflateZlib(rgb, OPAQUE_PNG_LEVEL)!],
      ['IEND', new Uint8Array(0)],
    ]);
  // Scanlines: a filter byte (0, none) and the row's pixels.
  const rows = new Uint8Array((stride + 1) * size);
  for (let y = 0; y < size; y++) rows.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return pngFile([
    ['IHDR', header(size, RGBA)],
    ['IDAT', deflateZlib(rows, level)!],
    ['IEND', new Uint8Array(0)],
  ]);
}

/** The JavaScript twin of src/kernels.ts `rgbUpRows`, and the reference it is tested against. */
function rgbUpRowsReference(rgba: Uint8Array, size: number): Uint8Array | null {
  const stride = size * 3 + 1;
  const rows = new Uint8Array(stride * size);
  const above = size * 4;
  for (let y = 0, i = 0; y < size; y++) {
    let o = y * stride;
    rows[o++] = UP;
    for (let x = 0; x < size; x++, i += 4) {
      if (rgba[i + 3] !== 255) return null;
      for (let c = 0; c < 3; c++) rows[o++] = rgba[i + c]! - (y > 0 ? rgba[i + c - above]! : 0);
    }
  }
  return rows;
}

/** PNG colour types. */
const RGB = 2;
const PALETTE = 3;
const RGBA = 6;

/** IHDR of a square 8-bit image of a colour type (deflate, adaptive filtering, no interlace: all zeros). */
function header(size: number, colourType: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, size);
  view.setUint32(4, size);
  ihdr[8] = 8; // bit depth
  ihdr[9] = colourType;
  return ihdr;
}

/** The signature and the chunks, each with its length and CRC, in one fresh buffer (so it can be transferred). */
function pngFile(chunks: [string, Uint8Array][]): Uint8Array {
  const total = SIGNATURE.length + chunks.reduce((sum, [, data]) => sum + 12 + data.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(SIGNATURE);
  let o = SIGNATURE.length;
  for (const [type, data] of chunks) {
    view.setUint32(o, data.length);
    for (let k = 0; k < 4; k++) out[o + 4 + k] = type.charCodeAt(k);
    out.set(data, o + 8);
    view.setUint32(o + 8 + data.length, crc32(out.subarray(o + 4, o + 8 + data.length)));
    o += 12 + data.length;
  }
  return out;
}
