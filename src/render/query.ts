/**
 * Asking a layer's graph about its data rather than for a picture, in a render thread:
 * every step's value at one pixel with the sources' own pixels under it (`/point`), and one
 * step's statistics over an area (`/statistics`). Both run the graph as a tile render does,
 * watching its steps (TileContext.tap).
 */
import proj4 from '../proj4.js';
import type { Alloc } from '../alloc.js';
import { TileError } from '../errors.js';
import { Graph, Sequential, type Operator } from '../ops/operator.js';
import type { OutputShape, Raster } from '../ops/raster.js';
import type { Cog } from '../sources/cog.js';
import { readWindow, releaseWindow } from '../sources/window.js';
import { openMember } from './mosaic.js';
import type { LayerGraph, Tile, TileRender } from './renderer.js';
import type { AreaStats, BandStats, NodeValue, PointProbe, PointValues, RenderTask, SourceValue, StatsRequest } from './task.js';

/** The pixel of a raster (which covers the grid and its buffer) under output pixel (i, j). */
function at(r: Raster, size: number, i: number, j: number): number {
  const pad = (r.width - size) / 2;
  return (j + pad) * r.width + (i + pad);
}

function valueOf(name: string, op: Operator, r: Raster | null, size: number, p: PointProbe): NodeValue {
  if (!r) return { name, op: op.op, kind: null, values: null };
  const k = at(r, size, p.i, p.j);
  if (r.kind === 'rgba') return { name, op: op.op, kind: 'rgba', values: Array.from(r.data.subarray(4 * k, 4 * k + 4)) };
  return { name, op: op.op, kind: 'bands', values: r.bands.map((b) => (r.mask[k] ? b[k]! : null)) };
}

/** Source pixel (column, row) and CRS position of a WGS84 point, or undefined outside the source. */
function pixelOf(cog: Cog, lon: number, lat: number): { pixel: [number, number]; crs: [number, number] } | undefined {
  const { geoTransform: g, width, height, crs } = cog.meta;
  const [x, y] = proj4('EPSG:4326', crs.proj4, [lon, lat]) as [number, number];
  if (!Number.isFinite(x) || !Number.isFinite(y)) return undefined;
  // The inverse of the affine geotransform (pixel-is-area: column 0 spans [0, 1)).
  const det = g[1] * g[5] - g[2] * g[4];
  const dx = x - g[0];
  const dy = y - g[3];
  const col = Math.floor((g[5] * dx - g[2] * dy) / det);
  const row = Math.floor((g[1] * dy - g[4] * dx) / det);
  if (col < 0 || row < 0 || col >= width || row >= height) return undefined;
  return { pixel: [col, row], crs: [x, y] };
}

async function sourceValue(source: string, cog: Cog, bands: readonly number[], nodata: number | null, p: PointProbe): Promise<SourceValue | undefined> {
  const where = pixelOf(cog, p.lon, p.lat);
  if (!where) return undefined;
  const [col, row] = where.pixel;
  const win = await readWindow(cog, 0, [col, row, col + 1, row + 1], bands, nodata);
  try {
    return { source, location: cog.meta.location, ...where, values: win.bands.map((b) => (win.valid[0] ? b[0]! : null)) };
  } finally {
    releaseWindow(win);
  }
}

/**
 * The steps of a graph by the names clients use: a graph form's node names; a list's steps by
 * their index from 0 (TileContext.tap names them `step N (op)`, as errors do).
 */
function publicSteps(root: Operator): { steps: [string, Operator][]; named: (tapName: string) => string; shapeOf: (name: string) => OutputShape | undefined } {
  if (root instanceof Sequential) {
    const index = new Map(root.named().map(([name], i) => [name, String(i)]));
    let shapes: OutputShape[] | undefined;
    return {
      steps: root.named().map(([, op], i) => [String(i), op]),
      named: (n) => index.get(n) ?? n,
      shapeOf: (n) => (shapes ??= root.stepShapes([]))[Number(n)],
    };
  }
  if (root instanceof Graph) return { steps: root.named(), named: (n) => n, shapeOf: (n) => root.shapeOf(n) };
  return { steps: [['output', root]], named: (n) => n, shapeOf: (n) => (n === 'output' ? root.shape([]) : undefined) };
}

/** Renders the task's tile watching every step, and reads each source's own pixel under the point. */
export async function probeTile(
  graph: LayerGraph,
  task: RenderTask & { probe: PointProbe },
  alloc?: Alloc,
): Promise<{ render: TileRender; point: PointValues }> {
  const p = task.probe;
  const seen = new Map<string, NodeValue>();
  const { steps, named } = publicSteps(graph.graph);
  const render = await graph.render(task as Tile, alloc, (tapName, op, r) => seen.set(named(tapName), valueOf(named(tapName), op, r, task.size, p)));
  // Every step, in the graph's order; those that did not run (an input had nothing here) too.
  const nodes = steps.map(([name, op]) => seen.get(name) ?? { name, op: op.op, kind: null, values: null });
  const sources: SourceValue[] = [];
  for (const g of graph.reads) {
    const mosaic = task.layer.mosaics?.[g.source];
    const members = mosaic ? (task.members?.[g.source] ?? []) : [];
    const cogs = mosaic ? await Promise.all(members.map(openMember)) : [graph.cogs.get(g.source)!];
    for (const cog of cogs) {
      // A mosaic's members keep their own nodata unless the layer file names one.
      const nodata = mosaic && !g.nodataGiven ? cog.meta.nodata : g.nodata;
      const v = await sourceValue(g.source, cog, g.bands, nodata, p);
      if (v) sources.push(v);
    }
  }
  const k = 4 * (p.j * task.size + p.i);
  return { render, point: { nodes, sources, rgba: render.rgba ? Array.from(render.rgba.subarray(k, k + 4)) : null } };
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))]!;
}

function bandStats(band: number, values: Float64Array, inside: number, bins: number): BandStats {
  const n = values.length;
  const none = { p2: null, p25: null, p50: null, p75: null, p98: null };
  if (n === 0)
    return { band, count: 0, valid_fraction: 0, min: null, max: null, mean: null, std: null, percentiles: none, histogram: { counts: [], edges: [] } };
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  let sq = 0;
  for (const v of values) sq += (v - mean) * (v - mean);
  const sorted = values.slice().sort();
  const min = sorted[0]!;
  const max = sorted[n - 1]!;
  const counts = new Array<number>(bins).fill(0);
  const width = (max - min) / bins;
  for (const v of values) counts[width > 0 ? Math.min(bins - 1, Math.floor((v - min) / width)) : 0]!++;
  return {
    band,
    count: n,
    valid_fraction: inside ? n / inside : 0,
    min,
    max,
    mean,
    std: Math.sqrt(sq / n),
    percentiles: {
      p2: percentile(sorted, 2),
      p25: percentile(sorted, 25),
      p50: percentile(sorted, 50),
      p75: percentile(sorted, 75),
      p98: percentile(sorted, 98),
    },
    histogram: { counts, edges: Array.from({ length: bins + 1 }, (_, k) => min + k * width) },
  };
}

/**
 * Renders the task's area watching every step, and measures one step's bands over the mask's
 * pixels: by name, or the last step that gives bands.
 */
export async function areaStatistics(
  graph: LayerGraph,
  task: RenderTask & { stats: StatsRequest },
  alloc?: Alloc,
): Promise<{ render: TileRender; stats: AreaStats }> {
  const want = task.stats.node;
  const { steps, named, shapeOf } = publicSteps(graph.graph);
  // Chosen from the graph, not from what ran: an area without data measures the step it would
  // with data, and answers its bands with nothing counted.
  const name = want ?? steps.filter(([n]) => shapeOf(n)?.kind === 'bands').at(-1)?.[0];
  if (name === undefined) throw new TileError('bad_request', 'no such step', 'no step of the graph gives bands to measure');
  const step = steps.find(([n]) => n === name);
  if (!step) throw new TileError('bad_request', 'no such step', `node=${name}: no step of that name; the steps are ${steps.map(([n]) => n).join(', ')}`);
  const op = step[1];
  const shape = shapeOf(name);
  const notBands = () => new TileError('bad_request', 'not bands', `node=${name}: '${op.op}' gives RGBA, not bands to measure`);
  if (shape?.kind !== 'bands') throw notBands();
  let r: Raster | null = null;
  const render = await graph.render(task as Tile, alloc, (tapName, _op, raster) => {
    if (named(tapName) === name) r = raster;
  });
  const { mask, bins } = task.stats;
  const size = task.size;
  let inside = 0;
  for (const m of mask) inside += m;
  const measured = r as Raster | null;
  // A step whose output is not what its shape said (a lambda of the code API).
  if (measured && measured.kind !== 'bands') throw notBands();
  const bands = Array.from({ length: measured ? measured.bands.length : shape.bands }, (_, band) => {
    const values = new Float64Array(measured ? inside : 0);
    let n = 0;
    if (measured)
      for (let j = 0; j < size; j++)
        for (let i = 0; i < size; i++) {
          const k = at(measured, size, i, j);
          if (mask[j * size + i] && measured.mask[k]) values[n++] = measured.bands[band]![k]!;
        }
    return bandStats(band, values.subarray(0, n), inside, bins);
  });
  return { render, stats: { node: name, op: op.op, bands } };
}
