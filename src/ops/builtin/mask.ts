import { z } from 'zod';
import { Operator, parseParams, type BuildContext } from '../operator.js';
import { allocOf, type BandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';
import { Read } from './read.js';

/**
 * The largest QA value tested: rasters flow as Float32, which holds every integer up to 2^24
 * exactly and no odd one above it. Past it a QA word's low bits are already rounded away, so
 * such a pixel is masked rather than guessed at (8- and 16-bit QA bands never get there:
 * Landsat QA_PIXEL, Sentinel-2 SCL and QA60, MODIS state flags, NLCD).
 */
const EXACT = 2 ** 24;

const outOfRange = (v: unknown) => `class value ${String(v)} is beyond ±${EXACT} (2^24, the integers a Float32 raster holds exactly)`;

const MaskParams = z.strictObject({
  /** Bit positions (0 the least significant) of a QA word: a pixel with any of them set is masked. */
  bits: z
    .array(
      z
        .number()
        .int()
        .min(0, { error: (iss) => `bit ${String(iss.input)} does not exist: a QA word has bits 0..31` })
        .max(31, { error: (iss) => `bit ${String(iss.input)} does not exist: a QA word has bits 0..31` }),
    )
    .min(1)
    .max(32)
    .optional(),
  /** Class values: a pixel holding one of them is masked. */
  values: z
    .array(
      z
        .number()
        .int()
        .min(-EXACT, { error: (iss) => outOfRange(iss.input) })
        .max(EXACT, { error: (iss) => outOfRange(iss.input) }),
    )
    .min(1)
    .max(256)
    .optional(),
  /** Keep only the pixels with a listed bit set, or of a listed class, and mask the rest. */
  invert: z.boolean().default(false),
});
export type MaskParams = z.input<typeof MaskParams>;

/** Class values spanning at most this many integers are looked up in a table of bytes; wider sets in a Set. */
const TABLE_SPAN = 1 << 16;

/**
 * Masks a data input by a QA input, `in: [qa, data]` (graph form): quality bits (Landsat
 * QA_PIXEL, Sentinel-2 QA60, MODIS state flags) with `bits`, classes (Sentinel-2 SCL, a land
 * cover map) with `values`. A listed bit set, or a listed class, makes the pixel nodata in
 * every band of the data; `invert` keeps those pixels and masks the others instead. The data's
 * values, and a colour table it carries, pass through unchanged.
 *
 * The QA input is one band of integers. A QA pixel that is nodata, not an integer (nothing a QA
 * band holds), or beyond ±2^24 (see EXACT) masks the pixel whatever the rule: a quality flag
 * that cannot be read says nothing is known to be good there.
 *
 * Bits are tested on the value as a 32-bit two's complement word, as a bitwise AND on an
 * Int16 or Int32 band tests them (-1 has every bit set). A QA source should be read with nearest-neighbour
 * resampling (paletted sources are by default) and have overviews made with NEAREST or MODE:
 * an interpolated QA word is a bit pattern no pixel had.
 */
export class Mask extends Operator {
  static readonly op = 'mask';
  static readonly params = MaskParams;
  readonly arity = 2;
  readonly bits?: number[];
  readonly values?: number[];
  readonly invert: boolean;
  /** The listed bits as one 32-bit word. */
  private readonly word: number = 0;
  /** table[v - lo] is 1 for a listed class v, when the classes span at most TABLE_SPAN integers. */
  private readonly table?: Uint8Array;
  private readonly lo: number = 0;
  private readonly set?: Set<number>;

  constructor(params: MaskParams, ctx?: Pick<BuildContext, 'upstream'>) {
    super();
    const p = parseParams(MaskParams, params);
    this.invert = p.invert;
    const kinds = (['bits', 'values'] as const).filter((k) => p[k] !== undefined);
    if (kinds.length !== 1) throw new Error(`mask needs exactly one of bits or values, got ${kinds.length ? 'both' : 'neither'}`);
    const list = (p.bits ?? p.values)!;
    const twice = list.find((v, i) => list.indexOf(v) !== i);
    if (twice !== undefined) throw new Error(`mask: ${p.bits ? 'bit' : 'class value'} ${twice} is listed twice`);
    // Order does not matter: sorted, so that spellings of one mask share a canonical config.
    const sorted = [...list].sort((a, b) => a - b);
    if (p.bits) {
      this.bits = sorted;
      for (const b of sorted) this.word |= 1 << b;
    } else {
      this.values = sorted;
      const lo = sorted[0]!,
        hi = sorted[sorted.length - 1]!;
      if (hi - lo < TABLE_SPAN) {
        this.lo = lo;
        this.table = new Uint8Array(hi - lo + 1);
        for (const v of sorted) this.table[v - lo] = 1;
      } else {
        this.set = new Set(sorted);
      }
    }
    // Straight after a read, a QA input that would be interpolated is refused when the layer loads.
    const up = ctx?.upstream;
    if (up instanceof Read && up.resampling !== 'nearest') {
      throw new Error(
        `mask: the QA input reads '${up.source}' with ${up.resampling} resampling, which blends neighbouring QA values into ones no pixel has; read it with resampling: nearest`,
      );
    }
  }

  shape([qa, data]: OutputShape[]): OutputShape {
    if (qa!.kind !== 'bands' || qa!.bands !== 1) {
      throw new Error(
        `mask's QA input (the first of in: [qa, data]) must be one band of integers; it has ${qa!.kind === 'rgba' ? 'RGBA' : `${qa!.bands} bands`}`,
      );
    }
    if (data!.kind !== 'bands') throw new Error("mask's data input (the second of in: [qa, data]) must be bands, not RGBA: mask before colormap or rgb");
    return data!;
  }

  apply([qaIn, dataIn]: Raster[], ctx: TileContext): Raster {
    const qa = qaIn as BandRaster,
      data = dataIn as BandRaster;
    if (qa.width !== data.width || qa.height !== data.height) {
      throw new Error(`mask inputs differ in size: QA ${qa.width}x${qa.height}, data ${data.width}x${data.height}`);
    }
    const n = data.width * data.height;
    // A mask of its own: the data's may be shared with other reads of its source (Read.fuse).
    const mask = allocOf(ctx).bytes(n);
    const q = qa.bands[0]!,
      qm = qa.mask,
      dm = data.mask;
    const { word, table, lo, set } = this;
    const keepListed = this.invert ? 1 : 0;
    const keepOthers = 1 - keepListed;
    for (let i = 0; i < n; i++) {
      const v = q[i]!;
      // Nodata in either input; a QA value that is not an exact integer (NaN fails too).
      if (!(dm[i]! & qm[i]!) || v !== Math.trunc(v) || v > EXACT || v < -EXACT) {
        mask[i] = 0;
        continue;
      }
      let listed: boolean;
      if (table) {
        const t = v - lo;
        listed = t >= 0 && t < table.length && table[t] === 1;
      } else if (set) {
        listed = set.has(v);
      } else {
        listed = ((v | 0) & word) !== 0;
      }
      mask[i] = listed ? keepListed : keepOthers;
    }
    return { ...data, mask };
  }

  config(): Record<string, unknown> {
    return this.bits ? { bits: this.bits, invert: this.invert } : { values: this.values, invert: this.invert };
  }
}
