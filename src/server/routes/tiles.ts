import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import type { TileCache, TileEntry } from '../../cache/tiles.js';
import type { Layer } from '../../layers/layer.js';
import type { LayerRegistry } from '../../layers/registry.js';
import { encodeTile, transparentTile, type TileFormat } from '../../render/encode.js';
import type { RenderPool } from '../../render/pool.js';
import { lonLatToMercator, tileBounds, tileRange } from '../../tiles/mercator.js';
import type { Logger } from 'pino';
import type { Metrics } from '../../metrics.js';
import { HttpError } from '../errors.js';

// One spelling per tile, so that caches see one URL: no leading zeros.
const Z = /^(0|[1-9]\d?)$/;
const XY = /^(0|[1-9]\d{0,9})$/;
const FILE = /^(0|[1-9]\d{0,9})(@2x)?\.(png|webp)$/;

export interface TileRequest {
  layer: Layer;
  z: number;
  x: number;
  y: number;
  scale: 1 | 2;
  format: TileFormat;
}

/** Validates `/tiles/{layer}/{z}/{x}/{y}[@2x].{png|webp}`: 400 for malformed, 404 off the grid or zoom range. */
export function parseTilePath(layers: LayerRegistry, params: Record<string, string>): TileRequest {
  const layer = layers.get(params.layer ?? '');
  const m = FILE.exec(params.file ?? '');
  if (!Z.test(params.z ?? '') || !XY.test(params.x ?? '') || !m) {
    throw new HttpError(400, 'malformed tile path', 'expected /tiles/{layer}/{z}/{x}/{y}.png, @2x.png, .webp or @2x.webp with whole numbers');
  }
  if (!layer) throw new HttpError(404, 'unknown layer', `no layer named '${params.layer}'`);
  const z = Number(params.z), x = Number(params.x), y = Number(m[1]);
  const { minzoom, maxzoom } = layer.config;
  if (z < minzoom || z > maxzoom) throw new HttpError(404, 'zoom out of range', `layer '${layer.name}' serves zooms ${minzoom}-${maxzoom}`);
  const n = 2 ** z;
  if (x >= n || y >= n) throw new HttpError(404, 'tile out of range', `at zoom ${z}, x and y run from 0 to ${n - 1}`);
  return { layer, z, x, y, scale: m[2] ? 2 : 1, format: m[3] as TileFormat };
}

export interface TileDeps {
  layers: LayerRegistry;
  pool: RenderPool;
  cache: TileCache;
  metrics: Metrics;
  log: Logger;
}

/** Tile bounds that miss the layer's data footprint need no render. */
function outsideData(t: TileRequest): boolean {
  const [w, s, e, n] = t.layer.bounds;
  const [minX, minY] = lonLatToMercator(w, s);
  const [maxX, maxY] = lonLatToMercator(e, n);
  const b = tileBounds(t);
  return b[0] >= maxX || b[2] <= minX || b[1] >= maxY || b[3] <= minY;
}

/** The tile's column across the layer's data at its zoom, as a share from 0 to 1. */
function columnShare(t: TileRequest): number {
  const [x0, , x1] = tileRange(t.layer.bounds, t.z);
  return x1 > x0 ? (t.x - x0) / (x1 - x0 + 1) : 0;
}

async function produce(t: TileRequest, deps: TileDeps): Promise<TileEntry> {
  const size = t.layer.config.tileSize * t.scale;
  const version = t.layer.version;
  if (outsideData(t)) return { body: null, etag: etagOf(version, null) };
  const layer = t.layer.name;
  let r;
  try {
    r = await deps.pool.render({ layer: t.layer.spec, z: t.z, x: t.x, y: t.y, size, format: t.format, affinity: columnShare(t) });
  } catch (err) {
    deps.metrics.renderErrors.inc({ layer });
    throw err;
  }
  deps.metrics.renders.inc({ layer });
  if (r.blocks) for (const [outcome, n] of Object.entries(r.blocks)) if (n) deps.metrics.blockReads.inc({ outcome }, n);
  deps.metrics.renderStage.observe({ layer, stage: 'read' }, r.readMs / 1000);
  deps.metrics.renderStage.observe({ layer, stage: 'ops' }, r.opsMs / 1000);
  for (const w of r.warnings) {
    deps.metrics.qualityWarnings.inc({ layer, check: w.check });
    deps.log.warn({ layer, z: t.z, x: t.x, y: t.y, check: w.check }, w.message);
  }
  if (!r.png && !r.rgba) return { body: null, etag: etagOf(version, null), timings: { read: r.readMs, ops: r.opsMs, encode: 0 } };
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
  deps.metrics.renderStage.observe({ layer, stage: 'encode' }, encodeMs / 1000);
  return { body, etag: etagOf(version, body), timings: { read: r.readMs, ops: r.opsMs, encode: encodeMs } };
}

/** Strong: the layer version (config and sources) and the bytes themselves. */
function etagOf(version: string, body: Buffer | null): string {
  const h = createHash('sha1').update(version);
  if (body) h.update(body);
  else h.update('empty');
  return `"${h.digest('hex').slice(0, 24)}"`;
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

export function tileHandler(deps: TileDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    const started = performance.now();
    const t = parseTilePath(deps.layers, req.params as Record<string, string>);
    const key = `${t.layer.version}/${t.z}/${t.x}/${t.y}@${t.scale}.${t.format}`;
    const { entry, tier } = await deps.cache.get(key, () => produce(t, deps));
    const { cache } = t.layer.config;
    res.setHeader('Cache-Control', `public, max-age=${cache.maxAge}, s-maxage=${cache.sMaxAge}, stale-while-revalidate=${cache.staleWhileRevalidate}`);
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('ETag', entry.etag);
    res.setHeader('X-Cache', tier);
    res.setHeader('X-Layer-Hash', t.layer.hash.slice(0, 12));
    const tm = tier === 'miss' ? entry.timings : undefined;
    const total = performance.now() - started;
    res.setHeader('Server-Timing', [
      `read;dur=${(tm?.read ?? 0).toFixed(1)}`,
      `ops;dur=${(tm?.ops ?? 0).toFixed(1)}`,
      `encode;dur=${(tm?.encode ?? 0).toFixed(1)}`,
      `cache;dur=${(tier === 'miss' ? 0 : total).toFixed(1)}`,
    ].join(', '));
    res.locals.tile = { layer: t.layer.name, z: t.z, x: t.x, y: t.y, cache: tier };
    if (noneMatch(req.headers['if-none-match'], entry.etag)) {
      res.status(304).end();
      return;
    }
    let body = entry.body;
    if (!body) {
      if (t.layer.config.empty !== 'transparent') {
        res.status(204).end();
        return;
      }
      body = await transparentTile(t.layer.config.tileSize * t.scale, t.format);
    }
    res.setHeader('Content-Type', t.format === 'png' ? 'image/png' : 'image/webp');
    res.setHeader('Content-Length', String(body.length));
    res.status(200).end(body);
  };
}
