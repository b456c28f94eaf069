/**
 * The `mask` operator against GDAL-read QA pixels, never against the code under test:
 *
 * - QA rasters written here by GDAL (ENVI raw through `gdal_translate -of COG`, see
 *   helpers/layers.ts) over one Web Mercator tile, so that output pixel (i, j) is source pixel
 *   (i, j): a UInt16 bit field with Landsat's fill value 1 as nodata (hashed words, so every bit
 *   is set on about half the pixels), a Byte class band laid out as Sentinel-2's SCL (0 nodata,
 *   classes 1..11), and a Float32 "QA" holding what no QA band should (fractions, NaN, -1,
 *   values past 2^24), all over a three-band Float32 data COG with a nodata block;
 * - the reference is `gdalwarp -r near -et 0` of each QA file onto the tile grid
 *   (helpers/gdal.ts warpTile): GDAL's values and alpha, put through the rule written out here
 *   (bits tested on BigInt words, classes with Array.includes), and the data values written;
 * - the shipped layer zion-ndvi-masked over Kolob Reservoir: transparent exactly where NLCD, as
 *   gdalwarp reads it onto the tile, says open water or ice, and elsewhere zion-ndvi's pixels;
 * - refusals of bad parameters and inputs, in the graph builder and as layer files in a layers
 *   directory (each naming the file, the node and the reason, the good layer still loading).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LayerError, loadLayer, type Layer } from '../src/layers/layer.js';
import { loadLayerDir } from '../src/layers/registry.js';
import { buildGraph } from '../src/ops/build.js';
import { buildOperator } from '../src/ops/registry.js';
import { bandRaster, type BandRaster, type Raster, type TileContext } from '../src/ops/raster.js';
import { Cog } from '../src/sources/cog.js';
import { renderTile } from '../workers/render.js';
import { warpTile, type WarpedTile } from './helpers/gdal.js';
import {
  band,
  layerSpec,
  mercatorBounds,
  runPipeline,
  SHIPPED_DATA,
  SHIPPED_LAYERS,
  tempDir,
  tileAt,
  toolsMissing,
  writeMercatorCog,
  type Tile,
} from './helpers/layers.js';

const skip = toolsMissing(['gdal_translate', 'gdalwarp']);

const SIZE = 256;
const TILE: Tile = { z: 12, x: 1000, y: 1500 };
const NODATA = -9999;
/** Landsat Collection 2 QA_PIXEL's fill: bit 0 alone. */
const QA_FILL = 1;
/** Data rows from here down are nodata in every band. */
const FIRST_NODATA_ROW = 200;
/** QA rows above this are fill (nodata) in the UInt16 bit field. */
const QA_FILL_ROWS = 8;

/** A well-mixed 32-bit hash of a pixel position. */
function hash(i: number, j: number, seed = 0): number {
  let h = Math.imul(i + 0x9e37 + seed, 0x85ebca6b) ^ Math.imul(j + 0x79b9, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x27d4eb2d);
  h ^= h >>> 13;
  return h >>> 0;
}

/** Landsat-style bit field: fill on the top rows, hashed 16-bit words elsewhere (never the fill word). */
const QA_BITS = band(SIZE, (i, j) => {
  if (j < QA_FILL_ROWS) return QA_FILL;
  const v = hash(i, j) & 0xffff;
  return v === QA_FILL ? 0 : v;
});
/** Sentinel-2 SCL layout: 0 no data, 1..11 classes (3 cloud shadow, 4 vegetation, 8-10 cloud and cirrus, 11 snow). */
const SCL = band(SIZE, (i, j) => hash(i, j, 1) % 12);
/** What no QA band should hold, and one plain word, cycled over the tile. */
const ODD_VALUES = [3.5, NaN, -1, 2 ** 24 + 2, 16, 2 ** 24, -(2 ** 24), 0, 8, 1e30, NODATA, 0.25, 24, -8];
const ODD = band(SIZE, (i, j) => ODD_VALUES[(i + 3 * j) % ODD_VALUES.length]!);
const DATA_BANDS = [
  band(SIZE, (i, j) => (j >= FIRST_NODATA_ROW ? NODATA : 10.25 + ((i * 37 + j * 11) % 200))),
  band(SIZE, (i, j) => (j >= FIRST_NODATA_ROW ? NODATA : (i - j) * 0.5)),
  band(SIZE, (i, j) => (j >= FIRST_NODATA_ROW ? NODATA : (hash(i, j, 2) % 1000) / 8)),
];
const dataValid = (k: number) => Math.floor(k / SIZE) < FIRST_NODATA_ROW;

const tmp = tempDir('mask');
const QA_FILE = path.join(tmp.dir, 'qa_pixel.tif');
const SCL_FILE = path.join(tmp.dir, 'scl.tif');
const ODD_FILE = path.join(tmp.dir, 'odd.tif');
const DATA_FILE = path.join(tmp.dir, 'data.tif');
const REF = path.join(tmp.dir, 'ref');

/** GDAL's reading of each QA file onto TILE, nearest neighbour, exact transform, full resolution. */
const ref: Record<'bits' | 'scl' | 'odd', WarpedTile> = {} as never;

before(async () => {
  if (skip) return;
  writeMercatorCog(QA_FILE, TILE, SIZE, [QA_BITS], { type: 'UInt16', nodata: QA_FILL });
  writeMercatorCog(SCL_FILE, TILE, SIZE, [SCL], { type: 'Byte', nodata: 0 });
  writeMercatorCog(ODD_FILE, TILE, SIZE, [ODD], { type: 'Float32', nodata: NODATA });
  writeMercatorCog(DATA_FILE, TILE, SIZE, DATA_BANDS, { nodata: NODATA });
  const bounds = mercatorBounds(TILE);
  [ref.bits, ref.scl, ref.odd] = await Promise.all([QA_FILE, SCL_FILE, ODD_FILE].map((f) => warpTile(f, bounds, SIZE, 'near', REF, 0)));
});
after(() => tmp.remove());

interface Rule {
  bits?: number[];
  values?: number[];
  invert?: boolean;
}

/**
 * The reference rule: a QA pixel that is nodata, not an integer or past ±2^24 (beyond what a
 * Float32 raster holds exactly) masks; otherwise a listed bit (of the 32-bit two's complement
 * word) or class masks, and `invert` keeps exactly those instead.
 */
function keeps(rule: Rule, v: number, qaValid: boolean): boolean {
  if (!qaValid || !Number.isInteger(v) || Math.abs(v) > 2 ** 24) return false;
  const word = BigInt.asUintN(32, BigInt(v));
  const listed = rule.bits ? rule.bits.some((b) => ((word >> BigInt(b)) & 1n) === 1n) : rule.values!.includes(v);
  return listed === !!rule.invert;
}

function graph(rule: Rule, qaRead: Record<string, unknown> = { resampling: 'nearest' }, dataBands?: number[]) {
  return {
    nodes: {
      qa: { op: 'read', source: 'qa', ...qaRead },
      data: { op: 'read', source: 'data', resampling: 'nearest', ...(dataBands ? { bands: dataBands } : {}) },
      m: { op: 'mask', in: ['qa', 'data'], ...rule },
    },
    output: 'm',
  };
}

interface Counts {
  kept: number;
  /** Data and QA valid, masked by the rule itself. */
  byRule: number;
  /** Masked by the QA's nodata or an unreadable QA value. */
  byQa: number;
}

/** Every pixel of the masked raster against GDAL's QA and the data values written. */
function checkTile(r: Raster | null, qa: WarpedTile, rule: Rule, what: string): Counts {
  assert.ok(r && r.kind === 'bands', `${what}: the graph drew nothing`);
  const out = r as BandRaster;
  assert.equal(out.width, SIZE);
  assert.equal(out.bands.length, 3, `${what}: the data's three bands pass through`);
  const c: Counts = { kept: 0, byRule: 0, byQa: 0 };
  for (let k = 0; k < SIZE * SIZE; k++) {
    const qaValid = qa.alpha[k]! > 0;
    const v = qa.values[k]!;
    const want = dataValid(k) && keeps(rule, v, qaValid);
    assert.equal(
      out.mask[k],
      want ? 1 : 0,
      `${what}: pixel (${k % SIZE}, ${Math.floor(k / SIZE)}), QA ${qaValid ? v : 'nodata'}, should be ${want ? 'kept' : 'masked'}`,
    );
    if (want) {
      c.kept++;
      for (let b = 0; b < 3; b++) assert.equal(out.bands[b]![k], DATA_BANDS[b]![k], `${what}: band ${b + 1} at pixel ${k} passes through unchanged`);
    } else if (dataValid(k)) {
      if (qaValid && Number.isInteger(v) && Math.abs(v) <= 2 ** 24) c.byRule++;
      else c.byQa++;
    }
  }
  return c;
}

describe('mask: QA bits and classes, against GDAL-read QA pixels', { skip }, () => {
  it('GDAL reads the QA fixtures back as written: fill, classes and odd values in place', () => {
    for (let k = 0; k < SIZE * SIZE; k++) {
      const fill = QA_BITS[k] === QA_FILL;
      assert.equal(ref.bits.alpha[k]! > 0, !fill, `bits: GDAL's alpha at ${k}`);
      if (!fill) assert.equal(ref.bits.values[k], QA_BITS[k]);
      assert.equal(ref.scl.alpha[k]! > 0, SCL[k] !== 0, `scl: GDAL's alpha at ${k}`);
      if (SCL[k] !== 0) assert.equal(ref.scl.values[k], SCL[k]);
      const o = ODD[k]!;
      if (o === NODATA) assert.equal(ref.odd.alpha[k], 0, `odd: nodata at ${k}`);
      else if (!Number.isNaN(o)) assert.equal(ref.odd.values[k], o);
    }
  });

  it('bits: a pixel with any listed bit set (Landsat QA_PIXEL 3 cloud, 4 shadow) is nodata in every data band; the rest pass through unchanged', async () => {
    const rule = { bits: [3, 4] };
    const { raster } = await runPipeline(graph(rule), { qa: QA_FILE, data: DATA_FILE }, TILE);
    const c = checkTile(raster, ref.bits, rule, 'bits [3, 4]');
    // About a quarter of the hashed words have neither bit; the fill rows are nodata.
    assert.ok(c.kept > 10_000 && c.byRule > 30_000, JSON.stringify(c));
    assert.equal(c.byQa, QA_FILL_ROWS * SIZE, 'the fill rows (the QA nodata) are masked');
  });

  it('bits with invert: keeps exactly the pixels with a listed bit set; the QA nodata stays masked', async () => {
    const rule = { bits: [3, 4], invert: true };
    const { raster } = await runPipeline(graph(rule), { qa: QA_FILE, data: DATA_FILE }, TILE);
    const c = checkTile(raster, ref.bits, rule, 'bits [3, 4] inverted');
    assert.ok(c.kept > 30_000 && c.byRule > 10_000, JSON.stringify(c));
    assert.equal(c.byQa, QA_FILL_ROWS * SIZE);
  });

  it('bits 0 and 15 (the ends of a 16-bit word), and bit 31 (never set in it: nothing masked, or with invert everything)', async () => {
    for (const rule of [{ bits: [15] }, { bits: [0], invert: true }, { bits: [31] }, { bits: [31], invert: true }]) {
      const { raster } = await runPipeline(graph(rule), { qa: QA_FILE, data: DATA_FILE }, TILE);
      const c = checkTile(raster, ref.bits, rule, JSON.stringify(rule));
      if (rule.bits[0] === 31) assert.equal(c.kept, rule.invert ? 0 : (FIRST_NODATA_ROW - QA_FILL_ROWS) * SIZE, JSON.stringify(c));
      else assert.ok(c.kept > 15_000 && c.byRule > 15_000, `${JSON.stringify(rule)}: ${JSON.stringify(c)}`);
    }
  });

  it('values: a pixel of a listed class (SCL 3 shadow, 8-10 cloud and cirrus) is masked; SCL 0 (its nodata) masks too', async () => {
    const rule = { values: [3, 8, 9, 10] };
    const { raster } = await runPipeline(graph(rule), { qa: SCL_FILE, data: DATA_FILE }, TILE);
    const c = checkTile(raster, ref.scl, rule, 'values [3, 8, 9, 10]');
    assert.ok(c.kept > 20_000 && c.byRule > 10_000 && c.byQa > 1_000, JSON.stringify(c));
  });

  it('values with invert: keeps only the listed classes (SCL 4 vegetation, 5 bare)', async () => {
    const rule = { values: [5, 4], invert: true };
    const { raster } = await runPipeline(graph(rule), { qa: SCL_FILE, data: DATA_FILE }, TILE);
    const c = checkTile(raster, ref.scl, rule, 'values [4, 5] inverted');
    assert.ok(c.kept > 5_000 && c.byRule > 20_000, JSON.stringify(c));
  });

  it('values spread wider than a lookup table (a Set inside) mask the same pixels', async () => {
    const rule = { values: [3, 100_000, -70_000] };
    const { raster } = await runPipeline(graph(rule), { qa: SCL_FILE, data: DATA_FILE }, TILE);
    const c = checkTile(raster, ref.scl, rule, 'values [3, 100000, -70000]');
    assert.ok(c.byRule > 2_000, JSON.stringify(c));
  });

  it('a QA value that is not an exact integer (fractions, NaN, past ±2^24) masks the pixel whatever the rule; -1 is every bit set', async () => {
    const rules: Rule[] = [{ bits: [3] }, { bits: [3], invert: true }, { bits: [24, 31] }, { values: [-1, 16, 2 ** 24] }, { values: [0, -8], invert: true }];
    for (const rule of rules) {
      const { raster } = await runPipeline(graph(rule), { qa: ODD_FILE, data: DATA_FILE }, TILE);
      const c = checkTile(raster, ref.odd, rule, `odd QA ${JSON.stringify(rule)}`);
      assert.ok(c.kept > 1_000 && c.byQa > 15_000, `${JSON.stringify(rule)}: ${JSON.stringify(c)}`);
    }
    // Spot checks of the rule itself on the odd words, written out.
    assert.equal(keeps({ bits: [3] }, -1, true), false, '-1 has bit 3 set');
    assert.equal(keeps({ bits: [3] }, -(2 ** 24), true), true, '-2^24 is 0xff000000: no bit 3');
    assert.equal(keeps({ bits: [24, 31] }, -(2 ** 24), true), false);
    assert.equal(keeps({ bits: [24] }, 2 ** 24, true), false);
  });

  it('through the render thread: a tile is transparent where masked and opaque elsewhere; a mask of everything is no tile at all (204)', async () => {
    const pipeline = (rule: Rule) => ({
      nodes: {
        qa: { op: 'read', source: 'qa', resampling: 'nearest' },
        data: { op: 'read', source: 'data', bands: [1], resampling: 'nearest' },
        m: { op: 'mask', in: ['qa', 'data'], ...rule },
        grey: { op: 'rescale', in: ['m'], from: [0, 255] },
      },
      output: 'grey',
    });
    const rule = { values: [3, 8, 9, 10] };
    const res = await renderTile({ layer: layerSpec(pipeline(rule), { qa: SCL_FILE, data: DATA_FILE }), ...TILE, size: SIZE });
    assert.ok(res.rgba, 'the tile draws');
    const rgba = new Uint8Array(res.rgba);
    let opaque = 0;
    for (let k = 0; k < SIZE * SIZE; k++) {
      const want = dataValid(k) && keeps(rule, ref.scl.values[k]!, ref.scl.alpha[k]! > 0);
      assert.equal(rgba[k * 4 + 3], want ? 255 : 0, `alpha of pixel ${k}`);
      if (want) {
        opaque++;
        assert.equal(rgba[k * 4], Math.round((DATA_BANDS[0]![k]! / 255) * 255), `grey of pixel ${k}`);
      }
    }
    assert.ok(opaque > 20_000);
    const none = await renderTile({ layer: layerSpec(pipeline({ bits: [31], invert: true }), { qa: QA_FILE, data: DATA_FILE }), ...TILE, size: SIZE });
    assert.equal(none.rgba, null, 'every pixel masked: nothing to draw');
  });

  it('leaves its inputs untouched: the data bands and palette are handed on, the mask is a new one', () => {
    const op = buildOperator('mask', { values: [2] }, { sources: new Map(), inputs: 2 });
    const qa = bandRaster(4, 1, 1);
    qa.bands[0]!.set([1, 2, 3, 2]);
    qa.mask.set([1, 1, 1, 0]);
    const data = bandRaster(4, 1, 2);
    data.bands[0]!.set([10, 20, 30, 40]);
    data.bands[1]!.set([-1, -2, -3, -4]);
    data.mask.set([1, 1, 0, 1]);
    data.palette = new Uint8Array(1024);
    const ctx: TileContext = { z: 0, x: 0, y: 0, size: 4, buffer: 0, bounds: [0, 0, 1, 1] };
    const out = op.apply([qa, data], ctx) as BandRaster;
    assert.deepEqual([...out.mask], [1, 0, 0, 0], 'class 2 masked; the data nodata and the QA nodata masked');
    assert.deepEqual([...data.mask], [1, 1, 0, 1], "the data's mask is not changed");
    assert.deepEqual([...qa.mask], [1, 1, 1, 0], "the QA's mask is not changed");
    assert.notEqual(out.mask, data.mask);
    assert.equal(out.bands[0], data.bands[0], 'bands are handed on, not copied');
    assert.equal(out.bands[1], data.bands[1]);
    assert.equal(out.palette, data.palette, 'a colour table passes through');
    assert.throws(() => op.apply([bandRaster(3, 1, 1), data], ctx), /mask inputs differ in size: QA 3x1, data 4x1/);
  });

  it('its canonical config: the list sorted, invert filled in; spellings of one mask agree', () => {
    const cfg = (p: Record<string, unknown>) => buildOperator('mask', p, { sources: new Map(), inputs: 2 }).config();
    assert.deepEqual(cfg({ bits: [4, 3] }), { bits: [3, 4], invert: false });
    assert.deepEqual(cfg({ values: [12, 11], invert: true }), { values: [11, 12], invert: true });
    assert.deepEqual(cfg({ values: [11, 12], invert: false }), cfg({ values: [12, 11] }));
  });
});

describe('mask refusals', { skip }, () => {
  const withCogs = async (f: (sources: Map<string, Cog>) => void) => {
    const cogs = new Map([
      ['qa', await Cog.open(QA_FILE)],
      ['data', await Cog.open(DATA_FILE)],
    ]);
    try {
      f(cogs);
    } finally {
      await Promise.all([...cogs.values()].map((c) => c.close()));
    }
  };

  it('bad parameters: each refusal names the node and the problem', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ bits: [3], values: [1] }, /mask needs exactly one of bits or values, got both/],
      [{}, /mask needs exactly one of bits or values, got neither/],
      [{ invert: true }, /got neither/],
      [{ bits: [40] }, /bits\.0: bit 40 does not exist: a QA word has bits 0\.\.31/],
      [{ bits: [3, -1] }, /bits\.1: bit -1 does not exist/],
      [{ bits: [1.5] }, /bits\.0: Invalid input: expected int, received number/],
      [{ bits: [] }, /bits: Too small: expected array to have >=1 items/],
      [{ bits: Array.from({ length: 33 }, (_, i) => i % 32) }, /bits: Too big: expected array to have <=32 items/],
      [{ bits: [3, 4, 3] }, /mask: bit 3 is listed twice/],
      [{ values: Array.from({ length: 257 }, (_, i) => i) }, /values: Too big: expected array to have <=256 items/],
      [{ values: [11, 11] }, /mask: class value 11 is listed twice/],
      [{ values: [2 ** 24 + 1] }, /values\.0: class value 16777217 is beyond ±16777216/],
      [{ values: ['water'] }, /values\.0: Invalid input: expected number, received string/],
      [{ bits: [3], invert: 'yes' }, /invert: Invalid input: expected boolean, received string/],
      [{ bit: [3] }, /Unrecognized key: "bit"/],
    ];
    await withCogs((sources) => {
      for (const [params, reason] of cases) {
        assert.throws(
          () => buildGraph(graph(params), { sources }),
          (err: Error) => err.message.startsWith("node 'm': ") && reason.test(err.message),
          `${JSON.stringify(params)} should be refused with ${reason}`,
        );
      }
    });
  });

  it('bad inputs: a 3-band QA, RGBA data, a QA read bilinear, one input, the list form', async () => {
    await withCogs((sources) => {
      const refuse = (pipeline: unknown, reason: RegExp) =>
        assert.throws(
          () => buildGraph(pipeline, { sources }),
          (err: Error) => reason.test(err.message),
          `should be refused with ${reason}`,
        );
      refuse(
        {
          nodes: {
            qa: { op: 'read', source: 'data', resampling: 'nearest' },
            data: { op: 'read', source: 'data' },
            m: { op: 'mask', in: ['qa', 'data'], bits: [3] },
          },
          output: 'm',
        },
        /^node 'm': mask's QA input \(the first of in: \[qa, data\]\) must be one band of integers; it has 3 bands$/,
      );
      refuse(
        {
          nodes: {
            qa: { op: 'read', source: 'qa', resampling: 'nearest' },
            d: { op: 'read', source: 'data', bands: [1] },
            rgba: { op: 'colormap', in: ['d'], name: 'viridis' },
            m: { op: 'mask', in: ['qa', 'rgba'], bits: [3] },
          },
          output: 'm',
        },
        /^node 'm': mask's data input .* must be bands, not RGBA: mask before colormap or rgb$/,
      );
      refuse(graph({ bits: [3] }, {}), /^node 'm': mask: the QA input reads 'qa' with bilinear resampling, .*; read it with resampling: nearest$/);
      refuse(graph({ bits: [3] }, { resampling: 'cubic' }), /reads 'qa' with cubic resampling/);
      refuse(
        { nodes: { qa: { op: 'read', source: 'qa', resampling: 'nearest' }, m: { op: 'mask', in: ['qa'], bits: [3] } }, output: 'm' },
        /'mask' takes 2 input\(s\), got 1/,
      );
      refuse(
        [{ read: { source: 'qa', resampling: 'nearest' } }, { mask: { bits: [3] } }],
        /^node 'step 2 \(mask\)': 'mask' takes 2 inputs and cannot follow another step in a list; use the graph form/,
      );
    });
  });

  it('hostile layer files are refused naming the file, the node and the reason; the good mask layer beside them loads', async () => {
    const dir = path.join(tmp.dir, 'layers');
    mkdirSync(path.join(dir, 'data'), { recursive: true });
    copyFileSync(QA_FILE, path.join(dir, 'data/qa.tif'));
    copyFileSync(DATA_FILE, path.join(dir, 'data/data.tif'));
    const file = (nodes: string[], list = false) =>
      ['sources: { qa: ./data/qa.tif, data: ./data/data.tif }', 'pipeline:', ...(list ? nodes : ['  nodes:', ...nodes, '  output: m']), ''].join('\n');
    const qa = '    qa: { op: read, source: qa, resampling: nearest }';
    const data = '    data: { op: read, source: data, bands: [1] }';
    const m = (params: string) => `    m: { op: mask, in: [qa, data], ${params} }`;
    const hostile: Record<string, [text: string, where: string, reason: RegExp]> = {
      'mask-both.yaml': [file([qa, data, m('bits: [3], values: [1]')]), "node 'm'", /exactly one of bits or values, got both/],
      'mask-bit-40.yaml': [file([qa, data, m('bits: [40]')]), "node 'm'", /bits\.0: bit 40 does not exist: a QA word has bits 0\.\.31/],
      'mask-qa-three-bands.yaml': [
        file(['    qa: { op: read, source: data, resampling: nearest }', data, m('bits: [3]')]),
        "node 'm'",
        /QA input \(the first of in: \[qa, data\]\) must be one band of integers; it has 3 bands/,
      ],
      'mask-bilinear-qa.yaml': [
        file(['    qa: { op: read, source: qa, resampling: bilinear }', data, m('bits: [3]')]),
        "node 'm'",
        /read it with resampling: nearest/,
      ],
      'mask-values-huge.yaml': [file([qa, data, m(`values: [${Array.from({ length: 300 }, (_, i) => i).join(', ')}]`)]), "node 'm'", /<=256 items/],
      'mask-proto.yaml': [file([qa, data, m('bits: [3], __proto__: { invert: true }')]), "node 'm'", /'__proto__' is not allowed as a name or key/],
      'mask-list-form.yaml': [
        file(['  - read: { source: qa, resampling: nearest }', '  - mask: { bits: [3] }'], true),
        "node 'step 2 (mask)'",
        /'mask' takes 2 inputs and cannot follow another step in a list; use the graph form/,
      ],
    };
    for (const [name, [text]] of Object.entries(hostile)) writeFileSync(path.join(dir, name), text);
    writeFileSync(
      path.join(dir, 'good-mask.yaml'),
      file([qa, data, m('bits: [3, 4]'), '    grey: { op: rescale, in: [m], from: [0, 255] }']).replace('output: m', 'output: grey'),
    );
    const { layers, problems } = await loadLayerDir({ layersDir: dir, allowedHosts: [] });
    assert.deepEqual([...layers.keys()], ['good-mask']);
    assert.deepEqual(problems.map((p) => p.file).sort(), Object.keys(hostile).sort());
    for (const p of problems) {
      const [, where, reason] = hostile[p.file]!;
      assert.ok(p.error.startsWith(`${p.file}: `), `names the file: ${p.error}`);
      assert.ok(p.error.includes(where), `${p.file}: names ${where}: ${p.error}`);
      assert.match(p.error, reason, p.file);
      assert.ok(!p.error.includes(tmp.dir), `${p.file}: no server paths in ${p.error}`);
    }
    await assert.rejects(loadLayer(path.join(dir, 'mask-both.yaml'), { layersDir: dir, allowedHosts: [] }), LayerError);
  });
});

// ---------------------------------------------------------------------------------------
// The shipped layer: NDVI with NLCD's open water (11) and ice and snow (12) masked.

const NLCD = path.join(SHIPPED_DATA, 'nlcd2011_zion.tif');
/** Kolob Reservoir, the largest water body of the NLCD sample; z14 pixels (~7.6 m) are finer than NLCD's 31.5 m. */
const RESERVOIR: Tile = tileAt(-113.045, 37.434, 14);
/** Nearest-neighbour boundaries may differ on a handful of pixels from GDAL's exact transform (as in test/reprojection.test.ts). */
const MIN_AGREEMENT = 0.999;

describe('the shipped zion-ndvi-masked layer', { skip }, () => {
  let masked: Layer, plain: Layer;
  before(async () => {
    if (skip) return;
    const opts = { layersDir: SHIPPED_LAYERS, allowedHosts: [] };
    [masked, plain] = await Promise.all([
      loadLayer(path.join(SHIPPED_LAYERS, 'zion-ndvi-masked.yaml'), opts),
      loadLayer(path.join(SHIPPED_LAYERS, 'zion-ndvi.yaml'), opts),
    ]);
  });

  it('loads: a graph-form mask of the NDVI by NLCD classes 11 and 12, read nearest', () => {
    const nodes = (masked.config.pipeline as { nodes: Record<string, Record<string, unknown>> }).nodes;
    assert.deepEqual(nodes.land, { op: 'mask', in: ['nlcd', 'ndvi'], values: [11, 12], invert: false });
    assert.equal(nodes.nlcd!.resampling, 'nearest');
    assert.deepEqual(nodes.ndvi, (plain.config.pipeline as { nodes: Record<string, unknown> }).nodes.ndvi, 'the same NDVI as zion-ndvi');
  });

  it('over Kolob Reservoir: transparent exactly where GDAL reads NLCD water, ice or nodata; elsewhere the pixels of zion-ndvi', async (t) => {
    // GDAL first: a render in this thread would hold up the write to gdalwarp's stdin past its exit (EPIPE).
    const nlcd = await warpTile(NLCD, mercatorBounds(RESERVOIR), SIZE, 'near', REF, 0);
    const res = await renderTile({ layer: masked.spec, ...RESERVOIR, size: SIZE });
    const base = await renderTile({ layer: plain.spec, ...RESERVOIR, size: SIZE });
    assert.ok(res.rgba && base.rgba, 'both layers draw the tile');
    const ours = new Uint8Array(res.rgba),
      ndvi = new Uint8Array(base.rgba);
    let water = 0,
      agree = 0,
      kept = 0;
    for (let k = 0; k < SIZE * SIZE; k++) {
      const cls = nlcd.alpha[k]! > 0 ? nlcd.values[k]! : null;
      const wet = cls === null || cls === 11 || cls === 12;
      if (wet) water++;
      const want = wet || ndvi[k * 4 + 3] === 0 ? 0 : 255;
      if (ours[k * 4 + 3] === want) agree++;
      if (ours[k * 4 + 3] === 255) {
        kept++;
        assert.deepEqual([...ours.subarray(k * 4, k * 4 + 4)], [...ndvi.subarray(k * 4, k * 4 + 4)], `pixel ${k}: the NDVI passes through`);
      }
    }
    t.diagnostic(
      `${RESERVOIR.z}/${RESERVOIR.x}/${RESERVOIR.y}: ${water} pixels of NLCD water, ${kept} drawn, alpha as GDAL's NLCD says on ${agree} of ${SIZE * SIZE}`,
    );
    assert.ok(water > 5_000, `the tile holds the reservoir (${water} water pixels)`);
    assert.ok(kept > 20_000, `and land around it (${kept} pixels drawn)`);
    assert.ok(agree / SIZE ** 2 >= MIN_AGREEMENT, `alpha agrees with GDAL's NLCD on ${agree} of ${SIZE ** 2} pixels`);
  });
});
