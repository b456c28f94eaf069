/**
 * TileJSON 3.0.0 documents (https://github.com/mapbox/tilejson-spec/tree/master/3.0.0) and the
 * versioned tile URL templates shared by TileJSON, WMTS and the preview page. Pure: the HTTP
 * layer hands in the public base URL (scheme, host, port) the client used.
 */
import { HALF_WORLD, lonLatToMercator, MAX_LAT, wrapBounds } from './mercator.js';

/** What client documents need from a layer (src/layers' Layer has all of it). */
export interface ClientLayer {
  name: string;
  /** The layer version, which tile URLs carry as `?v=`. */
  version: string;
  /** WGS84 [west, south, east, north]. */
  bounds: [number, number, number, number];
  config: { title: string; description: string; attribution: string; minzoom: number; maxzoom: number; tileSize: 256 | 512 };
}

export type TileScale = 1 | 2;
export type TileUrlFormat = 'png' | 'webp';

export interface TileJson {
  tilejson: '3.0.0';
  /** Not in 3.0.0; the layer's URL segment, as TiTiler and Martin add it. */
  id: string;
  name: string;
  description: string;
  attribution: string;
  tiles: string[];
  minzoom: number;
  maxzoom: number;
  bounds: [number, number, number, number];
  center: [number, number, number];
  scheme: 'xyz';
  /** Not in 3.0.0 either; MapLibre's raster source reads it. Pixels per side of one tile image. */
  tileSize: number;
}

/**
 * `{z}/{x}/{y}` template for one layer. The `v` query carries the layer version (config hash
 * plus source versions): the server ignores it, but a changed layer gets new URLs, so browser,
 * nginx and CDN caches never answer with a tile of the previous version.
 */
export function tileUrlTemplate(
  baseUrl: string,
  layer: Pick<ClientLayer, 'name' | 'version'>,
  scale: TileScale = 1,
  format: TileUrlFormat = 'png',
  route = `/tiles/${encodeURIComponent(layer.name)}`,
): string {
  return `${baseUrl}${route}/{z}/{x}/{y}${scale === 2 ? '@2x' : ''}.${format}?v=${encodeURIComponent(layer.version)}`;
}

/**
 * Web Mercator tiles stop at ±85.0511°; bounds are widened to the next 1e-7° (about a
 * centimetre) so that rounding never trims an edge pixel off a client's request area.
 */
export function mercatorBounds(b: readonly [number, number, number, number]): [number, number, number, number] {
  const down = (v: number) => Math.floor(v * 1e7) / 1e7;
  const up = (v: number) => Math.ceil(v * 1e7) / 1e7;
  // East past 180 is a layer across the antimeridian (see boundsParts): kept, not cut.
  const east = b[2] > 180 ? Math.min(b[0] + 360, up(b[2])) : Math.min(180, up(b[2]));
  return [Math.max(-180, down(b[0])), Math.max(-MAX_LAT, down(b[1])), east, Math.min(MAX_LAT, up(b[3]))];
}

/**
 * TileJSON `center`: [lon, lat, zoom] with lon/lat inside `bounds` and zoom an integer between
 * minzoom and maxzoom (3.0.0 §3.6). The point is the middle of the bounds in Mercator (what a
 * map shows as the middle); the zoom is the largest at which the bounds fit a 1024×768 view.
 */
export function layerCenter(bounds: readonly [number, number, number, number], minzoom: number, maxzoom: number, tileSize = 256): [number, number, number] {
  const [w, s, e, n] = bounds;
  const [x0, y0] = lonLatToMercator(w, s);
  const [x1, y1] = lonLatToMercator(e, n);
  const world = 2 * HALF_WORLD;
  const fit = (viewPx: number, span: number) => (span > 0 ? Math.log2((viewPx / tileSize) * (world / span)) : Infinity);
  const z = Math.floor(Math.min(fit(1024, x1 - x0), fit(768, y1 - y0)));
  const zoom = Math.min(maxzoom, Math.max(minzoom, Number.isFinite(z) ? z : maxzoom));
  const midY = (y0 + y1) / 2;
  const lat = (Math.atan(Math.exp(midY / 6378137)) * 2 - Math.PI / 2) * (180 / Math.PI);
  // `+ 0` turns -0 into 0.
  const round = (v: number) => Math.round(v * 1e7) / 1e7 + 0;
  const lon = (w + e) / 2;
  return [round(lon > 180 ? lon - 360 : lon), Math.min(n, Math.max(s, round(lat))), zoom];
}

/**
 * The TileJSON of one layer. `scale: 2` answers the `@2x` template with `tileSize` doubled
 * (the same ground area per tile at twice the pixels).
 */
export function buildTileJson(baseUrl: string, layer: ClientLayer, scale: TileScale = 1, format: TileUrlFormat = 'png', route?: string): TileJson {
  const { config } = layer;
  const bounds = mercatorBounds(layer.bounds);
  return {
    tilejson: '3.0.0',
    id: layer.name,
    name: config.title || layer.name,
    description: config.description,
    attribution: config.attribution,
    tiles: [tileUrlTemplate(baseUrl, layer, scale, format, route)],
    minzoom: config.minzoom,
    maxzoom: config.maxzoom,
    bounds: wrapBounds(bounds),
    center: layerCenter(bounds, config.minzoom, config.maxzoom),
    scheme: 'xyz',
    tileSize: config.tileSize * scale,
  };
}
