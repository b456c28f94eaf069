import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { Request, Response } from 'express';
import type { CachePolicy } from '../../layers/layer.js';
import type { LayerRegistry } from '../../layers/registry.js';
import { contentType, transparentTile, type TileFormat } from '../../render/encode.js';
import type { TileAnswer, TileRequest, TileService } from '../../service/tiles.js';
import { TileError } from '../../errors.js';
import { layerLabel } from '../../metrics.js';

// One spelling per tile, so that caches see one URL: no leading zeros.
const Z = /^(0|[1-9]\d?)$/;
const XY = /^(0|[1-9]\d{0,9})$/;
const FILE = /^(0|[1-9]\d{0,9})(@2x)?\.(png|webp)$/;

/** Validates `/tiles/{layer}/{z}/{x}/{y}[@2x].{png|webp}`: 400 for malformed, 404 off the grid or zoom range. */
export function parseTilePath(layers: Pick<LayerRegistry, 'require'>, tiles: TileService, params: Record<string, string>): TileRequest {
  const m = FILE.exec(params.file ?? '');
  if (!Z.test(params.z ?? '') || !XY.test(params.x ?? '') || !m) {
    throw new TileError('bad_request', 'malformed tile path', 'expected /tiles/{layer}/{z}/{x}/{y}.png, @2x.png, .webp or @2x.webp with whole numbers');
  }
  return tiles.request(layers.require(params.layer ?? ''), Number(params.z), Number(params.x), Number(m[1]), m[2] ? 2 : 1, m[3] as TileFormat);
}

/**
 * RFC 9110 §13.1.2: If-None-Match holds `*` or a list of entity tags, compared weakly (a
 * proxy that compresses turns a strong tag into `W/"..."`; it still names these bytes).
 */
function noneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === bare);
}

/** `GET /tiles/{layer}/{z}/{x}/{y}[@2x].{png|webp}` */
export function tileHandler(layers: Pick<LayerRegistry, 'require'>, tiles: TileService) {
  return async (req: Request, res: Response): Promise<void> => {
    const started = performance.now();
    const t = parseTilePath(layers, tiles, req.params as Record<string, string>);
    await answerTile(tiles, req, res, t, started, req.query.v);
  };
}

/**
 * A tile's answer over HTTP: from L1 without waiting when it holds the tile, else from the tile
 * service, which renders it only while a client still wants it (a map panned away cancels its
 * requests).
 */
export async function answerTile(tiles: TileService, req: IncomingMessage, res: ServerResponse, t: TileRequest, started: number, v: unknown): Promise<void> {
  await sendTile(req, res, t, tiles.cached(t) ?? (await tiles.tile(t, whileConnected(res))), started, v);
}

/** Aborts when the client goes away before its answer is written: what it asked then leaves the render queue. */
export function whileConnected(res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}

/** What the request log and metrics say of a tile response. */
export interface TileLog {
  layer: string;
  z: number;
  x: number;
  y: number;
  cache: string;
  /** The layer's label in the metrics (layerLabel), not logged. */
  label: string;
}

/** The tile each response carried, for the request log and metrics (src/server/app.ts). */
export const tileLogs = new WeakMap<ServerResponse, TileLog>();

/** Each layer's Cache-Control, written once (a cache hit is mostly headers: keep them cheap). */
const policies = new WeakMap<CachePolicy, string>();

/** Server-Timing of a tile that a cache answered: only the time in the cache is not zero; `desc` names the tier. */
const HIT_TIMING = {
  'hit-l1': 'read;dur=0.0, ops;dur=0.0, encode;dur=0.0, cache;desc=hit-l1;dur=',
  'hit-l2': 'read;dur=0.0, ops;dur=0.0, encode;dur=0.0, cache;desc=hit-l2;dur=',
};

/** Seconds a tile URL naming an old layer version may be kept: it is answered with the current tile. */
const OLD_VERSION_MAX_AGE = 60;

/**
 * The CDN contract, set on `res`. A URL that carries the layer's current version (`?v=`, as
 * TileJSON, WMTS and the preview page write it) names bytes that can never change: cache it for
 * a year. A URL without it follows the layer's policy, with stale-while-revalidate. A URL with
 * another version gets the current tile, which must not stick under the old name: a short
 * max-age, and nothing for nginx to keep (`X-Accel-Expires: 0`, which nginx takes for itself):
 * any client could make up versions by the million, each an entry pushing real tiles out.
 */
function setCacheHeaders(res: ServerResponse, v: unknown, version: string, cache: CachePolicy): void {
  if (v === undefined) {
    let policy = policies.get(cache);
    if (!policy)
      policies.set(cache, (policy = `public, max-age=${cache.maxAge}, s-maxage=${cache.sMaxAge}, stale-while-revalidate=${cache.staleWhileRevalidate}`));
    res.setHeader('Cache-Control', policy);
  } else if (v === version) res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
  else {
    const age = Math.min(OLD_VERSION_MAX_AGE, cache.maxAge);
    res.setHeader('Cache-Control', `public, max-age=${age}, s-maxage=${age}`);
    res.setHeader('X-Accel-Expires', '0');
  }
}

/** A tile answer over HTTP, whichever route asked: headers, 304, 204 or the bytes. */
export async function sendTile(req: IncomingMessage, res: ServerResponse, t: TileRequest, tile: TileAnswer, started: number, v: unknown): Promise<void> {
  setCacheHeaders(res, v, t.layer.version, t.layer.config.cache);
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('ETag', tile.etag);
  res.setHeader('X-Cache', tile.tier);
  res.setHeader('X-Layer-Hash', t.layer.hash.slice(0, 12));
  const tm = tile.tier === 'miss' ? tile.timings : undefined;
  res.setHeader(
    'Server-Timing',
    tm
      ? `read;dur=${tm.read.toFixed(1)}, ops;dur=${tm.ops.toFixed(1)}, encode;dur=${tm.encode.toFixed(1)}, cache;desc=miss;dur=0.0`
      : HIT_TIMING[tile.tier === 'hit-l2' ? 'hit-l2' : 'hit-l1'] + (performance.now() - started).toFixed(1),
  );
  // Pages on other origins may read the timings (PerformanceResourceTiming.serverTiming).
  res.setHeader('Timing-Allow-Origin', '*');
  tileLogs.set(res, { layer: t.layer.name, z: t.z, x: t.x, y: t.y, cache: tile.tier, label: layerLabel(t.layer) });
  if (noneMatch(req.headers['if-none-match'], tile.etag)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  let body = tile.body;
  if (!body) {
    if (t.layer.config.empty !== 'transparent') {
      res.statusCode = 204;
      res.end();
      return;
    }
    body = await transparentTile(t.layer.config.tileSize * t.scale, t.format);
  }
  res.setHeader('Content-Type', tile.type ?? contentType(t.format));
  res.setHeader('Content-Length', String(body.length));
  res.statusCode = 200;
  res.end(body);
}

/** `/tiles/{layer}/{z}/{x}/{file}[?query]`, spelt plainly (a percent-encoded name goes the full way). */
const RAW_TILE = /^\/tiles\/([^/?%]+)\/([^/?]+)\/([^/?]+)\/([^/?]+)(?:\?(.*))?$/;

/**
 * The tile route without the framework, for the requests a tile server answers most: a GET in
 * the plain spelling for a tile of a loaded layer, hit or miss. Returns the tile and the URL's
 * `v`, or undefined for anything else (an unknown layer, a malformed path, an unusual spelling,
 * another method), which the express app then handles in full, errors included.
 * Going through express took a quarter of the main thread's time for an uncached DEM tile on a
 * fresh server (0.82-0.97 ms against 0.54-0.78 ms, the bench's tiles, servers in turn).
 */
export function plainTile(layers: LayerRegistry, tiles: TileService, req: IncomingMessage): { t: TileRequest; v: unknown } | undefined {
  if (req.method !== 'GET') return undefined;
  const m = RAW_TILE.exec(req.url ?? '');
  if (!m) return undefined;
  let t: TileRequest;
  try {
    t = parseTilePath(layers, tiles, { layer: m[1]!, z: m[2]!, x: m[3]!, file: m[4]! });
  } catch {
    return undefined;
  }
  // As express's 'simple' query parser reads it: a repeated key gives a list.
  return { t, v: m[5] === undefined ? undefined : parseQuery(m[5]).v };
}
