/**
 * Metatiles: neighbouring tiles of one layer rendered in one task of a render thread. The pool
 * answers each tile of one with the bytes it gives the tile alone, and an error only for a
 * tile that fails; the enumeration is cut into n×n squares with every tile once; a seeding run
 * hands the renderer those squares, retries a tile that failed in one on its own, and stores
 * the same pyramid as tile-by-tile seeding.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TileEntry } from '../src/cache/tiles.js';
import { loadLayer, type Layer } from '../src/layers/layer.js';
import { findLayerFile } from '../src/layers/registry.js';
import { RenderPool } from '../src/render/pool.js';
import type { RenderTask } from '../src/render/task.js';
import { bboxArea, tilesFromList, tilesOf } from '../src/seed/coverage.js';
import { openDirTarget } from '../src/seed/dir.js';
import type { SeedLayer } from '../src/seed/target.js';
import { metatiles, runSeed, seedGroup, type ProduceMany } from '../src/seed/runner.js';
import type { TileId } from '../src/tiles/mercator.js';
import { CLI, SHIPPED_LAYERS, tileAt } from './helpers/layers.js';
import { makeLayersDir, type TempLayers } from './helpers/http.js';

const key = (t: TileId) => `${t.z}/${t.x}/${t.y}`;

/** What a directory target records of the layer its tiles are of. */
const DIR_LAYER: SeedLayer = {
  name: 'm',
  title: 'm',
  description: '',
  attribution: '',
  version: 'v1',
  format: 'png',
  tileSize: 256,
  minzoom: 0,
  maxzoom: 20,
  bounds: [-180, -85, 180, 85],
};

describe('metatiles', () => {
  let layer: Layer;
  let pool: RenderPool;

  before(async () => {
    layer = await loadLayer(findLayerFile(SHIPPED_LAYERS, 'dem-relief'), { layersDir: SHIPPED_LAYERS, allowedHosts: [] });
    pool = new RenderPool({ threads: 2, maxQueue: 1000, timeoutMs: 30_000, blockCacheMb: 64 });
  });
  after(async () => {
    await pool?.close();
  });

  /** A 4×4 square of the DEM's tiles at zoom 13, aligned on the grid, inside the data, as render tasks. */
  function square(): RenderTask[] {
    const { x, y } = tileAt(-117.55, 53.25, 13);
    const tasks: RenderTask[] = [];
    for (let j = 0; j < 4; j++)
      for (let i = 0; i < 4; i++) tasks.push({ layer: layer.spec, z: 13, x: (x & ~3) + i, y: (y & ~3) + j, size: 256, format: 'png' });
    return tasks;
  }

  test('the pool renders a metatile in one task: each tile with the bytes it has alone', async () => {
    const tasks = square();
    const together = await pool.renderMany(tasks);
    assert.equal(together.length, tasks.length);
    let drawn = 0;
    for (const [k, task] of tasks.entries()) {
      const one = together[k]!;
      assert.ok(!(one instanceof Error), `${key(task)}: ${String(one)}`);
      const alone = await pool.render(task);
      const bytes = (r: { png?: ArrayBuffer; rgba: ArrayBuffer | null }) => Buffer.from(r.png ?? r.rgba ?? new ArrayBuffer(0));
      assert.ok(bytes(one).equals(bytes(alone)), `${key(task)}: the same bytes in a metatile and alone`);
      if (one.png) drawn++;
    }
    assert.equal(drawn, 16, 'the square draws the DEM');
  });

  test('a tile that fails in a metatile fails alone: the others are answered', async () => {
    const tasks = square();
    const broken: RenderTask = { ...tasks[5]!, layer: { ...layer.spec, version: 'missing-source', sources: { dem: '/nonexistent/dem.tif' } } };
    tasks[5] = broken;
    const answers = await pool.renderMany(tasks);
    assert.ok(answers[5] instanceof Error, 'the tile whose source is missing has an error');
    assert.match(answers[5].message + String((answers[5] as { detail?: string }).detail ?? ''), /nonexistent|no such file|cannot/i);
    for (const [k, a] of answers.entries()) if (k !== 5) assert.ok(!(a instanceof Error), `${key(tasks[k]!)}: answered (${String(a)})`);
  });

  test('the enumeration cut into n×n squares: every tile once, with its ordinal, each group in one square', () => {
    const area = bboxArea([-117.9, 53.0, -117.2, 53.45]);
    const tiles = [...tilesOf(area, [9, 13])];
    for (const n of [1, 2, 4, 8]) {
      const groups = [...metatiles(tiles, n)];
      const seen = groups.flat();
      assert.equal(seen.length, tiles.length, `n=${n}: every tile`);
      assert.deepEqual(
        seen.map((it) => it.ordinal).sort((a, b) => a - b),
        tiles.map((_, i) => i),
        `n=${n}: each ordinal once`,
      );
      for (const it of seen) assert.deepEqual(it.tile, tiles[it.ordinal], `n=${n}: the ordinal is the tile's place in the enumeration`);
      for (const g of groups) {
        assert.ok(g.length >= 1 && g.length <= n * n, `n=${n}: a group of ${g.length}`);
        const squareOf = (t: TileId) => `${t.z}/${Math.floor(t.x / n)}/${Math.floor(t.y / n)}`;
        assert.equal(new Set(g.map((it) => squareOf(it.tile))).size, 1, `n=${n}: one square`);
      }
      if (n === 4) {
        const deepest = groups.filter((g) => g[0]!.tile.z === 13);
        const whole = deepest.filter((g) => g.length === 16).length * 16;
        assert.ok(whole > deepest.flat().length / 2, `at zoom 13, whole squares hold most tiles (${whole} of ${deepest.flat().length})`);
      }
      if (n === 1) assert.ok(groups.every((g) => g.length === 1));
    }
    // A list in any order: still every tile once; a square holds the tiles of its block that come one after another.
    const list = tilesFromList(['12/800/1300', '12/801/1300', '12/700/1300', '12/800/1301', '12/800/1300'].join('\n'), 'list');
    assert.deepEqual(
      [...metatiles(list, 4)].map((g) => g.map((it) => `${key(it.tile)}#${it.ordinal}`)),
      [['12/800/1300#0', '12/801/1300#1'], ['12/700/1300#2'], ['12/800/1301#3', '12/800/1300#4']],
    );
  });

  describe('seeding with metatiles', () => {
    let tmp: TempLayers;
    before(async () => {
      tmp = await makeLayersDir(['dem-relief']);
    });
    after(async () => {
      await tmp?.remove();
    });

    /** A directory target and what a renderer was asked for; tiles drawn as their own name. */
    async function run(opts: { metatile: number; failFirst?: Set<string>; retries?: number }) {
      const out = await mkdtemp(path.join(os.tmpdir(), 'tilegraph-metatile-'));
      const target = await openDirTarget(out, DIR_LAYER);
      const asked: string[][] = [];
      const alone: string[] = [];
      const entry = (t: TileId): TileEntry => ({ body: Buffer.from(key(t)), etag: '"x"', type: 'image/png' });
      const produceMany: ProduceMany = async (ts) => {
        asked.push(ts.map(key));
        return ts.map((t) => (opts.failFirst?.has(key(t)) ? new Error(`${key(t)} failed in its metatile`) : entry(t)));
      };
      const produce = async (t: TileId) => {
        alone.push(key(t));
        return entry(t);
      };
      const tiles = [...tilesOf(bboxArea([-117.85, 53.06, -117.25, 53.42]), [12, 13])];
      const result = await runSeed(tiles, produce, target, {
        concurrency: 4,
        metatile: opts.metatile,
        produceMany,
        retries: opts.retries ?? 2,
        force: false,
        total: tiles.length,
        progressFile: path.join(out, 'progress.json'),
        resume: false,
        params: {},
        failureLog: path.join(out, 'failures.jsonl'),
        signal: new AbortController().signal,
      });
      await target.close();
      const stored = await Promise.all(tiles.map((t) => readFile(path.join(out, `${t.z}/${t.x}/${t.y}.png`), 'utf8').catch(() => null)));
      const failures = await readFile(path.join(out, 'failures.jsonl'), 'utf8').catch(() => '');
      await rm(out, { recursive: true, force: true });
      return { tiles, asked, alone, result, stored, failures };
    }

    test('the renderer is asked for 4×4 squares; every tile is stored once', async () => {
      const r = await run({ metatile: 4 });
      assert.equal(r.alone.length, 0, 'no tile rendered on its own');
      assert.equal(r.asked.flat().length, r.tiles.length);
      assert.equal(new Set(r.asked.flat()).size, r.tiles.length);
      assert.ok(
        r.asked.some((g) => g.length === 16),
        'whole squares',
      );
      assert.ok(r.asked.length < r.tiles.length / 4, `${r.asked.length} tasks for ${r.tiles.length} tiles`);
      assert.deepEqual(r.stored, r.tiles.map(key));
      assert.equal(r.result.total.rendered, r.tiles.length);
      const one = await run({ metatile: 1 });
      assert.equal(one.asked.length, 0);
      assert.equal(one.alone.length, one.tiles.length, '--metatile 1: tile by tile');
      assert.deepEqual(one.stored, r.stored);
    });

    test('a tile that failed in its metatile is tried again alone; with no retries left it is logged with the error', async () => {
      const r0 = await run({ metatile: 4 });
      const failFirst = new Set([key(r0.tiles[3]!), key(r0.tiles[10]!)]);
      const retried = await run({ metatile: 4, failFirst });
      assert.deepEqual(retried.alone.sort(), [...failFirst].sort(), 'only the failed tiles are rendered again, alone');
      assert.deepEqual(retried.stored, retried.tiles.map(key));
      assert.equal(retried.result.total.failed, 0);
      const strict = await run({ metatile: 4, failFirst, retries: 0 });
      assert.equal(strict.alone.length, 0);
      assert.equal(strict.result.total.failed, 2);
      const logged = strict.failures
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { tile: string; attempts: number; error: string });
      assert.deepEqual(logged.map((f) => f.tile).sort(), [...failFirst].sort());
      for (const f of logged) {
        assert.equal(f.attempts, 1);
        assert.equal(f.error, `${f.tile} failed in its metatile`);
      }
    });

    test('seedGroup skips what the target holds and renders the rest together', async () => {
      const out = await mkdtemp(path.join(os.tmpdir(), 'tilegraph-metatile-'));
      try {
        const target = await openDirTarget(out, DIR_LAYER);
        const ts: TileId[] = [0, 1, 2, 3].map((i) => ({ z: 10, x: 100 + (i % 2), y: 200 + (i >> 1) }));
        await target.put(ts[2]!, { body: Buffer.from('held'), etag: '"h"', type: 'image/png' });
        const asked: string[][] = [];
        const outcomes = await seedGroup(ts, {
          produce: () => Promise.reject(new Error('not alone')),
          produceMany: async (group) => {
            asked.push(group.map(key));
            return group.map((t) => ({ body: t.x === 101 && t.y === 201 ? null : Buffer.from(key(t)), etag: '"x"', type: 'image/png' }));
          },
          target,
          retries: 0,
          force: false,
          signal: new AbortController().signal,
        });
        assert.deepEqual(asked, [[key(ts[0]!), key(ts[1]!), key(ts[3]!)]]);
        assert.deepEqual(
          outcomes.map((o) => o.kind),
          ['rendered', 'rendered', 'skipped', 'empty'],
        );
        await target.close();
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    });

    test('tilegraph seed: --metatile 4 and --metatile 1 store the same files; the manifest says which; --metatile 3 is refused', async () => {
      const seed = (args: string[]) =>
        spawnSync(process.execPath, [CLI, 'seed', 'dem-relief', ...args], {
          cwd: tmp.root,
          env: { ...process.env, LAYERS_DIR: tmp.dir, LOG_LEVEL: 'silent', WORKERS: '2', REDIS_URL: '' },
          encoding: 'utf8',
          timeout: 120_000,
        });
      const dirs = [1, 4].map((m) => path.join(tmp.root, `pyramid-${m}`));
      for (const [k, m] of [1, 4].entries()) {
        const r = seed(['--zoom', '9-12', '--to', `dir:${dirs[k]}`, '--metatile', String(m)]);
        assert.equal(r.status, 0, r.stderr + r.stdout);
      }
      const manifests = dirs.map((d) => JSON.parse(readFileSync(path.join(d, 'manifest.json'), 'utf8')) as { metatile: number; total: { rendered: number } });
      assert.deepEqual(
        manifests.map((m) => m.metatile),
        [1, 4],
      );
      assert.ok(manifests[0]!.total.rendered > 30);
      assert.deepEqual(manifests[1]!.total, manifests[0]!.total);
      const files = (d: string) =>
        spawnSync('find', [d, '-name', '*.png'], { encoding: 'utf8' })
          .stdout.trim()
          .split('\n')
          .map((f) => path.relative(d, f))
          .sort();
      assert.deepEqual(files(dirs[1]!), files(dirs[0]!));
      for (const f of files(dirs[0]!)) assert.ok(readFileSync(path.join(dirs[1]!, f)).equals(readFileSync(path.join(dirs[0]!, f))), `${f}: the same bytes`);
      const refused = seed(['--zoom', '9-10', '--to', `dir:${path.join(tmp.root, 'never')}`, '--metatile', '3']);
      assert.equal(refused.status, 1, refused.stderr);
      assert.match(refused.stderr, /--metatile 3: 1, 2, 4 or 8/);
    });
  });
});
