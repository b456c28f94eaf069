/**
 * The pixel engine: one tile of one layer, in three steps that never mix.
 *
 * 1. Plan: for each group of the graph's reads, which overview, which window and where each
 *    output pixel falls (src/tiles/plan.ts, pure arithmetic).
 * 2. Fetch: every window, all at once (src/sources: blocks, decoding, the block cache).
 * 3. Compute: resample each window onto the tile grid, then run the operators.
 */
import { heapAlloc, type Alloc } from '../alloc.js';
import { buildGraph } from '../ops/build.js';
import { readGroups, type ReadGroup } from '../ops/builtin/read.js';
import { operatorsOf, type Operator } from '../ops/operator.js';
import { toTileRgba, type BandRaster, type Raster, type RgbaRaster, type TileContext } from '../ops/raster.js';
import { Cog } from '../sources/cog.js';
import type { Window } from '../sources/sample.js';
import { readWindow } from '../sources/window.js';
import { tileBounds, type TileId } from '../tiles/mercator.js';
import { planRead, type PlanSource, type ReadPlan } from '../tiles/plan.js';
import { onTileGrid, planSourceOf, readMosaic } from './mosaic.js';
import type { LayerSpec, RenderTask } from './task.js';

/** A tile to render: where, how large, and the mosaic members under it. */
export type Tile = TileId & {
  size: number;
  members?: RenderTask['members'];
  /** Web Mercator bounds of an area that is not a tile of the grid (`/preview`, `/statistics`); z, x and y then only name it. */
  bounds?: readonly [number, number, number, number];
};

export interface TileRaster {
  /** The graph's output, the buffer included; null when there is nothing to draw. */
  raster: Raster | null;
  ctx: TileContext;
  /** Milliseconds spent fetching and decoding source windows. */
  readMs: number;
}

export interface TileRender {
  /** size*size*4 straight RGBA, or null when the tile has nothing to draw. */
  rgba: Uint8Array | null;
  /** The colour map's entry of each pixel of `rgba`, when the graph ends in one drawn without a margin (see RgbaRaster.codes). */
  codes?: RgbaRaster['codes'];
  readMs: number;
  /** Milliseconds for everything after the fetch: resampling and the operators. */
  opsMs: number;
  warnings: { check: string; message: string }[];
}

/** A layer's graph as a render thread keeps it: built once, its reads grouped, its sources open. */
export class LayerGraph {
  private readonly groups: readonly ReadGroup[];
  private readonly planSources: readonly PlanSource[];

  constructor(
    readonly graph: Operator,
    readonly cogs: ReadonlyMap<string, Cog>,
    private readonly mosaics: LayerSpec['mosaics'] = {},
  ) {
    this.groups = readGroups(graph);
    this.planSources = this.groups.map(({ meta }) => planSourceOf(meta));
  }

  /** Opens the spec's sources, builds its graph and does the graph's one-time work. */
  static async open(spec: LayerSpec): Promise<LayerGraph> {
    const cogs = new Map<string, Cog>();
    try {
      for (const [name, location] of Object.entries(spec.sources)) cogs.set(name, await Cog.open(location));
      const sources = new Map([...cogs].map(([name, cog]) => [name, { meta: cog.meta, mosaic: !!spec.mosaics?.[name] }]));
      const file = (ref: string) => {
        const location = spec.files?.[ref];
        if (!location) throw new Error(`file '${ref}' is not among the layer's files`);
        return location;
      };
      const layer = new LayerGraph(buildGraph(spec.pipeline, { sources, file }), cogs, spec.mosaics);
      await layer.prepare();
      return layer;
    } catch (err) {
      await Promise.all([...cogs.values()].map((c) => c.close().catch(() => {})));
      throw err;
    }
  }

  async prepare(): Promise<void> {
    for (const op of operatorsOf(this.graph)) await op.prepare(this.cogs);
  }

  /** The graph's output for one tile, before it is drawn as RGBA. */
  async raster(tile: Tile, alloc: Alloc = heapAlloc, warnings: TileContext['warnings'] = [], tap?: TileContext['tap']): Promise<TileRaster> {
    const grid = { z: tile.z, size: tile.size, buffer: this.graph.buffer(), bounds: tile.bounds ?? tileBounds(tile) };
    const plans = Array.from(this.groups, (g, i) => (this.mosaics?.[g.source] ? null : planRead(this.planSources[i]!, grid, g.resampling, alloc)));

    const t0 = performance.now();
    // A mosaic's read is fetched and resampled at once (its members may lie on several grids).
    const fetched = await Promise.all(
      Array.from(this.groups, (g, i): Promise<Window | BandRaster | null> | null => {
        const mosaic = this.mosaics?.[g.source];
        if (mosaic) {
          const members = tile.members?.[g.source] ?? [];
          const read = {
            bands: g.bands,
            nodata: g.nodataGiven ? g.nodata : undefined,
            resampling: g.resampling,
            method: mosaic.method,
            members,
            palette: g.meta.palette,
          };
          return members.length ? readMosaic(read, grid, alloc) : null;
        }
        const plan = plans[i];
        return plan ? readWindow(this.cogs.get(g.source)!, plan.level, plan.window, g.bands, g.nodata) : null;
      }),
    );
    const readMs = performance.now() - t0;

    const reads = new Map<Operator, BandRaster | null>();
    this.groups.forEach((g, i) => {
      const f = fetched[i];
      const r = !f ? null : 'kind' in f ? f : resample(g, plans[i]!, f, alloc);
      // A member with the group's bands in the group's order takes the raster as it is.
      const whole = (picks: readonly number[]) => r !== null && picks.length === r.bands.length && picks.every((k, i) => k === i);
      for (const m of g.members) reads.set(m.read, r && (whole(m.picks) ? r : { ...r, bands: Array.from(m.picks, (k) => r.bands[k]!) }));
    });
    const ctx: TileContext = { ...grid, x: tile.x, y: tile.y, warnings, alloc, reads, tap };
    return { raster: await this.graph.apply([], ctx), ctx, readMs };
  }

  /** The graph's reads: which source each reads, its bands, nodata and resampling. */
  get reads(): readonly ReadGroup[] {
    return this.groups;
  }

  /** One tile as straight RGBA. */
  async render(tile: Tile, alloc: Alloc = heapAlloc, tap?: TileContext['tap']): Promise<TileRender> {
    const t0 = performance.now();
    const warnings: TileRender['warnings'] = [];
    const { raster, ctx, readMs } = await this.raster(tile, alloc, warnings, tap);
    const rgba = raster ? toTileRgba(raster, ctx.buffer, tile.size, alloc) : null;
    // The codes hold for the raster as drawn: only when the tile is that raster, not a crop of it.
    const codes = raster?.kind === 'rgba' && rgba === raster.data ? raster.codes : undefined;
    return { rgba, codes, readMs, opsMs: Math.max(0, performance.now() - t0 - readMs), warnings };
  }

  async close(): Promise<void> {
    await Promise.all([...this.cogs.values()].map((c) => c.close()));
  }
}

/** A fetched window onto the tile grid; the window goes back to its pool. */
function resample(g: ReadGroup, plan: ReadPlan, win: Window, alloc: Alloc): BandRaster {
  const out = onTileGrid(win, plan, g.resampling, alloc);
  if (g.meta.palette && g.bands.length === 1) out.palette = g.meta.palette;
  return out;
}
