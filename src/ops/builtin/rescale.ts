import { z } from 'zod';
import type { Cog } from '../../sources/cog.js';
import { Operator, parseParams, type BuildContext } from '../operator.js';
import { allocOf, bandRaster, type BandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';
import { pair } from '../params.js';
import { Read } from './read.js';

const RescaleParams = z.strictObject({
  from: z.union([pair, z.literal('auto')], { error: "expected [min, max] (finite numbers) or 'auto'" }),
  to: pair.default([0, 1]),
});
export type RescaleParams = z.input<typeof RescaleParams>;

/** A linear map of every band from `from` to `to`, clamped to `to`. */
export class Rescale extends Operator {
  static readonly op = 'rescale';
  static readonly params = RescaleParams;
  readonly arity = 1;
  readonly from: [number, number] | 'auto';
  readonly to: [number, number];
  /** With `from: auto`, the read whose source's percentiles give the range. */
  private readonly auto?: Read;
  /** Per band [low, high], once `prepare` has computed them (`from: auto`). */
  private ranges?: [number, number][];

  constructor(params: z.input<typeof RescaleParams>, ctx?: Pick<BuildContext, 'upstream'>) {
    super();
    const p = parseParams(RescaleParams, params);
    this.from = p.from;
    this.to = p.to;
    if (this.from === 'auto') {
      if (!(ctx?.upstream instanceof Read)) throw new Error("rescale from: auto needs a 'read' as its input (it uses the source's 2nd-98th percentiles)");
      this.auto = ctx.upstream;
    } else if (this.from[0] === this.from[1]) {
      throw new Error(`rescale 'from' needs two different values, got [${this.from.join(', ')}]`);
    }
  }

  override async prepare(sources: ReadonlyMap<string, Cog>): Promise<void> {
    if (this.auto) this.ranges = await this.auto.percentiles(sources.get(this.auto.source)!);
  }

  shape(inputs: OutputShape[]): OutputShape {
    if (inputs[0]!.kind !== 'bands') throw new Error('rescale takes bands, not RGBA');
    return inputs[0]!;
  }

  apply([input]: Raster[], ctx: TileContext): Raster {
    const r = input as BandRaster;
    const ranges = this.ranges;
    if (this.auto && !ranges) throw new Error('rescale from: auto: the graph was not prepared');
    const out = bandRaster(r.width, r.height, r.bands.length, r.mask, allocOf(ctx));
    const [t0, t1] = this.to;
    const lo = Math.min(t0, t1),
      hi = Math.max(t0, t1);
    r.bands.forEach((band, b) => {
      const [f0, f1] = ranges ? ranges[Math.min(b, ranges.length - 1)]! : (this.from as [number, number]);
      const k = (t1 - t0) / (f1 - f0);
      const o = out.bands[b]!;
      for (let i = 0; i < band.length; i++) {
        const v = t0 + (band[i]! - f0) * k;
        o[i] = v < lo ? lo : v > hi ? hi : v;
      }
    });
    return out;
  }

  config(): Record<string, unknown> {
    return { from: this.from, to: this.to };
  }
}
