import type { LayerSpec } from '../layers/layer.js';

/** One tile to render, as sent to a render thread. */
export interface RenderTask {
  layer: LayerSpec;
  z: number;
  x: number;
  y: number;
  /** Output pixels per side. */
  size: number;
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
