/** Web Mercator (EPSG:3857) and the XYZ tile grid: y counts from the top, 2^z tiles a side. */

export const HALF_WORLD = 20037508.342789244;
export const EARTH_RADIUS = 6378137;
export const MAX_LAT = 85.0511287798066;

export interface TileId {
  z: number;
  x: number;
  y: number;
}

/** Tile bounds in metres: [minX, minY, maxX, maxY]. */
export function tileBounds({ z, x, y }: TileId): [number, number, number, number] {
  const span = (2 * HALF_WORLD) / 2 ** z;
  const minX = -HALF_WORLD + x * span;
  const maxY = HALF_WORLD - y * span;
  return [minX, maxY - span, minX + span, maxY];
}

export function lonLatToMercator(lon: number, lat: number): [number, number] {
  const clamped = Math.max(-MAX_LAT, Math.min(MAX_LAT, lat));
  return [((lon * Math.PI) / 180) * EARTH_RADIUS, Math.log(Math.tan(Math.PI / 4 + (clamped * Math.PI) / 360)) * EARTH_RADIUS];
}

/** The tile range [minX, minY, maxX, maxY] (inclusive) covering lon/lat bounds at zoom z. */
/**
 * WGS84 bounds whose east edge may run past 180 (a layer across the antimeridian, as
 * `wgs84Bounds` gives them), as one or two boxes within ±180.
 */
export function boundsParts(b: readonly [number, number, number, number]): [number, number, number, number][] {
  if (b[2] <= 180) return [[b[0], b[1], b[2], b[3]]];
  return [
    [b[0], b[1], 180, b[3]],
    [-180, b[1], b[2] - 360, b[3]],
  ];
}

/** The same bounds as clients read them: within ±180, west greater than east across the antimeridian (TileJSON 3.0.0 §3.3). */
export function wrapBounds(b: readonly [number, number, number, number]): [number, number, number, number] {
  return b[2] > 180 ? [b[0], b[1], b[2] - 360, b[3]] : [b[0], b[1], b[2], b[3]];
}

export function tileRange(bounds: [number, number, number, number], z: number): [number, number, number, number] {
  const n = 2 ** z;
  const [x0, y0] = lonLatToMercator(bounds[0], bounds[3]);
  const [x1, y1] = lonLatToMercator(bounds[2], bounds[1]);
  const col = (mx: number) => Math.min(n - 1, Math.max(0, Math.floor(((mx + HALF_WORLD) / (2 * HALF_WORLD)) * n)));
  const row = (my: number) => Math.min(n - 1, Math.max(0, Math.floor(((HALF_WORLD - my) / (2 * HALF_WORLD)) * n)));
  // A bound exactly on a tile edge belongs to the tile before it on the max side.
  const colMax = (mx: number) => Math.min(n - 1, Math.max(0, Math.ceil(((mx + HALF_WORLD) / (2 * HALF_WORLD)) * n) - 1));
  const rowMax = (my: number) => Math.min(n - 1, Math.max(0, Math.ceil(((HALF_WORLD - my) / (2 * HALF_WORLD)) * n) - 1));
  return [col(x0), row(y0), colMax(x1), rowMax(y1)];
}
