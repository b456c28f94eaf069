/**
 * Ad-hoc pipelines (issue 17): `POST /pipelines` on a server with ADHOC_PIPELINES=on. A posted
 * document renders the same tiles as the same document installed as a layer file; identical
 * documents share a hash and cache entries; the hostile corpus of layer files is refused with
 * a 4xx, never a 5xx; and every budget answers its own 4xx naming it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HOSTILE_DIR } from './helpers/layers.js';
import { makeLayersDir, request, type TempLayers } from './helpers/http.js';
import { startServerProcess, type ServerProcess } from './helpers/processes.js';

/** A grey stretch of the shipped DEM: a graph the shipped layers do not have. */
const DOCUMENT = `title: Jasper, grey
sources:
  dem: ./data/srtm_jasper_ab_100m.tif
minzoom: 6
maxzoom: 15
pipeline:
  - read: { source: dem, bands: [1], resampling: bilinear }
  - rescale: { from: [1200, 2400] }
`;
/** The same document as JSON, keys in another order. */
const SAME_AS_JSON = JSON.stringify({
  pipeline: [{ read: { resampling: 'bilinear', bands: [1], source: 'dem' } }, { rescale: { from: [1200, 2400] } }],
  maxzoom: 15,
  minzoom: 6,
  sources: { dem: './data/srtm_jasper_ab_100m.tif' },
  title: 'Jasper, grey',
});
const TILES = ['10/177/332', '11/355/664', '12/711/1329'];

interface Posted {
  hash: string;
  url: string;
  tilejson: { tiles: string[] };
}

async function post(server: ServerProcess, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}/pipelines`, { method: 'POST', body, headers: { 'content-type': 'application/yaml', ...headers } });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Posted & { error: string; detail: string } };
}

describe('POST /pipelines', () => {
  let tmp: TempLayers;
  let server: ServerProcess;

  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
    // The same document installed as a layer file, to compare with.
    writeFileSync(path.join(tmp.dir, 'jasper-grey.yaml'), DOCUMENT);
    server = await startServerProcess(tmp.dir, { ADHOC_PIPELINES: 'on', ADHOC_POSTS_PER_MINUTE: '1000', ADHOC_MAX_PIPELINES: '200' });
  });
  after(async () => {
    await server?.stop();
    await tmp?.remove();
  });

  test('a posted document renders the tiles of the same document as a layer file; identical documents share a hash and cache entries', async () => {
    const a = await post(server, DOCUMENT);
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.match(a.json.hash, /^[0-9a-f]{32}$/);
    assert.equal(a.json.url, `${server.url}/tiles/p/${a.json.hash}/tilejson.json`);
    assert.match(a.json.tilejson.tiles[0]!, new RegExp(`^${server.url}/tiles/p/${a.json.hash}/\\{z\\}/\\{x\\}/\\{y\\}\\.png\\?v=`));
    const b = await post(server, SAME_AS_JSON, { 'content-type': 'application/json' });
    assert.equal(b.json.hash, a.json.hash, 'the same canonical config, the same hash');
    const tj = (await (await fetch(a.json.url)).json()) as { tiles: string[]; minzoom: number; maxzoom: number };
    assert.deepEqual([tj.minzoom, tj.maxzoom], [6, 15]);
    for (const t of TILES) {
      const posted = await request(server.url, `/tiles/p/${a.json.hash}/${t}.png`);
      const file = await request(server.url, `/tiles/jasper-grey/${t}.png`);
      assert.equal(posted.status, 200, `${t}: ${posted.body.toString()}`);
      assert.equal(posted.headers['content-type'], 'image/png');
      assert.ok(posted.body.equals(file.body), `${t}: the layer file's bytes`);
      // The second document's URL is the first's: its tile is in the cache already.
      const again = await request(server.url, `/tiles/p/${b.json.hash}/${t}.png`);
      assert.equal(again.headers['x-cache'], 'hit-l1', `${t}: shared entry`);
    }
    const other = await post(server, DOCUMENT.replace('[1200, 2400]', '[1000, 2600]'));
    assert.notEqual(other.json.hash, a.json.hash, 'another document, another hash');
    const unknown = await request(server.url, `/tiles/p/${'0'.repeat(32)}/10/177/332.png`);
    assert.equal(unknown.status, 404);
    assert.match(JSON.parse(unknown.body.toString()).detail, /post the document again/);
  });

  test('its tile routes are tile routes: other methods answer 405 with Allow, OPTIONS the CORS preflight; GET /pipelines is a 405', async () => {
    const { hash } = (await post(server, DOCUMENT)).json;
    for (const p of [`/tiles/p/${hash}/${TILES[0]}.png`, `/tiles/p/${hash}/tilejson.json`]) {
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const r = await request(server.url, p, { method });
        assert.equal(r.status, 405, `${method} ${p}: ${r.body.toString()}`);
        assert.equal(r.headers.allow, 'GET, HEAD, OPTIONS');
      }
      const pre = await request(server.url, p, { method: 'OPTIONS', headers: { origin: 'https://maps.example', 'access-control-request-method': 'GET' } });
      assert.equal(pre.status, 204, `OPTIONS ${p}`);
      assert.equal(pre.headers['access-control-allow-origin'], '*');
    }
    const get = await request(server.url, '/pipelines');
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, 'POST');
  });

  test('every document of the hostile corpus is refused with a 4xx, and the server carries on', async () => {
    const files = readdirSync(HOSTILE_DIR).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length > 50, `${files.length} hostile documents`);
    const statuses = new Map<number, number>();
    for (const f of files) {
      const r = await post(server, readFileSync(path.join(HOSTILE_DIR, f), 'latin1'));
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      // A few hostile files are hostile only as files (a bad file name): as a document they may be valid.
      if (r.status === 200) continue;
      assert.ok(r.status >= 400 && r.status < 500, `${f}: ${r.status} ${JSON.stringify(r.json)}`);
      assert.equal(typeof r.json.detail, 'string', `${f}: a reason`);
    }
    const ok = await request(server.url, '/tiles/dem-relief/10/177/332.png');
    assert.equal(ok.status, 200, 'still serving');
    assert.ok((statuses.get(400) ?? 0) > files.length / 2, JSON.stringify([...statuses]));
  });

  test('sources are those the loaded layers read', async () => {
    // A COG inside LAYERS_DIR that no loaded layer reads.
    const spare = path.join(tmp.dir, 'data', 'spare.tif');
    writeFileSync(spare, readFileSync(path.join(tmp.dir, 'data', 'srtm_jasper_ab_100m.tif')));
    for (const [ref, why] of [
      ['./data/spare.tif', /'\.\/data\/spare\.tif' is not a source of a loaded layer/],
      ['/etc/passwd', /'\/etc\/passwd' is an absolute path/],
      // The layers directory's own path is kept from clients, but not the advice on what to write instead.
      [spare, /the path is absolute; sources are given relative to the layer file, as '\.\/data\/spare\.tif'/],
      ['../../../etc/passwd', /outside the layers directory/],
      ['https://example.com/x.tif', /host 'example\.com' is not allowed/],
    ] as const) {
      const r = await post(server, DOCUMENT.replace('./data/srtm_jasper_ab_100m.tif', ref));
      assert.equal(r.status, 400, ref);
      assert.match(r.json.detail, why, ref);
    }
  });

  test('the metrics count every ad-hoc pipeline under one layer label, however many are posted', async () => {
    const before = await (await fetch(`${server.url}/metrics`)).text();
    const hashes: string[] = [];
    for (const lo of [700, 710, 720]) {
      const r = await post(server, DOCUMENT.replace('[1200, 2400]', `[${lo}, 2400]`));
      assert.equal(r.status, 200);
      hashes.push(r.json.hash);
      assert.equal((await request(server.url, `/tiles/p/${r.json.hash}/12/711/1329.png`)).status, 200);
    }
    const text = await (await fetch(`${server.url}/metrics`)).text();
    for (const h of hashes) assert.ok(!text.includes(h), `no series names pipeline ${h}`);
    const renders = (t: string) => Number(/^tilegraph_renders_total\{layer="\(ad-hoc\)"\} (\d+)$/m.exec(t)?.[1] ?? 0);
    assert.equal(renders(text) - renders(before), 3);
    assert.match(text, /^tilegraph_http_requests_total\{layer="\(ad-hoc\)",route="\/tiles\/p\/:layer\/:z\/:x\/:file",status="200",cache="miss"\} \d+$/m);
  });

  test('the body limit, the node budget and a missing body each answer their 4xx', async () => {
    const big = await post(server, `${DOCUMENT}\n# ${'x'.repeat(70 * 1024)}\n`);
    assert.equal(big.status, 413);
    assert.match(big.json.detail, /at most 65536 bytes/);
    const steps = Array.from({ length: 40 }, () => '  - rescale: { from: [0, 1] }').join('\n');
    const deep = await post(server, `${DOCUMENT}${steps}\n`);
    assert.equal(deep.status, 422);
    assert.match(deep.json.detail, /42 operators; an ad-hoc pipeline has at most 32/);
    const empty = await post(server, '');
    assert.equal(empty.status, 400);
    assert.match(empty.json.detail, /POST a layer document/);
  });
});

describe('ad-hoc pipeline budgets', () => {
  let tmp: TempLayers;
  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
  });
  after(async () => {
    await tmp?.remove();
  });

  test('off unless ADHOC_PIPELINES=on', async () => {
    const server = await startServerProcess(tmp.dir);
    try {
      const r = await post(server, DOCUMENT);
      assert.equal(r.status, 404);
      assert.match(r.json.detail, /ADHOC_PIPELINES=on/);
    } finally {
      await server.stop();
    }
  });

  test('posts per client a minute (429 with Retry-After), pipelines kept (the oldest forgotten), render time (422)', async () => {
    const server = await startServerProcess(tmp.dir, { ADHOC_PIPELINES: 'on', ADHOC_POSTS_PER_MINUTE: '4', ADHOC_MAX_PIPELINES: '2', ADHOC_RENDER_MS: '1' });
    try {
      const docs = [1000, 1100, 1200].map((lo) => DOCUMENT.replace('[1200, 2400]', `[${lo}, 2400]`));
      const hashes: string[] = [];
      for (const d of docs) hashes.push((await post(server, d)).json.hash);
      // Three pipelines, two kept: the first is forgotten.
      const first = await request(server.url, `/tiles/p/${hashes[0]}/10/177/332.png`);
      assert.equal(first.status, 404);
      // A tile past ADHOC_RENDER_MS (1 ms: no render of a DEM tile is that fast).
      const slow = await request(server.url, `/tiles/p/${hashes[2]}/12/711/1329.png`);
      assert.equal(slow.status, 422, slow.body.toString());
      assert.match(JSON.parse(slow.body.toString()).detail, /may take 1 ms \(ADHOC_RENDER_MS\)/);
      // The fourth post is allowed, the fifth is not.
      assert.equal((await post(server, docs[0]!)).status, 200);
      const refused = await post(server, docs[1]!);
      assert.equal(refused.status, 429);
      assert.match(refused.json.detail, /at most 4 documents a minute from one client \(ADHOC_POSTS_PER_MINUTE\)/);
      assert.equal(refused.headers.get('retry-after'), '60');
      // Layer tiles are not affected by the pipelines' budgets.
      assert.equal((await request(server.url, '/tiles/dem-relief/12/711/1329.png')).status, 200);
    } finally {
      await server.stop();
    }
  });

  test('posts per client a minute: X-Forwarded-For names the client only from a trusted proxy', async () => {
    // 127.0.0.1 is not in TRUSTED_PROXIES here: its X-Forwarded-For says nothing, so a client
    // that names a new address each time is still one client.
    const untrusted = await startServerProcess(tmp.dir, { ADHOC_PIPELINES: 'on', ADHOC_POSTS_PER_MINUTE: '2', TRUSTED_PROXIES: '192.0.2.1' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await post(untrusted, DOCUMENT, { 'X-Forwarded-For': `203.0.113.${i}` })).status);
      assert.deepEqual(statuses, [200, 200, 429, 429]);
    } finally {
      await untrusted.stop();
    }
    // From a trusted proxy (127.0.0.1 by default) the client is the last X-Forwarded-For address
    // that is not a trusted proxy: each such address has its own budget.
    const trusted = await startServerProcess(tmp.dir, { ADHOC_PIPELINES: 'on', ADHOC_POSTS_PER_MINUTE: '2' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await post(trusted, DOCUMENT, { 'X-Forwarded-For': `203.0.113.${i}, 127.0.0.1` })).status);
      assert.deepEqual(statuses, [200, 200, 200, 200]);
      // What the client wrote before the address nginx appended ($proxy_add_x_forwarded_for) names no one.
      const spoofed = [];
      for (let i = 0; i < 3; i++) spoofed.push((await post(trusted, DOCUMENT, { 'X-Forwarded-For': `192.0.2.${i}, 198.51.100.7` })).status);
      assert.deepEqual(spoofed, [200, 200, 429]);
    } finally {
      await trusted.stop();
    }
  });
});
