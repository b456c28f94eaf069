/**
 * GDAL as the independent reference for tests: `gdalwarp` onto an XYZ tile's grid, read back
 * as raw Float32 values plus GDAL's alpha. Only the command line tools are used (no bindings),
 * and nothing here imports tilegraph's own code, so a reference can never agree with the code
 * under test by sharing it.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Deterministic answers: no grid downloads from the PROJ CDN. */
export const GDAL_ENV: NodeJS.ProcessEnv = { ...process.env, PROJ_NETWORK: 'OFF' };

/** A skip reason naming the missing GDAL tools, or false when all are installed. */
export function gdalMissing(tools: readonly string[]): string | false {
  const missing = tools.filter((t) => spawnSync(t, ['--version'], { stdio: 'ignore' }).status !== 0);
  return missing.length ? `GDAL command line tools not installed (${missing.join(', ')})` : false;
}

const HALF_WORLD = Math.PI * 6378137;

/**
 * Web Mercator bounds [minX, minY, maxX, maxY] of XYZ tile z/x/y (y from the top), written
 * out here rather than imported so the reference does not share the renderer's tile math.
 */
export function xyzBounds(z: number, x: number, y: number): [number, number, number, number] {
  const span = (2 * HALF_WORLD) / 2 ** z;
  return [-HALF_WORLD + x * span, HALF_WORLD - (y + 1) * span, -HALF_WORLD + (x + 1) * span, HALF_WORLD - y * span];
}

/** The XYZ tile at zoom z that holds WGS84 lon/lat. */
export function xyzTileAt(lon: number, lat: number, z: number): { z: number; x: number; y: number } {
  const n = 2 ** z;
  const phi = (lat * Math.PI) / 180;
  const x = Math.floor(((lon + 180) / 360) * n);
  const y = Math.floor(((1 - Math.log(Math.tan(phi) + 1 / Math.cos(phi)) / Math.PI) / 2) * n);
  return { z, x, y };
}

export type GdalResampling = 'near' | 'bilinear' | 'cubic';

export interface WarpedTile {
  size: number;
  /** Band 1 as Float32 (no rounding to the source type: gdalwarp -ot Float32). */
  values: Float32Array;
  /** GDAL's destination alpha (-dstalpha), 0..255; 0 where GDAL draws nothing. */
  alpha: Float32Array;
  /** Pyramid level gdalwarp read: 0 full resolution, k the k-th overview (-ovr AUTO). */
  level: number;
  /** The command, for messages. */
  command: string;
}

/**
 * `gdalwarp -t_srs EPSG:3857 -te <tile> -ts size size -r <method> -et 0 -dstalpha -ot Float32` of
 * `src` (single band), written as ENVI under `cacheDir` and reused while it is newer than `src`
 * (the cache key is a hash of the full command, so changing the command invalidates it).
 * `level` picks the pyramid level (`-ovr NONE` for 0, `-ovr level-1` above); without it
 * gdalwarp chooses (-ovr AUTO). The level read is taken from gdalwarp's debug output
 * ("Selecting overview level").
 *
 * `-et 0` makes GDAL transform every pixel exactly. Its default approximation (-et 0.125)
 * interpolates along each output line within 1/8 of a source pixel, which by itself moves
 * nearest-neighbour boundaries: on a UTM tile at native resolution that alone changes ~2% of
 * the pixels. The exact transform is the reference that approximations are measured against.
 */
export async function warpTile(
  src: string,
  bounds: readonly number[],
  size: number,
  method: GdalResampling,
  cacheDir: string,
  level?: number,
): Promise<WarpedTile> {
  const ovr = level === undefined ? [] : ['-ovr', level === 0 ? 'NONE' : String(level - 1)];
  const args = [
    '-q',
    '-overwrite',
    ...ovr,
    '-t_srs',
    'EPSG:3857',
    '-te',
    ...bounds.map((v) => v.toFixed(6)),
    '-ts',
    String(size),
    String(size),
    '-r',
    method,
    '-et',
    '0',
    '-dstalpha',
    '-ot',
    'Float32',
    '-of',
    'ENVI',
  ];
  const command = `gdalwarp ${args.join(' ')} ${src} OUT`;
  const key = createHash('sha256').update(command).digest('hex').slice(0, 16);
  const base = path.join(cacheDir, `${path.basename(src, '.tif')}-${key}`);
  const meta = `${base}.json`;
  if (!(existsSync(meta) && statSync(meta).mtimeMs >= statSync(src).mtimeMs)) {
    mkdirSync(cacheDir, { recursive: true });
    const tmp = `${base}.tmp${process.pid}`;
    const { stderr } = await run('gdalwarp', ['--debug', 'on', ...args, src, `${tmp}.raw`]);
    const m = /Selecting overview level (\d+)/.exec(stderr);
    renameSync(`${tmp}.raw`, `${base}.raw`);
    renameSync(`${tmp}.hdr`, `${base}.hdr`);
    writeFileSync(meta, JSON.stringify({ command, level: m ? Number(m[1]) + 1 : 0 }));
  }
  const read = JSON.parse(readFileSync(meta, 'utf8')) as { level: number };
  const bands = readEnvi(base, size, size, 2);
  return { size, values: bands[0]!, alpha: bands[1]!, level: read.level, command };
}

export interface OverviewChoice {
  /** Source pixels per output pixel across the tile, from the source bounding box of the tile. */
  ratioX: number;
  ratioY: number;
  /** Pyramid level (0 full resolution, k the k-th overview) current GDAL's -ovr AUTO reads. */
  level: number;
  /** The level GDAL 3.6 and earlier read: they look at ratioX alone. */
  levelGdal36: number;
}

/**
 * gdalwarp's -ovr AUTO for a -te/-ts target (gdalwarp_lib.cpp, "figure out corresponding
 * window"): a 10x10 grid of target pixel positions, corners included, is taken to source
 * pixels; the bounding box over the target size gives a ratio per axis. Current GDAL takes
 * the smaller of the two ("take the minimum of these ratios #7019") and reads the most reduced
 * level whose factor is below ratio + 0.1; GDAL 3.6 uses the X ratio alone and stops at the
 * first level with factor < ratio < next factor (or within 0.1 of it). The points are
 * transformed by GDAL itself (`gdaltransform -i`, exact), so nothing here is tilegraph's math.
 *
 * `widths`: the full-resolution width, then each overview's, as GDAL reports them. The answer
 * is kept in `cacheDir` while it is newer than `src`.
 */
export async function gdalOverviewChoice(
  src: string,
  bounds: readonly number[],
  size: number,
  widths: readonly number[],
  cacheDir: string,
): Promise<OverviewChoice> {
  const key = createHash('sha256')
    .update(JSON.stringify([src, bounds.map((v) => v.toFixed(6)), size, widths]))
    .digest('hex')
    .slice(0, 16);
  const file = path.join(cacheDir, `${path.basename(src, '.tif')}-ovr-${key}.json`);
  if (existsSync(file) && statSync(file).mtimeMs >= statSync(src).mtimeMs) return JSON.parse(readFileSync(file, 'utf8')) as OverviewChoice;
  const n = 10;
  const input: string[] = [];
  for (let ix = 0; ix < n; ix++) {
    for (let iy = 0; iy < n; iy++) {
      const px = (size * ix) / (n - 1),
        py = (size * iy) / (n - 1);
      input.push(`${bounds[0]! + (px * (bounds[2]! - bounds[0]!)) / size} ${bounds[3]! - (py * (bounds[3]! - bounds[1]!)) / size}`);
    }
  }
  const { stdout: out } = await run('gdaltransform', ['-i', '-t_srs', 'EPSG:3857', '-output_xy', src], input.join('\n') + '\n');
  let x0 = Infinity,
    x1 = -Infinity,
    y0 = Infinity,
    y1 = -Infinity;
  for (const line of out.trim().split('\n')) {
    const [x, y] = line.trim().split(/\s+/).map(Number);
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    x0 = Math.min(x0, x!);
    x1 = Math.max(x1, x!);
    y0 = Math.min(y0, y!);
    y1 = Math.max(y1, y!);
  }
  const ratioX = x1 > x0 ? (x1 - x0) / size : 0;
  const ratioY = y1 > y0 ? (y1 - y0) / size : 0;
  const factors = widths.map((w) => widths[0]! / w);

  let level = 0;
  const target = Math.min(ratioX, ratioY);
  if (target > 1) {
    let best = 0;
    for (let k = 0; k < factors.length; k++) {
      const f = factors[k]!;
      if (f >= target + 0.1 || f <= best) continue;
      level = k;
      best = f;
      if (Math.abs(target - f) < 0.1) break;
    }
  }

  let levelGdal36 = 0;
  if (ratioX > 1 && factors.length > 1) {
    let i = 0;
    for (; i < factors.length - 1; i++) {
      if (factors[i]! < ratioX && factors[i + 1]! > ratioX) break;
      if (Math.abs(factors[i]! - ratioX) < 0.1) break;
    }
    levelGdal36 = i;
  }
  const choice: OverviewChoice = { ratioX, ratioY, level, levelGdal36 };
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(`${file}.tmp${process.pid}`, JSON.stringify(choice));
  renameSync(`${file}.tmp${process.pid}`, file);
  return choice;
}

/** Runs a GDAL tool (PROJ_NETWORK=OFF), optionally feeding stdin; rejects with its stderr. */
function run(cmd: string, args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { env: GDAL_ENV, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
    // A tool that exits before reading its input (gdalwarp reads none) leaves the pipe broken:
    // the write's EPIPE says nothing the exit status does not.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

/** Float32 band-sequential ENVI (GDAL's default interleave), checked against its header. */
export function readEnvi(base: string, width: number, height: number, bands: number): Float32Array[] {
  const hdr = readFileSync(`${base}.hdr`, 'utf8');
  const field = (name: string) => new RegExp(`^${name}\\s*=\\s*(.+)$`, 'mi').exec(hdr)?.[1]?.trim();
  const expect = {
    samples: String(width),
    lines: String(height),
    bands: String(bands),
    'data type': '4',
    interleave: 'bsq',
    'byte order': '0',
    'header offset': '0',
  };
  for (const [k, v] of Object.entries(expect)) {
    if (field(k) !== v) throw new Error(`${base}.hdr: ${k} = ${field(k)}, expected ${v}`);
  }
  const raw = readFileSync(`${base}.raw`);
  const n = width * height;
  if (raw.byteLength !== n * bands * 4) throw new Error(`${base}.raw: ${raw.byteLength} bytes, expected ${n * bands * 4}`);
  // Copy out: Buffer pooling may leave the bytes unaligned for a Float32Array view.
  const all = new Float32Array(n * bands);
  new Uint8Array(all.buffer).set(raw);
  return Array.from({ length: bands }, (_, b) => all.subarray(b * n, (b + 1) * n));
}

/** Runs at most `n` jobs at once (GDAL processes: the test machines have two cores). */
export function limiter(n: number): <T>(job: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (job) => {
    if (running >= n) await new Promise<void>((r) => waiting.push(r));
    running++;
    try {
      return await job();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}
