import type { Cog } from '../../sources/cog.js';
import { sampleWindow } from '../../sources/sample.js';
import { readWindow, releaseWindow } from '../../sources/window.js';
import { planRead, type ReadPlan, type Resampling } from '../../tiles/plan.js';
import { Operator } from '../operator.js';
import { allocOf, bandRaster, type BandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';

export interface ReadParams {
  source: string;
  /** 1-based; all bands when absent. */
  bands?: number[];
  resampling?: Resampling;
  nodata?: number | null;
}

/**
 * Reads bands of a source onto the tile grid (plus the graph's buffer), reprojecting from the
 * source CRS and choosing the overview as gdalwarp does.
 */
export class Read extends Operator {
  readonly op = 'read';
  readonly arity = 0;
  readonly bands: number[];
  readonly resampling: Resampling;
  readonly nodata: number | null;
  private readonly zeroBased: number[];

  constructor(readonly params: ReadParams, private readonly cog: Cog) {
    super();
    const meta = cog.meta;
    this.bands = params.bands ?? Array.from({ length: meta.bands }, (_, i) => i + 1);
    for (const b of this.bands) {
      if (b > meta.bands) throw new Error(`band ${b} does not exist: source '${params.source}' has ${meta.bands} band(s)`);
    }
    this.zeroBased = this.bands.map((b) => b - 1);
    // Palette indices are categories: averaging them would invent classes.
    this.resampling = params.resampling ?? (meta.palette ? 'nearest' : 'bilinear');
    this.nodata = params.nodata === undefined ? meta.nodata : params.nodata;
  }

  shape(): OutputShape {
    return { kind: 'bands', bands: this.bands.length };
  }

  async apply(_inputs: Raster[], ctx: TileContext): Promise<Raster | null> {
    const meta = this.cog.meta;
    const key = `plan:${meta.location}@${meta.version}:${this.resampling}`;
    let plan = ctx.memo?.get(key) as ReturnType<typeof planRead> | undefined;
    if (plan === undefined) {
      plan = planRead({ width: meta.width, height: meta.height, geoTransform: meta.geoTransform, proj4: meta.crs.proj4, levels: meta.levels }, ctx, this.resampling);
      ctx.memo?.set(key, plan);
    }
    if (!plan) return null;
    if (!this.group) return this.sample(plan, this.zeroBased, ctx);
    // Reads of one source in one graph are sampled once, for all their bands together.
    const shared = `read:${this.group.key}`;
    let all = ctx.memo?.get(shared) as Promise<BandRaster> | undefined;
    if (!all) {
      all = this.sample(plan, this.group.bands, ctx);
      ctx.memo?.set(shared, all);
    }
    const r = await all;
    return { ...r, bands: this.zeroBased.map((b) => r.bands[this.group!.bands.indexOf(b)]!) };
  }

  private async sample(plan: ReadPlan, bands: number[], ctx: TileContext): Promise<BandRaster> {
    const meta = this.cog.meta;
    const t0 = performance.now();
    const win = await readWindow(this.cog, plan.level, plan.window, bands, this.nodata);
    if (ctx.timings) ctx.timings.read += performance.now() - t0;
    const alloc = allocOf(ctx);
    const out = bandRaster(plan.width, plan.width, bands.length, alloc.bytes(plan.width * plan.width), alloc);
    sampleWindow(win, plan.coords, this.resampling, plan.scaleX, plan.scaleY, out, plan.separable);
    releaseWindow(win);
    if (meta.palette && bands.length === 1) out.palette = meta.palette;
    return out;
  }

  private group: { key: string; bands: number[] } | undefined;

  /**
   * Lets the reads of one graph that take the same source the same way (resampling,
   * nodata) share one window read and one resampling pass per tile. A pixel is then valid
   * where all their bands are.
   */
  static fuse(reads: Read[]): void {
    const groups = new Map<string, Read[]>();
    for (const r of reads) {
      const key = `${r.cog.meta.location}@${r.cog.meta.version}:${r.resampling}:${r.nodata}`;
      groups.set(key, [...(groups.get(key) ?? []), r]);
    }
    for (const [key, members] of groups) {
      if (members.length < 2) continue;
      const bands = [...new Set(members.flatMap((m) => m.zeroBased))].sort((a, b) => a - b);
      for (const m of members) m.group = { key, bands };
    }
  }

  /**
   * The 2nd and 98th percentiles of each band read, from the smallest overview that still
   * has 256 pixels a side (the whole raster when it has no overviews): computed once.
   */
  percentiles(): Promise<[number, number][]> {
    this.stats ??= this.computePercentiles();
    return this.stats;
  }

  private stats: Promise<[number, number][]> | undefined;

  private async computePercentiles(): Promise<[number, number][]> {
    const levels = this.cog.meta.levels;
    let level = levels.length - 1;
    while (level > 0 && Math.min(levels[level]!.width, levels[level]!.height) < 256) level--;
    const lv = levels[level]!;
    const win = await readWindow(this.cog, level, [0, 0, lv.width, lv.height], this.zeroBased, this.nodata);
    return win.bands.map((band) => {
      const stride = Math.max(1, Math.floor(band.length / 1_000_000));
      const values: number[] = [];
      for (let i = 0; i < band.length; i += stride) if (win.valid[i]) values.push(band[i]!);
      if (values.length === 0) throw new Error(`rescale from: auto: source '${this.params.source}' has no valid pixels`);
      const sorted = Float64Array.from(values).sort();
      const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))))]!;
      const lo = at(0.02), hi = at(0.98);
      return [lo, hi === lo ? lo + 1 : hi];
    });
  }

  config(): Record<string, unknown> {
    // JSON has no NaN: it is spelt "nan", as GDAL writes it.
    const nodata = this.nodata !== null && Number.isNaN(this.nodata) ? 'nan' : this.nodata;
    return { source: this.params.source, bands: this.bands, resampling: this.resampling, nodata };
  }
}
