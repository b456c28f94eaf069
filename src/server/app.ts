import express, { type Express } from 'express';
import type { Logger } from 'pino';
import type { TileCache } from '../cache/tiles.js';
import type { LayerRegistry } from '../layers/registry.js';
import type { RenderPool } from '../render/pool.js';
import { errorHandler, HttpError } from './errors.js';
import { describeLayer, listLayers } from './routes/layers.js';
import { tileHandler } from './routes/tiles.js';

export interface AppDeps {
  layers: LayerRegistry;
  pool: RenderPool;
  cache: TileCache;
  log: Logger;
  /** False while starting or draining. */
  ready: () => boolean;
}

/** The HTTP adapter: parse, ask the cache, hand misses to the pool; errors map in one place. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag'); // tiles set their own strong ETag; JSON answers are small
  app.set('query parser', 'simple');

  app.use((req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      deps.log.info({ method: req.method, url: req.originalUrl, status: res.statusCode, ms: +(performance.now() - started).toFixed(1), ...res.locals.tile }, 'request');
    });
    next();
  });

  app.get('/healthz', (_req, res) => { res.setHeader('Cache-Control', 'no-store'); res.json({ status: 'ok' }); });
  app.get('/readyz', (_req, res) => {
    const ok = deps.ready() && deps.pool.threads > 0;
    res.setHeader('Cache-Control', 'no-store');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not ready', layers: deps.layers.all().length, threads: deps.pool.threads });
  });
  app.get('/layers', listLayers(deps.layers));
  app.get('/layers/:layer', describeLayer(deps.layers));
  app.get('/tiles/:layer/:z/:x/:file', tileHandler(deps));

  app.use((req, _res, next) => next(new HttpError(404, 'not found', `no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(deps.log));
  return app;
}
