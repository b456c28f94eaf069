/**
 * Tests for src/ops/expression/, the band-math expression language.
 *
 * Expected values are computed by hand or independently in the test (plain float64
 * arithmetic, or a small reference tree-walker that rounds to float32 after every
 * operation), never by the module under test.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileExpression } from '../src/ops/expression/compiler.js';
import { ExpressionError } from '../src/ops/expression/error.js';

/** Evaluates `source` over per-band pixel values; mask defaults to all valid. */
function run(source: string, bands: readonly (readonly number[])[] = [], mask?: readonly number[]): number[] {
  const n = bands[0]?.length ?? mask?.length ?? 1;
  const expr = compileExpression(source);
  const out = new Float32Array(n).fill(-12345);
  expr.evaluate(
    bands.map((b) => Float32Array.from(b)),
    mask ? Uint8Array.from(mask) : new Uint8Array(n).fill(1),
    out,
  );
  return [...out];
}

function one(source: string, bands: readonly number[] = []): number {
  return run(
    source,
    bands.map((v) => [v]),
  )[0]!;
}

function close(actual: number, expected: number, rel = 1e-6): void {
  if (Number.isNaN(expected)) {
    assert.ok(Number.isNaN(actual), `expected NaN, got ${actual}`);
    return;
  }
  const tol = rel * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tol, `expected ${expected}, got ${actual}`);
}

/** Asserts compileExpression throws an ExpressionError matching `message` at `position`. */
function rejects(source: string, message: RegExp, position?: number, options?: { maxBands?: number }): void {
  assert.throws(
    () => compileExpression(source, options),
    (err: unknown) => {
      assert.ok(err instanceof ExpressionError, `expected ExpressionError, got ${String(err)}`);
      assert.match(err.message, message);
      if (position !== undefined) {
        assert.equal(err.position, position, `position in: ${err.message}`);
        assert.match(err.message, new RegExp(`at ${position}\\b`));
      }
      return true;
    },
  );
}

describe('precedence and associativity', () => {
  const cases: [string, number][] = [
    ['2+3*4', 14],
    ['(2+3)*4', 20],
    ['2*3+4', 10],
    ['10-4-3', 3],
    ['10-(4-3)', 9],
    ['100/10/5', 2],
    ['100/(10/5)', 50],
    ['2^3^2', 512],
    ['(2^3)^2', 64],
    ['-2^2', -4],
    ['(-2)^2', 4],
    ['2^-1', 0.5],
    ['2^-1^2', 0.5], // 2^(-(1^2))
    ['2*3^2', 18],
    ['-3^2*2', -18],
    ['-3*-2', 6],
    ['3 - -2', 5],
    ['--3', 3],
    ['+-+3', -3],
    ['-(2+3)', -5],
    ['8/2*4', 16],
    ['1+2<4', 1],
    ['1 < 2+3', 1],
    ['2*3 == 6', 1],
    ['2*3 != 6', 0],
    ['1+1 >= 3-1', 1],
    ['4 > 2*2', 0],
    ['4 <= 2*2', 1],
    ['(1 < 2) + (3 < 2)', 1],
    ['(2 > 1) == 1', 1],
  ];
  for (const [src, want] of cases) {
    it(`${src} = ${want}`, () => {
      assert.equal(one(src), want);
    });
  }

  // The same shapes with band operands so the array kernels (not constant folding) run.
  const bandCases: [string, number][] = [
    ['b1+b2*b3', 2 + 3 * 4],
    ['(b1+b2)*b3', (2 + 3) * 4],
    ['b3-b2-b1', 4 - 3 - 2],
    ['b3/b1/b1', 4 / 2 / 2],
    ['b1^b2^b1', 512],
    ['(b1^b2)^b1', 64],
    ['-b1^2', -4],
    ['(-b1)^2', 4],
    ['b1^-b1', 0.25],
    ['-b1^b1*b2', -12],
    ['b2 - -b1', 5],
    ['b1+b2 < b3*2', 1],
    ['b1*b1 == b3', 1],
    ['b1 > b2', 0],
    ['2^b2', 8],
    ['10-b1', 8],
    ['12/b3', 3],
    ['1 < b1', 1],
    ['5 <= b3', 0],
    ['3 > b2', 0],
    ['3 >= b2', 1],
  ];
  for (const [src, want] of bandCases) {
    it(`${src} with b1=2 b2=3 b3=4 gives ${want}`, () => {
      assert.equal(one(src, [2, 3, 4]), want);
    });
  }

  it('accepts number literal forms', () => {
    assert.equal(one('1e-3*1000'), 1);
    assert.equal(one('2.5e2'), 250);
    assert.equal(one('1E+2'), 100);
    assert.equal(one('.5 + 1.5'), 2);
    assert.equal(one('2. * 3'), 6);
    assert.equal(one('007'), 7);
  });

  it('ignores whitespace', () => {
    assert.equal(one(' \t( b1\n+\r\nb2 ) *\u00a02 ', [1, 2]), 6);
    assert.equal(one('min ( b1 , b2 )', [1, 2]), 1);
  });
});

describe('NDVI', () => {
  it('matches an independent float64 computation, with masked pixels NaN', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const n = 4096;
    const red = new Float32Array(n);
    const nir = new Float32Array(n);
    const mask = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      red[i] = Math.round(rand() * 10000);
      nir[i] = Math.round(rand() * 10000);
      mask[i] = rand() < 0.1 ? 0 : 1;
    }
    red[0] = 0;
    nir[0] = 0; // 0/0
    mask[0] = 1;
    const expr = compileExpression('(b2 - b1) / (b2 + b1)');
    assert.deepEqual(expr.bands, [1, 2]);
    const out = new Float32Array(n);
    expr.evaluate([red, nir], mask, out);
    for (let i = 0; i < n; i++) {
      const r = red[i]!;
      const v = nir[i]!;
      const want = mask[i] === 0 || r + v === 0 ? NaN : (v - r) / (v + r);
      close(out[i]!, want);
    }
    assert.ok(Number.isNaN(out[0]!));
  });

  it('gives known values', () => {
    assert.deepEqual(
      run('(b2 - b1) / (b2 + b1)', [
        [1, 2, 3, 0],
        [3, 2, 1, 5],
      ]),
      [0.5, 0, -0.5, 1],
    );
  });
});

describe('non-finite results and masks', () => {
  it('division by zero gives NaN', () => {
    assert.deepEqual(
      run('b1 / b2', [
        [1, -1, 0, 6],
        [0, 0, 0, 3],
      ]).map(String),
      ['NaN', 'NaN', 'NaN', '2'],
    );
    assert.ok(Number.isNaN(one('1/0')));
    assert.ok(Number.isNaN(one('b1/0', [3])));
    assert.ok(Number.isNaN(one('0/0')));
  });

  it('other non-finite results give NaN', () => {
    assert.ok(Number.isNaN(one('log(b1)', [0])));
    assert.ok(Number.isNaN(one('log(b1)', [-1])));
    assert.ok(Number.isNaN(one('sqrt(b1)', [-4])));
    assert.ok(Number.isNaN(one('exp(b1)', [1000])));
    assert.ok(Number.isNaN(one('b1 * 1e30 * 1e30', [1]))); // float32 overflow
    assert.ok(Number.isNaN(one('(-8)^(1/3)')));
    assert.ok(Number.isNaN(one('b1', [Infinity])));
    assert.ok(Number.isNaN(one('b1 + 1', [NaN])));
  });

  it('masked pixels are NaN for band, constant and computed results', () => {
    const mask = [1, 0, 1, 0];
    const b = [[1, 2, 3, 4]];
    assert.deepEqual(run('b1', b, mask).map(String), ['1', 'NaN', '3', 'NaN']);
    assert.deepEqual(run('7', b, mask).map(String), ['7', 'NaN', '7', 'NaN']);
    assert.deepEqual(run('b1 * 2 + 1', b, mask).map(String), ['3', 'NaN', '7', 'NaN']);
    assert.deepEqual(run('log(b1 - 2)', b, mask).map(String), ['NaN', 'NaN', '0', 'NaN']);
  });

  it('any nonzero mask value is valid', () => {
    assert.deepEqual(run('b1', [[1, 2]], [255, 1]), [1, 2]);
  });
});

describe('functions and comparisons', () => {
  it('where', () => {
    assert.deepEqual(run('where(b1 > 1, b1 * 10, -1)', [[1, 2, 3]]), [-1, 20, 30]);
    assert.deepEqual(
      run('where(b1, b2, b3)', [
        [0, 1, -2],
        [5, 6, 7],
        [8, 9, 10],
      ]),
      [8, 6, 7],
    );
    assert.deepEqual(
      run('where(b1, 1, b2)', [
        [0, 1],
        [5, 6],
      ]),
      [5, 1],
    );
    assert.deepEqual(run('where(b1, 1, 2)', [[0, 3]]), [2, 1]);
    assert.deepEqual(run('where(1, b1, b2)', [[1], [2]]), [1]);
    assert.deepEqual(run('where(0, b1, b2)', [[1], [2]]), [2]);
    // cond != 0 is true for NaN, so a NaN condition picks the first branch.
    assert.deepEqual(
      run('where(b1 / b2, 1, 2)', [
        [0, 1],
        [0, 1],
      ]),
      [1, 1],
    );
  });

  it('clamp', () => {
    assert.deepEqual(run('clamp(b1, 0, 1)', [[-1, 0.5, 3, 0, 1]]), [0, 0.5, 1, 0, 1]);
    assert.deepEqual(
      run('clamp(b1, b2, b3)', [
        [5, -5, 2],
        [0, 0, 0],
        [3, 3, 3],
      ]),
      [3, 0, 2],
    );
    assert.equal(one('clamp(7, 1, 5)'), 5);
    assert.ok(Number.isNaN(one('clamp(b1, 0, 1)', [NaN])));
  });

  it('min and max', () => {
    assert.deepEqual(
      run('min(b1, b2)', [
        [1, 5],
        [3, 2],
      ]),
      [1, 2],
    );
    assert.deepEqual(
      run('max(b1, b2)', [
        [1, 5],
        [3, 2],
      ]),
      [3, 5],
    );
    assert.deepEqual(
      run('min(b1, b2, 5, 2)', [
        [1, 3, 9],
        [4, 0, 9],
      ]),
      [1, 0, 2],
    );
    assert.deepEqual(
      run('max(b1, 0, b2 * 2, -1)', [
        [1, -3, -9],
        [4, -1, -2],
      ]),
      [8, 0, 0],
    );
    assert.equal(one('min(4, 2, 8)'), 2);
    assert.equal(one('max(4, 2, 8)'), 8);
    assert.equal(one('min(3, b1)', [1]), 1);
    assert.ok(Number.isNaN(one('max(b1, 1)', [NaN])));
  });

  it('abs, sqrt, log, exp', () => {
    assert.deepEqual(run('abs(b1)', [[-2, 0, 3]]), [2, 0, 3]);
    assert.deepEqual(run('sqrt(b1)', [[0, 4, 9]]), [0, 2, 3]);
    close(one('log(b1)', [Math.E]), 1);
    close(one('exp(b1)', [1]), Math.E);
    close(one('exp(log(b1))', [5]), 5);
    close(one('log(100) / log(10)'), 2);
  });

  it('comparisons give 1 or 0', () => {
    const b = [
      [1, 2, 3],
      [2, 2, 2],
    ];
    assert.deepEqual(run('b1 < b2', b), [1, 0, 0]);
    assert.deepEqual(run('b1 <= b2', b), [1, 1, 0]);
    assert.deepEqual(run('b1 > b2', b), [0, 0, 1]);
    assert.deepEqual(run('b1 >= b2', b), [0, 1, 1]);
    assert.deepEqual(run('b1 == b2', b), [0, 1, 0]);
    assert.deepEqual(run('b1 != b2', b), [1, 0, 1]);
    assert.deepEqual(run('b1 == 2', b), [0, 1, 0]);
    assert.deepEqual(run('2 < b1', b), [0, 0, 1]);
    // Literals are float32 values when compared with pixels.
    assert.equal(one('b1 == 0.1', [0.1]), 1);
  });
});

describe('metadata', () => {
  it('bands are sorted and unique, source is trimmed', () => {
    const e = compileExpression('  b3 + b1 * b3 - where(b10 > 0, b1, b2)\n');
    assert.deepEqual(e.bands, [1, 2, 3, 10]);
    assert.equal(e.source, 'b3 + b1 * b3 - where(b10 > 0, b1, b2)');
    assert.deepEqual(compileExpression('1 + 2').bands, []);
  });

  it('maxBands bounds band references', () => {
    assert.deepEqual(compileExpression('b1 + b3', { maxBands: 3 }).bands, [1, 3]);
    rejects('b1 + b9', /^band b9 out of range \(the source has 3 bands\) at 5$/, 5, { maxBands: 3 });
    rejects('b2', /the source has 1 band\)/, 0, { maxBands: 1 });
  });

  it('error positions refer to the string as passed in', () => {
    rejects('   foo', /unknown name 'foo'/, 3);
  });
});

describe('errors', () => {
  it('unexpected tokens', () => {
    rejects('(b1 + 2))', /^unexpected '\)' at 8$/, 8);
    rejects('b1 + 2)', /^unexpected '\)' at 6$/, 6);
    rejects('()', /^unexpected '\)' at 1$/, 1);
    rejects('b1 +', /unexpected end of expression at 4/, 4);
    rejects('b1 b2', /unexpected name 'b2' at 3/, 3);
    rejects('b1 2', /unexpected number '2' at 3/, 3);
    rejects('* b1', /unexpected '\*' at 0/, 0);
    rejects('(b1 + 2', /expected '\)'.*at 7/, 7);
    rejects('min(b1 b2)', /expected ',' or '\)'.*at 7/, 7);
    rejects('min(b1,)', /unexpected '\)' at 7/, 7);
    rejects('min(,b1)', /unexpected ',' at 4/, 4);
    rejects('b1(2)', /unexpected '\(' at 2/, 2);
    rejects('', /empty expression/, 0);
    rejects('   ', /empty expression/);
  });

  it('bad characters and operators', () => {
    rejects('b1 = 2', /unexpected character '=' .*at 3/, 3);
    rejects('!b1', /unexpected character '!' .*at 0/, 0);
    rejects('b1 ** 2', /'\*\*'.*'\^'.*at 3/, 3);
    rejects('b1 % 2', /unexpected character '%' at 3/, 3);
    rejects('b1 & 1', /unexpected character '&' at 3/, 3);
    rejects('"b1"', /unexpected character '"' at 0/, 0);
    rejects('b1 + é', /unexpected character U\+00E9 at 5/, 5);
    rejects('b1\u0000', /unexpected character U\+0000 at 2/, 2);
  });

  it('malformed numbers', () => {
    rejects('1e', /malformed number '1e' at 0/, 0);
    rejects('1.2.3', /malformed number '1.2.3' at 0/, 0);
    rejects('2b1', /malformed number '2b1' at 0/, 0);
    rejects('1e999', /number '1e999' out of range at 0/, 0);
  });

  it('unknown names and functions, including prototype properties', () => {
    rejects('system(1)', /^unknown function 'system' at 0$/, 0);
    rejects('process', /^unknown name 'process' at 0$/, 0);
    rejects('b1 + x', /^unknown name 'x' at 5$/, 5);
    for (const name of ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'prototype', 'eval', 'Math', 'NaN', 'Infinity', 'B1', 'MIN']) {
      rejects(name, new RegExp(`^unknown name '${name}' at 0$`), 0);
      rejects(`${name}(1)`, new RegExp(`^unknown function '${name}' at 0$`), 0);
    }
    rejects('abs', /function 'abs' must be called with '\('/, 0);
  });

  it('band references', () => {
    rejects('b0', /invalid band reference 'b0'/, 0);
    rejects('b1 + b0', /invalid band reference 'b0'/, 5);
    rejects('b01', /invalid band reference 'b01'/, 0);
    rejects('b70000', /band b70000 out of range/, 0);
    rejects('b99999999999999999999999', /out of range/, 0);
  });

  it('function arity', () => {
    rejects('min(b1)', /min\(\) takes at least 2 arguments, got 1 at 0/, 0);
    rejects('max()', /max\(\) takes at least 2 arguments, got 0 at 0/, 0);
    rejects('abs(b1, b2)', /abs\(\) takes 1 argument, got 2 at 0/, 0);
    rejects('1 + sqrt()', /sqrt\(\) takes 1 argument, got 0 at 4/, 4);
    rejects('clamp(b1, 0)', /clamp\(\) takes 3 arguments, got 2/, 0);
    rejects('where(b1, 1, 2, 3)', /where\(\) takes 3 arguments, got 4/, 0);
  });

  it('chained comparisons are refused', () => {
    rejects('0 < b1 < 1', /chained comparison '<' .*at 7/, 7);
    assert.equal(one('(0 < b1) < 1', [0.5]), 0);
  });

  it('injection attempts', () => {
    rejects('b1; process.exit()', /^unexpected character ';' at 2$/, 2);
    rejects('b1.constructor', /^unexpected character '\.' at 2$/, 2);
    rejects('b1["constructor"]', /^unexpected character '\[' at 2$/, 2);
    rejects('constructor.constructor("return process")()', /unexpected character '\.' at 11|unknown name/);
    rejects('require("child_process")', /unknown function 'require' at 0/, 0);
    rejects('this', /unknown name 'this' at 0/, 0);
    rejects('b1 + `${process}`', /unexpected character '`' at 5/, 5);
    rejects('b1 // comment', /unexpected '\/' at 4/, 4);
    rejects('b1 => 1', /unexpected character '=' .*at 3/, 3);
    rejects('(b1, b2)', /expected '\)'.*at 3/, 3);
  });

  it('errors are ExpressionErrors with a position', () => {
    try {
      compileExpression('b1 + +)');
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof ExpressionError);
      assert.ok(err instanceof Error);
      assert.equal(err.name, 'ExpressionError');
      assert.equal(err.position, 6);
    }
  });
});

describe('limits', () => {
  it('refuses a 5000-character expression', () => {
    const src = `b1${' + b1'.repeat(999)}`;
    assert.ok(src.length > 4990);
    rejects(src, /too long \(\d+ characters, limit 2000\)/, 2000);
    rejects(' '.repeat(5000), /too long/, 2000);
    // Exactly at the limit is fine.
    const ok = `b1${' '.repeat(1998)}`;
    assert.equal(ok.length, 2000);
    assert.deepEqual(compileExpression(ok).bands, [1]);
  });

  it('refuses 200 nested parentheses, accepts 64', () => {
    rejects(`${'('.repeat(200)}b1${')'.repeat(200)}`, /nested too deeply \(more than 64 levels\) at 64/, 64);
    rejects(`${'('.repeat(65)}b1${')'.repeat(65)}`, /nested too deeply/, 64);
    assert.equal(one(`${'('.repeat(64)}b1${')'.repeat(64)}`, [3]), 3);
    rejects(`${'('.repeat(1000)}`, /nested too deeply/, 64); // the limit trips before the missing ')'
  });

  it('refuses deep nesting through functions, unary operators and exponents', () => {
    rejects(`${'abs('.repeat(100)}b1${')'.repeat(100)}`, /nested too deeply/);
    rejects(`${'-'.repeat(500)}b1`, /nested too deeply/, 64);
    rejects(`2${'^2'.repeat(100)}`, /nested too deeply/);
    assert.equal(one(`${'-'.repeat(64)}b1`, [3]), 3);
  });

  it('refuses more than 500 nodes', () => {
    // n band terms joined by + make 2n - 1 nodes.
    const sum = (terms: number) => Array.from({ length: terms }, (_, i) => `b${(i % 3) + 1}`).join('+');
    assert.equal(one(sum(250), [1, 1, 1]), 250);
    rejects(sum(251), /too large \(more than 500 nodes\)/);
    rejects(`min(${Array(600).fill('1').join(',')})`, /too large/);
  });
});

describe('evaluate', () => {
  it('reuses scratch buffers correctly across calls and sizes', () => {
    const e = compileExpression('(b1 * 2 + b2) / (b1 - b2 + 10)');
    const ref = (a: number, b: number) => {
      const v = (a * 2 + b) / (a - b + 10);
      return Number.isFinite(v) ? v : NaN;
    };
    for (const n of [5, 3, 5, 1, 7, 2, 9, 3, 0]) {
      const a = Float32Array.from({ length: n }, (_, i) => i + n);
      const b = Float32Array.from({ length: n }, (_, i) => i * n - 1);
      const out = new Float32Array(n);
      e.evaluate([a, b], new Uint8Array(n).fill(1), out);
      for (let i = 0; i < n; i++) close(out[i]!, ref(a[i]!, b[i]!));
    }
  });

  it('may write into one of its inputs and leaves inputs untouched otherwise', () => {
    const e = compileExpression('b1 * b1 + b2');
    const a = Float32Array.from([1, 2, 3]);
    const b = Float32Array.from([10, 20, 30]);
    const out = new Float32Array(3);
    e.evaluate([a, b], new Uint8Array([1, 1, 1]), out);
    assert.deepEqual([...a], [1, 2, 3]);
    assert.deepEqual([...b], [10, 20, 30]);
    assert.deepEqual([...out], [11, 24, 39]);
    e.evaluate([a, b], new Uint8Array([1, 0, 1]), a);
    assert.deepEqual([...a].map(String), ['11', 'NaN', '39']);
  });

  it('ignores input arrays for bands it does not read', () => {
    const e = compileExpression('b2 + 1');
    const out = new Float32Array(2);
    e.evaluate([new Float32Array(0), Float32Array.from([1, 2])], new Uint8Array([1, 1]), out);
    assert.deepEqual([...out], [2, 3]);
  });

  it('checks its arguments', () => {
    const e = compileExpression('b1 + b3');
    const n = 4;
    const f = () => new Float32Array(n);
    const mask = new Uint8Array(n).fill(1);
    assert.throws(() => e.evaluate([f(), f()], mask, f()), /b3/);
    assert.throws(() => e.evaluate([f(), f(), new Float32Array(3)], mask, f()), /length 3/);
    assert.throws(() => e.evaluate([f(), f(), f()], new Uint8Array(2), f()), /mask/);
    assert.throws(() => e.evaluate([f(), f(), new Float64Array(n) as unknown as Float32Array], mask, f()), /b3/);
    assert.throws(() => compileExpression('b1', { maxBands: 0 }), RangeError);
  });
});

/**
 * Random band-only expressions against a reference tree-walker. With bands as the only
 * leaves every intermediate is a float32 pixel value, so rounding to float32 after each
 * operation must reproduce the compiled result exactly. Bushy and lopsided trees exercise
 * the scratch-slot allocation.
 */
describe('random expressions against a reference evaluator', () => {
  type Node =
    | { k: 'band'; b: number }
    | { k: 'un'; f: 'neg' | 'abs' | 'sqrt' | 'log' | 'exp'; x: Node }
    | { k: 'bin'; op: string; a: Node; b: Node }
    | { k: 'call'; f: 'min' | 'max' | 'clamp' | 'where'; args: Node[] };

  const BIN = ['+', '-', '*', '/', '^', '<', '<=', '>', '>=', '==', '!='];
  const UN = ['neg', 'abs', 'sqrt', 'log', 'exp'] as const;
  const NB = 4;

  let seed = 12345;
  const rand = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

  function gen(depth: number): Node {
    if (depth === 0 || rand() < 0.15) return { k: 'band', b: 1 + Math.floor(rand() * NB) };
    const r = rand();
    if (r < 0.15) return { k: 'un', f: pick(UN), x: gen(depth - 1) };
    if (r < 0.75) return { k: 'bin', op: pick(BIN), a: gen(depth - 1), b: gen(depth - 1) };
    const f = pick(['min', 'max', 'clamp', 'where'] as const);
    const count = f === 'min' || f === 'max' ? 2 + Math.floor(rand() * 3) : 3;
    return { k: 'call', f, args: Array.from({ length: count }, () => gen(depth - 1)) };
  }

  function show(n: Node): string {
    switch (n.k) {
      case 'band':
        return `b${n.b}`;
      case 'un':
        return n.f === 'neg' ? `(-${show(n.x)})` : `${n.f}(${show(n.x)})`;
      case 'bin':
        return `(${show(n.a)} ${n.op} ${show(n.b)})`;
      case 'call':
        return `${n.f}(${n.args.map(show).join(', ')})`;
    }
  }

  function count(n: Node): number {
    switch (n.k) {
      case 'band':
        return 1;
      case 'un':
        return 1 + count(n.x);
      case 'bin':
        return 1 + count(n.a) + count(n.b);
      case 'call':
        return 1 + n.args.reduce((s, a) => s + count(a), 0);
    }
  }

  const f32 = Math.fround;
  function ref(n: Node, px: readonly number[]): number {
    switch (n.k) {
      case 'band':
        return px[n.b - 1]!;
      case 'un': {
        const x = ref(n.x, px);
        const fn = { neg: (v: number) => -v, abs: Math.abs, sqrt: Math.sqrt, log: Math.log, exp: Math.exp }[n.f];
        return f32(fn(x));
      }
      case 'bin': {
        const a = ref(n.a, px);
        const b = ref(n.b, px);
        switch (n.op) {
          case '+':
            return f32(a + b);
          case '-':
            return f32(a - b);
          case '*':
            return f32(a * b);
          case '/':
            return f32(a / b);
          case '^':
            return f32(Math.pow(a, b));
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
        }
        throw new Error(n.op);
      }
      case 'call': {
        const v = n.args.map((a) => ref(a, px));
        switch (n.f) {
          case 'min':
            return f32(Math.min(...v));
          case 'max':
            return f32(Math.max(...v));
          case 'clamp':
            return f32(Math.min(Math.max(v[0]!, v[1]!), v[2]!));
          case 'where':
            return v[0] !== 0 ? v[1]! : v[2]!;
        }
      }
    }
  }

  it('agree exactly on 300 random expressions', () => {
    const n = 64;
    const inputs = Array.from({ length: NB }, () =>
      Float32Array.from({ length: n }, () => {
        const r = rand();
        return r < 0.1 ? 0 : r < 0.2 ? -1 : r < 0.25 ? 2 : Math.round((rand() * 8 - 3) * 4) / 4;
      }),
    );
    const mask = Uint8Array.from({ length: n }, () => (rand() < 0.1 ? 0 : 1));
    const out = new Float32Array(n);
    let tested = 0;
    while (tested < 300) {
      const tree = gen(2 + Math.floor(rand() * 6));
      if (count(tree) > 500) continue;
      const src = show(tree);
      if (src.length > 2000) continue;
      const e = compileExpression(src);
      e.evaluate(inputs, mask, out);
      for (let i = 0; i < n; i++) {
        const v = ref(
          tree,
          inputs.map((b) => b[i]!),
        );
        const want = mask[i] === 0 || !Number.isFinite(v) ? NaN : v;
        assert.ok(Object.is(out[i], want) || (want === 0 && out[i] === 0), `${src} pixel ${i}: got ${out[i]}, want ${want}`);
      }
      tested++;
    }
  });
});

describe('source safety', () => {
  it('src/ops/expression/ uses no dynamic code evaluation', () => {
    let dir = dirname(fileURLToPath(import.meta.url));
    while (!existsSync(join(dir, 'package.json'))) {
      const parent = dirname(dir);
      assert.notEqual(parent, dir, 'package.json not found above the test file');
      dir = parent;
    }
    const folder = join(dir, 'src', 'ops', 'expression');
    const files = readdirSync(folder).filter((f) => f.endsWith('.ts'));
    assert.ok(files.includes('compiler.ts'), 'read the wrong folder');
    assert.ok(readFileSync(join(folder, 'compiler.ts'), 'utf8').includes('export function compileExpression'), 'read the wrong file');
    for (const file of files) {
      const text = readFileSync(join(folder, file), 'utf8');
      assert.ok(!text.includes('eval('), `${file} contains eval(`);
      assert.ok(!text.includes('Function('), `${file} contains Function(`);
      assert.doesNotMatch(text, /\beval\b/, file);
      assert.doesNotMatch(text, /\bFunction\b/, file);
      assert.doesNotMatch(text, /\bimport\s*\(|\brequire\s*\(|\bglobalThis\b|\bvm\b/, file);
    }
  });
});
