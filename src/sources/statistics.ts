import { SourceError } from '../errors.js';
import type { Cog } from './cog.js';
import { releaseWindow, readWindow } from './window.js';

/** Pixels a percentile estimate decodes at most per band, whatever the raster's size. */
export const SAMPLE_PIXELS = 2 ** 21;
/** Values kept per band for sorting. */
const SAMPLE_VALUES = 1_000_000;

/**
 * The 2nd and 98th percentiles of each band (0-based `bands`), from the smallest overview
 * that still has 256 pixels a side (the whole raster when it has no overviews). A level larger
 * than SAMPLE_PIXELS is sampled: whole blocks spread evenly over it, read one at a time, so
 * that memory and time stay bounded for a raster of any size.
 */
export async function percentiles(cog: Cog, bands: readonly number[], nodata: number | null): Promise<[number, number][]> {
  const levels = cog.meta.levels;
  let level = levels.length - 1;
  while (level > 0 && Math.min(levels[level]!.width, levels[level]!.height) < 256) level--;
  const lv = levels[level]!;
  const windows = sampleWindows(lv.width, lv.height, lv.image.blockWidth, lv.image.blockHeight);
  const pixels = windows.reduce((n, [x0, y0, x1, y1]) => n + (x1 - x0) * (y1 - y0), 0);
  const stride = Math.max(1, Math.floor(pixels / SAMPLE_VALUES));
  const values = bands.map(() => [] as number[]);
  let seen = 0;
  for (const win of windows) {
    const w = await readWindow(cog, level, win, bands, nodata);
    const n = w.valid.length;
    // The same pixels of every band; the stride runs on across windows.
    let i = (stride - (seen % stride)) % stride;
    for (; i < n; i += stride) if (w.valid[i]) for (let b = 0; b < bands.length; b++) values[b]!.push(w.bands[b]![i]!);
    seen += n;
    releaseWindow(w);
  }
  return values.map((v) => {
    if (v.length === 0) throw new SourceError('has no valid pixels');
    const sorted = Float64Array.from(v).sort();
    const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))))]!;
    const lo = at(0.02),
      hi = at(0.98);
    return [lo, hi === lo ? lo + 1 : hi];
  });
}

/**
 * Windows of a level whose pixels a percentile estimate reads: the whole level when it holds
 * at most SAMPLE_PIXELS, otherwise whole blocks on an even grid over it (one block per cell,
 * at the cell's centre), as many as SAMPLE_PIXELS allows and at least 16 where there are.
 */
export function sampleWindows(width: number, height: number, blockWidth: number, blockHeight: number): [number, number, number, number][] {
  if (width * height <= SAMPLE_PIXELS) return [[0, 0, width, height]];
  const across = Math.ceil(width / blockWidth),
    down = Math.ceil(height / blockHeight);
  const want = Math.min(across * down, Math.max(16, Math.floor(SAMPLE_PIXELS / (blockWidth * blockHeight))));
  const gx = Math.min(across, Math.max(1, Math.round(Math.sqrt((want * across) / down))));
  const gy = Math.min(down, Math.max(1, Math.floor(want / gx)));
  const out: [number, number, number, number][] = [];
  for (let j = 0; j < gy; j++) {
    const by = Math.floor(((j + 0.5) * down) / gy);
    for (let i = 0; i < gx; i++) {
      const bx = Math.floor(((i + 0.5) * across) / gx);
      const x0 = bx * blockWidth,
        y0 = by * blockHeight;
      out.push([x0, y0, Math.min(width, x0 + blockWidth), Math.min(height, y0 + blockHeight)]);
    }
  }
  return out;
}
