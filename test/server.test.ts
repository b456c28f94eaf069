/**
 * End-to-end tests of the HTTP server (SPEC §3, §7): `serve()` on an ephemeral port over
 * temporary copies of the shipped layers, driven through real HTTP. Covers tile formats and
 * sizes, response headers and caching, empty tiles, errors and bad input, refused layer
 * files, a COG damaged while serving, COGs read over HTTP range requests from a real HTTP
 * server (with the requests counted), and single flight under a burst.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, stat, symlink, truncate } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import proj4 from 'proj4';
import {
  allTransparent,
  childMatchFraction,
  contains,
  decode,
  differingPixels,
  distinctColours,
  downsample,
  getJson,
  intersects,
  lonLatToTile,
  makeLayersDir,
  meanAbsDiff,
  metricValue,
  opaqueFraction,
  request,
  SHIPPED_DATA,
  shippedLayerText,
  startRangeServer,
  startServer,
  tileLonLatBounds,
  tilePath,
  type Answer,
  type RangeServer,
  type TempLayers,
  type TestServer,
  type Tile,
} from './helpers/http.js';

const SHIPPED = ['dem-relief', 'worldcover', 'zion-landcover', 'zion-nir'] as const;

interface LayerSummary {
  name: string;
  hash: string;
  version: string;
  bounds: [number, number, number, number];
  minzoom: number;
  maxzoom: number;
  tileSize: number;
}
interface LayerList {
  layers: LayerSummary[];
  refused: { file: string; error: string }[];
}
interface SourceMeta {
  crs: { proj4: string };
  width: number;
  height: number;
  overviews: [number, number][];
  blockSize: [number, number];
  bounds: [number, number, number, number];
}
interface LayerDetail extends LayerSummary {
  config: { cache: { maxAge: number; sMaxAge: number; staleWhileRevalidate: number } };
  sources: SourceMeta[];
}

/**
 * A tile well inside each shipped layer's data where the data has texture. Continuous layers
 * are sampled bilinearly; class layers (the file's own palette) with nearest.
 */
const INSIDE: Record<(typeof SHIPPED)[number], { tile: Tile; kind: 'continuous' | 'classes' }> = {
  'dem-relief': { tile: lonLatToTile(-117.55, 53.24, 12), kind: 'continuous' }, // Jasper foothills
  worldcover: { tile: lonLatToTile(6.6, 0.25, 12), kind: 'classes' }, // São Tomé island
  'zion-landcover': { tile: lonLatToTile(-113.0, 37.3, 12), kind: 'classes' }, // Zion canyon
  'zion-nir': { tile: lonLatToTile(-113.0, 37.3, 12), kind: 'continuous' },
};

/**
 * A dem-relief tile inside the layer's WGS84 bounding box but outside the footprint of its
 * source (EPSG:3402, whose square turns into a slanted quadrilateral): every pixel is nodata,
 * so the route cannot answer 204 from the bounding box alone; the render must come back empty.
 */
const DEM_NODATA_TILE: Tile = [12, 714, 1333];
/** Far from any shipped layer's data (the Gulf of Guinea at zoom 10 is at x 512; this is the Pacific). */
const FAR_AWAY: Tile = [10, 0, 0];

const STRONG_ETAG = /^"[\x21\x23-\x7e]+"$/;

function json(r: Answer): Record<string, unknown> {
  return JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
}

/** SPEC §3: every error body is JSON `{ error, detail }` with `Cache-Control: no-store`. */
function assertJsonError(r: Answer, status: number, what: string): { error: string; detail: string } {
  assert.equal(r.status, status, `${what}: status (body: ${r.body.toString('utf8').slice(0, 300)})`);
  assert.match(String(r.headers['content-type']), /^application\/json\b/, `${what}: content-type`);
  assert.equal(r.headers['cache-control'], 'no-store', `${what}: cache-control`);
  const body = json(r);
  assert.deepEqual(Object.keys(body).sort(), ['detail', 'error'], `${what}: body keys`);
  assert.equal(typeof body.error, 'string', `${what}: error is a string`);
  assert.ok((body.error as string).length > 0, `${what}: error is not empty`);
  assert.equal(typeof body.detail, 'string', `${what}: detail is a string`);
  return body as { error: string; detail: string };
}

async function assertAlive(base: string, after: string): Promise<void> {
  const r = await request(base, '/healthz');
  assert.equal(r.status, 200, `/healthz after ${after}`);
}

function cacheControlOf(c: LayerDetail['config']['cache']): string {
  return `public, max-age=${c.maxAge}, s-maxage=${c.sMaxAge}, stale-while-revalidate=${c.staleWhileRevalidate}`;
}

/** `Server-Timing: read;dur=1.2, ops;dur=...` as a map of name to duration. */
function serverTiming(header: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().split(';');
    const dur = params.map((p) => /^dur=([\d.]+)$/.exec(p.trim())).find(Boolean);
    if (name) out.set(name, dur ? Number(dur[1]) : NaN);
  }
  return out;
}

// ---------------------------------------------------------------------------------------

describe('tiles of the shipped layers through HTTP', () => {
  let tmp: TempLayers;
  let server: TestServer;
  let list: LayerList;
  const details = new Map<string, LayerDetail>();

  before(async () => {
    tmp = await makeLayersDir(SHIPPED);
    // Variants: the relief drawn with `empty: transparent`, and the NIR layer with its own cache policy.
    await tmp.write('dem-transparent.yaml', `${await shippedLayerText('dem-relief')}\nempty: transparent\n`);
    await tmp.write('nir-short-cache.yaml', `${await shippedLayerText('zion-nir')}\ncache: { maxAge: 60, sMaxAge: 120, staleWhileRevalidate: 30 }\n`);
    server = await startServer(tmp.dir, { WORKERS: '2' });
    list = (await getJson<LayerList>(server.url, '/layers')).json;
    for (const l of list.layers) details.set(l.name, (await getJson<LayerDetail>(server.url, `/layers/${l.name}`)).json);
  });
  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  test('/layers lists every shipped layer and the variants, and refuses none', () => {
    assert.deepEqual(list.refused, []);
    assert.deepEqual(list.layers.map((l) => l.name).sort(), [...SHIPPED, 'dem-transparent', 'nir-short-cache'].sort());
    for (const l of list.layers) assert.match(l.hash, /^[0-9a-f]{64}$/, `${l.name}: config hash is SHA-256 hex`);
  });

  for (const name of SHIPPED) {
    test(`${name}: PNG, @2x PNG, WebP and @2x WebP of a tile inside the data`, async (t: TestContext) => {
      const { tile, kind } = INSIDE[name];
      const layer = list.layers.find((l) => l.name === name)!;
      assert.ok(contains(layer.bounds, tileLonLatBounds(tile)), `${name} ${tile.join('/')} lies inside the layer's bounds`);

      const png = await request(server.url, tilePath(name, tile));
      assert.equal(png.status, 200, `${name} ${tile.join('/')}.png`);
      assert.equal(png.headers['content-type'], 'image/png');
      const one = await decode(png.body);
      assert.equal(one.format, 'png');
      assert.deepEqual([one.width, one.height], [256, 256]);
      const colours = distinctColours(one);
      const opaque = opaqueFraction(one);
      assert.ok(colours >= 4, `${name}: a tile inside the data is not blank (${colours} distinct colours)`);
      assert.ok(opaque >= 0.99, `${name}: a tile inside the data is opaque (${(opaque * 100).toFixed(1)}% opaque pixels)`);

      const png2 = await request(server.url, tilePath(name, tile, '@2x.png'));
      assert.equal(png2.status, 200);
      assert.equal(png2.headers['content-type'], 'image/png');
      const two = await decode(png2.body);
      assert.deepEqual([two.width, two.height], [512, 512]);
      assert.ok(opaqueFraction(two) >= 0.99, `${name} @2x is opaque`);
      // Same ground at twice the pixels: brought back to 256 by sharp, it must look like the 1x tile.
      const mad = meanAbsDiff(one.data, await downsample(two, 256));
      const match = childMatchFraction(one, two);
      t.diagnostic(
        `${name} ${tile.join('/')}: ${colours} colours; @2x downsampled to 256 vs 1x: mean abs diff ${mad.toFixed(2)}${kind === 'classes' ? `, 1x pixels found among their 2x2 @2x pixels ${(match * 100).toFixed(2)}%` : ''}`,
      );
      if (kind === 'continuous') {
        assert.ok(mad <= 3, `${name}: @2x downsampled differs from 1x by ${mad.toFixed(2)} on average (want <= 3)`);
      } else {
        // Classes have hard edges that a downsampling filter blurs; compare the 2x2 children instead.
        assert.ok(mad <= 12, `${name}: @2x downsampled differs from 1x by ${mad.toFixed(2)} on average (want <= 12)`);
        assert.ok(match >= 0.97, `${name}: only ${(match * 100).toFixed(2)}% of 1x pixels appear among their @2x pixels`);
      }

      const webp = await request(server.url, tilePath(name, tile, '.webp'));
      assert.equal(webp.status, 200);
      assert.equal(webp.headers['content-type'], 'image/webp');
      const w1 = await decode(webp.body);
      assert.equal(w1.format, 'webp');
      assert.equal(differingPixels(one, w1), 0, `${name}: .webp decodes to the PNG's pixels (lossless)`);

      const webp2 = await request(server.url, tilePath(name, tile, '@2x.webp'));
      assert.equal(webp2.status, 200);
      assert.equal(webp2.headers['content-type'], 'image/webp');
      const w2 = await decode(webp2.body);
      assert.deepEqual([w2.width, w2.height], [512, 512]);
      assert.equal(differingPixels(two, w2), 0, `${name}: @2x.webp decodes to the @2x PNG's pixels (lossless)`);

      // Each format and scale has its own validator.
      assert.equal(new Set([png, png2, webp, webp2].map((r) => r.headers.etag)).size, 4);
    });
  }

  test('tile headers: type, length, strong ETag, cache policy, CORS, X-Cache, Server-Timing, X-Layer-Hash; no Vary, no gzip', async () => {
    const name = 'zion-landcover';
    const tile = lonLatToTile(-113.0, 37.3, 11);
    const layer = list.layers.find((l) => l.name === name)!;
    const want = cacheControlOf(details.get(name)!.config.cache);
    const headers = { 'accept-encoding': 'gzip, deflate, br' };

    const first = await request(server.url, tilePath(name, tile), { headers });
    const second = await request(server.url, tilePath(name, tile), { headers });
    for (const [r, tier] of [
      [first, 'miss'],
      [second, 'hit-l1'],
    ] as const) {
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'image/png');
      assert.equal(r.headers['content-length'], String(r.body.length), 'Content-Length is the body length');
      assert.match(String(r.headers.etag), STRONG_ETAG, 'a strong ETag (no W/)');
      assert.equal(r.headers['cache-control'], want);
      assert.equal(r.headers['access-control-allow-origin'], '*');
      assert.equal(r.headers['x-cache'], tier);
      const timing = serverTiming(String(r.headers['server-timing'] ?? ''));
      for (const stage of ['read', 'ops', 'encode', 'cache']) {
        assert.ok(Number.isFinite(timing.get(stage)), `Server-Timing has ${stage};dur= (${r.headers['server-timing']})`);
      }
      assert.equal(r.headers['x-layer-hash'], layer.hash.slice(0, 12));
      assert.equal(r.headers.vary, undefined, 'no Vary');
      assert.equal(r.headers['content-encoding'], undefined, 'no Content-Encoding on images');
    }
    assert.equal(second.headers.etag, first.headers.etag);
    assert.ok(second.body.equals(first.body), 'the cached answer is the same bytes');

    const webp = await request(server.url, tilePath(name, tile, '.webp'), { headers });
    assert.equal(webp.headers['content-type'], 'image/webp');
    assert.equal(webp.headers['content-length'], String(webp.body.length));
    assert.equal(webp.headers['content-encoding'], undefined);
  });

  test('If-None-Match with the current ETag answers 304 with an empty body', async () => {
    const name = 'zion-nir';
    const tile = lonLatToTile(-113.0, 37.3, 11);
    const r = await request(server.url, tilePath(name, tile));
    assert.equal(r.status, 200);
    const etag = String(r.headers.etag);
    const nm = await request(server.url, tilePath(name, tile), { headers: { 'if-none-match': etag } });
    assert.equal(nm.status, 304);
    assert.equal(nm.body.length, 0);
    assert.equal(nm.headers.etag, etag);
    assert.equal(nm.headers['cache-control'], cacheControlOf(details.get(name)!.config.cache));
    // RFC 9110 §13.1.2: a list of tags, compared weakly, or `*`.
    for (const header of [`W/${etag}`, `"other", ${etag}`, '*']) {
      const r304 = await request(server.url, tilePath(name, tile), { headers: { 'if-none-match': header } });
      assert.equal(r304.status, 304, `If-None-Match: ${header}`);
      assert.equal(r304.body.length, 0);
    }
    const other = await request(server.url, tilePath(name, tile), { headers: { 'if-none-match': '"not-the-etag"' } });
    assert.equal(other.status, 200);
    assert.ok(other.body.equals(r.body));
  });

  test("Cache-Control comes from the layer's cache policy", async () => {
    const tile = INSIDE['zion-nir'].tile;
    const r = await request(server.url, tilePath('nir-short-cache', tile));
    assert.equal(r.status, 200);
    assert.equal(r.headers['cache-control'], 'public, max-age=60, s-maxage=120, stale-while-revalidate=30');
    const shipped = await request(server.url, tilePath('dem-relief', INSIDE['dem-relief'].tile));
    assert.equal(
      shipped.headers['cache-control'],
      'public, max-age=3600, s-maxage=86400, stale-while-revalidate=600',
      'dem-relief.yaml: cache { maxAge: 3600, sMaxAge: 86400, staleWhileRevalidate: 600 }',
    );
  });

  test('204 for a tile outside the data and for an entirely nodata tile; cacheable, cached as empty', async () => {
    const name = 'dem-relief';
    const layer = list.layers.find((l) => l.name === name)!;
    const policy = cacheControlOf(details.get(name)!.config.cache);
    assert.ok(intersects(layer.bounds, tileLonLatBounds(DEM_NODATA_TILE)), 'the nodata tile lies within the bounding box');
    assert.ok(!intersects(layer.bounds, tileLonLatBounds(FAR_AWAY)));
    for (const tile of [FAR_AWAY, DEM_NODATA_TILE]) {
      for (const suffix of ['.png', '@2x.png', '.webp']) {
        const p = tilePath(name, tile, suffix);
        const first = await request(server.url, p);
        assert.equal(first.status, 204, p);
        assert.equal(first.body.length, 0);
        assert.equal(first.headers['cache-control'], policy, `${p}: an empty tile is cacheable`);
        assert.equal(first.headers['access-control-allow-origin'], '*');
        assert.match(String(first.headers.etag), STRONG_ETAG);
        assert.equal(first.headers['x-cache'], 'miss');
        const again = await request(server.url, p);
        assert.equal(again.status, 204);
        assert.equal(again.headers['x-cache'], 'hit-l1', `${p}: empty tiles are cached as empty`);
        assert.equal(again.headers.etag, first.headers.etag);
        const nm = await request(server.url, p, { headers: { 'if-none-match': String(first.headers.etag) } });
        assert.equal(nm.status, 304, `${p} with If-None-Match`);
      }
    }
  });

  test('a layer with `empty: transparent` answers a transparent tile instead of 204', async () => {
    const name = 'dem-transparent';
    for (const tile of [FAR_AWAY, DEM_NODATA_TILE]) {
      for (const [suffix, size, type] of [
        ['.png', 256, 'image/png'],
        ['@2x.png', 512, 'image/png'],
        ['.webp', 256, 'image/webp'],
        ['@2x.webp', 512, 'image/webp'],
      ] as const) {
        const p = tilePath(name, tile, suffix);
        const r = await request(server.url, p);
        assert.equal(r.status, 200, p);
        assert.equal(r.headers['content-type'], type);
        assert.equal(r.headers['content-length'], String(r.body.length));
        assert.match(String(r.headers.etag), STRONG_ETAG);
        const img = await decode(r.body);
        assert.deepEqual([img.width, img.height], [size, size], p);
        assert.ok(allTransparent(img), `${p} is fully transparent`);
      }
    }
    // Where there is data it draws exactly what the 204 variant draws.
    const tile = INSIDE['dem-relief'].tile;
    const a = await decode((await request(server.url, tilePath(name, tile))).body);
    const b = await decode((await request(server.url, tilePath('dem-relief', tile))).body);
    assert.equal(differingPixels(a, b), 0);
  });

  test('errors: 404 JSON off the grid, out of zoom range, unknown layers and routes; 400 JSON for malformed paths; the server keeps serving', async () => {
    const cases: [path: string, status: number, method?: string][] = [
      ['/tiles/no-such-layer/10/1/1.png', 404],
      ['/tiles/..%2F..%2Fetc/10/1/1.png', 404],
      ['/tiles/dem-relief/5/5/10.png', 404], // below minzoom 6
      ['/tiles/dem-relief/16/11000/21000.png', 404], // above maxzoom 15
      ['/tiles/dem-relief/99/1/1.png', 404],
      ['/tiles/dem-relief/6/64/20.png', 404], // x = 2^6
      ['/tiles/dem-relief/6/11/64.png', 404], // y = 2^6
      ['/tiles/dem-relief/6/11/64@2x.webp', 404],
      ['/tiles/dem-relief/10/9999999999/1.png', 404],
      ['/tiles/dem-relief/a/1/1.png', 400],
      ['/tiles/dem-relief/10/1/1.jpg', 400],
      ['/tiles/dem-relief/10/1/1.PNG', 400],
      ['/tiles/dem-relief/10/1/1@3x.png', 400],
      ['/tiles/dem-relief/10/1/1.5.png', 400],
      ['/tiles/dem-relief/10/1/-1.png', 400],
      ['/tiles/dem-relief/10/-1/1.png', 400],
      ['/tiles/dem-relief/-10/1/1.png', 400],
      ['/tiles/dem-relief/10/1e3/1.png', 400],
      ['/tiles/dem-relief/10/99999999999999999999/1.png', 400],
      ['/tiles/dem-relief/10/1/99999999999999999999.png', 400],
      ['/tiles/dem-relief/99999999999999999999/1/1.png', 400],
      ['/tiles/dem-relief/10/1/1%00.png', 400],
      ['/tiles/dem-relief/10%00/1/1.png', 400],
      ['/tiles/dem-relief/10/../1.png', 400],
      ['/tiles/dem-relief/10/1/..%2F..%2Fetc%2Fpasswd', 400],
      ['/tiles/dem-relief/10/1/%zz.png', 400],
      ['/tiles/dem-relief/../../../etc/passwd', 404],
      ['/tiles/dem-relief/10/1', 404],
      ['/tiles/dem-relief/10/1/1/1.png', 404],
      ['/nope', 404],
      ['/layers/no-such-layer', 404],
      // Issue 13, finding 8: the tile exists, not for POST.
      ['/tiles/dem-relief/10/177/332.png', 405, 'POST'],
    ];
    for (const [p, status, method] of cases) {
      const r = await request(server.url, p, { method });
      assertJsonError(r, status, `${method ?? 'GET'} ${p}`);
      await assertAlive(server.url, p);
    }
    const ok = await request(server.url, tilePath('dem-relief', INSIDE['dem-relief'].tile));
    assert.equal(ok.status, 200, 'tiles still serve after the bad requests');
  });

  test('single flight: 20 concurrent requests for one uncached tile get one render and identical answers', async (t: TestContext) => {
    const name = 'zion-nir';
    const tile = lonLatToTile(-113.05, 37.25, 13);
    const before = await metricValue(server.url, 'tilegraph_renders_total', { layer: name });
    const answers = await Promise.all(Array.from({ length: 20 }, () => request(server.url, tilePath(name, tile))));
    const renders = (await metricValue(server.url, 'tilegraph_renders_total', { layer: name })) - before;
    const tiers = answers.map((a) => a.headers['x-cache']);
    t.diagnostic(`20 concurrent requests: ${renders} render(s); X-Cache ${[...new Set(tiers)].join(', ')}`);
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.ok(a.body.equals(answers[0]!.body), 'identical bodies');
      assert.equal(a.headers.etag, answers[0]!.headers.etag, 'identical ETags');
    }
    assert.ok(tiers.every((x) => x === 'miss' || x === 'hit-l1'));
    assert.equal(renders, 1, 'rendered once (tilegraph_renders_total)');
    const later = await request(server.url, tilePath(name, tile));
    assert.equal(later.headers['x-cache'], 'hit-l1');
    assert.equal((await metricValue(server.url, 'tilegraph_renders_total', { layer: name })) - before, 1);
  });

  test('/healthz and /readyz answer', async () => {
    const h = await getJson<{ status: string }>(server.url, '/healthz');
    assert.equal(h.status, 200);
    assert.equal(h.headers['cache-control'], 'no-store');
    const r = await getJson<{ status: string; layers: number; threads: number }>(server.url, '/readyz');
    assert.equal(r.status, 200);
    assert.equal(r.json.layers, list.layers.length);
    assert.ok(r.json.threads >= 1);
  });
});

// ---------------------------------------------------------------------------------------

describe('bad layer files are refused while the good layers serve', () => {
  let tmp: TempLayers;
  let server: TestServer;
  const DEM = 'srtm_jasper_ab_100m.tif';
  const NLCD = 'nlcd2011_zion.tif';
  const read = 'pipeline:\n  - read: { source: dem }\n';
  /** File name -> what its refusal must say. */
  const BAD: Record<string, RegExp> = {
    'broken-yaml.yaml': /YAML/i,
    'unknown-op.yaml': /frobnicate/,
    'tap-op.yaml': /tap/,
    'escape-dotdot.yaml': /outside the layers directory/,
    'escape-symlink.yaml': /outside the layers directory/,
    'escape-absolute.yaml': /absolute path|outside the layers directory/,
    'missing-source.yaml': /does not exist/,
    'truncated-cog.yaml': /source 'lc': .*truncated\.tif/,
    'corrupt-cog.yaml': /source 'lc': .*corrupt\.tif/,
    // Names the layer file and the source; the reader's message for a file shorter than a
    // TIFF header does not name the data file yet (see src/sources/tiff.ts readTiff).
    'empty-cog.yaml': /source 'lc'/,
  };

  before(async () => {
    tmp = await makeLayersDir(['dem-relief', 'zion-landcover']);
    const outside = path.join(tmp.root, 'outside');
    await mkdir(outside);
    await copyFile(path.join(SHIPPED_DATA, DEM), path.join(outside, DEM));
    await symlink(path.join(outside, DEM), path.join(tmp.dir, 'data', 'link.tif'));

    await tmp.write('broken-yaml.yaml', `title: [unclosed\nsources: { dem: ./data/${DEM}\n`);
    await tmp.write('unknown-op.yaml', `sources: { dem: ./data/${DEM} }\n${read}  - frobnicate: { strength: 3 }\n`);
    await tmp.write('tap-op.yaml', `sources: { dem: ./data/${DEM} }\n${read}  - tap: {}\n`);
    await tmp.write('escape-dotdot.yaml', `sources: { dem: ../outside/${DEM} }\n${read}`);
    await tmp.write('escape-symlink.yaml', `sources: { dem: ./data/link.tif }\n${read}`);
    await tmp.write('escape-absolute.yaml', `sources: { dem: ${JSON.stringify(path.join(outside, DEM))} }\n${read}`);
    await tmp.write('missing-source.yaml', `sources: { dem: ./data/nowhere.tif }\n${read}`);

    // A COG cut inside its directory, one whose directory is garbage, and an empty file.
    const nlcd = await readFile(path.join(SHIPPED_DATA, NLCD));
    await tmp.write('data/truncated.tif', nlcd.subarray(0, 300));
    const garbage = Buffer.alloc(64 * 1024);
    let s = 0x9e3779b9;
    for (let i = 0; i < garbage.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      garbage[i] = s >>> 24;
    }
    nlcd.copy(garbage, 0, 0, 8); // a valid TIFF header pointing at garbage
    await tmp.write('data/corrupt.tif', garbage);
    await tmp.write('data/empty.tif', '');
    for (const f of ['truncated', 'corrupt', 'empty']) {
      await tmp.write(`${f}-cog.yaml`, `sources: { lc: ./data/${f}.tif }\npipeline:\n  - read: { source: lc }\n  - colormap: { name: source }\n`);
    }
    server = await startServer(tmp.dir, { WORKERS: '1' });
  });
  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  test('/layers lists the good layers and each refused file with a message naming the file and the problem', async (t: TestContext) => {
    const { json: list } = await getJson<LayerList>(server.url, '/layers');
    assert.deepEqual(list.layers.map((l) => l.name).sort(), ['dem-relief', 'zion-landcover']);
    assert.deepEqual(list.refused.map((r) => r.file).sort(), Object.keys(BAD).sort());
    for (const r of list.refused) {
      t.diagnostic(`refused ${r.error}`);
      assert.ok(r.error.includes(r.file), `the message names the file: ${r.error}`);
      assert.match(r.error, BAD[r.file]!, `${r.file}: ${r.error}`);
    }
  });

  test('refused layers answer 404 and the good layers still serve', async () => {
    for (const file of Object.keys(BAD)) {
      const name = file.replace(/\.yaml$/, '');
      assertJsonError(await request(server.url, `/tiles/${name}/10/177/332.png`), 404, name);
      assertJsonError(await request(server.url, `/layers/${name}`), 404, name);
    }
    for (const name of ['dem-relief', 'zion-landcover'] as const) {
      const r = await request(server.url, tilePath(name, INSIDE[name].tile));
      assert.equal(r.status, 200, name);
      assert.ok(distinctColours(await decode(r.body)) >= 4);
    }
    await assertAlive(server.url, 'refused layers');
    assert.equal((await request(server.url, '/readyz')).status, 200);
  });
});

// ---------------------------------------------------------------------------------------

describe('a COG truncated while the server runs', () => {
  let tmp: TempLayers;
  let server: TestServer;
  const WORLDCOVER = 'ESA_WorldCover_10m_2021_v200_N00E006_Map.tif';

  before(async () => {
    tmp = await makeLayersDir(['worldcover', 'dem-relief']); // copies: the worldcover copy gets cut
    // No version re-checks: the render thread keeps reading the file it opened while it is cut.
    server = await startServer(tmp.dir, { WORKERS: '1', SOURCE_RECHECK_S: '0' });
  });
  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  test('tiles that need the missing bytes answer a clean 500 JSON, the rest keep serving', async (t: TestContext) => {
    const island = (z: number, dlon = 0, dlat = 0) => lonLatToTile(6.6 + dlon, 0.25 + dlat, z);
    const warm = await request(server.url, tilePath('worldcover', island(10)));
    assert.equal(warm.status, 200, 'the layer serves before the damage');

    // Cut the file in half in place, as a failed copy would leave it. The COG keeps its
    // directories and overviews at the front; the full-resolution blocks that zooms 15+ read
    // over São Tomé (rows 31-35 of 1024-pixel blocks) lie in the second half.
    const file = path.join(tmp.dir, 'data', WORLDCOVER);
    const { size } = await stat(file);
    await truncate(file, Math.floor(size / 2));

    const damaged = [
      tilePath('worldcover', island(15)),
      tilePath('worldcover', island(15, 0.02, 0.02), '@2x.png'),
      tilePath('worldcover', island(16, -0.01, 0.01), '.webp'),
    ];
    for (const p of damaged) {
      const r = await request(server.url, p);
      const body = assertJsonError(r, 500, p);
      t.diagnostic(`${p}: ${r.status} ${JSON.stringify(body)}`);
      assert.match(body.detail, new RegExp(WORLDCOVER.replace(/\./g, '\\.')), 'the detail names the source');
      await assertAlive(server.url, p);
    }
    // A failed render is not cached: asking again fails again, cleanly.
    assertJsonError(await request(server.url, damaged[0]!), 500, `${damaged[0]} again`);

    // The overview a zoom-11 tile reads lies in the first half and still serves; so does another layer.
    const low = await request(server.url, tilePath('worldcover', island(11)));
    assert.equal(low.status, 200, 'an unaffected tile of the damaged layer');
    const other = await request(server.url, tilePath('dem-relief', INSIDE['dem-relief'].tile));
    assert.equal(other.status, 200, 'another layer');
    assert.equal((await request(server.url, '/readyz')).status, 200);
  });
});

describe('a COG replaced while the server runs (SOURCE_RECHECK_S)', () => {
  let tmp: TempLayers;
  let server: TestServer;
  const WORLDCOVER = 'ESA_WorldCover_10m_2021_v200_N00E006_Map.tif';

  before(async () => {
    tmp = await makeLayersDir(['worldcover']);
    server = await startServer(tmp.dir, { WORKERS: '1', SOURCE_RECHECK_S: '1' });
  });
  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  test('the layer version changes, so cached tiles are not answered stale, and damaged tiles answer 500', async (t: TestContext) => {
    const versionOf = async () => (await getJson<LayerList>(server.url, '/layers')).json.layers.find((l) => l.name === 'worldcover')?.version;
    const p = tilePath('worldcover', lonLatToTile(6.6, 0.25, 10));
    const first = await request(server.url, p);
    assert.equal(first.status, 200);
    assert.equal((await request(server.url, p)).headers['x-cache'], 'hit-l1');
    const before = await versionOf();

    const file = path.join(tmp.dir, 'data', WORLDCOVER);
    await truncate(file, Math.floor((await stat(file)).size / 2));
    const waited = performance.now();
    let now = before;
    while (now === before && performance.now() - waited < 10_000) {
      await new Promise((r) => setTimeout(r, 100));
      now = await versionOf();
    }
    t.diagnostic(`layer version ${before} -> ${now} after ${((performance.now() - waited) / 1000).toFixed(1)} s`);
    assert.ok(now && now !== before, 'the layer was reloaded with a new version');

    const again = await request(server.url, p);
    assert.equal(again.status, 200, 'the overview it reads is intact');
    assert.equal(again.headers['x-cache'], 'miss', 'not answered from the entry of the old version');
    assert.notEqual(again.headers.etag, first.headers.etag, 'a new version gives a new ETag');
    assert.equal(differingPixels(await decode(again.body), await decode(first.body)), 0);
    assertJsonError(await request(server.url, tilePath('worldcover', lonLatToTile(6.6, 0.25, 15))), 500, 'a tile in the cut-off half');
    await assertAlive(server.url, 'the reload');
  });
});

// ---------------------------------------------------------------------------------------

/**
 * The most source blocks a tile can touch, worked out from the source's metadata with proj4:
 * the tile's footprint in each pyramid level, padded by two pixels for bilinear sampling and
 * operator buffers, counted in blocks; the largest over the levels (a render reads one level).
 */
function blocksTouched(meta: SourceMeta, tile: Tile): number {
  const toSource = proj4('EPSG:4326', meta.crs.proj4);
  const [w, s, e, n] = tileLonLatBounds(tile);
  const points: [number, number][] = [];
  for (let k = 0; k <= 16; k++) {
    const f = k / 16;
    points.push([w + f * (e - w), s], [w + f * (e - w), n], [w, s + f * (n - s)], [e, s + f * (n - s)]);
  }
  const src = points.map((p) => toSource.forward(p));
  const [minX, minY, maxX, maxY] = meta.bounds;
  const [bw, bh] = meta.blockSize;
  const clamp = (v: number, hi: number) => Math.max(0, Math.min(hi, v));
  let most = 0;
  for (const [lw, lh] of [[meta.width, meta.height] as [number, number], ...meta.overviews]) {
    const px = src.map(([x]) => ((x! - minX) / (maxX - minX)) * lw);
    const py = src.map(([, y]) => ((maxY - y!) / (maxY - minY)) * lh);
    const x0 = clamp(Math.floor(Math.min(...px)) - 2, lw),
      x1 = clamp(Math.ceil(Math.max(...px)) + 2, lw);
    const y0 = clamp(Math.floor(Math.min(...py)) - 2, lh),
      y1 = clamp(Math.ceil(Math.max(...py)) + 2, lh);
    if (x1 <= x0 || y1 <= y0) continue;
    const blocks = (Math.floor((x1 - 1) / bw) - Math.floor(x0 / bw) + 1) * (Math.floor((y1 - 1) / bh) - Math.floor(y0 / bh) + 1);
    most = Math.max(most, blocks);
  }
  return most;
}

describe('COGs over HTTP range requests', () => {
  let tmp: TempLayers;
  let range: RangeServer;
  let server: TestServer;
  let atLoad: ReturnType<RangeServer['counts']>;
  const NIR = 'landsat8_zion_20150818_b5_nir.tif';

  before(async () => {
    range = await startRangeServer(SHIPPED_DATA);
    tmp = await makeLayersDir();
    await tmp.copyData(NIR);
    const text = await shippedLayerText('zion-nir');
    assert.ok(text.includes(`./data/${NIR}`));
    const withSource = (ref: string) => text.replace(`./data/${NIR}`, ref);
    await tmp.write('nir-disk.yaml', text);
    await tmp.write('nir-http.yaml', withSource(`${range.url}/${NIR}`));
    await tmp.write('nir-host-not-allowed.yaml', withSource(`http://localhost:${new URL(range.url).port}/forbidden.tif`));
    await tmp.write('nir-other-port.yaml', withSource('http://127.0.0.1:9/forbidden.tif'));
    await tmp.write('nir-file-url.yaml', withSource('file:///etc/passwd'));
    await tmp.write('nir-missing-url.yaml', withSource(`${range.url}/missing.tif`));
    server = await startServer(tmp.dir, { WORKERS: '1', ALLOWED_HOSTS: range.host });
    atLoad = range.counts((r) => r.path === `/${NIR}`);
    range.reset();
  });
  after(async () => {
    await server?.close();
    await range?.close();
    await tmp?.remove();
  });

  test('an http source on an allowed host loads; other hosts, ports and schemes are refused without a request', async (t: TestContext) => {
    const { json: list } = await getJson<LayerList>(server.url, '/layers');
    t.diagnostic(`loading the HTTP layer: ${atLoad.head} HEAD, ${atLoad.range} range GET(s), ${atLoad.full} full GET(s)`);
    assert.deepEqual(list.layers.map((l) => l.name).sort(), ['nir-disk', 'nir-http']);
    const refused = new Map(list.refused.map((r) => [r.file, r.error]));
    assert.match(refused.get('nir-host-not-allowed.yaml') ?? '', /not allowed/);
    assert.match(refused.get('nir-other-port.yaml') ?? '', /not allowed/);
    assert.match(refused.get('nir-file-url.yaml') ?? '', /not allowed/);
    assert.match(refused.get('nir-missing-url.yaml') ?? '', /404/);
    assert.equal(range.requests.filter((r) => r.path.includes('forbidden')).length, 0, 'no request for a refused host');
    assert.equal(atLoad.full, 0, 'the whole file is never downloaded');
    assert.ok(atLoad.head === 1 && atLoad.range <= 3, `loading reads the header with a few requests (${JSON.stringify(atLoad)})`);
    assert.ok(
      range.requests.filter((r) => r.method === 'GET' && r.path.includes(NIR)).every((r) => r.status === 206),
      'every range GET answered 206',
    );
  });

  test('tiles read over HTTP equal the tiles read from disk, with few range requests each', async (t: TestContext) => {
    const { json: detail } = await getJson<LayerDetail>(server.url, '/layers/nir-http');
    const meta = detail.sources[0]!;
    const tiles: [Tile, string][] = [
      [[12, 762, 1590], '.png'],
      [[12, 763, 1590], '.png'],
      [[12, 762, 1591], '.png'],
      [[13, 1524, 3180], '.png'],
      [[11, 381, 795], '.png'],
      [[10, 190, 397], '.png'],
      [[9, 95, 198], '.png'],
      [[8, 47, 99], '.png'],
      [[12, 761, 1589], '@2x.png'],
      [[13, 1525, 3181], '.webp'],
    ];
    const measured: string[] = [];
    const fetched: string[] = [];
    let first = true;
    for (const [tile, suffix] of tiles) {
      range.reset();
      const viaHttp = await request(server.url, tilePath('nir-http', tile, suffix));
      const c = range.counts();
      fetched.push(
        ...range
          .recent()
          .filter((r) => r.method === 'GET' && r.range)
          .map((r) => String(r.range)),
      );
      const fromDisk = await request(server.url, tilePath('nir-disk', tile, suffix));
      const where = `${tile.join('/')}${suffix}`;
      assert.equal(viaHttp.status, 200, `${where} over HTTP: ${viaHttp.body.toString('utf8').slice(0, 200)}`);
      assert.equal(fromDisk.status, 200, `${where} from disk`);
      const [a, b] = [await decode(viaHttp.body), await decode(fromDisk.body)];
      assert.equal(differingPixels(a, b), 0, `${where}: pixel-identical over HTTP and from disk`);
      assert.ok(distinctColours(a) >= 4, `${where} is not blank`);

      const touched = blocksTouched(meta, tile);
      // The first tile also opens the COG in the render thread: one HEAD and the header.
      const allowance: number = first ? 4 : 2;
      measured.push(`${where}: ${c.range} range GET(s), ${c.head} HEAD (at most ${touched} block(s) touched)`);
      assert.equal(c.full, 0, `${where}: no whole-file GET`);
      assert.ok(c.head <= (first ? 1 : 0), `${where}: ${c.head} HEAD requests`);
      assert.ok(c.range <= touched + allowance, `${where}: ${c.range} range requests for at most ${touched} blocks`);
      first = false;
    }
    for (const m of measured) t.diagnostic(m);
    // Decoded blocks are kept by the render thread: no byte range is asked for twice.
    assert.equal(new Set(fetched).size, fetched.length, `repeated range requests: ${fetched.join(' ')}`);
    t.diagnostic(`${tiles.length} tiles over HTTP: ${fetched.length} range requests in all`);
  });

  test('the HTTP layer keeps serving while the range server is reachable, and /healthz answers', async () => {
    const r = await request(server.url, tilePath('nir-http', [12, 762, 1590]));
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-cache'], 'hit-l1');
    await assertAlive(server.url, 'HTTP tiles');
  });
});
