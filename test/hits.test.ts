/**
 * Tiles that L1 holds are answered before the framework (src/server/app.ts). That answer must
 * be the route's answer: the same status, headers and bytes, the same log and metrics, and
 * anything unusual (an encoded name, a trailing slash, HEAD, a miss) goes the full way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getJson, lonLatToTile, makeLayersDir, metricValue, request, startServer, tilePath, type TempLayers, type TestServer } from './helpers/http.js';

const TILE = lonLatToTile(-117.55, 53.24, 12);
const SAME = ['cache-control', 'etag', 'x-cache', 'x-layer-hash', 'content-type', 'content-length', 'access-control-allow-origin'];

describe('L1 hits before the framework', () => {
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
});
