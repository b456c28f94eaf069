import { Operator } from '../operator.js';
import { allocOf, bandRaster, type BandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';

export interface RescaleParams {
  from: [number, number] | 'auto';
  to?: [number, number];
}

/** Per-band [low, high] of the data feeding an `auto` rescale (the source's percentiles). */
export type AutoRange = () => Promise<[number, number][]>;

/** A linear map of every band from `from` to `to`, clamped to `to`. */
export class Rescale extends Operator {
  readonly op = 'rescale';
  readonly arity = 1;
  readonly from: [number, number] | 'auto';
  readonly to: [number, number];

  constructor(params: RescaleParams, private readonly auto?: AutoRange) {
    super();
    this.from = params.from;
    this.to = params.to ?? [0, 1];
    if (this.from === 'auto') {
      if (!auto) throw new Error("rescale from: auto needs a 'read' as its input (it uses the source's 2nd-98th percentiles)");
    } else if (this.from[0] === this.from[1]) {
      throw new Error(`rescale 'from' needs two different values, got [${this.from.join(', ')}]`);
    }
  }

  shape(inputs: OutputShape[]): OutputShape {
    if (inputs[0]!.kind !== 'bands') throw new Error('rescale takes bands, not RGBA');
    return inputs[0]!;
  }

  async apply([input]: Raster[], ctx: TileContext): Promise<Raster> {
    const r = input as BandRaster;
    const out = bandRaster(r.width, r.height, r.bands.length, r.mask, allocOf(ctx));
    const ranges = this.from === 'auto' ? await this.auto!() : undefined;
    const [t0, t1] = this.to;
    const lo = Math.min(t0, t1), hi = Math.max(t0, t1);
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
