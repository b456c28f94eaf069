/**
 * The preview page `GET /map/{layer}`: a full-window MapLibre GL map on one layer, a layer
 * switcher over all layers, and the URLs and QGIS settings to use the layer elsewhere. The
 * HTML lives here as a template string so that it ships inside dist/ with the code; MapLibre
 * itself is served from this package's node_modules by `mapAssets()` (no CDN).
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { buildTileJson, tileUrlTemplate, type ClientLayer } from '../tiles/tilejson.js';
import { capabilitiesUrl, MATRIX_SETS, matrixSetSuffix } from '../tiles/wmts.js';

const require = createRequire(import.meta.url);
export const MAPLIBRE_VERSION: string = (require('maplibre-gl/package.json') as { version: string }).version;
/** Versioned, so the files are immutable under their URL. */
export const MAPLIBRE_ASSETS = `/assets/maplibre-gl@${MAPLIBRE_VERSION}`;

/** One layer as the page script sees it. */
export interface PageLayer {
  name: string;
  title: string;
  description: string;
  attribution: string;
  minzoom: number;
  maxzoom: number;
  tileSize: number;
  bounds: [number, number, number, number];
  center: [number, number, number];
  xyz: string;
  xyz2x: string;
  tilejson: string;
  tilejson2x: string;
  /** The WMTS matrix set a desktop client should pick for the layer's own tile size. */
  wmtsMatrixSet: string;
  /** For a layer with a mosaic source, where its members' footprints are (GET /layers/{layer}): drawn as outlines. */
  footprints: string | null;
}

export interface PageConfig {
  current: string;
  wmts: string;
  layers: PageLayer[];
  /** Whether the server takes ad-hoc pipelines (ADHOC_PIPELINES=on): the page then offers to edit the layer's. */
  pipelines: boolean;
}

/** A layer as the page needs it: a mosaic's footprints are drawn over its tiles. */
export type PageSourceLayer = ClientLayer & { mosaics?: ReadonlyMap<string, unknown> };

export function pageConfig(baseUrl: string, current: PageSourceLayer, layers: readonly PageSourceLayer[], o: { pipelines?: boolean } = {}): PageConfig {
  return {
    current: current.name,
    pipelines: o.pipelines ?? false,
    wmts: capabilitiesUrl(baseUrl),
    layers: layers.map((l) => {
      const tj = buildTileJson(baseUrl, l);
      return {
        name: l.name,
        title: tj.name,
        description: tj.description,
        attribution: tj.attribution,
        minzoom: tj.minzoom,
        maxzoom: tj.maxzoom,
        tileSize: l.config.tileSize,
        bounds: tj.bounds,
        center: tj.center,
        xyz: tj.tiles[0]!,
        xyz2x: tileUrlTemplate(baseUrl, l, 2),
        tilejson: `${baseUrl}/tiles/${encodeURIComponent(l.name)}/tilejson.json`,
        tilejson2x: `${baseUrl}/tiles/${encodeURIComponent(l.name)}/tilejson.json?scale=2`,
        wmtsMatrixSet: MATRIX_SETS.find((s) => matrixSetSuffix(l.config.tileSize, s.id) === '')?.id ?? MATRIX_SETS[0]!.id,
        footprints: l.mosaics?.size ? `${baseUrl}/layers/${encodeURIComponent(l.name)}` : null,
      };
    }),
  };
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON inside `<script>`: `<` escaped so no value can close the element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function renderMapPage(baseUrl: string, current: PageSourceLayer, layers: readonly PageSourceLayer[], o: { pipelines?: boolean } = {}): string {
  const cfg = pageConfig(baseUrl, current, layers, o);
  const options = cfg.layers.map((l) => `<option value="${esc(l.name)}"${l.name === cfg.current ? ' selected' : ''}>${esc(l.title)}</option>`).join('');
  const title = cfg.layers.find((l) => l.name === cfg.current)?.title ?? current.name;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · tilegraph</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${MAPLIBRE_ASSETS}/maplibre-gl.css">
<style>${PAGE_CSS}</style>
</head>
<body>
<div id="map"></div>
<aside id="panel">
  <label class="layer">Layer <select id="layer">${options}</select></label>
  <p id="description"></p>
  <p id="meta" class="meta"></p>
  <details id="use" open>
    <summary>Use this layer elsewhere</summary>
    <div class="field"><label for="xyz">XYZ tile URL</label><div class="copy"><input id="xyz" readonly spellcheck="false"><button type="button" data-copy="xyz">Copy</button></div></div>
    <div class="field"><label for="xyz2x">Retina tiles (@2x)</label><div class="copy"><input id="xyz2x" readonly spellcheck="false"><button type="button" data-copy="xyz2x">Copy</button></div></div>
    <div class="field"><label for="tilejson">TileJSON</label><div class="copy"><input id="tilejson" readonly spellcheck="false"><button type="button" data-copy="tilejson">Copy</button></div></div>
    <div class="field"><label for="wmts">WMTS capabilities</label><div class="copy"><input id="wmts" readonly spellcheck="false"><button type="button" data-copy="wmts">Copy</button></div></div>
    <h2>QGIS</h2>
    <ul class="qgis">
      <li><b>XYZ Tiles › New Connection</b>: URL <i>XYZ tile URL</i> above; Min. zoom level <code id="qzmin"></code>; Max. zoom level <code id="qzmax"></code>; Tile resolution <code id="qres"></code>.</li>
      <li><b>WMS/WMTS › New Connection</b>: URL <i>WMTS capabilities</i> above; then add layer <code id="qlayer"></code> with tile matrix set <code id="qset"></code>.</li>
    </ul>
  </details>
  <details id="here" open>
    <summary>Values here</summary>
    <p id="point-hint" class="meta">Click the map: every step's value at that point, and the sources' own pixels.</p>
    <div id="point"></div>
  </details>
  <details id="edit"${cfg.pipelines ? '' : ' hidden'}>
    <summary>Edit the pipeline</summary>
    <p class="meta">The layer's document (JSON or YAML, as a layer file); Apply renders it through <code>POST /pipelines</code>.</p>
    <textarea id="doc" rows="14" spellcheck="false"></textarea>
    <div class="copy"><button type="button" id="apply">Apply</button><button type="button" id="revert">Back to the layer</button></div>
    <p id="edit-status" class="meta"></p>
  </details>
  <label class="toggle"><input type="checkbox" id="grid"> Tile grid: each tile's z/x/y, cache tier and Server-Timing</label>
  <p id="status" role="status"></p>
</aside>
<script type="application/json" id="tilegraph-config">${scriptJson(cfg)}</script>
<script type="module">${MODULE_SCRIPT}</script>
</body>
</html>
`;
}

const PAGE_CSS = `
html, body { margin: 0; height: 100%; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; background: #e9ecef; }
#map { position: absolute; inset: 0; }
#panel { position: absolute; top: 10px; left: 10px; z-index: 2; box-sizing: border-box; width: 360px; max-width: calc(100% - 20px);
  max-height: calc(100% - 20px); overflow: auto; padding: 10px 12px; background: rgba(255, 255, 255, 0.95);
  border-radius: 6px; box-shadow: 0 1px 8px rgba(0, 0, 0, 0.25); }
#panel .layer { display: flex; gap: 8px; align-items: center; font-weight: 600; }
#panel select { flex: 1; min-width: 0; font: inherit; padding: 3px 4px; }
#panel p { margin: 6px 0; }
#panel .meta { color: #57606a; font-size: 12px; }
#panel summary { cursor: pointer; font-weight: 600; margin: 4px 0; }
#panel h2 { font-size: 13px; margin: 10px 0 4px; }
#panel .field { margin: 6px 0; }
#panel .field label { display: block; font-size: 12px; color: #57606a; }
#panel .copy { display: flex; gap: 4px; }
#panel .copy input { flex: 1; min-width: 0; font: 12px ui-monospace, monospace; padding: 3px 4px; border: 1px solid #d0d7de; border-radius: 4px; }
#panel button { font: 12px system-ui, sans-serif; padding: 2px 8px; cursor: pointer; }
#panel ul.qgis { margin: 0; padding-left: 18px; font-size: 12px; }
#panel code { font: 12px ui-monospace, monospace; background: #f0f2f4; padding: 0 3px; border-radius: 3px; }
#panel .toggle { display: block; margin: 8px 0 4px; font-size: 12px; }
#doc { box-sizing: border-box; width: 100%; font: 11px/1.35 ui-monospace, monospace; border: 1px solid #d0d7de; border-radius: 4px; }
#point table { border-collapse: collapse; width: 100%; font-size: 12px; }
#point td, #point th { text-align: left; padding: 1px 4px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
#point th { font-weight: 600; color: #57606a; }
#point td.v { font: 12px ui-monospace, monospace; }
.swatch { display: inline-block; width: 10px; height: 10px; border: 1px solid #8c959f; margin-right: 4px; vertical-align: -1px; }
.tile-label { font: 10px/1.3 ui-monospace, monospace; color: #0b3d91; background: rgba(255, 255, 255, 0.8); padding: 1px 3px; border-radius: 2px;
  pointer-events: none; white-space: pre; }
#status:empty { display: none; }
#status { color: #b42318; font-size: 12px; }
`;

/** Runs in the browser; `maplibregl` is imported above it. Plain JavaScript, no template values. */
const PAGE_SCRIPT = String.raw`
const cfg = JSON.parse(document.getElementById('tilegraph-config').textContent);
const byName = new globalThis.Map(cfg.layers.map((l) => [l.name, l]));
const $ = (id) => document.getElementById(id);
// Retina screens get the @2x TileJSON: 512 px images drawn on the layer's own tile size.
const scale = window.devicePixelRatio > 1 ? 2 : 1;
const state = { layer: cfg.current, idle: false, errors: [] };
window.tilegraph = state;

const text = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
function fail(err) {
  const msg = err && err.message ? err.message : String(err);
  state.errors.push(msg);
  $('status').textContent = 'Error: ' + msg;
  console.error('tilegraph:', msg);
}

const first = byName.get(cfg.current);
const map = new maplibregl.Map({
  container: 'map',
  style: { version: 8, sources: {}, layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#e9ecef' } }] },
  center: [first.center[0], first.center[1]],
  zoom: first.center[2],
  attributionControl: false,
});
state.map = map;
map.addControl(new maplibregl.NavigationControl({ visualizePitch: false }), 'top-right');
map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
map.addControl(new maplibregl.AttributionControl({ compact: false }), 'bottom-right');
map.on('error', (e) => fail(e && e.error ? e.error : e));

function fillPanel(info) {
  document.title = info.title + ' · tilegraph';
  $('layer').value = info.name;
  $('description').textContent = info.description;
  $('meta').textContent = 'zoom ' + info.minzoom + '–' + info.maxzoom + ' · ' + info.tileSize + ' px tiles' + (scale === 2 ? ' · showing @2x' : '');
  $('xyz').value = info.xyz;
  $('xyz2x').value = info.xyz2x;
  $('tilejson').value = info.tilejson;
  $('wmts').value = cfg.wmts;
  $('qzmin').textContent = info.minzoom;
  $('qzmax').textContent = info.maxzoom;
  $('qres').textContent = info.tileSize === 512 ? 'High (512x512 / 192 DPI)' : 'Standard (256x256 / 96 DPI)';
  $('qlayer').textContent = info.name;
  $('qset').textContent = info.wmtsMatrixSet;
}

function fitTo(tj) {
  const [w, s, e0, n] = tj.bounds;
  // Across the antimeridian TileJSON has west > east; the map wants east past 180.
  const e = e0 < w ? e0 + 360 : e0;
  const panel = $('panel');
  const left = window.innerWidth > 2 * panel.offsetWidth ? panel.offsetWidth + 30 : 20;
  try {
    map.fitBounds([[w, s], [e, n]], { padding: { top: 20, bottom: 30, left, right: 50 }, animate: false, maxZoom: tj.maxzoom });
  } catch {
    map.jumpTo({ center: [tj.center[0], tj.center[1]], zoom: tj.center[2] });
  }
  if (map.getZoom() < tj.minzoom) map.jumpTo({ center: [tj.center[0], tj.center[1]], zoom: tj.minzoom });
}

/** The map's raster layer from a TileJSON: a layer's, or a posted pipeline's. */
function drawTiles(tj) {
  if (map.getLayer('tiles')) map.removeLayer('tiles');
  if (map.getSource('tiles')) map.removeSource('tiles');
  map.addSource('tiles', {
    type: 'raster',
    tiles: tj.tiles,
    tileSize: tj.tileSize / scale,
    minzoom: tj.minzoom,
    maxzoom: tj.maxzoom,
    bounds: tj.bounds,
    scheme: tj.scheme,
    attribution: text(tj.attribution),
  });
  // Under the footprints and the tile grid, if they are there.
  map.addLayer({ id: 'tiles', type: 'raster', source: 'tiles', paint: { 'raster-fade-duration': 0 } }, map.getLayer('footprints') ? 'footprints' : map.getLayer('grid') ? 'grid' : undefined);
}

/** The layer's canonical config as a document to edit. */
async function loadDocument(name) {
  const res = await fetch('/layers/' + encodeURIComponent(name));
  if (!res.ok) throw new Error('/layers/' + name + ': ' + res.status);
  const described = await res.json();
  if (state.layer !== name) return;
  $('doc').value = JSON.stringify(described.config, null, 2);
  $('edit-status').textContent = '';
}

async function applyDocument() {
  $('edit-status').textContent = 'Applying…';
  const res = await fetch('/pipelines', { method: 'POST', headers: { 'Content-Type': 'application/yaml' }, body: $('doc').value });
  const body = await res.json();
  if (!res.ok) {
    $('edit-status').textContent = body.error + ': ' + body.detail;
    state.editError = body.detail;
    return;
  }
  const tj = scale === 2 ? await (await fetch(body.url + '?scale=2')).json() : body.tilejson;
  state.idle = false;
  document.body.dataset.state = 'loading';
  drawTiles(tj);
  state.pipeline = body.hash;
  state.editError = null;
  $('edit-status').textContent = 'Showing pipeline ' + body.hash.slice(0, 12) + ' (' + body.tilejson.tiles[0].replace(/\?.*$/, '') + ')';
  map.once('idle', () => {
    state.idle = true;
    document.body.dataset.state = 'idle';
  });
}
$('apply').addEventListener('click', () => applyDocument().catch(fail));
$('revert').addEventListener('click', () => show(state.layer, false).catch(fail));

let shown = 0;
async function show(name, fit) {
  const info = byName.get(name);
  if (!info) throw new Error('unknown layer ' + name);
  const ticket = ++shown;
  state.layer = name;
  state.idle = false;
  document.body.dataset.state = 'loading';
  fillPanel(info);
  const res = await fetch(scale === 2 ? info.tilejson2x : info.tilejson);
  if (!res.ok) throw new Error('TileJSON ' + res.status + ' for ' + name);
  const tj = await res.json();
  if (ticket !== shown) return;
  for (const id of ['footprints']) {
    if (map.getLayer(id)) map.removeLayer(id);
    if (map.getSource(id)) map.removeSource(id);
  }
  drawTiles(tj);
  state.pipeline = null;
  if (cfg.pipelines) loadDocument(name).catch(fail);
  if (info.footprints) {
    // A mosaic: its members' outlines over the tiles.
    const described = await (await fetch(info.footprints)).json();
    if (ticket !== shown) return;
    const polygons = described.sources.filter((s) => s.mosaic).flatMap((s) => s.mosaic.footprint.coordinates);
    map.addSource('footprints', { type: 'geojson', data: { type: 'Feature', properties: {}, geometry: { type: 'MultiPolygon', coordinates: polygons } } });
    map.addLayer({ id: 'footprints', type: 'line', source: 'footprints', paint: { 'line-color': '#1d4ed8', 'line-width': 1, 'line-opacity': 0.6 } });
  }
  if (fit) fitTo(tj);
  map.once('idle', () => {
    if (ticket !== shown) return;
    state.idle = true;
    document.body.dataset.state = 'idle';
  });
}

$('layer').addEventListener('change', (e) => {
  const name = e.target.value;
  history.pushState({ name }, '', '/map/' + encodeURIComponent(name));
  show(name, true).catch(fail);
});
window.addEventListener('popstate', (e) => {
  show((e.state && e.state.name) || cfg.current, true).catch(fail);
});
for (const button of document.querySelectorAll('button[data-copy]')) {
  button.addEventListener('click', async () => {
    const input = $(button.dataset.copy);
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      document.execCommand('copy');
    }
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = 'Copy'; }, 1200);
  });
}

/** The zoom of the tiles MapLibre draws: it counts zooms in 512-pixel tiles, so 256-pixel tiles come one zoom up. */
function tileZoom(info) {
  const drawn = info.tileSize;
  return Math.max(info.minzoom, Math.min(info.maxzoom, Math.floor(map.getZoom() + Math.log2(512 / drawn) + 1e-9)));
}

// Click: the values of every step of the layer's graph at that point (GET /point).
const fmt = (v) => (v === null ? 'nodata' : Number.isInteger(v) ? String(v) : Number(v).toPrecision(6));
let asked = 0;
map.on('click', async (e) => {
  const ticket = ++asked;
  const info = byName.get(state.layer);
  const z = tileZoom(info);
  const lon = ((((e.lngLat.lng + 180) % 360) + 360) % 360) - 180;
  const url = '/point/' + encodeURIComponent(state.layer) + '/' + lon.toFixed(6) + ',' + e.lngLat.lat.toFixed(6) + '?z=' + z;
  try {
    const res = await fetch(url);
    const body = await res.json();
    if (ticket !== asked) return;
    if (!res.ok) throw new Error(body.detail || body.error);
    state.point = body;
    const rows = [];
    rows.push('<tr><th colspan="2">' + text(body.lon.toFixed(5) + ', ' + body.lat.toFixed(5)) + ' · tile ' + text(body.tile.z + '/' + body.tile.x + '/' + body.tile.y) + '</th></tr>');
    for (const s of body.sources)
      rows.push('<tr><td>' + text(s.source + (s.member ? ' (' + s.location + ')' : '')) + ' pixel ' + text(s.pixel.join(', ')) + '</td><td class="v">' + text(s.values.map(fmt).join(', ')) + '</td></tr>');
    for (const n of body.steps) {
      const v = n.values === null || n.values.length === 0 ? 'nothing here' : n.kind === 'rgba' ? 'rgba(' + n.values.join(', ') + ')' : n.values.map(fmt).join(', ');
      const swatch = n.kind === 'rgba' && n.values && n.values.length ? '<span class="swatch" data-rgba="' + n.values.join(',') + '"></span>' : '';
      rows.push('<tr><td>' + text(n.name) + '</td><td class="v">' + swatch + text(v) + '</td></tr>');
    }
    $('point').innerHTML = '<table>' + rows.join('') + '</table>';
    // Through the CSSOM: the page's CSP allows no style attributes.
    for (const el of $('point').querySelectorAll('.swatch')) {
      const [r, g, b, a] = el.dataset.rgba.split(',').map(Number);
      el.style.background = 'rgba(' + r + ',' + g + ',' + b + ',' + a / 255 + ')';
    }
    document.body.dataset.point = 'shown';
  } catch (err) {
    if (ticket === asked) fail(err);
  }
});

// The tile grid: each tile the map shows, with its z/x/y and what the server said of it.
const labels = [];
function tileTimings() {
  const out = new globalThis.Map();
  for (const r of performance.getEntriesByType('resource')) {
    const m = /\/tiles\/[^/]+\/(\d+)\/(\d+)\/(\d+)/.exec(new URL(r.name).pathname);
    if (m) out.set(m[1] + '/' + m[2] + '/' + m[3], r.serverTiming || []);
  }
  return out;
}
function drawGrid() {
  for (const m of labels.splice(0)) m.remove();
  if (map.getLayer('grid')) map.removeLayer('grid');
  if (map.getSource('grid')) map.removeSource('grid');
  if (!$('grid').checked) return;
  const info = byName.get(state.layer);
  const z = tileZoom(info);
  const n = 2 ** z;
  const b = map.getBounds();
  const tx = (lon) => Math.floor(((lon + 180) / 360) * n);
  const ty = (lat) => Math.floor(((1 - Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360)) / Math.PI) / 2) * n);
  const lonOf = (x) => (x / n) * 360 - 180;
  const latOf = (y) => (Math.atan(Math.sinh(Math.PI * (1 - (2 * y) / n))) * 180) / Math.PI;
  const [x0, x1, y0, y1] = [tx(b.getWest()), tx(b.getEast()), Math.max(0, ty(b.getNorth())), Math.min(n - 1, ty(b.getSouth()))];
  const timings = tileTimings();
  const features = [];
  for (let y = y0; y <= y1; y++)
    for (let x = x0; x <= x1 && features.length < 64; x++) {
      const [w, e, nn, s] = [lonOf(x), lonOf(x + 1), latOf(y), latOf(y + 1)];
      features.push({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: [[w, nn], [e, nn], [e, s], [w, s], [w, nn]] } });
      const key = z + '/' + (((x % n) + n) % n) + '/' + y;
      const st = timings.get(key);
      const tier = st ? (st.find((t) => t.name === 'cache') || {}).description || '' : 'not fetched';
      const dur = st ? st.filter((t) => t.name !== 'cache').map((t) => t.name + ' ' + t.duration.toFixed(1)).join(' ') : '';
      const el = document.createElement('div');
      el.className = 'tile-label';
      el.dataset.tile = key;
      el.dataset.tier = tier;
      el.textContent = key + '\n' + tier + (dur ? '\n' + dur + ' ms' : '');
      labels.push(new maplibregl.Marker({ element: el, anchor: 'top-left' }).setLngLat([w, nn]).addTo(map));
    }
  map.addSource('grid', { type: 'geojson', data: { type: 'FeatureCollection', features } });
  map.addLayer({ id: 'grid', type: 'line', source: 'grid', paint: { 'line-color': '#0b3d91', 'line-width': 1, 'line-opacity': 0.7 } });
  state.grid = labels.map((m) => ({ tile: m.getElement().dataset.tile, tier: m.getElement().dataset.tier }));
}
performance.setResourceTimingBufferSize(5000);
let drawn = '';
$('grid').addEventListener('change', () => {
  drawn = '';
  drawGrid();
});
// Drawn again when the view moved or more tiles came in (drawing makes the map idle again).
map.on('idle', () => {
  const key = map.getCenter().toArray().join() + map.getZoom() + state.layer + performance.getEntriesByType('resource').length;
  if (!$('grid').checked || key === drawn) return;
  drawn = key;
  drawGrid();
});

map.once('load', () => show(cfg.current, true).catch(fail));
`;

/** The page's one script: MapLibre from this server, then the page's own code. */
const MODULE_SCRIPT = `
import * as maplibregl from '${MAPLIBRE_ASSETS}/maplibre-gl.mjs';
${PAGE_SCRIPT}
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/**
 * What the preview page may load: its own inline script and style (by hash) and everything
 * from this server, MapLibre's workers from blob: URLs, and nothing else; no framing by
 * other sites.
 */
export const MAP_PAGE_CSP = [
  "default-src 'self'",
  `script-src 'self' ${sha256(MODULE_SCRIPT)}`,
  `style-src 'self' ${sha256(PAGE_CSS)}`,
  "img-src 'self' data: blob:",
  "worker-src 'self' blob:",
  "child-src 'self' blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'self'",
].join('; ');
