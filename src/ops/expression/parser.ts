/**
 * Tokens -> AST, by hand-written recursive descent (no code generation from strings of any
 * kind), within the language's safety limits.
 *
 * Language
 *   b1..bN                 band N (1-based)
 *   12  1.5  .5  1e-3      numeric literals
 *   + - * /  ^             ^ is power, right-associative, tighter than unary minus (-2^2 = -4)
 *   -x  +x                 unary minus / plus
 *   < <= > >= == !=        1 or 0; chaining (a < b < c) is refused, parenthesise instead
 *   min(a,b,...) max(a,b,...) abs(x) sqrt(x) log(x) exp(x) clamp(x,lo,hi) where(c,a,b)
 * Precedence, lowest to highest: comparisons, + -, * /, unary, ^.
 *
 * Safety limits: source ≤ 2000 characters, nesting ≤ 64 levels (parentheses, function
 * calls, unary operators and exponents each count one level), ≤ 500 AST nodes, band
 * numbers ≤ 65535 (or ≤ maxBands). Names are resolved with a Map and a switch, never by
 * indexing an object with user text, so `constructor`, `__proto__`, `toString`... are
 * unknown names.
 */
import type { Ast, FnName } from './ast.js';
import { fail, quote } from './error.js';
import { describeToken, Lexer, type OpText, type Token } from './lexer.js';

const MAX_SOURCE_LENGTH = 2000;
const MAX_DEPTH = 64;
const MAX_NODES = 500;
/** TIFF SamplesPerPixel is 16-bit, so no source has more bands than this. */
const MAX_BAND = 65535;

interface FnSpec {
  readonly name: FnName;
  readonly minArgs: number;
  readonly maxArgs: number;
}

const FUNCTIONS: ReadonlyMap<string, FnSpec> = new Map<string, FnSpec>([
  ['min', { name: 'min', minArgs: 2, maxArgs: Infinity }],
  ['max', { name: 'max', minArgs: 2, maxArgs: Infinity }],
  ['abs', { name: 'abs', minArgs: 1, maxArgs: 1 }],
  ['sqrt', { name: 'sqrt', minArgs: 1, maxArgs: 1 }],
  ['log', { name: 'log', minArgs: 1, maxArgs: 1 }],
  ['exp', { name: 'exp', minArgs: 1, maxArgs: 1 }],
  ['clamp', { name: 'clamp', minArgs: 3, maxArgs: 3 }],
  ['where', { name: 'where', minArgs: 3, maxArgs: 3 }],
]);

const BAND_RE = /^b([0-9]+)$/;

function isComparison(tok: Token): tok is Token & { kind: 'op'; text: '<' | '<=' | '>' | '>=' | '==' | '!=' } {
  if (tok.kind !== 'op') return false;
  switch (tok.text) {
    case '<':
    case '<=':
    case '>':
    case '>=':
    case '==':
    case '!=':
      return true;
    default:
      return false;
  }
}

function isOp(tok: Token, text: OpText): boolean {
  return tok.kind === 'op' && tok.text === text;
}

class Parser {
  private readonly lexer: Lexer;
  private tok: Token;
  private depth = 0;
  private nodes = 0;
  readonly bands = new Set<number>();

  constructor(
    src: string,
    private readonly maxBands: number | undefined,
  ) {
    this.lexer = new Lexer(src);
    this.tok = this.lexer.next();
  }

  parse(): Ast {
    if (this.tok.kind === 'eof') fail('empty expression', this.tok.pos);
    const ast = this.comparison();
    if ((this.tok as Token).kind !== 'eof') this.unexpected();
    return ast;
  }

  private advance(): Token {
    const t = this.tok;
    this.tok = this.lexer.next();
    return t;
  }

  private unexpected(): never {
    fail(`unexpected ${describeToken(this.tok)}`, this.tok.pos);
  }

  private node<T extends Ast>(n: T, pos: number): T {
    if (++this.nodes > MAX_NODES) fail(`expression too large (more than ${MAX_NODES} nodes)`, pos);
    return n;
  }

  private enter(pos: number): void {
    if (++this.depth > MAX_DEPTH) fail(`expression nested too deeply (more than ${MAX_DEPTH} levels)`, pos);
  }

  private leave(): void {
    this.depth--;
  }

  private comparison(): Ast {
    const left = this.additive();
    const tok = this.tok;
    if (!isComparison(tok)) return left;
    this.advance();
    const right = this.additive();
    if (isComparison(this.tok)) {
      fail(`chained comparison '${this.tok.text}' (parenthesise, e.g. (a < b) ${this.tok.text} c)`, this.tok.pos);
    }
    return this.node({ t: 'bin', op: tok.text, left, right }, tok.pos);
  }

  private additive(): Ast {
    let left = this.multiplicative();
    for (;;) {
      const tok = this.tok;
      if (tok.kind !== 'op' || (tok.text !== '+' && tok.text !== '-')) return left;
      this.advance();
      const right = this.multiplicative();
      left = this.node({ t: 'bin', op: tok.text, left, right }, tok.pos);
    }
  }

  private multiplicative(): Ast {
    let left = this.unary();
    for (;;) {
      const tok = this.tok;
      if (tok.kind !== 'op' || (tok.text !== '*' && tok.text !== '/')) return left;
      this.advance();
      const right = this.unary();
      left = this.node({ t: 'bin', op: tok.text, left, right }, tok.pos);
    }
  }

  private unary(): Ast {
    const tok = this.tok;
    if (tok.kind === 'op' && (tok.text === '-' || tok.text === '+')) {
      this.advance();
      this.enter(tok.pos);
      const arg = this.unary();
      this.leave();
      return tok.text === '+' ? arg : this.node({ t: 'neg', arg }, tok.pos);
    }
    return this.power();
  }

  private power(): Ast {
    const base = this.primary();
    const tok = this.tok;
    if (!isOp(tok, '^')) return base;
    this.advance();
    this.enter(tok.pos);
    const exponent = this.unary(); // right-associative; allows 2^-1
    this.leave();
    return this.node({ t: 'bin', op: '^', left: base, right: exponent }, tok.pos);
  }

  private primary(): Ast {
    const tok = this.tok;
    switch (tok.kind) {
      case 'num':
        this.advance();
        return this.node({ t: 'num', value: tok.value }, tok.pos);
      case 'ident':
        this.advance();
        return this.identifier(tok);
      case 'op':
        if (tok.text === '(') {
          this.advance();
          this.enter(tok.pos);
          const inner = this.comparison();
          this.leave();
          if (!isOp(this.tok, ')')) {
            fail(`expected ')' to close '(' at ${tok.pos} but found ${describeToken(this.tok)}`, this.tok.pos);
          }
          this.advance();
          return inner;
        }
        return this.unexpected();
      case 'eof':
        return this.unexpected();
    }
  }

  private identifier(tok: Token & { kind: 'ident' }): Ast {
    const name = tok.text;
    const fn = FUNCTIONS.get(name);
    if (fn !== undefined) {
      if (!isOp(this.tok, '(')) fail(`function '${name}' must be called with '('`, tok.pos);
      return this.call(fn, tok.pos);
    }
    const m = BAND_RE.exec(name);
    if (m !== null) return this.node({ t: 'band', band: this.bandNumber(m[1]!, tok.pos) }, tok.pos);
    if (isOp(this.tok, '(')) fail(`unknown function ${quote(name)}`, tok.pos);
    fail(`unknown name ${quote(name)}`, tok.pos);
  }

  private bandNumber(digits: string, pos: number): number {
    if (digits.length > 1 && digits[0] === '0') fail(`invalid band reference 'b${digits}' (write b${digits.replace(/^0+/, '') || '1'})`, pos);
    if (digits.length > 6) fail(`band ${quote(`b${digits}`)} out of range`, pos);
    const band = Number(digits);
    if (band === 0) fail(`invalid band reference 'b0' (bands are numbered from b1)`, pos);
    if (this.maxBands !== undefined && band > this.maxBands) {
      fail(`band b${band} out of range (the source has ${this.maxBands} band${this.maxBands === 1 ? '' : 's'})`, pos);
    }
    if (band > MAX_BAND) fail(`band b${band} out of range (at most b${MAX_BAND})`, pos);
    this.bands.add(band);
    return band;
  }

  private call(fn: FnSpec, pos: number): Ast {
    const open = this.advance(); // '('
    this.enter(open.pos);
    const args: Ast[] = [];
    if (!isOp(this.tok, ')')) {
      for (;;) {
        args.push(this.comparison());
        if (isOp(this.tok, ',')) {
          this.advance();
          continue;
        }
        if (isOp(this.tok, ')')) break;
        fail(`expected ',' or ')' in call to ${fn.name}() but found ${describeToken(this.tok)}`, this.tok.pos);
      }
    }
    this.advance(); // ')'
    this.leave();
    if (args.length < fn.minArgs || args.length > fn.maxArgs) {
      const want = fn.maxArgs === Infinity ? `at least ${fn.minArgs} arguments` : `${fn.minArgs} argument${fn.minArgs === 1 ? '' : 's'}`;
      fail(`${fn.name}() takes ${want}, got ${args.length}`, pos);
    }
    return this.node({ t: 'call', fn: fn.name, args }, pos);
  }
}

/**
 * Parses `source` (a string) into an AST and the sorted, unique band numbers it reads.
 * The length limit is checked before anything else looks at the text.
 */
export function parseExpression(source: string, maxBands: number | undefined): { ast: Ast; bands: number[] } {
  if (source.length > MAX_SOURCE_LENGTH) {
    fail(`expression too long (${source.length} characters, limit ${MAX_SOURCE_LENGTH})`, MAX_SOURCE_LENGTH);
  }
  if (maxBands !== undefined && !(Number.isInteger(maxBands) && maxBands >= 1)) {
    throw new RangeError(`maxBands must be a positive integer, got ${String(maxBands)}`);
  }
  const parser = new Parser(source, maxBands);
  const ast = parser.parse();
  return { ast, bands: [...parser.bands].sort((x, y) => x - y) };
}
