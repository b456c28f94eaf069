import { z } from 'zod';
import { TileError } from '../../errors.js';
import { Operator, parseParams } from '../operator.js';
import { finite, onFail } from '../params.js';
import type { BandRaster, OutputShape, Raster, TileContext } from '../raster.js';

type OnFail = z.output<typeof onFail>;

/** A quality check failed with `on_fail: raise`: the tile answers 500 with this message. */
export class QualityError extends TileError {
  constructor(check: string, message: string) {
    super('quality', `quality check ${check} failed`, message);
  }
}

abstract class Check extends Operator {
  readonly arity = 1;
  constructor(protected readonly onFail: OnFail) {
    super();
  }

  shape(inputs: OutputShape[]): OutputShape {
    if (inputs[0]!.kind !== 'bands') throw new Error(`${this.op} checks bands, not RGBA`);
    return inputs[0]!;
  }

  protected report(ctx: TileContext, message: string): void {
    const text = `${this.op} failed on tile ${ctx.z}/${ctx.x}/${ctx.y}: ${message}`;
    if (this.onFail === 'raise') throw new QualityError(this.op, text);
    ctx.warnings?.push({ check: this.op, message: text });
  }
}

/** Every valid value lies within [min, max]; the data pass through unchanged. */
const AssertRangeParams = z.strictObject({ min: finite.optional(), max: finite.optional(), on_fail: onFail });
export type AssertRangeParams = z.input<typeof AssertRangeParams>;

export class AssertRange extends Check {
  static readonly op = 'assert_range';
  static readonly params = AssertRangeParams;
  private readonly params: z.output<typeof AssertRangeParams>;

  constructor(input: AssertRangeParams) {
    const params = parseParams(AssertRangeParams, input);
    super(params.on_fail);
    this.params = params;
    if (params.min === undefined && params.max === undefined) throw new Error('assert_range needs min, max or both');
    if (params.min !== undefined && params.max !== undefined && params.min > params.max) throw new Error('assert_range: min is above max');
  }

  apply([input]: Raster[], ctx: TileContext): Raster {
    const r = input as BandRaster;
    const lo = this.params.min ?? -Infinity,
      hi = this.params.max ?? Infinity;
    let bad = 0,
      first = NaN;
    for (const band of r.bands) {
      for (let i = 0; i < band.length; i++) {
        if (!r.mask[i]) continue;
        const v = band[i]!;
        if (v < lo || v > hi) {
          if (bad++ === 0) first = v;
        }
      }
    }
    if (bad) this.report(ctx, `${bad} value(s) outside [${lo}, ${hi}], e.g. ${first}`);
    return r;
  }

  config(): Record<string, unknown> {
    return {
      ...(this.params.min !== undefined ? { min: this.params.min } : {}),
      ...(this.params.max !== undefined ? { max: this.params.max } : {}),
      on_fail: this.onFail,
    };
  }
}

/** At least `min` (0..1) of the tile's pixels hold data. */
const AssertValidFractionParams = z.strictObject({ min: z.number().min(0).max(1), on_fail: onFail });
export type AssertValidFractionParams = z.input<typeof AssertValidFractionParams>;

export class AssertValidFraction extends Check {
  static readonly op = 'assert_valid_fraction';
  static readonly params = AssertValidFractionParams;
  private readonly params: z.output<typeof AssertValidFractionParams>;

  constructor(input: AssertValidFractionParams) {
    const params = parseParams(AssertValidFractionParams, input);
    super(params.on_fail);
    this.params = params;
  }

  apply([input]: Raster[], ctx: TileContext): Raster {
    const r = input as BandRaster;
    const b = ctx.buffer;
    let valid = 0;
    for (let y = b; y < r.height - b; y++) for (let x = b; x < r.width - b; x++) valid += r.mask[y * r.width + x]!;
    const fraction = valid / (ctx.size * ctx.size);
    if (fraction < this.params.min) this.report(ctx, `${(fraction * 100).toFixed(1)}% of the pixels are valid, below ${(this.params.min * 100).toFixed(1)}%`);
    return r;
  }

  config(): Record<string, unknown> {
    return { min: this.params.min, on_fail: this.onFail };
  }
}
