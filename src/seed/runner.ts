/**
 * A seeding run: tiles from an enumeration, rendered `concurrency` at a time, stored in a
 * target, with retries, a failure log, and a progress file from which an interrupted run
 * resumes without rendering again what it stored.
 */
import { appendFile, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { TileEntry } from '../cache/tiles.js';
import type { TileId } from '../tiles/mercator.js';
import { SEED_BLOCK } from './coverage.js';
import type { SeedTarget } from './target.js';

export interface ZoomCounts {
  /** Tiles rendered and stored (or warmed, with --via). */
  rendered: number;
  /** Tiles with nothing to draw: rendered, not stored in a directory or MBTiles. */
  empty: number;
  /** Tiles the target already held for this layer version, or that a resumed run had done. */
  skipped: number;
  /** Tiles of the previous version that no change reaches, kept as they are (`--since`). */
  carried: number;
  failed: number;
  /** Bytes of the tiles stored. */
  bytes: number;
}

export interface SeedResult {
  byZoom: Map<number, ZoomCounts>;
  total: ZoomCounts;
  seconds: number;
  /** Stopped by the signal before every tile was done. */
  interrupted: boolean;
}

export interface Progress {
  done: number;
  total: number;
  counts: ZoomCounts;
  tilesPerSecond: number;
  /** Seconds left at the current rate. */
  etaS: number;
}

export interface RunOptions {
  /** Renders in flight at once (a metatile is one). */
  concurrency: number;
  /** Tiles per side of a metatile (1, 2, 4 or 8), rendered in one task through `produceMany`; 1 renders tile by tile. */
  metatile?: number;
  /** How a metatile's tiles are rendered together; without it, tile by tile. */
  produceMany?: ProduceMany;
  /** Further attempts after a failure, with doubling back-off from 200 ms. */
  retries: number;
  /** Render even what the target holds. */
  force: boolean;
  /** How many tiles the enumeration yields, for progress and ETA. */
  total: number;
  /** Where to resume from, and where to write how far it got. */
  progressFile: string;
  /** Continue from `progressFile`. */
  resume: boolean;
  /** What makes a run the same run: refused on resume when it differs. */
  params: Record<string, unknown>;
  /** One JSON line per tile that failed for good. */
  failureLog: string;
  signal: AbortSignal;
  onProgress?: (p: Progress) => void;
  /**
   * `--since`: the tiles a change reaches. They are rendered whatever the target holds; every
   * other tile is carried over from the previous version (rendered only if the target lacks it).
   */
  stale?: (t: TileId) => boolean;
}

/** What the progress file holds: the run's parameters and which tiles (by enumeration ordinal) are done. */
interface ProgressState {
  params: Record<string, unknown>;
  /** Every tile before this ordinal is done. */
  doneBefore: number;
  /** Tiles at or after `doneBefore` that are done too. */
  doneAfter: number[];
}

export const zeroCounts = (): ZoomCounts => ({ rendered: 0, empty: 0, skipped: 0, carried: 0, failed: 0, bytes: 0 });

/** What became of one tile. */
export type TileOutcome = { kind: 'rendered'; bytes: number } | { kind: 'empty' | 'skipped' | 'carried' } | { kind: 'failed'; attempts: number; error: string };

/**
 * Write failures no retry mends: the target's file system is full or read-only (an MBTiles
 * file's SQLite says SQLITE_FULL), or Redis is past its maxmemory with nothing it may evict
 * (REDIS_OOM, src/seed/cache.ts). Every later tile would fail the same way, so the run stops
 * at the first, keeping what it stored and its progress file.
 */
const TARGET_FULL = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'SQLITE_FULL', 'REDIS_OOM']);

/** True for an error of a target that can take no more tiles (TARGET_FULL). */
export function targetFull(err: unknown): boolean {
  return TARGET_FULL.has(String((err as { code?: unknown } | null)?.code));
}

/** Neighbouring tiles rendered in one task: an entry for each, or the error that tile failed with. */
export type ProduceMany = (ts: TileId[]) => Promise<(TileEntry | Error)[]>;

export interface TileWork {
  produce: (t: TileId) => Promise<TileEntry>;
  /** Metatiles (`seedGroup`): the tiles of one in one task. Without it, a group's tiles are rendered one by one. */
  produceMany?: ProduceMany;
  target: SeedTarget;
  /** Further attempts after a failure, with doubling back-off from 200 ms. */
  retries: number;
  /** Render even what the target holds. */
  force: boolean;
  /** `--since`: whether a change reaches the tile (then it is rendered, else carried over). */
  stale?: (t: TileId) => boolean;
  signal: AbortSignal;
}

/**
 * One tile into the target: skipped when the target holds it (unless forced), carried over
 * when no change reaches it, else rendered, with retries. A tile that keeps failing is an
 * outcome; it throws only when the target can take no more tiles (`targetFull`).
 */
export async function seedTile(t: TileId, w: TileWork): Promise<TileOutcome> {
  return (await settled(t, w)) ?? renderTile(t, w);
}

/**
 * The tiles of one metatile into the target: each skipped or carried over as `seedTile` does,
 * the others rendered together in one task (`produceMany`). A tile whose render or store
 * failed there counts that as its first attempt and goes on alone with the retries left. Throws
 * only as `seedTile` does.
 */
export async function seedGroup(ts: readonly TileId[], w: TileWork): Promise<TileOutcome[]> {
  const many = w.produceMany;
  if (!many || ts.length === 1) {
    const outcomes: TileOutcome[] = [];
    for (const t of ts) outcomes.push(await seedTile(t, w));
    return outcomes;
  }
  const outcomes = await Promise.all(ts.map((t) => settled(t, w)));
  const todo = ts.filter((_, i) => outcomes[i] === undefined);
  if (todo.length) {
    const entries = await many(todo).catch((err: Error) => todo.map(() => err));
    const done = await Promise.all(
      todo.map(async (t, k): Promise<TileOutcome> => {
        const entry = entries[k];
        if (entry === undefined || entry instanceof Error) return renderTile(t, w, { attempts: 1, error: entry ?? new Error('no answer for the tile') });
        try {
          await w.target.put(t, entry);
        } catch (err) {
          if (targetFull(err)) throw storing(t, err);
          return renderTile(t, w, { attempts: 1, error: err as Error });
        }
        return storedOutcome(entry);
      }),
    );
    let k = 0;
    for (let i = 0; i < ts.length; i++) outcomes[i] ??= done[k++];
  }
  return outcomes as TileOutcome[];
}

/** A stored tile's outcome: rendered, or empty (nothing to draw). */
function storedOutcome(entry: TileEntry): TileOutcome {
  return entry.body ? { kind: 'rendered', bytes: entry.body.length } : { kind: 'empty' };
}

/** What becomes of a tile without rendering it (skipped, carried over), or undefined when it must be rendered. */
async function settled(t: TileId, w: TileWork): Promise<TileOutcome | undefined> {
  if (w.stale && !w.stale(t)) {
    if (await w.target.carry(t)) return { kind: 'carried' };
  } else if (!w.force && !w.stale && (await w.target.has(t))) return { kind: 'skipped' };
  return undefined;
}

/** Renders and stores a tile, trying again with doubling back-off (from 200 ms) after failures: `failed` ones made already. */
async function renderTile(t: TileId, w: TileWork, failed?: { attempts: number; error: Error }): Promise<TileOutcome> {
  let error = failed?.error;
  for (let attempt = failed?.attempts ?? 0; ; attempt++) {
    if (attempt > 0) {
      if (attempt > w.retries || w.signal.aborted) return { kind: 'failed', attempts: attempt, error: error!.message };
      await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1)));
    }
    let entry: TileEntry;
    try {
      entry = await w.produce(t);
    } catch (err) {
      error = err as Error;
      continue;
    }
    try {
      await w.target.put(t, entry);
      return storedOutcome(entry);
    } catch (err) {
      if (targetFull(err)) throw storing(t, err);
      error = err as Error;
    }
  }
}

/** `err` with what was being done before its message, its code (ENOSPC, ...) kept. */
function doing(what: string, err: unknown): Error {
  const e = err as Error & { code?: unknown };
  return Object.assign(new Error(`${what}: ${e.message}`, { cause: err }), { code: e.code });
}

/** A target's write failure, naming the tile. */
const storing = (t: TileId, err: unknown): Error => doing(`storing tile ${t.z}/${t.x}/${t.y}`, err);

/**
 * The enumeration cut into metatiles of n×n tiles on the global grid, each tile with its
 * ordinal. The coverage yields 8×8 blocks (src/seed/coverage.ts) and n divides 8, so a
 * metatile's tiles come within one block: the tiles of a block are held (64 at most) and
 * given out metatile by metatile, in the order of their first tiles.
 */
export function* metatiles(tiles: Iterable<TileId>, n: number): Generator<{ tile: TileId; ordinal: number }[]> {
  let ordinal = 0;
  if (n <= 1) {
    for (const tile of tiles) yield [{ tile, ordinal: ordinal++ }];
    return;
  }
  let block = '';
  let held = 0;
  let groups = new Map<string, { tile: TileId; ordinal: number }[]>();
  for (const tile of tiles) {
    const key = `${tile.z}/${Math.floor(tile.x / SEED_BLOCK)}/${Math.floor(tile.y / SEED_BLOCK)}`;
    if (key !== block || held === SEED_BLOCK * SEED_BLOCK) {
      yield* groups.values();
      groups = new Map();
      block = key;
      held = 0;
    }
    const m = `${Math.floor(tile.x / n)}/${Math.floor(tile.y / n)}`;
    let group = groups.get(m);
    if (!group) groups.set(m, (group = []));
    group.push({ tile, ordinal: ordinal++ });
    held++;
  }
  yield* groups.values();
}

/** Adds an outcome to counts. */
export function count(c: ZoomCounts, o: TileOutcome): void {
  c[o.kind]++;
  if (o.kind === 'rendered') c.bytes += o.bytes;
}

/**
 * Runs the tiles through `produce` into `target`. Failures are retried, then logged and
 * counted; they never stop the run. The signal stops it cleanly: tiles in flight finish and
 * the progress file records them. So does a write that cannot succeed (the target full, the
 * progress file or failure log unwritable), after which it throws saying what failed and how
 * to go on.
 */
export async function runSeed(tiles: Iterable<TileId>, produce: (t: TileId) => Promise<TileEntry>, target: SeedTarget, opts: RunOptions): Promise<SeedResult> {
  const state = opts.resume ? await loadState(opts.progressFile, opts.params, opts.total) : { params: opts.params, doneBefore: 0, doneAfter: [] };
  const doneAfter = new Set(state.doneAfter);
  let doneBefore = state.doneBefore;
  const byZoom = new Map<number, ZoomCounts>();
  const total = zeroCounts();
  const countsOf = (z: number) => {
    let c = byZoom.get(z);
    if (!c) byZoom.set(z, (c = zeroCounts()));
    return c;
  };
  const work: TileWork = { produce, produceMany: opts.produceMany, target, retries: opts.retries, force: opts.force, stale: opts.stale, signal: opts.signal };
  const started = performance.now();
  let done = 0;
  // The first write that failed for good: a progress file's, which stops the lanes (inLanes), or then a tile's or the failure log's.
  let stop: Error | undefined;
  let saved = Promise.resolve();
  let lastSave = 0;
  const save = (force = false) => {
    if (!force && performance.now() - lastSave < 1000) return saved;
    lastSave = performance.now();
    const snapshot: ProgressState = { params: opts.params, doneBefore, doneAfter: [...doneAfter].sort((a, b) => a - b) };
    // A failed write leaves the file as the last one that succeeded.
    saved = saved
      .then(() => writeAtomic(opts.progressFile, JSON.stringify(snapshot)))
      .catch((err: Error) => {
        stop ??= err;
      });
    return saved;
  };
  const finish = (ordinal: number) => {
    if (ordinal >= doneBefore) doneAfter.add(ordinal);
    while (doneAfter.delete(doneBefore)) doneBefore++;
    done++;
    if (opts.onProgress) {
      const seconds = (performance.now() - started) / 1000;
      const rate = done / Math.max(seconds, 1e-3);
      opts.onProgress({ done, total: opts.total, counts: total, tilesPerSecond: rate, etaS: (opts.total - done) / Math.max(rate, 1e-9) });
    }
    void save();
  };

  const record = async (t: TileId, ordinal: number, outcome: TileOutcome): Promise<void> => {
    count(countsOf(t.z), outcome);
    count(total, outcome);
    // A failed tile is done for this run: a later run (or --resume) does not retry it.
    if (outcome.kind === 'failed')
      await appendFile(opts.failureLog, `${JSON.stringify({ tile: `${t.z}/${t.x}/${t.y}`, attempts: outcome.attempts, error: outcome.error })}\n`).catch(
        (err: Error) => {
          throw doing(`writing ${opts.failureLog}`, err);
        },
      );
    finish(ordinal);
  };

  const group = async (items: { tile: TileId; ordinal: number }[]): Promise<void> => {
    // A resumed run has done these: counted as skipped, whatever they were.
    const resumed = items.filter((it) => it.ordinal < doneBefore || doneAfter.has(it.ordinal));
    const todo = items.filter((it) => !resumed.includes(it));
    const outcomes = await seedGroup(
      todo.map((it) => it.tile),
      work,
    );
    for (const it of resumed) await record(it.tile, it.ordinal, { kind: 'skipped' });
    for (let k = 0; k < todo.length; k++) await record(todo[k]!.tile, todo[k]!.ordinal, outcomes[k]!);
  };

  const groups = metatiles(tiles, opts.produceMany ? (opts.metatile ?? 1) : 1)[Symbol.iterator]();
  const failed = await inLanes(opts.concurrency, groups, group, () => opts.signal.aborted || stop !== undefined);
  stop ??= failed;
  await save(true);
  if (stop) throw await stopped(stop, opts.progressFile);
  return { byZoom, total, seconds: (performance.now() - started) / 1000, interrupted: opts.signal.aborted };
}

/**
 * Takes `items` in `lanes` lanes, each doing one at a time. Once an item throws, or `halted()`
 * says so, no lane takes another; the items in hand finish. Answers the first error, or
 * undefined, when every lane has stopped.
 */
export async function inLanes<T>(lanes: number, items: Iterator<T>, each: (item: T) => Promise<void>, halted = () => false): Promise<Error | undefined> {
  let first: Error | undefined;
  const lane = async () => {
    while (first === undefined && !halted()) {
      const next = items.next();
      if (next.done) return;
      try {
        await each(next.value);
      } catch (err) {
        first ??= err instanceof Error ? err : new Error(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, lanes) }, lane));
  return first;
}

/** The error a run ends with when a write stopped it: what failed, and how to go on. */
async function stopped(cause: Error, progressFile: string): Promise<Error> {
  const resumable = await stat(progressFile).then(
    (info) => info.isFile(),
    () => false,
  );
  const how = resumable
    ? `the tiles stored stay, and ${progressFile} records them: with room to write, run the same command with --resume`
    : 'the tiles stored stay: with room to write, run the same command again (it skips the tiles the target holds)';
  return new Error(`the run stopped: ${cause.message}; ${how}`, { cause });
}

/**
 * The progress of the run to resume, of `total` tiles. A file that is not one a run writes
 * (cut short, edited) is refused: trusted, it could count tiles done that never were.
 */
async function loadState(file: string, params: Record<string, unknown>, total: number): Promise<ProgressState> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`--resume: no progress file ${file} (start the run without --resume)`);
  }
  const damaged = (why: string) => new Error(`--resume: ${file} is not a progress file a run writes (${why}); start the run without --resume`);
  let state: ProgressState;
  try {
    state = JSON.parse(text) as ProgressState;
  } catch {
    throw damaged('not JSON');
  }
  if (typeof state !== 'object' || state === null || typeof state.params !== 'object' || state.params === null) throw damaged('no parameters');
  const { doneBefore: before, doneAfter: after } = state;
  if (!Number.isInteger(before) || before < 0 || before > total) throw damaged(`doneBefore: expected a whole number from 0 to ${total}`);
  if (!Array.isArray(after) || !after.every((n) => Number.isInteger(n) && n > before && n < total))
    throw damaged(`doneAfter: expected whole numbers past doneBefore and below ${total}`);
  const was = JSON.stringify(state.params);
  const now = JSON.stringify(params);
  if (was !== now) {
    const differ = Object.keys({ ...state.params, ...params }).filter((k) => JSON.stringify(state.params[k]) !== JSON.stringify(params[k]));
    throw new Error(
      `--resume: ${file} is of another run (${differ.map((k) => `${k} was ${JSON.stringify(state.params[k])}, now ${JSON.stringify(params[k])}`).join('; ')})`,
    );
  }
  return state;
}

/** Something other than a regular file is at `file` (a device, a FIFO, a directory): a run never replaces or truncates it. */
export async function notRegularFile(file: string): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  return info !== undefined && !info.isFile();
}

/** Writes `file` through a temporary beside it, renamed over it: on a failure `file` is as it was, and the temporary is gone. */
export async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw doing(`writing ${file}`, err);
  }
}
