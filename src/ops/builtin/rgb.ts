import { z } from 'zod';
import { Operator, parseParams } from '../operator.js';
import { finite, pair } from '../params.js';
import { allocOf, type BandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';

const RgbParams = z.strictObject({
  rescale: z.tuple([pair, pair, pair]).default([
    [0, 255],
    [0, 255],
    [0, 255],
  ]),
  gamma: finite.positive().max(10).default(1),
});
export type RgbParams = z.input<typeof RgbParams>;

/** Three bands to RGBA: each band rescaled to 0..255 on its own range, then gamma-corrected. */
export class Rgb extends Operator {
  static readonly op = 'rgb';
  static readonly params = RgbParams;
  readonly arity = 1;
  readonly rescale: [[number, number], [number, number], [number, number]];
  readonly gamma: number;

  constructor(params: RgbParams) {
    super();
    ({ rescale: this.rescale, gamma: this.gamma } = parseParams(RgbParams, params));
    this.rescale.forEach(([a, b], i) => {
      if (a === b) throw new Error(`rgb rescale for band ${i + 1} needs two different values`);
    });
  }

  shape(inputs: OutputShape[]): OutputShape {
    const s = inputs[0]!;
    if (s.kind !== 'bands' || s.bands !== 3) throw new Error(`rgb takes exactly 3 bands, got ${s.kind === 'rgba' ? 'RGBA' : `${s.bands} band(s)`}`);
    return { kind: 'rgba', bands: 4 };
  }

  apply([input]: Raster[], ctx: TileContext): Raster {
    const r = input as BandRaster;
    const n = r.width * r.height;
    const data = allocOf(ctx).bytes(n * 4);
    const inv = 1 / this.gamma;
    for (let b = 0; b < 3; b++) {
      const band = r.bands[b]!;
      const [lo, hi] = this.rescale[b]!;
      const k = 1 / (hi - lo);
      for (let i = 0; i < n; i++) {
        if (!r.mask[i]) continue;
        let t = (band[i]! - lo) * k;
        t = t !== t || t <= 0 ? 0 : t >= 1 ? 1 : t;
        data[i * 4 + b] = Math.round((inv === 1 ? t : Math.pow(t, inv)) * 255);
      }
    }
    for (let i = 0; i < n; i++) if (r.mask[i]) data[i * 4 + 3] = 255;
    return { kind: 'rgba', width: r.width, height: r.height, data };
  }

  config(): Record<string, unknown> {
    return { rescale: this.rescale, gamma: this.gamma };
  }
}
