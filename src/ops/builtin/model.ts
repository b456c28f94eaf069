/**
 * `model`: an ONNX model run on its inputs, per tile (onnxruntime-node, CPU). The inputs' bands
 * are stacked as the model's input channels (NCHW, one image), each scaled and offset; the
 * model's output channels become bands (scores), or one band of the index of the largest
 * (`argmax`, for `colormap: classes`). `halo` pixels of context are read around the tile, as
 * hillshade's are, so that a convolution sees across tile edges and tiles join without seams;
 * a model whose output is smaller than its input by the halo on each side ("valid" padding)
 * is placed centred.
 *
 * One session per model file per render thread, built on first use. The loader checks the
 * model once (it loads; its input and output names and channel counts are the node's) and
 * refuses the layer otherwise; files are capped in size, inputs in channels, inference in time.
 */
import { statSync } from 'node:fs';
import type ort from 'onnxruntime-node';
import { z } from 'zod';
import { TileError } from '../../errors.js';
import { Operator, parseParams, type BuildContext } from '../operator.js';
import { allocOf, bandRaster, type BandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';

/** Bytes of one model file. */
export const MAX_MODEL_BYTES = 64 * 1024 * 1024;
/** Input channels (the inputs' bands together) and output channels. */
export const MAX_MODEL_CHANNELS = 32;

const finite = z.number().refine(Number.isFinite, 'expected a finite number');
const name = z.string().min(1).max(128);

const params = z
  .object({
    /** The .onnx file, relative to the layer file, inside the layers directory. */
    file: z.string().min(1).max(256),
    /** The model's input and output names; by default its first. */
    input: name.optional(),
    output: name.optional(),
    /** The model's output channels. */
    bands: z.number().int().min(1).max(MAX_MODEL_CHANNELS),
    /** Per input channel: value × scale + offset (one number applies to every channel). */
    scale: z.array(finite).min(1).max(MAX_MODEL_CHANNELS).default([1]),
    offset: z.array(finite).min(1).max(MAX_MODEL_CHANNELS).default([0]),
    /** Pixels of context around the tile the model needs (a 3×3 convolution: 1). */
    halo: z.number().int().min(0).max(16).default(0),
    /** One band: the index of the largest output channel. */
    argmax: z.boolean().default(false),
    /** Time one tile's inference may take. */
    timeout_ms: z.number().int().min(1).max(60_000).default(5000),
  })
  .strict();

/**
 * onnxruntime, loaded when a graph first runs or checks a model: its native library takes
 * tens of milliseconds to load, in every render thread, and most layers have no model.
 */
let runtime: Promise<typeof ort> | undefined;
const onnx = (): Promise<typeof ort> => (runtime ??= import('onnxruntime-node').then((m) => m.default));

/** Sessions of this thread, by model path and file identity. */
const sessions = new Map<string, Promise<ort.InferenceSession>>();

function session(path: string): Promise<ort.InferenceSession> {
  const info = statSync(path);
  const key = `${path}@${info.size}-${info.mtimeMs}`;
  let s = sessions.get(key);
  if (!s) {
    s = onnx().then((o) =>
      o.InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' }),
    );
    s.catch(() => sessions.delete(key));
    sessions.set(key, s);
  }
  return s;
}

export class Model extends Operator {
  static readonly op = 'model';
  static readonly params = params;
  readonly arity: number;
  private readonly p: z.output<typeof params>;
  private readonly path: string;

  constructor(raw: z.input<typeof params>, ctx: BuildContext) {
    super();
    this.p = parseParams(params, raw);
    if (ctx.inputs < 1) throw new Error("a model takes its inputs from other nodes: use the graph form with 'in: [...]'");
    this.arity = ctx.inputs;
    if (!ctx.file) throw new Error('model files are read from the layers directory; this graph has none');
    this.path = ctx.file(this.p.file);
  }

  override buffer(): number {
    return this.p.halo;
  }

  shape(inputs: OutputShape[]): OutputShape {
    if (inputs.some((s) => s.kind !== 'bands')) throw new Error('a model takes bands, not RGBA');
    const channels = inputs.reduce((n, s) => n + s.bands, 0);
    if (channels > MAX_MODEL_CHANNELS) throw new Error(`the inputs have ${channels} bands; a model takes at most ${MAX_MODEL_CHANNELS} channels`);
    for (const k of ['scale', 'offset'] as const)
      if (this.p[k].length !== 1 && this.p[k].length !== channels) throw new Error(`${k}: one number, or one per input channel (${channels})`);
    return { kind: 'bands', bands: this.p.argmax ? 1 : this.p.bands };
  }

  override async check(): Promise<void> {
    const { size } = statSync(this.path);
    if (size > MAX_MODEL_BYTES) throw new Error(`model '${this.p.file}' is ${size} bytes; at most ${MAX_MODEL_BYTES}`);
    let s: ort.InferenceSession;
    try {
      s = await (await onnx()).InferenceSession.create(this.path, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
    } catch (err) {
      throw new Error(`model '${this.p.file}' does not load: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
    try {
      const { input, output } = this.p;
      if (input !== undefined && !s.inputNames.includes(input))
        throw new Error(`model '${this.p.file}' has no input '${input}' (it has ${s.inputNames.join(', ')})`);
      if (output !== undefined && !s.outputNames.includes(output))
        throw new Error(`model '${this.p.file}' has no output '${output}' (it has ${s.outputNames.join(', ')})`);
      const at = <T extends { name: string; shape?: readonly (number | string)[] }>(list: readonly T[], n: string) => list.find((m) => m.name === n);
      const inMeta = at(s.inputMetadata as unknown as { name: string; shape?: (number | string)[] }[], input ?? s.inputNames[0]!);
      const outMeta = at(s.outputMetadata as unknown as { name: string; shape?: (number | string)[] }[], output ?? s.outputNames[0]!);
      if (inMeta?.shape && inMeta.shape.length !== 4)
        throw new Error(`model '${this.p.file}': input '${inMeta.name}' has ${inMeta.shape.length} dimensions; NCHW (4) expected`);
      if (outMeta?.shape && typeof outMeta.shape[1] === 'number' && outMeta.shape[1] !== this.p.bands)
        throw new Error(`model '${this.p.file}': output '${outMeta.name}' has ${outMeta.shape[1]} channels; the node says bands: ${this.p.bands}`);
    } finally {
      await s.release();
    }
  }

  async apply(inputs: Raster[], ctx: TileContext): Promise<Raster | null> {
    const rasters = inputs as BandRaster[];
    const w = rasters[0]!.width;
    const n = w * w;
    const channels = rasters.reduce((k, r) => k + r.bands.length, 0);
    const data = new Float32Array(channels * n);
    const mask = allocOf(ctx).bytes(n).fill(1);
    let c = 0;
    for (const r of rasters) {
      for (let i = 0; i < n; i++) if (!r.mask[i]) mask[i] = 0;
      for (const band of r.bands) {
        const scale = this.p.scale[this.p.scale.length === 1 ? 0 : c]!;
        const offset = this.p.offset[this.p.offset.length === 1 ? 0 : c]!;
        const plane = data.subarray(c * n, (c + 1) * n);
        for (let i = 0; i < n; i++) plane[i] = r.mask[i] ? band[i]! * scale + offset : 0;
        c++;
      }
    }
    const s = await session(this.path);
    const { Tensor } = await onnx();
    const input = this.p.input ?? s.inputNames[0]!;
    const output = this.p.output ?? s.outputNames[0]!;
    // onnxruntime may run the model on this thread, holding its event loop: the time is
    // measured, and a tile past the budget fails even if its answer came.
    const t0 = performance.now();
    const result = await s.run({ [input]: new Tensor('float32', data, [1, channels, w, w]) }, [output]);
    const ms = performance.now() - t0;
    if (ms > this.p.timeout_ms)
      throw new TileError(
        'render_timeout',
        'model too slow',
        `model '${this.p.file}' took ${Math.round(ms)} ms for one tile, longer than its timeout_ms (${this.p.timeout_ms} ms)`,
      );
    const t = result[output] as ort.Tensor;
    const [batch, k, h, w2] = t.dims;
    if (t.dims.length !== 4 || batch !== 1 || k !== this.p.bands || h !== w2)
      throw new TileError('bad_source', 'model output', `model '${this.p.file}' answered [${t.dims.join(', ')}]; expected [1, ${this.p.bands}, H, H]`);
    // Same padding: the output covers the input; valid padding: it is smaller by the halo on each side.
    const pad = (w - h!) / 2;
    if (pad !== 0 && pad !== this.p.halo)
      throw new TileError(
        'bad_source',
        'model output',
        `model '${this.p.file}' answered ${h}×${h} pixels for ${w}×${w}; with halo ${this.p.halo} it may lose ${this.p.halo} on each side`,
      );
    const values = t.data as Float32Array;
    const out = bandRaster(w, w, this.p.argmax ? 1 : k!, mask, allocOf(ctx));
    const m = h! * h!;
    for (let j = 0; j < w; j++)
      for (let i = 0; i < w; i++) {
        const at = j * w + i;
        const si = i - pad;
        const sj = j - pad;
        if (si < 0 || sj < 0 || si >= h! || sj >= h!) {
          out.mask[at] = 0;
          continue;
        }
        const src = sj * h! + si;
        if (this.p.argmax) {
          let best = 0;
          for (let b = 1; b < k!; b++) if (values[b * m + src]! > values[best * m + src]!) best = b;
          out.bands[0]![at] = best;
        } else for (let b = 0; b < k!; b++) out.bands[b]![at] = values[b * m + src]!;
      }
    return out;
  }

  config(): Record<string, unknown> {
    return { ...this.p };
  }
}
