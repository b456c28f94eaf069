/**
 * The render thread: builds each layer's graph once (per layer version) and keeps it, then
 * renders tiles to RGBA, which goes back to the main thread as a transferred buffer.
 */
import { Piscina, transferableSymbol, valueSymbol } from 'piscina';
import { buildPipeline, type LayerSpec } from '../src/layers/layer.js';
import type { Operator } from '../src/ops/operator.js';
import { toTileRgba, type Alloc, type TileContext } from '../src/ops/raster.js';
import { BufferPool, TileArena } from '../src/render/arena.js';
import { indexedPng } from '../src/render/png.js';
import type { RenderResult, RenderTask } from '../src/render/task.js';
import { blockCache } from '../src/sources/blockcache.js';
import { Cog } from '../src/sources/cog.js';
import { tileBounds } from '../src/tiles/mercator.js';

interface Built {
  graph: Operator;
  cogs: Cog[];
}

// The render threads share what they decode (see BlockCache.share).
blockCache.share();

const built = new Map<string, Promise<Built>>();
/** Layer versions kept per thread; older versions of a layer are dropped. */
const latest = new Map<string, string>();

async function build(spec: LayerSpec): Promise<Built> {
  const sources = new Map<string, Cog>();
  for (const [name, location] of Object.entries(spec.sources)) sources.set(name, await Cog.open(location));
  return { graph: buildPipeline(spec.config.pipeline, { sources }), cogs: [...sources.values()] };
}

function graphFor(spec: LayerSpec): Promise<Built> {
  let p = built.get(spec.version);
  if (!p) {
    p = build(spec);
    p.catch(() => built.delete(spec.version));
    built.set(spec.version, p);
    const old = latest.get(spec.name);
    if (old && old !== spec.version) {
      const gone = built.get(old);
      built.delete(old);
      gone?.then((b) => Promise.all(b.cogs.map((c) => c.close()))).catch(() => {});
    }
    latest.set(spec.name, spec.version);
  }
  return p;
}

/** Renders one tile in this thread; its rasters come from `alloc` when given. */
export async function renderTile(task: RenderTask, alloc?: Alloc): Promise<RenderResult> {
  const { graph } = await graphFor(task.layer);
  await blockCache.catchUp();
  const t0 = performance.now();
  const ctx: TileContext = {
    z: task.z, x: task.x, y: task.y, size: task.size, buffer: graph.buffer(),
    bounds: tileBounds(task), timings: { read: 0 }, warnings: [], memo: new Map(), alloc,
  };
  const raster = await graph.apply([], ctx);
  const rgba = raster ? toTileRgba(raster, ctx.buffer, task.size, alloc) : null;
  const total = performance.now() - t0;
  const result: RenderResult = { rgba: rgba ? (rgba.buffer as ArrayBuffer) : null, readMs: ctx.timings!.read, opsMs: Math.max(0, total - ctx.timings!.read), warnings: ctx.warnings! };
  return result;
}

/** Rasters recycled between this thread's tiles (several may be in flight at once). */
const spare = new BufferPool(32 * 1024 * 1024);

/**
 * Renders, and writes PNG tiles of at most 256 colours as indexed PNGs here (a byte a pixel
 * to compress instead of four); every raster of the tile but the result's own RGBA goes back
 * to this thread's pool.
 */
export async function renderEncoded(task: RenderTask): Promise<RenderResult> {
  const arena = new TileArena(spare);
  let result: RenderResult | undefined;
  try {
    result = await renderTile(task, arena);
    if (result.rgba && task.format === 'png') {
      const t0 = performance.now();
      const png = indexedPng(new Uint8Array(result.rgba), task.size);
      if (png) {
        result.encodeMs = performance.now() - t0;
        result.png = png.buffer as ArrayBuffer;
        result.rgba = null;
      }
    }
    result.blocks = blockCache.takeCounts();
    return result;
  } finally {
    arena.release(result?.rgba ?? undefined);
  }
}

/** The pool's entry: the result's buffer moves to the main thread instead of being copied. */
export default async function render(task: RenderTask): Promise<RenderResult> {
  const result = await renderEncoded(task);
  const moved = result.png ?? result.rgba;
  if (!moved) return result;
  return Piscina.move({ [transferableSymbol]: [moved], [valueSymbol]: result } as never) as unknown as RenderResult;
}
