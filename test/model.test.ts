/**
 * The `model` operator (issue 18): ONNX models built here with onnx-proto, with fixed weights,
 * run per tile by onnxruntime. A 1×1 convolution over the Zion NIR and red bands must give what
 * the same arithmetic gives over GDAL's warp of the bands onto the tile; a 3×3 convolution with
 * `halo: 1` must join without seams (four children stitched equal the parent at twice the
 * pixels); a model that does not load, names what it lacks, is too large or too slow is refused
 * or answers a clear error.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import { loadLayer } from '../src/layers/layer.js';
import type { Raster } from '../src/ops/raster.js';
import { LayerGraph } from '../src/render/renderer.js';
import type { LayerSpec } from '../src/render/task.js';
import { gdalMissing, warpTile, xyzBounds } from './helpers/gdal.js';
import { makeLayersDir, request, type TempLayers } from './helpers/http.js';
import { startServerProcess } from './helpers/processes.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const NIR = 'data/landsat8_zion_20150818_b5_nir.tif';
const RED = 'data/landsat8_zion_20150818_b4_red.tif';
const DEM = 'data/srtm_jasper_ab_100m.tif';

type Dim = number | string;
const valueInfo = (name: string, dims: Dim[]) => ({
  name,
  type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
});
const ints = (name: string, values: number[]) => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: values });

/** A model of Conv nodes in a chain: each [out, in, k, k] weights and a bias, no padding ("valid"). */
function convModel(layers: { weights: number[]; bias: number[]; shape: [number, number, number, number] }[]): Uint8Array {
  const node = layers.map((l, i) => ({
    opType: 'Conv',
    input: [i === 0 ? 'x' : `h${i}`, `w${i}`, `b${i}`],
    output: [i === layers.length - 1 ? 'y' : `h${i + 1}`],
    attribute: [ints('kernel_shape', [l.shape[2], l.shape[3]])],
  }));
  const initializer = layers.flatMap((l, i) => [
    { name: `w${i}`, dataType: FLOAT, dims: l.shape, floatData: l.weights },
    { name: `b${i}`, dataType: FLOAT, dims: [l.shape[0]], floatData: l.bias },
  ]);
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'test',
      node,
      initializer,
      input: [valueInfo('x', [1, layers[0]!.shape[1], 'h', 'w'])],
      output: [valueInfo('y', [1, layers.at(-1)!.shape[0], 'h2', 'w2'])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** y = 0.8·nir·s − 0.5·red·s + 0.1 with s = 1e-4: a per-pixel linear model of the two bands. */
const LINEAR = { w: [0.8, -0.5], b: 0.1, scale: 1e-4 };
/** A Laplacian: 4·centre − the four neighbours. */
const LAPLACIAN = [0, -1, 0, -1, 4, -1, 0, -1, 0];

/** Opens a layer's graph as a render thread does, and renders a tile keeping every node's raster. */
async function renderNodes(spec: LayerSpec, tile: { z: number; x: number; y: number }, size: number): Promise<Map<string, Raster | null>> {
  const graph = await LayerGraph.open(spec);
  try {
    const seen = new Map<string, Raster | null>();
    await graph.raster({ ...tile, size }, undefined, [], (name, _op, r) => seen.set(name, r));
    return seen;
  } finally {
    await graph.close();
  }
}

describe('model', { skip: gdalMissing(['gdalwarp']) }, () => {
  let tmp: TempLayers;
  before(async () => {
    tmp = await makeLayersDir(['zion-ndvi', 'dem-relief']);
    mkdirSync(path.join(tmp.dir, 'models'));
    writeFileSync(path.join(tmp.dir, 'models/linear.onnx'), convModel([{ shape: [1, 2, 1, 1], weights: LINEAR.w, bias: [LINEAR.b] }]));
    writeFileSync(path.join(tmp.dir, 'models/laplacian.onnx'), convModel([{ shape: [1, 1, 3, 3], weights: LAPLACIAN, bias: [0] }]));
    // Twelve 16-channel 3×3 convolutions: far more than a millisecond a tile.
    const heavy = Array.from({ length: 12 }, (_, i) => ({
      shape: [16, i === 0 ? 1 : 16, 3, 3] as [number, number, number, number],
      weights: Array.from({ length: 16 * (i === 0 ? 1 : 16) * 9 }, (_, k) => ((k % 7) - 3) / 100),
      bias: new Array<number>(16).fill(0),
    }));
    heavy.push({ shape: [1, 16, 1, 1], weights: new Array<number>(16).fill(0.1), bias: [0] });
    writeFileSync(path.join(tmp.dir, 'models/heavy.onnx'), convModel(heavy));
    writeFileSync(path.join(tmp.dir, 'models/garbage.onnx'), 'not a model');
  });
  after(async () => {
    await tmp?.remove();
  });

  const linearLayer = (extra = '') => `title: linear model over NIR and red
sources:
  red: ./${RED}
  nir: ./${NIR}
minzoom: 8
maxzoom: 16
pipeline:
  nodes:
    red: { op: read, source: red, bands: [1], resampling: nearest }
    nir: { op: read, source: nir, bands: [1], resampling: nearest }
    score: { op: model, in: [nir, red], file: models/linear.onnx, bands: 1, scale: [${LINEAR.scale}], offset: [0]${extra} }
    grey: { op: rescale, in: [score], from: [-0.2, 0.4] }
  output: grey
`;

  test('a 1×1 convolution over two bands gives, per pixel, the arithmetic over GDAL-warped bands', async (t) => {
    writeFileSync(path.join(tmp.dir, 'linear.yaml'), linearLayer());
    const layer = await loadLayer(path.join(tmp.dir, 'linear.yaml'), { layersDir: tmp.dir, allowedHosts: [] });
    assert.deepEqual(Object.keys(layer.spec.files ?? {}), ['models/linear.onnx']);
    for (const tile of [
      { z: 12, x: 761, y: 1589 },
      { z: 14, x: 3047, y: 6358 },
    ]) {
      const nodes = await renderNodes(layer.spec, tile, 256);
      const score = nodes.get('score');
      assert.ok(score && score.kind === 'bands' && score.bands.length === 1, `${tile.z}/${tile.x}/${tile.y}: the model's band`);
      const bounds = xyzBounds(tile.z, tile.x, tile.y);
      const [nir, red] = await Promise.all([
        warpTile(path.join(tmp.dir, NIR), bounds, 256, 'near', path.join(tmp.root, 'warp')),
        warpTile(path.join(tmp.dir, RED), bounds, 256, 'near', path.join(tmp.root, 'warp')),
      ]);
      let compared = 0;
      let agree = 0;
      let worst = 0;
      for (let i = 0; i < 256 * 256; i++) {
        const valid = nir.alpha[i]! > 0 && red.alpha[i]! > 0;
        if (!valid || !score.mask[i]) continue;
        compared++;
        const want = Math.fround(
          LINEAR.w[0]! * Math.fround(nir.values[i]! * LINEAR.scale) + LINEAR.w[1]! * Math.fround(red.values[i]! * LINEAR.scale) + LINEAR.b,
        );
        const d = Math.abs(score.bands[0]![i]! - want);
        worst = Math.max(worst, d);
        if (d <= 1e-5) agree++;
      }
      t.diagnostic(`${tile.z}/${tile.x}/${tile.y}: ${agree} of ${compared} pixels within 1e-5 (worst ${worst.toExponential(2)})`);
      assert.ok(compared > 60_000, `${compared} pixels compared`);
      // Nearest resampling picks GDAL's source pixel but where a pixel centre lies on an edge.
      assert.ok(agree / compared > 0.999, `${agree} of ${compared} agree`);
    }
  });

  test('a 3×3 convolution with halo 1: four children stitched equal the parent at twice the pixels', async () => {
    const spec = (await layerFrom('laplacian', 'dem', `./${DEM}`, 'laplacian.onnx', 'halo: 1')).spec;
    const parent = { z: 11, x: 355, y: 664 };
    const big = crop(await renderNodes(spec, parent, 512), 'edges', 512);
    let seams = 0;
    for (const [dx, dy] of [
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 1],
    ] as const) {
      const child = crop(await renderNodes(spec, { z: 12, x: 2 * parent.x + dx, y: 2 * parent.y + dy }, 256), 'edges', 256);
      for (let j = 0; j < 256; j++)
        for (let i = 0; i < 256; i++) {
          const a = child.values[j * 256 + i]!;
          const b = big.values[(dy * 256 + j) * 512 + dx * 256 + i]!;
          assert.equal(child.valid[j * 256 + i], big.valid[(dy * 256 + j) * 512 + dx * 256 + i], `child ${dx},${dy} pixel ${i},${j}: validity`);
          assert.equal(a, b, `child ${dx},${dy} pixel ${i},${j}`);
          if ((i === 0 || i === 255 || j === 0 || j === 255) && child.valid[j * 256 + i]) seams++;
        }
    }
    assert.ok(seams > 1000, `${seams} valid pixels along the children's edges compared`);

    // Without the halo the same model has no context at the tile edge: its edge pixels are masked.
    const bare = (await layerFrom('laplacian-bare', 'dem', `./${DEM}`, 'laplacian.onnx', 'halo: 0')).spec;
    await assert.rejects(renderNodes(bare, parent, 256), /answered 254×254 pixels for 256×256; with halo 0/);
  });

  test('a model that does not load, lacks what the node names, or is too large refuses its layer, saying why', async () => {
    const cases: [string, RegExp][] = [
      ['file: models/garbage.onnx, bands: 1', /model 'models\/garbage\.onnx' does not load/],
      ['file: models/missing.onnx, bands: 1', /file 'models\/missing\.onnx' does not exist/],
      ['file: ../../etc/passwd, bands: 1', /resolves outside the layers directory/],
      ['file: models/linear.onnx, bands: 1, input: nope', /has no input 'nope' \(it has x\)/],
      ['file: models/linear.onnx, bands: 3', /output 'y' has 1 channels; the node says bands: 3/],
      ['file: models/linear.onnx, bands: 1, scale: [1, 2, 3]', /scale: one number, or one per input channel \(2\)/],
    ];
    // A sparse file over the size cap.
    const big = path.join(tmp.dir, 'models/big.onnx');
    closeSync(openSync(big, 'w'));
    truncateSync(big, 65 * 1024 * 1024);
    cases.push(['file: models/big.onnx, bands: 1', /model 'models\/big\.onnx' is 68157440 bytes; at most 67108864/]);
    for (const [params, why] of cases) {
      const file = path.join(tmp.dir, 'refused.yaml');
      writeFileSync(
        file,
        `sources:\n  red: ./${RED}\n  nir: ./${NIR}\npipeline:\n  nodes:\n    red: { op: read, source: red }\n    nir: { op: read, source: nir }\n    m: { op: model, in: [nir, red], ${params} }\n  output: m\n`,
      );
      await assert.rejects(loadLayer(file, { layersDir: tmp.dir, allowedHosts: [] }), (err: Error) => why.test(err.message), params);
    }
    await assert.rejects(
      loadLayer(writeLayer('list.yaml', `sources:\n  dem: ./${DEM}\npipeline:\n  - model: { file: models/linear.onnx, bands: 1 }\n`), {
        layersDir: tmp.dir,
        allowedHosts: [],
      }),
      /a model takes its inputs from other nodes/,
    );
  });

  test('through the server: a model layer serves tiles, and a model past its timeout answers a clear error', async () => {
    writeFileSync(path.join(tmp.dir, 'linear.yaml'), linearLayer());
    await layerFrom('heavy', 'dem', `./${DEM}`, 'heavy.onnx', 'halo: 12, timeout_ms: 1');
    const server = await startServerProcess(tmp.dir);
    try {
      const ok = await request(server.url, '/tiles/linear/12/761/1589.png');
      assert.equal(ok.status, 200, ok.body.toString());
      assert.equal(ok.headers['content-type'], 'image/png');
      const slow = await request(server.url, '/tiles/heavy/11/355/664.png');
      assert.equal(slow.status, 503, slow.body.toString());
      assert.match(JSON.parse(slow.body.toString()).detail, /model 'models\/heavy\.onnx' took \d+ ms for one tile, longer than its timeout_ms \(1 ms\)/);
      assert.equal((await request(server.url, '/tiles/linear/12/761/1589.png')).status, 200, 'the server carries on');
    } finally {
      await server.stop();
    }
  });

  function writeLayer(name: string, text: string): string {
    const file = path.join(tmp.dir, name);
    writeFileSync(file, text);
    return file;
  }

  /** A one-source layer whose graph is read (nearest) → model → rescale. */
  async function layerFrom(name: string, source: string, ref: string, model: string, extra: string) {
    const file = writeLayer(
      `${name}.yaml`,
      `sources:\n  ${source}: ${ref}\nminzoom: 6\nmaxzoom: 15\npipeline:\n  nodes:\n    src: { op: read, source: ${source}, resampling: nearest }\n` +
        `    edges: { op: model, in: [src], file: models/${model}, bands: 1, ${extra} }\n    grey: { op: rescale, in: [edges], from: [-50, 50] }\n  output: grey\n`,
    );
    return loadLayer(file, { layersDir: tmp.dir, allowedHosts: [] });
  }
});

/** A node's first band and validity, the buffer cropped off. */
function crop(nodes: Map<string, Raster | null>, name: string, size: number): { values: Float32Array; valid: Uint8Array } {
  const r = nodes.get(name);
  assert.ok(r && r.kind === 'bands', `node ${name} has bands`);
  const pad = (r.width - size) / 2;
  const values = new Float32Array(size * size);
  const valid = new Uint8Array(size * size);
  for (let j = 0; j < size; j++)
    for (let i = 0; i < size; i++) {
      const k = (j + pad) * r.width + i + pad;
      values[j * size + i] = r.bands[0]![k]!;
      valid[j * size + i] = r.mask[k]!;
    }
  return { values, valid };
}
