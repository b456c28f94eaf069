/**
 * `tilegraph cache purge`: a layer's L2 entries, found with SCAN (never KEYS, which blocks
 * Redis for as long as it walks the whole key space) and removed with UNLINK in batches.
 */
import { Cluster } from 'ioredis';
import { entryKey } from './l2.js';
import type { RedisClient } from './redis.js';

/** Glob characters of SCAN's MATCH, escaped so that a prefix matches only itself. */
const escapeGlob = (s: string) => s.replace(/[*?[\]\\]/g, '\\$&');

/**
 * Removes the entries of `layer` (all of them, or those of versions other than `keep`) and
 * answers how many it removed of each version.
 */
export async function purgeLayer(client: RedisClient, prefix: string, layer: string, keep?: string): Promise<Map<string, number>> {
  const head = entryKey(prefix, `${layer}:`);
  const removed = new Map<string, number>();
  // A cluster keeps its keys on its masters: each is scanned on its own.
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${escapeGlob(head)}*`, 'COUNT', 1000);
      cursor = next;
      const gone = keys.filter((k) => k.slice(head.length).split(':')[0] !== keep);
      if (gone.length) {
        // One key at a time in a cluster (keys of one batch live in different slots).
        if (client instanceof Cluster) for (const k of gone) await client.unlink(k);
        else await node.unlink(...gone);
      }
      for (const k of gone) {
        const version = k.slice(head.length).split(':')[0]!;
        removed.set(version, (removed.get(version) ?? 0) + 1);
      }
    } while (cursor !== '0');
  }
  return removed;
}
