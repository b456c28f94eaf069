/**
 * The two tiers with a real Redis (a `redis-server` of this test's own, on a free port) and
 * real server processes: L1, then L2 shared by the processes, one render for a burst spread
 * over them, a Redis that dies and comes back, versions that never meet old entries, purge,
 * and the CDN contract of `?v=`.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { parseRedisUrl } from '../src/cache/redis.js';
import { decodeEntry, encodeEntry } from '../src/cache/l2.js';
import { TileCache } from '../src/cache/tiles.js';
import { runCli } from './helpers/layers.js';
import { getJson, lonLatToTile, makeLayersDir, metricValue, request, tilePath, until, type TempLayers, type Tile } from './helpers/http.js';
import { startRedis, startServerProcess, type RedisProcess, type ServerProcess } from './helpers/processes.js';
import { forcedGc } from './helpers/gc.js';

const PREFIX = 'tg-test:';
/** Distinct zoom-14 tiles inside the Jasper DEM (26 a row), so that no step meets another's cache entries. */
const tile = (k: number): Tile => lonLatToTile(-117.8 + 0.0215 * (k % 26), 53.12 + 0.015 * Math.floor(k / 26), 14);

async function readyz(url: string): Promise<{ status: string; l2: string }> {
  return (await getJson<{ status: string; l2: string }>(url, '/readyz')).json;
}

const renders = async (servers: readonly ServerProcess[]) =>
  (await Promise.all(servers.map((s) => metricValue(s.url, 'tilegraph_renders_total')))).reduce((a, b) => a + b, 0);

test('L2 entries: body, ETag and type in one value; empty entries; foreign bytes are no entry', () => {
  const e = { body: Buffer.from([1, 2, 3, 255]), etag: '"abc123"', type: 'image/png' };
  assert.deepEqual(decodeEntry(encodeEntry(e)), e);
  assert.deepEqual(decodeEntry(encodeEntry({ body: null, etag: '"e"', type: 'image/webp' })), { body: null, etag: '"e"', type: 'image/webp' });
  assert.equal(decodeEntry(Buffer.from('not an entry')), undefined);
  assert.equal(decodeEntry(encodeEntry(e).subarray(0, 8)), undefined, 'a truncated value');
});

test('L1 holds to its bound in memory, not only in body bytes: a cache full of empty tiles', async () => {
  const gc = forcedGc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const bound = 16 * 2 ** 20;
  const cache = new TileCache(bound);
  const policy = { ttlS: 60, emptyTtlS: 60, lockMs: 1000 };
  // A client walking the ocean: distinct tiles with nothing to draw, far more than fit.
  for (let i = 0; i < 150_000; i++) {
    const key = `worldcover:a6d39a351e6306ee:14/${8000 + (i % 1000)}/${i}@1.png`;
    await cache.get(key, policy, async () => ({
      body: null,
      etag: `"${i.toString(16).padStart(24, '0')}"`,
      type: 'image/png',
      timings: { read: 0, ops: 0, encode: 0 },
    }));
  }
  gc();
  const held = process.memoryUsage().heapUsed - before;
  assert.ok(cache.bytes <= bound);
  assert.ok(held < 1.25 * bound, `150000 empty entries under a ${bound / 2 ** 20} MiB bound hold ${(held / 2 ** 20).toFixed(1)} MiB of heap`);
});

test('a flight is called off only when every client that may leave has left and none that cannot waits', async () => {
  const cache = new TileCache(2 ** 20);
  const policy = { ttlS: 60, emptyTtlS: 60, lockMs: 1000 };
  const entry = (etag: string) => ({ body: Buffer.from(etag), etag, type: 'image/png' });
  /** A render that ends when told to, or fails as the pool fails one called off. */
  const renders: { signal: AbortSignal; end: () => void }[] = [];
  const produce = (signal: AbortSignal) =>
    new Promise<ReturnType<typeof entry>>((resolve, reject) => {
      const n = renders.length;
      renders.push({ signal, end: () => resolve(entry(`"${n}"`)) });
      signal.addEventListener('abort', () => reject(new Error('called off')));
    });
  const settled = (p: Promise<unknown>) =>
    p.then(
      () => 'answered',
      (err: Error) => err.message,
    );

  // Two clients of one tile: the first leaving leaves the render to the second.
  const a = new AbortController(),
    b = new AbortController();
  const first = settled(cache.get('t:1', policy, produce, a.signal));
  const second = cache.get('t:1', policy, produce, b.signal);
  assert.equal(renders.length, 1, 'one render for both');
  a.abort();
  assert.equal(renders[0]!.signal.aborted, false);
  b.abort();
  assert.equal(renders[0]!.signal.aborted, true, 'called off with its last client');
  assert.equal(await first, 'called off');
  await assert.rejects(second, /called off/);
  // The next client of the tile starts a render of its own, not the one called off.
  const third = cache.get('t:1', policy, produce);
  assert.equal(renders.length, 2);
  renders[1]!.end();
  assert.equal((await third).entry.etag, '"1"');

  // A caller that cannot leave (a seeding run gives no signal) keeps the render going.
  const c = new AbortController();
  const seeded = cache.get('t:2', policy, produce);
  const viewer = settled(cache.get('t:2', policy, produce, c.signal));
  c.abort();
  assert.equal(renders[2]!.signal.aborted, false);
  renders[2]!.end();
  assert.equal((await seeded).tier, 'miss');
  assert.equal(await viewer, 'answered');

  // A client already gone by the time it asks calls off the render it alone started.
  const gone = AbortSignal.abort();
  assert.equal(await settled(cache.get('t:3', policy, produce, gone)), 'called off');
  assert.equal(renders[3]!.signal.aborted, true);
});

test('REDIS_URL forms: one server, Sentinel, Cluster', () => {
  assert.deepEqual(parseRedisUrl('redis://:pw@10.0.0.1:6380/2'), { kind: 'server', url: 'redis://:pw@10.0.0.1:6380/2' });
  assert.deepEqual(parseRedisUrl('redis+sentinel://:s%40cret@a:26379,b:26380/mymaster/1'), {
    kind: 'sentinel',
    sentinels: [
      { host: 'a', port: 26379 },
      { host: 'b', port: 26380 },
    ],
    name: 'mymaster',
    password: 's@cret',
    db: 1,
  });
  assert.deepEqual(parseRedisUrl('redis+cluster://n1:7000,n2:7001'), {
    kind: 'cluster',
    nodes: [
      { host: 'n1', port: 7000 },
      { host: 'n2', port: 7001 },
    ],
    password: undefined,
  });
  assert.throws(() => parseRedisUrl('http://x'), /REDIS_URL/);
  assert.throws(() => parseRedisUrl('redis+sentinel://a:1'), /master name/);
});

describe('two server processes sharing one Redis', () => {
  let redis: RedisProcess;
  let tmp: TempLayers;
  let a: ServerProcess;
  let b: ServerProcess;
  let client: Redis;

  before(async () => {
    redis = await startRedis();
    tmp = await makeLayersDir(['dem-relief']);
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: PREFIX, REDIS_TIMEOUT_MS: '200' };
    [a, b] = await Promise.all([startServerProcess(tmp.dir, env), startServerProcess(tmp.dir, env)]);
    client = new Redis(redis.url);
  });
  after(async () => {
    client?.disconnect();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    await tmp?.remove();
  });

  test('miss, then hit-l1; the other process answers hit-l2 with the same bytes and ETag', async () => {
    assert.equal((await readyz(a.url)).l2, 'up');
    const p = tilePath('dem-relief', tile(0));
    const first = await request(a.url, p);
    assert.equal(first.status, 200);
    assert.equal(first.headers['x-cache'], 'miss');
    const again = await request(a.url, p);
    assert.equal(again.headers['x-cache'], 'hit-l1');
    // The entry goes to Redis off the response path: wait for it, as another process would.
    await until('the entry in Redis', async () => (await client.exists(`${PREFIX}tile:dem-relief:${await version(a)}:${tile(0).join('/')}@1.png`)) === 1);
    const other = await request(b.url, p);
    assert.equal(other.headers['x-cache'], 'hit-l2');
    assert.equal(other.headers.etag, first.headers.etag);
    assert.equal(other.headers['content-type'], 'image/png');
    assert.ok(other.body.equals(first.body), 'the same bytes');
    assert.equal(await metricValue(b.url, 'tilegraph_renders_total'), 0, 'the second process rendered nothing');
    assert.equal((await request(b.url, p)).headers['x-cache'], 'hit-l1', 'an L2 hit fills L1');
  });

  test('50 concurrent requests for one tile over both processes render it once', async () => {
    const before = await renders([a, b]);
    const p = tilePath('dem-relief', tile(1));
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => request(i % 2 ? b.url : a.url, p)));
    assert.deepEqual([...new Set(answers.map((r) => r.status))], [200]);
    assert.equal(new Set(answers.map((r) => r.headers.etag)).size, 1, 'one ETag');
    assert.equal((await renders([a, b])) - before, 1, 'tilegraph_renders_total rose by one over both processes');
    const tiers = new Set(answers.map((r) => r.headers['x-cache']));
    assert.ok(tiers.has('miss') && tiers.has('hit-l2'), `tiers ${[...tiers].join(', ')}`);
    assert.ok((await metricValue(a.url, 'tilegraph_lock_waits_total')) + (await metricValue(b.url, 'tilegraph_lock_waits_total')) >= 1, 'one process waited');
  });

  test('a killed Redis fails no tile and is skipped; a restarted one is used again', async () => {
    await redis.kill();
    const statuses: number[] = [];
    for (let k = 10; k < 16; k++) statuses.push((await request(a.url, tilePath('dem-relief', tile(k)))).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
    const ready = await getJson<{ status: string; l2: string }>(a.url, '/readyz');
    assert.equal(ready.status, 200, 'still ready without Redis');
    assert.equal(ready.json.l2, 'down');
    assert.equal(await metricValue(a.url, 'tilegraph_l2_breaker_open'), 1);
    const errors = await metricValue(a.url, 'tilegraph_l2_errors_total');
    // Without the breaker each tile would try Redis twice (get, then set): 12 failures.
    assert.ok(errors >= 1 && errors <= 6, `the breaker skips Redis after 3 failures (${errors} errors for 6 tiles)`);

    await redis.restart();
    client.disconnect();
    client = new Redis(redis.url);
    // ioredis reconnects within 2 s; the breaker lets a probe through after its cool-down.
    const p = tilePath('dem-relief', tile(20));
    // Each probe needs a tile that L1 does not answer.
    let k = 100;
    await until('L2 in use again', async () => {
      await request(a.url, tilePath('dem-relief', tile(k++)));
      return (await readyz(a.url)).l2 === 'up';
    });
    assert.equal((await request(a.url, p)).headers['x-cache'], 'miss');
    await until('the entry in Redis', async () => (await client.dbsize()) >= 2);
    assert.equal((await request(b.url, p)).headers['x-cache'], 'hit-l2', 'the restarted Redis serves the other process');
  });

  test('an edited layer changes the version: its tiles miss with a new ETag; purge removes what it says', async () => {
    const p = tilePath('dem-relief', tile(30));
    const old = await request(a.url, p);
    for (const k of [31, 32, 33]) await request(a.url, tilePath('dem-relief', tile(k)));
    const oldVersion = await version(a);
    await until('the old entries in Redis', async () => (await keysOf(client, oldVersion)) >= 4);
    const file = path.join(tmp.dir, 'dem-relief.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace('"#2b6b3a"', '"#1b5b2a"'));
    a.child.kill('SIGHUP');
    await until('the new version', async () => (await version(a)) !== oldVersion);
    const fresh = await request(a.url, p);
    assert.equal(fresh.headers['x-cache'], 'miss');
    assert.notEqual(fresh.headers.etag, old.headers.etag);
    const newVersion = await version(a);
    await until('the new entry in Redis', async () => (await keysOf(client, newVersion)) >= 1);

    const oldKeys = await keysOf(client, oldVersion);
    const newKeys = await keysOf(client, newVersion);
    assert.ok(oldKeys >= 4, `${oldKeys} entries of the old version`);
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: PREFIX, LAYERS_DIR: tmp.dir };
    const stale = runCli(['cache', 'purge', 'dem-relief', '--stale'], env);
    assert.equal(stale.status, 0, stale.stderr);
    assert.match(stale.stdout, new RegExp(`removed ${oldKeys} entr(y|ies) of dem-relief version ${oldVersion}`));
    assert.match(stale.stdout, new RegExp(`^${oldKeys} removed; version ${newVersion} \\(current\\) kept$`, 'm'));
    assert.equal(await keysOf(client, oldVersion), 0);
    assert.equal(await keysOf(client, newVersion), newKeys, 'the current version stays');

    const all = runCli(['cache', 'purge', 'dem-relief'], env);
    assert.equal(all.status, 0, all.stderr);
    assert.match(all.stdout, new RegExp(`^${newKeys} removed$`, 'm'));
    assert.equal(await keysOf(client, newVersion), 0);
    assert.equal((await request(b.url, tilePath('dem-relief', tile(40)))).status, 200, 'the servers carry on');
  });

  test('?v= of the current version is immutable; another version gets a short max-age; none the layer policy', async () => {
    const v = await version(a);
    const p = tilePath('dem-relief', tile(0));
    const headers = async (q: string) => (await request(a.url, p + q)).headers;
    const current = await headers(`?v=${v}`);
    assert.equal(current['cache-control'], 'public, max-age=31536000, immutable');
    const other = await headers('?v=0000000000000000');
    assert.equal(other['cache-control'], 'public, max-age=60, s-maxage=60');
    const none = await headers('');
    assert.equal(none['cache-control'], 'public, max-age=3600, s-maxage=86400, stale-while-revalidate=600');
    // Only the answer to another version tells nginx to keep nothing (test/nginx.test.ts).
    assert.deepEqual(
      [current, other, none].map((h) => h['x-accel-expires']),
      [undefined, '0', undefined],
    );
  });
});

async function version(s: ServerProcess): Promise<string> {
  return (await getJson<{ version: string }>(s.url, '/layers/dem-relief')).json.version;
}

async function keysOf(client: Redis, version: string): Promise<number> {
  let n = 0;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${PREFIX}tile:dem-relief:${version}:*`, 'COUNT', 1000);
    cursor = next;
    n += keys.length;
  } while (cursor !== '0');
  return n;
}
