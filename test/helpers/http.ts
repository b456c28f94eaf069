/**
 * Helpers for end-to-end tests through HTTP: a tilegraph server on an ephemeral port over a
 * temporary layers directory, a small static file server that honours `Range` and counts
 * what it is asked, raw HTTP requests (no URL normalisation, so `..` and `%00` reach the
 * server as written), XYZ tile arithmetic and image decoding with sharp.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { loadSettings } from '../../src/config.js';
import { serve, type Running } from '../../src/server/serve.js';

/** The repository root, found from this file whether it runs from `dist/test/helpers` or `test/helpers`. */
export const REPO_ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'layers'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('test helpers: cannot find the repository root (package.json next to layers/)');
    dir = up;
  }
})();
export const SHIPPED_LAYERS = path.join(REPO_ROOT, 'layers');
export const SHIPPED_DATA = path.join(SHIPPED_LAYERS, 'data');

// ---------------------------------------------------------------------------------------
// Temporary layer directories

export interface TempLayers {
  /** The layers directory (LAYERS_DIR). */
  dir: string;
  /** Its parent, also temporary: a place for files that must lie outside the layers directory. */
  root: string;
  /** Writes a file relative to the layers directory, creating folders. */
  write(rel: string, content: string | Uint8Array): Promise<string>;
  /** Copies a shipped data file (by file name) to `data/<as>` inside the layers directory. */
  copyData(name: string, as?: string): Promise<string>;
  remove(): Promise<void>;
}

/**
 * A fresh `root/layers` directory holding copies of the named shipped layer files and of the
 * data files they reference. Data is copied, never linked: sources must resolve inside the
 * layers directory, and some tests damage their copy.
 */
export async function makeLayersDir(shipped: readonly string[] = []): Promise<TempLayers> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tilegraph-test-'));
  const dir = path.join(root, 'layers');
  await mkdir(path.join(dir, 'data'), { recursive: true });
  const write = async (rel: string, content: string | Uint8Array) => {
    const file = path.join(dir, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
    return file;
  };
  const copyData = async (name: string, as = name) => {
    const to = path.join(dir, 'data', as);
    if (!existsSync(to)) await copyFile(path.join(SHIPPED_DATA, name), to);
    return to;
  };
  for (const name of shipped) {
    const text = await readFile(path.join(SHIPPED_LAYERS, `${name}.yaml`), 'utf8');
    await write(`${name}.yaml`, text);
    for (const m of text.matchAll(/\.\/data\/([^\s"'#}]+)/g)) await copyData(m[1]!);
  }
  return { dir, root, write, copyData, remove: () => rm(root, { recursive: true, force: true }) };
}

/** A shipped layer file's text, for variants written under another name. */
export async function shippedLayerText(name: string): Promise<string> {
  return readFile(path.join(SHIPPED_LAYERS, `${name}.yaml`), 'utf8');
}

// ---------------------------------------------------------------------------------------
// The server under test

export interface TestServer extends Running {
  layersDir: string;
}

/** `serve()` on 127.0.0.1, an ephemeral port, silent logs, two render threads unless told otherwise. */
export async function startServer(layersDir: string, env: Record<string, string> = {}): Promise<TestServer> {
  const settings = loadSettings({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', WORKERS: '2', LAYERS_DIR: layersDir, ...env });
  const running = await serve(settings);
  return Object.assign(running, { layersDir });
}

/** Polls `ok` every 100 ms until it holds; throws naming `what` after `ms`. */
export async function until(what: string, ok: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---------------------------------------------------------------------------------------
// Raw HTTP

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One request on its own connection; `pathname` is sent exactly as written (fetch would
 * resolve `..` and re-encode). The body is collected as bytes, never decompressed.
 */
export function request(base: string, pathname: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: pathname, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${pathname}`)));
    req.on('error', reject);
    req.end();
  });
}

export async function getJson<T = unknown>(base: string, pathname: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: T }> {
  const r = await request(base, pathname);
  return { status: r.status, headers: r.headers, json: JSON.parse(r.body.toString('utf8')) as T };
}

/** The value of one Prometheus sample from `/metrics` (0 when the series does not exist yet). */
export async function metricValue(base: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const r = await request(base, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  for (const line of r.body.toString('utf8').split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? ([^ ]+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',');
    if (want.every((w) => have.includes(w))) total += Number(m[3]);
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// A static file server with Range support

export interface ServedRequest {
  method: string;
  path: string;
  range?: string;
  status: number;
}

export interface RangeServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, as ALLOWED_HOSTS names it. */
  host: string;
  requests: ServedRequest[];
  /** Requests since the last reset. */
  recent(): ServedRequest[];
  /** Requests since the last reset, by kind. */
  counts(filter?: (r: ServedRequest) => boolean): { head: number; range: number; full: number; total: number };
  reset(): void;
  /** From now on, range GETs answer this status instead of the bytes (null: serve them again). */
  failRanges(status: number | null): void;
  close(): Promise<void>;
}

/**
 * Serves the files of `root` as a static server or object store would: HEAD with
 * Content-Length, ETag and Accept-Ranges; GET with `Range: bytes=a-b`, `a-` or `-n` answers
 * 206 with Content-Range; without Range, 200 with the whole file. Every request is recorded.
 */
export async function startRangeServer(root: string): Promise<RangeServer> {
  const requests: ServedRequest[] = [];
  let failing: number | null = null;
  const server = http.createServer((req, res) => {
    const rec: ServedRequest = { method: req.method ?? '', path: req.url ?? '', range: req.headers.range, status: 0 };
    requests.push(rec);
    const done = (status: number, headers: Record<string, string | number> = {}, body?: Uint8Array) => {
      rec.status = status;
      res.writeHead(status, headers);
      res.end(body);
    };
    void (async () => {
      const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const file = path.join(root, rel);
      if (!file.startsWith(root + path.sep)) return done(403);
      let size: number, mtime: number;
      try {
        const s = await stat(file);
        if (!s.isFile()) return done(404);
        size = s.size;
        mtime = Math.floor(s.mtimeMs);
      } catch {
        return done(404);
      }
      const etag = `"${size.toString(16)}-${mtime.toString(16)}"`;
      const base = { 'Accept-Ranges': 'bytes', ETag: etag, 'Last-Modified': new Date(mtime).toUTCString() };
      if (req.method === 'HEAD') return done(200, { ...base, 'Content-Length': size });
      if (req.method !== 'GET') return done(405);
      let start = 0,
        end = size - 1,
        partial = false;
      if (req.headers.range) {
        const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range.trim());
        if (!m || (m[1] === '' && m[2] === '')) return done(416, { 'Content-Range': `bytes */${size}` });
        if (m[1] === '') {
          start = Math.max(0, size - Number(m[2]));
        } else {
          start = Number(m[1]);
          if (m[2] !== '') end = Math.min(Number(m[2]), size - 1);
        }
        if (start >= size || start > end) return done(416, { 'Content-Range': `bytes */${size}` });
        partial = true;
        if (failing !== null) return done(failing);
      }
      const fh = await open(file, 'r');
      try {
        const body = Buffer.alloc(end - start + 1);
        await fh.read(body, 0, body.length, start);
        if (partial)
          return done(206, { ...base, 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': body.length, 'Content-Type': 'image/tiff' }, body);
        return done(200, { ...base, 'Content-Length': body.length, 'Content-Type': 'image/tiff' }, body);
      } finally {
        await fh.close();
      }
    })().catch(() => {
      if (!res.headersSent) done(500);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let since = 0;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    recent: () => requests.slice(since),
    counts(filter = () => true) {
      const rs = requests.slice(since).filter(filter);
      return {
        head: rs.filter((r) => r.method === 'HEAD').length,
        range: rs.filter((r) => r.method === 'GET' && r.range !== undefined).length,
        full: rs.filter((r) => r.method === 'GET' && r.range === undefined).length,
        total: rs.length,
      };
    },
    reset() {
      since = requests.length;
    },
    failRanges(status) {
      failing = status;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------
// XYZ tiles (Web Mercator, y from the top), worked out here independently of src/tiles

export type Tile = [z: number, x: number, y: number];

export function lonLatToTile(lon: number, lat: number, z: number): Tile {
  const n = 2 ** z;
  const r = (lat * Math.PI) / 180;
  const x = Math.floor(((lon + 180) / 360) * n);
  const y = Math.floor(((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * n);
  return [z, Math.min(n - 1, Math.max(0, x)), Math.min(n - 1, Math.max(0, y))];
}

/** The tiles of zoom z that a WGS84 box [west, south, east, north] touches: floor/ceil of the fractional tile coordinates. */
export function bboxTiles(bbox: readonly [number, number, number, number], z: number): Tile[] {
  const n = 2 ** z;
  const fx = (lon: number) => ((lon + 180) / 360) * n;
  const fy = (lat: number) => ((1 - Math.log(Math.tan(Math.PI / 4 + (lat * Math.PI) / 360)) / Math.PI) / 2) * n;
  const out: Tile[] = [];
  for (let y = Math.floor(fy(bbox[3])); y < Math.ceil(fy(bbox[1])); y++)
    for (let x = Math.floor(fx(bbox[0])); x < Math.ceil(fx(bbox[2])); x++) out.push([z, x, y]);
  return out;
}

/** WGS84 [west, south, east, north] of a tile. */
export function tileLonLatBounds([z, x, y]: Tile): [number, number, number, number] {
  const n = 2 ** z;
  const lon = (i: number) => (i / n) * 360 - 180;
  const lat = (j: number) => (Math.atan(Math.sinh(Math.PI * (1 - (2 * j) / n))) * 180) / Math.PI;
  return [lon(x), lat(y + 1), lon(x + 1), lat(y)];
}

export function intersects(a: readonly number[], b: readonly number[]): boolean {
  return a[0]! < b[2]! && a[2]! > b[0]! && a[1]! < b[3]! && a[3]! > b[1]!;
}

export function contains(outer: readonly number[], inner: readonly number[]): boolean {
  return inner[0]! >= outer[0]! && inner[2]! <= outer[2]! && inner[1]! >= outer[1]! && inner[3]! <= outer[3]!;
}

export const tilePath = (layer: string, [z, x, y]: Tile, suffix = '.png') => `/tiles/${layer}/${z}/${x}/${y}${suffix}`;

// ---------------------------------------------------------------------------------------
// Images

export interface Pixels {
  /** Straight RGBA, row-major. */
  data: Buffer;
  width: number;
  height: number;
  /** Channels in the encoded file before alpha was added. */
  channels: number;
  format: string;
}

/** PNG or WebP to RGBA. */
export async function decode(buf: Buffer): Promise<Pixels> {
  const meta = await sharp(buf).metadata();
  const { data, info } = await sharp(buf).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: meta.channels ?? info.channels, format: meta.format ?? '' };
}

export function distinctColours(p: Pixels): number {
  const seen = new Set<number>();
  for (let i = 0; i < p.data.length; i += 4) seen.add(p.data.readUInt32LE(i));
  return seen.size;
}

export function opaqueFraction(p: Pixels): number {
  let n = 0;
  for (let i = 3; i < p.data.length; i += 4) if (p.data[i] === 255) n++;
  return n / (p.data.length / 4);
}

export function allTransparent(p: Pixels): boolean {
  for (let i = 3; i < p.data.length; i += 4) if (p.data[i] !== 0) return false;
  return true;
}

/** Mean absolute difference per channel value, over equal-sized RGBA images. */
export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`sizes differ: ${a.length} and ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/**
 * Pixels that differ, counting two fully transparent pixels as equal whatever their colour
 * (lossless WebP need not keep the RGB under alpha 0).
 */
export function differingPixels(a: Pixels, b: Pixels): number {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`sizes differ: ${a.width}x${a.height} and ${b.width}x${b.height}`);
  let n = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    if (a.data[i + 3] === 0 && b.data[i + 3] === 0) continue;
    if (a.data.readUInt32LE(i) !== b.data.readUInt32LE(i)) n++;
  }
  return n;
}

/** RGBA of `p` downsampled to `size`×`size` by sharp. */
export async function downsample(p: Pixels, size: number): Promise<Buffer> {
  return sharp(p.data, { raw: { width: p.width, height: p.height, channels: 4 } })
    .resize(size, size, { kernel: 'cubic' })
    .ensureAlpha()
    .raw()
    .toBuffer();
}

/**
 * The share of pixels of a 1x tile whose colour is one of the four pixels that cover the
 * same ground in the 2x tile: the fair comparison for classes drawn with nearest sampling.
 */
export function childMatchFraction(one: Pixels, two: Pixels): number {
  let n = 0;
  for (let j = 0; j < one.height; j++) {
    for (let i = 0; i < one.width; i++) {
      const c = one.data.readUInt32LE((j * one.width + i) * 4);
      for (const [dx, dy] of [
        [0, 0],
        [1, 0],
        [0, 1],
        [1, 1],
      ] as const) {
        if (two.data.readUInt32LE(((2 * j + dy) * two.width + 2 * i + dx) * 4) === c) {
          n++;
          break;
        }
      }
    }
  }
  return n / (one.width * one.height);
}
