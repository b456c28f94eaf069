/**
 * XYZ tile arithmetic for the benchmark from @mapbox/tilebelt, apart from src/ so that the load
 * it generates does not depend on the code it measures.
 */
import { pointToTileFraction, tileToBBOX } from '@mapbox/tilebelt';

export interface Tile {
  z: number;
  x: number;
  y: number;
}

const R = 6378137;

/** Web Mercator bounds [minX, minY, maxX, maxY] of a tile. */
export function tileBounds({ z, x, y }: Tile): [number, number, number, number] {
  const [w, s, e, n] = tileToBBOX([x, y, z]);
  return [...lonLatToMercator(w, s), ...lonLatToMercator(e, n)];
}

export function lonLatToMercator(lon: number, lat: number): [number, number] {
  const l = Math.max(-85.0511287798066, Math.min(85.0511287798066, lat));
  return [((lon * Math.PI) / 180) * R, Math.log(Math.tan(Math.PI / 4 + (l * Math.PI) / 360)) * R];
}

/** Every tile of zooms zmin..zmax whose area overlaps WGS84 `bounds`, by zoom, then row, then column. */
export function tilesCovering(bounds: readonly [number, number, number, number], zmin: number, zmax: number): Tile[] {
  const [w, s, e, n] = bounds;
  const out: Tile[] = [];
  for (let z = zmin; z <= zmax; z++) {
    const last = 2 ** z - 1;
    // Fractional tile coordinates of the corners: a tile that the bounds only touch is left out.
    const [fx0, fy0] = pointToTileFraction(w, Math.min(n, 85.0511287798066), z);
    const [fx1, fy1] = pointToTileFraction(e, Math.max(s, -85.0511287798066), z);
    const c0 = Math.max(0, Math.floor(fx0)),
      c1 = Math.min(last, Math.ceil(fx1) - 1);
    const r0 = Math.max(0, Math.floor(fy0)),
      r1 = Math.min(last, Math.ceil(fy1) - 1);
    for (let y = r0; y <= r1; y++) for (let x = c0; x <= c1; x++) out.push({ z, x, y });
  }
  return out;
}

/** Every `stride`-th tile of each zoom (the first included), keeping the order. */
export function everyNth(tiles: readonly Tile[], stride: number): Tile[] {
  if (stride <= 1) return [...tiles];
  const seen = new Map<number, number>();
  return tiles.filter((t) => {
    const k = seen.get(t.z) ?? 0;
    seen.set(t.z, k + 1);
    return k % stride === 0;
  });
}

export function countByZoom(tiles: readonly Tile[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tiles) out[t.z] = (out[t.z] ?? 0) + 1;
  return out;
}
