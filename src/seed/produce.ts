/**
 * Where a seeding run's tiles come from: the server's own tile service and render pool, without
 * its caches (the target is the cache), or a running server over HTTP (`--via`).
 */
import { TileCache, type TileEntry } from '../cache/tiles.js';
import type { Settings } from '../config.js';
import { TileError } from '../errors.js';
import type { Layer } from '../layers/layer.js';
import { createLogger } from '../log.js';
import { RenderPool } from '../render/pool.js';
import { TileService } from '../service/tiles.js';
import { bodyUpTo, fetchWithin } from '../sources/bytesource.js';
import type { CellRecord } from '../sources/cells.js';
import type { TileId } from '../tiles/mercator.js';
import type { ProduceMany } from './runner.js';

export type Produce = (t: TileId) => Promise<TileEntry>;

export interface Renderer {
  /** The tiles of one layer, in one format. */
  producer(layer: Layer, format: 'png' | 'webp'): Produce;
  /** The same tiles, neighbours in one render task (a metatile). */
  many(layer: Layer, format: 'png' | 'webp'): ProduceMany;
  /** The cells of the blocks the renders decoded so far (with `cells`), for the run's manifest. */
  cells(): CellRecord[];
  close(): Promise<void>;
}

/** Blocks whose cells a run keeps at most (about 50 MB): a manifest keeps those of 65536 blocks a source. */
const MAX_CELL_RECORDS = 1 << 17;

/** `cells`: the threads record the cells of the blocks they decode (a run that writes a manifest: src/seed/lineage.ts `withCells`). */
export function openRenderer(settings: Settings, opts: { cells?: boolean } = {}): Renderer {
  const pool = new RenderPool({
    threads: settings.workers,
    maxQueue: 100_000,
    timeoutMs: settings.renderTimeoutMs,
    blockCacheMb: settings.blockCacheMb,
    kernels: settings.kernels,
    cells: opts.cells,
  });
  // Once per block (a block pushed out of a thread's cache and decoded again gives the same cells).
  const cells = new Map<string, CellRecord>();
  const service = new TileService({
    pool,
    cache: new TileCache(0),
    log: createLogger('silent'),
    mosaicMaxFiles: settings.mosaicMaxFiles,
    cells: (records) => {
      for (const r of records) if (cells.size < MAX_CELL_RECORDS) cells.set(`${r.location}@${r.version}:${r.image}:${r.index}`, r);
    },
  });
  return {
    producer: (layer, format) => (t) => service.tile(service.request(layer, t.z, t.x, t.y, 1, format)),
    many: (layer, format) => (ts) => service.renderMany(ts.map((t) => service.request(layer, t.z, t.x, t.y, 1, format))),
    cells: () => [...cells.values()],
    close: () => pool.close(),
  };
}

/**
 * The largest answer `--via` takes as a tile: far past any tile's PNG or WebP (a 2048-pixel
 * RGBA tile is 16 MiB before it is compressed). A server may send without end, or a page of
 * megabytes; what passes this is refused as it arrives, never held.
 */
export const MAX_VIA_TILE_BYTES = 32 * 2 ** 20;
/** How long `--via` waits for a tile, its answer read whole. */
const VIA_TIMEOUT_MS = 60_000;
/** Of an error's answer, the start quoted in the failure. */
const QUOTED_ERROR_BYTES = 200;

/** `--via`: asks the server for each tile over HTTP, as a map client would, each within `timeoutMs`. */
export function viaProducer(base: string, layer: Pick<Layer, 'name'>, format: 'png' | 'webp', timeoutMs = VIA_TIMEOUT_MS): Produce {
  const root = base.replace(/\/+$/, '');
  return async (t) =>
    fetchWithin(`${root}/tiles/${encodeURIComponent(layer.name)}/${t.z}/${t.x}/${t.y}.${format}`, {}, timeoutMs, async (res, signal) => {
      const etag = res.headers.get('etag') ?? '';
      if (res.status === 204) {
        await res.body?.cancel();
        return { body: null, etag };
      }
      if (res.status !== 200) {
        const { bytes } = await bodyUpTo(res, QUOTED_ERROR_BYTES, false, signal);
        throw new TileError('upstream', 'upstream failed', `${res.url} answered ${res.status}: ${Buffer.from(bytes).toString('utf8')}`);
      }
      const { bytes, more } = await bodyUpTo(res, MAX_VIA_TILE_BYTES, true, signal);
      if (more) throw new TileError('upstream', 'upstream failed', `${res.url} answered more than ${MAX_VIA_TILE_BYTES} bytes for one tile`);
      return { body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), etag, type: res.headers.get('content-type') ?? undefined };
    });
}
