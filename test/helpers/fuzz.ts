/**
 * The pieces of test/fuzz.test.ts: a deterministic PRNG, a TIFF / BigTIFF walker written here
 * (independent of src/sources/tiff.ts, so a mutation can aim at what the file says rather than
 * at what tilegraph understands of it), the mutators, and the seed COGs GDAL writes from the
 * shipped rasters.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { GDAL_ENV } from './gdal.js';
import { SHIPPED_DATA } from './layers.js';

// ---------------------------------------------------------------------------------------
// PRNG

/** mulberry32: 32 bits of state, a uniform [0, 1) double per call. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** The PRNG of one case: a function of the run's seed and the case index alone, so any case can be rerun by itself. */
export function caseRng(seed: number, index: number): Rng {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return new Rng(h);
}

// ---------------------------------------------------------------------------------------
// TIFF layout

export const TYPE_SIZE: Readonly<Record<number, number>> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
  16: 8,
  17: 8,
  18: 8,
};

export const TAG_NAMES: Readonly<Record<number, string>> = {
  254: 'NewSubfileType',
  256: 'ImageWidth',
  257: 'ImageLength',
  258: 'BitsPerSample',
  259: 'Compression',
  262: 'Photometric',
  273: 'StripOffsets',
  277: 'SamplesPerPixel',
  278: 'RowsPerStrip',
  279: 'StripByteCounts',
  284: 'PlanarConfiguration',
  317: 'Predictor',
  320: 'ColorMap',
  322: 'TileWidth',
  323: 'TileLength',
  324: 'TileOffsets',
  325: 'TileByteCounts',
  338: 'ExtraSamples',
  339: 'SampleFormat',
  33550: 'ModelPixelScale',
  33922: 'ModelTiepoint',
  34264: 'ModelTransformation',
  34735: 'GeoKeyDirectory',
  34736: 'GeoDoubleParams',
  34737: 'GeoAsciiParams',
  42112: 'GdalMetadata',
  42113: 'GdalNodata',
};

export const tagName = (tag: number): string => `${tag} (${TAG_NAMES[tag] ?? 'unknown'})`;

export interface Entry {
  /** Byte offset of the entry itself. */
  pos: number;
  tag: number;
  type: number;
  count: number;
  /** Where its values are: inside the entry, or the offset the entry holds. */
  valuePos: number;
  inline: boolean;
}

export interface Ifd {
  offset: number;
  entries: Entry[];
  /** Byte offset of the pointer to the next IFD. */
  nextPos: number;
  /** Blocks (TileOffsets/TileByteCounts, or the strip tags), as the file says. */
  blocks: { offset: number; count: number }[];
}

export interface Layout {
  le: boolean;
  big: boolean;
  ifds: Ifd[];
  /** Where the first block starts: everything before it is header, IFDs and tag values. */
  headerEnd: number;
}

export class Bytes {
  readonly view: DataView;
  constructor(
    readonly buf: Uint8Array,
    readonly le: boolean,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  /** An unsigned integer of `size` bytes (1, 2, 4 or 8) as a bigint. */
  get(pos: number, size: number): bigint {
    switch (size) {
      case 1:
        return BigInt(this.view.getUint8(pos));
      case 2:
        return BigInt(this.view.getUint16(pos, this.le));
      case 4:
        return BigInt(this.view.getUint32(pos, this.le));
      default:
        return this.view.getBigUint64(pos, this.le);
    }
  }
  /** Writes the low `size` bytes of `value` (two's complement for negatives); outside the buffer it writes nothing. */
  set(pos: number, size: number, value: bigint): void {
    if (pos < 0 || pos + size > this.buf.length) return;
    const v = BigInt.asUintN(size * 8, value);
    switch (size) {
      case 1:
        this.view.setUint8(pos, Number(v));
        break;
      case 2:
        this.view.setUint16(pos, Number(v), this.le);
        break;
      case 4:
        this.view.setUint32(pos, Number(v), this.le);
        break;
      default:
        this.view.setBigUint64(pos, v, this.le);
    }
  }
}

/** Walks the header and every IFD of a well-formed TIFF or BigTIFF (a seed); throws on anything odd. */
export function parseLayout(buf: Uint8Array): Layout {
  const order = String.fromCharCode(buf[0]!, buf[1]!);
  if (order !== 'II' && order !== 'MM') throw new Error('not a TIFF');
  const le = order === 'II';
  const b = new Bytes(buf, le);
  const magic = Number(b.get(2, 2));
  const big = magic === 43;
  if (!big && magic !== 42) throw new Error(`TIFF magic ${magic}`);
  const off = big ? 8 : 4;
  const entrySize = big ? 20 : 12;
  let next = Number(b.get(big ? 8 : 4, off));
  const ifds: Ifd[] = [];
  const seen = new Set<number>();
  while (next !== 0) {
    if (seen.has(next) || next >= buf.length) throw new Error(`bad IFD offset ${next}`);
    seen.add(next);
    const n = Number(b.get(next, big ? 8 : 2));
    const first = next + (big ? 8 : 2);
    const entries: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const pos = first + i * entrySize;
      const type = Number(b.get(pos + 2, 2));
      const count = Number(b.get(pos + 4, off));
      const bytes = (TYPE_SIZE[type] ?? 1) * count;
      const inline = bytes <= off;
      entries.push({ pos, tag: Number(b.get(pos, 2)), type, count, inline, valuePos: inline ? pos + 4 + off : Number(b.get(pos + 4 + off, off)) });
    }
    const nextPos = first + n * entrySize;
    const values = (tag: number): number[] => {
      const e = entries.find((x) => x.tag === tag);
      if (!e) return [];
      const size = TYPE_SIZE[e.type]!;
      return Array.from({ length: e.count }, (_, k) => Number(b.get(e.valuePos + k * size, size)));
    };
    const tiled = entries.some((e) => e.tag === 322);
    const offsets = values(tiled ? 324 : 273);
    const counts = values(tiled ? 325 : 279);
    ifds.push({ offset: next, entries, nextPos, blocks: offsets.map((o, k) => ({ offset: o, count: counts[k] ?? 0 })) });
    next = Number(b.get(nextPos, off));
  }
  const starts = ifds.flatMap((d) => d.blocks.filter((k) => k.count > 0).map((k) => k.offset));
  return { le, big, ifds, headerEnd: starts.length ? Math.min(...starts) : buf.length };
}

// ---------------------------------------------------------------------------------------
// Mutators

/** One mutated file in the making: the bytes (a copy of the seed), its length after any cut, and what was done. */
export interface Mutation {
  buf: Uint8Array;
  length: number;
  steps: string[];
}

const U64_MAX = (1n << 64n) - 1n;

/** Values at the limits of each field type, as the raw bits to store. */
function limitValues(type: number, fileSize: number): { bits: bigint; label: string }[] {
  const n = (v: bigint | number, label?: string) => ({ bits: BigInt(v), label: label ?? String(v) });
  const size = BigInt(fileSize);
  const f32 = (x: number) => {
    const d = new DataView(new ArrayBuffer(4));
    d.setFloat32(0, x);
    return n(d.getUint32(0), String(x));
  };
  const f64 = (x: number) => {
    const d = new DataView(new ArrayBuffer(8));
    d.setFloat64(0, x);
    return n(d.getBigUint64(0), String(x));
  };
  switch (type) {
    case 1:
    case 2:
    case 7:
      return [n(0), n(1), n(0x7f), n(0x80), n(0xff)];
    case 6:
      return [n(0), n(0xff, '-1'), n(0x80, '-128'), n(0x7f)];
    case 3:
      return [n(0), n(1), n(2), n(0x7fff), n(0x8000), n(0xfffe), n(0xffff)];
    case 8:
      return [n(0), n(0xffff, '-1'), n(0x8000, '-32768'), n(0x7fff)];
    case 4:
    case 13:
      return [n(0), n(1), n(0x7fffffff), n(0x80000000), n(0xfffffffe), n(0xffffffff), n(size - 1n), n(size), n(size + 1n)];
    case 9:
      return [n(0), n(0xffffffff, '-1'), n(0x80000000, '-2^31'), n(0x7fffffff)];
    case 16:
    case 18:
      return [
        n(0),
        n(1),
        n(0x7fffffff),
        n(0x80000000),
        n(0xffffffff),
        n(1n << 32n),
        n((1n << 53n) - 1n),
        n(1n << 53n),
        n((1n << 53n) + 1n),
        n(1n << 63n),
        n(U64_MAX),
        n(size),
      ];
    case 17:
      return [n(0), n(U64_MAX, '-1'), n(1n << 63n, '-2^63'), n((1n << 63n) - 1n), n(BigInt.asUintN(64, -(1n << 31n)), '-2^31')];
    case 11:
      return [f32(NaN), f32(Infinity), f32(-Infinity), f32(3.4e38), f32(0), f32(-0), f32(1e-45), f32(-1)];
    case 12:
      return [f64(NaN), f64(Infinity), f64(-Infinity), f64(1.7e308), f64(0), f64(5e-324), f64(-1e300), f64(2 ** 53)];
    case 5:
    case 10:
      // Numerator / denominator, stored as two LONGs (written as one 8-byte value in file order below).
      return [n(0, '0/0'), n(1, '1/0'), n(0xffffffff, '4294967295/0'), n(0x80000000, '2^31/0')];
    default:
      return [n(0), n(1), n(0xffffffff)];
  }
}

/** Meaningful values of the fields that say how blocks are stored: each one a different path through the reader. */
const SEMANTIC: Readonly<Record<number, readonly number[]>> = {
  254: [0, 1, 2, 4, 5, 7, 0xffffffff],
  258: [0, 1, 4, 7, 8, 12, 16, 24, 32, 64, 128, 65535],
  259: [0, 1, 2, 5, 6, 7, 8, 32773, 32946, 34887, 50000, 65535],
  262: [0, 1, 2, 3, 4, 5, 6, 65535],
  277: [0, 1, 2, 3, 4, 5, 255, 256, 257, 65535],
  278: [0, 1, 2, 3, 7, 16, 64, 65535, 0xffffffff],
  284: [0, 1, 2, 3],
  317: [0, 1, 2, 3, 4, 34892],
  322: [0, 1, 8, 15, 16, 17, 32, 63, 64, 65, 128, 256, 1024, 4096, 16384, 32768, 65535],
  323: [0, 1, 8, 15, 16, 17, 32, 63, 64, 65, 128, 256, 1024, 4096, 16384, 32768, 65535],
  256: [0, 1, 2, 63, 64, 65, 127, 128, 129, 1000, 65535, 100000, 0x7fffffff],
  257: [0, 1, 2, 63, 64, 65, 127, 128, 129, 1000, 65535, 100000, 0x7fffffff],
  339: [0, 1, 2, 3, 4, 5, 6, 65535],
  338: [0, 1, 2, 3],
};

/** Tags whose damage reaches the most code: more likely to be picked. */
const HOT_TAGS = [
  254, 256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 338, 339, 33550, 33922, 34264, 34735, 34736, 34737, 42113,
];

function pickEntry(rng: Rng, layout: Layout): { ifd: Ifd; index: number; entry: Entry } | undefined {
  const ifd = rng.chance(0.5) ? layout.ifds[0] : rng.pick(layout.ifds);
  if (!ifd || ifd.entries.length === 0) return undefined;
  let candidates = ifd.entries.map((entry, index) => ({ ifd, index, entry }));
  if (rng.chance(0.8)) {
    const hot = candidates.filter((c) => HOT_TAGS.includes(c.entry.tag));
    if (hot.length) candidates = hot;
  }
  return rng.pick(candidates);
}

function elementIndex(rng: Rng, count: number): number {
  if (count <= 1) return 0;
  return rng.pick([0, count - 1, rng.int(count)]);
}

type Mutator = (m: Mutation, layout: Layout, rng: Rng) => string | undefined;

/** Raw bits of a value into element k of an entry, in the file's byte order. */
function setElement(b: Bytes, e: Entry, k: number, bits: bigint): void {
  const size = TYPE_SIZE[e.type] ?? 4;
  if (e.type === 5 || e.type === 10) {
    // A rational: the numerator, then a zero denominator (or 1 for 0/0's neighbours).
    b.set(e.valuePos + k * 8, 4, bits);
    b.set(e.valuePos + k * 8 + 4, 4, 0n);
    return;
  }
  b.set(e.valuePos + k * size, size, bits);
}

const MUTATORS: Record<string, { weight: number; run: Mutator }> = {
  /** Bit flips anywhere in the file. */
  flips: {
    weight: 8,
    run: (m, _l, rng) => {
      const k = 1 + rng.int(8);
      const at: number[] = [];
      for (let i = 0; i < k; i++) {
        const pos = rng.int(m.length);
        const bit = rng.int(8);
        m.buf[pos]! ^= 1 << bit;
        at.push(pos * 8 + bit);
      }
      return `flip bits ${at.join(',')} (byte*8+bit)`;
    },
  },
  /** Bytes set to random or boundary values anywhere. */
  bytes: {
    weight: 5,
    run: (m, _l, rng) => {
      const k = 1 + rng.int(6);
      const at: string[] = [];
      for (let i = 0; i < k; i++) {
        const pos = rng.int(m.length);
        const v = rng.chance(0.5) ? rng.pick([0, 0xff, 0x7f, 0x80, 0x01]) : rng.int(256);
        m.buf[pos] = v;
        at.push(`${pos}=${v}`);
      }
      return `set bytes ${at.join(',')}`;
    },
  },
  /** Bit flips in the header, IFDs and tag values (everything before the first block). */
  headerFlips: {
    weight: 12,
    run: (m, l, rng) => {
      const end = Math.min(l.headerEnd, m.length);
      const k = 1 + rng.int(4);
      const at: number[] = [];
      for (let i = 0; i < k; i++) {
        const pos = rng.int(end);
        const bit = rng.int(8);
        m.buf[pos]! ^= 1 << bit;
        at.push(pos * 8 + bit);
      }
      return `flip header bits ${at.join(',')} (byte*8+bit)`;
    },
  },
  /** A tag's value at the limits of its type. */
  limit: {
    weight: 16,
    run: (m, l, rng) => {
      const p = pickEntry(rng, l);
      if (!p) return undefined;
      const e = p.entry;
      const v = rng.pick(limitValues(e.type, m.buf.length));
      const b = new Bytes(m.buf, l.le);
      if (e.count > 1 && rng.chance(0.25)) {
        for (let k = 0; k < Math.min(e.count, 4096); k++) setElement(b, e, k, v.bits);
        return `IFD@${p.ifd.offset} tag ${tagName(e.tag)} type ${e.type}: every value = ${v.label}`;
      }
      const k = elementIndex(rng, e.count);
      setElement(b, e, k, v.bits);
      return `IFD@${p.ifd.offset} tag ${tagName(e.tag)} type ${e.type}: value[${k}] = ${v.label}`;
    },
  },
  /** A layout tag set to another meaningful value (another codec, predictor, sample format, block size). */
  semantic: {
    weight: 12,
    run: (m, l, rng) => {
      const ifd = rng.chance(0.6) ? l.ifds[0]! : rng.pick(l.ifds);
      const entries = ifd.entries.filter((e) => SEMANTIC[e.tag]);
      if (!entries.length) return undefined;
      const e = rng.pick(entries);
      const size = TYPE_SIZE[e.type] ?? 2;
      // What the field's width keeps of the value (65536 in a SHORT is 0).
      const v = BigInt.asUintN(size * 8, BigInt(rng.pick(SEMANTIC[e.tag]!)));
      const k = elementIndex(rng, e.count);
      new Bytes(m.buf, l.le).set(e.valuePos + k * size, size, v);
      return `IFD@${ifd.offset} tag ${tagName(e.tag)}: value[${k}] = ${v}`;
    },
  },
  /** An entry's field type changed (values then read at another width, or skipped as unknown). */
  type: {
    weight: 4,
    run: (m, l, rng) => {
      const p = pickEntry(rng, l);
      if (!p) return undefined;
      const t = rng.pick([0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 16, 17, 19, 99, 65535]);
      new Bytes(m.buf, l.le).set(p.entry.pos + 2, 2, BigInt(t));
      return `IFD@${p.ifd.offset} tag ${tagName(p.entry.tag)}: type ${p.entry.type} -> ${t}`;
    },
  },
  /** An entry's count changed: zero, one, off by one, or huge. */
  count: {
    weight: 8,
    run: (m, l, rng) => {
      const p = pickEntry(rng, l);
      if (!p) return undefined;
      const c = p.entry.count;
      const size = l.big ? 8 : 4;
      const values = [0n, 1n, BigInt(Math.max(0, c - 1)), BigInt(c + 1), BigInt(c * 2), 0x7fffffffn, 0x80000000n, 0xffffffffn];
      if (l.big) values.push(1n << 53n, 1n << 63n, U64_MAX);
      const v = rng.pick(values);
      new Bytes(m.buf, l.le).set(p.entry.pos + 4, size, v);
      return `IFD@${p.ifd.offset} tag ${tagName(p.entry.tag)}: count ${c} -> ${v}`;
    },
  },
  /** The counts of two entries swapped. */
  swapCounts: {
    weight: 3,
    run: (m, l, rng) => {
      const ifd = rng.pick(l.ifds);
      if (ifd.entries.length < 2) return undefined;
      const a = rng.pick(ifd.entries);
      const c = rng.pick(ifd.entries.filter((e) => e !== a));
      const b = new Bytes(m.buf, l.le);
      const size = l.big ? 8 : 4;
      b.set(a.pos + 4, size, BigInt(c.count));
      b.set(c.pos + 4, size, BigInt(a.count));
      return `IFD@${ifd.offset}: counts of tags ${tagName(a.tag)} and ${tagName(c.tag)} swapped`;
    },
  },
  /** An out-of-line value pointed past the end of the file, or at its last byte. */
  offsetPastEof: {
    weight: 4,
    run: (m, l, rng) => {
      const ifd = rng.pick(l.ifds);
      const outOfLine = ifd.entries.filter((e) => !e.inline);
      if (!outOfLine.length) return undefined;
      const e = rng.pick(outOfLine);
      const size = l.big ? 8 : 4;
      const v = rng.pick([BigInt(m.buf.length - 1), BigInt(m.buf.length), BigInt(m.buf.length + 8), 0xffffffffn, ...(l.big ? [1n << 53n, U64_MAX] : [])]);
      new Bytes(m.buf, l.le).set(e.pos + 4 + size, size, v);
      return `IFD@${ifd.offset} tag ${tagName(e.tag)}: value offset -> ${v} (file of ${m.buf.length} bytes)`;
    },
  },
  /** An out-of-line value pointed at its own IFD, at its own entry, or at the header. */
  offsetSelf: {
    weight: 3,
    run: (m, l, rng) => {
      const ifd = rng.pick(l.ifds);
      const outOfLine = ifd.entries.filter((e) => !e.inline);
      if (!outOfLine.length) return undefined;
      const e = rng.pick(outOfLine);
      const size = l.big ? 8 : 4;
      const v = rng.pick([ifd.offset, e.pos, 0, ifd.nextPos]);
      new Bytes(m.buf, l.le).set(e.pos + 4 + size, size, BigInt(v));
      return `IFD@${ifd.offset} tag ${tagName(e.tag)}: value offset -> ${v} (its IFD, its entry, the header or the next-IFD pointer)`;
    },
  },
  /** The next-IFD pointer: a loop to itself or an earlier IFD, past the end, into the middle of data, or cut off. */
  nextIfd: {
    weight: 5,
    run: (m, l, rng) => {
      const i = rng.int(l.ifds.length);
      const ifd = l.ifds[i]!;
      const size = l.big ? 8 : 4;
      const v = rng.pick([
        ifd.offset,
        l.ifds[0]!.offset,
        l.ifds[Math.max(0, i - 1)]!.offset,
        0,
        m.buf.length,
        m.buf.length - 1,
        0xffffffff,
        rng.int(m.buf.length),
        ifd.offset + 1,
      ]);
      new Bytes(m.buf, l.le).set(ifd.nextPos, size, BigInt(v));
      return `IFD ${i}@${ifd.offset}: next IFD -> ${v}`;
    },
  },
  /** The first-IFD pointer, the magic or the byte order of the header. */
  header: {
    weight: 3,
    run: (m, l, rng) => {
      const b = new Bytes(m.buf, l.le);
      switch (rng.int(4)) {
        case 0: {
          const v = rng.pick([0, 1, 2, 3, 4, 7, 8, 16, m.buf.length - 1, m.buf.length, 0xffffffff]);
          b.set(l.big ? 8 : 4, l.big ? 8 : 4, BigInt(v));
          return `first IFD offset -> ${v}`;
        }
        case 1: {
          const v = rng.pick([0, 41, 42, 43, 44, 0x2a00, 0x2b00]);
          b.set(2, 2, BigInt(v));
          return `magic -> ${v}`;
        }
        case 2:
          m.buf[0] = m.buf[1] = l.le ? 0x4d : 0x49;
          return 'byte order mark swapped';
        default: {
          if (!l.big) return undefined;
          const v = rng.pick([0, 4, 7, 16, 0xffff]);
          b.set(4, 2, BigInt(v));
          return `BigTIFF offset size -> ${v}`;
        }
      }
    },
  },
  /** An IFD's entry count changed. */
  ifdCount: {
    weight: 3,
    run: (m, l, rng) => {
      const ifd = rng.pick(l.ifds);
      const n = ifd.entries.length;
      const v = rng.pick([0, 1, n - 1, n + 1, n * 2, 4096, 4097, 0xffff]);
      new Bytes(m.buf, l.le).set(ifd.offset, l.big ? 8 : 2, BigInt(Math.max(0, v)));
      return `IFD@${ifd.offset}: entry count ${n} -> ${v}`;
    },
  },
  /** A tag twice: one entry overwritten with a copy of another, or renamed to another's tag. */
  duplicate: {
    weight: 4,
    run: (m, l, rng) => {
      const ifd = rng.pick(l.ifds);
      if (ifd.entries.length < 2) return undefined;
      const a = rng.pick(ifd.entries);
      const c = rng.pick(ifd.entries.filter((e) => e !== a));
      const size = l.big ? 20 : 12;
      if (rng.chance(0.5)) {
        m.buf.copyWithin(a.pos, c.pos, c.pos + size);
        return `IFD@${ifd.offset}: entry of tag ${tagName(a.tag)} replaced by a copy of tag ${tagName(c.tag)}`;
      }
      new Bytes(m.buf, l.le).set(a.pos, 2, BigInt(c.tag));
      return `IFD@${ifd.offset}: tag ${tagName(a.tag)} renamed to ${tagName(c.tag)}`;
    },
  },
  /** Compressed block bytes damaged: bit flips, random bytes or a zeroed run inside one block. */
  blockBytes: {
    weight: 12,
    run: (m, l, rng) => {
      const blocks = l.ifds.flatMap((d, i) => d.blocks.map((k, j) => ({ ...k, at: `image ${i} block ${j}` }))).filter((k) => k.count > 0);
      if (!blocks.length) return undefined;
      const k = rng.pick(blocks);
      const end = Math.min(k.offset + k.count, m.length);
      if (end <= k.offset) return undefined;
      const what = rng.int(3);
      if (what === 0) {
        const n = 1 + rng.int(8);
        const at: number[] = [];
        for (let i = 0; i < n; i++) {
          // Early bytes (stream headers, the first codes) are where damage reaches furthest.
          const pos = k.offset + (rng.chance(0.5) ? rng.int(Math.min(16, end - k.offset)) : rng.int(end - k.offset));
          m.buf[pos]! ^= 1 << rng.int(8);
          at.push(pos - k.offset);
        }
        return `${k.at}@${k.offset}+${k.count}: flip bits at block bytes ${at.join(',')}`;
      }
      if (what === 1) {
        const n = 1 + rng.int(8);
        for (let i = 0; i < n; i++) m.buf[k.offset + rng.int(end - k.offset)] = rng.int(256);
        return `${k.at}@${k.offset}+${k.count}: ${n} random bytes`;
      }
      const from = k.offset + rng.int(end - k.offset);
      const to = Math.min(end, from + 1 + rng.int(64));
      m.buf.fill(rng.pick([0, 0xff, 0x80]), from, to);
      return `${k.at}@${k.offset}+${k.count}: bytes ${from - k.offset}..${to - k.offset} filled`;
    },
  },
  /** A block's offset or byte count changed: cut short, overlong, empty (sparse), moved onto another block or the header. */
  blockEntry: {
    weight: 8,
    run: (m, l, rng) => {
      const ifd = rng.pick(l.ifds);
      const tiled = ifd.entries.some((e) => e.tag === 322);
      const offsets = ifd.entries.find((e) => e.tag === (tiled ? 324 : 273));
      const counts = ifd.entries.find((e) => e.tag === (tiled ? 325 : 279));
      if (!offsets || !counts || !ifd.blocks.length) return undefined;
      const j = rng.int(ifd.blocks.length);
      const blk = ifd.blocks[j]!;
      const other = rng.pick(ifd.blocks);
      const b = new Bytes(m.buf, l.le);
      if (rng.chance(0.5)) {
        const v = rng.pick([0, 1, blk.count >> 1, Math.max(0, blk.count - 1), blk.count + 1, blk.count * 2, other.count, m.buf.length]);
        b.set(counts.valuePos + j * TYPE_SIZE[counts.type]!, TYPE_SIZE[counts.type]!, BigInt(v));
        return `IFD@${ifd.offset} block ${j}: byte count ${blk.count} -> ${v}`;
      }
      const v = rng.pick([0, 8, blk.offset + 1, blk.offset - 1, other.offset, l.ifds[0]!.offset, m.buf.length - blk.count, m.buf.length - 1]);
      b.set(offsets.valuePos + j * TYPE_SIZE[offsets.type]!, TYPE_SIZE[offsets.type]!, BigInt(Math.max(0, v)));
      return `IFD@${ifd.offset} block ${j}: offset ${blk.offset} -> ${v}`;
    },
  },
  /** The file cut short: in the header, in the IFDs, or anywhere in the blocks. */
  truncate: {
    weight: 6,
    run: (m, l, rng) => {
      const at = rng.chance(0.3) ? rng.int(Math.min(l.headerEnd, m.length)) : rng.int(m.length);
      m.length = Math.min(m.length, at);
      return `truncated to ${at} bytes`;
    },
  },
};

const TOTAL_WEIGHT = Object.values(MUTATORS).reduce((s, x) => s + x.weight, 0);

function pickMutator(rng: Rng): [string, Mutator] {
  let r = rng.next() * TOTAL_WEIGHT;
  for (const [name, x] of Object.entries(MUTATORS)) {
    r -= x.weight;
    if (r < 0) return [name, x.run];
  }
  return ['flips', MUTATORS.flips!.run];
}

/** One to three mutations of a seed, chosen by `rng`; the bytes are a new buffer. */
export function mutate(seed: Uint8Array, layout: Layout, rng: Rng): { bytes: Uint8Array; description: string } {
  const m: Mutation = { buf: Uint8Array.from(seed), length: seed.length, steps: [] };
  const n = rng.chance(0.7) ? 1 : rng.chance(0.66) ? 2 : 3;
  for (let tries = 0; m.steps.length < n && tries < 20; tries++) {
    const [name, run] = pickMutator(rng);
    if (m.length === 0) break;
    const step = run(m, layout, rng);
    if (step) m.steps.push(`${name}: ${step}`);
  }
  return { bytes: m.buf.subarray(0, m.length), description: m.steps.join('; ') };
}

// ---------------------------------------------------------------------------------------
// Cases

export interface FuzzManifest {
  seed: number;
  /** The layers directory the cases are written into (fuzz.yaml, data/cN.tif). */
  layersDir: string;
  renderTimeoutMs: number;
  /** Limits of the child's peak resident memory, and of how much its address space may grow in one case. */
  maxRssMb: number;
  maxAllocMb: number;
  seeds: { name: string; file: string; pipeline: string; tiles: { z: number; x: number; y: number }[] }[];
}

/**
 * Defects this test finds outside the reader and the decoders (tiff.ts, cog.ts, codecs/), to be
 * fixed there: each one is counted and printed on every run instead of failing it. Remove an
 * entry once its fix is in.
 */
export const KNOWN_OUTSIDE: readonly { pattern: RegExp; fix: string }[] = [];

/** Messages to the parent. */
export type RunnerMessage =
  | { t: 'start'; i: number; seed: string; description: string; file: string }
  | { t: 'end'; i: number; outcome: string; problems: string[]; known: string[]; ms: number; restart?: boolean }
  | { t: 'final'; problems: string[] }
  | { t: 'fatal'; text: string };

/** The case for index `i`: which seed, and the mutated bytes. */
export function fuzzCase(
  manifest: Pick<FuzzManifest, 'seed'>,
  seeds: readonly { name: string; bytes: Uint8Array; layout: Layout }[],
  i: number,
): { seed: string; bytes: Uint8Array; description: string } {
  const s = seeds[i % seeds.length]!;
  const { bytes, description } = mutate(s.bytes, s.layout, caseRng(manifest.seed, i));
  return { seed: s.name, bytes, description };
}

// ---------------------------------------------------------------------------------------
// Seeds

export interface SeedSpec {
  name: string;
  /** What it covers, for messages. */
  covers: string;
  /** The GDAL commands that write it into `dir`, each as [tool, ...args]; `$OUT` is the seed's path. */
  commands: string[][];
  /** The layer's `pipeline:` block, reading source `s`. */
  pipeline: string;
}

const DEM = path.join(SHIPPED_DATA, 'srtm_jasper_ab_100m.tif');
const RED = path.join(SHIPPED_DATA, 'landsat8_zion_20150818_b4_red.tif');
const NIR = path.join(SHIPPED_DATA, 'landsat8_zion_20150818_b5_nir.tif');
const NLCD = path.join(SHIPPED_DATA, 'nlcd2011_zion.tif');
const WORLDCOVER = path.join(SHIPPED_DATA, 'ESA_WorldCover_10m_2021_v200_N00E006_Map.tif');

const cog = (...co: string[]) => ['-q', '-of', 'COG', ...co.flatMap((c) => ['-co', c])];

/** Small seeds written by GDAL from the shipped rasters: every codec, predictor, sample type and layout the reader takes. */
export const SEEDS: readonly SeedSpec[] = [
  {
    name: 'f32-deflate-p3',
    covers: 'Float32, DEFLATE, floating point predictor, NaN nodata, an overview',
    commands: [['gdal_translate', ...cog('COMPRESS=DEFLATE', 'PREDICTOR=YES', 'BLOCKSIZE=64'), '-srcwin', '120', '120', '128', '128', DEM, '$OUT']],
    pipeline: 'pipeline:\n  - read: { source: s, bands: [1] }\n  - colormap: { name: viridis, range: [900, 2700] }\n',
  },
  {
    name: 'i16-deflate-p2',
    covers: 'Int16, DEFLATE, horizontal predictor, two overviews, hillshade (a buffered read)',
    commands: [
      [
        'gdal_translate',
        ...cog('COMPRESS=DEFLATE', 'PREDICTOR=YES', 'BLOCKSIZE=64'),
        '-ot',
        'Int16',
        '-a_nodata',
        '-32768',
        '-srcwin',
        '100',
        '100',
        '160',
        '160',
        DEM,
        '$OUT',
      ],
    ],
    pipeline: [
      'pipeline:',
      '  nodes:',
      '    dem: { op: read, source: s, bands: [1], resampling: cubic }',
      '    relief: { op: colormap, in: [dem], stops: [[900, "#2b6b3a"], [2700, "#ffffff"]] }',
      '    shade: { op: hillshade, in: [dem] }',
      '    out: { op: blend, in: [relief, shade], mode: multiply }',
      '  output: out',
      '',
    ].join('\n'),
  },
  {
    name: 'u16-lzw',
    covers: 'UInt16, LZW, no predictor, an overview',
    commands: [['gdal_translate', ...cog('COMPRESS=LZW', 'BLOCKSIZE=64'), '-srcwin', '500', '600', '128', '128', RED, '$OUT']],
    pipeline: 'pipeline:\n  - read: { source: s, bands: [1] }\n  - rescale: { from: [5000, 15000] }\n  - colormap: { name: greys }\n',
  },
  {
    name: 'u16-deflate-stats',
    covers: "UInt16, DEFLATE without a predictor, the percentiles of a whole level (rescale's from: auto)",
    commands: [['gdal_translate', ...cog('COMPRESS=DEFLATE', 'BLOCKSIZE=64'), '-srcwin', '300', '300', '96', '96', NIR, '$OUT']],
    pipeline: 'pipeline:\n  - read: { source: s, bands: [1] }\n  - rescale: { from: auto }\n  - colormap: { name: greys }\n',
  },
  {
    name: 'u8-zstd-palette',
    covers: 'UInt8 with a colour table, ZSTD, two overviews',
    commands: [['gdal_translate', ...cog('COMPRESS=ZSTD', 'BLOCKSIZE=64'), '-srcwin', '400', '500', '200', '200', NLCD, '$OUT']],
    pipeline: 'pipeline:\n  - read: { source: s }\n  - colormap: { name: source }\n',
  },
  {
    name: 'u8-packbits-mask',
    covers: 'UInt8 with a colour table, PackBits, an internal mask with its overviews',
    commands: [
      [
        'gdal_translate',
        '-q',
        '-of',
        'VRT',
        '-srcwin',
        '6000',
        '32400',
        '200',
        '200',
        '-b',
        '1',
        '-b',
        '1',
        '-scale_2',
        '29',
        '30',
        '1',
        '0',
        WORLDCOVER,
        '$OUT.vrt',
      ],
      ['gdal_translate', ...cog('COMPRESS=PACKBITS', 'BLOCKSIZE=64'), '-b', '1', '-mask', '2', '$OUT.vrt', '$OUT'],
    ],
    pipeline: 'pipeline:\n  - read: { source: s }\n  - colormap: { name: source }\n',
  },
  {
    name: 'u8x3-none',
    covers: 'three UInt8 bands pixel-interleaved, uncompressed, an overview',
    commands: [
      ['gdalbuildvrt', '-q', '-separate', '$OUT.vrt', RED, NIR, RED],
      [
        'gdal_translate',
        ...cog('COMPRESS=NONE', 'BLOCKSIZE=64'),
        '-ot',
        'Byte',
        '-scale',
        '5000',
        '20000',
        '0',
        '255',
        '-srcwin',
        '500',
        '600',
        '96',
        '96',
        '$OUT.vrt',
        '$OUT',
      ],
    ],
    pipeline: 'pipeline:\n  - read: { source: s, bands: [1, 2, 3] }\n  - rgb: {}\n',
  },
  {
    name: 'u16x2-planar-zstd-p2-bigtiff',
    covers: 'BigTIFF, two UInt16 bands band-interleaved (PlanarConfiguration 2), ZSTD, horizontal predictor, overviews by gdaladdo',
    commands: [
      ['gdalbuildvrt', '-q', '-separate', '$OUT.vrt', RED, NIR],
      [
        'gdal_translate',
        '-q',
        '-of',
        'GTiff',
        ...['TILED=YES', 'BLOCKXSIZE=64', 'BLOCKYSIZE=64', 'INTERLEAVE=BAND', 'COMPRESS=ZSTD', 'PREDICTOR=2', 'BIGTIFF=YES'].flatMap((c) => ['-co', c]),
        '-srcwin',
        '500',
        '600',
        '128',
        '128',
        '$OUT.vrt',
        '$OUT',
      ],
      ['gdaladdo', '-q', '-r', 'average', '$OUT', '2', '4'],
    ],
    pipeline:
      'pipeline:\n  - read: { source: s, bands: [2, 1] }\n  - normalized_difference: { bands: [1, 2] }\n  - colormap: { name: rdylgn, range: [0, 0.5] }\n',
  },
  {
    name: 'i16-strips-lzw-p2-be',
    covers: 'big-endian, Int16 in strips of 16 rows, LZW, horizontal predictor, no overview',
    commands: [
      [
        'gdal_translate',
        '-q',
        '-of',
        'GTiff',
        ...['ENDIANNESS=BIG', 'COMPRESS=LZW', 'PREDICTOR=2', 'BLOCKYSIZE=16'].flatMap((c) => ['-co', c]),
        '-ot',
        'Int16',
        '-srcwin',
        '100',
        '100',
        '128',
        '128',
        DEM,
        '$OUT',
      ],
    ],
    pipeline: 'pipeline:\n  - read: { source: s, bands: [1], resampling: nearest }\n  - colormap: { name: terrain, range: [900, 2700] }\n',
  },
  {
    name: 'f64-lzw-p3',
    covers: 'Float64, LZW, floating point predictor, one block',
    commands: [['gdal_translate', ...cog('COMPRESS=LZW', 'PREDICTOR=YES', 'BLOCKSIZE=64'), '-ot', 'Float64', '-srcwin', '150', '150', '64', '64', DEM, '$OUT']],
    pipeline: 'pipeline:\n  - read: { source: s, bands: [1] }\n  - colormap: { name: magma, range: [900, 2700] }\n',
  },
];

/** Writes every seed into `dir` (as NAME.tif) with GDAL; GDAL's warnings are shown only when a command fails. */
export function makeSeeds(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const s of SEEDS) {
    const out = path.join(dir, `${s.name}.tif`);
    for (const cmd of s.commands) {
      const args = cmd.slice(1).map((a) => a.replaceAll('$OUT', out));
      const r = spawnSync(cmd[0]!, args, { env: GDAL_ENV, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${cmd[0]} ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
    }
    rmSync(`${out}.vrt`, { force: true });
    files.set(s.name, out);
  }
  return files;
}
