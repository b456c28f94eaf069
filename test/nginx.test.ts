/**
 * The repo's nginx.conf, run by Debian's nginx in front of two real server processes: it
 * caches on the URI, collapses a burst of cold requests into one upstream request, serves a
 * stale tile when both servers are down, passes X-Forwarded-* on, and never caches an error.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { lonLatToTile, makeLayersDir, metricValue, request, shippedLayerText, tilePath, type TempLayers } from './helpers/http.js';
import { startNginx, startServerProcess, type NginxProcess, type ServerProcess } from './helpers/processes.js';

const TILE_ROUTE = '/tiles/:layer/:z/:x/:file';
const tile = (k: number) => lonLatToTile(-117.8 + 0.0215 * k, 53.2, 14);

describe('nginx.conf in front of two server processes', () => {
  let tmp: TempLayers;
  let dir: string;
  let servers: ServerProcess[];
  let nginx: NginxProcess;
  /** dem-relief's current version, as its TileJSON writes it in tile URLs. */
  const currentVersion = async () =>
    (JSON.parse((await request(nginx.url, '/tiles/dem-relief/tilejson.json')).body.toString()) as { tiles: string[] }).tiles[0]!.split('?v=')[1]!;
  /** The entries in nginx's cache directory. */
  const entries = () => readdirSync(path.join(dir, 'cache'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
  /** Tile requests that reached the servers, over both. */
  const upstreamTileRequests = async () => {
    let n = 0;
    for (const s of servers) n += await metricValue(s.url, 'tilegraph_http_requests_total', { route: TILE_ROUTE });
    return n;
  };

  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
    // Shared caches keep its tiles one second: then they are stale.
    await tmp.write(
      'dem-short.yaml',
      (await shippedLayerText('dem-relief')).replace(/^cache: .*$/m, 'cache: { maxAge: 1, sMaxAge: 1, staleWhileRevalidate: 0 }'),
    );
    servers = await Promise.all([startServerProcess(tmp.dir), startServerProcess(tmp.dir)]);
    dir = await mkdtemp(path.join(os.tmpdir(), 'tilegraph-nginx-'));
    nginx = await startNginx(
      dir,
      servers.map((s) => new URL(s.url).host),
    );
  });
  after(async () => {
    await nginx?.stop();
    await Promise.all((servers ?? []).map((s) => s.stop()));
    await tmp?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the second request for a tile is an nginx HIT with the same bytes', async () => {
    const p = tilePath('dem-relief', tile(0));
    const first = await request(nginx.url, p);
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-cache-status'], 'MISS');
    const second = await request(nginx.url, p);
    assert.equal(second.headers['x-cache-status'], 'HIT');
    assert.ok(second.body.equals(first.body));
    assert.equal(second.headers.etag, first.headers.etag);
  });

  test('the cache key is the path and ?v=: another ?v= makes another entry, cookies and headers do not', async () => {
    const p = tilePath('dem-relief', tile(0));
    const withCookie = await request(nginx.url, p, { headers: { cookie: 'session=1', 'accept-language': 'fr' } });
    assert.equal(withCookie.headers['x-cache-status'], 'HIT');
    const versioned = await request(nginx.url, `${p}?v=other`);
    assert.equal(versioned.headers['x-cache-status'], 'MISS');
  });

  // Before: the key was the whole URI, so each parameter a client added (?junk=1, ?junk=2, …)
  // made an entry of its own, kept for a day (a year beside the current ?v=): a client could fill
  // the cache with one tile and push the others out.
  test("tried as a hostile client would: other parameters make no entry of their own; they read the tile's entry", async () => {
    const p = tilePath('dem-relief', tile(4));
    const v = await currentVersion();
    const status = async (q: string) => {
      const r = await request(nginx.url, p + q);
      assert.equal(r.status, 200, q);
      return r.headers['x-cache-status'];
    };
    const before = entries();
    for (const q of ['?junk=1', `?v=${v}&junk=1`, `?junk=1&v=${v}`, `?v=${v}&v=${v}`, `?v=%${v.charCodeAt(0).toString(16)}${v.slice(1)}`]) {
      assert.equal(await status(q), 'MISS', q);
      assert.equal(await status(q), 'MISS', `${q}: not stored`);
    }
    assert.equal(entries(), before, 'no entry for any of them');
    // The tile's own entries, then read by the same tile with other parameters.
    assert.equal(await status(''), 'MISS');
    assert.equal(await status(`?v=${v}`), 'MISS');
    assert.equal(entries(), before + 2);
    assert.equal(await status('?junk=2'), 'HIT');
    assert.equal(await status(`?junk=2&v=${v}`), 'HIT');
    assert.equal(entries(), before + 2);
  });

  // Before: an answer to another ?v= was stored for its 60 s of max-age, and stayed on disk
  // until nginx's `inactive` or `max_size` removed it: cycling ?v=1, ?v=2, … filled the cache.
  test('tried as a hostile client would: versions the layer does not have make no entries; the current one is kept', async () => {
    const p = tilePath('dem-relief', tile(5));
    const v = await currentVersion();
    const before = entries();
    for (const q of ['?v=1', '?v=2', '?v=old', `?v=${v}x`]) {
      for (let i = 0; i < 2; i++) {
        const r = await request(nginx.url, p + q);
        assert.equal(r.status, 200, q);
        assert.equal(r.headers['x-cache-status'], 'MISS', `${q}, request ${i + 1}: not stored`);
        // What a browser or a CDN may keep is unchanged; nginx's own instruction stays with nginx.
        assert.equal(r.headers['cache-control'], 'public, max-age=60, s-maxage=60', q);
        assert.equal(r.headers['x-accel-expires'], undefined, q);
      }
    }
    assert.equal(entries(), before, 'no entry for any of them');
    const current = await request(nginx.url, `${p}?v=${v}`);
    assert.equal(current.headers['x-cache-status'], 'MISS');
    assert.equal((await request(nginx.url, `${p}?v=${v}`)).headers['x-cache-status'], 'HIT');
    assert.equal(entries(), before + 1);
  });

  test('50 concurrent cold requests for one tile reach the servers once', async () => {
    const before = await upstreamTileRequests();
    const p = tilePath('dem-relief', tile(1));
    const answers = await Promise.all(Array.from({ length: 50 }, () => request(nginx.url, p)));
    assert.deepEqual([...new Set(answers.map((r) => r.status))], [200]);
    assert.equal((await upstreamTileRequests()) - before, 1);
  });

  test('errors are not cached: each one reaches a server', async () => {
    const before = await upstreamTileRequests();
    for (let i = 0; i < 2; i++) {
      const r = await request(nginx.url, '/tiles/dem-relief/3/0/0.png');
      assert.equal(r.status, 404, 'zoom 3 is below the layer');
      assert.notEqual(r.headers['x-cache-status'], 'HIT');
    }
    assert.equal((await upstreamTileRequests()) - before, 2);
  });

  test('documents name the address the client used (X-Forwarded-*)', async () => {
    const r = await request(nginx.url, '/tiles/dem-relief/tilejson.json');
    const tj = JSON.parse(r.body.toString()) as { tiles: string[] };
    assert.ok(tj.tiles[0]!.startsWith(`${nginx.url}/tiles/dem-relief/`), tj.tiles[0]);
  });

  test('with both servers stopped, nginx serves a cached tile stale', async () => {
    const p = tilePath('dem-short', tile(2));
    const fresh = await request(nginx.url, p);
    assert.equal(fresh.status, 200);
    assert.equal(fresh.headers['cache-control'], 'public, max-age=1, s-maxage=1, stale-while-revalidate=0');
    // Past its one second of s-maxage (nginx counts whole seconds).
    await new Promise((r) => setTimeout(r, 2500));
    await Promise.all(servers.map((s) => s.stop()));
    const stale = await request(nginx.url, p);
    assert.equal(stale.status, 200);
    assert.equal(stale.headers['x-cache-status'], 'STALE');
    assert.ok(stale.body.equals(fresh.body));
    const gone = await request(nginx.url, tilePath('dem-short', tile(3)));
    assert.equal(gone.status, 502, 'a tile nginx never had cannot be served');
  });
});
