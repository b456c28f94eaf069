/**
 * Nearest-neighbour tiles from projected sources against an exact transform: `gdalwarp -r near
 * -et 0` (every pixel transformed by PROJ, no approximation). The rasters here are made for it:
 * every pixel holds a value of its own (a hash of its row and column), so a tile pixel that
 * takes its value from a neighbouring source pixel shows as a difference. The areas are large
 * (thousands of kilometres) and the zooms low, where a projection is furthest from linear
 * across a tile: polar stereographic (EPSG:3413), Lambert azimuthal equal-area (EPSG:3035)
 * and UTM far from its central meridian; and a geographic raster (EPSG:4326), which is exact.
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
import { Cog } from '../src/sources/cog.js';
import { GDAL_ENV, gdalMissing, warpTile, xyzBounds, xyzTileAt } from './helpers/gdal.js';

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
