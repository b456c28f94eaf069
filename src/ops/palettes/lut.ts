/**
 * Named colour maps for the `colormap` operator, as 256-entry RGBA lookup tables.
 *
 * The colours are data: matplotlib.json and colorbrewer.json beside this file, whose
 * README.md gives their provenance and licences. This module only turns them into tables.
 *
 * The tables are built the way matplotlib 3.x builds `Colormap(N=256)`:
 * listed maps use their entries directly; the others go through
 * `LinearSegmentedColormap` (`from_list` for plain colour lists, evenly spaced on
 * [0, 1]) and `colors._create_lookup_table`, reproduced operation for operation in
 * float64. Entry i is `cmap(i / 255, bytes=True)`, i.e. the float LUT value times
 * 255 truncated to an integer (`(lut * 255).astype(np.uint8)` in
 * `Colormap.__call__`), alpha 255. Note that truncation can differ by one from the
 * rounded hex codes that matplotlib's `to_hex` and colorbrewer2.org print.
 */
// JSON modules (not fs reads) so that tsc copies the files into dist/ and the render
// threads load them like any other module, with no path to work out at run time.
import colorbrewer from './colorbrewer.json' with { type: 'json' };
import matplotlib from './matplotlib.json' with { type: 'json' };

/** A piecewise-linear channel: rows of (x, y-left-of-x, y-right-of-x), x ascending 0..1. */
type Segment = readonly [x: number, y0: number, y1: number];
type Rgb = readonly [number, number, number];

interface SegmentData {
  readonly red: readonly Segment[];
  readonly green: readonly Segment[];
  readonly blue: readonly Segment[];
}

/** One map of the JSON files, in the shapes README.md describes. */
type Source =
  /** `ListedColormap`: 256 colours, used as they are. */
  | { readonly kind: 'listed'; readonly colors: readonly Rgb[] }
  /** `LinearSegmentedColormap(name, segmentdata)`. */
  | ({ readonly kind: 'segments' } & SegmentData)
  /** `LinearSegmentedColormap.from_list(name, colors)`; `at` = explicit positions. */
  | { readonly kind: 'list'; readonly colors: readonly Rgb[]; readonly at?: readonly number[] };

interface SourceFile {
  readonly maps: Readonly<Record<string, Source>>;
}

/** Table size, matplotlib's default `rcParams['image.lut']`. */
const N = 256;

function buildSources(): Map<string, Source> {
  // TypeScript types a JSON module from its contents (kind: string, number[][]), wider than
  // Source; the shapes are checked where each table is built, and the tests build them all.
  const files = [matplotlib, colorbrewer] as unknown as readonly SourceFile[];
  const m = new Map<string, Source>();
  for (const file of files) for (const [name, src] of Object.entries(file.maps)) m.set(name.toLowerCase(), src);
  return m;
}

/** Name (lower-case) -> source. A Map, so '__proto__', 'constructor' etc. are just unknown keys. */
const SOURCES: ReadonlyMap<string, Source> = buildSources();

/**
 * Names accepted by the colormap operator (lower-case): viridis, magma, inferno, plasma,
 * cividis, turbo, terrain, gray, binary, and the ColorBrewer maps blues, brbg, bugn, bupu,
 * gnbu, greens, greys, orrd, oranges, prgn, piyg, pubu, pubugn, puor, purd, purples, rdbu,
 * rdgy, rdpu, rdylbu, rdylgn, reds, spectral, ylgn, ylgnbu, ylorbr, ylorrd.
 */
export const PALETTE_NAMES: readonly string[] = Object.freeze([...SOURCES.keys()]);

/** `np.linspace(0, 1, n)` exactly as numpy computes it: k * (1 / (n - 1)), last element set to 1. */
function linspace01(n: number): Float64Array {
  const y = new Float64Array(n);
  if (n === 1) return y;
  const step = 1 / (n - 1);
  for (let k = 0; k < n; k++) y[k] = k * step;
  y[n - 1] = 1;
  return y;
}

/** `np.searchsorted(x, v, side='left')`: first index j with x[j] >= v. */
function searchsortedLeft(x: Float64Array, v: number): number {
  let lo = 0;
  let hi = x.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** matplotlib `colors._create_lookup_table(N, adata, gamma=1.0)`, same float64 operations. */
function createLookupTable(n: number, adata: readonly Segment[]): Float64Array {
  const m = adata.length;
  if (m < 2 || adata[0]![0] !== 0 || adata[m - 1]![0] !== 1) {
    throw new Error('palettes: segment data must start with x=0 and end with x=1');
  }
  const x = new Float64Array(m);
  const y0 = new Float64Array(m);
  const y1 = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    const s = adata[k]!;
    if (k > 0 && s[0] < adata[k - 1]![0]) throw new Error('palettes: segment x must be increasing');
    x[k] = s[0] * (n - 1);
    y0[k] = s[1];
    y1[k] = s[2];
  }
  const lin = linspace01(n);
  const lut = new Float64Array(n);
  lut[0] = y1[0]!;
  for (let i = 1; i < n - 1; i++) {
    const xi = (n - 1) * lin[i]!; // ** gamma with gamma = 1 is the identity
    const ind = searchsortedLeft(x, xi);
    const distance = (xi - x[ind - 1]!) / (x[ind]! - x[ind - 1]!);
    lut[i] = distance * (y0[ind]! - y1[ind - 1]!) + y1[ind - 1]!;
  }
  lut[n - 1] = y0[m - 1]!;
  for (let i = 0; i < n; i++) lut[i] = Math.min(1, Math.max(0, lut[i]!));
  return lut;
}

/** The colormap's float RGB table (matplotlib's `_lut` without the under/over/bad rows), n x 3. */
function floatTable(name: string, src: Source): { n: number; rgb: Float64Array } {
  if (src.kind === 'listed') {
    if (src.colors.length !== N) throw new Error(`palettes: '${name}' has ${src.colors.length} colours, expected ${N}`);
    const rgb = new Float64Array(3 * N);
    src.colors.forEach((c, k) => {
      if (c.length !== 3 || !c.every((v) => typeof v === 'number' && v >= 0 && v <= 1))
        throw new Error(`palettes: '${name}' has a malformed colour [${c.join(', ')}]`);
      rgb.set(c, 3 * k);
    });
    return { n: N, rgb };
  }
  let data: SegmentData;
  if (src.kind === 'segments') {
    data = src;
  } else {
    const vals = src.at ?? linspace01(src.colors.length);
    const chan = (c: 0 | 1 | 2): Segment[] => src.colors.map((col, k) => [vals[k]!, col[c], col[c]] as const);
    data = { red: chan(0), green: chan(1), blue: chan(2) };
  }
  const r = createLookupTable(N, data.red);
  const g = createLookupTable(N, data.green);
  const b = createLookupTable(N, data.blue);
  const rgb = new Float64Array(3 * N);
  for (let i = 0; i < N; i++) {
    rgb[3 * i] = r[i]!;
    rgb[3 * i + 1] = g[i]!;
    rgb[3 * i + 2] = b[i]!;
  }
  return { n: N, rgb };
}

function buildLut(name: string, src: Source): Uint8Array {
  const { n, rgb } = floatTable(name, src);
  const out = new Uint8Array(4 * 256);
  for (let i = 0; i < 256; i++) {
    // Colormap.__call__ for a float: xa = t * N; xa == N -> N - 1; astype(int) truncates.
    let xa = (i / 255) * n;
    if (xa === n) xa = n - 1;
    const idx = Math.trunc(xa);
    // bytes=True: (lut * 255).astype(np.uint8), i.e. truncation.
    out[4 * i] = Math.trunc(rgb[3 * idx]! * 255);
    out[4 * i + 1] = Math.trunc(rgb[3 * idx + 1]! * 255);
    out[4 * i + 2] = Math.trunc(rgb[3 * idx + 2]! * 255);
    out[4 * i + 3] = 255;
  }
  return out;
}

function reversedLut(lut: Uint8Array): Uint8Array {
  const out = new Uint8Array(lut.length);
  for (let i = 0; i < 256; i++) out.set(lut.subarray(4 * (255 - i), 4 * (256 - i)), 4 * i);
  return out;
}

/** Built tables, keyed by the map's table key and direction; each is built once. */
const lutCache = new Map<string, Uint8Array>();

/**
 * A 256-entry RGBA lookup table (1024 bytes, alpha 255) for t in [0, 1] sampled at
 * i / 255, as matplotlib's `cmap(i / 255, bytes=True)` gives it; `reverse` flips it.
 * Names are matched case-insensitively against {@link PALETTE_NAMES}.
 *
 * The returned array is cached and shared between callers: treat it as read-only.
 *
 * @throws Error `unknown colour map 'x' (known: ...)` for any other name.
 */
export function paletteLut(name: string, reverse = false): Uint8Array {
  const key = typeof name === 'string' ? name.toLowerCase() : '';
  const src = SOURCES.get(key);
  if (src === undefined) {
    throw new Error(`unknown colour map '${String(name)}' (known: ${PALETTE_NAMES.join(', ')})`);
  }
  const cacheKey = `${key}:${reverse ? 'r' : 'f'}`;
  const hit = lutCache.get(cacheKey);
  if (hit !== undefined) return hit;
  let lut: Uint8Array;
  if (reverse) {
    lut = reversedLut(paletteLut(key, false));
  } else {
    lut = buildLut(key, src);
  }
  lutCache.set(cacheKey, lut);
  return lut;
}
