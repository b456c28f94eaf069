import os from 'node:os';
import path from 'node:path';

/**
 * Every setting of the server and the seeding CLI, read from the environment (and the same
 * names as `--flags` of `tilegraph serve`). The README's table of settings is checked
 * against this list by test/readme.test.ts.
 */
export interface Settings {
  port: number;
  host: string;
  layersDir: string;
  /** L1 bound in MiB; 0 turns L1 off. */
  cacheL1Mb: number;
  /** Render threads. */
  workers: number;
  /** Seconds between checks that a layer's sources are unchanged. */
  sourceRecheckS: number;
  /** Tiles waiting for a render thread before new ones get 503. */
  maxQueue: number;
  /** Time limit of one render, in milliseconds. */
  renderTimeoutMs: number;
  /** Decoded-block cache of each render thread, in MiB. */
  blockCacheMb: number;
  /** Hosts that http(s) sources may name, comma-separated; empty allows none. */
  allowedHosts: string[];
  logLevel: string;
}

export interface SettingSpec {
  env: string;
  default: string;
  description: string;
}

export const SETTINGS: readonly SettingSpec[] = [
  { env: 'PORT', default: '8080', description: 'TCP port to listen on' },
  { env: 'HOST', default: '127.0.0.1', description: 'address to listen on' },
  { env: 'LAYERS_DIR', default: 'layers/', description: 'directory of layer files (`*.yaml`)' },
  { env: 'CACHE_L1_MB', default: '256', description: 'in-process tile cache bound in MiB; `0` turns it off' },
  { env: 'WORKERS', default: 'number of cores', description: 'render threads' },
  { env: 'SOURCE_RECHECK_S', default: '30', description: 'seconds between checks that a source file or URL is unchanged' },
  { env: 'MAX_QUEUE', default: '256', description: 'tiles waiting for a render thread before new requests get `503`' },
  { env: 'RENDER_TIMEOUT_MS', default: '15000', description: 'time limit of one tile render' },
  { env: 'BLOCK_CACHE_MB', default: '256', description: 'decoded COG blocks each render thread keeps, in MiB; the threads share the blocks they decode, so their caches are largely the same memory' },
  { env: 'ALLOWED_HOSTS', default: '(empty)', description: 'comma-separated hosts that `http(s)` sources may name' },
  { env: 'LOG_LEVEL', default: 'info', description: 'pino log level (`silent` for none)' },
];

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name}=${raw}: expected a whole number >= ${min}`);
  return n;
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  return {
    port: int(env, 'PORT', 8080, 0),
    host: env.HOST || '127.0.0.1',
    layersDir: path.resolve(env.LAYERS_DIR || 'layers'),
    cacheL1Mb: int(env, 'CACHE_L1_MB', 256, 0),
    workers: int(env, 'WORKERS', Math.max(1, os.availableParallelism()), 1),
    sourceRecheckS: int(env, 'SOURCE_RECHECK_S', 30, 0),
    maxQueue: int(env, 'MAX_QUEUE', 256, 1),
    renderTimeoutMs: int(env, 'RENDER_TIMEOUT_MS', 15000, 100),
    blockCacheMb: int(env, 'BLOCK_CACHE_MB', 256, 1),
    allowedHosts: (env.ALLOWED_HOSTS ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean),
    logLevel: env.LOG_LEVEL || 'info',
  };
}
