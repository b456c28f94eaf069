/**
 * Resampling a decoded source window onto the output grid of a tile, following GDAL's warp
 * kernel (gdalwarpkernel.cpp) so that tiles agree with `gdalwarp`:
 * - an output pixel is drawn only when its centre falls on a valid source pixel;
 * - bilinear and cubic weigh only valid neighbours and renormalise;
 * - cubic falls back to bilinear where its 4x4 neighbourhood is not all valid;
 * - when downsampling by more than 1/0.95, kernels widen with the ratio (GDAL's
 *   dfXScale/dfYScale), so they average instead of aliasing.
 */
import { separable as separableKernel, triangle4 as triangle4Kernel } from '../kernels.js';

/** How source pixels are weighed onto an output pixel, as gdalwarp's `-r`. */
export type Resampling = 'nearest' | 'bilinear' | 'cubic';

export interface Window {
  width: number;
  height: number;
  bands: Float32Array[];
  /** 1 valid, 0 nodata/masked. */
  valid: Uint8Array;
  /** No pixel of the window is invalid. */
  allValid?: boolean;
}

/** u = u0 + i * du and v = v0 + j * dv: see ReadPlan.separable. */
export interface Separable {
  u0: number;
  du: number;
  v0: number;
  dv: number;
}

export interface SampleOutput {
  bands: Float32Array[];
  mask: Uint8Array;
}

export function sampleWindow(
  win: Window,
  coords: () => { u: Float32Array; v: Float32Array },
  method: Resampling,
  scaleX: number,
  scaleY: number,
  out: SampleOutput,
  sep?: Separable,
): void {
  // GDAL uses its 4-sample formulas only when not downsampling (dfXScale >= 0.95).
  const wide = scaleX > 1 / 0.95 || scaleY > 1 / 0.95;
  // Cubic's fallback to bilinear near invalid pixels is not separable; everything else is
  // when every window pixel is valid and the grid is axis-aligned.
  if (sep && win.allValid && (method !== 'cubic' || wide)) return separable(win, sep, method, wide, scaleX, scaleY, out);
  const { u, v } = coords();
  if (method === 'nearest') return nearest(win, u, v, out);
  if (!wide) return method === 'cubic' ? cubic(win, u, v, out) : bilinear(win, u, v, out);
  if (win.allValid) return kernelAllValid(win, u, v, method, Math.max(1, scaleX), Math.max(1, scaleY), out);
  return kernel(win, u, v, method, Math.max(1, scaleX), Math.max(1, scaleY), out);
}

function nearest(win: Window, u: Float32Array, v: Float32Array, out: SampleOutput): void {
  const { width: ww, height: wh, valid } = win;
  const nb = win.bands.length;
  for (let k = 0; k < u.length; k++) {
    const x = Math.floor(u[k]!);
    const y = Math.floor(v[k]!);
    if (!(x >= 0 && y >= 0 && x < ww && y < wh)) continue; // also NaN
    const s = y * ww + x;
    if (!valid[s]) continue;
    out.mask[k] = 1;
    for (let b = 0; b < nb; b++) out.bands[b]![k] = win.bands[b]![s]!;
  }
}

function bilinear(win: Window, u: Float32Array, v: Float32Array, out: SampleOutput): void {
  const { width: ww, height: wh, valid } = win;
  const nb = win.bands.length;
  for (let k = 0; k < u.length; k++) {
    const uk = u[k]!,
      vk = v[k]!;
    const cx = Math.floor(uk),
      cy = Math.floor(vk);
    if (!(cx >= 0 && cy >= 0 && cx < ww && cy < wh) || !valid[cy * ww + cx]) continue;
    const fx = uk - 0.5,
      fy = vk - 0.5;
    const x0 = Math.floor(fx),
      y0 = Math.floor(fy);
    const dx = fx - x0,
      dy = fy - y0;
    const inX0 = x0 >= 0,
      inX1 = x0 + 1 < ww,
      inY0 = y0 >= 0,
      inY1 = y0 + 1 < wh;
    const s00 = y0 * ww + x0;
    const w00 = inX0 && inY0 && valid[s00] ? (1 - dx) * (1 - dy) : 0;
    const w10 = inX1 && inY0 && valid[s00 + 1] ? dx * (1 - dy) : 0;
    const w01 = inX0 && inY1 && valid[s00 + ww] ? (1 - dx) * dy : 0;
    const w11 = inX1 && inY1 && valid[s00 + ww + 1] ? dx * dy : 0;
    const wsum = w00 + w10 + w01 + w11;
    if (wsum < 1e-5) continue;
    out.mask[k] = 1;
    const inv = 1 / wsum;
    for (let b = 0; b < nb; b++) {
      const band = win.bands[b]!;
      let acc = 0;
      if (w00) acc += w00 * band[s00]!;
      if (w10) acc += w10 * band[s00 + 1]!;
      if (w01) acc += w01 * band[s00 + ww]!;
      if (w11) acc += w11 * band[s00 + ww + 1]!;
      out.bands[b]![k] = acc * inv;
    }
  }
}

/** The bilinear kernel widened for downsampling: a triangle of half-width 1 (in scaled pixels). */
const triangle = (t: number): number => {
  const a = Math.abs(t);
  return a < 1 ? 1 - a : 0;
};

/** Keys' cubic convolution with a = -0.5, as GDAL's GWKCubic. */
function cubicWeight(t: number): number {
  const x = Math.abs(t);
  if (x <= 1) return (1.5 * x - 2.5) * x * x + 1;
  if (x < 2) return ((-0.5 * x + 2.5) * x - 4) * x + 2;
  return 0;
}

function cubic(win: Window, u: Float32Array, v: Float32Array, out: SampleOutput): void {
  const { width: ww, height: wh, valid } = win;
  const nb = win.bands.length;
  const wx = new Float64Array(4),
    wy = new Float64Array(4);
  const single = new Float32Array(1),
    singleV = new Float32Array(1);
  const one: SampleOutput = { bands: Array.from(out.bands, () => new Float32Array(1)), mask: new Uint8Array(1) };
  for (let k = 0; k < u.length; k++) {
    const uk = u[k]!,
      vk = v[k]!;
    const cx = Math.floor(uk),
      cy = Math.floor(vk);
    if (!(cx >= 0 && cy >= 0 && cx < ww && cy < wh) || !valid[cy * ww + cx]) continue;
    const fx = uk - 0.5,
      fy = vk - 0.5;
    const x0 = Math.floor(fx),
      y0 = Math.floor(fy);
    let full = x0 - 1 >= 0 && y0 - 1 >= 0 && x0 + 2 < ww && y0 + 2 < wh;
    if (full) {
      for (let j = -1; j <= 2 && full; j++) {
        const row = (y0 + j) * ww + x0;
        for (let i = -1; i <= 2; i++)
          if (!valid[row + i]) {
            full = false;
            break;
          }
      }
    }
    if (!full) {
      single[0] = uk;
      singleV[0] = vk;
      one.mask[0] = 0;
      bilinear(win, single, singleV, one);
      if (one.mask[0]) {
        out.mask[k] = 1;
        for (let b = 0; b < nb; b++) out.bands[b]![k] = one.bands[b]![0]!;
      }
      continue;
    }
    const dx = fx - x0,
      dy = fy - y0;
    for (let i = 0; i < 4; i++) {
      wx[i] = cubicWeight(dx - (i - 1));
      wy[i] = cubicWeight(dy - (i - 1));
    }
    out.mask[k] = 1;
    for (let b = 0; b < nb; b++) {
      const band = win.bands[b]!;
      let acc = 0;
      for (let j = 0; j < 4; j++) {
        const row = (y0 + j - 1) * ww + x0 - 1;
        acc += wy[j]! * (wx[0]! * band[row]! + wx[1]! * band[row + 1]! + wx[2]! * band[row + 2]! + wx[3]! * band[row + 3]!);
      }
      out.bands[b]![k] = acc;
    }
  }
}

/** The general, widened kernel for downsampling (GDAL's GWKResample with scaled radius). */
function kernel(win: Window, u: Float32Array, v: Float32Array, method: Resampling, sx: number, sy: number, out: SampleOutput): void {
  const { width: ww, height: wh, valid } = win;
  const nb = win.bands.length;
  const base = method === 'cubic' ? 2 : 1;
  const weight = method === 'cubic' ? cubicWeight : triangle;
  const rx = Math.ceil(base * sx),
    ry = Math.ceil(base * sy);
  // Taps outside the window are never read: the weights need no more room than the window,
  // however large a scale a file's geotransform makes.
  const wx = new Float64Array(Math.min(2 * rx, ww) + 2),
    wy = new Float64Array(Math.min(2 * ry, wh) + 2);
  const acc = new Float64Array(nb);
  for (let k = 0; k < u.length; k++) {
    const uk = u[k]!,
      vk = v[k]!;
    const cx = Math.floor(uk),
      cy = Math.floor(vk);
    if (!(cx >= 0 && cy >= 0 && cx < ww && cy < wh) || !valid[cy * ww + cx]) continue;
    const fx = uk - 0.5,
      fy = vk - 0.5;
    const x0 = Math.floor(fx),
      y0 = Math.floor(fy);
    const dx = fx - x0,
      dy = fy - y0;
    // Taps x0 - rx + 1 .. x0 + rx, as GDAL's kernel, clipped to the window.
    const i0 = Math.max(-rx + 1, -x0),
      i1 = Math.min(rx, ww - 1 - x0);
    const j0 = Math.max(-ry + 1, -y0),
      j1 = Math.min(ry, wh - 1 - y0);
    for (let i = i0; i <= i1; i++) wx[i - i0] = weight((i - dx) / sx);
    for (let j = j0; j <= j1; j++) wy[j - j0] = weight((j - dy) / sy);
    let wsum = 0;
    acc.fill(0);
    for (let j = j0; j <= j1; j++) {
      const y = y0 + j;
      const wyj = wy[j - j0]!;
      if (wyj === 0) continue;
      for (let i = i0; i <= i1; i++) {
        const x = x0 + i;
        const s = y * ww + x;
        if (!valid[s]) continue;
        const w = wyj * wx[i - i0]!;
        if (w === 0) continue;
        wsum += w;
        for (let b = 0; b < nb; b++) acc[b] += w * win.bands[b]![s]!;
      }
    }
    if (Math.abs(wsum) < 1e-5) continue;
    out.mask[k] = 1;
    for (let b = 0; b < nb; b++) out.bands[b]![k] = acc[b]! / wsum;
  }
}

/**
 * The widened kernel when every window pixel is valid: the same weights as `kernel`, with
 * taps limited to the kernel's support, no validity tests, and the product weights' sum
 * taken as the product of the x and y sums.
 */
function kernelAllValid(win: Window, u: Float32Array, v: Float32Array, method: Resampling, sx: number, sy: number, out: SampleOutput): void {
  if (method !== 'cubic' && sx <= 2 && sy <= 2) triangleAllValid4(win, u, v, sx, sy, out);
  else kernelAllValidGeneral(win, u, v, method === 'cubic', sx, sy, out);
}

function kernelAllValidGeneral(win: Window, u: Float32Array, v: Float32Array, cubicKernel: boolean, sx: number, sy: number, out: SampleOutput): void {
  const { width: ww, height: wh } = win;
  const nb = win.bands.length;
  const reach = cubicKernel ? 2 : 1;
  const rx = reach * sx,
    ry = reach * sy;
  const isx = 1 / sx,
    isy = 1 / sy;
  const wx = new Float64Array(Math.min(Math.ceil(2 * rx), ww) + 2),
    wy = new Float64Array(Math.min(Math.ceil(2 * ry), wh) + 2);
  for (let k = 0; k < u.length; k++) {
    const uk = u[k]!,
      vk = v[k]!;
    const cx = Math.floor(uk),
      cy = Math.floor(vk);
    if (!(cx >= 0 && cy >= 0 && cx < ww && cy < wh)) continue;
    const fx = uk - 0.5,
      fy = vk - 0.5;
    // Taps strictly inside the support |x - fx| < reach * s, clipped to the window.
    const xs = Math.max(0, Math.floor(fx - rx) + 1),
      xe = Math.min(ww - 1, Math.ceil(fx + rx) - 1);
    const ys = Math.max(0, Math.floor(fy - ry) + 1),
      ye = Math.min(wh - 1, Math.ceil(fy + ry) - 1);
    let sumX = 0,
      sumY = 0;
    if (cubicKernel) {
      for (let x = xs; x <= xe; x++) sumX += wx[x - xs] = cubicWeight((x - fx) * isx);
      for (let y = ys; y <= ye; y++) sumY += wy[y - ys] = cubicWeight((y - fy) * isy);
    } else {
      for (let x = xs; x <= xe; x++) sumX += wx[x - xs] = 1 - Math.abs(x - fx) * isx;
      for (let y = ys; y <= ye; y++) sumY += wy[y - ys] = 1 - Math.abs(y - fy) * isy;
    }
    const total = sumX * sumY;
    if (Math.abs(total) < 1e-5) continue;
    out.mask[k] = 1;
    const inv = 1 / total;
    const nx = xe - xs + 1;
    if (nx <= 4 && xs + 3 < ww) {
      // Up to four taps a row (a kernel up to 2x wide): unrolled, the missing taps weigh 0.
      const w0 = wx[0]!,
        w1 = nx > 1 ? wx[1]! : 0,
        w2 = nx > 2 ? wx[2]! : 0,
        w3 = nx > 3 ? wx[3]! : 0;
      for (let b = 0; b < nb; b++) {
        const band = win.bands[b]!;
        let acc = 0;
        for (let y = ys, r = ys * ww + xs; y <= ye; y++, r += ww) {
          acc += wy[y - ys]! * (w0 * band[r]! + w1 * band[r + 1]! + w2 * band[r + 2]! + w3 * band[r + 3]!);
        }
        out.bands[b]![k] = acc * inv;
      }
      continue;
    }
    for (let b = 0; b < nb; b++) {
      const band = win.bands[b]!;
      let acc = 0;
      for (let y = ys; y <= ye; y++) {
        const row = y * ww;
        let inner = 0;
        for (let x = xs; x <= xe; x++) inner += wx[x - xs]! * band[row + x]!;
        acc += wy[y - ys]! * inner;
      }
      out.bands[b]![k] = acc * inv;
    }
  }
}

/**
 * `kernelAllValid` for the widened triangle (bilinear) kernel up to 2x downsampling, where a
 * pixel has at most 4 taps each way: the weights live in locals and the 4x4 taps are
 * unrolled, the missing ones weighing 0. Same weights, sums and order of additions as the
 * general loop, so the same values. Pixels whose 4x4 block would leave the window take
 * the general loop.
 */
function triangleAllValid4(win: Window, u: Float32Array, v: Float32Array, sx: number, sy: number, out: SampleOutput): void {
  const { width: ww, height: wh } = win;
  const bands = win.bands;
  const nb = bands.length;
  const b0 = bands[0],
    b1 = bands[1];
  const isx = 1 / sx,
    isy = 1 / sy;
  const mask = out.mask,
    outBands = out.bands;
  const one = { u: new Float32Array(1), v: new Float32Array(1) };
  const single: SampleOutput = { bands: Array.from(outBands, () => new Float32Array(1)), mask: new Uint8Array(1) };
  // The WebAssembly kernel of the same name (src/kernels.ts), when it can: it leaves the edges.
  const edges = triangle4Kernel(u, v, ww, wh, sx, sy, bands, outBands, mask);
  if (edges) {
    for (const k of edges) edgePixel(win, u[k]!, v[k]!, sx, sy, one, single, out, k);
    return;
  }
  for (let k = 0; k < u.length; k++) {
    const uk = u[k]!,
      vk = v[k]!;
    const cx = Math.floor(uk),
      cy = Math.floor(vk);
    if (!(cx >= 0 && cy >= 0 && cx < ww && cy < wh)) continue;
    const fx = uk - 0.5,
      fy = vk - 0.5;
    // The first tap strictly inside the support, clipped to the window; three more follow.
    const xs = Math.max(0, Math.floor(fx - sx) + 1);
    const ys = Math.max(0, Math.floor(fy - sy) + 1);
    if (xs + 3 >= ww || ys + 3 >= wh) {
      edgePixel(win, uk, vk, sx, sy, one, single, out, k);
      continue;
    }
    // Taps past the support come out at or below 0 and are clamped to 0.
    let t: number;
    const a0 = 1 - Math.abs(xs - fx) * isx;
    t = 1 - Math.abs(xs + 1 - fx) * isx;
    const a1 = t > 0 ? t : 0;
    t = 1 - Math.abs(xs + 2 - fx) * isx;
    const a2 = t > 0 ? t : 0;
    t = 1 - Math.abs(xs + 3 - fx) * isx;
    const a3 = t > 0 ? t : 0;
    const c0 = 1 - Math.abs(ys - fy) * isy;
    t = 1 - Math.abs(ys + 1 - fy) * isy;
    const c1 = t > 0 ? t : 0;
    t = 1 - Math.abs(ys + 2 - fy) * isy;
    const c2 = t > 0 ? t : 0;
    t = 1 - Math.abs(ys + 3 - fy) * isy;
    const c3 = t > 0 ? t : 0;
    const total = (a0 + a1 + a2 + a3) * (c0 + c1 + c2 + c3);
    if (Math.abs(total) < 1e-5) continue;
    mask[k] = 1;
    const inv = 1 / total;
    const r0 = ys * ww + xs,
      r1 = r0 + ww,
      r2 = r1 + ww,
      r3 = r2 + ww;
    if (nb === 2) {
      // Two bands (NDVI's red and near-infrared): both in one pass over the weights.
      const p = b0!,
        q = b1!;
      outBands[0]![k] =
        (c0 * (a0 * p[r0]! + a1 * p[r0 + 1]! + a2 * p[r0 + 2]! + a3 * p[r0 + 3]!) +
          c1 * (a0 * p[r1]! + a1 * p[r1 + 1]! + a2 * p[r1 + 2]! + a3 * p[r1 + 3]!) +
          c2 * (a0 * p[r2]! + a1 * p[r2 + 1]! + a2 * p[r2 + 2]! + a3 * p[r2 + 3]!) +
          c3 * (a0 * p[r3]! + a1 * p[r3 + 1]! + a2 * p[r3 + 2]! + a3 * p[r3 + 3]!)) *
        inv;
      outBands[1]![k] =
        (c0 * (a0 * q[r0]! + a1 * q[r0 + 1]! + a2 * q[r0 + 2]! + a3 * q[r0 + 3]!) +
          c1 * (a0 * q[r1]! + a1 * q[r1 + 1]! + a2 * q[r1 + 2]! + a3 * q[r1 + 3]!) +
          c2 * (a0 * q[r2]! + a1 * q[r2 + 1]! + a2 * q[r2 + 2]! + a3 * q[r2 + 3]!) +
          c3 * (a0 * q[r3]! + a1 * q[r3 + 1]! + a2 * q[r3 + 2]! + a3 * q[r3 + 3]!)) *
        inv;
      continue;
    }
    for (let b = 0; b < nb; b++) {
      const band = bands[b]!;
      const acc =
        c0 * (a0 * band[r0]! + a1 * band[r0 + 1]! + a2 * band[r0 + 2]! + a3 * band[r0 + 3]!) +
        c1 * (a0 * band[r1]! + a1 * band[r1 + 1]! + a2 * band[r1 + 2]! + a3 * band[r1 + 3]!) +
        c2 * (a0 * band[r2]! + a1 * band[r2 + 1]! + a2 * band[r2 + 2]! + a3 * band[r2 + 3]!) +
        c3 * (a0 * band[r3]! + a1 * band[r3 + 1]! + a2 * band[r3 + 2]! + a3 * band[r3 + 3]!);
      outBands[b]![k] = acc * inv;
    }
  }
}

/** One pixel of `triangleAllValid4` whose 4x4 taps would leave the window, by the general loop. */
function edgePixel(
  win: Window,
  uk: number,
  vk: number,
  sx: number,
  sy: number,
  one: { u: Float32Array; v: Float32Array },
  single: SampleOutput,
  out: SampleOutput,
  k: number,
): void {
  one.u[0] = uk;
  one.v[0] = vk;
  single.mask[0] = 0;
  kernelAllValidGeneral(win, one.u, one.v, false, sx, sy, single);
  if (!single.mask[0]) return;
  out.mask[k] = 1;
  for (let b = 0; b < out.bands.length; b++) out.bands[b]![k] = single.bands[b]![0]!;
}

/** The source taps of each output column (or row): where they start, how many, their weights. */
interface Taps {
  start: Int32Array;
  count: Int32Array;
  /** `per` weights an entry, normalised to sum 1 over the taps inside the window. */
  weights: Float32Array;
  per: number;
  /** The centre falls on the window: the pixel can be drawn. */
  ok: Uint8Array;
}

function axisTaps(n: number, p0: number, dp: number, size: number, method: Resampling, scale: number): Taps {
  const s = Math.max(1, scale);
  const base = method === 'cubic' ? 2 : 1;
  const r = method === 'nearest' ? 0 : Math.ceil(base * s);
  // At most the window's width of taps, whatever the scale (the taps are clipped to it).
  const per = Math.max(1, Math.min(2 * r, size));
  const taps: Taps = { start: new Int32Array(n), count: new Int32Array(n), weights: new Float32Array(n * per), per, ok: new Uint8Array(n) };
  const weight = method === 'cubic' ? cubicWeight : triangle;
  for (let k = 0; k < n; k++) {
    const p = p0 + k * dp;
    const c = Math.floor(p);
    if (!(c >= 0 && c < size)) continue;
    if (method === 'nearest') {
      taps.start[k] = c;
      taps.count[k] = 1;
      taps.weights[k * per] = 1;
      taps.ok[k] = 1;
      continue;
    }
    const f = p - 0.5;
    const x0 = Math.floor(f);
    const d = f - x0;
    // Taps x0 - r + 1 .. x0 + r, as GDAL's kernel; only those inside the window and with weight.
    let first = -1,
      last = -1,
      sum = 0;
    for (let i = Math.max(-r + 1, -x0); i <= Math.min(r, size - 1 - x0); i++) {
      const x = x0 + i;
      const w = weight((i - d) / s);
      if (w === 0) continue;
      if (first < 0) first = x;
      last = x;
    }
    if (first < 0) continue;
    for (let x = first; x <= last; x++) sum += weight((x - x0 - d) / s);
    if (Math.abs(sum) < 1e-5) continue;
    taps.start[k] = first;
    taps.count[k] = last - first + 1;
    for (let x = first; x <= last; x++) taps.weights[k * per + x - first] = weight((x - x0 - d) / s) / sum;
    taps.ok[k] = 1;
  }
  return taps;
}

let scratchH = new Float32Array(0);

/**
 * Resampling as two one-dimensional passes (columns, then rows), valid when every window
 * pixel is valid and the grid is axis-aligned: GDAL's weights factor into an x and a y part,
 * and so does their normalisation. About 2 × taps multiply-adds a pixel instead of taps².
 * The WebAssembly kernel of the same name (src/kernels.ts) does both passes when it can; the
 * loops here are its reference.
 */
function separable(win: Window, sep: Separable, method: Resampling, wide: boolean, scaleX: number, scaleY: number, out: SampleOutput): void {
  const W = Math.round(Math.sqrt(out.mask.length));
  const ww = win.width;
  const sx = wide ? scaleX : 1,
    sy = wide ? scaleY : 1;
  const cols = axisTaps(W, sep.u0, sep.du, ww, method, sx);
  const rows = axisTaps(W, sep.v0, sep.dv, win.height, method, sy);
  let minRow = Infinity,
    maxRow = -Infinity;
  for (let j = 0; j < W; j++) {
    if (!rows.ok[j]) continue;
    minRow = Math.min(minRow, rows.start[j]!);
    maxRow = Math.max(maxRow, rows.start[j]! + rows.count[j]! - 1);
  }
  if (minRow === Infinity) return;
  // The columns that can be drawn: often all of them, then each drawable row is one fill.
  const everyColumn = cols.ok.indexOf(0) < 0;
  for (let j = 0; j < W; j++) {
    if (!rows.ok[j]) continue;
    const row = j * W;
    if (everyColumn) out.mask.fill(1, row, row + W);
    else for (let i = 0; i < W; i++) if (cols.ok[i]) out.mask[row + i] = 1;
  }
  const nRows = maxRow - minRow + 1;
  if (separableKernel(win.bands, ww, minRow, nRows, W, cols, rows, out.bands)) return;
  // Scratch for the column pass, kept between tiles (this function never awaits).
  if (scratchH.length < nRows * W) scratchH = new Float32Array(nRows * W);
  const h = scratchH;
  const cp = cols.per,
    rp = rows.per;
  for (let b = 0; b < win.bands.length; b++) {
    const band = win.bands[b]!;
    const dst = out.bands[b]!;
    // Columns: every needed source row, resampled to the output columns.
    for (let r = 0; r < nRows; r++) {
      const src = (minRow + r) * ww;
      const hr = r * W;
      for (let i = 0; i < W; i++) {
        if (!cols.ok[i]) {
          // Its output pixels are masked: a value that does not depend on the tile before.
          h[hr + i] = 0;
          continue;
        }
        const st = src + cols.start[i]!;
        const n = cols.count[i]!;
        const wo = i * cp;
        const cw = cols.weights;
        // The common tap counts unrolled: bilinear needs 1 or 2, a widened kernel 3 or 4.
        if (n === 2) h[hr + i] = cw[wo]! * band[st]! + cw[wo + 1]! * band[st + 1]!;
        else if (n === 3) h[hr + i] = cw[wo]! * band[st]! + cw[wo + 1]! * band[st + 1]! + cw[wo + 2]! * band[st + 2]!;
        else if (n === 1) h[hr + i] = cw[wo]! * band[st]!;
        else {
          let acc = 0;
          for (let t = 0; t < n; t++) acc += cw[wo + t]! * band[st + t]!;
          h[hr + i] = acc;
        }
      }
    }
    // Rows: the intermediate rows combined for each output row.
    for (let j = 0; j < W; j++) {
      if (!rows.ok[j]) continue;
      const o = j * W;
      const n = rows.count[j]!;
      const h0 = (rows.start[j]! - minRow) * W;
      const wo = j * rp;
      const rw = rows.weights;
      const w0 = rw[wo]!;
      if (n === 2) {
        const w1 = rw[wo + 1]!,
          h1 = h0 + W;
        for (let i = 0; i < W; i++) dst[o + i] = w0 * h[h0 + i]! + w1 * h[h1 + i]!;
      } else if (n === 3) {
        const w1 = rw[wo + 1]!,
          w2 = rw[wo + 2]!,
          h1 = h0 + W,
          h2 = h0 + 2 * W;
        for (let i = 0; i < W; i++) dst[o + i] = w0 * h[h0 + i]! + w1 * h[h1 + i]! + w2 * h[h2 + i]!;
      } else {
        for (let i = 0; i < W; i++) dst[o + i] = w0 * h[h0 + i]!;
        for (let t = 1; t < n; t++) {
          const w = rw[wo + t]!;
          const ht = h0 + t * W;
          for (let i = 0; i < W; i++) dst[o + i] += w * h[ht + i]!;
        }
      }
    }
  }
}
