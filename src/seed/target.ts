/**
 * Where a seeding run puts its tiles: the shared cache (L2, as the servers read it), a
 * directory pyramid, or an MBTiles file. Each target knows which layer version its tiles
 * belong to, so that a later run skips exactly the tiles it already holds for that version.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import type { RedisClient } from '../cache/redis.js';
import type { TileEntry } from '../cache/tiles.js';
import type { Layer } from '../layers/layer.js';
import type { TileId } from '../tiles/mercator.js';
import { openDirTarget } from './dir.js';

export interface SeedTarget {
  /** For messages and the manifest: `cache`, `dir:PATH`, `mbtiles:PATH`. */
  readonly name: string;
  /** Whether the target holds this tile under the layer version it was opened for. */
  has(t: TileId): Promise<boolean>;
  /**
   * `--since`: keeps the tile the target holds of the previous version (`SeedLayer.previous`)
   * as a tile of this one, when no change reaches it. False when there is none to keep.
   */
  carry(t: TileId): Promise<boolean>;
  /**
   * Stores a tile. An empty one (`body` null) is stored as the target holds emptiness: no file
   * or row in a directory or MBTiles file (one an earlier run left for the tile goes), the
   * empty entry in the cache. Writes are atomic per tile.
   */
  put(t: TileId, entry: TileEntry): Promise<void>;
  /** Flushes and closes; the target is complete and readable afterwards. */
  close(): Promise<void>;
}

/** What a target records of the layer it holds tiles of. */
export interface SeedLayer {
  name: string;
  title: string;
  description: string;
  attribution: string;
  /** The layer version (config hash plus source versions): tiles of another version are stale. */
  version: string;
  /** WGS84 [west, south, east, north]. */
  bounds: [number, number, number, number];
  minzoom: number;
  maxzoom: number;
  format: 'png' | 'webp';
  tileSize: number;
  /**
   * `--since`: the layer version of the run this one follows. Its tiles stay in place (instead
   * of counting as stale) until each is rendered again or carried over.
   */
  previous?: string;
  /**
   * With `previous`, into a directory: tiles carried over are kept as they are, not stamped one
   * by one as this version's; the run settles the directory when it completes (`settleDir`).
   * Only a run that alone covers the directory's tiles (not a shard), or the workers of one.
   */
  settles?: boolean;
  /**
   * With `settles`: the run followed did every tile of its coverage (`Since.complete`), so each
   * tile of the previous version is in place, or was empty. Tiles are carried over without a
   * look at the directory.
   */
  trusted?: boolean;
  /** What the run covers, as a hash (its manifest's coverage and shard): a directory records the coverages of a version's runs. */
  coverage?: string;
}

export interface TargetOptions {
  format: 'png' | 'webp';
  redisPrefix: string;
  /** The cache's client, asked for only when the target is the cache. */
  redis: () => Promise<RedisClient>;
  /** `--since`: the version whose tiles may be carried over. */
  previous?: string;
  /** `--since` into a directory by a run that settles it when complete (SeedLayer.settles), following a complete run (SeedLayer.trusted). */
  settles?: boolean;
  trusted?: boolean;
  /** SeedLayer.coverage. */
  coverage?: string;
}

/** The kind and path of a `dir:PATH` or `mbtiles:PATH` target; undefined for `cache` and anything else. */
export function fileTarget(to: string): { kind: 'dir' | 'mbtiles'; path: string } | undefined {
  const m = /^(dir|mbtiles):(.+)$/.exec(to);
  return m ? { kind: m[1] as 'dir' | 'mbtiles', path: m[2]! } : undefined;
}

/** The absolute path with its links resolved as far as it exists (the missing rest as given). */
export function realPlace(p: string): string {
  const missing: string[] = [];
  for (let at = path.resolve(p); ; at = path.dirname(at)) {
    try {
      return path.join(realpathSync(at), ...missing.reverse());
    } catch {
      if (at === path.dirname(at)) return path.resolve(p);
      missing.push(path.basename(at));
    }
  }
}

/**
 * `cache`, or `dir:PATH` and `mbtiles:PATH` with an absolute path, as manifests and run records
 * name them (a later `--since` may start in another directory); anything else is refused.
 */
export function absoluteTarget(to: string): string {
  if (to === 'cache') return to;
  const t = fileTarget(to);
  if (!t) throw new Error(`--to ${to}: expected cache, dir:PATH or mbtiles:PATH`);
  return `${t.kind}:${path.resolve(t.path)}`;
}

/** Where a run into a directory or an MBTiles file writes its manifest unless told (`--manifest`); `suffix` names its shard. */
export function targetManifest(to: string, suffix = ''): string | undefined {
  const t = fileTarget(to);
  if (!t) return undefined;
  return t.kind === 'dir' ? path.resolve(t.path, `manifest${suffix}.json`) : path.resolve(`${t.path}${suffix}.manifest.json`);
}

/** `cache`, `dir:PATH` or `mbtiles:PATH`, opened for one layer version. */
export async function openTarget(to: string, layer: Layer, o: TargetOptions): Promise<SeedTarget> {
  const seedLayer: SeedLayer = {
    name: layer.name,
    title: layer.config.title,
    description: layer.config.description,
    attribution: layer.config.attribution,
    version: layer.version,
    bounds: layer.bounds,
    minzoom: layer.config.minzoom,
    maxzoom: layer.config.maxzoom,
    format: o.format,
    tileSize: layer.config.tileSize,
    ...(o.previous !== undefined && { previous: o.previous, settles: o.settles ?? false, trusted: o.trusted ?? false }),
    ...(o.coverage !== undefined && { coverage: o.coverage }),
  };
  const target = absoluteTarget(to);
  // Each kind's module (ioredis, better-sqlite3) is loaded by the runs that write to it.
  if (target === 'cache') return (await import('./cache.js')).cacheTarget(await o.redis(), o.redisPrefix, layer, o.format, 1, o.previous);
  const { kind, path: file } = fileTarget(target)!;
  if (kind === 'dir') return openDirTarget(file, seedLayer);
  return (await import('./mbtiles.js')).openMbtilesTarget(file, seedLayer);
}
