/**
 * Questions about a layer's data, answered through the render pool like tiles are: the values
 * at a point (`/point`), statistics over a bbox or polygons (`/statistics`), and the layer over
 * an area in one image (`/preview`). An area is rendered on a square Web Mercator grid anchored
 * at its north-west corner, whose long side has at most MAX_AREA_PX pixels: no parameter lifts
 * that cap.
 */
import path from 'node:path';
import proj4 from '../proj4.js';
import { TileError } from '../errors.js';
import type { Layer } from '../layers/layer.js';
import { tileMembers } from '../layers/mosaic.js';
import { PNG_LEVEL, type TileFormat } from '../render/encode.js';
import type { RenderPool } from '../render/pool.js';
import type { AreaStats, PointValues } from '../render/task.js';
import type { Area, Bbox } from '../tiles/area.js';
import { HALF_WORLD, lonLatToMercator, MAX_LAT } from '../tiles/mercator.js';
import { loadSharp } from '../sharp.js';
import { DEFAULT_MOSAIC_MAX_FILES } from './tiles.js';

/** Pixels on the long side of an area's grid: the hard cap of `/statistics` and `/preview`. */
export const MAX_AREA_PX = 2048;
/** `/statistics` measures on a grid of at most this many pixels on its long side unless `max_size` says fewer (or more, to the cap). */
export const DEFAULT_STATS_PX = 1024;
export const MAX_BINS = 256;

export interface QueryDeps {
  pool: RenderPool;
  /** Source locations are given relative to it (never the server's absolute paths). */
  layersDir: string;
  mosaicMaxFiles?: number;
  /** `/statistics` and `/preview` requests taken at once (MAX_AREA_REQUESTS), and how many of them run (one a render thread). */
  areas: { max: number; running: number };
}

/**
 * A place among the area requests a server takes at once: taken before a request's body is
 * read, so that a flood of large bodies is refused before it fills the memory, and given back
 * (once, whichever comes first) when its work is done or its request closes.
 */
export interface AreaPlace {
  release(): void;
}

/**
 * Area requests taken at once: `running` of them render and encode, the others wait their turn
 * in order or are still sending their bodies, and past `max` a new one is refused at once. Each
 * renders up to MAX_AREA_PX² pixels and a preview's encoding takes sharp's threads, so without
 * a bound a flood of them fills the render queue ahead of every tile and the cores with
 * encodings, and tiles time out; each POST body may be a megabyte, held from its first byte.
 */
class AreaAdmission {
  /** Places taken: by the requests running, waiting their turn and reading their bodies. */
  private taken = 0;
  private running = 0;
  /** Those waiting their turn, in order. */
  private readonly turns: (() => void)[] = [];

  constructor(private readonly limits: { max: number; running: number }) {}

  /** A place, or a refusal at once when all `max` are taken. */
  take(): AreaPlace {
    const { max } = this.limits;
    if (this.taken >= max)
      throw new TileError(
        'overload',
        'busy',
        `${max} /statistics and /preview requests are already in progress, the most this server takes at once (MAX_AREA_REQUESTS): try again shortly`,
      );
    this.taken++;
    let held = true;
    return {
      release: () => {
        if (held) this.taken--;
        held = false;
      },
    };
  }

  /** Runs `work` in a running place once its turn comes, for the request holding `place` (else it takes one). */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal, place = this.take()): Promise<T> {
    try {
      if (this.running < this.limits.running) this.running++;
      else await this.turn(signal);
      try {
        return await work();
      } finally {
        // The running place passes to the next in line, or is given back.
        const next = this.turns.shift();
        if (next) next();
        else this.running--;
      }
    } finally {
      place.release();
    }
  }

  /** Resolves once a running place is handed over; rejects when the client goes away first. */
  private turn(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const go = () => {
        signal?.removeEventListener('abort', leave);
        resolve();
      };
      const leave = () => {
        const i = this.turns.indexOf(go);
        if (i >= 0) this.turns.splice(i, 1);
        reject(new TileError('client_closed', 'client closed the request', 'the client went away while its area request waited its turn'));
      };
      if (signal?.aborted) return leave();
      signal?.addEventListener('abort', leave, { once: true });
      this.turns.push(go);
    });
  }
}

/** A square grid over an area: its Web Mercator bounds, side in pixels, and the area's part of it. */
export interface AreaGrid {
  bounds: [number, number, number, number];
  size: number;
  width: number;
  height: number;
}

/**
 * `/point`'s answer: SPEC's `reads` (each source's own pixel), `nodes` (each step's values by
 * name; a list's steps by index) and `rgba`; and, in more detail, `steps` (in the graph's
 * order, with each operator and kind), `sources` (pixel, CRS position, file, mosaic member) and
 * `tile`.
 */
export interface PointAnswer {
  layer: string;
  lon: number;
  lat: number;
  reads: Record<string, (number | null)[]>;
  nodes: Record<string, (number | null)[] | null>;
  rgba: number[] | null;
  tile: { z: number; x: number; y: number; pixel: [number, number] };
  steps: PointValues['nodes'];
  sources: (PointValues['sources'][number] & { member?: boolean })[];
}

function bad(title: string, detail: string): TileError {
  return new TileError('bad_request', title, detail);
}

/** WGS84 to Web Mercator, latitudes clamped to the projection's. */
function mercator(lon: number, lat: number): [number, number] {
  return lonLatToMercator(lon, Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)));
}

export class QueryService {
  private readonly areas: AreaAdmission;

  constructor(private readonly deps: QueryDeps) {
    this.areas = new AreaAdmission(deps.areas);
  }

  /** A place for an area request before its body is read (AreaPlace): refused at once, as a 503, when all are taken. */
  admit(): AreaPlace {
    return this.areas.take();
  }

  /**
   * Every step's value at a point, at zoom z (default: the layer's maxzoom), and the sources' own
   * pixels. Here and below, `signal` aborts when the client goes away (RenderPool.render).
   */
  async point(layer: Layer, lon: number, lat: number, zoom?: number, signal?: AbortSignal): Promise<PointAnswer> {
    if (!(Math.abs(lon) <= 180 && Math.abs(lat) <= MAX_LAT))
      throw bad('point outside the map', `${lon},${lat}: longitude must lie in -180..180 and latitude in -${MAX_LAT}..${MAX_LAT} (WGS84 degrees)`);
    const { minzoom, maxzoom, tileSize } = layer.config;
    const z = zoom ?? maxzoom;
    if (!(Number.isInteger(z) && z >= minzoom && z <= maxzoom))
      throw bad('zoom out of range', `z=${zoom}: layer '${layer.name}' serves zooms ${minzoom}-${maxzoom}`);
    const n = 2 ** z;
    const [mx, my] = mercator(lon, lat);
    const u = Math.min(n * tileSize - 1e-6, Math.max(0, ((mx + HALF_WORLD) / (2 * HALF_WORLD)) * n * tileSize));
    const v = Math.min(n * tileSize - 1e-6, Math.max(0, ((HALF_WORLD - my) / (2 * HALF_WORLD)) * n * tileSize));
    const x = Math.floor(u / tileSize);
    const y = Math.floor(v / tileSize);
    const i = Math.floor(u - x * tileSize);
    const j = Math.floor(v - y * tileSize);
    const members = layer.mosaics.size ? tileMembers(layer, { z, x, y }, this.deps.mosaicMaxFiles ?? DEFAULT_MOSAIC_MAX_FILES).members : undefined;
    const r = await this.deps.pool.render({ layer: layer.spec, z, x, y, size: tileSize, members, probe: { i, j, lon, lat } }, undefined, signal);
    const point = r.point!;
    // A source's value: its first pixel with data under the point (a mosaic's members in their listed order).
    const reads: PointAnswer['reads'] = {};
    for (const s of point.sources) if (!reads[s.source] || reads[s.source]!.every((v) => v === null)) reads[s.source] = s.values;
    return {
      layer: layer.name,
      lon,
      lat,
      reads,
      nodes: Object.fromEntries(point.nodes.map((n) => [n.name, n.values])),
      rgba: point.rgba,
      tile: { z, x, y, pixel: [i, j] },
      steps: point.nodes,
      sources: point.sources.map((s) => ({ ...s, location: this.shown(s.location), ...(layer.mosaics.has(s.source) && { member: true }) })),
    };
  }

  /** A source location as clients may see it: relative to LAYERS_DIR, or its URL. */
  private shown(location: string): string {
    if (/^https?:\/\//.test(location)) return location.replace(/[?#].*$/, '');
    const rel = path.relative(this.deps.layersDir, location);
    return rel.startsWith('..') || path.isAbsolute(rel) ? path.basename(location) : rel;
  }

  /** The square grid over a WGS84 bbox whose long side has `size` pixels. */
  grid(bbox: Bbox, size: number): AreaGrid {
    const [w, s, e, n] = bbox;
    const [x0, y0] = mercator(w, s);
    const [x1, y1] = mercator(e, n);
    const long = Math.max(x1 - x0, y1 - y0);
    return {
      bounds: [x0, y1 - long, x0 + long, y1],
      size,
      width: Math.max(1, Math.round(((x1 - x0) / long) * size)),
      height: Math.max(1, Math.round(((y1 - y0) / long) * size)),
    };
  }

  /**
   * Pixels on the long side of a bbox at the layer's full resolution (its first source's
   * pixel size at the bbox's centre): `/statistics` measures no finer than the data.
   */
  nativeSize(layer: Layer, bbox: Bbox): number {
    const meta = layer.sources[0]!.meta;
    const [w, s, e, n] = bbox;
    const [cx, cy] = proj4('EPSG:4326', meta.crs.proj4, [(w + e) / 2, (s + n) / 2]) as [number, number];
    const step = Math.hypot(meta.geoTransform[1], meta.geoTransform[2]);
    const [ax, ay] = proj4(meta.crs.proj4, 'EPSG:3857', [cx, cy]) as [number, number];
    const [bx, by] = proj4(meta.crs.proj4, 'EPSG:3857', [cx + step, cy]) as [number, number];
    const px = Math.hypot(bx - ax, by - ay);
    const [x0, y0] = mercator(w, s);
    const [x1, y1] = mercator(e, n);
    const native = Math.ceil(Math.max(x1 - x0, y1 - y0) / px);
    return Number.isFinite(native) && native > 0 ? native : MAX_AREA_PX;
  }

  /** Renders a task over an area's grid, with its mosaic members; `extra` says what to do there. */
  private render(layer: Layer, grid: AreaGrid, extra: { stats?: { node?: string; mask: Uint8Array; bins: number } }, signal?: AbortSignal) {
    const z = Math.max(0, Math.min(30, Math.round(Math.log2((2 * HALF_WORLD * grid.size) / (grid.bounds[2] - grid.bounds[0]) / layer.config.tileSize))));
    const members = layer.mosaics.size
      ? tileMembers(layer, { z, x: 0, y: 0, bounds: grid.bounds, size: grid.size }, this.deps.mosaicMaxFiles ?? DEFAULT_MOSAIC_MAX_FILES).members
      : undefined;
    return this.deps.pool.render({ layer: layer.spec, z, x: 0, y: 0, size: grid.size, bounds: grid.bounds, members, ...extra }, undefined, signal);
  }

  /** Statistics of one step's bands over an area (the bbox's pixels, or the polygons' when given), in `place` when one was taken for it. */
  async statistics(
    layer: Layer,
    area: Area,
    o: { maxSize?: number; node?: string; bins?: number; polygons: boolean; place?: AreaPlace },
    signal?: AbortSignal,
  ): Promise<{ grid: AreaGrid; stats: AreaStats }> {
    const maxSize = o.maxSize ?? DEFAULT_STATS_PX;
    if (!(Number.isInteger(maxSize) && maxSize >= 1 && maxSize <= MAX_AREA_PX))
      throw bad('max_size out of range', `max_size=${o.maxSize}: from 1 to ${MAX_AREA_PX} pixels on the long side (a cap no parameter lifts)`);
    const bins = o.bins ?? 10;
    if (!(Number.isInteger(bins) && bins >= 1 && bins <= MAX_BINS)) throw bad('bins out of range', `bins=${o.bins}: from 1 to ${MAX_BINS}`);
    const [w, s, e, n] = area.bbox;
    if (!(w < e && s < n))
      throw bad(
        'polygons with no area',
        `their outer rings span [${area.bbox.join(', ')}] (W, S, E, N, within Web Mercator's ±${MAX_LAT}° latitude): no width or no height`,
      );
    const grid = this.grid(area.bbox, Math.min(maxSize, this.nativeSize(layer, area.bbox)));
    return this.areas.run(
      async () => {
        const mask = o.polygons ? rasterise(area, grid) : boxMask(grid);
        const r = await this.render(layer, grid, { stats: { node: o.node, mask, bins } }, signal);
        return { grid, stats: r.stats! };
      },
      signal,
      o.place,
    );
  }

  /** The layer over a bbox as one image, `width` pixels wide (the height follows the bbox). */
  async preview(layer: Layer, bbox: Bbox, width: number, format: TileFormat, signal?: AbortSignal): Promise<{ grid: AreaGrid; body: Buffer }> {
    if (!(Number.isInteger(width) && width >= 1 && width <= MAX_AREA_PX)) throw bad('width out of range', `width=${width}: from 1 to ${MAX_AREA_PX} pixels`);
    const [w, so, e, n] = bbox;
    const [x0, y0] = mercator(w, so);
    const [x1, y1] = mercator(e, n);
    // The width is the image's; the long side, which the cap bounds, may be its height.
    const size = y1 - y0 > x1 - x0 ? Math.round((width * (y1 - y0)) / (x1 - x0)) : width;
    if (size > MAX_AREA_PX)
      throw bad(
        'preview too large',
        `a ${width}-pixel-wide image of this bbox is ${size} pixels tall: at most ${MAX_AREA_PX} on either side (a cap no parameter lifts)`,
      );
    const grid = { ...this.grid(bbox, size), width };
    // Its encoding too: sharp's threads share the cores with the render threads.
    return this.areas.run(async () => {
      const r = await this.render(layer, grid, {}, signal);
      // Nothing to draw: a transparent image.
      const rgba = r.rgba ? new Uint8Array(r.rgba) : new Uint8Array(grid.size * grid.size * 4);
      const sharp = await loadSharp();
      const cropped = sharp(rgba, { raw: { width: grid.size, height: grid.size, channels: 4 } }).extract({
        left: 0,
        top: 0,
        width: grid.width,
        height: grid.height,
      });
      const body = await (format === 'png' ? cropped.png({ compressionLevel: PNG_LEVEL }) : cropped.webp({ lossless: true })).toBuffer();
      return { grid, body };
    }, signal);
  }
}

/** The bbox's part of its grid: the top-left width × height pixels. */
function boxMask(grid: AreaGrid): Uint8Array {
  const mask = new Uint8Array(grid.size * grid.size);
  for (let j = 0; j < grid.height; j++) mask.fill(1, j * grid.size, j * grid.size + grid.width);
  return mask;
}

/**
 * The most steps of a pixel the polygons' edges may take on a request's grid (their length in
 * its pixels, each edge at least one): a cap no parameter lifts. A polygon of a million vertices
 * fits; a zigzag whose every edge crosses the grid (a few kilobytes of GeoJSON) does not, where it
 * once held the server's thread for minutes and its memory until the process died.
 */
export const MAX_EDGE_STEPS = 2_000_000;

/**
 * The grid's pixels whose centre lies inside the polygons (even-odd within a polygon, so holes
 * are left out; a union over polygons), as `gdalwarp -cutline` selects them. Edges are straight
 * in longitude and latitude (RFC 7946 §3.1.1), so each is followed in steps of at most a pixel.
 * Each row meets only the steps that cross it: the work grows with the edges' length and the
 * grid's pixels, not with their product.
 */
export function rasterise(area: Area, grid: AreaGrid): Uint8Array {
  const { size, bounds } = grid;
  const res = (bounds[2] - bounds[0]) / size;
  const toPixel = (lon: number, lat: number): [number, number] => {
    const [x, y] = mercator(lon, lat);
    return [(x - bounds[0]) / res, (bounds[3] - y) / res];
  };
  // Each edge as its first vertex and the steps that follow it, counted before any is taken.
  const edgesOf = (ring: Area['polygons'][number][number]) => {
    const edges: { lon0: number; lat0: number; lon1: number; lat1: number; a: [number, number]; steps: number }[] = [];
    for (let k = 0; k + 1 < ring.length || (k === 0 && ring.length === 1); k++) {
      const [lon0, lat0] = ring[k]!;
      const [lon1, lat1] = ring[k + 1] ?? ring[0]!;
      const a = toPixel(lon0, lat0);
      const b = toPixel(lon1, lat1);
      edges.push({ lon0, lat0, lon1, lat1, a, steps: Math.min(100_000, Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1])))) });
    }
    return edges;
  };
  const polygons = area.polygons.map((rings) => rings.map(edgesOf));
  let total = 0;
  for (const rings of polygons) for (const edges of rings) for (const e of edges) total += e.steps;
  if (total > MAX_EDGE_STEPS)
    throw bad(
      'polygons too detailed for the grid',
      `their edges run ${total} pixels on a grid of ${size}: at most ${MAX_EDGE_STEPS} (a cap no parameter lifts); simplify them, or ask for a smaller max_size`,
    );
  // The rows a step from y = ay to y = by may cross (a few more than it does: each is tested exactly).
  const firstRow = (ay: number, by: number) => Math.max(0, Math.floor(Math.min(ay, by) - 0.5));
  const lastRow = (ay: number, by: number) => Math.min(size - 1, Math.ceil(Math.max(ay, by)));
  const mask = new Uint8Array(size * size);
  for (const rings of polygons) {
    // The rings' points, x and y in turn, each ring closing on its first point.
    const rs = rings.map((edges) => {
      const xy = new Float64Array(2 * edges.reduce((n, e) => n + e.steps, 0));
      let at = 0;
      for (const { lon0, lat0, lon1, lat1, a, steps } of edges)
        for (let t = 0; t < steps; t++) {
          const [x, y] = t === 0 ? a : toPixel(lon0 + ((lon1 - lon0) * t) / steps, lat0 + ((lat1 - lat0) * t) / steps);
          xy[at++] = x;
          xy[at++] = y;
        }
      return xy;
    });
    // The rows (centres j + 0.5) each step crosses, ahead of the exact test: counted, then filled.
    const eachCrossing = (visit: (j: number, x: number) => void) => {
      for (const xy of rs) {
        const n = xy.length / 2;
        for (let k = 0; k < n; k++) {
          const ax = xy[2 * k]!,
            ay = xy[2 * k + 1]!;
          const b = (k + 1) % n;
          const bx = xy[2 * b]!,
            by = xy[2 * b + 1]!;
          if (ay === by) continue;
          for (let j = firstRow(ay, by), last = lastRow(ay, by); j <= last; j++) {
            const cy = j + 0.5;
            if (ay > cy !== by > cy) visit(j, ax + ((cy - ay) * (bx - ax)) / (by - ay));
          }
        }
      }
    };
    const starts = new Int32Array(size + 1);
    eachCrossing((j) => starts[j + 1]!++);
    for (let j = 0; j < size; j++) starts[j + 1]! += starts[j]!;
    const crossings = new Float64Array(starts[size]!);
    const filled = starts.slice(0, size);
    eachCrossing((j, x) => (crossings[filled[j]!++] = x));
    for (let j = 0; j < size; j++) {
      const row = crossings.subarray(starts[j]!, starts[j + 1]!).sort();
      for (let k = 0; k + 1 < row.length; k += 2) {
        // Centres i + 0.5 strictly between the two crossings.
        const from = Math.max(0, Math.ceil(row[k]! - 0.5));
        const to = Math.min(size - 1, Math.ceil(row[k + 1]! - 0.5) - 1);
        for (let i = from; i <= to; i++) mask[j * size + i] = 1;
      }
    }
  }
  return mask;
}
