/**
 * Clients (SPEC §3, issue 4): TileJSON 3.0.0, WMTS 1.0.0 capabilities with RESTful tiles, read
 * by real clients. `serve()` runs on an ephemeral port over a temporary layers directory
 * (NLCD land cover in its own palette at 256 and at 512 px, and an SRTM colour relief); GDAL
 * then reads the server as a client, through its WMTS driver (from the capabilities alone)
 * and through its TMS minidriver (from the XYZ template), and what it reads is compared with
 * `gdalwarp` of the source COG onto the same grid.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import sharp from 'sharp';
import { buildTileJson, layerCenter } from '../src/tiles/tilejson.js';
import { buildWmtsCapabilities, scaleDenominator } from '../src/tiles/wmts.js';
import { MAPLIBRE_ASSETS, renderMapPage } from '../src/server/mappage.js';
import { GDAL_ENV, gdalMissing, warpTile, xyzBounds, xyzTileAt } from './helpers/gdal.js';
import { makeLayersDir, REPO_ROOT, request, startServer, type TempLayers, type TestServer } from './helpers/http.js';

const OUT = path.join(REPO_ROOT, 'test/fixtures/out/clients');
const SKIP_GDAL = gdalMissing(['gdalinfo', 'gdal_translate', 'gdalwarp']);

const LANDCOVER = `title: NLCD 2011 land cover (test)
description: NLCD classes in the file's palette.
attribution: "NLCD 2011, USGS / MRLC"
sources: { nlcd: ./data/nlcd2011_zion.tif }
minzoom: 8
maxzoom: 16
pipeline:
  - read: { source: nlcd }
  - colormap: { name: source }
`;
const LANDCOVER_512 = LANDCOVER.replace('(test)', '(512 px tiles)').replace('maxzoom: 16', 'maxzoom: 15\ntileSize: 512');
const RELIEF = `title: SRTM colour relief (test)
attribution: "SRTM GL1, NASA / USGS"
sources: { dem: ./data/srtm_jasper_ab_100m.tif }
minzoom: 6
maxzoom: 15
pipeline:
  - read: { source: dem, bands: [1], resampling: bilinear }
  - colormap:
      stops: [[950, "#2b6b3a"], [1500, "#d8c98a"], [2100, "#8c6a5a"], [2600, "#ffffff"]]
`;
/** The same stops, for the reference colouring of GDAL's warped elevations. */
const RELIEF_STOPS: [number, [number, number, number]][] = [
  [950, [0x2b, 0x6b, 0x3a]],
  [1500, [0xd8, 0xc9, 0x8a]],
  [2100, [0x8c, 0x6a, 0x5a]],
  [2600, [0xff, 0xff, 0xff]],
];

interface LayerSummary {
  name: string;
  version: string;
  bounds: [number, number, number, number];
  minzoom: number;
  maxzoom: number;
  tileSize: number;
}

let layers: TempLayers;
let server: TestServer;
let base: string;
let summary: Map<string, LayerSummary>;

before(async () => {
  layers = await makeLayersDir();
  await layers.copyData('nlcd2011_zion.tif');
  await layers.copyData('srtm_jasper_ab_100m.tif');
  await layers.write('landcover.yaml', LANDCOVER);
  await layers.write('landcover512.yaml', LANDCOVER_512);
  await layers.write('relief.yaml', RELIEF);
  server = await startServer(layers.dir);
  base = server.url;
  const list = (await (await fetch(`${base}/layers`)).json()) as { layers: LayerSummary[] };
  summary = new Map(list.layers.map((l) => [l.name, l]));
  assert.deepEqual([...summary.keys()].sort(), ['landcover', 'landcover512', 'relief']);
  await mkdir(OUT, { recursive: true });
});

after(async () => {
  await server?.close();
  await layers?.remove();
});

// ---------------------------------------------------------------------------------------
// TileJSON

interface TileJsonDoc {
  tilejson: string;
  name: string;
  description?: string;
  attribution: string;
  tiles: string[];
  minzoom: number;
  maxzoom: number;
  bounds: number[];
  center: number[];
  scheme: string;
  tileSize: number;
}

/** The fields and types of TileJSON 3.0.0 (mapbox/tilejson-spec 3.0.0 README and schema.json). */
function checkTileJson(tj: TileJsonDoc, expect: { host: string; proto: string; layer: LayerSummary; tileSize: number; suffix: string }): void {
  assert.equal(tj.tilejson, '3.0.0');
  assert.match(tj.tilejson, /\d+\.\d+\.\d+\w?[\w\d]*/, 'schema pattern of "tilejson"');
  assert.ok(Array.isArray(tj.tiles) && tj.tiles.length >= 1, '"tiles" holds at least one endpoint');
  for (const t of tj.tiles) {
    assert.equal(typeof t, 'string');
    const u = new URL(t.replace(/[{}]/g, '')); // absolute, or this throws
    assert.equal(u.protocol, `${expect.proto}:`, t);
    assert.equal(u.host, expect.host, t);
    assert.ok(t.includes('{z}') && t.includes('{x}') && t.includes('{y}'), t);
    assert.ok(t.includes(`/tiles/${expect.layer.name}/{z}/{x}/{y}${expect.suffix}`), t);
    assert.equal(u.searchParams.get('v'), expect.layer.version, 'tile URLs carry the layer version');
  }
  for (const k of ['name', 'attribution', 'scheme'] as const) assert.equal(typeof tj[k], 'string', k);
  assert.ok(tj.name.length > 0 && tj.attribution.length > 0);
  assert.equal(tj.scheme, 'xyz');
  for (const k of ['minzoom', 'maxzoom'] as const) {
    assert.ok(Number.isInteger(tj[k]) && tj[k] >= 0 && tj[k] <= 30, `${k} is an integer in 0..30`);
  }
  assert.equal(tj.minzoom, expect.layer.minzoom);
  assert.equal(tj.maxzoom, expect.layer.maxzoom);
  assert.ok(tj.bounds.length === 4 && tj.bounds.every((v) => typeof v === 'number'));
  const [w, s, e, n] = tj.bounds as [number, number, number, number];
  assert.ok(w >= -180 && e <= 180 && s >= -85.0511287798066 && n <= 85.0511287798066 && w < e && s < n, `bounds ${tj.bounds}`);
  // Widened outward to 1e-7 degree at most.
  const lb = expect.layer.bounds;
  assert.ok(w <= lb[0] && s <= lb[1] && e >= lb[2] && n >= lb[3] && w > lb[0] - 2e-7 && n < lb[3] + 2e-7, `bounds ${tj.bounds} cover ${lb}`);
  assert.ok(tj.center.length === 3 && tj.center.every((v) => typeof v === 'number'));
  const [lon, lat, z] = tj.center as [number, number, number];
  assert.ok(lon >= w && lon <= e && lat >= s && lat <= n, `center ${tj.center} inside bounds ${tj.bounds}`);
  assert.ok(Number.isInteger(z) && z >= tj.minzoom && z <= tj.maxzoom, `center zoom ${z} in ${tj.minzoom}..${tj.maxzoom}`);
  assert.equal(tj.tileSize, expect.tileSize);
}

function fillTemplate(t: string, z: number, x: number, y: number): string {
  return t.replace('{z}', String(z)).replace('{x}', String(x)).replace('{y}', String(y));
}

describe('TileJSON', () => {
  test('3.0.0 fields, absolute versioned URLs, and the URLs fetch', async () => {
    for (const [name, size] of [
      ['landcover', 256],
      ['relief', 256],
      ['landcover512', 512],
    ] as const) {
      const layer = summary.get(name)!;
      for (const scale of [1, 2] as const) {
        const res = await fetch(`${base}/tiles/${name}/tilejson.json${scale === 2 ? '?scale=2' : ''}`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
        assert.equal(res.headers.get('access-control-allow-origin'), '*', 'pages on other origins read TileJSON');
        const tj = (await res.json()) as TileJsonDoc;
        checkTileJson(tj, { host: new URL(base).host, proto: 'http', layer, tileSize: size * scale, suffix: scale === 2 ? '@2x.png' : '.png' });
        // The centre tile fetches, as a PNG of the advertised size.
        const { x, y } = xyzTileAt(tj.center[0]!, tj.center[1]!, tj.center[2]!);
        const tile = await fetch(fillTemplate(tj.tiles[0]!, tj.center[2]!, x, y));
        assert.equal(tile.status, 200, `${name} centre tile`);
        assert.equal(tile.headers.get('content-type'), 'image/png');
        const meta = await sharp(Buffer.from(await tile.arrayBuffer())).metadata();
        assert.equal(meta.format, 'png');
        assert.equal(meta.width, tj.tileSize);
        assert.equal(meta.height, tj.tileSize);
      }
    }
  });

  test('format=webp gives the .webp template', async () => {
    const tj = (await (await fetch(`${base}/tiles/landcover/tilejson.json?format=webp&scale=2`)).json()) as TileJsonDoc;
    assert.match(tj.tiles[0]!, /\/\{z\}\/\{x\}\/\{y\}@2x\.webp\?v=/);
    const { x, y } = xyzTileAt(tj.center[0]!, tj.center[1]!, tj.center[2]!);
    const tile = await fetch(fillTemplate(tj.tiles[0]!, tj.center[2]!, x, y));
    assert.equal(tile.status, 200);
    assert.equal(tile.headers.get('content-type'), 'image/webp');
    assert.equal((await sharp(Buffer.from(await tile.arrayBuffer())).metadata()).width, 512);
  });

  test('X-Forwarded-Proto / X-Forwarded-Host (and -Port) from nginx make the URLs', async () => {
    const layer = summary.get('landcover')!;
    const get = async (headers: Record<string, string>) => (await (await fetch(`${base}/tiles/landcover/tilejson.json`, { headers })).json()) as TileJsonDoc;
    let tj = await get({ 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'tiles.example.org' });
    checkTileJson(tj, { host: 'tiles.example.org', proto: 'https', layer, tileSize: 256, suffix: '.png' });
    assert.ok(tj.tiles[0]!.startsWith('https://tiles.example.org/tiles/landcover/{z}/{x}/{y}.png?v='));
    // Comma lists (several proxies): the first is the client's.
    tj = await get({ 'X-Forwarded-Proto': 'https, http', 'X-Forwarded-Host': 'maps.example.org:8443, internal:8080' });
    assert.ok(tj.tiles[0]!.startsWith('https://maps.example.org:8443/tiles/'), tj.tiles[0]);
    tj = await get({ 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': 'maps.example.org', 'X-Forwarded-Port': '8081' });
    assert.ok(tj.tiles[0]!.startsWith('http://maps.example.org:8081/tiles/'), tj.tiles[0]);
    tj = await get({ 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'maps.example.org', 'X-Forwarded-Port': '443' });
    assert.ok(tj.tiles[0]!.startsWith('https://maps.example.org/tiles/'), tj.tiles[0]);
    // Without forwarding headers: the Host the client used (raw HTTP: fetch cannot set Host).
    const own = await request(base, '/tiles/landcover/tilejson.json', { headers: { Host: 'localhost:1234' } });
    assert.ok((JSON.parse(own.body.toString()) as TileJsonDoc).tiles[0]!.startsWith('http://localhost:1234/tiles/'));
    // A forged host cannot inject markup; the request's own Host is used instead.
    tj = await get({ 'X-Forwarded-Host': 'evil.example"><script>', 'X-Forwarded-Proto': 'javascript' });
    assert.ok(tj.tiles[0]!.startsWith(`${base}/tiles/`), tj.tiles[0]);
  });

  test('bad parameters and unknown layers answer JSON errors', async () => {
    for (const [url, status] of [
      ['/tiles/landcover/tilejson.json?scale=3', 400],
      ['/tiles/landcover/tilejson.json?format=jpg', 400],
      ['/tiles/nope/tilejson.json', 404],
    ] as const) {
      const res = await fetch(base + url);
      assert.equal(res.status, status, url);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const body = (await res.json()) as { error: string; detail: string };
      assert.equal(typeof body.error, 'string');
      assert.equal(typeof body.detail, 'string');
    }
  });

  test('a changed layer file changes the tile URLs', async () => {
    const tmp = await makeLayersDir();
    try {
      await tmp.copyData('nlcd2011_zion.tif');
      await tmp.write('landcover.yaml', LANDCOVER);
      const urlOf = async () => {
        const s = await startServer(tmp.dir, { WORKERS: '1' });
        try {
          return ((await (await fetch(`${s.url}/tiles/landcover/tilejson.json`)).json()) as TileJsonDoc).tiles[0]!.replace(s.url, '');
        } finally {
          await s.close();
        }
      };
      const before = await urlOf();
      assert.equal(await urlOf(), before, 'the same layer gives the same URLs');
      await tmp.write('landcover.yaml', LANDCOVER.replace('maxzoom: 16', 'maxzoom: 15'));
      const changed = await urlOf();
      assert.notEqual(changed, before);
      assert.equal(changed.replace(/\?v=.*/, ''), before.replace(/\?v=.*/, ''), 'only the version query changes');
    } finally {
      await tmp.remove();
    }
  });

  test('pure builder: centre and bounds', () => {
    const l = {
      name: 'a',
      version: 'v1',
      bounds: [10, 40, 10.5, 40.4] as [number, number, number, number],
      config: { title: '', description: '', attribution: '', minzoom: 3, maxzoom: 9, tileSize: 256 as const },
    };
    const tj = buildTileJson('https://h', l);
    assert.equal(tj.name, 'a', 'the layer name when there is no title');
    assert.deepEqual(tj.tiles, ['https://h/tiles/a/{z}/{x}/{y}.png?v=v1']);
    assert.equal(tj.center[2], 9, 'half a degree fits a 1024 px view at zoom 10, capped at maxzoom 9');
    assert.deepEqual(layerCenter([-180, -85, 180, 85], 0, 22), [0, 0, 1], 'the world fits 1024×768 at zoom 1');
    assert.equal(layerCenter([5, 5, 5, 5], 2, 14)[2], 14, 'a point: maxzoom');
  });
});

// ---------------------------------------------------------------------------------------
// WMTS capabilities

interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  text: string;
}

/**
 * A strict little XML reader for the test: throws on anything that is not well-formed
 * (unbalanced or crossed tags, unquoted attributes, a bare `&` or `<`, text outside the root).
 */
function parseXml(src: string): XmlNode {
  const doc: XmlNode = { name: '#document', attrs: {}, children: [], text: '' };
  const stack = [doc];
  const token =
    /<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<\/([A-Za-z_][\w:.-]*)\s*>|<([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|([^<]+)/y;
  const entity = (s: string) =>
    s.replace(/&(?:(amp|lt|gt|quot|apos)|#(\d+)|#x([0-9a-fA-F]+));|&/g, (m, named: string, dec: string, hex: string) => {
      if (named) return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[named]!;
      if (dec || hex) return String.fromCodePoint(parseInt(dec ?? hex, dec ? 10 : 16));
      throw new Error(`bare '&' in XML near: ${JSON.stringify(src.slice(token.lastIndex - 40, token.lastIndex))}`);
    });
  while (token.lastIndex < src.length) {
    const at = token.lastIndex;
    const m = token.exec(src);
    if (!m) throw new Error(`malformed XML at ${at}: ${JSON.stringify(src.slice(at, at + 60))}`);
    const top = stack[stack.length - 1]!;
    if (m[1]) {
      if (top.name !== m[1]) throw new Error(`</${m[1]}> closes <${top.name}> at ${at}`);
      stack.pop();
    } else if (m[2]) {
      const attrs: Record<string, string> = {};
      for (const a of m[3]!.matchAll(/([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        if (a[1]! in attrs) throw new Error(`attribute ${a[1]} twice on <${m[2]}>`);
        attrs[a[1]!] = entity(a[2] ?? a[3]!);
      }
      const node: XmlNode = { name: m[2], attrs, children: [], text: '' };
      if (top === doc && doc.children.length) throw new Error('a second root element');
      top.children.push(node);
      if (!m[4]) stack.push(node);
    } else if (m[5] !== undefined) {
      if (top === doc) {
        if (m[5].trim()) throw new Error('text outside the root element');
      } else top.text += entity(m[5]);
    }
  }
  if (stack.length !== 1) throw new Error(`<${stack[stack.length - 1]!.name}> is not closed`);
  if (doc.children.length !== 1) throw new Error('no root element');
  return doc.children[0]!;
}

const kids = (n: XmlNode, name: string) => n.children.filter((c) => c.name === name);
function kid(n: XmlNode, name: string): XmlNode {
  const all = kids(n, name);
  assert.equal(all.length, 1, `<${n.name}> has one <${name}>`);
  return all[0]!;
}
const textOf = (n: XmlNode, name: string) => kid(n, name).text.trim();
const pair = (s: string) => s.trim().split(/\s+/).map(Number) as [number, number];

/** The order of the children of wmts:LayerType in wmtsGetCapabilities_response.xsd (OWS DatasetDescriptionSummary first). */
const LAYER_ORDER = [
  'ows:Title',
  'ows:Abstract',
  'ows:Keywords',
  'ows:WGS84BoundingBox',
  'ows:Identifier',
  'ows:BoundingBox',
  'ows:Metadata',
  'Style',
  'Format',
  'InfoFormat',
  'Dimension',
  'TileMatrixSetLink',
  'ResourceURL',
];
const MATRIX_SET_ORDER = [
  'ows:Title',
  'ows:Abstract',
  'ows:Keywords',
  'ows:Identifier',
  'ows:BoundingBox',
  'ows:SupportedCRS',
  'WellKnownScaleSet',
  'TileMatrix',
];
function checkOrder(n: XmlNode, order: string[]): void {
  let last = -1;
  for (const c of n.children) {
    const i = order.indexOf(c.name);
    assert.ok(i >= 0, `<${c.name}> is not a child of <${n.name}>`);
    assert.ok(i >= last, `<${c.name}> comes too late in <${n.name}>`);
    last = i;
  }
}

/** OGC 07-057r7 Annex E.4 (GoogleMapsCompatible), scale denominators as published. */
const GOOGLE_SCALES: Record<number, number> = {
  0: 559082264.0287178,
  1: 279541132.0143589,
  5: 17471320.75089743,
  10: 545978.7734655447,
  18: 2132.729583849784,
};

describe('WMTS 1.0.0 capabilities', () => {
  let xml: string;
  let root: XmlNode;

  before(async () => {
    const res = await fetch(`${base}/wmts/1.0.0/WMTSCapabilities.xml`, { headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'tiles.example.org' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/xml/);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    xml = await res.text();
    await writeFile(path.join(OUT, 'WMTSCapabilities.xml'), xml);
    // The document depends on the request alone: the same request gives the same bytes.
    const again = await fetch(`${base}/wmts/1.0.0/WMTSCapabilities.xml`, {
      headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'tiles.example.org' },
    });
    assert.equal(await again.text(), xml);
    root = parseXml(xml);
  });

  test('well-formed, namespaced, with service identification', () => {
    assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>'));
    assert.equal(root.name, 'Capabilities');
    assert.equal(root.attrs.version, '1.0.0');
    assert.equal(root.attrs.xmlns, 'http://www.opengis.net/wmts/1.0');
    assert.equal(root.attrs['xmlns:ows'], 'http://www.opengis.net/ows/1.1');
    assert.equal(root.attrs['xmlns:xlink'], 'http://www.w3.org/1999/xlink');
    // Every prefix in use is declared on the root.
    const prefixes = new Set<string>();
    const walk = (n: XmlNode) => {
      for (const name of [n.name, ...Object.keys(n.attrs)]) if (name.includes(':') && !name.startsWith('xmlns:')) prefixes.add(name.split(':')[0]!);
      n.children.forEach(walk);
    };
    walk(root);
    for (const p of prefixes) assert.ok(root.attrs[`xmlns:${p}`], `prefix ${p} declared`);
    const si = kid(root, 'ows:ServiceIdentification');
    assert.equal(textOf(si, 'ows:ServiceType'), 'OGC WMTS');
    assert.equal(textOf(si, 'ows:ServiceTypeVersion'), '1.0.0');
    assert.equal(kid(root, 'ServiceMetadataURL').attrs['xlink:href'], 'https://tiles.example.org/wmts/1.0.0/WMTSCapabilities.xml');
  });

  test('GoogleMapsCompatible (256) and a 512 px matrix set with 0.28 mm scale denominators', () => {
    const contents = kid(root, 'Contents');
    const sets = new Map(kids(contents, 'TileMatrixSet').map((s) => [textOf(s, 'ows:Identifier'), s]));
    assert.deepEqual([...sets.keys()], ['GoogleMapsCompatible', 'GoogleMapsCompatible512']);
    const maxzoom = Math.max(...[...summary.values()].map((l) => l.maxzoom));
    for (const [id, size] of [
      ['GoogleMapsCompatible', 256],
      ['GoogleMapsCompatible512', 512],
    ] as const) {
      const set = sets.get(id)!;
      checkOrder(set, MATRIX_SET_ORDER);
      assert.equal(textOf(set, 'ows:SupportedCRS'), 'urn:ogc:def:crs:EPSG::3857');
      if (size === 256) assert.equal(textOf(set, 'WellKnownScaleSet'), 'urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible');
      const matrices = kids(set, 'TileMatrix');
      assert.equal(matrices.length, maxzoom + 1, 'zooms 0 to the deepest layer maxzoom');
      matrices.forEach((m, z) => {
        assert.equal(textOf(m, 'ows:Identifier'), String(z));
        const scale = Number(textOf(m, 'ScaleDenominator'));
        // The 512 set's matrix z has the pixels of GoogleMapsCompatible's z + 1.
        const published = GOOGLE_SCALES[size === 256 ? z : z + 1] ?? 559082264.0287178 / 2 ** (size === 256 ? z : z + 1);
        assert.ok(Math.abs(scale - published) / published < 1e-12, `${id} z${z}: ${scale} vs ${published}`);
        assert.ok(Math.abs(scale * 0.00028 * size * 2 ** z - 2 * Math.PI * 6378137) < 1e-6, 'the matrix spans the Mercator world');
        const [x0, y0] = pair(textOf(m, 'TopLeftCorner'));
        assert.ok(Math.abs(x0 + 20037508.3427892) < 1e-6 && Math.abs(y0 - 20037508.3427892) < 1e-6, 'top-left corner, easting then northing');
        assert.equal(textOf(m, 'TileWidth'), String(size));
        assert.equal(textOf(m, 'TileHeight'), String(size));
        assert.equal(textOf(m, 'MatrixWidth'), String(2 ** z));
        assert.equal(textOf(m, 'MatrixHeight'), String(2 ** z));
      });
    }
    assert.equal(scaleDenominator(0, 256), 559082264.0287178);
  });

  test('every layer: bounding boxes, style, PNG, matrix set links with limits, RESTful template', async () => {
    const contents = kid(root, 'Contents');
    const layerNodes = kids(contents, 'Layer');
    assert.deepEqual(layerNodes.map((l) => textOf(l, 'ows:Identifier')).sort(), [...summary.keys()].sort());
    for (const node of layerNodes) {
      const layer = summary.get(textOf(node, 'ows:Identifier'))!;
      checkOrder(node, LAYER_ORDER);
      assert.ok(textOf(node, 'ows:Title').length > 0);
      const wgs = kid(node, 'ows:WGS84BoundingBox');
      const [w, s] = pair(textOf(wgs, 'ows:LowerCorner'));
      const [e, n] = pair(textOf(wgs, 'ows:UpperCorner'));
      const lb = layer.bounds;
      for (const [got, want] of [
        [w, lb[0]],
        [s, lb[1]],
        [e, lb[2]],
        [n, lb[3]],
      ])
        assert.ok(Math.abs(got! - want!) < 2e-7, `WGS84BoundingBox ${[w, s, e, n]} vs ${lb}`);
      const merc = kid(node, 'ows:BoundingBox');
      assert.equal(merc.attrs.crs, 'urn:ogc:def:crs:EPSG::3857');
      const [mx0] = pair(textOf(merc, 'ows:LowerCorner'));
      assert.ok(Math.abs(mx0 - ((w * Math.PI) / 180) * 6378137) < 1e-3);
      const style = kid(node, 'Style');
      assert.equal(style.attrs.isDefault, 'true');
      assert.equal(textOf(style, 'ows:Identifier'), 'default');
      assert.equal(textOf(node, 'Format'), 'image/png');
      const links = kids(node, 'TileMatrixSetLink');
      const linked = links.map((l) => textOf(l, 'TileMatrixSet'));
      assert.deepEqual(linked, layer.tileSize === 256 ? ['GoogleMapsCompatible', 'GoogleMapsCompatible512'] : ['GoogleMapsCompatible512']);
      for (const link of links) {
        const limits = kids(kid(link, 'TileMatrixSetLimits'), 'TileMatrixLimits');
        assert.deepEqual(
          limits.map((l) => Number(textOf(l, 'TileMatrix'))),
          Array.from({ length: layer.maxzoom - layer.minzoom + 1 }, (_, i) => layer.minzoom + i),
        );
        for (const l of limits) {
          const z = Number(textOf(l, 'TileMatrix'));
          const nw = xyzTileAt(w, n, z),
            se = xyzTileAt(e, s, z);
          assert.deepEqual(
            [textOf(l, 'MinTileRow'), textOf(l, 'MaxTileRow'), textOf(l, 'MinTileCol'), textOf(l, 'MaxTileCol')].map(Number),
            [nw.y, se.y, nw.x, se.x],
            `limits at z${z}`,
          );
        }
      }
      const resource = kid(node, 'ResourceURL');
      assert.equal(resource.attrs.resourceType, 'tile');
      assert.equal(resource.attrs.format, 'image/png');
      const template = resource.attrs.template!;
      assert.equal(
        template,
        `https://tiles.example.org/wmts/1.0.0/${layer.name}/{Style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.png?v=${layer.version}`,
      );
      // The template answers with the XYZ tile of the same place (RESTful encoding, rows from the top).
      const c = xyzTileAt((w + e) / 2, (s + n) / 2, 12);
      for (const set of linked) {
        const url = template
          .replace('https://tiles.example.org', base)
          .replace('{Style}', 'default')
          .replace('{TileMatrixSet}', set)
          .replace('{TileMatrix}', '12')
          .replace('{TileRow}', String(c.y))
          .replace('{TileCol}', String(c.x));
        const wmts = await fetch(url);
        assert.equal(wmts.status, 200, url);
        assert.equal(wmts.headers.get('content-type'), 'image/png');
        const suffix = (set === 'GoogleMapsCompatible512') === (layer.tileSize === 256) ? '@2x.png' : '.png';
        const xyz = await fetch(`${base}/tiles/${layer.name}/12/${c.x}/${c.y}${suffix}`);
        assert.deepEqual(Buffer.from(await wmts.arrayBuffer()), Buffer.from(await xyz.arrayBuffer()), `${set} tile = XYZ ${suffix}`);
      }
    }
  });

  test('WMTS tile errors: unknown style, matrix set, layer; out of range', async () => {
    const c = xyzTileAt(-113.0, 37.3, 12);
    for (const [p, status] of [
      [`/wmts/1.0.0/landcover/fancy/GoogleMapsCompatible/12/${c.y}/${c.x}.png`, 404],
      [`/wmts/1.0.0/landcover/default/EPSG:4326/12/${c.y}/${c.x}.png`, 404],
      [`/wmts/1.0.0/landcover512/default/GoogleMapsCompatible/12/${c.y}/${c.x}.png`, 404],
      [`/wmts/1.0.0/nope/default/GoogleMapsCompatible/12/${c.y}/${c.x}.png`, 404],
      [`/wmts/1.0.0/landcover/default/GoogleMapsCompatible/12/${c.y}/${c.x}.jpg`, 400],
      [`/wmts/1.0.0/landcover/default/GoogleMapsCompatible/2/0/0.png`, 404],
    ] as const) {
      const res = await fetch(base + p);
      assert.equal(res.status, status, p);
      assert.equal(res.headers.get('cache-control'), 'no-store');
    }
  });

  test('WMTS: a matrix set the layer is not served in is answered with the sets it is served in', async () => {
    for (const [layer, served] of [
      ['landcover', "'GoogleMapsCompatible' and 'GoogleMapsCompatible512'"],
      ['landcover512', "'GoogleMapsCompatible512'"],
    ] as const) {
      for (const set of ['WebMercatorQuad', 'GoogleMapsCompatible'] as const) {
        if (layer === 'landcover' && set === 'GoogleMapsCompatible') continue;
        const res = await fetch(`${base}/wmts/1.0.0/${layer}/default/${set}/2/0/0.png`);
        assert.equal(res.status, 404, `${layer} ${set}`);
        const body = (await res.json()) as { error: string; detail: string };
        assert.equal(body.error, 'unknown tile matrix set');
        assert.equal(body.detail, `layer '${layer}' is not served in the tile matrix set '${set}'; it is served in ${served}`);
      }
    }
  });

  test('pure builder: escapes text, no layers still makes a valid document', () => {
    const l = {
      name: 'a',
      version: 'v"1',
      bounds: [0, 0, 1, 1] as [number, number, number, number],
      config: { title: 'A & <B>', description: '"quoted"', attribution: "O'Brien", minzoom: 0, maxzoom: 2, tileSize: 256 as const },
    };
    const doc = parseXml(buildWmtsCapabilities('http://h', [l]));
    const layer = kid(kid(doc, 'Contents'), 'Layer');
    assert.equal(textOf(layer, 'ows:Title'), 'A & <B>');
    assert.equal(textOf(layer, 'ows:Abstract'), `"quoted" Attribution: O'Brien`);
    assert.ok(kid(layer, 'ResourceURL').attrs.template!.endsWith('.png?v=v%221'));
    assert.equal(kids(kid(parseXml(buildWmtsCapabilities('http://h', [])), 'Contents'), 'TileMatrixSet').length, 2);
  });
});

// ---------------------------------------------------------------------------------------
// The preview page (its behaviour in a browser is test/browser.test.ts)

describe('preview page', () => {
  test('/map redirects to the first layer; unknown layers are 404', async () => {
    const first = [...summary.keys()].sort()[0]!;
    const res = await fetch(`${base}/map`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), `/map/${first}`);
    const missing = await fetch(`${base}/map/nope`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: string }).error, 'unknown layer');
  });

  test('HTML with every layer, MapLibre from this server, versioned and cacheable', async () => {
    const res = await fetch(`${base}/map/landcover`, { headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'tiles.example.org' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const html = await res.text();
    for (const name of summary.keys()) assert.ok(html.includes(`<option value="${name}"`), name);
    assert.ok(html.includes('https://tiles.example.org/tiles/landcover/{z}/{x}/{y}.png?v='), 'URLs for copying use the public host');
    assert.ok(!/(src|href)="https?:\/\//.test(html) && !/from 'https?:/.test(html), 'no script or style from another host');
    assert.ok(html.includes(`from '${MAPLIBRE_ASSETS}/maplibre-gl.mjs'`) && html.includes(`href="${MAPLIBRE_ASSETS}/maplibre-gl.css"`));
    // The worker is loaded by maplibre-gl.mjs from beside itself.
    for (const file of ['maplibre-gl.mjs', 'maplibre-gl-worker.mjs', 'maplibre-gl.css']) {
      const asset = await fetch(`${base}${MAPLIBRE_ASSETS}/${file}`);
      assert.equal(asset.status, 200, file);
      assert.match(
        asset.headers.get('content-type') ?? '',
        file.endsWith('.css') ? /^text\/css/ : /^text\/javascript/,
        'module scripts need a JavaScript type',
      );
      assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
      await asset.arrayBuffer();
    }
    const up = await request(base, `${MAPLIBRE_ASSETS}/../package.json`);
    assert.ok(up.status === 403 || up.status === 404, `no way out of dist/: ${up.status}`);
    assert.ok(!up.body.toString().includes('"name": "maplibre-gl"'));
    assert.equal((await fetch(`${base}/assets/maplibre-gl@0.0.0/maplibre-gl.mjs`)).status, 404, 'only the installed version');
    // The directory itself is no page (once a 301 to itself with a slash and an HTML body); a
    // range past the end is a JSON 416 that says so.
    for (const p of [MAPLIBRE_ASSETS, `${MAPLIBRE_ASSETS}/`]) {
      const dir = await request(base, p);
      assert.equal(dir.status, 404, p);
      assert.match(String(dir.headers['content-type']), /^application\/json/, p);
    }
    const past = await request(base, `${MAPLIBRE_ASSETS}/maplibre-gl.css`, { headers: { range: 'bytes=99999999-' } });
    assert.equal(past.status, 416);
    assert.deepEqual(JSON.parse(past.body.toString()), { error: 'range not satisfiable', detail: 'Range Not Satisfiable' });
    assert.equal(past.headers['cache-control'], 'no-store');
  });

  test('layer text cannot break out of the page', () => {
    const evil = {
      name: 'x',
      version: 'v',
      bounds: [0, 0, 1, 1] as [number, number, number, number],
      config: {
        title: '</script><script>alert(1)</script>',
        description: '<img src=x onerror=alert(2)>',
        attribution: '"><b>',
        minzoom: 0,
        maxzoom: 3,
        tileSize: 256 as const,
      },
    };
    const html = renderMapPage('http://h', evil, [evil]);
    assert.ok(!html.includes('<script>alert(1)'), 'escaped in <title>, <option> and the embedded JSON');
    assert.ok(!html.includes('<img src=x'));
    assert.ok(html.includes('&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; · tilegraph</title>'));
    assert.ok(html.includes('\\u003c/script>\\u003cscript>alert(1)\\u003c/script>'));
  });
});

// ---------------------------------------------------------------------------------------
// GDAL as the client

function gdal(cmd: string, args: string[], cacheDir: string): Promise<string> {
  const env = {
    ...GDAL_ENV,
    // Every read goes to the server: no WMS/WMTS disk cache, no PAM side files.
    GDAL_ENABLE_WMS_CACHE: 'NO',
    GDAL_DEFAULT_WMS_CACHE_PATH: cacheDir,
    GDAL_PAM_ENABLED: 'NO',
    GDAL_HTTP_TIMEOUT: '30',
    GDAL_HTTP_USERAGENT: 'tilegraph-test GDAL',
  };
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

interface Rgba {
  width: number;
  height: number;
  data: Buffer;
}
async function readRgba(file: string): Promise<Rgba> {
  const { data, info } = await sharp(file).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}

/** Pixels equal in colour (both opaque) or both transparent, as a fraction. */
function agreement(a: Rgba, b: Rgba, tolerance = 0): { fraction: number; opaqueA: number; opaqueB: number } {
  assert.equal(a.width, b.width);
  assert.equal(a.height, b.height);
  let same = 0,
    opaqueA = 0,
    opaqueB = 0;
  const n = a.width * a.height;
  for (let i = 0; i < n; i++) {
    const oa = a.data[4 * i + 3]! > 0,
      ob = b.data[4 * i + 3]! > 0;
    if (oa) opaqueA++;
    if (ob) opaqueB++;
    if (oa !== ob) continue;
    if (!oa) {
      same++;
      continue;
    }
    let d = 0;
    for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(a.data[4 * i + c]! - b.data[4 * i + c]!));
    if (d <= tolerance) same++;
  }
  return { fraction: same / n, opaqueA: opaqueA / n, opaqueB: opaqueB / n };
}

/** A square window of `size` pixels on the pixel grid of XYZ zoom z (256 px tiles), from global pixel (px, py). */
interface Block {
  z: number;
  px: number;
  py: number;
  size: number;
}
const tileBlock = (z: number, x0: number, y0: number, count: number): Block => ({ z, px: 256 * x0, py: 256 * y0, size: 256 * count });
function blockBounds(b: Block): [number, number, number, number] {
  const res = (2 * Math.PI * 6378137) / (256 * 2 ** b.z);
  const [west, , , north] = xyzBounds(0, 0, 0);
  return [west + b.px * res, north - (b.py + b.size) * res, west + (b.px + b.size) * res, north - b.py * res];
}

/** The GDAL WMS service description of the TMS minidriver over the XYZ template, world extent at zoom z. */
function tmsXml(template: string, z: number, tileSize: number): string {
  const url = template.replace('{z}', '${z}').replace('{x}', '${x}').replace('{y}', '${y}').replace(/&/g, '&amp;');
  const h = Math.PI * 6378137;
  return `<GDAL_WMS>
  <Service name="TMS"><ServerUrl>${url}</ServerUrl></Service>
  <DataWindow>
    <UpperLeftX>${-h}</UpperLeftX><UpperLeftY>${h}</UpperLeftY><LowerRightX>${h}</LowerRightX><LowerRightY>${-h}</LowerRightY>
    <TileLevel>${z}</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY><YOrigin>top</YOrigin>
  </DataWindow>
  <Projection>EPSG:3857</Projection>
  <BlockSizeX>${tileSize}</BlockSizeX><BlockSizeY>${tileSize}</BlockSizeY><BandsCount>4</BandsCount>
  <ZeroBlockHttpCodes>204,404</ZeroBlockHttpCodes>
</GDAL_WMS>
`;
}

describe('GDAL reads the server as a client', { skip: SKIP_GDAL }, () => {
  let cache: string;
  let caps: string;
  const refs = new Map<string, Rgba>();

  before(async () => {
    cache = path.join(OUT, 'gdal-cache');
    await mkdir(cache, { recursive: true });
    caps = `WMTS:${base}/wmts/1.0.0/WMTSCapabilities.xml`;
  });

  /** gdal_translate of `block` from a GDAL dataset name, as PNG, read back. */
  async function translate(name: string, block: Block, src: string): Promise<Rgba> {
    const [minX, minY, maxX, maxY] = blockBounds(block);
    const out = path.join(OUT, `${name}.png`);
    await gdal('gdal_translate', ['-q', '-of', 'PNG', '-projwin', ...[minX, maxY, maxX, minY].map(String), src, out], cache);
    const img = await readRgba(out);
    assert.equal(img.width, block.size, `${name}: GDAL read the block on the zoom ${block.z} grid`);
    return img;
  }

  /** Reference for the land cover: gdalwarp nearest onto the block's grid, palette expanded to RGBA. */
  async function landcoverReference(block: Block): Promise<Rgba> {
    const key = `nlcd-${block.z}-${block.px}-${block.py}-${block.size}`;
    if (refs.has(key)) return refs.get(key)!;
    const [minX, minY, maxX, maxY] = blockBounds(block);
    const size = String(block.size);
    const paletted = path.join(OUT, `ref-${key}.tif`);
    await gdal(
      'gdalwarp',
      [
        '-q',
        '-overwrite',
        '-t_srs',
        'EPSG:3857',
        '-te',
        ...[minX, minY, maxX, maxY].map(String),
        '-ts',
        size,
        size,
        '-r',
        'near',
        '-et',
        '0',
        path.join(layers.dir, 'data/nlcd2011_zion.tif'),
        paletted,
      ],
      cache,
    );
    const png = path.join(OUT, `ref-${key}.png`);
    await gdal('gdal_translate', ['-q', '-of', 'PNG', '-expand', 'rgba', paletted, png], cache);
    const img = await readRgba(png);
    refs.set(key, img);
    return img;
  }

  function report(t: TestContext, what: string, a: { fraction: number; opaqueA: number; opaqueB: number }): void {
    const msg = `${what}: ${(a.fraction * 100).toFixed(2)}% of pixels agree (opaque ${(a.opaqueA * 100).toFixed(1)}% / reference ${(a.opaqueB * 100).toFixed(1)}%)`;
    t.diagnostic(msg);
  }

  test('gdalinfo WMTS: lists every layer and matrix set as a subdataset', async () => {
    const info = await gdal('gdalinfo', [caps], cache);
    const names = [...info.matchAll(/SUBDATASET_\d+_NAME=(.*)/g)].map((m) => m[1]!.trim());
    const expected = [...summary.values()].flatMap((l) =>
      (l.tileSize === 256 ? ['GoogleMapsCompatible', 'GoogleMapsCompatible512'] : ['GoogleMapsCompatible512']).map(
        (set, _i, sets) => `${caps},layer=${l.name}${sets.length > 1 ? `,tilematrixset=${set}` : ''}`,
      ),
    );
    assert.deepEqual(names.sort(), expected.sort());
    assert.match(info, /SUBDATASET_\d+_DESC=Layer NLCD 2011 land cover \(test\), tile matrix set GoogleMapsCompatible\n/);
  });

  test('gdalinfo WMTS layer: Web Mercator, the zoom 13 pixel size, the layer extent', async () => {
    const json = JSON.parse(await gdal('gdalinfo', ['-json', `${caps},layer=landcover,tilematrixset=GoogleMapsCompatible,zoom_level=13`], cache)) as {
      geoTransform: number[];
      size: [number, number];
      bands: unknown[];
      coordinateSystem: { wkt: string };
    };
    assert.match(json.coordinateSystem.wkt, /Pseudo-Mercator/);
    assert.equal(json.bands.length, 4);
    const res = (2 * Math.PI * 6378137) / 256 / 2 ** 13;
    assert.ok(Math.abs(json.geoTransform[1]! - res) < 1e-9 && Math.abs(json.geoTransform[5]! + res) < 1e-9, `pixel size ${json.geoTransform[1]} vs ${res}`);
    const lb = summary.get('landcover')!.bounds;
    const west = ((lb[0] * Math.PI) / 180) * 6378137;
    assert.ok(Math.abs(json.geoTransform[0]! - west) <= res, "the raster starts at the layer's west edge");
    const east = json.geoTransform[0]! + json.size[0] * res;
    assert.ok(Math.abs(east - ((lb[2] * Math.PI) / 180) * 6378137) <= 2 * res);
  });

  test('land cover through WMTS (256 and 512 sets) and the TMS minidriver = gdalwarp of the COG', async (t) => {
    const lb = summary.get('landcover')!.bounds;
    // 3×3 tiles at zoom 13 in the middle of Zion, and 768×768 pixels from the north-west
    // corner of the layer's bounding box (one pixel in, so GDAL's WMTS raster holds it all),
    // where the UTM footprint, turned by meridian convergence, leaves nodata (transparent).
    const mid = xyzTileAt(-113.03, 37.32, 13);
    const res = (2 * Math.PI * 6378137) / (256 * 2 ** 13);
    const [west, , , north] = xyzBounds(0, 0, 0);
    const corner: Block = {
      z: 13,
      px: Math.floor((((lb[0] * Math.PI) / 180) * 6378137 - west) / res) + 1,
      py: Math.floor((north - Math.log(Math.tan(Math.PI / 4 + (lb[3] * Math.PI) / 360)) * 6378137) / res) + 1,
      size: 768,
    };
    const blocks: [string, Block][] = [
      ['middle', tileBlock(13, mid.x - 1, mid.y - 1, 3)],
      ['corner', corner],
    ];
    const tj = (await (await fetch(`${base}/tiles/landcover/tilejson.json`)).json()) as TileJsonDoc;
    const tms = path.join(OUT, 'landcover-tms.xml');
    await writeFile(tms, tmsXml(tj.tiles[0]!, 13, 256));
    for (const [where, block] of blocks) {
      const ref = await landcoverReference(block);
      const got = {
        'WMTS GoogleMapsCompatible z13': await translate(
          `landcover-${where}-wmts256`,
          block,
          `${caps},layer=landcover,tilematrixset=GoogleMapsCompatible,zoom_level=13`,
        ),
        // Matrix 12 of the 512 set has the pixels of zoom 13: the @2x tiles.
        'WMTS GoogleMapsCompatible512 z12 (@2x tiles)': await translate(
          `landcover-${where}-wmts512`,
          block,
          `${caps},layer=landcover,tilematrixset=GoogleMapsCompatible512,zoom_level=12`,
        ),
        // A layer with 512 px tiles, through its own .png.
        'WMTS GoogleMapsCompatible512 z12 (512 px layer)': await translate(`landcover512-${where}-wmts512`, block, `${caps},layer=landcover512,zoom_level=12`),
        'TMS minidriver z13': await translate(`landcover-${where}-tms`, block, tms),
      };
      for (const [client, img] of Object.entries(got)) {
        const a = agreement(img, ref);
        report(t, `land cover, ${where} block, ${client} vs gdalwarp -r near`, a);
        assert.ok(a.fraction >= 0.98, `${client}, ${where}: ${(a.fraction * 100).toFixed(2)}% agree`);
        assert.ok(a.opaqueB > 0.5, 'the block holds data');
      }
      if (where === 'corner') assert.ok(agreement(got['TMS minidriver z13'], ref).opaqueB < 0.999, 'the corner block holds nodata too');
    }
  });

  test('colour relief through WMTS and TMS = gdalwarp -r bilinear coloured by the same stops', async (t) => {
    const lb = summary.get('relief')!.bounds;
    const c = xyzTileAt((lb[0] + lb[2]) / 2, (lb[1] + lb[3]) / 2, 12);
    const block = tileBlock(12, c.x - 1, c.y - 1, 2);
    const size = 512;
    const warped = await warpTile(path.join(layers.dir, 'data/srtm_jasper_ab_100m.tif'), blockBounds(block), size, 'bilinear', cache);
    // Linear between the stops in metres, clamped at the ends; nodata transparent.
    const ref: Rgba = { width: size, height: size, data: Buffer.alloc(size * size * 4) };
    for (let i = 0; i < size * size; i++) {
      const v = warped.values[i]!;
      if (warped.alpha[i]! < 128 || Number.isNaN(v)) continue;
      let k = 0;
      while (k < RELIEF_STOPS.length - 2 && v > RELIEF_STOPS[k + 1]![0]) k++;
      const [v0, c0] = RELIEF_STOPS[k]!,
        [v1, c1] = RELIEF_STOPS[k + 1]!;
      const f = Math.min(1, Math.max(0, (v - v0) / (v1 - v0)));
      for (let ch = 0; ch < 3; ch++) ref.data[4 * i + ch] = Math.round(c0[ch]! + f * (c1[ch]! - c0[ch]!));
      ref.data[4 * i + 3] = 255;
    }
    await sharp(ref.data, { raw: { width: size, height: size, channels: 4 } })
      .png()
      .toFile(path.join(OUT, 'ref-relief.png'));
    const tj = (await (await fetch(`${base}/tiles/relief/tilejson.json`)).json()) as TileJsonDoc;
    const tms = path.join(OUT, 'relief-tms.xml');
    await writeFile(tms, tmsXml(tj.tiles[0]!, 12, 256));
    const got = {
      'WMTS GoogleMapsCompatible z12': await translate('relief-wmts256', block, `${caps},layer=relief,tilematrixset=GoogleMapsCompatible,zoom_level=12`),
      'TMS minidriver z12': await translate('relief-tms', block, tms),
    };
    for (const [client, img] of Object.entries(got)) {
      report(t, `colour relief, ${client} vs gdalwarp -r bilinear, identical RGB`, agreement(img, ref, 0));
      const close = agreement(img, ref, 2);
      report(t, `colour relief, ${client} vs gdalwarp -r bilinear, each channel within 2 levels`, close);
      assert.ok(close.fraction >= 0.97, `${client}: ${(close.fraction * 100).toFixed(2)}% within 2 levels`);
    }
  });
});
