/**
 * Seeding through the queue (issue 16): `tilegraph seed --queue` and two `tilegraph worker`
 * processes on the tests' own Redis, as an operator runs them. The result is compared byte for
 * byte with a local seed of the same pyramid; a worker is killed with SIGKILL mid-run; a
 * broken source and a worker with another layer version end as failed jobs.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { loadSettings } from '../src/config.js';
import { loadLayer } from '../src/layers/layer.js';
import { findLayerFile } from '../src/layers/registry.js';
import { openRenderer, type Renderer } from '../src/seed/produce.js';
import { outsideRoots, SeedWorker } from '../src/seed/worker.js';
import {
  openQueue,
  QUEUE_NAME,
  queuePrefix,
  readFailures,
  readRun,
  runKeys,
  saveRecord,
  settleLostJobs,
  type RunRecord,
  type SeedJob,
} from '../src/seed/queue.js';
import { CLI } from './helpers/layers.js';
import { makeLayersDir, type TempLayers } from './helpers/http.js';
import { startRedis, type RedisProcess } from './helpers/processes.js';

interface Manifest {
  total: { planned: number; rendered: number; empty: number; skipped: number; carried: number; failed: number };
  queue?: { run: string; jobs: number; workers: Record<string, number> };
  exitCode: number;
}

/** The tests' REDIS_PREFIX: the enqueuing command, the workers and the queue the tests reach into share it. */
const PREFIX = 'queue-test:';

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/** `z/x/y` → bytes of every tile of a pyramid. */
function pyramid(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const z of readdirSync(root).filter((d) => /^\d+$/.test(d)))
    for (const x of readdirSync(path.join(root, z)))
      for (const f of readdirSync(path.join(root, z, x)))
        if (/^\d+\.png$/.test(f)) out.set(`${z}/${x}/${f.slice(0, -4)}`, readFileSync(path.join(root, z, x, f)));
  return out;
}

function assertSamePyramid(a: Map<string, Buffer>, b: Map<string, Buffer>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), 'the same tiles');
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k}: the same bytes`);
}

interface WorkerProcess {
  child: ChildProcess;
  stop(): Promise<void>;
}

/** A `tilegraph worker`, once it says it is ready. */
async function startWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [CLI, 'worker', '--concurrency', '2'], {
    env: { ...process.env, WORKERS: '1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line.includes('seed worker ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${stderr}`)));
  });
  child.stdout!.resume();
  return {
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** `tilegraph seed` in the background, with its JSON lines as they come. */
function startSeed(args: string[], env: Record<string, string>, cwd: string) {
  const child = spawn(process.execPath, [CLI, 'seed', ...args], {
    cwd,
    env: { ...process.env, LOG_LEVEL: 'silent', WORKERS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => events.push(JSON.parse(line) as Record<string, unknown>));
  const exit = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  return { child, events, exit, stderr: () => stderr };
}

function seed(args: string[], env: Record<string, string>, cwd: string) {
  const r = spawnSync(process.execPath, [CLI, 'seed', ...args], {
    cwd,
    env: { ...process.env, LOG_LEVEL: 'silent', WORKERS: '2', ...env },
    encoding: 'utf8',
    timeout: 180_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('tilegraph seed --queue with tilegraph worker', () => {
  let tmp: TempLayers;
  let redis: RedisProcess;
  let env: Record<string, string>;
  /** The whole DEM at zooms 8-13: a few hundred tiles, a few seconds on one render thread. */
  const zooms = ['--zoom', '8-13'];
  let local: Map<string, Buffer>;

  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
    redis = await startRedis();
    // Locks of 1.5 s: a killed worker's jobs go to the other worker within a few seconds.
    env = { LAYERS_DIR: tmp.dir, REDIS_URL: redis.url, REDIS_PREFIX: PREFIX, SEED_LOCK_MS: '1500' };
    const dir = path.join(tmp.root, 'local');
    const r = seed(['dem-relief', ...zooms, '--to', `dir:${dir}`], env, tmp.root);
    assert.equal(r.status, 0, r.stderr);
    local = pyramid(dir);
    assert.ok(local.size > 200, `${local.size} tiles`);
  });
  after(async () => {
    await redis?.stop();
    await tmp?.remove();
  });

  test('two workers render a queued run: every tile written once, the same bytes as a local seed', async () => {
    const workers = [await startWorker(env), await startWorker(env)];
    try {
      const dir = path.join(tmp.root, 'queued');
      const r = seed(['dem-relief', ...zooms, '--to', `dir:${dir}`, '--queue'], env, tmp.root);
      assert.equal(r.status, 0, r.stderr + r.stdout);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { event: string; run?: string });
      assert.equal(lines[0]!.event, 'queued');
      const manifest = readJson<Manifest>(path.join(dir, 'manifest.json'));
      assert.equal(manifest.exitCode, 0);
      const { planned, rendered, empty, skipped, failed } = manifest.total;
      assert.deepEqual({ skipped, failed }, { skipped: 0, failed: 0 });
      assert.equal(rendered + empty, planned);
      const tiles = pyramid(dir);
      assert.equal(tiles.size, rendered, 'one file per rendered tile: none written twice over another');
      assertSamePyramid(tiles, local);
      assert.equal(manifest.queue!.run, lines[0]!.run);
      const perWorker = Object.values(manifest.queue!.workers);
      assert.equal(perWorker.length, 2, `both workers took jobs: ${JSON.stringify(manifest.queue!.workers)}`);
      assert.equal(
        perWorker.reduce((a, b) => a + b, 0),
        manifest.queue!.jobs,
      );

      // --status from anywhere: the finished run and its counts.
      const status = spawnSync(process.execPath, [CLI, 'seed', '--status', manifest.queue!.run], { env: { ...process.env, ...env }, encoding: 'utf8' });
      assert.equal(status.status, 0, status.stderr);
      const s = JSON.parse(status.stdout) as { state: string; tiles: { done: number; rendered: number }; jobs: { done: number } };
      assert.equal(s.state, 'done');
      assert.equal(s.tiles.done, planned);
      assert.equal(s.tiles.rendered, rendered);
      assert.equal(s.jobs.done, manifest.queue!.jobs);
      const unknown = spawnSync(process.execPath, [CLI, 'seed', '--status', 'no-such-run'], { env: { ...process.env, ...env }, encoding: 'utf8' });
      assert.equal(unknown.status, 1);
      assert.match(unknown.stderr, /--status no-such-run: no such run/);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });

  test('a worker killed with SIGKILL mid-run: the other takes over its jobs, and the pyramid is whole', async () => {
    const a = await startWorker(env);
    const b = await startWorker(env);
    try {
      const dir = path.join(tmp.root, 'killed');
      const run = startSeed(['dem-relief', ...zooms, '--to', `dir:${dir}`, '--queue'], env, tmp.root);
      // Once tiles are coming in, worker A dies with jobs in hand.
      const deadline = Date.now() + 60_000;
      while (!run.events.some((e) => e.event === 'progress' && (e.done as number) > 0) && Date.now() < deadline && run.child.exitCode === null)
        await new Promise((r) => setTimeout(r, 20));
      a.child.kill('SIGKILL');
      const code = await run.exit;
      assert.equal(code, 0, run.stderr());
      const manifest = readJson<Manifest>(path.join(dir, 'manifest.json'));
      const { planned, rendered, empty, skipped, failed } = manifest.total;
      assert.equal(failed, 0);
      // A tile the killed worker stored before it died is found there (skipped) when its job is done again.
      assert.equal(rendered + empty + skipped, planned);
      assertSamePyramid(pyramid(dir), local);
      assert.ok(Object.keys(manifest.queue!.workers).length >= 1);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('a broken source: failed tiles end as failed jobs with their error; --max-failures sets the exit code', async () => {
    const layers = await makeLayersDir(['dem-relief']);
    const cog = path.join(layers.dir, 'data/srtm_jasper_ab_100m.tif');
    truncateSync(cog, Math.floor(statSync(cog).size * 0.8));
    const e = { ...env, LAYERS_DIR: layers.dir, REDIS_PREFIX: 'queue-broken:' };
    const worker = await startWorker(e);
    try {
      const dir = path.join(layers.root, 'out');
      const strict = seed(['dem-relief', '--zoom', '12', '--to', `dir:${dir}`, '--queue', '--retries', '0'], e, layers.root);
      assert.equal(strict.status, 1, strict.stdout + strict.stderr);
      const manifest = readJson<Manifest>(path.join(dir, 'manifest.json'));
      assert.ok(manifest.total.failed > 0 && manifest.total.rendered > 0, JSON.stringify(manifest.total));
      const log = readFileSync(path.join(dir, 'manifest.json.failures.jsonl'), 'utf8').trim().split('\n');
      assert.equal(log.length, manifest.total.failed);
      for (const line of log)
        assert.match((JSON.parse(line) as { error: string }).error, /srtm_jasper_ab_100m\.tif: block \d+ of image \d+ at byte \d+ is truncated/);
      const status = JSON.parse(
        spawnSync(process.execPath, [CLI, 'seed', '--status', manifest.queue!.run], { env: { ...process.env, ...e }, encoding: 'utf8' }).stdout,
      ) as { queue: { failed: number } };
      assert.ok(status.queue.failed > 0, 'BullMQ keeps the failed jobs');
      const lenient = seed(['dem-relief', '--zoom', '12', '--to', `dir:${dir}`, '--queue', '--retries', '0', '--max-failures', '100'], e, layers.root);
      assert.equal(lenient.status, 0, lenient.stdout + lenient.stderr);
    } finally {
      await worker.stop();
      await layers.remove();
    }
  });

  test('a worker whose layer differs refuses the jobs, naming both versions; the run ends as failed', async () => {
    const other = await makeLayersDir(['dem-relief']);
    const file = path.join(other.dir, 'dem-relief.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^title: .*$/m, 'title: Another title'));
    const worker = await startWorker({ ...env, LAYERS_DIR: other.dir, REDIS_PREFIX: 'queue-other:' });
    try {
      const dir = path.join(tmp.root, 'refused');
      const r = seed(['dem-relief', '--zoom', '8-9', '--to', `dir:${dir}`, '--queue'], { ...env, REDIS_PREFIX: 'queue-other:' }, tmp.root);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      const manifest = readJson<Manifest>(path.join(dir, 'manifest.json'));
      assert.equal(manifest.total.failed, manifest.total.planned);
      const first = JSON.parse(readFileSync(path.join(dir, 'manifest.json.failures.jsonl'), 'utf8').split('\n')[0]!) as { error: string };
      assert.match(first.error, /layer 'dem-relief' is version \w+ on .*, the run was queued for version \w+/);
    } finally {
      await worker.stop();
      await other.remove();
    }
  });

  test('tried as a hostile client would: jobs put on the queue by hand fail for good, naming what is wrong; nothing outside the target is touched', async () => {
    // A worker that writes only under the tests' directory; a directory outside it, and a link to there inside it.
    const outside = mkdtempSync(path.join(tmpdir(), 'tilegraph-outside-'));
    const link = path.join(tmp.root, 'link-out');
    symlinkSync(outside, link);
    const worker = await startWorker({ ...env, SEED_ROOTS: tmp.root });
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = openQueue(connection, PREFIX);
    try {
      const root = path.join(tmp.root, 'crafted');
      const dir = path.join(root, 'tiles');
      // A file that a tile path climbing out of the target (9/../../victim/0.png) would name, older than the run.
      const victim = path.join(root, 'victim', '0.png');
      mkdirSync(path.dirname(victim), { recursive: true });
      writeFileSync(victim, 'not a tile');
      utimesSync(victim, new Date(2020, 0, 1), new Date(2020, 0, 1));
      const r = seed(['dem-relief', '--zoom', '8-9', '--to', `dir:${dir}`, '--queue'], env, tmp.root);
      assert.equal(r.status, 0, r.stderr + r.stdout);
      const run = (JSON.parse(r.stdout.split('\n')[0]!) as { run: string }).run;
      const tiles = pyramid(dir);

      const crafted: [string, unknown, RegExp][] = [
        ['a path for x', { run, n: 0, z: 9, xy: ['../../victim', 0] }, /not a job that seed --queue writes: xy: expected whole numbers from 0 to 511/],
        ['a negative x', { run, n: 1, z: 9, xy: [-1, 0] }, /not a job that seed --queue writes: xy: expected whole numbers from 0 to 511/],
        ['a zoom the run has not', { run, n: 2, z: 20, xy: [0, 0] }, /not a job that seed --queue writes: z 20: the run seeds zooms 8, 9/],
        [
          'an ordinal past the run',
          { run, n: 2 ** 40, z: 9, xy: [0, 0] },
          /not a job that seed --queue writes: n 1099511627776: expected a whole number from 0 to \d+/,
        ],
        [
          'a stale index past the tiles',
          { run, n: 3, z: 9, xy: [100, 100], stale: [5] },
          /not a job that seed --queue writes: stale: expected indices from 0 to 0/,
        ],
        ['too many tiles', { run, n: 4, z: 9, xy: Array.from({ length: 130 }, () => 1) }, /not a job that seed --queue writes: xy: expected 1 to 64 tiles/],
        ['no run', { n: 0, z: 9, xy: [0, 0] }, /not a job that seed --queue writes: not a job of a run/],
        ['a run whose record is not JSON', { run: 'bad-record-1', n: 0, z: 9, xy: [0, 0] }, /its record in Redis is not one that seed --queue writes/],
        [
          'a run whose record has a relative target',
          { run: 'bad-record-2', n: 0, z: 9, xy: [0, 0] },
          /its record in Redis is not one that seed --queue writes \(target: expected cache or dir:\/absolute\/path\)/,
        ],
        ['a run into a directory outside SEED_ROOTS', { run: 'bad-record-3', n: 0, z: 9, xy: [0, 0] }, /its target dir:\S+ lies in \S+, outside SEED_ROOTS/],
        [
          'a run through a link that leads outside SEED_ROOTS',
          { run: 'bad-record-4', n: 0, z: 9, xy: [0, 0] },
          /its target dir:\S+\/link-out\/tiles lies in \S+\/tilegraph-outside-\w+\/tiles, outside SEED_ROOTS/,
        ],
      ];
      await connection.set(runKeys(PREFIX, 'bad-record-1').record, 'not json');
      // The run's own record, but with a target no enqueuing command writes.
      const own = JSON.parse((await connection.get(runKeys(PREFIX, run).record))!) as RunRecord;
      await connection.set(runKeys(PREFIX, 'bad-record-2').record, JSON.stringify({ ...own, id: 'bad-record-2', target: 'dir:../escape' }));
      await connection.set(
        runKeys(PREFIX, 'bad-record-3').record,
        JSON.stringify({ ...own, id: 'bad-record-3', target: `dir:${path.join(outside, 'tiles')}` }),
      );
      await connection.set(runKeys(PREFIX, 'bad-record-4').record, JSON.stringify({ ...own, id: 'bad-record-4', target: `dir:${path.join(link, 'tiles')}` }));
      const jobs = await Promise.all(crafted.map(([name, data], k) => queue.add(name, data as never, { jobId: `crafted-${k}`, attempts: 3 })));
      for (const [k, job] of jobs.entries()) {
        const [name, , reason] = crafted[k]!;
        let state = await job.getState();
        for (let i = 0; i < 200 && state !== 'failed' && state !== 'completed'; i++) {
          await sleep(50);
          state = await job.getState();
        }
        const done = (await queue.getJob(job.id!))!;
        assert.equal(state, 'failed', `${name}: failed`);
        assert.match(done.failedReason, reason, `${name}: ${done.failedReason}`);
        assert.equal(done.attemptsMade, 1, `${name}: not tried again`);
      }
      assert.equal(readFileSync(victim, 'utf8'), 'not a tile', 'the file beside the target is untouched');
      assert.deepEqual(readdirSync(outside), [], 'nothing written outside SEED_ROOTS');
      assert.deepEqual(readdirSync(root).sort(), ['tiles', 'victim']);
      assertSamePyramid(pyramid(dir), tiles);
      assert.ok(!existsSync(path.join(dir, '9', '-1')), 'no directory for a negative x');
      const status = spawnSync(process.execPath, [CLI, 'seed', '--status', 'bad-record-2'], { env: { ...process.env, ...env }, encoding: 'utf8' });
      assert.equal(status.status, 1);
      assert.match(
        status.stderr,
        /run bad-record-2: its record in Redis is not one that seed --queue writes \(target: expected cache or dir:\/absolute\/path\)/,
      );

      // The worker goes on with the next run.
      const next = path.join(tmp.root, 'after-crafted');
      const again = seed(['dem-relief', '--zoom', '8-8', '--to', `dir:${next}`, '--queue'], env, tmp.root);
      assert.equal(again.status, 0, again.stderr + again.stdout);
      assert.ok(pyramid(next).size > 0);
    } finally {
      await queue.close();
      connection.disconnect();
      await worker.stop();
      rmSync(link);
      rmSync(outside, { recursive: true, force: true });
    }
  });

  test('SEED_ROOTS: a dir: target inside a root, links resolved, as far as its path exists; the cache, or no roots, anywhere', () => {
    const base = mkdtempSync(path.join(tmpdir(), 'tilegraph-roots-'));
    try {
      const root = path.join(base, 'seeds');
      mkdirSync(path.join(root, 'made'), { recursive: true });
      mkdirSync(path.join(base, 'other'));
      symlinkSync(path.join(base, 'other'), path.join(root, 'out'));
      symlinkSync(root, path.join(base, 'alias'));
      const inside = [root, path.join(root, 'made', 'tiles'), path.join(root, 'not', 'yet', 'made'), path.join(root, '..x'), path.join(base, 'alias', 'tiles')];
      for (const dir of inside) assert.equal(outsideRoots(`dir:${dir}`, [root]), undefined, dir);
      const outsides: [string, string][] = [
        [path.join(base, 'seeds-2'), path.join(base, 'seeds-2')],
        [`${root}/../other/tiles`, path.join(base, 'other', 'tiles')],
        [path.join(root, 'out', 'tiles'), path.join(base, 'other', 'tiles')],
        ['/', '/'],
      ];
      for (const [dir, place] of outsides) assert.equal(outsideRoots(`dir:${dir}`, [root]), `lies in ${place}, outside SEED_ROOTS (${root})`, dir);
      // A second root admits what the first does not; the cache and an empty list admit anything.
      assert.equal(outsideRoots(`dir:${path.join(root, 'out', 'tiles')}`, [root, path.join(base, 'other')]), undefined);
      assert.equal(outsideRoots('cache', [root]), undefined);
      assert.equal(outsideRoots('dir:/anywhere', []), undefined);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  test('a lost job whose data is not a job counts as failed, without tiles; the run is still settled whole', async () => {
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = openQueue(connection, PREFIX);
    const id = 'lost-run';
    const record: RunRecord = {
      id,
      layer: 'dem-relief',
      version: 'v',
      target: `dir:${path.join(tmp.root, 'lost')}`,
      format: 'png',
      force: false,
      retries: 0,
      planned: { '9': 2 },
      total: 2,
      jobs: 2,
      enqueued: true,
      createdAt: new Date().toISOString(),
      manifest: path.join(tmp.root, 'lost.json'),
    };
    // Both jobs fail for good, as a refusing worker fails them; the first holds something else than a job.
    const refuser = new Worker(QUEUE_NAME, () => Promise.reject(new UnrecoverableError('refused')), { connection, prefix: queuePrefix(PREFIX) });
    try {
      await saveRecord(connection, PREFIX, record);
      await queue.add('lost', 'not a job' as never, { jobId: `${id}-0` });
      await queue.add('lost', { run: id, n: 1, z: 9, xy: [100, 200] }, { jobId: `${id}-1` });
      for (let i = 0; i < 200 && (await queue.getJobCounts('failed')).failed < 2; i++) await sleep(50);
      await refuser.close();
      assert.equal(await settleLostJobs(queue, connection, PREFIX, record), 2);
      const state = (await readRun(connection, PREFIX, id))!;
      assert.equal(state.jobsDone, 2, 'both jobs counted');
      assert.equal(state.total.failed, 1, "the job's one tile failed; the other holds none");
      assert.deepEqual(
        (await readFailures(connection, PREFIX, id)).map((f) => (JSON.parse(f) as { tile: string }).tile),
        ['9/100/200'],
      );
    } finally {
      await refuser.close();
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    }
  });

  // Before: the job failed as soon as one of its render lanes met the full target, and BullMQ
  // was told so, while its other lanes went on rendering behind the failure (and a retry).
  test('a job whose target fills up fails once its tiles in flight have finished, saying the target is full', async () => {
    const full = await startRedis();
    const client = new Redis(full.url, { maxRetriesPerRequest: 1 });
    const settings = loadSettings({ ...process.env, ...env, REDIS_URL: full.url, WORKERS: '1', LOG_LEVEL: 'silent' });
    const real = openRenderer(settings);
    // The job's tiles rendering at any moment, through the worker's own renderer.
    let rendering = 0;
    const counted =
      <A extends unknown[], R>(render: (...a: A) => Promise<R>) =>
      async (...a: A): Promise<R> => {
        rendering++;
        try {
          return await render(...a);
        } finally {
          rendering--;
        }
      };
    const renderer: Renderer = { ...real, producer: (l, f) => counted(real.producer(l, f)), many: (l, f) => counted(real.many(l, f)) };
    const seeds = new SeedWorker(settings, client, renderer);
    try {
      const layer = await loadLayer(findLayerFile(tmp.dir, 'dem-relief'), { layersDir: tmp.dir, allowedHosts: [] });
      // 64 tiles with data, one by one (metatile 1), four at a time.
      const z = 13;
      const tiles = [...local.keys()].filter((k) => k.startsWith(`${z}/`)).slice(0, 64);
      assert.equal(tiles.length, 64);
      const record: RunRecord = {
        id: 'full-run',
        layer: 'dem-relief',
        version: layer.version,
        target: 'cache',
        format: 'png',
        force: false,
        retries: 0,
        metatile: 1,
        planned: { [z]: tiles.length },
        total: tiles.length,
        jobs: 1,
        enqueued: true,
        createdAt: new Date().toISOString(),
        manifest: path.join(tmp.root, 'full-run.json'),
      };
      await saveRecord(client, PREFIX, record);
      // Room for a few tiles, then every write is refused ("OOM command not allowed").
      const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
      await client.config('SET', 'maxmemory-policy', 'noeviction');
      await client.config('SET', 'maxmemory', String(used + 100 * 1024));
      const xy = tiles.flatMap((k) => k.split('/').slice(1).map(Number));
      const job = { id: 'full-run-0', data: { run: record.id, n: 0, z, xy } } as unknown as Job<SeedJob>;
      await assert.rejects(seeds.process(job), (err: Error) => {
        assert.match(err.message, /^storing tile 13\/\d+\/\d+: Redis is full: OOM /);
        assert.equal(rendering, 0, 'no tile of the failed job is still rendering');
        return true;
      });
      assert.ok((await client.dbsize()) > 1, 'tiles were stored before Redis filled');
    } finally {
      await seeds.close();
      await real.close();
      client.disconnect();
      await full.stop();
    }
  });

  test('refuses what a queued run cannot do, with the reason', () => {
    const mb = seed(['dem-relief', ...zooms, '--to', `mbtiles:${path.join(tmp.root, 'x.mbtiles')}`, '--queue'], env, tmp.root);
    assert.equal(mb.status, 1);
    assert.match(mb.stderr, /an MBTiles file takes one writer/);
    const noRedis = seed(['dem-relief', ...zooms, '--to', `dir:${path.join(tmp.root, 'x')}`, '--queue'], { ...env, REDIS_URL: '' }, tmp.root);
    assert.equal(noRedis.status, 1);
    assert.match(noRedis.stderr, /--queue needs REDIS_URL/);
  });
});
