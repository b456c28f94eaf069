/**
 * A small HTTP load generator for loopback: a fixed number of keep-alive connections, each
 * sending its next request as soon as the previous response has been read to the end, and
 * the latency of every request (send to last byte) recorded.
 */
import http from 'node:http';
import net from 'node:net';

export interface LoadOptions {
  /** Concurrent keep-alive connections (and requests in flight). */
  connections: number;
  /** Stop starting requests after this many milliseconds (the paths are then cut short). */
  maxMs?: number;
  /** Per-request time limit; a request over it counts as an error. */
  timeoutMs?: number;
}

export interface LatencySummary {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoadResult {
  requests: number;
  /** Requests per HTTP status, plus `error` for failed connections and timeouts. */
  statuses: Record<string, number>;
  seconds: number;
  perSecond: number;
  /** Milliseconds, over every completed request. */
  latencyMs: LatencySummary;
  /** Body bytes received. */
  bytes: number;
  /** True when `maxMs` stopped the run before every path was requested. */
  cutShort: boolean;
  /** The first few failures, for the report. */
  errors: string[];
}

export function summarise(latencies: Float64Array | number[]): LatencySummary {
  const a = Float64Array.from(latencies).sort();
  if (a.length === 0) return { mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  // Nearest-rank percentiles.
  const at = (q: number) => a[Math.min(a.length - 1, Math.max(0, Math.ceil(q * a.length) - 1))]!;
  let sum = 0;
  for (const v of a) sum += v;
  const r = (v: number) => Math.round(v * 100) / 100;
  return { mean: r(sum / a.length), p50: r(at(0.5)), p90: r(at(0.9)), p99: r(at(0.99)), max: r(a[a.length - 1]!) };
}

/**
 * Requests `paths` (in order, `connections` at a time) from `base` (http://host:port).
 * `paths` may be a function of the request number, for open-ended runs bounded by `maxMs`.
 */
export async function drive(base: string, paths: readonly string[] | ((i: number) => string), opts: LoadOptions): Promise<LoadResult> {
  const url = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections, maxFreeSockets: opts.connections });
  const total = typeof paths === 'function' ? Infinity : paths.length;
  const pathOf = typeof paths === 'function' ? paths : (i: number) => paths[i]!;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const errors: string[] = [];
  let bytes = 0;
  let next = 0;
  let cutShort = false;
  const started = performance.now();
  const deadline = opts.maxMs === undefined ? Infinity : started + opts.maxMs;

  const one = (path: string) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const fail = (why: string) => {
        statuses.error = (statuses.error ?? 0) + 1;
        if (errors.length < 5) errors.push(`${path}: ${why}`);
        resolve();
      };
      const req = http.request({ agent, host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
        let n = 0;
        res.on('data', (chunk: Buffer) => {
          n += chunk.length;
        });
        res.on('end', () => {
          latencies.push(performance.now() - t0);
          bytes += n;
          const s = String(res.statusCode);
          statuses[s] = (statuses[s] ?? 0) + 1;
          if (res.statusCode! >= 400 && errors.length < 5) errors.push(`${path}: HTTP ${res.statusCode}`);
          resolve();
        });
        res.on('error', (err) => fail(err.message));
      });
      if (opts.timeoutMs) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`no answer in ${opts.timeoutMs} ms`)));
      req.on('error', (err) => fail(err.message));
      req.end();
    });

  const loop = async () => {
    for (;;) {
      if (next >= total) return;
      if (performance.now() >= deadline) {
        cutShort = total !== Infinity;
        return;
      }
      await one(pathOf(next++));
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, loop));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  const requests = latencies.length + (statuses.error ?? 0);
  return {
    requests,
    statuses,
    seconds: Math.round(seconds * 1000) / 1000,
    perSecond: Math.round((latencies.length / seconds) * 10) / 10,
    latencyMs: summarise(latencies),
    bytes,
    cutShort,
    errors,
  };
}

/** A loopback port nothing listens on now (the kernel's choice, released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
