import { createServer, STATUS_CODES, type Server, type ServerResponse } from 'node:http';
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
  socket.end(rawError(status, err.code ?? err.message));
}

/** The JSON body of an error the app never sees, titled by its status as the app titles express's own. */
function errorBody(status: number, detail: string): string {
  return JSON.stringify({ error: (STATUS_CODES[status] ?? 'bad request').toLowerCase(), detail });
}

/** A whole error response, written to a socket no ServerResponse owns; the connection closes after it. */
function rawError(status: number, detail: string, headers = ''): string {
  const body = errorBody(status, detail);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Cache-Control: no-store\r\n${headers}Connection: close\r\n\r\n${body}`
  );
}

/**
 * How long an idle connection stays open: longer than nginx keeps an idle upstream connection
 * (nginx.conf, 60 s) and than common load balancers' idle timeouts (60 s), so that they close it
 * first; a server that closes first races their next request on it.
 */
const KEEP_ALIVE_MS = 65_000;

/**
 * The HTTP server, and how it drains: the app, with the refusals Node's parser makes answered
 * as the app answers errors. A request must arrive whole within REQUEST_TIMEOUT_S (408); an
 * HTTP/1.1 request without Host is the app's to refuse (Node's own refusal has no body), as are
 * an Expect other than 100-continue (417) and CONNECT (405; Node would close the connection
 * without a word).
 */
function httpServer(app: ReturnType<typeof createApp>, settings: Settings): { server: Server; drain(): Promise<void> } {
  const requestTimeout = settings.requestTimeoutS * 1000;
  const server = createServer(
    // Node checks the timeouts of open requests every connectionsCheckingInterval.
    {
      requestTimeout,
      headersTimeout: requestTimeout,
      connectionsCheckingInterval: Math.max(250, Math.min(5000, requestTimeout / 4)),
      requireHostHeader: false,
    },
    app,
  );
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.on('clientError', answerClientError);
  server.on('checkExpectation', (req, res) => {
    const expect = String(req.headers.expect).slice(0, 100);
    const body = errorBody(417, `Expect: ${expect}: only 100-continue is understood`);
    res.writeHead(417, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      Connection: 'close',
    });
    res.end(body);
  });
  server.on('connect', (_req, socket: Duplex) => {
    if (!socket.writable) return void socket.destroy();
    socket.end(rawError(405, 'CONNECT: this is a tile server, not a proxy', 'Allow: GET, HEAD, OPTIONS, POST\r\n'));
  });
  // The requests being answered, so that a drain closes the connections that carry none once
  // the last is done: Node's close() leaves a connection that has not sent a request yet (a
  // browser's preconnect) until it times out, and KEEP_ALIVE_MS is long.
  let requests = 0;
  let draining = false;
  server.on('request', (_req, res: ServerResponse) => {
    requests++;
    res.once('close', () => {
      if (--requests === 0 && draining) server.closeAllConnections();
    });
  });
  const drain = () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    draining = true;
    if (requests === 0) server.closeAllConnections();
    else server.closeIdleConnections();
    return closed;
  };
  return { server, drain };
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
  const query = new QueryService({
    pool,
    layersDir: settings.layersDir,
    mosaicMaxFiles: settings.mosaicMaxFiles,
    areas: { max: settings.maxAreaRequests, running: settings.workers },
  });
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
  const { server, drain } = httpServer(app, settings);
  await new Promise<void>((resolve, reject) => {
    server.listen(settings.port, settings.host, () => resolve());
    server.once('error', reject);
  });
  const addr = server.address();
  const url =
    typeof addr === 'object' && addr
      ? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
      : `http://${settings.host}:${settings.port}`;
  log.info({ url, workers: settings.workers, layersDir: settings.layersDir }, 'listening');

  const close = async () => {
    ready = false;
    stopWatching();
    await drain();
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
