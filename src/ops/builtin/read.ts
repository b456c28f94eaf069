import { z } from 'zod';
import { TileError } from '../../errors.js';
import type { Cog, CogMeta } from '../../sources/cog.js';
import type { Resampling } from '../../sources/sample.js';
import { percentiles } from '../../sources/statistics.js';
import { Operator, operatorsOf, parseParams, type BuildContext } from '../operator.js';
import { bandList, finite, MAX_BANDS } from '../params.js';
import type { OutputShape, Raster, TileContext } from '../raster.js';

const ReadParams = z.strictObject({
  source: z.string().min(1),
  /** 1-based; all bands when absent. */
  bands: bandList.optional(),
  resampling: z.enum(['nearest', 'bilinear', 'cubic']).optional(),
  /** From the file when absent; `nan` (as GDAL spells it) or null (none) override it. */
  nodata: z.union([finite, z.literal('nan'), z.null()]).optional(),
});
export type ReadParams = z.input<typeof ReadParams>;

/**
 * Reads bands of a source onto the tile grid (plus the graph's buffer), reprojecting from the
 * source CRS and choosing the overview as gdalwarp does.
 *
 * The operator itself does no I/O: a render plans every read of the graph, fetches them all
 * and resamples them (src/render/renderer.ts) before any operator runs; `apply` hands on
 * this read's bands of the result.
 */
export class Read extends Operator {
  static readonly op = 'read';
  static readonly params = ReadParams;
  readonly arity = 0;
  readonly source: string;
  readonly meta: CogMeta;
  readonly bands: number[];
  readonly resampling: Resampling;
  readonly nodata: number | null;
  /** Set in the layer file, not taken from the source (a mosaic's members then keep their own). */
  readonly nodataGiven: boolean;
  /** The bands, 0-based. */
  readonly zeroBased: number[];
  /** Of a mosaic source: without a nodata of its own, the canonical config names none either. */
  private readonly mosaic: boolean;

  constructor(params: z.input<typeof ReadParams>, ctx: Pick<BuildContext, 'sources'>) {
    super();
    const p = parseParams(ReadParams, params);
    const src = ctx.sources.get(p.source);
    if (!src) throw new Error(`source '${p.source}' is not declared under sources: (declared: ${[...ctx.sources.keys()].join(', ') || 'none'})`);
    const meta = (this.meta = src.meta);
    this.source = p.source;
    // Without `bands`, all of them: as many as the parameter could name, or the graph that the
    // render threads rebuild from this read's config would be refused there.
    if (!p.bands && meta.bands > MAX_BANDS) throw new Error(`source '${p.source}' has ${meta.bands} bands; name at most ${MAX_BANDS} with 'bands: [...]'`);
    this.bands = p.bands ?? Array.from({ length: meta.bands }, (_, i) => i + 1);
    for (const b of this.bands) {
      if (b > meta.bands) throw new Error(`band ${b} does not exist: source '${p.source}' has ${meta.bands} band(s)`);
    }
    this.zeroBased = this.bands.map((b) => b - 1);
    // Palette indices are categories: averaging them would invent classes.
    this.resampling = p.resampling ?? (meta.palette ? 'nearest' : 'bilinear');
    this.nodata = p.nodata === undefined ? meta.nodata : p.nodata === 'nan' ? NaN : p.nodata;
    this.nodataGiven = p.nodata !== undefined;
    this.mosaic = !!src.mosaic;
  }

  shape(): OutputShape {
    return { kind: 'bands', bands: this.bands.length };
  }

  apply(_inputs: Raster[], ctx: TileContext): Raster | null {
    const r = ctx.reads?.get(this);
    if (r === undefined) throw new Error(`read of '${this.source}': the render did not fetch it`);
    return r;
  }

  /**
   * The 2nd and 98th percentiles of each band read: computed once, by the first render
   * thread's `prepare` of an operator that asks (rescale `from: auto`).
   */
  percentiles(cog: Cog): Promise<[number, number][]> {
    this.stats ??= percentiles(cog, this.zeroBased, this.nodata).catch((err: Error) => {
      // A damaged block stays what it is (bad source data), with the operator that read it named.
      const detail = `rescale from: auto: source '${this.source}' ${err instanceof TileError ? err.detail : err.message}`;
      throw err instanceof TileError ? new TileError(err.code, err.title, detail) : new Error(detail);
    });
    return this.stats;
  }

  private stats: Promise<[number, number][]> | undefined;

  config(): Record<string, unknown> {
    // JSON has no NaN: it is spelt "nan", as GDAL writes it.
    const nodata = this.nodata !== null && Number.isNaN(this.nodata) ? 'nan' : this.nodata;
    if (this.mosaic && !this.nodataGiven) return { source: this.source, bands: this.bands, resampling: this.resampling };
    return { source: this.source, bands: this.bands, resampling: this.resampling, nodata };
  }
}

/**
 * Reads of one source taken the same way (resampling, nodata) in one graph: one window read
 * and one resampling pass per tile serve them all. A pixel is then valid where all their
 * bands are.
 */
export interface ReadGroup {
  source: string;
  meta: CogMeta;
  /** The union of the members' bands, 0-based, ascending. */
  bands: number[];
  resampling: Resampling;
  nodata: number | null;
  nodataGiven: boolean;
  /** Each member with the positions of its bands in `bands`. */
  members: { read: Read; picks: number[] }[];
}

/** The graph's reads, grouped: what a render plans and fetches before it runs the operators. */
export function readGroups(graph: Operator): ReadGroup[] {
  const groups = new Map<string, ReadGroup>();
  for (const op of operatorsOf(graph)) {
    if (!(op instanceof Read)) continue;
    const key = `${op.source}:${op.resampling}:${op.nodata}:${op.nodataGiven}`;
    let g = groups.get(key);
    if (!g)
      groups.set(
        key,
        (g = { source: op.source, meta: op.meta, bands: [], resampling: op.resampling, nodata: op.nodata, nodataGiven: op.nodataGiven, members: [] }),
      );
    g.members.push({ read: op, picks: [] });
  }
  for (const g of groups.values()) {
    g.bands = [...new Set(g.members.flatMap((m) => m.read.zeroBased))].sort((a, b) => a - b);
    for (const m of g.members) m.picks = m.read.zeroBased.map((b) => g.bands.indexOf(b));
  }
  return [...groups.values()];
}
