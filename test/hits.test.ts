/**
 * Tiles asked for in the plain spelling are answered before the framework (src/server/app.ts),
 * from L1 or rendered. That answer must be the route's answer: the same status, headers and
 * bytes, the same errors, log and metrics, and anything unusual (an encoded name, a trailing
 * slash, HEAD, another method) goes the full way.
 */
import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getJson, lonLatToTile, makeLayersDir, metricValue, request, startServer, tilePath, type TempLayers, type TestServer } from './helpers/http.js';

const TILE = lonLatToTile(-117.55, 53.24, 12);
const SAME = ['cache-control', 'etag', 'x-cache', 'x-layer-hash', 'content-type', 'content-length', 'access-control-allow-origin'];

describe('tiles before the framework', () => {
  let tmp: TempLayers;
  let server: TestServer;
  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
    server = await startServer(tmp.dir, { WORKERS: '1' });
  });
  after(async () => {
    await server?.close();
    await tmp?.remove();
  });

  test('answer as the express route does, for plain and versioned URLs and If-None-Match', async () => {
    const plain = tilePath('dem-relief', TILE);
    const first = await request(server.url, plain);
    assert.equal(first.headers['x-cache'], 'miss');
    // A percent-encoded name is the same tile, but only the express route decodes it.
    const encoded = plain.replace('dem-relief', 'dem%2Drelief');
    const { json } = await getJson<{ version: string }>(server.url, '/layers/dem-relief');
    for (const q of ['', '?v=other', `?v=${json.version}`]) {
      const fast = await request(server.url, plain + q);
      const full = await request(server.url, encoded + q);
      assert.equal(fast.status, 200);
      for (const h of SAME) assert.equal(fast.headers[h], full.headers[h], `${h} for ${q || 'no query'}`);
      assert.ok(fast.body.equals(full.body));
      assert.match(String(fast.headers['server-timing']), /^read;dur=0\.0, ops;dur=0\.0, encode;dur=0\.0, cache;desc=hit-l1;dur=\d+\.\d$/);
      assert.match(String(fast.headers['x-request-id']), /^[0-9a-z]+-[0-9a-z]+$/);
    }
    const etag = String(first.headers.etag);
    const notModified = await request(server.url, plain, { headers: { 'if-none-match': etag } });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body.length, 0);
    const head = await request(server.url, plain, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['x-cache'], 'hit-l1');
  });

  test('are logged and counted under the tile route', async () => {
    const labels = { layer: 'dem-relief', route: '/tiles/:layer/:z/:x/:file', status: '200', cache: 'hit-l1' };
    const before = await metricValue(server.url, 'tilegraph_http_requests_total', labels);
    for (let i = 0; i < 3; i++) await request(server.url, tilePath('dem-relief', TILE));
    assert.equal((await metricValue(server.url, 'tilegraph_http_requests_total', labels)) - before, 3);
  });

  test('leave errors to the full route: a trailing slash, a zero-padded zoom, a POST', async () => {
    const plain = tilePath('dem-relief', TILE);
    assert.equal((await request(server.url, `${plain}/`)).status, 404);
    assert.equal((await request(server.url, plain.replace('/12/', '/012/'))).status, 400);
    const post = await request(server.url, plain, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers['cache-control'], 'no-store');
  });

  test('a miss renders there, counted under the tile route, and its bytes are what the route serves after', async () => {
    const tile = lonLatToTile(-117.6, 53.2, 13);
    const labels = { layer: 'dem-relief', route: '/tiles/:layer/:z/:x/:file', status: '200', cache: 'miss' };
    const before = await metricValue(server.url, 'tilegraph_http_requests_total', labels);
    const miss = await request(server.url, tilePath('dem-relief', tile));
    assert.equal(miss.status, 200, miss.body.toString());
    assert.equal(miss.headers['x-cache'], 'miss');
    assert.match(String(miss.headers['server-timing']), /^read;dur=\d+\.\d, ops;dur=\d+\.\d, encode;dur=\d+\.\d, cache;desc=miss;dur=0\.0$/);
    assert.equal((await metricValue(server.url, 'tilegraph_http_requests_total', labels)) - before, 1);
    const full = await request(server.url, tilePath('dem-relief', tile).replace('dem-relief', 'dem%2Drelief'));
    assert.equal(full.headers['x-cache'], 'hit-l1');
    for (const h of SAME.filter((h) => h !== 'x-cache')) assert.equal(miss.headers[h], full.headers[h], h);
    assert.ok(miss.body.equals(full.body));
  });
});

test('a tile that fails to render before the framework gets the error answer of the express route, and the server keeps serving', async () => {
  const tmp = await makeLayersDir(['dem-relief']);
  const server = await startServer(tmp.dir, { WORKERS: '1' });
  try {
    // Cut after loading: the full-resolution blocks at the end of the file are gone.
    const cog = path.join(tmp.dir, 'data/srtm_jasper_ab_100m.tif');
    truncateSync(cog, Math.floor(statSync(cog).size * 0.3));
    const plain = tilePath('dem-relief', lonLatToTile(-117.55, 53.24, 14));
    const fast = await request(server.url, plain);
    const full = await request(server.url, plain.replace('dem-relief', 'dem%2Drelief'));
    assert.equal(fast.status, 500, fast.body.toString());
    assert.equal(full.status, 500, full.body.toString());
    for (const h of ['cache-control', 'content-type', 'content-length', 'access-control-allow-origin'])
      assert.equal(fast.headers[h], full.headers[h], `${h}: ${fast.headers[h]} against ${full.headers[h]}`);
    assert.equal(fast.headers['cache-control'], 'no-store');
    assert.ok(fast.body.equals(full.body), `${fast.body} against ${full.body}`);
    assert.match(JSON.parse(fast.body.toString()).detail as string, /^data\/srtm_jasper_ab_100m\.tif: block/);
    // A failure names no tile in the log: it carries no layer label, on either route.
    const labels = { layer: '', route: '/tiles/:layer/:z/:x/:file', status: '500', cache: '' };
    assert.equal(await metricValue(server.url, 'tilegraph_http_requests_total', labels), 2);
    assert.equal((await request(server.url, '/healthz')).status, 200);
  } finally {
    await server.close();
    await tmp.remove();
  }
});
