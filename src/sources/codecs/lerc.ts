/**
 * LERC (compression 34887, as libtiff and GDAL write it): each block is a LERC blob, optionally
 * compressed again with DEFLATE or ZSTD, as the LercParameters tag (50674) says: [LERC version,
 * additional compression: 0 none, 1 DEFLATE, 2 ZSTD]. Decoded by Esri's own decoder (the `lerc`
 * package, WebAssembly shipped in the package), loaded once per thread before the first block.
 * Pixels the blob's mask marks invalid become NaN in float data, as GDAL reads them.
 */
import * as Lerc from 'lerc';
import { inflateSync } from 'node:zlib';
import { SourceError } from '../../errors.js';
import { unzstdUpTo } from './zstd.js';

/** LercParameters' second value. */
export const LercAdditional = { None: 0, Deflate: 1, Zstd: 2 } as const;

let loading: Promise<void> | undefined;

/** Loads the decoder (once per thread); decodeLerc needs it loaded. */
export function lercReady(): Promise<void> {
  loading ??= Lerc.load();
  return loading;
}

/**
 * One LERC block as `samples` values a pixel, pixel-interleaved, in the given typed array
 * type (the block's SampleFormat and BitsPerSample). A DEFLATE or ZSTD layer may decode to
 * no more than the samples and a mask could take.
 */
export function decodeLerc(
  block: Uint8Array,
  additional: number,
  shape: { width: number; height: number; samples: number; float: boolean; bytesPerSample: number },
): Uint8Array {
  const { width, height, samples, float, bytesPerSample } = shape;
  if (!Lerc.isLoaded()) throw new SourceError('LERC decoder not loaded');
  let blob: Uint8Array;
  // The blob is at most a little larger than the raw samples (a header and a mask).
  const most = width * height * samples * bytesPerSample + width * height + 4096;
  if (additional === LercAdditional.Deflate) blob = inflatePrefix(block, most);
  else if (additional === LercAdditional.Zstd) blob = unzstdUpTo(block, most);
  else if (additional === LercAdditional.None) blob = block;
  else throw new SourceError(`LERC: unknown additional compression ${additional}`);
  let data: Lerc.LercData;
  try {
    const info = Lerc.getBlobInfo(blob);
    if (info.width !== width || info.height !== height || info.depthCount * info.bandCount !== samples) {
      throw new Error(`blob is ${info.width}x${info.height}x${info.depthCount * info.bandCount}, expected ${width}x${height}x${samples}`);
    }
    data = Lerc.decode(blob, { returnInterleaved: true });
  } catch (err) {
    throw new SourceError(`LERC decode failed: ${(err as Error).message}`);
  }
  const values = data.pixels.length === 1 ? data.pixels[0]! : interleaveBands(data.pixels, width * height);
  if (values.BYTES_PER_ELEMENT !== bytesPerSample || values.length !== width * height * samples) {
    throw new SourceError(
      `LERC block holds ${data.pixelType} values, ${values.length} of them; expected ${width * height * samples} of ${bytesPerSample} bytes`,
    );
  }
  if (float && data.mask) {
    const f = values as Float32Array | Float64Array;
    for (let p = 0; p < width * height; p++) if (!data.mask[p]) for (let s = 0; s < samples; s++) f[p * samples + s] = NaN;
  }
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Bands stored one after another (a LERC blob of several bands) as pixel-interleaved samples. */
function interleaveBands(bands: Lerc.PixelTypedArray[], pixels: number): Lerc.PixelTypedArray {
  const out = new (bands[0]!.constructor as new (n: number) => Lerc.PixelTypedArray)(pixels * bands.length);
  bands.forEach((band, b) => {
    for (let p = 0; p < pixels; p++) out[p * bands.length + b] = band[p]!;
  });
  return out;
}

function inflatePrefix(block: Uint8Array, most: number): Uint8Array {
  try {
    return inflateSync(block, { maxOutputLength: most });
  } catch (err) {
    throw new SourceError(`LERC: DEFLATE layer failed: ${(err as Error).message}`);
  }
}
