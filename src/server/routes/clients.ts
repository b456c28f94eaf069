/**
 * What existing map clients need: TileJSON (MapLibre, Leaflet plugins, QGIS via URL), WMTS
 * capabilities and RESTful tiles (QGIS, ArcGIS, GDAL), and the preview page with its assets.
 * Thin: the documents are built in src/tiles and src/server/mappage.ts.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import express, { type Request, type RequestHandler, type Response } from 'express';
import type { LayerRegistry } from '../../layers/registry.js';
import type { TileFormat } from '../../render/encode.js';
import type { TileService } from '../../service/tiles.js';
import { buildTileJson, type TileScale, type TileUrlFormat } from '../../tiles/tilejson.js';
import { buildWmtsCapabilities, matrixSetsOf, matrixSetSuffix, WMTS_STYLE } from '../../tiles/wmts.js';
import { TileError } from '../../errors.js';
import { MAP_PAGE_CSP, MAPLIBRE_ASSETS, renderMapPage } from '../mappage.js';
import { answerTile } from './tiles.js';
import { queryText } from './params.js';

const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function firstValue(h: string | string[] | undefined): string | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  return v?.split(',')[0]?.trim() || undefined;
}

/**
 * The scheme and authority the client used, so that document URLs work from where it stands:
 * `X-Forwarded-Proto`/`X-Forwarded-Host` (and `X-Forwarded-Port`) from nginx or a CDN, else
 * the request's own `Host`. Values that are not a plain scheme or host are ignored, so a forged
 * header cannot inject markup into the XML or HTML built from it.
 */
export function requestBaseUrl(req: Request): string {
  const fwdProto = firstValue(req.headers['x-forwarded-proto'])?.toLowerCase();
  const proto = fwdProto === 'http' || fwdProto === 'https' ? fwdProto : req.protocol === 'https' ? 'https' : 'http';
  const fwdHost = firstValue(req.headers['x-forwarded-host']);
  let host = fwdHost && HOST.test(fwdHost) ? fwdHost : undefined;
  if (host && !/:\d+$/.test(host)) {
    const port = firstValue(req.headers['x-forwarded-port']);
    if (port && /^\d{1,5}$/.test(port) && !((proto === 'http' && port === '80') || (proto === 'https' && port === '443'))) host = `${host}:${port}`;
  }
  if (!host) {
    const own = req.headers.host;
    host = own && HOST.test(own) ? own : '127.0.0.1';
  }
  return `${proto}://${host}`;
}

/**
 * Documents that embed the request's host must not be shared across hosts by a cache, and
 * must be re-checked so that a changed layer's new `?v=` reaches clients at once.
 */
export function documentHeaders(res: Response): void {
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Vary', 'Host, X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Port');
  res.setHeader('Access-Control-Allow-Origin', '*');
}

/**
 * `GET /tiles/{layer}/tilejson.json[?scale=2][&format=webp]`; mounted under a path (the
 * programmatic API's router in another express app), its tile URLs keep that path (`baseUrl`).
 */
export function tileJsonHandler(layers: Pick<LayerRegistry, 'require'>): RequestHandler {
  return (req, res) => {
    const layer = layers.require(String(req.params.layer));
    const scale = queryText(req, 'scale') ?? '1';
    if (scale !== '1' && scale !== '2') throw new TileError('bad_request', 'bad scale', "'scale' is 1 or 2");
    const format = queryText(req, 'format') ?? 'png';
    if (format !== 'png' && format !== 'webp') throw new TileError('bad_request', 'bad format', "'format' is png or webp");
    documentHeaders(res);
    res.json(buildTileJson(requestBaseUrl(req) + req.baseUrl, layer, Number(scale) as TileScale, format as TileUrlFormat));
  };
}

/** `GET /wmts/1.0.0/WMTSCapabilities.xml` */
export function wmtsCapabilitiesHandler(layers: LayerRegistry): RequestHandler {
  return (req, res) => {
    documentHeaders(res);
    res.type('application/xml').send(buildWmtsCapabilities(requestBaseUrl(req), layers.all()));
  };
}

// One spelling per tile, as on the XYZ route: no leading zeros.
const Z = /^(0|[1-9]\d?)$/;
const INDEX = /^(0|[1-9]\d{0,9})$/;
const COL_FILE = /^(0|[1-9]\d{0,9})\.(png|webp)$/;

/**
 * `GET /wmts/1.0.0/{layer}/{Style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.png`, the
 * RESTful template of the capabilities: the same tile service, headers and errors as the XYZ
 * route, with the matrix set choosing between 1x and 2x tiles.
 */
export function wmtsTileHandler(layers: LayerRegistry, tiles: TileService): RequestHandler {
  return async (req, res) => {
    const started = performance.now();
    const { layer: name, style, set, z, row, file } = req.params as Record<string, string>;
    const layer = layers.require(name!);
    if (style !== WMTS_STYLE) throw new TileError('not_found', 'unknown style', `layer '${name}' has the style '${WMTS_STYLE}' only`);
    const suffix = matrixSetSuffix(layer.config.tileSize, set!);
    if (suffix === undefined) {
      const served = matrixSetsOf(layer.config.tileSize).map((id) => `'${id}'`);
      throw new TileError(
        'not_found',
        'unknown tile matrix set',
        `layer '${name}' is not served in the tile matrix set '${set}'; it is served in ${served.join(' and ')}`,
      );
    }
    const m = COL_FILE.exec(file!);
    if (!m || !Z.test(z!) || !INDEX.test(row!)) {
      throw new TileError('bad_request', 'malformed tile path', 'expected /wmts/1.0.0/{layer}/{Style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.png');
    }
    // WMTS counts rows from the top like XYZ y, and columns like XYZ x.
    const t = tiles.request(layer, Number(z), Number(m[1]), Number(row), suffix === '@2x' ? 2 : 1, m[2] as TileFormat);
    await answerTile(tiles, req, res, t, started, req.query.v);
  };
}

/** `GET /map` (the first layer) and `GET /map/{layer}` */
export function mapPageHandler(layers: LayerRegistry, pipelines = false): RequestHandler {
  return (req, res) => {
    const all = layers.all();
    const name = req.params.layer as string | undefined;
    if (name === undefined) {
      if (!all.length) throw new TileError('not_found', 'no layers', 'no layer is loaded; see GET /layers for the refused files');
      res.setHeader('Cache-Control', 'no-cache');
      return res.redirect(302, `/map/${encodeURIComponent(all[0]!.name)}`);
    }
    const layer = layers.require(name);
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Vary', 'Host, X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Port');
    res.setHeader('Content-Security-Policy', MAP_PAGE_CSP);
    res.type('html').send(renderMapPage(requestBaseUrl(req), layer, all, { pipelines }));
  };
}

/**
 * `GET /assets/maplibre-gl@{version}/...`: MapLibre GL from this package's own node_modules
 * (no CDN). The version is in the path, so the files can be cached for good.
 */
export function mapAssets(): express.Router {
  const require = createRequire(import.meta.url);
  const dist = path.join(path.dirname(require.resolve('maplibre-gl/package.json')), 'dist');
  const router = express.Router();
  router.use(
    MAPLIBRE_ASSETS.replace(/^\/assets/, ''),
    (_req, res, next) => {
      res.setHeader('Access-Control-Allow-Origin', '*');
      next();
    },
    // No redirect from the directory to itself with a slash: it is no page either way.
    express.static(dist, { index: false, redirect: false, immutable: true, maxAge: '365d', fallthrough: true }),
  );
  return router;
}
