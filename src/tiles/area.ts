/**
 * Areas on the map as users give them: a bbox or GeoJSON polygons in WGS84 (seeding
 * coverage, `/statistics` polygons), as lon/lat rings.
 */
import { MAX_LAT } from './mercator.js';

/** Lon/lat rings: the first ring of a polygon is its outline, the others its holes. */
export type Polygon = [number, number][][];
export type Bbox = [number, number, number, number];

export interface Area {
  polygons: Polygon[];
  /** WGS84 [w, s, e, n] of all polygons. */
  bbox: Bbox;
}

const DECIMAL = /^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i;

/** `W,S,E,N` as written in a URL or on the command line: decimal numbers, NaN for anything else (Number() would read '0x35' as 53 and '' as 0). */
export function bboxNumbers(text: string): number[] {
  return text.split(',').map((v) => (DECIMAL.test(v) ? Number(v) : NaN));
}

/** `--bbox W,S,E,N` in WGS84 degrees (`text` as given, when it was); latitudes are clamped to Web Mercator's ±85.0511°. */
export function bboxArea(bbox: readonly number[], text = bbox.join(',')): Area {
  const what = `--bbox ${text}`;
  if (bbox.length !== 4 || !bbox.every(Number.isFinite)) throw new Error(`${what}: expected four decimal numbers W,S,E,N`);
  const [w, s, e, n] = bbox as Bbox;
  if (w < -180 || e > 180 || s < -90 || n > 90) throw new Error(`${what}: longitudes must lie in -180..180 and latitudes in -90..90 (WGS84 degrees)`);
  if (!(w < e && s < n)) throw new Error(`${what}: west must be less than east and south less than north`);
  const south = Math.max(s, -MAX_LAT);
  const north = Math.min(n, MAX_LAT);
  if (!(south < north)) throw new Error(`${what}: lies beyond Web Mercator's ±${MAX_LAT}° latitude`);
  const ring: [number, number][] = [
    [w, south],
    [e, south],
    [e, north],
    [w, north],
    [w, south],
  ];
  return { polygons: [[ring]], bbox: [w, south, e, north] };
}

/** `--geojson FILE`: the Polygons and MultiPolygons of a FeatureCollection, a Feature or a bare geometry. */
export function geoJsonArea(text: string, file: string): Area {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  const polygons: Polygon[] = [];
  const obj = (v: unknown): Record<string, unknown> | undefined =>
    v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  const geometry = (g: unknown, where: string): void => {
    const type = obj(g)?.type;
    const coords = obj(g)?.coordinates;
    if (type === 'Polygon') polygons.push(polygon(coords, file, where));
    else if (type === 'MultiPolygon' && Array.isArray(coords)) coords.forEach((p, i) => polygons.push(polygon(p, file, `${where}, polygon ${i}`)));
    else if (type === 'MultiPolygon') throw new Error(`${file}: ${where}: MultiPolygon coordinates must be an array of polygons`);
    else if (g === null || g === undefined) throw new Error(`${file}: ${where} has no geometry`);
    else {
      const what = typeof type === 'string' ? `a ${type}` : 'not a GeoJSON geometry';
      throw new Error(`${file}: ${where} is ${what}; an area takes Polygon and MultiPolygon geometries only`);
    }
  };
  const root = obj(doc);
  if (root?.type === 'FeatureCollection') {
    if (!Array.isArray(root.features)) throw new Error(`${file}: a FeatureCollection needs a "features" array`);
    root.features.forEach((f, i) => geometry(obj(f)?.geometry, `feature ${i}`));
  } else if (root?.type === 'Feature') geometry(root.geometry, 'the feature');
  else if (root) geometry(root, 'the geometry');
  else throw new Error(`${file}: expected a GeoJSON object (FeatureCollection, Feature, Polygon or MultiPolygon)`);
  if (polygons.length === 0) throw new Error(`${file}: holds no polygons`);
  return { polygons, bbox: bboxOf(polygons) };
}

function polygon(coords: unknown, file: string, where: string): Polygon {
  if (!Array.isArray(coords) || coords.length === 0) throw new Error(`${file}: ${where}: a Polygon needs at least one ring`);
  return coords.map((ring, r) => {
    // RFC 7946 §3.1.6: a linear ring holds at least four positions, the last equal to the first.
    if (!Array.isArray(ring) || ring.length < 4) throw new Error(`${file}: ${where}, ring ${r}: a ring needs at least four positions`);
    return ring.map((p: unknown, k): [number, number] => {
      const [lon, lat] = Array.isArray(p) ? (p as unknown[]) : [];
      if (typeof lon !== 'number' || typeof lat !== 'number' || !Number.isFinite(lon) || !Number.isFinite(lat))
        throw new Error(`${file}: ${where}, ring ${r}, position ${k}: expected [lon, lat] numbers`);
      if (Math.abs(lon) > 180 || Math.abs(lat) > 90)
        throw new Error(`${file}: ${where}, ring ${r}, position ${k}: [${lon}, ${lat}] is not WGS84 lon/lat (GeoJSON is EPSG:4326, RFC 7946 §4)`);
      return [lon, lat];
    });
  });
}

/** The WGS84 [w, s, e, n] of polygons' outer rings, latitudes clamped to Web Mercator's. */
export function bboxOf(polygons: readonly Polygon[]): Bbox {
  const box: Bbox = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [outer] of polygons)
    for (const [lon, lat] of outer!) {
      box[0] = Math.min(box[0], lon);
      box[1] = Math.min(box[1], lat);
      box[2] = Math.max(box[2], lon);
      box[3] = Math.max(box[3], lat);
    }
  const lat = (v: number) => Math.max(-MAX_LAT, Math.min(MAX_LAT, v));
  return [box[0], lat(box[1]), box[2], lat(box[3])];
}
