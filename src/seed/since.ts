/**
 * `tilegraph seed LAYER --since MANIFEST`: a run that follows an earlier one. It takes that
 * run's coverage, format and target (or `--to`, a copy of it), compares the layer and its
 * sources with the manifest's lineage (src/seed/lineage.ts), and renders only the tiles a change
 * reaches; every other tile is carried over from the earlier run's version (src/seed/target.ts
 * `carry`).
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Layer } from '../layers/layer.js';
import type { TileId } from '../tiles/mercator.js';
import { geoJsonArea, tilesOf, type Area } from './coverage.js';
import { DIR_RECORD } from './dir.js';
import { fileTarget, realPlace } from './target.js';
import { lineageOf, parseLineage, staleTiles, type ManifestLineage, type StaleTiles } from './lineage.js';

export interface Since {
  /** The manifest followed. */
  manifest: string;
  /** The layer version of the run followed: its tiles are carried over. */
  previous: string;
  /** The earlier run's coverage, target and format, as the command's options. */
  options: Record<string, string>;
  /** Whether a change reaches the tile. */
  stale: (t: TileId) => boolean;
  /** The run followed did every tile of its coverage (none failed, not stopped): its tiles are all in place. */
  complete: boolean;
  /** This run's lineage, for its own manifest (or why its sources could not be read whole). */
  lineage: ManifestLineage | { error: string };
  /** For the manifest: what was compared and what changed. */
  describe: { manifest: string; previous: string; all: boolean; reasons: string[]; changed?: string };
}

/** The parts of a manifest a following run reads. */
interface EarlierRun {
  layer: { name: string; version: string };
  coverage: { zooms?: [number, number]; bbox?: number[]; geojson?: string; tiles?: string; footprint?: string[] };
  shard: { index: number; count: number } | null;
  target: string;
  format: string;
  lineage: unknown;
  total?: { planned?: unknown; rendered?: unknown; empty?: unknown; skipped?: unknown; carried?: unknown; failed?: unknown };
  interrupted?: unknown;
}

/** Whether the manifest says its run did every tile: none failed, not stopped, every planned one counted. */
function completeRun(run: EarlierRun): boolean {
  const t = run.total;
  if (run.interrupted !== false || !t || t.failed !== 0) return false;
  const done = [t.rendered, t.empty, t.skipped, t.carried];
  return done.every((n) => typeof n === 'number') && (done as number[]).reduce((a, b) => a + b, 0) === t.planned;
}

function earlierRun(file: string, text: string): EarlierRun {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`--since ${file}: not JSON`);
  }
  const m = doc as Partial<EarlierRun>;
  const bad = (what: string) => new Error(`--since ${file}: not a tilegraph seed manifest (${what})`);
  if (typeof m !== 'object' || m === null) throw bad('not an object');
  if (typeof m.layer?.name !== 'string' || typeof m.layer.version !== 'string') throw bad('no layer name and version');
  if (typeof m.coverage !== 'object' || m.coverage === null) throw bad('no coverage');
  if (typeof m.target !== 'string' || typeof m.format !== 'string') throw bad('no target and format');
  if (m.lineage === undefined || m.lineage === null) throw bad('no lineage: it was written before manifests recorded one; seed once without --since');
  const c = m.coverage;
  if (c.tiles !== undefined && typeof c.tiles !== 'string') throw bad('its coverage names tiles by something other than a file');
  if (c.geojson !== undefined && typeof c.geojson !== 'string') throw bad('its coverage names an area by something other than a file');
  if (c.bbox !== undefined && !(Array.isArray(c.bbox) && c.bbox.every((n) => typeof n === 'number')))
    throw bad('its coverage has a bbox that is not a list of numbers');
  const sh = m.shard;
  if (sh !== undefined && sh !== null && !(typeof sh === 'object' && Number.isInteger(sh.index) && Number.isInteger(sh.count)))
    throw bad('its shard is not a whole index and count');
  return m as EarlierRun;
}

/**
 * The target a manifest lies in as its own (where a run into it writes its manifest): a tile
 * directory holding its record, or beside an MBTiles file.
 */
function manifestHome(file: string): string | undefined {
  const dir = path.dirname(file);
  const name = path.basename(file);
  if (/^manifest(\.shard-\d+-of-\d+)?\.json$/.test(name) && existsSync(path.join(dir, DIR_RECORD))) return `dir:${dir}`;
  const mbtiles = /^(.+?)(\.shard-\d+-of-\d+)?\.manifest\.json$/.exec(name)?.[1];
  if (mbtiles !== undefined && isSqlite(path.join(dir, mbtiles))) return `mbtiles:${path.join(dir, mbtiles)}`;
  return undefined;
}

/** Whether the file is an SQLite database (its header), as an MBTiles file is. */
function isSqlite(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(16);
    return readSync(fd, head, 0, 16, 0) === 16 && head.toString('latin1') === 'SQLite format 3\0';
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Whether two targets are the same place (a path through a symbolic link included). */
function samePlace(a: string, b: string): boolean {
  const real = (t: string) => {
    const f = fileTarget(t);
    return f ? `${f.kind}:${realPlace(f.path)}` : t;
  };
  return real(a) === real(b);
}

/** Whether a relative target leads to `home` from some directory above it: `home`'s path ends with it. */
function endsAt(home: string, relative: { kind: string; path: string }): boolean {
  const h = fileTarget(home)!;
  const tail = path.normalize(relative.path).replace(/\/+$/, '');
  return h.kind === relative.kind && h.path.endsWith(`${path.sep}${tail}`);
}

/**
 * The target a run following the manifest writes to: the one it names, or `--to` (a copy of
 * it). Refused when the manifest lies in another tile directory or beside another MBTiles file
 * (a copy made with its manifest: following it would write to the original). A relative path
 * (manifests before they recorded absolute ones) is taken from where the manifest lies, since
 * the directory that run started in is not recorded.
 */
function followedTarget(file: string, named: string, to: string | undefined): string {
  if (to !== undefined) return to;
  const home = manifestHome(file);
  const t = fileTarget(named);
  const relative = t !== undefined && !path.isAbsolute(t.path) ? t : undefined;
  if (home === undefined) {
    if (relative)
      throw new Error(`--since ${file}: its run's target ${named} is relative to the directory that run started in, which is not recorded: give it with --to`);
    return named;
  }
  if (relative ? !endsAt(home, relative) : !samePlace(home, named)) {
    throw new Error(
      `--since ${file}: the manifest of a run into ${named}, lying in ${home}: a copy? Give --to ${home} to re-seed it, or follow the manifest of ${named} itself`,
    );
  }
  return home;
}

export async function sinceRun(file: string, layer: Layer, o: { changed?: string; to?: string } = {}): Promise<Since> {
  const text = await readFile(file, 'utf8').catch(() => {
    throw new Error(`--since ${file}: cannot read the file`);
  });
  const run = earlierRun(file, text);
  if (run.layer.name !== layer.name) throw new Error(`--since ${file}: a run of layer '${run.layer.name}', not '${layer.name}'`);
  if (/^https?:/.test(run.target)) throw new Error(`--since ${file}: a --via run stored nothing of its own to carry over; warm the server again instead`);
  const to = followedTarget(file, run.target, o.to);
  const unread = (run.lineage as { error?: unknown }).error;
  const earlier = typeof unread === 'string' ? undefined : parseLineage(run.lineage, `--since ${file}`);
  const lineage: ManifestLineage | { error: string } = await lineageOf(layer, earlier).catch((err: Error) => ({ error: err.message }));
  const everything = (why: string): StaleTiles => ({ all: true, reasons: [`${why}: every tile`], isStale: () => true });
  const stale: StaleTiles =
    earlier === undefined
      ? everything(`the earlier run could not read its sources whole (${String(unread)})`)
      : 'error' in lineage
        ? everything(`the sources cannot be read whole now (${lineage.error})`)
        : staleTiles(layer, earlier, lineage);
  const reasons = [...stale.reasons];

  const c = run.coverage;
  const options: Record<string, string> = { to, format: run.format };
  if (c.tiles !== undefined) options.tiles = c.tiles;
  else {
    if (!Array.isArray(c.zooms) || c.zooms.length !== 2) throw new Error(`--since ${file}: its coverage has no zooms`);
    options.zoom = `${c.zooms[0]}-${c.zooms[1]}`;
    if (c.geojson !== undefined) options.geojson = c.geojson;
    else if (c.footprint === undefined && c.bbox !== undefined) options.bbox = c.bbox.join(',');
  }
  if (run.shard) options.shard = `${run.shard.index}/${run.shard.count}`;

  let changed: ((t: TileId) => boolean) | undefined;
  if (o.changed !== undefined) {
    const areas = await readFile(o.changed, 'utf8').catch(() => {
      throw new Error(`--changed ${o.changed}: cannot read the file`);
    });
    changed = nearArea(geoJsonArea(areas, `--changed ${o.changed}`));
    reasons.push(`the areas of ${o.changed} changed`);
  }
  return {
    manifest: file,
    previous: run.layer.version,
    options,
    complete: completeRun(run),
    stale: stale.all ? () => true : changed ? (t) => stale.isStale(t) || changed(t) : (t) => stale.isStale(t),
    lineage,
    describe: { manifest: file, previous: run.layer.version, all: stale.all, reasons, ...(o.changed !== undefined && { changed: o.changed }) },
  };
}

/**
 * The tiles an area covers and their eight neighbours (a kernel or a hillshade near a tile's
 * edge reads its neighbour's ground), worked out one zoom at a time as they are asked for.
 */
function nearArea(area: Area): (t: TileId) => boolean {
  const zooms = new Map<number, Set<string>>();
  return (t) => {
    let near = zooms.get(t.z);
    if (!near) {
      near = new Set();
      const n = 2 ** t.z;
      for (const c of tilesOf(area, [t.z, t.z]))
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) near.add(`${(c.x + dx + n) % n}/${c.y + dy}`);
      zooms.set(t.z, near);
    }
    return near.has(`${t.x}/${t.y}`);
  };
}
