/**
 * The kernels of src/kernels.ts against their references: the WebAssembly ones
 * (assembly/kernels.ts) against the JavaScript loops (src/sources/codecs/predictor.ts,
 * src/sources/sample.ts), and libdeflate against Node's zlib: byte for byte, on random blocks of
 * every layout a kernel takes (row lengths that are and are not a whole number of vectors,
 * one-pixel rows, one-row blocks), and on every block of GDAL's decode fixtures, decoded once
 * each way. test/decode.test.ts separately holds the default (fast) path to GDAL's pixels.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { deflateRawSync, deflateSync, inflateSync } from 'node:zlib';
import {
  copyRows,
  deflateRuns,
  deflateZlib,
  floatingPoint32,
  horizontal,
  indexRows,
  inflateInto,
  levelCoords,
  normalizedDifference as normalizedDifferenceKernel,
  ramp,
  rgbUpRows,
  validity as validityKernel,
  kernelsInUse,
  MAX_KERNEL_BYTES,
  RUNS_BLOCK,
  useKernels,
} from '../src/kernels.js';
import { Cog } from '../src/sources/cog.js';
import { sampleWindow, type Resampling, type Window } from '../src/sources/sample.js';
import { readWindow } from '../src/sources/window.js';
import { FileSource } from '../src/sources/bytesource.js';
import { indexedPng, indexedPngOfCodes, rgbaPng } from '../src/render/png.js';
import { codeLengths, deflateRunsReference } from '../src/render/runs.js';
import { buildOperator } from '../src/ops/registry.js';
import { bandRaster, type RgbaRaster, type TableCodes, type TileContext } from '../src/ops/raster.js';
import { decodeBlock } from '../src/sources/codecs/block.js';
import { inflate } from '../src/sources/codecs/deflate.js';
import { NATIVE_LE, undoFloatingPointPredictor, undoHorizontalPredictor } from '../src/sources/codecs/predictor.js';
import { blocksAcross, blocksDown, readTiff } from '../src/sources/tiff.js';
import { PlanarConfiguration, Predictor } from '../src/sources/types.js';
import { tileBounds } from '../src/tiles/mercator.js';
import { levelExtent, planRead, toWindow, type PlanSource, type ReadPlan } from '../src/tiles/plan.js';
import { ROOT } from './helpers/root.js';

/** A deterministic generator, so a failure names a block that can be made again. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function randomBytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const next = random(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() * 256) | 0;
  return out;
}

/** The first byte where two arrays differ, or -1. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Whether two Float32 arrays hold the same bits, a NaN matching any NaN; else the first index that differs. */
function firstFloatDifference(a: Float32Array, b: Float32Array): number {
  const ab = new Uint32Array(a.buffer, a.byteOffset, a.length),
    bb = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (ab[i] !== bb[i] && !(a[i] !== a[i] && b[i] !== b[i])) return i;
  return -1;
}

/** `f` under KERNELS=reference, then under fast (only the `only` part switched), the setting put back each time. */
function eachWay<T>(f: () => T, only?: 'wasm' | 'inflate'): [reference: T, fast: T] {
  const run = (kind: 'reference' | 'fast') => {
    useKernels(kind, only);
    try {
      return f();
    } finally {
      useKernels('fast');
    }
  };
  return [run('reference'), run('fast')];
}

/** `eachWay` for work that awaits: one after the other, since the setting is the thread's. */
async function eachWayAsync<T>(f: () => Promise<T>, only?: 'wasm' | 'inflate'): Promise<[reference: T, fast: T]> {
  const run = async (kind: 'reference' | 'fast') => {
    useKernels(kind, only);
    try {
      return await f();
    } finally {
      useKernels('fast');
    }
  };
  return [await run('reference'), await run('fast')];
}

const WIDTHS = [1, 3, 4, 5, 15, 16, 17, 31, 64, 255, 256, 257, 512];
const HEIGHTS = [1, 2, 7];

describe('WebAssembly kernels equal their JavaScript references', () => {
  test('Predictor 3, Float32, one sample a pixel: every row length, in place and into another buffer', () => {
    assert.ok(NATIVE_LE);
    let seed = 1;
    for (const width of WIDTHS) {
      for (const height of HEIGHTS) {
        const raw = randomBytes(width * height * 4, seed++);
        const expected = new Uint8Array(raw.length);
        undoFloatingPointPredictor(new Uint8Array(raw), expected, width, height, 1, 4);

        const into = new Uint8Array(raw.length);
        assert.equal(floatingPoint32(new Uint8Array(raw), into, width, height), true);
        assert.equal(firstDifference(into, expected), -1, `${width}x${height} into another buffer`);

        const inPlace = new Uint8Array(raw);
        assert.equal(floatingPoint32(inPlace, inPlace, width, height), true);
        assert.equal(firstDifference(inPlace, expected), -1, `${width}x${height} in place`);
      }
    }
  });

  test('Predictor 2: 8, 16 and 32-bit samples, one, two and four a pixel', () => {
    let seed = 1000;
    for (const bytes of [1, 2, 4]) {
      for (const stride of [1, 2, 4]) {
        for (const width of WIDTHS) {
          for (const height of HEIGHTS) {
            const rowLen = width * stride;
            const raw = randomBytes(rowLen * height * bytes, seed++);
            const expected = new Uint8Array(raw.length);
            undoHorizontalPredictor(new Uint8Array(raw), expected, bytes, rowLen, height, stride);
            const got = new Uint8Array(raw);
            assert.equal(horizontal(got, got, bytes, rowLen, height, stride), true, `${bytes}-byte samples, ${stride} a pixel`);
            assert.equal(firstDifference(got, expected), -1, `${bytes}-byte samples, ${stride} a pixel, ${width}x${height}`);
          }
        }
      }
    }
  });

  test('separable resampling: every output float and the mask, bilinear, cubic and nearest, up and down, partly outside the window', () => {
    const next = random(42);
    let cases = 0;
    for (const method of ['bilinear', 'cubic', 'nearest'] as Resampling[]) {
      // Upsampling (2 taps), about 1:1, and downsampling by up to 3.5 (widened kernels of up to 14 taps).
      for (const scale of [0.37, 0.5, 1, 1.2, 1.9, 2.6, 3.5]) {
        // Cubic without downsampling falls back to bilinear near invalid pixels: not separable.
        if (method === 'cubic' && scale < 1 / 0.95) continue;
        for (const W of [256, 37]) {
          const ww = Math.ceil(W * scale) + 8 + Math.floor(next() * 9);
          const wh = Math.ceil(W * scale) + 8 + Math.floor(next() * 9);
          const bands = [0, 1].map(() => {
            const b = new Float32Array(ww * wh);
            // Elevations, extremes, and zeros of both signs.
            for (let i = 0; i < b.length; i++) {
              const r = next();
              b[i] = r < 0.05 ? -0 : r < 0.1 ? 0 : r < 0.12 ? 3.4e38 * (next() - 0.5) : (next() - 0.3) * 9000;
            }
            return b;
          });
          const win: Window = { width: ww, height: wh, bands, valid: new Uint8Array(ww * wh).fill(1), allValid: true };
          // The first output rows and columns fall outside the window.
          const sep = { u0: -3.3 + next() * 2, du: scale, v0: -2.1 + next() * 1.5, dv: scale };
          const [js, wasm] = eachWay(() => {
            const out = { bands: [new Float32Array(W * W).fill(7), new Float32Array(W * W).fill(7)], mask: new Uint8Array(W * W) };
            sampleWindow(win, () => assert.fail('separable needs no coordinates'), method, scale, scale, out, sep);
            return out;
          });
          const what = `${method} at scale ${scale}, ${W}x${W} from ${ww}x${wh}`;
          assert.equal(firstDifference(wasm.mask, js.mask), -1, what);
          assert.ok(js.mask.includes(1) && js.mask.includes(0), `${what}: drawn and undrawn pixels`);
          for (let b = 0; b < 2; b++) {
            // Undrawn pixels are nobody's business; drawn ones must be the same floats.
            for (let k = 0; k < W * W; k++) {
              if (js.mask[k]) continue;
              js.bands[b]![k] = 0;
              wasm.bands[b]![k] = 0;
            }
            const d = firstDifference(new Uint8Array(wasm.bands[b]!.buffer), new Uint8Array(js.bands[b]!.buffer));
            assert.equal(d, -1, `${what}, band ${b}: pixel ${d >> 2}: ${wasm.bands[b]![d >> 2]} against ${js.bands[b]![d >> 2]}`);
          }
          cases++;
        }
      }
    }
    assert.equal(cases, 36);
  });

  test('the widened bilinear kernel on a reprojected grid: every output float and the mask, one and two bands, edges and pixels off the window', () => {
    const next = random(7);
    let cases = 0;
    for (const nb of [1, 2]) {
      for (const scale of [1.06, 1.3, 1.7, 2]) {
        const W = 256;
        const ww = Math.ceil(W * scale * 0.9),
          wh = Math.ceil(W * scale * 0.8);
        const bands = Array.from({ length: nb }, () => {
          const b = new Float32Array(ww * wh);
          for (let i = 0; i < b.length; i++) {
            const r = next();
            b[i] = r < 0.05 ? -0 : r < 0.07 ? 3.4e38 * (next() - 0.5) : (next() - 0.2) * 12000;
          }
          return b;
        });
        const win: Window = { width: ww, height: wh, bands, valid: new Uint8Array(ww * wh).fill(1), allValid: true };
        // A rotated, slightly curved grid that runs off the window on two sides, and a few NaNs.
        const u = new Float32Array(W * W),
          v = new Float32Array(W * W);
        const angle = 0.05 + next() * 0.1;
        for (let j = 0; j < W; j++) {
          for (let i = 0; i < W; i++) {
            const k = j * W + i;
            u[k] = -4 + scale * (i * Math.cos(angle) - j * Math.sin(angle) * 0.3) + 1e-4 * j * j;
            v[k] = -3 + scale * (j * Math.cos(angle) + i * Math.sin(angle) * 0.3) + 1e-4 * i * i;
            if (next() < 0.001) u[k] = NaN;
          }
        }
        const [js, wasm] = eachWay(() => {
          const out = { bands: Array.from({ length: nb }, () => new Float32Array(W * W).fill(7)), mask: new Uint8Array(W * W) };
          sampleWindow(win, () => ({ u, v }), 'bilinear', scale, scale, out);
          return out;
        });
        const what = `${nb} band(s) at scale ${scale}`;
        assert.equal(firstDifference(wasm.mask, js.mask), -1, what);
        assert.ok(js.mask.includes(1) && js.mask.includes(0), `${what}: drawn and undrawn pixels`);
        for (let b = 0; b < nb; b++) {
          const d = firstDifference(new Uint8Array(wasm.bands[b]!.buffer), new Uint8Array(js.bands[b]!.buffer));
          assert.equal(d, -1, `${what}, band ${b}: pixel ${d >> 2}: ${wasm.bands[b]![d >> 2]} against ${js.bands[b]![d >> 2]}`);
        }
        cases++;
      }
    }
    assert.equal(cases, 8);
  });

  test('the validity pass: the same mask and count on windows of real COGs, NaN and nodata, one band and two, and on random floats', async () => {
    const next = random(31);
    // Random floats with NaNs, the nodata value, and zeros of both signs, at lengths around the vector width.
    for (const n of [1, 15, 16, 17, 1000, 4099]) {
      const bands = [0, 1].map(() => new Float32Array(n).map(() => [NaN, 5.5, 0, -0, 3.4e38, next() * 100][Math.floor(next() * 6)]!));
      for (const [nodata, nb] of [
        [NaN, 1],
        [5.5, 1],
        [0, 2],
        [NaN, 2],
      ] as const) {
        const valid = new Uint8Array(n).fill(9);
        const invalid = validityKernel(bands.slice(0, nb), n, nodata, valid);
        let expected = 0;
        for (let k = 0; k < n; k++) {
          const ok = bands.slice(0, nb).every((b) => !Number.isNaN(b[k]!) && b[k] !== nodata) ? 1 : 0;
          assert.equal(valid[k], ok, `${n} pixels, nodata ${nodata}, ${nb} band(s): pixel ${k}`);
          expected += 1 - ok;
        }
        assert.equal(invalid, expected);
      }
    }
    // Windows of the shipped COGs, read both ways.
    for (const [file, nodatas] of [
      ['srtm_jasper_ab_100m.tif', [null, 1500]],
      ['landsat8_zion_20150818_b4_red.tif', [null, 65535, 7000]],
    ] as const) {
      const cog = await Cog.open(join(ROOT, 'layers/data', file));
      try {
        const { width, height } = cog.meta.levels[0]!.image;
        for (let i = 0; i < 6; i++) {
          const x0 = Math.floor(next() * (width - 300)),
            y0 = Math.floor(next() * (height - 300));
          const win: [number, number, number, number] = [x0, y0, x0 + 37 + Math.floor(next() * 260), y0 + 11 + Math.floor(next() * 260)];
          for (const nodata of nodatas) {
            for (const bands of [[0], [0, 0]]) {
              const [js, wasm] = await eachWayAsync(async () => {
                const w = await readWindow(cog, 0, win, bands, nodata ?? cog.meta.nodata);
                return { valid: w.valid.slice(0, w.width * w.height), allValid: w.allValid };
              }, 'wasm');
              const what = `${file} ${win.join(',')} nodata ${nodata} bands ${bands.length}`;
              assert.equal(firstDifference(wasm.valid, js.valid), -1, what);
              assert.equal(wasm.allValid, js.allValid, what);
            }
          }
        }
      } finally {
        await cog.close();
      }
    }
  });

  test('two bands of pixel-interleaved 16-bit samples: the same window floats, two, three and four samples a pixel, signed and not, across blocks', async () => {
    const decode = join(ROOT, 'test/fixtures/out/decode');
    const tmp = mkdtempSync(join(tmpdir(), 'tilegraph-two-bands-'));
    try {
      // GDAL's decode fixtures, georeferenced, in blocks that the rasters' edges cut: tiles of 32
      // or strips of 7 rows, with 2, 3 and 4 samples a pixel (as a 4-band scene).
      const write = (src: string, bands: number[], blocks: string[], name: string) => {
        const out = join(tmp, name);
        const picks = bands.flatMap((b) => ['-b', String(b)]);
        execFileSync('gdal_translate', [
          '-q',
          ...picks,
          '-a_srs',
          'EPSG:3857',
          '-a_ullr',
          '0',
          '3000',
          '3000',
          '0',
          ...blocks,
          '-co',
          'INTERLEAVE=PIXEL',
          '-co',
          'COMPRESS=DEFLATE',
          join(decode, src),
          out,
        ]);
        return out;
      };
      const tiles = ['-co', 'TILED=YES', '-co', 'BLOCKXSIZE=32', '-co', 'BLOCKYSIZE=32'];
      const strips = ['-co', 'BLOCKYSIZE=7'];
      const files = [
        write('noise-UInt16-deflate-p2-strip1-pixel-le.tif', [1, 2], tiles, 'two-u16.tif'),
        write('noise-UInt16-deflate-p2-strip1-pixel-le.tif', [2, 1], strips, 'two-u16-strips.tif'),
        write('UInt16-deflate-p2-tiled-pixel-le.tif', [1, 2, 3], tiles, 'three-u16.tif'),
        write('Int16-deflate-p2-tiled-pixel-le.tif', [1, 2, 3], strips, 'three-i16.tif'),
        write('noise-UInt16-deflate-p2-strip1-pixel-le.tif', [1, 2, 2, 1], tiles, 'four-u16.tif'),
        write('Int16-deflate-p2-tiled-pixel-le.tif', [1, 2, 3, 1], tiles, 'four-i16.tif'),
      ];
      const next = random(47);
      for (const file of files) {
        const cog = await Cog.open(file);
        try {
          const { width, height, samplesPerPixel } = cog.meta.levels[0]!.image;
          const pairs = [
            [0, 1],
            [1, 0],
            [samplesPerPixel - 1, 0],
            [1, 1],
          ];
          for (let i = 0; i < 8; i++) {
            // The whole raster, then windows of 1 to 90 pixels a side that start and end inside blocks.
            const x0 = i === 0 ? 0 : Math.floor(next() * (width - 1)),
              y0 = i === 0 ? 0 : Math.floor(next() * (height - 1));
            const x1 = i === 0 ? width : Math.min(width, x0 + 1 + Math.floor(next() * 90)),
              y1 = i === 0 ? height : Math.min(height, y0 + 1 + Math.floor(next() * 90));
            for (const bands of pairs) {
              // Without nodata, and with the window's first value as nodata: the validity the kernel checks as it goes.
              const first = (await readWindow(cog, 0, [x0, y0, x1, y1], bands, null)).bands[0]![0]!;
              for (const nodata of [null, first]) {
                const [js, wasm] = await eachWayAsync(async () => {
                  const w = await readWindow(cog, 0, [x0, y0, x1, y1], bands, nodata);
                  const floats = w.bands.map((b) => new Uint8Array(b.buffer, b.byteOffset, w.width * w.height * 4).slice());
                  return { floats, valid: w.valid.slice(0, w.width * w.height), allValid: w.allValid };
                }, 'wasm');
                const where = `${file} [${x0}, ${y0}, ${x1}, ${y1}] bands ${bands.join(',')} nodata ${nodata}`;
                for (const b of [0, 1]) assert.equal(firstDifference(wasm.floats[b]!, js.floats[b]!), -1, `${where}: band ${b}`);
                assert.equal(firstDifference(wasm.valid, js.valid), -1, `${where}: validity`);
                assert.equal(wasm.allValid, js.allValid, `${where}: all valid`);
                if (nodata !== null) assert.equal(js.valid[0], 0, `${where}: the first pixel is nodata`);
              }
            }
          }
        } finally {
          await cog.close();
        }
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("a colour ramp: the same colours and codes, named palettes and stops, NaN, infinities, masked pixels and values on the entries' edges", () => {
    let seed = 9000;
    const ramps: Record<string, unknown>[] = [
      { name: 'viridis', range: [950, 2600] },
      { name: 'terrain', range: [-1, 1], reverse: true },
      { name: 'magma', range: [10, -10] },
      {
        stops: [
          [950, '#2b6b3a'],
          [1500, '#d8c98a'],
          [2600, '#ffffff'],
        ],
      },
    ];
    for (const params of ramps)
      // 520 x 520 pixels go through the kernel in two parts.
      for (const size of [1, 3, 5, 17, 256, 300, 520]) {
        const op = buildOperator('colormap', params, { sources: new Map(), inputs: 1 });
        const [lo, hi] = (params.range as [number, number] | undefined) ?? [950, 2600];
        const ctx: TileContext = { z: 0, x: 0, y: 0, size, buffer: 0, bounds: [0, 0, 1, 1] };
        const last = (op.apply([bandRaster(1, 1, 1)], ctx) as RgbaRaster).codes!.lut.length - 1;
        const rand = random(seed++);
        const r = bandRaster(size, size, 1);
        const band = r.bands[0]!;
        // A Float32 value next to `v`, `ulps` representable values away.
        const bits = new Float32Array(1),
          asInt = new Int32Array(bits.buffer);
        const beside = (v: number, ulps: number) => {
          bits[0] = v;
          asInt[0]! += v < 0 ? -ulps : ulps;
          return bits[0]!;
        };
        for (let i = 0; i < band.length; i++) {
          const u = rand();
          // A third of the values on or a few floats from where one entry gives way to the next.
          const edge = beside(lo + ((Math.floor(rand() * (last + 2)) - 0.5) * (hi - lo)) / last, Math.floor(rand() * 5) - 2);
          band[i] = u < 0.02 ? NaN : u < 0.03 ? Infinity : u < 0.04 ? -Infinity : u < 0.37 ? edge : lo - (hi - lo) * 0.2 + rand() * (hi - lo) * 1.4;
          r.mask[i] = rand() < 0.05 ? 0 : rand() < 0.5 ? 1 : 255;
        }
        const fast = op.apply([r], ctx) as RgbaRaster;
        useKernels('reference', 'wasm');
        let reference: RgbaRaster;
        try {
          reference = op.apply([r], ctx) as RgbaRaster;
        } finally {
          useKernels('fast', 'wasm');
        }
        const what = `${JSON.stringify(params)}, ${size}x${size}`;
        const n = size * size;
        assert.equal(firstDifference(fast.data.subarray(0, n * 4), reference.data.subarray(0, n * 4)), -1, `${what}: colours`);
        const codes = (x: RgbaRaster) => new Uint8Array(x.codes!.index.buffer, x.codes!.index.byteOffset, n * 2);
        assert.equal(firstDifference(codes(fast), codes(reference)), -1, `${what}: codes`);
        assert.ok(
          reference.data.some((b) => b !== 0),
          `${what}: colours drawn`,
        );
      }
    // And the kernel did run, and declines when the kernels are off.
    const args = [new Float32Array(8).fill(1), new Uint8Array(8).fill(1), 8, 0, 1, new Uint32Array(4).fill(7), new Uint32Array(8), new Uint16Array(8)] as const;
    assert.equal(ramp(...args), true);
    assert.deepEqual([...args[6]], Array(8).fill(7));
    useKernels('reference', 'wasm');
    try {
      assert.equal(ramp(...args), false);
    } finally {
      useKernels('fast', 'wasm');
    }
  });

  test('a normalized difference: the same values and mask, from two inputs and from two bands of one, zero and NaN sums, infinities and masked pixels', () => {
    let seed = 9500;
    for (const size of [1, 3, 5, 17, 256, 300]) {
      for (const params of [{}, { bands: [3, 1] }]) {
        const rand = random(seed++);
        const n = size * size;
        const value = () => {
          const u = rand();
          return u < 0.02 ? NaN : u < 0.03 ? Infinity : u < 0.04 ? -Infinity : u < 0.06 ? 0 : u < 0.07 ? -0 : u < 0.08 ? 1e-45 : (rand() - 0.3) * 20000;
        };
        const rasters = (params.bands ? [3] : [1, 1]).map((count) => {
          const r = bandRaster(size, size, count);
          for (const band of r.bands) for (let i = 0; i < n; i++) band[i] = value();
          for (let i = 0; i < n; i++) r.mask[i] = rand() < 0.05 ? 0 : rand() < 0.5 ? 1 : 255;
          return r;
        });
        // A few sums of exactly 0: b = -a.
        const [a, b] = params.bands ? [rasters[0]!.bands[2]!, rasters[0]!.bands[0]!] : [rasters[0]!.bands[0]!, rasters[1]!.bands[0]!];
        for (let i = 0; i < n; i += 7) b[i] = -a[i]!;
        const op = buildOperator('normalized_difference', params, { sources: new Map(), inputs: rasters.length });
        const ctx: TileContext = { z: 0, x: 0, y: 0, size, buffer: 0, bounds: [0, 0, 1, 1] };
        const [js, wasm] = eachWay(() => op.apply(rasters, ctx) as ReturnType<typeof bandRaster>, 'wasm');
        const what = `${JSON.stringify(params)}, ${size}x${size}`;
        assert.equal(firstDifference(wasm.mask, js.mask), -1, `${what}: mask`);
        const d = firstDifference(new Uint8Array(wasm.bands[0]!.buffer, 0, n * 4), new Uint8Array(js.bands[0]!.buffer, 0, n * 4));
        assert.equal(d, -1, `${what}: pixel ${d >> 2}: ${wasm.bands[0]![d >> 2]} against ${js.bands[0]![d >> 2]}`);
        if (n > 100) assert.ok(js.mask.includes(0) && js.mask.includes(1) && js.mask.includes(255), `${what}: drawn and masked pixels`);
      }
    }
    // The kernel runs, and declines when the kernels are off.
    const out = new Float32Array(4);
    assert.equal(normalizedDifferenceKernel(new Float32Array([3, 1, 2, 0]), new Float32Array([1, 1, -2, 0]), new Uint8Array([1, 1, 1, 1]), out), true);
    assert.deepEqual([...out], [0.5, 0, 0, 0]);
    useKernels('reference', 'wasm');
    try {
      assert.equal(normalizedDifferenceKernel(new Float32Array(4), new Float32Array(4), new Uint8Array(4), out), false);
    } finally {
      useKernels('fast', 'wasm');
    }
  });

  test("an indexed PNG's scanlines from colour-map codes: the same PNG, ramp and classes, every tile size, past 256 colours and past the table", () => {
    let seed = 5000;
    const both = (codes: TableCodes, size: number) => {
      const fast = (() => {
        try {
          return indexedPngOfCodes(codes, size);
        } catch (err) {
          return err as Error;
        }
      })();
      useKernels('reference', 'wasm');
      try {
        return { fast, reference: indexedPngOfCodes(codes, size) };
      } catch (err) {
        return { fast, reference: err as Error };
      } finally {
        useKernels('fast', 'wasm');
      }
    };
    for (const size of [1, 3, 16, 17, 255, 256, 512])
      for (const [entries, colours] of [
        [8, 8],
        [4096, 200],
        [600, 300],
      ] as const)
        for (const ordered of [true, false]) {
          const rand = random(seed++);
          const lut = Uint32Array.from({ length: entries }, (_, k) => (k % colours) * 0x010203 + (k % 5 === 0 ? 0x80000000 : 0xff000000));
          const index = new Uint16Array(size * size);
          for (let i = 0, c = 0; i < index.length; i++) {
            if (rand() < 0.3) c = Math.floor(rand() * (entries + 1));
            index[i] = c;
          }
          const { fast, reference } = both({ index, lut, ordered }, size);
          const what = `${size}x${size}, ${entries} entries of ${colours} colours, ordered ${ordered}`;
          if (reference === null || fast === null) assert.equal(fast, reference, `${what}: both give up`);
          else {
            assert.ok(fast instanceof Uint8Array && reference instanceof Uint8Array, what);
            assert.equal(firstDifference(fast, reference), -1, what);
          }
        }
    // A code past the table: the same refusal both ways.
    const index = new Uint16Array(256 * 256).fill(3);
    index[777] = 65535;
    const { fast, reference } = both({ index, lut: new Uint32Array(8).fill(0xff0000ff), ordered: true }, 256);
    assert.ok(fast instanceof Error && reference instanceof Error);
    assert.equal(fast.message, reference.message);
    assert.match(fast.message, /code 65535 past the 8 entries/);
    // And the kernel did run.
    assert.ok(indexRows(index.fill(1), 256, 2, () => new Uint8Array(2)) instanceof Uint8Array);
  });

  test("an opaque tile's RGB scanlines, each row less the one above: the same PNG, every tile size, and RGBA where one pixel is not opaque", () => {
    let seed = 7000;
    const both = (rgba: Uint8Array, size: number) => {
      const fast = rgbaPng(rgba, size);
      useKernels('reference', 'wasm');
      try {
        return { fast, reference: rgbaPng(rgba, size) };
      } finally {
        useKernels('fast', 'wasm');
      }
    };
    for (const size of [1, 3, 4, 5, 16, 17, 255, 256, 512])
      for (const translucent of [-1, 0, 3, size * size - 1]) {
        if (translucent >= size * size) continue;
        const rgba = randomBytes(size * size * 4, seed++);
        for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
        if (translucent >= 0) rgba[translucent * 4 + 3] = 128;
        const { fast, reference } = both(rgba, size);
        const what = `${size}x${size}${translucent >= 0 ? `, pixel ${translucent} translucent` : ', opaque'}`;
        assert.ok(fast && reference, what);
        assert.equal(fast[25], translucent >= 0 ? 6 : 2, `${what}: colour type`);
        assert.equal(firstDifference(fast, reference), -1, what);
      }
    // And the kernel did run.
    assert.ok(rgbUpRows(new Uint8Array(64 * 64 * 4).fill(255), 64) instanceof Uint8Array);
    assert.equal(rgbUpRows(new Uint8Array(64 * 64 * 4).fill(254), 64), null);
  });

  test('rows copied natively to and from shared memory: the same bytes as a loop, any offset and stride; a range past a view copies nothing', () => {
    const next = random(11000);
    for (const [shared, rows, rowBytes, srcStride, dstStride] of [
      [false, 1, 1, 1, 1],
      [true, 1, 4096, 4096, 4096],
      [true, 7, 13, 20, 17],
      [false, 16, 64, 512, 64],
      [true, 300, 1200, 2048, 1200],
    ] as const) {
      const srcAt = Math.floor(next() * 9),
        dstAt = Math.floor(next() * 9);
      const srcBytes = srcAt + (rows - 1) * srcStride + rowBytes,
        dstBytes = dstAt + (rows - 1) * dstStride + rowBytes + 5;
      const src = new Uint8Array(shared ? new SharedArrayBuffer(srcBytes) : new ArrayBuffer(srcBytes));
      src.set(randomBytes(srcBytes, rows * 31 + rowBytes));
      const dst = new Uint8Array(shared ? new SharedArrayBuffer(dstBytes) : new ArrayBuffer(dstBytes)).fill(7);
      const want = new Uint8Array(dst);
      for (let r = 0; r < rows; r++) for (let b = 0; b < rowBytes; b++) want[dstAt + r * dstStride + b] = src[srcAt + r * srcStride + b]!;
      assert.equal(copyRows(dst, dstAt, dstStride, src, srcAt, srcStride, rowBytes, rows), true);
      assert.equal(firstDifference(new Uint8Array(dst), want), -1, `${rows} rows of ${rowBytes} bytes, shared ${shared}`);
      // Past the end of either view: refused before a byte moves.
      const before = new Uint8Array(dst);
      assert.throws(() => copyRows(dst, dstAt, dstStride, src, srcAt + 1, srcStride, rowBytes, rows), /past the end of a view/);
      assert.throws(() => copyRows(dst, dstBytes - rowBytes + 1, 0, src, 0, 0, rowBytes, 1), /past the end of a view/);
      assert.throws(() => copyRows(dst, -1, 0, src, 0, 0, 1, 1), /whole numbers/);
      assert.equal(firstDifference(new Uint8Array(dst), before), -1);
    }
    // Float32 views: offsets and strides stay in bytes from each view's start.
    const floats = new Float32Array(new SharedArrayBuffer(40), 4, 8).map((_, k) => k + 0.5);
    const out = new Float32Array(8);
    assert.equal(copyRows(out, 4, 8, floats, 0, 8, 4, 2), true);
    assert.deepEqual([...out], [0, 0.5, 0, 2.5, 0, 0, 0, 0]);
    useKernels('reference');
    try {
      assert.equal(copyRows(new Uint8Array(4), 0, 4, new Uint8Array(4), 0, 4, 4, 1), false);
    } finally {
      useKernels('fast');
    }
  });

  test("a reprojected read's coordinates on a level: the loops' extent and Float32 window coordinates, with NaN and infinite points, any length, and copied again after another kernel", () => {
    const next = random(11);
    let cases = 0;
    for (const n of [1, 2, 3, 4, 5, 7, 255, 256, 4097, 257 * 257]) {
      for (const holes of [0, 0.01, 0.5, 1]) {
        const fu = new Float64Array(n),
          fv = new Float64Array(n);
        for (let k = 0; k < n; k++) {
          fu[k] = (next() - 0.3) * 9000 + k * 0.37;
          fv[k] = (next() - 0.6) * 7000 - k * 0.11;
          const r = next();
          if (r < holes) {
            if (next() < 0.5) fu[k] = NaN;
            else fv[k] = NaN;
          } else if (r < holes + 0.002) fu[k] = next() < 0.5 ? Infinity : -Infinity;
        }
        for (const [kx, ky] of [
          [1, 1],
          [0.25, 0.5],
          [1 / 3, 1 / 7],
        ] as const) {
          const x0 = Math.floor(next() * 4000) - 1000,
            y0 = Math.floor(next() * 4000) - 3000;
          const what = `${n} points, ${holes * 100}% NaN, scaled ${kx} x ${ky}`;
          const ru = new Float32Array(n),
            rv = new Float32Array(n);
          toWindow(fu, fv, kx, ky, x0, y0, ru, rv);
          const on = levelCoords(fu, fv, kx, ky);
          assert.ok(on, what);
          assert.deepEqual(on.extent, levelExtent(fu, fv, kx, ky), what);
          if (holes === 1) assert.equal(on.extent, null, `${what}: no point`);
          // Half the cases run another kernel in between, which takes the same memory.
          if (cases % 2) validityKernel([new Float32Array(n).fill(1)], n, NaN, new Uint8Array(n));
          const u = new Float32Array(n).fill(7),
            v = new Float32Array(n).fill(7);
          assert.equal(on.toWindow(x0, y0, u, v), true, what);
          for (const [name, got, want] of [
            ['u', u, ru],
            ['v', v, rv],
          ] as const) {
            const d = firstFloatDifference(got, want);
            assert.equal(d, -1, `${what}, ${name} ${d}: ${got[d]} against ${want[d]}`);
          }
          cases++;
        }
      }
    }
    assert.equal(cases, 120);
    // Arrays of another length than the coordinates are declined, untouched.
    const on = levelCoords(new Float64Array(16), new Float64Array(16), 1, 1)!;
    const short = new Float32Array(15).fill(3);
    assert.equal(on.toWindow(0, 0, short, new Float32Array(16)), false);
    assert.ok(short.every((x) => x === 3));
  });

  test('tiles planned on reprojected sources: the same level, window and coordinates either way, points beyond the horizon included', () => {
    const utm: PlanSource = {
      width: 10000,
      height: 10000,
      geoTransform: [450000, 10, 0, 5350000, 0, -10],
      proj4: '+proj=utm +zone=32 +datum=WGS84 +units=m +no_defs',
      levels: [10000, 5000, 2500, 1250, 625].map((w) => ({ width: w, height: w })),
    };
    // The Earth as seen from above 50N 10E: whatever lies beyond the horizon does not transform.
    const ortho: PlanSource = {
      width: 4000,
      height: 4000,
      geoTransform: [-6.4e6, 3200, 0, 6.4e6, 0, -3200],
      proj4: '+proj=ortho +lat_0=50 +lon_0=10 +R=6371000 +units=m +no_defs',
      levels: [4000, 2000, 1000].map((w) => ({ width: w, height: w })),
    };
    const same = (what: string, js: ReadPlan | null, wasm: ReadPlan | null) => {
      if (!js || !wasm) return assert.equal(wasm, js, what);
      assert.deepEqual([wasm.level, wasm.window, wasm.width, wasm.scaleX, wasm.scaleY], [js.level, js.window, js.width, js.scaleX, js.scaleY], what);
      const [a, b] = [js.coords(), wasm.coords()];
      assert.equal(firstFloatDifference(b.u, a.u), -1, `${what}: u`);
      assert.equal(firstFloatDifference(b.v, a.v), -1, `${what}: v`);
    };
    const tileAt = (z: number, lon: number, lat: number): [number, number, number] => {
      const n = 2 ** z,
        r = (lat * Math.PI) / 180;
      return [z, Math.floor(((lon + 180) / 360) * n), Math.floor(((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * n)];
    };
    let planned = 0,
      withNaN = 0;
    for (const [name, src, tiles] of [
      // The raster's middle from zoom 8 to 14, and its north-west corner (partly off it) at 12 and 14.
      ['UTM 32N', utm, [...[8, 9, 10, 11, 12, 13, 14].map((z) => tileAt(z, 9, 47.85)), tileAt(12, 8.33, 48.28), tileAt(14, 8.33, 48.28)]],
      [
        'orthographic',
        ortho,
        [
          [1, 0, 0],
          [1, 1, 0],
          [2, 1, 1],
          [2, 2, 1],
          [2, 2, 0],
          [3, 4, 2],
          [3, 3, 3],
          [4, 10, 4],
        ],
      ],
    ] as const) {
      for (const [z, x, y] of tiles) {
        for (const resampling of ['bilinear', 'cubic', 'nearest'] as const) {
          for (const buffer of [0, 3]) {
            const grid = { z, x, y, size: 256, buffer, bounds: tileBounds({ z, x, y }) };
            const [js, wasm] = eachWay(() => planRead(src, grid, resampling));
            const what = `${name} ${z}/${x}/${y} ${resampling}, buffer ${buffer}`;
            same(what, js, wasm);
            if (js) {
              planned++;
              if (js.coords().u.some((c) => c !== c)) withNaN++;
            }
          }
        }
      }
    }
    assert.equal(planned, 17 * 6, 'every tile planned');
    assert.ok(withNaN >= 12, `${withNaN} plans with points beyond the horizon`);
  });

  test('the layouts without a vector loop are declined, untouched, for the JavaScript loop', () => {
    const raw = randomBytes(3 * 17 * 2 * 5, 7);
    const copy = new Uint8Array(raw);
    // Three samples a pixel (RGB), and 64-bit samples.
    assert.equal(horizontal(copy, copy, 2, 3 * 17, 5, 3), false);
    assert.equal(horizontal(copy, copy, 8, 17, 5, 1), false);
    assert.equal(firstDifference(copy, raw), -1);
    // A block past the bound stays with JavaScript, which allocates nothing lasting.
    const big = MAX_KERNEL_BYTES / 4 + 16;
    assert.equal(floatingPoint32(new Uint8Array(big * 4), new Uint8Array(big * 4), big, 1), false);
  });

  test('a zlib stream of runs and literals: the same bytes as its reference, and Node inflates both back; every run length, codes cut to 15 bits, blocks and their edges', () => {
    const fixtures: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['one byte', Uint8Array.of(7)],
    ];
    for (const n of [2, 3, 4, 17, 258, 259, 260, RUNS_BLOCK - 1, RUNS_BLOCK, RUNS_BLOCK + 1, 256 * 257, 512 * 513])
      fixtures.push([`${n} zeros`, new Uint8Array(n)], [`${n} random bytes`, randomBytes(n, n)]);
    // Runs of every length from 1 to 600, each a new value, laid over a block's edge too.
    const runs: number[] = [];
    for (let r = 1; r <= 600; r++) for (let k = 0; k < r; k++) runs.push(r % 251);
    fixtures.push(['runs of every length', Uint8Array.from(runs)]);
    // Small differences, as a ramp's rows less the row above: mostly 0, 1 and 255, in runs and alone.
    const rand = random(42);
    const small = new Uint8Array(256 * 257);
    for (let i = 0, v = 0; i < small.length; i++) {
      if (rand() < 0.4) v = [0, 1, 255, 2, 254][Math.floor(rand() ** 3 * 5)]!;
      small[i] = v;
    }
    fixtures.push(['small differences', small]);
    // Fibonacci frequencies: minimum-redundancy codes 18 bits long, cut to 15; no byte next to its like.
    const fib = [1, 1];
    while (fib.length < 19) fib.push(fib.at(-1)! + fib.at(-2)!);
    const skewed: number[] = [];
    fib.forEach((f, s) => {
      for (let k = 0; k < f; k++) skewed.push(s);
    });
    for (let i = skewed.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [skewed[i], skewed[j]] = [skewed[j]!, skewed[i]!];
    }
    fixtures.push(['Fibonacci frequencies', Uint8Array.from(skewed)]);
    for (const [what, src] of fixtures) {
      const fast = deflateRuns(src);
      const reference = deflateRunsReference(src);
      assert.ok(fast, `${what}: the kernel ran`);
      assert.equal(firstDifference(fast, reference), -1, `${what}: the same stream`);
      assert.equal(firstDifference(inflateSync(fast), src), -1, `${what}: inflated back by Node's zlib`);
      const back = new Uint8Array(src.length + 1);
      assert.equal(inflateInto(fast, back), src.length, `${what}: inflated back by libdeflate`);
      assert.equal(firstDifference(back.subarray(0, src.length), src), -1, what);
    }
    // The skewed fixture did need its codes cut: an unlimited code would be 18 bits deep.
    assert.ok(Math.max(...codeLengths(Uint32Array.from(fib), 15)) === 15 && Math.max(...codeLengths(Uint32Array.from(fib), 30)) > 15);
  });

  test('KERNELS=reference: no kernel runs', () => {
    const raw = randomBytes(64 * 4, 9);
    useKernels('reference');
    try {
      assert.deepEqual(kernelsInUse(), { wasm: false, inflate: 'zlib' });
      assert.equal(floatingPoint32(raw, new Uint8Array(raw.length), 64, 1), false);
      assert.equal(horizontal(raw, new Uint8Array(raw.length), 1, 256, 1, 1), false);
      assert.equal(inflateInto(deflateSync(raw), new Uint8Array(raw.length)), -1);
      assert.equal(levelCoords(new Float64Array(64), new Float64Array(64), 1, 1), undefined);
      assert.equal(deflateRuns(raw), undefined);
    } finally {
      useKernels('fast');
    }
  });

  test('libdeflate inflates what zlib does, at every level; what it cannot, the codec hands to zlib, with the same result or error', () => {
    let seed = 500;
    for (const level of [0, 1, 6, 9]) {
      for (const n of [1, 100, 65536, 1 << 20]) {
        // Half noise, half runs: literals and matches both.
        const data = randomBytes(n, seed++);
        for (let i = 0; i < n; i += 64) data.fill(data[i]!, i, Math.min(n, i + 32));
        const z = deflateSync(data, { level });
        const dst = new Uint8Array(n);
        assert.equal(inflateInto(z, dst), n, `level ${level}, ${n} bytes`);
        assert.equal(firstDifference(dst, data), -1, `level ${level}, ${n} bytes`);
        assert.equal(firstDifference(inflate(z, n, false), data), -1);
      }
    }
    const data = randomBytes(4096, 3);
    const z = deflateSync(data);
    // The codec under both settings: the same bytes, or the same error.
    const both = (bytes: Uint8Array, expected: number) =>
      eachWay(() => {
        try {
          return Buffer.from(inflate(bytes, expected, false)).toString('hex');
        } catch (err) {
          return `error: ${(err as Error).message}`;
        }
      });
    // A stream longer than the block (a padded last strip): libdeflate declines, zlib keeps the block.
    assert.equal(inflateInto(z, new Uint8Array(4000)), -1);
    const [refPadded, fastPadded] = both(z, 4000);
    assert.equal(fastPadded, refPadded);
    assert.equal(fastPadded, Buffer.from(data.subarray(0, 4000)).toString('hex'));
    // Shorter than the block, corrupt, truncated, and not zlib at all: the same errors.
    const corrupt = new Uint8Array(z);
    corrupt[z.length >> 1] ^= 0xff;
    for (const [what, bytes, expected] of [
      ['short', z, 5000],
      ['corrupt', corrupt, 4096],
      ['truncated', z.subarray(0, z.length - 9), 4096],
      ['raw deflate', deflateRawSync(data), 4096],
      ['empty', new Uint8Array(0), 4096],
    ] as const) {
      const [ref, fast] = both(bytes, expected);
      assert.ok(ref!.startsWith('error: '), `${what}: ${ref}`);
      assert.equal(fast, ref, what);
    }
  });

  test('libdeflate deflates to zlib streams that Node inflates back, at every level, and PNGs of the same pixels', async () => {
    let seed = 900;
    for (const n of [0, 1, 257, 65792, 1 << 20]) {
      const data = randomBytes(n, seed++);
      for (let i = 0; i < n; i += 50) data.fill(data[i]!, i, Math.min(n, i + 30));
      for (let level = 1; level <= 12; level++) {
        const z = deflateZlib(data, level)!;
        assert.equal(firstDifference(inflateSync(z), data), -1, `${n} bytes at level ${level}`);
      }
    }
    // An indexed PNG either way: other bytes, the same pixels.
    const rgba = new Uint8Array(256 * 256 * 4);
    const next = random(11);
    for (let i = 0; i < rgba.length; i += 4) rgba.set([(next() * 6) | 0, 40, (i >> 12) & 0x1f, 255], i);
    const pngs = eachWay(() => indexedPng(rgba, 256)!);
    for (const png of pngs) {
      const { data, info } = await sharp(Buffer.from(png)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height, info.channels], [256, 256, 4]);
      assert.equal(firstDifference(new Uint8Array(data), rgba), -1);
    }
    useKernels('reference');
    assert.equal(deflateZlib(rgba, 4), undefined);
    useKernels('fast');
  });

  test("every block of GDAL's DEFLATE and predictor fixtures decodes to the same bytes either way", async () => {
    const dir = join(ROOT, 'test/fixtures/out/decode');
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { fixtures: { tiff: string; predictor: number; compression: string }[] };
    const fixtures = manifest.fixtures.filter((f) => f.predictor !== Predictor.None || f.compression === 'DEFLATE');
    assert.ok(fixtures.length >= 6, `fixtures: ${fixtures.length}`);
    let blocks = 0;
    for (const f of fixtures) {
      const file = readFileSync(join(dir, f.tiff));
      const src = new FileSource(join(dir, f.tiff));
      try {
        const { littleEndian, images } = await readTiff(src, file.length);
        const im = images[0]!;
        const samples = im.planar === PlanarConfiguration.Separate ? 1 : im.samplesPerPixel;
        for (let i = 0; i < im.blockOffsets.length; i++) {
          const bytes = file.subarray(im.blockOffsets[i]!, im.blockOffsets[i]! + im.blockByteCounts[i]!);
          // A strip image's last strip may be shorter (Section 3).
          const by = Math.floor((i % (blocksAcross(im) * blocksDown(im))) / blocksAcross(im));
          const height = im.tiled ? im.blockHeight : Math.min(im.blockHeight, im.height - by * im.blockHeight);
          const layout = { width: im.blockWidth, height, samples, bitsPerSample: im.bitsPerSample, sampleFormat: im.sampleFormat };
          // Into the thread's own memory, and into a SharedArrayBuffer as the render threads decode (copied out natively).
          for (const shared of [false, true]) {
            const [js, fast] = eachWay(() => {
              const s = decodeBlock(bytes, { ...layout, compression: im.compression, predictor: im.predictor, littleEndian }, { shared });
              assert.equal(s.buffer instanceof SharedArrayBuffer, shared);
              return new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
            });
            assert.equal(firstDifference(fast, js), -1, `${f.tiff} block ${i}${shared ? ', shared' : ''}`);
          }
          blocks++;
        }
      } finally {
        await src.close();
      }
    }
    assert.ok(blocks > fixtures.length);
  });
});
