/**
 * Band-math expressions: a small, safe arithmetic language over raster bands.
 *
 *   (b2 - b1) / (b2 + b1)
 *   where(b4 > 0, clamp(b1 / b4, 0, 1), 0)
 *
 * The source is parsed once (lexer.ts, parser.ts: the language and its limits) into an
 * AST, constant-folded, and compiled here into a tree of closures, never into code from
 * strings. Every closure works on a whole array at a time: it runs its children, then one
 * tight loop that writes a Float32Array scratch buffer of length n. Scratch buffers are
 * allocated once per distinct n and reused across calls. Band reads hand out the caller's
 * input arrays directly, and literal operands stay scalars (no constant-filled arrays).
 *
 * Scratch slots are assigned Sethi-Ullman style (the operand needing more slots is
 * evaluated first, the other in the next slot, the result overwrites the lower slot in
 * place), so even a hostile 500-node expression needs only about log2(500) buffers.
 *
 * Arithmetic: all per-pixel values are float32 (inputs, scratch buffers, output); literal
 * subtrees are folded in float64 and rounded to float32 where they meet pixel data.
 * where(c, a, b) is `c != 0 ? a : b`, so a NaN condition selects `a`. clamp(x, lo, hi) is
 * min(max(x, lo), hi). NaN propagates through min/max/clamp.
 */
import type { Ast, BinOp, UnOp } from './ast.js';
import { ExpressionError } from './error.js';
import { kernelAA, kernelAC, kernelCA, kernelU } from './kernels.js';
import { parseExpression } from './parser.js';

export interface CompiledExpression {
  /** The source text, normalised (trimmed). */
  readonly source: string;
  /** 1-based band numbers the expression reads, sorted, unique. */
  readonly bands: number[];
  /** Evaluates per pixel. `inputs[k]` is band k+1 (Float32Array, all of length n). Writes `out[i]`. A pixel whose result is NaN or ±Infinity gets out[i] = NaN. Pixels where mask[i] === 0 are skipped (out[i] = NaN). */
  evaluate(inputs: readonly Float32Array[], mask: Uint8Array, out: Float32Array): void;
}

/** Distinct pixel counts whose scratch buffers are kept per compiled expression. */
const MAX_CACHED_SIZES = 4;

// ---------------------------------------------------------------------------------------
// Lowering with constant folding. `need` is the number of scratch slots a subtree uses
// (0 for leaves, which read an input array or are a scalar).

type IR =
  | { readonly t: 'const'; readonly value: number }
  | { readonly t: 'band'; readonly index: number }
  | { readonly t: 'un'; readonly op: UnOp; readonly x: IR; readonly need: number }
  | { readonly t: 'bin'; readonly op: BinOp; readonly a: IR; readonly b: IR; readonly need: number }
  | { readonly t: 'where'; readonly c: IR; readonly a: IR; readonly b: IR; readonly need: number };

function needOf(ir: IR): number {
  return ir.t === 'const' || ir.t === 'band' ? 0 : ir.need;
}

/** Slots for a node whose compound children must all be live at once, largest first. */
function combinedNeed(children: readonly IR[]): number {
  const needs = children
    .map(needOf)
    .filter((n) => n > 0)
    .sort((x, y) => y - x);
  let need = 1;
  needs.forEach((n, i) => {
    need = Math.max(need, n + i);
  });
  return need;
}

function scalarUn(op: UnOp, x: number): number {
  switch (op) {
    case 'neg':
      return -x;
    case 'abs':
      return Math.abs(x);
    case 'sqrt':
      return Math.sqrt(x);
    case 'log':
      return Math.log(x);
    case 'exp':
      return Math.exp(x);
  }
}

function scalarBin(op: BinOp, a: number, b: number): number {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return a / b;
    case '^':
      return a ** b;
    case '<':
      return a < b ? 1 : 0;
    case '<=':
      return a <= b ? 1 : 0;
    case '>':
      return a > b ? 1 : 0;
    case '>=':
      return a >= b ? 1 : 0;
    case '==':
      return a === b ? 1 : 0;
    case '!=':
      return a !== b ? 1 : 0;
    case 'min':
      return Math.min(a, b);
    case 'max':
      return Math.max(a, b);
  }
}

function mkConst(value: number): IR {
  return { t: 'const', value };
}

function mkUn(op: UnOp, x: IR): IR {
  if (x.t === 'const') return mkConst(scalarUn(op, x.value));
  return { t: 'un', op, x, need: Math.max(1, needOf(x)) };
}

function mkBin(op: BinOp, a: IR, b: IR): IR {
  if (a.t === 'const' && b.t === 'const') return mkConst(scalarBin(op, a.value, b.value));
  return { t: 'bin', op, a, b, need: combinedNeed([a, b]) };
}

function mkWhere(c: IR, a: IR, b: IR): IR {
  if (c.t === 'const') return c.value !== 0 ? a : b;
  return { t: 'where', c, a, b, need: combinedNeed([c, a, b]) };
}

/** n-ary min/max: literal arguments folded into one, the rest chained largest-need first. */
function mkMinMax(op: 'min' | 'max', args: readonly IR[]): IR {
  const consts = args.filter((a) => a.t === 'const');
  const rest = args.filter((a) => a.t !== 'const').sort((x, y) => needOf(y) - needOf(x));
  let acc: IR | undefined;
  for (const a of rest) acc = acc === undefined ? a : mkBin(op, acc, a);
  if (consts.length > 0) {
    let c: IR = consts[0]!;
    for (let i = 1; i < consts.length; i++) c = mkBin(op, c, consts[i]!);
    acc = acc === undefined ? c : mkBin(op, acc, c);
  }
  return acc!;
}

function lower(ast: Ast): IR {
  switch (ast.t) {
    case 'num':
      return mkConst(ast.value);
    case 'band':
      return { t: 'band', index: ast.band - 1 };
    case 'neg':
      return mkUn('neg', lower(ast.arg));
    case 'bin':
      return mkBin(ast.op, lower(ast.left), lower(ast.right));
    case 'call': {
      const args = ast.args.map(lower);
      switch (ast.fn) {
        case 'min':
        case 'max':
          return mkMinMax(ast.fn, args);
        case 'abs':
        case 'sqrt':
        case 'log':
        case 'exp':
          return mkUn(ast.fn, args[0]!);
        case 'clamp':
          return mkBin('min', mkBin('max', args[0]!, args[1]!), args[2]!);
        case 'where':
          return mkWhere(args[0]!, args[1]!, args[2]!);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Closure tree

interface State {
  inputs: readonly Float32Array[];
  bufs: Float32Array[];
  n: number;
}

type Run = (st: State) => void;

/** A compiled node's value: a scalar, an input band, or a scratch slot filled by `run`. */
type Val =
  | { readonly k: 'const'; readonly v: number }
  | { readonly k: 'band'; readonly index: number }
  | { readonly k: 'slot'; readonly slot: number; readonly run: Run };

type Fetch = (st: State) => Float32Array;

function fetcher(v: Val): Fetch {
  if (v.k === 'band') {
    const index = v.index;
    return (st) => st.inputs[index]!;
  }
  if (v.k === 'slot') {
    const slot = v.slot;
    return (st) => st.bufs[slot]!;
  }
  throw new Error('internal: scalar has no array');
}

const NOOP: Run = () => {};

function runOf(v: Val): Run {
  return v.k === 'slot' ? v.run : NOOP;
}

/**
 * Emits the closure for `ir`, whose result goes to slot `s` (leaves use no slot). Compound
 * children are placed at s, s+1, ... in decreasing order of need and run in that order, so
 * a later child never touches an earlier child's slot.
 */
function emit(ir: IR, s: number): Val {
  switch (ir.t) {
    case 'const':
      return { k: 'const', v: ir.value };
    case 'band':
      return { k: 'band', index: ir.index };
    case 'un': {
      const x = emit(ir.x, s);
      const runX = runOf(x);
      const getX = fetcher(x);
      const kern = kernelU(ir.op);
      return {
        k: 'slot',
        slot: s,
        run: (st) => {
          runX(st);
          kern(st.bufs[s]!, getX(st), st.n);
        },
      };
    }
    case 'bin': {
      const [a, b] = emitChildren([ir.a, ir.b], s);
      const runA = runOf(a);
      const runB = runOf(b);
      // Order matters: the child in the lower slot runs first.
      const first = a.k === 'slot' && b.k === 'slot' && b.slot < a.slot ? runB : runA;
      const second = first === runA ? runB : runA;
      let run: Run;
      if (a.k !== 'const' && b.k !== 'const') {
        const kern = kernelAA(ir.op);
        const getA = fetcher(a);
        const getB = fetcher(b);
        run = (st) => {
          first(st);
          second(st);
          kern(st.bufs[s]!, getA(st), getB(st), st.n);
        };
      } else if (b.k === 'const') {
        const kern = kernelAC(ir.op);
        const getA = fetcher(a);
        const c = Math.fround(b.v);
        run = (st) => {
          runA(st);
          kern(st.bufs[s]!, getA(st), c, st.n);
        };
      } else {
        const kern = kernelCA(ir.op);
        const getB = fetcher(b);
        const c = Math.fround((a as { v: number }).v);
        run = (st) => {
          runB(st);
          kern(st.bufs[s]!, c, getB(st), st.n);
        };
      }
      return { k: 'slot', slot: s, run };
    }
    case 'where': {
      const [c, a, b] = emitChildren([ir.c, ir.a, ir.b], s);
      const runs = [c, a, b]
        .filter((v): v is Val & { k: 'slot' } => v.k === 'slot')
        .sort((x, y) => x.slot - y.slot)
        .map((v) => v.run);
      const getC = fetcher(c);
      const kern = whereKernel(a, b);
      return {
        k: 'slot',
        slot: s,
        run: (st) => {
          for (const r of runs) r(st);
          kern(st, st.bufs[s]!, getC(st));
        },
      };
    }
  }
}

function whereKernel(a: Val, b: Val): (st: State, o: Float32Array, c: Float32Array) => void {
  if (a.k !== 'const' && b.k !== 'const') {
    const getA = fetcher(a);
    const getB = fetcher(b);
    return (st, o, c) => {
      const av = getA(st);
      const bv = getB(st);
      for (let i = 0, n = st.n; i < n; i++) o[i] = c[i] !== 0 ? av[i]! : bv[i]!;
    };
  }
  if (a.k !== 'const') {
    const getA = fetcher(a);
    const bc = Math.fround((b as { v: number }).v);
    return (st, o, c) => {
      const av = getA(st);
      for (let i = 0, n = st.n; i < n; i++) o[i] = c[i] !== 0 ? av[i]! : bc;
    };
  }
  const ac = Math.fround(a.v);
  if (b.k !== 'const') {
    const getB = fetcher(b);
    return (st, o, c) => {
      const bv = getB(st);
      for (let i = 0, n = st.n; i < n; i++) o[i] = c[i] !== 0 ? ac : bv[i]!;
    };
  }
  const bc = Math.fround(b.v);
  return (st, o, c) => {
    for (let i = 0, n = st.n; i < n; i++) o[i] = c[i] !== 0 ? ac : bc;
  };
}

/** Emits children, giving compound ones consecutive slots from `s` in decreasing need. */
function emitChildren(children: readonly IR[], s: number): Val[] {
  const order = children
    .map((ir, i) => ({ ir, i, need: needOf(ir) }))
    .filter((c) => c.need > 0)
    .sort((x, y) => y.need - x.need || x.i - y.i);
  const slotOf = new Array<number>(children.length).fill(-1);
  order.forEach((c, k) => {
    slotOf[c.i] = s + k;
  });
  return children.map((ir, i) => emit(ir, slotOf[i]!));
}

// ---------------------------------------------------------------------------------------
// Public entry point

class Compiled implements CompiledExpression {
  readonly source: string;
  readonly bands: number[];
  readonly #bands: readonly number[];
  readonly #root: Val;
  readonly #slots: number;
  readonly #scratch = new Map<number, Float32Array[]>();

  constructor(source: string, bands: readonly number[], root: IR) {
    this.source = source;
    this.bands = [...bands];
    this.#bands = bands;
    this.#slots = needOf(root);
    this.#root = emit(root, 0);
  }

  evaluate(inputs: readonly Float32Array[], mask: Uint8Array, out: Float32Array): void {
    if (!(out instanceof Float32Array)) throw new TypeError('out must be a Float32Array');
    const n = out.length;
    if (!ArrayBuffer.isView(mask) || (mask as Uint8Array).length !== n) {
      throw new RangeError(`mask must be a Uint8Array of length ${n}`);
    }
    for (const band of this.#bands) {
      const input = inputs[band - 1];
      if (!(input instanceof Float32Array)) {
        throw new RangeError(`expression reads b${band} but inputs has no Float32Array at index ${band - 1}`);
      }
      if (input.length !== n) throw new RangeError(`input b${band} has length ${input.length}, expected ${n}`);
    }

    const root = this.#root;
    // A local NaN: reading the global inside the loops costs several times the loop body.
    const nan = Number.NaN;
    if (root.k === 'const') {
      const v = Math.fround(root.v);
      const value = Number.isFinite(v) ? v : nan;
      for (let i = 0; i < n; i++) out[i] = mask[i] !== 0 ? value : nan;
      return;
    }
    let result: Float32Array;
    if (root.k === 'band') {
      result = inputs[root.index]!;
    } else {
      const st: State = { inputs, bufs: this.#buffers(n), n };
      root.run(st);
      result = st.bufs[root.slot]!;
    }
    for (let i = 0; i < n; i++) {
      const v = result[i]!;
      // v - v is 0 for finite v and NaN for NaN/±Infinity.
      out[i] = mask[i] !== 0 && v - v === 0 ? v : nan;
    }
  }

  #buffers(n: number): Float32Array[] {
    let bufs = this.#scratch.get(n);
    if (bufs === undefined) {
      if (this.#scratch.size >= MAX_CACHED_SIZES) {
        this.#scratch.delete(this.#scratch.keys().next().value!);
      }
      bufs = Array.from({ length: this.#slots }, () => new Float32Array(n));
      this.#scratch.set(n, bufs);
    }
    return bufs;
  }
}

export function compileExpression(source: string, options?: { maxBands?: number }): CompiledExpression {
  if (typeof source !== 'string') throw new ExpressionError('expression must be a string at 0', 0);
  const { ast, bands } = parseExpression(source, options?.maxBands);
  return new Compiled(source.trim(), bands, lower(ast));
}
