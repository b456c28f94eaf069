/**
 * Block codecs that decode whole images rather than bytes: JPEG, WebP and LERC. Each gives the
 * block's samples directly (no predictor, no byte-order pass), and JPEG and WebP decode
 * asynchronously (libjpeg-turbo and libwebp through sharp), so they sit beside the byte
 * decompressors of decompressors.ts instead of among them.
 */
import type { OutputInfo } from 'sharp';
import { loadSharp } from '../../sharp.js';
import { SourceError } from '../../errors.js';
import { Compression, PlanarConfiguration, SampleFormat, sampleType, type Samples } from '../types.js';
import { withTables } from './jpeg.js';
import { decodeLerc, lercReady } from './lerc.js';

export const IMAGE_COMPRESSIONS: ReadonlySet<number> = new Set([Compression.Jpeg, Compression.Webp, Compression.Lerc]);

/** What an image block decodes to, and the image's fields its codec needs. */
export interface ImageBlock {
  compression: number;
  width: number;
  height: number;
  /** Samples a pixel in this block (1 for a plane of a planar image). */
  samples: number;
  bitsPerSample: number;
  sampleFormat: number;
  /** JPEGTables (tag 347): the tables an abbreviated JPEG block leaves out. */
  jpegTables?: Uint8Array;
  /** LercParameters (tag 50674) second value: 0 none, 1 DEFLATE, 2 ZSTD. */
  lercAdditional?: number;
}

/**
 * Why an image with these fields cannot be read with its image codec, or undefined when it can.
 * Checked when a file opens, so that a layer that cannot render is refused with the reason.
 */
export function imageCodecProblem(im: {
  compression: number;
  bitsPerSample: number;
  sampleFormat: number;
  samplesPerPixel: number;
  planar: number;
}): string | undefined {
  const bytes = im.bitsPerSample === 8 && (im.sampleFormat === SampleFormat.Uint || im.sampleFormat === SampleFormat.Void);
  const samples = im.planar === PlanarConfiguration.Separate ? 1 : im.samplesPerPixel;
  if (im.compression === Compression.Jpeg) {
    if (!bytes) return `JPEG with ${im.bitsPerSample}-bit samples (only 8-bit JPEG is read)`;
    if (samples !== 1 && samples !== 3) return `JPEG with ${samples} samples a pixel (1 or 3 are read)`;
  }
  if (im.compression === Compression.Webp) {
    if (!bytes) return `WebP with ${im.bitsPerSample}-bit samples`;
    if (samples !== 3 && samples !== 4) return `WebP with ${samples} samples a pixel (3 or 4 are read)`;
  }
  return undefined;
}

/** Loads what an image codec needs before its first block (LERC's WebAssembly). */
export async function imageCodecReady(compression: number): Promise<void> {
  if (compression === Compression.Lerc) await lercReady();
}

/** One image block as typed samples, pixel-interleaved; in a SharedArrayBuffer with `shared`. */
export async function decodeImageBlock(bytes: Uint8Array, b: ImageBlock, shared: boolean): Promise<Samples> {
  const type = sampleType(b.bitsPerSample, b.sampleFormat);
  const n = b.width * b.height * b.samples;
  let raw: Uint8Array;
  if (b.compression === Compression.Lerc) {
    raw = decodeLerc(bytes, b.lercAdditional ?? 0, {
      width: b.width,
      height: b.height,
      samples: b.samples,
      float: b.sampleFormat === SampleFormat.Float,
      bytesPerSample: b.bitsPerSample >>> 3,
    });
  } else if (b.compression === Compression.Jpeg) {
    raw = await decodeImage('JPEG', withTables(bytes, b.jpegTables), b.width, b.height, b.samples);
  } else if (b.compression === Compression.Webp) {
    raw = await decodeImage('WebP', bytes, b.width, b.height, b.samples);
  } else {
    throw new SourceError(`compression ${b.compression} is not an image codec`);
  }
  const size = n * (type.bits >>> 3);
  const out = new Uint8Array(shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size));
  out.set(raw.subarray(0, size));
  return new type.array(out.buffer, 0, n);
}

/**
 * An image stream sharp reads (JPEG, WebP) as `channels` 8-bit samples a pixel. A stream with
 * alpha decoded to three channels drops it; one without it decoded to four gets it opaque.
 */
async function decodeImage(codec: string, bytes: Uint8Array, width: number, height: number, channels: number): Promise<Uint8Array> {
  let data: Buffer, info: OutputInfo;
  const sharp = await loadSharp();
  try {
    let img = sharp(bytes, { failOn: 'error', limitInputPixels: width * height });
    // sharp writes greyscale out as three equal channels unless asked for one.
    if (channels === 1) img = img.extractChannel(0);
    else if (channels === 3) img = img.removeAlpha();
    else if (channels === 4) img = img.ensureAlpha();
    ({ data, info } = await img.raw().toBuffer({ resolveWithObject: true }));
  } catch (err) {
    throw new SourceError(`${codec} decode failed: ${(err as Error).message}`);
  }
  if (info.width !== width || info.height !== height || info.channels !== channels) {
    throw new SourceError(`${codec} block is ${info.width}x${info.height} with ${info.channels} channel(s), expected ${width}x${height} with ${channels}`);
  }
  return data;
}
