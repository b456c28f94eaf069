/**
 * Nearest-neighbour tiles from projected sources against an exact transform: `gdalwarp -r near
 * -et 0` (every pixel transformed by PROJ, no approximation). The rasters here are made for it:
 * every pixel holds a value of its own (a hash of its row and column), so a tile pixel that
 * takes its value from a neighbouring source pixel shows as a difference. The areas are large
 * (thousands of kilometres) and the zooms low, where a projection is furthest from linear
 * across a tile: polar stereographic (EPSG:3413), Lambert azimuthal equal-area (EPSG:3035)
 * and UTM far from its central meridian; and geographic rasters (EPSG:4326), which are exact,
 * one of them across the antimeridian (170° to 190°), which the server must draw on both sides.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildGraph } from '../src/ops/build.js';
import type { BandRaster } from '../src/ops/raster.js';
import { LayerGraph } from '../src/render/renderer.js';
import { footprintArea, tilesOf } from '../src/seed/coverage.js';
import { Cog } from '../src/sources/cog.js';
import { GDAL_ENV, gdalMissing, warpTile, xyzBounds, xyzTileAt } from './helpers/gdal.js';
import { decode, getJson, makeLayersDir, request, startServer, type TempLayers, type TestServer } from './helpers/http.js';

const SKIP = gdalMissing(['gdalwarp', 'gdal_translate']);
const SIZE = 256;
/** The share of pixels valid in both that must hold the very same source pixel's value. */
const MIN_IDENTICAL = 0.999;

interface Raster {
  file: string;
  srs: string;
  /** -a_ullr: upper-left x, y, lower-right x, y in the CRS. */
  ullr: [number, number, number, number];
  width: number;
  height: number;
  /** WGS84 points and zooms whose tiles the raster covers. */
  tiles: { at: [number, number]; z: number }[];
}

const RASTERS: Raster[] = [
  {
    file: 'polar_3413.tif',
    srs: 'EPSG:3413',
    ullr: [-3_000_000, 3_000_000, 3_000_000, -3_000_000],
    width: 1200,
    height: 1200,
    tiles: [
      { at: [-40, 72], z: 3 },
      { at: [-40, 72], z: 4 },
      { at: [-100, 65], z: 4 },
      { at: [-45, 65], z: 5 },
      { at: [30, 70], z: 5 },
    ],
  },
  {
    file: 'europe_3035.tif',
    srs: 'EPSG:3035',
    ullr: [2_500_000, 5_500_000, 7_500_000, 1_500_000],
    width: 1000,
    height: 800,
    tiles: [
      { at: [10, 50], z: 4 },
      { at: [25, 45], z: 4 },
      { at: [0, 48], z: 5 },
      { at: [20, 55], z: 5 },
    ],
  },
  {
    file: 'utm_32633.tif',
    srs: 'EPSG:32633',
    ullr: [0, 6_500_000, 1_000_000, 4_500_000],
    width: 500,
    height: 1000,
    tiles: [
      { at: [12, 50], z: 5 },
      { at: [16, 46], z: 5 },
      { at: [20, 52], z: 6 },
    ],
  },
  {
    // Separable: exact row and column transforms, no grid.
    file: 'europe_4326.tif',
    srs: 'EPSG:4326',
    ullr: [-30, 75, 60, 20],
    width: 1800,
    height: 1100,
    tiles: [
      { at: [10, 50], z: 3 },
      { at: [15, 60], z: 4 },
      { at: [0, 45], z: 5 },
    ],
  },
  {
    // Across the antimeridian: longitudes 170 to 190, drawn on both sides of it.
    file: 'pacific_4326.tif',
    srs: 'EPSG:4326',
    ullr: [170, 10, 190, -10],
    width: 400,
    height: 400,
    tiles: [
      { at: [175, 5], z: 5 },
      { at: [-175, 5], z: 5 },
      { at: [-175, -5], z: 6 },
    ],
  },
];

/** A pixel's own value: neighbours never share one. */
const hash = (row: number, col: number) => ((Math.imul(row, 0x9e3779b1) ^ Math.imul(col + 0x632be5, 0x85ebca6b)) >>> 16) & 0xffff;

describe('nearest tiles from projected sources match an exact transform', { skip: SKIP }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tilegraph-reprojection-'));
  const refs = path.join(dir, 'refs');
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(() => {
    for (const r of RASTERS) {
      const raw = Buffer.alloc(r.width * r.height * 2);
      for (let j = 0; j < r.height; j++) for (let i = 0; i < r.width; i++) raw.writeUInt16LE(hash(j, i), (j * r.width + i) * 2);
      const base = path.join(dir, r.file.replace(/\.tif$/, ''));
      writeFileSync(`${base}.raw`, raw);
      writeFileSync(
        `${base}.hdr`,
        `ENVI\nsamples = ${r.width}\nlines = ${r.height}\nbands = 1\nheader offset = 0\nfile type = ENVI Standard\ndata type = 12\ninterleave = bsq\nbyte order = 0\n`,
      );
      execFileSync(
        'gdal_translate',
        [
          '-q',
          '-a_srs',
          r.srs,
          '-a_ullr',
          ...r.ullr.map(String),
          '-of',
          'COG',
          '-co',
          'OVERVIEWS=NONE',
          '-co',
          'BLOCKSIZE=256',
          `${base}.raw`,
          path.join(dir, r.file),
        ],
        { env: GDAL_ENV },
      );
    }
  });

  for (const r of RASTERS) {
    for (const { at, z } of r.tiles) {
      const t = xyzTileAt(at[0], at[1], z);
      it(`${r.file} (${r.srs}) ${t.z}/${t.x}/${t.y}`, async (ctx) => {
        const cog = await Cog.open(path.join(dir, r.file));
        try {
          const cogs = new Map([['src', cog]]);
          const graph = new LayerGraph(buildGraph([{ read: { source: 'src', resampling: 'nearest' } }], { sources: cogs }), cogs);
          const { raster } = await graph.raster({ ...t, size: SIZE });
          const ours = raster as BandRaster;
          const ref = await warpTile(path.join(dir, r.file), xyzBounds(t.z, t.x, t.y), SIZE, 'near', refs, 0);
          let both = 0,
            same = 0,
            maskAgree = 0;
          for (let k = 0; k < SIZE * SIZE; k++) {
            const theirs = ref.alpha[k]! > 0;
            const mine = !!ours?.mask[k];
            if (theirs === mine) maskAgree++;
            if (!theirs || !mine) continue;
            both++;
            if (ours.bands[0]![k] === ref.values[k]) same++;
          }
          ctx.diagnostic(
            `${both} pixels valid in both, ${(100 * (same / both)).toFixed(3)}% identical; masks agree on ${(100 * (maskAgree / SIZE ** 2)).toFixed(2)}%`,
          );
          assert.ok(both > 0.25 * SIZE * SIZE, `the raster covers the tile (${both} pixels)`);
          assert.ok(same / both >= MIN_IDENTICAL, `${both - same} of ${both} pixels differ from the exact transform (${ref.command})`);
          assert.ok(maskAgree / SIZE ** 2 >= 0.999, `masks agree on ${maskAgree} pixels`);
        } finally {
          await cog.close();
        }
      });
    }
  }
});

describe('a geographic raster across the antimeridian, served', { skip: SKIP }, () => {
  let tmp: TempLayers;
  let server: TestServer;
  before(async () => {
    tmp = await makeLayersDir();
    const base = path.join(tmp.dir, 'data/pacific');
    const raw = Buffer.alloc(400 * 400 * 2);
    for (let j = 0; j < 400; j++) for (let i = 0; i < 400; i++) raw.writeUInt16LE(1 + (hash(j, i) % 60000), (j * 400 + i) * 2);
    writeFileSync(`${base}.raw`, raw);
    writeFileSync(
      `${base}.hdr`,
      'ENVI\nsamples = 400\nlines = 400\nbands = 1\nheader offset = 0\nfile type = ENVI Standard\ndata type = 12\ninterleave = bsq\nbyte order = 0\n',
    );
    execFileSync('gdal_translate', ['-q', '-a_srs', 'EPSG:4326', '-a_ullr', '170', '10', '190', '-10', '-of', 'COG', `${base}.raw`, `${base}.tif`], {
      env: GDAL_ENV,
    });
    await tmp.write(
      'pacific.yaml',
      'sources: { p: ./data/pacific.tif }\nmaxzoom: 8\npipeline:\n  - read: { source: p, resampling: nearest }\n  - rescale: { from: [0, 65535] }\n',
    );
    server = await startServer(tmp.dir, { WORKERS: '1' });
  });
  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  it('describes its bounds west > east, and draws tiles on both sides', async () => {
    const { json: list } = await getJson<{ layers: { name: string; bounds: number[] }[] }>(server.url, '/layers');
    assert.deepEqual(list.layers[0]!.bounds, [170, -10, -170, 10]);
    const { json: tj } = await getJson<{ bounds: number[]; center: number[] }>(server.url, '/tiles/pacific/tilejson.json');
    assert.deepEqual(tj.bounds, [170, -10, -170, 10], 'TileJSON 3.0.0: west greater than east across the antimeridian');
    assert.ok(Math.abs(Math.abs(tj.center[0]!) - 180) < 1e-6, `centre on the antimeridian: ${tj.center}`);
    for (const [lon, z] of [
      [-175, 5],
      [175, 5],
      [-171, 8],
    ] as const) {
      const t = xyzTileAt(lon, 0.5, z);
      const r = await request(server.url, `/tiles/pacific/${t.z}/${t.x}/${t.y}.png`);
      assert.equal(r.status, 200, `${t.z}/${t.x}/${t.y} at ${lon}°`);
      const px = await decode(r.body);
      let drawn = 0;
      for (let k = 3; k < px.data.length; k += 4) if (px.data[k]! > 0) drawn++;
      assert.ok(drawn > 0.3 * 256 * 256, `${t.z}/${t.x}/${t.y} at ${lon}° draws ${drawn} pixels`);
    }
    // Seeding covers both sides: at zoom 6, columns 62-63 (168.75° to 180°) and 0-1 (-180° to
    // -168.75°), rows 30-33 (latitudes ±10°).
    const cog = await Cog.open(path.join(tmp.dir, 'data/pacific.tif'));
    try {
      const tiles = [...tilesOf(footprintArea([cog.meta]), [6, 6])].map((t) => `${t.x}/${t.y}`).sort();
      const expected = [0, 1, 62, 63].flatMap((x) => [30, 31, 32, 33].map((y) => `${x}/${y}`)).sort();
      assert.deepEqual(tiles, expected);
    } finally {
      await cog.close();
    }
    // Beyond the data on the west side.
    const empty = xyzTileAt(-160, 0.5, 5);
    assert.equal((await request(server.url, `/tiles/pacific/5/${empty.x}/${empty.y}.png`)).status, 204);
  });
});
