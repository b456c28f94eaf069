/**
 * `--to dir:PATH`: an XYZ pyramid `PATH/{z}/{x}/{y}.{png|webp}` (y from the top, as in the
 * tile URLs) that any static file server, or GDAL's TMS minidriver, serves as it is. Each tile
 * is written to a hidden temporary file in its own directory and renamed over the final name:
 * rename(2) within one file system is atomic, so a reader sees the old tile or the new one,
 * never half of one, and a killed run leaves no truncated tile behind.
 */
import { lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { TileEntry } from '../cache/tiles.js';
import type { TileId } from '../tiles/mercator.js';
import type { SeedLayer, SeedTarget } from './target.js';

/** `PATH/tilegraph.json`: whose tiles the directory holds. */
interface DirRecord {
  layer: string;
  version: string;
  format: 'png' | 'webp';
  tileSize: number;
  minzoom: number;
  maxzoom: number;
  bounds: [number, number, number, number];
  /**
   * When this version was first recorded, on the file system's clock (mtime of the record as
   * it was created, in ms). Tiles of the previous version stay in place until they are
   * overwritten, so a tile counts only if its mtime is not older: without this, a run of a new
   * version that is killed half way would, when resumed, take the stale tiles for fresh ones.
   */
  since: number;
  /**
   * `--since`: the version a run carries tiles over from, and its `since`. A tile of that
   * version (not older than its `since`) is carried over by touching it, or, by a run that
   * settles the directory (SeedLayer.settles), kept as it is: when that run completes, every
   * tile of the previous version left in place is one of this version, and `settleDir` records
   * the previous `since` as this version's.
   */
  previous?: { version: string; since: number; coverages?: string[] };
  /**
   * Of each run that wrote tiles of this version, its coverage (SeedLayer.coverage); absent
   * when one did not say. A run settles the directory only over tiles of one coverage, its own.
   */
  coverages?: string[];
}

/**
 * After a `--since` run into `root` completed with every tile done (none failed, not stopped):
 * each tile of the previous version it left in place was carried over, each it reached was
 * rendered again, so the tiles of this version are those not older than the previous `since`.
 * The record says so, and forgets the previous version. Nothing changes when the record is
 * of another version, has no previous one (settled already), or when the tiles of either
 * version may lie outside this run's coverage (the run stamped what it carried).
 */
export async function settleDir(root: string, layer: { name: string; version: string; coverage: string }): Promise<void> {
  const file = path.join(root, DIR_RECORD);
  const record = await readRecord(file);
  if (record?.layer !== layer.name || record.version !== layer.version || typeof record.previous?.since !== 'number') return;
  // As openDirTarget decided whether to stamp: the previous version's tiles and this one's, all of this coverage.
  const one = (c: string[] | undefined) => c?.length === 1 && c[0] === layer.coverage;
  if (!one(record.coverages) || !one(record.previous.coverages)) return;
  const { previous, ...rest } = record;
  await writeAtomic(file, () => `${JSON.stringify({ ...rest, since: previous.since }, null, 2)}\n`);
}

/** The record a tile directory keeps of its layer version (`since` reads it to know a tile directory). */
export const DIR_RECORD = 'tilegraph.json';

let temporaries = 0;

/** A hidden temporary beside `file`, of this process, never used before. */
const temporaryFor = (file: string): string => path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++temporaries}.tmp`);

/**
 * Writes `file` through a hidden temporary in the same directory, `data` made from the
 * temporary's creation time, which is the file system's clock (the one that stamps the tiles).
 */
async function writeAtomic(file: string, data: (mtimeMs: number) => string): Promise<void> {
  const tmp = temporaryFor(file);
  try {
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(data((await handle.stat()).mtimeMs));
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** writeAtomic for a tile, synchronously: see `put`. */
function writeAtomicSync(file: string, data: Uint8Array): void {
  const tmp = temporaryFor(file);
  try {
    writeFileSync(tmp, data, { flag: 'wx' });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Whether `file` is a regular file of exactly these bytes (a tile rendered again the same). */
function holds(file: string, data: Uint8Array): boolean {
  try {
    const s = lstatSync(file, { throwIfNoEntry: false });
    return s !== undefined && s.isFile() && s.size === data.length && readFileSync(file).equals(data);
  } catch {
    return false;
  }
}

async function readRecord(file: string): Promise<Partial<DirRecord> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    record = undefined;
  }
  if (typeof record !== 'object' || record === null || typeof (record as DirRecord).layer !== 'string') {
    throw new Error(`${file}: not a tilegraph record (expected JSON with "layer" and "version"); move it away or choose another directory`);
  }
  return record as Partial<DirRecord>;
}

/**
 * mkdir -p, one level at a time. Node's own recursive mkdir never returns where the system
 * answers ENOENT for a directory whose parent exists (anything under /proc): it makes the
 * parent again and retries, forever.
 */
async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && (await stat(dir)).isDirectory()) return;
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    await makeDirectory(parent);
  }
  // The parent is there now: whatever this answers is the answer.
  await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}

export async function openDirTarget(root: string, layer: SeedLayer): Promise<SeedTarget> {
  // The system's word for what failed, with the directory it failed for.
  const cannot = (what: string) => (err: Error) => {
    throw new Error(`${root}: cannot ${what} (${err.message})`);
  };
  const info = await stat(root).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    return cannot('use it as a tile directory')(err);
  });
  if (info && !info.isDirectory()) throw new Error(`${root}: exists and is not a directory`);
  await makeDirectory(root).catch(cannot('make the directory'));

  const recordFile = path.join(root, DIR_RECORD);
  const old = await readRecord(recordFile);
  if (old && old.layer !== layer.name) {
    throw new Error(`${root}: holds tiles of layer '${old.layer}' (${DIR_RECORD}), not '${layer.name}'; seed each layer into its own directory`);
  }
  // The format is a seeding option, not part of the layer version: a change makes the tiles stale too.
  const sameLayout = old?.format === layer.format && old.tileSize === layer.tileSize && typeof old.since === 'number';
  const same = sameLayout && old?.version === layer.version;
  // A run that follows the version the directory holds: its tiles may be carried over. Resumed, it keeps the record's.
  const previous = !layer.previous
    ? undefined
    : same
      ? old!.previous
      : sameLayout && old?.version === layer.previous
        ? { version: layer.previous, since: old.since!, ...(old.coverages && { coverages: old.coverages }) }
        : undefined;
  // The coverages of this version's runs: unknown once a run does not say its own.
  const coverages = layer.coverage === undefined ? undefined : !same ? [layer.coverage] : old!.coverages && [...new Set([...old!.coverages, layer.coverage])];
  // Tiles of the previous version are kept unstamped only when all of them lie in this run's
  // coverage: then, once it completes, `settleDir` may count every one left in place as carried.
  const settles = layer.settles === true && previous?.coverages?.length === 1 && previous.coverages[0] === layer.coverage && coverages?.length === 1;
  const record = (since: number): DirRecord => ({
    layer: layer.name,
    version: layer.version,
    format: layer.format,
    tileSize: layer.tileSize,
    minzoom: layer.minzoom,
    maxzoom: layer.maxzoom,
    bounds: layer.bounds,
    since,
    ...(previous && { previous }),
    ...(coverages && { coverages }),
  });
  let since = same ? old!.since! : 0;
  if (!same || JSON.stringify(old) !== JSON.stringify(record(since))) {
    await writeAtomic(recordFile, (mtimeMs) => {
      if (!same) since = mtimeMs;
      return `${JSON.stringify(record(since), null, 2)}\n`;
    }).catch(cannot(`write its record ${DIR_RECORD}`));
  }

  const tileFile = (t: TileId) => path.join(root, String(t.z), String(t.x), `${t.y}.${layer.format}`);
  // A tile kept as this version's: on the file system's clock, never before `since`.
  const stamp = (file: string) => {
    const now = new Date(Math.max(Date.now(), Math.ceil(since)));
    utimesSync(file, now, now);
  };
  const made = new Set<string>();
  let closed = false;
  return {
    name: `dir:${root}`,
    // Synchronous, as are carry and put: a stat of a local file takes microseconds; through
    // libuv's thread pool it costs several times the CPU, which the render threads want.
    async has(t: TileId) {
      let s;
      try {
        s = statSync(tileFile(t), { throwIfNoEntry: false });
      } catch {
        return false;
      }
      return s !== undefined && s.isFile() && s.mtimeMs >= since;
    },
    // Synchronous: a stat and a utimes of a local file take microseconds, and a --since run
    // carries most of its tiles; through libuv's thread pool each costs several times more.
    async carry(t: TileId) {
      // Each tile of the previous version is in place (or was empty), all in this run's coverage: kept as it is.
      if (settles && layer.trusted) return true;
      const file = tileFile(t);
      let s;
      try {
        s = statSync(file);
      } catch {
        return false;
      }
      if (!s.isFile()) return false;
      if (s.mtimeMs >= since) return true;
      if (!previous || s.mtimeMs < previous.since) return false;
      // Stamping costs two system calls a tile, most of a --since run's time: a run that settles the directory leaves them.
      if (!settles) stamp(file);
      return true;
    },
    async put(t: TileId, entry: TileEntry) {
      if (closed) throw new Error(`${root}: put after close`);
      if (!entry.body) {
        // Empty in this version: a file an earlier run wrote there goes, as a full seed would never have written it.
        if (old) rmSync(tileFile(t), { force: true });
        return;
      }
      if (entry.type && entry.type !== `image/${layer.format}`) throw new Error(`${tileFile(t)}: a ${entry.type} tile in a ${layer.format} pyramid`);
      const file = tileFile(t);
      // Over an earlier run's tiles (a --since run re-renders every tile a changed block reaches,
      // most of them unchanged): the same bytes are stamped as this version's, not written again.
      if (old && holds(file, entry.body)) {
        stamp(file);
        return;
      }
      const dir = path.dirname(file);
      // Synchronous: 999 tiles of 18 KB written this way took 40 ms of CPU, and 130-185 ms
      // through libuv's thread pool (open, write, close and rename each a round trip); a
      // seeding run is CPU-bound, and a local write blocks for tens of microseconds.
      if (!made.has(dir)) {
        mkdirSync(dir, { recursive: true });
        made.add(dir);
      }
      writeAtomicSync(file, entry.body);
    },
    // Every put was complete when it resolved: nothing is buffered.
    close: async () => {
      closed = true;
    },
  };
}
