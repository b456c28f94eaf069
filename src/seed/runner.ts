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
}

/** What the progress file holds: the run's parameters and which tiles (by enumeration ordinal) are done. */
interface ProgressState {
  params: Record<string, unknown>;
  /** Every tile before this ordinal is done. */
  doneBefore: number;
  /** Tiles at or after `doneBefore` that are done too. */
  doneAfter: number[];
}

const zero = (): ZoomCounts => ({ rendered: 0, empty: 0, skipped: 0, failed: 0, bytes: 0 });

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
  const total = zero();
  const countsOf = (z: number) => {
    let c = byZoom.get(z);
    if (!c) byZoom.set(z, (c = zero()));
    return c;
  };
  const add = (z: number, key: keyof ZoomCounts, n = 1) => {
    countsOf(z)[key] += n;
    total[key] += n;
  };
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
    if (ordinal < doneBefore || doneAfter.has(ordinal) || (!opts.force && (await target.has(t)))) {
      add(t.z, 'skipped');
      return finish(ordinal);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const entry = await produce(t);
        await target.put(t, entry);
        if (entry.body) {
          add(t.z, 'rendered');
          add(t.z, 'bytes', entry.body.length);
        } else add(t.z, 'empty');
        return finish(ordinal);
      } catch (err) {
        if (attempt < opts.retries && !opts.signal.aborted) {
          await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
          continue;
        }
        add(t.z, 'failed');
        await appendFile(opts.failureLog, `${JSON.stringify({ tile: `${t.z}/${t.x}/${t.y}`, attempts: attempt + 1, error: (err as Error).message })}\n`);
        // A failed tile is done for this run: a later run (or --resume) does not retry it.
        return finish(ordinal);
      }
    }
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
