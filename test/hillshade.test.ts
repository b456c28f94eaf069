/**
 * The hillshade operator: GDAL's gdaldem as the independent reference, plane surfaces with
 * known answers, and the seam property through the real render path.
 *
 * gdaldem measures pixel sizes in map units; on a Web Mercator grid a map metre is
 * 1/cos(lat) ground metres. gdaldem's `-s` multiplies its pixel size (the docs' "ratio of
 * vertical units to horizontal": 111120 for degrees means one degree is 111120 metres), so
 * `-s cos(lat)` makes gdaldem use res * cos(lat) ground metres: what the operator uses per
 * row. One `-s` serves a whole tile, the operator changes latitude row by row, so the whole-tile
 * comparison carries a small latitude error at the top and bottom rows; the per-row
 * comparison uses that row's own latitude and leaves only gdaldem's rounding to bytes.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadLayer } from '../src/layers/layer.js';
import { Hillshade, type HillshadeParams } from '../src/ops/builtin/hillshade.js';
import { bandRaster, type BandRaster, type TileContext } from '../src/ops/raster.js';
import type { RenderTask } from '../src/render/task.js';
import { EARTH_RADIUS, tileBounds } from '../src/tiles/mercator.js';
import { renderTile } from '../workers/render.js';
import { ROOT } from './helpers/root.js';

const SCRIPT = path.join(ROOT, 'test/fixtures/make-hillshade-fixtures.sh');
const OUT = path.join(ROOT, 'test/fixtures/out/hillshade');
const DEM = path.join(ROOT, 'layers/data/srtm_jasper_ab_100m.tif');
const GDAL_ENV = { ...process.env, PROJ_NETWORK: 'OFF' };
// Present when it runs at all: gdaldem --version prints the version and still exits 1.
const GDAL_MISSING = ['gdalwarp', 'gdal_translate', 'gdaldem'].filter((t) => spawnSync(t, ['--version'], { stdio: 'ignore' }).error !== undefined);
const SKIP_GDAL = GDAL_MISSING.length ? `GDAL command line tools not installed (${GDAL_MISSING.join(', ')})` : false;

/** 258 px: a 256 px tile plus the one-pixel buffer. */
const W = 258;

const latOfMercatorY = (y: number) => 2 * Math.atan(Math.exp(y / EARTH_RADIUS)) - Math.PI / 2;

function ctxFor(z: number, x: number, y: number, size = 256, buffer = 1): TileContext {
  return { z, x, y, size, buffer, bounds: tileBounds({ z, x, y }) };
}

/** Fills a DEM raster from f(i, j, groundPixelSizeOfRow). */
function demRaster(ctx: TileContext, f: (i: number, j: number, ground: number) => number): BandRaster {
  const w = ctx.size + 2 * ctx.buffer;
  const r = bandRaster(w, w, 1);
  const res = (ctx.bounds[2] - ctx.bounds[0]) / ctx.size;
  for (let j = 0; j < w; j++) {
    const lat = latOfMercatorY(ctx.bounds[3] + (ctx.buffer - 0.5 - j) * res);
    for (let i = 0; i < w; i++) r.bands[0]![j * w + i] = f(i, j, res * Math.cos(lat));
  }
  return r;
}

/** The shade of a plane with gradient (dz/dEast, dz/dNorth), lit from azimuth/altitude: n . L. */
function planeShade(dzdx: number, dzdy: number, azimuth: number, altitude: number): number {
  const az = (azimuth * Math.PI) / 180,
    alt = (altitude * Math.PI) / 180;
  const l = [Math.sin(az) * Math.cos(alt), Math.cos(az) * Math.cos(alt), Math.sin(alt)];
  return Math.max(0, (-dzdx * l[0]! - dzdy * l[1]! + l[2]!) / Math.hypot(dzdx, dzdy, 1));
}

describe('Hillshade operator', () => {
  it('has the registry contract: defaults, config, a one-pixel buffer, one band in and out', () => {
    const h = new Hillshade({});
    assert.equal(h.op, 'hillshade');
    assert.equal(h.arity, 1);
    assert.equal(h.buffer(), 1);
    assert.deepEqual(h.config(), { azimuth: 315, altitude: 45, zFactor: 1 });
    assert.deepEqual(new Hillshade({ azimuth: 90, altitude: 30, zFactor: 2 }).config(), { azimuth: 90, altitude: 30, zFactor: 2 });
    assert.deepEqual(h.shape([{ kind: 'bands', bands: 1 }]), { kind: 'bands', bands: 1 });
    assert.throws(() => h.shape([{ kind: 'bands', bands: 3 }]), /one band/);
    assert.throws(() => h.shape([{ kind: 'rgba', bands: 4 }]), /RGBA/);
  });

  it('refuses parameters out of range', () => {
    assert.throws(() => new Hillshade({ azimuth: 361 }), /azimuth/);
    assert.throws(() => new Hillshade({ azimuth: -1 }), /azimuth/);
    assert.throws(() => new Hillshade({ altitude: 91 }), /altitude/);
    assert.throws(() => new Hillshade({ altitude: NaN }), /altitude/);
    assert.throws(() => new Hillshade({ zFactor: 0 }), /zFactor/);
    assert.throws(() => new Hillshade({ zFactor: Infinity }), /zFactor/);
  });

  it('shades flat ground sin(altitude) and masks the outer ring', () => {
    const ctx = ctxFor(12, 700, 1300);
    const out = new Hillshade({ altitude: 30 }).apply([demRaster(ctx, () => 1234)], ctx) as BandRaster;
    for (let j = 0; j < W; j++) {
      for (let i = 0; i < W; i++) {
        const k = j * W + i;
        const edge = i === 0 || j === 0 || i === W - 1 || j === W - 1;
        assert.equal(out.mask[k], edge ? 0 : 1, `mask at ${i},${j}`);
        if (!edge) assert.ok(Math.abs(out.bands[0]![k]! - 0.5) < 1e-12);
      }
    }
  });

  it('shades tilted planes as n . L (east- and north-facing slopes, several lights)', () => {
    // At the equator cos(lat) is 1 within 1e-8 over a z14 tile: ground = mercator metres.
    const ctx = ctxFor(14, 8192, 8191);
    for (const [sx, sy] of [
      [0.3, 0],
      [-0.8, 0],
      [0, 0.5],
      [0, -1.2],
      [0.4, -0.7],
    ] as const) {
      // z = sx * east + sy * north, in ground metres (rows count southwards).
      const dem = demRaster(ctx, (i, j, g) => 1000 + sx * i * g - sy * j * g);
      for (const p of [{}, { azimuth: 45, altitude: 60 }, { azimuth: 180, altitude: 20 }, { azimuth: 270, altitude: 10, zFactor: 2 }] as HillshadeParams[]) {
        const h = new Hillshade(p);
        const out = h.apply([dem], ctx) as BandRaster;
        const cfg = h.config() as { azimuth: number; altitude: number; zFactor: number };
        const want = planeShade(sx * cfg.zFactor, sy * cfg.zFactor, cfg.azimuth, cfg.altitude);
        for (const k of [W + 1, 129 * W + 129, 256 * W + 256]) {
          // Float32 elevations of a few thousand metres carry ~1e-5 relative error into the gradient.
          assert.ok(Math.abs(out.bands[0]![k]! - want) < 2e-5, `slope ${sx},${sy} ${JSON.stringify(p)}: ${out.bands[0]![k]} vs ${want}`);
        }
      }
    }
  });

  it('uses ground distances: the same mercator grid of heights is steeper at 60 N than at the equator', () => {
    // Elevation rising 0.25 m per mercator metre eastwards: 0.25 / cos(lat) per ground metre.
    const merc60 = Math.log(Math.tan(Math.PI / 4 + Math.PI / 6)) * EARTH_RADIUS;
    const z = 14,
      n = 2 ** z,
      span = (2 * 20037508.342789244) / n;
    const y60 = Math.floor((20037508.342789244 - merc60) / span);
    const shades: number[] = [];
    for (const ty of [n / 2, y60]) {
      const ctx = ctxFor(z, n / 2, ty);
      const res = span / 256;
      const dem = demRaster(ctx, (i) => 0.25 * i * res);
      const out = new Hillshade({ azimuth: 90 }).apply([dem], ctx) as BandRaster;
      const lat = latOfMercatorY(ctx.bounds[3] + (0.5 - 129) * res);
      assert.ok(Math.abs(lat - (ty === y60 ? Math.PI / 3 : 0)) < 1e-3);
      const want = planeShade(0.25 / Math.cos(lat), 0, 90, 45);
      const got = out.bands[0]![129 * W + 129]!;
      assert.ok(Math.abs(got - want) < 1e-6, `lat ${lat}: ${got} vs ${want}`);
      shades.push(got);
    }
    // Lit from the east, a slope rising eastwards is darker where it is steeper.
    assert.ok(shades[1]! < shades[0]! - 0.1, `equator ${shades[0]}, 60 N ${shades[1]}`);
  });

  it('masks every pixel whose 3x3 neighbourhood touches nodata, and nothing else', () => {
    const ctx = ctxFor(12, 700, 1300);
    const dem = demRaster(ctx, (i, j) => 500 + 3 * i + 2 * j);
    dem.mask[100 * W + 50] = 0;
    dem.bands[0]![100 * W + 50] = NaN;
    const out = new Hillshade({}).apply([dem], ctx) as BandRaster;
    let masked = 0;
    for (let j = 1; j < W - 1; j++) {
      for (let i = 1; i < W - 1; i++) {
        const near = Math.abs(i - 50) <= 1 && Math.abs(j - 100) <= 1;
        assert.equal(out.mask[j * W + i], near ? 0 : 1);
        if (near) masked++;
        else assert.ok(Number.isFinite(out.bands[0]![j * W + i]!));
      }
    }
    assert.equal(masked, 9);
  });

  it('refuses a raster that does not match the tile and its buffer', () => {
    const ctx = ctxFor(12, 700, 1300);
    assert.throws(() => new Hillshade({}).apply([bandRaster(256, 256, 1)], ctx), /256x256 raster for a 256 px tile with a 1 px buffer/);
  });
});

const VARIANTS: HillshadeParams[] = [
  {},
  { azimuth: 45 },
  { azimuth: 180, altitude: 30 },
  { azimuth: 90, altitude: 15, zFactor: 0.5 },
  { azimuth: 250, altitude: 70, zFactor: 3 },
];
interface Fixture {
  z: number;
  x: number;
  y: number;
  /** Compared over the whole tile (one gdaldem latitude). */
  whole: HillshadeParams[];
  /** Compared row by row, each row with its own latitude. */
  rows: HillshadeParams[];
}
// Every gdaldem run costs ~0.14 s of start-up: all variants on the z10 tile (pixels the size
// of the source's), a few on the z11 tile.
const FIXTURES: Fixture[] = [
  { z: 10, x: 177, y: 332, whole: VARIANTS, rows: [VARIANTS[0]!, VARIANTS[4]!] },
  { z: 11, x: 354, y: 664, whole: [VARIANTS[0]!, VARIANTS[3]!], rows: [VARIANTS[0]!] },
];

describe('Hillshade against gdaldem hillshade on the same Web Mercator DEM tiles', { skip: SKIP_GDAL }, () => {
  let tmp = '';
  before(() => {
    const scriptTime = statSync(SCRIPT).mtimeMs;
    const stale = FIXTURES.some(({ z, x, y }) =>
      ['tif', 'f32'].some((ext) => {
        const p = path.join(OUT, `dem_${z}_${x}_${y}.${ext}`);
        return !existsSync(p) || statSync(p).mtimeMs < scriptTime;
      }),
    );
    if (stale) execFileSync('bash', [SCRIPT, OUT], { cwd: ROOT, env: GDAL_ENV, stdio: ['ignore', 'ignore', 'inherit'] });
    tmp = mkdtempSync(path.join(tmpdir(), 'tilegraph-hillshade-'));
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  function fixtureRaster({ z, x, y }: Fixture): BandRaster {
    const buf = readFileSync(path.join(OUT, `dem_${z}_${x}_${y}.f32`));
    assert.equal(buf.length, W * W * 4, 'raw Float32 258x258');
    const r = bandRaster(W, W, 1);
    const dem = r.bands[0]!;
    for (let k = 0; k < W * W; k++) {
      dem[k] = buf.readFloatLE(k * 4);
      r.mask[k] = Number.isNaN(dem[k]) ? 0 : 1;
    }
    return r;
  }

  /** gdaldem's bytes (0 nodata, else 1 + 254 cang, rounded) for the fixture. */
  function gdaldem({ z, x, y }: Fixture, p: HillshadeParams, scale: number): Uint8Array {
    const out = path.join(tmp, `hs_${z}_${x}_${y}.bin`);
    execFileSync(
      'gdaldem',
      [
        'hillshade',
        '-q',
        '-of',
        'ENVI',
        '-az',
        String(p.azimuth ?? 315),
        '-alt',
        String(p.altitude ?? 45),
        '-z',
        String(p.zFactor ?? 1),
        '-s',
        String(scale),
        path.join(OUT, `dem_${z}_${x}_${y}.tif`),
        out,
      ],
      { env: GDAL_ENV, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const bytes = new Uint8Array(readFileSync(out));
    assert.equal(bytes.length, W * W);
    return bytes;
  }

  /** Latitude of the centre of buffered row j. */
  function rowLat(ctx: TileContext, j: number): number {
    const res = (ctx.bounds[2] - ctx.bounds[0]) / ctx.size;
    return latOfMercatorY(ctx.bounds[3] + (ctx.buffer - 0.5 - j) * res);
  }

  /** Differences in gdaldem byte levels over the given rows, after checking the masks agree. */
  function compare(ours: BandRaster, ref: Uint8Array, rows: number[]): number[] {
    const diffs: number[] = [];
    const maskDiffers: string[] = [];
    for (const j of rows) {
      for (let i = 0; i < W; i++) {
        const k = j * W + i;
        if (ours.mask[k] !== (ref[k] === 0 ? 0 : 1)) maskDiffers.push(`${i},${j}`);
        else if (ours.mask[k]) diffs.push(Math.abs(1 + 254 * ours.bands[0]![k]! - ref[k]!));
      }
    }
    assert.deepEqual(maskDiffers, [], 'pixels valid in one and not the other');
    return diffs.sort((a, b) => a - b);
  }

  const ALL_ROWS = Array.from({ length: W }, (_, j) => j);

  for (const fx of FIXTURES) {
    for (const p of fx.whole) {
      it(`z${fx.z}/${fx.x}/${fx.y} ${JSON.stringify(p)}: whole tile with gdaldem -s cos(centre latitude)`, (t) => {
        const ctx = ctxFor(fx.z, fx.x, fx.y);
        const ours = new Hillshade(p).apply([fixtureRaster(fx)], ctx) as BandRaster;
        const latC = latOfMercatorY((ctx.bounds[1] + ctx.bounds[3]) / 2);
        const diffs = compare(ours, gdaldem(fx, p, Math.cos(latC)), ALL_ROWS);
        assert.equal(diffs.length, 256 * 256, 'every tile pixel is valid in both');
        const p99 = diffs[Math.floor(0.99 * diffs.length)]!;
        const max = diffs[diffs.length - 1]!;
        const mean = diffs.reduce((s, d) => s + d, 0) / diffs.length;
        t.diagnostic(
          `levels of 255: max ${max.toFixed(3)}, p99 ${p99.toFixed(3)}, mean ${mean.toFixed(3)}; within 1 level ${((100 * diffs.filter((d) => d <= 1).length) / diffs.length).toFixed(2)}%`,
        );
        // gdaldem rounds to bytes (0.5) and uses one latitude for the tile (the rest: ~0.3).
        assert.ok(p99 <= 1, `p99 ${p99}`);
        assert.ok(max <= 1, `max ${max}`);
      });
    }

    it(`z${fx.z}/${fx.x}/${fx.y}: rows at the top, centre and bottom with gdaldem -s cos(that row's latitude)`, (t) => {
      const ctx = ctxFor(fx.z, fx.x, fx.y);
      const dem = fixtureRaster(fx);
      const report: string[] = [];
      for (const p of fx.rows) {
        const ours = new Hillshade(p).apply([dem], ctx) as BandRaster;
        for (const j of [1, 128, 256]) {
          const diffs = compare(ours, gdaldem(fx, p, Math.cos(rowLat(ctx, j))), [j]);
          const max = diffs[diffs.length - 1]!;
          report.push(`${JSON.stringify(p)} row ${j}: max ${max.toFixed(3)}`);
          // Only gdaldem's rounding to a byte is left (its 1/sqrt approximation is ~1e-7 relative).
          assert.ok(max <= 0.5 + 1e-3, `row ${j} ${JSON.stringify(p)}: max ${max}`);
        }
      }
      t.diagnostic(report.join('; '));
    });
  }
});

describe('Hillshade tiles join without seams (read -> hillshade through the render thread)', () => {
  let dir = '';
  let layer: Awaited<ReturnType<typeof loadLayer>>;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tilegraph-hs-layers-'));
    mkdirSync(path.join(dir, 'data'));
    copyFileSync(DEM, path.join(dir, 'data/dem.tif'));
    writeFileSync(
      path.join(dir, 'hs.yaml'),
      [
        'title: hillshade seam test',
        'sources:',
        '  dem: ./data/dem.tif',
        'pipeline:',
        '  - read: { source: dem, bands: [1], resampling: bilinear }',
        '  - hillshade: {}',
        '',
      ].join('\n'),
    );
    layer = await loadLayer(path.join(dir, 'hs.yaml'), { layersDir: dir, allowedHosts: [] });
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function tile(z: number, x: number, y: number, size: number): Promise<Uint8Array> {
    const task: RenderTask = { layer: layer.spec, z, x, y, size };
    const result = await renderTile(task);
    assert.ok(result.rgba, `tile ${z}/${x}/${y}@${size} drew nothing`);
    return new Uint8Array(result.rgba);
  }

  it('the graph asks read for one pixel of buffer', () => {
    assert.equal(layer.graph.buffer(), 1);
    assert.deepEqual((layer.config.pipeline as Record<string, unknown>[])[1], { hillshade: { azimuth: 315, altitude: 45, zFactor: 1 } });
  });

  it('four z11 children at 256 px, stitched, equal their z10 parent at 512 px', async (t) => {
    const parent = await tile(10, 177, 332, 512);
    const stitched = new Uint8Array(512 * 512 * 4);
    for (const [dx, dy] of [
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 1],
    ] as const) {
      const child = await tile(11, 354 + dx, 664 + dy, 256);
      for (let j = 0; j < 256; j++) stitched.set(child.subarray(j * 1024, (j + 1) * 1024), ((dy * 256 + j) * 512 + dx * 256) * 4);
    }
    let max = 0,
      differing = 0,
      seamMax = 0,
      opaque = 0;
    for (let j = 0; j < 512; j++) {
      for (let i = 0; i < 512; i++) {
        const o = (j * 512 + i) * 4;
        assert.equal(stitched[o + 3], parent[o + 3], `alpha at ${i},${j}`);
        if (parent[o + 3]) opaque++;
        const d = Math.max(...[0, 1, 2].map((c) => Math.abs(stitched[o + c]! - parent[o + c]!)));
        if (d) differing++;
        max = Math.max(max, d);
        // The children's edges: the rows and columns either side of the seams.
        if (i === 255 || i === 256 || j === 255 || j === 256) seamMax = Math.max(seamMax, d);
      }
    }
    t.diagnostic(`opaque ${opaque}/${512 * 512}; max difference ${max} level(s), ${differing} pixel(s) differ; along the seams max ${seamMax}`);
    assert.equal(opaque, 512 * 512, 'the parent lies inside the DEM');
    // The hillshade sees the same neighbours in both; what is left comes from `read`, whose
    // bilinear heights for the two grids differ by millimetres (interpolated reprojection):
    // a few thousandths of a level, enough to tip a rare pixel across a rounding boundary.
    assert.ok(max <= 1, `max difference ${max}`);
    assert.ok(differing <= 0.001 * 512 * 512, `${differing} pixels differ`);
    assert.ok(seamMax <= 1, `seam difference ${seamMax}`);
  });
});
