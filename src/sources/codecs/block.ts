/**
 * Decoding of one TIFF block (a tile or a strip): decompression, undoing the
 * predictor and byte order, and viewing the result as typed samples.
 *
 * Section numbers refer to the TIFF 6.0 specification (Adobe, 1992);
 * "TN3" is Adobe Photoshop TIFF Technical Note 3 (floating point predictor).
 *
 * This is the hot path of the tile server, so everything here works on typed
 * arrays in plain loops: no per-pixel closures, allocations or DataViews.
 * One output buffer is allocated per block; scratch tables are module-level
 * and reused, which is safe because decoding is synchronous.
 */
import { SourceError } from '../../errors.js';
import { copyOut, floatingPoint32, horizontal } from '../../kernels.js';
import { Predictor, SampleFormat, sampleType, type BlockLayout, type Samples, type SampleType } from '../types.js';
import { DECOMPRESSORS } from './decompressors.js';
import { MAX_BLOCK_BYTES } from './output.js';
import { NATIVE_LE, swapBytes, undoFloatingPointPredictor, undoHorizontalPredictor } from './predictor.js';

/**
 * Decodes the raw, still-compressed bytes of one TIFF tile or strip.
 *
 * Returns `width * height * samples` samples, pixel-interleaved as stored, in
 * native byte order, typed from bitsPerSample + sampleFormat. The result
 * never shares memory with `bytes` and owns its whole ArrayBuffer
 * (byteOffset 0), so it can be transferred to another thread; with `shared`
 * it lives in a SharedArrayBuffer instead, written by the predictor's own pass
 * (no extra copy) when there is one.
 *
 * Data longer than the block needs is ignored (as libtiff does, e.g. padded
 * strips); shorter data, corrupt streams and unsupported layouts throw a
 * SourceError saying what failed.
 */
export function decodeBlock(bytes: Uint8Array, layout: BlockLayout, opts: { shared?: boolean } = {}): Samples {
  const { compression, predictor, width, height, samples, bitsPerSample, sampleFormat, littleEndian } = layout;
  const { type, sampleCount, bytes: expected } = blockShape(layout);
  const bytesPerSample = bitsPerSample >>> 3;

  if (predictor === Predictor.FloatingPoint) {
    if (sampleFormat !== SampleFormat.Float) {
      throw new SourceError(`TIFF predictor 3 (floating point) needs float samples, got sample format ${sampleFormat}`);
    }
  } else if (predictor !== Predictor.None && predictor !== Predictor.Horizontal) {
    throw new SourceError(`unsupported TIFF predictor ${predictor}`);
  }

  const decompress = DECOMPRESSORS.get(compression);
  if (!decompress) throw new SourceError(`unsupported TIFF compression ${compression}`);
  // Decoded into shared memory, the decompressed bytes are scratch: they need not own their buffer.
  const raw = decompress(bytes, expected, opts.shared === true);
  const out: Uint8Array = opts.shared ? new Uint8Array(new SharedArrayBuffer(expected)) : raw;

  if (predictor === Predictor.FloatingPoint) {
    // TN3: the byte planes are always most significant first whatever the
    // file's byte order, and reassembly yields native order directly, so no
    // swap here (libtiff likewise disables its post-decode swab for fpAcc).
    const done = samples === 1 && bytesPerSample === 4 && NATIVE_LE && floatingPoint32(raw, out, width, height);
    if (!done) undoFloatingPointPredictor(raw, out, width * samples, height, samples, bytesPerSample);
  } else {
    // Section 2 / 14: the predictor differences sample *values*, so the file
    // byte order must be undone before the accumulation.
    if (littleEndian !== NATIVE_LE && bytesPerSample > 1) swapBytes(raw, bytesPerSample);
    if (predictor === Predictor.Horizontal) {
      if (!horizontal(raw, out, bytesPerSample, width * samples, height, samples))
        undoHorizontalPredictor(raw, out, bytesPerSample, width * samples, height, samples);
    } else if (out !== raw) {
      copyOut(out, raw, 0, expected);
    }
  }
  return new type.array(out.buffer, 0, sampleCount);
}

/**
 * The sample type and size of a block as its layout says, checked before anything is
 * allocated for it: whole dimensions, a sample type tilegraph reads, at most MAX_BLOCK_BYTES.
 */
export function blockShape(layout: Pick<BlockLayout, 'width' | 'height' | 'samples' | 'bitsPerSample' | 'sampleFormat'>): {
  type: SampleType;
  sampleCount: number;
  bytes: number;
} {
  const { width, height, samples, bitsPerSample, sampleFormat } = layout;
  checkDimension('width', width);
  checkDimension('height', height);
  checkDimension('samples', samples);
  const type = sampleType(bitsPerSample, sampleFormat);
  const sampleCount = width * height * samples;
  const bytes = sampleCount * (bitsPerSample >>> 3);
  if (bytes > MAX_BLOCK_BYTES) {
    throw new SourceError(`TIFF block of ${width}x${height}x${samples} ${bitsPerSample}-bit samples is too large (${bytes} bytes; at most ${MAX_BLOCK_BYTES})`);
  }
  return { type, sampleCount, bytes };
}

function checkDimension(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new SourceError(`invalid TIFF block ${name} ${value}`);
  }
}
