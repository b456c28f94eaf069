/**
 * Lineage for `tilegraph seed --since` (src/seed/lineage.ts), on COGs GDAL writes here from the
 * shipped Jasper DEM (1300x1300 at 30.8 m, 256 blocks, three overviews) and a copy with two
 * small polygons burnt in with `gdal_rasterize`, rewritten with the same options.
 *
 * The references are independent of tilegraph's reader and planner: which blocks changed is a
 * byte comparison of the blocks that geotiff.js lists (TileOffsets/TileByteCounts of every
 * IFD, masks included); where a block lies is its corners through the geotransform of
 * `gdalinfo -json` and `gdaltransform` to Web Mercator; tile squares come from
 * @mapbox/tilebelt; the level a tile reads is GDAL's -ovr AUTO choice (test/helpers/gdal.ts);
 * and `gdalwarp` of both files onto the tile grid says which tiles GDAL draws differently.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pointToTile, tileToBBOX } from '@mapbox/tilebelt';
import { deflateSync, gzipSync } from 'node:zlib';
import { fromFile } from 'geotiff';
import { loadLayer, type Layer } from '../src/layers/layer.js';
import { readGroups } from '../src/ops/builtin/read.js';
import { useKernels } from '../src/kernels.js';
import { cellHashes } from '../src/sources/cells.js';
import { Cog } from '../src/sources/cog.js';
import { planSourceOf } from '../src/render/mosaic.js';
import {
  changedBlocks,
  digestSource,
  lineageOf,
  parseLineage,
  staleTiles,
  structureChange,
  type FileLineage,
  type ManifestLineage,
  type PixelRect,
} from '../src/seed/lineage.js';
import { tileBounds } from '../src/tiles/mercator.js';
import { planRead } from '../src/tiles/plan.js';
import { GDAL_ENV, gdalMissing, gdalOverviewChoice, limiter, warpTile } from './helpers/gdal.js';
import { makeLayersDir, SHIPPED_DATA, type TempLayers } from './helpers/http.js';

type Pt = [number, number];
type Box = [number, number, number, number];
interface Tile {
  z: number;
  x: number;
  y: number;
}

const DEM = path.join(SHIPPED_DATA, 'srtm_jasper_ab_100m.tif');
const COG = ['-q', '-of', 'COG', '-co', 'BLOCKSIZE=256', '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=YES', '-co', 'OVERVIEW_COUNT=3'];
/**
 * The DEM resampled to 1300x1300 (30.8 m): the tiles of zooms 8-12 read one level each across
 * it, well inside gdalwarp's thresholds (source pixels per output pixel 11.9, 6.0, 3.0, 1.5,
 * 0.7 at its centre); six block columns, the last 20 pixels wide.
 */
const SIZE = 1300;
/**
 * Full-resolution pixels [col0, row0, col1, row1] burnt with 3000 m: one across the block
 * column 512 (two blocks at level 0 and 1), one in the partial last block column (1280-1300).
 */
const BURNS: Box[] = [
  [500, 700, 530, 720],
  [1282, 100, 1298, 120],
];
const ZOOMS = [8, 9, 10, 11, 12, 13];
const STOPS = '[[950, "#2b6b3a"], [1800, "#b5834f"], [2600, "#ffffff"]]';

const slots = limiter(2);
function run(tool: string, args: readonly string[], input?: string): Promise<string> {
  return slots(
    () =>
      new Promise<string>((resolve, reject) => {
        const child = execFile(tool, args, { env: GDAL_ENV, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
          err ? reject(new Error(`${tool} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
        );
        child.stdin?.end(input ?? '');
      }),
  );
}

// ---------------------------------------------------------------------------------------------
// The independent block comparison: geotiff.js lists the blocks, the bytes are compared here

interface TiffImageBlocks {
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  offsets: number[];
  counts: number[];
}

/** Every level (full resolution, then overviews by width) with its mask, as geotiff.js reads the IFDs. */
async function tiffLevels(file: string): Promise<{ image: TiffImageBlocks; mask?: TiffImageBlocks }[]> {
  const tiff = await fromFile(file);
  try {
    const images: (TiffImageBlocks & { subfile: number })[] = [];
    for (let i = 0; i < (await tiff.getImageCount()); i++) {
      const im = await tiff.getImage(i);
      const fd = im.fileDirectory;
      images.push({
        width: im.getWidth(),
        height: im.getHeight(),
        tileWidth: im.getTileWidth(),
        tileHeight: im.getTileHeight(),
        subfile: Number(fd.getValue('NewSubfileType') ?? 0),
        offsets: Array.from((await fd.loadValue('TileOffsets')) ?? [], Number),
        counts: Array.from((await fd.loadValue('TileByteCounts')) ?? [], Number),
      });
    }
    // TIFF 6.0 NewSubfileType: bit 0 a reduced-resolution image, bit 2 a transparency mask.
    const levels = images.filter((im) => !(im.subfile & 4)).sort((a, b) => b.width - a.width);
    return levels.map((image) => ({ image, mask: images.find((m) => m.subfile & 4 && m.width === image.width && m.height === image.height) }));
  } finally {
    tiff.close();
  }
}

function readBlock(fd: number, offset: number, count: number): Buffer {
  const buf = Buffer.alloc(count);
  if (count) readSync(fd, buf, 0, count, offset);
  return buf;
}

/** Per level, the pixel rectangles of blocks (of the image or its mask) whose bytes differ, as 'x0,y0,x1,y1' sorted. */
async function bytewiseChanges(fileA: string, fileB: string): Promise<{ rects: string[][]; moved: number; blocks: number }> {
  const [la, lb] = await Promise.all([tiffLevels(fileA), tiffLevels(fileB)]);
  assert.equal(la.length, lb.length);
  const fa = openSync(fileA, 'r'),
    fb = openSync(fileB, 'r');
  let moved = 0,
    blocks = 0;
  try {
    const rects = la.map((lvA, k) => {
      const out = new Set<string>();
      const lvB = lb[k]!;
      for (const [a, b] of [
        [lvA.image, lvB.image],
        [lvA.mask, lvB.mask],
      ] as const) {
        if (!a || !b) continue;
        const across = Math.ceil(a.width / a.tileWidth);
        a.offsets.forEach((_, i) => {
          blocks++;
          const same = readBlock(fa, a.offsets[i]!, a.counts[i]!).equals(readBlock(fb, b.offsets[i]!, b.counts[i]!));
          if (same && a.offsets[i] !== b.offsets[i]) moved++;
          if (same) return;
          const bx = i % across,
            by = Math.floor(i / across);
          out.add([bx * a.tileWidth, by * a.tileHeight, Math.min((bx + 1) * a.tileWidth, a.width), Math.min((by + 1) * a.tileHeight, a.height)].join());
        });
      }
      return [...out].sort();
    });
    return { rects, moved, blocks };
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

interface Raster {
  width: number;
  height: number;
  pixelBytes: number;
  bytes: Buffer;
}

/** A level of a file (0: full resolution, k: GDAL's overview k - 1) as GDAL reads it: its raw samples (ENVI). */
async function gdalLevel(file: string, level: number): Promise<Raster> {
  const out = `${file}.level${level}.${process.pid}.bin`;
  try {
    await run('gdal_translate', ['-q', '-of', 'ENVI', ...(level ? ['-ovr', String(level - 1)] : []), file, out]);
    const info = JSON.parse(await run('gdalinfo', ['-json', out])) as { size: [number, number]; bands: { type: string }[] };
    const pixelBytes = ({ Byte: 1, Int16: 2, UInt16: 2, Int32: 4, UInt32: 4, Float32: 4, Float64: 8 } as Record<string, number>)[info.bands[0]!.type]!;
    assert.equal(info.bands.length, 1);
    return { width: info.size[0], height: info.size[1], pixelBytes, bytes: await readFile(out) };
  } finally {
    await Promise.all([out, `${out}.aux.xml`, out.replace(/\.bin$/, '.hdr')].map((f) => rm(f, { force: true })));
  }
}

/**
 * The cells of a square block of the raster (4x4 cells, cut at the raster's edge), each the
 * CRC-32 and the Adler-32 of its rows as Node's zlib writes them: the trailer of a gzip member
 * (CRC-32, little-endian) and of a zlib stream (Adler-32, big-endian) of the cell's bytes.
 */
function gdalCells(r: Raster, block: number, bx: number, by: number): string {
  const side = Math.ceil(block / 4);
  let out = '';
  for (let cy = 0; cy < 4; cy++)
    for (let cx = 0; cx < 4; cx++) {
      const rows: Buffer[] = [];
      const x0 = bx * block + cx * side,
        x1 = Math.min(x0 + side, r.width);
      for (let y = by * block + cy * side; y < Math.min(by * block + (cy + 1) * side, r.height); y++)
        if (x1 > x0) rows.push(r.bytes.subarray((y * r.width + x0) * r.pixelBytes, (y * r.width + x1) * r.pixelBytes));
      const cell = Buffer.concat(rows);
      const gzip = gzipSync(cell, { level: 1 });
      const crc = gzip.readUInt32LE(gzip.length - 8);
      const zlib = deflateSync(cell, { level: 1 });
      const adler = zlib.readUInt32BE(zlib.length - 4);
      out += crc.toString(16).padStart(8, '0') + adler.toString(16).padStart(8, '0');
    }
  return out;
}

const asKeys = (levels: PixelRect[][] | 'all') => (levels === 'all' ? 'all' : levels.map((l) => l.map((r) => r.join()).sort()));

// ---------------------------------------------------------------------------------------------
// Geometry, written out here: Web Mercator, tiles, convex footprints

const R = 6378137;
const merc = ([lon, lat]: Pt): Pt => [(lon * Math.PI * R) / 180, R * Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360))];
const tileName = (t: Tile) => `${t.z}/${t.x}/${t.y}`;

/** Tilebelt's square of the tile, in Web Mercator, widened by `pad` tiles on every side. */
function tileSquare(t: Tile, pad = 0): Box {
  const [w, s, e, n] = tileToBBOX([t.x, t.y, t.z]);
  const [x0, y0] = merc([w, s]);
  const [x1, y1] = merc([e, n]);
  const d = (x1 - x0) * pad;
  return [x0 - d, y0 - d, x1 + d, y1 + d];
}

/** The tiles over a lon/lat box at zoom z, with a ring of `ring` tiles around them. */
function tilesOver([w, s, e, n]: Box, z: number, ring: number): Tile[] {
  const [x0, y0] = pointToTile(w, n, z);
  const [x1, y1] = pointToTile(e, s, z);
  const out: Tile[] = [];
  for (let y = y0 - ring; y <= y1 + ring; y++) for (let x = x0 - ring; x <= x1 + ring; x++) out.push({ z, x, y });
  return out;
}

/** Whether a convex polygon (its corners in order) and a box share an area: separating axes. */
function convexMeetsBox(poly: readonly Pt[], [x0, y0, x1, y1]: Box): boolean {
  const box: Pt[] = [
    [x0, y0],
    [x1, y0],
    [x1, y1],
    [x0, y1],
  ];
  const axes: Pt[] = [
    [1, 0],
    [0, 1],
    ...poly.map((p, i): Pt => {
      const q = poly[(i + 1) % poly.length]!;
      return [q[1] - p[1], p[0] - q[0]];
    }),
  ];
  for (const [ax, ay] of axes) {
    const span = (pts: readonly Pt[]) => {
      const d = pts.map(([x, y]) => x * ax + y * ay);
      return [Math.min(...d), Math.max(...d)] as const;
    };
    const [a0, a1] = span(poly);
    const [b0, b1] = span(box);
    if (a1 <= b0 || b1 <= a0) return false;
  }
  return true;
}

const boxMeetsBox = (a: Box, b: Box) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];

interface GdalInfo {
  geoTransform: number[];
  size: [number, number];
  coordinateSystem: { wkt: string };
  wgs84Extent: { coordinates: Pt[][] };
  bands: { overviews: { size: [number, number] }[] }[];
}

/**
 * Web Mercator corners of pixel rectangles of a level (level pixels), through the geotransform
 * of `gdalinfo -json` and `gdaltransform` (one call for all). `pad` widens each by that many
 * level pixels; `edge` points per side (corners alone: 1).
 */
async function footprints(info: GdalInfo, widths: readonly number[], rects: readonly { level: number; rect: Box }[], pad = 0, edge = 1): Promise<Pt[][]> {
  const [a, b, c, d, e, f] = info.geoTransform as [number, number, number, number, number, number];
  const input: string[] = [];
  for (const { level, rect } of rects) {
    const k = widths[0]! / widths[level]!;
    const [x0, y0, x1, y1] = [rect[0] - pad, rect[1] - pad, rect[2] + pad, rect[3] + pad];
    const corners: Pt[] = [
      [x0, y0],
      [x1, y0],
      [x1, y1],
      [x0, y1],
    ];
    corners.forEach((p, i) => {
      const q = corners[(i + 1) % 4]!;
      for (let s = 0; s < edge; s++) {
        const px = (p[0] + ((q[0] - p[0]) * s) / edge) * k,
          py = (p[1] + ((q[1] - p[1]) * s) / edge) * k;
        input.push(`${a + b * px + c * py} ${d + e * px + f * py}`);
      }
    });
  }
  const out = await run('gdaltransform', ['-s_srs', info.coordinateSystem.wkt, '-t_srs', 'EPSG:3857', '-output_xy'], input.join('\n') + '\n');
  const pts = out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as Pt);
  assert.equal(pts.length, input.length);
  return rects.map((_, i) => pts.slice(i * 4 * edge, (i + 1) * 4 * edge));
}

const bboxOf = (pts: readonly Pt[]): Box => [
  Math.min(...pts.map((p) => p[0])),
  Math.min(...pts.map((p) => p[1])),
  Math.max(...pts.map((p) => p[0])),
  Math.max(...pts.map((p) => p[1])),
];

/** The tiles a layer's planner reads changed rectangles for, per read group: the exact answer, without any prefilter. */
function plannedStale(layer: Layer, t: Tile, rects: readonly (readonly PixelRect[])[]): boolean {
  const grid = { z: t.z, size: layer.config.tileSize, buffer: layer.graph.buffer(), bounds: tileBounds(t) };
  for (const g of readGroups(layer.graph)) {
    const plan = planRead(planSourceOf(g.meta), grid, g.resampling);
    if (!plan) continue;
    const [x0, y0, x1, y1] = plan.window;
    if ((rects[plan.level] ?? []).some((r) => x0 < r[2] && r[0] < x1 && y0 < r[3] && r[1] < y1)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------

const skip = gdalMissing(['gdal_translate', 'gdal_rasterize', 'gdalinfo', 'gdaltransform', 'gdalbuildvrt', 'gdalwarp']);

describe('seed lineage: block digests and stale tiles', { skip }, () => {
  let tmp: TempLayers;
  let data: (name: string) => string;
  let info: GdalInfo;
  /** WGS84 [w, s, e, n] of the DEM. */
  let extent: Box;
  /** Widths of the levels of a.tif, as gdalinfo gives them. */
  let widths: number[];
  const opts = () => ({ layersDir: tmp.dir, allowedHosts: [] as string[] });
  const load = (name: string) => loadLayer(path.join(tmp.dir, `${name}.yaml`), opts());
  /** Puts a fixture in place as the live source (a copy, then a rename: the way a source is replaced). */
  const install = async (from: string, to = 'live.tif') => {
    await copyFile(data(from), data(`${to}.tmp`));
    await rename(data(`${to}.tmp`), data(to));
  };

  before(async () => {
    tmp = await makeLayersDir();
    data = (name) => path.join(tmp.dir, 'data', name);
    await run('gdal_translate', ['-q', '-of', 'GTiff', '-outsize', String(SIZE), String(SIZE), '-r', 'bilinear', DEM, data('base.tif')]);
    await run('gdal_translate', [...COG, data('base.tif'), data('a.tif')]);
    await run('gdal_translate', ['-q', '-of', 'GTiff', data('a.tif'), data('plain.tif')]);
    info = JSON.parse(await run('gdalinfo', ['-json', data('a.tif')])) as GdalInfo;
    extent = bboxOf(info.wgs84Extent.coordinates[0]!);
    widths = [SIZE, ...info.bands[0]!.overviews.map((o) => o.size[0])];
    assert.equal(widths.length, 4);
    const [ox, px, , oy, , py] = info.geoTransform as number[];
    const ring = ([c0, r0, c1, r1]: Box) =>
      [
        [c0, r0],
        [c1, r0],
        [c1, r1],
        [c0, r1],
        [c0, r0],
      ].map(([c, r]) => [ox! + c! * px!, oy! + r! * py!]);
    const crs = { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::3402' } };
    await writeFile(
      data('burn.geojson'),
      JSON.stringify({
        type: 'FeatureCollection',
        crs,
        features: BURNS.map((b) => ({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [ring(b)] } })),
      }),
    );
    await copyFile(data('plain.tif'), data('patched.tif'));
    await run('gdal_rasterize', ['-q', '-burn', '3000', data('burn.geojson'), data('patched.tif')]);
    // An all-valid mask band (255), and one with the polygons masked out (0).
    await run('gdal_translate', ['-q', '-ot', 'Byte', '-a_nodata', 'none', '-scale', '0', '10000', '255', '255', data('plain.tif'), data('valid.tif')]);
    await copyFile(data('valid.tif'), data('holes.tif'));
    await run('gdal_rasterize', ['-q', '-burn', '0', data('burn.geojson'), data('holes.tif')]);
    await Promise.all([
      run('gdal_translate', [...COG, data('patched.tif'), data('b.tif')]),
      // The north-west quarter alone: another grid.
      run('gdal_translate', [...COG, '-srcwin', '0', '0', '650', '650', data('plain.tif'), data('crop.tif')]),
      // The same pixels with one more metadata item: the header grows, every block moves.
      run('gdal_translate', [...COG, '-mo', 'NOTE=rewritten', data('plain.tif'), data('moved.tif')]),
      run('gdalbuildvrt', ['-q', '-separate', data('valid.vrt'), data('plain.tif'), data('valid.tif')]),
      run('gdalbuildvrt', ['-q', '-separate', data('holes.vrt'), data('plain.tif'), data('holes.tif')]),
    ]);
    await Promise.all([
      run('gdal_translate', [...COG, '-b', '1', '-mask', '2', data('valid.vrt'), data('masked.tif')]),
      run('gdal_translate', [...COG, '-b', '1', '-mask', '2', data('holes.vrt'), data('holes-masked.tif')]),
    ]);
    await install('a.tif');
    const graph = `pipeline:
  nodes:
    dem: { op: read, source: dem, bands: [1], resampling: bilinear }
    relief: { op: colormap, in: [dem], stops: ${STOPS} }
    shade: { op: hillshade, in: [dem], zFactor: ZF }
    out: { op: blend, in: [relief, shade], mode: multiply }
  output: out
`;
    await tmp.write('hs.yaml', `sources:\n  dem: ./data/live.tif\n${graph.replace('ZF', '1.5')}`);
    await tmp.write('hs2.yaml', `sources:\n  dem: ./data/live.tif\n${graph.replace('ZF', '2')}`);
    await tmp.write(
      'cubic.yaml',
      `sources:\n  dem: ./data/live.tif\npipeline:\n  - read: { source: dem, bands: [1], resampling: cubic }\n  - colormap: { stops: ${STOPS} }\n`,
    );
    await tmp.write(
      'auto.yaml',
      `sources:\n  dem: ./data/live.tif\npipeline:\n  - read: { source: dem, bands: [1] }\n  - rescale: { from: auto }\n  - colormap: { name: viridis }\n`,
    );
    await tmp.write('mosaic.yaml', `sources:\n  dem: { mosaic: ./data/pieces/*.tif }\n${graph.replace('ZF', '1.5')}`);
    await mkdir(data('pieces'));
    for (const f of await readdir(path.join(SHIPPED_DATA, 'dem-pieces'))) await tmp.copyData(`dem-pieces/${f}`, `pieces/${f}`);
  });
  after(async () => {
    await tmp?.remove();
  });

  test('changedBlocks equals a byte comparison of the blocks geotiff.js lists, at every level and mask; a rewrite that moves every block changes none', async () => {
    const [a, b, moved, masked, holes] = await Promise.all(['a.tif', 'b.tif', 'moved.tif', 'masked.tif', 'holes-masked.tif'].map((f) => digestSource(data(f))));
    // The digest records the file's own block table.
    const levels = await tiffLevels(data('a.tif'));
    assert.deepEqual(
      a.levels.map((l) => [l.width, l.height, l.blockWidth, l.blockHeight, l.planes]),
      levels.map(({ image: i }) => [i.width, i.height, i.tileWidth, i.tileHeight, 1]),
    );
    a.levels.forEach((l, k) => {
      assert.deepEqual(l.offsets, levels[k]!.image.offsets, `offsets of level ${k}`);
      assert.deepEqual(l.counts, levels[k]!.image.counts, `byte counts of level ${k}`);
      assert.equal(l.hashes.length, 16 * l.offsets.length);
    });

    const patched = await bytewiseChanges(data('a.tif'), data('b.tif'));
    assert.deepEqual(asKeys(changedBlocks(a, b)), patched.rects);
    // What the burns reach, worked out by hand: 500-530 crosses column 512 at level 0 (250-265 crosses 256 at level 1); the partial last block column.
    assert.deepEqual(patched.rects[0], ['1280,0,1300,256', '256,512,512,768', '512,512,768,768']);
    assert.ok(patched.moved > 0, 'unchanged blocks moved in the patched file: a comparison by offset would count them');

    const rewrite = await bytewiseChanges(data('a.tif'), data('moved.tif'));
    assert.ok(rewrite.rects.every((r) => r.length === 0));
    assert.equal(rewrite.moved, rewrite.blocks, 'every block moved');
    assert.deepEqual(asKeys(changedBlocks(a, moved)), [[], [], [], []]);
    assert.equal(structureChange(a, moved), null);

    // A mask that changes where the data does not: its blocks count for their pixels.
    const mask = await bytewiseChanges(data('masked.tif'), data('holes-masked.tif'));
    assert.ok(
      masked.levels.every((l) => l.mask),
      'every level has its mask',
    );
    assert.deepEqual(asKeys(changedBlocks(masked, holes)), mask.rects);
    assert.deepEqual(mask.rects[0], patched.rects[0]);
    const dataOnly = masked.levels[0]!.hashes === holes.levels[0]!.hashes;
    assert.ok(dataOnly, 'the full-resolution data blocks are the same: the change is in the mask alone');

    // A mask added, a header moved: compared as a whole.
    assert.equal(changedBlocks(a, masked), 'all');
    assert.match(structureChange(a, masked)!, /level 0 has a mask now/);
    const shifted = structuredClone(b);
    shifted.header = '0'.repeat(16);
    assert.equal(changedBlocks(a, shifted), 'all');
  });

  test("every block's digest is the SHA-256 of its bytes in the file, for a file many times the digest's read buffer and blocks larger than it", async () => {
    // Uncompressed Float32 in blocks of 1040² (4.3 MB, past the 4 MiB the digest reads at once) and overviews of one smaller block each: 23 MB.
    const big = data('big.tif');
    await run('gdal_translate', ['-q', '-of', 'COG', '-co', 'BLOCKSIZE=1040', '-co', 'COMPRESS=NONE', '-outsize', '2080', '2080', DEM, big]);
    const digest = await digestSource(big);
    const levels = await tiffLevels(big);
    assert.equal(digest.levels.length, levels.length);
    const fd = openSync(big, 'r');
    let blocks = 0;
    try {
      levels.forEach(({ image }, k) => {
        const expected = image.offsets.map((offset, i) =>
          createHash('sha256')
            .update(readBlock(fd, offset, image.counts[i]!))
            .digest('hex')
            .slice(0, 16),
        );
        assert.equal(digest.levels[k]!.hashes, expected.join(''), `level ${k}`);
        blocks += expected.length;
      });
    } finally {
      closeSync(fd);
    }
    assert.ok(levels[0]!.image.counts.every((c) => c > 4 * 1024 * 1024) && blocks >= 6, `${blocks} blocks, the full resolution's each past 4 MiB`);
  });

  test("cells: every block's cells are the CRC-32 and Adler-32 of its pixels as GDAL reads them, at every level, with libdeflate and without", async () => {
    const cog = await Cog.open(data('a.tif'));
    try {
      for (const [k, lv] of cog.meta.levels.entries()) {
        const raster = await gdalLevel(data('a.tif'), k);
        assert.deepEqual([raster.width, raster.height], [lv.image.width, lv.image.height]);
        const across = Math.ceil(lv.image.width / lv.image.blockWidth);
        const n = across * Math.ceil(lv.image.height / lv.image.blockHeight);
        for (let i = 0; i < n; i++) {
          const expected = gdalCells(raster, lv.image.blockWidth, i % across, Math.floor(i / across));
          assert.equal(await cog.blockCells(k, false, i), expected, `level ${k}, block ${i}`);
        }
      }
      // The JavaScript checksums give the same digits (KERNELS=reference; a manifest outlives the run's settings).
      const block = await cog.readBlock(0, 0, 5, 1);
      const place = { imageWidth: 1300, imageHeight: 1300, blockWidth: 256, blockHeight: 256, bx: 5, by: 1, rows: 256, samples: 1 };
      const fast = cellHashes(block, place);
      useKernels('reference');
      try {
        assert.equal(cellHashes(block, place), fast);
      } finally {
        useKernels('fast');
      }
    } finally {
      await cog.close();
    }
    // A block shorter than its place says has no cells (its changes are told block by block); never an error.
    const place = { imageWidth: 1300, imageHeight: 1300, blockWidth: 256, blockHeight: 256, bx: 0, by: 0, rows: 256, samples: 1 };
    assert.equal(cellHashes(new Float32Array(256 * 255), place), undefined);
    assert.equal(cellHashes(new Float32Array(256 * 256), place)?.length, 16 * 16);
  });

  test('cells: a changed block is compared cell by cell, and exactly the cells whose pixels GDAL reads differently are changed', async () => {
    // The earlier digest with every block's cells as GDAL's pixels give them; the later one
    // follows it, decoding only the blocks whose bytes changed.
    const before = await digestSource(data('a.tif'));
    const rasters = await Promise.all(before.levels.map((_, k) => Promise.all([gdalLevel(data('a.tif'), k), gdalLevel(data('b.tif'), k)])));
    before.levels.forEach((lv, k) => {
      const across = Math.ceil(lv.width / lv.blockWidth);
      const hashes = lv.offsets.map((_, i) => gdalCells(rasters[k]![0], lv.blockWidth, i % across, Math.floor(i / across)));
      lv.cells = { across: 4, down: 4, hashes };
    });
    const after = await digestSource(data('b.tif'), before);
    const blocks = await bytewiseChanges(data('a.tif'), data('b.tif'));
    const rects = changedBlocks(before, after);
    assert.notEqual(rects, 'all');
    let cells = 0;
    before.levels.forEach((lv, k) => {
      // Cells of 64 pixels (a quarter of a 256-pixel block), on one grid across the level.
      const side = lv.blockWidth / 4;
      const [a, b] = rasters[k]!;
      const expected = new Set<string>();
      for (let y = 0; y < a.height; y++)
        for (let x = 0; x < a.width; x++) {
          const at = (y * a.width + x) * a.pixelBytes;
          if (!a.bytes.subarray(at, at + a.pixelBytes).equals(b.bytes.subarray(at, at + b.pixelBytes)))
            expected.add(`${Math.floor(x / side)},${Math.floor(y / side)}`);
        }
      const got = new Set<string>();
      for (const [x0, y0, x1, y1] of (rects as PixelRect[][])[k]!)
        for (let cy = Math.floor(y0 / side); cy * side < y1; cy++) for (let cx = Math.floor(x0 / side); cx * side < x1; cx++) got.add(`${cx},${cy}`);
      assert.deepEqual([...got].sort(), [...expected].sort(), `level ${k}: the changed cells`);
      // Every changed cell lies in a changed block, and the cells cover less than the blocks.
      const blockOf = (key: string) => key.split(',').map((c) => Math.floor(Number(c) / 4) * lv.blockWidth);
      const changedBlocksAt = new Set(blocks.rects[k]!.map((r) => r.split(',').slice(0, 2).join()));
      for (const key of got) assert.ok(changedBlocksAt.has(blockOf(key).join()), `level ${k}: cell ${key} in a changed block`);
      cells += got.size;
    });
    assert.ok(cells > 0, 'the burns changed some cells');
    const area = (levels: PixelRect[][]) => levels[0]!.reduce((n, [x0, y0, x1, y1]) => n + (x1 - x0) * (y1 - y0), 0);
    const blockArea = blocks.rects[0]!.reduce((n, r) => {
      const [x0, y0, x1, y1] = r.split(',').map(Number) as Box;
      return n + (x1 - x0) * (y1 - y0);
    }, 0);
    assert.ok(area(rects as PixelRect[][]) < blockArea / 4, `level 0: ${area(rects as PixelRect[][])} pixels of cells, ${blockArea} of blocks`);

    // Without the earlier cells (or with another block's), a changed block counts whole again.
    const unknown = structuredClone(before);
    for (const lv of unknown.levels) lv.cells!.hashes = lv.cells!.hashes.map(() => '');
    assert.deepEqual(asKeys(changedBlocks(unknown, await digestSource(data('b.tif'), unknown))), blocks.rects);
    // A rewrite with other bytes and the same pixels (another DEFLATE level): every block differs, no cell does.
    await run('gdal_translate', [...COG, '-co', 'LEVEL=1', data('plain.tif'), data('relevel.tif')]);
    const same = await digestSource(data('relevel.tif'), before);
    assert.equal(structureChange(before, same), null);
    assert.ok(
      same.levels.every((lv, k) => lv.offsets.every((_, i) => lv.hashes.slice(i * 16, i * 16 + 16) !== before.levels[k]!.hashes.slice(i * 16, i * 16 + 16))),
      'every block has other bytes',
    );
    assert.deepEqual(asKeys(changedBlocks(before, same)), [[], [], [], []]);
  });

  test('staleTiles (hillshade, bilinear; cubic): tiles over a changed block are stale, tiles a tile away from all are not; the planner decides', async (t) => {
    const names = ['hs', 'cubic'];
    await install('a.tif');
    const earlier = await Promise.all(names.map(load));
    const before = await Promise.all(earlier.map((l) => lineageOf(l)));
    await install('b.tif');
    const layers = await Promise.all(names.map(load));
    const now = await Promise.all(layers.map((l) => lineageOf(l)));
    assert.notEqual(layers[0]!.version, earlier[0]!.version);
    assert.throws(() => staleTiles(earlier[0]!, before[0]!, now[0]!), /lineageOf\(layer\)/);

    const changes = await bytewiseChanges(data('a.tif'), data('b.tif'));
    const rects = changes.rects.map((l) => l.map((k) => k.split(',').map(Number) as Box));
    const flat = rects.flatMap((l, level) => l.map((rect) => ({ level, rect })));
    const shapes = await footprints(info, widths, flat);
    const byLevel = (level: number) => shapes.filter((_, i) => flat[i]!.level === level);
    const tiles = ZOOMS.flatMap((z) => tilesOver(extent, z, 2));
    // The level GDAL reads at each zoom (-ovr AUTO), at the DEM's centre and the same at its four corners: every tile between reads it too.
    const cache = path.join(tmp.root, 'gdal');
    const ring0 = info.wgs84Extent.coordinates[0]!.slice(0, 4);
    const centre: Pt = [(extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2];
    const levelAt = new Map<number, number>();
    for (const z of ZOOMS) {
      const at = [centre, ...ring0].map(([lon, lat]) => {
        const [x, y] = pointToTile(lon, lat, z);
        return gdalOverviewChoice(data('a.tif'), tileBounds({ z, x, y }), 256, widths, cache).then((c) => c.level);
      });
      const levels = await Promise.all(at);
      assert.ok(
        levels.every((l) => l === levels[0]),
        `z${z}: GDAL reads levels ${levels.join(', ')} across the DEM`,
      );
      levelAt.set(z, levels[0]!);
    }

    for (const [i, layer] of layers.entries()) {
      const stale = staleTiles(layer, before[i]!, now[i]!);
      assert.equal(stale.all, false, stale.reasons.join('; '));
      const counts = rects.map((l, k) => `${l.length} at level ${k}`).join(', ');
      assert.ok(stale.reasons.includes(`source 'dem': ${flat.length} block(s) changed (${counts}): the tiles that read them`), stale.reasons.join('; '));
      const t0 = performance.now();
      const answers = tiles.map((tile) => stale.isStale(tile));
      const ms = performance.now() - t0;
      const staleSet = tiles.filter((_, k) => answers[k]);
      // The prefilter never changes the answer: the planner's, for every tile.
      const exact = tiles.map((tile) => plannedStale(layer, tile, rects));
      assert.deepEqual(tiles.filter((_, k) => answers[k] !== exact[k]).map(tileName), [], 'isStale equals the planner on every tile');

      const report: string[] = [];
      for (const z of ZOOMS) {
        const at = tiles.filter((tile) => tile.z === z);
        const level = levelAt.get(z)!;
        const over = at.map((tile) => ({
          tile,
          level,
          meets: byLevel(level).some((s) => convexMeetsBox(s, tileSquare(tile))),
          near: byLevel(level).some((s) => convexMeetsBox(s, tileSquare(tile, 1))),
        }));
        for (const o of over) {
          const isStale = staleSet.includes(o.tile);
          if (o.meets) assert.ok(isStale, `${names[i]} ${tileName(o.tile)} lies over a changed block of level ${o.level}, which GDAL reads, and is not stale`);
          if (isStale) assert.ok(o.near, `${names[i]} ${tileName(o.tile)} is stale, more than a tile from every changed block of level ${o.level} (GDAL's)`);
        }
        report.push(
          `z${z} (level ${level}): ${at.filter((tile) => staleSet.includes(tile)).length}/${at.length} stale, ${over.filter((o) => o.meets).length} over a change`,
        );
      }
      const lowZ = staleSet.filter((tile) => tile.z === 13).length;
      assert.ok(lowZ > 0 && lowZ < tiles.filter((tile) => tile.z === 13).length / 4, `z13: ${lowZ} stale`);
      t.diagnostic(`${names[i]}: ${report.join(', ')}; ${tiles.length} tiles answered in ${ms.toFixed(0)} ms`);
    }
  });

  test('staleTiles against gdalwarp: a tile GDAL draws differently from the two files is stale, one that is not stale GDAL draws the same', async (t) => {
    await install('a.tif');
    const before = await lineageOf(await load('hs'));
    await install('b.tif');
    const layer = await load('hs');
    const stale = staleTiles(layer, before, await lineageOf(layer));
    // Around the first burn at z12 (full resolution) and z10 (level 1), in the hillshade's grid: a pixel of buffer.
    const [ox, px, , oy, , py] = info.geoTransform as number[];
    const lonLat = (
      await run(
        'gdaltransform',
        ['-s_srs', info.coordinateSystem.wkt, '-t_srs', '+proj=longlat +datum=WGS84 +no_defs', '-output_xy'],
        `${ox! + 515 * px!} ${oy! + 710 * py!}\n`,
      )
    )
      .trim()
      .split(/\s+/)
      .map(Number);
    const [lon, lat] = lonLat as [number, number];
    assert.ok(lon < -117 && lat > 53, `${lon}, ${lat}`);
    const tiles: Tile[] = [];
    for (const [z, r] of [
      [12, 2],
      [10, 1],
    ] as const) {
      const [x, y] = pointToTile(lon, lat, z);
      for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) tiles.push({ z, x: x + dx, y: y + dy });
    }
    const cache = path.join(tmp.root, 'warp');
    let differing = 0;
    await Promise.all(
      tiles.map(async (tile) => {
        const [x0, y0, x1, y1] = tileBounds(tile);
        const res = (x1 - x0) / 256;
        const bounds = [x0 - res, y0 - res, x1 + res, y1 + res];
        const [wa, wb] = await Promise.all(['a.tif', 'b.tif'].map((f) => slots(() => warpTile(data(f), bounds, 258, 'bilinear', cache))));
        let differ = 0;
        for (let k = 0; k < wa!.values.length; k++) {
          const va = wa!.values[k]!,
            vb = wb!.values[k]!;
          if (wa!.alpha[k] !== wb!.alpha[k] || (va !== vb && !(Number.isNaN(va) && Number.isNaN(vb)))) differ++;
        }
        if (differ) differing++;
        if (differ) assert.ok(stale.isStale(tile), `${tileName(tile)}: GDAL draws ${differ} pixels differently, and it is not stale`);
        if (!stale.isStale(tile)) assert.equal(differ, 0, `${tileName(tile)} is carried over`);
      }),
    );
    assert.ok(differing >= 2, `${differing} tiles differ in GDAL`);
    t.diagnostic(`${tiles.length} tiles warped, ${differing} drawn differently by GDAL, ${tiles.filter((x) => stale.isStale(x)).length} stale`);
  });

  test('a changed layer file, and rescale from: auto over a changed source, make every tile stale; a rewrite with the same blocks none', async () => {
    await install('a.tif');
    const [hs, auto] = await Promise.all([load('hs'), load('auto')]);
    const [hsBefore, autoBefore] = await Promise.all([lineageOf(hs), lineageOf(auto)]);
    // Another hillshade zFactor, as another layer file would be: hs2 is hs with zFactor 2.
    const changed = await load('hs2');
    const cfg = staleTiles(changed, { ...hsBefore }, await lineageOf(changed));
    assert.equal(cfg.all, true);
    assert.match(cfg.reasons[0]!, /configuration changed \(config hash [0-9a-f]{12}, now [0-9a-f]{12}\): every tile/);
    assert.equal(cfg.isStale({ z: 3, x: 0, y: 0 }), true);

    await install('moved.tif');
    const movedAuto = await load('auto');
    const same = staleTiles(movedAuto, autoBefore, await lineageOf(movedAuto));
    assert.equal(same.all, false);
    assert.match(same.reasons.join('\n'), /rewritten .* every block the same: no tile/);
    assert.ok(ZOOMS.flatMap((z) => tilesOver(extent, z, 0)).every((tile) => !same.isStale(tile)));

    await install('b.tif');
    const patchedAuto = await load('auto');
    const all = staleTiles(patchedAuto, autoBefore, await lineageOf(patchedAuto));
    assert.equal(all.all, true);
    assert.match(all.reasons[0]!, /source 'dem' changed and rescale from: auto takes its range from the whole source/);

    // A source added to the layer file.
    await tmp.write('hs-plus.yaml', (await readFile(path.join(tmp.dir, 'hs.yaml'), 'utf8')).replace('sources:\n', 'sources:\n  other: ./data/a.tif\n'));
    const added = await load('hs-plus');
    const plus = staleTiles(added, hsBefore, await lineageOf(added));
    assert.equal(plus.all, true);
  });

  test('a source that cannot be compared block by block (another grid; no digest): the tiles that read it as it was or as it is', async () => {
    await install('a.tif');
    const before = await lineageOf(await load('hs'));
    await install('crop.tif');
    const cropped = await load('hs');
    const crop = staleTiles(cropped, before, await lineageOf(cropped));
    assert.equal(crop.all, false);
    assert.match(crop.reasons.join('\n'), /source 'dem': level 0 is 650x650 in 256x256 blocks of 1 plane\(s\), it was 1300x1300 .*: every tile that reads it/);

    await install('b.tif');
    const patched = await load('hs');
    const blind = structuredClone(before);
    delete (blind.sources[0] as FileLineage).digest;
    const undigested = staleTiles(patched, blind, await lineageOf(patched));
    assert.match(undigested.reasons.join('\n'), /its version changed .* and the earlier run has no block digest of it: every tile that reads it/);

    // The DEM's footprint as GDAL gives it (wgs84Extent), in Web Mercator.
    const outline = info.wgs84Extent.coordinates[0]!.slice(0, 4).map(merc);
    for (const z of [9, 10, 11, 12]) {
      for (const tile of tilesOver(extent, z, 2)) {
        const over = convexMeetsBox(outline, tileSquare(tile));
        const near = convexMeetsBox(outline, tileSquare(tile, 1));
        for (const [what, stale] of [
          ['cropped', crop],
          ['undigested', undigested],
        ] as const) {
          // The cropped file still covers its north-west quarter: every tile over the old footprint read something that changed.
          if (over) assert.ok(stale.isStale(tile), `${what}: ${tileName(tile)} lies over the DEM and is not stale`);
          if (!near) assert.equal(stale.isStale(tile), false, `${what}: ${tileName(tile)} is a tile away from the DEM and stale`);
        }
      }
    }
  });

  test('a mosaic member replaced or removed: only the tiles that look it up are stale', async (t) => {
    const pieces = (name: string) => data(`pieces/${name}`);
    const layer0 = await load('mosaic');
    const before = await lineageOf(layer0);
    assert.equal(before.sources[0]!.kind, 'mosaic');

    // r1c2 re-made with a polygon burnt in.
    const member = 'srtm_jasper_r1c2.tif';
    const pinfo = JSON.parse(await run('gdalinfo', ['-json', pieces(member)])) as GdalInfo;
    const [ox, px, , oy, , py] = pinfo.geoTransform as number[];
    const ring = [
      [40, 40],
      [60, 40],
      [60, 60],
      [40, 60],
      [40, 40],
    ].map(([c, r]) => [ox! + c! * px!, oy! + r! * py!]);
    const crs = { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::3402' } };
    await writeFile(
      data('piece.geojson'),
      JSON.stringify({ type: 'FeatureCollection', crs, features: [{ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [ring] } }] }),
    );
    await run('gdal_translate', ['-q', '-of', 'GTiff', pieces(member), data('piece.tif')]);
    await run('gdal_rasterize', ['-q', '-burn', '3000', data('piece.geojson'), data('piece.tif')]);
    await run('gdal_translate', [
      '-q',
      '-of',
      'COG',
      '-co',
      'BLOCKSIZE=64',
      '-co',
      'COMPRESS=DEFLATE',
      '-co',
      'PREDICTOR=YES',
      data('piece.tif'),
      data('piece-cog.tif'),
    ]);
    await rename(data('piece-cog.tif'), pieces(member));

    const layer1 = await load('mosaic');
    const mid = await lineageOf(layer1);
    const replaced = staleTiles(layer1, before, mid);
    assert.equal(replaced.all, false);
    assert.match(replaced.reasons.join('\n'), /mosaic 'dem': 0 member\(s\) added, 0 removed, 1 replaced/);

    // Removing r3c3.
    const gone = 'srtm_jasper_r3c3.tif';
    const ginfo = JSON.parse(await run('gdalinfo', ['-json', pieces(gone)])) as GdalInfo;
    await rm(pieces(gone));
    const layer2 = await load('mosaic');
    const removed = staleTiles(layer2, mid, await lineageOf(layer2));
    assert.match(removed.reasons.join('\n'), /0 member\(s\) added, 1 removed, 0 replaced/);

    const tiles = ZOOMS.flatMap((z) => tilesOver(extent, z, 1));
    for (const [what, stale, pinf, layer, name] of [
      ['replaced', replaced, pinfo, layer1, member],
      ['removed', removed, ginfo, layer0, gone],
    ] as const) {
      // The member's outline (100x100 pixels of 100 m) by GDAL; widened by the 2 pixels a kernel reaches.
      const [exact, wide] = await Promise.all([
        footprints(pinf, [100], [{ level: 0, rect: [0, 0, 100, 100] }], 0, 1),
        footprints(pinf, [100], [{ level: 0, rect: [0, 0, 100, 100] }], 2, 16),
      ]);
      const reach = bboxOf(wide[0]!);
      const index = layer.mosaics.get('dem')!.index;
      const k = layer.mosaics.get('dem')!.members.findIndex((m) => m.location.endsWith(name));
      const counts: string[] = [];
      for (const z of ZOOMS) {
        const at = tiles.filter((tile) => tile.z === z);
        let n = 0;
        for (const tile of at) {
          const isStale = stale.isStale(tile);
          n += isStale ? 1 : 0;
          if (convexMeetsBox(exact[0]!, tileSquare(tile))) assert.ok(isStale, `${what}: ${tileName(tile)} lies over ${name} and is not stale`);
          if (index.forTile(tile, 256, 1).includes(k)) assert.ok(isStale, `${what}: ${tileName(tile)} reads ${name} and is not stale`);
          // The tile's square as the lookup widens it: the buffer (1) and 4 pixels, and one more for rounding.
          const [x0, y0, x1, y1] = tileSquare(tile);
          const pad = ((1 + 4 + 1) * (x1 - x0)) / 256;
          if (isStale) assert.ok(boxMeetsBox([x0 - pad, y0 - pad, x1 + pad, y1 + pad], reach), `${what}: ${tileName(tile)} is stale, away from ${name}`);
        }
        counts.push(`z${z} ${n}/${at.length}`);
        if (z === 13) assert.ok(n > 0 && n < at.length / 4, `${what}, z13: ${n} of ${at.length} stale`);
      }
      t.diagnostic(`${what} ${name}: stale ${counts.join(', ')}`);
    }
  });

  test('a source with the version of the earlier lineage keeps its digest; a replaced one is read again', async () => {
    await install('a.tif');
    const layer = await load('hs');
    const read = await lineageOf(layer);
    // A digest the file does not have: kept only if the file is not read again.
    const marked = structuredClone(read);
    const level = (marked.sources[0] as FileLineage).digest!.levels[0]!;
    level.hashes = `${'f'.repeat(16)}${level.hashes.slice(16)}`;
    assert.notEqual(level.hashes, (read.sources[0] as FileLineage).digest!.levels[0]!.hashes);
    assert.deepEqual(await lineageOf(layer, marked), marked, 'the same ref and version: the earlier digest stands');

    const renamed = structuredClone(marked);
    renamed.sources[0]!.ref = './elsewhere.tif';
    assert.deepEqual(await lineageOf(layer, renamed), read, 'another ref: the file is read');

    await install('b.tif');
    const replaced = await load('hs');
    assert.notEqual(replaced.sources[0]!.version, layer.sources[0]!.version);
    const now = await lineageOf(replaced, marked);
    assert.deepEqual(now, await lineageOf(replaced), 'a new version: the file is read');
    await install('a.tif');
  });

  test('a malformed lineage is refused with a message naming the problem', async () => {
    await install('a.tif');
    const layer = await load('hs');
    const good = await lineageOf(layer);
    const json = JSON.parse(JSON.stringify(good)) as ManifestLineage;
    assert.deepEqual(parseLineage(json), good, 'a lineage survives JSON');
    const mosaic = await lineageOf(await load('mosaic'));
    assert.deepEqual(parseLineage(JSON.parse(JSON.stringify(mosaic))), mosaic);
    await install('masked.tif');
    const withMasks = await lineageOf(await load('hs'));
    assert.ok((withMasks.sources[0] as FileLineage).digest!.levels.every((l) => l.mask));
    assert.deepEqual(parseLineage(JSON.parse(JSON.stringify(withMasks))), withMasks);
    await install('a.tif');

    const file = (l: ManifestLineage) => l.sources[0] as FileLineage;
    const broken = (change: (l: ManifestLineage) => void): unknown => {
      const copy = structuredClone(json);
      change(copy);
      return copy;
    };
    const cases: [unknown, RegExp][] = [
      [undefined, /: no lineage/],
      ['lineage', /malformed lineage: .*expected object/i],
      [broken((l) => ((l as { format: number }).format = 2)), /format: expected lineage format 1/],
      [
        broken((l) => (file(l).digest!.levels[0]!.hashes = file(l).digest!.levels[0]!.hashes.slice(0, -16))),
        /sources\.0\.digest\.levels\.0\.hashes: \d+ hex digits for 36 blocks/,
      ],
      [broken((l) => file(l).digest!.levels[1]!.offsets.pop()), /sources\.0\.digest\.levels\.1\.offsets: 8 offsets for 9 blocks/],
      [broken((l) => (file(l).grid.proj4 = '+proj=nonsense')), /sources\.0\.grid\.proj4: not a CRS definition proj4 reads/],
      [broken((l) => (file(l).grid.geoTransform = [0, 0, 0, 0, 0, 0])), /sources\.0\.grid\.geoTransform: a degenerate geotransform/],
      [broken((l) => file(l).digest!.levels.pop()), /sources\.0\.digest\.levels: levels .* disagree with the grid's/],
      [broken((l) => ((l.sources[0] as { kind: string }).kind = 'ftp')), /sources\.0\.kind: Invalid discriminator value/],
      [broken((l) => (l.sources = [])), /sources: Too small/],
      [broken((l) => (file(l).grid.levels = [])), /sources\.0\.grid\.levels: Too small/],
      [broken((l) => ((file(l).digest!.levels[0] as unknown as { extra: number }).extra = 1)), /sources\.0\.digest\.levels\.0: Unrecognized key: "extra"/],
      [broken((l) => (l.configHash = 'xyz')), /configHash: expected 64 hex digits/],
      [
        broken((l) => (file(l).digest!.levels[0]!.cells = { across: 4, down: 4, hashes: ['0'.repeat(256)] })),
        /sources\.0\.digest\.levels\.0\.cells: cells of 1 blocks, not 36/,
      ],
      [
        broken((l) => (file(l).digest!.levels[1]!.cells = { across: 4, down: 4, hashes: new Array<string>(9).fill('').fill('ab', 2, 3) })),
        /sources\.0\.digest\.levels\.1\.cells: a block's cells are 256 hex digits \(or none\)/,
      ],
      [
        broken((l) => (file(l).digest!.levels[1]!.cells = { across: 2, down: 4, hashes: new Array<string>(9).fill('') })),
        /sources\.0\.digest\.levels\.1\.cells: 2x4 cells a block, not the 4x4 of 256x256 blocks/,
      ],
      [
        (() => {
          const m = structuredClone(mosaic);
          (m.sources[0] as { members: { bbox: number[] }[] }).members[3]!.bbox = [1, 2, 3];
          return m;
        })(),
        /sources\.0\.members\.3\.bbox: one or two boxes/,
      ],
    ];
    for (const [value, message] of cases) {
      assert.throws(() => parseLineage(value), message);
      // staleTiles checks what it is given: an Error with the same message, never a TypeError.
      assert.throws(
        () => staleTiles(layer, value as ManifestLineage, good),
        (err: Error) => err.constructor === Error && message.test(err.message),
      );
    }
  });
});
