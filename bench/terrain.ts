/**
 * Synthetic detail for the benchmark's rasters, written by bench/make-data.sh through GDAL's
 * ENVI format (a headerless raw file that GDAL describes in a side .hdr):
 *
 *   node dist/bench/terrain.js dem   <raw> <width> <height> <groundMetresPerPixel>
 *   node dist/bench/terrain.js scene <raw> <width> <height>
 *
 * `dem`: a Float32 DEM (native byte order) upsampled with cubic resampling from 100 m SRTM.
 * The upsampling is smooth below 100 m, which would make the file unrealistically easy to
 * compress and decode; this adds fractional Brownian motion (gradient noise, seven octaves,
 * Hurst exponent 0.75, ridged at the coarse octaves) scaled by the local slope of the base,
 * so steep valley walls get rough and valley floors stay smooth, as in real terrain.
 *
 * `scene`: a UInt16 4-band BSQ scene whose bands arrive as red, NIR, red, NIR (Landsat 8
 * B4/B5 upsampled). It derives blue and green from them, and gives every band field-scale
 * texture plus sensor noise, so that NDVI has structure and DEFLATE sees real entropy.
 *
 * The data are modified in place, a band or a block of rows at a time. Deterministic (fixed seeds).
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

/** 32-bit integer hash of a lattice point (a variant of the "lowbias32" mixer). */
function hash(x: number, y: number, seed: number): number {
  let h = (Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ Math.imul(seed, 0x9e3779b9)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

const GRADIENTS = 256;
const GX = new Float32Array(GRADIENTS);
const GY = new Float32Array(GRADIENTS);
for (let i = 0; i < GRADIENTS; i++) {
  GX[i] = Math.cos((2 * Math.PI * i) / GRADIENTS);
  GY[i] = Math.sin((2 * Math.PI * i) / GRADIENTS);
}

interface Octave {
  /** Wavelength in pixels, a power of two. */
  lambda: number;
  amplitude: number;
  /** Ridged: 1 - 2|n| instead of n (sharp crests). */
  ridged: boolean;
  seed: number;
}

/**
 * Adds the octaves' gradient noise for row `y` into `acc` (length `width`). Per lattice cell
 * the four gradients are looked up once; per pixel it is a dozen multiply-adds.
 */
function addNoiseRow(acc: Float32Array, y: number, octaves: readonly Octave[]): void {
  const width = acc.length;
  for (const o of octaves) {
    const L = o.lambda;
    const shift = Math.log2(L);
    const ox = hash(1, 2, o.seed) & 0xffff;
    const oy = hash(3, 4, o.seed) & 0xffff;
    const yy = y + oy;
    const cy = yy >> shift;
    const fy = ((yy & (L - 1)) + 0.5) / L;
    const v = fy * fy * fy * (fy * (fy * 6 - 15) + 10);
    for (let x = 0; x < width;) {
      const xx = x + ox;
      const cx = xx >> shift;
      const h00 = hash(cx, cy, o.seed) & (GRADIENTS - 1);
      const h10 = hash(cx + 1, cy, o.seed) & (GRADIENTS - 1);
      const h01 = hash(cx, cy + 1, o.seed) & (GRADIENTS - 1);
      const h11 = hash(cx + 1, cy + 1, o.seed) & (GRADIENTS - 1);
      const a00 = GY[h00]! * fy,
        a10 = GY[h10]! * fy,
        a01 = GY[h01]! * (fy - 1),
        a11 = GY[h11]! * (fy - 1);
      const g00 = GX[h00]!,
        g10 = GX[h10]!,
        g01 = GX[h01]!,
        g11 = GX[h11]!;
      const end = Math.min(width, x + (L - (xx & (L - 1))));
      for (; x < end; x++) {
        const fx = (((x + ox) & (L - 1)) + 0.5) / L;
        const u = fx * fx * fx * (fx * (fx * 6 - 15) + 10);
        const n00 = g00 * fx + a00,
          n10 = g10 * (fx - 1) + a10;
        const n01 = g01 * fx + a01,
          n11 = g11 * (fx - 1) + a11;
        const nx0 = n00 + u * (n10 - n00),
          nx1 = n01 + u * (n11 - n01);
        const n = (nx0 + v * (nx1 - nx0)) * 1.4; // about [-1, 1]
        acc[x] += o.amplitude * (o.ridged ? 0.6 - 1.2 * Math.abs(n) : n);
      }
    }
  }
}

function fbm(seed: number, top: number, bottom: number, topAmplitude: number, hurst: number, ridgedAbove: number): Octave[] {
  const out: Octave[] = [];
  for (let L = top, k = 0; L >= bottom; L /= 2, k++) {
    out.push({ lambda: L, amplitude: topAmplitude * Math.pow(L / top, hurst), ridged: L >= ridgedAbove, seed: seed * 131 + k });
  }
  return out;
}

function readAll(path: string, bytes: number): Buffer {
  const buf = Buffer.allocUnsafe(bytes);
  const fd = openSync(path, 'r');
  let done = 0;
  while (done < bytes) {
    const n = readSync(fd, buf, done, bytes - done, done);
    if (n === 0) throw new Error(`${path}: ${done} bytes, expected ${bytes}`);
    done += n;
  }
  closeSync(fd);
  return buf;
}

function writeAll(path: string, buf: Uint8Array): void {
  const fd = openSync(path, 'r+');
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, done);
  closeSync(fd);
}

function dem(path: string, width: number, height: number, groundPixel: number): void {
  const buf = readAll(path, width * height * 4);
  const z = new Float32Array(buf.buffer, buf.byteOffset, width * height);
  const base = new Float32Array(z); // slopes come from the unmodified surface
  // Wavelengths 128..2 px (about 1 km down to 16 m of Web Mercator here); 18 m at the top.
  const octaves = fbm(7, 128, 2, 18, 0.75, 32);
  const row = new Float32Array(width);
  const inv2 = 1 / (2 * groundPixel);
  for (let y = 0; y < height; y++) {
    row.fill(0);
    addNoiseRow(row, y, octaves);
    const up = Math.max(0, y - 1) * width,
      down = Math.min(height - 1, y + 1) * width,
      at = y * width;
    for (let x = 0; x < width; x++) {
      const c = base[at + x]!;
      if (c !== c) continue;
      const l = base[at + Math.max(0, x - 1)]!,
        r = base[at + Math.min(width - 1, x + 1)]!;
      const dzdx = (r - l) * inv2,
        dzdy = (base[down + x]! - base[up + x]!) * inv2;
      const slope = Math.sqrt(dzdx * dzdx + dzdy * dzdy);
      if (slope !== slope) continue;
      const m = 0.35 + 1.3 * Math.min(1, slope / 0.7);
      z[at + x] = c + m * row[x]!;
    }
    if ((y & 1023) === 1023) process.stderr.write(`  terrain: ${y + 1}/${height} rows\n`);
  }
  writeAll(path, buf);
}

function scene(path: string, width: number, height: number): void {
  const plane = width * height;
  const buf = readAll(path, plane * 4 * 2);
  const all = new Uint16Array(buf.buffer, buf.byteOffset, plane * 4);
  const b1 = all.subarray(0, plane),
    b2 = all.subarray(plane, 2 * plane);
  const red = all.subarray(2 * plane, 3 * plane),
    nir = all.subarray(3 * plane, 4 * plane);
  const NODATA = 65535;
  const fieldA = fbm(11, 64, 2, 1, 0.5, 1e9);
  const fieldB = fbm(23, 32, 2, 1, 0.5, 1e9);
  const n1 = new Float32Array(width),
    n2 = new Float32Array(width);
  let rng = 0x2545f491;
  const noise = () => {
    // xorshift32: sensor noise, uniform in [-1, 1).
    rng ^= rng << 13;
    rng ^= rng >>> 17;
    rng ^= rng << 5;
    return (rng >>> 0) / 2147483648 - 1;
  };
  const clamp = (v: number) => (v < 1 ? 1 : v > 65534 ? 65534 : Math.round(v));
  for (let y = 0; y < height; y++) {
    n1.fill(0);
    n2.fill(0);
    addNoiseRow(n1, y, fieldA);
    addNoiseRow(n2, y, fieldB);
    const at = y * width;
    for (let x = 0; x < width; x++) {
      const k = at + x;
      const r0 = red[k]!,
        i0 = nir[k]!;
      if (r0 === NODATA || i0 === NODATA) {
        b1[k] = NODATA;
        b2[k] = NODATA;
        red[k] = NODATA;
        nir[k] = NODATA;
        continue;
      }
      const ni = i0 * (1 + 0.1 * n1[x]!) + 24 * noise();
      const re = r0 * (1 + 0.07 * n2[x]! - 0.04 * n1[x]!) + 24 * noise();
      nir[k] = clamp(ni);
      red[k] = clamp(re);
      b1[k] = clamp(0.55 * re + 0.08 * ni + 900 + 24 * noise());
      b2[k] = clamp(0.62 * re + 0.22 * ni + 500 + 24 * noise());
    }
    if ((y & 1023) === 1023) process.stderr.write(`  scene: ${y + 1}/${height} rows\n`);
  }
  writeAll(path, buf);
}

const [mode, path, w, h, px] = process.argv.slice(2);
const width = Number(w),
  height = Number(h);
if (!path || !(width > 0) || !(height > 0)) {
  console.error('usage: terrain.js dem <raw> <width> <height> <groundMetresPerPixel> | scene <raw> <width> <height>');
  process.exit(2);
}
if (mode === 'dem') dem(path, width, height, Number(px));
else if (mode === 'scene') scene(path, width, height);
else {
  console.error(`terrain.js: unknown mode '${mode}'`);
  process.exit(2);
}
