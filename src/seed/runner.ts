/**
 * A seeding run: tiles from an enumeration, rendered `concurrency` at a time, stored in a
 * target, with retries, a failure log, and a progress file from which an interrupted run
 * resumes without rendering again what it stored.
 */
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import type { TileEntry } from '../cache/tiles.js';
import type { TileId } from '../tiles/mercator.js';
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
  /** Tiles in flight at once. */
  concurrency: number;
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

export interface TileWork {
  produce: (t: TileId) => Promise<TileEntry>;
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
 * when no change reaches it, else rendered, with retries. Never throws: a tile that keeps
 * failing is an outcome.
 */
export async function seedTile(t: TileId, w: TileWork): Promise<TileOutcome> {
  if (w.stale && !w.stale(t)) {
    if (await w.target.carry(t)) return { kind: 'carried' };
  } else if (!w.force && !w.stale && (await w.target.has(t))) return { kind: 'skipped' };
  for (let attempt = 0; ; attempt++) {
    try {
      const entry = await w.produce(t);
      await w.target.put(t, entry);
      return entry.body ? { kind: 'rendered', bytes: entry.body.length } : { kind: 'empty' };
    } catch (err) {
      if (attempt < w.retries && !w.signal.aborted) {
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
        continue;
      }
      return { kind: 'failed', attempts: attempt + 1, error: (err as Error).message };
    }
  }
}

/** Adds an outcome to counts. */
export function count(c: ZoomCounts, o: TileOutcome): void {
  c[o.kind]++;
  if (o.kind === 'rendered') c.bytes += o.bytes;
}

/**
 * Runs the tiles through `produce` into `target`. Failures are retried, then logged and
 * counted; they never stop the run. The signal stops it cleanly: tiles in flight finish and
 * the progress file records them.
 */
export async function runSeed(tiles: Iterable<TileId>, produce: (t: TileId) => Promise<TileEntry>, target: SeedTarget, opts: RunOptions): Promise<SeedResult> {
  const state = opts.resume ? await loadState(opts.progressFile, opts.params) : { params: opts.params, doneBefore: 0, doneAfter: [] };
  const doneAfter = new Set(state.doneAfter);
  let doneBefore = state.doneBefore;
  const byZoom = new Map<number, ZoomCounts>();
  const total = zeroCounts();
  const countsOf = (z: number) => {
    let c = byZoom.get(z);
    if (!c) byZoom.set(z, (c = zeroCounts()));
    return c;
  };
  const work: TileWork = { produce, target, retries: opts.retries, force: opts.force, stale: opts.stale, signal: opts.signal };
  const started = performance.now();
  let done = 0;
  let saved = Promise.resolve();
  let lastSave = 0;
  const save = (force = false) => {
    if (!force && performance.now() - lastSave < 1000) return saved;
    lastSave = performance.now();
    const snapshot: ProgressState = { params: opts.params, doneBefore, doneAfter: [...doneAfter].sort((a, b) => a - b) };
    saved = saved.then(() => writeAtomic(opts.progressFile, JSON.stringify(snapshot)));
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

  const one = async (t: TileId, ordinal: number): Promise<void> => {
    // A resumed run has done these: counted as skipped, whatever they were.
    const outcome: TileOutcome = ordinal < doneBefore || doneAfter.has(ordinal) ? { kind: 'skipped' } : await seedTile(t, work);
    count(countsOf(t.z), outcome);
    count(total, outcome);
    // A failed tile is done for this run: a later run (or --resume) does not retry it.
    if (outcome.kind === 'failed')
      await appendFile(opts.failureLog, `${JSON.stringify({ tile: `${t.z}/${t.x}/${t.y}`, attempts: outcome.attempts, error: outcome.error })}\n`);
    finish(ordinal);
  };

  const it = tiles[Symbol.iterator]();
  let ordinal = 0;
  const worker = async () => {
    while (!opts.signal.aborted) {
      const next = it.next();
      if (next.done) return;
      await one(next.value, ordinal++);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, worker));
  await save(true);
  return { byZoom, total, seconds: (performance.now() - started) / 1000, interrupted: opts.signal.aborted };
}

async function loadState(file: string, params: Record<string, unknown>): Promise<ProgressState> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`--resume: no progress file ${file} (start the run without --resume)`);
  }
  const state = JSON.parse(text) as ProgressState;
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

export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}
