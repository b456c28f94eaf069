/**
 * The preview page and third-party map pages in a real browser (issue 4): Debian's Chromium,
 * headless, driven by playwright-core, against `serve()` on the shipped layers (copied to a
 * temporary directory). Each page must load its tiles with no failed request, no HTTP error
 * and no console error, must ask no host but the tile server (no CDN), and its screenshot
 * (test/fixtures/out/browser/) must show the data: many colours, mostly not the background,
 * and for the land cover mostly the colours of the NLCD palette.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import sharp from 'sharp';
import { makeLayersDir, REPO_ROOT, startServer, type TempLayers, type TestServer } from './helpers/http.js';

const CHROMIUM = '/usr/bin/chromium';
const SKIP = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (Debian package chromium)`;
const OUT = path.join(REPO_ROOT, 'test/fixtures/out/browser');
/**
 * Headless without a GPU: WebGL (which MapLibre needs) comes from SwiftShader, Chromium's CPU
 * implementation, which it now only enables when asked.
 */
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--enable-unsafe-swiftshader', '--use-angle=swiftshader'];
const VIEWPORT = { width: 1200, height: 800 };
const LAYERS = ['zion-landcover', 'dem-relief', 'zion-nir'] as const;
/** The background of the preview page's map (#e9ecef). */
const PAGE_BACKGROUND: Rgb = [0xe9, 0xec, 0xef];
/** NLCD 2011 class colours (the colour table of layers/data/nlcd2011_zion.tif). */
const NLCD: Rgb[] = [
  [71, 107, 160],
  [209, 221, 249],
  [221, 201, 201],
  [216, 147, 130],
  [237, 0, 0],
  [170, 0, 0],
  [178, 173, 163],
  [249, 249, 249],
  [104, 170, 99],
  [28, 99, 48],
  [181, 201, 142],
  [165, 140, 48],
  [204, 186, 124],
  [226, 226, 193],
  [201, 201, 119],
  [153, 193, 71],
  [119, 173, 147],
  [219, 216, 61],
  [170, 112, 40],
  [186, 216, 234],
  [181, 211, 229],
  [112, 163, 186],
];

type Rgb = [number, number, number];
const TILE_URL = /\/tiles\/([a-z0-9_-]+)\/(\d+)\/(\d+)\/(\d+)(@2x)?\.(png|webp)(\?|$)/;

interface Watch {
  requests: string[];
  tiles: { url: string; status: number; type: string }[];
  problems: string[];
}

/** Everything a page asks for and everything that goes wrong on it. */
function watch(page: Page): Watch {
  const w: Watch = { requests: [], tiles: [], problems: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') w.problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => w.problems.push(`page error: ${e.message}`));
  page.on('request', (r) => w.requests.push(r.url()));
  page.on('requestfailed', (r) => w.problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400) w.problems.push(`HTTP ${r.status()}: ${r.url()}`);
    if (TILE_URL.test(r.url())) w.tiles.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] ?? '' });
  });
  return w;
}

interface Look {
  distinct: number;
  /** Share of the region in the background colour. */
  background: number;
  /** Share of the rest (the data) within 10 levels of a palette colour. */
  palette: number;
}

/**
 * Colour statistics of a screenshot region. Maps resample tiles linearly at fractional zooms,
 * so class edges blend: the palette share counts the data pixels that kept a class colour.
 */
async function look(png: Buffer, region: { left: number; top: number; width: number; height: number }, background: Rgb, palette: Rgb[] = []): Promise<Look> {
  const { data, info } = await sharp(png).extract(region).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const colours = new Set<number>();
  let bg = 0,
    pal = 0;
  const near = (i: number, c: Rgb, d: number) => Math.abs(data[i]! - c[0]) <= d && Math.abs(data[i + 1]! - c[1]) <= d && Math.abs(data[i + 2]! - c[2]) <= d;
  for (let p = 0; p < n; p++) {
    const i = 3 * p;
    colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!);
    if (near(i, background, 3)) bg++;
    else if (palette.some((c) => near(i, c, 10))) pal++;
  }
  return { distinct: colours.size, background: bg / n, palette: n > bg ? pal / (n - bg) : 0 };
}

function assertClean(w: Watch, base: string, what: string, t: TestContext): void {
  assert.deepEqual(w.problems, [], `${what}: no failed requests, HTTP errors or console errors`);
  const foreign = w.requests.filter((u) => !u.startsWith(base) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(foreign, [], `${what}: asks nothing of other hosts (no CDN)`);
  assert.ok(w.tiles.length >= 4, `${what}: loaded ${w.tiles.length} tiles`);
  for (const tile of w.tiles) {
    assert.ok(tile.status === 200 || tile.status === 204, `${what}: ${tile.status} for ${tile.url}`);
    if (tile.status === 200) assert.equal(tile.type, 'image/png', tile.url);
  }
  assert.ok(
    w.tiles.some((tile) => tile.status === 200),
    `${what}: some tiles hold data`,
  );
  t.diagnostic(`${what}: ${w.requests.length} requests, ${w.tiles.length} tiles (${w.tiles.filter((x) => x.status === 204).length} empty)`);
}

async function shoot(page: Page, name: string): Promise<Buffer> {
  const file = path.join(OUT, `${name}.png`);
  await page.screenshot({ path: file });
  return readFile(file);
}

/** Waits for the preview page's map to settle with the given layer's tiles drawn. */
async function mapIdle(page: Page, layer: string): Promise<void> {
  await page.waitForFunction(
    (name) => {
      const s = (globalThis as unknown as { tilegraph?: { idle: boolean; layer: string } }).tilegraph;
      return !!s && s.idle && s.layer === name;
    },
    layer,
    { timeout: 30_000 },
  );
}

let layers: TempLayers;
let server: TestServer;
let browser: Browser;
let context: BrowserContext;

describe('in Chromium', { skip: SKIP }, () => {
  before(async () => {
    layers = await makeLayersDir([...LAYERS]);
    server = await startServer(layers.dir);
    await mkdir(OUT, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await layers?.remove();
  });

  // The panel covers the left of the page and the controls its corners: look right of it.
  const MAP_AREA = { left: 400, top: 60, width: 720, height: 680 };

  for (const layer of ['zion-landcover', 'dem-relief'] as const) {
    test(`/map/${layer}: tiles load, the screenshot shows the data`, { timeout: 60_000 }, async (t) => {
      const page = await context.newPage();
      const w = watch(page);
      await page.goto(`${server.url}/map/${layer}`);
      await mapIdle(page, layer);
      const png = await shoot(page, `map-${layer}`);
      assertClean(w, server.url, `/map/${layer}`, t);
      assert.ok(
        w.tiles.every((x) => x.url.includes(`/tiles/${layer}/`) && !x.url.includes('@2x')),
        "the layer's 1x tiles on a 1x screen",
      );
      const seen = await look(png, MAP_AREA, PAGE_BACKGROUND, layer === 'zion-landcover' ? NLCD : []);
      t.diagnostic(`${layer}: ${seen.distinct} colours, ${(seen.background * 100).toFixed(1)}% background, ${(seen.palette * 100).toFixed(1)}% NLCD palette`);
      assert.ok(seen.distinct >= 200, `${seen.distinct} distinct colours`);
      assert.ok(seen.background < 0.4, `${(seen.background * 100).toFixed(1)}% background`);
      if (layer === 'zion-landcover') assert.ok(seen.palette > 0.5, `${(seen.palette * 100).toFixed(1)}% of the data pixels are NLCD colours`);
      // MapLibre counts zooms in 512 px tiles: 256 px tiles come at one zoom above the map's.
      const z = Number(TILE_URL.exec(w.tiles[0]!.url)![2]);
      const zoom = await page.evaluate(() => (globalThis as unknown as { tilegraph: { map: { getZoom(): number } } }).tilegraph.map.getZoom());
      assert.ok(Math.abs(z - (zoom + 1)) <= 0.5, `tiles of zoom ${z} at map zoom ${zoom.toFixed(2)}`);

      // The panel: every layer in the switcher, the URLs to copy, the QGIS settings.
      const options = await page.$$eval('#layer option', (os) => os.map((o) => (o as HTMLOptionElement).value));
      assert.deepEqual(options, [...LAYERS].sort());
      const tj = (await (await fetch(`${server.url}/tiles/${layer}/tilejson.json`)).json()) as { tiles: string[]; minzoom: number; maxzoom: number };
      assert.equal(await page.inputValue('#xyz'), tj.tiles[0]);
      assert.equal(await page.inputValue('#xyz2x'), tj.tiles[0]!.replace('.png?', '@2x.png?'));
      assert.equal(await page.inputValue('#tilejson'), `${server.url}/tiles/${layer}/tilejson.json`);
      assert.equal(await page.inputValue('#wmts'), `${server.url}/wmts/1.0.0/WMTSCapabilities.xml`);
      assert.equal(await page.textContent('#qzmin'), String(tj.minzoom));
      assert.equal(await page.textContent('#qzmax'), String(tj.maxzoom));
      assert.equal(await page.textContent('#qlayer'), layer);
      assert.equal(await page.textContent('#qset'), 'GoogleMapsCompatible');
      await page.close();
    });
  }

  test('the layer switcher swaps the layer in place and updates the URL', { timeout: 60_000 }, async (t) => {
    const page = await context.newPage();
    await page.goto(`${server.url}/map/dem-relief`);
    await mapIdle(page, 'dem-relief');
    const w = watch(page);
    await page.selectOption('#layer', 'zion-nir');
    await mapIdle(page, 'zion-nir');
    const png = await shoot(page, 'map-switched-zion-nir');
    assertClean(w, server.url, 'switch to zion-nir', t);
    assert.ok(
      w.tiles.every((x) => x.url.includes('/tiles/zion-nir/')),
      "only the new layer's tiles are asked for",
    );
    assert.equal(new URL(page.url()).pathname, '/map/zion-nir');
    assert.match(await page.title(), /near-infrared/);
    assert.equal(await page.inputValue('#xyz'), ((await (await fetch(`${server.url}/tiles/zion-nir/tilejson.json`)).json()) as { tiles: string[] }).tiles[0]);
    const seen = await look(png, MAP_AREA, PAGE_BACKGROUND);
    t.diagnostic(`zion-nir after the switch: ${seen.distinct} colours, ${(seen.background * 100).toFixed(1)}% background`);
    assert.ok(seen.distinct >= 64 && seen.background < 0.4);
    // Back: the browser's history returns to the first layer.
    await page.goBack();
    await mapIdle(page, 'dem-relief');
    assert.equal(await page.inputValue('#layer'), 'dem-relief');
    await page.close();
  });

  test('a retina screen gets the @2x tiles through the scale=2 TileJSON', { timeout: 60_000 }, async (t) => {
    const retina = await browser.newContext({ viewport: { width: 900, height: 600 }, deviceScaleFactor: 2 });
    try {
      const page = await retina.newPage();
      const w = watch(page);
      await page.goto(`${server.url}/map/zion-landcover`);
      await mapIdle(page, 'zion-landcover');
      const png = await shoot(page, 'map-retina-zion-landcover');
      assertClean(w, server.url, 'retina /map/zion-landcover', t);
      assert.ok(w.requests.some((u) => u.endsWith('/tiles/zion-landcover/tilejson.json?scale=2')));
      assert.ok(
        w.tiles.every((x) => x.url.includes('@2x.png?v=')),
        'every tile is @2x',
      );
      const z = Number(TILE_URL.exec(w.tiles[0]!.url)![2]);
      const zoom = await page.evaluate(() => (globalThis as unknown as { tilegraph: { map: { getZoom(): number } } }).tilegraph.map.getZoom());
      // As on a 1x screen (zoom + 1 in MapLibre's 512 px zooms): each 512 px @2x image covers
      // 256 CSS px, so 512 device pixels; a source tileSize of 512 would fetch a zoom less.
      assert.ok(Math.abs(z - (zoom + 1)) <= 0.5, `@2x tiles of zoom ${z} drawn at map zoom ${zoom.toFixed(2)}`);
      const meta = await sharp(png).metadata();
      assert.equal(meta.width, 1800);
      const seen = await look(png, { left: 800, top: 120, width: 900, height: 960 }, PAGE_BACKGROUND, NLCD);
      t.diagnostic(`retina: ${seen.distinct} colours, ${(seen.background * 100).toFixed(1)}% background, ${(seen.palette * 100).toFixed(1)}% NLCD palette`);
      assert.ok(seen.distinct >= 200 && seen.background < 0.4 && seen.palette > 0.5);
    } finally {
      await retina.close();
    }
  });

  test('clicking the map shows the values at that point, as GET /point gives them', { timeout: 60_000 }, async (t) => {
    const page = await context.newPage();
    const w = watch(page);
    await page.goto(`${server.url}/map/dem-relief`);
    await mapIdle(page, 'dem-relief');
    await page.mouse.click(MAP_AREA.left + MAP_AREA.width / 2, MAP_AREA.top + MAP_AREA.height / 2);
    await page.waitForFunction(() => document.body.dataset.point === 'shown', undefined, { timeout: 15_000 });
    const shown = await page.evaluate(
      () => (globalThis as unknown as { tilegraph: { point: { lon: number; lat: number; tile: { z: number } } } }).tilegraph.point,
    );
    // The same question asked of the server directly.
    const url = `${server.url}/point/dem-relief/${shown.lon.toFixed(6)},${shown.lat.toFixed(6)}?z=${shown.tile.z}`;
    const direct = (await (await fetch(url)).json()) as { sources: { values: number[] }[]; steps: { name: string; values: number[] }[] };
    assert.deepEqual(shown, direct);
    assert.ok(direct.sources.length === 1 && typeof direct.sources[0]!.values[0] === 'number', 'the click lands on the DEM');
    const panel = await page.textContent('#point');
    assert.ok(panel!.includes(Number(direct.sources[0]!.values[0]).toPrecision(6)), `the panel shows the elevation: ${panel}`);
    for (const n of direct.steps) assert.ok(panel!.includes(n.name), `the panel lists step ${n.name}`);
    await shoot(page, 'map-point-dem-relief');
    assert.deepEqual(w.problems, []);
    t.diagnostic(`clicked ${shown.lon.toFixed(4)}, ${shown.lat.toFixed(4)}: ${direct.sources[0]!.values[0]} m`);
    await page.close();
  });

  test('the tile grid labels each tile with its z/x/y, its cache tier and Server-Timing', { timeout: 60_000 }, async (t) => {
    const page = await context.newPage();
    const w = watch(page);
    await page.goto(`${server.url}/map/zion-landcover`);
    await mapIdle(page, 'zion-landcover');
    await page.check('#grid');
    await page.waitForFunction(() => document.querySelectorAll('.tile-label').length > 0, undefined, { timeout: 15_000 });
    const labels = await page.$$eval('.tile-label', (els) =>
      els.map((e) => ({ tile: (e as HTMLElement).dataset.tile!, tier: (e as HTMLElement).dataset.tier!, text: e.textContent! })),
    );
    const fetched = new Map(w.tiles.map((x) => [TILE_URL.exec(x.url)!.slice(2, 5).join('/'), x]));
    const labelled = labels.filter((l) => fetched.has(l.tile));
    assert.ok(labelled.length >= 4, `labels on the fetched tiles: ${JSON.stringify(labels.slice(0, 6))}`);
    for (const l of labelled) {
      assert.match(l.tier, /^(miss|hit-l1|hit-l2)$/, `${l.tile}: the tier from Server-Timing`);
      assert.match(l.text, /read \d+\.\d ops \d+\.\d encode \d+\.\d ms/, `${l.tile}: the durations`);
    }
    await shoot(page, 'map-grid-zion-landcover');
    await page.uncheck('#grid');
    assert.equal(await page.$$eval('.tile-label', (els) => els.length), 0, 'the grid goes away');
    assert.deepEqual(w.problems, []);
    t.diagnostic(`${labels.length} labels, ${labelled.length} on fetched tiles: ${labelled.map((l) => `${l.tile} ${l.tier}`).join(', ')}`);
    await page.close();
  });

  test("editing the pipeline in the panel shows the posted pipeline's tiles", { timeout: 60_000 }, async (t) => {
    const adhoc = await startServer(layers.dir, { ADHOC_PIPELINES: 'on' });
    const page = await context.newPage();
    try {
      const w = watch(page);
      await page.goto(`${adhoc.url}/map/dem-relief`);
      await mapIdle(page, 'dem-relief');
      await page.waitForFunction(() => (document.getElementById('doc') as HTMLTextAreaElement).value.includes('colormap'));
      const before = await look(await shoot(page, 'map-edit-before'), MAP_AREA, PAGE_BACKGROUND);
      // The colour relief becomes a grey stretch: every data pixel then has r = g = b.
      await page.click('#edit summary');
      const doc = JSON.parse(await page.inputValue('#doc')) as { pipeline: unknown[] };
      doc.pipeline = [doc.pipeline[0], { rescale: { from: [1200, 2400] } }];
      await page.fill('#doc', JSON.stringify(doc, null, 2));
      const seen = w.requests.length;
      await page.click('#apply');
      await page.waitForFunction(() => {
        const s = (globalThis as unknown as { tilegraph: { pipeline: string | null; idle: boolean } }).tilegraph;
        return !!s.pipeline && s.idle;
      });
      const hash = await page.evaluate(() => (globalThis as unknown as { tilegraph: { pipeline: string } }).tilegraph.pipeline);
      const png = await shoot(page, 'map-edit-after');
      const after = w.requests.slice(seen).filter((u) => /\.png(\?|$)/.test(u));
      assert.ok(after.length >= 4 && after.every((u) => u.includes(`/tiles/p/${hash}/`)), `the pipeline's tiles: ${after.join(' ')}`);
      const { data, info } = await sharp(png).extract(MAP_AREA).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      let grey = 0;
      let data_ = 0;
      for (let i = 0; i < info.width * info.height * 3; i += 3) {
        const [r, g, b] = [data[i]!, data[i + 1]!, data[i + 2]!];
        if (Math.abs(r - PAGE_BACKGROUND[0]) <= 3 && Math.abs(g - PAGE_BACKGROUND[1]) <= 3 && Math.abs(b - PAGE_BACKGROUND[2]) <= 3) continue;
        data_++;
        if (Math.abs(r - g) <= 2 && Math.abs(g - b) <= 2) grey++;
      }
      t.diagnostic(`before: ${before.distinct} colours; after: ${(100 * grey) / data_}% of ${data_} data pixels grey`);
      assert.ok(grey / data_ > 0.9, `the tiles changed to grey: ${grey} of ${data_}`);
      assert.equal(w.problems.length, 0, `no failed requests, HTTP errors or console errors: ${w.problems.join('; ')}`);
      // A bad document is refused in the panel, naming the problem; the map keeps the pipeline.
      await page.fill('#doc', '{"sources": {"dem": "/etc/passwd"}, "pipeline": [{"read": {"source": "dem"}}]}');
      await page.click('#apply');
      await page.waitForFunction(() => /invalid pipeline/.test(document.getElementById('edit-status')!.textContent ?? ''));
      assert.match((await page.textContent('#edit-status'))!, /absolute path/);
      // The refusal is the one 400 (the browser logs it too).
      assert.deepEqual(
        w.problems.filter((p) => !p.endsWith('/pipelines') && !p.includes('status of 400')),
        [],
      );
    } finally {
      await page.close();
      await adhoc.close();
    }
  });

  test('the Copy buttons put the URL on the clipboard', { timeout: 30_000 }, async () => {
    const ctx = await browser.newContext({ viewport: VIEWPORT });
    try {
      await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
      const page = await ctx.newPage();
      await page.goto(`${server.url}/map/zion-landcover`);
      await page.click('button[data-copy="wmts"]');
      await page.waitForFunction(() => document.querySelector('button[data-copy="wmts"]')?.textContent === 'Copied');
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${server.url}/wmts/1.0.0/WMTSCapabilities.xml`);
    } finally {
      await ctx.close();
    }
  });

  describe('pages built from the TileJSON on another origin', () => {
    let site: http.Server;
    let siteUrl: string;

    before(async () => {
      const require = createRequire(import.meta.url);
      const dirs: Record<string, string> = {
        leaflet: path.join(path.dirname(require.resolve('leaflet/package.json')), 'dist'),
        maplibre: path.join(path.dirname(require.resolve('maplibre-gl/package.json')), 'dist'),
      };
      const types: Record<string, string> = {
        '.js': 'text/javascript',
        '.mjs': 'text/javascript',
        '.css': 'text/css',
        '.html': 'text/html; charset=utf-8',
        '.png': 'image/png',
        '.svg': 'image/svg+xml',
      };
      site = http.createServer(async (req, res) => {
        const u = new URL(req.url ?? '/', 'http://x');
        const m = /^\/lib\/(leaflet|maplibre)\/([\w.-]+)$/.exec(u.pathname);
        const page = /^\/(leaflet|maplibre)\.html$/.exec(u.pathname);
        try {
          if (m) {
            const body = await readFile(path.join(dirs[m[1]!]!, m[2]!));
            res.writeHead(200, { 'Content-Type': types[path.extname(m[2]!)] ?? 'application/octet-stream' }).end(body);
          } else if (page) {
            const tilejson = u.searchParams.get('tilejson') ?? '';
            res.writeHead(200, { 'Content-Type': types['.html']! }).end(page[1] === 'leaflet' ? leafletPage(tilejson) : maplibrePage(tilejson));
          } else {
            res.writeHead(404).end();
          }
        } catch {
          res.writeHead(404).end();
        }
      });
      await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
      siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    });

    // Chromium may keep a connection open (a preconnect, a pooled socket) while the browser
    // lives: close() alone would wait for it.
    after(
      () =>
        new Promise<void>((resolve) => {
          site.close(() => resolve());
          site.closeAllConnections();
        }),
    );

    for (const [client, layer] of [
      ['leaflet', 'zion-landcover'],
      ['maplibre', 'dem-relief'],
    ] as const) {
      test(`${client} page on ${layer}`, { timeout: 60_000 }, async (t) => {
        const page = await context.newPage();
        const w = watch(page);
        const tilejson = `${server.url}/tiles/${layer}/tilejson.json`;
        await page.goto(`${siteUrl}/${client}.html?tilejson=${encodeURIComponent(tilejson)}`);
        await page.waitForFunction(() => (globalThis as unknown as { done?: boolean }).done === true, undefined, { timeout: 30_000 });
        const png = await shoot(page, `${client}-${layer}`);
        // Leaflet reports a 204 (a tile with no data, SPEC §3) as a tile error, since an <img>
        // cannot show an empty body: allowed for exactly those tiles, which draw nothing.
        const tileErrors = await page.evaluate(() => (globalThis as unknown as { tileErrors?: string[] }).tileErrors ?? []);
        for (const src of tileErrors) {
          assert.equal(w.tiles.find((x) => x.url === src)?.status, 204, `Leaflet tile error for ${src} is an empty tile`);
        }
        if (tileErrors.length) t.diagnostic(`${client}: ${tileErrors.length} tile error event(s), all for 204 (empty) tiles`);
        // Two origins: the page's own (libraries) and the tile server (TileJSON, tiles, CORS).
        const fromSite = w.requests.filter((u) => u.startsWith(siteUrl));
        assert.ok(fromSite.length >= 2);
        assertClean({ ...w, requests: w.requests.filter((u) => !u.startsWith(siteUrl)) }, server.url, `${client} page`, t);
        assert.ok(w.requests.includes(tilejson), 'the page read the TileJSON across origins');
        const seen = await look(png, { left: 40, top: 40, width: 1120, height: 700 }, [255, 255, 255], layer === 'zion-landcover' ? NLCD : []);
        t.diagnostic(
          `${client} ${layer}: ${seen.distinct} colours, ${(seen.background * 100).toFixed(1)}% background, ${(seen.palette * 100).toFixed(1)}% NLCD palette`,
        );
        // At a whole zoom Leaflet draws the class tiles pixel for pixel: about as many colours as classes.
        assert.ok(seen.distinct >= (layer === 'zion-landcover' ? 10 : 200), `${seen.distinct} distinct colours`);
        assert.ok(seen.background < 0.6, `${(seen.background * 100).toFixed(1)}% background`);
        if (layer === 'zion-landcover') assert.ok(seen.palette > 0.5, `${(seen.palette * 100).toFixed(1)}% of the data pixels are NLCD colours`);
        await page.close();
      });
    }
  });
});

/** Leaflet 1.9 from the TileJSON: the template, zoom range, bounds, tile size and attribution. */
function leafletPage(tilejson: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<link rel="stylesheet" href="/lib/leaflet/leaflet.css">
<style>html, body, #map { margin: 0; height: 100%; background: #fff; }</style>
<script src="/lib/leaflet/leaflet.js"></script>
</head><body><div id="map"></div>
<script>
(async () => {
  const tj = await (await fetch(${JSON.stringify(tilejson)})).json();
  const [w, s, e, n] = tj.bounds;
  const bounds = [[s, w], [n, e]];
  // No fade-in: the screenshot is taken as soon as the tiles have loaded.
  const map = L.map('map', { fadeAnimation: false, zoomSnap: 0.25 });
  map.fitBounds(bounds);
  const layer = L.tileLayer(tj.tiles[0], { tileSize: tj.tileSize, minZoom: tj.minzoom, maxZoom: tj.maxzoom, bounds, attribution: tj.attribution });
  window.tileErrors = [];
  layer.on('tileerror', (ev) => window.tileErrors.push(ev.tile && ev.tile.src));
  layer.on('load', () => { window.done = true; });
  layer.addTo(map);
})().catch((err) => console.error(String(err)));
</script></body></html>`;
}

/** MapLibre GL with a raster source pointing at the TileJSON URL (MapLibre reads tiles, zooms, bounds, tileSize). */
function maplibrePage(tilejson: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<link rel="stylesheet" href="/lib/maplibre/maplibre-gl.css">
<style>html, body, #map { margin: 0; height: 100%; }</style>
</head><body><div id="map"></div>
<script type="module">
import * as maplibregl from '/lib/maplibre/maplibre-gl.mjs';
try {
  const url = ${JSON.stringify(tilejson)};
  const tj = await (await fetch(url)).json();
  const [w, s, e, n] = tj.bounds;
  const map = new maplibregl.Map({
    container: 'map',
    bounds: [[w, s], [e, n]],
    fitBoundsOptions: { padding: 40 },
    style: {
      version: 8,
      sources: { data: { type: 'raster', url, tileSize: tj.tileSize } },
      layers: [
        { id: 'background', type: 'background', paint: { 'background-color': '#ffffff' } },
        { id: 'data', type: 'raster', source: 'data', paint: { 'raster-fade-duration': 0 } },
      ],
    },
  });
  map.on('error', (ev) => console.error('map error: ' + (ev.error && ev.error.message)));
  map.on('idle', () => { if (map.isSourceLoaded('data') && map.areTilesLoaded()) window.done = true; });
} catch (err) {
  console.error(String(err));
}
</script></body></html>`;
}
