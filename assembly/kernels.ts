/**
 * The render threads' hot loops in WebAssembly with 128-bit SIMD, compiled by AssemblyScript
 * (`npm run build` writes dist/src/kernels.wasm). Each has a JavaScript twin that stays the
 * reference (src/sources/codecs/predictor.ts, src/sources/sample.ts, src/sources/window.ts,
 * src/ops/builtin/colormap.ts, src/render/png.ts);
 * test/kernels.test.ts compares them byte for byte.
 *
 * The kernels own no memory: src/kernels.ts copies a block into the linear memory past
 * `heapBase()`, calls a kernel on it in place, and copies the result out. Nothing here
 * allocates, so the module needs no runtime.
 */

/** Where the caller's scratch memory may start. */
export function heapBase(): usize {
  return __heap_base;
}

// Shifting a vector towards its high lanes by 1, 2, 4 or 8 bytes, zeros coming in: the steps of a
// prefix sum inside one vector (after step n, each lane holds the sum of the 2^n lanes up to it).
// `i8x16.shuffle(zero, v, ...)`: indices 0-15 pick from `zero`, 16-31 from `v`. Binaryen inlines them.

function shl1(v: v128, zero: v128): v128 {
  return i8x16.shuffle(zero, v, 0, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30);
}
function shl2(v: v128, zero: v128): v128 {
  return i8x16.shuffle(zero, v, 0, 1, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29);
}
function shl4(v: v128, zero: v128): v128 {
  return i8x16.shuffle(zero, v, 0, 1, 2, 3, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27);
}
function shl8(v: v128, zero: v128): v128 {
  return i8x16.shuffle(zero, v, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
}

/**
 * The running sum, wrapping, of `len` bytes at `src` into `dst` (which may be `src`): 16 bytes
 * at a time, `carry` holding the last sum in every lane.
 */
function byteSums(src: usize, dst: usize, len: i32): void {
  const zero = i8x16.splat(0);
  let carry = zero;
  let k = 0;
  for (; k + 16 <= len; k += 16) {
    let v = v128.load(src + k);
    v = i8x16.add(v, shl1(v, zero));
    v = i8x16.add(v, shl2(v, zero));
    v = i8x16.add(v, shl4(v, zero));
    v = i8x16.add(v, shl8(v, zero));
    v = i8x16.add(v, carry);
    v128.store(dst + k, v);
    carry = i8x16.shuffle(v, v, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15);
  }
  let acc = <u8>i8x16.extract_lane_u(carry, 0);
  for (; k < len; k++) {
    acc = <u8>(acc + load<u8>(src + k));
    store<u8>(dst + k, acc);
  }
}

/**
 * Predictor 3 (TN3) for Float32 with one sample a pixel: `rows` rows of `rowSamples` floats at
 * `data`, each stored as four byte planes (most significant first) differenced over the whole
 * row, become native little-endian floats in place. `tmp` holds one row.
 */
export function floatingPoint32(data: usize, rowSamples: i32, rows: i32, tmp: usize): void {
  const rowBytes = rowSamples << 2;
  const n = <usize>rowSamples;
  for (let r = 0; r < rows; r++) {
    const row = data + <usize>r * <usize>rowBytes;
    byteSums(row, tmp, rowBytes);
    // Gather: the float's little-endian bytes are planes 3, 2, 1, 0 of its index.
    let i: usize = 0;
    for (; i + 16 <= n; i += 16) {
      const p0 = v128.load(tmp + i);
      const p1 = v128.load(tmp + n + i);
      const p2 = v128.load(tmp + 2 * n + i);
      const p3 = v128.load(tmp + 3 * n + i);
      const lo32 = i8x16.shuffle(p3, p2, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const hi32 = i8x16.shuffle(p3, p2, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const lo10 = i8x16.shuffle(p1, p0, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const hi10 = i8x16.shuffle(p1, p0, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      const d = row + (i << 2);
      v128.store(d, i8x16.shuffle(lo32, lo10, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
      v128.store(d + 16, i8x16.shuffle(lo32, lo10, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31));
      v128.store(d + 32, i8x16.shuffle(hi32, hi10, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23));
      v128.store(d + 48, i8x16.shuffle(hi32, hi10, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31));
    }
    for (; i < n; i++) {
      const w =
        ((<u32>load<u8>(tmp + i)) << 24) | ((<u32>load<u8>(tmp + n + i)) << 16) | ((<u32>load<u8>(tmp + 2 * n + i)) << 8) | (<u32>load<u8>(tmp + 3 * n + i));
      store<u32>(row + (i << 2), w);
    }
  }
}

/**
 * Predictor 2 (Section 14) on `rows` rows of `rowLen` samples of `bytes` (1, 2 or 4) bytes at
 * `data`, in place, native order, `stride` samples a pixel: each sample plus the one `stride`
 * before it, wrapping: a prefix sum inside the vector's lanes when a sample and the one it adds
 * are 1, 2, 4, 8 or 16 bytes apart, each row's last part one sample at a time. Answers false,
 * having done nothing, for any other layout (three samples a pixel, 64-bit samples).
 */
export function horizontal(data: usize, bytes: i32, rowLen: i32, rows: i32, stride: i32): bool {
  const step = bytes * stride; // bytes between a sample and the one it adds
  if (step != 1 && step != 2 && step != 4 && step != 8 && step != 16) return false;
  if (bytes != 1 && bytes != 2 && bytes != 4) return false;
  const rowBytes = rowLen * bytes;
  const zero = i8x16.splat(0);
  for (let r = 0; r < rows; r++) {
    const row = data + <usize>r * <usize>rowBytes;
    if (step == 1) {
      byteSums(row, row, rowBytes);
      continue;
    }
    let carry = zero;
    let k = 0;
    for (; k + 16 <= rowBytes; k += 16) {
      let v = v128.load(row + k);
      if (bytes == 1) {
        if (step <= 2) v = i8x16.add(v, shl2(v, zero));
        if (step <= 4) v = i8x16.add(v, shl4(v, zero));
        if (step <= 8) v = i8x16.add(v, shl8(v, zero));
        v = i8x16.add(v, carry);
      } else if (bytes == 2) {
        if (step <= 2) v = i16x8.add(v, shl2(v, zero));
        if (step <= 4) v = i16x8.add(v, shl4(v, zero));
        if (step <= 8) v = i16x8.add(v, shl8(v, zero));
        v = i16x8.add(v, carry);
      } else {
        if (step <= 4) v = i32x4.add(v, shl4(v, zero));
        if (step <= 8) v = i32x4.add(v, shl8(v, zero));
        v = i32x4.add(v, carry);
      }
      v128.store(row + k, v);
      // The last pixel's sums, repeated across the vector: what the next vector's pixels add.
      if (step == 2) carry = i8x16.shuffle(v, v, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15);
      else if (step == 4) carry = i8x16.shuffle(v, v, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15);
      else if (step == 8) carry = i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
      else carry = v;
    }
    // The rest of the row: each sample plus the one `stride` before it (already summed).
    const start = k < step ? step : k;
    if (bytes == 1) for (let j = start; j < rowBytes; j++) store<u8>(row + j, load<u8>(row + j) + load<u8>(row + j - step));
    else if (bytes == 2) for (let j = start; j < rowBytes; j += 2) store<u16>(row + j, load<u16>(row + j) + load<u16>(row + j - step));
    else for (let j = start; j < rowBytes; j += 4) store<u32>(row + j, load<u32>(row + j) + load<u32>(row + j - step));
  }
  return true;
}

/**
 * The two passes of separable resampling (src/sources/sample.ts, `separable`) for one band,
 * in Float64 as the JavaScript does, so that every output float is the same.
 *
 * `band` holds the window's rows `minRow` to `minRow + nRows - 1`, `ww` floats each. The taps
 * of the W output columns (`c*`) and rows (`r*`): first source pixel (i32), count (i32),
 * normalised weights (f32, `cp` or `rp` an entry) and whether the pixel is drawn (u8). `h`
 * takes the column pass (nRows x W floats); `dst` the W x W output, of which only the rows
 * that are drawn are written.
 */
export function separable(
  band: usize,
  ww: i32,
  minRow: i32,
  nRows: i32,
  W: i32,
  cStart: usize,
  cCount: usize,
  cWeights: usize,
  cp: i32,
  cOk: usize,
  rStart: usize,
  rCount: usize,
  rWeights: usize,
  rp: i32,
  rOk: usize,
  h: usize,
  dst: usize,
): void {
  // Columns: every needed source row resampled to the output columns; a column that is not
  // drawn gets 0 (its output pixels are masked). Four source rows at a time, each in a lane
  // of two pairs of doubles: a column's start, count and weights are read once for the four,
  // and each lane sums its products in the order the JavaScript does.
  const rowStride = (<usize>ww) << 2;
  const hStride = (<usize>W) << 2;
  let r = 0;
  for (; r + 4 <= nRows; r += 4) {
    const src = band + <usize>r * rowStride;
    const src2 = src + 2 * rowStride;
    const hr = h + <usize>r * hStride;
    for (let i = 0; i < W; i++) {
      const at = (<usize>i) << 2;
      if (!load<u8>(cOk + i)) {
        store<f32>(hr + at, 0);
        store<f32>(hr + hStride + at, 0);
        store<f32>(hr + 2 * hStride + at, 0);
        store<f32>(hr + 3 * hStride + at, 0);
        continue;
      }
      const s0 = (<usize>load<i32>(cStart + at)) << 2;
      const n = load<i32>(cCount + at);
      const wo = cWeights + ((<usize>(i * cp)) << 2);
      // Up to three taps the sum starts at the first product, past three at 0 (as the
      // JavaScript's unrolled and general loops do: the two differ for a sum of -0s).
      let w = f64x2.splat(<f64>load<f32>(wo));
      let a = f64x2.mul(w, rowPair(src + s0, rowStride));
      let b = f64x2.mul(w, rowPair(src2 + s0, rowStride));
      if (n > 3) {
        a = f64x2.add(f64x2.splat(0), a);
        b = f64x2.add(f64x2.splat(0), b);
      }
      for (let t = 1; t < n; t++) {
        const o = s0 + ((<usize>t) << 2);
        w = f64x2.splat(<f64>load<f32>(wo + ((<usize>t) << 2)));
        a = f64x2.add(a, f64x2.mul(w, rowPair(src + o, rowStride)));
        b = f64x2.add(b, f64x2.mul(w, rowPair(src2 + o, rowStride)));
      }
      const f = demote(a, b);
      v128.store32_lane(hr + at, f, 0);
      v128.store32_lane(hr + hStride + at, f, 1);
      v128.store32_lane(hr + 2 * hStride + at, f, 2);
      v128.store32_lane(hr + 3 * hStride + at, f, 3);
    }
  }
  // The last rows, fewer than four, one at a time.
  for (; r < nRows; r++) {
    const src = band + <usize>r * rowStride;
    const hr = h + ((<usize>r * <usize>W) << 2);
    for (let i = 0; i < W; i++) {
      const at = (<usize>i) << 2;
      if (!load<u8>(cOk + i)) {
        store<f32>(hr + at, 0);
        continue;
      }
      const st = src + ((<usize>load<i32>(cStart + at)) << 2);
      const n = load<i32>(cCount + at);
      const wo = cWeights + ((<usize>(i * cp)) << 2);
      let acc: f64 = n <= 3 ? <f64>load<f32>(wo) * <f64>load<f32>(st) : 0;
      for (let t = n <= 3 ? 1 : 0; t < n; t++) acc += <f64>load<f32>(wo + ((<usize>t) << 2)) * <f64>load<f32>(st + ((<usize>t) << 2));
      store<f32>(hr + at, <f32>acc);
    }
  }
  // Rows: the intermediate rows combined for each output row, four floats at a time, each
  // pair of them in Float64. Two or three taps are summed in Float64 and rounded once; one
  // or four and more are rounded to Float32 after each tap, as the JavaScript does.
  const rowBytes = (<usize>W) << 2;
  for (let j = 0; j < W; j++) {
    if (!load<u8>(rOk + j)) continue;
    const at = (<usize>j) << 2;
    const n = load<i32>(rCount + at);
    const h0 = h + <usize>(load<i32>(rStart + at) - minRow) * rowBytes;
    const wo = rWeights + ((<usize>(j * rp)) << 2);
    const o = dst + <usize>j * rowBytes;
    const w0 = f64x2.splat(<f64>load<f32>(wo));
    let i = 0;
    if (n == 2 || n == 3) {
      const w1 = f64x2.splat(<f64>load<f32>(wo + 4));
      const w2 = f64x2.splat(n == 3 ? <f64>load<f32>(wo + 8) : 0);
      const h1 = h0 + rowBytes,
        h2 = h1 + rowBytes;
      for (; i + 4 <= W; i += 4) {
        const k = (<usize>i) << 2;
        const a = v128.load(h0 + k),
          b = v128.load(h1 + k);
        let lo = f64x2.add(f64x2.mul(w0, f64x2.promote_low_f32x4(a)), f64x2.mul(w1, f64x2.promote_low_f32x4(b)));
        let hi = f64x2.add(f64x2.mul(w0, promoteHigh(a)), f64x2.mul(w1, promoteHigh(b)));
        if (n == 3) {
          const c = v128.load(h2 + k);
          lo = f64x2.add(lo, f64x2.mul(w2, f64x2.promote_low_f32x4(c)));
          hi = f64x2.add(hi, f64x2.mul(w2, promoteHigh(c)));
        }
        v128.store(o + k, demote(lo, hi));
      }
      const s0 = f64x2.extract_lane(w0, 0),
        s1 = f64x2.extract_lane(w1, 0),
        s2 = f64x2.extract_lane(w2, 0);
      for (; i < W; i++) {
        const k = (<usize>i) << 2;
        let acc = s0 * <f64>load<f32>(h0 + k) + s1 * <f64>load<f32>(h1 + k);
        if (n == 3) acc += s2 * <f64>load<f32>(h2 + k);
        store<f32>(o + k, <f32>acc);
      }
      continue;
    }
    for (; i + 4 <= W; i += 4) {
      const k = (<usize>i) << 2;
      const a = v128.load(h0 + k);
      v128.store(o + k, demote(f64x2.mul(w0, f64x2.promote_low_f32x4(a)), f64x2.mul(w0, promoteHigh(a))));
    }
    const s0 = f64x2.extract_lane(w0, 0);
    for (; i < W; i++) store<f32>(o + ((<usize>i) << 2), <f32>(s0 * <f64>load<f32>(h0 + ((<usize>i) << 2))));
    for (let t = 1; t < n; t++) {
      const w = f64x2.splat(<f64>load<f32>(wo + ((<usize>t) << 2)));
      const ht = h0 + <usize>t * rowBytes;
      let i = 0;
      for (; i + 4 <= W; i += 4) {
        const k = (<usize>i) << 2;
        const d = v128.load(o + k),
          a = v128.load(ht + k);
        const lo = f64x2.add(f64x2.promote_low_f32x4(d), f64x2.mul(w, f64x2.promote_low_f32x4(a)));
        const hi = f64x2.add(promoteHigh(d), f64x2.mul(w, promoteHigh(a)));
        v128.store(o + k, demote(lo, hi));
      }
      const s = f64x2.extract_lane(w, 0);
      for (; i < W; i++) {
        const k = (<usize>i) << 2;
        store<f32>(o + k, <f32>(<f64>load<f32>(o + k) + s * <f64>load<f32>(ht + k)));
      }
    }
  }
}

/** The float at `p` and the one `stride` bytes after it, as two doubles (Binaryen inlines it). */
function rowPair(p: usize, stride: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load32_lane(p + stride, v128.load32_zero(p), 1));
}

/** Lanes 2 and 3 of four floats as two doubles. */
function promoteHigh(v: v128): v128 {
  return f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1));
}

/** Two pairs of doubles rounded to four floats. */
function demote(lo: v128, hi: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/**
 * The widened bilinear kernel up to 2x downsampling on an all-valid window
 * (src/sources/sample.ts, `triangleAllValid4`) for one or two bands, the two bands in the two
 * lanes of a Float64 vector, each lane with the JavaScript's weights, order of additions and
 * rounding, so that every output float is the same.
 *
 * `u` and `v` are the n output pixels' window coordinates (f32); `b0` and `b1` the window's
 * bands (`ww` x `wh` f32; `b1` is `b0` again for one band); `o0`, `o1` and `mask` the
 * outputs, written only where a pixel is drawn. A pixel whose 4x4 taps would leave the window
 * is left to the JavaScript's general loop: its index goes to `edges`. Answers how many did.
 */
export function triangle4(
  u: usize,
  v: usize,
  n: i32,
  ww: i32,
  wh: i32,
  sx: f64,
  sy: f64,
  isx: f64,
  isy: f64,
  b0: usize,
  b1: usize,
  o0: usize,
  o1: usize,
  mask: usize,
  edges: usize,
): i32 {
  let nEdges = 0;
  for (let k = 0; k < n; k++) {
    const uk = <f64>load<f32>(u + ((<usize>k) << 2)),
      vk = <f64>load<f32>(v + ((<usize>k) << 2));
    const cx = Math.floor(uk),
      cy = Math.floor(vk);
    if (!(cx >= 0 && cy >= 0 && cx < <f64>ww && cy < <f64>wh)) continue;
    const fx = uk - 0.5,
      fy = vk - 0.5;
    const xs = Math.max(0, Math.floor(fx - sx) + 1),
      ys = Math.max(0, Math.floor(fy - sy) + 1);
    if (xs + 3 >= <f64>ww || ys + 3 >= <f64>wh) {
      store<i32>(edges + ((<usize>nEdges) << 2), k);
      nEdges++;
      continue;
    }
    const a0 = 1 - Math.abs(xs - fx) * isx;
    const a1 = Math.max(0, 1 - Math.abs(xs + 1 - fx) * isx);
    const a2 = Math.max(0, 1 - Math.abs(xs + 2 - fx) * isx);
    const a3 = Math.max(0, 1 - Math.abs(xs + 3 - fx) * isx);
    const c0 = 1 - Math.abs(ys - fy) * isy;
    const c1 = Math.max(0, 1 - Math.abs(ys + 1 - fy) * isy);
    const c2 = Math.max(0, 1 - Math.abs(ys + 2 - fy) * isy);
    const c3 = Math.max(0, 1 - Math.abs(ys + 3 - fy) * isy);
    const total = (a0 + a1 + a2 + a3) * (c0 + c1 + c2 + c3);
    if (Math.abs(total) < 1e-5) continue;
    store<u8>(mask + k, 1);
    const inv = f64x2.splat(1 / total);
    const r0 = (<usize>(<i32>ys * ww + <i32>xs)) << 2;
    const row = (<usize>ww) << 2;
    const w0 = f64x2.splat(a0),
      w1 = f64x2.splat(a1),
      w2 = f64x2.splat(a2),
      w3 = f64x2.splat(a3);
    const acc = f64x2.add(
      f64x2.add(
        f64x2.add(f64x2.mul(f64x2.splat(c0), taps(b0, b1, r0, w0, w1, w2, w3)), f64x2.mul(f64x2.splat(c1), taps(b0, b1, r0 + row, w0, w1, w2, w3))),
        f64x2.mul(f64x2.splat(c2), taps(b0, b1, r0 + 2 * row, w0, w1, w2, w3)),
      ),
      f64x2.mul(f64x2.splat(c3), taps(b0, b1, r0 + 3 * row, w0, w1, w2, w3)),
    );
    const out = f32x4.demote_f64x2_zero(f64x2.mul(acc, inv));
    store<f32>(o0 + ((<usize>k) << 2), f32x4.extract_lane(out, 0));
    store<f32>(o1 + ((<usize>k) << 2), f32x4.extract_lane(out, 1));
  }
  return nEdges;
}

/** One row of four taps of both bands, ((w0 p0 + w1 p1) + w2 p2) + w3 p3 in each lane. */
function taps(b0: usize, b1: usize, at: usize, w0: v128, w1: v128, w2: v128, w3: v128): v128 {
  const p = v128.load(b0 + at),
    q = v128.load(b1 + at);
  // (p0, q0, p1, q1) and (p2, q2, p3, q3), each pair as two doubles.
  const lo = i32x4.shuffle(p, q, 0, 4, 1, 5),
    hi = i32x4.shuffle(p, q, 2, 6, 3, 7);
  const t0 = f64x2.promote_low_f32x4(lo),
    t1 = f64x2.promote_low_f32x4(i32x4.shuffle(lo, lo, 2, 3, 0, 1)),
    t2 = f64x2.promote_low_f32x4(hi),
    t3 = f64x2.promote_low_f32x4(i32x4.shuffle(hi, hi, 2, 3, 0, 1));
  return f64x2.add(f64x2.add(f64x2.add(f64x2.mul(w0, t0), f64x2.mul(w1, t1)), f64x2.mul(w2, t2)), f64x2.mul(w3, t3));
}

/**
 * The extent of a reprojected read's coordinates (src/tiles/plan.ts `levelExtent`): `n`
 * full-resolution source coordinates at `fu` and `fv` (f64), scaled by `kx` and `ky` to a
 * level's pixels; the least and greatest of those where neither is NaN go to `out` as minU,
 * minV, maxU, maxV (Infinity and -Infinity where none is). Two pixels a step: a minimum and a
 * maximum are exact, whatever order they are taken in.
 */
export function coordExtent(fu: usize, fv: usize, n: i32, kx: f64, ky: f64, out: usize): void {
  const sx = f64x2.splat(kx),
    sy = f64x2.splat(ky);
  const inf = f64x2.splat(Infinity),
    ninf = f64x2.splat(-Infinity);
  let minU = inf,
    minV = inf,
    maxU = ninf,
    maxV = ninf;
  let k = 0;
  for (; k + 2 <= n; k += 2) {
    const at = (<usize>k) << 3;
    const u = f64x2.mul(v128.load(fu + at), sx),
      v = f64x2.mul(v128.load(fv + at), sy);
    // All-ones lanes where both are numbers; elsewhere the lanes take the bounds' start values.
    const ok = v128.and(f64x2.eq(u, u), f64x2.eq(v, v));
    // pmin and pmax (b < a ? b : a), one instruction each: nothing here is NaN.
    minU = f64x2.pmin(minU, v128.bitselect(u, inf, ok));
    maxU = f64x2.pmax(maxU, v128.bitselect(u, ninf, ok));
    minV = f64x2.pmin(minV, v128.bitselect(v, inf, ok));
    maxV = f64x2.pmax(maxV, v128.bitselect(v, ninf, ok));
  }
  let lu = Math.min(f64x2.extract_lane(minU, 0), f64x2.extract_lane(minU, 1)),
    hu = Math.max(f64x2.extract_lane(maxU, 0), f64x2.extract_lane(maxU, 1)),
    lv = Math.min(f64x2.extract_lane(minV, 0), f64x2.extract_lane(minV, 1)),
    hv = Math.max(f64x2.extract_lane(maxV, 0), f64x2.extract_lane(maxV, 1));
  for (; k < n; k++) {
    const u = load<f64>(fu + ((<usize>k) << 3)) * kx,
      v = load<f64>(fv + ((<usize>k) << 3)) * ky;
    if (u != u || v != v) continue;
    lu = Math.min(lu, u);
    hu = Math.max(hu, u);
    lv = Math.min(lv, v);
    hv = Math.max(hv, v);
  }
  store<f64>(out, lu);
  store<f64>(out, lv, 8);
  store<f64>(out, hu, 16);
  store<f64>(out, hv, 24);
}

/**
 * A reprojected read's coordinates relative to its window (src/tiles/plan.ts `toWindow`): the
 * `n` coordinates at `fu` and `fv` (f64) times `kx` (`ky`) less `x0` (`y0`), in f64, rounded to
 * f32 into `u` and `v`. Four pixels a step.
 */
export function coordsToWindow(fu: usize, fv: usize, n: i32, kx: f64, ky: f64, x0: f64, y0: f64, u: usize, v: usize): void {
  const sx = f64x2.splat(kx),
    sy = f64x2.splat(ky);
  const ox = f64x2.splat(x0),
    oy = f64x2.splat(y0);
  let k = 0;
  for (; k + 4 <= n; k += 4) {
    const at = (<usize>k) << 3,
      to = (<usize>k) << 2;
    v128.store(u + to, pairOfPairs(f64x2.sub(f64x2.mul(v128.load(fu + at), sx), ox), f64x2.sub(f64x2.mul(v128.load(fu + at + 16), sx), ox)));
    v128.store(v + to, pairOfPairs(f64x2.sub(f64x2.mul(v128.load(fv + at), sy), oy), f64x2.sub(f64x2.mul(v128.load(fv + at + 16), sy), oy)));
  }
  for (; k < n; k++) {
    store<f32>(u + ((<usize>k) << 2), <f32>(load<f64>(fu + ((<usize>k) << 3)) * kx - x0));
    store<f32>(v + ((<usize>k) << 2), <f32>(load<f64>(fv + ((<usize>k) << 3)) * ky - y0));
  }
}

/** Two pairs of doubles rounded to four floats, in order. */
function pairOfPairs(a: v128, b: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}

/**
 * (a - b) / (a + b) (src/ops/builtin/bands.ts `NormalizedDifference`): for the `n` pixels of
 * the f32 bands at `a` and `b` whose byte at `mask` is not 0, in f64 rounded to f32 into `out`;
 * a pixel whose sum is 0 or NaN gets 0 there and in `mask`, as does every pixel masked already.
 * Four pixels a step, two to a vector of doubles.
 */
export function normalizedDifference(a: usize, b: usize, mask: usize, n: i32, out: usize): void {
  const zero = f64x2.splat(0);
  let k = 0;
  for (; k + 4 <= n; k += 4) {
    const at = (<usize>k) << 2;
    const p = v128.load(a + at),
      q = v128.load(b + at);
    const pl = f64x2.promote_low_f32x4(p),
      ql = f64x2.promote_low_f32x4(q);
    const ph = f64x2.promote_low_f32x4(i32x4.shuffle(p, p, 2, 3, 0, 1)),
      qh = f64x2.promote_low_f32x4(i32x4.shuffle(q, q, 2, 3, 0, 1));
    const sl = f64x2.add(pl, ql),
      sh = f64x2.add(ph, qh);
    // All-ones lanes where the sum is a number other than 0.
    const okl = v128.and(f64x2.eq(sl, sl), f64x2.ne(sl, zero)),
      okh = v128.and(f64x2.eq(sh, sh), f64x2.ne(sh, zero));
    const ok = i32x4.shuffle(okl, okh, 0, 2, 4, 6);
    // The four mask bytes as four lanes, all-ones where not 0, and with the sums' verdict.
    const m = v128.and(i32x4.ne(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(mask + k))), i32x4.splat(0)), ok);
    const r = pairOfPairs(f64x2.div(f64x2.sub(pl, ql), sl), f64x2.div(f64x2.sub(ph, qh), sh));
    v128.store(out + at, v128.and(r, m));
    v128.store32_lane(mask + k, v128.and(i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(m, m), i16x8.narrow_i32x4_s(m, m)), v128.load32_zero(mask + k)), 0);
  }
  for (; k < n; k++) {
    const at = (<usize>k) << 2;
    if (!load<u8>(mask + k)) {
      store<f32>(out + at, 0);
      continue;
    }
    const p = <f64>load<f32>(a + at),
      q = <f64>load<f32>(b + at);
    const sum = p + q;
    if (sum == 0 || sum != sum) {
      store<u8>(mask + k, 0);
      store<f32>(out + at, 0);
      continue;
    }
    store<f32>(out + at, <f32>((p - q) / sum));
  }
}

/**
 * The validity pass of a window of one or two bands without a mask (src/sources/window.ts,
 * `readWindowInto`): `valid` gets 1 where neither band is NaN or equal to `nodata` (a NaN
 * `nodata` equals nothing), else 0, for the `n` pixels at `b0` and `b1` (`b1` is `b0` again
 * for one band). Answers how many it left invalid.
 */
export function validity(b0: usize, b1: usize, n: i32, nodata: f32, valid: usize): i32 {
  const f = f32x4.splat(nodata);
  const one = i8x16.splat(1);
  let invalid = 0;
  let k = 0;
  for (; k + 16 <= n; k += 16) {
    const at = (<usize>k) << 2;
    // Four vectors of four pixels: all-ones lanes where a pixel is bad, narrowed to a byte each.
    const m0 = bad(v128.load(b0 + at), v128.load(b1 + at), f);
    const m1 = bad(v128.load(b0 + at + 16), v128.load(b1 + at + 16), f);
    const m2 = bad(v128.load(b0 + at + 32), v128.load(b1 + at + 32), f);
    const m3 = bad(v128.load(b0 + at + 48), v128.load(b1 + at + 48), f);
    const m = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(m0, m1), i16x8.narrow_i32x4_s(m2, m3));
    v128.store(valid + k, i8x16.add(m, one));
    invalid += <i32>popcnt(i8x16.bitmask(m));
  }
  for (; k < n; k++) {
    const s0 = load<f32>(b0 + ((<usize>k) << 2)),
      s1 = load<f32>(b1 + ((<usize>k) << 2));
    const ok = s0 == nodata || s0 != s0 || s1 == nodata || s1 != s1 ? 0 : 1;
    store<u8>(valid + k, <u8>ok);
    invalid += 1 - ok;
  }
  return invalid;
}

function bad(p: v128, q: v128, f: v128): v128 {
  return v128.or(v128.or(f32x4.eq(p, f), f32x4.ne(p, p)), v128.or(f32x4.eq(q, f), f32x4.ne(q, q)));
}

/**
 * Two bands of pixel-interleaved 16-bit samples as Float32 planes (src/sources/window.ts, the
 * two-band walk of `readWindowInto`): `n` pixels of `spp` samples at `src`, the bands at
 * samples `o0` and `o1` of each, to `d0` and `d1`; `signed` for Int16. With two or four samples
 * a pixel, four pixels a step: each band's four samples picked out of the pixels' bytes
 * (`i8x16.swizzle`), widened to 32 bits and converted; any other layout one pixel at a time.
 */
export function twoBands16(src: usize, spp: i32, o0: i32, o1: i32, n: i32, signed: bool, d0: usize, d1: usize): void {
  let k = 0;
  if (spp == 2 || spp == 4) {
    // Four pixels are 16 bytes (two samples) or 32 (four): one vector or two.
    const lo0 = pick(spp, o0, 0),
      hi0 = pick(spp, o0, 1),
      lo1 = pick(spp, o1, 0),
      hi1 = pick(spp, o1, 1);
    for (; k + 4 <= n; k += 4) {
      const at = src + <usize>k * <usize>(spp << 1);
      const a = v128.load(at);
      const b = spp == 4 ? v128.load(at + 16) : a;
      const p = v128.or(i8x16.swizzle(a, lo0), i8x16.swizzle(b, hi0));
      const q = v128.or(i8x16.swizzle(a, lo1), i8x16.swizzle(b, hi1));
      const o = (<usize>k) << 2;
      v128.store(d0 + o, f32x4.convert_i32x4_s(signed ? i32x4.extend_low_i16x8_s(p) : i32x4.extend_low_i16x8_u(p)));
      v128.store(d1 + o, f32x4.convert_i32x4_s(signed ? i32x4.extend_low_i16x8_s(q) : i32x4.extend_low_i16x8_u(q)));
    }
  }
  for (; k < n; k++) {
    const at = src + ((<usize>(k * spp)) << 1);
    const a = signed ? <f32>load<i16>(at + ((<usize>o0) << 1)) : <f32>load<u16>(at + ((<usize>o0) << 1));
    const b = signed ? <f32>load<i16>(at + ((<usize>o1) << 1)) : <f32>load<u16>(at + ((<usize>o1) << 1));
    store<f32>(d0 + ((<usize>k) << 2), a);
    store<f32>(d1 + ((<usize>k) << 2), b);
  }
}

/**
 * The swizzle that takes sample `o` of four pixels of `spp` (2 or 4) 16-bit samples into the
 * 16-bit lanes 0 to 3: from the first vector (`half` 0) the pixels it holds, from the second
 * (`half` 1, four samples a pixel only) the other two; every other lane 0 (index 255).
 */
function pick(spp: i32, o: i32, half: i32): v128 {
  let lo: u64 = ~(<u64>0);
  const perVector = 16 / (spp << 1); // pixels in one vector: 4 or 2
  if (spp == 2 && half == 1) return i64x2.splat(-1);
  for (let j = 0; j < perVector; j++) {
    const lane = half * perVector + j; // the output lane (0 to 3)
    const byte: u64 = j * (spp << 1) + (o << 1);
    const shift: u64 = <u64>lane * 16;
    lo &= ~((<u64>0xffff) << shift);
    lo |= (byte | ((byte + 1) << 8)) << shift;
  }
  return i64x2.replace_lane(i64x2.splat(-1), 0, lo);
}

/**
 * A colour ramp (src/ops/builtin/colormap.ts, `apply`): for each of the `n` Float32 values at
 * `band` whose byte at `mask` is set and which is not NaN, the entry `(v - lo) * k + 0.5`,
 * truncated and clamped to 0..`last`: its colour `lut[e]` to `out` and `e + 1` to `index` (16
 * bits); 0 to both for the others. The arithmetic is in double precision, as JavaScript's, so
 * that every pixel gets the entry the reference picks: four values a step, as two `f64x2`
 * halves; the four colours are then looked up one by one.
 */
export function ramp(band: usize, mask: usize, n: i32, lo: f64, k: f64, last: i32, lut: usize, out: usize, index: usize): void {
  const vlo = f64x2.splat(lo),
    vk = f64x2.splat(k),
    half = f64x2.splat(0.5);
  const zero = i32x4.splat(0),
    one = i32x4.splat(1),
    top = i32x4.splat(last);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(band + ((<usize>i) << 2));
    const tLow = f64x2.add(f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v), vlo), vk), half);
    const tHigh = f64x2.add(f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)), vlo), vk), half);
    // Truncated (a NaN or infinite t saturates), both halves in one vector, then clamped.
    const e = i32x4.min_s(i32x4.max_s(i32x4.shuffle(i32x4.trunc_sat_f64x2_s_zero(tLow), i32x4.trunc_sat_f64x2_s_zero(tHigh), 0, 1, 4, 5), zero), top);
    const bytes = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(mask + <usize>i)));
    const ok = v128.and(v128.not(i32x4.eq(bytes, zero)), f32x4.eq(v, v));
    const colours = i32x4.replace_lane(
      i32x4.replace_lane(
        i32x4.replace_lane(
          i32x4.splat(load<i32>(lut + ((<usize>i32x4.extract_lane(e, 0)) << 2))),
          1,
          load<i32>(lut + ((<usize>i32x4.extract_lane(e, 1)) << 2)),
        ),
        2,
        load<i32>(lut + ((<usize>i32x4.extract_lane(e, 2)) << 2)),
      ),
      3,
      load<i32>(lut + ((<usize>i32x4.extract_lane(e, 3)) << 2)),
    );
    v128.store(out + ((<usize>i) << 2), v128.and(colours, ok));
    const codes = v128.and(i32x4.add(e, one), ok);
    v128.store64_lane(index + ((<usize>i) << 1), i16x8.narrow_i32x4_u(codes, codes), 0);
  }
  for (; i < n; i++) {
    const v = load<f32>(band + ((<usize>i) << 2));
    let colour: u32 = 0,
      code: u16 = 0;
    if (load<u8>(mask + <usize>i) != 0 && v == v) {
      const t = (<f64>v - lo) * k + 0.5;
      const e = t <= 0 ? 0 : t >= <f64>last ? last : <i32>t;
      colour = load<u32>(lut + ((<usize>e) << 2));
      code = <u16>(e + 1);
    }
    store<u32>(out + ((<usize>i) << 2), colour);
    store<u16>(index + ((<usize>i) << 1), code);
  }
}

/**
 * The colour-map entries a tile uses (src/render/png.ts, `indexedPngOfCodes`): `used[c]` is set
 * to 1 for each of the `n` 16-bit codes at `codes` (`used` holds 65536 bytes). Answers the highest.
 */
export function usedEntries(codes: usize, n: i32, used: usize): i32 {
  let highest: i32 = 0;
  for (let i = 0; i < n; i++) {
    const c = <i32>load<u16>(codes + ((<usize>i) << 1));
    highest = max(highest, c);
    store<u8>(used + c, 1);
  }
  return highest;
}

/**
 * The scanlines of an indexed PNG (src/render/png.ts, `indexedPngOfCodes`): for each of the
 * `size` rows of `size` codes at `codes`, a filter byte (`filter`: 0, none, or 2, Up) and the
 * palette index `entry[code]` of each pixel, less the one above it for Up (the first row's less
 * 0), into `rows`. The indices are written first, then each row less the one above.
 */
export function indexRows(codes: usize, size: i32, entry: usize, filter: i32, rows: usize): void {
  const stride = <usize>(size + 1);
  for (let y = 0; y < size; y++) {
    const o = rows + <usize>y * stride;
    const c = codes + ((<usize>y * <usize>size) << 1);
    store<u8>(o, <u8>filter);
    for (let x = 0; x < size; x++) store<u8>(o + 1 + x, load<u8>(entry + load<u16>(c + ((<usize>x) << 1))));
  }
  if (filter == 2) lessRowAbove(rows, stride, size, size);
}

/**
 * PNG filter 2 (Up) over `count` scanlines `stride` bytes apart from `rows`, each a filter byte
 * and `len` bytes: every row but the first less the row above, from the bottom row up, so that
 * the row above is still whole when it is taken away.
 */
function lessRowAbove(rows: usize, stride: usize, len: i32, count: i32): void {
  for (let y = count - 1; y > 0; y--) {
    const o = rows + <usize>y * stride + 1;
    const a = o - stride;
    let x = 0;
    for (; x + 16 <= len; x += 16) v128.store(o + x, i8x16.sub(v128.load(o + x), v128.load(a + x)));
    for (; x < len; x++) store<u8>(o + x, <u8>(load<u8>(o + x) - load<u8>(a + x)));
  }
}

/**
 * An opaque RGBA image's PNG scanlines as RGB (src/render/png.ts, `rgbaPng`): for each of the
 * `size` rows of `size` pixels at `rgba`, a filter byte 2 (Up) and the row's red, green and
 * blue bytes less those of the row above (the first row's less 0), into `rows`, which holds 16
 * bytes past the scanlines (each group of four pixels is stored as 16 bytes, the last four of
 * them written over by what follows). Answers false, `rows` partly written, at the first pixel
 * whose alpha is not 255.
 */
export function rgbUpRows(rgba: usize, size: i32, rows: usize): bool {
  const stride = <usize>(size * 3 + 1);
  const alpha = i32x4.splat(0xff000000);
  for (let y = 0; y < size; y++) {
    const o = rows + <usize>y * stride + 1;
    const src = rgba + ((<usize>y * <usize>size) << 2);
    store<u8>(o - 1, 2);
    let x = 0;
    for (; x + 4 <= size; x += 4) {
      const v = v128.load(src + ((<usize>x) << 2));
      if (!i32x4.all_true(i32x4.eq(v128.and(v, alpha), alpha))) return false;
      v128.store(o + <usize>x * 3, i8x16.shuffle(v, v, 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 0, 0, 0, 0));
    }
    for (; x < size; x++) {
      const p = load<u32>(src + ((<usize>x) << 2));
      if (p >>> 24 != 255) return false;
      const at = o + <usize>x * 3;
      store<u8>(at, <u8>p);
      store<u8>(at + 1, <u8>(p >>> 8));
      store<u8>(at + 2, <u8>(p >>> 16));
    }
  }
  lessRowAbove(rows, stride, size * 3, size);
  return true;
}

// The zlib stream of an indexed PNG's scanlines, each row less the one above (src/render/runs.ts
// `deflateRunsReference`, the reference, says how): a run of three or more bytes as a match at
// distance 1, every other byte a literal, Huffman codes fitted to each block. Tokens are 16-bit:
// a literal byte, or 256 + the run's length less 3.

/** Base lengths and extra bits of the length symbols 257-285 (RFC 1951 §3.2.5). */
const LENGTH_BASE = memory.data<u16>([3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]);
const LENGTH_EXTRA = memory.data<u8>([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]);
/** The order in which the code-length code's lengths are written. */
const CODE_LENGTH_ORDER = memory.data<u8>([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]);

/** Input bytes a block (src/kernels.ts RUNS_BLOCK). */
const RUNS_BLOCK: i32 = 16384;

// Offsets into `work`.
const W_FREQ: usize = 0; // u32[286] literal/length frequencies
const W_LENS: usize = 1152; // u8[286] their code lengths
const W_TAB: usize = 1536; // u32[512] a token's bits (low 24) and bit count (high 8)
const W_CFREQ: usize = 3584; // u32[19] code-length code frequencies
const W_CLENS: usize = 3664; // u8[19] its code lengths
const W_CCODES: usize = 3712; // u32[19] its codes, bit-reversed
const W_RUNS: usize = 3840; // u16[288] the code-length sequence as symbols (low 8) and extra bits (high 8)
const W_SYMS: usize = 4480; // u16[286] symbols by frequency
const W_TREE: usize = 5120; // u32[286] the in-place Huffman computation
const W_CODES: usize = 6272; // u32[286] literal/length codes, bit-reversed
const W_COUNTS: usize = 7424; // u32[16] codes a length
const W_NEXT: usize = 7488; // u32[16] the next code of each length
const W_HIST: usize = 8192; // u32[4][256] literal counts, four tallies that neighbouring bytes do not wait on each other in

/**
 * Code lengths of at most `limit` bits for the `n` symbols whose frequencies are at `freq`
 * (u32) into `lens` (u8): minimum redundancy (Moffat and Katajainen's in-place method over the
 * symbols sorted by frequency, then symbol), the lengths past `limit` cut to it and Kraft's
 * inequality restored by lengthening the longest codes shorter than `limit`, and the shortest
 * codes given to the most frequent symbols. Fewer than two symbols used: symbol 0 or 1 joins with frequency 1.
 */
function codeLengths(freq: usize, n: i32, limit: i32, lens: usize, work: usize): void {
  const syms = work + W_SYMS,
    a = work + W_TREE;
  let m = 0;
  for (let s = 0; s < n; s++) {
    store<u8>(lens + s, 0);
    if (load<u32>(freq + ((<usize>s) << 2))) {
      store<u16>(syms + ((<usize>m) << 1), <u16>s);
      m++;
    }
  }
  while (m < 2) {
    const s = m == 1 && load<u16>(syms) == 0 ? 1 : 0;
    if (m == 1 && s < <i32>load<u16>(syms)) {
      store<u16>(syms + 2, load<u16>(syms));
      store<u16>(syms, <u16>s);
    } else store<u16>(syms + ((<usize>m) << 1), <u16>s);
    if (!load<u32>(freq + ((<usize>s) << 2))) store<u32>(freq + ((<usize>s) << 2), 1);
    m++;
  }
  // By frequency, then symbol: keys of both (a block's frequencies are below 2^23), heap-sorted.
  for (let i = 0; i < m; i++) {
    const sym = load<u16>(syms + ((<usize>i) << 1));
    store<u32>(a + ((<usize>i) << 2), (load<u32>(freq + ((<usize>sym) << 2)) << 9) | sym);
  }
  for (let i = (m >> 1) - 1; i >= 0; i--) siftDown(a, i, m);
  for (let end = m - 1; end > 0; end--) {
    const top = load<u32>(a);
    store<u32>(a, load<u32>(a + ((<usize>end) << 2)));
    store<u32>(a + ((<usize>end) << 2), top);
    siftDown(a, 0, end);
  }
  for (let i = 0; i < m; i++) {
    const key = load<u32>(a + ((<usize>i) << 2));
    store<u16>(syms + ((<usize>i) << 1), <u16>(key & 511));
    store<u32>(a + ((<usize>i) << 2), key >>> 9);
  }
  // Pass 1: the internal nodes' weights, then parent pointers.
  store<u32>(a, load<u32>(a) + load<u32>(a + 4));
  let root = 0,
    leaf = 2;
  for (let next = 1; next < m - 1; next++) {
    const an = (<usize>next) << 2;
    let w: u32;
    if (leaf >= m || load<u32>(a + ((<usize>root) << 2)) < load<u32>(a + ((<usize>leaf) << 2))) {
      w = load<u32>(a + ((<usize>root) << 2));
      store<u32>(a + ((<usize>root) << 2), next);
      root++;
    } else {
      w = load<u32>(a + ((<usize>leaf) << 2));
      leaf++;
    }
    if (leaf >= m || (root < next && load<u32>(a + ((<usize>root) << 2)) < load<u32>(a + ((<usize>leaf) << 2)))) {
      w += load<u32>(a + ((<usize>root) << 2));
      store<u32>(a + ((<usize>root) << 2), next);
      root++;
    } else {
      w += load<u32>(a + ((<usize>leaf) << 2));
      leaf++;
    }
    store<u32>(a + an, w);
  }
  // Pass 2: each internal node's depth.
  store<u32>(a + ((<usize>(m - 2)) << 2), 0);
  for (let next = m - 3; next >= 0; next--) store<u32>(a + ((<usize>next) << 2), load<u32>(a + ((<usize>load<u32>(a + ((<usize>next) << 2))) << 2)) + 1);
  // Pass 3: the leaves' depths, as counts a length (those past `limit` counted at it).
  const counts = work + W_COUNTS;
  for (let l = 0; l < 16; l++) store<u32>(counts + ((<usize>l) << 2), 0);
  let avail = 1,
    used = 0,
    depth = 0;
  root = m - 2;
  while (avail > 0) {
    while (root >= 0 && <i32>load<u32>(a + ((<usize>root) << 2)) == depth) {
      used++;
      root--;
    }
    const l = min(depth, limit);
    store<u32>(counts + ((<usize>l) << 2), load<u32>(counts + ((<usize>l) << 2)) + <u32>(avail - used));
    avail = 2 * used;
    depth++;
    used = 0;
  }
  // Kraft's sum in units of 2^-limit: over 2^limit when lengths were cut; each step takes one code off the longest length and splits the deepest shorter one.
  let total: u32 = 0;
  for (let l = 1; l <= limit; l++) {
    const shift = <u32>(limit - l);
    total += load<u32>(counts + ((<usize>l) << 2)) << shift;
  }
  const full: u32 = 1 << limit;
  while (total > full) {
    store<u32>(counts + ((<usize>limit) << 2), load<u32>(counts + ((<usize>limit) << 2)) - 1);
    for (let l = limit - 1; l > 0; l--) {
      const c = load<u32>(counts + ((<usize>l) << 2));
      if (c) {
        store<u32>(counts + ((<usize>l) << 2), c - 1);
        store<u32>(counts + ((<usize>(l + 1)) << 2), load<u32>(counts + ((<usize>(l + 1)) << 2)) + 2);
        break;
      }
    }
    total--;
  }
  let k = m - 1;
  for (let l = 1; l <= limit; l++)
    for (let c = load<u32>(counts + ((<usize>l) << 2)); c > 0; c--) {
      store<u8>(lens + load<u16>(syms + ((<usize>k) << 1)), <u8>l);
      k--;
    }
}

/** Counts `byte` in tally `k` (0-3) of `hist`. */
function tally(hist: usize, k: usize, byte: usize): void {
  const at = hist + (k << 10) + (byte << 2);
  store<u32>(at, load<u32>(at) + 1);
}

/** Restores the max-heap of `n` u32 keys at `a` below node `i`. */
function siftDown(a: usize, i: i32, n: i32): void {
  const key = load<u32>(a + ((<usize>i) << 2));
  for (;;) {
    let c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && load<u32>(a + ((<usize>(c + 1)) << 2)) > load<u32>(a + ((<usize>c) << 2))) c++;
    const child = load<u32>(a + ((<usize>c) << 2));
    if (child <= key) break;
    store<u32>(a + ((<usize>i) << 2), child);
    i = c;
  }
  store<u32>(a + ((<usize>i) << 2), key);
}

/** Canonical codes (RFC 1951 §3.2.2) of the `n` lengths at `lens`, bit-reversed for writing from the low bit, into `codes` (u32). */
function canonicalCodes(lens: usize, n: i32, codes: usize, work: usize): void {
  const next = work + W_NEXT;
  for (let l = 0; l < 16; l++) store<u32>(next + ((<usize>l) << 2), 0);
  for (let s = 0; s < n; s++) {
    const l = <usize>load<u8>(lens + s);
    store<u32>(next + (l << 2), load<u32>(next + (l << 2)) + 1);
  }
  let code: u32 = 0,
    previous: u32 = 0;
  for (let l = 1; l < 16; l++) {
    code = (code + (l == 1 ? 0 : previous)) << 1;
    previous = load<u32>(next + ((<usize>l) << 2));
    store<u32>(next + ((<usize>l) << 2), code);
  }
  for (let s = 0; s < n; s++) {
    const l = <u32>load<u8>(lens + s);
    if (!l) continue;
    const at = next + ((<usize>l) << 2);
    const c = load<u32>(at);
    store<u32>(at, c + 1);
    store<u32>(codes + ((<usize>s) << 2), reverseBits(c, l));
  }
}

/** The length code (0-28, symbol 257 + it) of a match of `r` bytes, 3-258 (RFC 1951 §3.2.5). */
function lengthCode(r: i32): i32 {
  const x = r - 3;
  if (x < 8) return x;
  if (r == 258) return 28;
  const e = 29 - <i32>clz(x);
  return 4 + 4 * e + ((x >>> e) - 4);
}

function reverseBits(c: u32, len: u32): u32 {
  let r: u32 = 0;
  for (let i: u32 = 0; i < len; i++) {
    r = (r << 1) | (c & 1);
    c >>= 1;
  }
  return r;
}

/**
 * zlib (RFC 1950) of the `n` bytes at `src`, runs of a byte as matches at distance 1 and
 * Huffman codes a block of RUNS_BLOCK bytes, into `out`, which holds 2n + 1024 bytes: answers
 * the bytes written. `tokens` holds a block's tokens and a vector more (2 * RUNS_BLOCK + 32
 * bytes), `work` the tables (12288 bytes).
 */
export function deflateRuns(src: usize, n: i32, tokens: usize, work: usize, out: usize): i32 {
  store<u8>(out, 0x78);
  store<u8>(out + 1, 0x01);
  let o = out + 2;
  let bits: u64 = 0,
    nb: u32 = 0;
  const hist = work + W_HIST;
  const freq = work + W_FREQ,
    lens = work + W_LENS,
    tab = work + W_TAB,
    codes = work + W_CODES;
  for (let start = 0; start < n || start == 0; start += RUNS_BLOCK) {
    const end = min(n, start + RUNS_BLOCK);
    for (let s = 0; s < 286; s++) store<u32>(freq + ((<usize>s) << 2), 0);
    memory.fill(hist, 0, 4096);
    // Tokens and their frequencies.
    let t: usize = tokens;
    let i = start;
    while (i < end) {
      let run = false;
      if (i > 0 && i + 18 <= end) {
        // Sixteen bytes at a time: the literals before the first byte at which a run of three
        // starts (bit j of e1: byte i+j equals the one before it; of e2: byte i+2+j does; a run
        // starts at i+j where i+j, i+j+1 and i+j+2 all do), written sixteen tokens at a time.
        const here = v128.load(src + i);
        const e1 = i8x16.bitmask(i8x16.eq(here, v128.load(src + i - 1))),
          e2 = i8x16.bitmask(i8x16.eq(v128.load(src + i + 2), v128.load(src + i + 1)));
        const starts = e1 & (((e1 >>> 1) & 0x7fff) | (((e2 >>> 14) & 1) << 15)) & e2;
        const literals = starts ? ctz(starts) : 16;
        v128.store(t, i16x8.extend_low_i8x16_u(here));
        v128.store(t + 16, i16x8.extend_high_i8x16_u(here));
        t += (<usize>literals) << 1;
        if (literals == 16) {
          tally(hist, 0, <usize>i8x16.extract_lane_u(here, 0));
          tally(hist, 1, <usize>i8x16.extract_lane_u(here, 1));
          tally(hist, 2, <usize>i8x16.extract_lane_u(here, 2));
          tally(hist, 3, <usize>i8x16.extract_lane_u(here, 3));
          tally(hist, 0, <usize>i8x16.extract_lane_u(here, 4));
          tally(hist, 1, <usize>i8x16.extract_lane_u(here, 5));
          tally(hist, 2, <usize>i8x16.extract_lane_u(here, 6));
          tally(hist, 3, <usize>i8x16.extract_lane_u(here, 7));
          tally(hist, 0, <usize>i8x16.extract_lane_u(here, 8));
          tally(hist, 1, <usize>i8x16.extract_lane_u(here, 9));
          tally(hist, 2, <usize>i8x16.extract_lane_u(here, 10));
          tally(hist, 3, <usize>i8x16.extract_lane_u(here, 11));
          tally(hist, 0, <usize>i8x16.extract_lane_u(here, 12));
          tally(hist, 1, <usize>i8x16.extract_lane_u(here, 13));
          tally(hist, 2, <usize>i8x16.extract_lane_u(here, 14));
          tally(hist, 3, <usize>i8x16.extract_lane_u(here, 15));
        } else
          for (let k = 0; k < literals; k++) {
            const at = hist + ((<usize>(k & 3)) << 10) + ((<usize>load<u8>(src + i + k)) << 2);
            store<u32>(at, load<u32>(at) + 1);
          }
        i += literals;
        if (!starts) continue;
        run = true;
      }
      const b = load<u8>(src + i);
      if (run || (i > 0 && load<u8>(src + i - 1) == b)) {
        let r = 1;
        const most = min(258, end - i);
        const splat = i8x16.splat(b);
        while (r + 16 <= most && i8x16.all_true(i8x16.eq(v128.load(src + i + r), splat))) r += 16;
        while (r < most && load<u8>(src + i + r) == b) r++;
        if (r >= 3) {
          store<u16>(t, <u16>(253 + r));
          t += 2;
          const at = freq + ((<usize>(257 + lengthCode(r))) << 2);
          store<u32>(at, load<u32>(at) + 1);
          i += r;
          continue;
        }
      }
      store<u16>(t, <u16>b);
      t += 2;
      const at = hist + ((<usize>b) << 2);
      store<u32>(at, load<u32>(at) + 1);
      i++;
    }
    for (let s = 0; s < 256; s++) {
      const at = (<usize>s) << 2;
      store<u32>(freq + at, load<u32>(hist + at) + load<u32>(hist + 1024 + at) + load<u32>(hist + 2048 + at) + load<u32>(hist + 3072 + at));
    }
    store<u32>(freq + (256 << 2), 1);
    codeLengths(freq, 286, 15, lens, work);
    canonicalCodes(lens, 286, codes, work);
    let hlit = 286;
    while (hlit > 257 && !load<u8>(lens + hlit - 1)) hlit--;
    // Each token's bits: a literal's code; a run's length code, extra bits and distance code 0 (one bit, 0).
    for (let s = 0; s < 256; s++) store<u32>(tab + ((<usize>s) << 2), load<u32>(codes + ((<usize>s) << 2)) | ((<u32>load<u8>(lens + s)) << 24));
    for (let c = 0; c < 29; c++) {
      const sym = <usize>(257 + c);
      const extra = <u32>load<u8>(LENGTH_EXTRA + c);
      const len = <u32>load<u8>(lens + sym);
      const code = load<u32>(codes + (sym << 2));
      const base = <i32>load<u16>(LENGTH_BASE + ((<usize>c) << 1));
      const last = c == 28 ? 258 : <i32>load<u16>(LENGTH_BASE + ((<usize>(c + 1)) << 1)) - 1;
      for (let r = base; r <= last; r++) store<u32>(tab + ((<usize>(253 + r)) << 2), code | ((<u32>(r - base)) << len) | ((len + extra + 1) << 24));
    }
    // The code lengths of the literal/length code and of the distance code (two codes of one bit), as symbols 0-18.
    const seq = hlit + 2;
    let runs: usize = work + W_RUNS;
    const cfreq = work + W_CFREQ,
      clens = work + W_CLENS,
      ccodes = work + W_CCODES;
    for (let s = 0; s < 19; s++) store<u32>(cfreq + ((<usize>s) << 2), 0);
    for (let j = 0; j < seq;) {
      const v = j < hlit ? <i32>load<u8>(lens + j) : 1;
      let r = 1;
      while (j + r < seq && (j + r < hlit ? <i32>load<u8>(lens + j + r) : 1) == v) r++;
      if (v == 0 && r >= 3) {
        const k = min(r, 138);
        const sym = k >= 11 ? 18 : 17;
        store<u16>(runs, <u16>(sym | ((k - (k >= 11 ? 11 : 3)) << 8)));
        runs += 2;
        store<u32>(cfreq + ((<usize>sym) << 2), load<u32>(cfreq + ((<usize>sym) << 2)) + 1);
        j += k;
        continue;
      }
      store<u16>(runs, <u16>v);
      runs += 2;
      store<u32>(cfreq + ((<usize>v) << 2), load<u32>(cfreq + ((<usize>v) << 2)) + 1);
      j++;
      let rest = r - 1;
      while (rest >= 3) {
        const k = min(rest, 6);
        store<u16>(runs, <u16>(16 | ((k - 3) << 8)));
        runs += 2;
        store<u32>(cfreq + (16 << 2), load<u32>(cfreq + (16 << 2)) + 1);
        rest -= k;
        j += k;
      }
    }
    codeLengths(cfreq, 19, 7, clens, work);
    canonicalCodes(clens, 19, ccodes, work);
    let hclen = 19;
    while (hclen > 4 && !load<u8>(clens + load<u8>(CODE_LENGTH_ORDER + hclen - 1))) hclen--;
    // The block's header: last block or not, dynamic codes, the counts, the code-length code, the sequence.
    const header: u64 = (end == n ? 1 : 0) | (2 << 1) | ((<u64>(hlit - 257)) << 3) | (1 << 8) | ((<u64>(hclen - 4)) << 13);
    bits |= header << nb;
    nb += 17;
    for (let j = 0; j < hclen; j++) {
      bits |= (<u64>load<u8>(clens + load<u8>(CODE_LENGTH_ORDER + j))) << nb;
      nb += 3;
      if (nb >= 32) {
        store<u32>(o, <u32>bits);
        o += 4;
        bits >>= 32;
        nb -= 32;
      }
    }
    for (let p = work + W_RUNS; p < runs; p += 2) {
      const e = <u32>load<u16>(p);
      const sym = <usize>(e & 0xff);
      bits |= (<u64>load<u32>(ccodes + (sym << 2))) << nb;
      nb += <u32>load<u8>(clens + sym);
      const extra: u32 = sym == 16 ? 2 : sym == 17 ? 3 : sym == 18 ? 7 : 0;
      bits |= (<u64>(e >>> 8)) << nb;
      nb += extra;
      if (nb >= 32) {
        store<u32>(o, <u32>bits);
        o += 4;
        bits >>= 32;
        nb -= 32;
      }
    }
    // The tokens, then the end of the block.
    // (Without a branch: all 64 bits stored each time, the whole bytes among them kept.)
    let p = tokens;
    // Two tokens a step (at most 42 bits): the steps wait on each other through `bits` and `nb` alone.
    for (; p + 4 <= t; p += 4) {
      const e0 = load<u32>(tab + ((<usize>load<u16>(p)) << 2)),
        e1 = load<u32>(tab + ((<usize>load<u16>(p + 2)) << 2));
      const n0 = e0 >>> 24;
      bits |= ((<u64>(e0 & 0xffffff)) | ((<u64>(e1 & 0xffffff)) << n0)) << nb;
      nb += n0 + (e1 >>> 24);
      store<u64>(o, bits);
      const whole = nb >>> 3;
      o += whole;
      bits >>= <u64>(whole << 3);
      nb &= 7;
    }
    for (; p < t; p += 2) {
      const e = load<u32>(tab + ((<usize>load<u16>(p)) << 2));
      bits |= (<u64>(e & 0xffffff)) << nb;
      nb += e >>> 24;
      store<u64>(o, bits);
      const whole = nb >>> 3;
      o += whole;
      bits >>= <u64>(whole << 3);
      nb &= 7;
    }
    bits |= (<u64>load<u32>(codes + (256 << 2))) << nb;
    nb += <u32>load<u8>(lens + 256);
    if (nb >= 32) {
      store<u32>(o, <u32>bits);
      o += 4;
      bits >>= 32;
      nb -= 32;
    }
    if (n == 0) break;
  }
  while (nb > 0) {
    store<u8>(o++, <u8>bits);
    bits >>= 8;
    nb = nb > 8 ? nb - 8 : 0;
  }
  const adler = adler32(src, n);
  store<u8>(o, <u8>(adler >>> 24));
  store<u8>(o + 1, <u8>(adler >>> 16));
  store<u8>(o + 2, <u8>(adler >>> 8));
  store<u8>(o + 3, <u8>adler);
  return <i32>(o + 4 - out);
}

/** Adler-32 (RFC 1950) of `n` bytes at `src`: sixteen bytes a step, the sums reduced every 5552 bytes at most. */
function adler32(src: usize, n: i32): u32 {
  let a: u32 = 1,
    b: u32 = 0;
  const weightsHigh = i16x8(16, 15, 14, 13, 12, 11, 10, 9),
    weightsLow = i16x8(8, 7, 6, 5, 4, 3, 2, 1);
  let i = 0;
  while (i < n) {
    // 5552 = the most bytes before b can pass 2^32; a multiple of 16 less: 5536.
    const chunk = min(n - i, 5536);
    let k = 0;
    let vs = i32x4.splat(0),
      vb = i32x4.splat(0),
      vp = i32x4.splat(0);
    for (; k + 16 <= chunk; k += 16) {
      const v = v128.load(src + i + k);
      vp = i32x4.add(vp, vs);
      vs = i32x4.add(vs, i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(v)));
      vb = i32x4.add(vb, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(v), weightsHigh), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(v), weightsLow)));
    }
    const sum = <u32>(i32x4.extract_lane(vs, 0) + i32x4.extract_lane(vs, 1) + i32x4.extract_lane(vs, 2) + i32x4.extract_lane(vs, 3));
    const prefix = <u32>(i32x4.extract_lane(vp, 0) + i32x4.extract_lane(vp, 1) + i32x4.extract_lane(vp, 2) + i32x4.extract_lane(vp, 3));
    const weighted = <u32>(i32x4.extract_lane(vb, 0) + i32x4.extract_lane(vb, 1) + i32x4.extract_lane(vb, 2) + i32x4.extract_lane(vb, 3));
    b = <u32>((<u64>b + <u64>a * <u64>k + ((<u64>prefix) << 4) + <u64>weighted) % 65521);
    a = (a + sum) % 65521;
    for (; k < chunk; k++) {
      a += load<u8>(src + i + k);
      b += a;
    }
    a %= 65521;
    b %= 65521;
    i += chunk;
  }
  return (b << 16) | a;
}
