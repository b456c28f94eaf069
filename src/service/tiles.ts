/**
 * The tile service: one tile of one layer, whoever asks (the XYZ and WMTS routes, `tilegraph
 * diff`, seeding). It owns everything between a validated request and the encoded bytes: the
 * outside-data check, the cache tiers with single flight, the render pool and encoding.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { CacheTier, TileCache, TileEntry } from '../cache/tiles.js';
import { TileError } from '../errors.js';
import type { Layer } from '../layers/layer.js';
import { tileMembers } from '../layers/mosaic.js';
import { layerLabel, type Metrics } from '../metrics.js';
import { contentType, encodeTile, type TileFormat } from '../render/encode.js';
import type { MemberRef } from '../render/mosaic.js';
import type { RenderPool } from '../render/pool.js';
import type { RenderResult, RenderTask } from '../render/task.js';
import { boundsParts, lonLatToMercator, tileBounds, tileRange } from '../tiles/mercator.js';

export interface TileRequest {
  layer: Layer;
  z: number;
  x: number;
  y: number;
  scale: 1 | 2;
  format: TileFormat;
  /** The version the tile's key and ETag carry: the layer's, with the versions of the mosaic members under it. */
  version: string;
  /** The mosaic members under the tile, by source. */
  members?: Record<string, MemberRef[]>;
}

/** A tile as the service answers it: the entry and the tier that answered. */
export interface TileAnswer extends TileEntry {
  tier: CacheTier;
}

export interface TileServiceDeps {
  /** The render threads, or anything that renders as they do (the library router renders some layers in the calling thread). */
  pool: Pick<RenderPool, 'render' | 'timeoutMs'> & Partial<Pick<RenderPool, 'renderMany'>>;
  cache: TileCache;
  /** Where renders are counted (GET /metrics); a seeding run counts none. */
  metrics?: Metrics;
  log: Logger;
  /**
   * Checks a layer's sources at once when a render finds one damaged, and answers the layer
   * now loaded (a new version when a source changed): a COG overwritten in place is noticed
   * by the first tile that reads it, not at the next round of checks.
   */
  refresh?: (layer: Layer) => Promise<Layer | undefined>;
  /** The most members of one mosaic a tile may read (MOSAIC_MAX_FILES). */
  mosaicMaxFiles?: number;
  /** Takes the cells of the blocks each render decoded, when its pool's threads record them (a seeding run). */
  cells?: (records: NonNullable<RenderResult['cells']>) => void;
}

/** MOSAIC_MAX_FILES when none is given. */
export const DEFAULT_MOSAIC_MAX_FILES = 64;

export class TileService {
  constructor(private readonly deps: TileServiceDeps) {}

  /** A request for a tile of a layer, checked against its zoom range and the grid (404 otherwise). */
  request(layer: Layer, z: number, x: number, y: number, scale: 1 | 2, format: TileFormat): TileRequest {
    const { minzoom, maxzoom } = layer.config;
    if (z < minzoom || z > maxzoom) throw new TileError('not_found', 'zoom out of range', `layer '${layer.name}' serves zooms ${minzoom}-${maxzoom}`);
    const n = 2 ** z;
    if (x >= n || y >= n) throw new TileError('not_found', 'tile out of range', `at zoom ${z}, x and y run from 0 to ${n - 1}`);
    if (layer.mosaics.size === 0) return { layer, z, x, y, scale, format, version: layer.version };
    const { version, members } = tileMembers(layer, { z, x, y }, this.deps.mosaicMaxFiles ?? DEFAULT_MOSAIC_MAX_FILES);
    return { layer, z, x, y, scale, format, version, members };
  }

  /** The tile when this process's L1 holds it, answered at once (most requests of a busy server). */
  cached(t: TileRequest): TileAnswer | undefined {
    const entry = this.deps.cache.peek(cacheKey(t));
    return entry && { ...entry, tier: 'hit-l1' };
  }

  /**
   * The tile from the first tier that has it, rendering it once however many ask at once.
   * `signal` aborts when the client goes away: once all of a tile's clients have, its render
   * leaves the queue if no thread has taken it yet (TileError 'client_closed').
   */
  async tile(t: TileRequest, signal?: AbortSignal, retried = false): Promise<TileAnswer> {
    const { cache } = t.layer.config;
    // A render holds its Redis lock for as long as the pool lets it run.
    const policy = { ttlS: cache.l2Ttl, emptyTtlS: cache.l2EmptyTtl, lockMs: this.deps.pool.timeoutMs + 1000 };
    try {
      const { entry, tier } = await this.deps.cache.get(cacheKey(t), policy, (called) => this.produce(t, called), signal);
      return { ...entry, tier };
    } catch (err) {
      if (retried || !this.deps.refresh || !(err instanceof TileError && err.code === 'bad_source')) throw err;
      // Damaged, or changed under the version the layer was loaded with: once it is
      // reloaded, the tile belongs to the new version (its own key and ETag).
      const fresh = await this.deps.refresh(t.layer);
      if (!fresh || fresh === t.layer) throw err;
      return this.tile(this.request(fresh, t.z, t.x, t.y, t.scale, t.format), signal, true);
    }
  }

  /**
   * A metatile for seeding: neighbouring tiles of one layer rendered in one task of the pool
   * (RenderPool.renderMany), past the cache tiers (a seeding run's target is its cache). Each
   * tile is answered on its own, an error in place of one that failed; the bytes are those
   * `tile` gives.
   */
  async renderMany(ts: readonly TileRequest[]): Promise<(TileEntry | Error)[]> {
    const out: (TileEntry | Error)[] = new Array(ts.length);
    const tasks: RenderTask[] = [];
    const at: number[] = [];
    ts.forEach((t, i) => {
      const task = this.taskOf(t);
      if ('task' in task) {
        tasks.push(task.task);
        at.push(i);
      } else out[i] = task.empty;
    });
    const { pool } = this.deps;
    const results = pool.renderMany ? await pool.renderMany(tasks) : await Promise.all(tasks.map((task) => pool.render(task).catch((err: Error) => err)));
    await Promise.all(
      results.map(async (r, k) => {
        const t = ts[at[k]!]!;
        if (r instanceof Error) {
          this.deps.metrics?.renderErrors.inc({ layer: layerLabel(t.layer) });
          out[at[k]!] = r;
        } else out[at[k]!] = await this.finish(t, r).catch((err: Error) => err);
      }),
    );
    return out;
  }

  private async produce(t: TileRequest, signal: AbortSignal): Promise<TileEntry> {
    const { metrics, pool } = this.deps;
    const task = this.taskOf(t);
    if (!('task' in task)) return task.empty;
    let r;
    try {
      const budget = t.layer.budget && {
        ms: t.layer.budget.renderMs,
        error: new TileError('over_budget', 'render budget exceeded', `a tile of an ad-hoc pipeline may take ${t.layer.budget.renderMs} ms (ADHOC_RENDER_MS)`),
      };
      r = await pool.render(task.task, budget, signal);
    } catch (err) {
      // A tile nobody waits for any more was not rendered: no render failed.
      if (!(err instanceof TileError && err.code === 'client_closed')) metrics?.renderErrors.inc({ layer: layerLabel(t.layer) });
      throw err;
    }
    return this.finish(t, r);
  }

  /** What a render thread is sent for the tile, or the empty tile when it has nothing to draw. */
  private taskOf(t: TileRequest): { task: RenderTask } | { empty: TileEntry } {
    const size = t.layer.config.tileSize * t.scale;
    const type = contentType(t.format);
    if (outsideData(t) || (t.members && Object.values(t.members).every((m) => m.length === 0)))
      return { empty: { body: null, etag: etagOf(t.version, null), type } };
    return { task: { layer: t.layer.spec, z: t.z, x: t.x, y: t.y, size, format: t.format, affinity: columnShare(t), members: t.members } };
  }

  /** A render's result as the tile's entry: counted, its warnings logged, encoded if the thread did not. */
  private async finish(t: TileRequest, r: RenderResult): Promise<TileEntry> {
    const { metrics, log } = this.deps;
    const layer = t.layer.name;
    const label = layerLabel(t.layer);
    const size = t.layer.config.tileSize * t.scale;
    const version = t.version;
    const type = contentType(t.format);
    if (metrics) countRender(metrics, label, r);
    if (r.cells) this.deps.cells?.(r.cells);
    for (const w of r.warnings) {
      metrics?.qualityWarnings.inc({ layer: label, check: w.check });
      log.warn({ layer, z: t.z, x: t.x, y: t.y, check: w.check }, w.message);
    }
    if (!r.png && !r.rgba) return { body: null, etag: etagOf(version, null), type, timings: { read: r.readMs, ops: r.opsMs, encode: 0 } };
    // The render thread wrote the PNG itself (an indexed one), or hands over RGBA for sharp.
    let body: Buffer, encodeMs: number;
    if (r.png) {
      body = Buffer.from(r.png);
      encodeMs = r.encodeMs ?? 0;
    } else {
      const t0 = performance.now();
      body = await encodeTile(new Uint8Array(r.rgba!), size, t.format);
      encodeMs = performance.now() - t0;
    }
    metrics?.renderStage.observe({ layer: label, stage: 'encode' }, encodeMs / 1000);
    return { body, etag: etagOf(version, body), type, timings: { read: r.readMs, ops: r.opsMs, encode: encodeMs } };
  }
}

/** A render, its blocks and its thread's memory, on the counters and gauges of GET /metrics (`layer`: its label). */
function countRender(metrics: Metrics, layer: string, r: RenderResult): void {
  metrics.renders.inc({ layer });
  if (r.blocks) for (const [outcome, n] of Object.entries(r.blocks)) if (n) metrics.blockReads.inc({ outcome }, n);
  if (r.blockCache) {
    const thread = String(r.blockCache.thread);
    metrics.blockCacheBytes.set({ thread }, r.blockCache.bytes);
    if (r.memory) {
      metrics.threadHeapBytes.set({ thread }, r.memory.heapBytes);
      metrics.threadArrayBufferBytes.set({ thread }, r.memory.arrayBufferBytes);
      for (const [kind, n] of Object.entries(r.memory.collections)) if (n) metrics.threadCollections.inc({ thread, kind }, n);
    }
  }
  metrics.renderStage.observe({ layer, stage: 'read' }, r.readMs / 1000);
  metrics.renderStage.observe({ layer, stage: 'ops' }, r.opsMs / 1000);
}

/**
 * One key per tile of one layer version: a changed layer never meets its old entries. The layer
 * name comes first, so that `tilegraph cache purge` finds a layer's entries by prefix.
 */
export function cacheKey(t: Pick<TileRequest, 'z' | 'x' | 'y' | 'scale' | 'format' | 'version'> & { layer: { name: string } }): string {
  return `${t.layer.name}:${t.version}:${t.z}/${t.x}/${t.y}@${t.scale}.${t.format}`;
}

/** Tile bounds that miss the layer's data footprint (on either side of the antimeridian) need no render. */
function outsideData(t: TileRequest): boolean {
  const b = tileBounds(t);
  return boundsParts(t.layer.bounds).every(([w, s, e, n]) => {
    const [minX, minY] = lonLatToMercator(w, s);
    const [maxX, maxY] = lonLatToMercator(e, n);
    return b[0] >= maxX || b[2] <= minX || b[1] >= maxY || b[3] <= minY;
  });
}

/** The tile's column across the layer's data at its zoom (eastwards over the antimeridian), as a share from 0 to 1. */
function columnShare(t: TileRequest): number {
  const parts = boundsParts(t.layer.bounds);
  const n = 2 ** t.z;
  const x0 = tileRange(parts[0]!, t.z)[0];
  const x1 = tileRange(parts.at(-1)!, t.z)[2] + (parts.length > 1 ? n : 0);
  const x = t.x < x0 ? t.x + n : t.x;
  return x1 > x0 ? Math.min(1, (x - x0) / (x1 - x0 + 1)) : 0;
}

/** Strong: the layer version (config and sources) and the bytes themselves. */
export function etagOf(version: string, body: Buffer | null): string {
  const h = createHash('sha1').update(version);
  if (body) h.update(body);
  else h.update('empty');
  return `"${h.digest('hex').slice(0, 24)}"`;
}
