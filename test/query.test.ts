/**
 * `GET /point`, `GET|POST /statistics` and `GET /preview` (issue 17) through HTTP, on the
 * shipped layers served by one server, with GDAL's command line tools as the independent
 * reference (nothing here imports tilegraph's own math):
 *
 *   1. /point: each source's pixel (column, row) is `gdallocationinfo -wgs84`'s and its values
 *      `gdallocationinfo -valonly -wgs84`'s, on the file (on each member file for the mosaic
 *      `dem-mosaic`, which must report the one under the point, `member: true`). The points are
 *      centres of source pixels as `gdaltransform` places them in WGS84: inside, on the last
 *      column, 60 m beside the data (a masked pixel of a tile with data), and far away (an
 *      empty tile). The tile and pixel come from @mapbox/tilebelt, `rgba` is that pixel of the
 *      served tile PNG decoded by sharp, every step of the graph is listed, `z=` picks the zoom.
 *   2. /statistics GET: count, valid_fraction, min, max, mean, std (population), percentiles
 *      (nearest rank) and histogram against the same computed here over `gdalwarp -t_srs
 *      EPSG:3857 -te <grid.bounds> -ts size size -r <resampling> -ovr AUTO -et 0 -dstalpha` of
 *      the source, restricted to the grid's top-left width x height pixels and GDAL's alpha,
 *      for the shipped dem-relief (bilinear) and the same layer read with nearest (written
 *      here: its statistics are of source values themselves, so they must be GDAL's to the
 *      bit). The grid itself is checked against the issue's definition. With max_size=64
 *      GDAL's -ovr AUTO reads the overview (its debug output says so), the answer must agree
 *      with that reference and not with the full-resolution one.
 *   3. /statistics POST: the same grid masked by `gdalwarp -cutline poly.geojson` on that very
 *      grid (an identity warp, -r near, so GDAL keeps a pixel when its centre is inside the
 *      polygon as GeoJSON draws it), for a Polygon in a FeatureCollection, a Polygon with a hole
 *      in a Feature, a MultiPolygon across the data's edge and a triangle with a long slanted side.
 *   4. Caps that no parameter lifts (max_size, width, height, bins), the body limit (413),
 *      bodies that are not polygons, bboxes that are not areas, node=nope: JSON errors, never 500.
 *   5. /preview over a 2x2 block of tiles at a zoom, 512 pixels wide: the four tiles stitched,
 *      within 1 level per channel; WebP as PNG; the image is `width` wide.
 *
 * The tolerances (NEAREST, BILINEAR) are explained where they are defined; counts are exact.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pointToTileFraction, tileToBBOX } from '@mapbox/tilebelt';
import { GDAL_ENV, gdalMissing, limiter } from './helpers/gdal.js';
import {
  decode,
  differingPixels,
  makeLayersDir,
  request,
  SHIPPED_DATA,
  shippedLayerText,
  startServer,
  tilePath,
  lonLatToTile,
  type Answer,
  type Pixels,
  type TempLayers,
  type TestServer,
  until,
} from './helpers/http.js';
import { readEnviRaw } from './helpers/layers.js';

const SKIP = gdalMissing(['gdalwarp', 'gdallocationinfo', 'gdaltransform']);
const DEM = 'srtm_jasper_ab_100m.tif';
const NIR = 'landsat8_zion_20150818_b5_nir.tif';
const RED = 'landsat8_zion_20150818_b4_red.tif';
/** Caps the issue names: grid side, histogram bins, POST body. */
const MAX_PX = 2048;
const MAX_BINS = 256;
const MAX_BODY = 1024 * 1024;
/** The most pixels the polygons' edges may run on a grid (MAX_EDGE_STEPS). */
const MAX_EDGE_STEPS = 2_000_000;
/** A bbox well inside the DEM (it spans -117.86..-117.24, 53.06..53.43). */
const INSIDE: Bbox = [-117.7, 53.1, -117.4, 53.3];

type Bbox = [number, number, number, number];
type Ring = [number, number][];

interface NodeValue {
  name: string;
  op: string;
  kind: 'bands' | 'rgba';
  values: (number | null)[] | null;
}
interface SourceValue {
  source: string;
  location: string;
  pixel: [number, number];
  crs: [number, number];
  values: (number | null)[];
  member?: boolean;
}
interface PointAnswer {
  layer: string;
  lon: number;
  lat: number;
  /** SPEC's shape: each source's values, each step's values by name (a list's steps by index), the drawn pixel. */
  reads: Record<string, (number | null)[]>;
  nodes: Record<string, (number | null)[] | null>;
  rgba: number[] | null;
  tile: { z: number; x: number; y: number; pixel: [number, number] };
  steps: NodeValue[];
  sources: SourceValue[];
}
interface Grid {
  bounds: [number, number, number, number];
  size: number;
  width: number;
  height: number;
}
interface BandStats {
  band: number;
  count: number;
  valid_fraction: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  percentiles: Record<'p2' | 'p25' | 'p50' | 'p75' | 'p98', number | null>;
  histogram: { counts: number[]; edges: number[] };
}
interface StatsAnswer {
  layer: string;
  bbox: Bbox;
  grid: Grid;
  node: string;
  op: string;
  bands: BandStats[];
}

// ---------------------------------------------------------------------------------------
// GDAL, two processes at a time (the test machines have two cores)

const slots = limiter(2);

function gdal(cmd: string, args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  return slots(
    () =>
      new Promise((resolve, reject) => {
        const child = execFile(cmd, args, { env: GDAL_ENV, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
          if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
          else resolve({ stdout, stderr });
        });
        // A tool that does not read its input may have gone before it is written.
        child.stdin?.on('error', () => {});
        child.stdin?.end(input ?? '');
      }),
  );
}

interface Info {
  geoTransform: number[];
  /** Band 1's nodata (NaN for "nan"), undefined without one. */
  nodata?: number;
}
const infos = new Map<string, Promise<Info>>();
/** `gdalinfo -json`, asked once per file. */
function infoOf(file: string): Promise<Info> {
  let p = infos.get(file);
  if (!p) {
    p = gdal('gdalinfo', ['-json', file]).then(({ stdout }) => {
      const j = JSON.parse(stdout) as { geoTransform: number[]; bands: { noDataValue?: number | string }[] };
      const v = j.bands[0]!.noDataValue;
      return { geoTransform: j.geoTransform, nodata: v === undefined ? undefined : Number(v) };
    });
    infos.set(file, p);
  }
  return p;
}

/**
 * `gdallocationinfo -wgs84`: the pixel (column, row), and `-valonly`'s values of every band
 * (null where the value is the file's nodata); null off the file.
 */
async function locationInfo(file: string, lon: number, lat: number): Promise<{ pixel: [number, number]; values: (number | null)[] } | null> {
  const { stdout } = await gdal('gdallocationinfo', ['-wgs84', file, String(lon), String(lat)]);
  if (/off this file/.test(stdout)) return null;
  const m = /Location: \((\d+)P,(\d+)L\)/.exec(stdout);
  assert.ok(m, `gdallocationinfo ${file} ${lon} ${lat}: ${stdout}`);
  const nd = (await infoOf(file)).nodata;
  const { stdout: only } = await gdal('gdallocationinfo', ['-valonly', '-wgs84', file, String(lon), String(lat)]);
  const values = only
    .trim()
    .split('\n')
    .map((v) => (v.trim().toLowerCase() === 'nan' ? NaN : Number(v)))
    .map((v) => (nd !== undefined && (v === nd || (Number.isNaN(nd) && Number.isNaN(v))) ? null : v));
  assert.ok(values.length > 0, `gdallocationinfo ${file} ${lon} ${lat}: no values in ${stdout}`);
  return { pixel: [Number(m[1]), Number(m[2])], values };
}

/** WGS84 lon/lat of a file's pixel/line positions, by `gdaltransform`. */
async function pixelsToLonLat(file: string, pts: readonly (readonly [number, number])[]): Promise<[number, number][]> {
  const { stdout } = await gdal('gdaltransform', ['-t_srs', 'EPSG:4326', '-output_xy', file], pts.map(([c, r]) => `${c} ${r}`).join('\n') + '\n');
  return stdout
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
}

interface Warped {
  /** Band values, then GDAL's alpha (0 where it draws nothing). */
  values: Float64Array;
  alpha: Float64Array;
  /** Pyramid level GDAL read: 0 full resolution, k the k-th overview. */
  level: number;
  /** The ENVI file, for a second warp. */
  file: string;
}

/**
 * `gdalwarp` of `src` onto the grid (EPSG:3857, -te bounds, -ts size size) as Float32 with
 * GDAL's alpha. `-et 0` transforms every pixel exactly (GDAL's default approximation moves
 * sample positions by up to 1/8 pixel); `ovr` is AUTO unless told, the level read comes from
 * the debug output.
 */
async function warpGrid(src: string, grid: Grid, method: string, out: string, ovr = 'AUTO'): Promise<Warped> {
  const te = grid.bounds.map((v) => v.toFixed(6));
  const size = String(grid.size);
  const args = ['-q', '-overwrite', '-ovr', ovr, '-t_srs', 'EPSG:3857', '-te', ...te, '-ts', size, size, '-r', method, '-et', '0', '-dstalpha'];
  const { stderr } = await gdal('gdalwarp', ['--debug', 'on', ...args, '-ot', 'Float32', '-of', 'ENVI', src, `${out}.raw`]);
  const m = /Selecting overview level (\d+)/.exec(stderr);
  const { width, height, bands } = readEnviRaw(out);
  assert.equal(width, grid.size);
  assert.equal(height, grid.size);
  return { values: bands[0]!, alpha: bands[bands.length - 1]!, level: m ? Number(m[1]) + 1 : 0, file: `${out}.raw` };
}

/**
 * The pixels of a grid whose centre lies inside `polygons` (WGS84 GeoJSON), as
 * `gdalwarp -cutline` selects them: an identity warp of the grid's own raster (same -te/-ts,
 * -r near), whose alpha is the cutline rasterised on that grid.
 */
async function cutlineMask(warped: Warped, grid: Grid, geojson: object, out: string): Promise<Uint8Array> {
  await writeFile(`${out}.geojson`, JSON.stringify(geojson));
  const te = grid.bounds.map((v) => v.toFixed(6));
  const size = String(grid.size);
  await gdal('gdalwarp', [
    '-q',
    '-overwrite',
    '-cutline',
    `${out}.geojson`,
    '-te',
    ...te,
    '-ts',
    size,
    size,
    '-r',
    'near',
    '-et',
    '0',
    '-ovr',
    'NONE',
    '-dstalpha',
    '-ot',
    'Float32',
    '-of',
    'ENVI',
    warped.file,
    `${out}.raw`,
  ]);
  const { bands } = readEnviRaw(out);
  const alpha = bands[bands.length - 1]!;
  return Uint8Array.from(alpha, (a) => (a > 0 ? 1 : 0));
}

// ---------------------------------------------------------------------------------------
// Statistics as the issue defines them, over GDAL's values

interface Reference {
  values: Float64Array;
  /** Pixels of the area (the bbox's part, or inside the polygons), valid or not. */
  inside: number;
}

/** GDAL's valid values over the pixels of the grid that `mask` keeps. */
function referenceValues(w: Warped, grid: Grid, mask: (i: number, j: number) => boolean): Reference {
  const out: number[] = [];
  let inside = 0;
  for (let j = 0; j < grid.size; j++)
    for (let i = 0; i < grid.size; i++) {
      if (!mask(i, j)) continue;
      inside++;
      const k = j * grid.size + i;
      if (w.alpha[k]! > 0 && Number.isFinite(w.values[k]!)) out.push(w.values[k]!);
    }
  return { values: Float64Array.from(out), inside };
}

/** Nearest rank: the smallest value with at least q% of the values at or below it. */
function nearestRank(sorted: Float64Array, q: number): number {
  return sorted[Math.max(0, Math.ceil((q / 100) * sorted.length) - 1)]!;
}

function describeStats(values: Float64Array) {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  let sum = 0;
  for (const v of sorted) sum += v;
  const mean = sum / n;
  let sq = 0;
  for (const v of sorted) sq += (v - mean) ** 2;
  return {
    count: n,
    min: sorted[0]!,
    max: sorted[n - 1]!,
    mean,
    std: Math.sqrt(sq / n),
    percentiles: {
      p2: nearestRank(sorted, 2),
      p25: nearestRank(sorted, 25),
      p50: nearestRank(sorted, 50),
      p75: nearestRank(sorted, 75),
      p98: nearestRank(sorted, 98),
    },
  };
}

/**
 * How close an answer must be to GDAL: `value` (metres) on min, max and percentiles, `rel` on
 * mean and std, `pixels` on the count (0 but where the data's edge passes through the area).
 */
interface Tolerance {
  value: number;
  rel: number;
  pixels?: number;
}
/**
 * Nearest: every value is a source value, the very one GDAL's exact transform takes (but for a
 * point on a pixel edge, where rounding decides: 1 pixel of 45,024 in the bbox here), so order
 * statistics are the same values and mean and std agree to rounding.
 */
const NEAREST: Tolerance = { value: 1e-3, rel: 1e-6 };
/**
 * Bilinear: the renderer interpolates the transform on a grid within 1/8 source pixel, as
 * gdalwarp's default -et 0.125 does (src/tiles/plan.ts, MAX_GRID_ERROR), where the reference
 * takes every pixel exactly (-et 0); on this DEM's slopes a pixel's value moves by up to
 * 0.83 m (measured at the native size), and an order statistic of two samples moves by no
 * more than their largest pixel difference. 1 m is 0.06% of the DEM's 1630 m range (measured:
 * up to 0.3 m); mean and std agree within 1e-4 (measured: 1e-5).
 */
const BILINEAR: Tolerance = { value: 1, rel: 1e-4 };
/**
 * Bilinear where the data's edge crosses the area: whether an edge pixel is valid depends on
 * where its centre falls within the edge source pixel, which the interpolated transform moves
 * by up to 1/8 pixel: a pixel or two along the edge may go either way, and with it the
 * extreme value when it lies on the edge (measured: 2.3 m on the triangle's maximum).
 */
const BILINEAR_AT_EDGE: Tolerance = { value: 5, rel: 1e-4, pixels: 2 };

/** Every way `got` differs from the reference beyond the tolerances (empty when it agrees). */
function statsDifferences(got: BandStats, ref: Reference, tol: Tolerance): string[] {
  const want = describeStats(ref.values);
  const out: string[] = [];
  if (Math.abs(got.count - want.count) > (tol.pixels ?? 0)) out.push(`count ${got.count}, GDAL ${want.count}`);
  const close = (name: string, a: number | null, b: number, t: number) => {
    if (a === null || !(Math.abs(a - b) <= t)) out.push(`${name} ${a}, GDAL ${b}`);
  };
  close('valid_fraction', got.valid_fraction, want.count / ref.inside, 1e-12 + (tol.pixels ?? 0) / ref.inside);
  close('min', got.min, want.min, tol.value);
  close('max', got.max, want.max, tol.value);
  close('mean', got.mean, want.mean, tol.rel * Math.abs(want.mean));
  close('std', got.std, want.std, tol.rel * want.std);
  for (const [k, v] of Object.entries(want.percentiles)) close(k, got.percentiles[k as keyof BandStats['percentiles']], v, tol.value);
  return out;
}

/** Sum of the absolute differences of min, max and the percentiles: which of two references an answer is nearer. */
function orderDistance(got: BandStats, ref: Reference): number {
  const want = describeStats(ref.values);
  const pairs: [number | null, number][] = [
    [got.min, want.min],
    [got.max, want.max],
    ...Object.entries(want.percentiles).map(([k, v]): [number | null, number] => [got.percentiles[k as keyof BandStats['percentiles']], v]),
  ];
  return pairs.reduce((s, [a, b]) => s + Math.abs((a ?? NaN) - b), 0);
}

/**
 * The histogram: `bins` bins from min to max whose counts sum to count, and GDAL's values
 * binned on the same edges give the same counts but for values within the tolerance of an edge.
 */
function checkHistogram(got: BandStats, ref: Reference, bins: number, tol: Tolerance, what: string): void {
  const { counts, edges } = got.histogram;
  assert.equal(counts.length, bins, `${what}: bins`);
  assert.equal(edges.length, bins + 1, `${what}: edges`);
  assert.equal(
    counts.reduce((s, c) => s + c, 0),
    got.count,
    `${what}: histogram counts sum to count`,
  );
  assert.equal(edges[0], got.min, `${what}: the first edge is the minimum`);
  assert.ok(Math.abs(edges[bins]! - got.max!) <= 1e-9 * Math.abs(got.max!), `${what}: the last edge ${edges[bins]} is the maximum ${got.max}`);
  const width = (edges[bins]! - edges[0]!) / bins;
  const mine = new Array<number>(bins).fill(0);
  let nearEdge = 0;
  for (const v of ref.values) {
    mine[Math.max(0, Math.min(bins - 1, Math.floor((v - edges[0]!) / width)))]!++;
    if (edges.some((e) => Math.abs(v - e) <= tol.value)) nearEdge++;
  }
  const off = counts.reduce((s, c, k) => s + Math.abs(c - mine[k]!), 0);
  assert.ok(off <= 2 * nearEdge, `${what}: histogram ${counts} against GDAL's values on the same edges ${mine} (${nearEdge} values near an edge)`);
}

// ---------------------------------------------------------------------------------------
// Web Mercator, written out here (not imported from src/)

const HALF_WORLD = Math.PI * 6378137;
function mercator(lon: number, lat: number): [number, number] {
  return [(lon / 180) * HALF_WORLD, Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360)) * 6378137];
}

/** The grid the issue defines: square, anchored at the bbox's north-west corner, long side `size` pixels. */
function expectedGrid(bbox: Bbox, size: number): Grid {
  const [x0, y0] = mercator(bbox[0], bbox[1]);
  const [x1, y1] = mercator(bbox[2], bbox[3]);
  const long = Math.max(x1 - x0, y1 - y0);
  return {
    bounds: [x0, y1 - long, x0 + long, y1],
    size,
    width: Math.max(1, Math.round(((x1 - x0) / long) * size)),
    height: Math.max(1, Math.round(((y1 - y0) / long) * size)),
  };
}

function assertGrid(got: Grid, want: Grid, what: string): void {
  assert.equal(got.size, want.size, `${what}: grid size`);
  assert.equal(got.width, want.width, `${what}: grid width`);
  assert.equal(got.height, want.height, `${what}: grid height`);
  got.bounds.forEach((v, k) => assert.ok(Math.abs(v - want.bounds[k]!) < 1e-3, `${what}: grid bounds ${got.bounds} against ${want.bounds}`));
}

// ---------------------------------------------------------------------------------------
// HTTP

/** A POST with a body; a server that answers before reading it all may reset the upload, which is not an error here. */
function post(base: string, pathname: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  const u = upload(base, pathname, body, headers);
  u.finish();
  return u.answer;
}

/** A POST whose body goes out in two halves: the first at once, the rest at `finish` (or never: `abort`). */
function upload(
  base: string,
  pathname: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): { answer: Promise<Answer>; finish(): void; abort(): void } {
  const u = new URL(base);
  const data = typeof body === 'string' ? Buffer.from(body) : body;
  const half = data.length >> 1;
  const req = http.request({
    host: u.hostname,
    port: u.port,
    path: pathname,
    method: 'POST',
    agent: false,
    headers: { 'Content-Type': 'application/geo+json', 'Content-Length': String(data.length), ...headers },
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: POST ${pathname}`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
  });
  req.write(data.subarray(0, half));
  return { answer, finish: () => req.end(data.subarray(half)), abort: () => req.destroy() };
}

/** What `p` resolves to within `ms`, else null. */
function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  return Promise.race([p, new Promise<null>((r) => setTimeout(() => r(null), ms).unref())]);
}

async function json<T>(r: Promise<Answer>, what: string, status = 200): Promise<T> {
  const a = await r;
  assert.equal(a.status, status, `${what}: ${a.status} ${a.body.toString('utf8').slice(0, 500)}`);
  assert.match(String(a.headers['content-type']), /^application\/json/, `${what}: content type`);
  return JSON.parse(a.body.toString('utf8')) as T;
}

/** What is wrong with an error answer (null when right): the status, a JSON body `{error, detail}` whose text matches `names`, not cached. */
async function errorProblem(r: Promise<Answer>, status: number, names: RegExp, what: string): Promise<string | null> {
  const a = await r;
  const text = a.body.toString('utf8').slice(0, 300);
  if (a.status !== status) return `${what}: ${a.status}, expected ${status}: ${text}`;
  if (!/^application\/json/.test(String(a.headers['content-type']))) return `${what}: content type ${a.headers['content-type']}`;
  const body = JSON.parse(a.body.toString('utf8')) as { error?: unknown; detail?: unknown };
  if (typeof body.error !== 'string' || typeof body.detail !== 'string') return `${what}: no error and detail: ${text}`;
  if (!names.test(`${body.error} ${body.detail}`)) return `${what}: does not match ${names}: ${text}`;
  if (a.headers['cache-control'] !== 'no-store') return `${what}: Cache-Control ${a.headers['cache-control']}`;
  return null;
}

async function assertError(r: Promise<Answer>, status: number, names: RegExp, what: string): Promise<void> {
  assert.equal(await errorProblem(r, status, names, what), null);
}

/** Every case's problem at once, so that one failure does not hide the others. */
async function assertErrors(cases: [Promise<Answer>, number, RegExp, string][]): Promise<void> {
  const problems = (await Promise.all(cases.map((c) => errorProblem(...c)))).filter((p) => p !== null);
  assert.deepEqual(problems, []);
}

const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(3)}%`;

// ---------------------------------------------------------------------------------------

describe('/point, /statistics and /preview against GDAL', { skip: SKIP }, () => {
  let tmp: TempLayers;
  let server: TestServer;
  let work = '';
  const data = (f: string) => path.join(tmp.dir, 'data', f);
  /** The resampling the shipped dem-relief layer reads with, in gdalwarp's words. */
  let demMethod = '';
  /** Each layer's maxzoom, from its file: /point's default zoom. */
  const maxzoom = new Map<string, number>();
  /** Printed at the end: the measured agreement, not only pass or fail. */
  const summary: string[] = [];

  const get = (p: string) => request(server.url, p);

  before(async () => {
    tmp = await makeLayersDir(['dem-relief', 'dem-shaded-relief', 'zion-ndvi']);
    for (const f of await readdir(path.join(SHIPPED_DATA, 'dem-pieces')))
      await tmp.write(`data/dem-pieces/${f}`, await readFile(path.join(SHIPPED_DATA, 'dem-pieces', f)));
    await tmp.write('dem-mosaic.yaml', await shippedLayerText('dem-mosaic'));
    // dem-relief read with nearest: statistics of the source values themselves.
    const relief = await shippedLayerText('dem-relief');
    assert.match(relief, /resampling: bilinear/);
    await tmp.write('dem-nearest.yaml', relief.replace('resampling: bilinear', 'resampling: nearest'));
    work = path.join(tmp.root, 'work');
    await mkdir(work);
    for (const name of ['dem-relief', 'dem-shaded-relief', 'zion-ndvi', 'dem-mosaic'])
      maxzoom.set(name, Number(/^maxzoom: (\d+)/m.exec(await shippedLayerText(name))?.[1] ?? 18));
    const m = /read: \{[^}]*resampling: (\w+)/.exec(await shippedLayerText('dem-relief'));
    demMethod = { nearest: 'near', bilinear: 'bilinear', cubic: 'cubic' }[m?.[1] ?? 'bilinear']!;
    server = await startServer(tmp.dir);
  });

  after(async () => {
    await server?.close();
    await tmp?.remove();
    if (summary.length) console.log(summary.join('\n'));
  });

  // -------------------------------------------------------------------------------------
  describe('GET /point', { concurrency: true }, () => {
    /** The served tile's pixel (i, j) as sharp decodes it; null for 204. */
    async function tilePixel(layer: string, z: number, x: number, y: number, [i, j]: [number, number]): Promise<number[] | null> {
      const r = await get(`/tiles/${layer}/${z}/${x}/${y}.png`);
      if (r.status === 204) return null;
      assert.equal(r.status, 200, `tile ${layer}/${z}/${x}/${y}: ${r.body.toString('utf8')}`);
      const p = await decode(r.body);
      const k = 4 * (j * p.width + i);
      return Array.from(p.data.subarray(k, k + 4));
    }

    /**
     * One point on a layer: the tile and pixel (tilebelt), every source against
     * gdallocationinfo on `files` (source name to the files that may lie under the point), the
     * final rgba against the served tile.
     */
    async function checkPoint(layer: string, lon: number, lat: number, files: Record<string, string[]>, z?: number): Promise<PointAnswer> {
      const what = `/point/${layer}/${lon},${lat}${z === undefined ? '' : `?z=${z}`}`;
      const a = await json<PointAnswer>(get(`/point/${layer}/${lon},${lat}${z === undefined ? '' : `?z=${z}`}`), what);
      const zoom = z ?? maxzoom.get(layer)!;
      const [fx, fy] = pointToTileFraction(lon, lat, zoom);
      const want = { z: zoom, x: Math.floor(fx), y: Math.floor(fy), pixel: [Math.floor((fx % 1) * 256), Math.floor((fy % 1) * 256)] };
      assert.deepEqual(a.tile, want, `${what}: tile and pixel`);
      assert.equal(a.layer, layer);

      const expected: SourceValue[] = [];
      for (const [source, list] of Object.entries(files))
        for (const f of list) {
          const info = await locationInfo(data(f), lon, lat);
          if (info) expected.push({ source, location: `data/${f}`, pixel: info.pixel, crs: [0, 0], values: info.values });
        }
      const key = (s: { source: string; location: string }) => `${s.source} ${s.location}`;
      assert.deepEqual(a.sources.map(key).sort(), expected.map(key).sort(), `${what}: the sources under the point (gdallocationinfo answers on these files)`);
      for (const e of expected) {
        const s = a.sources.find((s) => key(s) === key(e))!;
        assert.deepEqual(s.pixel, e.pixel, `${what}: ${e.location}: pixel, gdallocationinfo says ${e.pixel}`);
        // -valonly prints 15 significant digits: equal as Float32 (the integer files exactly).
        assert.deepEqual(
          s.values.map((v) => (v === null ? null : Math.fround(v))),
          e.values.map((v) => (v === null ? null : Math.fround(v))),
          `${what}: ${e.location}: values, gdallocationinfo says ${e.values}`,
        );
      }
      assert.deepEqual(a.rgba, await tilePixel(layer, want.z, want.x, want.y, want.pixel as [number, number]), `${what}: rgba is the tile's pixel`);
      // SPEC's maps say the same as the detailed lists.
      assert.deepEqual(a.nodes, Object.fromEntries(a.steps.map((n) => [n.name, n.values])), `${what}: nodes by name`);
      for (const source of Object.keys(files)) {
        const under = a.sources.filter((x) => x.source === source);
        const first = under.find((x) => x.values.some((v) => v !== null)) ?? under[0];
        assert.deepEqual(a.reads[source], first?.values, `${what}: reads.${source}`);
      }
      return a;
    }

    /**
     * DEM pixel/line positions in WGS84 through gdaltransform: the centres of an inner pixel,
     * of one in the last column and of one on a cut between the mosaic's pieces; and a point
     * 60 m west of the first column.
     */
    let demPoints: Record<'inside' | 'lastColumn' | 'beside' | 'pieceEdge', [number, number]>;
    before(async () => {
      const pts = await pixelsToLonLat(data(DEM), [
        [230.5, 249.5],
        [399.5, 200.5],
        [-0.6, 200.5],
        [199.5, 150.5],
      ]);
      demPoints = { inside: pts[0]!, lastColumn: pts[1]!, beside: pts[2]!, pieceEdge: pts[3]! };
    });
    const round = ([lon, lat]: [number, number]): [number, number] => [Number(lon.toFixed(9)), Number(lat.toFixed(9))];

    it("dem-relief: the source pixel is gdallocationinfo's, every step is listed, rgba is the tile's pixel (inside, on the last column)", async () => {
      for (const where of ['inside', 'lastColumn'] as const) {
        const [lon, lat] = round(demPoints[where]);
        const a = await checkPoint('dem-relief', lon, lat, { dem: [DEM] });
        assert.equal(a.sources.length, 1, `${where}: one source`);
        assert.deepEqual(
          a.steps.map((n) => [n.name, n.op, n.kind]),
          [
            ['0', 'read', 'bands'],
            ['1', 'colormap', 'rgba'],
          ],
          `${where}: the steps`,
        );
        assert.equal(a.steps[0]!.values!.length, 1);
        assert.equal(typeof a.steps[0]!.values![0], 'number', `${where}: the read step has a value`);
        // At z15 (3 m pixels) the bilinear value lies within the heights of the 100 m cell's neighbours; its own is close.
        assert.ok(
          Math.abs(a.steps[0]!.values![0]! - a.sources[0]!.values[0]!) < 50,
          `${where}: read ${a.steps[0]!.values} against the source ${a.sources[0]!.values}`,
        );
        assert.deepEqual(a.steps.at(-1)!.values, a.rgba, `${where}: the last step is what is drawn`);
        // The point is the pixel's centre (GDAL's transform from pixel/line to WGS84): the
        // renderer's CRS position must be that centre, within the 2 m PROJ states for the
        // NAD83(CSRS) to WGS 84 transformations it may choose among (both pick the same here).
        const g = (await infoOf(data(DEM))).geoTransform;
        const [col, row] = a.sources[0]!.pixel;
        const [x, y] = a.sources[0]!.crs;
        const [cx, cy] = [g[0]! + (col + 0.5) * g[1]!, g[3]! + (row + 0.5) * g[5]!];
        assert.ok(Math.hypot(x - cx, y - cy) < 2, `${where}: crs ${x},${y}, the pixel's centre ${cx},${cy}`);
      }
    });

    it('dem-relief: z chooses the zoom (z=10 and the minzoom 6)', async () => {
      const [lon, lat] = round(demPoints.inside);
      for (const z of [10, 6]) {
        const a = await checkPoint('dem-relief', lon, lat, { dem: [DEM] }, z);
        assert.equal(a.tile.z, z);
        assert.notEqual(a.rgba, null, `z=${z}: something is drawn there`);
      }
    });

    it('dem-relief: beside the data on a tile that has data, the sources are empty and the pixel masked', async () => {
      const [lon, lat] = round(demPoints.beside);
      const a = await checkPoint('dem-relief', lon, lat, { dem: [DEM] });
      assert.deepEqual(a.sources, [], 'no source pixel');
      assert.notEqual(a.rgba, null, 'the tile there has data');
      assert.deepEqual(
        a.steps.map((n) => [n.name, n.kind, n.values]),
        [
          ['0', 'bands', [null]],
          ['1', 'rgba', [0, 0, 0, 0]],
        ],
        'the band is null, the colour transparent',
      );
    });

    it('dem-relief: far from the data (an empty tile), every step is listed with null values', async () => {
      const a = await checkPoint('dem-relief', 0, 0, { dem: [DEM] });
      assert.deepEqual(a.sources, [], 'no source pixel');
      assert.equal(a.rgba, null, 'nothing drawn (the tile is 204)');
      assert.deepEqual(
        a.steps.map((n) => n.name),
        ['0', '1'],
        `every step of the graph is listed (got ${JSON.stringify(a.steps)})`,
      );
      for (const n of a.steps)
        assert.ok(n.values === null || (n.values.length > 0 && n.values.every((v) => v === null)), `${n.name} is null, got ${JSON.stringify(n.values)}`);
    });

    it('zion-ndvi: both sources against gdallocationinfo, every node of the graph, ndvi from the reads', async () => {
      const pts = await pixelsToLonLat(data(NIR), [
        [694.5, 801.5],
        [10.5, 1427.5],
        [1127.5, 3.5],
      ]);
      for (const [k, p] of pts.entries()) {
        const [lon, lat] = round(p);
        const a = await checkPoint('zion-ndvi', lon, lat, { nir: [NIR], red: [RED] });
        assert.deepEqual(
          a.steps.map((n) => `${n.name} ${n.op} ${n.kind}`).sort(),
          ['ndvi normalized_difference bands', 'nir read bands', 'red read bands', 'rgba colormap rgba'],
          'the steps',
        );
        const v = (name: string) => a.steps.find((n) => n.name === name)!.values![0]!;
        if (k === 0)
          assert.ok(Math.abs(v('ndvi') - (v('nir') - v('red')) / (v('nir') + v('red'))) < 1e-6, `ndvi ${v('ndvi')} from nir ${v('nir')} and red ${v('red')}`);
      }
    });

    it('dem-mosaic: the member under the point, with member: true and its gdallocationinfo value', async () => {
      const pieces = (await readdir(path.join(SHIPPED_DATA, 'dem-pieces'))).map((f) => `dem-pieces/${f}`);
      for (const where of ['inside', 'pieceEdge'] as const) {
        const [lon, lat] = round(demPoints[where]);
        for (const z of [undefined, 10]) {
          const a = await checkPoint('dem-mosaic', lon, lat, { dem: pieces }, z);
          assert.equal(a.sources.length, 1, `${where}: one member under the point`);
          assert.equal(a.sources[0]!.member, true, `${where}: member: true`);
          // The pieces are the DEM cut: the member's value is the whole file's.
          const whole = await locationInfo(data(DEM), lon, lat);
          assert.equal(a.sources[0]!.values[0], Math.fround(whole!.values[0]!), `${where}: the member's value is the whole DEM's`);
          // Its tiles are byte for byte dem-shaded-relief's (README): so are its steps.
          const shaded = await json<PointAnswer>(get(`/point/dem-shaded-relief/${lon},${lat}${z === undefined ? '' : `?z=${z}`}`), 'dem-shaded-relief');
          assert.deepEqual(a.steps, shaded.steps, `${where}: the steps of dem-mosaic and dem-shaded-relief`);
        }
      }
    });

    it('a bad point, a zoom out of range and an unknown layer answer JSON errors', async () => {
      await assertErrors([
        [get('/point/dem-relief/abc'), 400, /lon.*lat/, 'not a point'],
        [get('/point/dem-relief/-117.5'), 400, /lon.*lat/, 'one number'],
        [get('/point/dem-relief/200,53'), 400, /180/, 'longitude 200'],
        [get('/point/dem-relief/-117.5,89'), 400, /85\.05/, 'latitude 89'],
        [get('/point/dem-relief/-117.5,53.2?z=16'), 400, /6-15/, 'z above maxzoom'],
        [get('/point/dem-relief/-117.5,53.2?z=5'), 400, /6-15/, 'z below minzoom'],
        [get('/point/dem-relief/-117.5,53.2?z=x'), 400, /z=x/, 'z not a number'],
        [get('/point/nope/-117.5,53.2'), 404, /nope/, 'unknown layer'],
      ]);
    });
  });

  // -------------------------------------------------------------------------------------
  describe('/statistics against gdalwarp onto the same grid', { concurrency: true }, () => {
    /**
     * The shipped dem-relief (bilinear), and the same layer read with nearest (written by this
     * test): nearest takes source values themselves, so its statistics must be GDAL's to the
     * last bit, which pins the grid, the mask, the level and the arithmetic; bilinear checks the
     * shipped layer within the renderer's documented transform tolerance.
     */
    const layersUnderTest = () =>
      [
        { layer: 'dem-nearest', method: 'near', tol: NEAREST },
        { layer: 'dem-relief', method: demMethod, tol: BILINEAR },
      ] as const;

    /** GDAL's values over the bbox's part of the answer's grid, at the level GDAL picks (or `ovr`). */
    async function bboxReference(a: StatsAnswer, method: string, name: string, ovr?: string): Promise<{ ref: Reference; level: number }> {
      const w = await warpGrid(data(DEM), a.grid, method, path.join(work, name), ovr);
      return { ref: referenceValues(w, a.grid, (i, j) => i < a.grid.width && j < a.grid.height), level: w.level };
    }

    it("GET over a bbox inside the data: the native grid, every statistic as GDAL's, the histogram", async () => {
      const bins = 20;
      for (const { layer, method, tol } of layersUnderTest()) {
        const what = `${layer} GET ${INSIDE}`;
        const a = await json<StatsAnswer>(get(`/statistics/${layer}?bbox=${INSIDE.join(',')}&bins=${bins}`), what);
        // Native: 100 m pixels across ~0.2 degrees of latitude at 53.2 N; Web Mercator metres are 1/cos(lat) ground metres.
        const [, y0] = mercator(INSIDE[0], INSIDE[1]);
        const [, y1] = mercator(INSIDE[2], INSIDE[3]);
        const native = (y1 - y0) / (100 / Math.cos((53.2 * Math.PI) / 180));
        assert.ok(Math.abs(a.grid.size - native) < 0.02 * native, `${what}: native size ${a.grid.size}, about ${native.toFixed(1)} expected`);
        assertGrid(a.grid, expectedGrid(INSIDE, a.grid.size), what);
        assert.deepEqual(a.bbox, INSIDE);
        assert.equal(a.node, '0', `${what}: the last step that gives bands`);
        assert.equal(a.bands.length, 1);
        const { ref, level } = await bboxReference(a, method, `inside-${layer}`);
        assert.equal(level, 0, `${what}: GDAL reads full resolution at the native size`);
        assert.equal(ref.inside, a.grid.width * a.grid.height);
        assert.equal(ref.values.length, ref.inside, `${what}: GDAL draws every pixel of this bbox`);
        const diff = statsDifferences(a.bands[0]!, ref, tol);
        summary.push(`${what}: grid ${a.grid.size} (${a.grid.width}x${a.grid.height}), count ${a.bands[0]!.count}; ${diff.join('; ') || 'agree'}`);
        assert.deepEqual(diff, [], `${what}: against GDAL`);
        checkHistogram(a.bands[0]!, ref, bins, tol, what);
      }
    });

    it('GET with max_size=64: GDAL reads the overview, and so does the answer', async () => {
      for (const { layer, method, tol } of layersUnderTest()) {
        const what = `${layer} GET max_size=64`;
        const a = await json<StatsAnswer>(get(`/statistics/${layer}?bbox=${INSIDE.join(',')}&max_size=64`), what);
        assertGrid(a.grid, expectedGrid(INSIDE, 64), what);
        const [auto, full] = await Promise.all([bboxReference(a, method, `small-auto-${layer}`), bboxReference(a, method, `small-full-${layer}`, 'NONE')]);
        assert.equal(auto.level, 1, `${what}: gdalwarp -ovr AUTO reads the first overview for this grid`);
        const got = a.bands[0]!;
        if (method === 'near') {
          assert.deepEqual(statsDifferences(got, auto.ref, tol), [], `${what}: against GDAL at the overview`);
          // The check tells the levels apart: full resolution gives other statistics.
          assert.notDeepEqual(statsDifferences(got, full.ref, tol), [], `${what}: the full-resolution reference must not agree as well`);
          checkHistogram(got, auto.ref, 10, tol, what);
        } else {
          // Downsampling bilinear: gdalwarp widens the kernel by a scale it computes per warp
          // chunk, the renderer by the true scale (test/render.test.ts compares such tiles
          // within 4 levels of 255): the count, the mean, and being nearer GDAL's overview
          // reference than its full-resolution one.
          assert.equal(got.count, auto.ref.values.length, `${what}: count`);
          const mean = describeStats(auto.ref.values).mean;
          assert.ok(Math.abs(got.mean! - mean) <= tol.rel * mean, `${what}: mean ${got.mean}, GDAL ${mean}`);
          const [dAuto, dFull] = [orderDistance(got, auto.ref), orderDistance(got, full.ref)];
          summary.push(
            `${what}: min, max and percentiles differ from GDAL's overview by ${dAuto.toFixed(2)} m in all, from full resolution by ${dFull.toFixed(2)} m`,
          );
          assert.ok(dAuto < dFull, `${what}: nearer the overview (${dAuto}) than full resolution (${dFull})`);
        }
      }
    });

    it('GET over a bbox of one pixel: inside the data, the value GDAL gives; far from it, none', async () => {
      // A one-pixel grid once left the source coordinates as the render thread's recycled
      // arrays held them: every such bbox, anywhere, answered the value of some earlier pixel.
      const tiny: Bbox = [-117.5, 53.2, -117.4999, 53.2001];
      const far = '100,10,100.0001,10.0001';
      for (const { layer, method, tol } of layersUnderTest()) {
        // An area first, so that the render thread's arrays hold other pixels' coordinates.
        await json<StatsAnswer>(get(`/statistics/${layer}?bbox=${INSIDE.join(',')}&max_size=64`), `${layer} before`);
        const what = `${layer} GET ${tiny} max_size=1`;
        const a = await json<StatsAnswer>(get(`/statistics/${layer}?bbox=${tiny.join(',')}&max_size=1`), what);
        assert.equal(a.grid.size, 1, what);
        const { ref } = await bboxReference(a, method, `one-${layer}`);
        assert.equal(ref.values.length, 1, `${what}: GDAL draws the pixel`);
        assert.deepEqual(statsDifferences(a.bands[0]!, ref, tol), [], `${what}: against GDAL`);
        const none = await json<StatsAnswer>(get(`/statistics/${layer}?bbox=${far}&max_size=1`), `${layer} far away`);
        assert.equal(none.grid.size, 1);
        assert.ok((none.bands[0]?.count ?? 0) === 0, `${layer} at ${far}: ${JSON.stringify(none.bands)}`);
        const preview = await get(`/preview/${layer}.png?bbox=${far}&width=1`);
        assert.equal(preview.status, 200);
        const png = await decode(preview.body);
        assert.equal(png.data[3], 0, `${layer} at ${far}: the preview's pixel is transparent`);
      }
    });

    it("GET over a bbox across the data's west edge: the valid pixels are GDAL's", async () => {
      const bbox: Bbox = [-118.0, 53.15, -117.7, 53.35];
      for (const { layer, method, tol } of layersUnderTest()) {
        const what = `${layer} GET ${bbox}`;
        const a = await json<StatsAnswer>(get(`/statistics/${layer}?bbox=${bbox.join(',')}`), what);
        assertGrid(a.grid, expectedGrid(bbox, a.grid.size), what);
        const { ref } = await bboxReference(a, method, `edge-${layer}`);
        assert.ok(
          ref.values.length < ref.inside * 0.8 && ref.values.length > ref.inside * 0.2,
          `${what}: GDAL draws part of the bbox (${ref.values.length} of ${ref.inside})`,
        );
        const diff = statsDifferences(a.bands[0]!, ref, tol);
        summary.push(`${what}: count ${a.bands[0]!.count}, GDAL ${ref.values.length}; ${diff.join('; ') || 'agree'}`);
        assert.deepEqual(diff, [], `${what}: against GDAL`);
      }
    });

    // Polygons: a quadrilateral with slanted sides; a polygon with a hole; two polygons, one
    // across the data's edge; a triangle whose long side (2.2 by 1.4 degrees) runs across the data.
    const quad: Ring = [
      [-117.7, 53.1],
      [-117.4, 53.15],
      [-117.45, 53.3],
      [-117.65, 53.28],
      [-117.7, 53.1],
    ];
    const outer: Ring = [
      [-117.8, 53.12],
      [-117.3, 53.12],
      [-117.3, 53.38],
      [-117.8, 53.38],
      [-117.8, 53.12],
    ];
    const hole: Ring = [
      [-117.6, 53.2],
      [-117.5, 53.18],
      [-117.45, 53.3],
      [-117.62, 53.31],
      [-117.6, 53.2],
    ];
    const west: Ring = [
      [-117.95, 53.2],
      [-117.75, 53.22],
      [-117.8, 53.35],
      [-117.95, 53.2],
    ];
    const east: Ring = [
      [-117.45, 53.1],
      [-117.3, 53.1],
      [-117.3, 53.2],
      [-117.4, 53.25],
      [-117.45, 53.1],
    ];
    const triangle: Ring = [
      [-118.6, 52.6],
      [-116.4, 54.0],
      [-118.6, 54.0],
      [-118.6, 52.6],
    ];
    // A comb of 30 teeth: every row of the grid crosses 60 edges.
    const comb = zigzag(30, [-117.7, 53.1, -117.4, 53.3]);
    const POLYGONS: { name: string; body: object; bbox: Bbox }[] = [
      {
        name: 'a Polygon in a FeatureCollection',
        body: { type: 'FeatureCollection', features: [{ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [quad] } }] },
        bbox: [-117.7, 53.1, -117.4, 53.3],
      },
      {
        name: 'a Polygon with a hole, as a Feature',
        body: { type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [outer, hole] } },
        bbox: [-117.8, 53.12, -117.3, 53.38],
      },
      { name: 'a MultiPolygon, one part across the edge', body: { type: 'MultiPolygon', coordinates: [[west], [east]] }, bbox: [-117.95, 53.1, -117.3, 53.35] },
      { name: 'a triangle whose long side crosses the data', body: { type: 'Polygon', coordinates: [triangle] }, bbox: [-118.6, 52.6, -116.4, 54.0] },
      { name: 'a comb of 30 teeth', body: { type: 'Polygon', coordinates: [comb] }, bbox: [-117.7, 53.1, -117.4, 53.3] },
    ];
    for (const [k, p] of POLYGONS.entries())
      it(`POST ${p.name}: the pixels gdalwarp -cutline keeps on the same grid, and their statistics`, async () => {
        let mask: Uint8Array | undefined;
        for (const { layer, method, tol } of layersUnderTest()) {
          const what = `${layer} POST ${p.name}`;
          const a = await json<StatsAnswer>(post(server.url, `/statistics/${layer}?bins=16`, JSON.stringify(p.body)), what);
          assertGrid(a.grid, expectedGrid(p.bbox, a.grid.size), what);
          const base = path.join(work, `poly${k}-${layer}`);
          const w = await warpGrid(data(DEM), a.grid, method, base);
          // The same grid for both layers: one cutline.
          mask ??= await cutlineMask(w, a.grid, p.body, `${base}-cut`);
          const cut = mask;
          const ref = referenceValues(w, a.grid, (i, j) => cut[j * a.grid.size + i] === 1);
          assert.ok(ref.values.length > 1000, `${what}: ${ref.values.length} valid pixels inside`);
          // Some of these polygons cross the data's edge.
          const t: Tolerance = tol === BILINEAR ? BILINEAR_AT_EDGE : tol;
          const diff = statsDifferences(a.bands[0]!, ref, t);
          summary.push(
            `${what}: grid ${a.grid.size}, ${ref.inside} pixels inside (GDAL), count ${a.bands[0]!.count}, GDAL ${ref.values.length}; ${diff.join('; ') || 'agree'}`,
          );
          assert.deepEqual(diff, [], `${what}: against GDAL`);
          checkHistogram(a.bands[0]!, ref, 16, t, what);
        }
        if (k === 1) {
          // The hole is left out: the same outline without it counts more pixels.
          const [withHole, without] = await Promise.all(
            [p.body, { type: 'Polygon', coordinates: [outer] }].map((b) =>
              json<StatsAnswer>(post(server.url, '/statistics/dem-nearest', JSON.stringify(b)), 'hole'),
            ),
          );
          assert.ok(
            without!.bands[0]!.count > withHole!.bands[0]!.count + 1000,
            `without the hole ${without!.bands[0]!.count}, with it ${withHole!.bands[0]!.count}`,
          );
        }
      });
  });

  // -------------------------------------------------------------------------------------
  describe('caps no parameter lifts, and bodies that are not polygons', { concurrency: true }, () => {
    const bbox = INSIDE.join(',');
    it('max_size above 2048 answers 400 naming 2048', async () => {
      const url = (v: string) => get(`/statistics/dem-relief?bbox=${bbox}&max_size=${v}`);
      await assertErrors([
        [url('2049'), 400, new RegExp(String(MAX_PX)), 'max_size=2049'],
        [url('999999'), 400, new RegExp(String(MAX_PX)), 'max_size=999999'],
        [url('99999999999'), 400, /max_size/, 'max_size=99999999999'],
        [url('0'), 400, /max_size/, 'max_size=0'],
        [url('-5'), 400, /max_size/, 'max_size=-5'],
      ]);
      const most = await json<StatsAnswer>(url(String(MAX_PX)), `max_size=${MAX_PX}`);
      assert.ok(most.grid.size <= MAX_PX);
    });

    it('a parameter given twice answers 400 naming it, not the two values joined by a comma', async () => {
      const twice = (name: string) => new RegExp(`'${name}' is given 2 times: give it once`);
      const stats = `/statistics/dem-relief?bbox=${bbox}`;
      await assertErrors([
        [get(`${stats}&bbox=${bbox}`), 400, twice('bbox'), 'bbox twice'],
        [get(`${stats}&max_size=32&max_size=64`), 400, twice('max_size'), 'max_size twice'],
        [get(`${stats}&bins=4&bins=4`), 400, twice('bins'), 'bins twice'],
        [get(`${stats}&node=0&node=0`), 400, twice('node'), 'node twice'],
        [get(`/preview/dem-relief.png?bbox=${bbox}&bbox=${bbox}`), 400, twice('bbox'), 'preview bbox twice'],
        [get(`/preview/dem-relief.png?bbox=${bbox}&width=64&width=64`), 400, twice('width'), 'preview width twice'],
        [get(`/point/dem-relief/${INSIDE[0]},${INSIDE[1]}?z=10&z=11`), 400, twice('z'), 'point z twice'],
        [get('/tiles/dem-relief/tilejson.json?scale=2&scale=2'), 400, twice('scale'), 'tilejson scale twice'],
        [get('/tiles/dem-relief/tilejson.json?format=png&format=webp'), 400, twice('format'), 'tilejson format twice'],
      ]);
    });

    it('bins outside 1..256 answer 400 naming the range', async () => {
      await assertErrors(
        ['0', '257', '1000'].map((v) => [get(`/statistics/dem-relief?bbox=${bbox}&bins=${v}`), 400, new RegExp(String(MAX_BINS)), `bins=${v}`]),
      );
      const one = await json<StatsAnswer>(get(`/statistics/dem-relief?bbox=${bbox}&bins=1&max_size=32`), 'bins=1');
      assert.deepEqual(one.bands[0]!.histogram.counts, [one.bands[0]!.count]);
      const most = await json<StatsAnswer>(get(`/statistics/dem-relief?bbox=${bbox}&bins=${MAX_BINS}&max_size=32`), `bins=${MAX_BINS}`);
      assert.equal(most.bands[0]!.histogram.counts.length, MAX_BINS);
    });

    it('preview: width above 2048, or a bbox whose height would exceed 2048, answers 400 naming 2048', async () => {
      // TALL is 0.05 degrees wide and 1 degree tall at 53 N: about 33 times taller than wide in Web Mercator.
      await assertErrors([
        [get(`/preview/dem-relief.png?bbox=${bbox}&width=5000`), 400, new RegExp(String(MAX_PX)), 'width=5000'],
        [get(`/preview/dem-relief.png?bbox=${bbox}&width=2049`), 400, new RegExp(String(MAX_PX)), 'width=2049'],
        [get(`/preview/dem-relief.png?bbox=${TALL}&width=1024`), 400, new RegExp(String(MAX_PX)), 'tall bbox, 1024 wide'],
        [get(`/preview/dem-relief.png?bbox=${TALL}&width=100`), 400, new RegExp(String(MAX_PX)), 'tall bbox, 100 wide'],
        [get(`/preview/dem-relief.png?bbox=${bbox}&width=0`), 400, /width/, 'width=0'],
      ]);
      // 40 wide is about 1340 tall, which the cap allows.
      const ok = await get(`/preview/dem-relief.png?bbox=${TALL}&width=40`);
      assert.equal(ok.status, 200, ok.body.toString('utf8').slice(0, 300));
      const p = await decode(ok.body);
      assert.ok(p.height > 1000 && p.height <= MAX_PX, `height ${p.height}`);
    });

    it('a POST body over 1 MiB answers 413', async () => {
      const pad = 'x'.repeat(MAX_BODY);
      const body = JSON.stringify({ type: 'Feature', properties: { pad }, geometry: { type: 'Polygon', coordinates: [INSIDE_RING] } });
      assert.ok(body.length > MAX_BODY);
      await assertError(post(server.url, '/statistics/dem-relief', body), 413, new RegExp(`at most ${MAX_BODY} bytes`), 'a body over 1 MiB');
      // Just under the limit is read.
      const under = JSON.stringify({
        type: 'Feature',
        properties: { pad: 'x'.repeat(MAX_BODY - 500) },
        geometry: { type: 'Polygon', coordinates: [INSIDE_RING] },
      });
      assert.ok(under.length <= MAX_BODY);
      await json<StatsAnswer>(post(server.url, '/statistics/dem-relief?max_size=32', under), 'a body just under 1 MiB');
    });

    it('polygons whose edges would run more than MAX_EDGE_STEPS pixels on the grid answer 400 naming the cap; the server keeps answering', async () => {
      // 20000 teeth across the grid in under 1 MiB of GeoJSON: each of the 40000 edges crosses 1800 of its 2048 rows.
      // Followed pixel by pixel and met by every row, it took the server's memory until it died.
      const body = JSON.stringify({ type: 'Polygon', coordinates: [zigzag(20_000, INSIDE)] });
      assert.ok(body.length < MAX_BODY, `${body.length} bytes`);
      await assertError(post(server.url, `/statistics/dem-relief?max_size=${MAX_PX}`, body), 400, new RegExp(String(MAX_EDGE_STEPS)), 'a 40000-edge zigzag');
      const alive = await get('/healthz');
      assert.equal(alive.status, 200);
      // Within the cap, on a smaller grid, the same outline is measured.
      const small = await json<StatsAnswer>(post(server.url, '/statistics/dem-relief?max_size=32', body), 'the zigzag on a 32-pixel grid');
      assert.ok(small.bands[0]!.count > 0, JSON.stringify(small.bands[0]));
    });

    it('a POST that is not GeoJSON polygons answers 400 naming the problem', async () => {
      const send = (body: string) => post(server.url, '/statistics/dem-relief', body);
      await assertErrors([
        [send('not json at all'), 400, /JSON/, 'not JSON'],
        [send(''), 400, /GeoJSON/, 'an empty body'],
        [send(JSON.stringify({ type: 'LineString', coordinates: [INSIDE_RING[0], INSIDE_RING[2]] })), 400, /LineString/, 'a LineString'],
        [send(JSON.stringify({ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: INSIDE_RING[0] } })), 400, /Point/, 'a Point feature'],
        [send(JSON.stringify({ type: 'FeatureCollection', features: [] })), 400, /polygon/i, 'no features'],
        [
          send(
            JSON.stringify({
              type: 'Polygon',
              coordinates: [
                [
                  [0, 0],
                  [1, 1],
                ],
              ],
            }),
          ),
          400,
          /ring/,
          'a ring of two positions',
        ],
        [
          send(
            JSON.stringify({
              type: 'Polygon',
              coordinates: [
                [
                  [0, 0],
                  [200, 1],
                  [1, 1],
                  [0, 0],
                ],
              ],
            }),
          ),
          400,
          /WGS84|lon/,
          'a longitude of 200',
        ],
        [send(JSON.stringify([1, 2, 3])), 400, /GeoJSON/, 'an array'],
        // Once answered 200 with a grid of null width and height.
        [
          send(JSON.stringify({ type: 'Polygon', coordinates: [[INSIDE_RING[0], INSIDE_RING[0], INSIDE_RING[0], INSIDE_RING[0]]] })),
          400,
          /no area/,
          'a ring of one point',
        ],
        [
          send(
            JSON.stringify({
              type: 'Polygon',
              coordinates: [
                [
                  [-117.6, 53.2],
                  [-117.5, 53.2],
                  [-117.4, 53.2],
                  [-117.6, 53.2],
                ],
              ],
            }),
          ),
          400,
          /no area/,
          'a ring along one parallel',
        ],
        [
          send(
            JSON.stringify({
              type: 'Polygon',
              coordinates: [
                [
                  [10, 86],
                  [11, 86],
                  [11, 88],
                  [10, 86],
                ],
              ],
            }),
          ),
          400,
          /no area/,
          'a ring beyond Web Mercator',
        ],
      ]);
    });

    it('a GET without a usable bbox answers 400; an unknown layer 404', async () => {
      await assertErrors([
        [get('/statistics/dem-relief'), 400, /bbox/, 'no bbox'],
        [get('/statistics/dem-relief?bbox=1,2,3'), 400, /bbox/, 'three numbers'],
        [get('/statistics/dem-relief?bbox=-117.4,53.1,-117.7,53.3'), 400, /bbox/, 'west east of east'],
        [get('/statistics/dem-relief?bbox=-117.4,53.1,-117.4,53.3'), 400, /bbox/, 'west equal to east'],
        [get('/statistics/dem-relief?bbox=-117.7,86,-117.4,89'), 400, /bbox/, 'beyond 85.05 N'],
        [get('/statistics/dem-relief?bbox=-117.7,53.1,-117.4,0x35'), 400, /decimal/, 'a hexadecimal latitude'],
        [get('/statistics/dem-relief?bbox=-117.7,53.1,-117.4,0b110101'), 400, /decimal/, 'a binary latitude'],
        [get('/preview/dem-relief.png?bbox=-117.4,53.1,-117.4,53.3'), 400, /bbox/, 'preview: west equal to east'],
        [get('/preview/dem-relief.png?bbox=-117.7,53.1,-117.4,0x35'), 400, /decimal/, 'preview: a hexadecimal latitude'],
        [get('/statistics/nope?bbox=' + bbox), 404, /nope/, 'unknown layer'],
        [get('/preview/nope.png?bbox=' + bbox), 404, /nope/, 'preview: unknown layer'],
      ]);
    });

    it('node=nope answers 400 listing the steps; node= picks a step; an RGBA step is refused', async () => {
      await assertErrors([
        [get(`/statistics/dem-relief?bbox=${bbox}&node=nope`), 400, /nope: no step of that name; the steps are 0, 1/, 'node=nope'],
        [get(`/statistics/dem-shaded-relief?bbox=${bbox}&node=nope`), 400, /nope.*dem.*relief.*shade.*out/, 'node=nope on a graph'],
        [get(`/statistics/dem-relief?bbox=${bbox}&node=${encodeURIComponent('1')}`), 400, /RGBA/, 'an RGBA step'],
      ]);
      const shade = await json<StatsAnswer>(get(`/statistics/dem-shaded-relief?bbox=${bbox}&node=shade&max_size=64`), 'node=shade');
      assert.equal(shade.node, 'shade');
      assert.equal(shade.op, 'hillshade');
      assert.ok(shade.bands[0]!.min! >= 0 && shade.bands[0]!.max! <= 1, 'a hillshade lies in [0, 1]');
      // By default, the last step that gives bands: the hillshade, not the read.
      const last = await json<StatsAnswer>(get(`/statistics/dem-shaded-relief?bbox=${bbox}&max_size=64`), 'default node');
      assert.equal(last.node, 'shade');
    });

    it('tried as a hostile client would: an area without data answers the step and the bands it would measure with data, each counting nothing', async () => {
      // Once chosen from the steps that ran: where a read had nothing, zion-ndvi measured its
      // colormap (RGBA) and dem-relief took node=1 (RGBA too), each answering `bands: []`, and
      // node=nope listed only the steps that ran.
      const far = '100,10,100.5,10.5';
      const zion = '-113.08,37.28,-113.04,37.32';
      for (const [layer, inside, node, op] of [
        ['zion-ndvi', zion, 'ndvi', 'normalized_difference'],
        ['dem-relief', bbox, '0', 'read'],
        ['dem-shaded-relief', bbox, 'shade', 'hillshade'],
      ] as const) {
        const withData = await json<StatsAnswer>(get(`/statistics/${layer}?bbox=${inside}&max_size=64`), `${layer} over its data`);
        const without = await json<StatsAnswer>(get(`/statistics/${layer}?bbox=${far}&max_size=64`), `${layer} far from it`);
        for (const a of [withData, without]) assert.deepEqual([a.node, a.op, a.bands.length], [node, op, 1], `${layer}: the step measured`);
        assert.ok(withData.bands[0]!.count > 0, `${layer}: pixels over its data`);
        assert.deepEqual(
          without.bands[0],
          {
            band: 0,
            count: 0,
            valid_fraction: 0,
            min: null,
            max: null,
            mean: null,
            std: null,
            percentiles: { p2: null, p25: null, p50: null, p75: null, p98: null },
            histogram: { counts: [], edges: [] },
          },
          `${layer} far from its data`,
        );
      }
      await assertErrors([
        [get(`/statistics/dem-relief?bbox=${far}&node=1`), 400, /RGBA/, 'an RGBA step, far from the data'],
        [get(`/statistics/dem-relief?bbox=${far}&node=nope`), 400, /nope: no step of that name; the steps are 0, 1$/, 'node=nope, far from the data'],
        [get(`/statistics/zion-ndvi?bbox=${far}&node=rgba`), 400, /RGBA/, 'an RGBA node of a graph, far from the data'],
      ]);
    });

    it('a polygon across the antimeridian: cut in two at 180°, it covers only the Pacific; drawn across uncut, the long way round (edges straight in longitude)', async () => {
      // 170°E to 170°W between 50° and 60°N, as RFC 7946 asks (3.1.9): two parts, no pixel of the Jasper DEM (117°W).
      const ring = (w: number, s: number, e: number, n: number): Ring => [
        [w, s],
        [e, s],
        [e, n],
        [w, n],
        [w, s],
      ];
      const cut = { type: 'MultiPolygon', coordinates: [[ring(170, 50, 180, 60)], [ring(-180, 50, -170, 60)]] };
      const uncut = { type: 'Polygon', coordinates: [ring(170, 50, -170, 60)] };
      const a = await json<StatsAnswer>(post(server.url, '/statistics/dem-relief', JSON.stringify(cut)), 'cut at the antimeridian');
      const b = await json<StatsAnswer>(post(server.url, '/statistics/dem-relief', JSON.stringify(uncut)), 'drawn across it');
      assert.deepEqual(a.bbox, [-180, 50, 180, 60]);
      assert.equal(a.bands[0]!.count, 0, 'the cut polygon holds no pixel of the DEM');
      assert.deepEqual(b.bbox, [-170, 50, 170, 60]);
      assert.ok(b.bands[0]!.count > 0, 'the uncut polygon spans 170°W to 170°E, the DEM included');
    });
  });

  // -------------------------------------------------------------------------------------
  describe('GET /preview: the tiles stitched where the grids coincide', { concurrency: true }, () => {
    /** The four tiles of the 2x2 block whose top-left tile holds the point, stitched; 204 is transparent. */
    async function stitched(layer: string, z: number, x: number, y: number): Promise<Pixels> {
      const out = Buffer.alloc(512 * 512 * 4);
      for (const [dx, dy] of [
        [0, 0],
        [1, 0],
        [0, 1],
        [1, 1],
      ] as const) {
        const r = await get(`/tiles/${layer}/${z}/${x + dx}/${y + dy}.png`);
        if (r.status === 204) continue;
        assert.equal(r.status, 200, r.body.toString('utf8'));
        const t = await decode(r.body);
        assert.equal(t.width, 256);
        for (let j = 0; j < 256; j++) t.data.copy(out, ((dy * 256 + j) * 512 + dx * 256) * 4, j * 256 * 4, (j + 1) * 256 * 4);
      }
      return { data: out, width: 512, height: 512, channels: 4, format: 'raw' };
    }

    function maxChannelDiff(a: Pixels, b: Pixels): { max: number; differing: number } {
      let max = 0;
      let differing = 0;
      for (let k = 0; k < a.data.length; k += 4) {
        if (a.data[k + 3] === 0 && b.data[k + 3] === 0) continue;
        let d = 0;
        for (let c = 0; c < 4; c++) d = Math.max(d, Math.abs(a.data[k + c]! - b.data[k + c]!));
        max = Math.max(max, d);
        if (d) differing++;
      }
      return { max, differing };
    }

    const CASES = [
      { layer: 'dem-relief', z: 11 },
      { layer: 'dem-relief', z: 8 },
      { layer: 'dem-shaded-relief', z: 12 },
    ];
    for (const { layer, z } of CASES)
      it(`${layer}: a 2x2 block at z${z}, 512 wide, is the four tiles`, async () => {
        const [fx, fy] = pointToTileFraction(-117.55, 53.25, z);
        const [x, y] = [Math.floor(fx), Math.floor(fy)];
        const [w, , , n] = tileToBBOX([x, y, z]);
        const [, s, e] = tileToBBOX([x + 1, y + 1, z]);
        const r = await get(`/preview/${layer}.png?bbox=${w},${s},${e},${n}&width=512`);
        assert.equal(r.status, 200, r.body.toString('utf8').slice(0, 300));
        assert.equal(r.headers['content-type'], 'image/png');
        const preview = await decode(r.body);
        assert.equal(preview.width, 512);
        assert.equal(preview.height, 512);
        const tiles = await stitched(layer, z, x, y);
        const opaque = tiles.data.filter((_, k) => k % 4 === 3 && tiles.data[k] === 255).length;
        assert.ok(opaque > 5_000, `the tiles draw something (${opaque} opaque pixels)`);
        const { max, differing } = maxChannelDiff(preview, tiles);
        summary.push(`preview ${layer} z${z} ${x},${y}: ${differing} of ${512 * 512} pixels differ (${pct(differing, 512 * 512)}), at most ${max} levels`);
        assert.ok(max <= 1, `${layer} z${z}: the preview differs from the tiles by up to ${max} levels at ${differing} pixels`);
      });

    it('webp is the same image as png', async () => {
      const bbox = '-117.8,53.2,-117.3,53.3';
      const [png, webp] = await Promise.all([get(`/preview/dem-relief.png?bbox=${bbox}&width=300`), get(`/preview/dem-relief.webp?bbox=${bbox}&width=300`)]);
      assert.equal(png.status, 200, png.body.toString('utf8').slice(0, 300));
      assert.equal(webp.status, 200, webp.body.toString('utf8').slice(0, 300));
      assert.equal(webp.headers['content-type'], 'image/webp');
      const [a, b] = await Promise.all([decode(png.body), decode(webp.body)]);
      assert.equal(b.format, 'webp');
      assert.equal(differingPixels(a, b), 0);
    });

    it("the image is `width` pixels wide (1024 by default) and as tall as the bbox's aspect says", async () => {
      /** Height / width of a bbox in Web Mercator. */
      const aspect = (b: string) => {
        const [w, s, e, n] = b.split(',').map(Number) as Bbox;
        const [x0, y0] = mercator(w, s);
        const [x1, y1] = mercator(e, n);
        return (y1 - y0) / (x1 - x0);
      };
      const cases: [string, number | undefined][] = [
        ['-117.8,53.2,-117.3,53.3', 300], // wider than tall
        [INSIDE.join(','), 300], // taller than wide
        [INSIDE.join(','), undefined],
        [TALL, 40],
        [TALL, 61],
      ];
      const problems: string[] = [];
      for (const [bbox, width] of cases) {
        const r = await get(`/preview/dem-relief.png?bbox=${bbox}${width === undefined ? '' : `&width=${width}`}`);
        assert.equal(r.status, 200, r.body.toString('utf8').slice(0, 300));
        const p = await decode(r.body);
        const w = width ?? 1024;
        const h = w * aspect(bbox);
        if (p.width !== w || Math.abs(p.height - h) > 1) problems.push(`bbox=${bbox} width=${width}: ${p.width}x${p.height}, expected ${w}x${h.toFixed(1)}`);
      }
      assert.deepEqual(problems, []);
    });
  });
});

// Before: every /preview was taken, however many came at once. Each held a render thread, then
// sharp's threads for its encoding (a lossless WebP of 1500 pixels a side costs about a second of
// CPU), and tiles queued behind their renders: 300 at once from one client, and uncached tiles
// answered 503 after RENDER_TIMEOUT_MS for over a minute, while the server grew to 1.4-1.5 GB.
describe('tried as a hostile client would: a flood of /preview and /statistics requests', () => {
  let tmp: TempLayers;
  let server: TestServer;
  const AREAS = 4;
  const FLOOD = 40;

  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
    server = await startServer(tmp.dir, { RENDER_TIMEOUT_MS: '2000', MAX_AREA_REQUESTS: String(AREAS) });
  });
  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  it('takes MAX_AREA_REQUESTS of them, answers the rest 503 at once, and uncached tiles keep being served', async () => {
    const whole = '-117.86,53.05,-117.23,53.43';
    const floods = [
      ...Array.from({ length: FLOOD }, () => request(server.url, `/preview/dem-relief.webp?bbox=${whole}&width=1500`)),
      ...Array.from({ length: FLOOD / 4 }, () => request(server.url, `/statistics/dem-relief?bbox=${whole}&max_size=2048`)),
    ];
    // Tiles no one has asked for yet, while the flood is in.
    await new Promise((r) => setTimeout(r, 200));
    const tiles = await Promise.all(Array.from({ length: 6 }, (_, i) => request(server.url, tilePath('dem-relief', lonLatToTile(-117.8 + 0.1 * i, 53.2, 13)))));
    assert.deepEqual(
      tiles.map((t) => t.status),
      tiles.map(() => 200),
      tiles.map((t) => t.body.toString().slice(0, 200)).join('\n'),
    );
    const answers = await Promise.all(floods);
    const refused = answers.filter((a) => a.status === 503);
    assert.equal(answers.filter((a) => a.status === 200).length + refused.length, answers.length, 'each answered 200 or 503');
    assert.ok(refused.length >= answers.length - AREAS * 3, `${refused.length} of ${answers.length} refused`);
    for (const a of refused) {
      assert.equal(a.headers['retry-after'], '1');
      const body = JSON.parse(a.body.toString()) as { error: string; detail: string };
      assert.equal(body.error, 'busy', body.detail);
      assert.match(body.detail, /MAX_AREA_REQUESTS/);
    }
    assert.equal((await request(server.url, '/healthz')).status, 200);
    // Once the flood has passed, the next one is taken.
    assert.equal((await request(server.url, `/preview/dem-relief.png?bbox=${whole}&width=256`)).status, 200);
  });
});

describe('tried as a hostile client would: a flood of large POST /statistics bodies', () => {
  let tmp: TempLayers;
  let server: TestServer;

  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
    server = await startServer(tmp.dir, { MAX_AREA_REQUESTS: '2' });
  });
  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  // 1000 bodies of 0.9 MB sent at once were each read whole before any was refused: the server grew by a gigabyte.
  it('a body takes its place before it is read: past MAX_AREA_REQUESTS one is refused unread, and the places come back', async () => {
    const body = JSON.stringify({ type: 'Polygon', coordinates: [zigzag(4000, INSIDE)] });
    const busy = async (a: Answer | null, what: string) => {
      assert.ok(a, `${what}: no answer while its body was still unsent`);
      assert.equal(a.status, 503, `${what}: ${a.body.toString().slice(0, 200)}`);
      assert.equal(a.headers['retry-after'], '1');
      assert.match((JSON.parse(a.body.toString()) as { detail: string }).detail, /MAX_AREA_REQUESTS/);
    };
    // Every upload goes away at the end, whatever the outcome: a server closing waits for them.
    const uploads: ReturnType<typeof upload>[] = [];
    const start = () => {
      const u = upload(server.url, '/statistics/dem-relief', body);
      uploads.push(u);
      return u;
    };
    try {
      // Two uploads stop halfway: each holds a place while its body is read.
      const slow = [start(), start()];
      await new Promise((r) => setTimeout(r, 500));
      await busy(await within(start().answer, 5000), 'a third upload');
      await busy(await request(server.url, `/statistics/dem-relief?bbox=${INSIDE.join(',')}`), 'a GET /statistics');
      // The two finish their bodies and are answered; then their places are free again.
      for (const s of slow) s.finish();
      for (const a of await Promise.all(slow.map((s) => s.answer))) {
        assert.equal(a.status, 200, a.body.toString().slice(0, 200));
        assert.ok((JSON.parse(a.body.toString()) as StatsAnswer).bands[0]!.count > 0);
      }
      assert.equal((await post(server.url, '/statistics/dem-relief', body)).status, 200);
      // Uploads whose clients go away halfway give their places back.
      const gone = [start(), start()];
      await new Promise((r) => setTimeout(r, 500));
      await busy(await within(start().answer, 5000), 'an upload while two others stall');
      for (const g of gone) g.abort();
      await until('the places of the uploads that went away', async () => (await post(server.url, '/statistics/dem-relief', body)).status === 200, 5000);
    } finally {
      for (const u of uploads) u.abort();
    }
  });
});

/** 0.05 degrees wide, 1 degree tall: a preview of it is 33 times taller than wide. */
const TALL = '-117.6,52.8,-117.55,53.8';
const INSIDE_RING: Ring = [
  [INSIDE[0], INSIDE[1]],
  [INSIDE[2], INSIDE[1]],
  [INSIDE[2], INSIDE[3]],
  [INSIDE[0], INSIDE[3]],
  [INSIDE[0], INSIDE[1]],
];

/**
 * A closed ring of `teeth` teeth across `bbox` (W, S, E, N): up from a tenth of its height
 * above the south edge to the north edge and down again, then back along the south edge.
 */
function zigzag(teeth: number, [w, s, e, n]: Bbox): Ring {
  const low = s + (n - s) / 10;
  const step = (e - w) / (2 * teeth);
  const ring: Ring = [];
  // Six decimals (a tenth of a metre): short enough for 40000 vertices in a request body.
  const at = (lon: number, lat: number): [number, number] => [Number(lon.toFixed(6)), Number(lat.toFixed(6))];
  for (let i = 0; i < 2 * teeth; i++) ring.push(at(w + i * step, i % 2 === 0 ? low : n));
  ring.push(at(e, low), at(e, s), at(w, s), ring[0]!);
  return ring;
}
