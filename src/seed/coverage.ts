/**
 * Which tiles a seeding run covers (SPEC §6): an area (a bbox, GeoJSON polygons or a layer's
 * data footprint), a zoom range and a shard in; a stream of tiles out, never a list of them.
 *
 * A tile is covered when its open square meets the closed area: the polygon's interior, its
 * outline or a hole's outline. A tile that only touches the area along an edge or at a corner
 * is not covered, the exclusive edges of gdal2tiles and of `tileRange`.
 *
 * Order, which resuming and sharding rely on: zooms ascending; within a zoom, blocks of 8×8
 * tiles in row-major block order (aligned on the global grid), tiles row-major in a block.
 */
import { bboxArea, bboxOf, type Area, type Polygon } from '../tiles/area.js';
import { outline, splitAtAntimeridian, type SourceOutline } from '../tiles/footprint.js';
import { HALF_WORLD, lonLatToMercator, type TileId } from '../tiles/mercator.js';

export interface Shard {
  index: number;
  count: number;
}

/** The side of the blocks the coverage yields its tiles in (metatiles divide it). */
export const SEED_BLOCK = 8;
const MAX_ZOOM = 30;
const MAX_SHARDS = 10000;
/** tilesFromList deals its lines to shards in runs of this many. */
const LIST_BLOCK = 64;

// ---------------------------------------------------------------------------------------------
// Inputs

export { bboxArea, bboxNumbers, geoJsonArea, type Area, type Bbox, type Polygon } from '../tiles/area.js';

/**
 * A layer's real data footprint: each source's outline, its four edges sampled and
 * reprojected to WGS84 (the way `wgs84Bounds` in src/layers/layer.ts samples them for a
 * bbox), so a rotated or reprojected raster does not seed the empty corners of its bbox.
 */
export function footprintArea(sources: readonly SourceOutline[]): Area {
  if (sources.length === 0) throw new Error('footprint: the layer has no sources');
  const polygons = sources.flatMap((s): Polygon[] => splitAtAntimeridian(outline(s) ?? bboxArea([-180, -90, 180, 90]).polygons[0]![0]!).map((ring) => [ring]));
  return { polygons, bbox: bboxOf(polygons) };
}

/** `--zoom 10-14` or `--zoom 12`. */
export function parseZooms(text: string): [number, number] {
  const m = /^\s*(\d{1,2})\s*(?:-\s*(\d{1,2})\s*)?$/.exec(text);
  if (!m) throw new Error(`--zoom "${text}": expected a zoom (12) or a range (10-14)`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (hi > MAX_ZOOM) throw new Error(`--zoom "${text}": zooms go from 0 to ${MAX_ZOOM}`);
  if (lo > hi) throw new Error(`--zoom "${text}": the first zoom is above the last`);
  return [lo, hi];
}

/** `--shard I/N`: I from 0 to N-1, as a Kubernetes indexed Job numbers its pods. */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d{1,5})\s*\/\s*(\d{1,5})\s*$/.exec(text);
  if (!m) throw new Error(`--shard "${text}": expected I/N, e.g. 0/4`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS) throw new Error(`--shard "${text}": N must lie in 1..${MAX_SHARDS}`);
  if (index >= count) throw new Error(`--shard "${text}": I must lie in 0..${count - 1}`);
  return { index, count };
}

// ---------------------------------------------------------------------------------------------
// Geometry, in normalised Web Mercator: u = 0..1 west to east, v = 0..1 north to south, so a
// tile at zoom z is [x, x+1] / 2^z by [y, y+1] / 2^z exactly (scaling by 2^z does not round).

interface Edge {
  u0: number;
  v0: number;
  u1: number;
  v1: number;
  /** The polygon the edge belongs to: inside-ness is even-odd per polygon, then a union. */
  poly: number;
  vmin: number;
  vmax: number;
}

interface Geometry {
  /** Every ring edge of every polygon, by vmin, for the sweep down each zoom. */
  edges: Edge[];
  polygons: number;
  extent: [number, number, number, number];
}

function normalise(lon: number, lat: number): [number, number] {
  const [mx, my] = lonLatToMercator(lon, lat);
  // The same expressions as tileRange, so a bbox gives the same tile range to the last bit.
  const u = (mx + HALF_WORLD) / (2 * HALF_WORLD);
  const v = (HALF_WORLD - my) / (2 * HALF_WORLD);
  return [Math.max(0, Math.min(1, u)), Math.max(0, Math.min(1, v))];
}

function project(area: Area): Geometry {
  const edges: Edge[] = [];
  const extent: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
  area.polygons.forEach((rings, poly) => {
    for (const ring of rings) {
      const pts = ring.map(([lon, lat]) => normalise(lon, lat));
      pts.forEach(([u0, v0], i) => {
        const [u1, v1] = pts[(i + 1) % pts.length]!;
        extent[0] = Math.min(extent[0], u0);
        extent[1] = Math.min(extent[1], v0);
        extent[2] = Math.max(extent[2], u0);
        extent[3] = Math.max(extent[3], v0);
        // A closed ring repeats its first point: that edge has no length and no say.
        if (u0 !== u1 || v0 !== v1) edges.push({ u0, v0, u1, v1, poly, vmin: Math.min(v0, v1), vmax: Math.max(v0, v1) });
      });
    }
  });
  edges.sort((a, b) => a.vmin - b.vmin);
  return { edges, polygons: area.polygons.length, extent };
}

/** Whether an edge meets the open box (x0, x1) × (y0, y1): Liang–Barsky with strict bounds. */
function crosses(e: Edge, x0: number, y0: number, x1: number, y1: number): boolean {
  let t0 = 0;
  let t1 = 1;
  // On each axis the segment is strictly between the box's sides for t in an open interval.
  const du = e.u1 - e.u0;
  if (du === 0) {
    if (!(e.u0 > x0 && e.u0 < x1)) return false;
  } else {
    const a = (x0 - e.u0) / du;
    const b = (x1 - e.u0) / du;
    t0 = Math.max(t0, Math.min(a, b));
    t1 = Math.min(t1, Math.max(a, b));
  }
  const dv = e.v1 - e.v0;
  if (dv === 0) return e.v0 > y0 && e.v0 < y1 && t0 < t1;
  const a = (y0 - e.v0) / dv;
  const b = (y1 - e.v0) / dv;
  return Math.max(t0, Math.min(a, b)) < Math.min(t1, Math.max(a, b));
}

/**
 * Whether a point lies inside any polygon (even-odd per polygon, so holes work), given every
 * edge that spans its v. Only asked for points that no edge passes through.
 */
function inside(edges: readonly Edge[], parity: Uint8Array, u: number, v: number): boolean {
  let odd = 0; // polygons with an odd count so far; parity is all zeros between calls
  for (const e of edges)
    if (e.v0 > v !== e.v1 > v && u < e.u0 + ((v - e.v0) * (e.u1 - e.u0)) / (e.v1 - e.v0)) {
      parity[e.poly] = parity[e.poly]! ^ 1;
      odd += parity[e.poly] ? 1 : -1;
    }
  for (const e of edges) parity[e.poly] = 0;
  return odd > 0;
}

/**
 * Splits cells lo..hi of a horizontal strip [v0, v1] (cells `scale` to the unit, so 2^z/8 for
 * blocks, 2^z for tiles) into runs no edge enters, `[a, b, false]`, and cells an edge may
 * enter, `[a, b, true]`. The edges' extents are padded so rounding never leaves a cell out;
 * a run no edge enters is wholly inside the area or wholly outside, so one point decides it.
 */
function strip(edges: readonly Edge[], v0: number, v1: number, scale: number, lo: number, hi: number): [number, number, boolean][] {
  const hit: [number, number][] = [];
  // Relative to the cell size: at zoom 30 a ulp of u is a millionth of a tile.
  const pad = 1e-9 + scale * 1e-12;
  for (const e of edges) {
    if (e.vmax < v0 || e.vmin > v1) continue;
    let ua = e.u0;
    let ub = e.u1;
    if (e.v0 !== e.v1) {
      const at = (v: number) => e.u0 + ((v - e.v0) * (e.u1 - e.u0)) / (e.v1 - e.v0);
      ua = at(Math.max(e.vmin, v0));
      ub = at(Math.min(e.vmax, v1));
    }
    const a = Math.max(lo, Math.floor(Math.min(ua, ub) * scale - pad));
    const b = Math.min(hi, Math.floor(Math.max(ua, ub) * scale + pad));
    if (a <= b) hit.push([a, b]);
  }
  hit.sort((p, q) => p[0] - q[0]);
  const out: [number, number, boolean][] = [];
  let at = lo;
  for (let i = 0; i < hit.length;) {
    const a = hit[i]![0];
    let b = hit[i]![1];
    for (i++; i < hit.length && hit[i]![0] <= b + 1; i++) b = Math.max(b, hit[i]![1]);
    if (a > at) out.push([at, a - 1, false]);
    out.push([a, b, true]);
    at = b + 1;
  }
  if (at <= hi) out.push([at, hi, false]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The walk: one sweep down each zoom, a band of eight tile rows at a time.

/** A run of consecutive blocks of one band that lie wholly inside the area. */
interface FullRun {
  kind: 'run';
  z: number;
  by: number;
  bx0: number;
  bx1: number;
}
/** The covered tiles of a block that the area's outline passes through (never empty). */
interface PartBlock {
  kind: 'part';
  z: number;
  /** Row-major runs of covered tiles, flat triples y, x0, x1: counting allocates no tiles. */
  runs: number[];
  size: number;
}
type BlockEvent = FullRun | PartBlock;

/** Block rows and columns clipped to the grid: at zooms 0-2 the one block is smaller than 8×8. */
function blockSpan(b: number, n: number): [number, number] {
  return [b * SEED_BLOCK, Math.min(b * SEED_BLOCK + SEED_BLOCK, n) - 1];
}

function* blocksOf(area: Area, zooms: readonly [number, number]): Generator<BlockEvent> {
  const { edges, polygons, extent } = project(area);
  const parity = new Uint8Array(polygons);
  for (let z = zooms[0]; z <= zooms[1]; z++) {
    const n = 2 ** z;
    // The tile range of the extent with exclusive edges: tiles outside it can only touch the area.
    const c0 = Math.max(0, Math.floor(extent[0] * n));
    const r0 = Math.max(0, Math.floor(extent[1] * n));
    const c1 = Math.min(n - 1, Math.ceil(extent[2] * n) - 1);
    const r1 = Math.min(n - 1, Math.ceil(extent[3] * n) - 1);
    if (c1 < c0 || r1 < r0) continue;
    let active: Edge[] = [];
    let next = 0;
    for (let by = Math.floor(r0 / SEED_BLOCK); by <= Math.floor(r1 / SEED_BLOCK); by++) {
      const [y0, y1] = blockSpan(by, n);
      // The edges that reach into the band: all a point-in-polygon test of the band needs.
      while (next < edges.length && edges[next]!.vmin <= (y1 + 1) / n) active.push(edges[next++]!);
      active = active.filter((e) => e.vmax >= y0 / n);
      for (const [a, b, touched] of strip(active, y0 / n, (y1 + 1) / n, n / SEED_BLOCK, Math.floor(c0 / SEED_BLOCK), Math.floor(c1 / SEED_BLOCK))) {
        for (let bx = a; bx <= b; bx++) {
          const [x0, x1] = blockSpan(bx, n);
          const near = touched ? active.filter((e) => crosses(e, x0 / n, y0 / n, (x1 + 1) / n, (y1 + 1) / n)) : [];
          if (near.length === 0) {
            // Wholly inside or outside: its centre decides, and for a run, the first block's.
            if (inside(active, parity, (x0 + x1 + 1) / 2 / n, (y0 + y1 + 1) / 2 / n)) yield { kind: 'run', z, by, bx0: bx, bx1: touched ? bx : b };
            if (touched) continue;
            break;
          }
          // The outline passes through: the same split again, a row of tiles at a time.
          const runs: number[] = [];
          let size = 0;
          const add = (y: number, xa: number, xb: number) => {
            const k = runs.length;
            if (k && runs[k - 3] === y && runs[k - 1] === xa - 1) runs[k - 1] = xb;
            else runs.push(y, xa, xb);
            size += xb - xa + 1;
          };
          for (let y = Math.max(y0, r0); y <= Math.min(y1, r1); y++)
            for (const [ta, tb, edgy] of strip(near, y / n, (y + 1) / n, n, Math.max(x0, c0), Math.min(x1, c1))) {
              if (!edgy) {
                if (inside(active, parity, (ta + 0.5) / n, (y + 0.5) / n)) add(y, ta, tb);
                continue;
              }
              for (let x = ta; x <= tb; x++)
                if (near.some((e) => crosses(e, x / n, y / n, (x + 1) / n, (y + 1) / n)) || inside(active, parity, (x + 0.5) / n, (y + 0.5) / n)) add(y, x, x);
            }
          if (size) yield { kind: 'part', z, runs, size };
        }
      }
    }
  }
}

function* blockTiles(z: number, by: number, bx: number): Generator<TileId> {
  const n = 2 ** z;
  const [y0, y1] = blockSpan(by, n);
  const [x0, x1] = blockSpan(bx, n);
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) yield { z, x, y };
}

function blockSize(z: number, by: number, bx: number): number {
  const n = 2 ** z;
  const [y0, y1] = blockSpan(by, n);
  const [x0, x1] = blockSpan(bx, n);
  return (y1 - y0 + 1) * (x1 - x0 + 1);
}

/**
 * Deals the non-empty blocks of a run to shards: each block goes to the shard with the fewest
 * tiles so far in this zoom, ties to the one served longest ago. With whole blocks that is
 * plain round-robin; blocks cut by the outline are evened out, so the shards of a zoom never
 * differ by more than one block (64 tiles), which round-robin alone does not promise. The
 * "longest ago" carries across zooms, so zooms of one block each still spread over shards.
 * Every process deals the same blocks the same way, so the shards are disjoint and complete.
 */
class ShardDealer {
  private readonly load: Float64Array;
  private readonly served: Float64Array;
  /** A binary min-heap of shard indices by (load, served). */
  private readonly heap: Int32Array;
  private ordinal = 0;

  constructor(readonly count: number) {
    this.load = new Float64Array(count);
    this.served = Float64Array.from({ length: count }, (_, i) => i - count);
    this.heap = new Int32Array(count);
    this.zoom();
  }

  /** A new zoom: loads start again from zero, the order of service carries on. */
  zoom(): void {
    this.load.fill(0);
    const order = Array.from({ length: this.count }, (_, i) => i).sort((a, b) => this.served[a]! - this.served[b]!);
    this.heap.set(order); // sorted by served with equal loads: already a heap
  }

  /** The shard that takes a block of this many tiles. */
  take(tiles: number): number {
    const { heap, load, served } = this;
    const shard = heap[0]!;
    load[shard] = load[shard]! + tiles;
    served[shard] = this.ordinal++;
    const less = (a: number, b: number) => load[a]! < load[b]! || (load[a] === load[b] && served[a]! < served[b]!);
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
      if (m === i) break;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
    return shard;
  }
}

/** The covered tiles, streamed in the order above; with a shard, only that shard's blocks. */
export function* tilesOf(area: Area, zooms: readonly [number, number], shard?: Shard): Generator<TileId> {
  const dealer = shard && shard.count > 1 ? new ShardDealer(shard.count) : undefined;
  let zoom = -1;
  for (const ev of blocksOf(area, zooms)) {
    if (dealer && ev.z !== zoom) dealer.zoom();
    zoom = ev.z;
    if (ev.kind === 'part') {
      if (!dealer || dealer.take(ev.size) === shard!.index)
        for (let i = 0; i < ev.runs.length; i += 3) for (let x = ev.runs[i + 1]!; x <= ev.runs[i + 2]!; x++) yield { z: ev.z, x, y: ev.runs[i]! };
    } else
      for (let bx = ev.bx0; bx <= ev.bx1; bx++) if (!dealer || dealer.take(blockSize(ev.z, ev.by, bx)) === shard!.index) yield* blockTiles(ev.z, ev.by, bx);
  }
}

/** Tiles per zoom, exactly what tilesOf yields; whole blocks are counted, not walked. */
export function countTiles(area: Area, zooms: readonly [number, number], shard?: Shard): Map<number, number> {
  const counts = new Map<number, number>();
  for (let z = zooms[0]; z <= zooms[1]; z++) counts.set(z, 0);
  const dealer = shard && shard.count > 1 ? new ShardDealer(shard.count) : undefined;
  let zoom = -1;
  for (const ev of blocksOf(area, zooms)) {
    if (dealer && ev.z !== zoom) dealer.zoom();
    zoom = ev.z;
    let k = 0;
    if (ev.kind === 'part') k = !dealer || dealer.take(ev.size) === shard!.index ? ev.size : 0;
    else if (!dealer) k = (ev.bx1 - ev.bx0 + 1) * blockSize(ev.z, ev.by, ev.bx0);
    else
      for (let bx = ev.bx0; bx <= ev.bx1; bx++) {
        const size = blockSize(ev.z, ev.by, bx);
        if (dealer.take(size) === shard!.index) k += size;
      }
    counts.set(ev.z, counts.get(ev.z)! + k);
  }
  return counts;
}

/**
 * `--tiles FILE`: one `z/x/y` per line; blank lines and `#` comments are skipped. Shards take
 * runs of 64 tiles round-robin, so neighbouring lines (often neighbouring tiles) stay together.
 * A bad line throws when the walk reaches it: a caller that must not start on a bad file walks
 * it once first.
 */
export function* tilesFromList(text: string, file: string, shard?: Shard): Generator<TileId> {
  const lines = text.split(/\r?\n/);
  let ordinal = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*/, '').trim();
    if (line === '') continue;
    const where = `${file}:${i + 1}`;
    const m = /^(\d{1,2})\/(\d{1,10})\/(\d{1,10})$/.exec(line);
    if (!m) throw new Error(`${where}: "${line}" is not z/x/y`);
    const [z, x, y] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (z > MAX_ZOOM) throw new Error(`${where}: zoom ${z} is outside 0..${MAX_ZOOM}`);
    const n = 2 ** z;
    if (x >= n) throw new Error(`${where}: x ${x} is outside 0..${n - 1} at zoom ${z}`);
    if (y >= n) throw new Error(`${where}: y ${y} is outside 0..${n - 1} at zoom ${z}`);
    if (!shard || Math.floor(ordinal / LIST_BLOCK) % shard.count === shard.index) yield { z, x, y };
    ordinal++;
  }
}
