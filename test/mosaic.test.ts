/**
 * Mosaic sources end to end (SPEC §3-4, §6-7): real server processes over temporary layers
 * directories holding the Jasper DEM cut 4x4 (layers/data/dem-pieces) and files GDAL writes at
 * test time. Per-member versions in ETags and cache keys (a replaced, added or removed member
 * changes the tiles under it and no others; after a recheck and after SIGHUP), the member limit
 * (MOSAIC_MAX_FILES) and the zoom its 400 names, GET /layers/{layer} and
 * /layers/{layer}/members, a STAC ItemCollection against the glob of the same files, hostile
 * and bad mosaic definitions, and `tilegraph seed` over a mosaic.
 *
 * Every expectation about which tile lies over which member is worked out here from
 * `gdalinfo -json` (each piece's WGS84 corners) with plain geometry in Web Mercator, never
 * from tilegraph's own index. Tiles within a margin of a footprint's edge (where the kernel
 * reach and the tile margin make either answer right) are left out of the exact checks.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, rename, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { xyzBounds } from './helpers/gdal.js';
import {
  getJson,
  lonLatToTile,
  makeLayersDir,
  request,
  SHIPPED_DATA,
  startServer,
  tileLonLatBounds,
  tilePath,
  until,
  type TempLayers,
  type Tile,
} from './helpers/http.js';
import { CLI, gdal, toolsMissing } from './helpers/layers.js';
import { startServerProcess, type ServerProcess } from './helpers/processes.js';

// ---------------------------------------------------------------------------------------------
// The pieces, as GDAL describes them

type Pt = [number, number];
type Rect = [number, number, number, number];

const PIECES_DIR = path.join(SHIPPED_DATA, 'dem-pieces');
const pieceName = (r: number, c: number) => `srtm_jasper_r${r}c${c}.tif`;
const ALL_PIECES = [0, 1, 2, 3].flatMap((r) => [0, 1, 2, 3].map((c) => pieceName(r, c))).sort();

interface Piece {
  name: string;
  /** WGS84 corners (gdalinfo's wgs84Extent, closed ring dropped). */
  lonlat: Pt[];
  /** The same corners in Web Mercator. */
  merc: Pt[];
  /** WGS84 [w, s, e, n] of the corners. */
  bbox: Rect;
  centre: Pt;
  /** Corners by role, in WGS84. */
  ul: Pt;
  ur: Pt;
  ll: Pt;
  lr: Pt;
  epsg: number;
  bands: number;
}

const R = 6378137;
const merc = ([lon, lat]: Pt): Pt => [(R * lon * Math.PI) / 180, R * Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360))];

function describePiece(file: string): Piece {
  const info = JSON.parse(gdal('gdalinfo', ['-json', file])) as {
    wgs84Extent: { coordinates: Pt[][] };
    stac: { 'proj:epsg': number };
    bands: unknown[];
  };
  const lonlat = info.wgs84Extent.coordinates[0]!.slice(0, 4);
  const lons = lonlat.map((p) => p[0]),
    lats = lonlat.map((p) => p[1]);
  const bbox: Rect = [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
  // Corners by where they lie, in units of the piece's extent (the grid is turned a little).
  const score = (p: Pt, sx: number, sy: number) => (sx * (p[0] - bbox[0])) / (bbox[2] - bbox[0]) + (sy * (p[1] - bbox[1])) / (bbox[3] - bbox[1]);
  const best = (sx: number, sy: number) => lonlat.reduce((a, b) => (score(b, sx, sy) > score(a, sx, sy) ? b : a));
  return {
    name: path.basename(file),
    lonlat,
    merc: lonlat.map(merc),
    bbox,
    centre: [lons.reduce((a, b) => a + b) / 4, lats.reduce((a, b) => a + b) / 4],
    ul: best(-1, 1),
    ur: best(1, 1),
    ll: best(-1, -1),
    lr: best(1, -1),
    epsg: info.stac['proj:epsg'],
    bands: info.bands.length,
  };
}

/** Separating axes: does a convex polygon meet a rectangle (closed)? An inverted rectangle meets nothing. */
function meets(poly: readonly Pt[], r: Rect): boolean {
  if (r[0] > r[2] || r[1] > r[3]) return false;
  const box: Pt[] = [
    [r[0], r[1]],
    [r[2], r[1]],
    [r[2], r[3]],
    [r[0], r[3]],
  ];
  const axes: Pt[] = [[1, 0], [0, 1], ...poly.map((p, i): Pt => [-(poly[(i + 1) % poly.length]![1] - p[1]), poly[(i + 1) % poly.length]![0] - p[0]])];
  for (const [ax, ay] of axes) {
    const proj = (pts: readonly Pt[]) => pts.map(([x, y]) => x * ax + y * ay);
    const a = proj(poly),
      b = proj(box);
    if (Math.max(...a) < Math.min(...b) || Math.max(...b) < Math.min(...a)) return false;
  }
  return true;
}

const grow = (r: Rect, d: number): Rect => [r[0] - d, r[1] - d, r[2] + d, r[3] + d];
const tileRect = ([z, x, y]: Tile): Rect => xyzBounds(z, x, y);
/** Web Mercator metres: far beyond a 2-pixel kernel reach plus the tile margin at the zooms used. */
const FAR = 2000;
/** A member reaching this far into a tile draws a visible part of it. */
const DEEP = 1000;

/** The tile meets the piece's footprint. */
const under = (t: Tile, p: Piece) => meets(p.merc, tileRect(t));
/** The piece reaches DEEP metres into the tile. */
const deepUnder = (t: Tile, p: Piece) => meets(p.merc, grow(tileRect(t), -DEEP));
/** The tile lies FAR metres or more from the piece. */
const farFrom = (t: Tile, p: Piece) => !meets(p.merc, grow(tileRect(t), FAR));

/** Every tile at zoom z meeting a WGS84 box. */
function tilesOver(b: Rect, z: number): Tile[] {
  const [, x0, y0] = lonLatToTile(b[0], b[3], z);
  const [, x1, y1] = lonLatToTile(b[2], b[1], z);
  const out: Tile[] = [];
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) out.push([z, x, y]);
  return out;
}

const union = (ps: readonly Piece[]): Rect => [
  Math.min(...ps.map((p) => p.bbox[0])),
  Math.min(...ps.map((p) => p.bbox[1])),
  Math.max(...ps.map((p) => p.bbox[2])),
  Math.max(...ps.map((p) => p.bbox[3])),
];
const key = (t: Tile) => t.join('/');

// ---------------------------------------------------------------------------------------------
// HTTP

interface Got {
  status: number;
  etag: string;
  body: Buffer;
  cache: string;
  hash: string;
}

async function getTile(base: string, layer: string, t: Tile): Promise<Got> {
  const a = await request(base, tilePath(layer, t));
  return {
    status: a.status,
    etag: String(a.headers.etag ?? ''),
    body: a.body,
    cache: String(a.headers['x-cache'] ?? ''),
    hash: String(a.headers['x-layer-hash'] ?? ''),
  };
}

/** Tiles fetched eight at a time, by `z/x/y`. */
async function getTiles(base: string, layer: string, tiles: readonly Tile[]): Promise<Map<string, Got>> {
  const out = new Map<string, Got>();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < tiles.length) {
        const t = tiles[next++]!;
        out.set(key(t), await getTile(base, layer, t));
      }
    }),
  );
  return out;
}

interface LayerList {
  layers: { name: string; hash: string; version: string }[];
  refused: { file: string; error: string }[];
}
interface MemberList {
  layer: string;
  bbox: Rect | null;
  count: number;
  truncated: boolean;
  members: { source: string; ref: string; version: string; bounds: Rect; crs: { name: string; epsg: number | null }; width: number; height: number }[];
}
interface MosaicSummary {
  method: string;
  members: number;
  bounds: Rect;
  crss: { name: string; epsg: number | null; members: number }[];
  footprint: { type: string; coordinates: Pt[][][] };
}

const layerList = async (base: string) => (await getJson<LayerList>(base, '/layers')).json;
const members = async (base: string, layer: string, bbox?: Rect) =>
  (await getJson<MemberList>(base, `/layers/${layer}/members${bbox ? `?bbox=${bbox.join(',')}` : ''}`)).json;

// ---------------------------------------------------------------------------------------------
// Layer files

const PIPELINE = `pipeline:
  - read: { source: dem, bands: [1], resampling: bilinear }
  - colormap:
      stops:
        - [950, "#2b6b3a"]
        - [1200, "#6f9a4a"]
        - [1500, "#d8c98a"]
        - [1800, "#b5834f"]
        - [2100, "#8c6a5a"]
        - [2400, "#d9d4d0"]
        - [2600, "#ffffff"]
`;
const layerYaml = (source: string, { minzoom = 6, maxzoom = 18, title = '' } = {}) =>
  `title: '${title}'\nsources:\n  dem: ${source}\nminzoom: ${minzoom}\nmaxzoom: ${maxzoom}\n${PIPELINE}`;

/** A STAC ItemCollection: one item per href, each with its `dem` asset (null: the item has none) and a thumbnail. */
const itemCollection = (hrefs: readonly (string | null)[]) =>
  JSON.stringify({
    type: 'FeatureCollection',
    features: hrefs.map((href, i) => ({
      type: 'Feature',
      stac_version: '1.0.0',
      id: `item-${i}`,
      geometry: null,
      properties: {},
      assets: {
        ...(href === null ? {} : { dem: { href, type: 'image/tiff; application=geotiff; profile=cloud-optimized' } }),
        thumbnail: { href: 'thumb.png' },
      },
    })),
  });

async function copyPieces(tmp: TempLayers, folder: string, names: readonly string[]): Promise<void> {
  await mkdir(path.join(tmp.dir, folder), { recursive: true });
  for (const n of names) await copyFile(path.join(PIECES_DIR, n), path.join(tmp.dir, folder, n));
}

const GDAL_MISSING = toolsMissing(['gdalinfo', 'gdal_translate']);

describe('mosaic sources', { skip: GDAL_MISSING }, () => {
  /** Server 1: rechecks every second, the default member limit. Server 2: no rechecks (SIGHUP only), MOSAIC_MAX_FILES=2. */
  let one: TempLayers, two: TempLayers;
  let s1: ServerProcess, s2: ServerProcess;
  const piece = new Map<string, Piece>();
  const P = (r: number, c: number) => piece.get(pieceName(r, c))!;
  let everything: Rect;
  const SEP = [pieceName(0, 0), pieceName(0, 2), pieceName(2, 0), pieceName(2, 2)];
  /** Tiles of zoom z that only this piece lies under (every other piece FAR away). */
  const onlyOver = (p: Piece, z: number) => tilesOver(p.bbox, z).filter((t) => deepUnder(t, p) && [...piece.values()].every((q) => q === p || farFrom(t, q)));

  before(async () => {
    for (const n of ALL_PIECES) piece.set(n, describePiece(path.join(PIECES_DIR, n)));
    everything = union([...piece.values()]);

    // Server 1's directory.
    one = await makeLayersDir(['dem-relief']);
    await copyPieces(
      one,
      'data/pieces',
      ALL_PIECES.filter((n) => n !== pieceName(3, 3)),
    );
    await copyPieces(one, 'data/fixed', ALL_PIECES);
    await one.write('mos.yaml', layerYaml('{ mosaic: ./data/pieces/*.tif, method: first }', { maxzoom: 15 }));
    await one.write('fixed.yaml', layerYaml('{ mosaic: ./data/fixed/*.tif, method: first }'));
    await one.write('data/catalog/items.geojson', itemCollection(ALL_PIECES.map((n) => `../fixed/${n}`)));
    await one.write('stac.yaml', layerYaml('{ stac: ./data/catalog/items.geojson, asset: dem, method: first }'));
    await one.write('gapped.yaml', layerYaml(`{ mosaic: [${SEP.map((n) => `./data/fixed/${n}`).join(', ')}] }`));
    // A feature without the asset.
    await one.write('data/catalog/missing.geojson', itemCollection([`../fixed/${ALL_PIECES[0]}`, null, `../fixed/${ALL_PIECES[1]}`]));
    await one.write('stac-missing.yaml', layerYaml('{ stac: ./data/catalog/missing.geojson, asset: dem }'));

    // Hostile and bad mosaics. Files outside the layers directory that they try to reach:
    await mkdir(path.join(one.root, 'outside'), { recursive: true });
    await copyFile(path.join(PIECES_DIR, ALL_PIECES[0]!), path.join(one.root, 'outside/secret.tif'));
    await copyFile(path.join(PIECES_DIR, ALL_PIECES[0]!), path.join(one.root, 'escape.tif'));
    await symlink(path.join(one.root, 'outside'), path.join(one.dir, 'data/outside-link'));
    await copyPieces(one, 'data/linked', [pieceName(0, 0)]);
    await symlink(path.join(one.root, 'outside/secret.tif'), path.join(one.dir, 'data/linked', pieceName(0, 1)));
    await copyPieces(one, 'data/bands', [pieceName(0, 0)]);
    gdal('gdal_translate', [
      '-q',
      '-of',
      'COG',
      '-b',
      '1',
      '-b',
      '1',
      '-b',
      '1',
      path.join(PIECES_DIR, pieceName(0, 1)),
      path.join(one.dir, 'data/bands', pieceName(0, 1)),
    ]);
    const secret = path.join(one.root, 'outside/secret.tif');
    await one.write('data/catalog/outside.geojson', itemCollection([`../fixed/${ALL_PIECES[0]}`, '../../../outside/secret.tif']));
    await one.write('data/catalog/file-url.geojson', itemCollection([`../fixed/${ALL_PIECES[0]}`, `file://${secret}`]));
    await one.write('data/catalog/absolute.geojson', itemCollection([`../fixed/${ALL_PIECES[0]}`, secret]));
    await one.write('data/catalog/broken.geojson', '{"type": "FeatureCollection", "features": [');
    for (const [name, source] of Object.entries(HOSTILE_SOURCES(secret))) await one.write(`${name}.yaml`, layerYaml(source));

    // Server 2's directory.
    two = await makeLayersDir();
    await copyPieces(two, 'data/all', ALL_PIECES);
    await copyPieces(
      two,
      'data/hup',
      ALL_PIECES.filter((n) => n !== pieceName(3, 3)),
    );
    await two.write('adj.yaml', layerYaml('{ mosaic: ./data/all/*.tif }', { minzoom: 0, maxzoom: 22 }));
    await two.write('sep.yaml', layerYaml(`{ mosaic: [${SEP.map((n) => `./data/all/${n}`).join(', ')}] }`, { minzoom: 0, maxzoom: 22 }));
    await two.write('hup.yaml', layerYaml('{ mosaic: ./data/hup }', { maxzoom: 16 }));

    [s1, s2] = await Promise.all([
      startServerProcess(one.dir, { SOURCE_RECHECK_S: '1', WORKERS: '2' }),
      startServerProcess(two.dir, { SOURCE_RECHECK_S: '0', MOSAIC_MAX_FILES: '2', WORKERS: '2' }),
    ]);
  });

  after(async () => {
    await Promise.all([s1?.stop(), s2?.stop()]);
    await Promise.all([one?.remove(), two?.remove()]);
  });

  // -------------------------------------------------------------------------------------------
  test('GET /layers/{layer} describes the mosaic as GDAL sees its members', async () => {
    const { status, json } = await getJson<{
      sources: { name: string; mosaic?: MosaicSummary; bands: number }[];
      config: { sources: Record<string, unknown> };
    }>(s1.url, '/layers/fixed');
    assert.equal(status, 200);
    assert.equal(json.sources.length, 1);
    const m = json.sources[0]!.mosaic;
    assert.ok(m, 'the mosaic source has a mosaic section');
    assert.equal(m.method, 'first');
    assert.equal(m.members, 16);
    const want = everything;
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(m.bounds[i]! - want[i]!) < 1e-4, `bounds ${m.bounds.join(',')} are the pieces' union ${want.join(',')}`);
    assert.equal(m.crss.length, 1, 'one CRS');
    assert.equal(m.crss[0]!.epsg, P(0, 0).epsg, 'the EPSG code gdalinfo reports');
    assert.equal(m.crss[0]!.members, 16);
    assert.equal(m.footprint.type, 'MultiPolygon');
    assert.equal(m.footprint.coordinates.length, 16, 'one polygon per member');
    m.footprint.coordinates.forEach((poly, i) => {
      const p = piece.get(ALL_PIECES[i]!)!;
      const ring = poly[0]!;
      assert.ok(ring.length >= 4, 'a ring of at least four points');
      assert.deepEqual(ring[0], ring.at(-1), 'a closed ring');
      const lons = ring.map((q) => q[0]),
        lats = ring.map((q) => q[1]);
      const got: Rect = [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
      for (let k = 0; k < 4; k++) assert.ok(Math.abs(got[k]! - p.bbox[k]!) < 1e-4, `polygon ${i} spans ${got.join(',')}, ${p.name} ${p.bbox.join(',')}`);
      // Each corner that GDAL reports is a vertex of the outline.
      for (const c of p.lonlat)
        assert.ok(
          ring.some((q) => Math.hypot(q[0] - c[0], q[1] - c[1]) < 1e-5),
          `${p.name}: corner ${c.join(',')} on the outline`,
        );
    });
    assert.equal(json.sources[0]!.bands, 1);
  });

  test('GET /layers/{layer}/members lists exactly the members whose footprint meets the bbox', async () => {
    const all = await members(s1.url, 'fixed');
    assert.equal(all.count, 16);
    assert.equal(all.truncated, false);
    assert.equal(all.bbox, null);
    assert.deepEqual(
      all.members.map((m) => path.posix.basename(m.ref)),
      ALL_PIECES,
      'in listed (sorted) order',
    );
    for (const m of all.members) {
      const p = piece.get(path.posix.basename(m.ref))!;
      assert.equal(m.source, 'dem');
      assert.deepEqual([m.width, m.height], [100, 100]);
      assert.equal(m.crs.epsg, p.epsg);
      for (let k = 0; k < 4; k++) assert.ok(Math.abs(m.bounds[k]! - p.bbox[k]!) < 1e-4, `${p.name}: bounds ${m.bounds.join(',')} vs ${p.bbox.join(',')}`);
    }
    assert.equal(new Set(all.members.map((m) => m.version)).size, 16, 'a version per member');

    // Boxes with corners at pieces' centres: every edge lies kilometres from any footprint's edge.
    const boxOf = (a: Pt, b: Pt): Rect => [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
    const c = (r: number, col: number) => P(r, col).centre;
    const boxes: Rect[] = [
      [c(1, 2)[0] - 0.002, c(1, 2)[1] - 0.002, c(1, 2)[0] + 0.002, c(1, 2)[1] + 0.002],
      boxOf(c(0, 0), c(1, 1)),
      boxOf(c(0, 1), c(3, 1)),
      boxOf(c(1, 1), c(2, 3)),
      boxOf(c(3, 0), c(3, 3)),
      grow(everything, 0.01),
      [-100, 40, -99, 41],
      [everything[2] + 0.05, everything[1], everything[2] + 0.2, everything[3]],
    ];
    for (const b of boxes) {
      const expect = (margin: number) => ALL_PIECES.filter((n) => meets(piece.get(n)!.lonlat, grow(b, margin)));
      const want = expect(0);
      // The answer must not hang on the last few hundred metres: the box is chosen so.
      assert.deepEqual(expect(0.005), want, `test set-up: bbox ${b.join(',')} lies near an edge`);
      assert.deepEqual(expect(-0.001), want, `test set-up: bbox ${b.join(',')} lies near an edge`);
      const got = await members(s1.url, 'fixed', b);
      assert.deepEqual(got.bbox, b);
      assert.equal(got.count, want.length, `bbox ${b.join(',')}: ${got.members.map((m) => m.ref).join(' ')}`);
      assert.deepEqual(
        got.members.map((m) => path.posix.basename(m.ref)),
        want,
        `bbox ${b.join(',')}`,
      );
    }
  });

  test('GET /layers/{layer}/members: a malformed bbox is a 400 in JSON, a layer without a mosaic a 404', async () => {
    for (const q of ['a,b,c,d', '1,2,3', '1,2,3,4,5', '1,,2,3', '', '10,0,5,1', '0,10,1,5', '-190,0,0,1', '0,-95,1,1', 'NaN,1,2,3', '1,2,3,4&bbox=5,6,7,8']) {
      const a = await request(s1.url, `/layers/fixed/members?bbox=${q}`);
      assert.equal(a.status, 400, `bbox=${q}: ${a.body.toString()}`);
      assert.match(String(a.headers['content-type']), /application\/json/);
      assert.equal(a.headers['cache-control'], 'no-store');
      const body = JSON.parse(a.body.toString()) as { error: unknown; detail: unknown };
      assert.equal(typeof body.error, 'string');
      assert.equal(typeof body.detail, 'string');
      if (q.includes('&bbox=')) assert.match(String(body.detail), /'bbox' is given 2 times: give it once/);
    }
    for (const layer of ['dem-relief', 'no-such-layer']) {
      const a = await request(s1.url, `/layers/${layer}/members`);
      assert.equal(a.status, 404, layer);
      const body = JSON.parse(a.body.toString()) as { error: unknown; detail: unknown };
      assert.equal(typeof body.error, 'string');
      assert.match(String(body.detail), new RegExp(layer));
    }
    // The plain layer still describes itself without a mosaic section.
    const plain = await getJson<{ sources: { mosaic?: unknown }[] }>(s1.url, '/layers/dem-relief');
    assert.equal(plain.status, 200);
    assert.equal(plain.json.sources[0]!.mosaic, undefined);
  });

  // -------------------------------------------------------------------------------------------
  test('a STAC ItemCollection serves the same tiles, byte for byte, as the glob of the same files', async () => {
    const stacMembers = await members(s1.url, 'stac');
    const globMembers = await members(s1.url, 'fixed');
    assert.deepEqual(
      stacMembers.members.map((m) => [m.ref, m.version]),
      globMembers.members.map((m) => [m.ref, m.version]),
      'the same files in the same order',
    );
    const middle = union([P(1, 1), P(2, 2)]);
    const tiles = [...tilesOver(everything, 10), ...tilesOver(everything, 11), ...tilesOver(middle, 12)];
    const [a, b] = await Promise.all([getTiles(s1.url, 'stac', tiles), getTiles(s1.url, 'fixed', tiles)]);
    let drawn = 0;
    for (const t of tiles) {
      const x = a.get(key(t))!,
        y = b.get(key(t))!;
      assert.equal(x.status, y.status, `${key(t)}: status`);
      assert.ok([200, 204].includes(x.status), `${key(t)}: ${x.status} ${x.body.toString().slice(0, 200)}`);
      assert.ok(x.body.equals(y.body), `${key(t)}: the same bytes`);
      if (x.status === 200) drawn++;
    }
    assert.ok(drawn >= tiles.length / 2, `${drawn} of ${tiles.length} tiles drawn`);
    const list = await layerList(s1.url);
    const missing = list.refused.find((r) => r.file === 'stac-missing.yaml');
    assert.ok(missing, 'a collection with an item lacking the asset is refused');
    assert.match(missing.error, /^stac-missing\.yaml: source 'dem': .*item-1 has no asset 'dem'/);
    assert.ok(!list.layers.some((l) => l.name === 'stac-missing'));
  });

  // -------------------------------------------------------------------------------------------
  test('hostile and bad mosaics are refused with a clear reason; the other layers keep serving', async () => {
    const list = await layerList(s1.url);
    const refused = new Map(list.refused.map((r) => [r.file, r.error]));
    for (const [name, reason] of Object.entries(HOSTILE_REASONS)) {
      const error = refused.get(`${name}.yaml`);
      assert.ok(error, `${name}.yaml is refused (refused: ${[...refused.keys()].join(', ')})`);
      assert.ok(error.startsWith(`${name}.yaml: `), `names the file: ${error}`);
      assert.match(error, reason, `${name}.yaml`);
      // Only a path the file itself wrote may appear (the absolute ones).
      if (!['hostile-absolute-list', 'hostile-stac-absolute'].includes(name))
        assert.ok(!error.includes(one.root), `${name}.yaml: the refusal does not spell out the server's paths: ${error}`);
      assert.ok(!list.layers.some((l) => l.name === name));
      assert.equal((await request(s1.url, tilePath(name, lonLatToTile(...P(0, 0).centre, 12)))).status, 404);
    }
    assert.deepEqual(
      [...refused.keys()].sort(),
      [...Object.keys(HOSTILE_REASONS).map((n) => `${n}.yaml`), 'stac-missing.yaml'].sort(),
      'nothing else is refused',
    );
    assert.deepEqual(list.layers.map((l) => l.name).sort(), ['dem-relief', 'fixed', 'gapped', 'mos', 'stac']);
    assert.equal(s1.child.exitCode, null, 'the server runs');
    assert.equal((await request(s1.url, '/healthz')).status, 200);
    for (const layer of ['fixed', 'dem-relief']) assert.equal((await getTile(s1.url, layer, lonLatToTile(...P(1, 1).centre, 12))).status, 200, layer);
  });

  // -------------------------------------------------------------------------------------------
  test('a replaced member changes the ETags and pixels of the tiles under it and of no others (recheck)', async () => {
    const target = P(1, 2);
    const file = path.join(one.dir, 'data/pieces', target.name);
    const tiles = [...tilesOver(everything, 11), ...tilesOver(grow(target.bbox, 0.12), 12), ...tilesOver(grow(target.bbox, 0.03), 13)];
    const before = await getTiles(s1.url, 'mos', tiles);
    const layerBefore = (await layerList(s1.url)).layers.find((l) => l.name === 'mos')!;
    const membersBefore = await members(s1.url, 'mos');
    for (const t of tiles) assert.ok([200, 204].includes(before.get(key(t))!.status), `${key(t)}: ${before.get(key(t))!.status}`);
    const hash = before.get(key(tiles[0]!))!.hash;
    assert.equal(hash, layerBefore.hash.slice(0, 12));

    // The same grid and size, other values: heights turned upside down.
    const scaled = path.join(one.dir, 'data/scaled.part');
    gdal('gdal_translate', ['-q', '-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-scale', '900', '2700', '2700', '900', file, scaled]);
    const probe = lonLatToTile(...target.centre, 13);
    await rename(scaled, file);
    await until('the recheck to see the new member', async () => (await getTile(s1.url, 'mos', probe)).etag !== before.get(key(probe))!.etag);

    const afterTiles = await getTiles(s1.url, 'mos', tiles);
    const counts = { under: 0, deep: 0, far: 0 };
    for (const t of tiles) {
      const was = before.get(key(t))!,
        now = afterTiles.get(key(t))!;
      assert.equal(now.hash, hash, `${key(t)}: X-Layer-Hash unchanged`);
      if (under(t, target)) {
        counts.under++;
        assert.notEqual(now.etag, was.etag, `${key(t)} lies over the replaced member: a new ETag`);
      }
      if (deepUnder(t, target)) {
        counts.deep++;
        assert.equal(now.status, 200);
        assert.ok(!now.body.equals(was.body), `${key(t)} lies over the replaced member: new pixels`);
      }
      if (farFrom(t, target)) {
        counts.far++;
        assert.equal(now.status, was.status, `${key(t)}: status`);
        assert.equal(now.etag, was.etag, `${key(t)} lies away from the replaced member: the same ETag`);
        assert.ok(now.body.equals(was.body), `${key(t)}: the same bytes`);
        assert.equal(now.cache, 'hit-l1', `${key(t)}: its cache key did not change either`);
      }
    }
    assert.ok(counts.under >= 4 && counts.deep >= 4 && counts.far >= 20, JSON.stringify(counts));
    // The config hash stays; the layer version (tile URLs' ?v=) covers every member, so it moves on
    // (README, Mosaics: "The layer's version ... includes every member").
    const layerAfter = (await layerList(s1.url)).layers.find((l) => l.name === 'mos')!;
    assert.equal(layerAfter.hash, layerBefore.hash, 'the config hash is the same');
    assert.notEqual(layerAfter.version, layerBefore.version, 'the layer version covers every member');
    const tile = tilePath('mos', probe);
    assert.match(String((await request(s1.url, `${tile}?v=${layerAfter.version}`)).headers['cache-control']), /immutable/, 'the current ?v= is immutable');
    assert.match(String((await request(s1.url, `${tile}?v=${layerBefore.version}`)).headers['cache-control']), /max-age=60\b/, 'the old ?v= is short-lived');
    const membersAfter = await members(s1.url, 'mos');
    for (const [i, m] of membersAfter.members.entries()) {
      const changed = m.version !== membersBefore.members[i]!.version;
      assert.equal(changed, path.posix.basename(m.ref) === target.name, `${m.ref}: version ${changed ? 'changed' : 'kept'}`);
    }

    // A server that never saw the old file answers the same tiles, ETags and all.
    const fresh = await startServer(one.dir, { SOURCE_RECHECK_S: '0' });
    try {
      assert.equal((await layerList(fresh.url)).layers.find((l) => l.name === 'mos')!.version, layerAfter.version, 'the same layer version');
      const cold = await getTiles(fresh.url, 'mos', tiles);
      for (const t of tiles) {
        const a = afterTiles.get(key(t))!,
          b = cold.get(key(t))!;
        assert.deepEqual([a.status, a.etag], [b.status, b.etag], `${key(t)}: as a fresh server answers`);
        assert.ok(a.body.equals(b.body), `${key(t)}: the fresh server's bytes`);
      }
    } finally {
      await fresh.close();
    }

    // The original back: its pixels come back too (no block of the replaced file is kept).
    const original = path.join(one.dir, 'data/original.part');
    await copyFile(path.join(PIECES_DIR, target.name), original);
    await rename(original, file);
    await until('the recheck to see the original again', async () => (await getTile(s1.url, 'mos', probe)).body.equals(before.get(key(probe))!.body));
    const restored = await getTiles(s1.url, 'mos', tiles);
    for (const t of tiles) {
      const was = before.get(key(t))!,
        now = restored.get(key(t))!;
      assert.equal(now.status, was.status, `${key(t)}: status`);
      assert.ok(now.body.equals(was.body), `${key(t)}: the original pixels`);
      if (farFrom(t, target)) assert.equal(now.etag, was.etag, `${key(t)}: the same ETag throughout`);
    }
  });

  test('a recheck picks up an added member and a removed one', async () => {
    const added = P(3, 3),
      removed = P(0, 0);
    const addedTiles = onlyOver(added, 13),
      removedTiles = onlyOver(removed, 13);
    assert.ok(addedTiles.length >= 2 && removedTiles.length >= 2, `test set-up: ${addedTiles.length} and ${removedTiles.length} tiles`);
    const elsewhere = [...tilesOver(everything, 12), ...tilesOver(everything, 11)].filter((t) => farFrom(t, added) && farFrom(t, removed));
    assert.ok(elsewhere.length >= 10);
    const all = [...addedTiles, ...removedTiles, ...elsewhere];
    const before = await getTiles(s1.url, 'mos', all);
    const summary = async () => (await layerList(s1.url)).layers.find((l) => l.name === 'mos')!;
    const first = await summary();
    for (const t of addedTiles) assert.equal(before.get(key(t))!.status, 204, `${key(t)}: nothing there yet`);
    for (const t of removedTiles) assert.equal(before.get(key(t))!.status, 200, `${key(t)}: drawn`);
    assert.equal((await members(s1.url, 'mos')).count, 15);

    const part = path.join(one.dir, 'data/added.part');
    await copyFile(path.join(PIECES_DIR, added.name), part);
    await rename(part, path.join(one.dir, 'data/pieces', added.name));
    await until('the added member', async () => (await getTile(s1.url, 'mos', addedTiles[0]!)).status === 200);
    assert.equal((await members(s1.url, 'mos')).count, 16);
    const second = await summary();
    assert.equal(second.hash, first.hash);
    assert.notEqual(second.version, first.version, 'an added member: a new layer version');
    const withAdded = await getTiles(s1.url, 'mos', all);
    for (const t of addedTiles) assert.equal(withAdded.get(key(t))!.status, 200, `${key(t)}: drawn from the added member`);
    for (const t of [...removedTiles, ...elsewhere]) assert.equal(withAdded.get(key(t))!.etag, before.get(key(t))!.etag, `${key(t)}: the same ETag`);

    await unlink(path.join(one.dir, 'data/pieces', removed.name));
    await until('the removed member', async () => (await getTile(s1.url, 'mos', removedTiles[0]!)).status === 204);
    assert.equal((await members(s1.url, 'mos')).count, 15);
    const withRemoved = await getTiles(s1.url, 'mos', all);
    for (const t of removedTiles) assert.equal(withRemoved.get(key(t))!.status, 204, `${key(t)}: its member is gone`);
    for (const t of [...addedTiles, ...elsewhere]) assert.equal(withRemoved.get(key(t))!.etag, withAdded.get(key(t))!.etag, `${key(t)}: the same ETag`);
    const third = await summary();
    assert.equal(third.hash, first.hash);
    assert.ok(third.version !== second.version && third.version !== first.version, 'a removed member: a new layer version');
  });

  // -------------------------------------------------------------------------------------------
  test('SIGHUP picks up an added member and a removed one (no rechecks)', async () => {
    const added = P(3, 3),
      removed = P(0, 0);
    const addedTiles = onlyOver(added, 13),
      removedTiles = onlyOver(removed, 13);
    const elsewhere = [P(1, 1), P(1, 2), P(2, 1), P(2, 2)].map((p) => lonLatToTile(...p.centre, 13));
    const all = [...addedTiles, ...removedTiles, ...elsewhere];
    const before = await getTiles(s2.url, 'hup', all);
    for (const t of addedTiles) assert.equal(before.get(key(t))!.status, 204, key(t));
    for (const t of [...removedTiles, ...elsewhere]) assert.equal(before.get(key(t))!.status, 200, key(t));

    const part = path.join(two.dir, 'data/added.part');
    await copyFile(path.join(PIECES_DIR, added.name), part);
    await rename(part, path.join(two.dir, 'data/hup', added.name));
    await unlink(path.join(two.dir, 'data/hup', removed.name));
    await new Promise((r) => setTimeout(r, 1500));
    const unchanged = await getTiles(s2.url, 'hup', all);
    for (const t of all) assert.equal(unchanged.get(key(t))!.etag, before.get(key(t))!.etag, `${key(t)}: nothing changes before SIGHUP`);

    process.kill(s2.child.pid!, 'SIGHUP');
    await until('SIGHUP to reload', async () => (await getTile(s2.url, 'hup', addedTiles[0]!)).status === 200);
    const now = await getTiles(s2.url, 'hup', all);
    for (const t of addedTiles) assert.equal(now.get(key(t))!.status, 200, `${key(t)}: drawn from the added member`);
    for (const t of removedTiles) assert.equal(now.get(key(t))!.status, 204, `${key(t)}: its member is gone`);
    for (const t of elsewhere) assert.equal(now.get(key(t))!.etag, before.get(key(t))!.etag, `${key(t)}: the same ETag`);

    // The layer's config enters every tile's ETag: a new title, and no tile keeps its ETag (nor its bytes change).
    await two.write('hup.yaml', layerYaml('{ mosaic: ./data/hup }', { maxzoom: 16, title: 'retitled' }));
    process.kill(s2.child.pid!, 'SIGHUP');
    const probe = elsewhere[0]!;
    await until('SIGHUP to reload the layer file', async () => (await getTile(s2.url, 'hup', probe)).hash !== now.get(key(probe))!.hash);
    const retitled = await getTiles(s2.url, 'hup', all);
    for (const t of all) {
      const a = now.get(key(t))!,
        b = retitled.get(key(t))!;
      assert.notEqual(b.hash, a.hash, `${key(t)}: X-Layer-Hash`);
      assert.notEqual(b.etag, a.etag, `${key(t)}: a new ETag with the new config`);
      assert.equal(b.status, a.status);
      assert.ok(b.body.equals(a.body), `${key(t)}: the same bytes`);
    }
    assert.equal(s2.child.exitCode, null);
  });

  // -------------------------------------------------------------------------------------------
  test('MOSAIC_MAX_FILES: a tile over more members answers 400 naming the limit and a zoom at which every tile answers', async () => {
    const sep = SEP.map((n) => piece.get(n)!);
    const area = union(sep);
    // The tile of the highest zoom that holds all four separated pieces.
    let big = lonLatToTile((area[0] + area[2]) / 2, (area[1] + area[3]) / 2, 10);
    while (sep.filter((p) => under(big, p)).length < 4) big = lonLatToTile((area[0] + area[2]) / 2, (area[1] + area[3]) / 2, big[0] - 1);
    const z0 = big[0];
    assert.ok(z0 >= 7, `test set-up: zoom ${z0}`);
    const a = await request(s2.url, tilePath('sep', big));
    assert.equal(a.status, 400, a.body.toString());
    assert.equal(a.headers['cache-control'], 'no-store');
    assert.match(String(a.headers['content-type']), /application\/json/);
    const err = JSON.parse(a.body.toString()) as { error: string; detail: string };
    assert.equal(typeof err.error, 'string');
    assert.match(err.detail, /MOSAIC_MAX_FILES/);
    assert.match(err.detail, /\b4 members\b/);
    assert.match(err.detail, /at most 2\b/);
    const n = Number(/from zoom (\d+) no tile needs more/.exec(err.detail)?.[1]);
    assert.ok(Number.isInteger(n) && n > z0 && n <= 22, `zoom ${n} in: ${err.detail}`);
    // Every tile of that zoom over the refused tile's area answers.
    const [w, s, e, nn] = tileLonLatBounds(big);
    const inside = tilesOver([w + 1e-9, s + 1e-9, e - 1e-9, nn - 1e-9], n);
    assert.equal(inside.length, 4 ** (n - z0));
    assert.ok(inside.length <= 1024, `zoom ${n}: no tile of zoom 12 (under 10 km) spans a 10 km gap between the pieces`);
    let drawn = 0;
    for (const t of inside) {
      const g = await getTile(s2.url, 'sep', t);
      assert.ok(g.status === 200 || g.status === 204, `${key(t)} at the zoom the 400 names: ${g.status} ${g.body.toString()}`);
      if (g.status === 200) drawn++;
    }
    assert.ok(drawn > 0, 'some of them are drawn');

    // Tiles over one and over two members answer.
    const single = lonLatToTile(...P(1, 1).centre, 13);
    assert.deepEqual(
      [...piece.values()].filter((p) => meets(p.merc, grow(tileRect(single), DEEP))).map((p) => p.name),
      [pieceName(1, 1)],
      'test set-up: a tile over one piece',
    );
    assert.equal((await getTile(s2.url, 'adj', single)).status, 200, 'one member is within the limit');
    const mid: Pt = [(P(1, 1).ur[0] + P(1, 1).lr[0]) / 2, (P(1, 1).ur[1] + P(1, 1).lr[1]) / 2];
    const pair = lonLatToTile(...mid, 13);
    assert.deepEqual(
      [...piece.values()].filter((p) => meets(p.merc, grow(tileRect(pair), DEEP))).map((p) => p.name),
      [pieceName(1, 1), pieceName(1, 2)],
      'test set-up: a tile across the edge of two pieces',
    );
    assert.equal((await getTile(s2.url, 'adj', pair)).status, 200, 'two members are within the limit');
  });

  test('MOSAIC_MAX_FILES on pieces that touch: the zoom the 400 names serves the tiles where four pieces meet', async () => {
    const centre = P(1, 1).lr; // where r1c1, r1c2, r2c1 and r2c2 meet
    const big = lonLatToTile(...centre, 11);
    const a = await request(s2.url, tilePath('adj', big));
    assert.equal(a.status, 400, a.body.toString());
    const err = JSON.parse(a.body.toString()) as { error: string; detail: string };
    assert.match(err.detail, /MOSAIC_MAX_FILES/);
    // Where four pieces share a corner, a tile of any zoom lies over all four: a zoom the detail
    // promises must serve the tiles there (a detail that promises none is also true).
    const named = /from zoom (\d+) no tile needs more/.exec(err.detail);
    if (!named) return;
    const n = Number(named[1]);
    const [w, s, e, nn] = tileLonLatBounds(big);
    const corners = [...piece.values()].map((p) => p.lr).filter(([lon, lat]) => lon > w && lon < e && lat > s && lat < nn);
    const sharedBy = (c: Pt) => [...piece.values()].filter((p) => p.lonlat.some((q) => Math.hypot(q[0] - c[0], q[1] - c[1]) < 1e-5)).length;
    const shared = corners.filter((c) => sharedBy(c) === 4);
    assert.ok(shared.length >= 1, 'test set-up: the tile holds a point where four pieces meet');
    for (const c of shared) {
      const t = lonLatToTile(...c, n);
      const g = await getTile(s2.url, 'adj', t);
      assert.ok(
        g.status === 200 || g.status === 204,
        `tile ${key(t)} (zoom ${n}, named by "${err.detail}") at a corner of four pieces: ${g.status} ${g.body.toString()}`,
      );
    }
  });

  // -------------------------------------------------------------------------------------------
  test('tilegraph seed over a mosaic: coverage follows the members, and the directory holds the bytes the server serves', async () => {
    const sep = SEP.map((n) => piece.get(n)!);
    const area = union(sep);
    const env = { ...process.env, LAYERS_DIR: one.dir, LOG_LEVEL: 'silent', WORKERS: '2' };
    const run = (args: string[]) => spawnSync(process.execPath, [CLI, 'seed', 'gapped', ...args], { cwd: one.root, env, encoding: 'utf8', timeout: 60_000 });
    const dry = run(['--zoom', '10-12', '--dry-run']);
    assert.equal(dry.status, 0, dry.stderr);
    for (const z of [10, 11, 12]) {
      const count = Number(new RegExp(`^zoom ${z}: (\\d+) tiles$`, 'm').exec(dry.stdout)?.[1]);
      const box = tilesOver(area, z);
      const lo = box.filter((t) => sep.some((p) => deepUnder(t, p))).length;
      const hi = box.filter((t) => !sep.every((p) => farFrom(t, p))).length;
      assert.ok(lo <= count && count <= hi, `zoom ${z}: ${count} tiles, expected ${lo}..${hi} (the bounding box has ${box.length})`);
      if (z === 12) assert.ok(count < box.length, `zoom ${z}: the gaps between the members are not seeded (${count} of ${box.length})`);
    }

    const out = path.join(one.root, 'pyramid');
    const r = run(['--zoom', '10-12', '--to', `dir:${out}`]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as {
      total: { planned: number; rendered: number; empty: number; failed: number };
    };
    assert.equal(manifest.total.failed, 0);
    assert.equal(manifest.total.planned, Number(/^total (\d+) tiles$/m.exec(dry.stdout)?.[1]));
    const files = new Set<string>();
    for (const z of readdirSync(out).filter((d) => /^\d+$/.test(d)))
      for (const x of readdirSync(path.join(out, z)))
        for (const f of readdirSync(path.join(out, z, x))) if (/^\d+\.png$/.test(f)) files.add(`${z}/${x}/${f.slice(0, -4)}`);
    assert.equal(files.size, manifest.total.rendered);
    const tiles = [10, 11, 12].flatMap((z) => tilesOver(grow(area, 0.02), z));
    const served = await getTiles(s1.url, 'gapped', tiles);
    let drawn = 0;
    for (const t of tiles) {
      const g = served.get(key(t))!;
      const file = path.join(out, `${key(t)}.png`);
      assert.ok(g.status === 200 || g.status === 204, `${key(t)}: ${g.status}`);
      if (g.status === 204) {
        assert.ok(!existsSync(file), `${key(t)} is empty: not written`);
        continue;
      }
      drawn++;
      assert.ok(existsSync(file), `${key(t)} is drawn by the server: seeded too`);
      assert.ok(readFileSync(file).equals(g.body), `${key(t)}: the server's bytes`);
      files.delete(key(t));
    }
    assert.deepEqual([...files], [], 'no tile the server would not draw');
    assert.ok(drawn >= 10, `${drawn} tiles drawn`);
  });
});

// ---------------------------------------------------------------------------------------------
// Hostile layer files: the source of each, and the reason its refusal must give

function HOSTILE_SOURCES(secret: string): Record<string, string> {
  return {
    'hostile-glob-escape': '{ mosaic: ../*.tif }',
    'hostile-glob-dotdot': '{ mosaic: ./data/../../outside/*.tif }',
    'hostile-symlink-folder': '{ mosaic: ./data/outside-link/*.tif }',
    'hostile-symlink-folder-plain': '{ mosaic: ./data/outside-link }',
    'hostile-symlink-member': '{ mosaic: ./data/linked/*.tif }',
    'hostile-absolute-list': `{ mosaic: [./data/fixed/${ALL_PIECES[0]}, ${secret}] }`,
    'hostile-stac-outside': '{ stac: ./data/catalog/outside.geojson, asset: dem }',
    'hostile-stac-file-url': '{ stac: ./data/catalog/file-url.geojson, asset: dem }',
    'hostile-stac-absolute': '{ stac: ./data/catalog/absolute.geojson, asset: dem }',
    'bad-glob-nothing': '{ mosaic: ./data/fixed/*.jp2 }',
    'bad-bands': '{ mosaic: ./data/bands/*.tif }',
    'bad-stac-not-json': '{ stac: ./data/catalog/broken.geojson, asset: dem }',
    'bad-method': '{ mosaic: ./data/fixed/*.tif, method: brightest }',
  };
}

const HOSTILE_REASONS: Record<string, RegExp> = {
  'hostile-glob-escape': /source 'dem': .*resolves outside the layers directory/,
  'hostile-glob-dotdot': /source 'dem': .*resolves outside the layers directory/,
  'hostile-symlink-folder': /source 'dem': '\.\/data\/outside-link' resolves outside the layers directory/,
  'hostile-symlink-folder-plain': /source 'dem': '\.\/data\/outside-link' resolves outside the layers directory/,
  'hostile-symlink-member': /source 'dem': '.*srtm_jasper_r0c1\.tif' resolves outside the layers directory/,
  'hostile-absolute-list': /source 'dem': '.*secret\.tif' is an absolute path/,
  'hostile-stac-outside': /source 'dem': .*secret\.tif' resolves outside the layers directory/,
  'hostile-stac-file-url': /source 'dem': 'file:' sources are not allowed/,
  'hostile-stac-absolute': /source 'dem': '.*secret\.tif' is an absolute path/,
  'bad-glob-nothing': /source 'dem': the mosaic has no members \('\.\/data\/fixed\/\*\.jp2' matches no file\)/,
  'bad-bands': /source 'dem': member '.*srtm_jasper_r0c1\.tif' has 3 band\(s\), '.*srtm_jasper_r0c0\.tif' 1: members share their bands/,
  'bad-stac-not-json': /source 'dem': '\.\/data\/catalog\/broken\.geojson' is not JSON/,
  'bad-method': /method.*'brightest'.*first.*median|'brightest'.*method.*first.*median/,
};
