/**
 * `GET /point/{layer}/{lon},{lat}`, `GET|POST /statistics/{layer}` and
 * `GET /preview/{layer}.{png|webp}`: the layer's data at a point, over an area, and as one
 * image (src/service/query.ts).
 */
import type { NextFunction, Request, Response } from 'express';
import { TileError } from '../../errors.js';
import type { LayerRegistry } from '../../layers/registry.js';
import type { AreaPlace, QueryService } from '../../service/query.js';
import { bboxArea, geoJsonArea } from '../../tiles/area.js';
import { queryBbox, queryText, queryWhole } from './params.js';
import { whileConnected } from './tiles.js';

/** Largest GeoJSON body `POST /statistics` takes. */
export const MAX_GEOJSON_BYTES = 1024 * 1024;

const bad = (title: string, detail: string) => new TileError('bad_request', title, detail);

/** An area as the request gives it; the parsers' refusals (written for the command line) as 400s. */
function parsed<T>(title: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw bad(title, (err as Error).message.replace(/^--bbox /, 'bbox='));
  }
}

function noStore(res: Response): void {
  // The answers follow the data: cached for a minute, never past a layer's reload.
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Access-Control-Allow-Origin', '*');
}

export function pointHandler(layers: LayerRegistry, query: QueryService) {
  return async (req: Request, res: Response): Promise<void> => {
    const layer = layers.require(String(req.params.layer));
    const m = /^(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)$/.exec(String(req.params.lonlat));
    if (!m) throw bad('bad point', `${String(req.params.lonlat).slice(0, 100)}: expected {lon},{lat} in WGS84 degrees, e.g. /point/${layer.name}/-117.5,53.2`);
    noStore(res);
    res.json(await query.point(layer, Number(m[1]), Number(m[2]), queryWhole(req, 'z'), whileConnected(res)));
  };
}

/**
 * A POST's place among the area requests (MAX_AREA_REQUESTS), taken before its body is read and
 * given back when the request closes: past the limit a body is refused unread, with a 503.
 */
export function admitBody(query: QueryService) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    const place = query.admit();
    res.once('close', () => place.release());
    res.locals.place = place;
    next();
  };
}

export function statisticsHandler(layers: LayerRegistry, query: QueryService) {
  return async (req: Request, res: Response): Promise<void> => {
    const layer = layers.require(String(req.params.layer));
    let area;
    if (req.method === 'POST') {
      if (typeof req.body !== 'string' || req.body === '')
        throw bad('no polygons', 'POST a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection (WGS84) as the body');
      area = parsed('bad polygons', () => geoJsonArea(req.body as string, 'the body'));
    } else {
      const bbox = queryBbox(req);
      if (!bbox) throw bad('no bbox', `GET /statistics/${layer.name}?bbox=W,S,E,N, or POST GeoJSON polygons`);
      area = parsed('bad bbox', () => bboxArea(bbox));
    }
    const node = queryText(req, 'node')?.slice(0, 100);
    const { grid, stats } = await query.statistics(
      layer,
      area,
      {
        maxSize: queryWhole(req, 'max_size'),
        bins: queryWhole(req, 'bins'),
        node,
        polygons: req.method === 'POST',
        place: res.locals.place as AreaPlace | undefined,
      },
      whileConnected(res),
    );
    noStore(res);
    res.json({ layer: layer.name, bbox: area.bbox, grid, ...stats });
  };
}

export function previewHandler(layers: LayerRegistry, query: QueryService) {
  return async (req: Request, res: Response): Promise<void> => {
    const m = /^(.+)\.(png|webp)$/.exec(String(req.params.file));
    if (!m) throw bad('bad preview path', 'expected /preview/{layer}.png or .webp');
    const layer = layers.require(m[1]!);
    const given = queryBbox(req);
    if (!given) throw bad('no bbox', `/preview/${layer.name}.${m[2]}?bbox=W,S,E,N&width=N`);
    const bbox = parsed('bad bbox', () => bboxArea(given)).bbox;
    const { body } = await query.preview(layer, bbox, queryWhole(req, 'width') ?? 1024, m[2] as 'png' | 'webp', whileConnected(res));
    noStore(res);
    res.setHeader('Content-Type', `image/${m[2]}`);
    res.end(body);
  };
}
