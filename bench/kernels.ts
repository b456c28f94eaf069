/**
 * The kernels of src/kernels.ts against their references, each measured alone:
 * - WebAssembly (KERNELS=fast against KERNELS=reference for the WebAssembly kernels only,
 *   inflate and deflate left to libdeflate in both): the render thread's entry in this thread,
 *   one tile at a time, the same tiles (every n-th of zooms 10-14), on an empty block cache
 *   each round (the predictors run when a block is decoded), the two taking turns so that
 *   both meet the same state of the machine;
 * - inflate: libdeflate against Node's zlib on the same whole blocks of each bench file (the
 *   predictor and the rest of decoding left out), taking turns.
 * Ratios of medians.
 */
import { statSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { inflateInto, useKernels, type Kernels } from '../src/kernels.js';
import type { Layer } from '../src/layers/layer.js';
import { blockCache } from '../src/sources/blockcache.js';
import { FileSource } from '../src/sources/bytesource.js';
import { readTiff } from '../src/sources/tiff.js';
import { singleThread, type DirectResult } from './direct.js';
import { countByZoom, everyNth, tilesCovering } from './tiles.js';

const ROUNDS = Number(process.env.BENCH_KERNELS_ROUNDS ?? 3);

export interface KernelsDeps {
  zooms: [number, number];
  log: (msg: string) => void;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

export interface KernelsFigures {
  wasm: { wasmVsReference: number };
  inflate: { libdeflateVsZlib: number };
}

export async function kernelsAB(layers: Record<'dem' | 'ndvi', Layer>, deps: KernelsDeps): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {
    what: 'WebAssembly: the kernels against their JavaScript references, render thread entry in this thread, one tile at a time, an empty block cache each round; inflate: libdeflate against Node zlib on the same whole blocks; the two of each taking turns, medians of rounds',
  };
  try {
    for (const which of ['dem', 'ndvi'] as const) {
      const layer = layers[which];
      const all = tilesCovering(layer.bounds, deps.zooms[0], deps.zooms[1]);
      const sample = everyNth(all, Math.max(1, Math.ceil(all.length / 300)));
      const rates: Record<Kernels, number[]> = { reference: [], fast: [] };
      const read: Record<Kernels, number[]> = { reference: [], fast: [] };
      const ops: Record<Kernels, number[]> = { reference: [], fast: [] };
      await singleThread(layer.spec, sample.slice(0, 2)); // the graph built
      for (let r = 0; r < ROUNDS; r++) {
        for (const kind of ['reference', 'fast'] as const) {
          useKernels(kind, 'wasm');
          blockCache.resize(256 * 1024 * 1024);
          const res: DirectResult = await singleThread(layer.spec, sample, 20_000);
          rates[kind].push(res.perSecond);
          read[kind].push(res.phasesMs.read);
          ops[kind].push(res.phasesMs.ops);
        }
      }
      const wasm = {
        tiles: { measured: sample.length, byZoom: countByZoom(sample) },
        tilesPerSec: { reference: median(rates.reference), wasm: median(rates.fast) },
        readMsPerTile: { reference: median(read.reference), wasm: median(read.fast) },
        opsMsPerTile: { reference: median(ops.reference), wasm: median(ops.fast) },
        rounds: rates,
        wasmVsReference: round(median(rates.fast) / median(rates.reference)),
      };
      useKernels('fast');
      const inflate = await inflateBlocks(layer.sources[0]!.location);
      out[which] = { wasm, inflate };
      deps.log(
        `  kernels ${which}: WebAssembly ${wasm.tilesPerSec.wasm} tiles/s against ${wasm.tilesPerSec.reference} (${wasm.wasmVsReference}x; read ${wasm.readMsPerTile.wasm} against ${wasm.readMsPerTile.reference} ms a tile, ops ${wasm.opsMsPerTile.wasm} against ${wasm.opsMsPerTile.reference}); inflate ${inflate.libdeflateMs} against ${inflate.zlibMs} ms a block (${inflate.libdeflateVsZlib}x)`,
      );
    }
  } finally {
    useKernels('fast');
  }
  return out;
}

/** Milliseconds to inflate a block, libdeflate against zlib, on 40 blocks spread over the file's full-resolution image. */
async function inflateBlocks(file: string): Promise<{ blocks: number; zlibMs: number; libdeflateMs: number; libdeflateVsZlib: number }> {
  const src = new FileSource(file);
  try {
    const im = (await readTiff(src, statSync(file).size)).images[0]!;
    const expected = (im.blockWidth * im.blockHeight * (im.planar === 2 ? 1 : im.samplesPerPixel) * im.bitsPerSample) / 8;
    const blocks: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      const k = Math.floor((im.blockOffsets.length * (i + 0.5)) / 40);
      blocks.push(await src.read(im.blockOffsets[k]!, im.blockByteCounts[k]!));
    }
    const zlib: number[] = [],
      libdeflate: number[] = [];
    const dst = Buffer.allocUnsafeSlow(expected);
    for (let r = 0; r < 5; r++) {
      let t = performance.now();
      for (const b of blocks) inflateSync(b, { chunkSize: expected + 1 });
      zlib.push((performance.now() - t) / blocks.length);
      t = performance.now();
      for (const b of blocks) if (inflateInto(b, dst) !== expected) throw new Error(`${file}: libdeflate did not fill a block`);
      libdeflate.push((performance.now() - t) / blocks.length);
    }
    return {
      blocks: blocks.length,
      zlibMs: round(median(zlib), 3),
      libdeflateMs: round(median(libdeflate), 3),
      libdeflateVsZlib: round(median(zlib) / median(libdeflate)),
    };
  } finally {
    await src.close();
  }
}
