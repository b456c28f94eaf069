/**
 * The directory and MBTiles seeding targets, read back by GDAL: the TMS minidriver over the
 * directory, the MBTiles driver over the file. Tiles are PNGs of known RGBA (gradients that
 * differ in x and in y, flat colours, one flat colour twice), so a tile in the wrong place, a
 * row order flipped or a duplicate stored twice shows up as wrong pixels or counts.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import type { TileEntry } from '../src/cache/tiles.js';
import { openDirTarget } from '../src/seed/dir.js';
import { openMbtilesTarget } from '../src/seed/mbtiles.js';
import type { SeedLayer, SeedTarget } from '../src/seed/target.js';
import type { TileId } from '../src/tiles/mercator.js';
import { GDAL_ENV, gdalMissing } from './helpers/gdal.js';

const SIZE = 256;
const HALF_WORLD = Math.PI * 6378137;
const ENV = { ...GDAL_ENV, GDAL_CACHEMAX: '16', CPL_DEBUG: 'OFF' };
const skip = gdalMissing(['gdalinfo', 'gdal_translate', 'gdallocationinfo']);

type Rgba = [number, number, number, number];
/** Interleaved RGBA of a SIZE² tile from f(column, row). */
function pixels(f: (i: number, j: number) => Rgba): Uint8Array {
  const out = new Uint8Array(SIZE * SIZE * 4);
  for (let j = 0; j < SIZE; j++) for (let i = 0; i < SIZE; i++) out.set(f(i, j), (j * SIZE + i) * 4);
  return out;
}

const RGBA = {
  // Green grows downwards and red rightwards: a tile flipped in y or x reads wrong.
  gradient: pixels((i, j) => [i, j, 7, 255]),
  slope: pixels((i, j) => [j, 255 - i, 200, 255 - (j >> 1)]),
  red: pixels(() => [255, 0, 0, 255]),
  green: pixels(() => [0, 160, 0, 255]),
};
type Name = keyof typeof RGBA;

/** The tiles every target gets (XYZ), and one empty tile that must not be written. */
const TILES: { t: TileId; rgba: Name }[] = [
  { t: { z: 2, x: 1, y: 1 }, rgba: 'gradient' },
  { t: { z: 2, x: 2, y: 1 }, rgba: 'slope' },
  { t: { z: 2, x: 1, y: 2 }, rgba: 'red' },
  { t: { z: 2, x: 2, y: 2 }, rgba: 'red' },
  { t: { z: 1, x: 0, y: 0 }, rgba: 'green' },
];
const EMPTY: TileId = { z: 2, x: 0, y: 0 };
const NOT_PUT: TileId = { z: 2, x: 3, y: 3 };

// WGS84 bounds of the four z2 tiles: lon -90..90, lat of the z2 tile edges.
const LAT2 = (Math.atan(Math.sinh(Math.PI / 2)) * 180) / Math.PI;
const layer = (version: string, name = 'demo'): SeedLayer => ({
  name,
  title: 'Demo layer',
  description: 'tiles for the target tests',
  attribution: '© test',
  version,
  bounds: [-90, -LAT2, 90, LAT2],
  minzoom: 0,
  maxzoom: 6,
  format: 'png',
  tileSize: SIZE,
});

let png: Record<Name, Buffer>;
let tmp: string;
before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'tilegraph-seed-targets-'));
  const encode = (rgba: Uint8Array) =>
    sharp(rgba, { raw: { width: SIZE, height: SIZE, channels: 4 } })
      .png()
      .toBuffer();
  png = Object.fromEntries(await Promise.all(Object.entries(RGBA).map(async ([k, v]) => [k, await encode(v)]))) as Record<Name, Buffer>;
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const entry = (name: Name): TileEntry => ({ body: png[name], etag: `"${name}"`, type: 'image/png' });
const empty: TileEntry = { body: null, etag: '"empty"', type: 'image/png' };

async function putAll(target: SeedTarget): Promise<void> {
  for (const { t, rgba } of TILES) await target.put(t, entry(rgba));
  await target.put(EMPTY, empty);
}

async function hasAll(target: SeedTarget): Promise<boolean[]> {
  return Promise.all([...TILES.map(({ t }) => t), EMPTY, NOT_PUT].map((t) => target.has(t)));
}

function gdal(tool: string, args: readonly string[], input?: string): string {
  return execFileSync(tool, args, { env: ENV, input, encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** A SIZE² window of `src` read by gdal_translate, as interleaved RGBA (ENVI, band-interleaved by pixel). */
function readWindow(src: string, col: number, row: number, options: readonly string[] = []): Uint8Array {
  const out = path.join(tmp, 'window.raw');
  gdal('gdal_translate', [
    '-q',
    '-of',
    'ENVI',
    '-co',
    'INTERLEAVE=BIP',
    '-ot',
    'Byte',
    ...options,
    '-srcwin',
    String(col),
    String(row),
    String(SIZE),
    String(SIZE),
    src,
    out,
  ]);
  assert.match(readFileSync(path.join(tmp, 'window.hdr'), 'utf8'), /^bands\s*=\s*4$[^]*^interleave\s*=\s*bip$/m);
  const rgba = readFileSync(out);
  assert.equal(rgba.length, SIZE * SIZE * 4, `${src}: 4 bands of ${SIZE}²`);
  return rgba;
}

function assertPixels(actual: Uint8Array, expected: Uint8Array, what: string): void {
  for (let k = 0; k < expected.length; k++) {
    if (actual[k] !== expected[k]) {
      const p = k >> 2;
      const at = (a: Uint8Array) => [...a.subarray(p * 4, p * 4 + 4)].join(',');
      assert.fail(`${what}: pixel (${p % SIZE}, ${Math.floor(p / SIZE)}) is ${at(actual)}, expected ${at(expected)}`);
    }
  }
}

/** Files under `dir`, relative, sorted. */
function listFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[]).filter((f) => statSync(path.join(dir, f)).isFile()).sort();
}

/** GDAL's TMS minidriver over a `{z}/{x}/{y}.png` directory at one zoom (y from the top); missing tiles read as zeros. */
function tmsXml(root: string, z: number): string {
  const file = path.join(tmp, `tms-${z}.xml`);
  writeFileSync(
    file,
    `<GDAL_WMS>
  <Service name="TMS"><ServerUrl>file://${root}/\${z}/\${x}/\${y}.png</ServerUrl></Service>
  <DataWindow>
    <UpperLeftX>${-HALF_WORLD}</UpperLeftX><UpperLeftY>${HALF_WORLD}</UpperLeftY><LowerRightX>${HALF_WORLD}</LowerRightX><LowerRightY>${-HALF_WORLD}</LowerRightY>
    <TileLevel>${z}</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY><YOrigin>top</YOrigin>
  </DataWindow>
  <Projection>EPSG:3857</Projection><BlockSizeX>${SIZE}</BlockSizeX><BlockSizeY>${SIZE}</BlockSizeY><BandsCount>4</BandsCount>
  <ZeroBlockHttpCodes>404</ZeroBlockHttpCodes><ZeroBlockOnServerException>true</ZeroBlockOnServerException>
</GDAL_WMS>
`,
  );
  return file;
}

describe('dir target', { skip }, () => {
  test('writes an XYZ pyramid that GDAL reads in place, atomically, and knows its version', async () => {
    const root = path.join(tmp, 'pyramid');
    const target = await openDirTarget(root, layer('v1'));
    assert.equal(target.name, `dir:${root}`);
    assert.deepEqual(await hasAll(target), [false, false, false, false, false, false, false]);
    await putAll(target);
    assert.deepEqual(await hasAll(target), [true, true, true, true, true, false, false], 'the empty tile and one never put are missing');
    await assert.rejects(target.put(NOT_PUT, { ...entry('red'), type: 'image/webp' }), /a image\/webp tile in a png pyramid/);
    await target.close();

    // Only the tiles and the record: no temporary files, nothing for the empty tile.
    assert.deepEqual(listFiles(root), ['1/0/0.png', '2/1/1.png', '2/1/2.png', '2/2/1.png', '2/2/2.png', 'tilegraph.json']);
    const record = JSON.parse(readFileSync(path.join(root, 'tilegraph.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(
      { ...record, since: typeof record.since },
      { layer: 'demo', version: 'v1', format: 'png', tileSize: SIZE, minzoom: 0, maxzoom: 6, bounds: [-90, -LAT2, 90, LAT2], since: 'number' },
    );

    // GDAL places each tile by its path: z2 is 1024² pixels, tile x/y at (256x, 256y).
    const z2 = tmsXml(root, 2);
    assertPixels(readWindow(z2, 256, 256), RGBA.gradient, 'z2 x1 y1 through GDAL');
    assertPixels(readWindow(z2, 512, 256), RGBA.slope, 'z2 x2 y1 through GDAL');
    assertPixels(readWindow(z2, 512, 512), RGBA.red, 'z2 x2 y2 through GDAL');
    assertPixels(readWindow(z2, 0, 0), new Uint8Array(SIZE * SIZE * 4), 'the empty tile, never written');
    assertPixels(readWindow(tmsXml(root, 1), 0, 0), RGBA.green, 'z1 x0 y0 through GDAL');
    // Corners of the gradient tile, one gdallocationinfo call: [r, g, b, a] per point.
    const corners = gdal('gdallocationinfo', ['-valonly', z2], '256 256\n511 256\n256 511\n511 511\n');
    assert.deepEqual(corners.trim().split('\n').map(Number), [0, 0, 7, 255, 255, 0, 7, 255, 0, 255, 7, 255, 255, 255, 7, 255]);

    // The same version across close and open: every tile it holds counts.
    const again = await openDirTarget(root, layer('v1'));
    assert.deepEqual(await hasAll(again), [true, true, true, true, true, false, false]);
    await again.close();

    // Another version: every tile is stale, also after a run of it stops half way and resumes.
    const v2 = await openDirTarget(root, layer('v2'));
    assert.deepEqual(await hasAll(v2), [false, false, false, false, false, false, false]);
    assert.equal((JSON.parse(readFileSync(path.join(root, 'tilegraph.json'), 'utf8')) as { version: string }).version, 'v2');
    await v2.put(TILES[0]!.t, entry('gradient'));
    await v2.close();
    const resumed = await openDirTarget(root, layer('v2'));
    assert.deepEqual(await hasAll(resumed), [true, false, false, false, false, false, false], 'only the tile written for v2');
    await resumed.close();
    assert.deepEqual(listFiles(root), ['1/0/0.png', '2/1/1.png', '2/1/2.png', '2/2/1.png', '2/2/2.png', 'tilegraph.json']);
  });

  test('refuses a root that is a file, and a directory of another layer', async () => {
    const file = path.join(tmp, 'not-a-dir');
    writeFileSync(file, 'x');
    await assert.rejects(openDirTarget(file, layer('v1')), (err: Error) => err.message.includes(file) && /not a directory/.test(err.message));

    const root = path.join(tmp, 'other-layer');
    await (await openDirTarget(root, layer('v1', 'first'))).close();
    await assert.rejects(
      openDirTarget(root, layer('v1', 'second')),
      (err: Error) => err.message.includes(root) && /layer 'first'/.test(err.message) && /not 'second'/.test(err.message),
    );
    writeFileSync(path.join(root, 'tilegraph.json'), 'not json');
    await assert.rejects(openDirTarget(root, layer('v1', 'first')), /tilegraph\.json: not a tilegraph record/);
  });

  test("a directory it cannot make or write names itself and what failed, in the system's words", async () => {
    const file = path.join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const under = path.join(file, 'tiles');
    await assert.rejects(openDirTarget(under, layer('v1')), (err: Error) => err.message.startsWith(`${under}: cannot `) && /ENOTDIR/.test(err.message));
    // Files cannot be created in /proc, whoever asks.
    await assert.rejects(openDirTarget('/proc', layer('v1')), /^Error: \/proc: cannot write its record tilegraph\.json \(E[A-Z]+: /);
  });

  test('a directory under /proc is refused, not made again and again', () => {
    // Node's recursive mkdir retried forever there, on every thread of libuv's pool: a child process, so that a hang is cut short.
    const script = `
const { openDirTarget } = await import(${JSON.stringify(new URL('../src/seed/dir.js', import.meta.url).href)});
await openDirTarget('/proc/tilegraph-tiles/run', { name: 'demo', version: 'v1', format: 'png', tileSize: 256 }).then(
  () => console.log('made'),
  (err) => console.log(err.message),
);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.signal, null, 'it answers within 20 s');
    assert.equal(r.stdout.trim(), "/proc/tilegraph-tiles/run: cannot make the directory (ENOENT: no such file or directory, mkdir '/proc/tilegraph-tiles')");
  });
});

describe('mbtiles target', { skip }, () => {
  const sqlite = (file: string) => new Database(file, { readonly: true, fileMustExist: true });

  test('writes MBTiles 1.3 that GDAL reads: TMS rows, deduplicated images, metadata of what it holds', async () => {
    const file = path.join(tmp, 'demo.mbtiles');
    const target = await openMbtilesTarget(file, layer('v1'));
    assert.equal(target.name, `mbtiles:${file}`);
    assert.deepEqual(await hasAll(target), [false, false, false, false, false, false, false]);
    await putAll(target);
    assert.deepEqual(await hasAll(target), [true, true, true, true, true, false, false], 'before the batch is committed');
    await target.close();

    // One plain file: no -wal or -shm, the header back to the rollback journal, MBTiles' application id.
    assert.deepEqual(
      readdirSync(tmp).filter((f) => f.startsWith('demo.mbtiles')),
      ['demo.mbtiles'],
    );
    const header = readFileSync(file).subarray(0, 100);
    assert.deepEqual([header[18], header[19]], [1, 1], 'file format versions 1: not WAL');
    assert.equal(header.readUInt32BE(68), 0x4d504258);

    const db = sqlite(file);
    try {
      assert.equal(db.prepare('SELECT count(*) FROM images').pluck().get(), 4, 'the two red tiles share one image');
      assert.equal(db.prepare('SELECT count(*) FROM tiles').pluck().get(), 5);
      // XYZ 2/1/1 is TMS row 2^2 - 1 - 1 = 2; the red XYZ 2/1/2 is row 1.
      const at = db.prepare<[number, number, number], Buffer>('SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?').pluck();
      assert.ok(at.get(2, 1, 2)?.equals(png.gradient));
      assert.ok(at.get(2, 1, 1)?.equals(png.red));
      assert.ok(at.get(1, 0, 1)?.equals(png.green));
      assert.equal(at.get(2, 0, 3), undefined, 'the empty tile');
    } finally {
      db.close();
    }

    const info = JSON.parse(gdal('gdalinfo', ['-json', file])) as {
      driverShortName: string;
      metadata: Record<string, Record<string, string>>;
      wgs84Extent: { coordinates: number[][][] };
      bands: { overviews?: unknown[] }[];
    };
    assert.equal(info.driverShortName, 'MBTiles');
    const meta = info.metadata['']!;
    assert.deepEqual(
      { ...meta, bounds: undefined },
      {
        ZOOM_LEVEL: '2',
        name: 'Demo layer',
        format: 'png',
        bounds: undefined,
        center: `0,0,2`,
        minzoom: '1',
        maxzoom: '2',
        attribution: '© test',
        description: 'tiles for the target tests',
        type: 'overlay',
        version: '1',
        scheme: 'tms',
        tilegraph_layer: 'demo',
        tilegraph_version: 'v1',
        tilegraph_tile_size: String(SIZE),
      },
    );
    // The layer's bounds, rounded outwards to 1e-7° as TileJSON's.
    const bounds = meta.bounds!.split(',').map(Number);
    [-90, -LAT2, 90, LAT2].forEach((v, k) =>
      assert.ok(Math.abs(bounds[k]! - v) <= 1e-7 && (k < 2 ? bounds[k]! <= v : bounds[k]! >= v), `bounds ${meta.bounds}`),
    );
    // GDAL takes its extent from `bounds` (open option USE_BOUNDS=YES by default).
    const ring = info.wgs84Extent.coordinates[0]!;
    const lons = ring.map((p) => p[0]!),
      lats = ring.map((p) => p[1]!);
    for (const [got, want] of [
      [Math.min(...lons), -90],
      [Math.max(...lons), 90],
      [Math.min(...lats), -LAT2],
      [Math.max(...lats), LAT2],
    ]) {
      assert.ok(Math.abs(got! - want!) < 0.4, `GDAL's extent ${lons}/${lats} is the bounds within a pixel`);
    }
    assert.equal(info.bands.length, 4);
    assert.equal(info.bands[0]!.overviews?.length, 1, 'z1 is the overview of z2');

    // Without `bounds` GDAL spans the tiles of the highest zoom: z2 x1..2, y1..2 from the top.
    const byTiles = ['-oo', 'USE_BOUNDS=NO'];
    assertPixels(readWindow(file, 0, 0, byTiles), RGBA.gradient, 'z2 x1 y1 through GDAL');
    assertPixels(readWindow(file, 256, 0, byTiles), RGBA.slope, 'z2 x2 y1 through GDAL');
    assertPixels(readWindow(file, 0, 256, byTiles), RGBA.red, 'z2 x1 y2 through GDAL');
    // At ZOOM_LEVEL=1 the extent is that zoom's tiles: x0 y0 alone, the world's upper left quarter.
    const z1 = ['-oo', 'ZOOM_LEVEL=1'];
    assert.match(gdal('gdalinfo', [...byTiles, ...z1, file]), /^Origin = \(-20037508\.34\d*,20037508\.34\d*\)$/m);
    assertPixels(readWindow(file, 0, 0, [...byTiles, ...z1]), RGBA.green, 'z1 x0 y0 through GDAL');

    // The same version across close and open; the metadata keeps the zooms written.
    const again = await openMbtilesTarget(file, layer('v1'));
    assert.deepEqual(await hasAll(again), [true, true, true, true, true, false, false]);
    await again.close();

    // Another version: the tiles are stale and go; `version` counts the revision.
    const v2 = await openMbtilesTarget(file, layer('v2'));
    assert.deepEqual(await hasAll(v2), [false, false, false, false, false, false, false]);
    await v2.put(TILES[1]!.t, entry('slope'));
    await v2.close();
    const resumed = await openMbtilesTarget(file, layer('v2'));
    assert.deepEqual(await hasAll(resumed), [false, true, false, false, false, false, false]);
    await resumed.close();
    const after2 = sqlite(file);
    try {
      const rows = after2.prepare<[], { name: string; value: string }>('SELECT name, value FROM metadata').all();
      const m = Object.fromEntries(rows.map((r) => [r.name, r.value]));
      assert.deepEqual([m.version, m.tilegraph_version, m.minzoom, m.maxzoom], ['2', 'v2', '2', '2']);
      assert.equal(after2.prepare('SELECT count(*) FROM images').pluck().get(), 1);
    } finally {
      after2.close();
    }
  });

  test('commits in batches that a reader sees while the run writes; refuses what is not its own', async () => {
    const file = path.join(tmp, 'batches.mbtiles');
    const target = await openMbtilesTarget(file, layer('v1'));
    const tiles: TileId[] = [];
    for (let x = 0; x < 20; x++) for (let y = 0; y < 15; y++) tiles.push({ z: 5, x, y });
    for (const t of tiles) await target.put(t, entry(t.y % 2 ? 'red' : 'green'));
    const reader = sqlite(file);
    const count = reader.prepare('SELECT count(*) FROM map').pluck();
    assert.equal(count.get(), 256, 'one batch of 256 committed, the rest pending');
    assert.equal(await target.has(tiles[299]!), true, 'a pending tile counts');
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(count.get(), 300, 'the rest committed by the timer');
    assert.equal(reader.prepare('SELECT count(*) FROM images').pluck().get(), 2);
    // A reader still open: the file cannot leave WAL mode, and close says so.
    await assert.rejects(target.close(), (err: Error) => err.message.includes(file) && /cannot leave WAL mode/.test(err.message));
    reader.close();
    const again = await openMbtilesTarget(file, layer('v1'));
    assert.equal(await again.has(tiles[299]!), true);
    await again.close();
    assert.deepEqual(
      readdirSync(tmp).filter((f) => f.startsWith('batches.mbtiles')),
      ['batches.mbtiles'],
    );

    await assert.rejects(
      openMbtilesTarget(file, layer('v1', 'other')),
      (err: Error) => err.message.includes(file) && /layer 'demo'/.test(err.message) && /not 'other'/.test(err.message),
    );
    const foreign = path.join(tmp, 'foreign.mbtiles');
    const db = new Database(foreign);
    db.exec('CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)');
    db.close();
    await assert.rejects(openMbtilesTarget(foreign, layer('v1')), (err: Error) => err.message.includes(foreign) && /did not write/.test(err.message));
    const text = path.join(tmp, 'text.mbtiles');
    writeFileSync(text, 'this is not a database, it only looks long enough to have a header of one hundred bytes.........');
    await assert.rejects(openMbtilesTarget(text, layer('v1')), (err: Error) => err.message.includes(text));
    await assert.rejects(openMbtilesTarget(tmp, layer('v1')), (err: Error) => err.message.includes(tmp) && /not a file/.test(err.message));
  });
});
