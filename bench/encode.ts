/**
 * PNG (and lossless WebP) settings measured on real tiles: size against time, so the
 * server's encoder settings are chosen by numbers (issue 5). `parallelMs` is wall time per
 * tile with 8 encodes in flight (sharp on libuv's threads, as under load); `callerMs` is
 * the part of each call that blocks the calling thread before sharp hands the work off.
 * The indexed PNG rows are the render threads' own encoder (src/render/png.ts), synchronous,
 * over the tiles it takes (`share`: those with at most 256 distinct colours): from the RGBA,
 * and from the colour map's entries when the tiles end in a ramp (a palette in table order,
 * rows filtered by the one above).
 */
import sharp, { type Sharp } from 'sharp';
import { PNG_LEVEL } from '../src/render/encode.js';
import type { TableCodes } from '../src/ops/raster.js';
import { INDEXED_PNG_LEVEL, indexedPng, indexedPngOfCodes, OPAQUE_PNG_LEVEL, ORDERED_PNG_LEVEL, rgbaPng } from '../src/render/png.js';

export interface EncodeRow {
  format: string;
  parallelMs: number;
  callerMs: number;
  /** CPU time of the process a tile (sharp's libuv threads included). */
  cpuMs: number;
  meanBytes: number;
  /** Share of the tiles the setting could encode (indexed PNG needs at most 256 colours). */
  share?: number;
}

type Setting = { format: string; encode: (s: Sharp) => Sharp };

const SETTINGS: Setting[] = [
  ...[1, 2, 3, 4, 6, 9].map((level) => ({
    format: `png level ${level}${level === PNG_LEVEL ? ' (encodeTile today: PNG tiles of more than 256 colours with KERNELS=reference)' : ''}`,
    encode: (s: Sharp) => s.png({ compressionLevel: level, adaptiveFiltering: false, palette: false }),
  })),
  { format: 'png level 6, adaptive filtering', encode: (s) => s.png({ compressionLevel: 6, adaptiveFiltering: true, palette: false }) },
  { format: 'webp lossless effort 2', encode: (s) => s.webp({ lossless: true, effort: 2 }) },
];

export async function encodeTable(tiles: readonly Uint8Array[], coded: readonly TableCodes[] = [], size = 256, rounds = 2): Promise<EncodeRow[]> {
  const rows: EncodeRow[] = [];
  const r2 = (v: number) => Math.round(v * 100) / 100;
  for (const s of SETTINGS) {
    const one = (rgba: Uint8Array, caller: number[]) => {
      const t0 = performance.now();
      const p = s.encode(sharp(rgba, { raw: { width: size, height: size, channels: 4 } })).toBuffer();
      caller.push(performance.now() - t0);
      return p;
    };
    await one(tiles[0]!, []);
    const caller: number[] = [];
    let bytes = 0,
      n = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < tiles.length; i += 8) {
        const out = await Promise.all(tiles.slice(i, i + 8).map((t) => one(t, caller)));
        for (const b of out) {
          bytes += b.length;
          n++;
        }
      }
    }
    rows.push({
      format: s.format,
      parallelMs: r2((performance.now() - t0) / n),
      callerMs: r2(caller.reduce((a, b) => a + b, 0) / caller.length),
      cpuMs: cpuMsSince(c0, n),
      meanBytes: Math.round(bytes / n),
    });
  }
  // The render threads' PNG of more than 256 colours (libdeflate, synchronous) on every tile, against sharp's `png level 4` row.
  rows.push(
    inThread(
      `rgba png: rgb less the row above at level ${OPAQUE_PNG_LEVEL} when opaque, else rgba at level ${PNG_LEVEL}, libdeflate (render threads today: PNG tiles of more than 256 colours)`,
      tiles,
      (t) => rgbaPng(t, size) ?? null,
      rounds,
    ),
  );
  for (const level of [1, 3, 4, 6, 9])
    rows.push(
      inThread(
        `indexed png level ${level}${level === INDEXED_PNG_LEVEL ? " (render threads today, tiles without a ramp's entries)" : ''}`,
        tiles,
        (t) => indexedPng(t, size, level),
        rounds,
      ),
    );
  const ramps = coded.filter((c) => c.ordered);
  for (const level of ramps.length ? (['runs', 1, 2, 4, 6] as const) : [])
    rows.push(
      inThread(
        `indexed png of a ramp's entries, rows less the row above, ${level === 'runs' ? 'runs and literals (src/render/runs.ts)' : `level ${level}`}${level === ORDERED_PNG_LEVEL ? ' (render threads today)' : ''}`,
        ramps,
        (c) => indexedPngOfCodes(c, size, level),
        rounds,
      ),
    );
  return rows;
}

/**
 * A render thread's own encoder, synchronous, over the inputs it takes (`encode` answers null
 * for the others), after a round untimed: the first row to call a function would otherwise pay
 * for V8's optimising it, and the rows after it not.
 */
function inThread<T>(format: string, inputs: readonly T[], encode: (input: T) => Uint8Array | null, rounds: number): EncodeRow {
  for (const input of inputs) encode(input);
  let bytes = 0,
    n = 0,
    ms = 0;
  const c0 = process.cpuUsage();
  for (let r = 0; r < rounds; r++) {
    for (const input of inputs) {
      const t0 = performance.now();
      const png = encode(input);
      ms += performance.now() - t0;
      if (png) {
        bytes += png.length;
        n++;
      }
    }
  }
  const mean = Math.round((ms / (rounds * inputs.length)) * 100) / 100;
  return {
    format,
    parallelMs: mean,
    callerMs: mean,
    cpuMs: cpuMsSince(c0, rounds * inputs.length),
    meanBytes: n ? Math.round(bytes / n) : 0,
    share: Math.round((n / (rounds * inputs.length)) * 100) / 100,
  };
}

function cpuMsSince(start: NodeJS.CpuUsage, tiles: number): number {
  const { user, system } = process.cpuUsage(start);
  return Math.round(((user + system) / 1000 / tiles) * 100) / 100;
}
