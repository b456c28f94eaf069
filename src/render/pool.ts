import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { fromWire, TileError } from '../errors.js';
import { recycleLargeAllocations, useKernels, type Kernels } from '../kernels.js';
import type { RenderReply, RenderResult, RenderTask, RenderThreadData } from './task.js';

const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../workers/render.js');

/**
 * Tiles in a thread at once: one computing while the next waits for its blocks. More would
 * only queue inside a thread, where no other thread can take them.
 */
const PER_THREAD = 2;
/** Tiles waiting for a thread are handed out in order, but from this many a thread takes its own first. */
const LOCALITY_WINDOW = 16;
/**
 * Each render thread's young generation, in MiB: V8 starts a full (mark-compact) collection
 * when the room left under the old generation's limit is no more than the young generation's
 * capacity. A render thread's old generation is small (about 11 MiB), so its limit leaves
 * about 16 MiB of room; V8 grows a busy thread's young generation to 16 MiB or more, and the
 * thread then marked its whole heap about ten times a second for as long as it rendered.
 * Capped at 6 MiB (semi-spaces of 2 MiB), it collects young objects more often, each cheaply,
 * and runs a full collection when its old generation has grown.
 */
export const RENDER_THREAD_YOUNG_MB = 6;

/** How long closing waits for a thread to finish loading its modules. */
const LOAD_WAIT_MS = 10_000;

export interface PoolOptions {
  threads: number;
  maxQueue: number;
  timeoutMs: number;
  /** Decoded-block cache of each thread, in MiB (BLOCK_CACHE_MB). */
  blockCacheMb: number;
  /** The render threads' hot loops (KERNELS); `fast` unless given. */
  kernels?: Kernels;
  /** The threads record the cells of the blocks they decode (RenderResult.cells): a seeding run's pool. */
  cells?: boolean;
  onError?: (err: unknown) => void;
}

/** One task to render (a tile, or the tiles of a metatile): waiting in the pool's queue, then in one thread (or two, see `hedge`). */
interface Job {
  task: RenderTask | RenderTask[];
  /** The thread's entry: `renderMany` for a metatile, the default one for a tile. */
  entry?: 'renderMany';
  /** The thread that owns the tile's band of columns. */
  home: number;
  abort: AbortController;
  settle: (reply: RenderReply | RenderReply[] | Error) => void;
  /** Threads running a copy of it. */
  copies: number;
  done: boolean;
}

/**
 * The render threads, one piscina each, fed from one queue here. A tile goes to the thread
 * that owns its band of map columns (`affinity`), so that neighbouring tiles meet the blocks
 * they share in that thread's cache; but a thread with room never waits while tiles wait:
 * tiles are handed out only as threads have room, an idle thread takes any tile, and a tile
 * stuck behind a long render in its thread is also given to an idle one (the first answer wins).
 */
export class RenderPool {
  private readonly pools: Piscina[];
  private readonly waiting: Job[] = [];
  /** The copies running in each thread, oldest first. */
  private readonly inThread: { job: Job; t0: number }[][];
  readonly timeoutMs: number;
  private readonly maxQueue: number;
  /** A running average of render times: a tile behind another for much longer than it is stuck. */
  private typicalMs = 20;

  constructor(opts: PoolOptions) {
    // Before the threads allocate their first blocks: freed ones are reused, and what stays free goes back to the system.
    recycleLargeAllocations();
    // This thread plans tiles too (the tiles a --since run finds stale): with the threads' loops.
    useKernels(opts.kernels ?? 'fast');
    this.timeoutMs = opts.timeoutMs;
    this.maxQueue = opts.maxQueue;
    this.pools = Array.from({ length: Math.max(1, opts.threads) }, () => {
      const pool = new Piscina({
        filename: WORKER,
        minThreads: 1,
        maxThreads: 1,
        // Keep the thread (and the graphs, decoded blocks and open files it holds) between bursts.
        idleTimeout: 60_000,
        concurrentTasksPerWorker: PER_THREAD,
        // Tasks arrive as messages, so between tasks a thread keeps its event loop running
        // (instead of sleeping in Atomics.wait) and the blocks other threads announce reach it
        // before its next tile. ('async' does that too, but its threads outlive close().)
        atomics: 'disabled',
        resourceLimits: { maxYoungGenerationSizeMb: RENDER_THREAD_YOUNG_MB },
        workerData: { blockCacheMb: opts.blockCacheMb, kernels: opts.kernels, cells: opts.cells } satisfies RenderThreadData,
      });
      // A thread that dies is replaced by piscina and its task fails; the process must not.
      pool.on('error', (err) => {
        opts.onError?.(err);
      });
      return pool;
    });
    this.inThread = this.pools.map(() => []);
  }

  /**
   * Renders in a thread; every failure is a TileError with its code. `limit` gives the task a
   * time limit of its own (an ad-hoc pipeline's budget) and the error that says so. Once
   * `signal` aborts (its client went away), a task still waiting for a thread leaves the queue
   * (TileError 'client_closed'); one already running finishes.
   */
  async render(task: RenderTask, limit?: { ms: number; error: TileError }, signal?: AbortSignal): Promise<RenderResult> {
    const reply = (await this.submit(task, undefined, task.affinity, limit, signal)) as RenderReply;
    if (!reply.ok) throw fromWire(reply.error);
    return reply.result;
  }

  /**
   * A metatile: neighbouring tiles of one layer rendered in one task of one thread, so that the
   * messages, the layer lookup and the block lookups are paid once for them all. Each tile is
   * answered on its own, an error in place of one that failed; the pool's time limit is the
   * task's, and when it passes (or the thread dies) every tile of it has that error.
   */
  async renderMany(tasks: RenderTask[]): Promise<(RenderResult | TileError)[]> {
    if (tasks.length === 0) return [];
    let replies: RenderReply[];
    try {
      replies = (await this.submit(tasks, 'renderMany', tasks[0]!.affinity)) as RenderReply[];
    } catch (err) {
      return tasks.map(() => err as TileError);
    }
    return replies.map((r) => (r.ok ? r.result : fromWire(r.error)));
  }

  private async submit(
    task: Job['task'],
    entry: Job['entry'],
    affinity = 0,
    limit?: { ms: number; error: TileError },
    signal?: AbortSignal,
  ): Promise<RenderReply | RenderReply[]> {
    if (signal?.aborted) throw closed();
    if (this.waiting.length >= this.maxQueue) throw busy();
    const n = this.pools.length;
    const home = Math.min(n - 1, Math.max(0, Math.floor(affinity * n)));
    const reply = await new Promise<RenderReply | RenderReply[] | Error>((resolve) => {
      const abort = new AbortController();
      const settle = (r: RenderReply | RenderReply[] | Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', leave);
        resolve(r);
      };
      const job: Job = { task, entry, home, abort, copies: 0, done: false, settle };
      const leave = () => {
        const i = this.waiting.indexOf(job);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        this.finish(job, closed());
      };
      signal?.addEventListener('abort', leave, { once: true });
      // The time limit counts from the request, waiting included.
      const timer = setTimeout(
        () => {
          if (job.done) return;
          const i = this.waiting.indexOf(job);
          if (i >= 0) this.waiting.splice(i, 1);
          abort.abort();
          this.finish(job, limit?.error ?? new TileError('render_timeout', 'render timed out', `rendering took longer than ${this.timeoutMs} ms`));
        },
        Math.min(this.timeoutMs, limit?.ms ?? Infinity),
      );
      this.waiting.push(job);
      this.dispatch();
    });
    if (reply instanceof Error) throw reply;
    return reply;
  }

  private finish(job: Job, reply: RenderReply | RenderReply[] | Error): void {
    if (job.done) return;
    job.done = true;
    job.settle(reply);
  }

  /** A render running for this long is holding up the tiles behind it in its thread. */
  private get stuckMs(): number {
    return Math.max(50, 4 * this.typicalMs);
  }

  /** Thread k is busy with a render that has run for much longer than renders do. */
  private slow(k: number, now: number): boolean {
    const first = this.inThread[k]![0];
    return first !== undefined && now - first.t0 > this.stuckMs * tilesOf(first.job);
  }

  /**
   * Hands waiting tiles to threads with room, each to the best thread for it: not one that is
   * stuck on a long render, then the least busy, then its own. A thread that gets a tile of
   * another's band takes one of its own from near the head of the queue instead, if there is one.
   * With nothing waiting, an idle thread also renders a tile stuck behind a long render.
   */
  private dispatch(): void {
    const now = performance.now();
    const n = this.pools.length;
    while (this.waiting.length > 0) {
      const head = this.waiting[0]!;
      let best = -1;
      let bestScore = Infinity;
      for (let k = 0; k < n; k++) {
        if (this.inThread[k]!.length >= PER_THREAD) continue;
        const score = (this.slow(k, now) ? 4 * PER_THREAD : 0) + 2 * this.inThread[k]!.length + (k === head.home ? 0 : 1);
        if (score < bestScore) [best, bestScore] = [k, score];
      }
      if (best < 0) return;
      let i = 0;
      if (head.home !== best) {
        const own = this.waiting.findIndex((j, at) => at < LOCALITY_WINDOW && j.home === best);
        if (own > 0) i = own;
      }
      this.start(this.waiting.splice(i, 1)[0]!, best);
    }
    for (let idle = 0; idle < n; idle++) {
      if (this.inThread[idle]!.length !== 0) continue;
      const k = this.inThread.findIndex((_, k) => this.slow(k, now) && this.inThread[k]!.slice(1).some((r) => r.job.copies === 1 && !r.job.done));
      if (k < 0) return;
      const stuck = this.inThread[k]!.slice(1).find((r) => r.job.copies === 1 && !r.job.done)!;
      this.start(stuck.job, idle);
    }
  }

  /** Runs a copy of the tile in thread k; the first copy to answer settles it. */
  private start(job: Job, k: number): void {
    const entry = { job, t0: performance.now() };
    const ahead = this.inThread[k]![0];
    this.inThread[k]!.push(entry);
    job.copies++;
    // Behind another render in its thread: look again once that one has run long.
    const recheck = ahead ? setTimeout(() => this.dispatch(), this.stuckMs * tilesOf(ahead.job) + 1).unref() : undefined;
    this.pools[k]!.run(job.task, { signal: job.abort.signal, name: job.entry })
      .then(
        (reply: RenderReply | RenderReply[]) => {
          const replies = Array.isArray(reply) ? reply : [reply];
          // A metatile counts as the renders it holds.
          this.typicalMs += ((performance.now() - entry.t0) / Math.max(1, replies.length) - this.typicalMs) / 16;
          // The thread by its place in the pool, which a replaced thread takes over.
          for (const r of replies) if (r.ok && r.result.blockCache) r.result.blockCache.thread = k;
          this.finish(job, reply);
        },
        (err: unknown) => {
          if (job.abort.signal.aborted) return; // timed out: already answered
          // The thread died (piscina replaces it): the task's error is all there is.
          if (job.copies === 1) this.finish(job, new TileError('internal', 'render failed', err instanceof Error ? err.message : String(err)));
        },
      )
      .finally(() => {
        clearTimeout(recheck);
        job.copies--;
        this.inThread[k]!.splice(this.inThread[k]!.indexOf(entry), 1);
        this.dispatch();
      });
  }

  /** Tiles waiting for a thread (not yet running). */
  get queueSize(): number {
    return this.waiting.length;
  }
  get threads(): number {
    return this.pools.reduce((n, p) => n + p.threads.length, 0);
  }
  get utilization(): number {
    return this.pools.reduce((u, p) => u + p.utilization, 0) / this.pools.length;
  }

  async close(): Promise<void> {
    for (const job of this.waiting.splice(0)) this.finish(job, new TileError('overload', 'shutting down', 'the render pool is closing'));
    // Node aborts the whole process when a thread is stopped while it instantiates its ES
    // modules (a fatal error in v8::Module::IsGraphAsync): a short run (a seed that finds every
    // tile there) closed its pool about 0.1 s after starting it, as the threads were loading.
    // A task that does nothing is answered once a thread has loaded; a thread that has not
    // within LOAD_WAIT_MS is stopped anyway.
    await Promise.all(this.pools.map((p) => p.run(null, { name: 'loaded', signal: AbortSignal.timeout(LOAD_WAIT_MS) }).catch(() => undefined)));
    await Promise.all(this.pools.map((p) => p.close()));
  }
}

/** The tiles a job holds: a metatile may run as long as they do together. */
function tilesOf(job: Job): number {
  return Array.isArray(job.task) ? job.task.length : 1;
}

function busy(): TileError {
  return new TileError('overload', 'busy', 'the render queue is full');
}

function closed(): TileError {
  return new TileError('client_closed', 'client closed the request', 'the client went away before a render thread took its question');
}
