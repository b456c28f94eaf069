/**
 * Mosaic sources pixel by pixel, with GDAL as the independent reference.
 *
 * Every fixture is made here, at test time, by the GDAL command line tools from the shipped
 * data (layers/data/), into a temporary layers directory that one server serves:
 *
 *   1. The Jasper DEM (400x400, EPSG:3402, one 2x overview) cut into 4x4 pieces of 100 px and
 *      into 3x3 pieces of 133/133/134 px (`gdal_translate -srcwin`, COGs with one overview).
 *      The 4x4 pieces' overviews line up (factor 2, origins 50 px apart), so the whole mosaic is
 *      one window at every level; the 3x3 pieces' do not (133 -> 66 px is no whole factor), so
 *      below full resolution every piece is resampled on its own. Served as mosaics, their
 *      tiles must be the whole file's tiles wherever GDAL would read full resolution:
 *      nearest identical, bilinear and a hillshade graph within one level per channel, on
 *      tiles chosen across the cut lines (checked with gdaltransform). Where overviews are
 *      read (the overviews of the pieces are not the overview of the whole), the coverage
 *      (alpha) must be the same.
 *   2. The DEM as two overlapping halves, the east one reprojected to EPSG:4326 with gdalwarp:
 *      the tile must be gdalwarp of both files onto the tile grid (later inputs overwrite
 *      earlier ones, so the inputs are listed in reverse for `first`).
 *      Also the halves with a third member on the west half's grid listed after the EPSG:4326
 *      one (grids interleaved in the list), every method against GDAL's warp of each member
 *      alone and the method per pixel.
 *   3. Three Landsat members on one UTM grid (red with an internal mask over a rectangle, NIR
 *      with a nodata triangle burnt in, an inverted-scale subset of NIR): for each method
 *      the test computes the answer per pixel on the source grid from GDAL's decoding of the
 *      members (values and mask bands), GDAL writes it as a GeoTIFF with the members'
 *      georeferencing and `gdalwarp -r near -et 0` puts it on the tile grid; the tile's raw
 *      values (the render thread's graph) and its grey PNG (through HTTP) must match it, and
 *      must fail against every other method's reference that differs from it.
 *   4. A member whose nodata value differs from the first member's.
 *
 * And the Compositor (src/sources/composite.ts) itself against a plain per-pixel reference on
 * random rasters, validity and offsets.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadLayer, type Layer } from '../src/layers/layer.js';
import { tileMembers } from '../src/layers/mosaic.js';
import type { BandRaster } from '../src/ops/raster.js';
import { LayerGraph } from '../src/render/renderer.js';
import { Compositor, MOSAIC_METHODS, type Layered, type MosaicMethod } from '../src/sources/composite.js';
import { GDAL_ENV, gdalMissing, gdalOverviewChoice, limiter, readEnvi, xyzBounds, xyzTileAt, type GdalResampling } from './helpers/gdal.js';
import { decode, getJson, makeLayersDir, request, shippedLayerText, startServer, type Pixels, type TempLayers, type TestServer } from './helpers/http.js';

const SKIP = gdalMissing(['gdal_translate', 'gdalwarp', 'gdalinfo', 'gdaltransform', 'gdal_rasterize', 'gdalbuildvrt']);
const SIZE = 256;
const N = SIZE * SIZE;
const DEM_FILE = 'srtm_jasper_ab_100m.tif';
const RED_FILE = 'landsat8_zion_20150818_b4_red.tif';
const NIR_FILE = 'landsat8_zion_20150818_b5_nir.tif';
/** The DEM's grey stretch (its values run 951.8 to 2580.7 m). */
const DEM_RANGE: [number, number] = [950, 2600];
/** Nearest against an exact transform: the share of pixels that must hold the very same value (as test/reprojection.test.ts). */
const MIN_IDENTICAL = 0.999;

type Tile = { z: number; x: number; y: number };
const tileName = (t: Tile) => `${t.z}/${t.x}/${t.y}`;
const HALF_WORLD = Math.PI * 6378137;
/** The XYZ tile holding a Web Mercator point. */
function tileAtMercator([mx, my]: readonly [number, number], z: number): Tile {
  const span = (2 * HALF_WORLD) / 2 ** z;
  return { z, x: Math.floor((mx + HALF_WORLD) / span), y: Math.floor((HALF_WORLD - my) / span) };
}
const pct = (a: number, b: number) => (b === 0 ? '-' : `${((100 * a) / b).toFixed(3)}%`);

// ---------------------------------------------------------------------------------------
// GDAL, two processes at a time (the test machines have two cores)

const slots = limiter(2);

function gdal(cmd: string, args: string[], input?: string): Promise<string> {
  return slots(
    () =>
      new Promise<string>((resolve, reject) => {
        const child = execFile(cmd, args, { env: GDAL_ENV, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
          if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
          else resolve(stdout);
        });
        child.stdin?.end(input ?? '');
      }),
  );
}

interface Info {
  size: [number, number];
  geoTransform: number[];
  wkt: string;
  /** Overview sizes of band 1. */
  overviews: [number, number][];
}
async function gdalInfo(file: string): Promise<Info> {
  const j = JSON.parse(await gdal('gdalinfo', ['-json', file])) as {
    size: [number, number];
    geoTransform: number[];
    coordinateSystem: { wkt: string };
    bands: { overviews?: { size: [number, number] }[] }[];
  };
  return { size: j.size, geoTransform: j.geoTransform, wkt: j.coordinateSystem.wkt, overviews: (j.bands[0]!.overviews ?? []).map((o) => o.size) };
}

/** Pixel/line positions of `src` to Web Mercator, by GDAL. */
async function pixelsToMercator(src: string, pts: readonly (readonly [number, number])[]): Promise<[number, number][]> {
  const out = await gdal('gdaltransform', ['-t_srs', 'EPSG:3857', '-output_xy', src], pts.map((p) => `${p[0]} ${p[1]}`).join('\n') + '\n');
  return out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
}

/** The boxes of `src` pixel/line positions that tiles' outlines cover (16 points an edge, by GDAL, in one run). */
async function tilePixelBoxes(src: string, tiles: readonly Tile[]): Promise<[number, number, number, number][]> {
  const per = 4 * 17;
  const pts: string[] = [];
  for (const t of tiles) {
    const [x0, y0, x1, y1] = xyzBounds(t.z, t.x, t.y);
    for (let i = 0; i <= 16; i++) {
      const f = i / 16;
      pts.push(`${x0 + f * (x1 - x0)} ${y0}`, `${x0 + f * (x1 - x0)} ${y1}`, `${x0} ${y0 + f * (y1 - y0)}`, `${x1} ${y0 + f * (y1 - y0)}`);
    }
  }
  const lines = (await gdal('gdaltransform', ['-i', '-t_srs', 'EPSG:3857', '-output_xy', src], pts.join('\n') + '\n')).trim().split('\n');
  assert.equal(lines.length, per * tiles.length);
  return tiles.map((_, i) => {
    const box: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const line of lines.slice(i * per, (i + 1) * per)) {
      const [c, r] = line.trim().split(/\s+/).map(Number) as [number, number];
      box[0] = Math.min(box[0], c);
      box[1] = Math.min(box[1], r);
      box[2] = Math.max(box[2], c);
      box[3] = Math.max(box[3], r);
    }
    return box;
  });
}

/** The tiles at zoom `z` holding pixel/line points of `src`, and the box of `src` pixels each covers. */
async function placeTiles(
  src: string,
  specs: readonly { at: readonly [number, number]; z: number }[],
): Promise<{ tile: Tile; box: [number, number, number, number] }[]> {
  const merc = await pixelsToMercator(
    src,
    specs.map((s) => s.at),
  );
  const tiles = specs.map((s, i) => tileAtMercator(merc[i]!, s.z));
  const boxes = await tilePixelBoxes(src, tiles);
  return tiles.map((tile, i) => ({ tile, box: boxes[i]! }));
}

/** A reference tile: one band of GDAL's values and GDAL's alpha (0 where it draws nothing). */
interface RefTile {
  values: Float32Array;
  alpha: Float32Array;
  command: string;
}

/**
 * `gdalwarp` of one or several inputs onto a tile, as test/helpers/gdal.ts's warpTile does it
 * (exact transform, Float32, destination alpha), at full resolution: each input is drawn in turn
 * where it is valid, over what the earlier ones drew. One RefTile per band of the inputs.
 */
async function warpMany(srcs: readonly string[], t: Tile, method: GdalResampling, base: string, bands = 1): Promise<RefTile[]> {
  const args = ['-q', '-ovr', 'NONE', '-t_srs', 'EPSG:3857', '-te', ...xyzBounds(t.z, t.x, t.y).map((v) => v.toFixed(6))];
  args.push('-ts', String(SIZE), String(SIZE), '-r', method, '-et', '0', '-dstalpha', '-ot', 'Float32', '-of', 'ENVI', ...srcs, `${base}.raw`);
  await gdal('gdalwarp', args);
  const out = readEnvi(base, SIZE, SIZE, bands + 1);
  const command = `gdalwarp ${args.slice(0, -1).join(' ')} OUT`;
  return out.slice(0, bands).map((values) => ({ values, alpha: out[bands]!, command }));
}

/** Float32 bands (NaN where invalid) as a GeoTIFF written by GDAL, with the given georeferencing. */
async function writeGeoTiff(base: string, bands: readonly Float32Array[], width: number, height: number, wkt: string, ullr: number[]): Promise<string> {
  const raw = new Float32Array(width * height * bands.length);
  bands.forEach((b, i) => raw.set(b, i * width * height));
  writeFileSync(`${base}.raw`, new Uint8Array(raw.buffer));
  writeFileSync(
    `${base}.hdr`,
    `ENVI\nsamples = ${width}\nlines = ${height}\nbands = ${bands.length}\nheader offset = 0\nfile type = ENVI Standard\ndata type = 4\ninterleave = bsq\nbyte order = 0\n`,
  );
  await gdal('gdal_translate', ['-q', '-a_srs', wkt, '-a_ullr', ...ullr.map(String), '-a_nodata', 'nan', '-of', 'GTiff', `${base}.raw`, `${base}.tif`]);
  return `${base}.tif`;
}

// ---------------------------------------------------------------------------------------
// Comparisons

interface Agreement {
  refValid: number;
  ourValid: number;
  maskAgree: number;
  both: number;
  /** Valid in both and within the tolerance. */
  good: number;
  maxDiff: number;
}

/** Our raw band (a read's output on the tile grid) against GDAL's values where both are valid. */
function compareValues(ref: RefTile, ours: BandRaster | null, tol: number): Agreement {
  const a: Agreement = { refValid: 0, ourValid: 0, maskAgree: 0, both: 0, good: 0, maxDiff: 0 };
  for (let k = 0; k < N; k++) {
    const g = ref.alpha[k]! > 0;
    const o = ours !== null && ours.mask[k] === 1;
    if (g) a.refValid++;
    if (o) a.ourValid++;
    if (g === o) a.maskAgree++;
    if (!g || !o) continue;
    a.both++;
    const v = ours!.bands[0]![k]!;
    // NaN on either side is a mismatch, never a silent pass.
    const d = v === ref.values[k] ? 0 : Math.abs(v - ref.values[k]!) || Infinity;
    a.maxDiff = Math.max(a.maxDiff, d);
    if (d <= tol) a.good++;
  }
  return a;
}

/** A served grey tile against GDAL's values put through `rescale: { from: [lo, hi] }` and drawn as grey (round(255 v)). */
function compareGrey(ref: RefTile, px: Pixels | null, [lo, hi]: readonly [number, number], levels: number): Agreement {
  const a: Agreement = { refValid: 0, ourValid: 0, maskAgree: 0, both: 0, good: 0, maxDiff: 0 };
  for (let k = 0; k < N; k++) {
    const g = ref.alpha[k]! > 0;
    const alpha = px ? px.data[k * 4 + 3]! : 0;
    const o = alpha === 255;
    if (g) a.refValid++;
    if (o) a.ourValid++;
    if (g === o && (alpha === 0 || alpha === 255)) a.maskAgree++;
    if (!g || !o) continue;
    a.both++;
    const want = Math.round(Math.min(1, Math.max(0, (ref.values[k]! - lo) / (hi - lo))) * 255);
    const r = px!.data[k * 4]!;
    const d = Math.max(Math.abs(r - want), Math.abs(px!.data[k * 4 + 1]! - r), Math.abs(px!.data[k * 4 + 2]! - r));
    a.maxDiff = Math.max(a.maxDiff, d);
    if (d <= levels) a.good++;
  }
  return a;
}

const describeAgreement = (a: Agreement, unit = '') =>
  `GDAL valid ${a.refValid}, ours ${a.ourValid}, masks agree ${pct(a.maskAgree, N)}; both valid ${a.both}, within tolerance ${pct(a.good, a.both)}, max diff ${a.maxDiff === Infinity ? 'inf' : +a.maxDiff.toFixed(3)}${unit}`;

interface RgbaDiff {
  /** Pixels whose alpha differs. */
  alpha: number;
  /** Pixels that differ in any channel (two fully transparent pixels are equal). */
  differing: number;
  /** Largest channel difference over pixels drawn in both. */
  maxChannel: number;
  opaqueA: number;
  opaqueB: number;
}

/** Two served tiles (null: 204, nothing drawn). */
function diffRgba(a: Pixels | null, b: Pixels | null): RgbaDiff {
  const d: RgbaDiff = { alpha: 0, differing: 0, maxChannel: 0, opaqueA: 0, opaqueB: 0 };
  for (let k = 0; k < N; k++) {
    const o = k * 4;
    const aa = a ? a.data[o + 3]! : 0,
      ba = b ? b.data[o + 3]! : 0;
    if (aa) d.opaqueA++;
    if (ba) d.opaqueB++;
    if (aa !== ba) d.alpha++;
    if (aa === 0 && ba === 0) continue;
    let m = Math.abs(aa - ba);
    if (aa && ba) for (let c = 0; c < 3; c++) m = Math.max(m, Math.abs(a!.data[o + c]! - b!.data[o + c]!));
    if (m) d.differing++;
    if (aa && ba) d.maxChannel = Math.max(d.maxChannel, m);
  }
  return d;
}

// ---------------------------------------------------------------------------------------
// Case 3's per-pixel reference: the methods written out as plainly as possible

/** The value each method gives for the valid members' values at a pixel, in listed order (numpy's median). */
function methodValue(method: MosaicMethod | 'sum', vals: readonly number[]): number {
  const n = vals.length;
  switch (method) {
    case 'first':
      return vals[0]!;
    case 'last':
      return vals[n - 1]!;
    case 'highest':
      return Math.max(...vals);
    case 'lowest':
      return Math.min(...vals);
    case 'mean': {
      let s = 0;
      for (const v of vals) s += v;
      return s / n;
    }
    case 'median': {
      const s = [...vals].sort((p, q) => p - q);
      return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
    }
    case 'count':
      return n;
    case 'sum': {
      let s = 0;
      for (const v of vals) s += v;
      return s;
    }
  }
}

// ---------------------------------------------------------------------------------------

describe('mosaic sources against GDAL', { skip: SKIP }, () => {
  let tmp: TempLayers;
  let server: TestServer;
  let work = '';
  let dem = '';
  /** Printed at the end: the measured agreement of every case, not just pass or fail. */
  const summary: string[] = [];
  const graphs = new Map<string, Promise<{ layer: Layer; graph: LayerGraph }>>();

  /** A served tile, decoded; null for 204 (nothing drawn). */
  async function served(layer: string, t: Tile): Promise<Pixels | null> {
    const r = await request(server.url, `/tiles/${layer}/${tileName(t)}.png`);
    if (r.status === 204) return null;
    assert.equal(r.status, 200, `${layer} ${tileName(t)}: ${r.body.toString('utf8')}`);
    return decode(r.body);
  }

  /** The layer's graph output for a tile, as a render thread computes it (the members under the tile found as the service finds them). */
  async function values(name: string, t: Tile): Promise<BandRaster | null> {
    let g = graphs.get(name);
    if (!g) {
      g = (async () => {
        const layer = await loadLayer(path.join(tmp.dir, `${name}.yaml`), { layersDir: tmp.dir, allowedHosts: [] });
        return { layer, graph: await LayerGraph.open(layer.spec) };
      })();
      graphs.set(name, g);
    }
    const { layer, graph } = await g;
    const { members } = tileMembers(layer, t, 1000);
    const { raster, ctx } = await graph.raster({ ...t, size: SIZE, members });
    assert.equal(ctx.buffer, 0);
    if (raster) assert.equal(raster.kind, 'bands');
    return raster as BandRaster | null;
  }

  const readLayer = (source: string, resampling: string, rescale?: readonly [number, number]) =>
    [
      'sources:',
      `  src: ${source}`,
      'minzoom: 0',
      'maxzoom: 18',
      'pipeline:',
      `  - read: { source: src, bands: [1], resampling: ${resampling} }`,
      ...(rescale ? [`  - rescale: { from: [${rescale[0]}, ${rescale[1]}] }`] : []),
      '',
    ].join('\n');

  // Case 1: the cuts.
  const CUTS = {
    cut4: { sizes: [100, 100, 100, 100], lines: [100, 200, 300] },
    cut3: { sizes: [133, 133, 134], lines: [133, 266] },
  } as const;
  type CutName = keyof typeof CUTS;
  // Case 2: two halves overlapping over columns 180-219, the east one in EPSG:4326.
  const WEST_COLS = 220,
    EAST_FROM = 180;
  // Case 2b: the halves and a third member (-srcwin) on the west half's grid, listed last: the two grids interleave in the list.
  const MID = [150, 100, 150, 200] as const;
  const MIX_MEMBERS = ['west.tif', 'east_4326.tif', 'mid.tif'];
  // Case 3: pixel geometry on the Landsat grid (30 m, origin 301905, 4154085), around the z12 tile at the scene centre.
  const ZION_ORIGIN = [301905, 4154085] as const;
  const utm = ([c, r]: readonly [number, number]) => [ZION_ORIGIN[0] + 30 * c, ZION_ORIGIN[1] - 30 * r];
  const HOLE = [
    [400, 560],
    [560, 600],
    [430, 760],
  ] as const; // NIR: a nodata triangle
  const MASKED = [480, 660, 640, 820] as const; // red: an internal mask over cols 480-639, rows 660-819
  const SUBSET = [520, 620, 200, 400] as const; // -srcwin of NIR, values inverted
  const ZION_MEMBERS = ['red-mask.tif', 'nir-hole.tif', 'sub.tif'];
  const ZION_RANGE: [number, number] = [5000, 32000];

  before(async () => {
    tmp = await makeLayersDir();
    work = path.join(tmp.root, 'work');
    mkdirSync(work, { recursive: true });
    dem = await tmp.copyData(DEM_FILE, 'dem.tif');
    const red = await tmp.copyData(RED_FILE, 'red.tif');
    const nir = await tmp.copyData(NIR_FILE, 'nir.tif');
    const data = path.join(tmp.dir, 'data');
    const cog = ['-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-co', 'BLOCKSIZE=128', '-co', 'OVERVIEW_COUNT=1', '-co', 'RESAMPLING=AVERAGE'];
    const jobs: Promise<unknown>[] = [];

    for (const [name, { sizes }] of Object.entries(CUTS)) {
      mkdirSync(path.join(data, name));
      const offs = sizes.map((_, i) => sizes.slice(0, i).reduce((s, v) => s + v, 0));
      for (let r = 0; r < sizes.length; r++)
        for (let c = 0; c < sizes.length; c++)
          jobs.push(
            gdal('gdal_translate', [
              '-q',
              '-srcwin',
              ...[offs[c]!, offs[r]!, sizes[c]!, sizes[r]!].map(String),
              ...cog,
              dem,
              path.join(data, name, `r${r}c${c}.tif`),
            ]),
          );
    }

    mkdirSync(path.join(data, 'two'));
    jobs.push(gdal('gdal_translate', ['-q', '-srcwin', '0', '0', String(WEST_COLS), '400', '-of', 'COG', dem, path.join(data, 'two/west.tif')]));
    // A third member on the west half's grid, listed after the EPSG:4326 one, with its heights turned upside down.
    jobs.push(
      gdal('gdal_translate', ['-q', '-srcwin', ...MID.map(String), '-scale', '950', '2600', '2600', '950', '-of', 'COG', dem, path.join(data, 'two/mid.tif')]),
    );
    jobs.push(
      (async () => {
        const east = path.join(work, 'east_3402.tif');
        await gdal('gdal_translate', ['-q', '-srcwin', String(EAST_FROM), '0', String(400 - EAST_FROM), '400', dem, east]);
        await gdal('gdalwarp', ['-q', '-t_srs', 'EPSG:4326', '-r', 'bilinear', '-of', 'COG', east, path.join(data, 'two/east_4326.tif')]);
      })(),
    );

    mkdirSync(path.join(data, 'zion'));
    const polygon = (ring: readonly (readonly [number, number])[]) =>
      JSON.stringify({
        type: 'FeatureCollection',
        crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::32612' } },
        features: [{ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[...ring, ring[0]!].map(utm)] } }],
      });
    writeFileSync(path.join(work, 'hole.geojson'), polygon(HOLE));
    const [c0, r0, c1, r1] = MASKED;
    writeFileSync(
      path.join(work, 'masked.geojson'),
      polygon([
        [c0, r0],
        [c1, r0],
        [c1, r1],
        [c0, r1],
      ]),
    );
    jobs.push(
      (async () => {
        // NIR with nodata (65535) burnt into a triangle.
        const t = path.join(work, 'nir-hole.tif');
        await gdal('gdal_translate', ['-q', '-of', 'GTiff', nir, t]);
        await gdal('gdal_rasterize', ['-q', '-burn', '65535', path.join(work, 'hole.geojson'), t]);
        await gdal('gdal_translate', ['-q', '-of', 'COG', '-co', 'COMPRESS=DEFLATE', t, path.join(data, 'zion/nir-hole.tif')]);
      })(),
      (async () => {
        // Red with an internal (per-dataset) mask that is 0 over a rectangle.
        const m = path.join(work, 'mask.tif');
        await gdal('gdal_translate', ['-q', '-ot', 'Byte', '-scale', '0', '65535', '255', '255', '-a_nodata', 'none', red, m]);
        await gdal('gdal_rasterize', ['-q', '-burn', '0', path.join(work, 'masked.geojson'), m]);
        await gdal('gdalbuildvrt', ['-q', '-separate', path.join(work, 'red-mask.vrt'), red, m]);
        await gdal('gdal_translate', [
          '-q',
          '-b',
          '1',
          '-mask',
          '2',
          '-of',
          'COG',
          '-co',
          'COMPRESS=DEFLATE',
          path.join(work, 'red-mask.vrt'),
          path.join(data, 'zion/red-mask.tif'),
        ]);
      })(),
      (async () => {
        // A subset of red whose nodata value is 0 (not the others' 65535), with 0 burnt into a rectangle.
        const t = path.join(work, 'zero-nodata.tif');
        await gdal('gdal_translate', ['-q', '-srcwin', ...SUBSET.map(String), '-a_nodata', '0', '-of', 'GTiff', red, t]);
        await gdal('gdal_rasterize', ['-q', '-burn', '0', path.join(work, 'masked.geojson'), t]);
        await gdal('gdal_translate', ['-q', '-of', 'COG', t, path.join(data, 'zion/zero-nodata.tif')]);
      })(),
      // A subset of NIR with its values turned upside down (5000 <-> 32000), so that it differs from both others.
      gdal('gdal_translate', [
        '-q',
        '-srcwin',
        ...SUBSET.map(String),
        '-scale',
        '5000',
        '32000',
        '32000',
        '5000',
        '-ot',
        'UInt16',
        '-of',
        'COG',
        nir,
        path.join(data, 'zion/sub.tif'),
      ]),
    );
    await Promise.all(jobs);

    // Layer files.
    const layers: Record<string, string> = {};
    const sources: Record<string, string> = {
      whole: './data/dem.tif',
      cut4: '{ mosaic: ./data/cut4/*.tif, method: first }',
      cut3: '{ mosaic: ./data/cut3, method: first }',
    };
    const shaded = await shippedLayerText('dem-shaded-relief');
    for (const [name, src] of Object.entries(sources)) {
      layers[`${name}-near`] = readLayer(src, 'nearest', DEM_RANGE);
      layers[`${name}-bil`] = readLayer(src, 'bilinear', DEM_RANGE);
      const hs = shaded
        .replace(`dem: ./data/${DEM_FILE}`, `dem: ${src}`)
        .replace(/^minzoom: \d+$/m, 'minzoom: 0')
        .replace(/^maxzoom: \d+$/m, 'maxzoom: 18');
      assert.ok(hs.includes(`dem: ${src}`) && hs.includes('minzoom: 0') && hs.includes('maxzoom: 18'), 'the shipped shaded relief layer changed shape');
      layers[`${name}-hs`] = hs;
    }
    for (const method of ['first', 'last'] as const) {
      const src = `{ mosaic: [./data/two/west.tif, ./data/two/east_4326.tif], method: ${method} }`;
      for (const r of ['nearest', 'bilinear']) {
        layers[`two-${method}-${r}`] = readLayer(src, r);
        layers[`two-${method}-${r}-grey`] = readLayer(src, r, DEM_RANGE);
      }
    }
    for (const method of MOSAIC_METHODS)
      layers[`mix-${method}`] = readLayer(`{ mosaic: [${MIX_MEMBERS.map((m) => `./data/two/${m}`).join(', ')}], method: ${method} }`, 'nearest');
    for (const method of MOSAIC_METHODS) {
      const src = `{ mosaic: [${ZION_MEMBERS.map((m) => `./data/zion/${m}`).join(', ')}], method: ${method} }`;
      layers[`zion-${method}`] = readLayer(src, 'nearest');
      layers[`zion-${method}-grey`] = readLayer(src, 'nearest', method === 'count' ? [0, 3] : ZION_RANGE);
    }
    layers['nodata-last'] = readLayer('{ mosaic: [./data/zion/nir-hole.tif, ./data/zion/zero-nodata.tif], method: last }', 'nearest');
    for (const [name, text] of Object.entries(layers)) await tmp.write(`${name}.yaml`, text);

    server = await startServer(tmp.dir, { WORKERS: '2' });
    const { json } = await getJson<{ layers: { name: string }[]; refused: unknown[] }>(server.url, '/layers');
    assert.deepEqual(json.refused, [], 'every layer file loads');
    assert.deepEqual(json.layers.map((l) => l.name).sort(), Object.keys(layers).sort());
  });

  after(async () => {
    for (const g of graphs.values()) await (await g.catch(() => null))?.graph.close();
    await server?.close();
    await tmp?.remove();
    if (summary.length) console.log(['mosaic vs GDAL:', ...summary].join('\n  '));
  });

  // -------------------------------------------------------------------------------------
  describe('a DEM cut into pieces serves the tiles of the whole file', { concurrency: true }, () => {
    /** Full-resolution tiles, each holding a point where cut lines cross (pixel/line of the DEM) or meet its edge. */
    const FULL: Record<CutName, { at: [number, number]; z: number }[]> = {
      cut4: [
        { at: [200, 200], z: 10 },
        { at: [200, 100], z: 13 },
        { at: [100, 300], z: 11 },
        { at: [300, 100], z: 12 },
        { at: [200, 0], z: 11 },
        { at: [300, 300], z: 14 },
      ],
      cut3: [
        { at: [133, 133], z: 10 },
        { at: [266, 266], z: 11 },
        { at: [133, 266], z: 12 },
        { at: [266, 400], z: 11 },
        { at: [133, 133], z: 14 },
      ],
    };

    it('the pieces are what the cases need: the 4x4 overviews line up, the 3x3 ones do not', async () => {
      const whole = await gdalInfo(dem);
      const f4 = await Promise.all(['r0c0', 'r3c3'].map((p) => gdalInfo(path.join(tmp.dir, 'data/cut4', `${p}.tif`))));
      const f3 = await Promise.all(['r0c0', 'r0c2', 'r2c2'].map((p) => gdalInfo(path.join(tmp.dir, 'data/cut3', `${p}.tif`))));
      assert.deepEqual(whole.size, [400, 400]);
      assert.deepEqual(whole.overviews, [[200, 200]]);
      for (const f of f4) assert.deepEqual(f.overviews, [[50, 50]], 'a 4x4 piece has a 2x overview');
      const factors = f3.map((f) => [f.size[0] / f.overviews[0]![0], f.size[1] / f.overviews[0]![1]]);
      summary.push(`cut3 overview factors (r0c0, r0c2, r2c2): ${JSON.stringify(factors.map((p) => p.map((v) => +v.toFixed(4))))}`);
      assert.ok(!Number.isInteger(factors[0]![0]), `r0c0's overview factor ${factors[0]![0]} is not whole`);
      assert.notEqual(factors[0]![0], factors[1]![0], "r0c0's and r0c2's overviews differ: no common overview grid");
      // The pieces sit on the whole file's grid.
      for (const f of [...f4, ...f3]) {
        assert.equal(f.geoTransform[1], whole.geoTransform[1]);
        assert.equal(f.geoTransform[5], whole.geoTransform[5]);
        const ix = (f.geoTransform[0]! - whole.geoTransform[0]!) / whole.geoTransform[1]!;
        assert.ok(Math.abs(ix - Math.round(ix)) < 1e-6);
      }
    });

    let placed: Promise<Record<CutName, { tile: Tile; box: [number, number, number, number] }[]>>;
    before(() => {
      placed = (async () => {
        const all = await placeTiles(dem, [...FULL.cut4, ...FULL.cut3]);
        return { cut4: all.slice(0, FULL.cut4.length), cut3: all.slice(FULL.cut4.length) };
      })();
      placed.catch(() => {}); // reported by the tests that await it
    });

    for (const cut of Object.keys(CUTS) as CutName[]) {
      for (const [n, { at, z }] of FULL[cut].entries()) {
        it(`${cut}, full resolution: the z${z} tile over pixel ${at[0]},${at[1]} (cut lines crossing)`, async (t) => {
          const { tile, box } = (await placed)[cut][n]!;
          // The tile straddles the cut column and row (or the DEM's edge) by at least a pixel on each side.
          for (const [v, lo, hi, what] of [
            [at[0], box[0], box[2], 'column'],
            [at[1], box[1], box[3], 'row'],
          ] as const) {
            assert.ok(lo < v - 1 && hi > v + 1, `${tileName(tile)} spans ${what}s ${lo.toFixed(1)}..${hi.toFixed(1)}, not across ${v}`);
            if (v > 0 && v < 400) assert.ok((CUTS[cut].lines as readonly number[]).includes(v), `${v} is a cut ${what}`);
          }
          const crossed = CUTS[cut].lines.filter((l) => (box[0] < l && box[2] > l) || (box[1] < l && box[3] > l)).length;
          const choice = await gdalOverviewChoice(dem, xyzBounds(tile.z, tile.x, tile.y), SIZE, [400, 200], path.join(work, 'ovr'));
          assert.equal(choice.level, 0, `GDAL reads full resolution for ${tileName(tile)} (ratio ${choice.ratioX.toFixed(2)})`);

          const report: string[] = [];
          const kinds = ['near', 'bil', 'hs'] as const;
          const pairs = await Promise.all(kinds.map((kind) => Promise.all([served(`whole-${kind}`, tile), served(`${cut}-${kind}`, tile)])));
          for (const [i, kind] of kinds.entries()) {
            const d = diffRgba(...pairs[i]!);
            report.push(`${kind}: drawn ${d.opaqueA}/${d.opaqueB}, alpha differs ${d.alpha}, pixels differ ${d.differing}, max ${d.maxChannel} level(s)`);
            const msg = `${cut} ${kind} ${tileName(tile)}: ${report.at(-1)}`;
            assert.ok(d.opaqueA > 0.05 * N, `the whole file draws the tile: ${msg}`);
            assert.equal(d.alpha, 0, `coverage: ${msg}`);
            if (kind === 'near') assert.equal(d.differing, 0, `nearest is identical: ${msg}`);
            else assert.ok(d.maxChannel <= 1, `within one level: ${msg}`);
          }
          const line = `${cut} z${z} ${tileName(tile)} (pixels ${box.map((v) => v.toFixed(0)).join(',')}, ${crossed} cut line(s) across, GDAL level 0): ${report.join('; ')}`;
          summary.push(line);
          t.diagnostic(line);
        });
      }

      it(`${cut}, overviews (z6-z8, every tile over the DEM): the same coverage as the whole file`, async (t) => {
        const corners = await pixelsToMercator(dem, [
          [0, 0],
          [400, 0],
          [0, 400],
          [400, 400],
        ]);
        const tiles: Tile[] = [];
        for (const z of [6, 7, 8]) {
          const ts = corners.map((c) => tileAtMercator(c, z));
          for (let x = Math.min(...ts.map((q) => q.x)); x <= Math.max(...ts.map((q) => q.x)); x++)
            for (let y = Math.min(...ts.map((q) => q.y)); y <= Math.max(...ts.map((q) => q.y)); y++) tiles.push({ z, x, y });
        }
        const report: string[] = [];
        let drawn = 0;
        const choices = await Promise.all(
          tiles.map((tile) => slots(() => gdalOverviewChoice(dem, xyzBounds(tile.z, tile.x, tile.y), SIZE, [400, 200], path.join(work, 'ovr')))),
        );
        for (const [n, tile] of tiles.entries()) {
          assert.ok(choices[n]!.level > 0, `GDAL reads the overview for ${tileName(tile)}`);
          const kinds = ['near', 'bil', 'hs'] as const;
          const pairs = await Promise.all(kinds.map((kind) => Promise.all([served(`whole-${kind}`, tile), served(`${cut}-${kind}`, tile)])));
          for (const [i, kind] of kinds.entries()) {
            const d = diffRgba(...pairs[i]!);
            drawn += d.opaqueA;
            report.push(`${tileName(tile)} ${kind}: drawn ${d.opaqueA}/${d.opaqueB}, alpha differs ${d.alpha}, max colour diff ${d.maxChannel}`);
            assert.equal(
              d.alpha,
              0,
              `${cut} ${kind} ${tileName(tile)}: coverage differs on ${d.alpha} pixels (whole draws ${d.opaqueA}, the mosaic ${d.opaqueB})`,
            );
          }
        }
        assert.ok(drawn > 0, 'the tiles draw something');
        summary.push(`${cut} overviews: ${report.join('; ')}`);
        t.diagnostic(report.join('\n'));
      });
    }
  });

  // -------------------------------------------------------------------------------------
  describe('members in two CRSs: gdalwarp of both files onto the tile', { concurrency: true }, () => {
    /**
     * Tiles over the overlap (columns 180-219 of the DEM: both members valid), named by a DEM
     * pixel they hold. z11 and above are oversampled; at z10 the EPSG:4326 member is read a
     * little below its resolution across (1.26 of its pixels per output pixel: a widened kernel).
     */
    const TILES: { at: [number, number]; z: number }[] = [
      { at: [200, 200], z: 10 },
      { at: [200, 400], z: 11 },
      { at: [180, 50], z: 13 },
      { at: [220, 350], z: 13 },
    ];
    /**
     * Nearest: the very source pixel (99.9% identical, as test/reprojection.test.ts).
     * Bilinear: the same four pixels with the same weights inside a member; what may differ is
     * Float32 rounding, GDAL's renormalised weights next to a member's NaN edge, and the
     * widened kernel at z10 (GDAL widens by a scale per warp chunk, see test/render.test.ts).
     * Neighbouring DEM pixels differ by 6.5 m at the median (30 m at the 90th percentile), so a
     * kernel a tenth of a pixel off, or one wrong neighbour, shows as metres: 0.5 m (0.08 of a
     * grey level over 950-2600 m) on 99% of the pixels valid in both, masks agreeing on 99%.
     */
    const BILINEAR_TOL_M = 0.5;
    const MIN_BILINEAR = 0.99;

    let placed: ReturnType<typeof placeTiles>;
    before(() => {
      placed = placeTiles(dem, TILES);
      placed.catch(() => {}); // reported by the tests that await it
    });

    for (const [n, { at, z }] of TILES.entries()) {
      it(`the z${z} tile over pixel ${at[0]},${at[1]}: first and last, nearest and bilinear`, async (t) => {
        const { tile, box } = (await placed)[n]!;
        assert.ok(box[0] < WEST_COLS && box[2] > EAST_FROM, `${tileName(tile)} (columns ${box[0].toFixed(1)}..${box[2].toFixed(1)}) meets the overlap`);
        const west = path.join(tmp.dir, 'data/two/west.tif'),
          east = path.join(tmp.dir, 'data/two/east_4326.tif');
        const report: string[] = [];
        const cases = (['first', 'last'] as const).flatMap((method) =>
          (
            [
              ['nearest', 'near'],
              ['bilinear', 'bilinear'],
            ] as const
          ).map(([r, g]) => ({ method, r, g })),
        );
        // GDAL, our values and the served tiles, all at once.
        const results = await Promise.all(
          cases.map(({ method, r, g }) =>
            Promise.all([
              // Later inputs overwrite earlier ones: `first` lists the members in reverse.
              warpMany(method === 'first' ? [east, west] : [west, east], tile, g, path.join(work, `two-${method}-${g}-${tile.z}-${tile.x}-${tile.y}`)).then(
                (r) => r[0]!,
              ),
              values(`two-${method}-${r}`, tile),
              served(`two-${method}-${r}-grey`, tile),
            ]),
          ),
        );
        const refs: Record<string, RefTile> = {};
        for (const [i, { method, r }] of cases.entries()) {
          const [ref, ours, png] = results[i]!;
          refs[`${method}-${r}`] = ref;
          const a = compareValues(ref, ours, r === 'nearest' ? 0 : BILINEAR_TOL_M);
          const grey = compareGrey(ref, png, DEM_RANGE, 1);
          report.push(
            `${method} ${r}: values ${describeAgreement(a, ' m')}; grey PNG within 1 level ${pct(grey.good, grey.both)}, alpha agrees ${pct(grey.maskAgree, N)}`,
          );
          const msg = `${tileName(tile)} ${report.at(-1)}\n  reference: ${ref.command}`;
          assert.ok(a.refValid > 0.05 * N, `GDAL draws the tile: ${msg}`);
          const min = r === 'nearest' ? MIN_IDENTICAL : MIN_BILINEAR;
          assert.ok(a.maskAgree >= min * N, `masks: ${msg}`);
          assert.ok(a.good >= min * a.both, `values: ${msg}`);
          assert.ok(grey.maskAgree >= min * N && grey.good >= min * grey.both, `served grey tile: ${msg}`);
        }
        // The overlap is in the tile, and the order matters there: `first` and `last` differ, and
        // the nearest `first` tile does not pass as the `last` one.
        const fl = compareValues(refs['last-nearest']!, await values('two-first-nearest', tile), 0);
        report.push(`nearest first vs last's reference: identical ${pct(fl.good, fl.both)}`);
        assert.ok(fl.both - fl.good > 0.01 * N, `first and last differ on ${fl.both - fl.good} pixels of ${tileName(tile)}`);
        const line = `two CRSs z${z} ${tileName(tile)} (columns ${box[0].toFixed(0)}..${box[2].toFixed(0)}): ${report.join('; ')}`;
        summary.push(line);
        t.diagnostic(line);
      });
    }
  });

  // -------------------------------------------------------------------------------------
  describe('each method on members of two grids listed interleaved (EPSG:3402, EPSG:4326, EPSG:3402)', { concurrency: true }, () => {
    /**
     * The list [west, east_4326, mid]: west and mid share a grid, east_4326 is listed between
     * them. `first` and `last` must follow the list member by member (where west has no value,
     * east_4326 wins `first`, not mid), and the mean of three is (west + mid + east) / 3, not a
     * mean of the grids' means.
     */
    /**
     * The reference: gdalwarp -r near of each member alone onto the tile, and the method per
     * pixel over the members valid there, in listed order. Nearest takes the same source pixel
     * whether a member is read alone or with the others of its grid, so this is what the
     * mosaic must give wherever the exact transforms agree (99.9%, as above).
     */
    const TILES: { at: [number, number]; z: number }[] = [
      { at: [220, 200], z: 11 },
      { at: [250, 120], z: 12 },
    ];
    let placed: ReturnType<typeof placeTiles>;
    const perMember = new Map<string, Promise<RefTile[]>>();
    before(() => {
      placed = placeTiles(dem, TILES);
      placed.catch(() => {});
    });
    const membersOn = (tile: Tile) => {
      let p = perMember.get(tileName(tile));
      if (!p) {
        p = Promise.all(
          MIX_MEMBERS.map((m) =>
            warpMany([path.join(tmp.dir, 'data/two', m)], tile, 'near', path.join(work, `mix-${m}-${tile.z}-${tile.x}-${tile.y}`)).then((r) => r[0]!),
          ),
        );
        perMember.set(tileName(tile), p);
      }
      return p;
    };

    for (const method of MOSAIC_METHODS) {
      it(`${method}`, async (t) => {
        const report: string[] = [];
        for (const [n, spec] of TILES.entries()) {
          const { tile } = (await placed)[n]!;
          const [members, ours] = await Promise.all([membersOn(tile), values(`mix-${method}`, tile)]);
          const values1 = new Float32Array(N),
            alpha = new Float32Array(N);
          let several = 0,
            interleaved = 0;
          for (let k = 0; k < N; k++) {
            const vals = members.filter((m) => m.alpha[k]! > 0).map((m) => m.values[k]!);
            if (vals.length > 1) several++;
            // Valid in the 4326 member and the last one, and not in the first: where a family order and the list order part.
            if (members[0]!.alpha[k] === 0 && members[1]!.alpha[k]! > 0 && members[2]!.alpha[k]! > 0) interleaved++;
            if (!vals.length) continue;
            alpha[k] = 255;
            values1[k] = Math.fround(methodValue(method, vals));
          }
          const ref: RefTile = { values: values1, alpha, command: `${members[0]!.command} per member, ${method} per pixel in the test` };
          const a = compareValues(ref, ours, 0);
          const line = `${tileName(tile)} (z${spec.z} over ${spec.at}): ${several} pixels with several members, ${interleaved} where only the 2nd and 3rd are; ${describeAgreement(a)}`;
          report.push(line);
          assert.ok(several > 0.05 * N && interleaved > 0.05 * N, `the tile has overlaps: ${line}`);
          assert.ok(a.maskAgree >= MIN_IDENTICAL * N, `masks: ${method} ${line}`);
          assert.ok(a.good >= MIN_IDENTICAL * a.both, `values: ${method} ${line}`);
        }
        summary.push(`mix ${method}: ${report.join('; ')}`);
        t.diagnostic(report.join('\n'));
      });
    }
  });

  // -------------------------------------------------------------------------------------
  describe('each method on overlapping members of one grid, against a per-pixel reference', { concurrency: true }, () => {
    /** Full-resolution tiles: the centre of the scene (every count from 0 to 3), and its west edge (nothing beyond). */
    const TILES: Tile[] = [xyzTileAt(-113.0448, 37.323, 12), xyzTileAt(-113.2356, 37.3196, 13)];
    /** Every method's reference as one band of one GeoTIFF (bands in MOSAIC_METHODS order). */
    let refTif = '';
    const warped = new Map<string, Promise<Map<MosaicMethod, RefTile>>>();
    const refsFor = (t: Tile) => {
      let p = warped.get(tileName(t));
      if (!p) {
        p = warpMany([refTif], t, 'near', path.join(work, `zion-ref-${t.z}-${t.x}-${t.y}`), MOSAIC_METHODS.length).then(
          (bands) => new Map(MOSAIC_METHODS.map((m, i) => [m, bands[i]!])),
        );
        warped.set(tileName(t), p);
      }
      return p;
    };
    const warp = async (method: MosaicMethod, t: Tile) => (await refsFor(t)).get(method)!;

    before(async () => {
      // GDAL decodes each member: its values and its mask band (nodata, internal mask) as Float32.
      const files = ZION_MEMBERS.map((m) => path.join(tmp.dir, 'data/zion', m));
      const infos = await Promise.all(files.map(gdalInfo));
      const decoded = await Promise.all(
        files.map(async (f, i) => {
          const base = path.join(work, `decoded-${i}`);
          await gdal('gdal_translate', ['-q', '-b', '1', '-b', 'mask', '-ot', 'Float32', '-of', 'ENVI', f, `${base}.raw`]);
          const [v, m] = readEnvi(base, infos[i]!.size[0], infos[i]!.size[1], 2);
          return { values: v!, mask: m! };
        }),
      );
      // The union of the members on the first one's grid.
      const g0 = infos[0]!.geoTransform;
      const at = infos.map((inf) => {
        const g = inf.geoTransform;
        assert.ok(g[1] === g0[1] && g[5] === g0[5] && g[2] === 0 && g[4] === 0, 'one pixel grid');
        const ox = (g[0]! - g0[0]!) / g0[1]!,
          oy = (g[3]! - g0[3]!) / g0[5]!;
        assert.ok(Number.isInteger(ox) && Number.isInteger(oy), `origins whole pixels apart (${ox}, ${oy})`);
        return [ox, oy] as const;
      });
      // The members' union, cut down to the tiles (and two pixels around them): all that the warps read.
      const boxes = await tilePixelBoxes(files[0]!, TILES);
      const x0 = Math.max(Math.min(...at.map((a) => a[0])), Math.floor(Math.min(...boxes.map((b) => b[0]))) - 2),
        y0 = Math.max(Math.min(...at.map((a) => a[1])), Math.floor(Math.min(...boxes.map((b) => b[1]))) - 2);
      const w = Math.min(Math.max(...at.map((a, i) => a[0] + infos[i]!.size[0])), Math.ceil(Math.max(...boxes.map((b) => b[2]))) + 2) - x0,
        h = Math.min(Math.max(...at.map((a, i) => a[1] + infos[i]!.size[1])), Math.ceil(Math.max(...boxes.map((b) => b[3]))) + 2) - y0;
      const out = new Map(MOSAIC_METHODS.map((m) => [m, new Float32Array(w * h)] as const));
      const vals: number[] = [];
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          vals.length = 0;
          decoded.forEach((d, i) => {
            const sx = x + x0 - at[i]![0],
              sy = y + y0 - at[i]![1],
              sw = infos[i]!.size[0];
            if (sx < 0 || sy < 0 || sx >= sw || sy >= infos[i]!.size[1]) return;
            const s = sy * sw + sx;
            if (d.mask[s]! > 0 && !Number.isNaN(d.values[s]!)) vals.push(d.values[s]!);
          });
          for (const [m, arr] of out) arr[y * w + x] = vals.length ? methodValue(m, vals) : NaN;
        }
      }
      const ulx = g0[0]! + x0 * g0[1]!,
        uly = g0[3]! + y0 * g0[5]!;
      const ullr = [ulx, uly, ulx + w * g0[1]!, uly + h * g0[5]!];
      refTif = await writeGeoTiff(
        path.join(work, 'zion-ref'),
        MOSAIC_METHODS.map((m) => out.get(m)!),
        w,
        h,
        infos[0]!.wkt,
        ullr,
      );
      for (const t of TILES) void refsFor(t).catch(() => {}); // started now, awaited by the tests
    });

    it('the fixture has what the methods need: GDAL reads full resolution, counts 0 to 3 in the centre tile, a scene edge', async (t) => {
      const report: string[] = [];
      for (const tile of TILES) {
        const choice = await gdalOverviewChoice(
          path.join(tmp.dir, 'data/zion/red-mask.tif'),
          xyzBounds(tile.z, tile.x, tile.y),
          SIZE,
          [1128, 564, 282],
          path.join(work, 'ovr'),
        );
        assert.equal(choice.level, 0, `GDAL reads full resolution for ${tileName(tile)}`);
        const count = await warp('count', tile);
        const hist = [0, 0, 0, 0];
        for (let k = 0; k < N; k++) hist[count.alpha[k]! > 0 ? count.values[k]! : 0]!++;
        report.push(`${tileName(tile)}: pixels with 0/1/2/3 members ${hist.join('/')}`);
        if (tile === TILES[0]) for (const c of [0, 1, 2, 3]) assert.ok(hist[c]! > 0.005 * N, `${tileName(tile)}: ${hist[c]} pixels with ${c} member(s)`);
        else assert.ok(hist[0]! > 0.05 * N && hist[2]! > 0.05 * N, `${tileName(tile)} is across the scene's edge: ${hist.join('/')}`);
      }
      summary.push(`zion fixture: ${report.join('; ')}`);
      t.diagnostic(report.join('; '));
    });

    for (const method of MOSAIC_METHODS) {
      it(`${method}`, async (t) => {
        const report: string[] = [];
        for (const tile of TILES) {
          const ref = await warp(method, tile);
          const ours = await values(`zion-${method}`, tile);
          const a = compareValues(ref, ours, 0);
          const grey = compareGrey(ref, await served(`zion-${method}-grey`, tile), method === 'count' ? [0, 3] : ZION_RANGE, 1);
          // The comparison tells the methods apart: against any other method's reference that
          // differs from this one's on 1% of the tile, the same tile fails.
          const others: string[] = [];
          for (const other of MOSAIC_METHODS) {
            if (other === method) continue;
            const oref = await warp(other, tile);
            let differ = 0;
            for (let k = 0; k < N; k++) if (ref.alpha[k]! > 0 && oref.alpha[k]! > 0 && ref.values[k] !== oref.values[k]) differ++;
            if (differ < 0.01 * N) continue;
            const o = compareValues(oref, ours, 0);
            others.push(`${other} ${pct(o.good, o.both)}`);
            assert.ok(o.good < MIN_IDENTICAL * o.both, `${method} ${tileName(tile)} passes as ${other}`);
          }
          const line = `${tileName(tile)}: values ${describeAgreement(a)}; grey PNG within 1 level ${pct(grey.good, grey.both)} (max ${grey.maxDiff}), alpha agrees ${pct(grey.maskAgree, N)}; identical to other methods' references: ${others.join(', ') || 'none differ'}`;
          report.push(line);
          const msg = `${method} ${line}\n  reference: ${ref.command}`;
          assert.ok(a.refValid > 0.3 * N, `the reference draws the tile: ${msg}`);
          assert.ok(a.maskAgree >= MIN_IDENTICAL * N, `masks: ${msg}`);
          assert.ok(a.good >= MIN_IDENTICAL * a.both, `values: ${msg}`);
          assert.ok(grey.maskAgree >= MIN_IDENTICAL * N, `served alpha: ${msg}`);
          assert.ok(grey.good >= MIN_IDENTICAL * grey.both, `served grey: ${msg}`);
        }
        summary.push(`zion ${method}: ${report.join('; ')}`);
        t.diagnostic(report.join('\n'));
      });
    }
  });

  // -------------------------------------------------------------------------------------
  describe("a member whose nodata value is not the first member's", () => {
    it("its nodata pixels are not drawn (last over NIR: gdalwarp honours each input's nodata)", async (t) => {
      const tile = xyzTileAt(-113.0448, 37.323, 12);
      const files = ['nir-hole.tif', 'zero-nodata.tif'].map((m) => path.join(tmp.dir, 'data/zion', m));
      const [ref, ours] = await Promise.all([
        warpMany(files, tile, 'near', path.join(work, `nodata-${tile.z}-${tile.x}-${tile.y}`)).then((r) => r[0]!),
        values('nodata-last', tile),
      ]);
      const a = compareValues(ref, ours, 0);
      let zeros = 0;
      for (let k = 0; k < N; k++) if (ours?.mask[k] && ours.bands[0]![k] === 0) zeros++;
      const line = `${tileName(tile)}: ${describeAgreement(a)}; pixels drawn with the value 0: ${zeros}`;
      summary.push(`nodata of a second member: ${line}`);
      t.diagnostic(line);
      assert.ok(a.refValid > 0.5 * N, `GDAL draws the tile: ${line}`);
      assert.equal(zeros, 0, `nodata drawn as 0: ${line}\n  reference: ${ref.command}`);
      assert.ok(a.maskAgree >= MIN_IDENTICAL * N && a.good >= MIN_IDENTICAL * a.both, line);
    });
  });
});

// ---------------------------------------------------------------------------------------

describe('Compositor against a plain per-pixel reference on random rasters', () => {
  /** mulberry32: the same cases every run. */
  function random(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  for (const method of [...MOSAIC_METHODS, 'sum'] as const) {
    it(`${method}: 60 random cases (1-3 bands, 2-6 members at random offsets, some beyond the target, random validity)`, (t) => {
      const rnd = random(0x5eed + method.length * 7919 + method.charCodeAt(0));
      const int = (n: number) => Math.floor(rnd() * n);
      let checked = 0,
        validSeen = 0,
        multi = 0;
      for (let trial = 0; trial < 60; trial++) {
        const w = 1 + int(40),
          h = 1 + int(30),
          nb = 1 + int(3);
        // Small integers make ties and even counts common; floats make sums inexact.
        const ints = trial % 2 === 0;
        const value = () => (ints ? int(7) - 3 : Math.fround(rnd() * 2000 - 1000));
        // The target starts with garbage: the constructor must reset what matters.
        const target: Layered = {
          width: w,
          height: h,
          bands: Array.from({ length: nb }, () => Float32Array.from({ length: w * h }, () => rnd() * 1e6)),
          valid: Uint8Array.from({ length: w * h }, () => int(2)),
        };
        const members = Array.from({ length: 2 + int(5) }, () => {
          const mw = 1 + int(w + 10),
            mh = 1 + int(h + 10);
          const p = 0.2 + 0.8 * rnd();
          const src: Layered = {
            width: mw,
            height: mh,
            bands: Array.from({ length: nb }, () => Float32Array.from({ length: mw * mh }, value)),
            valid: Uint8Array.from({ length: mw * mh }, () => (rnd() < p ? 1 : 0)),
          };
          // Mostly over the target, sometimes hanging over its edges, now and then beside it.
          return { src, dx: int(w + mw / 2 + 2) - Math.floor(mw / 4) - 2, dy: int(h + mh / 2 + 2) - Math.floor(mh / 4) - 2 };
        });
        const comp = new Compositor(method, target);
        for (const m of members) comp.add(m.src, m.dx, m.dy);
        comp.finish();

        let allValid = true;
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const k = y * w + x;
            const under = members.filter(({ src, dx, dy }) => {
              const sx = x - dx,
                sy = y - dy;
              return sx >= 0 && sy >= 0 && sx < src.width && sy < src.height && src.valid[sy * src.width + sx] === 1;
            });
            const where = `case ${trial} pixel ${x},${y} (${under.length} member(s) valid)`;
            assert.equal(target.valid[k], under.length ? 1 : 0, `validity: ${where}`);
            if (!under.length) {
              allValid = false;
              continue;
            }
            validSeen++;
            if (under.length > 1) multi++;
            for (let b = 0; b < nb; b++) {
              const vals = under.map(({ src, dx, dy }) => src.bands[b]![(y - dy) * src.width + (x - dx)]!);
              const want = Math.fround(methodValue(method, vals));
              assert.equal(target.bands[b]![k], want, `band ${b + 1}: ${where}, values [${vals.join(', ')}]`);
              checked++;
            }
          }
        }
        if (method === 'first') assert.equal(comp.full, allValid, `case ${trial}: full when every pixel has its value`);
        else assert.equal(comp.full, false, 'only a first mosaic is ever full');
      }
      t.diagnostic(`${validSeen} valid pixels checked, ${multi} of them with several members`);
      assert.ok(validSeen > 2000 && multi > 500, `the cases exercise overlaps: ${validSeen} valid pixels, ${multi} with several members`);
      assert.ok(checked >= validSeen);
    });
  }

  it('first: a full target ignores later members, and each band of highest/lowest is taken on its own', () => {
    const px = (vals: number[][], valid: number[]): Layered => ({
      width: valid.length,
      height: 1,
      bands: vals.map((v) => Float32Array.from(v)),
      valid: Uint8Array.from(valid),
    });
    const t1 = px(
      [
        [0, 0],
        [0, 0],
      ],
      [0, 0],
    );
    const c1 = new Compositor('first', t1);
    c1.add(
      px(
        [
          [1, 2],
          [10, 20],
        ],
        [1, 1],
      ),
      0,
      0,
    );
    assert.equal(c1.full, true);
    c1.add(
      px(
        [
          [5, 5],
          [50, 50],
        ],
        [1, 1],
      ),
      0,
      0,
    );
    c1.finish();
    assert.deepEqual([...t1.bands[0]!, ...t1.bands[1]!], [1, 2, 10, 20]);

    const t2 = px([[0], [0]], [0]);
    const c2 = new Compositor('highest', t2);
    c2.add(px([[9], [1]], [1]), 0, 0);
    c2.add(px([[3], [7]], [1]), 0, 0);
    c2.finish();
    assert.deepEqual([t2.bands[0]![0], t2.bands[1]![0]], [9, 7], 'band 1 from the first member, band 2 from the second');
  });
});
