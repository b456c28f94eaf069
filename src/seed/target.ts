/**
 * Where a seeding run puts its tiles: the shared cache (L2, as the servers read it), a
 * directory pyramid, or an MBTiles file. Each target knows which layer version its tiles
 * belong to, so that a later run skips exactly the tiles it already holds for that version.
 */
import type { TileEntry } from '../cache/tiles.js';
import type { TileId } from '../tiles/mercator.js';

export interface SeedTarget {
  /** For messages and the manifest: `cache`, `dir:PATH`, `mbtiles:PATH`. */
  readonly name: string;
  /** Whether the target holds this tile under the layer version it was opened for. */
  has(t: TileId): Promise<boolean>;
  /** Stores a tile; an empty one (`body` null) is not written. Writes are atomic per tile. */
  put(t: TileId, entry: TileEntry): Promise<void>;
  /** Flushes and closes; the target is complete and readable afterwards. */
  close(): Promise<void>;
}

/** What a target records of the layer it holds tiles of. */
export interface SeedLayer {
  name: string;
  title: string;
  description: string;
  attribution: string;
  /** The layer version (config hash plus source versions): tiles of another version are stale. */
  version: string;
  /** WGS84 [west, south, east, north]. */
  bounds: [number, number, number, number];
  minzoom: number;
  maxzoom: number;
  format: 'png' | 'webp';
  tileSize: number;
}
