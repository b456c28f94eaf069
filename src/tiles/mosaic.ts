/**
 * Which members of a mosaic a tile needs: each member's footprint (its reprojected outline,
 * widened by the pixels a resampling kernel reaches past its edge), in Web Mercator, held in a
 * static R-tree (flatbush). A tile asks for the members whose outline meets its square widened
 * by the graph's buffer and a kernel's reach; members come back in their listed order.
 */
import Flatbush from 'flatbush';
import { outline, splitAtAntimeridian, type SourceOutline } from './footprint.js';
import { HALF_WORLD, lonLatToMercator, tileBounds, type TileId } from './mercator.js';

/** Source pixels a footprint is widened by: a cubic kernel reaches two pixels past a member's edge. */
export const KERNEL_REACH_PX = 2;
/** Output pixels a tile's square is widened by, past the graph's buffer: a kernel downsampling an overview. */
export const TILE_MARGIN_PX = 4;
/** Outline points kept per footprint point shown: 64 an edge become 4. */
const FOOTPRINT_STEP = 16;
/** Tiles counted per zoom when finding the zoom from which no tile needs more members than a limit. */
const MAX_COUNTED_TILES = 200_000;

type Ring = [number, number][];

export class MosaicIndex {
  private readonly tree: Flatbush | null;
  /** Mercator rings, and the member each belongs to (a member across the antimeridian has two). */
  private readonly rings: Ring[] = [];
  private readonly owner: number[] = [];
  /** WGS84 [w, s, e, n] of all footprints (not widened). */
  readonly bounds: [number, number, number, number];
  /** Each footprint in lon/lat, every FOOTPRINT_STEP-th point of its outline. */
  private readonly outlines: Ring[] = [];
  private minzoomCache = new Map<string, number | null>();

  constructor(members: readonly SourceOutline[]) {
    const box: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
    members.forEach((m, i) => {
      for (const ring of splitAtAntimeridian(outline(m) ?? worldRing())) {
        this.outlines.push(ring.filter((_, k) => k % FOOTPRINT_STEP === 0 || k === ring.length - 1));
        for (const [lon, lat] of ring) {
          box[0] = Math.min(box[0], lon);
          box[1] = Math.min(box[1], lat);
          box[2] = Math.max(box[2], lon);
          box[3] = Math.max(box[3], lat);
        }
      }
      for (const ring of splitAtAntimeridian(outline(m, KERNEL_REACH_PX) ?? worldRing())) {
        this.rings.push(ring.map(([lon, lat]) => lonLatToMercator(lon, lat)));
        this.owner.push(i);
      }
    });
    this.bounds = box[0] === Infinity ? [-180, -85.0511287798066, 180, 85.0511287798066] : box;
    if (this.rings.length === 0) {
      this.tree = null;
      return;
    }
    this.tree = new Flatbush(this.rings.length);
    for (const ring of this.rings) {
      const [x0, y0, x1, y1] = ringBox(ring);
      this.tree.add(x0, y0, x1, y1);
    }
    this.tree.finish();
  }

  /** The members' footprints as a GeoJSON MultiPolygon (outlines thinned to a few points an edge). */
  footprint(): { type: 'MultiPolygon'; coordinates: Ring[][] } {
    return { type: 'MultiPolygon', coordinates: this.outlines.map((r) => [r]) };
  }

  /** The members (ascending, so in listed order) whose footprint meets a Web Mercator rectangle. */
  search(rect: readonly [number, number, number, number]): number[] {
    if (!this.tree) return [];
    const found = new Set<number>();
    for (const i of this.tree.search(rect[0], rect[1], rect[2], rect[3])) {
      const m = this.owner[i]!;
      if (!found.has(m) && ringMeetsRect(this.rings[i]!, rect)) found.add(m);
    }
    return [...found].sort((a, b) => a - b);
  }

  /** The members a tile reads: its square widened by `bufferPx` output pixels (of `size` a side) and a kernel's reach. */
  forTile(tile: TileId & { bounds?: readonly [number, number, number, number] }, size: number, bufferPx: number): number[] {
    const b = tile.bounds ?? tileBounds(tile);
    const pad = ((bufferPx + TILE_MARGIN_PX) * (b[2] - b[0])) / size;
    return this.search([b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad]);
  }

  /**
   * The lowest zoom up to `maxzoom` at which no tile meets more than `limit` footprints
   * (counted by their boxes, so never too low), or null when there is none (four members
   * meeting at a corner share a tile at every zoom) or finding it would count more than
   * MAX_COUNTED_TILES tiles: the zoom to suggest when a tile asks for more.
   */
  minzoomFor(limit: number, maxzoom: number): number | null {
    const key = `${limit}/${maxzoom}`;
    const cached = this.minzoomCache.get(key);
    if (cached !== undefined) return cached;
    const boxes = this.rings.map(ringBox);
    let found: number | null = null;
    let counted = 0;
    for (let z = 0; z <= maxzoom && found === null && counted <= MAX_COUNTED_TILES; z++) {
      const n = 2 ** z;
      const counts = new Map<number, number>();
      let worst = 0;
      for (const [x0, y0, x1, y1] of boxes) {
        const c0 = col(x0, n),
          c1 = col(x1, n),
          r0 = row(y1, n),
          r1 = row(y0, n);
        counted += (c1 - c0 + 1) * (r1 - r0 + 1);
        if (counted > MAX_COUNTED_TILES) break;
        for (let r = r0; r <= r1; r++)
          for (let c = c0; c <= c1; c++) {
            const v = (counts.get(r * n + c) ?? 0) + 1;
            counts.set(r * n + c, v);
            if (v > worst) worst = v;
          }
      }
      if (counted <= MAX_COUNTED_TILES && worst <= limit) found = z;
    }
    this.minzoomCache.set(key, found);
    return found;
  }
}

const col = (mx: number, n: number) => Math.min(n - 1, Math.max(0, Math.floor(((mx + HALF_WORLD) / (2 * HALF_WORLD)) * n)));
const row = (my: number, n: number) => Math.min(n - 1, Math.max(0, Math.floor(((HALF_WORLD - my) / (2 * HALF_WORLD)) * n)));

function worldRing(): Ring {
  return [
    [-180, -90],
    [180, -90],
    [180, 90],
    [-180, 90],
    [-180, -90],
  ];
}

function ringBox(ring: Ring): [number, number, number, number] {
  let x0 = Infinity,
    y0 = Infinity,
    x1 = -Infinity,
    y1 = -Infinity;
  for (const [x, y] of ring) {
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x);
    y1 = Math.max(y1, y);
  }
  return [x0, y0, x1, y1];
}

/** A closed ring meets a rectangle when one of its edges crosses the rectangle or the rectangle lies inside it. */
export function ringMeetsRect(ring: Ring, [rx0, ry0, rx1, ry1]: readonly [number, number, number, number]): boolean {
  for (let k = 0; k + 1 < ring.length; k++) if (segmentMeetsRect(ring[k]!, ring[k + 1]!, rx0, ry0, rx1, ry1)) return true;
  return pointInRing(ring, (rx0 + rx1) / 2, (ry0 + ry1) / 2);
}

/** Liang–Barsky: does the segment a-b pass through the closed rectangle? */
function segmentMeetsRect(a: [number, number], b: [number, number], x0: number, y0: number, x1: number, y1: number): boolean {
  let t0 = 0,
    t1 = 1;
  const dx = b[0] - a[0],
    dy = b[1] - a[1];
  for (const [p, q] of [
    [-dx, a[0] - x0],
    [dx, x1 - a[0]],
    [-dy, a[1] - y0],
    [dy, y1 - a[1]],
  ] as const) {
    if (p === 0) {
      if (q < 0) return false;
      continue;
    }
    const t = q / p;
    if (p < 0) t0 = Math.max(t0, t);
    else t1 = Math.min(t1, t);
    if (t0 > t1) return false;
  }
  return true;
}

function pointInRing(ring: Ring, x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]!,
      [xj, yj] = ring[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
