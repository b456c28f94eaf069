/**
 * The render thread: builds each layer's graph once (per layer version) and keeps it, then
 * renders tiles, which go back to the main thread as transferred buffers. Failures go back as
 * data (`{code, title, detail}`), since an Error's class does not survive the trip.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { Piscina, transferableSymbol, valueSymbol, workerData } from 'piscina';
import type { Alloc } from '../src/alloc.js';
import { toWire } from '../src/errors.js';
import { useKernels } from '../src/kernels.js';
import { BufferPool, TileArena } from '../src/render/arena.js';
import { indexedPng, indexedPngOfCodes, rgbaPng } from '../src/render/png.js';
import { areaStatistics, probeTile } from '../src/render/query.js';
import { LayerGraph, type TileRender } from '../src/render/renderer.js';
import type { LayerSpec, RenderReply, RenderResult, RenderTask, RenderThreadData } from '../src/render/task.js';
import { blockCache } from '../src/sources/blockcache.js';
import { recordCells, takeCells } from '../src/sources/cells.js';

const settings = workerData as RenderThreadData | undefined;
useKernels(settings?.kernels ?? 'fast');
if (settings?.blockCacheMb) {
  blockCache.resize(settings.blockCacheMb * 1024 * 1024);
  // The render threads share what they decode (see BlockCache.share).
  blockCache.share();
}
if (settings?.cells) recordCells();

const built = new Map<string, Promise<LayerGraph>>();
/** Layer versions kept per thread; older versions of a layer are dropped. */
const latest = new Map<string, string>();

function graphFor(spec: LayerSpec): Promise<LayerGraph> {
  let p = built.get(spec.version);
  if (!p) {
    p = LayerGraph.open(spec);
    p.catch(() => built.delete(spec.version));
    built.set(spec.version, p);
    const old = latest.get(spec.name);
    if (old && old !== spec.version) {
      const gone = built.get(old);
      built.delete(old);
      gone?.then((g) => g.close()).catch(() => {});
    }
    latest.set(spec.name, spec.version);
  }
  return p;
}

/** Renders one tile in this thread; its rasters come from `alloc` when given. */
export async function renderTile(task: RenderTask, alloc?: Alloc): Promise<RenderResult> {
  return (await drawTile(task, alloc)).result;
}

/** renderTile, with the colour map's entries of the tile's pixels when it has them (for this thread's PNG writer; never sent). */
async function drawTile(task: RenderTask, alloc?: Alloc): Promise<{ result: RenderResult; codes?: TileRender['codes'] }> {
  const layer = await graphFor(task.layer);
  await blockCache.catchUp();
  // A question about the data: its answer, without the picture.
  if (task.probe) {
    const { render, point } = await probeTile(layer, { ...task, probe: task.probe }, alloc);
    return { result: { rgba: null, readMs: render.readMs, opsMs: render.opsMs, warnings: render.warnings, point } };
  }
  if (task.stats) {
    const { render, stats } = await areaStatistics(layer, { ...task, stats: task.stats }, alloc);
    return { result: { rgba: null, readMs: render.readMs, opsMs: render.opsMs, warnings: render.warnings, stats } };
  }
  const r = await layer.render(task, alloc);
  return { result: { rgba: r.rgba ? (r.rgba.buffer as ArrayBuffer) : null, readMs: r.readMs, opsMs: r.opsMs, warnings: r.warnings }, codes: r.codes };
}

/** Rasters recycled between this thread's tiles (several may be in flight at once). */
const spare = new BufferPool(32 * 1024 * 1024);

/**
 * Renders, and writes PNG tiles here: of at most 256 colours as indexed PNGs (a byte a pixel
 * to compress instead of four; from the colour map's entries when the graph ends in one), of
 * more as RGBA PNGs by libdeflate; every raster of the tile but the result's own RGBA goes
 * back to this thread's pool.
 */
export async function renderEncoded(task: RenderTask): Promise<RenderResult> {
  const arena = new TileArena(spare);
  let result: RenderResult | undefined;
  try {
    const drawn = await drawTile(task, arena);
    result = drawn.result;
    if (result.rgba && task.format === 'png') {
      const t0 = performance.now();
      const rgba = new Uint8Array(result.rgba);
      const { codes } = drawn;
      const png = (codes ? indexedPngOfCodes(codes, task.size) : indexedPng(rgba, task.size)) ?? rgbaPng(rgba, task.size);
      if (png) {
        result.encodeMs = performance.now() - t0;
        result.png = png.buffer as ArrayBuffer;
        result.rgba = null;
      }
    }
    result.blocks = blockCache.takeCounts();
    const cells = takeCells();
    if (cells) result.cells = cells;
    result.blockCache = { thread: -1, bytes: blockCache.bytes };
    result.memory = memorySample();
    return result;
  } finally {
    arena.release(result?.rgba ?? undefined);
  }
}

/**
 * A metatile: neighbouring tiles of one layer in one task, rendered one after another in this
 * thread (the blocks they share decoded once, through the cache), each answered on its own: a
 * tile that fails leaves the others' answers standing. Every tile is planned and drawn exactly
 * as it is alone, so its bytes are the same.
 */
export async function renderMany(tasks: RenderTask[]): Promise<RenderReply[]> {
  const replies: RenderReply[] = [];
  const moved: ArrayBuffer[] = [];
  for (const task of tasks) {
    try {
      const result = await renderEncoded(task);
      const buffer = result.png ?? result.rgba;
      if (buffer) moved.push(buffer);
      replies.push({ ok: true, result });
    } catch (err) {
      replies.push({ ok: false, error: toWire(err) });
    }
  }
  return Piscina.move({ [transferableSymbol]: moved, [valueSymbol]: replies } as never) as unknown as RenderReply[];
}

let sampledAt = -Infinity;

/** This thread's garbage collections since the last sample. */
let collections = { major: 0, minor: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) collections.major++;
    else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) collections.minor++;
  }
}).observe({ entryTypes: ['gc'] });

/** This thread's heap, array buffers and collections, once a second (reading them costs a system call). */
function memorySample(): RenderResult['memory'] {
  const now = performance.now();
  if (now - sampledAt < 1000) return undefined;
  sampledAt = now;
  const m = process.memoryUsage();
  const sample = { heapBytes: m.heapUsed, arrayBufferBytes: m.arrayBuffers, collections };
  collections = { major: 0, minor: 0 };
  return sample;
}

/** An entry that does nothing: answered once this thread has loaded its modules (see RenderPool.close). */
export function loaded(): true {
  return true;
}

/** The pool's entry: the result's buffer moves to the main thread instead of being copied. */
export default async function render(task: RenderTask): Promise<RenderReply> {
  let result: RenderResult;
  try {
    result = await renderEncoded(task);
  } catch (err) {
    return { ok: false, error: toWire(err) };
  }
  const reply: RenderReply = { ok: true, result };
  const moved = result.png ?? result.rgba;
  if (!moved) return reply;
  return Piscina.move({ [transferableSymbol]: [moved], [valueSymbol]: reply } as never) as unknown as RenderReply;
}
