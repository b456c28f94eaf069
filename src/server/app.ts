import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { BlockList, isIP } from 'node:net';
import express, { type IRouter } from 'express';
import type { Logger } from 'pino';
import type { TileCache } from '../cache/tiles.js';
import type { LayerRegistry } from '../layers/registry.js';
import type { Metrics } from '../metrics.js';
import type { RenderPool } from '../render/pool.js';
import { MAX_DOCUMENT_BYTES, type PipelineRegistry } from '../layers/pipelines.js';
import type { QueryService } from '../service/query.js';
import type { TileService } from '../service/tiles.js';
import { TileError } from '../errors.js';
import { bodyTooLarge, errorHandler } from './errors.js';
import { mapAssets, mapPageHandler, tileJsonHandler, wmtsCapabilitiesHandler, wmtsTileHandler } from './routes/clients.js';
import { describeLayer, listLayers, listMembers } from './routes/layers.js';
import { pipelineLayers, pipelineTileJson, postPipeline } from './routes/pipelines.js';
import { admitBody, MAX_GEOJSON_BYTES, pointHandler, previewHandler, statisticsHandler } from './routes/query.js';
import { answerTile, plainTile, tileHandler, tileLogs } from './routes/tiles.js';

/** The XYZ tile and TileJSON routes, here and in the programmatic API's router (src/api/router.ts). */
export const TILE_ROUTE = '/tiles/:layer/:z/:x/:file';
export const TILEJSON_ROUTE = '/tiles/:layer/tilejson.json';
const ALLOW = 'GET, HEAD, OPTIONS';

export interface AppDeps {
  layers: LayerRegistry;
  pool: RenderPool;
  cache: TileCache;
  tiles: TileService;
  query: QueryService;
  /** Ad-hoc pipelines, when ADHOC_PIPELINES=on. */
  pipelines?: PipelineRegistry;
  log: Logger;
  metrics: Metrics;
  /** False while starting or draining. */
  ready: () => boolean;
  /** Peers whose X-Forwarded-* headers are believed (TRUSTED_PROXIES). */
  trustedProxies: BlockList;
}

/** TRUSTED_PROXIES as a list node can check addresses against: `a.b.c.d`, `a.b.c.d/n`, IPv6 likewise. */
export function proxyList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const e of entries) {
    const [address, bits] = e.split('/');
    const family = isIP(address!) === 6 ? 'ipv6' : 'ipv4';
    if (!isIP(address!)) throw new Error(`TRUSTED_PROXIES: '${e}' is not an address or CIDR range`);
    if (bits === undefined) list.addAddress(address!, family);
    else list.addSubnet(address!, Number(bits), family);
  }
  return list;
}

const FORWARDED = ['x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-for'] as const;

/** An address (IPv4 mapped into IPv6 as plain IPv4) is one of the trusted proxies. */
function isTrusted(address: string, trusted: BlockList): boolean {
  const a = address.replace(/^::ffff:(?=\d+\.)/, '');
  return isIP(a) !== 0 && trusted.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4');
}

/** X-Forwarded-* from a peer that is not a trusted proxy say nothing: they are dropped. */
function dropUntrustedForwarding(req: IncomingMessage, trusted: BlockList): void {
  if (!FORWARDED.some((h) => h in req.headers)) return;
  if (isTrusted(req.socket.remoteAddress ?? '', trusted)) return;
  for (const h of FORWARDED) delete req.headers[h];
}

/**
 * The client's address: the peer's, or behind trusted proxies the last X-Forwarded-For address
 * that is not one of them (each proxy appends the address it was reached from, so the addresses
 * before that are the client's to write).
 */
export function clientAddress(req: IncomingMessage, trusted: BlockList): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (!isTrusted(peer, trusted)) return peer;
  const chain = String(req.headers['x-forwarded-for'] ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  for (let i = chain.length - 1; i >= 0; i--) if (!isTrusted(chain[i]!, trusted)) return chain[i]!;
  return chain[0] ?? peer;
}

/**
 * The HTTP adapter: routes parse and ask the tile service; errors map to statuses in one place.
 * A tile asked for in the plain spelling is answered before the framework (`plainTile`), with
 * the same headers, errors, request log and metrics.
 */
export function createApp(deps: AppDeps): RequestListener {
  const app = express();
  app.set('strict routing', true); // '/tiles/.../1.png/' is not a second name for the tile
  app.disable('x-powered-by');
  app.disable('etag'); // tiles set their own strong ETag; JSON answers are small
  app.set('query parser', 'simple');

  let requestId = 0;
  const idPrefix = `${process.pid.toString(36)}-`;
  /** Names the request and, when it is answered, logs it and counts it. */
  const observe = (req: IncomingMessage, res: ServerResponse, started: number, route: () => string | undefined): void => {
    const id = (req.headers['x-request-id'] as string | undefined)?.slice(0, 64) ?? idPrefix + (++requestId).toString(36);
    const url = req.url;
    res.setHeader('X-Request-Id', id);
    // Every answer is what its Content-Type says: no browser should guess otherwise.
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // Answered, or given up by the client first: then 499, as nginx logs it.
    res.on('close', () => {
      const seconds = (performance.now() - started) / 1000;
      const tile = tileLogs.get(res);
      const status = res.writableFinished ? res.statusCode : 499;
      const labels = { layer: tile?.label ?? '', route: route() ?? 'none', status: String(status), cache: tile?.cache ?? '' };
      deps.metrics.requests.inc(labels);
      deps.metrics.latency.observe(labels, seconds);
      // Built only when it is written: a cache hit costs little else.
      if (deps.log.isLevelEnabled('info')) {
        const where = tile && { layer: tile.layer, z: tile.z, x: tile.x, y: tile.y, cache: tile.cache };
        deps.log.info({ reqId: id, method: req.method, url, status, ms: +(seconds * 1000).toFixed(1), ...where }, 'request');
      }
    });
  };
  app.use((req, res, next) => {
    observe(req, res, performance.now(), () => req.route?.path as string | undefined);
    next();
  });

  // RFC 9112 §3.2: an HTTP/1.1 request names its host; HTTP/1.0 may not.
  app.use((req, _res, next) =>
    next(hostless(req) ? new TileError('bad_request', 'missing Host header', 'an HTTP/1.1 request must carry a Host header (RFC 9112 §3.2)') : undefined),
  );

  app.get('/healthz', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    // A server with no layer can only answer 404: a load balancer should not send it traffic.
    const layers = deps.layers.all().length;
    const ok = deps.ready() && deps.pool.threads > 0 && layers > 0;
    res.setHeader('Cache-Control', 'no-store');
    // L2 is reported, not required: without Redis every tile still renders.
    const l2 = deps.cache.l2?.state ?? 'off';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not ready', layers, threads: deps.pool.threads, l2 });
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
  app.get('/layers/:layer/members', listMembers(deps.layers));
  app.get(TILE_ROUTE, tileHandler(deps.layers, deps.tiles));
  app.get(TILEJSON_ROUTE, tileJsonHandler(deps.layers));
  app.get('/wmts/1.0.0/WMTSCapabilities.xml', wmtsCapabilitiesHandler(deps.layers));
  app.get('/wmts/1.0.0/:layer/:style/:set/:z/:row/:file', wmtsTileHandler(deps.layers, deps.tiles));
  app.get('/point/:layer/:lonlat', pointHandler(deps.layers, deps.query));
  app.get('/statistics/:layer', statisticsHandler(deps.layers, deps.query));
  app.post(
    '/statistics/:layer',
    admitBody(deps.query),
    express.text({ type: () => true, limit: MAX_GEOJSON_BYTES }),
    bodyTooLarge('GeoJSON too large', `a POST /statistics body is at most ${MAX_GEOJSON_BYTES} bytes`),
    statisticsHandler(deps.layers, deps.query),
  );
  app.get('/preview/:file', previewHandler(deps.layers, deps.query));
  app.post(
    '/pipelines',
    express.text({ type: () => true, limit: MAX_DOCUMENT_BYTES }),
    bodyTooLarge('document too large', `a pipeline document is at most ${MAX_DOCUMENT_BYTES} bytes`),
    postPipeline(deps.pipelines, (req) => clientAddress(req, deps.trustedProxies)),
  );
  app.get('/tiles/p/:layer/tilejson.json', pipelineTileJson(deps.pipelines));
  app.get('/tiles/p/:layer/:z/:x/:file', tileHandler(pipelineLayers(deps.pipelines), deps.tiles));
  app.get('/map{/:layer}', mapPageHandler(deps.layers, deps.pipelines !== undefined));
  app.use('/assets', mapAssets());

  crossOrigin(app, [
    TILE_ROUTE,
    TILEJSON_ROUTE,
    '/tiles/p/:layer/tilejson.json',
    '/tiles/p/:layer/:z/:x/:file',
    '/wmts/1.0.0/WMTSCapabilities.xml',
    '/wmts/1.0.0/:layer/:style/:set/:z/:row/:file',
  ]);
  // A page on another origin posts GeoJSON as application/json: the browser asks first.
  crossOrigin(app, ['/statistics/:layer'], 'GET, POST, HEAD, OPTIONS');
  crossOrigin(app, ['/point/:layer/:lonlat', '/preview/:file']);
  // Read by the map page and by operators, on the server's own origin.
  onlyMethods(app, ['/healthz', '/readyz', '/metrics', '/layers', '/layers/:layer', '/layers/:layer/members', '/map{/:layer}'], 'GET, HEAD');
  if (deps.pipelines) onlyMethods(app, ['/pipelines'], 'POST');

  app.use((req, _res, next) => next(new TileError('not_found', 'not found', `no route for ${req.method} ${req.path}`)));
  const answerError = errorHandler(deps.log, deps.layers.dir);
  app.use(answerError);

  return (req, res) => {
    const started = performance.now();
    dropUntrustedForwarding(req, deps.trustedProxies);
    const plain = hostless(req) ? undefined : plainTile(deps.layers, deps.tiles, req);
    if (!plain) return void app(req, res);
    observe(req, res, started, () => TILE_ROUTE);
    answerTile(deps.tiles, req, res, plain.t, started, plain.v).catch((err: unknown) => answerError(err, req, res));
  };
}

function hostless(req: IncomingMessage): boolean {
  return req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
}

/**
 * What map clients fetch across origins: a CORS preflight is answered, and any other method
 * than `allow` is a 405 that says which ones there are (not a 404: the resource exists). The
 * server's routes, and those of the programmatic API's router (src/api/router.ts).
 */
export function crossOrigin(app: IRouter, routes: readonly string[], allow = ALLOW): void {
  for (const route of routes) {
    app.options(route, (_req, res) => {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Allow-Methods', allow);
      res.setHeader('Access-Control-Allow-Headers', 'If-None-Match, If-Modified-Since, Range, Content-Type, Content-Encoding');
      res.setHeader('Access-Control-Max-Age', '86400');
      res.setHeader('Allow', allow);
      res.status(204).end();
    });
  }
  onlyMethods(app, routes, allow);
}

/** Any other method than `allow` on these routes is a 405 that says which ones there are (not a 404: the resource exists). */
export function onlyMethods(app: IRouter, routes: readonly string[], allow: string): void {
  for (const route of routes)
    app.all(route, (req, res, next) => {
      res.setHeader('Allow', allow);
      next(new TileError('method_not_allowed', 'method not allowed', `${req.method} ${req.path}: only ${allow}`));
    });
}
