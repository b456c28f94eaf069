/**
 * Helpers for test/layers.test.ts and test/operators.test.ts: tiny Web Mercator COGs written
 * by GDAL from values the test chooses (so every output pixel maps 1:1 onto a source pixel),
 * GDAL command line tools as the independent reference, and running an operator graph on one
 * tile the way the render thread does.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildGraph } from '../../src/ops/build.js';
import type { Operator } from '../../src/ops/operator.js';
import type { Raster, TileContext } from '../../src/ops/raster.js';
import { LayerGraph } from '../../src/render/renderer.js';
import type { LayerSpec } from '../../src/render/task.js';
import { Cog } from '../../src/sources/cog.js';

export { ROOT } from './root.js';
import { ROOT } from './root.js';
export const SHIPPED_LAYERS = path.join(ROOT, 'layers');
export const SHIPPED_DATA = path.join(SHIPPED_LAYERS, 'data');
export const HOSTILE_DIR = path.join(ROOT, 'test/fixtures/hostile');
export const CLI = path.join(ROOT, 'dist/src/cli.js');

/** Deterministic GDAL answers: no grid downloads from the PROJ CDN. */
export const GDAL_ENV: NodeJS.ProcessEnv = { ...process.env, PROJ_NETWORK: 'OFF' };

/** A skip reason naming the missing tools, or false when all are installed. */
export function toolsMissing(tools: readonly string[]): string | false {
  const missing = tools.filter((t) => spawnSync(t, ['--version'], { stdio: 'ignore' }).status !== 0);
  return missing.length ? `not installed: ${missing.join(', ')}` : false;
}

/** Runs a GDAL tool and returns its standard output; `input` is written to its standard input. */
export function gdal(tool: string, args: readonly string[], input?: string): string {
  return execFileSync(tool, args, { env: GDAL_ENV, input, encoding: 'utf8', maxBuffer: 64 << 20 });
}

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `tilegraph-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const HALF_WORLD = Math.PI * 6378137;

export interface Tile {
  z: number;
  x: number;
  y: number;
}

/** Web Mercator bounds [minX, minY, maxX, maxY] of tile z/x/y, written out here, not imported. */
export function mercatorBounds({ z, x, y }: Tile): [number, number, number, number] {
  const span = (2 * HALF_WORLD) / 2 ** z;
  return [-HALF_WORLD + x * span, HALF_WORLD - (y + 1) * span, -HALF_WORLD + (x + 1) * span, HALF_WORLD - y * span];
}

/** The tile at zoom z holding lon/lat. */
export function tileAt(lon: number, lat: number, z: number): Tile {
  const n = 2 ** z;
  const phi = (lat * Math.PI) / 180;
  return { z, x: Math.floor(((lon + 180) / 360) * n), y: Math.floor(((1 - Math.log(Math.tan(phi) + 1 / Math.cos(phi)) / Math.PI) / 2) * n) };
}

/** Web Mercator coordinates of the centre of output pixel (i, j) of a tile of `size` pixels. */
export function pixelCentre(tile: Tile, size: number, i: number, j: number): [number, number] {
  const [minX, , maxX, maxY] = mercatorBounds(tile);
  const res = (maxX - minX) / size;
  return [minX + (i + 0.5) * res, maxY - (j + 0.5) * res];
}

const ENVI_TYPES = { Byte: [1, Uint8Array], UInt16: [12, Uint16Array], Float32: [4, Float32Array] } as const;
export type FixtureType = keyof typeof ENVI_TYPES;

/**
 * Writes `bands` (row-major, size x size each) as a COG in EPSG:3857 covering exactly `tile`,
 * so that output pixel (i, j) of that tile at `size` pixels is source pixel (i, j). The raw
 * bytes go through an ENVI header and `gdal_translate -of COG`: GDAL writes the GeoTIFF.
 */
export function writeMercatorCog(
  file: string,
  tile: Tile,
  size: number,
  bands: readonly ArrayLike<number>[],
  opts: { type?: FixtureType; nodata?: number } = {},
): void {
  const type = opts.type ?? 'Float32';
  const [code, Ctor] = ENVI_TYPES[type];
  const n = size * size;
  const data = new Ctor(n * bands.length);
  bands.forEach((b, k) => {
    if (b.length !== n) throw new Error(`band ${k + 1} has ${b.length} values, expected ${n}`);
    for (let i = 0; i < n; i++) data[k * n + i] = b[i]!;
  });
  const base = `${file}.envi`;
  writeFileSync(`${base}.raw`, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  writeFileSync(
    `${base}.hdr`,
    `ENVI\nsamples = ${size}\nlines = ${size}\nbands = ${bands.length}\nheader offset = 0\nfile type = ENVI Standard\ndata type = ${code}\ninterleave = bsq\nbyte order = 0\n`,
  );
  const [minX, minY, maxX, maxY] = mercatorBounds(tile);
  try {
    gdal('gdal_translate', [
      '-q',
      '-of',
      'COG',
      '-co',
      'COMPRESS=DEFLATE',
      '-co',
      'BLOCKSIZE=128',
      '-co',
      'OVERVIEWS=NONE',
      '-a_srs',
      'EPSG:3857',
      '-a_ullr',
      String(minX),
      String(maxY),
      String(maxX),
      String(minY),
      ...(opts.nodata !== undefined ? ['-a_nodata', String(opts.nodata)] : []),
      `${base}.raw`,
      file,
    ]);
  } finally {
    rmSync(`${base}.raw`, { force: true });
    rmSync(`${base}.hdr`, { force: true });
  }
}

/** A band of size x size values from f(i = column, j = row). */
export function band(size: number, f: (i: number, j: number) => number): Float32Array {
  const out = new Float32Array(size * size);
  for (let j = 0; j < size; j++) for (let i = 0; i < size; i++) out[j * size + i] = f(i, j);
  return out;
}

/** Reads a raw ENVI file written by GDAL (band-sequential, little-endian). */
export function readEnviRaw(base: string): { width: number; height: number; bands: Float64Array[] } {
  const hdr = readFileSync(`${base}.hdr`, 'utf8');
  const field = (name: string) => {
    const v = new RegExp(`^${name}\\s*=\\s*(.+)$`, 'mi').exec(hdr)?.[1]?.trim();
    if (v === undefined) throw new Error(`${base}.hdr has no '${name}'`);
    return v;
  };
  const width = Number(field('samples')),
    height = Number(field('lines')),
    count = Number(field('bands'));
  if (field('interleave') !== 'bsq' || field('byte order') !== '0') throw new Error(`${base}.hdr: expected bsq, little-endian`);
  const raw = readFileSync(`${base}.raw`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const type = Number(field('data type'));
  const get =
    type === 1
      ? (o: number) => view.getUint8(o)
      : type === 12
        ? (o: number) => view.getUint16(o, true)
        : type === 4
          ? (o: number) => view.getFloat32(o, true)
          : null;
  const bytes = type === 1 ? 1 : type === 12 ? 2 : 4;
  if (!get) throw new Error(`${base}.hdr: data type ${type} not handled`);
  const n = width * height;
  const bands = Array.from({ length: count }, (_, b) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = get((b * n + i) * bytes);
    return out;
  });
  return { width, height, bands };
}

/**
 * Source pixel/line (fractional, full resolution) of Web Mercator points, from GDAL's own
 * transformer (`gdaltransform -i -t_srs EPSG:3857 file`), never from tilegraph's planning.
 */
export function sourcePixels(file: string, points: readonly [number, number][]): [number, number][] {
  const out = gdal('gdaltransform', ['-i', '-t_srs', 'EPSG:3857', file], points.map(([x, y]) => `${x} ${y}`).join('\n') + '\n');
  const rows = out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).slice(0, 2).map(Number) as [number, number]);
  if (rows.length !== points.length) throw new Error(`gdaltransform gave ${rows.length} rows for ${points.length} points`);
  return rows;
}

/** Values of band 1 at integer pixel/line positions, from `gdallocationinfo -valonly`. */
export function valuesAt(file: string, pixels: readonly [number, number][]): number[] {
  const out = gdal('gdallocationinfo', ['-valonly', '-b', '1', file], pixels.map(([c, r]) => `${c} ${r}`).join('\n') + '\n');
  const vals = out.trim().split('\n').map(Number);
  if (vals.length !== pixels.length) throw new Error(`gdallocationinfo gave ${vals.length} values for ${pixels.length} points`);
  return vals;
}

/** Runs `pipeline` (a layer file's `pipeline:` value) on one tile, as the render thread does, keeping float values. */
export async function runPipeline(
  pipeline: unknown,
  sources: Record<string, string>,
  tile: Tile,
  size = 256,
): Promise<{ raster: Raster | null; ctx: TileContext; graph: Operator; cogs: Map<string, Cog> }> {
  const cogs = new Map<string, Cog>();
  try {
    for (const [name, file] of Object.entries(sources)) cogs.set(name, await Cog.open(file));
    const layer = new LayerGraph(buildGraph(pipeline, { sources: cogs }), cogs);
    await layer.prepare();
    const { raster, ctx } = await layer.raster({ ...tile, size });
    return { raster, ctx, graph: layer.graph, cogs };
  } finally {
    await Promise.all([...cogs.values()].map((c) => c.close()));
  }
}

let specCount = 0;

/** A LayerSpec for `renderTile`, with a version of its own so render threads never reuse a graph. */
export function layerSpec(pipeline: unknown, sources: Record<string, string>): LayerSpec {
  const version = `test-${process.pid}-${++specCount}`;
  return { name: `test-${specCount}`, version, pipeline, sources };
}

/** Runs the CLI (compiled) as a child process. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'silent', ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
