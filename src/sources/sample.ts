/**
 * Resampling a decoded source window onto the output grid of a tile, following GDAL's warp
 * kernel (gdalwarpkernel.cpp) so that tiles agree with `gdalwarp`:
 * - an output pixel is drawn only when its centre falls on a valid source pixel;
 * - bilinear and cubic weigh only valid neighbours and renormalise;
 * - cubic falls back to bilinear where its 4x4 neighbourhood is not all valid;
 * - when downsampling by more than 1/0.95, kernels widen with the ratio (GDAL's
 *   dfXScale/dfYScale), so they average instead of aliasing.
 */
import type { Resampling } from '../tiles/plan.js';

export interface Window {
  width: number;
  height: number;
  bands: Float32Array[];
  /** 1 valid, 0 nodata/masked. */
  valid: Uint8Array;
}

export interface SampleOutput {
  bands: Float32Array[];
  mask: Uint8Array;
}

export function sampleWindow(win: Window, u: Float32Array, v: Float32Array, method: Resampling, scaleX: number, scaleY: number, out: SampleOutput): void {
  if (method === 'nearest') return nearest(win, u, v, out);
  // GDAL uses its 4-sample formulas only when not downsampling (dfXScale >= 0.95).
  const wide = scaleX > 1 / 0.95 || scaleY > 1 / 0.95;
  if (!wide) return method === 'cubic' ? cubic(win, u, v, out) : bilinear(win, u, v, out);
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
    const uk = u[k]!, vk = v[k]!;
    const cx = Math.floor(uk), cy = Math.floor(vk);
    if (!(cx >= 0 && cy >= 0 && cx < ww && cy < wh) || !valid[cy * ww + cx]) continue;
    const fx = uk - 0.5, fy = vk - 0.5;
    const x0 = Math.floor(fx), y0 = Math.floor(fy);
    const dx = fx - x0, dy = fy - y0;
    const inX0 = x0 >= 0, inX1 = x0 + 1 < ww, inY0 = y0 >= 0, inY1 = y0 + 1 < wh;
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
  const wx = new Float64Array(4), wy = new Float64Array(4);
  const single = new Float32Array(1), singleV = new Float32Array(1);
  const one: SampleOutput = { bands: out.bands.map(() => new Float32Array(1)), mask: new Uint8Array(1) };
  for (let k = 0; k < u.length; k++) {
    const uk = u[k]!, vk = v[k]!;
    const cx = Math.floor(uk), cy = Math.floor(vk);
    if (!(cx >= 0 && cy >= 0 && cx < ww && cy < wh) || !valid[cy * ww + cx]) continue;
    const fx = uk - 0.5, fy = vk - 0.5;
    const x0 = Math.floor(fx), y0 = Math.floor(fy);
    let full = x0 - 1 >= 0 && y0 - 1 >= 0 && x0 + 2 < ww && y0 + 2 < wh;
    if (full) {
      for (let j = -1; j <= 2 && full; j++) {
        const row = (y0 + j) * ww + x0;
        for (let i = -1; i <= 2; i++) if (!valid[row + i]) { full = false; break; }
      }
    }
    if (!full) {
      single[0] = uk; singleV[0] = vk;
      one.mask[0] = 0;
      bilinear(win, single, singleV, one);
      if (one.mask[0]) {
        out.mask[k] = 1;
        for (let b = 0; b < nb; b++) out.bands[b]![k] = one.bands[b]![0]!;
      }
      continue;
    }
    const dx = fx - x0, dy = fy - y0;
    for (let i = 0; i < 4; i++) { wx[i] = cubicWeight(dx - (i - 1)); wy[i] = cubicWeight(dy - (i - 1)); }
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
  const weight = method === 'cubic' ? cubicWeight : (t: number) => { const a = Math.abs(t); return a < 1 ? 1 - a : 0; };
  const rx = Math.ceil(base * sx), ry = Math.ceil(base * sy);
  const wx = new Float64Array(2 * rx + 2), wy = new Float64Array(2 * ry + 2);
  const acc = new Float64Array(nb);
  for (let k = 0; k < u.length; k++) {
    const uk = u[k]!, vk = v[k]!;
    const cx = Math.floor(uk), cy = Math.floor(vk);
    if (!(cx >= 0 && cy >= 0 && cx < ww && cy < wh) || !valid[cy * ww + cx]) continue;
    const fx = uk - 0.5, fy = vk - 0.5;
    const x0 = Math.floor(fx), y0 = Math.floor(fy);
    const dx = fx - x0, dy = fy - y0;
    for (let i = -rx + 1; i <= rx; i++) wx[i + rx - 1] = weight((i - dx) / sx);
    for (let j = -ry + 1; j <= ry; j++) wy[j + ry - 1] = weight((j - dy) / sy);
    let wsum = 0;
    acc.fill(0);
    for (let j = -ry + 1; j <= ry; j++) {
      const y = y0 + j;
      if (y < 0 || y >= wh) continue;
      const wyj = wy[j + ry - 1]!;
      if (wyj === 0) continue;
      for (let i = -rx + 1; i <= rx; i++) {
        const x = x0 + i;
        if (x < 0 || x >= ww) continue;
        const s = y * ww + x;
        if (!valid[s]) continue;
        const w = wyj * wx[i + rx - 1]!;
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
