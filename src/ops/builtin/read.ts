import type { Cog } from '../../sources/cog.js';
import { sampleWindow } from '../../sources/sample.js';
import { readWindow } from '../../sources/window.js';
import { planRead, type Resampling } from '../../tiles/plan.js';
import { Operator } from '../operator.js';
import { bandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';

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
    const plan = planRead({ width: meta.width, height: meta.height, geoTransform: meta.geoTransform, proj4: meta.crs.proj4, levels: meta.levels }, ctx, this.resampling);
    if (!plan) return null;
    const t0 = performance.now();
    const win = await readWindow(this.cog, plan.level, plan.window, this.zeroBased, this.nodata);
    if (ctx.timings) ctx.timings.read += performance.now() - t0;
    const out = bandRaster(plan.width, plan.width, this.bands.length, new Uint8Array(plan.width * plan.width));
    sampleWindow(win, plan.u, plan.v, this.resampling, plan.scaleX, plan.scaleY, out);
    if (meta.palette && this.bands.length === 1) out.palette = meta.palette;
    return out;
  }

  config(): Record<string, unknown> {
    // JSON has no NaN: it is spelt "nan", as GDAL writes it.
    const nodata = this.nodata !== null && Number.isNaN(this.nodata) ? 'nan' : this.nodata;
    return { source: this.params.source, bands: this.bands, resampling: this.resampling, nodata };
  }
}
