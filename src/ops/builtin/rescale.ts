import { Operator } from '../operator.js';
import { bandRaster, type BandRaster, type OutputShape, type Raster } from '../raster.js';

export interface RescaleParams {
  from: [number, number];
  to?: [number, number];
}

/** A linear map of every band from `from` to `to`, clamped to `to`. */
export class Rescale extends Operator {
  readonly op = 'rescale';
  readonly arity = 1;
  readonly from: [number, number];
  readonly to: [number, number];

  constructor(params: RescaleParams) {
    super();
    this.from = params.from;
    this.to = params.to ?? [0, 1];
    if (this.from[0] === this.from[1]) throw new Error(`rescale 'from' needs two different values, got [${this.from.join(', ')}]`);
  }

  shape(inputs: OutputShape[]): OutputShape {
    if (inputs[0]!.kind !== 'bands') throw new Error('rescale takes bands, not RGBA');
    return inputs[0]!;
  }

  apply([input]: Raster[]): Raster {
    const r = input as BandRaster;
    const out = bandRaster(r.width, r.height, r.bands.length, r.mask);
    const [f0, f1] = this.from;
    const [t0, t1] = this.to;
    const lo = Math.min(t0, t1), hi = Math.max(t0, t1);
    const k = (t1 - t0) / (f1 - f0);
    r.bands.forEach((band, b) => {
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
