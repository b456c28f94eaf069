/**
 * Errors keep their kind on the way back from a render thread, and each kind answers its own
 * status (src/server/errors.ts): an upstream that fails is a 502, a quality check that raises
 * a 500 naming the check, an unknown layer the same 404 on every route. None is cached.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TileError, fromWire, toWire } from '../src/errors.js';
import {
  getJson,
  makeLayersDir,
  request,
  SHIPPED_DATA,
  shippedLayerText,
  startRangeServer,
  startServer,
  tilePath,
  type RangeServer,
  type TempLayers,
  type TestServer,
  type Tile,
} from './helpers/http.js';

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
  });
});
