/**
 * The WebAssembly kernels against their JavaScript references (KERNELS=wasm against
 * KERNELS=js), each measured alone: the render thread's entry in this thread, one tile at a
 * time, the same tiles (every n-th of zooms 10-14), on an empty block cache each round (the
 * predictors run when a block is decoded), the two taking turns so that both meet the same
 * state of the machine. Ratios of medians.
 */
import { useKernels, type Kernels } from '../src/kernels.js';
import type { Layer } from '../src/layers/layer.js';
import { blockCache } from '../src/sources/blockcache.js';
import { singleThread, type DirectResult } from './direct.js';
import { countByZoom, everyNth, tilesCovering } from './tiles.js';

const ROUNDS = Number(process.env.BENCH_KERNELS_ROUNDS ?? 3);

export interface KernelsDeps {
  zooms: [number, number];
  log: (msg: string) => void;
}

export async function kernelsAB(layers: Record<'dem' | 'ndvi', Layer>, deps: KernelsDeps): Promise<Record<string, unknown>> {
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const round = (v: number) => Math.round(v * 100) / 100;
  const out: Record<string, unknown> = {
    what: 'KERNELS=wasm against KERNELS=js: the render thread entry in this thread, one tile at a time, an empty block cache each round, the two taking turns; medians of rounds',
  };
  try {
    for (const which of ['dem', 'ndvi'] as const) {
      const layer = layers[which];
      const all = tilesCovering(layer.bounds, deps.zooms[0], deps.zooms[1]);
      const sample = everyNth(all, Math.max(1, Math.ceil(all.length / 300)));
      const rates: Record<Kernels, number[]> = { js: [], wasm: [] };
      const read: Record<Kernels, number[]> = { js: [], wasm: [] };
      await singleThread(layer.spec, sample.slice(0, 2)); // the graph built
      for (let r = 0; r < ROUNDS; r++) {
        for (const kind of ['js', 'wasm'] as const) {
          useKernels(kind);
          blockCache.resize(256 * 1024 * 1024);
          const res: DirectResult = await singleThread(layer.spec, sample, 20_000);
          rates[kind].push(res.perSecond);
          read[kind].push(res.phasesMs.read);
        }
      }
      const entry = {
        tiles: { measured: sample.length, byZoom: countByZoom(sample) },
        tilesPerSec: { js: median(rates.js), wasm: median(rates.wasm) },
        readMsPerTile: { js: median(read.js), wasm: median(read.wasm) },
        rounds: rates,
        wasmVsJs: round(median(rates.wasm) / median(rates.js)),
      };
      out[which] = entry;
      deps.log(
        `  kernels ${which}: wasm ${entry.tilesPerSec.wasm} tiles/s against js ${entry.tilesPerSec.js} (${entry.wasmVsJs}x; read ${entry.readMsPerTile.wasm} against ${entry.readMsPerTile.js} ms a tile)`,
      );
    }
  } finally {
    useKernels('wasm');
  }
  return out;
}
