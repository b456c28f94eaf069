/**
 * One read of a mosaic source for one tile: the members the main thread found under the tile
 * (src/tiles/mosaic.ts), opened once per thread, read and laid over each other.
 *
 * Members on one pixel grid (the same CRS and pixel size, origins a whole number of pixels
 * apart: a DEM cut into pieces, scenes of one UTM grid) are read into one window of that grid
 * and resampled once, so a bilinear or cubic kernel and a hillshade's border see across the
 * cut lines exactly as they would in the uncut file. Members on other grids (another CRS, a
 * resolution, overviews that do not line up) are resampled on their own and laid over on the
 * tile grid. Pixel selection (`method`) is the same code in both places (src/sources/composite.ts).
 */
import type { Alloc } from '../alloc.js';
import { SourceError } from '../errors.js';
import { bandRaster, type BandRaster } from '../ops/raster.js';
import { Cog, type CogMeta } from '../sources/cog.js';
import { Compositor, type Layered, type MosaicMethod } from '../sources/composite.js';
import { sampleWindow, type Resampling, type Window } from '../sources/sample.js';
import { emptyWindow, readWindow, readWindowInto, releaseWindow } from '../sources/window.js';
import { planRead, type PlanSource, type ReadPlan, type TileGrid } from '../tiles/plan.js';

/** A member as a task names it: where it is and the version the layer was loaded with. */
export interface MemberRef {
  location: string;
  version: string;
}

/** The reads a mosaic source asks of the render: the bands, how, and which members. */
export interface MosaicRead {
  bands: readonly number[];
  /** The layer file's nodata for every member; undefined: each member's own. */
  nodata?: number | null;
  resampling: Resampling;
  method: MosaicMethod;
  members: readonly MemberRef[];
  palette?: Uint8Array;
}

/** Opened members kept per thread; the least recently used past this are closed. */
const MAX_OPEN_MEMBERS = 256;
/** A closed member's reads in flight finish first. */
const CLOSE_DELAY_MS = 30_000;
const opened = new Map<string, { version: string; cog: Promise<Cog> }>();

/** A member opened once per thread (concurrent tiles share the open), reopened when its version moved on. */
export function openMember(ref: MemberRef): Promise<Cog> {
  const held = opened.get(ref.location);
  if (held && held.version === ref.version) {
    opened.delete(ref.location);
    opened.set(ref.location, held);
    return held.cog;
  }
  if (held) retire(ref.location, held.cog);
  const cog = Cog.open(ref.location).then((c) => {
    if (c.meta.version !== ref.version) {
      void c.close().catch(() => {});
      throw new SourceError(`${ref.location}: the mosaic member changed since its layer was loaded`);
    }
    return c;
  });
  cog.catch(() => {
    if (opened.get(ref.location)?.cog === cog) opened.delete(ref.location);
  });
  opened.set(ref.location, { version: ref.version, cog });
  for (const [location, { cog: old }] of opened) {
    if (opened.size <= MAX_OPEN_MEMBERS) break;
    retire(location, old);
  }
  return cog;
}

function retire(location: string, cog: Promise<Cog>): void {
  opened.delete(location);
  setTimeout(() => void cog.then((c) => c.close()).catch(() => {}), CLOSE_DELAY_MS).unref();
}

/** The plan's input of a COG: its grid and its pyramid's sizes. */
export function planSourceOf(m: CogMeta): PlanSource {
  return { width: m.width, height: m.height, geoTransform: m.geoTransform, proj4: m.crs.proj4, levels: m.levels };
}

/** A fetched window on the tile grid (buffer included); the window goes back to its pool. */
export function onTileGrid(win: Window, plan: ReadPlan, resampling: Resampling, alloc: Alloc): BandRaster {
  const out = bandRaster(plan.width, plan.width, win.bands.length, alloc.bytes(plan.width * plan.width), alloc);
  sampleWindow(win, plan.coords, resampling, plan.scaleX, plan.scaleY, out, plan.separable);
  releaseWindow(win);
  return out;
}

function nodataOf(cog: Cog, read: MosaicRead): number | null {
  return read.nodata === undefined ? cog.meta.nodata : read.nodata;
}

/** Members on one pixel grid, in listed order, with each one's origin in the first one's pixels. */
interface Family {
  cogs: Cog[];
  at: [number, number][];
}

/** No two parts share a pixel of the window. */
function disjoint(parts: readonly { dx: number; dy: number; rect: readonly [number, number, number, number] }[]): boolean {
  for (let i = 0; i < parts.length; i++)
    for (let j = i + 1; j < parts.length; j++) {
      const a = parts[i]!,
        b = parts[j]!;
      const overlapX = a.dx < b.dx + b.rect[2] - b.rect[0] && b.dx < a.dx + a.rect[2] - a.rect[0];
      const overlapY = a.dy < b.dy + b.rect[3] - b.rect[1] && b.dy < a.dy + a.rect[3] - a.rect[1];
      if (overlapX && overlapY) return false;
    }
  return true;
}

/** Whole pixels apart, to this fraction of a pixel. */
const ALIGNED = 1e-6;

/**
 * The members in families of one grid each, in listed order. For `first` and `last` only
 * neighbours in the list join (a member listed between two of one grid keeps them apart), so
 * that laying the families over each other keeps the list's order; for `mean`, `median` and
 * `count` members of several grids are each their own family, so that every member counts once
 * across the tile grid. `highest` and `lowest` do not depend on order.
 */
function families(cogs: readonly Cog[], method: MosaicMethod): Family[] {
  const out: Family[] = [];
  for (const cog of cogs) {
    const candidates = method === 'first' || method === 'last' ? out.slice(-1) : out;
    const joined = candidates.find((f) => {
      const at = offsetIn(f.cogs[0]!, cog);
      if (!at) return false;
      f.cogs.push(cog);
      f.at.push(at);
      return true;
    });
    if (!joined) out.push({ cogs: [cog], at: [[0, 0]] });
  }
  if ((method === 'mean' || method === 'median' || method === 'count') && out.length > 1)
    return cogs.map((cog) => ({ cogs: [cog], at: [[0, 0] as [number, number]] }));
  return out;
}

/** Where `cog`'s origin lies in `ref`'s pixels, when the two share a pixel grid. */
function offsetIn(ref: Cog, cog: Cog): [number, number] | undefined {
  const [ox, px, rx, oy, ry, py] = cog.meta.geoTransform;
  const g = ref.meta.geoTransform;
  if (rx !== 0 || ry !== 0 || g[2] !== 0 || g[4] !== 0 || ref.meta.crs.proj4 !== cog.meta.crs.proj4) return undefined;
  if (Math.abs(px - g[1]) > Math.abs(g[1]) * 1e-9 || Math.abs(py - g[5]) > Math.abs(g[5]) * 1e-9) return undefined;
  const ix = (ox - g[0]) / g[1],
    iy = (oy - g[3]) / g[5];
  if (Math.abs(ix - Math.round(ix)) > ALIGNED || Math.abs(iy - Math.round(iy)) > ALIGNED) return undefined;
  return [Math.round(ix), Math.round(iy)];
}

/**
 * The mosaic's bands on the tile grid, or null when no member has a pixel under the tile.
 * Families (and the members that cannot join one at the level read) are laid over each other
 * in listed order (see `families`). Each family's raster has the method applied within it;
 * across families counts add up.
 */
export async function readMosaic(read: MosaicRead, grid: TileGrid, alloc: Alloc): Promise<BandRaster | null> {
  const cogs = await Promise.all(read.members.map(openMember));
  let first: BandRaster | undefined;
  let across: { target: BandRaster; comp: Compositor } | undefined;
  for (const fam of families(cogs, read.method)) {
    if (across ? across.comp.full : read.method === 'first' && first?.mask.every((v) => v === 1)) break;
    for (const part of await readFamily(fam, read, grid, alloc)) {
      if (!first) {
        first = part;
        continue;
      }
      if (!across) {
        const target = bandRaster(first.width, first.height, read.bands.length, alloc.bytes(first.width * first.height), alloc);
        across = { target, comp: new Compositor(read.method === 'count' ? 'sum' : read.method, asLayered(target)) };
        across.comp.add(asLayered(first), 0, 0);
      }
      across.comp.add(asLayered(part), 0, 0);
    }
  }
  if (!first) return null;
  across?.comp.finish();
  const out = across?.target ?? first;
  if (read.palette && read.bands.length === 1) out.palette = read.palette;
  return out;
}

function asLayered(r: BandRaster): Layered {
  return { width: r.width, height: r.height, bands: r.bands, valid: r.mask };
}

/** One family's rasters on the tile grid: one when its members line up at the level read, else one per member. */
async function readFamily(fam: Family, read: MosaicRead, grid: TileGrid, alloc: Alloc): Promise<BandRaster[]> {
  if (fam.cogs.length > 1) {
    const stitched = await readStitched(fam, read, grid, alloc);
    if (stitched !== undefined) return stitched ? [stitched] : [];
  }
  const plans = fam.cogs.map((cog) => planRead(planSourceOf(cog.meta), grid, read.resampling, alloc));
  const wins = await Promise.all(fam.cogs.map((cog, i) => plans[i] && readWindow(cog, plans[i].level, plans[i].window, read.bands, nodataOf(cog, read))));
  const out: BandRaster[] = [];
  for (let i = 0; i < wins.length; i++) {
    const win = wins[i];
    if (!win) continue;
    const part = onTileGrid(win, plans[i]!, read.resampling, alloc);
    // A member alone counts 1 where it has a value (its mean and median are its value).
    if (read.method === 'count') for (const b of part.bands) b.fill(1);
    out.push(part);
  }
  return out;
}

/**
 * A family read as one raster: the members' union as a virtual raster with the first member's
 * overview factors; undefined when the level chosen does not line up in every member (its
 * overviews are not whole multiples), and the members are then read one by one.
 */
async function readStitched(fam: Family, read: MosaicRead, grid: TileGrid, alloc: Alloc): Promise<BandRaster | null | undefined> {
  const ref = fam.cogs[0]!.meta;
  const factors = ref.levels.map((lv) => ref.width / lv.width);
  const whole = factors.every((f, k) => Number.isInteger(f) && f === ref.height / ref.levels[k]!.height);
  const step = whole ? Math.max(...factors) : 1;
  let x0 = Infinity,
    y0 = Infinity,
    x1 = -Infinity,
    y1 = -Infinity;
  fam.cogs.forEach((c, i) => {
    const [ix, iy] = fam.at[i]!;
    x0 = Math.min(x0, ix);
    y0 = Math.min(y0, iy);
    x1 = Math.max(x1, ix + c.meta.width);
    y1 = Math.max(y1, iy + c.meta.height);
  });
  // Whole factors: the virtual raster's sides are padded to a multiple of the largest, so
  // that each of its levels is exactly that many times smaller.
  const vw = Math.ceil((x1 - x0) / step) * step,
    vh = Math.ceil((y1 - y0) / step) * step;
  const g = ref.geoTransform;
  const virtual: PlanSource = {
    width: vw,
    height: vh,
    geoTransform: [g[0] + x0 * g[1], g[1], 0, g[3] + y0 * g[5], 0, g[5]],
    proj4: ref.crs.proj4,
    levels: factors.map((f) => ({ width: Math.max(1, Math.round(vw / f)), height: Math.max(1, Math.round(vh / f)) })),
  };
  const plan = planRead(virtual, grid, read.resampling, alloc);
  if (!plan) return null;
  const f = factors[plan.level]!;
  // Each member's level with this factor, and its origin in the virtual level's pixels.
  const picks: { cog: Cog; level: number; ox: number; oy: number }[] = [];
  for (let i = 0; i < fam.cogs.length; i++) {
    const m = fam.cogs[i]!.meta;
    const level = m.levels.findIndex((lv) => m.width / lv.width === f && m.height / lv.height === f);
    const ox = (fam.at[i]![0] - x0) / f,
      oy = (fam.at[i]![1] - y0) / f;
    if (level < 0 || !Number.isInteger(ox) || !Number.isInteger(oy)) return undefined;
    picks.push({ cog: fam.cogs[i]!, level, ox, oy });
  }
  const [wx0, wy0, wx1, wy1] = plan.window;
  const win = emptyWindow(wx1 - wx0, wy1 - wy0, read.bands.length);
  // Each member's part of the window: its level's pixels, and where they land.
  const parts = picks.flatMap((p) => {
    const lv = p.cog.meta.levels[p.level]!;
    const mx0 = Math.max(0, wx0 - p.ox),
      my0 = Math.max(0, wy0 - p.oy);
    const mx1 = Math.min(lv.width, wx1 - p.ox),
      my1 = Math.min(lv.height, wy1 - p.oy);
    if (mx0 >= mx1 || my0 >= my1) return [];
    return [{ ...p, rect: [mx0, my0, mx1, my1] as [number, number, number, number], dx: mx0 + p.ox - wx0, dy: my0 + p.oy - wy0 }];
  });
  let valid: number;
  if ((read.method === 'first' || read.method === 'last') && disjoint(parts)) {
    // Pieces side by side (a raster cut into tiles): each is read straight into its place.
    const invalid = await Promise.all(parts.map((p) => readWindowInto(p.cog, p.level, p.rect, read.bands, nodataOf(p.cog, read), win, p.dx, p.dy)));
    valid = parts.reduce((n, p, i) => n + (p.rect[2] - p.rect[0]) * (p.rect[3] - p.rect[1]) - invalid[i]!, 0);
  } else {
    const comp = new Compositor(read.method, win);
    const held: Window[] = [];
    try {
      if (read.method === 'first') {
        // In listed order, stopping once every pixel of the window has its value.
        for (const p of parts) {
          if (comp.full) break;
          const w = await readWindow(p.cog, p.level, p.rect, read.bands, nodataOf(p.cog, read));
          held.push(w);
          comp.add(w, p.dx, p.dy);
        }
      } else {
        const wins = await Promise.all(parts.map((p) => readWindow(p.cog, p.level, p.rect, read.bands, nodataOf(p.cog, read))));
        held.push(...wins);
        parts.forEach((p, i) => comp.add(wins[i]!, p.dx, p.dy));
      }
      comp.finish();
    } finally {
      for (const w of held) releaseWindow(w);
    }
    valid = win.valid.length - comp.missing;
  }
  win.allValid = valid === win.valid.length;
  return onTileGrid(win, plan, read.resampling, alloc);
}
