import { createServer, STATUS_CODES, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { L2Cache } from '../cache/l2.js';
import { connectCache, whenReady } from '../cache/redis.js';
import { TileCache } from '../cache/tiles.js';
import type { Settings } from '../config.js';
import { LayerRegistry } from '../layers/registry.js';
import { createLogger } from '../log.js';
import { Metrics } from '../metrics.js';
import { RenderPool } from '../render/pool.js';
import { PipelineRegistry } from '../layers/pipelines.js';
import { QueryService } from '../service/query.js';
import { TileService } from '../service/tiles.js';
import { createApp, proxyList } from './app.js';

export interface Running {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/**
 * Requests Node's HTTP parser refuses before any route sees them (headers too large, not
 * HTTP at all) get the same JSON error body and `no-store` as every other error.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const body = JSON.stringify({ error: (STATUS_CODES[status] ?? 'bad request').toLowerCase(), detail: err.code ?? err.message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Cache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Loads the layers, starts the render pool and listens; SIGHUP reloads, SIGTERM drains. */
export async function serve(settings: Settings, opts: { signals?: boolean } = {}): Promise<Running> {
  const log = createLogger(settings.logLevel);
  const layers = new LayerRegistry({ layersDir: settings.layersDir, allowedHosts: settings.allowedHosts }, log);
  // Watching first: the files refused at start are retried from the first round on.
  const stopWatching = layers.watchSources(settings.sourceRecheckS);
  await layers.reload();
  const pool = new RenderPool({
    threads: settings.workers,
    maxQueue: settings.maxQueue,
    timeoutMs: settings.renderTimeoutMs,
    blockCacheMb: settings.blockCacheMb,
    kernels: settings.kernels,
    onError: (err) => log.error({ err }, 'render thread failed'),
  });
  const metrics = new Metrics();
  // Without REDIS_URL, L1 alone; with it, Redis may come and go at any moment.
  const l2 = settings.redisUrl
    ? new L2Cache(connectCache(settings.redisUrl, settings.redisTimeoutMs, log), { prefix: settings.redisPrefix, log, metrics })
    : undefined;
  // Give Redis a moment to connect, so that the first tiles find what others stored; but a
  // server starts without it all the same.
  if (l2) await whenReady(l2.redis, 2000).catch(() => log.warn('redis does not answer yet: serving without L2 until it does'));
  const cache = new TileCache(settings.cacheL1Mb * 1024 * 1024, l2);
  const tiles = new TileService({ pool, cache, metrics, log, refresh: (layer) => layers.refresh(layer), mosaicMaxFiles: settings.mosaicMaxFiles });
  let ready = true;
  const query = new QueryService({ pool, layersDir: settings.layersDir, mosaicMaxFiles: settings.mosaicMaxFiles });
  const pipelines =
    settings.adhocPipelines === 'on'
      ? new PipelineRegistry(layers, {
          layersDir: settings.layersDir,
          allowedHosts: settings.allowedHosts,
          max: settings.adhocMaxPipelines,
          renderMs: settings.adhocRenderMs,
          postsPerMinute: settings.adhocPostsPerMinute,
        })
      : undefined;
  const app = createApp({ layers, pool, cache, tiles, query, pipelines, log, metrics, ready: () => ready, trustedProxies: proxyList(settings.trustedProxies) });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer(app).listen(settings.port, settings.host, () => resolve(s));
    s.once('error', reject);
  });
  server.on('clientError', answerClientError);
  const addr = server.address();
  const url =
    typeof addr === 'object' && addr
      ? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
      : `http://${settings.host}:${settings.port}`;
  log.info({ url, workers: settings.workers, layersDir: settings.layersDir }, 'listening');

  const close = async () => {
    ready = false;
    stopWatching();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await pool.close();
    // After the last response: writes to L2 that the responses left behind have gone out.
    await l2?.close();
  };
  if (opts.signals) {
    process.on('SIGHUP', () => {
      layers.reload().catch((err) => log.error({ err }, 'reload failed'));
    });
    process.on('SIGTERM', () => {
      log.info('SIGTERM: draining');
      close().then(
        () => process.exit(0),
        (err) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
  return { server, url, close };
}
