import { compileExpression, type CompiledExpression } from '../expression/compiler.js';
import { z } from 'zod';
import { Operator, parseParams, type BuildContext } from '../operator.js';
import { bandList } from '../params.js';
import type { Alloc } from '../../alloc.js';
import { normalizedDifference as normalizedDifferenceKernel } from '../../kernels.js';
import { allocOf, bandRaster, copyMask, type BandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';

function bandsOf(inputs: OutputShape[], op: string): number {
  let n = 0;
  for (const s of inputs) {
    if (s.kind !== 'bands') throw new Error(`${op} takes bands, not RGBA`);
    n += s.bands;
  }
  return n;
}

/**
 * The bands of all inputs, in order, with the pixels valid in every input. The mask may be
 * an input's own (one input, or reads of one source, which share theirs: Read.fuse): copy
 * it before changing it.
 */
function stack(inputs: Raster[], alloc: Alloc): BandRaster {
  const all = inputs as BandRaster[];
  const first = all[0]!;
  const bands = all.flatMap((r) => r.bands);
  if (all.every((r) => r.mask === first.mask)) return { ...first, bands };
  const mask = copyMask(alloc, first.mask);
  for (const r of all) for (let i = 0; i < mask.length; i++) mask[i] &= r.mask[i]!;
  return { kind: 'bands', width: first.width, height: first.height, bands, mask };
}

/** Picks and reorders bands (1-based). */
const SelectParams = z.strictObject({ bands: bandList });
export type SelectParams = z.input<typeof SelectParams>;

export class Select extends Operator {
  static readonly op = 'select';
  static readonly params = SelectParams;
  readonly arity = 1;
  readonly params: z.output<typeof SelectParams>;

  constructor(params: SelectParams) {
    super();
    this.params = parseParams(SelectParams, params);
  }

  shape(inputs: OutputShape[]): OutputShape {
    const n = bandsOf(inputs, 'select');
    for (const b of this.params.bands) if (b > n) throw new Error(`select: band ${b} does not exist (the input has ${n})`);
    return { kind: 'bands', bands: this.params.bands.length };
  }

  apply([input]: Raster[]): Raster {
    const r = input as BandRaster;
    return { ...r, bands: Array.from(this.params.bands, (b) => r.bands[b - 1]!), palette: this.params.bands.length === 1 ? r.palette : undefined };
  }

  config(): Record<string, unknown> {
    return { bands: this.params.bands };
  }
}

/**
 * Band math in the safe expression language (src/ops/expression/), compiled once. With
 * several inputs (graph form), b1..bN number their bands in order.
 */
const ExpressionParams = z.strictObject({ expr: z.string().min(1).max(2000) });
export type ExpressionParams = z.input<typeof ExpressionParams>;

export class Expression extends Operator {
  static readonly op = 'expression';
  static readonly params = ExpressionParams;
  readonly arity: number;
  private readonly compiled: CompiledExpression;

  constructor(params: z.input<typeof ExpressionParams>, ctx?: Pick<BuildContext, 'inputs'>) {
    super();
    this.arity = Math.max(1, ctx?.inputs ?? 1);
    this.compiled = compileExpression(parseParams(ExpressionParams, params).expr);
  }

  shape(inputs: OutputShape[]): OutputShape {
    const n = bandsOf(inputs, 'expression');
    const missing = this.compiled.bands.filter((b) => b > n);
    if (missing.length) throw new Error(`expression uses b${missing[0]}, but the input has ${n} band(s)`);
    return { kind: 'bands', bands: 1 };
  }

  apply(inputs: Raster[], ctx: TileContext): Raster {
    const alloc = allocOf(ctx);
    const r = stack(inputs, alloc);
    const out = bandRaster(r.width, r.height, 1, copyMask(alloc, r.mask), alloc);
    const result = out.bands[0]!;
    this.compiled.evaluate(r.bands, r.mask, result);
    // Division by zero and the like give no value: those pixels become nodata.
    for (let i = 0; i < result.length; i++) if (result[i] !== result[i]) out.mask[i] = 0;
    return out;
  }

  config(): Record<string, unknown> {
    return { expr: this.compiled.source };
  }
}

/** (a - b) / (a + b), nodata where the sum is 0: from two inputs, or two bands of one. */
const NormalizedDifferenceParams = z.strictObject({ bands: z.tuple([z.number().int().min(1), z.number().int().min(1)]).optional() });
export type NormalizedDifferenceParams = z.input<typeof NormalizedDifferenceParams>;

export class NormalizedDifference extends Operator {
  static readonly op = 'normalized_difference';
  static readonly params = NormalizedDifferenceParams;
  readonly arity: number;
  readonly params: z.output<typeof NormalizedDifferenceParams>;

  constructor(params: NormalizedDifferenceParams) {
    super();
    this.params = parseParams(NormalizedDifferenceParams, params);
    this.arity = this.params.bands ? 1 : 2;
  }

  shape(inputs: OutputShape[]): OutputShape {
    const n = bandsOf(inputs, 'normalized_difference');
    if (this.params.bands) {
      for (const b of this.params.bands) if (b > n) throw new Error(`normalized_difference: band ${b} does not exist (the input has ${n})`);
    } else if (inputs.some((s) => s.bands !== 1)) {
      throw new Error('normalized_difference takes two one-band inputs (or `bands: [a, b]` of one input)');
    }
    return { kind: 'bands', bands: 1 };
  }

  apply(inputs: Raster[], ctx: TileContext): Raster {
    const alloc = allocOf(ctx);
    const r = stack(inputs, alloc);
    const [ia, ib] = this.params.bands ? [this.params.bands[0] - 1, this.params.bands[1] - 1] : [0, 1];
    const a = r.bands[ia]!,
      b = r.bands[ib]!;
    const out = bandRaster(r.width, r.height, 1, copyMask(alloc, r.mask), alloc);
    const o = out.bands[0]!;
    const mask = out.mask;
    if (normalizedDifferenceKernel(a, b, mask, o)) return out;
    for (let i = 0; i < o.length; i++) {
      if (!mask[i]) continue;
      const sum = a[i]! + b[i]!;
      if (sum === 0 || sum !== sum) {
        mask[i] = 0;
        continue;
      }
      o[i] = (a[i]! - b[i]!) / sum;
    }
    return out;
  }

  config(): Record<string, unknown> {
    return this.params.bands ? { bands: this.params.bands } : {};
  }
}
