import { z } from 'zod';
import { Operator, parseParams } from '../operator.js';
import { allocOf, type BandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';

const BlendParams = z.strictObject({
  mode: z.enum(['multiply', 'overlay', 'normal']).default('multiply'),
  /** How much of the top shows, 0..1. */
  opacity: z.number().min(0).max(1).default(1),
});
export type BlendParams = z.input<typeof BlendParams>;
type BlendMode = z.output<typeof BlendParams>['mode'];

const MULTIPLY = 0,
  OVERLAY = 1,
  NORMAL = 2;

/**
 * Combines two inputs, [bottom, top], into RGBA. Each is RGBA (straight, not premultiplied) or
 * one band in [0, 1] such as a hillshade, taken as grey (clamped) with its mask as alpha.
 *
 * With colours Cb, Ct and alphas ab, at in [0, 1], and at' = opacity * at, per channel
 * (W3C Compositing and Blending Level 1, section 5.8 "General formula for compositing and
 * blending", then Porter-Duff source-over):
 *
 *   B(Cb, Ct) = Cb * Ct                                          multiply
 *             = Cb < 0.5 ? 2 Cb Ct : 1 - 2 (1 - Cb) (1 - Ct)     overlay (the bottom decides)
 *             = Ct                                               normal
 *   Ct'  = (1 - ab) Ct + ab B(Cb, Ct)        (the top as blended where the bottom is opaque)
 *   a    = at' + ab (1 - at')                (bottom alpha union top alpha)
 *   C    = (at' Ct' + ab (1 - at') Cb) / a
 *
 * Over an opaque bottom this is C = Cb + at' (B(Cb, Ct) - Cb): the bottom moved towards the
 * blended colour by opacity times the top's alpha. Where the bottom is transparent the top
 * shows as it is (at opacity); where the top is transparent the bottom shows unchanged.
 */
export class Blend extends Operator {
  static readonly op = 'blend';
  static readonly params = BlendParams;
  readonly arity = 2;
  readonly mode: BlendMode;
  readonly opacity: number;
  private readonly code: number;

  constructor(params: BlendParams) {
    super();
    ({ mode: this.mode, opacity: this.opacity } = parseParams(BlendParams, params));
    this.code = this.mode === 'multiply' ? MULTIPLY : this.mode === 'overlay' ? OVERLAY : NORMAL;
  }

  shape(inputs: OutputShape[]): OutputShape {
    inputs.forEach((s, k) => {
      if (s.kind === 'bands' && s.bands !== 1) {
        throw new Error(`blend takes RGBA or one band in [0, 1]; its ${k === 0 ? 'bottom' : 'top'} input has ${s.bands} bands`);
      }
    });
    return { kind: 'rgba', bands: 4 };
  }

  apply([bottom, top]: Raster[], ctx?: TileContext): Raster {
    const b = bottom!,
      t = top!;
    if (b.width !== t.width || b.height !== t.height) {
      throw new Error(`blend inputs differ in size: ${b.width}x${b.height} and ${t.width}x${t.height}`);
    }
    const n = b.width * b.height;
    const data = allocOf(ctx).bytes(n * 4);
    const bRgba = b.kind === 'rgba' ? b.data : null;
    const tRgba = t.kind === 'rgba' ? t.data : null;
    const bGrey = b.kind === 'bands' ? (b as BandRaster).bands[0]! : null;
    const tGrey = t.kind === 'bands' ? (t as BandRaster).bands[0]! : null;
    const bMask = b.kind === 'bands' ? b.mask : null;
    const tMask = t.kind === 'bands' ? t.mask : null;
    const mode = this.code;
    const opacity = this.opacity;
    const k = 1 / 255;

    for (let i = 0, o = 0; i < n; i++, o += 4) {
      // Bottom and top as straight colour and alpha in [0, 1].
      let br: number, bg: number, bb: number, ba: number;
      if (bRgba) {
        br = bRgba[o]! * k;
        bg = bRgba[o + 1]! * k;
        bb = bRgba[o + 2]! * k;
        ba = bRgba[o + 3]! * k;
      } else {
        const v = bGrey![i]!;
        ba = bMask![i] && v === v ? 1 : 0;
        br = bg = bb = v <= 0 || !ba ? 0 : v >= 1 ? 1 : v;
      }
      let tr: number, tg: number, tb: number, ta: number;
      if (tRgba) {
        tr = tRgba[o]! * k;
        tg = tRgba[o + 1]! * k;
        tb = tRgba[o + 2]! * k;
        ta = tRgba[o + 3]! * k;
      } else {
        const v = tGrey![i]!;
        ta = tMask![i] && v === v ? 1 : 0;
        tr = tg = tb = v <= 0 || !ta ? 0 : v >= 1 ? 1 : v;
      }
      ta *= opacity;
      const a = ta + ba * (1 - ta);
      if (a === 0) continue;
      // Weights of the blended top and of the bottom, scaled to bytes; + 0.5 then the
      // Uint8Array's truncation rounds (every value is within 0..255).
      const wt = (255 * ta) / a,
        wb = (255 * ba * (1 - ta)) / a;
      data[o] = wt * mixed(mode, br, tr, ba) + wb * br + 0.5;
      data[o + 1] = wt * mixed(mode, bg, tg, ba) + wb * bg + 0.5;
      data[o + 2] = wt * mixed(mode, bb, tb, ba) + wb * bb + 0.5;
      data[o + 3] = 255 * a + 0.5;
    }
    return { kind: 'rgba', width: b.width, height: b.height, data };
  }

  config(): Record<string, unknown> {
    return { mode: this.mode, opacity: this.opacity };
  }
}

/** Ct' = (1 - ab) Ct + ab B(Cb, Ct): the top's colour after blending with the bottom's. */
function mixed(mode: number, cb: number, ct: number, ab: number): number {
  const blended = mode === MULTIPLY ? cb * ct : mode === OVERLAY ? (cb < 0.5 ? 2 * cb * ct : 1 - 2 * (1 - cb) * (1 - ct)) : ct;
  return ct + ab * (blended - ct);
}
