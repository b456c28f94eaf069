import type { WireError } from '../errors.js';
import type { BlockCounts } from '../sources/blockcache.js';
import type { MosaicMethod } from '../sources/composite.js';
import type { TileFormat } from './encode.js';
import type { MemberRef } from './mosaic.js';

/** What a render thread needs to rebuild a layer: plain data, cheap to send. */
export interface LayerSpec {
  name: string;
  /** Layer version: config hash plus source versions; changes whenever a tile could. */
  version: string;
  /** The canonical pipeline (list or graph form), as src/ops/build.ts takes it. */
  pipeline: unknown;
  /** Source name to file path or URL (for a mosaic, its first member: the bands, nodata and palette all share). */
  sources: Record<string, string>;
  /** The sources that are mosaics, with their pixel selection; their members come with each task. */
  mosaics?: Record<string, { method: MosaicMethod }>;
}

/** One tile to render, as sent to a render thread. */
export interface RenderTask {
  layer: LayerSpec;
  z: number;
  x: number;
  y: number;
  /** Output pixels per side. */
  size: number;
  /** For each mosaic source of the layer, the members under this tile, in listed order. */
  members?: Record<string, MemberRef[]>;
  /**
   * The format the tile is wanted in: for PNG the thread writes an indexed PNG itself when the
   * tile has at most 256 colours, and hands over RGBA for the main thread's sharp otherwise.
   */
  format?: TileFormat;
  /**
   * Where the tile stands across the layer's data at its zoom, from 0 (west edge) to 1: the
   * pool gives each thread one band of columns, so that the COG blocks a thread decodes serve
   * the tiles it renders next.
   */
  affinity?: number;
}

export interface RenderResult {
  /** size*size*4 straight RGBA, or null when the tile has nothing to draw (or `png` holds it). */
  rgba: ArrayBuffer | null;
  /** The finished PNG file, when the thread encoded the tile. */
  png?: ArrayBuffer;
  /** Milliseconds: reading and decoding sources, the rest of the graph, and encoding in the thread. */
  readMs: number;
  opsMs: number;
  encodeMs?: number;
  /** The thread's block requests since its previous result (so that the sum over results is exact). */
  blocks?: BlockCounts;
  /** Quality checks that failed with `on_fail: warn`. */
  warnings: { check: string; message: string }[];
}

/** What the pool's entry answers: a result, or the error that ended the tile, as data. */
export type RenderReply = { ok: true; result: RenderResult } | { ok: false; error: WireError };

/** The settings a render thread takes from the pool (piscina's workerData). */
export interface RenderThreadData {
  /** Its decoded-block cache, in MiB (BLOCK_CACHE_MB). */
  blockCacheMb: number;
}
