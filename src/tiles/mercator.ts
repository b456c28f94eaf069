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
