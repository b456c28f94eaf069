/**
 * PNG (and lossless WebP) settings measured on real tiles: size against time, so the
 * server's encoder settings are chosen by numbers (issue 5). `parallelMs` is wall time per
 * tile with 8 encodes in flight (sharp on libuv's threads, as under load); `callerMs` is
 * the part of each call that blocks the calling thread before sharp hands the work off.
 */
import sharp, { type Sharp } from 'sharp';
import { PNG_LEVEL } from '../src/render/encode.js';

export interface EncodeRow {
  format: string;
  parallelMs: number;
  callerMs: number;
  meanBytes: number;
}

type Setting = { format: string; encode: (s: Sharp) => Sharp };

const SETTINGS: Setting[] = [
  ...[1, 2, 3, 4, 6, 9].map((level) => ({
    format: `png level ${level}${level === PNG_LEVEL ? ' (encodeTile today)' : ''}`,
    encode: (s: Sharp) => s.png({ compressionLevel: level, adaptiveFiltering: false, palette: false }),
  })),
  { format: 'png level 6, adaptive filtering', encode: (s) => s.png({ compressionLevel: 6, adaptiveFiltering: true, palette: false }) },
  { format: 'webp lossless effort 2', encode: (s) => s.webp({ lossless: true, effort: 2 }) },
];

export async function encodeTable(tiles: readonly Uint8Array[], size = 256, rounds = 2): Promise<EncodeRow[]> {
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
    let bytes = 0, n = 0;
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < tiles.length; i += 8) {
        const out = await Promise.all(tiles.slice(i, i + 8).map((t) => one(t, caller)));
        for (const b of out) { bytes += b.length; n++; }
      }
    }
    rows.push({ format: s.format, parallelMs: r2((performance.now() - t0) / n), callerMs: r2(caller.reduce((a, b) => a + b, 0) / caller.length), meanBytes: Math.round(bytes / n) });
  }
  return rows;
}
