/**
 * The server's tile and TileJSON routes as an express Router for another app: the same route
 * handlers, TileService (L1 cache, single flight, encoding) and error answers as
 * `tilegraph serve`, over the layers a program hands in.
 */
import express from 'express';
import type { Logger } from 'pino';
import { TileCache } from '../cache/tiles.js';
import { loadSettings, settingValue, type Settings } from '../config.js';
import type { TileError } from '../errors.js';
import { unknownLayer, type Layer } from '../layers/layer.js';
import { createLogger } from '../log.js';
import { Metrics } from '../metrics.js';
import { RenderPool, type PoolOptions } from '../render/pool.js';
import type { LayerSpec, RenderResult, RenderTask } from '../render/task.js';
import { crossOrigin, TILE_ROUTE, TILEJSON_ROUTE } from '../server/app.js';
import { errorHandler } from '../server/errors.js';
import { tileJsonHandler } from '../server/routes/clients.js';
import { tileHandler } from '../server/routes/tiles.js';
import { TileService } from '../service/tiles.js';
import { hasCode } from './code.js';
import { LocalRenderer } from './render.js';

export interface TileRouterOptions {
  /** The layers to serve, by their names: `await graph.load()`, or `loadLayer(file, ...)` for a layer file. */
  layers: readonly Layer[];
  /** Render threads for the layers without `tap` or `lambda`, started at their first tile. Default: WORKERS's (the number of cores). */
  workers?: number;
  /** The in-process tile cache bound in MiB; 0 turns it off. Default: CACHE_L1_MB's (256). */
  cacheMb?: number;
  /** Time limit of one tile render in a thread. Default: RENDER_TIMEOUT_MS's (15000). */
  renderTimeoutMs?: number;
  /** Tiles waiting for a thread before new requests get 503. Default: MAX_QUEUE's (256). */
  maxQueue?: number;
  /** Decoded COG blocks each thread keeps, in MiB. Default: BLOCK_CACHE_MB's (256). */
  blockCacheMb?: number;
  /** The most members of one mosaic a tile may read. Default: MOSAIC_MAX_FILES's (64). */
  mosaicMaxFiles?: number;
  /** Failed renders (5xx) and quality warnings go here. Default: pino at `warn`. */
  log?: Logger;
}

/** The options that are numbers: each stands for a setting. */
type NumberOption = { [K in keyof TileRouterOptions]-?: TileRouterOptions[K] extends number | undefined ? K : never }[keyof TileRouterOptions];

/** An express Router with `close()`, which stops its render threads and closes its sources. */
export interface TileRouter extends express.Router {
  close(): Promise<void>;
}

/**
 * Renders a router's tiles for the TileService: a layer with a program's functions (`tap`,
 * `lambda`) in the calling thread, since functions cannot be sent to a thread; any other in
 * the render threads, as the server does.
 */
class RouterRenderer {
  private pool?: RenderPool;
  private readonly local = new LocalRenderer();

  constructor(
    private readonly coded: ReadonlyMap<LayerSpec, Layer>,
    private readonly poolOptions: PoolOptions,
  ) {}

  get timeoutMs(): number {
    return this.poolOptions.timeoutMs;
  }

  async render(task: RenderTask, limit?: { ms: number; error: TileError }, signal?: AbortSignal): Promise<RenderResult> {
    const layer = this.coded.get(task.layer);
    if (!layer) return (this.pool ??= new RenderPool(this.poolOptions)).render(task, limit, signal);
    const r = await this.local.render(layer, task);
    // TileService encodes the result's buffer whole: hand it one of exactly the tile.
    const rgba = r.rgba && (r.rgba.byteOffset === 0 && r.rgba.byteLength === r.rgba.buffer.byteLength ? r.rgba : r.rgba.slice());
    return { rgba: rgba ? (rgba.buffer as ArrayBuffer) : null, readMs: r.readMs, opsMs: r.opsMs, warnings: r.warnings };
  }

  async close(): Promise<void> {
    await Promise.all([this.pool?.close(), this.local.close()]);
  }
}

/**
 * `GET {mount}/tiles/{layer}/{z}/{x}/{y}[@2x].{png|webp}` and `GET {mount}/tiles/{layer}/tilejson.json`
 * for the given layers, with the server's headers, caching and error bodies; TileJSON's tile
 * URLs carry the path the router is mounted at. Other paths fall through to the app.
 */
export function createTileRouter(opts: TileRouterOptions): TileRouter {
  const defaults = loadSettings({});
  // Each number as the setting it stands for would take it, before anything starts.
  const option = <K extends keyof Settings>(name: NumberOption, key: K): Settings[K] => {
    const value = opts[name];
    return value === undefined ? defaults[key] : settingValue(key, value, `createTileRouter: ${name}`);
  };
  const workers = option('workers', 'workers');
  const maxQueue = option('maxQueue', 'maxQueue');
  const timeoutMs = option('renderTimeoutMs', 'renderTimeoutMs');
  const blockCacheMb = option('blockCacheMb', 'blockCacheMb');
  const cacheMb = option('cacheMb', 'cacheL1Mb');
  const mosaicMaxFiles = option('mosaicMaxFiles', 'mosaicMaxFiles');
  const byName = new Map<string, Layer>();
  for (const layer of opts.layers) {
    if (byName.has(layer.name)) throw new Error(`createTileRouter: two layers are named '${layer.name}'`);
    byName.set(layer.name, layer);
  }
  const layers = {
    require(name: string): Layer {
      const layer = byName.get(name);
      if (!layer) throw unknownLayer(name);
      return layer;
    },
  };
  const log = opts.log ?? createLogger('warn');
  const renderer = new RouterRenderer(new Map(opts.layers.filter((l) => hasCode(l.graph)).map((l) => [l.spec, l])), {
    threads: workers,
    maxQueue,
    timeoutMs,
    blockCacheMb,
    kernels: defaults.kernels,
    onError: (err) => log.error({ err }, 'render thread failed'),
  });
  const tiles = new TileService({
    pool: renderer,
    cache: new TileCache(cacheMb * 1024 * 1024),
    metrics: new Metrics(),
    log,
    mosaicMaxFiles,
  });

  const router = express.Router({ strict: true });
  router.get(TILE_ROUTE, tileHandler(layers, tiles));
  router.get(TILEJSON_ROUTE, tileJsonHandler(layers));
  crossOrigin(router, [TILE_ROUTE, TILEJSON_ROUTE]);
  // Errors of these routes only; the working directory is cut from messages that name files.
  router.use(errorHandler(log, process.cwd()));
  return Object.assign(router, { close: () => renderer.close() });
}
