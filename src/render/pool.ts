import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { RenderResult, RenderTask } from './task.js';

const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../workers/render.js');

export interface PoolOptions {
  threads: number;
  maxQueue: number;
  timeoutMs: number;
  onError?: (err: unknown) => void;
}

/** The queue is full: the caller should answer 503 with Retry-After. */
export class PoolBusyError extends Error {}
export class RenderTimeoutError extends Error {}

/**
 * The render threads. Each builds a layer's graph once and keeps it; tasks carry the tile
 * and return RGBA as a transferred buffer.
 */
export class RenderPool {
  private readonly piscina: Piscina;
  private readonly timeoutMs: number;

  constructor(opts: PoolOptions) {
    this.timeoutMs = opts.timeoutMs;
    this.piscina = new Piscina({
      filename: WORKER,
      minThreads: opts.threads,
      maxThreads: opts.threads,
      // Keep threads (and the graphs, decoded blocks and open files they hold) between bursts.
      idleTimeout: 60_000,
      maxQueue: opts.maxQueue,
      // A thread waiting on block reads can start the next tile meanwhile.
      concurrentTasksPerWorker: 4,
    });
    // A thread that dies is replaced by piscina and its task fails; the process must not.
    this.piscina.on('error', (err) => { opts.onError?.(err); });
  }

  async render(task: RenderTask): Promise<RenderResult> {
    if (this.piscina.queueSize >= this.piscina.options.maxQueue) throw new PoolBusyError('the render queue is full');
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      return (await this.piscina.run(task, { signal })) as RenderResult;
    } catch (err) {
      if (signal.aborted) throw new RenderTimeoutError(`rendering took longer than ${this.timeoutMs} ms`);
      if (err instanceof Error && /queue is at limit/i.test(err.message)) throw new PoolBusyError('the render queue is full');
      throw err;
    }
  }

  get queueSize(): number { return this.piscina.queueSize; }
  get threads(): number { return this.piscina.threads.length; }
  get utilization(): number { return this.piscina.utilization; }

  async close(): Promise<void> {
    await this.piscina.close();
  }
}
