/**
 * `npm run bench` (SPEC §8): one JSON object on stdout, progress on stderr.
 *
 * 1. Data: bench/make-data.sh makes bench/data/{dem,dem4x,scene,dem-relief}.tif if absent.
 * 2. Layers: bench-dem (colour relief), bench-dem4x, bench-ndvi (the best NDVI form the
 *    registry supports) written into bench/data, which is the server's LAYERS_DIR.
 * 3. Scenarios, each on a fresh server process (`node dist/src/cli.js serve`, CACHE_L1_MB=0,
 *    no Redis, WORKERS = cores) driven over loopback by bench/loadgen.ts with 8 keep-alive
 *    connections, over every tile of zooms 10-14 covering each layer's bounds:
 *    tilegraph DEM and NDVI uncached; a bare express handler returning 16 KB (the ceiling of
 *    cached serving); the naive geotiff.js readRasters + sharp loop on one thread over the
 *    same DEM tiles; tilegraph's renderer on one thread over the same tiles; gdal2tiles over
 *    the same pyramid when installed. Runs that would take longer than their budget measure
 *    every n-th tile of each zoom instead, and say so.
 * 4. The overview target: one zoom-8 tile from dem.tif and from dem4x.tif, cold.
 *    The mosaic targets (bench/mosaic.ts): the DEM step's tiles from dem.tif and from the
 *    same pixels cut into 64 COGs (bench/data/dem-pieces/) as one mosaic source, over HTTP
 *    as the DEM step, the two layers in turn (tiles/s and the server's CPU time per tile), and
 *    in this thread zoom by zoom; and the zoom-6 tile over the whole mosaic, cold.
 *    Issue 18 (bench/model.ts, step `model`): the NDVI layer against the same layer with an
 *    ONNX model computing the value coloured, over HTTP as the NDVI step, in turn.
 *
 * 5. Cached serving: the same 256 DEM tiles asked for again and again, from L1 and from Redis
 *    alone, in turn with the bare express handler, over several rounds.
 *
 * 6. Seeding: `tilegraph seed` of zooms 10-14 into a directory, beside gdaldem color-relief +
 *    gdal2tiles on the same pyramid.
 *    Issue 16 (bench/seedqueue.ts): the same pyramid through the queue (a redis-server and two
 *    `tilegraph worker` processes of one render thread each) against a local seed of two
 *    threads, in turn over several rounds (step `queue`); and a re-seed with --since after a
 *    patch of 1% of the DEM against full seeds (step `incremental`).
 * 7. Soak (bench/soak.ts): distinct tiles of every shipped layer for BENCH_SOAK_S seconds
 *    (default 300); resident memory at the start, after one minute and at the end.
 *
 * Environment: BENCH_DATA (data directory), BENCH_BUDGET_S (seconds for the runs of one HTTP
 * layer, default 70), BENCH_RUNS (runs of each HTTP layer, each on a fresh server; the median
 * is reported, default 3), BENCH_NAIVE_S (default 40), BENCH_SINGLE_S (default 25), BENCH_CONNECTIONS
 * (default 8), BENCH_SKIP (comma-separated steps to skip: serving, dem, ndvi, model, naive, single, seed,
 * overview, mosaic, encode, jpeg, kernels, gdal2tiles, queue, incremental, incremental-deep, soak), BENCH_JPEG_ROUNDS (default 3), BENCH_KERNELS_ROUNDS (default 3), BENCH_SOAK_S, BENCH_SOAK_L1_MB (default 64), BENCH_SOAK_BLOCK_MB (default 32), BENCH_SEED_ROUNDS (default 3), BENCH_SERVING_ROUNDS (default 3),
 * BENCH_CODE_WARMUP_PASSES (default 4), BENCH_MOSAIC_ROUNDS (default 4), BENCH_MOSAIC_S (default 120), BENCH_MOSAIC_Z6_SAMPLES (default 5), BENCH_QUEUE_ROUNDS (default 3),
 * BENCH_INCREMENTAL_ROUNDS (default 3), BENCH_INCREMENTAL_DEEP_ROUNDS (default 2), BENCH_INCREMENTAL_DEEP_MAXZOOM (default 17), BENCH_MODEL_ROUNDS (default 4). See bench/README.md.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { blockCache } from '../src/sources/blockcache.js';
import { coldTileCosts, renderForEncoding, singleThread, type DirectResult } from './direct.js';
import { encodeTable } from './encode.js';
import { DEM_PIPELINE, DEM_STOPS, writeBenchLayers, type BenchLayers } from './layers.js';
import { drive, freePort, summarise, type LoadResult } from './loadgen.js';
import { kernelsAB, type KernelsFigures } from './kernels.js';
import { modelBench } from './model.js';
import { mosaicBench } from './mosaic.js';
import { incrementalReseed, queueVsLocal, type SeedBenchDeps } from './seedqueue.js';
import { removeScratch, scratchDir } from './scratch.js';
import { soak } from './soak.js';
import { NaiveRenderer, parseStops } from './naive.js';
import { countByZoom, everyNth, lonLatToMercator, tilesCovering, type Tile } from './tiles.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DATA = path.resolve(process.env.BENCH_DATA ?? path.join(ROOT, 'bench/data'));
const CLI = path.join(ROOT, 'dist/src/cli.js');
const FIXED = path.join(ROOT, 'dist/bench/fixed-server.js');
const CORES = os.availableParallelism();
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const ZOOMS: [number, number] = [10, 14];
/** Step `incremental-deep`: the incremental re-seed over zooms 10 to BENCH_INCREMENTAL_DEEP_MAXZOOM (default 17), BENCH_INCREMENTAL_DEEP_ROUNDS rounds. */
const DEEP_ZOOMS: [number, number] = [10, Math.max(15, Number(process.env.BENCH_INCREMENTAL_DEEP_MAXZOOM ?? 17))];
const DEEP_ROUNDS = Math.max(1, Number(process.env.BENCH_INCREMENTAL_DEEP_ROUNDS ?? 2));
const BUDGET_S = Number(process.env.BENCH_BUDGET_S ?? 70);
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const NAIVE_S = Number(process.env.BENCH_NAIVE_S ?? 40);
const SINGLE_S = Number(process.env.BENCH_SINGLE_S ?? 25);
const SKIP = new Set(
  (process.env.BENCH_SKIP ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const FILES = ['dem.tif', 'dem4x.tif', 'scene.tif', 'scene-rgb-deflate.tif', 'scene-rgb-jpeg.tif', 'dem-relief.tif'];

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

type Scenario = Record<string, unknown> & { name: string };
const scenarios: Scenario[] = [];
const skipped: { name: string; why: string }[] = [];
const notes: string[] = [];

// ---------------------------------------------------------------------------
// Data

async function ensureData(): Promise<{ generated: boolean; seconds: number }> {
  if (FILES.every((f) => existsSync(path.join(DATA, f)))) return { generated: false, seconds: 0 };
  log(`making the data in ${DATA} (bench/make-data.sh; several minutes the first time)`);
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('bash', [path.join(ROOT, 'bench/make-data.sh')], {
      env: { ...process.env, BENCH_DATA: DATA },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench/make-data.sh exited with ${code}`))));
  });
  return { generated: true, seconds: round((performance.now() - t0) / 1000) };
}

function describeSource(l: BenchLayers['dem']) {
  return l.sources.map((s) => ({
    file: path.relative(ROOT, s.location),
    bytes: statSync(s.location).size,
    width: s.meta.width,
    height: s.meta.height,
    bands: s.meta.bands,
    dataType: s.meta.dataType,
    crs: s.meta.crs.epsg ? `EPSG:${s.meta.crs.epsg}` : s.meta.crs.name,
    pixelSize: round(Math.abs(s.meta.geoTransform[1]), 3),
    blockSize: [s.meta.levels[0]!.image.blockWidth, s.meta.levels[0]!.image.blockHeight],
    compression: s.meta.levels[0]!.image.compression,
    predictor: s.meta.levels[0]!.image.predictor,
    overviews: s.meta.levels.slice(1).map((lv) => lv.width),
  }));
}

// ---------------------------------------------------------------------------
// Servers

interface Child {
  url: string;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
}

async function waitHealthy(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}: ${stderr().slice(-2000)}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`the server did not answer ${url}/healthz within 60 s: ${stderr().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startTilegraph(extraEnv: Record<string, string> = {}): Promise<Child> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LAYERS_DIR: DATA,
    PORT: String(port),
    HOST: '127.0.0.1',
    CACHE_L1_MB: '0',
    LOG_LEVEL: 'silent',
    WORKERS: String(CORES),
    REDIS_URL: '',
    ...extraEnv,
  };
  const child = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-8192);
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, child, () => err);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return { url, stop: stopper(child) };
}

async function startFixed(): Promise<Child> {
  const child = spawn(process.execPath, [FIXED], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve((JSON.parse(line!) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`fixed-server exited with ${code}`)));
  });
  return { url, stop: stopper(child) };
}

// ---------------------------------------------------------------------------
// Scenarios

const tilePath = (layer: string) => (t: Tile) => `/tiles/${layer}/${t.z}/${t.x}/${t.y}.png`;

/** Tiles of zooms 5..9 over the layer, repeated to `n`: each render thread builds the graph. */
function warmupPaths(bounds: BenchLayers['dem']['bounds'], layer: string, n: number): string[] {
  const low = tilesCovering(bounds, 5, 9).map(tilePath(layer));
  return Array.from({ length: n }, (_, i) => low[i % low.length]!);
}

/** The server's tilegraph_block_reads_total by outcome (cached, waited, decoded). */
async function blockReads(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tilegraph_block_reads_total\{outcome="(\w+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

function httpScenario(
  name: string,
  layer: string,
  r: LoadResult,
  tiles: { total: number; measured: Tile[]; stride: number },
  extra: Record<string, unknown> = {},
): Scenario {
  return {
    name,
    kind: 'http',
    layer,
    cache: 'off',
    connections: CONNECTIONS,
    workers: CORES,
    tiles: {
      zooms: ZOOMS,
      total: tiles.total,
      measured: r.requests,
      byZoom: countByZoom(tiles.measured),
      sampled: tiles.stride > 1,
      stride: tiles.stride,
      cutShort: r.cutShort,
    },
    tilesPerSec: r.perSecond,
    latencyMs: r.latencyMs,
    statuses: r.statuses,
    seconds: r.seconds,
    meanBytes: Math.round(r.bytes / Math.max(1, r.requests)),
    errors: r.errors,
    ...extra,
  };
}

/**
 * Uncached rendering of every tile of zooms 10-14 over the layer. A pilot over every 20th
 * tile (its own server) estimates the rate; when BENCH_RUNS runs of the full set would exceed
 * the budget, every n-th tile of each zoom is measured instead. Each measured run gets a
 * fresh server (no decoded blocks kept from the pilot or an earlier run), warmed by a few
 * low-zoom tiles so that each render thread has built the layer's graph. `fixedStride`: every
 * n-th tile of each zoom, no pilot (the model step measures two layers over the same tiles).
 * `codeWarmup`: the same tiles again on servers that have first rendered that layer's tiles
 * (`warmServer` in the scenario).
 */
async function uncachedLayer(name: string, layer: BenchLayers['dem'], fixedStride?: number, codeWarmup?: BenchLayers['dem']): Promise<Scenario> {
  const all = tilesCovering(layer.bounds, ZOOMS[0], ZOOMS[1]);
  const toPath = tilePath(layer.name);
  let stride = fixedStride ?? 1;
  let pilotRate: number | undefined;
  if (fixedStride === undefined && all.length > 100) {
    const pilot = everyNth(all, 20);
    const srv = await startTilegraph();
    try {
      await drive(srv.url, warmupPaths(layer.bounds, layer.name, 2 * CONNECTIONS), { connections: CONNECTIONS });
      const r = await drive(srv.url, pilot.map(toPath), { connections: CONNECTIONS, maxMs: BUDGET_S * 1000 });
      pilotRate = r.perSecond;
      const estimate = all.length / Math.max(0.01, r.perSecond);
      if (estimate * RUNS > BUDGET_S) stride = Math.ceil((estimate * RUNS) / BUDGET_S);
      log(
        `  pilot: ${r.requests} tiles at ${r.perSecond} tiles/s; the ${all.length} tiles would take ${round(estimate)} s${stride > 1 ? `: measuring every ${stride}th tile of each zoom` : ''}`,
      );
    } finally {
      await srv.stop();
    }
  }
  const measured = everyNth(all, stride);
  // Several runs, each on a fresh server: one short run can catch a burst of other work on a
  // shared machine. The median run (by tiles/s) is reported, with every run's rate.
  const runs = await measuredRuns(name, layer, measured.map(toPath));
  const median = medianRun(runs);
  // The same tiles on servers whose code has warmed up over `codeWarmup`'s tiles (measuredRuns).
  const warmupTiles = codeWarmup && tilesCovering(codeWarmup.bounds, ZOOMS[0], ZOOMS[1]).map(tilePath(codeWarmup.name));
  const warm = warmupTiles && (await measuredRuns(`${name} (warm server)`, layer, measured.map(toPath), warmupTiles));
  const warmMedian = warm && medianRun(warm);
  return httpScenario(
    name,
    layer.name,
    median.r,
    { total: all.length, measured, stride },
    {
      runs: runs.map((x) => x.r.perSecond),
      reported: 'the median run',
      pilotTilesPerSec: pilotRate,
      blockReads: median.blocks,
      // The server process's CPU time (every thread) per tile: steadier than tiles/s when other work shares the machine. The median of the runs.
      cpuMsPerTile: medianOf(runs.map((x) => x.cpuMsPerTile)),
      cpuMsPerTileRuns: runs.map((x) => x.cpuMsPerTile),
      warmServer: warm && {
        warmedWith: { layer: codeWarmup!.name, tiles: warmupTiles.length, passes: CODE_WARMUP_PASSES },
        tilesPerSec: warmMedian!.r.perSecond,
        runs: warm.map((x) => x.r.perSecond),
        blockReads: warmMedian!.blocks,
        cpuMsPerTile: medianOf(warm.map((x) => x.cpuMsPerTile)),
        cpuMsPerTileRuns: warm.map((x) => x.cpuMsPerTile),
      },
    },
  );
}

interface MeasuredRun {
  r: LoadResult;
  blocks: Record<string, number>;
  cpuMsPerTile: number;
}

/** The median run by tiles/s. */
function medianRun(runs: MeasuredRun[]): MeasuredRun {
  const ranked = [...runs].sort((a, b) => a.r.perSecond - b.r.perSecond);
  return ranked[Math.floor((ranked.length - 1) / 2)]!;
}

/**
 * Passes over every tile of zooms 10-14 of another layer before a warm server's measured run.
 * V8 optimises a function once it has run enough (a render's planning, drawing and encoding
 * functions run once a tile, and reach it after a thousand tiles or more), in each render
 * thread and in the main thread, on threads of its own: in a fresh server's first thousand DEM
 * tiles, 9% of the process's CPU samples (perf) were V8's compiler at work.
 */
const CODE_WARMUP_PASSES = Number(process.env.BENCH_CODE_WARMUP_PASSES ?? 4);

/**
 * BENCH_RUNS runs over `paths`, each on a fresh server warmed by a few low-zoom tiles so that
 * each render thread has built the layer's graph. With `codeWarmup` (the tiles of zooms 10-14
 * of a layer of the same pipeline over another file, so that no decoded block is shared), the
 * server first renders them CODE_WARMUP_PASSES times: the measured tiles are as uncached (tile
 * and block caches) as on a fresh server, the code as warm as a busy server's.
 */
async function measuredRuns(name: string, layer: BenchLayers['dem'], paths: string[], codeWarmup?: string[]): Promise<MeasuredRun[]> {
  const runs: MeasuredRun[] = [];
  for (let i = 0; i < RUNS; i++) {
    const srv = await startTilegraph();
    try {
      await drive(srv.url, warmupPaths(layer.bounds, layer.name, 2 * CONNECTIONS), { connections: CONNECTIONS });
      if (codeWarmup) for (let pass = 0; pass < CODE_WARMUP_PASSES; pass++) await drive(srv.url, codeWarmup, { connections: CONNECTIONS, timeoutMs: 60_000 });
      const before = await blockReads(srv.url);
      const cpu0 = await serverCpuSeconds(srv.url);
      const r = await drive(srv.url, paths, { connections: CONNECTIONS, maxMs: (BUDGET_S / RUNS) * 1.5 * 1000, timeoutMs: 60_000 });
      const cpuMsPerTile = round((((await serverCpuSeconds(srv.url)) - cpu0) * 1000) / Math.max(1, r.requests), 2);
      const after = await blockReads(srv.url);
      const blocks = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
      log(
        `  ${name} run ${i + 1}/${RUNS}: ${r.requests} tiles, ${r.perSecond} tiles/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, server CPU ${cpuMsPerTile} ms a tile, statuses ${JSON.stringify(r.statuses)}, blocks ${JSON.stringify(blocks)}`,
      );
      runs.push({ r, blocks, cpuMsPerTile });
    } finally {
      await srv.stop();
    }
  }
  return runs;
}

/** The server process's CPU seconds (user + system, every thread), from its own metrics. */
async function serverCpuSeconds(url: string): Promise<number> {
  const m = /^tilegraph_process_cpu_seconds_total (\S+)$/m.exec(await (await fetch(`${url}/metrics`)).text());
  if (!m) throw new Error('the server does not report tilegraph_process_cpu_seconds_total');
  return Number(m[1]);
}

/** Debian's redis-server on a free port, keeping nothing on disk; undefined when it is not installed. */
async function startRedis(): Promise<(Child & { port: number }) | undefined> {
  try {
    await run('which', ['redis-server']);
  } catch {
    return undefined;
  }
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await run('redis-cli', ['-p', String(port), 'ping']);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop: stopper(child) };
}

/** Requests answered by each cache tier, from the server's own counter. */
async function tiers(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tilegraph_http_requests_total\{[^}]*cache="([^"]+)"[^}]*\} (\S+)$/gm)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}

function medianOf(values: unknown): number | null {
  if (!Array.isArray(values) || values.length === 0) return null;
  return [...(values as number[])].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/** Rounds of the cached-serving measures, each server in turn: they share the machine's drift alike. */
const SERVING_ROUNDS = Number(process.env.BENCH_SERVING_ROUNDS ?? 5);

/**
 * Cached serving, side by side: the bare express handler (the ceiling), tilegraph answering 256
 * DEM tiles (spread over zooms 10-14) from L1 (CACHE_L1_MB=256, no Redis), and the same from Redis alone
 * (CACHE_L1_MB=0, REDIS_URL on loopback). The tiles are rendered once first; then each server
 * in turn is driven for 5 s, SERVING_ROUNDS times, and the median round of each is reported.
 */
async function serving(layers: BenchLayers): Promise<{ fixed: Scenario; l1?: Scenario; l2?: Scenario }> {
  // 256 tiles spread evenly over the benchmark pyramid (zooms 10-14), so that their sizes are
  // the pyramid's: the ceiling answers 16 KB each time, and bytes cost time.
  const pyramid = tilesCovering(layers.dem.bounds, ZOOMS[0], ZOOMS[1]);
  const paths = pyramid
    .filter((_, i) => i % Math.max(1, Math.floor(pyramid.length / 256)) === 0)
    .slice(0, 256)
    .map(tilePath(layers.dem.name));
  const redis = await startRedis();
  if (!redis) notes.push('tilegraph-dem-l2-hits: redis-server is not installed; skipped');
  const servers: { name: string; what: string; srv: Child; path: (i: number) => string; tier?: string }[] = [];
  try {
    servers.push({
      name: 'express-fixed-16k',
      what: 'bare express 5 handler answering every tile path with the same 16 KB buffer: the ceiling for cached serving',
      srv: await startFixed(),
      path: (i) => `/tiles/fixed/14/${i & 1023}/0.png`,
    });
    const cyclic = (i: number) => paths[i % paths.length]!;
    servers.push({
      name: 'tilegraph-dem-l1-hits',
      what: '256 DEM tiles spread over zooms 10-14 from the in-process cache (CACHE_L1_MB=256, no Redis)',
      srv: await startTilegraph({ CACHE_L1_MB: '256' }),
      path: cyclic,
      tier: 'hit-l1',
    });
    if (redis) {
      servers.push({
        name: 'tilegraph-dem-l2-hits',
        what: 'the same tiles from Redis alone (CACHE_L1_MB=0, REDIS_URL on loopback)',
        srv: await startTilegraph({ CACHE_L1_MB: '0', REDIS_URL: redis.url, REDIS_PREFIX: `bench-${process.pid}:` }),
        path: cyclic,
        tier: 'hit-l2',
      });
    }
    for (const s of servers) {
      if (s.tier) await drive(s.srv.url, paths, { connections: CONNECTIONS });
      await drive(s.srv.url, s.path, { connections: CONNECTIONS, maxMs: 1000 });
    }
    // The L2 writes leave after their responses: let them land.
    await new Promise((r) => setTimeout(r, 500));
    const rounds = servers.map(() => [] as { r: LoadResult; share?: number }[]);
    for (let n = 0; n < SERVING_ROUNDS; n++) {
      for (const [k, s] of servers.entries()) {
        const before = s.tier ? await tiers(s.srv.url) : {};
        const r = await drive(s.srv.url, s.path, { connections: CONNECTIONS, maxMs: 5000 });
        const share = s.tier ? round((((await tiers(s.srv.url))[s.tier] ?? 0) - (before[s.tier] ?? 0)) / Math.max(1, r.requests), 3) : undefined;
        rounds[k]!.push({ r, share });
        log(
          `  ${s.name} round ${n + 1}/${SERVING_ROUNDS}: ${r.perSecond} req/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms${share === undefined ? '' : `, ${share * 100}% ${s.tier}`}`,
        );
      }
    }
    const scenarios = servers.map((s, k) => {
      const runs = rounds[k]!;
      const median = [...runs].sort((x, y) => x.r.perSecond - y.r.perSecond)[Math.floor(runs.length / 2)]!;
      return {
        name: s.name,
        kind: 'http',
        what: s.what,
        connections: CONNECTIONS,
        requests: median.r.requests,
        tilesPerSec: median.r.perSecond,
        latencyMs: median.r.latencyMs,
        statuses: median.r.statuses,
        seconds: median.r.seconds,
        meanBodyBytes: Math.round(median.r.bytes / Math.max(1, median.r.requests)),
        runs: runs.map((x) => x.r.perSecond),
        reported: 'the median round',
        // Each round against the ceiling's round just before it (the same state of the machine).
        ...(k > 0 ? { vsCeilingByRound: runs.map((x, n) => round(x.r.perSecond / rounds[0]![n]!.r.perSecond, 2)) } : {}),
        ...(s.tier ? { [`${s.tier}Share`]: median.share } : {}),
      } satisfies Scenario;
    });
    return { fixed: scenarios[0]!, l1: scenarios[1], l2: scenarios[2] };
  } finally {
    await Promise.all(servers.map((s) => s.srv.stop()));
    await redis?.stop();
  }
}

/** The same sample for the naive loop and tilegraph's single thread: every n-th tile of each zoom, n from a short naive pilot. */
async function naiveAndSingle(layers: BenchLayers): Promise<{ naive?: Scenario; single?: Scenario }> {
  const all = tilesCovering(layers.dem.bounds, ZOOMS[0], ZOOMS[1]);
  const file = layers.dem.sources[0]!.location;
  const naive = await NaiveRenderer.open(file, parseStops(DEM_STOPS));
  const out: { naive?: Scenario; single?: Scenario } = {};
  try {
    const pilot = everyNth(all, Math.ceil(all.length / 12));
    await naive.render(pilot[0]!);
    const t0 = performance.now();
    for (const t of pilot) await naive.render(t);
    const perTile = (performance.now() - t0) / pilot.length / 1000;
    const stride = Math.max(1, Math.ceil((all.length * perTile) / NAIVE_S));
    const sample = everyNth(all, stride);
    log(`  naive pilot: ${round(perTile * 1000)} ms/tile; measuring every ${stride}th tile of each zoom (${sample.length} of ${all.length})`);
    const lat: number[] = [];
    let drawn = 0,
      bytes = 0;
    const started = performance.now();
    for (const t of sample) {
      const a = performance.now();
      const png = await naive.render(t);
      lat.push(performance.now() - a);
      if (png) {
        drawn++;
        bytes += png.length;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    out.naive = {
      name: 'naive-geotiffjs-sharp-dem',
      kind: 'in-process, one thread, one tile at a time',
      layer: 'bench-dem (same tiles, same stops, same PNG settings)',
      what: 'geotiff.js fromFile + GeoTIFF.readRasters({bbox, width: 256, height: 256, resampleMethod: bilinear}) (picks the overview) + colour stops in a JS loop + sharp PNG (compressionLevel 6)',
      tiles: { zooms: ZOOMS, total: all.length, measured: sample.length, byZoom: countByZoom(sample), sampled: stride > 1, stride },
      tilesPerSec: round(sample.length / seconds),
      latencyMs: summarise(lat),
      drawn,
      meanBytes: Math.round(bytes / Math.max(1, drawn)),
      seconds: round(seconds, 2),
    };
    log(`  naive: ${out.naive.tilesPerSec} tiles/s`);
    if (!SKIP.has('single')) {
      // Warm the render thread's graph with a low-zoom tile, then the same sample.
      await singleThread(layers.dem.spec, tilesCovering(layers.dem.bounds, 9, 9).slice(0, 1));
      const r = await singleThread(layers.dem.spec, sample, SINGLE_S * 1000);
      out.single = {
        name: 'tilegraph-dem-single-thread',
        kind: 'in-process, one thread, one tile at a time',
        layer: 'bench-dem',
        what: "dist/workers/render.js's entry function then the server's encodeTile, no HTTP, no pool: per-core renderer cost on the naive baseline's tiles",
        tiles: {
          zooms: ZOOMS,
          total: all.length,
          measured: r.tiles,
          byZoom: countByZoom(sample.slice(0, r.tiles)),
          sampled: true,
          stride,
          cutShort: r.cutShort,
        },
        tilesPerSec: r.perSecond,
        latencyMs: r.latencyMs,
        phasesMs: r.phasesMs,
        drawn: r.drawn,
        meanBytes: Math.round(r.bytes / Math.max(1, r.drawn)),
        seconds: r.seconds,
      };
      log(`  single thread: ${r.perSecond} tiles/s (read ${r.phasesMs.read} ms, ops ${r.phasesMs.ops} ms, encode ${r.phasesMs.encode} ms per tile)`);
    }
  } finally {
    naive.close();
  }
  return out;
}

const JPEG_ROUNDS = Number(process.env.BENCH_JPEG_ROUNDS ?? 3);

/**
 * The cost of a tile of an 8-bit RGB COG compressed with JPEG against the same pixels with
 * DEFLATE: the render thread's entry in this thread, one tile at a time, the same tiles
 * (every n-th of zooms 10-14 over the scene), alternating DEFLATE and JPEG rounds so that both
 * meet the same state of the machine; each round on a fresh block cache.
 */
async function jpegVsDeflate(layers: BenchLayers): Promise<Scenario> {
  const all = tilesCovering(layers.rgbJpeg.bounds, ZOOMS[0], ZOOMS[1]);
  const sample = everyNth(all, Math.max(1, Math.ceil(all.length / 400)));
  const rates: Record<'deflate' | 'jpeg', number[]> = { deflate: [], jpeg: [] };
  const phases: Record<'deflate' | 'jpeg', DirectResult['phasesMs'][]> = { deflate: [], jpeg: [] };
  for (const layer of [layers.rgbDeflate, layers.rgbJpeg]) await singleThread(layer.spec, sample.slice(0, 4)); // graphs built
  for (let round = 0; round < JPEG_ROUNDS; round++) {
    for (const [codec, layer] of [
      ['deflate', layers.rgbDeflate],
      ['jpeg', layers.rgbJpeg],
    ] as const) {
      blockCache.resize(256 * 1024 * 1024); // empty: every round decodes its blocks
      const r = await singleThread(layer.spec, sample, 20_000);
      rates[codec].push(r.perSecond);
      phases[codec].push(r.phasesMs);
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const scenario = {
    name: 'tilegraph-rgb-jpeg-vs-deflate',
    kind: 'in-process, one thread, one tile at a time, cold block cache each round',
    what: "the scene's NIR/red/green as 8-bit RGB (bench/make-data.sh): scene-rgb-jpeg.tif (JPEG q90, YCbCr) against scene-rgb-deflate.tif (DEFLATE + predictor), read -> rgb",
    tiles: { zooms: ZOOMS, total: all.length, measured: sample.length, byZoom: countByZoom(sample) },
    deflateTilesPerSec: median(rates.deflate),
    jpegTilesPerSec: median(rates.jpeg),
    rounds: rates,
    readMsPerTile: { deflate: median(phases.deflate.map((p) => p.read)), jpeg: median(phases.jpeg.map((p) => p.read)) },
    jpegCostVsDeflate: round(median(rates.deflate) / median(rates.jpeg), 2),
    bytes: { deflate: statSync(layers.rgbDeflate.sources[0]!.location).size, jpeg: statSync(layers.rgbJpeg.sources[0]!.location).size },
  };
  log(`  jpeg: ${scenario.jpegTilesPerSec} tiles/s against deflate ${scenario.deflateTilesPerSec} (cost ${scenario.jpegCostVsDeflate}x)`);
  return scenario;
}

/** The zoom-8 tile holding the DEM's centre, cold, from dem.tif and from dem4x.tif. */
async function overviewTarget(layers: BenchLayers): Promise<Record<string, unknown>> {
  const [w, s, e, n] = layers.dem.bounds;
  const [mx, my] = lonLatToMercator((w + e) / 2, (s + n) / 2);
  const span = (2 * 20037508.342789244) / 256;
  const tile = { z: 8, x: Math.floor((mx + 20037508.342789244) / span), y: Math.floor((20037508.342789244 - my) / span) };
  const iterations = 20;
  const [one, four] = await coldTileCosts([layers.dem.sources[0]!.location, layers.dem4x.sources[0]!.location], DEM_PIPELINE, tile, iterations);
  if (!one || !four) throw new Error('no cold cost measured');
  for (const c of [one, four]) c.file = path.relative(ROOT, c.file);
  const ratio = round(four.renderAndEncodeMs.p50 / one.renderAndEncodeMs.p50, 2);
  log(
    `  overview: z8 tile ${one.renderAndEncodeMs.p50} ms (level ${one.level}) vs ${four.renderAndEncodeMs.p50} ms (level ${four.level}) from 4x the pixels: ratio ${ratio}`,
  );
  return {
    what: `one zoom-8 tile, rendered and PNG-encoded in this thread from a freshly opened source each time (no decoded block reused); the two files take turns, ${iterations} times each after 5 untimed rounds; ratios of medians`,
    tile,
    dem: one,
    dem4x: four,
    costRatio: ratio,
    meanCostRatio: round(four.renderAndEncodeMs.mean / one.renderAndEncodeMs.mean, 2),
    renderOnlyRatio: round(four.renderMs.p50 / one.renderMs.p50, 2),
    bytesRatio: round(four.bytesReadPerTile / Math.max(1, one.bytesReadPerTile), 2),
  };
}

/** Encoder settings on 32 real tiles of each layer (every n-th tile of zooms 10-14). */
async function encoders(layers: BenchLayers): Promise<Record<string, unknown>> {
  const pick = (l: BenchLayers['dem']) => {
    const all = tilesCovering(l.bounds, ZOOMS[0], ZOOMS[1]);
    return all.filter((_, i) => i % Math.max(1, Math.floor(all.length / 32)) === 0).slice(0, 32);
  };
  const demTiles = await renderForEncoding(layers.dem.spec, pick(layers.dem));
  const ndviTiles = await renderForEncoding(layers.ndvi.spec, pick(layers.ndvi));
  const dem = await encodeTable(demTiles.rgba, demTiles.codes);
  const ndvi = await encodeTable(ndviTiles.rgba, ndviTiles.codes);
  const sharpRow = dem.find((r) => r.format.includes('encodeTile'));
  const indexedRow = dem.find((r) => r.format.startsWith("indexed png of a ramp's entries") && r.format.includes('render threads'));
  const rgbaRow = dem.find((r) => r.format.startsWith('rgba png'));
  log(
    `  encode: DEM tiles as the server encodes them: indexed PNG (${indexedRow?.format}, ${Math.round((indexedRow?.share ?? 0) * 100)}% of tiles) ${indexedRow?.callerMs} ms/tile, ${indexedRow?.meanBytes} bytes; the rest as RGBA PNGs by libdeflate ${rgbaRow?.cpuMs} ms CPU/tile, ${rgbaRow?.meanBytes} bytes, against sharp (${sharpRow?.format}) ${sharpRow?.cpuMs} ms CPU/tile, ${sharpRow?.parallelMs} ms/tile under load, ${sharpRow?.meanBytes} bytes`,
  );
  return {
    what: "256x256 RGBA tiles rendered by tilegraph. sharp rows: 8 at a time, parallelMs wall ms per tile, callerMs ms the calling thread is blocked per call. Indexed and RGBA rows: the render threads' own encoders, synchronous (parallelMs = callerMs); indexed rows over the share of tiles with at most 256 colours. cpuMs: the process's CPU time per tile (sharp's libuv threads included)",
    dem,
    ndvi,
  };
}

async function gdal2tiles(): Promise<Scenario | undefined> {
  let cmd: string | undefined;
  for (const c of ['gdal2tiles.py', 'gdal2tiles']) {
    try {
      await run('which', [c]);
      cmd = c;
      break;
    } catch {
      /* next */
    }
  }
  const input = path.join(DATA, 'dem-relief.tif');
  if (!cmd) {
    skipped.push({ name: 'gdal2tiles', why: 'gdal2tiles is not installed' });
    return undefined;
  }
  if (!existsSync(input)) {
    skipped.push({ name: 'gdal2tiles', why: 'bench/data/dem-relief.tif is missing (gdaldem not installed?)' });
    return undefined;
  }
  // Kept until the bench ends (bench/scratch.ts), as the seeds' pyramids are.
  const out = await scratchDir('tilegraph-g2t-');
  // The colouring that gdal2tiles needs first, timed as make-data.sh runs it (its output is not used).
  const c0 = performance.now();
  await run('gdaldem', [
    'color-relief',
    '-q',
    '-alpha',
    path.join(DATA, 'dem.tif'),
    await rampFile(out),
    path.join(out, 'colour.tif'),
    '-of',
    'GTiff',
    '-co',
    'TILED=YES',
    '-co',
    'BLOCKXSIZE=512',
    '-co',
    'BLOCKYSIZE=512',
    '-co',
    'COMPRESS=DEFLATE',
    '-co',
    'NUM_THREADS=ALL_CPUS',
  ]);
  const colourSeconds = (performance.now() - c0) / 1000;
  await rm(path.join(out, 'colour.tif'));
  const t0 = performance.now();
  await run(cmd, ['--xyz', '-z', `${ZOOMS[0]}-${ZOOMS[1]}`, '-r', 'bilinear', '-w', 'none', `--processes=${CORES}`, '-q', input, path.join(out, 'tiles')], {
    env: { ...process.env, PROJ_NETWORK: 'OFF' },
    maxBuffer: 1 << 24,
  });
  const seconds = (performance.now() - t0) / 1000;
  const count = await pngsUnder(path.join(out, 'tiles'));
  const { stdout: version } = await run(cmd, ['--version']).catch(() => ({ stdout: '' }));
  log(`  gdal2tiles: ${count} tiles in ${round(seconds)} s, after ${round(colourSeconds)} s of gdaldem color-relief`);
  return {
    name: 'gdal2tiles-dem-relief',
    kind: `batch, ${CORES} processes`,
    layer: 'bench/data/dem-relief.tif (gdaldem color-relief of dem.tif, same stops; colouring not timed)',
    what: `${cmd} --xyz -z ${ZOOMS[0]}-${ZOOMS[1]} -r bilinear --processes=${CORES}: renders zoom ${ZOOMS[1]} from the source and lower zooms from those tiles`,
    version: version.trim() || undefined,
    tiles: { zooms: ZOOMS, total: count, measured: count, sampled: false },
    tilesPerSec: round(count / seconds),
    seconds: round(seconds, 2),
    colourSeconds: round(colourSeconds, 2),
    withColouringSeconds: round(seconds + colourSeconds, 2),
  };
}

/** The bench DEM layer's colour stops as a gdaldem ramp (nodata transparent). */
async function rampFile(dir: string): Promise<string> {
  const file = path.join(dir, 'ramp.txt');
  const hex = (c: string) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)).join(' ');
  await writeFile(file, ['nv 0 0 0 0', ...DEM_STOPS.map(([v, c]) => `${v} ${hex(c)}`)].join('\n') + '\n');
  return file;
}

async function pngsUnder(root: string): Promise<number> {
  let count = 0;
  for (const z of (await readdir(root)).filter((d) => /^\d+$/.test(d)))
    for (const x of await readdir(path.join(root, z))) count += (await readdir(path.join(root, z, x))).filter((f) => f.endsWith('.png')).length;
  return count;
}

/**
 * `tilegraph seed bench-dem --zoom 10-14 --to dir:TMP` as a user runs it (a child process,
 * start-up included): the pyramid gdal2tiles makes, from the DEM itself. In each of
 * BENCH_SEED_ROUNDS rounds (default 3: a median of an odd count), the default run (metatiles of 4×4) and one with
 * `--metatile 1` (tile by tile), so that the metatiles' gain is measured on the same state of
 * the machine.
 */
async function seeding(layers: BenchLayers): Promise<Scenario> {
  const once = async (metatile: number) => {
    const out = await scratchDir('tilegraph-seed-');
    const t0 = performance.now();
    const args = [CLI, 'seed', layers.dem.name, '--zoom', `${ZOOMS[0]}-${ZOOMS[1]}`, '--to', `dir:${out}`, '--metatile', String(metatile)];
    const { stdout } = await run(process.execPath, args, {
      env: { ...process.env, LAYERS_DIR: DATA, WORKERS: String(CORES), LOG_LEVEL: 'silent', REDIS_URL: '' },
      maxBuffer: 1 << 24,
    });
    const seconds = (performance.now() - t0) / 1000;
    const done = JSON.parse(stdout.trim().split('\n').at(-1)!) as { rendered: number; empty: number; failed: number; bytes: number; seconds: number };
    const files = await pngsUnder(out);
    log(
      `  seed --metatile ${metatile}: ${done.rendered} tiles (${done.empty} empty, ${done.failed} failed) in ${round(seconds)} s (${round(done.seconds)} s of rendering), ${files} files`,
    );
    return { seconds, done, files };
  };
  const rounds = Math.max(1, Number(process.env.BENCH_SEED_ROUNDS ?? 3));
  const metatiled: Awaited<ReturnType<typeof once>>[] = [];
  const tileByTile: Awaited<ReturnType<typeof once>>[] = [];
  for (let r = 0; r < rounds; r++) {
    metatiled.push(await once(4));
    tileByTile.push(await once(1));
  }
  const median = (xs: number[]) => medianOf(xs) ?? NaN;
  const seconds = median(metatiled.map((m) => m.seconds));
  const { done, files } = metatiled[0]!;
  return {
    name: 'tilegraph-seed-dem-dir',
    kind: `batch, ${CORES} render threads`,
    what: `tilegraph seed ${layers.dem.name} --zoom ${ZOOMS[0]}-${ZOOMS[1]} --to dir: (child process, start-up and layer loading included; median of ${rounds} runs)`,
    tiles: { zooms: ZOOMS, rendered: done.rendered, empty: done.empty, failed: done.failed, files },
    tilesPerSec: round((done.rendered + done.empty) / seconds),
    seconds: round(seconds, 2),
    renderSeconds: round(median(metatiled.map((m) => m.done.seconds)), 2),
    bytes: done.bytes,
    tileByTileSeconds: round(median(tileByTile.map((m) => m.seconds)), 2),
    // Each round's tile-by-tile time over its metatiled time; the median of the rounds.
    metatileSpeedup: round(median(metatiled.map((m, i) => tileByTile[i]!.seconds / m.seconds)), 2),
  };
}

// ---------------------------------------------------------------------------

/** One-line JSON with a space after each comma and colon. */
function flatJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => flatJson(v ?? null)).join(', ')}]`;
  return `{${Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${JSON.stringify(k)}: ${flatJson(v)}`)
    .join(', ')}}`;
}

/** JSON indented by two spaces, each value on one line when it fits before column `width`. */
function formatJson(value: unknown, indent = 0, column = indent, width = 110): string {
  const flat = flatJson(value);
  if (value === null || typeof value !== 'object' || column + flat.length <= width) return flat;
  const pad = ' '.repeat(indent + 2);
  if (Array.isArray(value)) return `[\n${value.map((v) => pad + formatJson(v ?? null, indent + 2, indent + 2, width)).join(',\n')}\n${' '.repeat(indent)}]`;
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return `{\n${entries.map(([k, v]) => `${pad}${JSON.stringify(k)}: ${formatJson(v, indent + 2, indent + 4 + JSON.stringify(k).length, width)}`).join(',\n')}\n${' '.repeat(indent)}}`;
}

/** The commit measured, and how many files differ from it (others edit src/ while benches run). */
async function codeState(): Promise<Record<string, unknown>> {
  try {
    const { stdout: commit } = await run('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT });
    const { stdout: status } = await run('git', ['status', '--porcelain', '--', 'src', 'workers'], { cwd: ROOT });
    return { commit: commit.trim(), uncommittedFilesInSrcAndWorkers: status.split('\n').filter(Boolean).length };
  } catch {
    return { commit: null };
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadAtStart = os.loadavg().map((v) => round(v, 2));
  const code = await codeState();
  const data = await ensureData();
  const layers = await writeBenchLayers(DATA);
  log(`layers: bench-dem, bench-dem4x, bench-ndvi (${layers.ndviForm}); ${CORES} cores, ${CONNECTIONS} connections`);
  if (layers.ndviRefused.length) notes.push(`NDVI forms refused before the chosen one: ${layers.ndviRefused.map((r) => `${r.form} (${r.why})`).join('; ')}`);

  const step = async <T>(name: string, f: () => Promise<T>): Promise<T | undefined> => {
    if (SKIP.has(name)) {
      skipped.push({ name, why: 'BENCH_SKIP' });
      return undefined;
    }
    log(`${name} ...`);
    try {
      return await f();
    } catch (err) {
      log(`${name} failed: ${(err as Error).stack ?? err}`);
      skipped.push({ name, why: `failed: ${(err as Error).message}` });
      return undefined;
    }
  };

  const { fixed, l1, l2 } = (await step('serving', () => serving(layers))) ?? {};
  const dem = await step('dem', () => uncachedLayer('tilegraph-dem-uncached', layers.dem, undefined, layers.dem4x));
  const ndvi = await step('ndvi', () => uncachedLayer('tilegraph-ndvi-uncached', layers.ndvi));
  const model = await step('model', () =>
    modelBench(
      {
        data: DATA,
        connections: CONNECTIONS,
        zooms: ZOOMS,
        runs: RUNS,
        budgetS: BUDGET_S,
        ndviStride: (ndvi?.tiles as { stride?: number })?.stride,
        uncachedLayer,
        startTilegraph,
        log,
      },
      layers.ndvi,
    ),
  );
  const baselines = await step('naive', () => naiveAndSingle(layers));
  const overview = await step('overview', () => overviewTarget(layers));
  const mosaic = await step('mosaic', () =>
    mosaicBench({ root: ROOT, data: DATA, connections: CONNECTIONS, zooms: ZOOMS, startTilegraph, blockReads, log }, layers.dem),
  );
  const encode = await step('encode', () => encoders(layers));
  const jpeg = await step('jpeg', () => jpegVsDeflate(layers));
  const kernels = await step('kernels', () => kernelsAB(layers, { zooms: ZOOMS, log }));
  const g2t = await step('gdal2tiles', () => gdal2tiles());
  const seeded = await step('seed', () => seeding(layers));
  const seedDeps: SeedBenchDeps = { data: DATA, cli: CLI, cores: CORES, zooms: ZOOMS, layer: layers.dem.name, startRedis, stopper, log };
  const queued = await step('queue', () => queueVsLocal(seedDeps));
  const incremental = await step('incremental', () => incrementalReseed(seedDeps));
  // The same patch over a larger pyramid (zooms 10-17: 58 times as many tiles), where start-up and the digest weigh less.
  const incrementalDeep = await step('incremental-deep', () => incrementalReseed({ ...seedDeps, zooms: DEEP_ZOOMS }, DEEP_ROUNDS));
  const soaked = await step('soak', () => soak());
  for (const s of [
    dem,
    ndvi,
    model,
    baselines?.naive,
    baselines?.single,
    jpeg,
    mosaic,
    fixed,
    l1,
    l2,
    g2t,
    seeded,
    queued,
    incremental,
    incrementalDeep,
    soaked,
  ])
    if (s) scenarios.push(s);
  if (dem && ndvi) notes.push('tilegraph-*-uncached: the server runs as a child process on the same cores as the load generator (loopback).');
  if (model) notes.push(`modelTileCostVsNdvi (step model, bench/model.ts): bench-ndvi against bench-ndvi-model, the value coloured by ${model.what}`);

  const rate = (s?: Scenario) => s?.tilesPerSec as number | undefined;
  const z6 = mosaic?.zoom6 as { withinLimit: boolean; coldCostVsSingle: number; mosaic: { coldMs: { p50: number; max: number } } } | undefined;
  const lat = (s?: Scenario) => s?.latencyMs as { p99: number } | undefined;
  const ratio = (a?: number, b?: number) => (a !== undefined && b ? round(a / b, 2) : null);
  const ratios = {
    demVsNaive: ratio(rate(dem), rate(baselines?.naive)),
    demSingleThreadVsNaive: ratio(rate(baselines?.single), rate(baselines?.naive)),
    demVsFixedCeiling: ratio(rate(dem), rate(fixed)),
    // The median of the rounds' ratios: each round pairs the two on the same state of the machine.
    l1HitsVsFixedCeiling: medianOf(l1?.vsCeilingByRound),
    l2HitsVsFixedCeiling: medianOf(l2?.vsCeilingByRound),
    // Wall time for the same pyramid: gdaldem color-relief + gdal2tiles, against tilegraph seed.
    seedVsGdaldemGdal2tiles: ratio(g2t?.withColouringSeconds as number | undefined, seeded?.seconds as number | undefined),
    // The same seed tile by tile (--metatile 1) over with metatiles of 4x4 (the default): the median of the rounds' ratios.
    seedMetatileSpeedup: (seeded?.metatileSpeedup as number | undefined) ?? null,
    // The median of the rounds' ratios: each round pairs a local seed and a queued one, or an incremental re-seed and the full seeds around it.
    queuedSeedVsLocal: (queued?.costRatio as number | undefined) ?? null,
    incrementalReseedVsFull: (incremental?.costRatio as number | undefined) ?? null,
    [`incrementalReseedVsFullZooms10to${DEEP_ZOOMS[1]}`]: (incrementalDeep?.costRatio as number | undefined) ?? null,
    ndviVsNaiveDem: ratio(rate(ndvi), rate(baselines?.naive)),
    demVsGdal2tiles: ratio(rate(dem), rate(g2t)),
    overviewCost4xVs1x: (overview?.costRatio as number | undefined) ?? null,
    jpegTileCostVsDeflate: (jpeg?.jpegCostVsDeflate as number | undefined) ?? null,
    // The median of the rounds' ratios: each round pairs the single COG and the mosaic on the same state of the machine.
    mosaicTileCostVsSingle: (mosaic?.costRatio as number | undefined) ?? null,
    mosaicTileCpuCostVsSingle: (mosaic?.cpuCostRatio as number | undefined) ?? null,
    mosaicZoom6ColdVsSingle: (z6?.coldCostVsSingle as number | undefined) ?? null,
    // The median of the rounds' ratios (NDVI tiles/s over model tiles/s): a model tile's cost in NDVI tiles. No target (issue 18).
    modelTileCostVsNdvi: (model?.costRatio as number | undefined) ?? null,
    modelTileCpuCostVsNdvi: (model?.cpuCostRatio as number | undefined) ?? null,
    // Each kernel alone against its reference (step kernels): tiles/s single-threaded on a cold block cache, and inflate time on whole blocks.
    wasmVsReferenceDem: (kernels?.dem as KernelsFigures | undefined)?.wasm.wasmVsReference ?? null,
    wasmVsReferenceNdvi: (kernels?.ndvi as KernelsFigures | undefined)?.wasm.wasmVsReference ?? null,
    libdeflateVsZlibInflateDem: (kernels?.dem as KernelsFigures | undefined)?.inflate.libdeflateVsZlib ?? null,
    libdeflateVsZlibInflateNdvi: (kernels?.ndvi as KernelsFigures | undefined)?.inflate.libdeflateVsZlib ?? null,
    // Server CPU per uncached DEM tile on servers whose code has warmed up over another layer's tiles (measuredRuns) over that of fresh servers (the target's figure); the ms are the dem scenario's warmServer.cpuMsPerTile.
    demCpuWarmServerVsFresh: ratio((dem?.warmServer as { cpuMsPerTile?: number } | undefined)?.cpuMsPerTile, dem?.cpuMsPerTile as number | undefined),
    soakRssEndVsOneMinute: (soaked?.rssMiB as { endVsOneMinute: number | null } | undefined)?.endVsOneMinute ?? null,
  };
  const target = (name: string, value: number | null | undefined, goal: number, better: 'higher' | 'lower') => ({
    name,
    value: value ?? null,
    target: goal,
    met: value === undefined || value === null ? null : better === 'higher' ? value >= goal : value <= goal,
  });
  const targets = [
    target('DEM uncached tiles/s vs naive (x)', ratios.demVsNaive, 10, 'higher'),
    target('DEM uncached tiles/s', rate(dem), 300, 'higher'),
    target('DEM uncached tiles/s vs naive, close to the machine (x)', ratios.demVsNaive, 25, 'higher'),
    target('NDVI uncached tiles/s vs naive DEM (x)', ratios.ndviVsNaiveDem, 12, 'higher'),
    target('server CPU ms per uncached DEM tile', dem?.cpuMsPerTile as number | undefined, 2.5, 'lower'),
    target('seeding zooms 10-14 with metatiles vs gdaldem + gdal2tiles, close to the machine (x)', ratios.seedVsGdaldemGdal2tiles, 10, 'higher'),
    target('DEM uncached p99 ms at 8 connections', lat(dem)?.p99, 100, 'lower'),
    target('NDVI uncached tiles/s', rate(ndvi), 150, 'higher'),
    target('zoom-8 tile cost, 4x COG vs 1x (x)', ratios.overviewCost4xVs1x, 1.2, 'lower'),
    target('tile cost, 64-member mosaic vs the single COG (x)', ratios.mosaicTileCostVsSingle, 1.3, 'lower'),
    target('tile cost, 64-member mosaic vs the single COG, server CPU time (x)', ratios.mosaicTileCpuCostVsSingle, 1.3, 'lower'),
    // Answered 200 within MOSAIC_MAX_FILES, or not met whatever its time.
    {
      ...target('zoom-6 tile over the whole mosaic, cold, ms (median; 200 within MOSAIC_MAX_FILES)', z6?.mosaic.coldMs.p50, 1000, 'lower'),
      ...(z6 && !z6.withinLimit ? { met: false } : {}),
    },
    target('L1 hits vs bare express 16 KB (x)', ratios.l1HitsVsFixedCeiling, 0.9, 'higher'),
    target('L2 hits, L1 off, vs bare express 16 KB (x)', ratios.l2HitsVsFixedCeiling, 0.5, 'higher'),
    target('seeding zooms 10-14 vs gdaldem + gdal2tiles (x)', ratios.seedVsGdaldemGdal2tiles, 5, 'higher'),
    target('seeding through the queue, 2 workers, vs a local seed (x)', ratios.queuedSeedVsLocal, 1.15, 'lower'),
    target('incremental re-seed after a 1% patch vs a full seed (x)', ratios.incrementalReseedVsFull, 0.05, 'lower'),
    target(
      `incremental re-seed after a 1% patch vs a full seed, zooms 10-${DEEP_ZOOMS[1]} (x)`,
      (incrementalDeep?.costRatio as number | undefined) ?? null,
      0.05,
      'lower',
    ),
    target('soak: RSS at the end vs after one minute (x)', ratios.soakRssEndVsOneMinute, 1.2, 'lower'),
  ];

  const cpus = os.cpus();
  const report = {
    bench: 'tilegraph',
    schema: 1,
    startedAt: new Date(Date.now() - (performance.now() - started)).toISOString(),
    seconds: round((performance.now() - started) / 1000),
    machine: {
      cores: CORES,
      cpu: cpus[0]?.model ?? 'unknown',
      memoryGiB: round(os.totalmem() / 2 ** 30),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? 'default',
      // 1/5/15-minute load averages: well above the core count means other work shared the machine.
      loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map((v) => round(v, 2)) },
    },
    code,
    settings: {
      connections: CONNECTIONS,
      workers: CORES,
      // The uncached scenarios; the cached ones say their own.
      cacheL1Mb: 0,
      redis: false,
      zooms: ZOOMS,
      tileSize: 256,
      format: 'png',
      budgetsS: { httpLayer: BUDGET_S, naive: NAIVE_S, singleThread: SINGLE_S },
    },
    data: {
      dir: path.relative(ROOT, DATA) || '.',
      generatedThisRun: data.generated,
      generateSeconds: data.generated ? data.seconds : undefined,
      dem: describeSource(layers.dem)[0],
      dem4x: describeSource(layers.dem4x)[0],
      scene: describeSource(layers.ndvi)[0],
    },
    layers: {
      dem: { name: layers.dem.name, pipeline: layers.dem.config.pipeline, bounds: layers.dem.bounds },
      ndvi: {
        name: layers.ndvi.name,
        form: layers.ndviForm,
        pipeline: layers.ndvi.config.pipeline,
        bounds: layers.ndvi.bounds,
        operatorsRegistered: layers.operators,
      },
    },
    scenarios,
    overview: overview ?? null,
    encode: encode ?? null,
    kernels: kernels ?? null,
    ratios,
    targets,
    skipped,
    notes,
  };
  await removeScratch();
  // Exit once written: the in-process render thread's open sources would keep the loop alive.
  process.stdout.write(`${formatJson(report)}\n`, () => process.exit(0));
}

main().catch((err) => {
  log(`failed: ${(err as Error).stack ?? err}`);
  void removeScratch().finally(() => process.exit(1));
});
