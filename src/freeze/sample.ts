/**
 * The sample tiles a frozen artifact records: a few tiles of every zoom the layer serves, spread
 * evenly through its data footprint's tiles (src/seed/coverage.ts), chosen without randomness
 * so the same layer gives the same sample. `verify` re-renders the tiles the manifest lists, so
 * this choice may change between versions without breaking old artifacts.
 */
import type { Layer } from '../layers/layer.js';
import { countTiles, footprintArea, tilesOf, type Area } from '../seed/coverage.js';
import type { TileId } from '../tiles/mercator.js';

/** Tiles a sample holds (fewer when the footprint has fewer). */
export const SAMPLE_TILES = 24;
/**
 * Tiles of one zoom walked to pick from. A deeper zoom with more takes, for each tile it picks,
 * the tile at the centre of a tile picked from the deepest zoom within the limit: no zoom walks
 * millions of tiles, and its tiles still lie where the data is.
 */
const WALK_LIMIT = 1 << 20;
/** Candidates a zoom holds for each tile it takes: stand-ins for tiles that turn out empty. */
const CANDIDATES_PER_TILE = 4;

/** One zoom's part of the sample: how many tiles it takes, and the tiles to take them from, best first. */
export interface SampleGroup {
  z: number;
  want: number;
  candidates: TileId[];
}

/**
 * The sample's candidates, zoom by zoom: `want` tiles of each (the zooms share SAMPLE_TILES,
 * a zoom with fewer tiles leaving its share to the deeper ones), from CANDIDATES_PER_TILE
 * times as many spread evenly through the footprint. The first `want` are themselves spread
 * evenly; the others stand in for those that turn out empty (a footprint that is mostly sea).
 */
export function sampleGroups(layer: Layer, count = SAMPLE_TILES): SampleGroup[] {
  const area = footprintArea(layer.sources.flatMap((s) => (s.mosaic ? s.mosaic.members.map((m) => m.meta) : [s.meta])));
  const { minzoom, maxzoom } = layer.config;
  const out: SampleGroup[] = [];
  // The deepest zoom with at most WALK_LIMIT tiles, and its count; counting stops past it.
  let base: { z: number; n: number } | undefined;
  let remaining = count;
  for (let z = minzoom; z <= maxzoom && remaining > 0; z++) {
    if (!base || base.z === z - 1) {
      const n = countTiles(area, [z, z]).get(z) ?? 0;
      // A first zoom past the limit already: its first WALK_LIMIT tiles, a band of the footprint.
      if (!base || n <= WALK_LIMIT) base = { z, n: Math.min(n, WALK_LIMIT) };
    }
    const want = Math.min(Math.ceil(remaining / (maxzoom - z + 1)), base.n);
    if (want === 0) continue;
    // Zooms start at a different fraction of the spacing, so the deep zooms that descend from
    // one base zoom do not all descend from the same tiles.
    const shift = ((z + 1) * 0.6180339887) % 1;
    const k = Math.min(want * CANDIDATES_PER_TILE, base.n);
    const picks = pick(area, base.z, base.n, k, shift);
    // Every CANDIDATES_PER_TILE-th first: the tiles tried first are spread as evenly as all.
    const stride = Math.ceil(k / want);
    const order = picks.map((_, i) => i).sort((a, b) => (a % stride) - (b % stride) || a - b);
    const d = z - base.z;
    const candidates = order.map((i) => picks[i]!).map((t) => (d === 0 ? t : { z, x: t.x * 2 ** d + 2 ** (d - 1), y: t.y * 2 ** d + 2 ** (d - 1) }));
    out.push({ z, want, candidates });
    remaining -= want;
  }
  return out;
}

/**
 * Renders each group's first `want` candidates, then stand-ins for the empty ones until a
 * group has `want` tiles with something drawn or no candidates left (its empty tiles then
 * fill it). Tiles come back by zoom, in candidate order.
 */
export async function chooseSample<T extends { empty?: true }>(groups: readonly SampleGroup[], render: (t: TileId) => Promise<T>): Promise<T[]> {
  const drawn = groups.map(() => [] as [number, T][]);
  const empty = groups.map(() => [] as [number, T][]);
  const next = groups.map(() => 0);
  for (;;) {
    const batch = groups.flatMap((g, i) => {
      const take = Math.min(g.want - drawn[i]!.length, g.candidates.length - next[i]!);
      const from = next[i]!;
      next[i] = from + Math.max(0, take);
      return Array.from({ length: Math.max(0, take) }, (_, k) => ({ group: i, index: from + k }));
    });
    if (!batch.length) break;
    const rendered = await Promise.all(batch.map((b) => render(groups[b.group]!.candidates[b.index]!)));
    rendered.forEach((r, k) => (r.empty ? empty : drawn)[batch[k]!.group]!.push([batch[k]!.index, r]));
  }
  return groups.flatMap((g, i) => [...drawn[i]!, ...empty[i]!.slice(0, g.want - drawn[i]!.length)].sort((a, b) => a[0] - b[0]).map(([, t]) => t));
}

/** `k` of the `n` tiles of zoom z in coverage order, at indices (i + shift) · n / k: distinct as k ≤ n. */
function pick(area: Area, z: number, n: number, k: number, shift: number): TileId[] {
  if (k <= 0) return [];
  const wanted = Array.from({ length: k }, (_, i) => Math.floor(((i + shift) * n) / k));
  const out: TileId[] = [];
  let i = 0;
  for (const t of tilesOf(area, [z, z])) {
    if (i++ === wanted[out.length]) out.push(t);
    if (out.length === k) break;
  }
  return out;
}
