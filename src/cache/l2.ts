/**
 * The shared tier: tile entries in Redis, one key per tile holding body, ETag and content type
 * together (so no reader ever sees half an entry), and the short locks that let a fleet render
 * each tile once. Every call goes through the circuit breaker and answers `undefined` when
 * Redis is away or slow: the caller then carries on as if there were no L2.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { CircuitBreaker, type RedisClient } from './redis.js';
import type { TileEntry } from './tiles.js';

export interface L2Options {
  /** Put before every key (`REDIS_PREFIX`), so that several deployments can share a Redis. */
  prefix: string;
  log: Logger;
  metrics?: Metrics;
}

/**
 * Where a tile entry lives: the prefix, `tile:`, then the service's key (layer name, version,
 * z/x/y, scale, format), so that one layer's entries share a prefix (`tilegraph cache purge`).
 */
export const entryKey = (prefix: string, key: string): string => `${prefix}tile:${key}`;

/** `TGE1`, flags (bit 0: empty), ETag length, ETag, type length, type, body. */
const MAGIC = 0x54474531;

export function encodeEntry(e: TileEntry): Buffer {
  const etag = Buffer.from(e.etag, 'latin1');
  const type = Buffer.from(e.type ?? '', 'latin1');
  const head = Buffer.alloc(7 + etag.length + type.length);
  head.writeUInt32BE(MAGIC, 0);
  head[4] = e.body ? 0 : 1;
  head[5] = etag.length;
  etag.copy(head, 6);
  head[6 + etag.length] = type.length;
  type.copy(head, 7 + etag.length);
  return e.body ? Buffer.concat([head, e.body]) : head;
}

/** The entry, or undefined when the bytes are not one (another writer, a truncated value). */
export function decodeEntry(b: Buffer): TileEntry | undefined {
  if (b.length < 7 || b.readUInt32BE(0) !== MAGIC) return undefined;
  const etagEnd = 6 + b[5]!;
  if (etagEnd + 1 > b.length) return undefined;
  const typeEnd = etagEnd + 1 + b[etagEnd]!;
  if (typeEnd > b.length) return undefined;
  const empty = b[4]! & 1;
  if (empty && typeEnd !== b.length) return undefined;
  return {
    body: empty ? null : b.subarray(typeEnd),
    etag: b.toString('latin1', 6, etagEnd),
    type: b.toString('latin1', etagEnd + 1, typeEnd) || undefined,
  };
}

/** Deletes the lock only if it is still ours: an expired lock may have passed to another process. */
const UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

export class L2Cache {
  readonly breaker: CircuitBreaker;

  constructor(
    readonly redis: RedisClient,
    private readonly opts: L2Options,
  ) {
    this.breaker = new CircuitBreaker(opts.log, 3, 1000, (state) => opts.metrics?.l2Breaker.set(state === 'closed' ? 0 : 1));
    opts.metrics?.l2Breaker.set(0);
  }

  /** `up` while Redis answers, `down` while the breaker skips it. */
  get state(): 'up' | 'down' {
    return this.breaker.state === 'closed' && this.redis.status === 'ready' ? 'up' : 'down';
  }

  private lockKey(key: string): string {
    return `${this.opts.prefix}lock:${key}`;
  }

  /** The entry; null when Redis has none; undefined when Redis could not be asked. */
  async get(key: string): Promise<TileEntry | null | undefined> {
    const raw = await this.call('get', () => this.redis.getBuffer(entryKey(this.opts.prefix, key)));
    if (raw === undefined) return undefined;
    return raw ? (decodeEntry(raw) ?? null) : null;
  }

  /** Stores an entry for `ttlS` seconds; failures only count. */
  async set(key: string, entry: TileEntry, ttlS: number): Promise<void> {
    if (ttlS <= 0) return;
    await this.call('set', () => this.redis.set(entryKey(this.opts.prefix, key), encodeEntry(entry), 'EX', ttlS));
  }

  /** A token when this process now holds the tile's lock; null when another does; undefined when Redis could not be asked. */
  async lock(key: string, ttlMs: number): Promise<string | null | undefined> {
    const token = randomBytes(8).toString('hex');
    const ok = await this.call('lock', () => this.redis.set(this.lockKey(key), token, 'PX', ttlMs, 'NX'));
    if (ok === undefined) return undefined;
    return ok === 'OK' ? token : null;
  }

  async unlock(key: string, token: string): Promise<void> {
    await this.call('unlock', () => this.redis.eval(UNLOCK, 1, this.lockKey(key), token));
  }

  /**
   * Waits, for at most `ms`, for the process that holds the tile's lock to write the entry.
   * If the lock goes without an entry (its holder failed or died), this process takes it over
   * and answers with its token; undefined when Redis went away meanwhile or the wait ran out.
   */
  async waitFor(key: string, ms: number): Promise<{ entry?: TileEntry; token?: string }> {
    const deadline = Date.now() + ms;
    let delay = 5;
    const done = (outcome: string, r: { entry?: TileEntry; token?: string }) => {
      this.opts.metrics?.lockWaits.inc({ outcome });
      return r;
    };
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(50, delay * 2);
      const entry = await this.get(key);
      if (entry) return done('entry', { entry });
      if (entry === undefined) return done('redis_down', {});
      const token = await this.lock(key, ms);
      if (token === undefined) return done('redis_down', {});
      if (token === null) continue;
      // The lock was free: its holder wrote the entry just now, or gave up.
      const late = await this.get(key);
      if (late) {
        await this.unlock(key, token);
        return done('entry', { entry: late });
      }
      return done('took_over', { token });
    }
    return done('gave_up', {});
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private async call<T>(op: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (!this.breaker.allows()) return undefined;
    const t0 = performance.now();
    try {
      const r = await fn();
      this.breaker.success();
      this.opts.metrics?.l2Seconds.observe({ op }, (performance.now() - t0) / 1000);
      return r;
    } catch (err) {
      this.breaker.failure(err);
      this.opts.metrics?.l2Errors.inc({ op });
      return undefined;
    }
  }
}
