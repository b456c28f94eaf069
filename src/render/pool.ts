import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { fromWire, TileError } from '../errors.js';
import type { RenderReply, RenderResult, RenderTask, RenderThreadData } from './task.js';

const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../workers/render.js');

export interface PoolOptions {
  threads: number;
  maxQueue: number;
  timeoutMs: number;
  /** Decoded-block cache of each thread, in MiB (BLOCK_CACHE_MB). */
  blockCacheMb: number;
  onError?: (err: unknown) => void;
}

export class RenderPool {
  private readonly pools: Piscina[];
  private readonly pending: number[];
  readonly timeoutMs: number;
  private readonly maxQueue: number;

  constructor(opts: PoolOptions) {
    this.timeoutMs = opts.timeoutMs;
    this.maxQueue = opts.maxQueue;
    this.pools = Array.from({ length: Math.max(1, opts.threads) }, () => {
      const pool = new Piscina({
        filename: WORKER,
        minThreads: 1,
        maxThreads: 1,
        // Keep the thread (and the graphs, decoded blocks and open files it holds) between bursts.
        idleTimeout: 60_000,
        maxQueue: opts.maxQueue,
        // A thread waiting on block reads can start the next tile meanwhile.
        concurrentTasksPerWorker: 4,
        // Tasks arrive as messages, so between tasks a thread keeps its event loop running
        // (instead of sleeping in Atomics.wait) and the blocks other threads announce reach it
        // before its next tile. ('async' does that too, but its threads outlive close().)
        atomics: 'disabled',
        workerData: { blockCacheMb: opts.blockCacheMb } satisfies RenderThreadData,
      });
      // A thread that dies is replaced by piscina and its task fails; the process must not.
      pool.on('error', (err) => {
        opts.onError?.(err);
      });
      return pool;
    });
    this.pending = this.pools.map(() => 0);
  }

  /**
   * The thread for a tile: the one that owns its band of columns (`affinity`), unless that one
   * is far behind the least busy.
   */
  private route(task: RenderTask): number {
    const n = this.pools.length;
    if (n === 1) return 0;
    const k = Math.min(n - 1, Math.max(0, Math.floor((task.affinity ?? 0) * n)));
    let least = 0;
    for (let i = 1; i < n; i++) if (this.pending[i]! < this.pending[least]!) least = i;
    return this.pending[k]! > 2 * this.pending[least]! + 4 ? least : k;
  }

  /** Renders in a thread; every failure is a TileError with its code. */
  async render(task: RenderTask): Promise<RenderResult> {
    if (this.queueSize >= this.maxQueue) throw busy();
    const k = this.route(task);
    const signal = AbortSignal.timeout(this.timeoutMs);
    this.pending[k]!++;
    let reply: RenderReply;
    try {
      reply = (await this.pools[k]!.run(task, { signal })) as RenderReply;
    } catch (err) {
      if (signal.aborted) throw new TileError('render_timeout', 'render timed out', `rendering took longer than ${this.timeoutMs} ms`);
      if (err instanceof Error && /queue is at limit/i.test(err.message)) throw busy();
      // The thread died (piscina replaces it): the task's error is all there is.
      throw new TileError('internal', 'render failed', err instanceof Error ? err.message : String(err));
    } finally {
      this.pending[k]!--;
    }
    if (!reply.ok) throw fromWire(reply.error);
    return reply.result;
  }

  /** Tiles waiting for a thread (not yet running). */
  get queueSize(): number {
    return this.pools.reduce((n, p) => n + p.queueSize, 0);
  }
  get threads(): number {
    return this.pools.reduce((n, p) => n + p.threads.length, 0);
  }
  get utilization(): number {
    return this.pools.reduce((u, p) => u + p.utilization, 0) / this.pools.length;
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.close()));
  }
}

function busy(): TileError {
  return new TileError('overload', 'busy', 'the render queue is full');
}
