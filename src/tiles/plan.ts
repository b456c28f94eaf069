/**
 * Tile planning: which overview of a source to read, which window of it, and where in that
 * window each output pixel centre falls. Pure arithmetic on the source's metadata (no I/O,
 * no pixels), so it is unit-tested with numbers alone.
 */
import proj4 from 'proj4';
import { heapAlloc, type Alloc } from '../alloc.js';
import { SourceError } from '../errors.js';
import type { Resampling } from '../sources/sample.js';

/** The output grid of one tile: where it lies, and how many pixels it has. */
export interface TileGrid {
  /** The zoom, for messages. */
  z: number;
  /** Output pixels per side, without the buffer. */
  size: number;
  /** Extra pixels on each side that the layer's graph needs (hillshade: 1). */
  buffer: number;
  /** Web Mercator bounds of the tile itself (without buffer): [minX, minY, maxX, maxY]. */
  bounds: readonly [number, number, number, number];
}

/** The parts of a source's metadata that planning needs. */
export interface PlanSource {
  width: number;
  height: number;
  /** GDAL order, pixel-is-area: [originX, pixelWidth, rowRotation, originY, columnRotation, pixelHeight]. */
  geoTransform: readonly [number, number, number, number, number, number];
  /** proj4 definition of the source CRS. */
  proj4: string;
  /** Sizes of the pyramid, full resolution first. */
  levels: readonly { width: number; height: number }[];
}

export interface ReadPlan {
  /** Pyramid level to read (0 is full resolution). */
  level: number;
  /** Window of that level to read, in its pixels: [x0, y0, x1, y1), inside the level. */
  window: [number, number, number, number];
  /** Output pixels per side, buffer included. */
  width: number;
  /**
   * For each output pixel (row-major), the position of its centre in the window, in level
   * pixels (pixel i spans [i, i+1)). NaN where the point cannot be transformed. Made on
   * first use: the separable path never needs them.
   */
  coords(): { u: Float32Array; v: Float32Array };
  /** Level pixels per output pixel along x and y: above 1 the read is downsampling. */
  scaleX: number;
  scaleY: number;
  /**
   * Set when u depends on the column alone and v on the row alone (a north-up source in Web
   * Mercator): u = u0 + i * du, v = v0 + j * dv. Resampling is then separable.
   */
  separable?: { u0: number; du: number; v0: number; dv: number };
}

/**
 * GDAL's approximate transformer default (gdalwarp -et 0.125): interpolating the transform
 * on a grid is accepted when it stays within this many source pixels of the exact one.
 */
const MAX_GRID_ERROR = 0.125;

/** Largest window a plan may ask for, in level pixels: reading more means missing overviews. */
export const MAX_WINDOW_PIXELS = 4096 * 4096;

const MERCATOR = proj4.defs('EPSG:3857')
  ? 'EPSG:3857'
  : '+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +no_defs';

type ToSource = (mx: number, my: number, out: Float64Array) => void;

const transformers = new Map<string, ToSource>();

function isWebMercator(def: string): boolean {
  return (
    /\+proj=merc\b/.test(def) &&
    /\+a=6378137\b/.test(def) &&
    /\+b=6378137\b/.test(def) &&
    !/\+lat_ts=(?!0\b)/.test(def) &&
    !/\+(x|y)_0=(?!0\b)/.test(def) &&
    !/\+lon_0=(?!0\b)/.test(def)
  );
}

/** Web Mercator metres to source CRS coordinates, built once per CRS. */
function toSourceCrs(def: string): ToSource {
  let t = transformers.get(def);
  if (!t) {
    if (isWebMercator(def)) {
      t = (mx, my, out) => {
        out[0] = mx;
        out[1] = my;
      };
    } else {
      const conv = proj4(MERCATOR, def);
      t = (mx, my, out) => {
        let p: number[];
        try {
          p = conv.forward([mx, my]);
        } catch {
          out[0] = NaN;
          out[1] = NaN;
          return;
        }
        out[0] = Number.isFinite(p[0]) ? p[0]! : NaN;
        out[1] = Number.isFinite(p[1]) ? p[1]! : NaN;
      };
    }
    transformers.set(def, t);
  }
  return t;
}

/** Affine inverse of a GDAL geotransform: CRS coordinates to full-resolution pixel coordinates. */
function invert(gt: PlanSource['geoTransform']): (x: number, y: number, out: Float64Array) => void {
  const [a, b, c, d, e, f] = gt;
  const det = b * f - c * e;
  return (x, y, out) => {
    const dx = x - a;
    const dy = y - d;
    out[0] = (f * dx - c * dy) / det;
    out[1] = (b * dy - e * dx) / det;
  };
}

/**
 * Plans the read of one source for one tile, or returns null when the tile (with its
 * buffer) does not touch the source.
 */
export function planRead(src: PlanSource, tile: TileGrid, resampling: Resampling, alloc: Alloc = heapAlloc): ReadPlan | null {
  const W = tile.size + 2 * tile.buffer;
  const res = (tile.bounds[2] - tile.bounds[0]) / tile.size;
  const ox = tile.bounds[0] - tile.buffer * res;
  const oy = tile.bounds[3] + tile.buffer * res;
  const toCrs = toSourceCrs(src.proj4);
  const toPixel = invert(src.geoTransform);
  const tmp = new Float64Array(2);

  // Full-resolution source pixel coordinates of output pixel centre (i, j).
  const exact = (i: number, j: number, out: Float64Array) => {
    toCrs(ox + (i + 0.5) * res, oy - (j + 0.5) * res, tmp);
    if (tmp[0] !== tmp[0]) {
      out[0] = NaN;
      out[1] = NaN;
      return;
    }
    toPixel(tmp[0]!, tmp[1]!, out);
  };

  const affine = isWebMercator(src.proj4);
  if (affine) return planAffine(src, tile, W, exact, resampling, alloc);
  // The tile's arrays (recycled between tiles in a render thread): the plan lives as long.
  const fu = alloc.float64(W * W);
  const fv = alloc.float64(W * W);
  fillCoordinates(W, exact, fu, fv);

  // Level choice and kernel scale from the local Jacobian at the tile centre.
  const c = Math.floor(W / 2);
  const at = (i: number, j: number) => j * W + i;
  const dudi = Math.hypot(fu[at(c, c)]! - fu[at(c - 1, c)]!, fv[at(c, c)]! - fv[at(c - 1, c)]!);
  const dvdj = Math.hypot(fu[at(c, c)]! - fu[at(c, c - 1)]!, fv[at(c, c)]! - fv[at(c, c - 1)]!);
  const ratio = Number.isFinite(dudi) && Number.isFinite(dvdj) ? Math.min(dudi, dvdj) : estimateRatio(fu, fv, W);
  const level = chooseLevel(src, ratio);
  const lv = src.levels[level]!;
  const kx = lv.width / src.width;
  const ky = lv.height / src.height;

  let minU = Infinity,
    minV = Infinity,
    maxU = -Infinity,
    maxV = -Infinity;
  for (let k = 0; k < fu.length; k++) {
    const u = fu[k]! * kx;
    const v = fv[k]! * ky;
    if (u !== u || v !== v) continue;
    fu[k] = u;
    fv[k] = v;
    if (u < minU) minU = u;
    if (u > maxU) maxU = u;
    if (v < minV) minV = v;
    if (v > maxV) maxV = v;
  }
  if (minU === Infinity) return null;
  const scaleX = Number.isFinite(dudi) ? dudi * kx : ratio * kx;
  const scaleY = Number.isFinite(dvdj) ? dvdj * ky : ratio * ky;
  const window = windowFor(minU, minV, maxU, maxV, lv, resampling, scaleX, scaleY, W, tile, level);
  if (!window) return null;
  const [x0, y0] = window;
  const u = alloc.float32(W * W);
  const v = alloc.float32(W * W);
  for (let k = 0; k < u.length; k++) {
    u[k] = fu[k]! - x0;
    v[k] = fv[k]! - y0;
  }
  return { level, window, width: W, coords: () => ({ u, v }), scaleX, scaleY };
}

/** A source in Web Mercator: source pixels are an affine function of output pixels. */
function planAffine(
  src: PlanSource,
  tile: TileGrid,
  W: number,
  exact: (i: number, j: number, out: Float64Array) => void,
  resampling: Resampling,
  alloc: Alloc,
): ReadPlan | null {
  const p = new Float64Array(2);
  exact(0, 0, p);
  const u00 = p[0]!,
    v00 = p[1]!;
  exact(1, 0, p);
  const dui = p[0]! - u00,
    dvi = p[1]! - v00;
  exact(0, 1, p);
  const duj = p[0]! - u00,
    dvj = p[1]! - v00;
  const scaleFull = [Math.hypot(dui, dvi), Math.hypot(duj, dvj)] as const;
  const level = chooseLevel(src, Math.min(scaleFull[0], scaleFull[1]));
  const lv = src.levels[level]!;
  const kx = lv.width / src.width;
  const ky = lv.height / src.height;
  // In level pixels: u = a + i * b + j * c, v = d + i * e + j * f.
  const a = u00 * kx,
    b = dui * kx,
    c = duj * kx,
    d = v00 * ky,
    e = dvi * ky,
    f = dvj * ky;
  const us = [a, a + b * (W - 1), a + c * (W - 1), a + (b + c) * (W - 1)];
  const vs = [d, d + e * (W - 1), d + f * (W - 1), d + (e + f) * (W - 1)];
  const minU = Math.min(...us),
    maxU = Math.max(...us),
    minV = Math.min(...vs),
    maxV = Math.max(...vs);
  const scaleX = scaleFull[0] * kx,
    scaleY = scaleFull[1] * ky;
  const window = windowFor(minU, minV, maxU, maxV, lv, resampling, scaleX, scaleY, W, tile, level);
  if (!window) return null;
  const [x0, y0] = window;
  let coords: { u: Float32Array; v: Float32Array } | undefined;
  const plan: ReadPlan = {
    level,
    window,
    width: W,
    scaleX,
    scaleY,
    coords: () => {
      if (!coords) {
        const u = alloc.float32(W * W),
          v = alloc.float32(W * W);
        for (let j = 0, k = 0; j < W; j++) {
          for (let i = 0; i < W; i++, k++) {
            u[k] = a + i * b + j * c - x0;
            v[k] = d + i * e + j * f - y0;
          }
        }
        coords = { u, v };
      }
      return coords;
    },
  };
  if (c === 0 && e === 0) plan.separable = { u0: a - x0, du: b, v0: d - y0, dv: f };
  return plan;
}

/** The window of a level that the kernel reads around the given centres, or null if they miss the level. */
function windowFor(
  minU: number,
  minV: number,
  maxU: number,
  maxV: number,
  lv: { width: number; height: number },
  resampling: Resampling,
  scaleX: number,
  scaleY: number,
  W: number,
  tile: TileGrid,
  level: number,
): ReadPlan['window'] | null {
  const radius = resampling === 'nearest' ? 0 : (resampling === 'bilinear' ? 1 : 2) * Math.max(1, scaleX, scaleY);
  const x0 = Math.max(0, Math.floor(minU - radius - 1));
  const y0 = Math.max(0, Math.floor(minV - radius - 1));
  const x1 = Math.min(lv.width, Math.ceil(maxU + radius + 1));
  const y1 = Math.min(lv.height, Math.ceil(maxV + radius + 1));
  // No output pixel centre falls on the raster: nothing to draw.
  if (maxU < 0 || maxV < 0 || minU >= lv.width || minV >= lv.height || x1 <= x0 || y1 <= y0) return null;
  if ((x1 - x0) * (y1 - y0) > MAX_WINDOW_PIXELS) {
    throw new SourceError(
      `a ${W} px tile at zoom ${tile.z} would read ${x1 - x0}x${y1 - y0} pixels of the source's level ${level}: add overviews to the COG (gdaladdo, or gdal_translate -of COG)`,
    );
  }
  return [x0, y0, x1, y1];
}

/**
 * gdalwarp's overview choice (-ovr AUTO): the most reduced level whose reduction factor does
 * not exceed the ratio of output to source pixel size, or one within 0.1 of it.
 */
export function chooseLevel(src: PlanSource, ratio: number): number {
  let chosen = 0;
  for (let k = 1; k < src.levels.length; k++) {
    const factor = src.width / src.levels[k]!.width;
    if (factor <= ratio || Math.abs(factor - ratio) < 0.1) chosen = k;
    else break;
  }
  return chosen;
}

function estimateRatio(fu: Float64Array, fv: Float64Array, W: number): number {
  // The centre did not transform: use the extent of whatever did.
  let best = Infinity;
  for (let j = 0; j < W; j++) {
    for (let i = 1; i < W; i++) {
      const a = j * W + i;
      const d = Math.hypot(fu[a]! - fu[a - 1]!, fv[a]! - fv[a - 1]!);
      if (d === d && d < best) best = d;
    }
  }
  return Number.isFinite(best) ? best : 1;
}

/**
 * Fills the source coordinates of every output pixel centre: transformed on a grid and
 * interpolated, refining the grid until the interpolation is within MAX_GRID_ERROR source
 * pixels (Web Mercator sources take planAffine instead).
 */
function fillCoordinates(W: number, exact: (i: number, j: number, out: Float64Array) => void, fu: Float64Array, fv: Float64Array): void {
  const p = new Float64Array(2);
  for (const step of [32, 16, 8, 4]) {
    if (gridInterpolate(W, step, exact, fu, fv)) return;
  }
  for (let j = 0, k = 0; j < W; j++) {
    for (let i = 0; i < W; i++, k++) {
      exact(i, j, p);
      fu[k] = p[0]!;
      fv[k] = p[1]!;
    }
  }
}

function gridInterpolate(W: number, step: number, exact: (i: number, j: number, out: Float64Array) => void, fu: Float64Array, fv: Float64Array): boolean {
  const nodes: number[] = [];
  for (let i = 0; i < W - 1; i += step) nodes.push(i);
  nodes.push(W - 1);
  const n = nodes.length;
  const gu = new Float64Array(n * n);
  const gv = new Float64Array(n * n);
  const p = new Float64Array(2);
  for (let b = 0; b < n; b++) {
    for (let a = 0; a < n; a++) {
      exact(nodes[a]!, nodes[b]!, p);
      gu[b * n + a] = p[0]!;
      gv[b * n + a] = p[1]!;
    }
  }
  // Any point that fails to transform, or a cell whose centre strays, rejects this step.
  for (let k = 0; k < gu.length; k++) if (gu[k] !== gu[k]) return false;
  for (let b = 0; b < n - 1; b++) {
    for (let a = 0; a < n - 1; a++) {
      const mi = (nodes[a]! + nodes[a + 1]!) / 2;
      const mj = (nodes[b]! + nodes[b + 1]!) / 2;
      exact(mi, mj, p);
      const k00 = b * n + a;
      const iu = (gu[k00]! + gu[k00 + 1]! + gu[k00 + n]! + gu[k00 + n + 1]!) / 4;
      const iv = (gv[k00]! + gv[k00 + 1]! + gv[k00 + n]! + gv[k00 + n + 1]!) / 4;
      if (!(Math.abs(iu - p[0]!) <= MAX_GRID_ERROR && Math.abs(iv - p[1]!) <= MAX_GRID_ERROR)) return false;
    }
  }
  for (let b = 0; b < n - 1; b++) {
    const j0 = nodes[b]!,
      j1 = nodes[b + 1]!;
    const jEnd = b === n - 2 ? j1 : j1 - 1;
    for (let a = 0; a < n - 1; a++) {
      const i0 = nodes[a]!,
        i1 = nodes[a + 1]!;
      const iEnd = a === n - 2 ? i1 : i1 - 1;
      const k00 = b * n + a;
      const u00 = gu[k00]!,
        u10 = gu[k00 + 1]!,
        u01 = gu[k00 + n]!,
        u11 = gu[k00 + n + 1]!;
      const v00 = gv[k00]!,
        v10 = gv[k00 + 1]!,
        v01 = gv[k00 + n]!,
        v11 = gv[k00 + n + 1]!;
      for (let j = j0; j <= jEnd; j++) {
        const ty = (j - j0) / (j1 - j0);
        const ua = u00 + (u01 - u00) * ty,
          ub = u10 + (u11 - u10) * ty;
        const va = v00 + (v01 - v00) * ty,
          vb = v10 + (v11 - v10) * ty;
        let k = j * W + i0;
        for (let i = i0; i <= iEnd; i++, k++) {
          const tx = (i - i0) / (i1 - i0);
          fu[k] = ua + (ub - ua) * tx;
          fv[k] = va + (vb - va) * tx;
        }
      }
    }
  }
  return true;
}
