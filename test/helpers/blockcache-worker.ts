/**
 * A worker thread for test/blocks.test.ts: one BlockCache that shares with the process's
 * other threads, answering `get` requests whose loader fills a Float32Array with a value.
 */
import { parentPort } from 'node:worker_threads';
import { BlockCache } from '../../src/sources/blockcache.js';

export interface GetRequest {
  id: number;
  key: string;
  value: number;
  length: number;
}
export interface GetReply {
  id: number;
  /** First sample, last sample and their count as the cache answered them. */
  first: number;
  last: number;
  length: number;
  /** The samples live in a SharedArrayBuffer (offered to, or received from, the other threads). */
  shared: boolean;
  counts: { cached: number; waited: number; decoded: number };
  error?: string;
}

const cache = new BlockCache(64 * 1024 * 1024);
cache.share();

parentPort!.on('message', (req: GetRequest) => {
  cache
    .get(req.key, async () => new Float32Array(req.length).fill(req.value))
    .then(
      (s) =>
        parentPort!.postMessage({
          id: req.id,
          first: s[0],
          last: s[s.length - 1],
          length: s.length,
          shared: s.buffer instanceof SharedArrayBuffer,
          counts: cache.takeCounts(),
        } satisfies GetReply),
      (err: Error) =>
        parentPort!.postMessage({
          id: req.id,
          first: NaN,
          last: NaN,
          length: 0,
          shared: false,
          counts: cache.takeCounts(),
          error: err.message,
        } satisfies GetReply),
    );
});
