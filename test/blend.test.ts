/**
 * The blend operator: each mode against values worked out by hand from the formulas in
 * src/ops/builtin/blend.ts, opacity, alpha and masks, and a graph-form layer (hillshade
 * multiplied into a colour relief) rendered through the real render thread.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadLayer, type Layer } from '../src/layers/layer.js';
import { Blend, type BlendParams } from '../src/ops/builtin/blend.js';
import { bandRaster, type BandRaster, type RgbaRaster } from '../src/ops/raster.js';
import type { RenderTask } from '../src/render/task.js';
import { renderTile } from '../workers/render.js';
import { ROOT } from './helpers/root.js';

type Px = [number, number, number, number];

/** A 1x1 RGBA raster. */
const rgba = (p: Px): RgbaRaster => ({ kind: 'rgba', width: 1, height: 1, data: Uint8Array.from(p) });

/** A 1x1 one-band raster (e.g. a hillshade value), valid unless masked. */
function grey(v: number, valid = true): BandRaster {
  const r = bandRaster(1, 1, 1);
  r.bands[0]![0] = v;
  r.mask[0] = valid ? 1 : 0;
  return r;
}

function blend(params: BlendParams, bottom: RgbaRaster | BandRaster, top: RgbaRaster | BandRaster): Px {
  const out = new Blend(params).apply([bottom, top]) as RgbaRaster;
  assert.equal(out.kind, 'rgba');
  return [...out.data] as Px;
}

describe('Blend operator', () => {
  it('has the registry contract: defaults, config, two inputs, RGBA out', () => {
    const b = new Blend({});
    assert.equal(b.op, 'blend');
    assert.equal(b.arity, 2);
    assert.equal(b.buffer(), 0);
    assert.deepEqual(b.config(), { mode: 'multiply', opacity: 1 });
    assert.deepEqual(new Blend({ mode: 'overlay', opacity: 0.25 }).config(), { mode: 'overlay', opacity: 0.25 });
    assert.deepEqual(
      b.shape([
        { kind: 'rgba', bands: 4 },
        { kind: 'bands', bands: 1 },
      ]),
      { kind: 'rgba', bands: 4 },
    );
    assert.deepEqual(
      b.shape([
        { kind: 'bands', bands: 1 },
        { kind: 'rgba', bands: 4 },
      ]),
      { kind: 'rgba', bands: 4 },
    );
    assert.throws(
      () =>
        b.shape([
          { kind: 'rgba', bands: 4 },
          { kind: 'bands', bands: 3 },
        ]),
      /top input has 3 bands/,
    );
    assert.throws(
      () =>
        b.shape([
          { kind: 'bands', bands: 2 },
          { kind: 'rgba', bands: 4 },
        ]),
      /bottom input has 2 bands/,
    );
  });

  it('refuses bad parameters and inputs of different sizes', () => {
    assert.throws(() => new Blend({ mode: 'screen' as never }), /mode/);
    assert.throws(() => new Blend({ opacity: 1.5 }), /opacity/);
    assert.throws(() => new Blend({ opacity: -0.1 }), /opacity/);
    assert.throws(() => new Blend({ opacity: NaN }), /opacity/);
    assert.throws(() => new Blend({}).apply([bandRaster(2, 2, 1), bandRaster(3, 3, 1)]), /differ in size/);
  });

  it('multiply: bottom * top per channel', () => {
    // 200*128/255 = 100.39, 100*255/255 = 100, 50*0 = 0.
    assert.deepEqual(blend({}, rgba([200, 100, 50, 255]), rgba([128, 255, 0, 255])), [100, 100, 0, 255]);
    // White is neutral, black wins.
    assert.deepEqual(blend({ mode: 'multiply' }, rgba([37, 180, 255, 255]), rgba([255, 255, 255, 255])), [37, 180, 255, 255]);
  });

  it('overlay: 2ab below half of the bottom, 1 - 2(1-a)(1-b) above', () => {
    // R: a = 64/255 < 0.5: 2*64*128/255 = 64.25. G: a = 192/255: 255 - 2*63*191/255 = 160.62.
    // B: a = 128/255 >= 0.5 (128 is the first byte above half): 255 - 2*127*(255-200)/255 = 200.22.
    assert.deepEqual(blend({ mode: 'overlay' }, rgba([64, 192, 128, 255]), rgba([128, 64, 200, 255])), [64, 161, 200, 255]);
    // Grey 0.5 on top leaves the bottom almost as it is (2*a*0.5 = a; 1 - (1-a) = a).
    assert.deepEqual(blend({ mode: 'overlay' }, rgba([30, 130, 250, 255]), grey(0.5)), [30, 130, 250, 255]);
  });

  it('normal: the top over the bottom by its alpha', () => {
    assert.deepEqual(blend({ mode: 'normal' }, rgba([10, 20, 30, 255]), rgba([200, 150, 100, 255])), [200, 150, 100, 255]);
    // Top alpha 51/255 = 0.2: 10 + 0.2*(200-10) = 48, 20 + 0.2*130 = 46, 30 + 0.2*70 = 44.
    assert.deepEqual(blend({ mode: 'normal' }, rgba([10, 20, 30, 255]), rgba([200, 150, 100, 51])), [48, 46, 44, 255]);
  });

  it('opacity scales the top: a lerp from the bottom to the blended colour', () => {
    // multiply 200*100/255 = 78.43; half-way from 200: 139.2.
    assert.deepEqual(blend({ opacity: 0.5 }, rgba([200, 200, 200, 255]), rgba([100, 100, 100, 255])), [139, 139, 139, 255]);
    // opacity * top alpha: 0.5 * 102/255 = 0.2 of the way from 10 to 200 (normal): 48.
    assert.deepEqual(blend({ mode: 'normal', opacity: 0.5 }, rgba([10, 10, 10, 255]), rgba([200, 200, 200, 102])), [48, 48, 48, 255]);
    assert.deepEqual(blend({ mode: 'overlay', opacity: 0 }, rgba([10, 20, 30, 255]), rgba([200, 150, 100, 255])), [10, 20, 30, 255]);
  });

  it('a one-band input is grey, clamped to [0, 1], with its mask as alpha', () => {
    // A hillshade of 0.5 multiplied into a colour: halves it (100, 50, 25); 0.25 of 255 is 63.75.
    assert.deepEqual(blend({}, rgba([200, 100, 50, 255]), grey(0.5)), [100, 50, 25, 255]);
    assert.deepEqual(blend({}, grey(1), grey(0.25)), [64, 64, 64, 255]);
    assert.deepEqual(blend({}, rgba([200, 100, 50, 255]), grey(1.7)), [200, 100, 50, 255]);
    assert.deepEqual(blend({}, rgba([200, 100, 50, 255]), grey(-0.3)), [0, 0, 0, 255]);
    // A masked or NaN top leaves the bottom as it is.
    assert.deepEqual(blend({}, rgba([200, 100, 50, 255]), grey(0.5, false)), [200, 100, 50, 255]);
    assert.deepEqual(blend({}, rgba([200, 100, 50, 255]), grey(NaN)), [200, 100, 50, 255]);
    // A grey bottom under an RGBA top.
    assert.deepEqual(blend({}, grey(1), rgba([10, 20, 30, 255])), [10, 20, 30, 255]);
  });

  it('alpha is the union of both (Porter-Duff over), with the colours weighted by it', () => {
    // Nothing under the top: the top shows as it is, whatever the mode.
    assert.deepEqual(blend({}, rgba([0, 0, 0, 0]), grey(0.5)), [128, 128, 128, 255]);
    assert.deepEqual(blend({ mode: 'overlay' }, grey(0.2, false), rgba([10, 20, 30, 128])), [10, 20, 30, 128]);
    // Nothing on top: the bottom as it is; nothing at all: transparent.
    assert.deepEqual(blend({ mode: 'normal' }, rgba([9, 8, 7, 77]), rgba([200, 200, 200, 0])), [9, 8, 7, 77]);
    assert.deepEqual(blend({}, grey(0.4, false), grey(0.5, false)), [0, 0, 0, 0]);
    // Both half transparent (128/255 = 0.502): a = 0.502 + 0.502*0.498 = 0.7519 -> 192;
    // colour weights 0.502/0.7519 = 0.6676 (top) and 0.3324 (bottom): R 84.8, B 170.2.
    assert.deepEqual(blend({ mode: 'normal' }, rgba([255, 0, 0, 128]), rgba([0, 0, 255, 128])), [85, 0, 170, 192]);
    // multiply with a half-transparent bottom: Ct' = (1-ab) Ct + ab Cb Ct = 0.498*1 + 0.502*0.4 = 0.6988
    // for a white top on a bottom of 0.4 (102); C = 0.6676*0.6988 + 0.3324*0.4 = 0.5995 -> 153.
    assert.deepEqual(blend({}, rgba([102, 102, 102, 128]), rgba([255, 255, 255, 128])), [153, 153, 153, 192]);
  });

  it('keeps the inputs untouched and works over a whole raster', () => {
    const w = 5;
    const bottom: RgbaRaster = { kind: 'rgba', width: w, height: w, data: new Uint8Array(w * w * 4).fill(200) };
    for (let i = 3; i < bottom.data.length; i += 4) bottom.data[i] = 255;
    const top = bandRaster(w, w, 1);
    top.bands[0]!.fill(0.5);
    top.mask[7] = 0;
    const before = bottom.data.slice();
    const out = new Blend({}).apply([bottom, top]) as RgbaRaster;
    assert.deepEqual(bottom.data, before);
    for (let i = 0; i < w * w; i++) assert.deepEqual([...out.data.subarray(i * 4, i * 4 + 4)], i === 7 ? [200, 200, 200, 255] : [100, 100, 100, 255]);
  });
});

const STOPS = `[[950, "#2b6b3a"], [1200, "#6f9a4a"], [1500, "#d8c98a"], [1800, "#b5834f"], [2100, "#8c6a5a"], [2400, "#d9d4d0"], [2600, "#ffffff"]]`;

describe('Blend in a graph-form layer: hillshade multiplied into a colour relief', () => {
  let dir = '';
  const layers: Record<string, Layer> = {};
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tilegraph-blend-layers-'));
    mkdirSync(path.join(dir, 'data'));
    copyFileSync(path.join(ROOT, 'layers/data/srtm_jasper_ab_100m.tif'), path.join(dir, 'data/dem.tif'));
    const head = ['sources:', '  dem: ./data/dem.tif', 'pipeline:'];
    const graph = (blend: string) => [
      '  nodes:',
      '    dem: { op: read, source: dem, bands: [1], resampling: bilinear }',
      `    relief: { op: colormap, in: [dem], stops: ${STOPS} }`,
      '    hs: { op: hillshade, in: [dem] }',
      `    out: { op: blend, in: [relief, hs], ${blend} }`,
      '  output: out',
    ];
    const files: Record<string, string[]> = {
      shaded: graph('mode: multiply'),
      // The same graph with the top at opacity 0: the relief alone, read with the same buffer.
      unshaded: graph('mode: multiply, opacity: 0'),
      relief: ['  - read: { source: dem, bands: [1], resampling: bilinear }', `  - colormap: { stops: ${STOPS} }`],
      hs: ['  - read: { source: dem, bands: [1], resampling: bilinear }', '  - hillshade: {}'],
    };
    for (const [name, lines] of Object.entries(files)) {
      const file = path.join(dir, `${name}.yaml`);
      writeFileSync(file, [...head, ...lines, ''].join('\n'));
      layers[name] = await loadLayer(file, { layersDir: dir, allowedHosts: [] });
    }
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function tile(layer: Layer, z: number, x: number, y: number, size = 256): Promise<Uint8Array> {
    const task: RenderTask = { layer: layer.spec, z, x, y, size };
    const result = await renderTile(task);
    assert.ok(result.rgba, `${layer.name} ${z}/${x}/${y} drew nothing`);
    return new Uint8Array(result.rgba);
  }

  it('builds: the read is padded by the hillshade buffer, the config is canonical', () => {
    const g = layers.shaded!;
    assert.equal(g.graph.buffer(), 1);
    const nodes = (g.config.pipeline as { nodes: Record<string, Record<string, unknown>> }).nodes;
    assert.deepEqual(nodes.out, { op: 'blend', in: ['relief', 'hs'], mode: 'multiply', opacity: 1 });
    assert.deepEqual(nodes.hs, { op: 'hillshade', in: ['dem'], azimuth: 315, altitude: 45, zFactor: 1 });
  });

  it('renders relief x hillshade: each pixel the relief colour times the shade', async (t) => {
    const [shaded, unshaded, relief, hs] = await Promise.all([layers.shaded!, layers.unshaded!, layers.relief!, layers.hs!].map((l) => tile(l, 10, 177, 332)));
    let max = 0,
      darker = 0,
      reliefDiff = 0;
    for (let o = 0; o < shaded!.length; o += 4) {
      assert.equal(shaded![o + 3], 255, 'inside the DEM every pixel is drawn');
      assert.equal(unshaded![o + 3], 255);
      // The hillshade layer is drawn as grey bytes: rounded once more than inside the graph.
      const shade = hs![o]! / 255;
      for (let c = 0; c < 3; c++) {
        const want = unshaded![o + c]! * shade;
        max = Math.max(max, Math.abs(shaded![o + c]! - want));
        assert.ok(shaded![o + c]! <= unshaded![o + c]!, 'multiply only darkens');
        if (shaded![o + c]! < unshaded![o + c]!) darker++;
        // The relief layer on its own reads without a buffer: the same colours but for a
        // rare colour-table step where the bilinear heights differ in the last bits.
        reliefDiff = Math.max(reliefDiff, Math.abs(unshaded![o + c]! - relief![o + c]!));
      }
    }
    const channels = (shaded!.length / 4) * 3;
    t.diagnostic(
      `max |blend - relief*shade| ${max.toFixed(3)} levels; ${darker} of ${channels} channels darkened; relief layer vs opacity 0: max ${reliefDiff}`,
    );
    // Half a level from drawing the hillshade as bytes, half from rounding the blend.
    assert.ok(max <= 1, `max difference ${max}`);
    assert.ok(reliefDiff <= 1, `relief differs by ${reliefDiff}`);
    assert.ok(darker > 0.9 * channels, 'a hillshade darkens almost everything');
  });

  it('is transparent off the data and keeps the relief alpha at its edge', async () => {
    // z10/176/332 straddles the west edge of the DEM: the relief draws part of it.
    const [shaded, relief] = await Promise.all([layers.shaded!, layers.relief!].map((l) => tile(l, 10, 176, 332)));
    let some = 0,
      none = 0;
    for (let o = 3; o < shaded!.length; o += 4) {
      // Where the hillshade is masked (the DEM's last ring) the relief shows unshaded: alpha union.
      assert.equal(shaded![o], relief![o]);
      if (shaded![o]) some++;
      else none++;
    }
    assert.ok(some > 0 && none > 0, `drawn ${some}, empty ${none}`);
  });
});
