/**
 * Issue 16's seeding targets (bench steps `queue` and `incremental`), each against a baseline
 * measured in the same run:
 *
 * - `queue`: seeding through the queue with two workers costs at most 1.15x a local seed of the
 *   same pyramid. A local `tilegraph seed bench-dem --zoom 10-14 --to dir:TMP` (a child process,
 *   WORKERS=2, as the `seed` step runs it) against the same pyramid through BullMQ: a
 *   redis-server the bench starts on a free port, two `tilegraph worker` processes with
 *   WORKERS=1 each (two render threads in all, as the local seed has), fresh for each round
 *   (cold block caches, as the local seed's) and ready before the clock starts, then the wall
 *   time of `tilegraph seed ... --queue`. The two take turns (local, queued, local, queued...)
 *   over BENCH_QUEUE_ROUNDS rounds (default 3); the figure is the median of the rounds' ratios
 *   queued / local. Each round's two pyramids must hold the same files with the same bytes.
 *   CPU seconds of each side (the local seed; the enqueuing command, the workers and Redis)
 *   say whether the difference is work or waiting.
 * - `incremental`: a re-seed after a 1% patch takes at most 5% of a full seed's time. The DEM is
 *   written out plain (gdal_translate -of GTiff), a value burnt (gdal_rasterize) into a rectangle
 *   of 1% of its area, and both the plain file and the patched one written as COGs with
 *   bench/make-data.sh's options for dem.tif (so that only the blocks under the patch differ;
 *   kept in BENCH_DATA/seed-patch/ until dem.tif changes). In a temporary LAYERS_DIR holding a
 *   copy of bench-dem.yaml and the baseline as dem.tif, each of BENCH_INCREMENTAL_ROUNDS rounds
 *   (default 3) times a full seed of zooms 10-14 into a directory, copies the patched COG over
 *   dem.tif, times `tilegraph seed bench-dem --since DIR/manifest.json`, then times a full seed of
 *   the patched COG into a fresh directory, which the incremental result must equal byte for
 *   byte. The figure is the median of the rounds' incremental time over the mean of the two full
 *   seeds around it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ZoomCounts } from '../src/seed/runner.js';
import { scratchDir } from './scratch.js';

const run = promisify(execFile);

export interface SeedBenchDeps {
  /** The data directory, the bench's LAYERS_DIR. */
  data: string;
  /** dist/src/cli.js */
  cli: string;
  cores: number;
  zooms: [number, number];
  /** The bench DEM layer's name (its file is `${data}/${layer}.yaml`, its source `./dem.tif`). */
  layer: string;
  startRedis(): Promise<{ url: string; port: number; stop(): Promise<void> } | undefined>;
  /** Stops a child process: SIGTERM, then SIGKILL after 10 s. */
  stopper(child: ChildProcess): () => Promise<void>;
  log(msg: string): void;
}

type Scenario = Record<string, unknown> & { name: string };

const QUEUE_ROUNDS = Math.max(2, Number(process.env.BENCH_QUEUE_ROUNDS ?? 3));
const INCREMENTAL_ROUNDS = Math.max(1, Number(process.env.BENCH_INCREMENTAL_ROUNDS ?? 3));
/** Render threads on each side of the queue comparison: one process with two, or two workers with one each. */
const THREADS = 2;
/** The patch: a square of a tenth of the DEM's width and height (1% of its area), its corner at these fractions. */
const PATCH_SIDE = 0.1;
const PATCH_AT: [number, number] = [0.55, 0.3];
/** Metres burnt into the patch: a plateau within the colour ramp, so that its tiles differ. */
const PATCH_VALUE = 2000;
/** bench/make-data.sh's options for dem.tif. */
const DEM_COG = [
  '-of',
  'COG',
  '-co',
  'BLOCKSIZE=512',
  '-co',
  'COMPRESS=DEFLATE',
  '-co',
  'LEVEL=6',
  '-co',
  'NUM_THREADS=ALL_CPUS',
  '-co',
  'OVERVIEW_RESAMPLING=AVERAGE',
  '-co',
  'BIGTIFF=IF_SAFER',
  '-co',
  'PREDICTOR=FLOATING_POINT',
];
const GDAL_ENV = { ...process.env, PROJ_NETWORK: 'OFF', GDAL_NUM_THREADS: 'ALL_CPUS', GDAL_CACHEMAX: '1024' };

const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
const median = (v: readonly number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// ---------------------------------------------------------------------------------------
// Processes and their CPU time

let ticksPerSecond: number | undefined;
async function clockTicks(): Promise<number> {
  if (ticksPerSecond === undefined) {
    const { stdout } = await run('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }));
    ticksPerSecond = Number(stdout.trim()) || 100;
  }
  return ticksPerSecond;
}

/** From /proc/PID/stat: the process's own CPU seconds (every thread), and those of its children it has waited for. */
async function procCpu(pid: number | 'self'): Promise<{ own: number; children: number }> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  // After the command name in parentheses: field 3 (state) onwards; utime is field 14.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const hz = await clockTicks();
  return { own: (Number(f[11]) + Number(f[12])) / hz, children: (Number(f[13]) + Number(f[14])) / hz };
}

/** Redis's own CPU seconds, from INFO. */
async function redisCpu(port: number): Promise<number> {
  const { stdout } = await run('redis-cli', ['-p', String(port), 'info', 'cpu']);
  const v = (k: string) => Number(new RegExp(`^${k}:(\\S+)`, 'm').exec(stdout)?.[1] ?? 0);
  return v('used_cpu_sys') + v('used_cpu_user');
}

/** A seeding run's last JSON line: its counts (src/seed/runner.ts) and where its manifest is. */
interface DoneLine extends ZoomCounts {
  event: string;
  total: number;
  seconds: number;
  manifest: string;
}

interface SeedRun {
  /** Wall time of the child process, start-up included. */
  seconds: number;
  /** Its CPU time (every thread; the bench's waited-for children's time before and after). */
  cpuSeconds: number;
  done: DoneLine;
  /** Date.now() at spawn and at exit, to set against the tiles' mtimes. */
  spawnedAt: number;
  exitedAt: number;
}

/** `tilegraph seed ARGS` as a child process, timed from spawn to exit; its final JSON line. */
async function seed(deps: SeedBenchDeps, args: string[], env: Record<string, string>): Promise<SeedRun> {
  const cpu0 = (await procCpu('self')).children;
  const spawnedAt = Date.now();
  const t0 = performance.now();
  const { stdout } = await run(process.execPath, [deps.cli, 'seed', ...args], {
    env: { ...process.env, LOG_LEVEL: 'silent', REDIS_URL: '', ...env },
    maxBuffer: 1 << 24,
  });
  const seconds = (performance.now() - t0) / 1000;
  const exitedAt = Date.now();
  const cpuSeconds = (await procCpu('self')).children - cpu0;
  const done = JSON.parse(stdout.trim().split('\n').at(-1)!) as DoneLine;
  if (done.event !== 'done') throw new Error(`tilegraph seed ${args.join(' ')}: ended with ${JSON.stringify(done)}`);
  if (done.failed) throw new Error(`tilegraph seed ${args.join(' ')}: ${done.failed} tiles failed (${done.manifest}.failures.jsonl)`);
  return { seconds, cpuSeconds, done, spawnedAt, exitedAt };
}

/**
 * Where a run's wall time went, from the mtimes of the tiles the run wrote or touched (a --since
 * run leaves the tiles it carries over as they were): spawn to the first tile (start-up, layer,
 * lineage digest, enqueuing), first to last tile, last tile to exit (the last writes, the
 * manifest; a queued run's last poll).
 */
async function phases(root: string, r: SeedRun): Promise<{ toFirstTile: number; tiles: number; afterLastTile: number }> {
  let first = Infinity;
  let last = -Infinity;
  for (const f of await pyramidFiles(root)) {
    const m = (await stat(path.join(root, f))).mtimeMs;
    if (m < r.spawnedAt) continue;
    first = Math.min(first, m);
    last = Math.max(last, m);
  }
  const s = (ms: number) => round(ms / 1000, 2);
  return { toFirstTile: s(first - r.spawnedAt), tiles: s(last - first), afterLastTile: s(r.exitedAt - last) };
}

interface Worker {
  pid: number;
  /** From spawn to "seed worker ready". */
  startSeconds: number;
  stop(): Promise<void>;
}

/** `tilegraph worker` with one render thread, once it has logged "seed worker ready". */
async function startWorker(deps: SeedBenchDeps, env: Record<string, string>): Promise<Worker> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [deps.cli, 'worker'], {
    env: { ...process.env, LAYERS_DIR: deps.data, WORKERS: '1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-8192);
  };
  child.stderr!.on('data', keep);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tilegraph worker was not ready within 60 s: ${out}`)), 60_000);
      const onData = (d: Buffer) => {
        keep(d);
        if (out.includes('seed worker ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`tilegraph worker exited (${code ?? signal}) before it was ready: ${out}`));
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return { pid: child.pid!, startSeconds: (performance.now() - t0) / 1000, stop: deps.stopper(child) };
}

// ---------------------------------------------------------------------------------------
// Pyramids

/** Every file under the zoom folders of a `dir:` pyramid (not its record, manifest or failure log), by relative path. */
async function pyramidFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
      const p = path.join(rel, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  for (const e of await readdir(root, { withFileTypes: true })) if (e.isDirectory() && /^\d+$/.test(e.name)) await walk(e.name);
  return out.sort();
}

interface Comparison {
  same: boolean;
  files: number;
  bytes: number;
  /** A few paths of each kind, when they differ. */
  onlyInA: string[];
  onlyInB: string[];
  differ: string[];
}

/** Whether two pyramids hold the same files with the same bytes. */
async function comparePyramids(a: string, b: string): Promise<Comparison> {
  const [fa, fb] = [await pyramidFiles(a), await pyramidFiles(b)];
  const inB = new Set(fb);
  const inA = new Set(fa);
  const differ: string[] = [];
  let bytes = 0;
  for (const f of fa) {
    if (!inB.has(f)) continue;
    const [x, y] = [await readFile(path.join(a, f)), await readFile(path.join(b, f))];
    bytes += x.length;
    if (!x.equals(y)) differ.push(f);
  }
  const onlyInA = fa.filter((f) => !inB.has(f));
  const onlyInB = fb.filter((f) => !inA.has(f));
  return {
    same: !onlyInA.length && !onlyInB.length && !differ.length,
    files: fa.length,
    bytes,
    onlyInA: onlyInA.slice(0, 5),
    onlyInB: onlyInB.slice(0, 5),
    differ: differ.slice(0, 5),
  };
}

function mismatch(what: string, c: Comparison): Error {
  return new Error(
    `${what} differ: ${c.onlyInA.length ? `only in the first: ${c.onlyInA.join(', ')}; ` : ''}${c.onlyInB.length ? `only in the second: ${c.onlyInB.join(', ')}; ` : ''}${c.differ.length ? `other bytes: ${c.differ.join(', ')}` : ''}`,
  );
}

// ---------------------------------------------------------------------------------------
// Step `queue`

interface QueueRound {
  localSeconds: number;
  queuedSeconds: number;
  ratio: number;
  /** CPU seconds: the local seed; the enqueuing command, the two workers and Redis while the queued run was timed. */
  localCpuSeconds: number;
  queuedCpuSeconds: { enqueuer: number; workers: number; redis: number; total: number };
  /** Jobs each worker counted. */
  jobsByWorker: number[];
  /** Seconds from spawn to "seed worker ready", each worker (not timed). */
  workerStartSeconds: number[];
  /** Where each side's wall time went (see phases()). */
  phases: { local: Awaited<ReturnType<typeof phases>>; queued: Awaited<ReturnType<typeof phases>> };
}

export async function queueVsLocal(deps: SeedBenchDeps): Promise<Scenario> {
  const started = performance.now();
  const redis = await deps.startRedis();
  if (!redis) throw new Error('redis-server is not installed');
  const tmp = await scratchDir('tilegraph-seedqueue-');
  const zoom = `${deps.zooms[0]}-${deps.zooms[1]}`;
  const queueEnv = { REDIS_URL: redis.url, REDIS_PREFIX: `bench-${process.pid}:` };
  const rounds: QueueRound[] = [];
  let last: { local: DoneLine; queued: DoneLine; compared: Comparison; jobs: number } | undefined;
  try {
    for (let r = 0; r < QUEUE_ROUNDS; r++) {
      const localDir = path.join(tmp, `local-${r}`);
      const queuedDir = path.join(tmp, `queued-${r}`);
      const local = await seed(deps, [deps.layer, '--zoom', zoom, '--to', `dir:${localDir}`], { LAYERS_DIR: deps.data, WORKERS: String(THREADS) });

      // Fresh workers for each round: their block caches start cold, as the local seed's does.
      const workers: Worker[] = [];
      let queued: SeedRun;
      let workerCpu: number;
      let redisSeconds: number;
      try {
        for (let w = 0; w < THREADS; w++) workers.push(await startWorker(deps, queueEnv));
        const w0 = await Promise.all(workers.map((w) => procCpu(w.pid)));
        const r0 = await redisCpu(redis.port);
        queued = await seed(deps, [deps.layer, '--zoom', zoom, '--to', `dir:${queuedDir}`, '--queue'], { ...queueEnv, LAYERS_DIR: deps.data, WORKERS: '1' });
        const w1 = await Promise.all(workers.map((w) => procCpu(w.pid)));
        redisSeconds = (await redisCpu(redis.port)) - r0;
        workerCpu = w1.reduce((sum, c, i) => sum + c.own - w0[i]!.own, 0);
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
      }
      const manifest = JSON.parse(await readFile(path.join(queuedDir, 'manifest.json'), 'utf8')) as {
        queue?: { jobs: number; workers: Record<string, number> };
      };
      const compared = await comparePyramids(localDir, queuedDir);
      if (!compared.same) throw mismatch(`round ${r + 1}: the local and the queued pyramids`, compared);
      const round_: QueueRound = {
        localSeconds: round(local.seconds, 2),
        queuedSeconds: round(queued.seconds, 2),
        ratio: round(queued.seconds / local.seconds, 3),
        localCpuSeconds: round(local.cpuSeconds, 2),
        queuedCpuSeconds: {
          enqueuer: round(queued.cpuSeconds, 2),
          workers: round(workerCpu, 2),
          redis: round(redisSeconds, 2),
          total: round(queued.cpuSeconds + workerCpu + redisSeconds, 2),
        },
        jobsByWorker: Object.values(manifest.queue?.workers ?? {}),
        workerStartSeconds: workers.map((w) => round(w.startSeconds, 2)),
        phases: { local: await phases(localDir, local), queued: await phases(queuedDir, queued) },
      };
      rounds.push(round_);
      last = { local: local.done, queued: queued.done, compared, jobs: manifest.queue?.jobs ?? 0 };
      deps.log(
        `  queue round ${r + 1}/${QUEUE_ROUNDS}: local ${round_.localSeconds} s (${round_.localCpuSeconds} s CPU), queued ${round_.queuedSeconds} s (${round_.queuedCpuSeconds.total} s CPU: enqueuer ${round_.queuedCpuSeconds.enqueuer}, workers ${round_.queuedCpuSeconds.workers}, redis ${round_.queuedCpuSeconds.redis}; jobs ${round_.jobsByWorker.join('+')}): ${round_.ratio}x; ${compared.files} identical files; to the first tile / tiles / after the last: local ${Object.values(round_.phases.local).join(' / ')} s, queued ${Object.values(round_.phases.queued).join(' / ')} s`,
      );
    }
  } finally {
    await redis.stop();
  }
  const costRatio = round(median(rounds.map((x) => x.ratio)), 3);
  const cpuRatio = round(median(rounds.map((x) => x.queuedCpuSeconds.total / x.localCpuSeconds)), 3);
  deps.log(`  queue: ${costRatio}x the local seed's wall time (median of ${rounds.length} rounds), ${cpuRatio}x its CPU time`);
  return {
    name: 'tilegraph-seed-queue-vs-local',
    kind: `batch, ${THREADS} render threads: one process, or ${THREADS} workers of one thread each through Redis`,
    what: `tilegraph seed ${deps.layer} --zoom ${zoom} --to dir: (WORKERS=${THREADS}) against the same with --queue and ${THREADS} tilegraph worker processes (WORKERS=1, fresh each round, ready before the clock); a redis-server the bench started; child processes, start-up included; rounds in turn, local first`,
    tiles: { zooms: deps.zooms, total: last!.local.total, rendered: last!.local.rendered, empty: last!.local.empty, files: last!.compared.files },
    jobs: last!.jobs,
    identical: { files: last!.compared.files, bytes: last!.compared.bytes, everyRound: true },
    localSeconds: round(median(rounds.map((x) => x.localSeconds)), 2),
    queuedSeconds: round(median(rounds.map((x) => x.queuedSeconds)), 2),
    rounds,
    reported: 'the median of the rounds: queued seconds / local seconds',
    costRatio,
    cpuCostRatio: cpuRatio,
    stepSeconds: round((performance.now() - started) / 1000),
  };
}

// ---------------------------------------------------------------------------------------
// Step `incremental`

interface GdalInfo {
  size: [number, number];
  geoTransform: [number, number, number, number, number, number];
  coordinateSystem?: { wkt?: string };
  stac?: { 'proj:epsg'?: number | null };
}

interface Patch {
  /** Pixel window of the patch: column, row, width, height. */
  window: [number, number, number, number];
  /** The patch in the DEM's CRS: minX, minY, maxX, maxY. */
  bbox: [number, number, number, number];
  crs: string;
  areaShare: number;
  value: number;
}

/** The DEM's CRS as an OGC URN for GeoJSON's `crs` member. */
function crsName(info: GdalInfo): string {
  const epsg = info.stac?.['proj:epsg'] ?? Number(/ID\["EPSG",(\d+)\]\]\s*$/.exec(info.coordinateSystem?.wkt ?? '')?.[1]);
  if (!epsg) throw new Error("dem.tif: gdalinfo names no EPSG code for its CRS; the patch's GeoJSON needs one");
  return `urn:ogc:def:crs:EPSG::${epsg}`;
}

function patchOf(info: GdalInfo): Patch {
  const [w, h] = info.size;
  const [x0, dx, , y0, , dy] = info.geoTransform;
  const [pw, ph] = [Math.round(w * PATCH_SIDE), Math.round(h * PATCH_SIDE)];
  const [col, row] = [Math.round(w * PATCH_AT[0]), Math.round(h * PATCH_AT[1])];
  const xs = [x0 + col * dx, x0 + (col + pw) * dx];
  const ys = [y0 + row * dy, y0 + (row + ph) * dy];
  return {
    window: [col, row, pw, ph],
    bbox: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)],
    crs: crsName(info),
    areaShare: round((pw * ph) / (w * h), 4),
    value: PATCH_VALUE,
  };
}

/**
 * BENCH_DATA/seed-patch/{base,patched}.tif: dem.tif through a plain GTiff, once as it is and once
 * with the patch burnt in, both written as COGs with dem.tif's options. Made again when dem.tif
 * or the patch changes (stamp.json).
 */
async function patchedPair(deps: SeedBenchDeps): Promise<{ base: string; patched: string; patch: Patch; madeSeconds?: number }> {
  const dem = path.join(deps.data, 'dem.tif');
  const dir = path.join(deps.data, 'seed-patch');
  const base = path.join(dir, 'base.tif');
  const patched = path.join(dir, 'patched.tif');
  const info = JSON.parse((await run('gdalinfo', ['-json', dem], { env: GDAL_ENV, maxBuffer: 1 << 26 })).stdout) as GdalInfo;
  const patch = patchOf(info);
  const s = await stat(dem);
  const stamp = JSON.stringify({ dem: { size: s.size, mtimeMs: s.mtimeMs }, patch, cog: DEM_COG });
  const stampFile = path.join(dir, 'stamp.json');
  if (existsSync(base) && existsSync(patched) && (await readFile(stampFile, 'utf8').catch(() => '')) === stamp) return { base, patched, patch };

  deps.log(`  writing the baseline and the patched DEM (${path.relative(deps.data, dir)}/: gdal_translate, gdal_rasterize, gdal_translate -of COG)`);
  const t0 = performance.now();
  await rm(dir, { recursive: true, force: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    const plain = path.join(tmp, 'plain.tif');
    await run('gdal_translate', ['-q', '-of', 'GTiff', dem, plain], { env: GDAL_ENV });
    await run('gdal_translate', ['-q', ...DEM_COG, plain, path.join(tmp, 'base.tif')], { env: GDAL_ENV });
    const [minX, minY, maxX, maxY] = patch.bbox;
    const geojson = {
      type: 'FeatureCollection',
      name: 'patch',
      crs: { type: 'name', properties: { name: patch.crs } },
      features: [
        {
          type: 'Feature',
          properties: {},
          geometry: {
            type: 'Polygon',
            coordinates: [
              [
                [minX, minY],
                [maxX, minY],
                [maxX, maxY],
                [minX, maxY],
                [minX, minY],
              ],
            ],
          },
        },
      ],
    };
    const vector = path.join(tmp, 'patch.geojson');
    await writeFile(vector, JSON.stringify(geojson));
    await run('gdal_rasterize', ['-q', '-l', 'patch', '-burn', String(patch.value), vector, plain], { env: GDAL_ENV });
    await run('gdal_translate', ['-q', ...DEM_COG, plain, path.join(tmp, 'patched.tif')], { env: GDAL_ENV });
    await rm(plain);
    await writeFile(path.join(tmp, 'stamp.json'), stamp);
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return { base, patched, patch, madeSeconds: round((performance.now() - t0) / 1000) };
}

/** Tiles of each zoom that meet the patch (Web Mercator bbox): what a re-seed cannot avoid rendering. */
function tilesOverPatch(bbox: Patch['bbox'], zooms: [number, number]): Record<string, number> {
  const HALF = 20037508.342789244;
  const out: Record<string, number> = {};
  for (let z = zooms[0]; z <= zooms[1]; z++) {
    const span = (2 * HALF) / 2 ** z;
    const cols = Math.ceil((bbox[2] + HALF) / span) - Math.floor((bbox[0] + HALF) / span);
    const rows = Math.ceil((HALF - bbox[1]) / span) - Math.floor((HALF - bbox[3]) / span);
    out[z] = cols * rows;
  }
  return out;
}

interface ManifestDoc {
  counts: Record<string, { planned: number; rendered: number; empty: number; carried: number }>;
  since?: { reasons: string[]; all: boolean };
  lineage?: { sources?: { digest?: { levels: { width: number; hashes: string }[] } }[] };
}

/** Blocks whose hash differs, level by level, between two manifests' lineage of the first source. */
function changedBlocks(a: ManifestDoc, b: ManifestDoc): { level: number; width: number; blocks: number; changed: number }[] {
  const la = a.lineage?.sources?.[0]?.digest?.levels ?? [];
  const lb = b.lineage?.sources?.[0]?.digest?.levels ?? [];
  return la.map((lv, i) => {
    const other = lb[i]?.hashes ?? '';
    let changed = 0;
    for (let k = 0; k < lv.hashes.length; k += 16) if (lv.hashes.slice(k, k + 16) !== other.slice(k, k + 16)) changed++;
    return { level: i, width: lv.width, blocks: lv.hashes.length / 16, changed };
  });
}

interface IncrementalRound {
  fullSeconds: number;
  incrementalSeconds: number;
  fullPatchedSeconds: number;
  /** Incremental over the mean of the two full seeds around it. */
  ratio: number;
  /** The runs' own `seconds` (rendering and carrying, after start-up, layer loading and the lineage). */
  runSeconds: { full: number; incremental: number; fullPatched: number };
  cpuSeconds: { full: number; incremental: number; fullPatched: number };
  /** Where the wall time of the full seed of the patched DEM and of the incremental one went (see phases()). */
  phases: { fullPatched: Awaited<ReturnType<typeof phases>>; incremental: Awaited<ReturnType<typeof phases>> };
}

/**
 * Over `deps.zooms`, in `rounds` rounds: the step `incremental` takes the bench's zooms, the step
 * `incremental-deep` zooms 10-17, where the pyramid is 58 times larger and the run's fixed costs
 * (start-up, the digest) weigh less.
 */
export async function incrementalReseed(deps: SeedBenchDeps, rounds = INCREMENTAL_ROUNDS): Promise<Scenario> {
  const started = performance.now();
  const pair = await patchedPair(deps);
  const tmp = await scratchDir('tilegraph-incremental-');
  const layers = path.join(tmp, 'layers');
  const zoom = `${deps.zooms[0]}-${deps.zooms[1]}`;
  const env = { LAYERS_DIR: layers, WORKERS: String(deps.cores) };
  const done: IncrementalRound[] = [];
  let last: { incremental: DoneLine; full: DoneLine; compared: Comparison; manifest: ManifestDoc; blocks: ReturnType<typeof changedBlocks> } | undefined;
  try {
    await mkdir(layers);
    // The bench DEM layer as it is (its source is ./dem.tif, next to it).
    await copyFile(path.join(deps.data, `${deps.layer}.yaml`), path.join(layers, `${deps.layer}.yaml`));
    const dem = path.join(layers, 'dem.tif');
    for (let r = 0; r < rounds; r++) {
      const dir = path.join(tmp, `seeded-${r}`);
      const fresh = path.join(tmp, `full-${r}`);
      await copyFile(pair.base, dem);
      const full = await seed(deps, [deps.layer, '--zoom', zoom, '--to', `dir:${dir}`], env);
      const before = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as ManifestDoc;
      // The patched COG over the file: a new size and mtime, and the blocks under the patch.
      await copyFile(pair.patched, dem);
      const incremental = await seed(deps, [deps.layer, '--since', path.join(dir, 'manifest.json')], env);
      const incrementalPhases = await phases(dir, incremental);
      const fullPatched = await seed(deps, [deps.layer, '--zoom', zoom, '--to', `dir:${fresh}`], env);
      const compared = await comparePyramids(dir, fresh);
      if (!compared.same) throw mismatch(`round ${r + 1}: the re-seeded pyramid and a full seed of the patched DEM`, compared);
      const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as ManifestDoc;
      const x: IncrementalRound = {
        fullSeconds: round(full.seconds, 2),
        incrementalSeconds: round(incremental.seconds, 2),
        fullPatchedSeconds: round(fullPatched.seconds, 2),
        ratio: round(incremental.seconds / ((full.seconds + fullPatched.seconds) / 2), 3),
        runSeconds: { full: round(full.done.seconds, 2), incremental: round(incremental.done.seconds, 2), fullPatched: round(fullPatched.done.seconds, 2) },
        cpuSeconds: { full: round(full.cpuSeconds, 2), incremental: round(incremental.cpuSeconds, 2), fullPatched: round(fullPatched.cpuSeconds, 2) },
        phases: { fullPatched: await phases(fresh, fullPatched), incremental: incrementalPhases },
      };
      done.push(x);
      last = { incremental: incremental.done, full: fullPatched.done, compared, manifest, blocks: changedBlocks(before, manifest) };
      deps.log(
        `  incremental z${zoom} round ${r + 1}/${rounds}: full ${x.fullSeconds} s, --since ${x.incrementalSeconds} s (${incremental.done.rendered} rendered, ${incremental.done.empty} empty, ${incremental.done.carried} carried over), full of the patched DEM ${x.fullPatchedSeconds} s: ${x.ratio}x; ${compared.files} identical files; to the first tile / tiles / after the last: full ${Object.values(x.phases.fullPatched).join(' / ')} s, --since ${Object.values(x.phases.incremental).join(' / ')} s`,
      );
    }
  } finally {
    // The pyramids stay until the bench ends (bench/scratch.ts); the layer's copies of the DEM go now.
    await rm(layers, { recursive: true, force: true });
  }
  const costRatio = round(median(done.map((x) => x.ratio)), 3);
  const { incremental, full, manifest } = last!;
  const byZoom = Object.fromEntries(
    Object.entries(manifest.counts).map(([z, c]) => [z, { planned: c.planned, rendered: c.rendered, empty: c.empty, carried: c.carried }]),
  );
  deps.log(`  incremental z${zoom}: ${costRatio}x a full seed's wall time (median of ${done.length} rounds)`);
  return {
    name: `tilegraph-seed-incremental-after-1pct-patch-z${zoom}`,
    kind: `batch, ${deps.cores} render threads`,
    what: `tilegraph seed ${deps.layer} --zoom ${zoom} --to dir: of a baseline COG, the patched COG copied over it, then tilegraph seed ${deps.layer} --since DIR/manifest.json, against full seeds (child processes, start-up, layer loading and the lineage digest included); the ratio is the incremental run over the mean of the two full seeds around it`,
    patch: {
      window: pair.patch.window,
      bbox: pair.patch.bbox.map((v) => round(v, 1)),
      crs: pair.patch.crs,
      areaShare: pair.patch.areaShare,
      burnt: pair.patch.value,
      changedBlocks: last!.blocks,
      tilesOverPatch: tilesOverPatch(pair.patch.bbox, deps.zooms),
    },
    madeSeconds: pair.madeSeconds,
    tiles: {
      zooms: deps.zooms,
      total: incremental.total,
      rendered: incremental.rendered,
      empty: incremental.empty,
      carried: incremental.carried,
      fullRendered: full.rendered,
      byZoom,
    },
    reasons: manifest.since?.reasons,
    identical: { files: last!.compared.files, bytes: last!.compared.bytes, everyRound: true },
    fullSeconds: round(median(done.flatMap((x) => [x.fullSeconds, x.fullPatchedSeconds])), 2),
    incrementalSeconds: round(median(done.map((x) => x.incrementalSeconds)), 2),
    rounds: done,
    reported: 'the median of the rounds: incremental seconds / the mean of the two full seeds around it',
    costRatio,
    stepSeconds: round((performance.now() - started) / 1000),
  };
}
