/**
 * The operators that run a program's own functions: `tap` (sees a step's raster) and `lambda`
 * (computes one). They exist only through the programmatic API: a step object made by
 * `ops.tap` or `ops.lambda` carries a `CodeStep`, which only this module makes, and the loader
 * builds it only when the API passes `codeOperators` (src/ops/registry.ts, CodeOperators).
 * Layer files, ad-hoc documents and render threads never do, so there the names are refused.
 */
import { randomUUID } from 'node:crypto';
import { Operator, operatorsOf, type BuildContext } from '../ops/operator.js';
import type { OutputShape, Raster, TileContext } from '../ops/raster.js';
import type { CodeOperators } from '../ops/registry.js';

/** Sees the raster a step produced (never null: a step with nothing to draw ends the tile first); returns nothing. */
export type TapFn = (raster: Raster, tile: TileContext) => void | Promise<void>;

/** Computes a raster from its inputs' (one in a list of steps, a node's `in` in a graph); null: nothing to draw here. */
export type LambdaFn = (inputs: Raster[], tile: TileContext) => Raster | null | Promise<Raster | null>;

/** What a lambda returns: numeric bands (how many) or RGBA. */
export type LambdaOutput = { kind: 'bands'; bands: number } | { kind: 'rgba' };

export interface LambdaOptions {
  /**
   * What it returns, checked when the graph is built (the next step must take it) and on every
   * tile; a function of the inputs' shapes for a lambda that keeps them (`(s) => s[0]`).
   */
  output: LambdaOutput | ((inputs: OutputShape[]) => LambdaOutput);
  /** Pixels of context it needs around each output pixel, as hillshade's 1: `read` pads the tile so. Default 0. */
  buffer?: number;
  /**
   * What it computes, for the layer's config hash and so its tiles' cache keys and ETags: keep
   * it while the function draws the same, change it when it does not. Default: the function's
   * name with a part unique to this lambda, so that no two lambdas share cached tiles.
   */
  key?: string;
}

/** The most context a lambda may ask for, as for the built-ins. */
const MAX_BUFFER = 64;

/** A function a program passes in, as the step object of `ops.tap` or `ops.lambda` carries it. */
export abstract class CodeStep {
  abstract readonly op: 'tap' | 'lambda';
  abstract build(ctx: BuildContext): Operator;
}

export class TapStep extends CodeStep {
  readonly op = 'tap';
  constructor(readonly fn: TapFn) {
    super();
    if (typeof fn !== 'function') throw new TypeError('ops.tap takes a function');
  }
  build(): Operator {
    return new Tap(this.fn);
  }
}

export class LambdaStep extends CodeStep {
  readonly op = 'lambda';
  readonly key: string;
  constructor(
    readonly fn: LambdaFn,
    readonly options: LambdaOptions,
  ) {
    super();
    if (typeof fn !== 'function') throw new TypeError('ops.lambda takes a function');
    if (!options || (typeof options.output !== 'function' && !validOutput(options.output)))
      throw new TypeError("ops.lambda needs its output: { kind: 'bands', bands: N } or { kind: 'rgba' }");
    const buffer = options.buffer ?? 0;
    if (!Number.isInteger(buffer) || buffer < 0 || buffer > MAX_BUFFER) throw new TypeError(`ops.lambda: buffer is a whole number from 0 to ${MAX_BUFFER}`);
    this.key = options.key ?? `${fn.name || 'lambda'}-${randomUUID().slice(0, 8)}`;
  }
  build(ctx: BuildContext): Operator {
    return new Lambda(this, ctx.inputs);
  }
}

function validOutput(o: unknown): o is LambdaOutput {
  if (!o || typeof o !== 'object') return false;
  const { kind, bands } = o as { kind?: unknown; bands?: unknown };
  return kind === 'rgba' || (kind === 'bands' && Number.isInteger(bands) && (bands as number) >= 1 && (bands as number) <= 256);
}

const shapeOf = (o: LambdaOutput): OutputShape => (o.kind === 'rgba' ? { kind: 'rgba', bands: 4 } : { kind: 'bands', bands: o.bands });

/** Passes its input on unchanged, after showing it to the program's function. */
export class Tap extends Operator {
  static readonly op = 'tap';
  readonly arity = 1;

  constructor(private readonly fn: TapFn) {
    super();
  }

  shape([input]: OutputShape[]): OutputShape {
    return input!;
  }

  async apply([input]: Raster[], ctx: TileContext): Promise<Raster> {
    await this.fn(input!, ctx);
    return input!;
  }

  config(): Record<string, unknown> {
    return {};
  }
}

/** The program's function as a step: its inputs as the graph gives them, its output checked against what it declared. */
export class Lambda extends Operator {
  static readonly op = 'lambda';
  private readonly fn: LambdaFn;
  private readonly key: string;
  private readonly output: LambdaStep['options']['output'];
  private readonly pad: number;
  /** The output shape once the graph has checked it. */
  private declared?: OutputShape;

  constructor(
    step: LambdaStep,
    readonly arity: number,
  ) {
    super();
    this.fn = step.fn;
    this.key = step.key;
    this.output = step.options.output;
    this.pad = step.options.buffer ?? 0;
  }

  override buffer(): number {
    return this.pad;
  }

  shape(inputs: OutputShape[]): OutputShape {
    const out = typeof this.output === 'function' ? this.output(inputs) : this.output;
    if (!validOutput(out)) throw new Error(`lambda '${this.key}': its output is { kind: 'bands', bands: N } or { kind: 'rgba' }`);
    return (this.declared = shapeOf(out));
  }

  async apply(inputs: Raster[], ctx: TileContext): Promise<Raster | null> {
    const r = await this.fn(inputs, ctx);
    if (r === null) return null;
    this.checkResult(r, ctx);
    return r;
  }

  /** A raster the next step can take: the kind, bands and size it declared, the tile's grid with its buffer. */
  private checkResult(r: Raster, ctx: TileContext): void {
    const side = ctx.size + 2 * ctx.buffer;
    const wrong = (what: string) => new Error(`lambda '${this.key}' returned ${what}`);
    const want = this.declared!;
    if (!r || (r.kind !== 'bands' && r.kind !== 'rgba')) throw wrong('something that is not a raster');
    if (r.kind !== want.kind) throw wrong(`${r.kind === 'rgba' ? 'RGBA' : 'bands'}; it declared ${want.kind === 'rgba' ? 'RGBA' : 'bands'}`);
    if (r.width !== side || r.height !== side) throw wrong(`${r.width}x${r.height} pixels; the tile with its buffer is ${side}x${side}`);
    const n = side * side;
    if (r.kind === 'rgba') {
      if (!(r.data instanceof Uint8Array) || r.data.length !== n * 4) throw wrong(`RGBA data that is not a Uint8Array of ${n * 4} bytes`);
      return;
    }
    if (r.bands.length !== want.bands) throw wrong(`${r.bands.length} band(s); it declared ${want.bands}`);
    if (!r.bands.every((b) => b instanceof Float32Array && b.length === n)) throw wrong(`bands that are not Float32Arrays of ${n} values`);
    if (!(r.mask instanceof Uint8Array) || r.mask.length !== n) throw wrong(`a mask that is not a Uint8Array of ${n} bytes`);
  }

  config(): Record<string, unknown> {
    return { key: this.key, output: this.declared ?? null, buffer: this.pad };
  }
}

/** Builds a step's CodeStep, when it is one that this module made and its name is the step's. */
export const codeOperators: CodeOperators = (op, params, ctx) => {
  const code = params && typeof params === 'object' ? (params as { code?: unknown }).code : undefined;
  if (!(code instanceof CodeStep) || code.op !== op || Object.keys(params as object).length !== 1) return undefined;
  return code.build(ctx);
};

/** Whether a graph runs a program's functions: then it renders in the calling thread only (functions cannot be sent to a thread). */
export function hasCode(graph: Operator): boolean {
  for (const op of operatorsOf(graph)) if (op instanceof Tap || op instanceof Lambda) return true;
  return false;
}
