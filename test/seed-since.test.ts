/**
 * `tilegraph seed --since MANIFEST` (issue 16) as an operator runs it: a COG rewritten by GDAL
 * with a patch burnt over a small area, then an incremental re-seed into each target. The
 * result must equal a full re-seed byte for byte, re-rendering the tiles that changed and
 * carrying the rest over; an edited layer file re-renders everything; `--changed` marks areas
 * of sources that are not COGs on disk; and a queued run follows a manifest too.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { CLI, GDAL_ENV, runCli, toolsMissing } from './helpers/layers.js';
import { makeLayersDir, request, tilePath, type TempLayers, type Tile } from './helpers/http.js';
import { startRedis, startServerProcess, type RedisProcess } from './helpers/processes.js';

interface Counts {
  planned: number;
  rendered: number;
  empty: number;
  skipped: number;
  carried: number;
  failed: number;
}
interface Manifest {
  layer: { version: string };
  total: Counts;
  since?: { previous: string; all: boolean; reasons: string[] };
}

/** The parts of a manifest's lineage this file reads: the cells of the one source's levels. */
interface LineageManifest {
  lineage: { sources: { digest: { levels: { cells?: { hashes: string[] } }[] } }[] };
}

const COG = 'data/srtm_jasper_ab_100m.tif';
// From the COG's overviews to tiles finer than its 100 m pixels; the 128-pixel blocks under the
// patch still reach past the tiles it changes (asserted below).
const ZOOMS = ['--zoom', '8-13'];
/** The patch: 2 × 2 km of the DEM (EPSG:3402) set to 3000 m, about 1% of its area. */
const PATCH = [320000, 5900000, 322000, 5902000] as const;

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

function gdal(tool: string, args: string[]): void {
  const r = spawnSync(tool, args, { env: GDAL_ENV, encoding: 'utf8' });
  assert.equal(r.status, 0, `${tool} ${args.join(' ')}: ${r.stderr}`);
}

/** A GeoJSON file of one rectangle [west, south, east, north] in the DEM's CRS (EPSG:3402), for gdal_rasterize. */
function writeSquare(file: string, [w, s, e, n]: readonly [number, number, number, number]): void {
  const ring = [
    [w, s],
    [e, s],
    [e, n],
    [w, n],
    [w, s],
  ];
  writeFileSync(
    file,
    JSON.stringify({
      type: 'FeatureCollection',
      crs: { type: 'name', properties: { name: 'EPSG:3402' } },
      features: [{ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [ring] } }],
    }),
  );
}

/** `z/x/y` → bytes, inode and mtime of every tile of a pyramid (a tile written again gets a new inode: it is renamed over the old one). */
function pyramid(root: string): Map<string, { bytes: Buffer; ino: number; mtimeMs: number }> {
  const out = new Map<string, { bytes: Buffer; ino: number; mtimeMs: number }>();
  for (const z of readdirSync(root).filter((d) => /^\d+$/.test(d)))
    for (const x of readdirSync(path.join(root, z)))
      for (const f of readdirSync(path.join(root, z, x)))
        if (/^\d+\.png$/.test(f)) {
          const file = path.join(root, z, x, f);
          const st = statSync(file);
          out.set(`${z}/${x}/${f.slice(0, -4)}`, { bytes: readFileSync(file), ino: st.ino, mtimeMs: st.mtimeMs });
        }
  return out;
}

/** `z/x/y` (y from the top) → bytes of every tile an MBTiles file's `tiles` view gives a reader. */
function mbtilesTiles(db: Database.Database): Map<string, { bytes: Buffer }> {
  const rows = db.prepare('SELECT zoom_level AS z, tile_column AS x, tile_row AS row, tile_data AS data FROM tiles').all() as {
    z: number;
    x: number;
    row: number;
    data: Buffer;
  }[];
  return new Map(rows.map((r) => [`${r.z}/${r.x}/${2 ** r.z - 1 - r.row}`, { bytes: Buffer.from(r.data) }]));
}

function assertSameTiles(a: Map<string, { bytes: Buffer }>, b: Map<string, { bytes: Buffer }>, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `${what}: the same tiles`);
  for (const [k, v] of a) assert.ok(v.bytes.equals(b.get(k)!.bytes), `${what}: ${k} has the full re-seed's bytes`);
}

function seed(args: string[], env: Record<string, string>, cwd: string) {
  const r = spawnSync(process.execPath, [CLI, 'seed', ...args], {
    cwd,
    env: { ...process.env, LOG_LEVEL: 'silent', WORKERS: '2', ...env },
    encoding: 'utf8',
    timeout: 180_000,
  });
  assert.equal(r.status, 0, `seed ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Counts & { manifest: string; total: number };
}

const skip = toolsMissing(['gdal_translate', 'gdal_rasterize']);

describe('tilegraph seed --since', { skip }, () => {
  let tmp: TempLayers;
  let redis: RedisProcess;
  let env: Record<string, string>;
  let cog: string;
  let original: string;
  let patched: string;
  /** Full seeds of the original and of the patched COG. */
  let before0: Map<string, { bytes: Buffer; ino: number }>;
  let full: Map<string, { bytes: Buffer; ino: number }>;

  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
    redis = await startRedis();
    env = { LAYERS_DIR: tmp.dir, REDIS_URL: redis.url, REDIS_PREFIX: 'since-test:' };
    cog = path.join(tmp.dir, COG);
    // Both COGs are made the same way (GTiff, then COG with its own overviews), so that only
    // the blocks under the patch differ; 128-pixel blocks keep the patch's reach small.
    const plain = path.join(tmp.root, 'plain.tif');
    const patch = path.join(tmp.root, 'patch.tif');
    original = path.join(tmp.root, 'original.tif');
    patched = path.join(tmp.root, 'patched.tif');
    gdal('gdal_translate', ['-q', '-of', 'GTiff', cog, plain]);
    copyFileSync(plain, patch);
    const poly = path.join(tmp.root, 'patch.geojson');
    writeSquare(poly, PATCH);
    gdal('gdal_rasterize', ['-q', '-burn', '3000', poly, patch]);
    const cogOptions = ['-q', '-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=3', '-co', 'BLOCKSIZE=128'];
    gdal('gdal_translate', [...cogOptions, plain, original]);
    gdal('gdal_translate', [...cogOptions, patch, patched]);

    copyFileSync(original, cog);
    seed(['dem-relief', ...ZOOMS, '--to', `dir:${path.join(tmp.root, 'before')}`], env, tmp.root);
    before0 = pyramid(path.join(tmp.root, 'before'));
    copyFileSync(patched, cog);
    seed(['dem-relief', ...ZOOMS, '--to', `dir:${path.join(tmp.root, 'full')}`], env, tmp.root);
    full = pyramid(path.join(tmp.root, 'full'));
    copyFileSync(original, cog);
  });
  after(async () => {
    await redis?.stop();
    await tmp?.remove();
  });

  test('a patched COG: only the tiles that read changed blocks are rendered again, and every target equals a full re-seed', async () => {
    const dir = path.join(tmp.root, 'dir');
    const mbtiles = path.join(tmp.root, 'dem.mbtiles');
    seed(['dem-relief', ...ZOOMS, '--to', `dir:${dir}`], env, tmp.root);
    seed(['dem-relief', ...ZOOMS, '--to', `mbtiles:${mbtiles}`], env, tmp.root);
    const cached = seed(['dem-relief', ...ZOOMS], env, tmp.root);
    const was = pyramid(dir);
    const previous = readJson<Manifest>(path.join(dir, 'manifest.json')).layer.version;

    copyFileSync(patched, cog);
    try {
      const d = seed(['dem-relief', '--since', path.join(dir, 'manifest.json')], env, tmp.root);
      const now = pyramid(dir);
      assertSameTiles(now, full, 'dir');
      const manifest = readJson<Manifest>(path.join(dir, 'manifest.json'));
      assert.equal(manifest.since!.previous, previous);
      assert.equal(manifest.since!.all, false);
      assert.match(manifest.since!.reasons.join('\n'), /source 'dem': \d+ block\(s\) changed/);
      const { planned, rendered, empty, carried, skipped, failed } = manifest.total;
      assert.deepEqual({ skipped, failed, empty }, { skipped: 0, failed: 0, empty: 0 });
      assert.equal(rendered + carried, planned);
      assert.deepEqual([d.rendered, d.carried], [rendered, carried]);
      // A file is replaced only when its tile's bytes changed: a tile rendered again the same
      // (its block changed elsewhere) stays in place, as the carried ones do.
      const rewritten = [...now].filter(([k, v]) => v.ino !== was.get(k)!.ino).map(([k]) => k);
      const differ = [...full].filter(([k, v]) => !v.bytes.equals(before0.get(k)!.bytes)).map(([k]) => k);
      assert.ok(differ.length > 0, 'the patch shows');
      assert.deepEqual(rewritten.sort(), differ.sort(), 'the files replaced are the tiles that changed');
      assert.ok(rendered > differ.length, `${rendered} rendered: the changed blocks reach further than the changed tiles (${differ.length})`);
      // Every tile, written or kept, counts as this version's: seeding the directory again skips them all.
      const again = seed(['dem-relief', ...ZOOMS, '--to', `dir:${dir}`, '--manifest', path.join(tmp.root, 'again.json')], env, tmp.root);
      assert.deepEqual([again.rendered, again.skipped], [0, planned], 'a seed of this version finds every tile there');
      // The patch covers about 1% of the DEM; with the blocks under it and the kernels' reach, a small share is rendered.
      assert.ok(rendered < planned * 0.2, `${rendered} of ${planned} rendered`);

      const m = seed(['dem-relief', '--since', `${mbtiles}.manifest.json`], env, tmp.root);
      assert.deepEqual([m.rendered, m.carried], [rendered, carried], 'MBTiles: the same tiles rendered and carried over');
      const db = new Database(mbtiles, { readonly: true });
      try {
        assertSameTiles(mbtilesTiles(db), full, 'mbtiles');
      } finally {
        db.close();
      }

      const c = seed(['dem-relief', '--since', cached.manifest], env, tmp.root);
      assert.deepEqual([c.rendered, c.carried], [rendered, carried], 'cache: the same tiles rendered and carried over');
      // The servers answer every tile from Redis, with the bytes and the ETag a render of the patched COG gives.
      const seeded = await startServerProcess(tmp.dir, { REDIS_URL: redis.url, REDIS_PREFIX: 'since-test:' });
      const fresh = await startServerProcess(tmp.dir);
      try {
        for (const [k, { bytes }] of full) {
          const t = k.split('/').map(Number) as Tile;
          const a = await request(seeded.url, tilePath('dem-relief', t));
          assert.equal(a.headers['x-cache'], 'hit-l2', `${k}: seeded`);
          assert.ok(a.body.equals(bytes), `${k}: the full re-seed's bytes`);
          if (differ.includes(k) || k.endsWith('0')) {
            const b = await request(fresh.url, tilePath('dem-relief', t));
            assert.equal(a.headers.etag, b.headers.etag, `${k}: a carried entry has the ETag of this version`);
          }
        }
      } finally {
        await seeded.stop();
        await fresh.stop();
      }
    } finally {
      copyFileSync(original, cog);
    }
  });

  test('cells: a changed block renders again only the tiles that read its changed cells, fewer than block by block, with the same result', () => {
    const dir = path.join(tmp.root, 'cells');
    const blockwise = path.join(tmp.root, 'blockwise');
    copyFileSync(original, cog);
    seed(['dem-relief', ...ZOOMS, '--to', `dir:${dir}`], env, tmp.root);
    const cellsOf = (file: string) => readJson<LineageManifest>(file).lineage.sources[0]!.digest.levels.map((l) => l.cells?.hashes ?? []);
    const known = cellsOf(path.join(dir, 'manifest.json'));
    assert.ok(known[0]!.length > 0 && known[0]!.every((h) => h.length === 16 * 16), 'the run kept the cells of every full-resolution block it read');
    // The same pyramid (its files' times too), its manifest without the cells: compared block by block.
    cpSync(dir, blockwise, { recursive: true, preserveTimestamps: true });
    const m = readJson<LineageManifest>(path.join(blockwise, 'manifest.json'));
    for (const lv of m.lineage.sources[0]!.digest.levels) delete lv.cells;
    writeFileSync(path.join(blockwise, 'manifest.json'), JSON.stringify(m));

    copyFileSync(patched, cog);
    try {
      const byCells = seed(['dem-relief', '--since', path.join(dir, 'manifest.json')], env, tmp.root);
      const byBlocks = seed(['dem-relief', '--since', path.join(blockwise, 'manifest.json'), '--to', `dir:${blockwise}`], env, tmp.root);
      assertSameTiles(pyramid(dir), full, 'by cells');
      assertSameTiles(pyramid(blockwise), full, 'block by block');
      const differ = [...full].filter(([k, v]) => !v.bytes.equals(before0.get(k)!.bytes)).length;
      assert.ok(
        differ <= byCells.rendered && byCells.rendered < byBlocks.rendered,
        `${differ} tiles changed; ${byCells.rendered} rendered by cells, ${byBlocks.rendered} block by block`,
      );
      // The new manifest knows the cells too: the next run compares by cells again.
      const next = cellsOf(path.join(dir, 'manifest.json'));
      assert.ok(next[0]!.every((h) => h.length === 16 * 16));
      assert.notDeepEqual(next[0], known[0]);
    } finally {
      copyFileSync(original, cog);
    }
  });

  test('dir: a complete --since run keeps the tiles it carries as they are (times too) and settles the directory; over part of a version it stamps them', () => {
    const dir = path.join(tmp.root, 'settle');
    copyFileSync(original, cog);
    seed(['dem-relief', ...ZOOMS, '--to', `dir:${dir}`], env, tmp.root);
    const record = () => readJson<{ version: string; since: number; previous?: unknown; coverages?: string[] }>(path.join(dir, 'tilegraph.json'));
    const was = pyramid(dir);
    const first = record();
    assert.equal(first.coverages?.length, 1);
    // A tile lost by hand: the run followed was complete, so --since trusts its tiles to be in place.
    const lost = [...was.keys()].find((k) => k.startsWith('13/'))!;
    rmSync(path.join(dir, `${lost}.png`));

    copyFileSync(patched, cog);
    try {
      const r = seed(['dem-relief', '--since', path.join(dir, 'manifest.json')], env, tmp.root);
      const now = pyramid(dir);
      // Untouched: the same file with the same time. A tile rendered again the same is stamped, one rendered otherwise replaced.
      const untouched = [...now].filter(([k, v]) => v.ino === was.get(k)!.ino && v.mtimeMs === was.get(k)!.mtimeMs);
      assert.ok(r.carried > 0);
      assert.equal(untouched.length, r.carried - 1, 'every tile carried over is untouched (the lost one is carried as missing)');
      assert.ok(!now.has(lost), 'the lost tile is not looked for');
      const settled = record();
      assert.deepEqual(
        [settled.since, settled.previous, settled.coverages],
        [first.since, undefined, first.coverages],
        'this version counts from the previous one',
      );
      // A seed of this version finds every tile but the lost one, which it renders: the pyramid is the full re-seed's.
      const again = seed(['dem-relief', ...ZOOMS, '--to', `dir:${dir}`, '--manifest', path.join(tmp.root, 'settle-again.json')], env, tmp.root);
      assert.deepEqual([again.rendered, again.skipped], [1, again.total - 1]);
      assertSameTiles(pyramid(dir), full, 'settled');
    } finally {
      copyFileSync(original, cog);
    }

    // Two runs of one version over different zooms share the directory; --since follows one.
    const parts = path.join(tmp.root, 'parts');
    seed(['dem-relief', '--zoom', '8-11', '--to', `dir:${parts}`, '--manifest', path.join(tmp.root, 'parts-low.json')], env, tmp.root);
    seed(['dem-relief', '--zoom', '12-13', '--to', `dir:${parts}`, '--manifest', path.join(tmp.root, 'parts-high.json')], env, tmp.root);
    assert.equal(readJson<{ coverages: string[] }>(path.join(parts, 'tilegraph.json')).coverages.length, 2);
    const before = pyramid(parts);
    copyFileSync(patched, cog);
    try {
      const r = seed(['dem-relief', '--since', path.join(tmp.root, 'parts-high.json'), '--to', `dir:${parts}`], env, tmp.root);
      const now = pyramid(parts);
      const carried = [...now].filter(([k, v]) => Number(k.split('/')[0]) >= 12 && v.ino === before.get(k)!.ino);
      assert.ok(carried.length > 0 && carried.every(([k, v]) => v.mtimeMs > before.get(k)!.mtimeMs), "the carried tiles are stamped as this version's");
      assert.ok(r.carried > 0);
      const rec = readJson<{ previous?: unknown }>(path.join(parts, 'tilegraph.json'));
      assert.notEqual(rec.previous, undefined, 'not settled: the zoom 8-11 tiles were not looked at');
      // They are not this version's: a seed of zooms 8-11 renders them all.
      const low = seed(['dem-relief', '--zoom', '8-11', '--to', `dir:${parts}`, '--manifest', path.join(tmp.root, 'parts-low2.json')], env, tmp.root);
      assert.equal(low.rendered, low.total);
      assertSameTiles(pyramid(parts), full, 'both parts');
    } finally {
      copyFileSync(original, cog);
    }
  });

  test('tiles a patch of nodata leaves empty are removed from dir: and mbtiles:, as a full re-seed never writes them, and the cache answers them empty', async () => {
    // 6 x 6 km of the DEM set to NaN (its nodata): the zoom-13 tiles inside draw nothing.
    const plainCopy = path.join(tmp.root, 'holes-plain.tif');
    const holes = path.join(tmp.root, 'holes.tif');
    gdal('gdal_translate', ['-q', '-of', 'GTiff', original, plainCopy]);
    const poly = path.join(tmp.root, 'holes.geojson');
    writeSquare(poly, [320000, 5890000, 326000, 5896000]);
    gdal('gdal_rasterize', ['-q', '-burn', 'nan', poly, plainCopy]);
    gdal('gdal_translate', ['-q', '-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=3', '-co', 'BLOCKSIZE=128', plainCopy, holes]);

    const dir = path.join(tmp.root, 'holes-dir');
    const mbtiles = path.join(tmp.root, 'holes.mbtiles');
    copyFileSync(original, cog);
    seed(['dem-relief', ...ZOOMS, '--to', `dir:${dir}`], env, tmp.root);
    seed(['dem-relief', ...ZOOMS, '--to', `mbtiles:${mbtiles}`], env, tmp.root);
    const cached = seed(['dem-relief', ...ZOOMS], env, tmp.root);
    const was = pyramid(dir);

    copyFileSync(holes, cog);
    try {
      const fullDir = path.join(tmp.root, 'holes-full');
      const f = seed(['dem-relief', ...ZOOMS, '--to', `dir:${fullDir}`], env, tmp.root);
      const expected = pyramid(fullDir);
      const emptied = [...was.keys()].filter((k) => !expected.has(k));
      assert.ok(f.empty > 0 && emptied.length === f.empty, `${f.empty} tiles draw nothing now, ${emptied.length} of them had a file`);

      const d = seed(['dem-relief', '--since', path.join(dir, 'manifest.json')], env, tmp.root);
      assert.equal(d.empty, emptied.length, 'the emptied tiles are counted as empty');
      assertSameTiles(pyramid(dir), expected, 'dir');

      seed(['dem-relief', '--since', `${mbtiles}.manifest.json`], env, tmp.root);
      const db = new Database(mbtiles, { readonly: true });
      try {
        assertSameTiles(mbtilesTiles(db), expected, 'mbtiles');
        const images = db.prepare('SELECT count(*) AS n FROM images WHERE tile_id NOT IN (SELECT tile_id FROM map)').get() as { n: number };
        assert.equal(images.n, 0, 'no image is left without a tile');
      } finally {
        db.close();
      }

      seed(['dem-relief', '--since', cached.manifest], env, tmp.root);
      const seeded = await startServerProcess(tmp.dir, { REDIS_URL: redis.url, REDIS_PREFIX: 'since-test:' });
      try {
        for (const k of emptied) {
          const a = await request(seeded.url, tilePath('dem-relief', k.split('/').map(Number) as Tile));
          assert.equal(a.status, 204, `${k}: empty now`);
          assert.equal(a.headers['x-cache'], 'hit-l2', `${k}: from the seeded cache`);
        }
      } finally {
        await seeded.stop();
      }
    } finally {
      copyFileSync(original, cog);
    }
  });

  test('an edited layer file re-renders every tile, and says why', () => {
    const layers = path.join(tmp.root, 'edited');
    cpSync(tmp.dir, layers, { recursive: true });
    const e = { ...env, LAYERS_DIR: layers };
    const dir = path.join(tmp.root, 'edited-dir');
    seed(['dem-relief', '--zoom', '8-11', '--to', `dir:${dir}`], e, tmp.root);
    const file = path.join(layers, 'dem-relief.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^title: .*$/m, 'title: Another title'));
    const r = seed(['dem-relief', '--since', path.join(dir, 'manifest.json')], e, tmp.root);
    assert.equal(r.carried, 0);
    assert.equal(r.rendered + r.empty, r.total);
    const manifest = readJson<Manifest>(path.join(dir, 'manifest.json'));
    assert.equal(manifest.since!.all, true);
    assert.match(manifest.since!.reasons[0]!, /configuration changed/);
  });

  test('--changed AREAS: tiles over the areas and their neighbours are rendered again, the rest carried over', () => {
    const dir = path.join(tmp.root, 'areas');
    seed(['dem-relief', '--zoom', '12', '--to', `dir:${dir}`], env, tmp.root);
    // One small square in WGS84: at zoom 12 it lies in one tile, which with its 8 neighbours is 9 tiles.
    const areas = path.join(tmp.root, 'changed.geojson');
    const [lon, lat] = [-117.5, 53.2];
    const d = 0.001;
    writeFileSync(
      areas,
      JSON.stringify({
        type: 'Polygon',
        coordinates: [
          [
            [lon - d, lat - d],
            [lon + d, lat - d],
            [lon + d, lat + d],
            [lon - d, lat + d],
            [lon - d, lat - d],
          ],
        ],
      }),
    );
    const n = 2 ** 12;
    const x = Math.floor(((lon + 180) / 360) * n);
    const y = Math.floor(((1 - Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360)) / Math.PI) / 2) * n);
    const planned = readJson<Manifest>(path.join(dir, 'manifest.json')).total.planned;
    const seeded = new Set(pyramid(dir).keys());
    let near = 0;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) if (seeded.has(`12/${x + dx}/${y + dy}`)) near++;
    const r = seed(['dem-relief', '--since', path.join(dir, 'manifest.json'), '--changed', areas], env, tmp.root);
    assert.equal(r.rendered, near);
    assert.equal(r.carried, planned - near);
  });

  test('refuses what it cannot follow, with the reason', () => {
    const bad = path.join(tmp.root, 'not-a-manifest.json');
    writeFileSync(bad, '{"layer": 3}');
    for (const [args, message] of [
      [['--since', bad], /not a tilegraph seed manifest/],
      [['--since', path.join(tmp.root, 'missing.json')], /cannot read the file/],
      [['--since', bad, '--zoom', '3'], /--since takes the coverage and format of the manifest's run: leave out --zoom/],
      [['--changed', bad, '--zoom', '3'], /--changed names what changed since a run/],
    ] as const) {
      const r = spawnSync(process.execPath, [CLI, 'seed', 'dem-relief', ...args], { cwd: tmp.root, env: { ...process.env, ...env }, encoding: 'utf8' });
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stderr, message);
    }
  });

  test('tried as a hostile client would: a damaged manifest is refused naming it and what does not hold; nothing is written', () => {
    // Before: `lineage: null` failed with "Cannot read properties of null (reading 'error')", a
    // bbox that is not a list with "c.bbox.join is not a function", and the rest blamed options
    // the command line never gave (--zoom "0-40", --shard "undefined/undefined", --tiles 5).
    const manifest = JSON.parse(readFileSync(path.join(tmp.root, 'before/manifest.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    const damaged = (change: (m: Record<string, Record<string, unknown>>) => void) => {
      const m = structuredClone(manifest);
      change(m);
      return m;
    };
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['no lineage', damaged((m) => void (m.lineage = null as never)), /: not a tilegraph seed manifest \(no lineage: /],
      [
        'a bbox that is not a list',
        damaged((m) => {
          delete m.coverage!.footprint;
          m.coverage!.bbox = '1,2,3,4';
        }),
        /: not a tilegraph seed manifest \(its coverage has a bbox that is not a list of numbers\)$/,
      ],
      [
        'tiles that are not a file',
        damaged((m) => void (m.coverage!.tiles = 5)),
        /: not a tilegraph seed manifest \(its coverage names tiles by something other than a file\)$/,
      ],
      [
        'a shard that is not one',
        damaged((m) => void (m.shard = 'x' as never)),
        /: not a tilegraph seed manifest \(its shard is not a whole index and count\)$/,
      ],
      ['zooms past 30', damaged((m) => void (m.coverage!.zooms = [0, 40])), /: the run it records cannot be followed: --zoom "0-40": zooms go from 0 to 30$/],
      ['a format it cannot write', damaged((m) => void (m.format = 'gif' as never)), /: the run it records cannot be followed: --format gif: png or webp$/],
    ];
    for (const [what, m, message] of cases) {
      const out = path.join(tmp.root, `damaged-${what.replace(/\W+/g, '-')}`);
      const file = `${out}.json`;
      writeFileSync(file, JSON.stringify(m));
      const r = runCli(['seed', 'dem-relief', '--since', file, '--to', `dir:${out}`], env);
      assert.equal(r.status, 1, `${what}: ${r.stdout}`);
      const line = r.stderr.trim().split('\n').at(-1)!;
      assert.ok(line.startsWith(`tilegraph: --since ${file}: `), `${what}: ${r.stderr}`);
      assert.match(line, message, what);
      assert.ok(!existsSync(out) || readdirSync(out).length === 0, `${what}: nothing written to ${out}`);
    }
  });

  test('a copied pyramid: its manifest does not lead back to the original, and --to re-seeds the copy', () => {
    const first = path.join(tmp.root, 'copied-from');
    const copy = path.join(tmp.root, 'copied-to');
    const zooms = ['--zoom', '10-12'];
    seed(['dem-relief', ...zooms, '--to', `dir:${first}`], env, tmp.root);
    cpSync(first, copy, { recursive: true });
    const untouched = pyramid(first);
    const manifest = readFileSync(path.join(first, 'manifest.json'), 'utf8');
    const wanted = new Map([...full].filter(([k]) => ['10', '11', '12'].includes(k.split('/')[0]!)));
    copyFileSync(patched, cog);
    try {
      const r = spawnSync(process.execPath, [CLI, 'seed', 'dem-relief', '--since', path.join(copy, 'manifest.json')], {
        cwd: tmp.root,
        env: { ...process.env, ...env },
        encoding: 'utf8',
      });
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stderr, new RegExp(`the manifest of a run into dir:${first}, lying in dir:${copy}: a copy\\? Give --to dir:${copy}`));
      const typo = spawnSync(process.execPath, [CLI, 'seed', 'dem-relief', '--since', path.join(copy, 'manifest.json'), '--to', 'dir:'], {
        cwd: tmp.root,
        env: { ...process.env, ...env },
        encoding: 'utf8',
      });
      assert.equal(typo.status, 1, typo.stdout);
      assert.equal(typo.stderr.trim(), 'tilegraph: --to dir:: expected cache, dir:PATH or mbtiles:PATH');

      const d = seed(['dem-relief', '--since', path.join(copy, 'manifest.json'), '--to', `dir:${copy}`], env, tmp.root);
      assert.ok(d.rendered > 0 && d.carried > 0, JSON.stringify(d));
      assertSameTiles(pyramid(copy), wanted, 'the copy');
      assert.equal(readJson<{ target: string }>(path.join(copy, 'manifest.json')).target, `dir:${copy}`);
      // The original keeps its files (the same inodes: none replaced) and its manifest.
      const now = pyramid(first);
      assert.deepEqual([...now.keys()].sort(), [...untouched.keys()].sort());
      for (const [k, v] of untouched) assert.equal(now.get(k)!.ino, v.ino, `${k}: the original's file stays`);
      assert.equal(readFileSync(path.join(first, 'manifest.json'), 'utf8'), manifest);

      // The same for an MBTiles file copied beside its manifest: the original is left as it was.
      const file = path.join(tmp.root, 'copied-from.mbtiles');
      const copied = path.join(tmp.root, 'copied-to.mbtiles');
      seed(['dem-relief', '--zoom', '10-11', '--to', `mbtiles:${file}`], env, tmp.root);
      copyFileSync(file, copied);
      copyFileSync(`${file}.manifest.json`, `${copied}.manifest.json`);
      const held = readFileSync(file);
      const m = spawnSync(process.execPath, [CLI, 'seed', 'dem-relief', '--since', `${copied}.manifest.json`], {
        cwd: tmp.root,
        env: { ...process.env, ...env },
        encoding: 'utf8',
      });
      assert.equal(m.status, 1, m.stdout);
      assert.match(m.stderr, new RegExp(`the manifest of a run into mbtiles:${file}, lying in mbtiles:${copied}: a copy\\?`));
      assert.ok(readFileSync(file).equals(held), 'the original MBTiles file is unchanged');
    } finally {
      copyFileSync(original, cog);
    }
  });

  test('a manifest names its target by an absolute path: --since from another directory re-seeds the same tiles', () => {
    // Seeded with a relative --to from one directory, followed from another.
    const dir = path.join(tmp.root, 'relative');
    seed(['dem-relief', '--zoom', '10-11', '--to', 'dir:relative'], env, tmp.root);
    const planned = readJson<Manifest & { target: string }>(path.join(dir, 'manifest.json'));
    assert.equal(planned.target, `dir:${dir}`);
    const elsewhere = path.join(tmp.root, 'elsewhere');
    mkdirSync(elsewhere);
    const run = spawnSync(process.execPath, [CLI, 'seed', 'dem-relief', '--since', path.join(dir, 'manifest.json')], {
      cwd: elsewhere,
      env: { ...process.env, ...env, LOG_LEVEL: 'silent' },
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.ok(run.stderr.includes(`into dir:${dir}\n`), `the run says where it writes: ${run.stderr}`);
    const r = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Counts;
    assert.deepEqual([r.rendered, r.carried], [0, planned.total.planned], 'nothing changed: every tile carried over');
    assert.deepEqual(readdirSync(elsewhere), [], 'nothing written where the command started');

    // A manifest written before targets were absolute: its relative path is taken from where the manifest lies.
    const older = path.join(dir, 'manifest.json');
    writeFileSync(older, JSON.stringify({ ...readJson<object>(older), target: 'dir:relative' }));
    const o = seed(['dem-relief', '--since', older], env, elsewhere);
    assert.deepEqual([o.rendered, o.carried], [0, planned.total.planned]);
    assert.deepEqual(readdirSync(elsewhere), []);
    // Kept somewhere else, it cannot say where its tiles are.
    const kept = path.join(tmp.root, 'kept.json');
    writeFileSync(kept, JSON.stringify({ ...readJson<object>(older), target: 'dir:relative' }));
    const k = spawnSync(process.execPath, [CLI, 'seed', 'dem-relief', '--since', kept], { cwd: elsewhere, env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.equal(k.status, 1, k.stdout);
    assert.match(k.stderr, /its run's target dir:relative is relative to the directory that run started in, which is not recorded: give it with --to/);
    assert.deepEqual(readdirSync(elsewhere), []);
  });

  test('a queued run follows a manifest too, with the same result; its workers leave the carried tiles untouched and it settles the directory', async () => {
    const dir = path.join(tmp.root, 'queued');
    seed(['dem-relief', ...ZOOMS, '--to', `dir:${dir}`], env, tmp.root);
    const was = pyramid(dir);
    const first = readJson<{ since: number }>(path.join(dir, 'tilegraph.json'));
    copyFileSync(patched, cog);
    const worker = spawn(process.execPath, [CLI, 'worker'], {
      env: { ...process.env, ...env, WORKERS: '1', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve) => createInterface({ input: worker.stdout }).on('line', (l) => l.includes('seed worker ready') && resolve()));
      const r = seed(['dem-relief', '--since', path.join(dir, 'manifest.json'), '--queue'], env, tmp.root);
      assert.ok(r.rendered > 0 && r.carried > 0, JSON.stringify(r));
      const now = pyramid(dir);
      assertSameTiles(now, full, 'queued');
      const untouched = [...now].filter(([k, v]) => v.ino === was.get(k)!.ino && v.mtimeMs === was.get(k)!.mtimeMs);
      assert.equal(untouched.length, r.carried, 'every tile carried over is untouched');
      const record = readJson<{ since: number; previous?: unknown }>(path.join(dir, 'tilegraph.json'));
      assert.deepEqual([record.since, record.previous], [first.since, undefined], 'settled');
    } finally {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.kill('SIGTERM');
      await exited;
      copyFileSync(original, cog);
    }
  });
});
