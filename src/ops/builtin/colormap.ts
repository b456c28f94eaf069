import { z } from 'zod';
import { Operator, parseParams, type BuildContext } from '../operator.js';
import { Read } from './read.js';
import { colour, finite, pair } from '../params.js';
import { paletteLut } from '../palettes/lut.js';
import { allocOf, type BandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';
import { ramp } from '../../kernels.js';

const ColormapParams = z.strictObject({
  name: z.string().min(1).max(64).optional(),
  reverse: z.boolean().optional(),
  range: pair.optional(),
  stops: z
    .array(z.tuple([finite, colour]))
    .min(2)
    .max(1024)
    .optional(),
  classes: z.record(z.string().max(32), colour).optional(),
});
export type ColormapParams = z.input<typeof ColormapParams>;

/** Entries in a `stops` lookup table: fine enough that neighbouring entries differ by < 1/4 level. */
const STOP_LUT_SIZE = 4096;

/** '#rrggbb' or '#rrggbbaa' as a little-endian RGBA word (bytes r, g, b, a in memory). */
export function parseColour(text: string): number {
  const m = /^#([0-9a-f]{6})([0-9a-f]{2})?$/i.exec(text);
  if (!m) throw new Error(`'${text}' is not a colour: expected #rrggbb or #rrggbbaa`);
  const rgb = parseInt(m[1]!, 16);
  const a = m[2] === undefined ? 255 : parseInt(m[2], 16);
  return ((a << 24) | ((rgb & 0xff) << 16) | (rgb & 0xff00) | (rgb >>> 16)) >>> 0;
}

/**
 * One band to RGBA through a lookup table built once, here in the constructor: a named
 * map over `range`, linear `stops` in the data's units, categorical `classes`, or the
 * source's own palette (`name: source`).
 */
export class Colormap extends Operator {
  static readonly op = 'colormap';
  static readonly params = ColormapParams;
  readonly arity = 1;
  private readonly lut?: Uint32Array;
  private readonly lo: number;
  private readonly hi: number;
  private readonly classes?: Map<number, number>;
  private readonly canonical: Record<string, unknown>;
  private readonly usesSource: boolean;
  private readonly sourceLuts = new WeakMap<Uint8Array, Uint32Array>();

  constructor(input: ColormapParams, ctx?: Pick<BuildContext, 'upstream' | 'sources'>) {
    super();
    const params = parseParams(ColormapParams, input);
    const kinds = ['name', 'stops', 'classes'].filter((k) => params[k as keyof ColormapParams] !== undefined);
    if (kinds.length !== 1) throw new Error(`colormap needs exactly one of name, stops or classes${kinds.length ? `, got ${kinds.join(' and ')}` : ''}`);
    this.usesSource = params.name === 'source';
    // The file's own table is drawn as it is: accepting these and ignoring them would also
    // leave the layer's hash unchanged by a change of value.
    if (this.usesSource && (params.reverse !== undefined || params.range !== undefined))
      throw new Error("colormap 'source' draws the file's own colour table: 'reverse' and 'range' do not apply");
    // Straight after a read, whether there will be a table is known now: refused at load, not at every tile.
    if (this.usesSource && ctx?.upstream instanceof Read) {
      const read = ctx.upstream;
      if (!ctx.sources.get(read.source)?.meta.palette || read.zeroBased.length !== 1)
        throw new Error(
          `colormap 'source' needs one band of a source with a colour table (a paletted GeoTIFF); '${read.source}' has none, or more than one band is read`,
        );
    }
    if (params.stops) {
      const stops = [...params.stops].sort((a, b) => a[0] - b[0]);
      if (stops.length < 2) throw new Error('colormap stops need at least two entries');
      const words = stops.map(([, c]) => parseColour(c));
      this.lo = stops[0]![0];
      this.hi = stops[stops.length - 1]![0];
      if (this.lo === this.hi) throw new Error('colormap stops need two different values');
      this.lut = new Uint32Array(STOP_LUT_SIZE);
      let s = 0;
      for (let i = 0; i < STOP_LUT_SIZE; i++) {
        const v = this.lo + ((this.hi - this.lo) * i) / (STOP_LUT_SIZE - 1);
        while (s < stops.length - 2 && v > stops[s + 1]![0]) s++;
        const [v0] = stops[s]!,
          [v1] = stops[s + 1]!;
        const t = v1 === v0 ? 0 : Math.min(1, Math.max(0, (v - v0) / (v1 - v0)));
        this.lut[i] = mix(words[s]!, words[s + 1]!, t);
      }
      this.canonical = { stops: stops.map(([v, c]) => [v, c.toLowerCase()]) };
    } else if (params.classes) {
      this.classes = new Map();
      const canon: Record<string, string> = {};
      for (const [key, colour] of Object.entries(params.classes)) {
        const value = Number(key);
        if (key.trim() === '' || !Number.isFinite(value)) throw new Error(`colormap class '${key}' is not a number`);
        if (this.classes.has(Math.fround(value))) throw new Error(`colormap class '${key}' is the same value as another class`);
        this.classes.set(Math.fround(value), parseColour(colour));
        canon[String(value)] = colour.toLowerCase();
      }
      this.lo = 0;
      this.hi = 1;
      this.canonical = { classes: canon };
    } else {
      const range = params.range ?? [0, 1];
      if (range[0] === range[1]) throw new Error('colormap range needs two different values');
      [this.lo, this.hi] = range;
      if (!this.usesSource) this.lut = new Uint32Array(paletteLut(params.name!, params.reverse ?? false).buffer.slice(0));
      this.canonical = this.usesSource ? { name: 'source' } : { name: params.name, reverse: params.reverse ?? false, range };
    }
  }

  shape(inputs: OutputShape[]): OutputShape {
    const s = inputs[0]!;
    if (s.kind !== 'bands' || s.bands !== 1) throw new Error(`colormap takes one band, got ${s.kind === 'rgba' ? 'RGBA' : `${s.bands} bands`}`);
    return { kind: 'rgba', bands: 4 };
  }

  apply([input]: Raster[], ctx: TileContext): Raster {
    const r = input as BandRaster;
    const n = r.width * r.height;
    const data = allocOf(ctx).bytes(n * 4);
    const out = new Uint32Array(data.buffer);
    const band = r.bands[0]!;
    const mask = r.mask;
    if (this.classes) {
      const classes = this.classes;
      for (let i = 0; i < n; i++) if (mask[i]) out[i] = classes.get(band[i]!) ?? 0;
      return { kind: 'rgba', width: r.width, height: r.height, data };
    }
    // Each pixel's entry too (0: none), for the PNG writer; a zero-filled array from the same allocator.
    const index = new Uint16Array(allocOf(ctx).bytes(n * 2).buffer, 0, n);
    let lut: Uint32Array;
    if (this.usesSource) {
      if (!r.palette) throw new Error("colormap 'source' needs a source with a colour table (a paletted GeoTIFF)");
      lut = this.sourceLut(r.palette);
      for (let i = 0; i < n; i++) {
        if (!mask[i]) continue;
        const v = band[i]!;
        if (v >= 0 && v < 256) {
          out[i] = lut[v | 0]!;
          index[i] = (v | 0) + 1;
        }
      }
    } else {
      lut = this.lut!;
      const last = lut.length - 1;
      const k = last / (this.hi - this.lo);
      const lo = this.lo;
      if (!ramp(band, mask, n, lo, k, lut, out, index))
        for (let i = 0; i < n; i++) {
          const v = band[i]!;
          if (mask[i] === 0 || v !== v) continue;
          // Round half up by truncation; anything below the range clamps to the first entry.
          const t = (v - lo) * k + 0.5;
          const e = t <= 0 ? 0 : t >= last ? last : t | 0;
          out[i] = lut[e]!;
          index[i] = e + 1;
        }
    }
    return { kind: 'rgba', width: r.width, height: r.height, data, codes: { index, lut, ordered: !this.usesSource } };
  }

  private sourceLut(palette: Uint8Array): Uint32Array {
    let lut = this.sourceLuts.get(palette);
    if (!lut) {
      lut = new Uint32Array(palette.buffer.slice(palette.byteOffset, palette.byteOffset + 1024));
      this.sourceLuts.set(palette, lut);
    }
    return lut;
  }

  config(): Record<string, unknown> {
    return this.canonical;
  }
}

function mix(a: number, b: number, t: number): number {
  let out = 0;
  for (let shift = 0; shift < 32; shift += 8) {
    const ca = (a >>> shift) & 0xff,
      cb = (b >>> shift) & 0xff;
    out |= Math.round(ca + (cb - ca) * t) << shift;
  }
  return out >>> 0;
}
