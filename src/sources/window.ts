import { SourceError } from '../errors.js';
import { copyRows, twoBands16, validity as validityKernel } from '../kernels.js';
import type { Cog } from './cog.js';
import { blocksAcross } from './tiff.js';
import type { Window } from './sample.js';

/** The most a window may decode, in blocks as stored (all samples of a pixel-interleaved block). */
export const MAX_WINDOW_DECODED_BYTES = 512 * 2 ** 20;
/** The most a window may hold as Float32 bands and validity. */
export const MAX_WINDOW_BYTES = 512 * 2 ** 20;

/**
 * Reads a window of one pyramid level as Float32 bands plus a validity mask, fetching every
 * block it touches at once (each through the decoded-block cache).
 *
 * Invalid: the nodata value (the file's, or `nodata` when given), NaN, and pixels the
 * internal mask (GDAL's per-dataset mask, TIFF NewSubfileType bit 2) marks as empty.
 */
export async function readWindow(
  cog: Cog,
  level: number,
  win: [number, number, number, number],
  bands: readonly number[],
  nodata: number | null,
): Promise<Window> {
  const [x0, y0, x1, y1] = win;
  layoutOf(cog, level, win, bands);
  const n = (x1 - x0) * (y1 - y0);
  // One shape for every window, for the code V8 optimises: its fields from the start, and its
  // bands by Array.from, not map(), whose array is packed before the function making it is
  // optimised and holey after; code optimised for the one gave up at the other (the same holds
  // for the other arrays of bands the render threads make, and their plans).
  const out: Window = { width: x1 - x0, height: y1 - y0, bands: Array.from(bands, () => takeFloat32(n)), valid: takeBytes(n), allValid: false };
  // On a failure the buffers are left to the collector: other blocks may still be landing in them.
  out.allValid = (await readWindowInto(cog, level, win, bands, nodata, out, 0, 0)) === 0;
  return out;
}

/**
 * readWindow into a part of a larger window: the level's window `win` lands with its top-left
 * pixel at (dx, dy) of `dest`, bands and validity, and nothing else of `dest` is touched (a
 * mosaic's pieces, read side by side into one window). Answers how many pixels it left invalid.
 */
export async function readWindowInto(
  cog: Cog,
  level: number,
  win: [number, number, number, number],
  bands: readonly number[],
  nodata: number | null,
  dest: Window,
  dx: number,
  dy: number,
): Promise<number> {
  const { ww, wh, bw, bh, planar, spp, bx0, bx1, by0, by1, across } = layoutOf(cog, level, win, bands);
  const meta = cog.meta;
  const lv = meta.levels[level]!;
  const [x0, y0, x1, y1] = win;

  const stride = dest.width;
  const out = dest;
  const planes = planar ? bands : [0];
  const jobs: Promise<void>[] = [];
  const maskJobs: Promise<void>[] = [];
  const hasMask = !!lv.mask;
  const maskWin = hasMask ? takeBytes(ww * wh) : undefined;
  // NaN never equals itself, so without a nodata value `f` is NaN and only the NaN test bites.
  const f = nodata === null ? NaN : Math.fround(nodata);
  // Without a mask, the two-band kernel checks each part's pixels as it writes them: the pixels it checked and left invalid.
  const check = hasMask ? undefined : { nodata: f, valid: out.valid };
  let checked = 0,
    checkedInvalid = 0;

  for (let by = by0; by <= by1; by++) {
    for (let bx = bx0; bx <= bx1; bx++) {
      if (bx >= across) continue;
      // The part of this block inside the window.
      const cx0 = Math.max(x0, bx * bw),
        cx1 = Math.min(x1, (bx + 1) * bw);
      const cy0 = Math.max(y0, by * bh),
        cy1 = Math.min(y1, (by + 1) * bh);
      for (const plane of planes) {
        jobs.push(
          cog.readBlock(level, plane, bx, by).then((samples) => {
            if (spp > 1 && bands.length === 2) {
              // Two bands of interleaved samples (a red and a near-infrared band for NDVI): one walk.
              const d0 = out.bands[0]!,
                d1 = out.bands[1]!,
                o0 = bands[0]!,
                o1 = bands[1]!;
              // 16-bit samples (most multispectral imagery): the WebAssembly kernel, when it can.
              if (samples instanceof Uint16Array || samples instanceof Int16Array) {
                const part = [cx0 - bx * bw, cx1 - bx * bw, cy0 - by * bh, cy1 - by * bh] as const;
                const invalid = twoBands16(samples, bw, spp, o0, o1, part, d0, d1, (cy0 - y0 + dy) * stride - x0 + dx + cx0, stride, check);
                if (invalid >= 0) {
                  if (check) {
                    checked += (cx1 - cx0) * (cy1 - cy0);
                    checkedInvalid += invalid;
                  }
                  return;
                }
              }
              for (let y = cy0; y < cy1; y++) {
                const dstRow = (y - y0 + dy) * stride - x0 + dx;
                const end = dstRow + cx1;
                for (let d = dstRow + cx0, i = ((y - by * bh) * bw + cx0 - bx * bw) * spp; d < end; d++, i += spp) {
                  d0[d] = samples[i + o0]!;
                  d1[d] = samples[i + o1]!;
                }
              }
              return;
            }
            // One band of Float32 samples (a DEM's): the part's rows copied natively, in one call.
            if (spp === 1 && bands.length === 1 && samples instanceof Float32Array) {
              const dst = out.bands[0]!;
              const at = ((cy0 - y0 + dy) * stride - x0 + dx + cx0) * 4;
              const from = ((cy0 - by * bh) * bw + cx0 - bx * bw) * 4;
              if (copyRows(dst, at, stride * 4, samples, from, bw * 4, (cx1 - cx0) * 4, cy1 - cy0)) return;
            }
            for (let y = cy0; y < cy1; y++) {
              const srcRow = (y - by * bh) * bw;
              const dstRow = (y - y0 + dy) * stride - x0 + dx;
              for (let bi = 0; bi < bands.length; bi++) {
                if (planar && bands[bi] !== plane) continue;
                const dst = out.bands[bi]!;
                if (spp === 1) {
                  // One sample a pixel: a row is a contiguous run (a native copy and convert).
                  const from = srcRow + cx0 - bx * bw;
                  dst.set(samples.subarray(from, from + cx1 - cx0), dstRow + cx0);
                  continue;
                }
                // Interleaved samples: walk the row with a stride instead of recomputing the index.
                const end = dstRow + cx1;
                for (let d = dstRow + cx0, i = (srcRow + cx0 - bx * bw) * spp + bands[bi]!; d < end; d++, i += spp) dst[d] = samples[i]!;
              }
            }
          }),
        );
      }
      if (hasMask) {
        maskJobs.push(
          cog.readMaskBlock(level, bx, by)!.then((m) => {
            for (let y = cy0; y < cy1; y++) {
              const srcRow = (y - by * bh) * bw - bx * bw;
              const maskRow = (y - y0) * ww - x0;
              for (let x = cx0; x < cx1; x++) maskWin![maskRow + x] = m[srcRow + x]!;
            }
          }),
        );
      }
    }
  }
  await Promise.all([...jobs, ...maskJobs]);
  // Every pixel of the window checked by the two-band kernel.
  if (checked === ww * wh) return checkedInvalid;

  // One pass: the mask, then each band's NaN and nodata (compared at the band's own
  // precision: a Float32 nodata of -3.4e38 must match itself).
  const valid = out.valid;
  const bandsOut = out.bands;
  const nb = bands.length;
  const b0 = bandsOut[0]!,
    b1 = nb > 1 ? bandsOut[1]! : b0;
  // A whole window of one or two bands without a mask: the WebAssembly kernel (src/kernels.ts), when it can.
  const whole = !maskWin && nb <= 2 && dx === 0 && dy === 0 && stride === ww;
  const counted = whole ? validityKernel(bandsOut.slice(0, nb), ww * wh, f, valid) : undefined;
  if (counted !== undefined) return counted;
  let invalid = 0;
  for (let y = 0; y < wh; y++) {
    const row = (y + dy) * stride + dx;
    const end = row + ww;
    if (!maskWin && nb <= 2) {
      // The common case (one or two bands, no mask), twice as fast without the general branches.
      let good = 0;
      for (let k = row; k < end; k++) {
        const s0 = b0[k]!,
          s1 = b1[k]!;
        const ok = s0 === f || s0 !== s0 || s1 === f || s1 !== s1 ? 0 : 1;
        valid[k] = ok;
        good += ok;
      }
      invalid += ww - good;
      continue;
    }
    for (let k = row, m = y * ww; k < end; k++, m++) {
      let ok = maskWin ? (maskWin[m] ? 1 : 0) : 1;
      const s0 = b0[k]!,
        s1 = b1[k]!;
      if (s0 === f || s0 !== s0 || s1 === f || s1 !== s1) ok = 0;
      else
        for (let b = 2; b < nb; b++) {
          const v = bandsOut[b]![k]!;
          if (v === f || v !== v) {
            ok = 0;
            break;
          }
        }
      valid[k] = ok;
      invalid += ok ^ 1;
    }
  }
  if (maskWin) giveBuffer(bytesPool, maskWin.buffer as ArrayBuffer);
  return invalid;
}

/** The blocks a window of a level touches, once its cost is checked: refused past the bounds before a block is fetched. */
function layoutOf(cog: Cog, level: number, win: readonly [number, number, number, number], bands: readonly number[]) {
  const meta = cog.meta;
  const im = meta.levels[level]!.image;
  const [x0, y0, x1, y1] = win;
  const ww = x1 - x0;
  const wh = y1 - y0;
  const bw = im.blockWidth;
  const bh = im.blockHeight;
  const planar = im.planar === 2;
  const spp = planar ? 1 : im.samplesPerPixel;
  const bx0 = Math.floor(x0 / bw),
    bx1 = Math.floor((x1 - 1) / bw);
  const by0 = Math.floor(y0 / bh),
    by1 = Math.floor((y1 - 1) / bh);
  const across = blocksAcross(im);
  // What the window costs before a block is fetched: the decoded blocks it touches (every
  // sample of a pixel-interleaved block is decoded) and the window itself. Both follow from
  // the file's own fields, so a file can make them anything.
  const blocks = (Math.min(bx1, across - 1) - bx0 + 1) * (by1 - by0 + 1) * (planar ? bands.length : 1);
  const decoded = blocks * bw * bh * spp * (im.bitsPerSample >>> 3);
  const held = ww * wh * (4 * bands.length + 2);
  if (decoded > MAX_WINDOW_DECODED_BYTES || held > MAX_WINDOW_BYTES) {
    throw new SourceError(
      `${meta.location}: a ${ww}x${wh} window of level ${level} would decode ${Math.ceil(decoded / 2 ** 20)} MiB of blocks and hold ${Math.ceil(held / 2 ** 20)} MiB (at most ${MAX_WINDOW_DECODED_BYTES / 2 ** 20} and ${MAX_WINDOW_BYTES / 2 ** 20} MiB)`,
    );
  }
  return { ww, wh, bw, bh, planar, spp, bx0, bx1, by0, by1, across };
}

/*
 * Windows are garbage as soon as a tile is resampled, and a few hundred KB each: their
 * buffers are recycled (releaseWindow) instead of left to the collector. Several tiles may be
 * in flight in one thread, so this is a pool, not a single scratch buffer. Window sizes vary a
 * little from tile to tile, so a buffer is allocated with room to spare and handed out for
 * any window that fits in it (the smallest such).
 */
const floatPool: ArrayBuffer[] = [];
const bytesPool: ArrayBuffer[] = [];
const POOL_MAX = 16;
const SLACK = 1.25;

function takeBuffer(pool: ArrayBuffer[], byteLength: number): ArrayBuffer {
  let best = -1;
  for (let i = 0; i < pool.length; i++) {
    const len = pool[i]!.byteLength;
    if (len >= byteLength && (best < 0 || len < pool[best]!.byteLength)) best = i;
  }
  if (best < 0) return new ArrayBuffer(Math.ceil((byteLength * SLACK) / 8) * 8);
  return pool.splice(best, 1)[0]!;
}

function giveBuffer(pool: ArrayBuffer[], buf: ArrayBuffer): void {
  if (pool.length < POOL_MAX) pool.push(buf);
  else {
    // Keep the larger buffers: they fit more windows.
    let smallest = 0;
    for (let i = 1; i < pool.length; i++) if (pool[i]!.byteLength < pool[smallest]!.byteLength) smallest = i;
    if (pool[smallest]!.byteLength < buf.byteLength) pool[smallest] = buf;
  }
}

function takeFloat32(n: number): Float32Array {
  return new Float32Array(takeBuffer(floatPool, n * 4), 0, n);
}

function takeBytes(n: number): Uint8Array {
  return new Uint8Array(takeBuffer(bytesPool, n), 0, n);
}

/**
 * A window with nothing valid yet, from the same pool as readWindow's (a mosaic lays its members
 * into it), checked against the same bound.
 */
export function emptyWindow(width: number, height: number, bands: number): Window {
  const held = width * height * (4 * bands + 2);
  if (held > MAX_WINDOW_BYTES)
    throw new SourceError(`a ${width}x${height} mosaic window would hold ${Math.ceil(held / 2 ** 20)} MiB (at most ${MAX_WINDOW_BYTES / 2 ** 20} MiB)`);
  const win: Window = {
    width,
    height,
    bands: Array.from({ length: bands }, () => takeFloat32(width * height)),
    valid: takeBytes(width * height),
    allValid: false,
  };
  win.valid.fill(0);
  return win;
}

/** Gives a window's buffers back once nothing reads them any more. */
export function releaseWindow(win: Window): void {
  for (const b of win.bands) giveBuffer(floatPool, b.buffer as ArrayBuffer);
  giveBuffer(bytesPool, win.valid.buffer as ArrayBuffer);
}
