/**
 * Tile planning with numbers alone: which overview, which window, where pixel centres land.
 * Expectations are worked out here from the tile grid's definition, not from the planner.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import proj4 from '../src/proj4.js';
import { chooseLevel, planRead, type PlanSource } from '../src/tiles/plan.js';
import { HALF_WORLD, tileBounds } from '../src/tiles/mercator.js';

const MERC = '+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +no_defs';

/** A Web Mercator raster exactly covering tile 10/0/0 at the zoom-12 pixel size (1024x1024 px). */
function source(levels = [1024, 512, 256, 128]): PlanSource {
  const span = (2 * HALF_WORLD) / 2 ** 10; // one zoom-10 tile in metres
  const px = span / 1024;
  return {
    width: 1024,
    height: 1024,
    geoTransform: [-HALF_WORLD, px, 0, HALF_WORLD, 0, -px],
    proj4: MERC,
    levels: levels.map((w) => ({ width: w, height: w })),
  };
}

function ctx(z: number, x: number, y: number, size = 256, buffer = 0) {
  return { z, x, y, size, buffer, bounds: tileBounds({ z, x, y }) };
}

describe('chooseLevel (gdalwarp -ovr AUTO)', () => {
  const src = source();
  it('keeps full resolution when the output is as fine or finer', () => {
    assert.equal(chooseLevel(src, 1), 0);
    assert.equal(chooseLevel(src, 0.25), 0);
  });
  it('takes the most reduced level not coarser than the output', () => {
    assert.equal(chooseLevel(src, 2), 1);
    assert.equal(chooseLevel(src, 3.5), 1);
    assert.equal(chooseLevel(src, 4), 2);
    assert.equal(chooseLevel(src, 100), 3);
  });
  it('accepts a level within 0.1 of the ratio', () => {
    assert.equal(chooseLevel(src, 1.95), 1);
    assert.equal(chooseLevel(src, 1.85), 0);
  });
});

describe('planRead on a Web Mercator source', () => {
  it('a zoom-12 tile reads its own 256x256 block of full resolution, centres at i + 0.5', () => {
    const p = planRead(source(), ctx(12, 1, 2), 'nearest')!;
    assert.equal(p.level, 0);
    // Tile (1, 2) at zoom 12 is columns 256..511, rows 512..767 of the raster.
    assert.ok(p.window[0] <= 256 && p.window[2] >= 512 && p.window[1] <= 512 && p.window[3] >= 768);
    assert.ok(Math.abs(p.coords().u[0]! + p.window[0] - 256.5) < 1e-6);
    assert.ok(Math.abs(p.coords().v[0]! + p.window[1] - 512.5) < 1e-6);
    assert.ok(Math.abs(p.coords().u[255]! + p.window[0] - 511.5) < 1e-6);
    assert.ok(Math.abs(p.scaleX - 1) < 1e-9 && Math.abs(p.scaleY - 1) < 1e-9);
  });
  it('a zoom-10 tile (4x coarser) reads the 4x overview', () => {
    const p = planRead(source(), ctx(10, 0, 0), 'bilinear')!;
    assert.equal(p.level, 2);
    assert.ok(Math.abs(p.coords().u[0]! + p.window[0] - 0.5) < 1e-6);
  });
  it('zoom 11 without overviews reads full resolution and declares a 2x kernel', () => {
    const p = planRead(source([1024]), ctx(11, 0, 0), 'bilinear')!;
    assert.equal(p.level, 0);
    assert.ok(Math.abs(p.scaleX - 2) < 1e-9);
    assert.ok(Math.abs(p.coords().u[1]! - p.coords().u[0]! - 2) < 1e-6);
  });
  it('a buffer widens the grid on every side by whole output pixels', () => {
    const p = planRead(source(), ctx(12, 1, 1, 256, 1), 'bilinear')!;
    assert.equal(p.width, 258);
    assert.ok(Math.abs(p.coords().u[0]! + p.window[0] - 255.5) < 1e-6);
  });
  it('a tile away from the raster plans nothing', () => {
    assert.equal(planRead(source(), ctx(12, 100, 100), 'nearest'), null);
  });
});

describe('planRead through a projection', () => {
  it('a geographic source: centres fall where the inverse Mercator formula puts them', () => {
    // 0.01 degree pixels from (-1, 1): one zoom-8 tile around (0, 0) lies inside.
    const src: PlanSource = {
      width: 200,
      height: 200,
      geoTransform: [-1, 0.01, 0, 1, 0, -0.01],
      proj4: '+proj=longlat +datum=WGS84 +no_defs',
      levels: [{ width: 200, height: 200 }],
    };
    const c = ctx(8, 127, 127);
    const p = planRead(src, c, 'nearest')!;
    const res = (c.bounds[2] - c.bounds[0]) / 256;
    for (const [i, j] of [
      [0, 0],
      [100, 37],
      [255, 255],
    ] as const) {
      const mx = c.bounds[0] + (i + 0.5) * res;
      const my = c.bounds[3] - (j + 0.5) * res;
      const lon = ((mx / 6378137) * 180) / Math.PI;
      const lat = ((2 * Math.atan(Math.exp(my / 6378137)) - Math.PI / 2) * 180) / Math.PI;
      const k = j * 256 + i;
      assert.ok(Math.abs(p.coords().u[k]! + p.window[0] - (lon + 1) / 0.01) < 0.125, `u at ${i},${j}`);
      assert.ok(Math.abs(p.coords().v[k]! + p.window[1] - (1 - lat) / 0.01) < 0.125, `v at ${i},${j}`);
    }
  });
});

describe('planRead over a grid much larger than the source', () => {
  // Alberta 10-TM (EPSG:3402's projection) under another name, whose transforms are counted:
  // proj4 looks projections up by the name a definition gives.
  interface Projection {
    init(this: object): void;
    forward(this: object, p: object): object;
    inverse(this: object, p: object): object;
  }
  const registry = proj4.Proj.projections as unknown as { get(name: string): Projection; add(p: Projection & { names: string[] }): void };
  const tmerc = registry.get('tmerc');
  let transforms = 0;
  registry.add({
    names: ['counted_tmerc'],
    init(this: object) {
      tmerc.init.call(this);
    },
    forward(this: object, p: object) {
      transforms++;
      return tmerc.forward.call(this, p);
    },
    inverse(this: object, p: object) {
      transforms++;
      return tmerc.inverse.call(this, p);
    },
  });
  const def = (name: string) => `+proj=${name} +lat_0=0 +lon_0=-115 +k=0.9992 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs`;
  // 40 km of 100 m pixels east of Jasper, as the shipped DEM.
  const source = (name: string): PlanSource => ({
    width: 400,
    height: 400,
    geoTransform: [400000, 100, 0, 5900000, 0, -100],
    proj4: def(name),
    levels: [{ width: 400, height: 400 }],
  });
  /** A square grid of `W` pixels from longitude `west` and latitude `north`, `span` degrees of longitude wide. */
  const grid = (W: number, west: number, north: number, span: number) => {
    const x0 = (west / 180) * HALF_WORLD;
    const y1 = Math.log(Math.tan(Math.PI / 4 + (north * Math.PI) / 360)) * 6378137;
    const side = (span / 180) * HALF_WORLD;
    return { z: 0, size: W, buffer: 0, bounds: [x0, y1 - side, x0 + side, y1] as const };
  };

  it('tried as a hostile client would: a continent-wide preview of a local source transforms the pixels near the source, not every pixel of the grid', () => {
    // /preview?bbox=-150,40,60,75&width=2048 on a layer in Alberta 10-TM: the grid interpolation
    // fails far from the projection's meridian, and every one of the 4 million pixels was
    // transformed exactly (14 s of a render thread on a 2-core machine; two such requests held
    // every tile for as long).
    planRead(source('counted_tmerc'), grid(256, -118, 54, 2), 'bilinear');
    const W = 2048;
    transforms = 0;
    const p = planRead(source('counted_tmerc'), grid(W, -150, 75, 210), 'bilinear')!;
    // The grids that fail are given up early, and the exact transform is kept to the source's
    // few pixels: a hundredth of the grid's pixels at most (all of them and more before).
    assert.ok(transforms < (W * W) / 100, `${transforms} transforms for a ${W} px grid`);
    // The source still lands where the exact transform puts it, and nothing else is drawn.
    const { u, v } = p.coords();
    const exact = proj4(MERC, def('tmerc'));
    const res = (210 / 180) * (HALF_WORLD / W);
    const bounds = grid(W, -150, 75, 210).bounds;
    let onRaster = 0;
    for (let j = 0; j < W; j++)
      for (let i = 0; i < W; i++) {
        const k = j * W + i;
        if (!(u[k]! + p.window[0] >= 0 && u[k]! + p.window[0] < 400 && v[k]! + p.window[1] >= 0 && v[k]! + p.window[1] < 400)) continue;
        onRaster++;
        const [x, y] = exact.forward([bounds[0] + (i + 0.5) * res, bounds[3] - (j + 0.5) * res]) as [number, number];
        assert.ok(Math.abs(u[k]! + p.window[0] - (x - 400000) / 100) < 0.125, `u at ${i},${j}`);
        assert.ok(Math.abs(v[k]! + p.window[1] - (5900000 - y) / 100) < 0.125, `v at ${i},${j}`);
      }
    // 40 km at 6.9 km of ground a pixel (0.1° of longitude at 53° north): about 6 x 6 centres.
    assert.ok(onRaster >= 25 && onRaster <= 49, `${onRaster} pixels on the raster`);
    // The kernel spans a pixel's ground at the source (Web Mercator metres times the cosine of
    // the latitude, in 100 m pixels), not the projection's scale at the grid's centre, a
    // hemisphere away: taken from there, it was 4.3 times too wide, and a preview's values
    // kept less than half the spread gdalwarp's have.
    const ground = (res * Math.cos((53.23 * Math.PI) / 180)) / 100;
    for (const scale of [p.scaleX, p.scaleY]) assert.ok(Math.abs(scale / ground - 1) < 0.05, `kernel scale ${scale}, ${ground} source pixels a pixel`);
  });

  it('a grid that misses the footprint plans nothing, and transforms nothing once the footprint is known', () => {
    planRead(source('counted_tmerc'), grid(256, -118, 54, 2), 'bilinear');
    transforms = 0;
    assert.equal(planRead(source('counted_tmerc'), grid(1024, 10, 60, 20), 'bilinear'), null);
    assert.equal(transforms, 0);
  });
});
