/**
 * `--to cache`: the L2 entries the servers read (same keys, same encoding, the layer's TTLs),
 * so that after a run every seeded tile answers `hit-l2`. Unlike the servers, a seeding run
 * wants to know when Redis fails: its writes are awaited and their errors count as failures.
 */
import { decodeEntry, encodeEntry, entryKey } from '../cache/l2.js';
import type { RedisClient } from '../cache/redis.js';
import type { TileEntry } from '../cache/tiles.js';
import type { Layer } from '../layers/layer.js';
import { tileMembers } from '../layers/mosaic.js';
import { cacheKey, etagOf } from '../service/tiles.js';
import type { TileId } from '../tiles/mercator.js';
import type { SeedTarget } from './target.js';

/**
 * `previous` (`--since`): the layer version of the run this one follows; a tile no change
 * reaches is carried over from that version's entry to this one's, with this version's ETag,
 * as a render would have stored it. A mosaic's tiles are keyed by the members under them, so
 * a tile whose members did not change keeps its key, and its entry, by itself.
 */
export function cacheTarget(redis: RedisClient, prefix: string, layer: Layer, format: 'png' | 'webp', scale: 1 | 2 = 1, previous?: string): SeedTarget {
  // A tile of a mosaic carries the versions of the members under it, as the servers' keys do.
  const version = (t: TileId) => (layer.mosaics.size ? tileMembers(layer, t, Infinity).version : layer.version);
  const keyOf = (t: TileId, v: string) => entryKey(prefix, cacheKey({ layer, z: t.z, x: t.x, y: t.y, scale, format, version: v }));
  const key = (t: TileId) => keyOf(t, version(t));
  const { l2Ttl, l2EmptyTtl } = layer.config.cache;
  const put = async (t: TileId, entry: TileEntry) => {
    const ttl = entry.body ? l2Ttl : l2EmptyTtl;
    if (ttl > 0)
      await redis.set(key(t), encodeEntry(entry), 'EX', ttl).catch((err: Error) => {
        // Past its maxmemory with nothing it may evict, Redis refuses every write: a full target (src/seed/runner.ts).
        throw /^OOM /.test(err.message) ? Object.assign(new Error(`Redis is full: ${err.message}`, { cause: err }), { code: 'REDIS_OOM' }) : err;
      });
  };
  return {
    name: 'cache',
    has: async (t) => (await redis.exists(key(t))) === 1,
    async carry(t: TileId) {
      if (layer.mosaics.size || previous === undefined) return (await redis.exists(key(t))) === 1;
      const old = await redis.getBuffer(keyOf(t, previous));
      const entry = old && decodeEntry(old);
      if (!entry) return (await redis.exists(key(t))) === 1;
      await put(t, { ...entry, etag: etagOf(layer.version, entry.body) });
      return true;
    },
    put,
    close: async () => {},
  };
}

/** `--via URL`: the tiles are asked of a running server (or the nginx or CDN in front of it), which caches them itself. */
export function viaTarget(): SeedTarget {
  return { name: 'via', has: async () => false, carry: async () => false, put: async () => {}, close: async () => {} };
}
