/**
 * Tile planning: which overview of a source to read, which window of it, and where in that
 * window each output pixel centre falls. Pure arithmetic on the source's metadata (no I/O,
 * no pixels), so it is unit-tested with numbers alone.
 */
import proj4 from '../proj4.js';
import { heapAlloc, type Alloc } from '../alloc.js';
import { SourceError } from '../errors.js';
import type { Resampling } from '../sources/sample.js';
import { levelCoords } from '../kernels.js';
import { EDGE_SAMPLES, outline } from './footprint.js';
import { lonLatToMercator } from './mercator.js';

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
// Plans are made with every field above, in that order (`separable` undefined where it does not
// apply): one shape for the code V8 optimises, where a field added to some gave two, and a deopt.

/**
 * GDAL's approximate transformer default (gdalwarp -et 0.125): interpolating the transform
 * on a grid is accepted when it stays within this many source pixels of the exact one.
 */
const MAX_GRID_ERROR = 0.125;
/**
 * Nearest resampling picks the source pixel whose span holds the point, so any error can move
 * a pick across a pixel edge: its grid must be finer, and where the remaining error could still
 * cross an edge, the exact transform decides (settleNearest).
 */
const MAX_NEAREST_GRID_ERROR = 1 / 32;
/** The largest error inside a grid cell, as a multiple of the largest error measured on it. */
const ERROR_MARGIN = 1.5;

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

/** The middle longitude of a north-up source in geographic coordinates (whose longitudes may run past ±180); else undefined. */
function geographicMiddle(src: PlanSource): number | undefined {
  const [a, b, c, , e] = src.geoTransform;
  return isGeographic(src.proj4) && c === 0 && e === 0 && b > 0 ? a + (b * src.width) / 2 : undefined;
}

function isGeographic(def: string): boolean {
  return /\+proj=(longlat|latlong|lonlat|latlon)\b/.test(def);
}

/**
 * The centres of a tile's output pixels as full-resolution source pixel coordinates: Web
 * Mercator to the source's CRS, then the inverse of its geotransform.
 *
 * An object for each tile with its method shared, not a closure made for each tile: V8 keeps
 * the optimised code of a function that lives on, while a closure's is dropped at each full
 * collection and compiled again for the next tile's. As closures, this and the grid's error
 * measure were compiled some 40 times a thousand NDVI tiles, on and on: half of the compiling
 * a long-running server still did, about 0.45 ms of CPU a tile.
 */
class SourcePixels {
  private readonly tmp = new Float64Array(2);
  private readonly a: number;
  private readonly b: number;
  private readonly c: number;
  private readonly d: number;
  private readonly e: number;
  private readonly f: number;
  private readonly det: number;
  /** A geographic source's middle longitude (NaN for any other). */
  private readonly middle: number;

  constructor(
    private readonly toCrs: ToSource,
    gt: PlanSource['geoTransform'],
    private readonly ox: number,
    private readonly oy: number,
    private readonly res: number,
    middle: number | undefined,
  ) {
    [this.a, this.b, this.c, this.d, this.e, this.f] = gt;
    this.det = this.b * this.f - this.c * this.e;
    this.middle = middle ?? NaN;
  }

  /** Output pixel centre (i, j) into `out`, NaN where it does not transform. */
  at(i: number, j: number, out: Float64Array): void {
    const tmp = this.tmp;
    this.toCrs(this.ox + (i + 0.5) * this.res, this.oy - (j + 0.5) * this.res, tmp);
    let x = tmp[0]!;
    if (x !== x) {
      out[0] = NaN;
      out[1] = NaN;
      return;
    }
    // The same meridian in the source's own run of longitudes (170 to 190, or 0 to 360): the
    // copy of it nearest the source's middle.
    const middle = this.middle;
    if (middle === middle) x += 360 * Math.round((middle - x) / 360);
    const dx = x - this.a;
    const dy = tmp[1]! - this.d;
    out[0] = (this.f * dx - this.c * dy) / this.det;
    out[1] = (this.b * dy - this.e * dx) / this.det;
  }
}

/** Output pixels [i0, i1) x [j0, j1) of a grid. */
interface Rect {
  i0: number;
  j0: number;
  i1: number;
  j1: number;
}

/** Output pixels kept around a source's footprint: its pixel centres near the edge, whatever the kernel. */
const FOOTPRINT_MARGIN_PX = 2;
/** Footprints kept, by CRS, geotransform and size; past this many the map starts again. */
const MAX_FOOTPRINTS = 1024;
const footprints = new Map<string, readonly [number, number, number, number] | null>();

/**
 * The Web Mercator bounds [minX, minY, maxX, maxY] of a projected source's raster: its outline
 * (src/tiles/footprint.ts; the image of the edges bounds the image of the whole, the transform
 * being continuous and one to one there), each side widened by the longest step between
 * neighbouring points, for the edge's curve between them. Null where that does not hold or
 * cannot be known: a geographic source (its longitudes may run past ±180), a point of the
 * outline that does not transform. Made once a source.
 */
function mercatorFootprint(src: PlanSource): readonly [number, number, number, number] | null {
  const key = `${src.proj4}|${src.geoTransform.join(',')}|${src.width}x${src.height}`;
  let fp = footprints.get(key);
  if (fp !== undefined) return fp;
  fp = isGeographic(src.proj4) ? null : boundsOfOutline(src);
  if (footprints.size >= MAX_FOOTPRINTS) footprints.clear();
  footprints.set(key, fp);
  return fp;
}

function boundsOfOutline(src: PlanSource): readonly [number, number, number, number] | null {
  const ring = outline({ ...src, crs: { proj4: src.proj4 } });
  // Every point of every edge, and the first again: none was left out.
  if (!ring || ring.length !== 4 * EDGE_SAMPLES + 1) return null;
  let minX = Infinity,
    minY = Infinity,
    maxX = -Infinity,
    maxY = -Infinity,
    step = 0;
  let prev: [number, number] | undefined;
  for (const [lon, lat] of ring) {
    const m = lonLatToMercator(lon, lat);
    if (prev) step = Math.max(step, Math.hypot(m[0] - prev[0], m[1] - prev[1]));
    prev = m;
    minX = Math.min(minX, m[0]);
    maxX = Math.max(maxX, m[0]);
    minY = Math.min(minY, m[1]);
    maxY = Math.max(maxY, m[1]);
  }
  return [minX - step, minY - step, maxX + step, maxY + step];
}

/**
 * The output pixels of a W x W grid (its first pixel's corner at `ox`, `oy`, `res` metres a
 * pixel) whose centres can land on the source: those over its footprint, and a margin. The
 * whole grid when the footprint is not known; null when none can.
 */
function footprintRect(src: PlanSource, W: number, ox: number, oy: number, res: number): Rect | null {
  const fp = mercatorFootprint(src);
  if (!fp) return { i0: 0, j0: 0, i1: W, j1: W };
  const [minX, minY, maxX, maxY] = fp;
  const i0 = Math.max(0, Math.floor((minX - ox) / res - 0.5) - FOOTPRINT_MARGIN_PX),
    i1 = Math.min(W, Math.ceil((maxX - ox) / res - 0.5) + FOOTPRINT_MARGIN_PX + 1),
    j0 = Math.max(0, Math.floor((oy - maxY) / res - 0.5) - FOOTPRINT_MARGIN_PX),
    j1 = Math.min(W, Math.ceil((oy - minY) / res - 0.5) + FOOTPRINT_MARGIN_PX + 1);
  return i1 > i0 && j1 > j0 ? { i0, j0, i1, j1 } : null;
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
  const exact = new SourcePixels(toSourceCrs(src.proj4), src.geoTransform, ox, oy, res, geographicMiddle(src));

  const affine = isWebMercator(src.proj4);
  if (affine) return planAffine(src, tile, W, exact, resampling, alloc);
  // The output pixels that can land on the raster: none at all when the grid misses its footprint.
  const rect = footprintRect(src, W, ox, oy, res);
  if (!rect) return null;
  // The tile's arrays (recycled between tiles in a render thread): the plan lives as long.
  const fu = alloc.float64(W * W);
  const fv = alloc.float64(W * W);
  const fit = separableGeographic(src, W, exact, fu, fv)
    ? null
    : fillCoordinates(W, rect, exact, fu, fv, resampling === 'nearest' ? MAX_NEAREST_GRID_ERROR : MAX_GRID_ERROR);

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
  if (fit && resampling === 'nearest') settleNearest(W, fit, exact, fu, fv, kx, ky);

  const onLevel = levelCoords(fu, fv, kx, ky);
  const extent = onLevel ? onLevel.extent : levelExtent(fu, fv, kx, ky);
  if (!extent) return null;
  const scaleX = Number.isFinite(dudi) ? dudi * kx : ratio * kx;
  const scaleY = Number.isFinite(dvdj) ? dvdj * ky : ratio * ky;
  const window = windowFor(...extent, lv, resampling, scaleX, scaleY, W, tile, level);
  if (!window) return null;
  const u = alloc.float32(W * W);
  const v = alloc.float32(W * W);
  if (!onLevel?.toWindow(window[0], window[1], u, v)) toWindow(fu, fv, kx, ky, window[0], window[1], u, v);
  return { level, window, width: W, scaleX, scaleY, coords: () => ({ u, v }), separable: undefined };
}

// The per-pixel passes live in small functions of their own (the references of the WebAssembly
// kernels `levelCoords` runs, src/kernels.ts): as loops inside planRead they were
// compiled on the stack (OSR) on every call, and left the compiled code for the rest of the
// function, which had no type feedback, at once (a UTM plan took 0.7 ms instead of 0.5).

/** The extent [minU, minV, maxU, maxV] of full-resolution coordinates scaled to a level's pixels, or null when none is a number. */
export function levelExtent(fu: Float64Array, fv: Float64Array, kx: number, ky: number): [number, number, number, number] | null {
  let minU = Infinity,
    minV = Infinity,
    maxU = -Infinity,
    maxV = -Infinity;
  for (let k = 0; k < fu.length; k++) {
    const u = fu[k]! * kx;
    const v = fv[k]! * ky;
    if (u !== u || v !== v) continue;
    if (u < minU) minU = u;
    if (u > maxU) maxU = u;
    if (v < minV) minV = v;
    if (v > maxV) maxV = v;
  }
  return minU === Infinity ? null : [minU, minV, maxU, maxV];
}

/** Full-resolution coordinates as a level's pixels relative to a window's corner, as Float32. */
export function toWindow(fu: Float64Array, fv: Float64Array, kx: number, ky: number, x0: number, y0: number, u: Float32Array, v: Float32Array): void {
  for (let k = 0; k < u.length; k++) {
    u[k] = fu[k]! * kx - x0;
    v[k] = fv[k]! * ky - y0;
  }
}

/** A source in Web Mercator: source pixels are an affine function of output pixels. */
function planAffine(src: PlanSource, tile: TileGrid, W: number, exact: SourcePixels, resampling: Resampling, alloc: Alloc): ReadPlan | null {
  const p = new Float64Array(2);
  exact.at(0, 0, p);
  const u00 = p[0]!,
    v00 = p[1]!;
  exact.at(1, 0, p);
  const dui = p[0]! - u00,
    dvi = p[1]! - v00;
  exact.at(0, 1, p);
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
    separable: c === 0 && e === 0 ? { u0: a - x0, du: b, v0: d - y0, dv: f } : undefined,
  };
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
 * A north-up source in geographic coordinates: its column depends on the output column alone
 * and its row on the output row alone (Web Mercator to longitude and latitude is separable),
 * so one exact transform per column and per row gives every pixel exactly. Checked on the
 * corners and the centre, since a datum shift would mix the two; false when it does not hold.
 */
function separableGeographic(src: PlanSource, W: number, exact: SourcePixels, fu: Float64Array, fv: Float64Array): boolean {
  if (geographicMiddle(src) === undefined) return false;
  const us = new Float64Array(W),
    vs = new Float64Array(W);
  const p = new Float64Array(2);
  const mid = Math.floor(W / 2);
  for (let i = 0; i < W; i++) {
    exact.at(i, mid, p);
    us[i] = p[0]!;
  }
  for (let j = 0; j < W; j++) {
    exact.at(mid, j, p);
    vs[j] = p[1]!;
  }
  for (const [i, j] of [
    [0, 0],
    [W - 1, 0],
    [0, W - 1],
    [W - 1, W - 1],
    [mid, mid],
  ] as const) {
    exact.at(i, j, p);
    if (!(Math.abs(p[0]! - us[i]!) < 1e-6 && Math.abs(p[1]! - vs[j]!) < 1e-6)) return false;
  }
  for (let j = 0, k = 0; j < W; j++) {
    for (let i = 0; i < W; i++, k++) {
      fu[k] = us[i]!;
      fv[k] = vs[j]!;
    }
  }
  return true;
}

/** An accepted interpolation grid: its node positions and each cell's error bound in source pixels. */
interface GridFit {
  nodes: number[];
  /** Per cell (row-major, nodes.length - 1 a side): the largest error measured on it, times ERROR_MARGIN. */
  error: Float64Array;
}

/**
 * Fills the source coordinates of every output pixel centre: transformed on a grid and
 * interpolated, refining the grid until the interpolation is within `tolerance` source
 * pixels; exactly, pixel by pixel, when no grid gets there (null), and then only within
 * `rect`, the pixels that can land on the raster (NaN elsewhere). Web Mercator sources take
 * planAffine instead.
 *
 * The grid always spans the whole of the output grid, so that two sources on one pixel grid
 * (a mosaic's members, and the file they were cut from) get the same coordinates, less their
 * offset, and draw the same pixels along their cut lines.
 */
function fillCoordinates(W: number, rect: Rect, exact: SourcePixels, fu: Float64Array, fv: Float64Array, tolerance: number): GridFit | null {
  const p = new Float64Array(2);
  for (const step of [64, 32, 16, 8, 4]) {
    const fit = gridInterpolate(W, step, exact, fu, fv, tolerance);
    if (fit) return fit;
  }
  fu.fill(NaN);
  fv.fill(NaN);
  for (let j = rect.j0; j < rect.j1; j++) {
    for (let i = rect.i0, k = j * W + i; i < rect.i1; i++, k++) {
      exact.at(i, j, p);
      fu[k] = p[0]!;
      fv[k] = p[1]!;
    }
  }
  return null;
}

/**
 * Interpolates bilinearly on a grid of nodes `step` output pixels apart, if that is within
 * `tolerance` everywhere it is measured: at each cell's centre and at the midpoint of each
 * cell edge (where a conformal projection strays most from a bilinear patch, while its centre
 * may still be close). Any point that fails to transform rejects the step.
 */
function gridInterpolate(W: number, step: number, exact: SourcePixels, fu: Float64Array, fv: Float64Array, tolerance: number): GridFit | null {
  // A grid of one pixel has no cell to interpolate in: it is transformed exactly.
  if (W < 2) return null;
  const nodes: number[] = [];
  for (let i = 0; i < W - 1; i += step) nodes.push(i);
  nodes.push(W - 1);
  const n = nodes.length;
  const gu = new Float64Array(n * n);
  const gv = new Float64Array(n * n);
  const p = new Float64Array(2);
  // Edge midpoints, measured once and shared by the two cells on either side.
  const across = new Float64Array(n * (n - 1)); // horizontal edge from node (a, b) to (a + 1, b)
  const down = new Float64Array((n - 1) * n); // vertical edge from node (a, b) to (a, b + 1)
  const error = new Float64Array((n - 1) * (n - 1));
  // A row of nodes at a time, each measured as soon as its neighbours are known: a grid that
  // fails (a projection far from where it holds) is given up at its first bad row, not after
  // every node of it was transformed.
  for (let b = 0; b < n; b++) {
    for (let a = 0; a < n; a++) {
      exact.at(nodes[a]!, nodes[b]!, p);
      if (p[0] !== p[0]) return null;
      gu[b * n + a] = p[0]!;
      gv[b * n + a] = p[1]!;
    }
    for (let a = 0; a < n - 1; a++) {
      const e = offBy(exact, (nodes[a]! + nodes[a + 1]!) / 2, nodes[b]!, gu, gv, b * n + a, b * n + a + 1, p);
      if (!(e <= tolerance)) return null;
      across[b * (n - 1) + a] = e;
    }
    if (b === 0) continue;
    // The cells between rows b - 1 and b.
    const r = b - 1;
    for (let a = 0; a < n; a++) {
      const e = offBy(exact, nodes[a]!, (nodes[r]! + nodes[b]!) / 2, gu, gv, r * n + a, b * n + a, p);
      if (!(e <= tolerance)) return null;
      down[r * n + a] = e;
    }
    for (let a = 0; a < n - 1; a++) {
      const k00 = r * n + a;
      const centre = offCentre(exact, (nodes[a]! + nodes[a + 1]!) / 2, (nodes[r]! + nodes[b]!) / 2, gu, gv, k00, n, p);
      if (!(centre <= tolerance)) return null;
      const edges = Math.max(across[r * (n - 1) + a]!, across[b * (n - 1) + a]!, down[r * n + a]!, down[r * n + a + 1]!);
      error[r * (n - 1) + a] = ERROR_MARGIN * Math.max(centre, edges);
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
  return { nodes, error };
}

/** How far the exact point (i, j) is from the mean of grid nodes `k0` and `k1` (Infinity where it does not transform). */
function offBy(exact: SourcePixels, i: number, j: number, gu: Float64Array, gv: Float64Array, k0: number, k1: number, p: Float64Array): number {
  exact.at(i, j, p);
  const e = Math.max(Math.abs((gu[k0]! + gu[k1]!) / 2 - p[0]!), Math.abs((gv[k0]! + gv[k1]!) / 2 - p[1]!));
  return e === e ? e : Infinity;
}

/** The same for the mean of the four nodes of the cell whose first is `k00`, on a grid `n` nodes wide. */
function offCentre(exact: SourcePixels, i: number, j: number, gu: Float64Array, gv: Float64Array, k00: number, n: number, p: Float64Array): number {
  exact.at(i, j, p);
  const u = gu[k00]! + gu[k00 + 1]! + gu[k00 + n]! + gu[k00 + n + 1]!;
  const v = gv[k00]! + gv[k00 + 1]! + gv[k00 + n]! + gv[k00 + n + 1]!;
  const e = Math.max(Math.abs(u / 4 - p[0]!), Math.abs(v / 4 - p[1]!));
  return e === e ? e : Infinity;
}

/**
 * Nearest resampling picks the level pixel whose span holds the point. Where an interpolated
 * point lies closer to a pixel edge than its cell's error bound, the grid alone cannot say
 * which side it is on: the exact transform decides. (`kx`, `ky`: level pixels per source pixel.)
 */
function settleNearest(W: number, fit: GridFit, exact: SourcePixels, fu: Float64Array, fv: Float64Array, kx: number, ky: number): void {
  const { nodes, error } = fit;
  const n = nodes.length;
  const p = new Float64Array(2);
  for (let b = 0; b < n - 1; b++) {
    const jEnd = b === n - 2 ? nodes[b + 1]! : nodes[b + 1]! - 1;
    for (let a = 0; a < n - 1; a++) {
      const e = error[b * (n - 1) + a]!;
      const eu = e * kx,
        ev = e * ky;
      const iEnd = a === n - 2 ? nodes[a + 1]! : nodes[a + 1]! - 1;
      for (let j = nodes[b]!; j <= jEnd; j++) {
        for (let i = nodes[a]!, k = j * W + i; i <= iEnd; i++, k++) {
          const u = fu[k]! * kx,
            v = fv[k]! * ky;
          if (Math.abs(u - Math.round(u)) >= eu && Math.abs(v - Math.round(v)) >= ev) continue;
          exact.at(i, j, p);
          fu[k] = p[0]!;
          fv[k] = p[1]!;
        }
      }
    }
  }
}
