/**
 * Where a seeding run's tiles come from: the server's own tile service and render pool, without
 * its caches (the target is the cache), or a running server over HTTP (`--via`).
 */
import { TileCache, type TileEntry } from '../cache/tiles.js';
import type { Settings } from '../config.js';
import { TileError } from '../errors.js';
import type { Layer } from '../layers/layer.js';
import { createLogger } from '../log.js';
import { RenderPool } from '../render/pool.js';
import { TileService } from '../service/tiles.js';
import type { TileId } from '../tiles/mercator.js';
import type { ProduceMany } from './runner.js';

export type Produce = (t: TileId) => Promise<TileEntry>;

export interface Renderer {
  /** The tiles of one layer, in one format. */
  producer(layer: Layer, format: 'png' | 'webp'): Produce;
  /** The same tiles, neighbours in one render task (a metatile). */
  many(layer: Layer, format: 'png' | 'webp'): ProduceMany;
  close(): Promise<void>;
}

export function openRenderer(settings: Settings): Renderer {
  const pool = new RenderPool({
    threads: settings.workers,
    maxQueue: 100_000,
    timeoutMs: settings.renderTimeoutMs,
    blockCacheMb: settings.blockCacheMb,
    kernels: settings.kernels,
  });
  const service = new TileService({
    pool,
    cache: new TileCache(0),
    log: createLogger('silent'),
    mosaicMaxFiles: settings.mosaicMaxFiles,
  });
  return {
    producer: (layer, format) => (t) => service.tile(service.request(layer, t.z, t.x, t.y, 1, format)),
    many: (layer, format) => (ts) => service.renderMany(ts.map((t) => service.request(layer, t.z, t.x, t.y, 1, format))),
    close: () => pool.close(),
  };
}

/** `--via`: asks the server for each tile over HTTP, as a map client would. */
export function viaProducer(base: string, layer: Layer, format: 'png' | 'webp'): Produce {
  const root = base.replace(/\/+$/, '');
  return async (t) => {
    const res = await fetch(`${root}/tiles/${encodeURIComponent(layer.name)}/${t.z}/${t.x}/${t.y}.${format}`, { signal: AbortSignal.timeout(60_000) });
    if (res.status === 204) return { body: null, etag: res.headers.get('etag') ?? '' };
    if (res.status !== 200) throw new TileError('upstream', 'upstream failed', `${res.url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    return { body: Buffer.from(await res.arrayBuffer()), etag: res.headers.get('etag') ?? '', type: res.headers.get('content-type') ?? undefined };
  };
}
