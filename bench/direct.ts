/**
 * tilegraph's renderer driven in this thread, without HTTP or the pool:
 * - `singleThread`: the render thread's own entry (renderEncoded in dist/workers/render.js,
 *   which writes indexed PNGs itself) plus the server's sharp encoder for the tiles it hands
 *   back as RGBA, one tile after another: per-core cost, comparable with the naive
 *   single-thread baseline, and what bench/profile.ts profiles;
 * - `coldTileCosts`: one tile rendered from a freshly opened source each time, so that no
 *   decoded block is reused; bytes read counted. This is the overview target's measure.
 */
import { buildGraph } from '../src/ops/build.js';
import { toTileRgba, type TableCodes } from '../src/ops/raster.js';
import { encodeTile } from '../src/render/encode.js';
import { LayerGraph } from '../src/render/renderer.js';
import type { LayerSpec, RenderTask } from '../src/render/task.js';
import { FileSource, type ByteSource } from '../src/sources/bytesource.js';
import { Cog } from '../src/sources/cog.js';
import { planRead } from '../src/tiles/plan.js';
import { renderEncoded } from '../workers/render.js';
import { summarise, type LatencySummary } from './loadgen.js';
import { tileBounds, type Tile } from './tiles.js';

export interface DirectResult {
  tiles: number;
  drawn: number;
  seconds: number;
  perSecond: number;
  latencyMs: LatencySummary;
  /** Mean milliseconds per tile in each phase. */
  phasesMs: { read: number; ops: number; encode: number };
  bytes: number;
  cutShort: boolean;
  /** Blocks decoded (not found in this thread's block cache). */
  blocksDecoded: number;
}

/**
 * Renders and encodes `tiles` one at a time through the render thread's entry function.
 * `members` gives a mosaic layer's members under each tile, as the server's task carries them.
 */
export async function singleThread(
  spec: LayerSpec,
  tiles: readonly Tile[],
  maxMs = Infinity,
  members?: (t: Tile) => RenderTask['members'],
): Promise<DirectResult> {
  const lat: number[] = [];
  let read = 0,
    ops = 0,
    encode = 0,
    bytes = 0,
    drawn = 0,
    decoded = 0,
    cutShort = false;
  const started = performance.now();
  for (const t of tiles) {
    if (performance.now() - started > maxMs) {
      cutShort = true;
      break;
    }
    const t0 = performance.now();
    const r = await renderEncoded({ layer: spec, z: t.z, x: t.x, y: t.y, size: 256, format: 'png', members: members?.(t) });
    read += r.readMs;
    ops += r.opsMs;
    decoded += r.blocks?.decoded ?? 0;
    if (r.png) {
      encode += r.encodeMs!;
      bytes += r.png.byteLength;
      drawn++;
    } else if (r.rgba) {
      const t1 = performance.now();
      const png = await encodeTile(new Uint8Array(r.rgba), 256, 'png');
      encode += performance.now() - t1;
      bytes += png.length;
      drawn++;
    }
    lat.push(performance.now() - t0);
  }
  const seconds = (performance.now() - started) / 1000;
  const n = Math.max(1, lat.length);
  const r2 = (v: number) => Math.round(v * 100) / 100;
  return {
    tiles: lat.length,
    drawn,
    seconds: r2(seconds),
    perSecond: Math.round((lat.length / seconds) * 10) / 10,
    latencyMs: summarise(lat),
    phasesMs: { read: r2(read / n), ops: r2(ops / n), encode: r2(encode / n) },
    bytes,
    cutShort,
    blocksDecoded: decoded,
  };
}

/** Counts the bytes a source hands out. */
class CountingSource implements ByteSource {
  bytes = 0;
  reads = 0;
  constructor(private readonly inner: ByteSource) {}
  get location() {
    return this.inner.location;
  }
  identity() {
    return this.inner.identity();
  }
  async read(offset: number, length: number, into?: Uint8Array) {
    const b = await this.inner.read(offset, length, into);
    this.bytes += b.length;
    this.reads++;
    return b;
  }
  close() {
    return this.inner.close();
  }
}

export interface ColdCost {
  file: string;
  tile: Tile;
  /** Pyramid level the plan reads, its size, and the window read from it. */
  level: number;
  levelSize: [number, number];
  window: [number, number, number, number];
  levels: number;
  iterations: number;
  /** Milliseconds per tile: read + graph + RGBA, then with the PNG encode. */
  renderMs: LatencySummary;
  renderAndEncodeMs: LatencySummary;
  bytesReadPerTile: number;
  readsPerTile: number;
}

let uniq = 0;

interface ColdOnce {
  renderMs: number;
  totalMs: number;
  bytes: number;
  reads: number;
  plan: ReturnType<typeof planRead>;
  sizes: [number, number][];
}

/** One cold render of `tile` from `file`, opened under a new name (opening is not timed). */
async function coldOnce(file: string, pipeline: unknown, tile: Tile): Promise<ColdOnce> {
  const src = new CountingSource(new FileSource(file));
  const cog = await Cog.open(`${file}#cold-${process.pid}-${uniq++}`, src);
  try {
    const layer = new LayerGraph(buildGraph(pipeline, { sources: new Map([['dem', cog]]) }), new Map([['dem', cog]]));
    const m = cog.meta;
    const plan = planRead(
      { width: m.width, height: m.height, geoTransform: m.geoTransform, proj4: m.crs.proj4, levels: m.levels },
      { z: tile.z, size: 256, buffer: layer.graph.buffer(), bounds: tileBounds(tile) },
      'bilinear',
    );
    src.bytes = 0;
    src.reads = 0;
    const t0 = performance.now();
    const { raster, ctx } = await layer.raster({ ...tile, size: 256 });
    const rgba = raster ? toTileRgba(raster, ctx.buffer, 256) : null;
    const t1 = performance.now();
    if (rgba) await encodeTile(rgba, 256, 'png');
    const t2 = performance.now();
    return { renderMs: t1 - t0, totalMs: t2 - t0, bytes: src.bytes, reads: src.reads, plan, sizes: m.levels.map((l) => [l.width, l.height]) };
  } finally {
    await cog.close();
  }
}

/**
 * Renders `tile` from each of `files` `iterations` times, each time from a newly opened
 * source under a new name, so the decoded-block cache (keyed by source location) never
 * answers. The files take turns, after `warmup` untimed rounds, so that JIT warm-up and
 * drift in the machine's speed fall on all of them alike.
 */
export async function coldTileCosts(files: readonly string[], pipeline: unknown, tile: Tile, iterations: number, warmup = 5): Promise<ColdCost[]> {
  const runs = files.map(() => [] as ColdOnce[]);
  for (let i = 0; i < warmup + iterations; i++) {
    for (let f = 0; f < files.length; f++) {
      const r = await coldOnce(files[f]!, pipeline, tile);
      if (i >= warmup) runs[f]!.push(r);
    }
  }
  return files.map((file, f) => {
    const rs = runs[f]!;
    const plan = rs[0]!.plan;
    if (!plan) throw new Error(`${file}: tile ${tile.z}/${tile.x}/${tile.y} does not touch the data`);
    return {
      file,
      tile,
      level: plan.level,
      levelSize: rs[0]!.sizes[plan.level]!,
      window: plan.window,
      levels: rs[0]!.sizes.length,
      iterations,
      renderMs: summarise(rs.map((r) => r.renderMs)),
      renderAndEncodeMs: summarise(rs.map((r) => r.totalMs)),
      bytesReadPerTile: Math.round(rs.reduce((a, r) => a + r.bytes, 0) / rs.length),
      readsPerTile: Math.round((rs.reduce((a, r) => a + r.reads, 0) / rs.length) * 10) / 10,
    };
  });
}

/** The RGBA the render thread produces for each tile that has data. */
/**
 * The tiles' RGBA, and the colour map's entries of those that end in one (as a render thread
 * hands them to its PNG writer).
 */
export async function renderForEncoding(spec: LayerSpec, tiles: readonly Tile[]): Promise<{ rgba: Uint8Array[]; codes: TableCodes[] }> {
  const graph = await LayerGraph.open(spec);
  const rgba: Uint8Array[] = [];
  const codes: TableCodes[] = [];
  try {
    for (const t of tiles) {
      const r = await graph.render({ z: t.z, x: t.x, y: t.y, size: 256 });
      if (r.rgba) rgba.push(Uint8Array.from(r.rgba));
      if (r.codes) codes.push({ index: Uint16Array.from(r.codes.index), lut: r.codes.lut, ordered: r.codes.ordered });
    }
  } finally {
    await graph.close();
  }
  return { rgba, codes };
}
