import type { Cog } from './cog.js';
import { readWindow } from './window.js';

/**
 * The 2nd and 98th percentiles of each band (0-based `bands`), from the smallest overview
 * that still has 256 pixels a side (the whole raster when it has no overviews), over at most
 * about a million pixels per band.
 */
export async function percentiles(cog: Cog, bands: readonly number[], nodata: number | null): Promise<[number, number][]> {
  const levels = cog.meta.levels;
  let level = levels.length - 1;
  while (level > 0 && Math.min(levels[level]!.width, levels[level]!.height) < 256) level--;
  const lv = levels[level]!;
  const win = await readWindow(cog, level, [0, 0, lv.width, lv.height], bands, nodata);
  return win.bands.map((band) => {
    const stride = Math.max(1, Math.floor(band.length / 1_000_000));
    const values: number[] = [];
    for (let i = 0; i < band.length; i += stride) if (win.valid[i]) values.push(band[i]!);
    if (values.length === 0) throw new Error('has no valid pixels');
    const sorted = Float64Array.from(values).sort();
    const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))))]!;
    const lo = at(0.02),
      hi = at(0.98);
    return [lo, hi === lo ? lo + 1 : hi];
  });
}
