/**
 * Tiles without HTTP, in the calling thread: the layer's own graph (the one the loader built,
 * a program's functions in it) runs in a LayerGraph, as a render thread runs its rebuilt copy.
 */
import { TileError } from '../errors.js';
import type { Layer } from '../layers/layer.js';
import { tileMembers } from '../layers/mosaic.js';
import { encodeTile, type TileFormat } from '../render/encode.js';
import { LayerGraph, type Tile, type TileRender } from '../render/renderer.js';
import { DEFAULT_MOSAIC_MAX_FILES } from '../service/tiles.js';
import { Cog } from '../sources/cog.js';
import { Graph } from './graph.js';

/** Layers' graphs with their sources open, each built once, kept until `close`. */
export class LocalRenderer {
  private readonly graphs = new Map<Layer, Promise<LayerGraph>>();

  graph(layer: Layer): Promise<LayerGraph> {
    let p = this.graphs.get(layer);
    if (!p) {
      p = openGraph(layer);
      p.catch(() => this.graphs.delete(layer));
      this.graphs.set(layer, p);
    }
    return p;
  }

  async render(layer: Layer, tile: Tile): Promise<TileRender> {
    return (await this.graph(layer)).render(tile);
  }

  async close(): Promise<void> {
    const open = [...this.graphs.values()];
    this.graphs.clear();
    await Promise.all(open.map((p) => p.then((g) => g.close()).catch(() => {})));
  }
}

async function openGraph(layer: Layer): Promise<LayerGraph> {
  const cogs = new Map<string, Cog>();
  try {
    for (const [name, location] of Object.entries(layer.spec.sources)) cogs.set(name, await Cog.open(location));
    const graph = new LayerGraph(layer.graph, cogs, layer.spec.mosaics);
    await graph.prepare();
    return graph;
  } catch (err) {
    await Promise.all([...cogs.values()].map((c) => c.close().catch(() => {})));
    throw err;
  }
}

export interface RenderTileOptions {
  /** 2: the same ground area at twice the pixels (`@2x`). Default 1. */
  scale?: 1 | 2;
  /** Default png. */
  format?: TileFormat;
  /** The most members of one mosaic a tile may read (MOSAIC_MAX_FILES). Default 64. */
  mosaicMaxFiles?: number;
}

/**
 * One tile of a layer (a `Graph`, or a layer that `loadLayer` read) as PNG or WebP bytes, or
 * null when it has nothing to draw (outside the data, or all nodata, whatever the layer's
 * `empty`). Rendered in the calling thread, `tap` and `lambda` steps included; the sources are
 * opened for the call and closed after it. A zoom outside the layer's range, or x or y off the
 * grid, throws.
 */
export async function renderTile(layer: Layer | Graph, z: number, x: number, y: number, opts: RenderTileOptions = {}): Promise<Buffer | null> {
  const l = layer instanceof Graph ? await layer.load() : layer;
  const { minzoom, maxzoom, tileSize } = l.config;
  if (![z, x, y].every(Number.isInteger)) throw new TileError('bad_request', 'bad tile', `z, x and y are whole numbers, got ${z}/${x}/${y}`);
  if (z < minzoom || z > maxzoom) throw new TileError('not_found', 'zoom out of range', `layer '${l.name}' serves zooms ${minzoom}-${maxzoom}`);
  const n = 2 ** z;
  if (x < 0 || y < 0 || x >= n || y >= n) throw new TileError('not_found', 'tile out of range', `at zoom ${z}, x and y run from 0 to ${n - 1}`);
  const size = tileSize * (opts.scale ?? 1);
  const members = l.mosaics.size ? tileMembers(l, { z, x, y }, opts.mosaicMaxFiles ?? DEFAULT_MOSAIC_MAX_FILES).members : undefined;
  const renderer = new LocalRenderer();
  try {
    const { rgba } = await renderer.render(l, { z, x, y, size, members });
    return rgba && (await encodeTile(rgba, size, opts.format ?? 'png'));
  } finally {
    await renderer.close();
  }
}
