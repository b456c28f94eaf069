/**
 * `tilegraph worker`: takes seeding jobs from the queue (src/seed/queue.ts) and renders them
 * through the tile service and this process's render pool, into the run's target. Run any
 * number of them, on any machines that see the same Redis, layer files and sources (and, for
 * a `dir:` target, the same file system).
 */
import os from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { connectForCommand, type RedisClient } from '../cache/redis.js';
import { loadSettings, type Settings } from '../config.js';
import { isInside, loadLayer } from '../layers/layer.js';
import { findLayerFile } from '../layers/registry.js';
import { createLogger } from '../log.js';
import type { TileId } from '../tiles/mercator.js';
import { openRenderer, type Produce, type Renderer } from './produce.js';
import { countJob, JOB_TILES, parseRecord, QUEUE_NAME, queueConnection, queuePrefix, runKeys, type JobFailure, type RunRecord, type SeedJob } from './queue.js';
import { count, inLanes, metatiles, seedGroup, zeroCounts, type ProduceMany } from './runner.js';
import { fileTarget, openTarget, realPlace, type SeedTarget } from './target.js';
import { numberFlag, parseFlags } from '../args.js';

const WORKER_USAGE = 'tilegraph worker [--concurrency N]';

/** Renders of one job in flight at once (a metatile is one): with several jobs at once, enough to keep every render thread busy. */
const RENDERS_IN_FLIGHT = 4;

/** What a worker keeps of a run while it takes the run's jobs. */
interface RunContext {
  record: RunRecord;
  produce: Produce;
  produceMany: ProduceMany;
  target: SeedTarget;
}

/** Runs whose layer and target a worker keeps open at once. */
const MAX_RUNS = 8;

export class SeedWorker {
  private readonly runs = new Map<string, Promise<RunContext>>();
  private readonly name = `${os.hostname()}:${process.pid}`;
  private readonly stopping = new AbortController();

  constructor(
    private readonly settings: Settings,
    private readonly redis: RedisClient,
    private readonly renderer: Renderer,
  ) {}

  /** One job: its tiles into the run's target, counted once into the run; throws (the job fails) if any tile failed. */
  async process(job: Job<SeedJob>): Promise<void> {
    // Redis holds what the queue says: nothing of it is taken on trust.
    const given = job.data as Partial<SeedJob> | null;
    const refuse = (why: string) => new UnrecoverableError(`job ${job.id}: not a job that seed --queue writes: ${why}`);
    if (typeof given !== 'object' || given === null || typeof given.run !== 'string') throw refuse('not a job of a run');
    const run = await this.run(given.run);
    const problem = jobProblem(given, run.record);
    if (problem) throw refuse(problem);
    const data = given as SeedJob;
    const tiles: TileId[] = [];
    for (let i = 0; i < data.xy.length; i += 2) tiles.push({ z: data.z, x: data.xy[i]!, y: data.xy[i + 1]! });
    const stale = data.stale && new Set(data.stale.map((i) => tiles[i]));
    const work = {
      produce: run.produce,
      produceMany: run.produceMany,
      target: run.target,
      retries: run.record.retries,
      force: run.record.force,
      signal: this.stopping.signal,
      ...(stale && { stale: (t: TileId) => stale.has(t) }),
    };
    const counts = zeroCounts();
    const failures: JobFailure[] = [];
    const groups = metatiles(tiles, run.record.metatile ?? 1)[Symbol.iterator]();
    const stopped = await inLanes(RENDERS_IN_FLIGHT, groups, async (items) => {
      const group = items.map((it) => it.tile);
      const outcomes = await seedGroup(group, work);
      group.forEach((t, k) => {
        const outcome = outcomes[k]!;
        count(counts, outcome);
        if (outcome.kind === 'failed') failures.push({ tile: `${t.z}/${t.x}/${t.y}`, attempts: outcome.attempts, error: outcome.error });
      });
    });
    // A write that cannot succeed (the target full) stopped the job: it fails once the tiles in flight have finished.
    if (stopped) throw stopped;
    await countJob(this.redis, this.settings.redisPrefix, data, counts, failures, this.name);
    if (failures.length) throw new Error(`${failures.length} of ${tiles.length} tiles failed; ${failures[0]!.tile}: ${failures[0]!.error}`);
  }

  private run(id: string): Promise<RunContext> {
    let ctx = this.runs.get(id);
    if (!ctx) {
      ctx = this.open(id);
      this.runs.set(id, ctx);
      ctx.catch(() => this.runs.delete(id));
      for (const [old, c] of this.runs) {
        if (this.runs.size <= MAX_RUNS) break;
        this.runs.delete(old);
        void c.then((r) => r.target.close()).catch(() => {});
      }
    }
    return ctx;
  }

  private async open(id: string): Promise<RunContext> {
    const { settings } = this;
    const text = await this.redis.get(runKeys(settings.redisPrefix, id).record);
    if (!text) throw new UnrecoverableError(`run ${id}: no such run in Redis (expired, or another REDIS_PREFIX)`);
    let record: RunRecord;
    try {
      record = parseRecord(id, text);
    } catch (err) {
      throw new UnrecoverableError((err as Error).message);
    }
    const outside = outsideRoots(record.target, settings.seedRoots);
    if (outside) throw new UnrecoverableError(`run ${id}: its target ${record.target} ${outside}: this worker writes no tile there`);
    const layer = await loadLayer(findLayerFile(settings.layersDir, record.layer), { layersDir: settings.layersDir, allowedHosts: settings.allowedHosts });
    if (layer.version !== record.version) {
      throw new UnrecoverableError(
        `run ${id}: layer '${record.layer}' is version ${layer.version} on ${this.name}, the run was queued for version ${record.version}: ` +
          'the layer file or its sources differ between this worker and the enqueuing command',
      );
    }
    const target = await openTarget(record.target, layer, {
      format: record.format,
      redisPrefix: settings.redisPrefix,
      redis: async () => this.redis,
      previous: record.previous,
      settles: record.settles,
      trusted: record.trusted,
      coverage: record.coverage,
    });
    return { record, target, produce: this.renderer.producer(layer, record.format), produceMany: this.renderer.many(layer, record.format) };
  }

  async close(): Promise<void> {
    this.stopping.abort();
    for (const ctx of this.runs.values()) await ctx.then((r) => r.target.close()).catch(() => {});
    this.runs.clear();
  }
}

export async function workerCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseFlags({ args, allowPositionals: true, options: { concurrency: { type: 'string' } } });
  if (positionals.length) throw new Error(`usage: ${WORKER_USAGE}`);
  // A bad flag is named before the settings are read.
  const given = numberFlag('concurrency', values.concurrency, undefined, 1, 256);
  const settings = loadSettings();
  if (!settings.redisUrl) throw new Error('tilegraph worker needs REDIS_URL: it takes its jobs from the queue in Redis');
  // Jobs at once: with four tiles of each in flight, two jobs per render thread keep it busy.
  const concurrency = given ?? settings.workers * 2;
  const log = createLogger(settings.logLevel);
  const redis = await connectForCommand(settings.redisUrl, settings.redisTimeoutMs, createLogger('silent'));
  const connection = queueConnection(settings.redisUrl);
  const renderer = openRenderer(settings);
  const seeds = new SeedWorker(settings, redis, renderer);
  const worker = new Worker<SeedJob>(QUEUE_NAME, (job) => seeds.process(job), {
    connection,
    prefix: queuePrefix(settings.redisPrefix),
    concurrency,
    lockDuration: settings.seedLockMs,
    stalledInterval: settings.seedLockMs,
    // A job that stalls twice (its workers died twice) fails, and is counted as failed.
    maxStalledCount: 2,
  });
  worker.on('failed', (job, err) => log.warn({ job: job?.id, err: err.message }, 'seed job failed'));
  worker.on('error', (err) => log.error({ err: err.message }, 'seed worker error'));
  await worker.waitUntilReady();
  log.info({ concurrency, threads: settings.workers, queue: QUEUE_NAME }, 'seed worker ready');

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'seed worker stopping: finishing its jobs');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  // Jobs in hand are finished; BullMQ then lets go of the connection.
  await worker.close();
  await seeds.close();
  await renderer.close();
  connection.disconnect();
  redis.disconnect();
  log.info('seed worker stopped');
}

/**
 * Why a run's target is not one this worker may write (SEED_ROOTS), or undefined: a `dir:`
 * target must lie in one of the roots once links are resolved, as far as its path exists (a
 * link inside a root that leads out of it leads out). The cache, or no roots: anywhere.
 */
export function outsideRoots(target: string, roots: readonly string[]): string | undefined {
  const dir = fileTarget(target);
  if (!dir || !roots.length) return undefined;
  const place = realPlace(dir.path);
  if (roots.some((root) => isInside(place, realPlace(root)))) return undefined;
  return `lies in ${place}, outside SEED_ROOTS (${roots.join(', ')})`;
}

/**
 * What is wrong with a job, checked against its run before any of its tiles is rendered or
 * written (the queue lives in Redis, and a tile's coordinates name its file): undefined for a
 * job as `jobsOf` writes them, tiles of one of the run's zooms on the grid.
 */
function jobProblem(job: Partial<SeedJob>, record: RunRecord): string | undefined {
  const zooms = Object.keys(record.planned);
  if (typeof job.z !== 'number' || !zooms.includes(String(job.z))) return `z ${String(job.z)}: the run seeds zooms ${zooms.join(', ')}`;
  const { xy, stale, n } = job;
  if (!Array.isArray(xy) || xy.length < 2 || xy.length % 2 !== 0 || xy.length > 2 * JOB_TILES)
    return `xy: expected 1 to ${JOB_TILES} tiles (x, y pairs), got ${Array.isArray(xy) ? xy.length / 2 : typeof xy}`;
  const last = 2 ** job.z - 1;
  if (!xy.every((v) => Number.isInteger(v) && v >= 0 && v <= last)) return `xy: expected whole numbers from 0 to ${last}`;
  const tiles = xy.length / 2;
  if (stale !== undefined && !(Array.isArray(stale) && stale.every((i) => Number.isInteger(i) && i >= 0 && i < tiles)))
    return `stale: expected indices from 0 to ${tiles - 1}`;
  // A run has at most a job per tile.
  const jobs = Math.max(1, record.total);
  if (!Number.isSafeInteger(n) || n! < 0 || n! >= jobs) return `n ${String(n)}: expected a whole number from 0 to ${jobs - 1}`;
  return undefined;
}
