import { heapAlloc, type Alloc } from '../alloc.js';
import type { TileGrid } from '../tiles/plan.js';
import type { Operator } from './operator.js';

/**
 * What flows along the edges of an operator graph: either numeric bands with a validity
 * mask, or finished RGBA. Both cover the tile plus `buffer` pixels on every side, so that
 * neighbourhood operators (hillshade) see across the tile edge.
 */

export interface BandRaster {
  kind: 'bands';
  /** Pixels per side including the buffer. */
  width: number;
  height: number;
  /** One Float32Array of width*height per band. */
  bands: Float32Array[];
  /** 1 valid, 0 nodata or masked; width*height. */
  mask: Uint8Array;
  /** The source's colour table (256 RGBA entries) when the data are palette indices. */
  palette?: Uint8Array;
}

export interface RgbaRaster {
  kind: 'rgba';
  width: number;
  height: number;
  /** Straight (not premultiplied) RGBA, 4 bytes a pixel. */
  data: Uint8Array;
  /**
   * Set by colormap: each pixel's entry of its colour table (0 where it drew nothing, k for
   * `lut[k - 1]`), so that the PNG writer can index the tile without hashing its colours
   * (src/render/png.ts). An operator that draws new RGBA leaves it out; none changes `data` in place.
   * `ordered`: the table runs along the values (a ramp), so that neighbouring pixels mostly
   * get neighbouring entries; not so for a file's own palette, whose entries are classes.
   */
  codes?: TableCodes;
}

/** A colour-mapped tile's entries (see RgbaRaster.codes). */
export interface TableCodes {
  index: Uint16Array;
  lut: Uint32Array;
  ordered: boolean;
}

export type Raster = BandRaster | RgbaRaster;

/** The tile being rendered, as every operator sees it. */
export interface TileContext extends TileGrid {
  x: number;
  y: number;
  /** Quality checks with `on_fail: warn` add here; the server logs and counts them. */
  warnings?: { check: string; message: string }[];
  /** Where the tile's rasters come from: a render thread recycles them between tiles. */
  alloc?: Alloc;
  /**
   * What each `read` of the graph gives for this tile (null: the tile misses the source),
   * fetched before any operator runs (src/render/renderer.ts).
   */
  reads?: ReadonlyMap<Operator, BandRaster | null>;
  /**
   * Sees what every step of the graph produces, in order (`/point`, `/statistics`): a graph
   * node by its name, a list's step as `index:op`.
   */
  tap?: (name: string, op: Operator, result: Raster | null) => void;
}

export const allocOf = (ctx?: TileContext): Alloc => ctx?.alloc ?? heapAlloc;

/** A copy of a mask from `alloc`. */
export function copyMask(alloc: Alloc, mask: Uint8Array): Uint8Array {
  const out = alloc.bytes(mask.length);
  out.set(mask);
  return out;
}

/** What an operator produces, checked when a graph is built. */
export interface OutputShape {
  kind: 'bands' | 'rgba';
  /** Number of bands for `bands`; 4 for `rgba`. */
  bands: number;
}

export function bandRaster(width: number, height: number, count: number, mask?: Uint8Array, alloc: Alloc = heapAlloc): BandRaster {
  const bands: Float32Array[] = [];
  for (let i = 0; i < count; i++) bands.push(alloc.float32(width * height));
  return { kind: 'bands', width, height, bands, mask: mask ?? alloc.bytes(width * height).fill(1) };
}

/**
 * The graph's output drawn as RGBA for the tile (buffer cropped): four bands as they are,
 * three as RGB, one as grey from [0, 1] (clamped); masked pixels transparent. Returns null
 * when nothing is drawn, so the server can answer 204.
 */
export function toTileRgba(r: Raster, buffer: number, size: number, alloc: Alloc = heapAlloc): Uint8Array | null {
  if (r.kind === 'rgba' && buffer === 0 && r.width === size) {
    // Already the tile: hand it on without a copy.
    const words = new Uint32Array(r.data.buffer, r.data.byteOffset, size * size);
    for (let i = 0; i < words.length; i++) if (words[i]! >>> 24) return r.data;
    return null;
  }
  const out = alloc.bytes(size * size * 4);
  let any = 0;
  if (r.kind === 'rgba') {
    for (let y = 0; y < size; y++) {
      const from = ((y + buffer) * r.width + buffer) * 4;
      out.set(r.data.subarray(from, from + size * 4), y * size * 4);
    }
    for (let i = 3; i < out.length; i += 4) any |= out[i]!;
    return any ? out : null;
  }
  const nb = r.bands.length;
  if (nb !== 1 && nb !== 3 && nb !== 4) throw new Error(`the graph's output has ${nb} bands; expected 1, 3 or 4 (or RGBA from colormap/rgb)`);
  const [b0, b1, b2, b3] = r.bands as [Float32Array, Float32Array?, Float32Array?, Float32Array?];
  const byte = (v: number) => (v !== v ? 0 : v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255));
  for (let y = 0; y < size; y++) {
    let i = (y + buffer) * r.width + buffer;
    let o = y * size * 4;
    for (let x = 0; x < size; x++, i++, o += 4) {
      if (!r.mask[i]) continue;
      if (nb === 1) {
        const g = byte(b0[i]!);
        out[o] = g;
        out[o + 1] = g;
        out[o + 2] = g;
        out[o + 3] = 255;
      } else {
        // Three or four bands are taken as 8-bit values already (0..255), as GDAL draws them.
        out[o] = clampByte(b0[i]!);
        out[o + 1] = clampByte(b1![i]!);
        out[o + 2] = clampByte(b2![i]!);
        out[o + 3] = nb === 4 ? clampByte(b3![i]!) : 255;
      }
      any |= out[o + 3]!;
    }
  }
  return any ? out : null;
}

function clampByte(v: number): number {
  return v !== v ? 0 : v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}
