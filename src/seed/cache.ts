/**
 * `--to cache`: the L2 entries the servers read (same keys, same encoding, the layer's TTLs),
 * so that after a run every seeded tile answers `hit-l2`. Unlike the servers, a seeding run
 * wants to know when Redis fails: its writes are awaited and their errors count as failures.
 */
import { encodeEntry, entryKey } from '../cache/l2.js';
import type { RedisClient } from '../cache/redis.js';
import type { TileEntry } from '../cache/tiles.js';
import type { Layer } from '../layers/layer.js';
import { tileMembers } from '../layers/mosaic.js';
import { cacheKey } from '../service/tiles.js';
import type { TileId } from '../tiles/mercator.js';
import type { SeedTarget } from './target.js';

export function cacheTarget(redis: RedisClient, prefix: string, layer: Layer, format: 'png' | 'webp', scale: 1 | 2 = 1): SeedTarget {
  // A tile of a mosaic carries the versions of the members under it, as the servers' keys do.
  const version = (t: TileId) => (layer.mosaics.size ? tileMembers(layer, t, Infinity).version : layer.version);
  const key = (t: TileId) => entryKey(prefix, cacheKey({ layer, z: t.z, x: t.x, y: t.y, scale, format, version: version(t) }));
  const { l2Ttl, l2EmptyTtl } = layer.config.cache;
  return {
    name: 'cache',
    has: async (t) => (await redis.exists(key(t))) === 1,
    async put(t: TileId, entry: TileEntry) {
      const ttl = entry.body ? l2Ttl : l2EmptyTtl;
      if (ttl > 0) await redis.set(key(t), encodeEntry(entry), 'EX', ttl);
    },
    close: async () => {},
  };
}

/** `--via URL`: the tiles are asked of a running server (or the nginx or CDN in front of it), which caches them itself. */
export function viaTarget(): SeedTarget {
  return { name: 'via', has: async () => false, put: async () => {}, close: async () => {} };
}
