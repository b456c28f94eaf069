/**
 * Each built-in operator's output against expectations computed here from the input values,
 * never by the code under test:
 *
 * - a tiny Web Mercator COG written by GDAL from values chosen in this file, covering exactly
 *   one tile, so that output pixel (i, j) is source pixel (i, j) and every expectation is plain
 *   float64 arithmetic on the values written;
 * - the shipped Landsat 8 bands (NDVI, rescale `from: auto`) and NLCD land cover (its colour
 *   table), read independently with GDAL: `gdaltransform` places output pixel centres on the
 *   source grid, `gdallocationinfo` reads the values there, `gdal_translate` reads an overview,
 *   `gdalinfo -json` gives the colour table;
 * - published colours of the named maps (viridis #440154 .. #fde725).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Read } from '../src/ops/builtin/read.js';
import { buildOperator } from '../src/ops/registry.js';
import { Sequential } from '../src/ops/operator.js';
import { bandRaster, type BandRaster, type Raster, type RgbaRaster, type TileContext } from '../src/ops/raster.js';
import { blockCache } from '../src/sources/blockcache.js';
import { Cog } from '../src/sources/cog.js';
import { percentiles } from '../src/sources/statistics.js';
import { renderTile } from '../workers/render.js';
import {
  band,
  gdal,
  layerSpec,
  pixelCentre,
  readEnviRaw,
  runPipeline,
  SHIPPED_DATA,
  sourcePixels,
  tempDir,
  tileAt,
  toolsMissing,
  valuesAt,
  writeMercatorCog,
  type Tile,
} from './helpers/layers.js';

const skip = toolsMissing(['gdal_translate', 'gdalinfo', 'gdaltransform', 'gdallocationinfo', 'gdalbuildvrt']);

// ---------------------------------------------------------------------------------------
// The synthetic fixture: three Float32 bands over tile 12/1000/1500, rows 160.. nodata.

const SIZE = 256;
const TILE: Tile = { z: 12, x: 1000, y: 1500 };
const NODATA = -9999;
/** Rows from here down are nodata in every band: 37.5% of the tile. */
const FIRST_NODATA_ROW = 160;
/** One pixel where b1 + b2 = 0: normalized_difference must leave it empty. */
const ZERO_SUM: [number, number] = [5, 7];

const isZeroSum = (i: number, j: number) => i === ZERO_SUM[0] && j === ZERO_SUM[1];
const B1 = band(SIZE, (i, j) => (j >= FIRST_NODATA_ROW ? NODATA : isZeroSum(i, j) ? 3 : 10.25 + ((i * 37 + j * 11) % 200)));
const B2 = band(SIZE, (i, j) => (j >= FIRST_NODATA_ROW ? NODATA : isZeroSum(i, j) ? -3 : 5.5 + (((i * 13) ^ (j * 7)) % 150)));
const B3 = band(SIZE, (i, j) => (j >= FIRST_NODATA_ROW ? NODATA : (i - j) * 0.5));

const tmp = tempDir('operators');
const GRID = path.join(tmp.dir, 'grid.tif');

/** Landsat 8 (UTM 12N, 30 m) and NLCD over Zion, as shipped. */
const RED = path.join(SHIPPED_DATA, 'landsat8_zion_20150818_b4_red.tif');
const NIR = path.join(SHIPPED_DATA, 'landsat8_zion_20150818_b5_nir.tif');
const NLCD = path.join(SHIPPED_DATA, 'nlcd2011_zion.tif');
const DEM = path.join(SHIPPED_DATA, 'srtm_jasper_ab_100m.tif');
/** NIR and red as bands 1 and 2 of one COG, for `normalized_difference: { bands: [1, 2] }`. */
const NIR_RED = path.join(tmp.dir, 'nir_red.tif');
/** A z14 tile inside the Landsat scene: output pixels (~7.6 m) are finer than the 30 m source, so `read` uses full resolution. */
const ZION: Tile = tileAt(-113.03, 37.3, 14);

before(() => {
  if (skip) return;
  writeMercatorCog(GRID, TILE, SIZE, [B1, B2, B3], { nodata: NODATA });
  const vrt = path.join(tmp.dir, 'nir_red.vrt');
  gdal('gdalbuildvrt', ['-q', '-separate', vrt, NIR, RED]);
  gdal('gdal_translate', ['-q', '-of', 'COG', '-co', 'COMPRESS=DEFLATE', vrt, NIR_RED]);
});
after(() => tmp.remove());

function bands(r: Raster | null): BandRaster {
  assert.ok(r, 'the graph drew nothing');
  assert.equal(r.kind, 'bands');
  return r as BandRaster;
}

function rgba(r: Raster | null): RgbaRaster {
  assert.ok(r, 'the graph drew nothing');
  assert.equal(r.kind, 'rgba');
  return r as RgbaRaster;
}

/** Checks every pixel of the fixture tile: `expect` returns the value, or null where the output must be empty. */
function checkPixels(r: BandRaster, b: number, expect: (k: number, i: number, j: number) => number | null, tol: number, what: string): void {
  assert.equal(r.width, SIZE);
  let valid = 0;
  for (let j = 0; j < SIZE; j++) {
    for (let i = 0; i < SIZE; i++) {
      const k = j * SIZE + i;
      const want = expect(k, i, j);
      if (want === null) {
        assert.equal(r.mask[k], 0, `${what}: pixel (${i}, ${j}) should be empty`);
        continue;
      }
      valid++;
      assert.equal(r.mask[k], 1, `${what}: pixel (${i}, ${j}) should hold data`);
      const got = r.bands[b]![k]!;
      assert.ok(Math.abs(got - want) <= tol * Math.max(1, Math.abs(want)), `${what}: pixel (${i}, ${j}) = ${got}, expected ${want}`);
    }
  }
  assert.ok(valid > 0, `${what}: no valid pixels were checked`);
}

const validPixel = (j: number) => j < FIRST_NODATA_ROW;

// ---------------------------------------------------------------------------------------
// Landsat sample points, placed by GDAL

interface Point {
  /** Output pixel index in the tile. */
  k: number;
  col: number;
  row: number;
}

/**
 * Output pixel centres of `tile` (every 8th pixel) that fall well inside a source pixel of
 * `file` (0.2..0.8 of the way across in both directions), so that nearest-neighbour sampling
 * cannot legitimately pick a neighbour; with the source pixel GDAL puts them in.
 */
function samplePoints(file: string, tile: Tile): Point[] {
  const idx: number[] = [];
  const centres: [number, number][] = [];
  for (let j = 4; j < SIZE; j += 8)
    for (let i = 4; i < SIZE; i += 8) {
      idx.push(j * SIZE + i);
      centres.push(pixelCentre(tile, SIZE, i, j));
    }
  const px = sourcePixels(file, centres);
  const inside = (t: number) => {
    const f = t - Math.floor(t);
    return f > 0.2 && f < 0.8;
  };
  const points = px.flatMap(([c, r], n) => (inside(c) && inside(r) ? [{ k: idx[n]!, col: Math.floor(c), row: Math.floor(r) }] : []));
  assert.ok(points.length > 200, `only ${points.length} sample points fell well inside source pixels`);
  return points;
}

describe('normalized_difference', { skip }, () => {
  const nd = (a: number, b: number) => (a - b) / (a + b);
  const expectND = (a: Float32Array, b: Float32Array) => (k: number, i: number, j: number) => (validPixel(j) && !isZeroSum(i, j) ? nd(a[k]!, b[k]!) : null);

  it('graph form, two reads: (a - b) / (a + b) of the input values, empty where the sum is 0 or data is missing', async () => {
    const { raster } = await runPipeline(
      {
        nodes: {
          a: { op: 'read', source: 'grid', bands: [1] },
          b: { op: 'read', source: 'grid', bands: [2] },
          ndvi: { op: 'normalized_difference', in: ['a', 'b'] },
        },
        output: 'ndvi',
      },
      { grid: GRID },
      TILE,
    );
    checkPixels(bands(raster), 0, expectND(B1, B2), 1e-6, 'in: [a, b]');
  });

  it('`bands: [a, b]` form of one input, in the order given', async () => {
    const { raster } = await runPipeline([{ read: { source: 'grid' } }, { normalized_difference: { bands: [2, 1] } }], { grid: GRID }, TILE);
    checkPixels(bands(raster), 0, expectND(B2, B1), 1e-6, 'bands: [2, 1]');
  });

  it('NDVI of the shipped Landsat 8 tiles equals (B5 - B4) / (B5 + B4) of the values GDAL reads', async () => {
    const points = samplePoints(NIR, ZION);
    const nir = valuesAt(
      NIR,
      points.map((p) => [p.col, p.row]),
    );
    const red = valuesAt(
      RED,
      points.map((p) => [p.col, p.row]),
    );
    const graph = await runPipeline(
      {
        nodes: {
          red: { op: 'read', source: 'red', bands: [1], resampling: 'nearest' },
          nir: { op: 'read', source: 'nir', bands: [1], resampling: 'nearest' },
          ndvi: { op: 'normalized_difference', in: ['nir', 'red'] },
        },
        output: 'ndvi',
      },
      { red: RED, nir: NIR },
      ZION,
    );
    const list = await runPipeline(
      [{ read: { source: 'both', resampling: 'nearest' } }, { normalized_difference: { bands: [1, 2] } }],
      { both: NIR_RED },
      ZION,
    );
    for (const [form, r] of [
      ['graph', bands(graph.raster)],
      ['bands', bands(list.raster)],
    ] as const) {
      let spread = 0;
      points.forEach((p, n) => {
        const want = nd(nir[n]!, red[n]!);
        assert.equal(r.mask[p.k], 1, `${form}: pixel ${p.k} should hold data`);
        assert.ok(
          Math.abs(r.bands[0]![p.k]! - want) < 1e-6,
          `${form}: NDVI at source pixel (${p.col}, ${p.row}) = ${r.bands[0]![p.k]}, expected ${want} from B5 ${nir[n]}, B4 ${red[n]}`,
        );
        spread = Math.max(spread, Math.abs(want));
      });
      assert.ok(spread > 0.05, 'the sample should not be flat');
    }
  });
});

describe('rescale', { skip }, () => {
  it('fixed: linear from [from] to [0, 1], clamped', async () => {
    const { raster } = await runPipeline([{ read: { source: 'grid', bands: [1] } }, { rescale: { from: [50, 150] } }], { grid: GRID }, TILE);
    checkPixels(bands(raster), 0, (k, _i, j) => (validPixel(j) ? Math.min(1, Math.max(0, (B1[k]! - 50) / 100)) : null), 1e-6, 'from [50, 150]');
  });

  it('fixed, with an inverted `to` range', async () => {
    const { raster } = await runPipeline([{ read: { source: 'grid', bands: [2] } }, { rescale: { from: [20, 120], to: [255, 0] } }], { grid: GRID }, TILE);
    checkPixels(bands(raster), 0, (k, _i, j) => (validPixel(j) ? Math.min(255, Math.max(0, 255 - ((B2[k]! - 20) / 100) * 255)) : null), 1e-5, 'to [255, 0]');
  });

  it('from: auto is the 2nd-98th percentile of the overview GDAL reads, and the output follows it', async () => {
    // The overview: the smallest one still 256 px a side (282x357 here), read by GDAL.
    const info = JSON.parse(gdal('gdalinfo', ['-json', NIR])) as { bands: { overviews: { size: [number, number] }[]; noDataValue?: number }[] };
    const ovs = info.bands[0]!.overviews.map((o) => o.size);
    let level = -1;
    ovs.forEach(([w, h], n) => {
      if (Math.min(w, h) >= 256) level = n;
    });
    assert.deepEqual(ovs[level], [282, 357]);
    const base = path.join(tmp.dir, 'nir_overview');
    gdal('gdal_translate', ['-q', '-of', 'ENVI', '-oo', `OVERVIEW_LEVEL=${level}`, NIR, `${base}.raw`]);
    const ov = readEnviRaw(base);
    assert.deepEqual([ov.width, ov.height], [282, 357]);
    const nodata = info.bands[0]!.noDataValue;
    const sorted = Float64Array.from(ov.bands[0]!.filter((v) => v !== nodata)).sort();
    // Definitions of a percentile differ (nearest rank, numpy's linear, ...), but every one
    // lies between the two order statistics around rank p * (n - 1).
    const bracket = (p: number): [number, number] => {
      const h = (sorted.length - 1) * p;
      return [sorted[Math.floor(h)]!, sorted[Math.ceil(h)]!];
    };
    const b2 = bracket(0.02),
      b98 = bracket(0.98);

    const seq = await runPipeline([{ read: { source: 'nir', resampling: 'nearest' } }, { rescale: { from: 'auto' } }], { nir: NIR }, ZION);
    const [[lo, hi]] = (await ((seq.graph as Sequential).steps[0] as Read).percentiles(seq.cogs.get('nir')!)) as [[number, number]];
    assert.ok(lo >= b2[0] && lo <= b2[1], `2nd percentile ${lo}, GDAL's overview puts it in [${b2.join(', ')}]`);
    assert.ok(hi >= b98[0] && hi <= b98[1], `98th percentile ${hi}, GDAL's overview puts it in [${b98.join(', ')}]`);
    const p2 = (b2[0] + b2[1]) / 2,
      p98 = (b98[0] + b98[1]) / 2;

    // The tile itself, against the raw values GDAL reads at the sample points.
    const points = samplePoints(NIR, ZION);
    const raw = valuesAt(
      NIR,
      points.map((p) => [p.col, p.row]),
    );
    const out = bands(seq.raster);
    const slope = 1 / (p98 - p2);
    // How far the output may move with the percentiles anywhere inside their brackets.
    const tol = (b2[1] - b2[0] + (b98[1] - b98[0])) * slope + 1e-5;
    let inside = 0;
    points.forEach((p, n) => {
      const want = Math.min(1, Math.max(0, (raw[n]! - p2) * slope));
      if (want > 0 && want < 1) inside++;
      assert.ok(Math.abs(out.bands[0]![p.k]! - want) <= tol, `rescaled ${raw[n]} gave ${out.bands[0]![p.k]}, expected ${want} (within ${tol})`);
    });
    assert.ok(inside > 10, 'most samples should fall strictly inside the stretch');
  });

  it('from: auto on a raster with no overviews decodes a bounded, spread sample, close to the exact percentiles', async () => {
    // 3000 x 3000 Float32 in 256-pixel blocks (144 of them), no overviews: read whole, the
    // estimate would decode every block and hold 36 MB per band at once.
    const big = path.join(tmp.dir, 'big_no_overviews.tif');
    gdal('gdal_translate', ['-q', '-of', 'COG', '-outsize', '3000', '3000', '-r', 'bilinear', '-co', 'OVERVIEWS=NONE', '-co', 'BLOCKSIZE=256', DEM, big]);
    const base = path.join(tmp.dir, 'big_raw');
    gdal('gdal_translate', ['-q', '-of', 'ENVI', big, `${base}.raw`]);
    const exact = Float64Array.from(readEnviRaw(base).bands[0]!.filter((v) => !Number.isNaN(v))).sort();
    const rank = (p: number) => exact[Math.round(p * (exact.length - 1))]!;

    const cog = await Cog.open(big);
    try {
      blockCache.takeCounts();
      const [[lo, hi]] = (await percentiles(cog, [0], null)) as [[number, number]];
      const { decoded } = blockCache.takeCounts();
      assert.ok(decoded <= 40, `decoded ${decoded} of 144 blocks`);
      // A sample's percentile stays within a few ranks of the whole raster's.
      assert.ok(lo >= rank(0.005) && lo <= rank(0.05), `2nd percentile ${lo}: the raster's 0.5th-5th run ${rank(0.005)}-${rank(0.05)} (exact ${rank(0.02)})`);
      assert.ok(
        hi >= rank(0.95) && hi <= rank(0.995),
        `98th percentile ${hi}: the raster's 95th-99.5th run ${rank(0.95)}-${rank(0.995)} (exact ${rank(0.98)})`,
      );
    } finally {
      await cog.close();
    }
  });
});

/** Runs a colormap built through the registry over one row of values (NaN for a masked pixel). */
function colormap(params: Record<string, unknown>, values: readonly number[], palette?: Uint8Array): [number, number, number, number][] {
  const op = buildOperator('colormap', params, { sources: new Map(), inputs: 1 });
  const r = bandRaster(values.length, 1, 1);
  values.forEach((v, i) => {
    r.bands[0]![i] = v;
    r.mask[i] = Number.isNaN(v) ? 0 : 1;
  });
  if (palette) r.palette = palette;
  const ctx: TileContext = { z: 0, x: 0, y: 0, size: values.length, buffer: 0, bounds: [0, 0, 1, 1] };
  const out = op.apply([r], ctx) as RgbaRaster;
  return values.map((_, i) => [...out.data.subarray(i * 4, i * 4 + 4)] as [number, number, number, number]);
}

function hex(h: string): [number, number, number, number] {
  const m = /^#(..)(..)(..)(..)?$/.exec(h)!;
  return [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16), m[4] ? parseInt(m[4], 16) : 255];
}

function near(got: readonly number[], want: readonly number[], tol: number, what: string): void {
  assert.ok(
    got.every((g, c) => Math.abs(g - want[c]!) <= tol),
    `${what}: got ${got.join(',')}, expected ${want.join(',')} (within ${tol})`,
  );
}

describe('colormap', { skip }, () => {
  it("'source' after a read of a file without a colour table is refused when the graph is built, not at every tile", async () => {
    await assert.rejects(
      runPipeline([{ read: { source: 'nir' } }, { colormap: { name: 'source' } }], { nir: NIR }, ZION),
      /colormap 'source' needs one band of a source with a colour table \(a paletted GeoTIFF\); 'nir' has none/,
    );
    const { raster } = await runPipeline([{ read: { source: 'nlcd' } }, { colormap: { name: 'source' } }], { nlcd: NLCD }, ZION);
    assert.ok(raster, 'a paletted source draws');
  });

  it('viridis ends at the published #440154 and #fde725, over `range`, clamped, and reversed', () => {
    const [v0, v1, under, over, masked] = colormap({ name: 'viridis' }, [0, 1, -5, 7, NaN]);
    near(v0!, hex('#440154'), 1, 'viridis(0)');
    near(v1!, hex('#fde725'), 1, 'viridis(1)');
    near(under!, hex('#440154'), 1, 'below the range');
    near(over!, hex('#fde725'), 1, 'above the range');
    assert.deepEqual(masked, [0, 0, 0, 0], 'nodata is transparent');
    const [r0, r1] = colormap({ name: 'viridis', reverse: true }, [0, 1]);
    near(r0!, hex('#fde725'), 1, 'reversed viridis(0)');
    near(r1!, hex('#440154'), 1, 'reversed viridis(1)');
    const [lo, hi] = colormap({ name: 'viridis', range: [100, 300] }, [100, 300]);
    near(lo!, hex('#440154'), 1, 'viridis at range min');
    near(hi!, hex('#fde725'), 1, 'viridis at range max');
  });

  it('stops interpolate linearly in the data units (midpoints), clamp outside, in any order', () => {
    const stops = [
      [200, '#00FF0080'],
      [0, '#000000'],
      [100, '#ff0000'],
    ];
    const [a, b, c, d, e, under, over] = colormap({ stops }, [0, 50, 100, 150, 200, -10, 250]);
    near(a!, [0, 0, 0, 255], 0, 'stop 0');
    near(b!, [127.5, 0, 0, 255], 1, 'midpoint 50');
    near(c!, [255, 0, 0, 255], 0, 'stop 100');
    near(d!, [127.5, 127.5, 0, 191.5], 1, 'midpoint 150');
    near(e!, [0, 255, 0, 128], 0, 'stop 200');
    near(under!, [0, 0, 0, 255], 0, 'below the first stop');
    near(over!, [0, 255, 0, 128], 0, 'above the last stop');
    // A quarter of the way: 25 -> 63.75 of red.
    near(colormap({ stops }, [25])[0]!, [63.75, 0, 0, 255], 1, 'quarter point');
  });

  it('classes map exact values; anything else is transparent', () => {
    const out = colormap({ classes: { 1: '#ff0000', '2': '#00ff0080', '3.5': '#0000FF' } }, [1, 2, 3.5, 4, 0, NaN]);
    assert.deepEqual(out, [
      [255, 0, 0, 255],
      [0, 255, 0, 128],
      [0, 0, 255, 255],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
  });

  it("`source` draws the file's colour table exactly as gdalinfo reports it", async () => {
    const table = (JSON.parse(gdal('gdalinfo', ['-json', NLCD])) as { bands: { colorTable: { entries: number[][] } }[] }).bands[0]!.colorTable.entries;
    assert.equal(table.length, 256);
    // Spot values from the NLCD legend as GDAL prints them: open water and evergreen forest.
    assert.deepEqual(table[11], [71, 107, 160, 255]);
    assert.deepEqual(table[42], [28, 99, 48, 255]);
    const cog = await Cog.open(NLCD);
    try {
      assert.ok(cog.meta.palette, 'the NLCD file has a colour table');
      const all = colormap(
        { name: 'source' },
        Array.from({ length: 256 }, (_, v) => v),
        cog.meta.palette,
      );
      // GDAL gives the nodata entry (255) alpha 0 (the TIFF ColorMap has no alpha); pixels of
      // that value are masked before the colour map, as the end-to-end test below shows.
      assert.equal(cog.meta.nodata, 255);
      all.forEach((got, v) => {
        if (v !== 255) assert.deepEqual(got, table[v], `class ${v}`);
      });
      assert.deepEqual(all[255]!.slice(0, 3), table[255]!.slice(0, 3));
    } finally {
      await cog.close();
    }
  });

  it('`source` end to end: a rendered NLCD tile shows, at GDAL-located pixels, the colour of the class GDAL reads there', async () => {
    const table = (JSON.parse(gdal('gdalinfo', ['-json', NLCD])) as { bands: { colorTable: { entries: number[][] } }[] }).bands[0]!.colorTable.entries;
    const res = await renderTile({ layer: layerSpec([{ read: { source: 'lc' } }, { colormap: { name: 'source' } }], { lc: NLCD }), ...ZION, size: SIZE });
    assert.ok(res.rgba);
    const px = new Uint8Array(res.rgba);
    const colours = new Set(table.map((e) => e.join(',')));
    for (let k = 0; k < SIZE * SIZE; k++) {
      const c = [...px.subarray(k * 4, k * 4 + 4)];
      if (c[3] !== 0) assert.ok(colours.has(c.join(',')), `pixel ${k} is ${c.join(',')}, not a colour of the table`);
    }
    const points = samplePoints(NLCD, ZION);
    const classes = valuesAt(
      NLCD,
      points.map((p) => [p.col, p.row]),
    );
    const seen = new Set<number>();
    points.forEach((p, n) => {
      const cls = classes[n]!;
      seen.add(cls);
      const want = cls === 255 ? [0, 0, 0, 0] : table[cls]!;
      assert.deepEqual([...px.subarray(p.k * 4, p.k * 4 + 4)], want, `class ${cls} at source pixel (${p.col}, ${p.row})`);
    });
    assert.ok(seen.size >= 2, `the sample should cover several classes, got ${[...seen].join(', ')}`);
  });
});

describe('rgb, select, expression', { skip }, () => {
  it('rgb rescales each band on its own range, applies gamma, and leaves nodata transparent', async () => {
    const ranges: [number, number][] = [
      [10, 210],
      [0, 160],
      [-50, 50],
    ];
    const gamma = 2.2;
    const { raster } = await runPipeline([{ read: { source: 'grid' } }, { rgb: { rescale: ranges, gamma } }], { grid: GRID }, TILE);
    const out = rgba(raster);
    const src = [B1, B2, B3];
    for (let j = 0; j < SIZE; j++) {
      for (let i = 0; i < SIZE; i++) {
        const k = j * SIZE + i;
        const got = [...out.data.subarray(k * 4, k * 4 + 4)];
        if (!validPixel(j)) {
          assert.deepEqual(got, [0, 0, 0, 0], `nodata pixel (${i}, ${j})`);
          continue;
        }
        const want = src.map((b, c) => {
          const t = Math.min(1, Math.max(0, (b[k]! - ranges[c]![0]) / (ranges[c]![1] - ranges[c]![0])));
          return 255 * t ** (1 / gamma);
        });
        near(got, [...want, 255], 0.5 + 1e-9, `pixel (${i}, ${j})`);
      }
    }
  });

  it('select picks and reorders bands', async () => {
    const { raster } = await runPipeline([{ read: { source: 'grid' } }, { select: { bands: [3, 1, 2] } }], { grid: GRID }, TILE);
    const r = bands(raster);
    assert.equal(r.bands.length, 3);
    [B3, B1, B2].forEach((b, n) => checkPixels(r, n, (k, _i, j) => (validPixel(j) ? b[k]! : null), 0, `output band ${n + 1}`));
  });

  it('a read of bands out of order gives them in the order listed', async () => {
    const { raster } = await runPipeline([{ read: { source: 'grid', bands: [3, 1, 2] } }], { grid: GRID }, TILE);
    const r = bands(raster);
    assert.equal(r.bands.length, 3);
    [B3, B1, B2].forEach((b, n) => checkPixels(r, n, (k, _i, j) => (validPixel(j) ? b[k]! : null), 0, `band ${n + 1} of bands: [3, 1, 2]`));
  });

  it('expression matches the same formula computed by hand, empty where it has no value', async () => {
    const expr = 'where(b1 > b2, (b1 - b2) / (b1 + b2), sqrt(abs(b2 - b1)) * 2) + clamp(b3, -10, 10) - 1.5^2 + max(b1, b3) / (b3 - 4)';
    const hand = (b1: number, b2: number, b3: number) =>
      (b1 > b2 ? (b1 - b2) / (b1 + b2) : Math.sqrt(Math.abs(b2 - b1)) * 2) + Math.min(Math.max(b3, -10), 10) - 2.25 + Math.max(b1, b3) / (b3 - 4);
    const { raster } = await runPipeline([{ read: { source: 'grid' } }, { expression: { expr } }], { grid: GRID }, TILE);
    // Division by zero (b3 = 4 where i - j = 8, and b1 + b2 = 0 at ZERO_SUM) gives no value: nodata.
    let infinite = 0;
    checkPixels(
      bands(raster),
      0,
      (k, _i, j) => {
        if (!validPixel(j)) return null;
        const v = hand(B1[k]!, B2[k]!, B3[k]!);
        if (!Number.isFinite(v)) {
          infinite++;
          return null;
        }
        return v;
      },
      1e-5,
      expr,
    );
    assert.equal(infinite, FIRST_NODATA_ROW + 1, 'one pixel per valid row with i - j = 8, plus the zero sum');
  });

  it('expression in the graph form numbers the bands of all its inputs in order', async () => {
    const { raster } = await runPipeline(
      {
        nodes: {
          a: { op: 'read', source: 'grid', bands: [2] },
          b: { op: 'read', source: 'grid', bands: [3, 1] },
          e: { op: 'expression', in: ['a', 'b'], expr: 'b1 * 2 - b3 + b2' },
        },
        output: 'e',
      },
      { grid: GRID },
      TILE,
    );
    checkPixels(bands(raster), 0, (k, _i, j) => (validPixel(j) ? B2[k]! * 2 - B1[k]! + B3[k]! : null), 1e-6, 'b1 * 2 - b3 + b2');
  });
});

describe('quality checks through renderTile', { skip }, () => {
  const render = (check: Record<string, unknown>) =>
    renderTile({ layer: layerSpec([{ read: { source: 'grid', bands: [1] } }, check], { grid: GRID }), ...TILE, size: SIZE });
  const valid = SIZE * FIRST_NODATA_ROW;
  const above100 = B1.filter((v, k) => k < valid && v > 100).length;

  it('assert_range with on_fail: warn returns a warning naming the check, the tile and the count, and still draws', async () => {
    const res = await render({ assert_range: { min: 0, max: 100 } });
    assert.ok(res.rgba, 'a warning does not stop the tile');
    assert.equal(res.warnings.length, 1);
    assert.equal(res.warnings[0]!.check, 'assert_range');
    assert.match(
      res.warnings[0]!.message,
      new RegExp(`^assert_range failed on tile ${TILE.z}/${TILE.x}/${TILE.y}: ${above100} value\\(s\\) outside \\[0, 100\\]`),
    );
    assert.deepEqual((await render({ assert_range: { min: 0, max: 1000 } })).warnings, []);
  });

  it('assert_range with on_fail: raise rejects the render with a message naming the check', async () => {
    await assert.rejects(render({ assert_range: { max: 100, on_fail: 'raise' } }), (err: Error) => {
      assert.match(err.message, /^assert_range failed on tile 12\/1000\/1500: \d+ value\(s\) outside \[-Infinity, 100\]/);
      return true;
    });
  });

  it('assert_valid_fraction warns below its minimum (62.5% valid here) and passes above it', async () => {
    const res = await render({ assert_valid_fraction: { min: 0.9 } });
    assert.ok(res.rgba);
    assert.equal(res.warnings.length, 1);
    assert.equal(res.warnings[0]!.check, 'assert_valid_fraction');
    assert.match(res.warnings[0]!.message, /assert_valid_fraction failed on tile 12\/1000\/1500: 62\.5% of the pixels are valid, below 90\.0%/);
    assert.deepEqual((await render({ assert_valid_fraction: { min: 0.6 } })).warnings, []);
  });

  it('assert_valid_fraction with on_fail: raise rejects the render with a message naming the check', async () => {
    await assert.rejects(
      render({ assert_valid_fraction: { min: 0.75, on_fail: 'raise' } }),
      /assert_valid_fraction failed on tile 12\/1000\/1500: 62\.5% of the pixels are valid, below 75\.0%/,
    );
  });

  it('the checks pass the data through unchanged', async () => {
    const plain = await runPipeline([{ read: { source: 'grid', bands: [1] } }], { grid: GRID }, TILE);
    const checked = await runPipeline(
      [{ read: { source: 'grid', bands: [1] } }, { assert_range: { min: 0 } }, { assert_valid_fraction: { min: 0.1 } }],
      { grid: GRID },
      TILE,
    );
    assert.deepEqual(bands(checked.raster).bands[0], bands(plain.raster).bands[0]);
    assert.deepEqual(bands(checked.raster).mask, bands(plain.raster).mask);
    assert.deepEqual(checked.ctx.warnings, []);
  });
});

// The fixture file itself should be what the expectations assume: GDAL reads it back.
describe('fixture', { skip }, () => {
  it('GDAL reads back the values written, and nodata', () => {
    const pts: [number, number][] = [
      [0, 0],
      [5, 7],
      [100, 20],
      [255, 159],
      [3, 200],
    ];
    const got = valuesAt(GRID, pts);
    assert.deepEqual(
      got,
      pts.map(([i, j]) => B1[j * SIZE + i]!),
    );
    assert.match(readFileSync(GRID).subarray(0, 4).toString('latin1'), /^II\*\0|^MM\0\*/);
  });
});
