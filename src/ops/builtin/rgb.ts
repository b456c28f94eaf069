import { Operator } from '../operator.js';
import { allocOf, type BandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';

export interface RgbParams {
  rescale?: [[number, number], [number, number], [number, number]];
  gamma?: number;
}

/** Three bands to RGBA: each band rescaled to 0..255 on its own range, then gamma-corrected. */
export class Rgb extends Operator {
  readonly op = 'rgb';
  readonly arity = 1;
  readonly rescale: [[number, number], [number, number], [number, number]];
  readonly gamma: number;

  constructor(params: RgbParams) {
    super();
    this.rescale = params.rescale ?? [[0, 255], [0, 255], [0, 255]];
    this.gamma = params.gamma ?? 1;
    this.rescale.forEach(([a, b], i) => {
      if (a === b) throw new Error(`rgb rescale for band ${i + 1} needs two different values`);
    });
    if (!(this.gamma > 0)) throw new Error('rgb gamma must be above 0');
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
