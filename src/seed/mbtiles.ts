/**
 * `--to mbtiles:PATH`: one MBTiles 1.3 file (https://github.com/mapbox/mbtiles-spec/blob/master/1.3/spec.md).
 *
 * Tiles are deduplicated as mbutil and tileserver-gl store them: `map` places a tile, `images`
 * holds each distinct tile once under the SHA-1 of its bytes, and `tiles` is a view joining
 * the two ("SQLite views that produce compatible results are equally valid", §Database). A
 * layer's flat areas (nodata, one colour) then cost one row of `images` each.
 *
 * Journal: WAL while the run writes, DELETE again on close. A seeding run is long, and a tile
 * server or a preview may read the file while it grows: in WAL mode readers see every
 * committed batch without blocking the writer's commits, and commits append to the log
 * without an fsync each (synchronous=NORMAL; a power cut loses at most the last batches,
 * which `has()` then reports missing and the next run renders again). On close the log is
 * checkpointed into the file and the journal mode set back to DELETE, which removes the -wal
 * and -shm files and the WAL mark in the header: the result is one plain file, which readers
 * without write access to its directory (GDAL on a read-only share) can open.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import type { TileEntry } from '../cache/tiles.js';
import type { TileId } from '../tiles/mercator.js';
import { wrapBounds } from '../tiles/mercator.js';
import { layerCenter, mercatorBounds } from '../tiles/tilejson.js';
import { notRegularFile } from './runner.js';
import type { SeedLayer, SeedTarget } from './target.js';

/** A batch is committed at this many tiles, or this long after its first tile, and on close. */
const FLUSH_TILES = 256;
const FLUSH_MS = 200;

/** `MPBX` at offset 68 of the header: the application id SQLite registers for MBTiles (§Database Specifications). */
const MBTILES_APPLICATION_ID = 0x4d504258;

const SCHEMA = `
  CREATE TABLE metadata (name TEXT, value TEXT);
  CREATE UNIQUE INDEX name ON metadata (name);
  CREATE TABLE map (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_id TEXT, tilegraph_previous INTEGER);
  CREATE UNIQUE INDEX map_index ON map (zoom_level, tile_column, tile_row);
  CREATE TABLE images (tile_id TEXT PRIMARY KEY, tile_data BLOB);
  CREATE VIEW tiles AS
    SELECT map.zoom_level AS zoom_level, map.tile_column AS tile_column, map.tile_row AS tile_row, images.tile_data AS tile_data
    FROM map JOIN images ON images.tile_id = map.tile_id;
`;

/** A tile's place in `map`: zoom, column and TMS row. */
interface Place {
  z: number;
  x: number;
  row: number;
}

interface PendingTile extends Place {
  id: string;
  body: Buffer;
}

/** The metadata of a file tilegraph wrote, undefined for an empty database; refuses any other file. */
function readMetadata(db: Database.Database, file: string): Map<string, string> | undefined {
  const names = new Set(
    db
      .prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type IN ('table', 'view')`)
      .all()
      .map((r) => r.name),
  );
  if (names.size === 0) return undefined;
  const meta = ['metadata', 'map', 'images', 'tiles'].every((n) => names.has(n))
    ? new Map(
        db
          .prepare<[], { name: string; value: string }>('SELECT name, value FROM metadata')
          .all()
          .map((r) => [r.name, r.value]),
      )
    : undefined;
  if (!meta?.has('tilegraph_layer')) throw new Error(`${file}: an MBTiles or SQLite file that tilegraph did not write; choose another file`);
  return meta;
}

export async function openMbtilesTarget(file: string, layer: SeedLayer): Promise<SeedTarget> {
  if (await notRegularFile(file)) throw new Error(`${file}: exists and is not a file`);
  let db: Database.Database | undefined;
  try {
    db = new Database(file);
    return mbtilesTarget(db, file, layer);
  } catch (err) {
    db?.close();
    const message = (err as Error).message;
    throw message.includes(file) ? err : new Error(`${file}: ${message}`, { cause: err });
  }
}

function mbtilesTarget(db: Database.Database, file: string, layer: SeedLayer): SeedTarget {
  // One write transaction from the first read to the metadata, so that two runs opening the same
  // file at once do not both create it; a refusal rolls back (db.close) and leaves it untouched.
  db.exec('BEGIN IMMEDIATE');
  const old = readMetadata(db, file);
  if (old && old.get('tilegraph_layer') !== layer.name) {
    throw new Error(
      `${file}: holds tiles of layer '${old.get('tilegraph_layer')}' (metadata tilegraph_layer), not '${layer.name}'; seed each layer into its own file`,
    );
  }
  // The format is a seeding option, not part of the layer version: a change makes the tiles stale too.
  const sameLayout = old?.get('format') === layer.format && old.get('tilegraph_tile_size') === String(layer.tileSize);
  const stale = old !== undefined && (old.get('tilegraph_version') !== layer.version || !sameLayout);
  // `--since` after the version the file holds: its tiles stay, marked as of the previous version, until carried over or rendered.
  const carrying = stale && sameLayout && layer.previous !== undefined && old.get('tilegraph_version') === layer.previous;
  // §Metadata `version`: "the version of the tileset, as a plain number", a revision of the
  // tileset. The layer version is a hash, so it goes to `tilegraph_version`; `version` counts
  // the layer versions this file has held.
  const previous = Number(old?.get('version'));
  const revision = Number.isInteger(previous) && previous > 0 ? previous + (stale ? 1 : 0) : 1;

  if (!old) db.exec(SCHEMA);
  const columns = db.prepare<[], { name: string }>('PRAGMA table_info(map)').all();
  if (!columns.some((c) => c.name === 'tilegraph_previous')) db.exec('ALTER TABLE map ADD COLUMN tilegraph_previous INTEGER');
  if (carrying) db.exec('UPDATE map SET tilegraph_previous = 1');
  else if (stale) db.exec('DELETE FROM map; DELETE FROM images;');
  db.pragma(`application_id = ${MBTILES_APPLICATION_ID}`);
  const setMeta = db.prepare<[string, string]>('INSERT OR REPLACE INTO metadata (name, value) VALUES (?, ?)');
  const dropMeta = db.prepare<[string]>('DELETE FROM metadata WHERE name = ?');
  const written = db.prepare<[], { lo: number | null; hi: number | null }>('SELECT min(zoom_level) AS lo, max(zoom_level) AS hi FROM map');
  const bounds = mercatorBounds(layer.bounds);
  /** §Metadata: minzoom and maxzoom are the zooms the file holds, and `center` lies within them. */
  const writeMetadata = () => {
    const { lo, hi } = written.get()!;
    const [minzoom, maxzoom] = lo === null || hi === null ? [layer.minzoom, layer.maxzoom] : [lo, hi];
    const rows: [string, string][] = [
      ['name', layer.title || layer.name],
      ['format', layer.format],
      ['bounds', wrapBounds(bounds).join(',')],
      ['center', layerCenter(bounds, minzoom, maxzoom, layer.tileSize).join(',')],
      ['minzoom', String(minzoom)],
      ['maxzoom', String(maxzoom)],
      ['attribution', layer.attribution],
      ['description', layer.description],
      ['type', 'overlay'],
      ['version', String(revision)],
      ['scheme', 'tms'],
      ['tilegraph_layer', layer.name],
      ['tilegraph_version', layer.version],
      ['tilegraph_tile_size', String(layer.tileSize)],
    ];
    for (const [name, value] of rows) {
      if (value === '') dropMeta.run(name);
      else setMeta.run(name, value);
    }
  };
  writeMetadata();
  db.exec('COMMIT');
  // The journal mode cannot change inside a transaction.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');

  // A row still marked as of the previous version is not a tile of this one, until carried over.
  const tileState = db
    .prepare<[number, number, number], number | null>('SELECT tilegraph_previous FROM map WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?')
    .pluck();
  const carryTile = db.prepare<[number, number, number]>('UPDATE map SET tilegraph_previous = NULL WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?');
  const insertImage = db.prepare<[string, Buffer]>('INSERT OR IGNORE INTO images (tile_id, tile_data) VALUES (?, ?)');
  const insertMap = db.prepare<[number, number, number, string]>('INSERT OR IGNORE INTO map (zoom_level, tile_column, tile_row, tile_id) VALUES (?, ?, ?, ?)');
  const updateMap = db.prepare<[string, number, number, number]>(
    'UPDATE map SET tile_id = ?, tilegraph_previous = NULL WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?',
  );
  const removeTile = db.prepare<[number, number, number]>('DELETE FROM map WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?');
  let orphans = false;
  const commit = db.transaction((tiles: PendingTile[], carried: Place[], emptied: Place[]) => {
    for (const t of carried) carryTile.run(t.z, t.x, t.row);
    for (const t of emptied) if (removeTile.run(t.z, t.x, t.row).changes > 0) orphans = true;
    for (const t of tiles) {
      insertImage.run(t.id, t.body);
      if (insertMap.run(t.z, t.x, t.row, t.id).changes === 0) {
        updateMap.run(t.id, t.z, t.x, t.row);
        orphans = true;
      }
    }
  });

  const pending = new Map<string, PendingTile>();
  /** Tiles carried over since the last commit. */
  const carried = new Map<string, Place>();
  /** Tiles empty in this version since the last commit: a row an earlier run wrote for them goes. */
  const emptied = new Map<string, Place>();
  let timer: NodeJS.Timeout | undefined;
  let failure: unknown;
  let closed = false;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if ((pending.size === 0 && carried.size === 0 && emptied.size === 0) || failure) return;
    const tiles = [...pending.values()];
    const kept = [...carried.values()];
    const gone = [...emptied.values()];
    pending.clear();
    carried.clear();
    emptied.clear();
    try {
      commit(tiles, kept, gone);
    } catch (err) {
      // The batch's puts have resolved: fail every later call rather than lose tiles silently.
      failure = new Error(`${file}: writing ${tiles.length} tiles failed: ${(err as Error).message}`, { cause: err });
    }
  };
  /** A change waits for the batch: written once FLUSH_TILES are queued or FLUSH_MS have passed. */
  const queued = () => {
    if (pending.size + carried.size + emptied.size >= FLUSH_TILES) flush();
    else timer ??= setTimeout(flush, FLUSH_MS);
  };
  const check = () => {
    if (failure) throw failure;
    if (closed) throw new Error(`${file}: the target is closed`);
  };
  // §Tiles: tile_row counts from the bottom (TMS), "2^zoom - 1 - y" of the XYZ row.
  const tmsRow = (t: TileId) => 2 ** t.z - 1 - t.y;

  return {
    name: `mbtiles:${file}`,
    async has(t: TileId) {
      check();
      const row = tmsRow(t);
      const key = `${t.z}/${t.x}/${row}`;
      return pending.has(key) || carried.has(key) || tileState.get(t.z, t.x, row) === null;
    },
    async carry(t: TileId) {
      check();
      const row = tmsRow(t);
      const key = `${t.z}/${t.x}/${row}`;
      if (pending.has(key) || carried.has(key)) return true;
      const state = tileState.get(t.z, t.x, row);
      if (state === undefined) return false;
      if (state !== null) {
        carried.set(key, { z: t.z, x: t.x, row });
        queued();
      }
      return true;
    },
    async put(t: TileId, entry: TileEntry) {
      check();
      if (!entry.body) {
        // Empty in this version: a row an earlier run wrote (kept for carrying over, or resumed) goes.
        if (old) {
          const row = tmsRow(t);
          emptied.set(`${t.z}/${t.x}/${row}`, { z: t.z, x: t.x, row });
          queued();
        }
        return;
      }
      if (entry.type && entry.type !== `image/${layer.format}`)
        throw new Error(`${file}: a ${entry.type} tile (${t.z}/${t.x}/${t.y}) in a ${layer.format} tileset`);
      const row = tmsRow(t);
      pending.set(`${t.z}/${t.x}/${row}`, { z: t.z, x: t.x, row, id: createHash('sha1').update(entry.body).digest('hex'), body: entry.body });
      queued();
      check();
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        flush();
        if (failure) throw failure;
        db.transaction(() => {
          // A tile put twice with other bytes leaves its first image unused.
          if (orphans) db.exec('DELETE FROM images WHERE tile_id NOT IN (SELECT tile_id FROM map)');
          writeMetadata();
        })();
        let mode: unknown;
        try {
          db.pragma('wal_checkpoint(TRUNCATE)');
          mode = db.pragma('journal_mode = DELETE', { simple: true });
        } catch (err) {
          mode = (err as Error).message;
        }
        if (mode !== 'delete') {
          throw new Error(
            `${file}: cannot leave WAL mode (${String(mode)}): another connection has the file open. Its tiles are complete, but readers ` +
              'need its -wal and -shm files until it is switched back: close the other readers and run the seed again (it skips the tiles it has)',
          );
        }
      } finally {
        db.close();
      }
    },
  };
}
