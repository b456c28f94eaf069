/**
 * `tilegraph diff A.yaml B.yaml`: what changed between two layer files, first as a diff of
 * their canonical configs, then as pixels over sample tiles, worst tiles first.
 */
import type { Layer } from './layer.js';
import { tileRange, type TileId } from '../tiles/mercator.js';

/** A line diff (longest common subsequence) of two texts: lines prefixed ' ', '-' or '+'. */
export function lineDiff(a: string, b: string): string[] {
  const x = a.split('\n'),
    y = b.split('\n');
  const n = x.length,
    m = y.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: string[] = [];
  let i = 0,
    j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) {
      out.push(`  ${x[i]}`);
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push(`- ${x[i++]}`);
    else out.push(`+ ${y[j++]}`);
  }
  while (i < n) out.push(`- ${x[i++]}`);
  while (j < m) out.push(`+ ${y[j++]}`);
  return out;
}

/**
 * N tiles spread over the zooms both layers serve and the area both cover, chosen
 * deterministically (the same files give the same sample).
 */
export function sampleTiles(a: Layer, b: Layer, count: number): TileId[] {
  const bounds: [number, number, number, number] = [
    Math.max(a.bounds[0], b.bounds[0]),
    Math.max(a.bounds[1], b.bounds[1]),
    Math.min(a.bounds[2], b.bounds[2]),
    Math.min(a.bounds[3], b.bounds[3]),
  ];
  if (bounds[0] >= bounds[2] || bounds[1] >= bounds[3]) return [];
  const z0 = Math.max(a.config.minzoom, b.config.minzoom);
  const z1 = Math.min(a.config.maxzoom, b.config.maxzoom);
  if (z0 > z1) return [];
  let seed = 0x9e3779b9;
  const random = () => {
    // xorshift32: deterministic and good enough to spread tiles.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const tiles: TileId[] = [];
  const seen = new Set<string>();
  for (let k = 0; tiles.length < count && k < count * 20; k++) {
    const z = z0 + (k % (z1 - z0 + 1));
    const [x0, y0, x1, y1] = tileRange(bounds, z);
    const x = x0 + Math.floor(random() * (x1 - x0 + 1));
    const y = y0 + Math.floor(random() * (y1 - y0 + 1));
    const key = `${z}/${x}/${y}`;
    if (seen.has(key)) continue;
    seen.add(key);
    tiles.push({ z, x, y });
  }
  return tiles;
}

export interface TileDifference {
  tile: string;
  /** Mean and max absolute difference over RGBA channels, in levels of 255. */
  mean: number;
  max: number;
}

/** Compares two RGBA renders (null = empty, i.e. transparent). */
export function compareRgba(a: Uint8Array | null, b: Uint8Array | null, pixels: number): { mean: number; max: number } {
  const n = pixels * 4;
  let sum = 0,
    max = 0;
  for (let i = 0; i < n; i++) {
    const d = Math.abs((a ? a[i]! : 0) - (b ? b[i]! : 0));
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / n, max };
}
