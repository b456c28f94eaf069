/**
 * The Redis connection of the tile cache, and the circuit breaker in front of it. The cache's
 * connection fails fast by design (no offline queue, a short command timeout, no retries of a
 * command): a dead or slow Redis must never hold a tile up for more than its timeout. BullMQ
 * wants the opposite, so the seeding queue takes its own connection.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

export type RedisClient = Redis | Cluster;

/** `REDIS_URL` as ioredis takes it: one server, a Sentinel group, or a Cluster. */
export type RedisTarget =
  | { kind: 'server'; url: string }
  | { kind: 'sentinel'; sentinels: { host: string; port: number }[]; name: string; password?: string; db?: number }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; password?: string };

/**
 * `redis://[user:password@]host:port[/db]` and `rediss://` as ioredis reads them, plus
 * `redis+sentinel://[:password@]host:port,host:port/master-name[/db]` and
 * `redis+cluster://[:password@]host:port,host:port`.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const m = /^(redis\+sentinel|redis\+cluster):\/\/(?:(?:[^:@/]*):([^@/]*)@)?([^/]+)(?:\/([^/]+))?(?:\/(\d+))?$/.exec(url);
  if (!m) {
    if (!/^rediss?:\/\//.test(url)) throw new Error(`REDIS_URL=${url}: expected redis://, rediss://, redis+sentinel:// or redis+cluster://`);
    return { kind: 'server', url };
  }
  const [, scheme, password, hostList, name, db] = m;
  const hosts = hostList!.split(',').map((h) => {
    const hm = /^([^:]+|\[[^\]]+\]):(\d{1,5})$/.exec(h);
    if (!hm) throw new Error(`REDIS_URL: '${h}' is not host:port`);
    return { host: hm[1]!.replace(/^\[|\]$/g, ''), port: Number(hm[2]) };
  });
  const pw = password ? decodeURIComponent(password) : undefined;
  if (scheme === 'redis+cluster') return { kind: 'cluster', nodes: hosts, password: pw };
  if (!name) throw new Error('REDIS_URL: redis+sentinel:// needs the master name after the hosts');
  return { kind: 'sentinel', sentinels: hosts, name: decodeURIComponent(name), password: pw, db: db === undefined ? undefined : Number(db) };
}

/** A fail-fast client for the tile cache: commands while disconnected are refused at once. */
export function connectCache(url: string, timeoutMs: number, log: Logger): RedisClient {
  const target = parseRedisUrl(url);
  const common: RedisOptions = {
    enableOfflineQueue: false,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    connectTimeout: Math.max(1000, timeoutMs * 10),
    // Reconnect for ever, at most every 2 s: Redis may come back at any moment.
    retryStrategy: (times) => Math.min(times * 100, 2000),
  };
  let client: RedisClient;
  if (target.kind === 'server') client = new Redis(target.url, common);
  else if (target.kind === 'sentinel')
    client = new Redis({ ...common, sentinels: target.sentinels, name: target.name, password: target.password, db: target.db });
  else client = new Cluster(target.nodes, { enableOfflineQueue: false, redisOptions: { ...common, password: target.password } });
  // Connection errors repeat while Redis is away; the breaker logs the state that matters.
  client.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error'));
  return client;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * Skips Redis after `threshold` failures in a row, for `coolDownMs`; then lets one call
 * through (half-open), which closes it on success or opens it again.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  state: BreakerState = 'closed';

  constructor(
    private readonly log: Logger,
    private readonly threshold = 3,
    private readonly coolDownMs = 1000,
    private readonly onChange?: (state: BreakerState) => void,
  ) {}

  /** Whether a call may go to Redis now. */
  allows(): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open' && Date.now() - this.openedAt >= this.coolDownMs) this.set('half-open');
    if (this.state === 'half-open' && !this.probing) {
      this.probing = true;
      return true;
    }
    return false;
  }

  success(): void {
    this.failures = 0;
    this.probing = false;
    if (this.state !== 'closed') {
      this.set('closed');
      this.log.info('redis answers again: L2 cache back in use');
    }
  }

  failure(err: unknown): void {
    this.probing = false;
    this.failures++;
    if (this.state === 'half-open' || (this.state === 'closed' && this.failures >= this.threshold)) {
      if (this.state === 'closed')
        this.log.warn(
          { err: err instanceof Error ? err.message : String(err) },
          `redis failed ${this.failures} times in a row: L2 cache skipped until it answers`,
        );
      this.openedAt = Date.now();
      this.set('open');
    }
  }

  private set(state: BreakerState): void {
    this.state = state;
    this.onChange?.(state);
  }
}

/** Resolves once the client can take commands; rejects after `ms`. */
export function whenReady(client: RedisClient, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', ready);
      reject(new Error(`Redis did not answer within ${ms} ms`));
    }, ms);
    const ready = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', ready);
  });
}

/**
 * A client for a command (`seed`, `cache purge`): the same fail-fast client with a patient
 * timeout, ready before it is returned; a command has no tile to keep waiting.
 */
export async function connectForCommand(url: string, timeoutMs: number, log: Logger): Promise<RedisClient> {
  const client = connectCache(url, Math.max(timeoutMs, 5000), log);
  try {
    await whenReady(client, 5000);
  } catch (err) {
    client.disconnect();
    throw err;
  }
  return client;
}
