import type { WireError } from '../errors.js';
import type { Kernels } from '../kernels.js';
import type { BlockCounts } from '../sources/blockcache.js';
import type { CellRecord } from '../sources/cells.js';
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
  /** Files the graph reads besides its sources (models): as the layer file names them, to their paths. */
  files?: Record<string, string>;
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
  /** Web Mercator bounds when the task is an area rather than a tile of the grid (`/preview`, `/statistics`). */
  bounds?: [number, number, number, number];
  /** `/point`: the values of every step of the graph at one pixel, and of the sources under it. */
  probe?: PointProbe;
  /** `/statistics`: the statistics of one step's bands over the pixels of a mask. */
  stats?: StatsRequest;
}

export interface PointProbe {
  /** The output pixel (column, row) of the task's grid, without the buffer. */
  i: number;
  j: number;
  /** The point in WGS84, for the sources' own pixels. */
  lon: number;
  lat: number;
}

/**
 * One step of the graph at the probed pixel: band values (null where masked) or RGBA; `values`
 * null (and `kind` null) where the step has nothing there (the tile misses the data).
 */
export interface NodeValue {
  name: string;
  op: string;
  kind: 'bands' | 'rgba' | null;
  values: (number | null)[] | null;
}

/** A source's own pixel under the point, at full resolution, as `gdallocationinfo` reads it. */
export interface SourceValue {
  source: string;
  /** The file or URL (a mosaic's member) the pixel was read from. */
  location: string;
  /** Column and row at full resolution, and the point in the source's CRS. */
  pixel: [number, number];
  crs: [number, number];
  values: (number | null)[];
}

export interface PointValues {
  nodes: NodeValue[];
  sources: SourceValue[];
  /** The tile's pixel as it is drawn (straight RGBA), null where the tile has nothing to draw. */
  rgba: number[] | null;
}

export interface StatsRequest {
  /** The step whose bands are measured; by default the last one that gives bands. */
  node?: string;
  /** One byte per output pixel of the grid (without the buffer): 1 inside the area. */
  mask: Uint8Array;
  /** Histogram bins. */
  bins: number;
}

export interface BandStats {
  band: number;
  /** Valid pixels inside the area, and their share of the area's pixels. */
  count: number;
  valid_fraction: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  /** 2nd, 25th, 50th, 75th and 98th percentiles (nearest rank). */
  percentiles: Record<'p2' | 'p25' | 'p50' | 'p75' | 'p98', number | null>;
  /** Counts per bin of equal width from min to max, and the bins' edges. */
  histogram: { counts: number[]; edges: number[] };
}

export interface AreaStats {
  node: string;
  op: string;
  bands: BandStats[];
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
  /** The thread's decoded-block cache after the tile: the bytes it holds, and which thread of the pool (set by the pool). */
  blockCache?: { thread: number; bytes: number };
  /** The cells of the blocks the thread decoded since its previous result, when it records them (RenderThreadData.cells). */
  cells?: CellRecord[];
  /**
   * The thread's own memory, sampled at most once a second (absent otherwise): its JavaScript
   * heap in use, the array buffers it allocated (its rasters, blocks it decoded, shared or not),
   * and its garbage collections since its previous sample (major: the whole heap; minor: the
   * young generation).
   */
  memory?: { heapBytes: number; arrayBufferBytes: number; collections: { major: number; minor: number } };
  /** Quality checks that failed with `on_fail: warn`. */
  warnings: { check: string; message: string }[];
  point?: PointValues;
  stats?: AreaStats;
}

/** What the pool's entry answers: a result, or the error that ended the tile, as data. */
export type RenderReply = { ok: true; result: RenderResult } | { ok: false; error: WireError };

/** The settings a render thread takes from the pool (piscina's workerData). */
export interface RenderThreadData {
  /** Its decoded-block cache, in MiB (BLOCK_CACHE_MB). */
  blockCacheMb: number;
  /** KERNELS. */
  kernels?: Kernels;
  /** Record the cells of every block decoded (a seeding run's threads: src/sources/cells.ts). */
  cells?: boolean;
}
