/**
 * The cost of a model tile (bench step `model`, issue 18): the bench NDVI layer against the same
 * layer with an ONNX model computing the value that is coloured.
 *
 * - At bench time, bench/data/models/bench-ndvi-mlp.onnx: a per-pixel network over the NDVI
 *   layer's two bands (NIR, red; each × 1e-4), a 1×1 convolution 2 → 8 channels, Relu, a 1×1
 *   convolution 8 → 1, fixed weights (the last layer fitted once, offline, by least squares to
 *   the scene's NDVI: the tiles look like the NDVI layer's, their PNGs about as large).
 *   bench/data/bench-ndvi-model.yaml is bench-ndvi.yaml as bench/layers.ts wrote it (same
 *   sources, reads, zooms and colour map) with the node that the colour map takes replaced by
 *   `{ op: model, in: <the same inputs>, file: models/bench-ndvi-mlp.onnx, bands: 1 }`.
 * - Over HTTP through the ndvi step's own scenario function (bench.ts `uncachedLayer`: a fresh
 *   `tilegraph serve` per run, CACHE_L1_MB=0, no Redis, the bench's connections, zooms 10-14,
 *   BENCH_RUNS runs, the median reported), the two layers in turn, NDVI first, in ABBA order over
 *   BENCH_MODEL_ROUNDS rounds (default 4), over the same tiles: the ndvi step's (every n-th tile
 *   of each zoom, n as that step chose it; when the step is skipped, n from a pilot of the model
 *   layer as the ndvi step makes its own, against BENCH_BUDGET_S). Both layers decode the same
 *   blocks; the stride matters (neighbouring tiles share blocks), hence the ndvi step's.
 *   `costRatio` (`ratios.modelTileCostVsNdvi`) is the median of the rounds' NDVI tiles/s over
 *   model tiles/s: what a model tile costs in NDVI tiles; `cpuCostRatio`
 *   (`ratios.modelTileCpuCostVsNdvi`) the same from the server process's CPU time per tile (model
 *   over NDVI), which the share of a busy machine the server got moves much less.
 * - `inOneThread`: about 100 of the same tiles rendered in this thread as a render thread renders
 *   them, each layer from an empty block cache, in turn, three rounds: ms a tile reading, in the
 *   operators, and by node (the model's against normalized_difference's); and
 *   `sessionRunMs`: onnxruntime's `session.run` alone on a 256×256 two-channel input, with the
 *   operator's session options. Where a model tile's time goes.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import { parse, stringify } from 'yaml';
import { loadLayer, type Layer } from '../src/layers/layer.js';
import { LayerGraph } from '../src/render/renderer.js';
import { blockCache } from '../src/sources/blockcache.js';
import { drive, summarise, type LatencySummary } from './loadgen.js';
import { everyNth, tilesCovering, type Tile } from './tiles.js';

type Scenario = Record<string, unknown> & { name: string };

export interface ModelBenchDeps {
  data: string;
  connections: number;
  zooms: [number, number];
  /** BENCH_RUNS: the scenario function's runs per layer. */
  runs: number;
  /** BENCH_BUDGET_S: seconds for the runs of one HTTP layer (the pilot's budget when the ndvi step did not run). */
  budgetS: number;
  /** The ndvi step's stride (every n-th tile of each zoom), when it ran. */
  ndviStride?: number;
  /** bench.ts's uncached HTTP scenario (the ndvi step's), over every `stride`-th tile of each zoom. */
  uncachedLayer(name: string, layer: Layer, stride: number): Promise<Scenario>;
  startTilegraph(extraEnv?: Record<string, string>): Promise<{ url: string; stop(): Promise<void> }>;
  log(msg: string): void;
}

const ROUNDS = Math.max(1, Number(process.env.BENCH_MODEL_ROUNDS ?? 4));
const DIRECT_ROUNDS = 3;
const MODEL_FILE = 'models/bench-ndvi-mlp.onnx';
const SCALE = 1e-4;

const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
const median = (v: readonly number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : round((s[m - 1]! + s[m]!) / 2, 3);
};
const tilePath = (layer: string) => (t: Tile) => `/tiles/${layer}/${t.z}/${t.x}/${t.y}.png`;

// ---------------------------------------------------------------------------
// The model

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

type Dim = number | string;
const valueInfo = (name: string, dims: Dim[]) => ({
  name,
  type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
});
const ints = (name: string, values: number[]) => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: values });

/** A chain of Conv nodes (each [out, in, k, k] weights and a bias, no padding), each but the last followed by Relu when `relu`. */
function convModel(layers: { weights: number[]; bias: number[]; shape: [number, number, number, number]; relu?: boolean }[]): Uint8Array {
  const node = layers.flatMap((l, i) => {
    const last = i === layers.length - 1;
    const out = last ? 'y' : `h${i + 1}`;
    const conv = {
      opType: 'Conv',
      input: [i === 0 ? 'x' : `h${i}`, `w${i}`, `b${i}`],
      output: [l.relu ? `c${i}` : out],
      attribute: [ints('kernel_shape', [l.shape[2], l.shape[3]])],
    };
    return l.relu ? [conv, { opType: 'Relu', input: [`c${i}`], output: [out] }] : [conv];
  });
  const initializer = layers.flatMap((l, i) => [
    { name: `w${i}`, dataType: FLOAT, dims: l.shape, floatData: l.weights },
    { name: `b${i}`, dataType: FLOAT, dims: [l.shape[0]], floatData: l.bias },
  ]);
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'bench-ndvi-mlp',
      node,
      initializer,
      input: [valueInfo('x', [1, layers[0]!.shape[1], 'h', 'w'])],
      output: [valueInfo('y', [1, layers.at(-1)!.shape[0], 'h2', 'w2'])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * Hidden units over (nir, red) × 1e-4: [nir weight, red weight, bias] each, hinges of the
 * difference and the sum. The output weights (and bias, last) were fitted once by least squares
 * to NDVI over a 512² sample of scene.tif: within about 0.005 of it (RMS) on the scene.
 */
const HIDDEN: [number, number, number][] = [
  [1, -1, 0],
  [-1, 1, 0],
  [1, -1, -0.5],
  [1, -1, -1],
  [1, 1, -2],
  [1, 1, -3],
  [0.8, -1.2, 0],
  [0.5, -1.5, 0],
];
const OUTPUT = [0.3999, -1.1987, -0.2292, -0.0783, -0.0609, 0.0279, 0.2279, -0.1439];
const OUTPUT_BIAS = 0.032;

/** The model over `channels` input channels, NIR at channel `nir` and red at `red`, the others weighed 0. */
function ndviModel(channels: number, nir: number, red: number): Uint8Array {
  const first = HIDDEN.flatMap(([wn, wr]) => Array.from({ length: channels }, (_, c) => (c === nir ? wn : c === red ? wr : 0)));
  return convModel([
    { shape: [HIDDEN.length, channels, 1, 1], weights: first, bias: HIDDEN.map((h) => h[2]), relu: true },
    { shape: [1, HIDDEN.length, 1, 1], weights: OUTPUT, bias: [OUTPUT_BIAS] },
  ]);
}

export const MODEL_WHAT =
  'a per-pixel network over the NDVI layer’s NIR and red bands (× 1e-4): 1×1 Conv 2→8, Relu, 1×1 Conv 8→1, fixed weights approximating NDVI (onnx-proto, written at bench time; onnxruntime-node CPU, one thread per render thread)';

// ---------------------------------------------------------------------------
// The layer

type Doc = Record<string, unknown> & { pipeline: unknown; title?: string };
type Node = Record<string, unknown> & { op: string; in?: string[] };

/**
 * The NDVI layer's pipeline with the node that its last colour map takes replaced by the model
 * over the same inputs, and the model's channel count and where NIR and red are in it. The
 * graph form and the list form (read, normalized_difference, colormap) are rewritten; other
 * forms (an expression, the fallback) are refused.
 */
function modelPipeline(pipeline: unknown, model: Record<string, unknown>): { pipeline: unknown; nir: number; red: number; channels: number } {
  // normalized_difference(a, b) = (a - b) / (a + b): a is NIR, b red; `bands: [a, b]` of one input picks them.
  const roles = (p: Record<string, unknown>, channels: number) => {
    const bands = p.bands as [number, number] | undefined;
    return bands ? { nir: bands[0] - 1, red: bands[1] - 1, channels: Math.max(channels, ...bands) } : { nir: 0, red: 1, channels: 2 };
  };
  if (Array.isArray(pipeline)) {
    const steps = pipeline as Record<string, Record<string, unknown>>[];
    const [read, nd, colour] = steps;
    if (steps.length !== 3 || !read?.read || !nd?.normalized_difference || !colour?.colormap)
      throw new Error(`the NDVI layer's list pipeline is not read -> normalized_difference -> colormap: ${JSON.stringify(pipeline)}`);
    const r = roles(nd.normalized_difference, ((read.read.bands as number[] | undefined) ?? [1, 2]).length);
    return {
      ...r,
      pipeline: {
        nodes: {
          bands: { op: 'read', ...read.read },
          model: { op: 'model', in: ['bands'], ...model },
          colour: { op: 'colormap', in: ['model'], ...colour.colormap },
        },
        output: 'colour',
      },
    };
  }
  const graph = pipeline as { nodes: Record<string, Node>; output: string };
  const colour = graph.nodes?.[graph.output];
  const value = colour?.in?.[0];
  const nd = value === undefined ? undefined : graph.nodes[value];
  if (colour?.op !== 'colormap' || !nd || nd.op !== 'normalized_difference' || !nd.in)
    throw new Error(`the NDVI layer's graph does not end in normalized_difference -> colormap: ${JSON.stringify(pipeline)}`);
  const { op: _op, in: inputs, ...params } = nd;
  const readBands = nd.in.length === 1 ? ((graph.nodes[nd.in[0]!]?.bands as number[] | undefined)?.length ?? 2) : 2;
  const nodes: Record<string, Node> = {};
  for (const [k, v] of Object.entries(graph.nodes))
    if (k === value) nodes.model = { op: 'model', in: inputs, ...model };
    else nodes[k] = k === graph.output ? { ...v, in: ['model', ...v.in!.slice(1)] } : v;
  return { ...roles(params, readBands), pipeline: { nodes, output: graph.output } };
}

/** Writes bench/data/models/bench-ndvi-mlp.onnx and bench-ndvi-model.yaml (bench-ndvi.yaml with the model) and loads the layer. */
export async function writeModelLayer(data: string, ndvi: Layer): Promise<{ layer: Layer; channels: number; bytes: number }> {
  const doc = parse(await readFile(ndvi.file, 'utf8')) as Doc;
  const node = { file: MODEL_FILE, bands: 1, scale: [SCALE], offset: [0] };
  const m = modelPipeline(doc.pipeline, node);
  await mkdir(path.join(data, path.dirname(MODEL_FILE)), { recursive: true });
  const onnxBytes = ndviModel(m.channels, m.nir, m.red);
  await writeFile(path.join(data, MODEL_FILE), onnxBytes);
  const out = { ...doc, title: `${doc.title ?? ndvi.name}, value by an ONNX model`, pipeline: m.pipeline };
  const file = path.join(data, 'bench-ndvi-model.yaml');
  await writeFile(file, `# Written by bench/model.ts (bench step model) on every run: ${path.basename(ndvi.file)} with the model.\n${stringify(out)}`);
  return { layer: await loadLayer(file, { layersDir: data, allowedHosts: [] }), channels: m.channels, bytes: onnxBytes.length };
}

// ---------------------------------------------------------------------------
// Measures

/** Tiles of zooms 5..9 over the layer, repeated to `n`: each render thread builds the graph (and the model's session). */
function warmupPaths(layer: Layer, n: number): string[] {
  const low = tilesCovering(layer.bounds, 5, 9).map(tilePath(layer.name));
  return Array.from({ length: n }, (_, i) => low[i % low.length]!);
}

/** The ndvi step's pilot, of the model layer (every 20th tile, one server): the stride at which its runs fit BENCH_BUDGET_S. */
async function strideFor(deps: ModelBenchDeps, layer: Layer, all: readonly Tile[]): Promise<{ stride: number; pilotTilesPerSec?: number }> {
  if (all.length <= 100) return { stride: 1 };
  const srv = await deps.startTilegraph();
  try {
    await drive(srv.url, warmupPaths(layer, 2 * deps.connections), { connections: deps.connections });
    const r = await drive(srv.url, everyNth(all, 20).map(tilePath(layer.name)), { connections: deps.connections, maxMs: deps.budgetS * 1000 });
    const estimate = all.length / Math.max(0.01, r.perSecond);
    const stride = estimate * deps.runs > deps.budgetS ? Math.ceil((estimate * deps.runs) / deps.budgetS) : 1;
    deps.log(
      `  model pilot: ${r.requests} tiles at ${r.perSecond} tiles/s; measuring ${stride > 1 ? `every ${stride}th tile of each zoom` : 'every tile'} of both layers`,
    );
    return { stride, pilotTilesPerSec: r.perSecond };
  } finally {
    await srv.stop();
  }
}

/** onnxruntime's session.run alone, with the operator's session options, on a 256×256 input like a tile's. */
async function sessionRun(file: string, channels: number, runs = 200): Promise<LatencySummary> {
  const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const n = 256 * 256;
    const data = new Float32Array(channels * n);
    // Reflectance-like values (× 1e-4), a fixed pseudo-random pattern.
    let seed = 1;
    for (let i = 0; i < data.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      data[i] = 0.5 + (2.5 * seed) / 2 ** 31;
    }
    const feed = { [s.inputNames[0]!]: new ort.Tensor('float32', data, [1, channels, 256, 256]) };
    for (let i = 0; i < 10; i++) await s.run(feed);
    const lat: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await s.run(feed);
      lat.push(performance.now() - t0);
    }
    return summarise(lat);
  } finally {
    await s.release();
  }
}

/**
 * The tiles rendered in this thread (LayerGraph, as a render thread renders before encoding), the
 * layers in turn, each round from an empty block cache: ms a tile reading (fetch and decode), in
 * the operators (resampling included), and by node, the time from the previous node's end (the
 * tile's start for the first) to this one's; the medians of the rounds.
 */
async function inOneThread(ndvi: Layer, model: Layer, tiles: readonly Tile[]): Promise<Record<string, unknown>> {
  const sample = everyNth(tiles, Math.max(1, Math.ceil(tiles.length / 100)));
  const graphs = { ndvi: await LayerGraph.open(ndvi.spec), model: await LayerGraph.open(model.spec) };
  try {
    for (const g of Object.values(graphs)) for (const t of sample.slice(0, 4)) await g.render({ ...t, size: 256 }); // the model's session made
    const rounds: Record<'ndvi' | 'model', { read: number; ops: number; nodes: Record<string, number> }[]> = { ndvi: [], model: [] };
    for (let r = 0; r < DIRECT_ROUNDS; r++)
      for (const k of ['ndvi', 'model'] as const) {
        blockCache.resize(256 * 1024 * 1024); // empty: both decode the same blocks
        let read = 0,
          ops = 0;
        const nodes: Record<string, number> = {};
        for (const t of sample) {
          let last = performance.now();
          const out = await graphs[k].render({ ...t, size: 256 }, undefined, (name) => {
            const now = performance.now();
            nodes[name] = (nodes[name] ?? 0) + now - last;
            last = now;
          });
          read += out.readMs;
          ops += out.opsMs;
        }
        const per = (v: number) => round(v / sample.length, 2);
        rounds[k].push({ read: per(read), ops: per(ops), nodes: Object.fromEntries(Object.entries(nodes).map(([n, v]) => [n, per(v)])) });
      }
    const sum = (v: (typeof rounds)['ndvi']) => ({
      readMs: median(v.map((x) => x.read)),
      opsMs: median(v.map((x) => x.ops)),
      nodeMs: Object.fromEntries(Object.keys(v[0]!.nodes).map((n) => [n, median(v.map((x) => x.nodes[n] ?? 0))])),
    });
    const [a, b] = [sum(rounds.ndvi), sum(rounds.model)];
    return {
      what: `${sample.length} of the HTTP tiles rendered (not encoded) in this thread, each layer from an empty block cache, in turn, ${DIRECT_ROUNDS} rounds, the medians of the rounds: ms a tile reading (fetch and decode), in the operators (resampling and the colour map included), and by node (from the previous node's end)`,
      ndvi: a,
      model: b,
      opsMsModelMinusNdvi: round(b.opsMs - a.opsMs, 2),
    };
  } finally {
    await Promise.all(Object.values(graphs).map((g) => g.close()));
  }
}

type Http = {
  tilesPerSec: number;
  latencyMs: LatencySummary;
  runs: number[];
  cpuMsPerTile: number;
  tiles: { measured: number; cutShort?: boolean };
  statuses: Record<string, number>;
  meanBytes: number;
};

/** The step: writes the model and its layer, then measures the two layers in turn. */
export async function modelBench(deps: ModelBenchDeps, ndvi: Layer): Promise<Scenario> {
  const started = performance.now();
  const { layer: model, channels, bytes } = await writeModelLayer(deps.data, ndvi);
  const all = tilesCovering(ndvi.bounds, deps.zooms[0], deps.zooms[1]);
  const { stride, pilotTilesPerSec } =
    deps.ndviStride !== undefined ? { stride: deps.ndviStride, pilotTilesPerSec: undefined } : await strideFor(deps, model, all);
  const rounds: { ndvi: Http; model: Http; costRatio: number; cpuCostRatio: number }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // ABBA: NDVI first in the first round, the model first in the second, and so on.
    const order = r % 2 === 0 ? (['ndvi', 'model'] as const) : (['model', 'ndvi'] as const);
    const got: Partial<Record<'ndvi' | 'model', Http>> = {};
    for (const k of order)
      got[k] = (await deps.uncachedLayer(
        k === 'ndvi' ? 'tilegraph-ndvi-uncached' : 'tilegraph-ndvi-model-uncached',
        k === 'ndvi' ? ndvi : model,
        stride,
      )) as unknown as Http;
    const [a, b] = [got.ndvi!, got.model!];
    const costRatio = round(a.tilesPerSec / Math.max(0.01, b.tilesPerSec), 3);
    const cpuCostRatio = round(b.cpuMsPerTile / Math.max(0.001, a.cpuMsPerTile), 3);
    deps.log(
      `  model round ${r + 1}/${ROUNDS}: NDVI ${a.tilesPerSec} tiles/s, model ${b.tilesPerSec} tiles/s: a model tile costs ${costRatio} NDVI tiles; server CPU ${a.cpuMsPerTile} / ${b.cpuMsPerTile} ms a tile (${cpuCostRatio}x)`,
    );
    rounds.push({ ndvi: a, model: b, costRatio, cpuCostRatio });
  }
  const measured = everyNth(all, stride);
  const oneThread = await inOneThread(ndvi, model, measured);
  const runMs = await sessionRun(model.spec.files![MODEL_FILE]!, channels);
  const pick = (k: 'ndvi' | 'model') => {
    const rates = rounds.map((x) => x[k].tilesPerSec);
    const mid = [...rounds].sort((x, y) => x[k].tilesPerSec - y[k].tilesPerSec)[(rounds.length - 1) >> 1]![k];
    return {
      layer: k === 'ndvi' ? ndvi.name : model.name,
      tilesPerSec: median(rates),
      // The round with the median tiles/s (the lower middle one of an even count): its median run.
      latencyMs: mid.latencyMs,
      statuses: mid.statuses,
      meanBytes: mid.meanBytes,
      cpuMsPerTile: median(rounds.map((x) => x[k].cpuMsPerTile)),
      byRound: rates,
      runsByRound: rounds.map((x) => x[k].runs),
      cpuMsPerTileByRound: rounds.map((x) => x[k].cpuMsPerTile),
      cutShort: rounds.some((x) => x[k].tiles.cutShort),
    };
  };
  const costRatio = median(rounds.map((x) => x.costRatio));
  const cpuCostRatio = median(rounds.map((x) => x.cpuCostRatio));
  const scenario: Scenario = {
    name: 'tilegraph-ndvi-model-vs-ndvi',
    kind: 'http',
    what: MODEL_WHAT,
    how: `bench.ts uncachedLayer (the ndvi step's scenario: a fresh tilegraph serve per run, CACHE_L1_MB=0, no Redis, ${deps.connections} connections, ${deps.runs} runs, the median run) for each layer in turn, ${ROUNDS} rounds in ABBA order, the same tiles; costRatio is the median of the rounds' (NDVI tiles/s / model tiles/s), cpuCostRatio the same of the server's CPU ms per tile (model / NDVI)`,
    model: { file: MODEL_FILE, bytes, node: { op: 'model', file: MODEL_FILE, bands: 1, scale: [SCALE], offset: [0] } },
    tiles: {
      zooms: deps.zooms,
      total: all.length,
      measured: measured.length,
      stride,
      sampled: stride > 1,
      strideFrom: deps.ndviStride !== undefined ? 'the ndvi step' : 'a pilot of the model layer',
    },
    pilotTilesPerSec,
    ndvi: pick('ndvi'),
    withModel: pick('model'),
    costByRound: rounds.map((x) => x.costRatio),
    costRatio,
    cpuCostByRound: rounds.map((x) => x.cpuCostRatio),
    cpuCostRatio,
    inOneThread: oneThread,
    sessionRunMs: {
      what: `session.run alone on [1, ${channels}, 256, 256] float32, the operator’s session options, in this thread (200 runs after 10)`,
      ...runMs,
    },
    seconds: round((performance.now() - started) / 1000),
  };
  deps.log(
    `  model: a model tile costs ${costRatio} NDVI tiles (median of the rounds), ${cpuCostRatio}x in server CPU time; session.run ${runMs.p50} ms (p50) a tile`,
  );
  return scenario;
}
