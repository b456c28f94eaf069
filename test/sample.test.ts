/**
 * The separable fast path must give what the per-pixel kernels give (those are checked
 * against gdalwarp in render.test.ts): random windows, offsets and scales, every method.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleWindow, type Resampling, type SampleOutput, type Window } from '../src/sources/sample.js';

let seed = 12345;
const random = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x100000000;
};

function window(w: number, h: number, bands: number): Window {
  const win: Window = { width: w, height: h, bands: [], valid: new Uint8Array(w * h).fill(1), allValid: true };
  for (let b = 0; b < bands; b++) {
    const band = new Float32Array(w * h);
    for (let k = 0; k < band.length; k++) band[k] = 1000 + 500 * Math.sin(k * 0.013 + b) + 100 * random();
    win.bands.push(band);
  }
  return win;
}

function output(W: number, bands: number): SampleOutput {
  return { bands: Array.from({ length: bands }, () => new Float32Array(W * W)), mask: new Uint8Array(W * W) };
}

describe('separable resampling equals the per-pixel kernels', () => {
  const cases: [Resampling, number][] = [
    ['nearest', 1],
    ['nearest', 1.7],
    ['bilinear', 0.6],
    ['bilinear', 1],
    ['bilinear', 1.3],
    ['bilinear', 1.99],
    ['cubic', 1.5],
    ['cubic', 2.4],
  ];
  for (const [method, scale] of cases) {
    it(`${method} at ${scale} source pixels per output pixel, including the window edges`, () => {
      const W = 64;
      const win = window(Math.ceil(W * scale) + 6, Math.ceil(W * scale * 1.1) + 6, 2);
      // Start slightly outside the window so that edge taps and undrawn pixels are covered.
      const sep = { u0: -1.3 + random(), du: scale, v0: -0.7 + random(), dv: scale * 1.1 };
      const u = new Float32Array(W * W),
        v = new Float32Array(W * W);
      for (let j = 0; j < W; j++)
        for (let i = 0; i < W; i++) {
          u[j * W + i] = sep.u0 + i * sep.du;
          v[j * W + i] = sep.v0 + j * sep.dv;
        }
      const slow = output(W, 2),
        fast = output(W, 2);
      sampleWindow({ ...win, allValid: false }, () => ({ u, v }), method, scale, scale * 1.1, slow);
      sampleWindow(win, () => ({ u, v }), method, scale, scale * 1.1, fast, sep);
      assert.deepEqual(fast.mask, slow.mask);
      let max = 0,
        drawn = 0;
      for (let b = 0; b < 2; b++) {
        for (let k = 0; k < W * W; k++) {
          if (!slow.mask[k]) continue;
          drawn++;
          max = Math.max(max, Math.abs(fast.bands[b]![k]! - slow.bands[b]![k]!));
        }
      }
      assert.ok(drawn > W * W, 'most pixels are drawn');
      assert.ok(max < 1e-2, `max difference ${max} on values around 1000`);
    });
  }
});

describe('the widened kernel without validity tests equals the general one', () => {
  for (const [method, scale, tight] of [
    ['bilinear', 1.4, false],
    ['bilinear', 1.85, false],
    ['bilinear', 2, true],
    ['bilinear', 1.6, true],
    ['bilinear', 2.6, false],
    ['cubic', 1.8, false],
  ] as [Resampling, number, boolean][]) {
    it(`${method} at ${scale}, on a rotated grid${tight ? ' running off the window' : ''}`, () => {
      const W = 48;
      // A tight window puts grid points on its last rows and columns and beyond them.
      const side = tight ? Math.ceil(W * scale * 1.1) : Math.ceil(W * scale * 1.5) + 8;
      const win = window(side, side, 2);
      const u = new Float32Array(W * W),
        v = new Float32Array(W * W);
      const cos = Math.cos(0.3) * scale,
        sin = Math.sin(0.3) * scale;
      for (let j = 0; j < W; j++)
        for (let i = 0; i < W; i++) {
          u[j * W + i] = 2 + i * cos - j * sin + W * sin;
          v[j * W + i] = 1.5 + i * sin + j * cos;
        }
      const slow = output(W, 2),
        fast = output(W, 2);
      sampleWindow({ ...win, allValid: false }, () => ({ u, v }), method, scale, scale, slow);
      sampleWindow(win, () => ({ u, v }), method, scale, scale, fast);
      assert.deepEqual(fast.mask, slow.mask);
      if (tight) assert.ok(slow.mask.includes(0) && slow.mask.includes(1), 'the grid runs off the window');
      let max = 0;
      for (let b = 0; b < 2; b++) for (let k = 0; k < W * W; k++) if (slow.mask[k]) max = Math.max(max, Math.abs(fast.bands[b]![k]! - slow.bands[b]![k]!));
      assert.ok(max < 1e-2, `max difference ${max}`);
    });
  }
});
