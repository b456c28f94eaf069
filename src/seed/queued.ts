/**
 * The enqueuing side of a queued run (`tilegraph seed --queue`) and `tilegraph seed --status`:
 * records the run, enqueues its jobs as the workers drain them, follows the counts the workers
 * add, and hands back the run's result for the manifest.
 */
import { QueueEvents, type Queue } from 'bullmq';
import type { RedisClient } from '../cache/redis.js';
import type { Settings } from '../config.js';
import type { Layer } from '../layers/layer.js';
import type { TileId } from '../tiles/mercator.js';
import {
  JOB_OPTIONS,
  jobId,
  jobsOf,
  newRunId,
  openQueue,
  QUEUE_NAME,
  queueConnection,
  queuePrefix,
  readFailures,
  readRun,
  saveRecord,
  settleLostJobs,
  type RunRecord,
  type RunState,
  type SeedJob,
} from './queue.js';
import type { Progress, SeedResult } from './runner.js';
import { absoluteTarget } from './target.js';

/** Jobs added at once, and the waiting jobs above which no more are added until the workers take some. */
const BATCH = 500;
const HIGH_WATER = 20_000;
/** How often the counts are read while the run goes on, at the latest: a job's end reads them at once. */
const POLL_MS = 250;
const WAKE_MIN_MS = 20;

export interface FollowOptions {
  settings: Settings;
  redis: RedisClient;
  layer: Layer;
  tiles: Iterable<TileId>;
  stale?: (t: TileId) => boolean;
  target: string;
  format: 'png' | 'webp';
  force: boolean;
  retries: number;
  /** Tiles per side of the metatiles the workers render (`--metatile`). */
  metatile: number;
  planned: ReadonlyMap<number, number>;
  manifest: string;
  previous?: string;
  /** For the workers' targets: SeedLayer.settles, .trusted and .coverage. */
  settles?: boolean;
  trusted?: boolean;
  coverage?: string;
  signal: AbortSignal;
  /** Once the run is recorded: its id, for `--status`. */
  onStart?: (run: string) => void;
  onProgress?: (p: Progress) => void;
}

export interface Followed {
  result: SeedResult;
  /** For the manifest: the run, its jobs and which workers did them. */
  queue: { run: string; jobs: number; workers: Record<string, number> };
  /** The failure log's lines (JSON). */
  failures: string[];
}

const done = (s: RunState) => s.total.rendered + s.total.empty + s.total.skipped + s.total.carried + s.total.failed;

export async function followRun(o: FollowOptions): Promise<Followed> {
  const { settings, redis } = o;
  const prefix = settings.redisPrefix;
  const total = [...o.planned.values()].reduce((a, b) => a + b, 0);
  const record: RunRecord = {
    id: newRunId(o.layer.name),
    layer: o.layer.name,
    version: o.layer.version,
    ...(o.previous !== undefined && { previous: o.previous, settles: o.settles ?? false, trusted: o.trusted ?? false }),
    ...(o.coverage !== undefined && { coverage: o.coverage }),
    // The workers' working directories are their own.
    target: absoluteTarget(o.target),
    format: o.format,
    force: o.force,
    retries: o.retries,
    metatile: o.metatile,
    planned: Object.fromEntries(o.planned),
    total,
    jobs: 0,
    enqueued: false,
    createdAt: new Date().toISOString(),
    manifest: o.manifest,
  };
  const connection = queueConnection(settings.redisUrl!);
  const queue = openQueue(connection, prefix);
  // BullMQ's queue events (a stream it writes as jobs end, read on a connection of their own)
  // wake the loop when a job completes or fails, after its worker counted it: the run's end is
  // seen when its last job ends, not up to POLL_MS later. The polls go on without them.
  const eventsConnection = queueConnection(settings.redisUrl!);
  const events = new QueueEvents(QUEUE_NAME, { connection: eventsConnection, prefix: queuePrefix(prefix) });
  let jobEnded = false;
  let wake: (() => void) | undefined;
  const onJobEnd = () => {
    jobEnded = true;
    wake?.();
  };
  events.on('completed', onJobEnd);
  events.on('failed', onJobEnd);
  events.on('error', () => {});
  let lastRead = 0;
  /** Until a job ends or POLL_MS pass, then no sooner than WAKE_MIN_MS after the last read (many workers end many jobs a second). */
  const pause = async () => {
    if (!jobEnded)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => wake?.(), POLL_MS);
        wake = () => {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        };
      });
    const rest = lastRead + WAKE_MIN_MS - performance.now();
    if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
  };
  const started = performance.now();
  try {
    await saveRecord(redis, prefix, record);
    o.onStart?.(record.id);
    const jobs = jobsOf(record.id, o.tiles, o.stale)[Symbol.iterator]();
    let state: RunState | undefined;
    let lastSettle = 0;
    while (!o.signal.aborted) {
      if (!record.enqueued && (await queue.getWaitingCount()) < HIGH_WATER) {
        const batch: SeedJob[] = [];
        for (let next = jobs.next(); ; next = jobs.next()) {
          if (next.done) {
            record.enqueued = true;
            break;
          }
          batch.push(next.value);
          if (batch.length === BATCH) break;
        }
        await queue.addBulk(batch.map((data) => ({ name: 'tiles', data, opts: { ...JOB_OPTIONS, jobId: jobId(record.id, data.n) } })));
        record.jobs += batch.length;
        await saveRecord(redis, prefix, record);
      }
      jobEnded = false;
      lastRead = performance.now();
      state = (await readRun(redis, prefix, record.id))!;
      const seconds = (performance.now() - started) / 1000;
      const n = done(state);
      const rate = n / Math.max(seconds, 1e-3);
      o.onProgress?.({ done: n, total, counts: state.total, tilesPerSecond: rate, etaS: (total - n) / Math.max(rate, 1e-9) });
      if (record.enqueued && state.jobsDone >= record.jobs) break;
      // Jobs that ended without a worker counting them (refused, or stalled too often) are counted as failed.
      if (record.enqueued && performance.now() - lastSettle > 5000) {
        lastSettle = performance.now();
        if (await settleLostJobs(queue, redis, prefix, record)) continue;
      }
      if (record.enqueued || (await queue.getWaitingCount()) >= HIGH_WATER) await pause();
    }
    state = (await readRun(redis, prefix, record.id))!;
    return {
      result: { byZoom: state.byZoom, total: state.total, seconds: (performance.now() - started) / 1000, interrupted: o.signal.aborted },
      queue: { run: record.id, jobs: record.jobs, workers: state.workers },
      failures: await readFailures(redis, prefix, record.id),
    };
  } finally {
    await events.close();
    eventsConnection.disconnect();
    await queue.close();
    connection.disconnect();
  }
}

/** `tilegraph seed --status RUN`: the run's counts and the queue's, as JSON lines off a terminal. */
export async function statusCommand(settings: Settings, id: string): Promise<void> {
  if (!settings.redisUrl) throw new Error('--status needs REDIS_URL: queued runs live in Redis');
  const connection = queueConnection(settings.redisUrl);
  let queue: Queue<SeedJob> | undefined;
  try {
    const state = await readRun(connection, settings.redisPrefix, id);
    if (!state) throw new Error(`--status ${id}: no such run (runs are kept for a week; check REDIS_URL and REDIS_PREFIX)`);
    queue = openQueue(connection, settings.redisPrefix);
    const jobs = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
    const { record, total } = state;
    const finished = record.enqueued && state.jobsDone >= record.jobs;
    const status = {
      run: record.id,
      layer: record.layer,
      version: record.version,
      target: record.target,
      state: finished ? 'done' : record.enqueued ? 'running' : 'enqueuing',
      jobs: { done: state.jobsDone, enqueued: record.jobs, allEnqueued: record.enqueued },
      tiles: { total: record.total, done: done(state), ...total },
      byZoom: Object.fromEntries([...state.byZoom].sort((a, b) => a[0] - b[0]).map(([z, c]) => [z, { planned: record.planned[z] ?? 0, ...c }])),
      workers: state.workers,
      queue: jobs,
      manifest: record.manifest,
    };
    if (!process.stdout.isTTY) return void console.log(JSON.stringify(status));
    console.log(`run ${record.id}: layer ${record.layer} (version ${record.version.slice(0, 12)}) into ${record.target}, ${status.state}`);
    console.log(`jobs: ${state.jobsDone} done of ${record.jobs} enqueued${record.enqueued ? '' : ' so far'}`);
    console.log(
      `tiles: ${status.tiles.done} of ${record.total} (${total.rendered} rendered, ${total.empty} empty, ${total.skipped} skipped, ${total.carried} carried over, ${total.failed} failed)`,
    );
    for (const [w, n] of Object.entries(state.workers)) console.log(`worker ${w}: ${n} jobs`);
    console.log(`queue: ${jobs.waiting} waiting, ${jobs.active} active, ${jobs.delayed} delayed, ${jobs.failed} failed (all runs)`);
  } finally {
    await queue?.close();
    connection.disconnect();
  }
}
