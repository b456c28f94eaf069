/**
 * Errors keep their kind on the way back from a render thread, and each kind answers its own
 * status (src/server/errors.ts): an upstream that fails is a 502, a quality check that raises
 * a 500 naming the check, an unknown layer the same 404 on every route. None is cached.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import http, { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { copyFileSync, readFileSync, realpathSync, renameSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { loadSettings } from '../src/config.js';
import { TileError, fromWire, toWire } from '../src/errors.js';
import { proxyList } from '../src/server/app.js';
import { errorHandler } from '../src/server/errors.js';
import { HttpSource } from '../src/sources/bytesource.js';
import {
  decode,
  differingPixels,
  getJson,
  lonLatToTile,
  makeLayersDir,
  request,
  REPO_ROOT,
  SHIPPED_DATA,
  shippedLayerText,
  startRangeServer,
  startServer,
  tilePath,
  type RangeServer,
  type TempLayers,
  type TestServer,
  type Tile,
  until,
} from './helpers/http.js';
import { startServerProcess, type ServerProcess } from './helpers/processes.js';
import { forcedGc } from './helpers/gc.js';

const NIR = 'landsat8_zion_20150818_b5_nir.tif';
/** Tiles of the Zion scene whose blocks no other tile here touches. */
const FIRST: Tile = [12, 762, 1590];
const SECOND: Tile = [9, 95, 198];

describe('error codes across the thread boundary', () => {
  let range: RangeServer;
  let tmp: TempLayers;
  let server: TestServer;

  before(async () => {
    range = await startRangeServer(SHIPPED_DATA);
    tmp = await makeLayersDir();
    await tmp.copyData(NIR);
    const text = await shippedLayerText('zion-nir');
    await tmp.write('nir-http.yaml', text.replace(`./data/${NIR}`, `${range.url}/${NIR}`));
    // A check that every tile with data fails: NIR reflectances are well above 0.
    await tmp.write(
      'nir-raise.yaml',
      text.replace(
        /pipeline:[\s\S]*$/,
        `pipeline:\n  - read: { source: nir, bands: [1] }\n  - assert_range: { max: 0, on_fail: raise }\n  - rescale: { from: [0, 30000] }\n`,
      ),
    );
    server = await startServer(tmp.dir, { WORKERS: '1', ALLOWED_HOSTS: range.host });
  });
  after(async () => {
    await server?.close();
    await range?.close();
    await tmp?.remove();
  });

  test('a TileError survives the wire as data; anything else becomes an internal error', () => {
    const back = fromWire(structuredClone(toWire(new TileError('upstream', 'upstream failed', 'http://x/a.tif: HTTP 503'))));
    assert.ok(back instanceof TileError);
    assert.deepEqual(
      [back.code, back.title, back.detail, back.message],
      ['upstream', 'upstream failed', 'http://x/a.tif: HTTP 503', 'http://x/a.tif: HTTP 503'],
    );
    const bug = fromWire(structuredClone(toWire(new TypeError('x is undefined'))));
    assert.deepEqual([bug.code, bug.title, bug.detail], ['internal', 'render failed', 'x is undefined']);
  });

  test('an http source that fails answers 502 naming it, is not cached, and serves again when it recovers', async () => {
    const ok = await request(server.url, tilePath('nir-http', FIRST));
    assert.equal(ok.status, 200, ok.body.toString());

    range.failRanges(503);
    const failed = await request(server.url, tilePath('nir-http', SECOND));
    assert.equal(failed.status, 502, failed.body.toString());
    assert.equal(failed.headers['cache-control'], 'no-store');
    const body = JSON.parse(failed.body.toString()) as { error: string; detail: string };
    assert.equal(body.error, 'upstream failed');
    assert.match(body.detail, new RegExp(`${range.url}/${NIR.replace(/\./g, '\\.')}: HTTP 503$`));

    range.failRanges(null);
    const again = await request(server.url, tilePath('nir-http', SECOND));
    assert.equal(again.status, 200, again.body.toString());
    assert.equal(again.headers['x-cache'], 'miss', 'the failure was not cached');
  });

  test('a quality check with on_fail: raise answers 500 naming the check and the tile', async () => {
    const r = await request(server.url, tilePath('nir-raise', FIRST));
    assert.equal(r.status, 500);
    const body = JSON.parse(r.body.toString()) as { error: string; detail: string };
    assert.equal(body.error, 'quality check assert_range failed');
    assert.match(body.detail, /^assert_range failed on tile 12\/762\/1590: \d+ value\(s\) outside \[-Infinity, 0\]/);
  });

  test('an unknown layer is the same 404 on every route that names a layer', async () => {
    const paths = [
      '/tiles/nope/1/0/0.png',
      '/tiles/nope/tilejson.json',
      '/layers/nope',
      '/map/nope',
      '/wmts/1.0.0/nope/default/GoogleMapsCompatible/1/0/0.png',
    ];
    for (const p of paths) {
      const { status, json } = await getJson<{ error: string; detail: string }>(server.url, p);
      assert.equal(status, 404, p);
      assert.deepEqual(json, { error: 'unknown layer', detail: "no layer named 'nope'" }, p);
    }
    // A name longer than any layer's is not echoed whole (it once came back as 15 KB of error).
    const long = 'x'.repeat(15_000);
    for (const p of [`/tiles/${long}/1/0/0.png`, `/layers/${long}`, `/statistics/${long}?bbox=0,0,1,1`]) {
      const { status, json } = await getJson<{ error: string; detail: string }>(server.url, p);
      assert.equal(status, 404, p.slice(0, 40));
      assert.equal(json.detail, `no layer named '${'x'.repeat(64)}…'`);
    }
  });
});

/**
 * Sets every TileByteCounts entry (TIFF tag 325) of every image of a little-endian classic
 * TIFF to `value`, as a corrupt or hostile file would have it.
 */
function patchTileByteCounts(file: string, value: number): number {
  const b = readFileSync(file);
  assert.equal(b.toString('latin1', 0, 2), 'II', 'a little-endian TIFF');
  assert.equal(b.readUInt16LE(2), 42, 'a classic TIFF');
  let patched = 0;
  for (let ifd = b.readUInt32LE(4); ifd !== 0; ifd = b.readUInt32LE(ifd + 2 + 12 * b.readUInt16LE(ifd))) {
    const n = b.readUInt16LE(ifd);
    for (let e = 0; e < n; e++) {
      const at = ifd + 2 + 12 * e;
      if (b.readUInt16LE(at) !== 325) continue;
      assert.equal(b.readUInt16LE(at + 2), 4, 'TileByteCounts as LONG');
      const count = b.readUInt32LE(at + 4);
      const values = count === 1 ? at + 8 : b.readUInt32LE(at + 8);
      for (let k = 0; k < count; k++) b.writeUInt32LE(value, values + 4 * k);
      patched += count;
    }
  }
  writeFileSync(file, b);
  return patched;
}

describe('a COG that claims a block of 2^31 bytes (issue 13, finding 1)', () => {
  let tmp: TempLayers;
  let server: ServerProcess;
  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
    assert.ok(patchTileByteCounts(path.join(tmp.dir, 'data/srtm_jasper_ab_100m.tif'), 0x80000000) >= 4);
    // A process of its own: before the fix, one tile aborted the whole process (exit 134).
    server = await startServerProcess(tmp.dir);
  });
  after(async () => {
    await server?.stop();
    await tmp?.remove();
  });

  test('answers 500 naming the file and the block, and the server keeps serving', async () => {
    const r = await request(server.url, tilePath('dem-relief', lonLatToTile(-117.55, 53.24, 12)));
    assert.equal(r.status, 500, r.body.toString());
    const body = JSON.parse(r.body.toString()) as { error: string; detail: string };
    assert.equal(body.error, 'bad source data');
    assert.match(body.detail, /^data\/srtm_jasper_ab_100m\.tif: block \d+ of image \d+ at byte \d+ claims 2147483648 bytes; a block holds at most \d+$/);
    assert.equal(server.child.exitCode, null, 'the process is alive');
    assert.equal((await request(server.url, '/healthz')).status, 200);
  });
});

test('/readyz answers 503 while no layer is loaded, 200 once one is (issue 13, finding 6)', async () => {
  const tmp = await makeLayersDir();
  const server = await startServer(tmp.dir, { WORKERS: '1' });
  try {
    const empty = await getJson<{ status: string; layers: number }>(server.url, '/readyz');
    assert.equal(empty.status, 503);
    assert.deepEqual([empty.json.status, empty.json.layers], ['not ready', 0]);
    assert.equal((await request(server.url, '/healthz')).status, 200, 'alive all the same');
  } finally {
    await server.close();
    await tmp.remove();
  }
  const one = await makeLayersDir(['dem-relief']);
  const loaded = await startServer(one.dir, { WORKERS: '1' });
  try {
    assert.equal((await request(loaded.url, '/readyz')).status, 200);
  } finally {
    await loaded.close();
    await one.remove();
  }
});

test('a LAYERS_DIR reached through a link leaks no server path in error bodies (issue 13, finding 5)', async () => {
  const tmp = await makeLayersDir(['dem-relief']);
  const link = path.join(tmp.root, 'via-link');
  symlinkSync(tmp.dir, link);
  const cog = path.join(tmp.dir, 'data/srtm_jasper_ab_100m.tif');
  const server = await startServer(link, { WORKERS: '1' });
  try {
    // Cut after loading: the full-resolution blocks at the end of the file are gone.
    truncateSync(cog, Math.floor(statSync(cog).size * 0.3));
    const r = await request(server.url, tilePath('dem-relief', lonLatToTile(-117.55, 53.24, 14)));
    assert.equal(r.status, 500, r.body.toString());
    const { detail } = JSON.parse(r.body.toString()) as { detail: string };
    assert.match(detail, /^data\/srtm_jasper_ab_100m\.tif: block/);
    for (const p of [tmp.root, realpathSync(tmp.root)]) assert.ok(!detail.includes(p), `${detail} names ${p}`);
  } finally {
    await server.close();
    await tmp.remove();
  }
});

test('a layer the render threads would refuse is refused when it loads: 300 bands read whole (issue 13, finding 7)', async () => {
  const tmp = await makeLayersDir();
  try {
    const tif = path.join(tmp.dir, 'data/many.tif');
    const made = spawnSync(
      'gdal_create',
      ['-q', '-of', 'GTiff', '-outsize', '16', '16', '-bands', '300', '-burn', '7', '-a_srs', 'EPSG:3857', '-a_ullr', '0', '1000', '1000', '0', tif],
      { encoding: 'utf8' },
    );
    assert.equal(made.status, 0, made.stderr);
    const layer = (read: string) =>
      `sources: { many: ./data/many.tif }\npipeline:\n  - read: ${read}\n  - select: { bands: [1] }\n  - rescale: { from: [0, 10] }\n`;
    await tmp.write('all-bands.yaml', layer('{ source: many }'));
    await tmp.write('one-band.yaml', layer('{ source: many, bands: [1] }'));
    const server = await startServer(tmp.dir, { WORKERS: '1' });
    try {
      const { json } = await getJson<{ layers: { name: string }[]; refused: { file: string; error: string }[] }>(server.url, '/layers');
      assert.deepEqual(
        json.layers.map((l) => l.name),
        ['one-band'],
      );
      assert.equal(json.refused.length, 1);
      assert.match(json.refused[0]!.error, /^all-bands\.yaml: node 'step 1 \(read\)': source 'many' has 300 bands; name at most 256 with 'bands: \[\.\.\.\]'$/);
      assert.equal((await request(server.url, '/tiles/one-band/14/8192/8191.png')).status, 200, 'the same source with bands named renders');
    } finally {
      await server.close();
    }
  } finally {
    await tmp.remove();
  }
});

describe('methods, preflight, and the HTTP parser’s own refusals (issue 13, finding 8)', () => {
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

  test('other methods on tile routes answer 405 with Allow; OPTIONS answers the CORS preflight', async () => {
    for (const p of ['/tiles/dem-relief/12/740/1323.png', '/tiles/dem-relief/tilejson.json', '/wmts/1.0.0/WMTSCapabilities.xml']) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        const r = await request(server.url, p, { method });
        assert.equal(r.status, 405, `${method} ${p}`);
        assert.equal(r.headers.allow, 'GET, HEAD, OPTIONS');
        assert.equal(r.headers['cache-control'], 'no-store');
        assert.deepEqual(Object.keys(JSON.parse(r.body.toString()) as object).sort(), ['detail', 'error']);
      }
      const pre = await request(server.url, p, { method: 'OPTIONS', headers: { origin: 'https://maps.example', 'access-control-request-method': 'GET' } });
      assert.equal(pre.status, 204, `OPTIONS ${p}`);
      assert.equal(pre.headers['access-control-allow-origin'], '*');
      assert.match(String(pre.headers['access-control-allow-methods']), /\bGET\b/);
    }
  });

  test('other methods on the server’s own GET routes answer 405 with Allow, not 404', async () => {
    for (const p of ['/layers', '/layers/dem-relief', '/layers/dem-relief/members', '/healthz', '/readyz', '/metrics', '/map', '/map/dem-relief']) {
      for (const method of ['POST', 'DELETE', 'OPTIONS']) {
        const r = await request(server.url, p, { method });
        assert.equal(r.status, 405, `${method} ${p}: ${r.body.toString()}`);
        assert.equal(r.headers.allow, 'GET, HEAD');
        assert.match(JSON.parse(r.body.toString()).detail, new RegExp(`^${method} ${p}: only GET, HEAD$`));
      }
      // HEAD answers as GET does (the members of a layer that is no mosaic: 404).
      assert.equal((await request(server.url, p, { method: 'HEAD' })).status, (await request(server.url, p)).status, `HEAD ${p}`);
    }
    // Paths that are not the server's are still 404, whatever the method.
    assert.equal((await request(server.url, '/layers/dem-relief/nope', { method: 'DELETE' })).status, 404);
  });

  test('the query routes answer the CORS preflight too: a page on another origin may POST GeoJSON as application/json', async () => {
    const stats = '/statistics/dem-relief';
    const pre = await request(server.url, stats, {
      method: 'OPTIONS',
      headers: { origin: 'https://maps.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    // Once a 404: browsers then refused to send the POST.
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], '*');
    assert.match(String(pre.headers['access-control-allow-methods']), /\bPOST\b/);
    assert.match(String(pre.headers['access-control-allow-headers']), /\bContent-Type\b/i);
    const ring = [
      [-117.7, 53.1],
      [-117.4, 53.1],
      [-117.4, 53.3],
      [-117.7, 53.1],
    ];
    const posted = await fetch(`${server.url}${stats}?max_size=32`, {
      method: 'POST',
      headers: { origin: 'https://maps.example', 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'Polygon', coordinates: [ring] }),
    });
    assert.equal(posted.status, 200, await posted.clone().text());
    assert.equal(posted.headers.get('access-control-allow-origin'), '*');
    assert.ok(((await posted.json()) as { bands: { count: number }[] }).bands[0]!.count > 0);
    for (const p of ['/point/dem-relief/-117.5,53.2', '/preview/dem-relief.png']) {
      const r = await request(server.url, p, { method: 'OPTIONS', headers: { origin: 'https://maps.example', 'access-control-request-method': 'GET' } });
      assert.equal(r.status, 204, `OPTIONS ${p}`);
      assert.equal((await request(server.url, p, { method: 'DELETE' })).status, 405, `DELETE ${p}`);
    }
    const put = await request(server.url, stats, { method: 'PUT' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.allow, 'GET, POST, HEAD, OPTIONS');
  });

  test('a request whose headers are too large gets a JSON 431 with no-store; a malformed one a JSON 400', async () => {
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const u = new URL(server.url);
        const sock = net.connect(Number(u.port), u.hostname, () => sock.end(text));
        let out = '';
        sock.on('data', (d) => (out += d.toString('latin1')));
        sock.on('end', () => resolve(out));
        sock.on('error', reject);
      });
    const big = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
    assert.match(big, /\r\nCache-Control: no-store\r\n/i);
    assert.deepEqual(Object.keys(JSON.parse(big.split('\r\n\r\n')[1]!) as object).sort(), ['detail', 'error']);
    const bad = await raw('NOT A REQUEST\r\n\r\n');
    assert.match(bad, /^HTTP\/1\.1 400 /);
    assert.deepEqual(Object.keys(JSON.parse(bad.split('\r\n\r\n')[1]!) as object).sort(), ['detail', 'error']);
    // Refusals Node's server would write with an empty body, or answer by closing the connection.
    for (const [text, status, detail] of [
      ['GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n', 400, /Host header/],
      ['GET /tiles/dem-relief/12/740/1323.png HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n', 417, /Expect: 200-ok/],
      ['CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n', 405, /CONNECT/],
    ] as const) {
      const answer = await raw(text);
      assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), `${text.split('\r\n')[0]}: ${answer}`);
      assert.match(answer, /\r\nContent-Type: application\/json; charset=utf-8\r\n/i);
      assert.match(answer, /\r\nCache-Control: no-store\r\n/i);
      const json = JSON.parse(answer.split('\r\n\r\n')[1]!) as { error: string; detail: string };
      assert.deepEqual(Object.keys(json).sort(), ['detail', 'error']);
      assert.match(json.detail, detail);
    }
    // HTTP/1.0 needs no Host.
    assert.match(await raw('GET /healthz HTTP/1.0\r\n\r\n'), /^HTTP\/1\.1 200 /);
    assert.equal((await request(server.url, '/healthz')).status, 200);
  });

  test('a client gets REQUEST_TIMEOUT_S to send its whole request, then a JSON 408; an idle connection outlives nginx’s', async () => {
    const quick = await startServer(tmp.dir, { WORKERS: '1', REQUEST_TIMEOUT_S: '1' });
    const u = new URL(quick.url);
    try {
      // A body that never arrives in full: answered 408 and closed, not held for minutes.
      const t0 = performance.now();
      const slow = await new Promise<string>((resolve, reject) => {
        const sock = net.connect(Number(u.port), u.hostname, () =>
          sock.write('POST /statistics/dem-relief HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"type":'),
        );
        let out = '';
        sock.on('data', (d) => (out += d.toString('latin1')));
        sock.on('close', () => resolve(out));
        sock.on('error', reject);
      });
      const held = performance.now() - t0;
      assert.match(slow, /^HTTP\/1\.1 408 /, slow);
      assert.deepEqual(Object.keys(JSON.parse(slow.split('\r\n\r\n')[1]!) as object).sort(), ['detail', 'error']);
      assert.ok(held < 10_000, `the connection was held ${held.toFixed(0)} ms`);
      // nginx keeps an idle upstream connection up to 60 s (its default; nginx.conf says so):
      // the server must not close one first, or nginx sends a request into a closing socket.
      const conf = readFileSync(path.join(REPO_ROOT, 'nginx.conf'), 'utf8');
      const upstreamIdle = Number(/upstream tilegraph \{[^}]*keepalive_timeout (\d+)s;/.exec(conf)?.[1]);
      assert.ok(upstreamIdle > 0, 'nginx.conf sets the upstream keepalive_timeout');
      assert.ok(quick.server.keepAliveTimeout > upstreamIdle * 1000, `${quick.server.keepAliveTimeout} ms against nginx's ${upstreamIdle} s`);
      // And it does keep one: a second request after Node's default 5 s of idling is answered on the same socket.
      const second = await new Promise<string>((resolve, reject) => {
        const sock = net.connect(Number(u.port), u.hostname, () => sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
        let out = '';
        let asked = false;
        sock.on('data', (d) => {
          out += d.toString('latin1');
          if (!asked && out.includes('"ok"}')) {
            asked = true;
            setTimeout(() => sock.end('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 6000);
          }
        });
        sock.on('close', () => resolve(out));
        sock.on('error', reject);
      });
      assert.equal(second.match(/HTTP\/1\.1 200 /g)?.length, 2, second);
    } finally {
      await quick.close();
    }
  });

  test('the preview page forbids what it does not use: a CSP naming its inline script and style, no framing, nosniff', async () => {
    const r = await request(server.url, '/map/dem-relief');
    assert.equal(r.status, 200);
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /frame-ancestors 'self'/);
    assert.match(csp, /object-src 'none'/);
    const html = r.body.toString();
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    const script = /<script type="module">([\s\S]*?)<\/script>/.exec(html)![1]!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    assert.ok(csp.includes(`script-src 'self' ${hash(script)}`), 'the inline script is allowed by its hash, and nothing else inline');
    assert.ok(csp.includes(`style-src 'self' ${hash(style)}`));
    for (const p of ['/map/dem-relief', '/tiles/dem-relief/12/740/1323.png', '/layers']) {
      assert.equal((await request(server.url, p)).headers['x-content-type-options'], 'nosniff', p);
    }
  });

  test('a FIFO named like a layer file is listed as refused, not skipped in silence', async () => {
    const dir = await makeLayersDir(['dem-relief']);
    assert.equal(spawnSync('mkfifo', [path.join(dir.dir, 'pipe.yaml')]).status, 0);
    const other = await startServer(dir.dir, { WORKERS: '1' });
    try {
      const { json } = await getJson<{ layers: { name: string }[]; refused: { file: string; error: string }[] }>(other.url, '/layers');
      assert.deepEqual(
        json.layers.map((l) => l.name),
        ['dem-relief'],
      );
      assert.deepEqual(json.refused, [{ file: 'pipe.yaml', error: 'pipe.yaml: not a regular file' }]);
    } finally {
      await other.close();
      await dir.remove();
    }
  });
});

test('a layer whose source goes away comes back by itself when the source returns (issue 13, finding 2)', async () => {
  const tmp = await makeLayersDir(['dem-relief']);
  const cog = path.join(tmp.dir, 'data/srtm_jasper_ab_100m.tif');
  const kept = path.join(tmp.root, 'kept.tif');
  const server = await startServer(tmp.dir, { WORKERS: '1', SOURCE_RECHECK_S: '1' });
  const state = async () => (await getJson<{ layers: { name: string }[]; refused: { file: string; error: string }[] }>(server.url, '/layers')).json;
  try {
    const tile = tilePath('dem-relief', lonLatToTile(-117.55, 53.24, 12));
    assert.equal((await request(server.url, tile)).status, 200);
    renameSync(cog, kept);
    await until('the layer to be refused', async () => (await state()).layers.length === 0);
    const refused = (await state()).refused;
    assert.equal(refused.length, 1);
    assert.match(refused[0]!.error, /^dem-relief\.yaml: source 'dem': '\.\/data\/srtm_jasper_ab_100m\.tif' does not exist$/);
    assert.equal((await request(server.url, tile)).status, 404);
    renameSync(kept, cog);
    await until('the layer to come back', async () => (await state()).layers.length === 1);
    assert.deepEqual((await state()).refused, [], '/layers says it loads again');
    assert.equal((await request(server.url, tile)).status, 200);
  } finally {
    await server.close();
    await tmp.remove();
  }
});

test('a COG overwritten in place is noticed by the first tile that reads it, with no round of checks (issue 13, finding 8)', async () => {
  const tmp = await makeLayersDir(['dem-relief']);
  const cog = path.join(tmp.dir, 'data/srtm_jasper_ab_100m.tif');
  // The same pixels in another layout: other compression, other blocks, other offsets.
  const other = path.join(tmp.root, 'relaid.tif');
  const made = spawnSync('gdal_translate', ['-q', '-of', 'COG', '-co', 'COMPRESS=LZW', '-co', 'BLOCKSIZE=128', cog, other], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  // No rounds of checks: only the render can notice. The reference is an untouched copy.
  const server = await startServer(tmp.dir, { WORKERS: '1', SOURCE_RECHECK_S: '0' });
  const untouched = await makeLayersDir(['dem-relief']);
  const reference = await startServer(untouched.dir, { WORKERS: '1' });
  const versionOf = async () => (await getJson<{ layers: { name: string; version: string }[] }>(server.url, '/layers')).json.layers[0]?.version;
  try {
    // Two tiles in opposite corners of the raster, reading different blocks.
    const northWest = tilePath('dem-relief', lonLatToTile(-117.8, 53.35, 12));
    const southEast = tilePath('dem-relief', lonLatToTile(-117.3, 53.1, 12));
    assert.equal((await request(server.url, northWest)).status, 200);
    const version = await versionOf();

    const inode = statSync(cog).ino;
    copyFileSync(other, cog); // truncates and writes the same file: the render thread's open handle reads the new bytes
    assert.equal(statSync(cog).ino, inode, 'overwritten in place, not replaced');

    const after = await request(server.url, southEast);
    assert.equal(after.status, 200, after.body.toString());
    assert.notEqual(await versionOf(), version, 'the layer was reloaded with the new file');
    const expected = await request(reference.url, southEast);
    assert.equal(differingPixels(await decode(after.body), await decode(expected.body)), 0, 'the same pixels, read through the new layout');
    assert.notEqual(after.headers.etag, expected.headers.etag, 'the new version gives a new ETag');
  } finally {
    await server.close();
    await reference.close();
    await tmp.remove();
    await untouched.remove();
  }
});

test('one long render holds up no tile while a thread is idle (issue 13, finding 4)', async (t) => {
  const tmp = await makeLayersDir(['dem-relief']);
  // A heavy layer: one zoom-10 tile's extent in 4000 x 4000 pixels with no overviews, so that
  // its tile decodes 16 million pixels and resamples them with a cubic kernel.
  const [z, x, y] = lonLatToTile(-117.55, 53.24, 10);
  const span = (2 * Math.PI * 6378137) / 2 ** z;
  const [minX, maxY] = [-Math.PI * 6378137 + x * span, Math.PI * 6378137 - y * span];
  const extent = [minX, maxY - span, minX + span, maxY].map(String);
  const made = spawnSync(
    'gdalwarp',
    [
      '-q',
      '-of',
      'COG',
      '-t_srs',
      'EPSG:3857',
      '-te',
      ...extent,
      '-ts',
      '4000',
      '4000',
      '-r',
      'bilinear',
      '-co',
      'OVERVIEWS=NONE',
      '-co',
      'BLOCKSIZE=256',
    ].concat([path.join(SHIPPED_DATA, 'srtm_jasper_ab_100m.tif'), path.join(tmp.dir, 'data/heavy.tif')]),
    { encoding: 'utf8' },
  );
  assert.equal(made.status, 0, made.stderr);
  await tmp.write(
    'heavy.yaml',
    'sources: { dem: ./data/heavy.tif }\npipeline:\n  - read: { source: dem, resampling: cubic }\n  - rescale: { from: [900, 2700] }\n',
  );
  const server = await startServer(tmp.dir, { WORKERS: '2' });
  try {
    // Light tiles, all in the western half of the relief layer's columns: the band of the same
    // thread as the heavy tile (a layer one tile wide is all in the first band).
    const light = [-117.8, -117.75, -117.7, -117.65].flatMap((lon) => [53.1, 53.2, 53.3].map((lat) => tilePath('dem-relief', lonLatToTile(lon, lat, 13))));
    assert.equal(new Set(light).size, light.length);
    assert.equal((await request(server.url, tilePath('dem-relief', lonLatToTile(-117.3, 53.4, 12)))).status, 200, 'warm');

    const t0 = performance.now();
    const heavy = request(server.url, tilePath('heavy', [z, x, y], '@2x.png')).then((r) => ({ r, ms: performance.now() - t0 }));
    await new Promise((r) => setTimeout(r, 100)); // the heavy tile is in its thread
    const answers = await Promise.all(light.map((p) => request(server.url, p).then((r) => ({ r, ms: performance.now() - t0 }))));
    const slow = await heavy;
    assert.equal(slow.r.status, 200, slow.r.body.toString());
    const last = Math.max(...answers.map((a) => a.ms));
    t.diagnostic(`heavy tile ${slow.ms.toFixed(0)} ms; ${light.length} light tiles all answered by ${last.toFixed(0)} ms`);
    for (const a of answers) assert.equal(a.r.status, 200);
    assert.ok(last < slow.ms, `a light tile waited for the heavy one (${last.toFixed(0)} ms >= ${slow.ms.toFixed(0)} ms)`);
  } finally {
    await server.close();
    await tmp.remove();
  }
});

test('X-Forwarded-* is believed only from TRUSTED_PROXIES (issue 13, finding 8)', async () => {
  const tmp = await makeLayersDir(['dem-relief']);
  const forged = { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', 'x-forwarded-port': '8443' };
  const tiles = async (s: TestServer) =>
    (JSON.parse((await request(s.url, '/tiles/dem-relief/tilejson.json', { headers: forged })).body.toString()) as { tiles: string[] }).tiles[0]!;
  const trusting = await startServer(tmp.dir, { WORKERS: '1' });
  const wary = await startServer(tmp.dir, { WORKERS: '1', TRUSTED_PROXIES: '10.9.9.0/24,fd00::1' });
  try {
    assert.match(await tiles(trusting), /^https:\/\/evil\.example:8443\/tiles\/dem-relief\//, 'loopback is trusted by default (nginx on the same machine)');
    assert.equal((await tiles(wary)).split('/tiles/')[0], wary.url, 'from an untrusted peer, the request’s own address');
  } finally {
    await trusting.close();
    await wary.close();
    await tmp.remove();
  }
  assert.throws(() => loadSettingsAndList('10.0.0.300'), /TRUSTED_PROXIES: '10\.0\.0\.300' is not an address or CIDR range/);
});

test('a question whose client went away leaves the queue it waits in: the next request is not kept waiting behind it', async () => {
  const tmp = await makeLayersDir(['dem-relief']);
  // One render thread, and previews of 2048 x 2048 pixels: each holds it for a while. All 40
  // are taken (MAX_AREA_REQUESTS): one at work, the others waiting their turn.
  const server = await startServer(tmp.dir, { WORKERS: '1', MAX_AREA_REQUESTS: '64' });
  const queued = async () => Number(/^tilegraph_pool_queue_length (\d+)$/m.exec((await request(server.url, '/metrics')).body.toString())?.[1]);
  try {
    const one = await request(server.url, '/preview/dem-relief.png?bbox=-117.8,53.1,-117.3,53.35&width=2048');
    assert.equal(one.status, 200);
    const asked = Array.from({ length: 40 }, (_, i) =>
      fetch(`${server.url}/preview/dem-relief.png?bbox=${-117.8 + i * 0.001},53.1,-117.3,53.35&width=2048`, { signal: AbortSignal.timeout(300) }).then(
        () => 'answered',
        (err: Error) => err.name,
      ),
    );
    const ends = await Promise.all(asked);
    assert.ok(ends.filter((e) => e === 'TimeoutError').length >= 20, `most clients gave up: ${ends.join(', ')}`);
    // Rendered one after another, what they asked would keep the thread busy for seconds more;
    // once the server has seen their connections close, nothing of it waits.
    await until('the abandoned previews to leave the queue', async () => (await queued()) === 0, 1500);
    assert.equal((await request(server.url, '/point/dem-relief/-117.5,53.2')).status, 200);
    // Counted as nginx counts them: 499.
    const gone = /^tilegraph_http_requests_total\{layer="",route="\/preview\/:file",status="499",cache=""\} (\d+)$/m.exec(
      (await request(server.url, '/metrics')).body.toString(),
    );
    assert.ok(Number(gone?.[1]) >= 20, `requests given up, by the metrics: ${gone?.[1]}`);
  } finally {
    await server.close();
    await tmp.remove();
  }
});

test('a tile every client of which went away leaves the render queue; one a client still waits for is rendered', async (t) => {
  const tmp = await makeLayersDir(['dem-relief']);
  // 1024 x 1024 pixel tiles (512 at @2x) on one render thread: each holds it for a while.
  await tmp.write('big-relief.yaml', (await shippedLayerText('dem-relief')).replace(/^minzoom:/m, 'tileSize: 512\nminzoom:'));
  const server = await startServer(tmp.dir, { WORKERS: '1' });
  const metric = async (pattern: RegExp) => Number(pattern.exec((await request(server.url, '/metrics')).body.toString())?.[1] ?? 0);
  const renders = () => metric(/^tilegraph_renders_total\{layer="big-relief"\} (\d+)$/m);
  try {
    const first = await request(server.url, tilePath('big-relief', lonLatToTile(-117.5, 53.2, 11), '@2x.png'));
    assert.equal(first.status, 200, first.body.toString());
    const before = await renders();
    // A client panning away: 48 tiles asked, each given up after 300 ms (as Leaflet and MapLibre cancel them).
    const [, x0, y0] = lonLatToTile(-117.8, 53.35, 13);
    const paths = Array.from({ length: 48 }, (_, i) => tilePath('big-relief', [13, x0 + (i % 8), y0 + Math.floor(i / 8)], '@2x.png'));
    const gaveUp = (p: string) =>
      fetch(server.url + p, { signal: AbortSignal.timeout(300) }).then(
        () => 'answered',
        (err: Error) => err.name,
      );
    // The last of them is also asked by a client who waits for it: its render must go on.
    const shared = paths.at(-1)!;
    const ends = Promise.all(paths.map(gaveUp));
    const kept = request(server.url, shared);
    const given = (await ends).filter((e) => e === 'TimeoutError').length;
    assert.ok(given >= 24, `most clients gave up: ${given} of ${paths.length}`);
    const answer = await kept;
    assert.equal(answer.status, 200, answer.body.toString());
    assert.equal(answer.headers['x-cache'], 'miss');
    await until('the abandoned tiles to leave the queue', async () => (await metric(/^tilegraph_pool_queue_length (\d+)$/m)) === 0);
    const rendered = (await renders()) - before;
    t.diagnostic(`${given} tiles given up; ${rendered} of ${paths.length} rendered`);
    // Those a thread had taken before their clients left, and the one still wanted; not the rest.
    assert.ok(rendered <= paths.length - given + 5, `${rendered} tiles rendered for clients that had gone`);
    // Counted as nginx counts them: 499 on the tile route.
    const gone = await metric(/^tilegraph_http_requests_total\{layer="",route="\/tiles\/:layer\/:z\/:x\/:file",status="499",cache=""\} (\d+)$/m);
    assert.ok(gone >= given - 4, `tile requests given up, by the metrics: ${gone}`);
    // A tile whose render was dropped is rendered afresh when asked again, not answered with the drop.
    const again = await request(server.url, paths[paths.length - 2]!);
    assert.equal(again.status, 200, again.body.toString());
    assert.equal(again.headers['x-cache'], 'miss');
  } finally {
    await server.close();
    await tmp.remove();
  }
});

test('a full queue and a render past its time are logged as warnings without a stack; a fault as an error with one', () => {
  const lines: { level: number; msg: string; err?: { stack?: string }; detail?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
  const answer = errorHandler(log, '/nowhere');
  const ask = (err: unknown) => {
    const req = new IncomingMessage(new net.Socket());
    req.url = '/tiles/dem-relief/12/711/1329.png';
    const res = new ServerResponse(req);
    answer(err, req, res);
    return res.statusCode;
  };
  assert.equal(ask(new TileError('overload', 'busy', 'the render queue is full')), 503);
  assert.equal(ask(new TileError('render_timeout', 'render timed out', 'rendering took longer than 15000 ms')), 503);
  assert.equal(ask(new Error('a bug')), 500);
  // Once every 503 was an error with its stack: hundreds of them under a burst.
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg, l.err?.stack !== undefined]),
    [
      [40, 'busy', false],
      [40, 'render timed out', false],
      [50, 'internal error', true],
    ],
  );
  assert.equal(lines[0]!.detail, 'the render queue is full');
});

function loadSettingsAndList(value: string) {
  return proxyList(loadSettings({ TRUSTED_PROXIES: value }).trustedProxies);
}

/**
 * An upstream that answers range requests wrongly (tried as a hostile or broken server would):
 * a 206 for another range was taken as the block asked for; a 206 whose body ran past its range,
 * or a server that ignores Range and streams the file without end, was buffered until the
 * process ran out of memory (4 GiB within 8-15 s on loopback).
 */
describe('an upstream that answers range requests wrongly', () => {
  /** The byte at position p of the served file. */
  const at = (p: number) => p % 251;
  const pattern = (from: number, n: number) => Buffer.from(Array.from({ length: n }, (_, i) => at(from + i)));
  const SIZE = 100 * 2 ** 20;
  type Mode = 'shifted' | 'no-content-range' | 'endless-206' | 'short-206' | 'end-of-file' | 'endless-200' | 'stall';
  let mode: Mode = 'shifted';
  /** Bytes the server wrote for the current read. */
  let sent = 0;
  let upstream: http.Server;
  let url: string;

  before(async () => {
    upstream = http.createServer((req, res) => {
      if (req.method === 'HEAD') return res.writeHead(200, { 'Content-Length': SIZE, ETag: '"p"' }).end();
      const [, a, b] = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '') ?? [];
      const [start, end] = [Number(a), Number(b)];
      const n = end - start + 1;
      const endless = (status: number, headers: http.OutgoingHttpHeaders, from: number) => {
        res.writeHead(status, headers);
        let p = from;
        const write = () => {
          for (let more = true; more && !res.destroyed; p += 65536, sent += 65536) more = res.write(pattern(p, 65536));
        };
        res.on('drain', write);
        write();
      };
      if (mode === 'shifted') return res.writeHead(206, { 'Content-Range': `bytes 0-${n - 1}/${SIZE}` }).end(pattern(0, n));
      if (mode === 'no-content-range') return res.writeHead(206, { 'Content-Length': n }).end(pattern(start, n));
      if (mode === 'endless-206') return endless(206, { 'Content-Range': `bytes ${start}-${end}/${SIZE}` }, start);
      if (mode === 'short-206') return res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${SIZE}` }).end(pattern(start, n >> 1));
      if (mode === 'end-of-file') return res.writeHead(206, { 'Content-Range': `bytes ${start}-${start + 49}/${start + 50}` }).end(pattern(start, 50));
      if (mode === 'endless-200') return endless(200, {}, 0);
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${SIZE}` });
      res.write(pattern(start, 10));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}/x.tif`;
  });
  after(() => {
    upstream.closeAllConnections();
    upstream.close();
  });

  async function refusal(m: Mode, offset: number, length: number, source = new HttpSource(url)): Promise<TileError> {
    mode = m;
    sent = 0;
    const err = await source.read(offset, length).then(
      () => assert.fail(`${m}: the read succeeded`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof TileError, `${m}: ${String(err)}`);
    return err;
  }

  test('a 206 for another range, or without a Content-Range, is refused naming what was asked and what came', async () => {
    const shifted = await refusal('shifted', 1000, 100);
    assert.equal(shifted.code, 'upstream');
    assert.equal(shifted.detail, `${url}: the range request for bytes 1000-1099 was answered with bytes 0-99/${SIZE}`);
    const bare = await refusal('no-content-range', 1000, 100);
    assert.equal(bare.detail, `${url}: the range request for bytes 1000-1099 was answered 206 with no Content-Range`);
    const short = await refusal('short-206', 1000, 100);
    assert.equal(short.detail, `${url}: the range request for bytes 1000-1099 was answered with 50 of the 100 bytes its Content-Range names`);
  });

  test('a 206 whose body runs past its range is refused after reading no more than the range and one chunk', async () => {
    const err = await refusal('endless-206', 1000, 100);
    assert.equal(err.detail, `${url}: the range request for bytes 1000-1099 was answered with more than the 100 bytes its Content-Range names`);
    assert.ok(sent < 64 * 2 ** 20, `the server sent ${sent} bytes before the read gave up`);
  });

  test('the end of the file answers fewer bytes than asked, as a file does', async () => {
    mode = 'end-of-file';
    assert.deepEqual(Buffer.from(await new HttpSource(url).read(5000, 100)), pattern(5000, 50));
  });

  test('a server that ignores Range: the bytes asked for, read no further, within the first 64 MiB; past them refused', async () => {
    mode = 'endless-200';
    sent = 0;
    assert.deepEqual(Buffer.from(await new HttpSource(url).read(300_000, 1000)), pattern(300_000, 1000));
    assert.ok(sent < 64 * 2 ** 20, `the server sent ${sent} bytes for a read that ends at byte 301000`);
    const far = await refusal('endless-200', 64 * 2 ** 20, 100);
    assert.match(
      far.detail,
      /: the range request for bytes 67108864-67108963 was answered with the whole file \(the server ignores Range\), which is read for ranges within the first 67108864 bytes only$/,
    );
  });

  test('a body that stalls times out as the upstream’s timeout', async () => {
    const err = await refusal('stall', 1000, 100, new HttpSource(url, { timeoutMs: 300 }));
    assert.equal(err.code, 'upstream_timeout');
    assert.equal(err.detail, `${url}: timed out after 300 ms`);
  });

  test('tried as a hostile upstream would: a body that stalls while the collector runs still times out', async () => {
    // With AbortSignal.timeout given to fetch, a collection after the headers left the abort
    // unable to reach the body, which was waited on without end (Node's server closed it after
    // 300 s; src/sources/bytesource.ts fetchWithin).
    const gc = forcedGc();
    const collecting = setInterval(gc, 20);
    try {
      const late = new Promise<null>((resolve) => setTimeout(() => resolve(null), 3000).unref());
      const err = await Promise.race([refusal('stall', 1000, 100, new HttpSource(url, { timeoutMs: 300 })), late]);
      assert.ok(err, 'a read whose body stalls: no answer 3 s after its 300 ms timeout');
      assert.equal(err.code, 'upstream_timeout');
      assert.equal(err.detail, `${url}: timed out after 300 ms`);
    } finally {
      clearInterval(collecting);
      upstream.closeAllConnections();
    }
  });

  test('through the server: a 206 for another range answers 502 naming it, and the server keeps serving', async () => {
    const tmp = await makeLayersDir();
    const range = await startRangeServer(SHIPPED_DATA);
    // In front of the honest range server: the NIR file's header and blocks, each answered from byte 0 once loaded.
    let shift = false;
    const nir = readFileSync(path.join(SHIPPED_DATA, NIR));
    const front = http.createServer((req, res) => {
      const headers: Record<string, string> = req.headers.range ? { range: req.headers.range } : {};
      void fetch(range.url + req.url!, { method: req.method, headers }).then(async (r) => {
        let body = Buffer.from(await r.arrayBuffer());
        const out: Record<string, string> = {};
        for (const k of ['content-length', 'content-range', 'etag', 'last-modified']) if (r.headers.get(k)) out[k] = r.headers.get(k)!;
        if (shift && r.status === 206) {
          const [, a, b, size] = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(out['content-range']!)!;
          const n = Number(b) - Number(a) + 1;
          body = nir.subarray(0, n);
          out['content-range'] = `bytes 0-${n - 1}/${size}`;
        }
        res.writeHead(r.status, out).end(req.method === 'HEAD' ? undefined : body);
      });
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(front.address() as net.AddressInfo).port}`;
    try {
      await tmp.write('nir-front.yaml', (await shippedLayerText('zion-nir')).replace(`./data/${NIR}`, `http://${host}/${NIR}`));
      const server = await startServer(tmp.dir, { WORKERS: '1', ALLOWED_HOSTS: host });
      try {
        shift = true;
        const r = await request(server.url, tilePath('nir-front', FIRST));
        assert.equal(r.status, 502, r.body.toString());
        const body = JSON.parse(r.body.toString()) as { error: string; detail: string };
        assert.equal(body.error, 'upstream failed');
        assert.match(
          body.detail,
          new RegExp(`^http://${host}/${NIR.replace(/\./g, '\\.')}: the range request for bytes (\\d+)-\\d+ was answered with bytes 0-\\d+/\\d+$`),
        );
        shift = false;
        const again = await request(server.url, tilePath('nir-front', FIRST));
        assert.equal(again.status, 200, again.body.toString());
        assert.equal((await request(server.url, '/healthz')).status, 200);
      } finally {
        await server.close();
      }
    } finally {
      front.closeAllConnections();
      front.close();
      await range.close();
      await tmp.remove();
    }
  });
});
