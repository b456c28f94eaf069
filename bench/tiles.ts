/**
 * XYZ tile arithmetic for the benchmark, kept apart from src/ so that the load it generates
 * does not depend on the code it measures.
 */
export interface Tile { z: number; x: number; y: number }

const HALF = 20037508.342789244;
const R = 6378137;

/** Web Mercator bounds [minX, minY, maxX, maxY] of a tile. */
export function tileBounds({ z, x, y }: Tile): [number, number, number, number] {
  const span = (2 * HALF) / 2 ** z;
  const minX = -HALF + x * span;
  const maxY = HALF - y * span;
  return [minX, maxY - span, minX + span, maxY];
}

export function lonLatToMercator(lon: number, lat: number): [number, number] {
  const l = Math.max(-85.0511287798066, Math.min(85.0511287798066, lat));
  return [(lon * Math.PI / 180) * R, Math.log(Math.tan(Math.PI / 4 + (l * Math.PI) / 360)) * R];
}

/** Every tile of zooms zmin..zmax whose area overlaps WGS84 `bounds`, by zoom, then row, then column. */
export function tilesCovering(bounds: readonly [number, number, number, number], zmin: number, zmax: number): Tile[] {
  const [x0, y1] = lonLatToMercator(bounds[0], bounds[1]);
  const [x1, y0] = lonLatToMercator(bounds[2], bounds[3]);
  const out: Tile[] = [];
  for (let z = zmin; z <= zmax; z++) {
    const n = 2 ** z;
    const span = (2 * HALF) / n;
    const c0 = Math.max(0, Math.floor((x0 + HALF) / span)), c1 = Math.min(n - 1, Math.ceil((x1 + HALF) / span) - 1);
    const r0 = Math.max(0, Math.floor((HALF - y0) / span)), r1 = Math.min(n - 1, Math.ceil((HALF - y1) / span) - 1);
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
