/**
 * A raster's outline in WGS84: its pixel grid's four edges sampled and reprojected (a
 * reprojected edge bends), the way `wgs84Bounds` in src/layers/layer.ts samples them for a
 * bbox. Seeding covers a layer's footprint with it; a mosaic indexes its members by it.
 */
import proj4 from '../proj4.js';

export interface SourceOutline {
  geoTransform: readonly number[];
  width: number;
  height: number;
  crs: { proj4: string };
}

/** Points per raster edge: a reprojected edge bends. */
export const EDGE_SAMPLES = 64;

/**
 * The closed ring around the pixel grid (widened by `pad` pixels on every side), in lon/lat;
 * null when no point of it projects (the caller decides what that means: the whole world for
 * a footprint, as wgs84Bounds answers).
 */
export function outline({ geoTransform, width, height, crs }: SourceOutline, pad = 0): [number, number][] | null {
  const conv = proj4(crs.proj4, 'EPSG:4326');
  const [a, b, c, d, e, f] = geoTransform as [number, number, number, number, number, number];
  // Around the pixel grid's outline: top, right, bottom, left; each edge's last point starts the next.
  const corners = [
    [-pad, -pad],
    [width + pad, -pad],
    [width + pad, height + pad],
    [-pad, height + pad],
  ] as const;
  const ring: [number, number][] = [];
  for (let side = 0; side < 4; side++) {
    const [p0, l0] = corners[side]!;
    const [p1, l1] = corners[(side + 1) % 4]!;
    for (let k = 0; k < EDGE_SAMPLES; k++) {
      const t = k / EDGE_SAMPLES;
      const px = p0 + (p1 - p0) * t;
      const py = l0 + (l1 - l0) * t;
      let lon: number, lat: number;
      try {
        [lon, lat] = conv.forward([a + b * px + c * py, d + e * px + f * py]) as [number, number];
      } catch {
        continue; // a point outside the projection's domain, as wgs84Bounds skips it
      }
      if (Number.isFinite(lon) && Number.isFinite(lat)) ring.push([lon, Math.max(-90, Math.min(90, lat))]);
    }
  }
  if (ring.length < 3) return null;
  ring.push(ring[0]!);
  return ring;
}

/**
 * An outline within ±180 as it is, or one running past ±180 (a geographic raster from 170° to
 * 190°) as its parts on either side of the antimeridian, each within ±180.
 */
export function splitAtAntimeridian(ring: [number, number][]): [number, number][][] {
  const lons = ring.map(([lon]) => lon);
  const lo = Math.min(...lons),
    hi = Math.max(...lons);
  const clamp = (r: [number, number][]) => r.map(([lon, lat]): [number, number] => [Math.max(-180, Math.min(180, lon)), lat]);
  if (hi - lo >= 360) return [clamp(ring)];
  if (hi <= 180 && lo >= -180) return [ring];
  const shift = hi > 180 ? -360 : 360;
  const inside = clipRing(ring, hi > 180 ? 180 : -180, hi > 180);
  const across = clipRing(
    ring.map(([lon, lat]): [number, number] => [lon + shift, lat]),
    hi > 180 ? -180 : 180,
    hi <= 180,
  );
  return [inside, across].filter((r) => r.length >= 4).map(clamp);
}

/** The part of a closed ring on one side of the meridian `at` (west of it when `west`): Sutherland–Hodgman, closed again. */
function clipRing(ring: readonly [number, number][], at: number, west: boolean): [number, number][] {
  const keep = ([lon]: readonly [number, number]) => (west ? lon <= at : lon >= at);
  const out: [number, number][] = [];
  for (let k = 0; k < ring.length - 1; k++) {
    const a = ring[k]!,
      b = ring[k + 1]!;
    if (keep(a)) out.push(a);
    if (keep(a) !== keep(b)) {
      const t = (at - a[0]) / (b[0] - a[0]);
      out.push([at, a[1] + (b[1] - a[1]) * t]);
    }
  }
  if (out.length > 0) out.push(out[0]!);
  return out;
}
