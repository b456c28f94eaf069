/**
 * `tilegraph seed` as an operator runs it, a child process on the shipped DEM: into Redis
 * (then a server answers hit-l2 for every seeded tile), into a directory and an MBTiles file
 * (the same bytes as the server's tiles; GDAL opens them), sharded, killed and resumed, and
 * with a source that fails part of the way.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { CLI, GDAL_ENV } from './helpers/layers.js';
import { bboxTiles, makeLayersDir, request, tilePath, type TempLayers, type Tile } from './helpers/http.js';
import { startRedis, startServerProcess, type RedisProcess } from './helpers/processes.js';

/** A corner of the Jasper DEM: zooms 10-12 hold a handful of tiles each. */
const BBOX = [-117.6, 53.15, -117.4, 53.3] as const;

const tilesOf = (z: number): Tile[] => bboxTiles(BBOX, z);

function seed(args: string[], env: Record<string, string>, cwd: string) {
  const r = spawnSync(process.execPath, [CLI, 'seed', ...args], {
    cwd,
    env: { ...process.env, LOG_LEVEL: 'silent', WORKERS: '2', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Manifest {
  layer: { name: string; version: string; configHash: string };
  sources: { name: string; version: string }[];
  total: { planned: number; rendered: number; empty: number; skipped: number; failed: number; bytes: number };
  counts: Record<string, { planned: number; rendered: number; empty: number; skipped: number; failed: number }>;
  exitCode: number;
  interrupted: boolean;
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/** Tiles of a z/x/y pyramid, as `z/x/y`: `y.png` files only (a killed run may leave a hidden temporary file, never a tile). */
function pyramidFiles(root: string): string[] {
  const out: string[] = [];
  for (const z of readdirSync(root).filter((d) => /^\d+$/.test(d)))
    for (const x of readdirSync(path.join(root, z)))
      for (const f of readdirSync(path.join(root, z, x))) if (/^\d+\.png$/.test(f)) out.push(`${z}/${x}/${f.slice(0, -4)}`);
  return out.sort();
}

describe('tilegraph seed', () => {
  let tmp: TempLayers;
  let redis: RedisProcess;
  let env: Record<string, string>;
  const bbox = BBOX.join(',');

  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
    redis = await startRedis();
    env = { LAYERS_DIR: tmp.dir, REDIS_URL: redis.url, REDIS_PREFIX: 'seed-test:' };
  });
  after(async () => {
    await redis?.stop();
    await tmp?.remove();
  });

  test('--dry-run counts the tiles per zoom as a hand computation does, and shards add up', () => {
    const r = seed(['dem-relief', '--zoom', '10-12', '--bbox', bbox, '--dry-run'], env, tmp.root);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    for (const z of [10, 11, 12]) assert.ok(lines.includes(`zoom ${z}: ${tilesOf(z).length} tiles`), `${r.stdout}`);
    const total = [10, 11, 12].reduce((n, z) => n + tilesOf(z).length, 0);
    assert.equal(lines.at(-1), `total ${total} tiles`);
    assert.match(r.stdout, /^estimate: about \d+ s on 2 render thread\(s\) and [\d.]+ MB, from a sample of \d+ tiles$/m);
    const shards = [0, 1, 2].map((i) => seed(['dem-relief', '--zoom', '10-12', '--bbox', bbox, '--shard', `${i}/3`, '--dry-run'], env, tmp.root));
    const sizes = shards.map((s) => Number(/^total (\d+) tiles$/m.exec(s.stdout)![1]));
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      total,
    );
    // An empty or hexadecimal field is no coordinate (Number() reads them as 0 and 53).
    for (const box of ['-117.8,,-117.3,53.35', '-117.8,53.1,-117.3,0x35']) {
      const refused = seed(['dem-relief', '--zoom', '10-12', '--bbox', box, '--dry-run'], env, tmp.root);
      assert.equal(refused.status, 1, refused.stdout);
      assert.match(refused.stderr, /--bbox .*expected four decimal numbers W,S,E,N/);
    }
  });

  test('--to cache: a server then answers hit-l2 for every seeded tile', async () => {
    const r = seed(['dem-relief', '--zoom', '10-12', '--bbox', bbox], env, tmp.root);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { event: string; rendered: number; empty: number; failed: number; manifest: string };
    assert.equal(done.event, 'done');
    assert.equal(done.failed, 0);
    const manifest = readJson<Manifest>(done.manifest);
    assert.equal(manifest.total.planned, done.rendered + done.empty);
    const server = await startServerProcess(tmp.dir, { REDIS_URL: redis.url, REDIS_PREFIX: 'seed-test:' });
    try {
      for (const z of [10, 11, 12]) {
        for (const t of tilesOf(z)) {
          const a = await request(server.url, tilePath('dem-relief', t));
          assert.equal(a.headers['x-cache'], 'hit-l2', `${t.join('/')}: ${a.status}`);
        }
      }
    } finally {
      await server.stop();
    }
    // A second run finds everything there.
    const again = seed(['dem-relief', '--zoom', '10-12', '--bbox', bbox], env, tmp.root);
    const summary = JSON.parse(again.stdout.trim().split('\n').at(-1)!) as { rendered: number; skipped: number };
    assert.deepEqual([summary.rendered, summary.skipped], [0, manifest.total.planned]);
  });

  test('a manifest or failure log path that is a FIFO is refused before the run and left as it was', () => {
    // A FIFO stands for any file that is not a regular one (as root, --manifest /dev/null replaced the device).
    for (const [fifo, manifest] of [
      ['fifo.manifest.json', 'fifo.manifest.json'],
      ['log.manifest.json.failures.jsonl', 'log.manifest.json'],
    ]) {
      const file = path.join(tmp.root, fifo);
      spawnSync('mkfifo', [file]);
      const r = seed(['dem-relief', '--zoom', '10', '--bbox', bbox, '--to', `dir:${path.join(tmp.root, 'fifo-run')}`, '--manifest', manifest], env, tmp.root);
      assert.equal(r.status, 1, r.stderr + r.stdout);
      assert.match(r.stderr, new RegExp(`${file}: exists and is not a regular file; the run writes its (manifest|failure log) there`));
      assert.ok(lstatSync(file).isFIFO(), `${fifo} is still a FIFO`);
    }
    assert.ok(!existsSync(path.join(tmp.root, 'fifo-run')), 'nothing written');
  });

  test('--to dir and --to mbtiles hold the bytes the server serves; GDAL opens both', async () => {
    const dir = path.join(tmp.root, 'pyramid');
    const mbtiles = path.join(tmp.root, 'dem.mbtiles');
    const d = seed(['dem-relief', '--zoom', '10-11', '--bbox', bbox, '--to', `dir:${dir}`], env, tmp.root);
    assert.equal(d.status, 0, d.stderr + d.stdout);
    const m = seed(['dem-relief', '--zoom', '10-11', '--bbox', bbox, '--to', `mbtiles:${mbtiles}`], env, tmp.root);
    assert.equal(m.status, 0, m.stderr + m.stdout);
    const manifest = readJson<Manifest>(path.join(dir, 'manifest.json'));
    assert.equal(pyramidFiles(dir).length, manifest.total.rendered);
    const db = new Database(mbtiles, { readonly: true });
    const server = await startServerProcess(tmp.dir);
    try {
      for (const t of [...tilesOf(10), ...tilesOf(11)]) {
        const served = await request(server.url, tilePath('dem-relief', t));
        const file = path.join(dir, `${t[0]}/${t[1]}/${t[2]}.png`);
        const row = db
          .prepare('SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?')
          .get(t[0], t[1], 2 ** t[0] - 1 - t[2]) as { tile_data: Buffer } | undefined;
        if (served.status === 204) {
          assert.ok(!existsSync(file) && !row, `${t.join('/')} is empty: not stored`);
          continue;
        }
        assert.ok(readFileSync(file).equals(served.body), `${t.join('/')}: the directory holds the server's bytes`);
        assert.ok(row && Buffer.from(row.tile_data).equals(served.body), `${t.join('/')}: the MBTiles file holds the server's bytes`);
      }
    } finally {
      db.close();
      await server.stop();
    }
    const info = spawnSync('gdalinfo', [mbtiles], { encoding: 'utf8', env: GDAL_ENV });
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stdout, /Driver: MBTiles/);
    const xml = path.join(tmp.root, 'pyramid.xml');
    writeFileSync(
      xml,
      `<GDAL_WMS><Service name="TMS"><ServerUrl>file://${dir}/\${z}/\${x}/\${y}.png</ServerUrl></Service><DataWindow><UpperLeftX>-20037508.34</UpperLeftX><UpperLeftY>20037508.34</UpperLeftY><LowerRightX>20037508.34</LowerRightX><LowerRightY>-20037508.34</LowerRightY><TileLevel>11</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY><YOrigin>top</YOrigin></DataWindow><Projection>EPSG:3857</Projection><BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY><BandsCount>4</BandsCount></GDAL_WMS>`,
    );
    assert.equal(spawnSync('gdalinfo', [xml], { encoding: 'utf8', env: GDAL_ENV }).status, 0, 'GDAL opens the directory as a TMS pyramid');
  });

  test('a run killed with SIGKILL and resumed stores every tile, none rendered twice', async () => {
    const dir = path.join(tmp.root, 'killed');
    const args = ['dem-relief', '--zoom', '10-14', '--to', `dir:${dir}`, '--concurrency', '2'];
    const child = spawn(process.execPath, [CLI, 'seed', ...args], {
      cwd: tmp.root,
      env: { ...process.env, LOG_LEVEL: 'silent', WORKERS: '1', ...env },
      stdio: 'ignore',
    });
    const progress = path.join(dir, 'manifest.json.progress');
    const deadline = Date.now() + 60_000;
    while (!(existsSync(progress) && (readJson<{ doneBefore: number }>(progress).doneBefore ?? 0) >= 1)) {
      if (Date.now() > deadline || child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(!existsSync(path.join(dir, 'manifest.json')), 'the killed run wrote no manifest');
    const before = pyramidFiles(dir);
    assert.ok(before.length > 0, 'the killed run stored some tiles');

    const resumed = seed([...args, '--resume'], env, tmp.root);
    assert.equal(resumed.status, 0, resumed.stderr + resumed.stdout);
    const manifest = readJson<Manifest>(path.join(dir, 'manifest.json'));
    const after = pyramidFiles(dir);
    assert.equal(after.length, manifest.total.planned - manifest.total.empty - manifest.total.failed, 'every tile with data is there');
    assert.equal(manifest.total.rendered, after.length - before.length, 'the resumed run rendered only what the killed one had not stored');
    assert.equal(manifest.total.rendered + manifest.total.empty + manifest.total.skipped, manifest.total.planned);
    // Written atomically: a kill never leaves half a tile under a tile's name.
    for (const f of after)
      assert.equal(
        readFileSync(path.join(dir, `${f}.png`))
          .subarray(-8, -4)
          .toString('latin1'),
        'IEND',
        `${f} is a whole PNG`,
      );

    const other = seed(['dem-relief', '--zoom', '10-12', '--to', `dir:${dir}`, '--resume'], env, tmp.root);
    assert.notEqual(other.status, 0);
    assert.match(other.stderr, /--resume: no progress file|is of another run/);
  });

  // Tried as an operator whose disk fills up: the run died of an unhandled rejection (Node's
  // stack trace) when its progress file could not be written, leaving the temporary file; with
  // the progress file on another disk, every later tile failed its retries, then the failure
  // log could not be written either.
  test('a target whose file system fills up stops the run with one line saying so; with room again, the run goes on and stores every tile', async (t) => {
    const disk = path.join(tmp.root, 'full');
    mkdirSync(disk);
    const mount = (options: string) => spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', disk], { encoding: 'utf8' });
    if (mount('size=256k').status !== 0) return t.skip('needs root to mount a small tmpfs (a file system that fills up)');
    try {
      const hidden = (root: string) => readdirSync(root, { recursive: true }).filter((f) => String(f).endsWith('.tmp'));
      const refused = (r: { status: number | null; stderr: string }, what: string) => {
        assert.equal(r.status, 1, `${what}: ${r.stderr}`);
        assert.match(r.stderr, /^tilegraph: the run stopped: .*no space left on device.*; .*run the same command/, what);
        assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line, no stack: ${r.stderr}`);
      };
      const complete = (dir: string, manifestFile: string) => {
        const manifest = readJson<Manifest>(manifestFile);
        assert.equal(manifest.total.failed, 0);
        assert.equal(pyramidFiles(dir).length, manifest.total.planned - manifest.total.empty, 'every tile with data is there');
        assert.deepEqual(hidden(dir), []);
      };
      const zooms = ['--zoom', '10-13', '--bbox', bbox];

      // The tiles on the full disk, the progress file on another: the tile that does not fit stops the run.
      const tiles = path.join(disk, 'a');
      const manifest = path.join(tmp.root, 'full-a.json');
      const args = ['dem-relief', ...zooms, '--to', `dir:${tiles}`, '--manifest', manifest];
      refused(seed(args, env, tmp.root), 'tiles');
      assert.ok(existsSync(`${manifest}.progress`), 'the progress file stays for --resume');
      assert.ok(!existsSync(manifest), 'no manifest: the run did not finish');
      assert.deepEqual(hidden(tiles), [], 'no temporary file left on the full disk');
      const stored = pyramidFiles(tiles).length;
      assert.ok(stored > 0, 'some tiles were stored before the disk filled');
      assert.equal(mount('remount,size=64m').status, 0);
      const resumed = seed([...args, '--resume'], env, tmp.root);
      assert.equal(resumed.status, 0, resumed.stderr);
      complete(tiles, manifest);
      assert.equal(readJson<Manifest>(manifest).total.skipped, stored, 'the resumed run skipped what the first one stored');

      // Everything on the full disk, the progress file too.
      rmSync(tiles, { recursive: true });
      assert.equal(mount('remount,size=256k').status, 0);
      const all = path.join(disk, 'b');
      const again = ['dem-relief', ...zooms, '--to', `dir:${all}`];
      refused(seed(again, env, tmp.root), 'tiles and progress');
      assert.deepEqual(hidden(all), [], 'no temporary file left on the full disk');
      assert.equal(mount('remount,size=64m').status, 0);
      const progress = existsSync(path.join(all, 'manifest.json.progress'));
      const finished = seed(progress ? [...again, '--resume'] : again, env, tmp.root);
      assert.equal(finished.status, 0, finished.stderr);
      complete(all, path.join(all, 'manifest.json'));
    } finally {
      spawnSync('umount', [disk]);
    }
  });

  // The same with Redis past its maxmemory and nothing it may evict: every later tile failed
  // its retries, each answered "OOM command not allowed", and the run went on to the end.
  test('--to cache with Redis full stops the run with one line saying so; with room again, --resume stores every tile', async () => {
    const full = await startRedis();
    const client = new Redis(full.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
      await client.config('SET', 'maxmemory-policy', 'noeviction');
      await client.config('SET', 'maxmemory', String(used + 320 * 1024));
      const e = { ...env, REDIS_URL: full.url, REDIS_PREFIX: 'full:' };
      const manifest = path.join(tmp.root, 'full-redis.json');
      const args = ['dem-relief', '--zoom', '10-13', '--bbox', bbox, '--manifest', manifest];
      const r = seed(args, e, tmp.root);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /^tilegraph: the run stopped: storing tile \d+\/\d+\/\d+: Redis is full: OOM .*; .*--resume\n$/);
      assert.ok(existsSync(`${manifest}.progress`) && !existsSync(manifest));
      const stored = await client.dbsize();
      assert.ok(stored > 0, 'some tiles were stored before Redis filled');
      await client.config('SET', 'maxmemory', '0');
      const resumed = seed([...args, '--resume'], e, tmp.root);
      assert.equal(resumed.status, 0, resumed.stderr);
      const done = readJson<Manifest>(manifest);
      assert.equal(done.total.failed, 0);
      assert.equal(done.total.skipped, stored, 'the resumed run skipped what the first one stored');
      assert.equal(await client.dbsize(), done.total.planned, 'an entry for every tile, empty ones included');
    } finally {
      client.disconnect();
      await full.stop();
    }
  });

  test('tried as a hostile client would: a damaged progress file is refused naming it, and nothing is counted done', () => {
    // Before: a doneBefore past the run's tiles counted every tile done (none rendered, the run
    // "done"); null failed with "Cannot read properties of null", a cut file with JSON.parse's message.
    const dir = path.join(tmp.root, 'damaged-progress');
    const args = ['dem-relief', '--zoom', '10-11', '--to', `dir:${dir}`];
    const first = seed(args, env, tmp.root);
    assert.equal(first.status, 0, first.stderr);
    const m = readJson<Manifest & { layer: { name: string; version: string }; coverage: unknown; shard: unknown; target: string; format: string }>(
      path.join(dir, 'manifest.json'),
    );
    const params = { layer: m.layer.name, version: m.layer.version, coverage: m.coverage, shard: m.shard, target: m.target, format: m.format, since: null };
    const progress = path.join(dir, 'manifest.json.progress');
    const valid = JSON.stringify({ params, doneBefore: 0, doneAfter: [] });
    for (const [what, text, why] of [
      [
        'done past the last tile',
        JSON.stringify({ params, doneBefore: 1e18, doneAfter: [] }),
        `doneBefore: expected a whole number from 0 to ${m.total.planned}`,
      ],
      [
        'done after, not numbers',
        JSON.stringify({ params, doneBefore: 0, doneAfter: [null, 'a'] }),
        'doneAfter: expected whole numbers past doneBefore and below',
      ],
      ['null', 'null', 'no parameters'],
      ['cut short', valid.slice(0, 40), 'not JSON'],
    ] as const) {
      for (const f of pyramidFiles(dir)) rmSync(path.join(dir, `${f}.png`));
      writeFileSync(progress, text);
      const r = seed([...args, '--resume'], env, tmp.root);
      assert.equal(r.status, 1, `${what}: ${r.stdout}`);
      assert.ok(r.stderr.includes(`--resume: ${progress} is not a progress file a run writes (${why}`), `${what}: ${r.stderr}`);
      assert.equal(pyramidFiles(dir).length, 0, `${what}: nothing written`);
    }
    // A progress file as a run writes it resumes.
    writeFileSync(progress, valid);
    const resumed = seed([...args, '--resume'], env, tmp.root);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.equal(pyramidFiles(dir).length, m.total.planned - m.total.empty);
  });

  test('a source that fails part of the way: failures are retried, logged, counted; --max-failures sets the exit code', async () => {
    const layers = await makeLayersDir(['dem-relief']);
    try {
      // The full-resolution blocks lie at the end of the COG: cut its last fifth.
      const cog = path.join(layers.dir, 'data/srtm_jasper_ab_100m.tif');
      truncateSync(cog, Math.floor(statSync(cog).size * 0.8));
      const e = { ...env, LAYERS_DIR: layers.dir };
      const dir = path.join(layers.root, 'out');
      const strict = seed(['dem-relief', '--zoom', '12-13', '--to', `dir:${dir}`, '--retries', '1'], e, layers.root);
      assert.equal(strict.status, 1, strict.stdout + strict.stderr);
      const manifest = readJson<Manifest>(path.join(dir, 'manifest.json'));
      assert.ok(manifest.total.failed > 0 && manifest.total.rendered > 0, JSON.stringify(manifest.total));
      const log = readFileSync(path.join(dir, 'manifest.json.failures.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { tile: string; attempts: number; error: string });
      assert.equal(log.length, manifest.total.failed);
      for (const f of log) {
        assert.equal(f.attempts, 2, 'one retry');
        assert.match(f.error, /srtm_jasper_ab_100m\.tif: block \d+ of image \d+ at byte \d+ is truncated/);
      }
      const lenient = seed(['dem-relief', '--zoom', '12-13', '--to', `dir:${dir}`, '--retries', '0', '--max-failures', '100'], e, layers.root);
      assert.equal(lenient.status, 0, lenient.stdout + lenient.stderr);
    } finally {
      await layers.remove();
    }
  });
});
