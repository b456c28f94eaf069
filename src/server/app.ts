import express, { type Express } from 'express';
import type { Logger } from 'pino';
import type { TileCache } from '../cache/tiles.js';
import type { LayerRegistry } from '../layers/registry.js';
import type { Metrics } from '../metrics.js';
import type { RenderPool } from '../render/pool.js';
import type { TileService } from '../service/tiles.js';
import { TileError } from '../errors.js';
import { errorHandler } from './errors.js';
import { mapAssets, mapPageHandler, tileJsonHandler, wmtsCapabilitiesHandler, wmtsTileHandler } from './routes/clients.js';
import { describeLayer, listLayers } from './routes/layers.js';
import { tileHandler } from './routes/tiles.js';

export interface AppDeps {
  layers: LayerRegistry;
  pool: RenderPool;
  cache: TileCache;
  tiles: TileService;
  log: Logger;
  metrics: Metrics;
  /** False while starting or draining. */
  ready: () => boolean;
}

/** The HTTP adapter: routes parse and ask the tile service; errors map to statuses in one place. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.set('strict routing', true); // '/tiles/.../1.png/' is not a second name for the tile
  app.disable('x-powered-by');
  app.disable('etag'); // tiles set their own strong ETag; JSON answers are small
  app.set('query parser', 'simple');

  let requestId = 0;
  app.use((req, res, next) => {
    const started = performance.now();
    const id = (req.headers['x-request-id'] as string | undefined)?.slice(0, 64) ?? `${process.pid.toString(36)}-${(++requestId).toString(36)}`;
    res.setHeader('X-Request-Id', id);
    res.on('finish', () => {
      const seconds = (performance.now() - started) / 1000;
      const tile = res.locals.tile as { layer?: string; cache?: string } | undefined;
      const labels = {
        layer: tile?.layer ?? '',
        route: (req.route?.path as string | undefined) ?? 'none',
        status: String(res.statusCode),
        cache: tile?.cache ?? '',
      };
      deps.metrics.requests.inc(labels);
      deps.metrics.latency.observe(labels, seconds);
      deps.log.info({ reqId: id, method: req.method, url: req.originalUrl, status: res.statusCode, ms: +(seconds * 1000).toFixed(1), ...tile }, 'request');
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const ok = deps.ready() && deps.pool.threads > 0;
    res.setHeader('Cache-Control', 'no-store');
    // L2 is reported, not required: without Redis every tile still renders.
    const l2 = deps.cache.l2?.state ?? 'off';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not ready', layers: deps.layers.all().length, threads: deps.pool.threads, l2 });
  });
  app.get('/metrics', async (_req, res) => {
    const m = deps.metrics;
    m.queue.set(deps.pool.queueSize);
    m.utilization.set(deps.pool.utilization);
    m.l1Bytes.set(deps.cache.bytes);
    m.layers.set({ state: 'loaded' }, deps.layers.all().length);
    m.layers.set({ state: 'refused' }, deps.layers.problems.length);
    res.setHeader('Content-Type', m.registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.end(await m.registry.metrics());
  });
  app.get('/layers', listLayers(deps.layers));
  app.get('/layers/:layer', describeLayer(deps.layers));
  app.get('/tiles/:layer/:z/:x/:file', tileHandler(deps.layers, deps.tiles));
  app.get('/tiles/:layer/tilejson.json', tileJsonHandler(deps.layers));
  app.get('/wmts/1.0.0/WMTSCapabilities.xml', wmtsCapabilitiesHandler(deps.layers));
  app.get('/wmts/1.0.0/:layer/:style/:set/:z/:row/:file', wmtsTileHandler(deps.layers, deps.tiles));
  app.get('/map{/:layer}', mapPageHandler(deps.layers));
  app.use('/assets', mapAssets());

  app.use((req, _res, next) => next(new TileError('not_found', 'not found', `no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(deps.log, deps.layers.dir));
  return app;
}
