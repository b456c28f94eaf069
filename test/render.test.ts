/**
 * The render path against GDAL: tiles drawn by tilegraph must match `gdalwarp` of the same
 * COG onto the same XYZ tile grid.
 *
 * test/fixtures/make-render-fixtures.sh makes small COGs from layers/data/ in EPSG:3857,
 * EPSG:4326, UTM 12N and a Lambert conformal conic, as Float32, UInt16 and paletted Byte,
 * with nodata values, NaN nodata, an internal mask and overviews. For each, layer files are
 * written into a temporary layers directory and loaded with loadLayer, as the server does.
 * Every tile is then rendered two ways through the project's own code:
 *   - values: the layer's pipeline (a single `read`) built with buildPipeline, as the render
 *     thread builds it, and applied to the tile: raw Float32 band plus validity mask;
 *   - pixels: the render thread's entry (workers/render.js) on a second layer, `read` then
 *     `rescale` to grey, giving the RGBA that the server would encode.
 * The reference is `gdalwarp -t_srs EPSG:3857 -te <tile> -ts 256 256 -r near|bilinear -et 0
 * -ovr <level> -dstalpha -ot Float32` (test/helpers/gdal.ts). The level is the one current
 * GDAL's -ovr AUTO picks for that target, worked out from GDAL's own transform of the tile
 * (gdalOverviewChoice): GDAL 3.6, as Debian 12 ships it, looks at the X ratio alone; later
 * GDAL takes the smaller of the X and Y ratios (gdalwarp_lib.cpp: "take the minimum of these
 * ratios #7019"). With EPSG:4326 at 37 N the two differ (the summary marks those tiles
 * "GDAL 3.6: n"). Passing the level keeps the reference the same whichever GDAL is installed.
 *
 * Agreement required, counted over the tile's 65,536 pixels:
 *   - masks (our mask / alpha vs GDAL's alpha > 0) agree on at least 99% of pixels;
 *   - nearest: at least 99% of the pixels valid in both are identical;
 *   - bilinear and cubic: at least 99% of the pixels valid in both lie within 4 levels of 255 once the
 *     fixture's value range is mapped to 0..255, i.e. |a - b| <= 4/255 * (max - min);
 *   - the RGBA from the render thread: alpha as the masks; grey within 4 levels (bilinear) or
 *     1 level (nearest: rounding) of GDAL's value put through the same rescale, on 99%;
 *   - the pyramid level read is GDAL's;
 *   - nothing to draw gives no image at all (the server's 204), never a blank one.
 * Every tile's figures are printed at the end of the run.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { renderTile } from '../workers/render.js';
import { loadLayer } from '../src/layers/layer.js';
import { buildGraph } from '../src/ops/build.js';
import type { BandRaster } from '../src/ops/raster.js';
import { LayerGraph } from '../src/render/renderer.js';
import type { LayerSpec } from '../src/render/task.js';
import { Cog } from '../src/sources/cog.js';
import { planRead } from '../src/tiles/plan.js';
import { tileBounds } from '../src/tiles/mercator.js';
import {
  GDAL_ENV,
  gdalMissing,
  gdalOverviewChoice,
  warpTile,
  xyzBounds,
  xyzTileAt,
  type GdalResampling,
  type OverviewChoice,
  type WarpedTile,
  limiter,
} from './helpers/gdal.js';
import { ROOT } from './helpers/root.js';

const SCRIPT = path.join(ROOT, 'test/fixtures/make-render-fixtures.sh');
const OUT = path.join(ROOT, 'test/fixtures/out/render');
/** gdalwarp tiles, kept between runs (the script's rebuild of OUT clears them). */
const REF = path.join(OUT, 'ref');
const SIZE = 256;
const SKIP_GDAL = gdalMissing(['gdalwarp', 'gdal_translate', 'gdalinfo', 'gdaltransform']);

const MIN_MASK_AGREEMENT = 0.99;
const MIN_NEAREST_IDENTICAL = 0.99;
const MIN_BILINEAR_WITHIN = 0.99;
/** Levels of 255 over the fixture's value range. */
const BILINEAR_LEVELS = 4;

type Resampling = 'nearest' | 'bilinear' | 'cubic';
const GDAL_METHOD: Record<Resampling, GdalResampling> = { nearest: 'near', bilinear: 'bilinear', cubic: 'cubic' };

interface ManifestEntry {
  file: string;
  size: [number, number];
  dataType: string;
  nodata: string | null;
  mask: string[];
  overviews: [number, number][];
  min: number;
  max: number;
}

/** What a tile is chosen to exercise; checked against GDAL's answer so the label stays true. */
type Kind =
  /** far above native resolution, all valid */
  | 'oversampled'
  /** around native resolution, all valid */
  | 'inside'
  /** below native resolution, all valid: an overview and/or a widened kernel */
  | 'downsampled'
  /** crosses the edge of the data: valid and empty parts */
  | 'edge'
  /** the whole raster at a low zoom: gdalwarp reads an overview */
  | 'whole'
  /** inside the raster's extent but all nodata: nothing to draw */
  | 'empty'
  /** beside the raster: the read plans nothing */
  | 'outside';

interface TileCase {
  kind: Kind;
  z: number;
  /** A WGS84 point the tile holds, named for what is there. */
  at: [number, number];
  where: string;
}

/**
 * Whole-raster tiles are compared with nearest only. Below native resolution gdalwarp widens
 * bilinear by a scale it computes per warp chunk from the source window clipped to the
 * raster (GDALWarpOperation::ComputeSourceWindow, dfSrcXSizeRaw = min(nRasterXSize -
 * nMinXOutClamped, dfMaxXOut - dfMinXOut)), so in chunks that hang over the raster's edge it
 * widens less than the geometry says, and by different amounts in neighbouring chunks (on
 * dem_3857 7/22/41: 97.7% within 4 levels, max 10, the misses all in the two chunks whose
 * source windows the raster's edges clip). The renderer widens by the true scale. Bilinear below native resolution is compared
 * on 'downsampled' tiles inside the data instead, where gdalwarp's chunk scale is the true one.
 */
const BILINEAR_KINDS: ReadonlySet<Kind> = new Set(['oversampled', 'inside', 'downsampled', 'edge', 'empty', 'outside']);

interface FixtureCase {
  file: string;
  what: string;
  resamplings: Resampling[];
  tiles: TileCase[];
}

// Footprints of the data (corners as gdalinfo reports them for the files in layers/data/).
const DEM = { centre: [-117.5486, 53.2431], west: [-117.848, 53.2364], nw: [-117.86, 53.416], se: [-117.2396, 53.0695] } as const;
const ZION = { centre: [-113.0448, 37.323], west: [-113.2356, 37.3196], ne: [-112.8587, 37.5191], sw: [-113.2299, 37.1266] } as const;
const pt = (p: readonly number[]): [number, number] => [p[0]!, p[1]!];
const between = (a: readonly number[], b: readonly number[], t: number): [number, number] => [a[0]! + (b[0]! - a[0]!) * t, a[1]! + (b[1]! - a[1]!) * t];

const FIXTURES: FixtureCase[] = [
  {
    // 100 m pixels: native around z10.6.
    file: 'dem_3857.tif',
    what: 'Float32, EPSG:3857, nodata -9999 corners',
    resamplings: ['nearest', 'bilinear', 'cubic'],
    tiles: [
      { kind: 'oversampled', z: 14, at: pt(DEM.centre), where: 'DEM centre' },
      { kind: 'inside', z: 11, at: pt(DEM.centre), where: 'DEM centre' },
      { kind: 'downsampled', z: 10, at: pt(DEM.centre), where: 'DEM centre, full resolution, 1.5x kernel' },
      { kind: 'edge', z: 12, at: pt(DEM.west), where: 'DEM west edge (rotated, nodata beyond)' },
      { kind: 'edge', z: 10, at: pt(DEM.nw), where: 'DEM north-west corner' },
      { kind: 'whole', z: 8, at: pt(DEM.centre), where: 'whole DEM' },
      { kind: 'whole', z: 7, at: pt(DEM.centre), where: 'whole DEM' },
    ],
  },
  {
    // 80 m ground pixels (134 m in Mercator at 53 N): native around z10.2; grid rotated ~17 degrees.
    file: 'dem_lcc.tif',
    what: 'Float32, Lambert conformal conic (proj string), NaN nodata',
    resamplings: ['nearest', 'bilinear'],
    tiles: [
      { kind: 'oversampled', z: 14, at: pt(DEM.centre), where: 'DEM centre' },
      { kind: 'inside', z: 11, at: between(DEM.centre, DEM.se, 0.3), where: 'south-east of the DEM centre' },
      { kind: 'downsampled', z: 10, at: pt(DEM.centre), where: 'DEM centre, full resolution, 1.1x kernel' },
      { kind: 'edge', z: 12, at: pt(DEM.west), where: 'DEM west edge' },
      { kind: 'edge', z: 11, at: pt(DEM.se), where: 'DEM south-east corner' },
      { kind: 'empty', z: 13, at: [-117.95, 53.35], where: "the raster's NaN north-west corner" },
      { kind: 'whole', z: 8, at: pt(DEM.centre), where: 'whole DEM' },
    ],
  },
  {
    // 30 m pixels (38 m in Mercator at 37 N): native around z12.
    file: 'nir_32612.tif',
    what: 'UInt16, UTM 12N, every pixel valid (raster edge only)',
    resamplings: ['nearest', 'bilinear', 'cubic'],
    tiles: [
      { kind: 'oversampled', z: 16, at: pt(ZION.centre), where: 'scene centre' },
      { kind: 'inside', z: 12, at: pt(ZION.centre), where: 'scene centre' },
      { kind: 'downsampled', z: 11, at: pt(ZION.centre), where: 'scene centre, first overview' },
      { kind: 'edge', z: 13, at: pt(ZION.west), where: 'scene west edge' },
      { kind: 'edge', z: 12, at: pt(ZION.ne), where: 'scene north-east corner' },
      { kind: 'outside', z: 12, at: [-112.7, 37.3], where: 'east of the scene' },
      { kind: 'whole', z: 10, at: pt(ZION.centre), where: 'whole scene' },
      { kind: 'whole', z: 9, at: pt(ZION.centre), where: 'whole scene' },
    ],
  },
  {
    // 0.0003 degree pixels (33 x 42 m in Mercator): native around z12.2.
    file: 'nir_4326.tif',
    what: 'UInt16, EPSG:4326, internal mask, no nodata',
    resamplings: ['nearest', 'bilinear'],
    tiles: [
      { kind: 'oversampled', z: 16, at: pt(ZION.centre), where: 'scene centre' },
      { kind: 'inside', z: 12, at: between(ZION.centre, ZION.ne, 0.5), where: 'north-east of the scene centre' },
      { kind: 'downsampled', z: 11, at: pt(ZION.centre), where: 'scene centre, full resolution, 2.3x kernel across' },
      { kind: 'edge', z: 13, at: pt(ZION.west), where: 'scene west edge (masked beyond)' },
      { kind: 'edge', z: 12, at: pt(ZION.sw), where: 'scene south-west corner' },
      { kind: 'whole', z: 10, at: pt(ZION.centre), where: 'whole scene' },
    ],
  },
  {
    // 0.000315 degree pixels (35 x 44 m in Mercator): native around z12.1. Categories: nearest only.
    file: 'nlcd_4326.tif',
    what: 'Byte with colour table, EPSG:4326, nodata 255 corners',
    resamplings: ['nearest'],
    tiles: [
      { kind: 'oversampled', z: 15, at: pt(ZION.centre), where: 'scene centre' },
      { kind: 'inside', z: 12, at: pt(ZION.centre), where: 'scene centre' },
      // Output pixels 1.92 source pixels across the diagonal: just short of the 2x overview.
      { kind: 'downsampled', z: 11, at: pt(ZION.centre), where: 'scene centre, full resolution' },
      { kind: 'edge', z: 13, at: pt(ZION.west), where: 'scene west edge' },
      { kind: 'whole', z: 10, at: pt(ZION.centre), where: 'whole scene' },
      { kind: 'whole', z: 8, at: pt(ZION.centre), where: 'whole scene' },
    ],
  },
];

interface Stats {
  pixels: number;
  gdalValid: number;
  ourValid: number;
  maskAgree: number;
  bothValid: number;
  /** nearest: identical values; bilinear: within tolerance. */
  good: number;
  maxDiff: number;
  meanDiff: number;
}

function compare(ref: WarpedTile, values: Float32Array | null, mask: Uint8Array | null, tol: number): Stats {
  const n = ref.size * ref.size;
  let gdalValid = 0,
    ourValid = 0,
    maskAgree = 0,
    bothValid = 0,
    good = 0,
    maxDiff = 0,
    sumDiff = 0;
  for (let k = 0; k < n; k++) {
    const g = ref.alpha[k]! > 0;
    const o = mask !== null && mask[k] === 1;
    if (g) gdalValid++;
    if (o) ourValid++;
    if (g === o) maskAgree++;
    if (!g || !o) continue;
    bothValid++;
    // NaN on either side is a mismatch (Infinity), never a silent pass.
    const d = values![k] === ref.values[k] ? 0 : Math.abs(values![k]! - ref.values[k]!) || Infinity;
    if (d > maxDiff) maxDiff = d;
    if (Number.isFinite(d)) sumDiff += d;
    if (d <= tol) good++;
  }
  return { pixels: n, gdalValid, ourValid, maskAgree, bothValid, good, maxDiff, meanDiff: bothValid ? sumDiff / bothValid : 0 };
}

const pct = (a: number, b: number) => (b === 0 ? '-' : `${((100 * a) / b).toFixed(2)}%`);

/** One line with every figure, for assertion messages and the summary. */
function describeStats(s: Stats, range: number): string {
  const levels = (d: number) => (d === Infinity ? 'inf' : ((d / range) * 255).toFixed(2));
  return (
    `GDAL valid ${s.gdalValid}, ours ${s.ourValid}, masks agree ${pct(s.maskAgree, s.pixels)}; ` +
    `both valid ${s.bothValid}, good ${pct(s.good, s.bothValid)}, max diff ${levels(s.maxDiff)} levels, mean ${levels(s.meanDiff)} levels`
  );
}

function layerYaml(file: string, resampling: Resampling, rescale?: [number, number]): string {
  return [
    `title: render test ${file} ${resampling}`,
    'sources:',
    `  src: ./data/${file}`,
    'minzoom: 0',
    'maxzoom: 22',
    'pipeline:',
    `  - read: { source: src, bands: [1], resampling: ${resampling} }`,
    ...(rescale ? [`  - rescale: { from: [${rescale[0]}, ${rescale[1]}] }`] : []),
    '',
  ].join('\n');
}

/** Unwraps piscina's transferable envelope, which the worker returns outside a pool too. */

const gdalSlots = limiter(2);

/** Per-case figures, printed once at the end (the measured agreement, not just pass/fail). */
const summary: string[] = [];

describe('render path vs gdalwarp on the same tile grid', { skip: SKIP_GDAL }, () => {
  let layersDir = '';
  let manifest: Map<string, ManifestEntry>;

  before(() => {
    // The script itself skips the work when its manifest is newer than it and the source data.
    execFileSync('bash', [SCRIPT, OUT], { cwd: ROOT, env: GDAL_ENV, stdio: ['ignore', 'ignore', 'inherit'] });
    const m = JSON.parse(readFileSync(path.join(OUT, 'manifest.json'), 'utf8')) as { fixtures: ManifestEntry[] };
    manifest = new Map(m.fixtures.map((f) => [f.file, f]));
    // Sources must lie under the layers directory (after links), so the COGs are copied in.
    layersDir = mkdtempSync(path.join(tmpdir(), 'tilegraph-render-'));
    mkdirSync(path.join(layersDir, 'data'));
    for (const f of m.fixtures) copyFileSync(path.join(OUT, f.file), path.join(layersDir, 'data', f.file));
  });

  after(() => {
    if (layersDir) rmSync(layersDir, { recursive: true, force: true });
    if (summary.length) console.log(['render vs gdalwarp (per tile):', ...summary].join('\n  '));
  });

  it('covers every fixture the script makes', () => {
    assert.deepEqual([...manifest.keys()].sort(), FIXTURES.map((f) => f.file).sort());
    const types = new Set([...manifest.values()].map((f) => f.dataType));
    for (const t of ['Float32', 'UInt16', 'Byte']) assert.ok(types.has(t), `no ${t} fixture`);
    for (const f of manifest.values()) assert.ok(f.overviews.length >= 2, `${f.file} has ${f.overviews.length} overview(s)`);
  });

  for (const fx of FIXTURES) {
    for (const resampling of fx.resamplings) {
      describe(`${fx.file} (${fx.what}), ${resampling}`, () => {
        let cogs: Map<string, Cog>;
        let valueSpec: LayerSpec;
        let pixelSpec: LayerSpec;
        let entry: ManifestEntry;
        const tiles = fx.tiles
          .filter((c) => resampling === 'nearest' || BILINEAR_KINDS.has(c.kind))
          .map((tc) => ({ tc, t: xyzTileAt(tc.at[0], tc.at[1], tc.z) }));
        /** GDAL's answers per tile, started together (two at a time) before the tiles run. */
        const refs = new Map<string, Promise<{ choice: OverviewChoice; ref: WarpedTile }>>();

        before(async () => {
          entry = manifest.get(fx.file)!;
          const src = path.join(OUT, fx.file);
          const widths = [entry.size[0], ...entry.overviews.map((o) => o[0])];
          for (const { t } of tiles) {
            const key = `${t.z}/${t.x}/${t.y}`;
            if (refs.has(key)) continue;
            const bounds = xyzBounds(t.z, t.x, t.y);
            const p = gdalSlots(async () => {
              const choice = await gdalOverviewChoice(src, bounds, SIZE, widths, REF);
              return { choice, ref: await warpTile(src, bounds, SIZE, GDAL_METHOD[resampling], REF, choice.level) };
            });
            p.catch(() => {}); // reported by the tile that awaits it
            refs.set(key, p);
          }
          const name = `${fx.file.replace(/\.tif$/, '')}-${resampling}`;
          const opts = { layersDir, allowedHosts: [] };
          writeFileSync(path.join(layersDir, `${name}.yaml`), layerYaml(fx.file, resampling));
          writeFileSync(path.join(layersDir, `${name}-grey.yaml`), layerYaml(fx.file, resampling, [entry.min, entry.max]));
          valueSpec = (await loadLayer(path.join(layersDir, `${name}.yaml`), opts)).spec;
          pixelSpec = (await loadLayer(path.join(layersDir, `${name}-grey.yaml`), opts)).spec;
          // As the render thread does: open the sources, build the graph from the canonical config.
          cogs = new Map(await Promise.all(Object.entries(valueSpec.sources).map(async ([k, loc]) => [k, await Cog.open(loc)] as const)));
        });

        after(async () => {
          await Promise.all([...(cogs?.values() ?? [])].map((c) => c.close()));
        });

        for (const { tc, t } of tiles) {
          it(`${tc.kind}: ${t.z}/${t.x}/${t.y} (${tc.where})`, async () => {
            const bounds = xyzBounds(t.z, t.x, t.y);
            assert.deepEqual(
              tileBounds(t).map((v) => v.toFixed(3)),
              bounds.map((v) => v.toFixed(3)),
              'tile bounds',
            );
            const { choice, ref } = await refs.get(`${t.z}/${t.x}/${t.y}`)!;
            assert.equal(ref.level, choice.level, `gdalwarp read level ${ref.level}, asked for ${choice.level}`);
            const range = entry.max - entry.min;
            const tol = resampling === 'nearest' ? 0 : (BILINEAR_LEVELS / 255) * range;

            // Values through the layer's graph.
            const { raster: out, ctx } = await new LayerGraph(buildGraph(valueSpec.pipeline, { sources: cogs }), cogs).raster({ ...t, size: SIZE });
            assert.equal(ctx.buffer, 0);
            const raster = out as BandRaster | null;
            if (raster) assert.equal(raster.kind, 'bands');
            const s = compare(ref, raster?.bands[0] ?? null, raster?.mask ?? null, tol);

            // The level the reader chose, against gdalwarp's.
            const meta = cogs.get('src')!.meta;
            const plan = planRead(
              { width: meta.width, height: meta.height, geoTransform: meta.geoTransform, proj4: meta.crs.proj4, levels: meta.levels },
              ctx,
              resampling,
            );
            const level = plan?.level ?? -1;

            // Pixels through the render thread's entry: grey = rescale(min..max) to 0..255.
            const result = await renderTile({ layer: pixelSpec, ...t, size: SIZE });
            const rgba = result.rgba ? new Uint8Array(result.rgba) : null;
            // Nearest: one level for rounding, as `rescale` keeps Float32 and a value can land on
            // a half level (NLCD class 81 is 212.5 of 255 over 11..95).
            const px = comparePixels(ref, rgba, entry.min, range, resampling === 'nearest' ? 1 : BILINEAR_LEVELS);

            const gdal36 = choice.levelGdal36 !== choice.level ? ` (GDAL 3.6: ${choice.levelGdal36})` : '';
            const line =
              `${fx.file} ${resampling} ${tc.kind} ${t.z}/${t.x}/${t.y}: ratio ${choice.ratioX.toFixed(2)}x${choice.ratioY.toFixed(2)}, level ours ${level} gdal ${choice.level}${gdal36}; ${describeStats(s, range)}; ` +
              `RGBA alpha agrees ${pct(px.alphaAgree, px.pixels)}, grey good ${pct(px.good, px.both)} (max ${px.maxDiff})`;
            summary.push(line);
            const msg = `${line}\n  reference: ${ref.command}`;

            // The tile is what its label says, by GDAL's account.
            switch (tc.kind) {
              case 'empty':
              case 'outside':
                assert.equal(s.gdalValid, 0, `not empty: ${msg}`);
                break;
              case 'edge':
                assert.ok(s.gdalValid > 0.01 * s.pixels && s.gdalValid < 0.99 * s.pixels, `not an edge tile: ${msg}`);
                break;
              case 'whole':
                assert.ok(choice.level > 0, `gdalwarp reads full resolution: ${msg}`);
                break;
              default:
                assert.equal(s.gdalValid, s.pixels, `not all valid: ${msg}`);
            }
            if (tc.kind === 'oversampled') assert.equal(choice.level, 0, msg);
            if (tc.kind === 'downsampled')
              assert.ok(plan !== null && (plan.level > 0 || Math.max(plan.scaleX, plan.scaleY) > 1 / 0.95), `not below native resolution: ${msg}`);
            if (tc.kind === 'outside') assert.equal(raster, null, `the read planned something: ${msg}`);

            if (s.gdalValid > 0) assert.equal(level, choice.level, `pyramid level: ${msg}`);
            assert.ok(s.maskAgree >= MIN_MASK_AGREEMENT * s.pixels, `masks: ${msg}`);
            const minGood = resampling === 'nearest' ? MIN_NEAREST_IDENTICAL : MIN_BILINEAR_WITHIN;
            assert.ok(s.good >= minGood * s.bothValid, `values: ${msg}`);
            // Nothing to draw means no image at all (the server answers 204), never a blank one.
            assert.equal(rgba === null, s.ourValid === 0, msg);
            assert.ok(px.alphaAgree >= MIN_MASK_AGREEMENT * px.pixels, `RGBA alpha: ${msg}`);
            assert.ok(px.good >= minGood * px.both, `RGBA grey: ${msg}`);
          });
        }
      });
    }
  }
});

/** The worker's RGBA against GDAL's values mapped to grey the way `rescale` + grey drawing is specified. */
function comparePixels(ref: WarpedTile, rgba: Uint8Array | null, min: number, range: number, levels: number) {
  const n = ref.size * ref.size;
  let alphaAgree = 0,
    both = 0,
    good = 0,
    maxDiff = 0;
  for (let k = 0; k < n; k++) {
    const g = ref.alpha[k]! > 0;
    const a = rgba !== null && rgba[k * 4 + 3] === 255;
    if (rgba !== null && rgba[k * 4 + 3] !== 0 && rgba[k * 4 + 3] !== 255) continue; // counts as a disagreement
    if (g === a) alphaAgree++;
    if (!g || !a) continue;
    both++;
    const want = Math.round(Math.min(1, Math.max(0, (ref.values[k]! - min) / range)) * 255);
    const r = rgba![k * 4]!;
    const d = Math.max(Math.abs(r - want), Math.abs(rgba![k * 4 + 1]! - r), Math.abs(rgba![k * 4 + 2]! - r));
    if (d > maxDiff) maxDiff = d;
    if (d <= levels) good++;
  }
  return { pixels: n, alphaAgree, both, good, maxDiff };
}
