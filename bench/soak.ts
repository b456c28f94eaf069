/**
 * The soak: one `tilegraph serve` over the shipped layers (layers/), driven for BENCH_SOAK_S
 * seconds (default 300) with tiles it has never rendered, every shipped layer in turn, zoom
 * by zoom; its resident memory read from /proc at the start, after one minute and at the end,
 * and every ten seconds between. Memory that keeps growing under distinct tiles is a leak; a
 * process that holds to its cache bounds levels off after the caches fill.
 *
 * `node dist/bench/soak.js` runs it alone and prints its JSON; `npm run bench` runs it as the
 * step `soak`.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { drive, freePort } from './loadgen.js';
import { tilesCovering, type Tile } from './tiles.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/src/cli.js');

interface LayerInfo {
  name: string;
  bounds: [number, number, number, number];
  minzoom: number;
  maxzoom: number;
}

/** Resident set size of a process, in MiB (VmRSS). */
function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return kb ? Math.round((Number(kb) / 1024) * 10) / 10 : NaN;
}

/**
 * Tile paths without end: each layer's tiles zoom by zoom from its minzoom, the layers taken
 * in turn, one tile each. A layer whose pyramid is used up starts over at its minzoom (the
 * DEM layers' hold 4416 tiles, used up within the first minutes): by then its tiles with data
 * have left the L1 (64 MiB holds a few thousand of them) and render again, so that the load
 * keeps its shape. Asking for one tile again and again instead would turn the rest of the run
 * into L1 hits and empty tiles at thousands a second, and the L1 would fill with their small
 * entries (its bytes then on the heap, where the tiles' PNG bodies were outside it).
 */
function distinctTiles(layers: readonly LayerInfo[]): (i: number) => string {
  const zoomOf = layers.map((l) => l.minzoom);
  const queued: Tile[][] = layers.map(() => []);
  return (i) => {
    const k = i % layers.length;
    const l = layers[k]!;
    while (queued[k]!.length === 0) {
      if (zoomOf[k]! > l.maxzoom) zoomOf[k] = l.minzoom;
      queued[k] = tilesCovering(l.bounds, zoomOf[k]!, zoomOf[k]!++).reverse();
    }
    const t = queued[k]!.pop()!;
    return `/tiles/${l.name}/${t.z}/${t.x}/${t.y}.png`;
  };
}

/** A metric's value, summed over its labels (the block caches' bytes, thread by thread); null when absent. */
async function metric(url: string, name: string): Promise<number | null> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) => Number(m[1]));
  return values.length ? values.reduce((a, b) => a + b, 0) : null;
}

export async function soak(seconds = Number(process.env.BENCH_SOAK_S ?? 300)): Promise<Record<string, unknown> & { name: string }> {
  const port = await freePort();
  const workers = os.availableParallelism();
  // Bounds the load fills within the first minute (BENCH_SOAK_L1_MB, BENCH_SOAK_BLOCK_MB), so
  // that the RSS after one minute holds full caches and what grows after it is not theirs. At
  // the defaults (256 MiB each) the caches on this load take three to five minutes to fill, and
  // the ratio would measure them filling, not a leak.
  const settings = { CACHE_L1_MB: process.env.BENCH_SOAK_L1_MB ?? '64', BLOCK_CACHE_MB: process.env.BENCH_SOAK_BLOCK_MB ?? '32' };
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: {
      ...process.env,
      LAYERS_DIR: path.join(ROOT, 'layers'),
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      WORKERS: String(workers),
      REDIS_URL: '',
      ...settings,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ok = await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('tilegraph did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    const { layers } = (await (await fetch(`${url}/layers`)).json()) as { layers: LayerInfo[] };
    const pid = child.pid!;
    // The whole process's resident memory, and what the main thread's own gauges say of it:
    // its JavaScript heap, memory outside the heap (tile buffers) and the L1 cache's count, and
    // the render threads' block caches (summed: a block two threads share counts twice), and
    // the render threads' own heaps and array buffers (summed).
    type Sample = {
      s: number;
      rssMiB: number;
      mainHeapMiB?: number | null;
      mainExternalMiB?: number | null;
      l1MiB?: number | null;
      blockCachesMiB?: number | null;
      threadHeapsMiB?: number | null;
      threadArrayBuffersMiB?: number | null;
    };
    const samples: Sample[] = [{ s: 0, rssMiB: rssMiB(pid) }];
    const t0 = performance.now();
    const mib = (v: number | null) => (v === null ? null : Math.round(v / 2 ** 20));
    const sampler = setInterval(() => {
      const s = Math.round((performance.now() - t0) / 1000);
      const rss = rssMiB(pid);
      Promise.all(
        [
          'tilegraph_nodejs_heap_size_used_bytes',
          'tilegraph_nodejs_external_memory_bytes',
          'tilegraph_cache_l1_bytes',
          'tilegraph_block_cache_bytes',
          'tilegraph_render_thread_heap_bytes',
          'tilegraph_render_thread_array_buffer_bytes',
        ].map((m) => metric(url, m)),
      )
        .then(([heap, external, l1, blocks, threadHeaps, threadBuffers]) =>
          samples.push({
            s,
            rssMiB: rss,
            mainHeapMiB: mib(heap!),
            mainExternalMiB: mib(external!),
            l1MiB: mib(l1!),
            blockCachesMiB: mib(blocks!),
            threadHeapsMiB: mib(threadHeaps!),
            threadArrayBuffersMiB: mib(threadBuffers!),
          }),
        )
        .catch(() => samples.push({ s, rssMiB: rss }));
    }, 10_000);
    let atOneMinute: number | null = null;
    const minute = setTimeout(() => {
      atOneMinute = rssMiB(pid);
    }, 60_000);
    const load = await drive(url, distinctTiles(layers), { connections: 8, maxMs: seconds * 1000, timeoutMs: 30_000 });
    clearInterval(sampler);
    clearTimeout(minute);
    const atEnd = rssMiB(pid);
    const l1Bytes = await metric(url, 'tilegraph_cache_l1_bytes');
    const blockBytes = await metric(url, 'tilegraph_block_cache_bytes');
    const ratio = atOneMinute ? Math.round((atEnd / atOneMinute) * 100) / 100 : null;
    return {
      name: 'tilegraph-soak-shipped-layers',
      what: `distinct tiles of every shipped layer (${layers.map((l) => l.name).join(', ')}), 8 connections, for ${seconds} s`,
      workers,
      requests: load.requests,
      statuses: load.statuses,
      tilesPerSec: load.perSecond,
      latencyMs: load.latencyMs,
      errors: load.errors,
      rssMiB: { atStart: samples[0]!.rssMiB, atOneMinute, atEnd, endVsOneMinute: ratio, every10s: samples },
      bounds: {
        l1: { boundMiB: Number(settings.CACHE_L1_MB), heldMiB: l1Bytes === null ? null : Math.round((l1Bytes / 2 ** 20) * 10) / 10 },
        blockCaches: { boundPerThreadMiB: Number(settings.BLOCK_CACHE_MB), heldMiB: blockBytes === null ? null : Math.round((blockBytes / 2 ** 20) * 10) / 10 },
      },
    };
  } finally {
    child.kill('SIGTERM');
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  soak()
    .then((r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`))
    .catch((err) => {
      process.stderr.write(`soak failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    });
}
