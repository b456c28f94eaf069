/**
 * Seeding past one machine, on BullMQ and the Redis the cache already uses. `tilegraph seed
 * --queue` records a run and enqueues it as jobs of neighbouring tiles (one 8×8 block of one
 * zoom each); `tilegraph worker` processes, on any number of machines, take the jobs (a killed
 * worker's jobs go to the others through BullMQ's stalled-job handling).
 *
 * A run's counts live beside the queue: when a job ends, its worker adds the job's counts once,
 * in one script that first sets the job's bit in the run's `counted` bitmap, so a job that a
 * dead worker had half done and another worker did again is counted once. The enqueuing
 * command (or `seed --status` from anywhere) reads the run from those keys.
 */
import { Queue, type JobsOptions } from 'bullmq';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import type { RedisClient } from '../cache/redis.js';
import { parseRedisUrl } from '../cache/redis.js';
import type { TileId } from '../tiles/mercator.js';
import { zeroCounts, type ZoomCounts } from './runner.js';

export const QUEUE_NAME = 'seed';

/** Tiles per job at most: one block of 8×8 neighbours of one zoom, whose source blocks one worker then holds. */
export const JOB_TILES = 64;

/**
 * What a run is, as the enqueuing command records it for the workers and for `--status`; what
 * they read back from Redis is checked against it (`parseRecord`).
 */
const RunRecordSchema = z.object({
  id: z.string(),
  layer: z.string().min(1),
  /** The layer version the run renders: a worker whose layer differs refuses the run's jobs. */
  version: z.string().min(1),
  /** `--since`: the version tiles are carried over from. */
  previous: z.string().min(1).optional(),
  /** `--since` into a directory: carried tiles are kept unstamped, and the trust the workers put in the run followed (SeedLayer.settles, .trusted). */
  settles: z.boolean().optional(),
  trusted: z.boolean().optional(),
  /** The run's coverage, as the directory records it (SeedLayer.coverage). */
  coverage: z.string().min(1).optional(),
  target: z.string().regex(/^(cache|dir:\/.+)$/, 'expected cache or dir:/absolute/path'),
  format: z.enum(['png', 'webp']),
  force: z.boolean(),
  retries: z.number().int().min(0).max(10),
  /** Tiles per side of the metatiles a worker renders in one task; 1 (or absent, in a run enqueued before metatiles) tile by tile. */
  metatile: z
    .number()
    .int()
    .refine((m) => [1, 2, 4, 8].includes(m), 'expected 1, 2, 4 or 8')
    .optional(),
  /** Tiles per zoom, as planned. */
  planned: z.record(z.string().regex(/^(0|[1-9]\d?)$/, 'a zoom'), z.number().int().min(0)),
  total: z.number().int().min(0),
  /** Jobs enqueued so far, and whether every job of the run is (false while enqueuing, or if the command stopped). */
  jobs: z.number().int().min(0),
  enqueued: z.boolean(),
  createdAt: z.string(),
  /** Where the enqueuing command writes the manifest. */
  manifest: z.string().min(1),
});

export type RunRecord = z.infer<typeof RunRecordSchema>;

/** One job: tiles of one zoom as x, y pairs; with `--since`, which of them a change reaches. */
export interface SeedJob {
  run: string;
  /** The job's ordinal in its run: its bit in the `counted` bitmap. */
  n: number;
  z: number;
  xy: number[];
  stale?: number[];
}

/** A run's progress, read back from Redis. */
export interface RunState {
  record: RunRecord;
  byZoom: Map<number, ZoomCounts>;
  total: ZoomCounts;
  /** Jobs counted (completed or failed for good). */
  jobsDone: number;
  /** Jobs per worker (`host:pid`). */
  workers: Record<string, number>;
}

/**
 * The queue's own connection: unlike the cache's (fail fast), BullMQ's workers block on Redis
 * and must ride out a reconnection, so commands wait (`maxRetriesPerRequest: null`).
 */
export function queueConnection(url: string): RedisClient {
  const target = parseRedisUrl(url);
  const common: RedisOptions = { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 200, 2000) };
  if (target.kind === 'server') return new Redis(target.url, common);
  if (target.kind === 'sentinel') return new Redis({ ...common, sentinels: target.sentinels, name: target.name, password: target.password, db: target.db });
  return new Cluster(target.nodes, { redisOptions: { ...common, password: target.password } });
}

/** BullMQ's key prefix: the settings' prefix, in braces so that a Redis Cluster keeps a queue's keys in one slot. */
export const queuePrefix = (redisPrefix: string): string => `{${redisPrefix}bull}`;

export function openQueue(connection: RedisClient, redisPrefix: string): Queue<SeedJob> {
  return new Queue<SeedJob>(QUEUE_NAME, { connection, prefix: queuePrefix(redisPrefix) });
}

/** The keys of one run; the braces keep them in one Cluster slot, as the counting script needs. */
export function runKeys(redisPrefix: string, id: string) {
  const base = `${redisPrefix}seed:{${id}}`;
  return { record: `${base}:run`, counts: `${base}:counts`, counted: `${base}:counted`, failures: `${base}:failures`, workers: `${base}:workers` };
}

export function jobId(run: string, n: number): string {
  return `${run}-${n}`;
}

/** Jobs stay until their run is read: a finished run's keys expire a week after its last job. */
const RUN_TTL_S = 7 * 24 * 3600;

/** Failed jobs are kept, with their error, for a week; completed ones are counted and dropped. */
export const JOB_OPTIONS: JobsOptions = { attempts: 1, removeOnComplete: true, removeOnFail: { age: RUN_TTL_S } };

export async function saveRecord(redis: RedisClient, redisPrefix: string, record: RunRecord): Promise<void> {
  await redis.set(runKeys(redisPrefix, record.id).record, JSON.stringify(record), 'EX', RUN_TTL_S);
}

/** A new run's id: the layer, the time, and a few random letters. */
export function newRunId(layer: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `${layer}-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * The enumeration as jobs: consecutive tiles of one zoom and one 8×8 block, at most 64. The
 * enumeration walks blocks in order (src/seed/coverage.ts), so a job is one block's tiles.
 */
export function* jobsOf(run: string, tiles: Iterable<TileId>, stale?: (t: TileId) => boolean): Generator<SeedJob> {
  let job: SeedJob | undefined;
  let key = '';
  let n = 0;
  for (const t of tiles) {
    const k = `${t.z}/${t.x >> 3}/${t.y >> 3}`;
    if (job && (k !== key || job.xy.length >= 2 * JOB_TILES)) {
      yield job;
      job = undefined;
    }
    key = k;
    job ??= { run, n: n++, z: t.z, xy: [], ...(stale && { stale: [] }) };
    if (stale?.(t)) job.stale!.push(job.xy.length / 2);
    job.xy.push(t.x, t.y);
  }
  if (job) yield job;
}

/**
 * Adds a job's counts to its run, once: the first call for job `n` sets its bit and adds;
 * later calls (the job done again after its worker died) change nothing and return 0.
 */
const COUNT_ONCE = `
if redis.call('SETBIT', KEYS[1], ARGV[1], 1) == 1 then return 0 end
local m = tonumber(ARGV[3])
for i = 0, m - 1 do redis.call('HINCRBY', KEYS[2], ARGV[4 + 2 * i], ARGV[5 + 2 * i]) end
for i = 4 + 2 * m, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ${RUN_TTL_S}) end
return 1`;

export interface JobFailure {
  tile: string;
  attempts: number;
  error: string;
}

/** Counts a job's outcomes into its run (once; see COUNT_ONCE). */
export async function countJob(
  redis: RedisClient,
  redisPrefix: string,
  job: Pick<SeedJob, 'run' | 'n' | 'z'>,
  counts: ZoomCounts,
  failures: readonly JobFailure[],
  worker: string,
  failed = failures.length > 0,
): Promise<boolean> {
  const k = runKeys(redisPrefix, job.run);
  const fields: (string | number)[] = [];
  for (const [name, n] of Object.entries(counts)) if (n) fields.push(`${job.z}:${name}`, n);
  fields.push('jobs', 1);
  if (failed) fields.push('jobs:failed', 1);
  const args = [job.n, worker, fields.length / 2, ...fields, ...failures.map((f) => JSON.stringify(f))];
  return (await redis.eval(COUNT_ONCE, 4, k.counted, k.counts, k.failures, k.workers, ...args)) === 1;
}

/** The record of run `id` read back from Redis, or an Error saying it is not one `seed --queue` writes. */
export function parseRecord(id: string, text: string): RunRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  const parsed = RunRecordSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(
      `run ${id}: its record in Redis is not one that seed --queue writes (${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message})`,
    );
  }
  if (parsed.data.id !== id) throw new Error(`run ${id}: its record in Redis is of run ${parsed.data.id}`);
  return parsed.data;
}

export async function readRun(redis: RedisClient, redisPrefix: string, id: string): Promise<RunState | undefined> {
  const k = runKeys(redisPrefix, id);
  const text = await redis.get(k.record);
  if (!text) return undefined;
  const record = parseRecord(id, text);
  const fields = await redis.hgetall(k.counts);
  const byZoom = new Map<number, ZoomCounts>();
  const total = zeroCounts();
  for (const z of Object.keys(record.planned)) byZoom.set(Number(z), zeroCounts());
  let jobsDone = 0;
  for (const [field, value] of Object.entries(fields)) {
    if (field === 'jobs') jobsDone = Number(value);
    const m = /^(\d+):(\w+)$/.exec(field);
    if (!m) continue;
    const name = m[2] as keyof ZoomCounts;
    const c = byZoom.get(Number(m[1])) ?? zeroCounts();
    byZoom.set(Number(m[1]), c);
    c[name] += Number(value);
    total[name] += Number(value);
  }
  const workers = Object.fromEntries(Object.entries(await redis.hgetall(k.workers)).map(([w, n]) => [w, Number(n)]));
  return { record, byZoom, total, jobsDone, workers };
}

export async function readFailures(redis: RedisClient, redisPrefix: string, id: string): Promise<string[]> {
  return redis.lrange(runKeys(redisPrefix, id).failures, 0, -1);
}

/**
 * Jobs of the run that ended without being counted: refused by every worker (another layer
 * version), or failed by BullMQ after stalling too often. Looked for once the queue has no
 * job waiting or running; each is counted as failed, with BullMQ's reason.
 */
export async function settleLostJobs(queue: Queue<SeedJob>, redis: RedisClient, redisPrefix: string, record: RunRecord): Promise<number> {
  const k = runKeys(redisPrefix, record.id);
  const busy = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
  if (Object.values(busy).some((n) => n > 0)) return 0;
  let settled = 0;
  for (const n of await uncounted(redis, k.counted, record.jobs)) {
    const job = await queue.getJob(jobId(record.id, n));
    // Counted by a worker meanwhile (the queue drained between the two reads).
    if ((await redis.getbit(k.counted, n)) === 1) continue;
    // What the queue holds under the job's id, read as data that may not be what was enqueued.
    const z = typeof job?.data?.z === 'number' ? job.data.z : -1;
    const xy = Array.isArray(job?.data?.xy) ? job.data.xy : [];
    const tiles = Math.floor(xy.length / 2);
    const reason = job?.failedReason || 'the job is gone from the queue';
    const failures = Array.from({ length: tiles }, (_, i) => ({ tile: `${z}/${xy[2 * i]}/${xy[2 * i + 1]}`, attempts: 1, error: reason }));
    const counts = { ...zeroCounts(), failed: tiles };
    if (await countJob(redis, redisPrefix, { run: record.id, n, z }, counts, failures, 'enqueuer', true)) settled++;
  }
  return settled;
}

/** The jobs below `jobs` whose bit is not set, reading the bitmap 64 KiB at a time. */
async function uncounted(redis: RedisClient, key: string, jobs: number): Promise<number[]> {
  const out: number[] = [];
  const chunk = 65536;
  for (let byte = 0; byte * 8 < jobs; byte += chunk) {
    const bits = await redis.getrangeBuffer(key, byte, byte + chunk - 1);
    for (let n = byte * 8; n < Math.min(jobs, (byte + chunk) * 8); n++) {
      const b = bits[(n >> 3) - byte] ?? 0;
      if (!((b >> (7 - (n & 7))) & 1)) out.push(n);
    }
  }
  return out;
}
