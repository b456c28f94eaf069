import type { LayerSpec } from '../layers/layer.js';

/** One tile to render, as sent to a render thread. */
export interface RenderTask {
  layer: LayerSpec;
  z: number;
  x: number;
  y: number;
  /** Output pixels per side. */
  size: number;
  /**
   * Where the tile stands across the layer's data at its zoom, from 0 (west edge) to 1: the
   * pool gives each thread one band of columns, so that the COG blocks a thread decodes serve
   * the tiles it renders next.
   */
  affinity?: number;
}

export interface RenderResult {
  /** size*size*4 straight RGBA, or null when the tile has nothing to draw. */
  rgba: ArrayBuffer | null;
  /** Milliseconds: reading and decoding sources, and the rest of the graph. */
  readMs: number;
  opsMs: number;
  /** Quality checks that failed with `on_fail: warn`. */
  warnings: { check: string; message: string }[];
}
