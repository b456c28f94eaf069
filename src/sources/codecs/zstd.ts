/**
 * ZSTD (compression 50000, as libtiff writes it): Zstandard frames, RFC 8878, decoded here.
 *
 * Every loop is bounded by the input or by the output: a block yields at most 128 KiB, a
 * Huffman description at most 255 weights, a bitstream is read to its exact end, and decoding
 * stops once the TIFF block is full (later bytes are ignored, as libtiff does). fzstd 0.1.1,
 * which decoded them before, runs some damaged streams forever (a Huffman weight table whose
 * FSE states read no bits) and runs sequences far past a block's end (a 21-byte frame takes
 * minutes).
 *
 * Not supported: dictionaries (libtiff does not write them). Checksums are skipped, not checked.
 * Section numbers refer to RFC 8878.
 */
import { SourceError } from '../../errors.js';
import { maxDecodedBytes, outputSize, shortBlock, type OwnedBytes } from './output.js';

/** libzstd refuses larger windows unless told otherwise (ZSTD_WINDOWLOG_LIMIT_DEFAULT). */
const ZSTD_MAX_WINDOW = 2 ** 27;
/** Block_Maximum_Size (§3.1.1.2): what one block may decode to. */
const BLOCK_MAX = 128 * 1024;
/** The largest expansion: a four-byte RLE block (header and byte) of 128 KiB. */
const MAX_RATIO = BLOCK_MAX / 4;
const MAGIC = 0xfd2fb528;

function corrupt(why: string): never {
  throw new SourceError(`ZSTD decode failed: ${why}`);
}

const EOF = 'unexpected EOF';

export function unzstd(bytes: Uint8Array, expected: number): OwnedBytes {
  const out = new Uint8Array(outputSize(expected, bytes.length * MAX_RATIO));
  const n = decodeFrames(bytes, out, expected);
  if (n < expected) throw shortBlock('ZSTD', n, expected);
  return out;
}

/** Frames decoded until the input ends, into at most `most` bytes: a stream whose decoded size no field gives (LERC's ZSTD layer). */
export function unzstdUpTo(bytes: Uint8Array, most: number): Uint8Array {
  const out = new Uint8Array(outputSize(most, bytes.length * MAX_RATIO));
  return out.subarray(0, decodeFrames(bytes, out, out.length));
}

/** What one frame keeps from block to block (§3.1.1.3, §3.1.1.5). */
interface FrameState {
  /** Repeat offsets. */
  rep: [number, number, number];
  /** The last Huffman table, for treeless literals. */
  huffman?: HuffmanTable;
  /** The last literal length, offset and match length tables, for repeat mode. */
  tables?: [FseTable, FseTable, FseTable];
}

/** Decodes frames into `out` until the input ends or `out` is full; the number of bytes written. */
function decodeFrames(src: Uint8Array, out: Uint8Array, expected: number): number {
  const len = src.length;
  let ip = 0;
  let op = 0;
  while (ip < len && op < out.length) {
    if (ip + 4 > len) corrupt(EOF);
    const magic = u32(src, ip);
    if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) {
      // §3.1.2 Skippable frame.
      if (ip + 8 > len) corrupt(EOF);
      ip += 8 + u32(src, ip + 4);
      if (ip > len) corrupt(EOF);
      continue;
    }
    if (magic !== MAGIC) corrupt('invalid zstd data');
    ip += 4;

    // §3.1.1.1 Frame header.
    if (ip >= len) corrupt(EOF);
    const fhd = src[ip++]!;
    const fcsFlag = fhd >> 6;
    const single = (fhd >> 5) & 1;
    const checksum = (fhd >> 2) & 1;
    if (fhd & 8) corrupt('reserved bit set in the frame header');
    if (!single) {
      if (ip >= len) corrupt(EOF);
      const wd = src[ip++]!;
      const base = 2 ** (10 + (wd >> 3));
      const window = base + (base / 8) * (wd & 7);
      if (window > ZSTD_MAX_WINDOW) throw new SourceError(`ZSTD frame window of ${window} bytes is larger than ${ZSTD_MAX_WINDOW}`);
    }
    const dictBytes = [0, 1, 2, 4][fhd & 3]!;
    if (ip + dictBytes > len) corrupt(EOF);
    if (readLE(src, ip, dictBytes) !== 0) corrupt('dictionaries are not supported');
    ip += dictBytes;
    const fcsBytes = fcsFlag === 0 ? single : 1 << fcsFlag;
    if (ip + fcsBytes > len) corrupt(EOF);
    const contentSize = fcsBytes === 0 ? -1 : readLE(src, ip, fcsBytes) + (fcsBytes === 2 ? 256 : 0);
    ip += fcsBytes;
    if (contentSize > maxDecodedBytes(expected)) {
      throw new SourceError(`ZSTD frame declares ${contentSize} bytes, far more than the ${expected} the block needs`);
    }

    // §3.1.1.2 Blocks.
    const start = op;
    const state: FrameState = { rep: [1, 4, 8] };
    for (;;) {
      if (ip + 3 > len) corrupt(EOF);
      const header = src[ip]! | (src[ip + 1]! << 8) | (src[ip + 2]! << 16);
      ip += 3;
      const last = header & 1;
      const type = (header >> 1) & 3;
      const size = header >>> 3;
      if (size > BLOCK_MAX) corrupt(`block of ${size} bytes (at most ${BLOCK_MAX})`);
      if (type === 0) {
        if (ip + size > len) corrupt(EOF);
        const n = Math.min(size, out.length - op);
        out.set(src.subarray(ip, ip + n), op);
        op += n;
        ip += size;
      } else if (type === 1) {
        if (ip >= len) corrupt(EOF);
        const n = Math.min(size, out.length - op);
        out.fill(src[ip]!, op, op + n);
        op += n;
        ip += 1;
      } else if (type === 2) {
        if (ip + size > len) corrupt(EOF);
        op = decodeCompressedBlock(src, ip, ip + size, out, op, start, state);
        ip += size;
      } else {
        corrupt('invalid block type');
      }
      if (op >= out.length) return op;
      if (last) break;
    }
    if (contentSize >= 0 && op - start !== contentSize) corrupt(`frame decodes to ${op - start} bytes, its header says ${contentSize}`);
    if (checksum) {
      if (ip + 4 > len) corrupt(EOF);
      ip += 4;
    }
  }
  return op;
}

/** A literal buffer for one block, reused: decoding is synchronous. */
const literals = new Uint8Array(BLOCK_MAX);

/** §3.1.1.3 A compressed block in src[start, end) into `out` at `op`; the new `op`. `frame` is where this frame's output began. */
function decodeCompressedBlock(src: Uint8Array, start: number, end: number, out: Uint8Array, op: number, frame: number, state: FrameState): number {
  let ip = start;
  const need = (n: number) => {
    if (ip + n > end) corrupt('block ends early');
  };

  // §3.1.1.3.1 Literals section.
  need(1);
  const b0 = src[ip]!;
  const litType = b0 & 3;
  const sizeFormat = (b0 >> 2) & 3;
  let regenerated: number;
  let compressed = 0;
  let streams = 1;
  if (litType < 2) {
    if ((sizeFormat & 1) === 0) {
      regenerated = b0 >> 3;
      ip += 1;
    } else if (sizeFormat === 1) {
      need(2);
      regenerated = (b0 >> 4) | (src[ip + 1]! << 4);
      ip += 2;
    } else {
      need(3);
      regenerated = (b0 >> 4) | (src[ip + 1]! << 4) | (src[ip + 2]! << 12);
      ip += 3;
    }
  } else {
    streams = sizeFormat === 0 ? 1 : 4;
    if (sizeFormat < 2) {
      need(3);
      const h = b0 | (src[ip + 1]! << 8) | (src[ip + 2]! << 16);
      regenerated = (h >> 4) & 0x3ff;
      compressed = (h >> 14) & 0x3ff;
      ip += 3;
    } else if (sizeFormat === 2) {
      need(4);
      const h = (b0 | (src[ip + 1]! << 8) | (src[ip + 2]! << 16) | (src[ip + 3]! << 24)) >>> 0;
      regenerated = (h >>> 4) & 0x3fff;
      compressed = h >>> 18;
      ip += 4;
    } else {
      need(5);
      regenerated = ((b0 >> 4) | (src[ip + 1]! << 4) | (src[ip + 2]! << 12)) & 0x3ffff;
      compressed = (src[ip + 2]! >> 6) | (src[ip + 3]! << 2) | (src[ip + 4]! << 10);
      ip += 5;
    }
  }
  if (regenerated > BLOCK_MAX) corrupt(`${regenerated} literals in a block (at most ${BLOCK_MAX})`);
  if (litType === 0) {
    need(regenerated);
    literals.set(src.subarray(ip, ip + regenerated));
    ip += regenerated;
  } else if (litType === 1) {
    need(1);
    literals.fill(src[ip]!, 0, regenerated);
    ip += 1;
  } else {
    need(compressed);
    const litEnd = ip + compressed;
    let p = ip;
    if (litType === 2) {
      const h = readHuffmanTable(src, ip, litEnd);
      state.huffman = h.table;
      p = h.next;
    } else if (!state.huffman) {
      corrupt('treeless literals without an earlier Huffman table');
    }
    const huffman = state.huffman;
    if (streams === 1) {
      decodeHuffmanStream(src, p, litEnd, literals, 0, regenerated, huffman);
    } else {
      // The jump table: the sizes of the first three streams.
      if (p + 6 > litEnd) corrupt('literals end in their jump table');
      const s1 = src[p]! | (src[p + 1]! << 8);
      const s2 = src[p + 2]! | (src[p + 3]! << 8);
      const s3 = src[p + 4]! | (src[p + 5]! << 8);
      p += 6;
      const segment = (regenerated + 3) >> 2;
      if (p + s1 + s2 + s3 > litEnd || regenerated < 3 * segment) corrupt('literal streams do not fit their section');
      decodeHuffmanStream(src, p, p + s1, literals, 0, segment, huffman);
      decodeHuffmanStream(src, p + s1, p + s1 + s2, literals, segment, segment, huffman);
      decodeHuffmanStream(src, p + s1 + s2, p + s1 + s2 + s3, literals, 2 * segment, segment, huffman);
      decodeHuffmanStream(src, p + s1 + s2 + s3, litEnd, literals, 3 * segment, regenerated - 3 * segment, huffman);
    }
    ip = litEnd;
  }

  // §3.1.1.3.2 Sequences section.
  need(1);
  let count = src[ip++]!;
  if (count >= 128) {
    if (count < 255) {
      need(1);
      count = ((count - 128) << 8) + src[ip++]!;
    } else {
      need(2);
      count = src[ip]! + (src[ip + 1]! << 8) + 0x7f00;
      ip += 2;
    }
  }
  const cap = out.length;
  if (count === 0) {
    if (ip !== end) corrupt('bytes after a block without sequences');
    const n = Math.min(regenerated, cap - op);
    out.set(literals.subarray(0, n), op);
    return op + n;
  }
  need(1);
  const modes = src[ip++]!;
  if (modes & 3) corrupt('reserved bits set in the sequence compression modes');
  const tables: FseTable[] = [];
  for (let k = 0; k < 3; k++) {
    // Literal lengths, offsets, match lengths, in that order.
    const mode = (modes >> (6 - 2 * k)) & 3;
    const kind = SEQUENCE_KINDS[k]!;
    if (mode === 0) tables.push(kind.predefined);
    else if (mode === 1) {
      need(1);
      const symbol = src[ip++]!;
      if (symbol > kind.maxSymbol) corrupt(`RLE ${kind.name} code ${symbol}`);
      tables.push(rleTable(symbol));
    } else if (mode === 2) {
      const t = readFseTable(src, ip, end, kind.maxLog, kind.maxSymbol);
      tables.push(t.table);
      ip = t.next;
    } else {
      const earlier = state.tables?.[k];
      if (!earlier) corrupt(`repeated ${kind.name} table without an earlier one`);
      tables.push(earlier);
    }
  }
  const [llTable, ofTable, mlTable] = tables as [FseTable, FseTable, FseTable];
  state.tables = [llTable, ofTable, mlTable];

  // The bitstream, read backwards from the block's last byte.
  if (ip >= end || src[end - 1] === 0) corrupt('sequence bitstream without its end mark');
  const base = ip;
  let pos = (end - 1 - base) * 8 + highBit(src[end - 1]!);
  const read = (n: number): number => {
    if (n === 0) return 0;
    pos -= n;
    if (pos < 0) corrupt('sequence bitstream overrun');
    return bits(src, base, pos, n);
  };
  let llState = read(llTable.log);
  let ofState = read(ofTable.log);
  let mlState = read(mlTable.log);
  const rep = state.rep;
  let litPos = 0;
  let produced = 0;
  for (let s = 0; s < count; s++) {
    const ofCode = ofTable.symbol[ofState]!;
    const mlCode = mlTable.symbol[mlState]!;
    const llCode = llTable.symbol[llState]!;
    let offset = 2 ** ofCode + read(ofCode);
    const ml = ML_BASE[mlCode]! + read(ML_BITS[mlCode]!);
    const ll = LL_BASE[llCode]! + read(LL_BITS[llCode]!);
    if (s + 1 < count) {
      llState = llTable.base[llState]! + read(llTable.bits[llState]!);
      mlState = mlTable.base[mlState]! + read(mlTable.bits[mlState]!);
      ofState = ofTable.base[ofState]! + read(ofTable.bits[ofState]!);
    }
    // §3.1.1.5 Repeat offsets.
    if (offset > 3) {
      offset -= 3;
      rep[2] = rep[1];
      rep[1] = rep[0];
      rep[0] = offset;
    } else {
      const k = offset - 1 + (ll === 0 ? 1 : 0);
      if (k === 0) offset = rep[0];
      else {
        offset = k === 3 ? rep[0] - 1 : rep[k]!;
        if (k > 1) rep[2] = rep[1];
        rep[1] = rep[0];
        rep[0] = offset;
      }
    }
    if (litPos + ll > regenerated) corrupt('a sequence takes more literals than the block has');
    produced += ll + ml;
    if (produced > BLOCK_MAX) corrupt(`block decodes to more than ${BLOCK_MAX} bytes`);
    const nl = Math.min(ll, cap - op);
    out.set(literals.subarray(litPos, litPos + nl), op);
    op += nl;
    litPos += ll;
    if (op >= cap) return op;
    if (offset < 1 || offset > op - frame) corrupt(`match offset ${offset} reaches before the frame`);
    const nm = Math.min(ml, cap - op);
    if (offset >= nm) out.copyWithin(op, op - offset, op - offset + nm);
    else for (let i = 0; i < nm; i++) out[op + i] = out[op - offset + i]!;
    op += nm;
    if (op >= cap) return op;
  }
  if (pos !== 0) corrupt('sequence bitstream not read to its end');
  const rest = regenerated - litPos;
  if (produced + rest > BLOCK_MAX) corrupt(`block decodes to more than ${BLOCK_MAX} bytes`);
  const n = Math.min(rest, cap - op);
  out.set(literals.subarray(litPos, litPos + n), op);
  return op + n;
}

// ---------------------------------------------------------------------------------------
// Bits

const u32 = (src: Uint8Array, at: number): number => (src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16) | (src[at + 3]! << 24)) >>> 0;

/** A little-endian unsigned integer of up to 8 bytes, as a double (exact up to 2^53). */
function readLE(src: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + src[at + i]!;
  return v;
}

/** The index of the highest set bit of v > 0. */
const highBit = (v: number): number => 31 - Math.clz32(v);

/** `n` (at most 31) bits at bit `pos` of the bytes from `base`, least significant first; bytes past the array read as 0. */
function bits(src: Uint8Array, base: number, pos: number, n: number): number {
  if (n > 24) return bits(src, base, pos, 24) + bits(src, base, pos + 24, n - 24) * 0x1000000;
  const at = base + (pos >> 3);
  const word = (src[at] ?? 0) | ((src[at + 1] ?? 0) << 8) | ((src[at + 2] ?? 0) << 16) | ((src[at + 3] ?? 0) << 24);
  return (word >>> (pos & 7)) & ((1 << n) - 1);
}

/** As `bits`, where the bits below 0 (a backward stream's lookahead past its start) read as zeros. */
function bitsBelowZero(src: Uint8Array, base: number, pos: number, n: number): number {
  if (pos >= 0) return bits(src, base, pos, n);
  return pos + n > 0 ? (bits(src, base, 0, pos + n) << -pos) & ((1 << n) - 1) : 0;
}

// ---------------------------------------------------------------------------------------
// FSE (§4.1)

interface FseTable {
  log: number;
  symbol: Uint8Array;
  bits: Uint8Array;
  base: Uint16Array;
}

/** §4.1 The decoding table of a normalized distribution (-1: "less than one"). */
function buildFse(norm: ArrayLike<number>, symbols: number, log: number): FseTable {
  const size = 1 << log;
  const symbol = new Uint8Array(size);
  const nbits = new Uint8Array(size);
  const base = new Uint16Array(size);
  const next = new Uint16Array(symbols);
  let high = size - 1;
  for (let s = 0; s < symbols; s++) {
    if (norm[s] === -1) {
      symbol[high--] = s;
      next[s] = 1;
    } else next[s] = norm[s]!;
  }
  // The step is odd, so the positions cycle through the whole table.
  const step = (size >> 1) + (size >> 3) + 3;
  const mask = size - 1;
  let position = 0;
  for (let s = 0; s < symbols; s++) {
    for (let i = 0; i < norm[s]!; i++) {
      symbol[position] = s;
      do position = (position + step) & mask;
      while (position > high);
    }
  }
  if (position !== 0) corrupt('FSE distribution does not fill its table');
  for (let u = 0; u < size; u++) {
    const state = next[symbol[u]!]!++;
    const nb = log - highBit(state);
    nbits[u] = nb;
    base[u] = (state << nb) - size;
  }
  return { log, symbol, bits: nbits, base };
}

function rleTable(symbol: number): FseTable {
  return { log: 0, symbol: Uint8Array.of(symbol), bits: Uint8Array.of(0), base: Uint16Array.of(0) };
}

const norm = new Int16Array(256);

/** §4.1 An FSE table description at src[at, end): the table, and where the description ends. */
function readFseTable(src: Uint8Array, at: number, end: number, maxLog: number, maxSymbol: number): { table: FseTable; next: number } {
  if (at >= end) corrupt('block ends in an FSE table description');
  const limit = (end - at) * 8;
  const log = (src[at]! & 15) + 5;
  if (log > maxLog) corrupt(`FSE accuracy log ${log} (at most ${maxLog})`);
  let pos = 4;
  let remaining = (1 << log) + 1;
  let threshold = 1 << log;
  let nb = log + 1;
  let symbol = 0;
  let previousZero = false;
  norm.fill(0);
  while (remaining > 1 && symbol <= maxSymbol) {
    if (previousZero) {
      // Two-bit repeat flags: 3 means three more zeros and another flag.
      let n = symbol;
      for (;;) {
        const r = bits(src, at, pos, 2);
        pos += 2;
        n += r;
        if (r !== 3) break;
        if (pos > limit) corrupt('FSE table description overruns the block');
      }
      if (n > maxSymbol) corrupt('FSE table description names too many symbols');
      symbol = n;
    }
    const max = 2 * threshold - 1 - remaining;
    let count = bits(src, at, pos, nb - 1);
    if (count < max) pos += nb - 1;
    else {
      count = bits(src, at, pos, nb);
      if (count >= threshold) count -= max;
      pos += nb;
    }
    count--;
    remaining -= count < 0 ? -count : count;
    norm[symbol++] = count;
    previousZero = count === 0;
    if (pos > limit) corrupt('FSE table description overruns the block');
    if (remaining < threshold) {
      if (remaining <= 1) break;
      nb = highBit(remaining) + 1;
      threshold = 1 << (nb - 1);
    }
  }
  if (remaining !== 1 || symbol > maxSymbol + 1) corrupt('FSE table description is invalid');
  const next = at + ((pos + 7) >> 3);
  if (next > end) corrupt('FSE table description overruns the block');
  return { table: buildFse(norm, symbol, log), next };
}

// Codes of literal and match lengths (§3.1.1.3.2): baselines and extra bits.
const LL_BITS = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
const ML_BITS = Uint8Array.of(...new Array<number>(32).fill(0), ...[1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
const baselines = (extra: Uint8Array, first: number): Int32Array => {
  const out = new Int32Array(extra.length);
  for (let i = 0, v = first; i < extra.length; i++) {
    out[i] = v;
    v += 1 << extra[i]!;
  }
  return out;
};
const LL_BASE = baselines(LL_BITS, 0);
const ML_BASE = baselines(ML_BITS, 3);

/** The tables of the sequence codes, with their default distributions (§3.1.1.3.2). */
const SEQUENCE_KINDS = [
  {
    name: 'literal length',
    maxLog: 9,
    maxSymbol: 35,
    predefined: buildFse([4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1, -1, -1], 36, 6),
  },
  {
    name: 'offset',
    maxLog: 8,
    maxSymbol: 31,
    predefined: buildFse([1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1], 29, 5),
  },
  {
    name: 'match length',
    maxLog: 9,
    maxSymbol: 52,
    predefined: buildFse(
      [
        1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1,
        -1, -1, -1, -1,
      ],
      53,
      6,
    ),
  },
] as const;

// ---------------------------------------------------------------------------------------
// Huffman (§4.2)

interface HuffmanTable {
  maxBits: number;
  symbol: Uint8Array;
  bits: Uint8Array;
}

const weights = new Uint8Array(256);

/** §4.2 A Huffman tree description at src[at, end): the decoding table, and where the description ends. */
function readHuffmanTable(src: Uint8Array, at: number, end: number): { table: HuffmanTable; next: number } {
  if (at >= end) corrupt('literals end in their Huffman tree description');
  const header = src[at]!;
  let p = at + 1;
  let count = 0;
  if (header < 128) {
    // Weights compressed with FSE, in `header` bytes: two states over one backward bitstream.
    const streamEnd = p + header;
    if (streamEnd > end) corrupt('Huffman weights overrun the literals');
    const fse = readFseTable(src, p, streamEnd, 6, 255);
    const t = fse.table;
    const base = fse.next;
    if (base >= streamEnd || src[streamEnd - 1] === 0) corrupt('Huffman weight bitstream without its end mark');
    let pos = (streamEnd - 1 - base) * 8 + highBit(src[streamEnd - 1]!);
    const read = (n: number): number => {
      pos -= n;
      return bitsBelowZero(src, base, pos, n);
    };
    let s1 = read(t.log);
    let s2 = read(t.log);
    if (pos < 0) corrupt('Huffman weight bitstream too short');
    // Decoding ends where the bitstream does: at most 255 weights, one at a time from each state.
    for (;;) {
      if (count > 253) corrupt('more than 255 Huffman weights');
      weights[count++] = t.symbol[s1]!;
      s1 = t.base[s1]! + read(t.bits[s1]!);
      if (pos < 0) {
        weights[count++] = t.symbol[s2]!;
        break;
      }
      if (count > 253) corrupt('more than 255 Huffman weights');
      weights[count++] = t.symbol[s2]!;
      s2 = t.base[s2]! + read(t.bits[s2]!);
      if (pos < 0) {
        weights[count++] = t.symbol[s1]!;
        break;
      }
    }
    p = streamEnd;
  } else {
    // Direct: header - 127 weights of four bits, two a byte.
    count = header - 127;
    const bytes = (count + 1) >> 1;
    if (p + bytes > end) corrupt('Huffman weights overrun the literals');
    for (let i = 0; i < count; i++) weights[i] = i & 1 ? src[p + (i >> 1)]! & 15 : src[p + (i >> 1)]! >> 4;
    p += bytes;
  }
  // The last weight is implied: the one that makes the sum a power of two.
  let total = 0;
  for (let i = 0; i < count; i++) {
    const w = weights[i]!;
    if (w > 11) corrupt(`Huffman weight ${w}`);
    if (w) total += 1 << (w - 1);
  }
  if (total === 0) corrupt('Huffman weights are all zero');
  const maxBits = highBit(total) + 1;
  if (maxBits > 11) corrupt(`Huffman codes of ${maxBits} bits`);
  const rest = (1 << maxBits) - total;
  if (rest & (rest - 1)) corrupt('Huffman weights do not sum to a power of two');
  weights[count++] = highBit(rest) + 1;
  // Codes by weight, lightest (longest) first, as libzstd's HUF_readDTableX1 lays them out.
  const rank = new Int32Array(maxBits + 2);
  for (let i = 0; i < count; i++) rank[weights[i]!]!++;
  for (let w = 1, next = 0; w <= maxBits; w++) {
    const current = next;
    next += rank[w]! << (w - 1);
    rank[w] = current;
  }
  const size = 1 << maxBits;
  const symbol = new Uint8Array(size);
  const nbits = new Uint8Array(size);
  for (let s = 0; s < count; s++) {
    const w = weights[s]!;
    if (!w) continue;
    const length = 1 << (w - 1);
    const from = rank[w]!;
    if (from + length > size) corrupt('Huffman weights overfill the table');
    symbol.fill(s, from, from + length);
    nbits.fill(maxBits + 1 - w, from, from + length);
    rank[w] = from + length;
  }
  return { table: { maxBits, symbol, bits: nbits }, next: p };
}

/** §4.2 One Huffman-coded stream at src[start, end) into `count` bytes of `out` from `at`; the stream must end exactly. */
function decodeHuffmanStream(src: Uint8Array, start: number, end: number, out: Uint8Array, at: number, count: number, table: HuffmanTable): void {
  if (start >= end || src[end - 1] === 0) corrupt('Huffman stream without its end mark');
  const { maxBits, symbol, bits: nbits } = table;
  let pos = (end - 1 - start) * 8 + highBit(src[end - 1]!) - maxBits;
  for (let k = 0; k < count; k++) {
    if (pos <= -maxBits) corrupt('Huffman stream overrun');
    const state = bitsBelowZero(src, start, pos, maxBits);
    out[at + k] = symbol[state]!;
    pos -= nbits[state]!;
  }
  if (pos !== -maxBits) corrupt('Huffman stream not read to its end');
}
