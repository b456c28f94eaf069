import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/**
 * Every setting of the server and the seeding CLI, declared once: its environment name (also
 * a `--flag` of `tilegraph serve`), its schema with the default, and its description. The
 * README's table of settings is `settingsTable()`, printed by `tilegraph settings`;
 * test/readme.test.ts checks that the two agree.
 */
interface SettingDef<T> {
  env: string;
  schema: z.ZodType<T>;
  description: string;
  /** The default as the README shows it, where it is not a plain value. */
  shown?: string;
}

/**
 * A whole number written in decimal digits, from `min` to `max` (spaces around it are dropped):
 * not the other forms Number() reads, such as 0x1F90, 1e3 or +80.
 */
const whole = (min: number, max = Number.MAX_SAFE_INTEGER, why = '') =>
  z
    .string()
    .trim()
    .regex(/^[0-9]+$/, 'expected a whole number in decimal digits')
    .transform(Number)
    .pipe(z.number().min(min, `at least ${min}`).max(max, `at most ${max}${why}`));

/**
 * The longest delay Node's timers take: a longer one fires after 1 ms (with a warning), which
 * would fail every render at once, time out every Redis command, or recheck sources without pause.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;
const TIMER_LIMIT = " (2^31 - 1 ms, about 24.8 days: the longest delay Node's timers take)";
/** A duration in milliseconds, or in seconds, that a timer can hold. */
const milliseconds = (min: number) => whole(min, MAX_TIMER_MS, TIMER_LIMIT);
const seconds = (min: number) => whole(min, Math.floor(MAX_TIMER_MS / 1000), TIMER_LIMIT);
/** A comma-separated list, each item trimmed (and then given to `each`), empty items left out. */
const commaList = (fallback: string, each = (item: string) => item) =>
  z
    .string()
    .default(fallback)
    .transform((v) =>
      v
        .split(',')
        .map((item) => each(item.trim()))
        .filter(Boolean),
    );

/** pino's levels, and `silent`. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const DEFS = {
  port: { env: 'PORT', schema: whole(0, 65535).default(8080), description: 'TCP port to listen on' },
  host: { env: 'HOST', schema: z.string().default('127.0.0.1'), description: 'address to listen on' },
  layersDir: {
    env: 'LAYERS_DIR',
    schema: z
      .string()
      .default('layers/')
      .transform((d) => path.resolve(d)),
    shown: 'layers/',
    description: 'directory of layer files (`*.yaml`)',
  },
  cacheL1Mb: { env: 'CACHE_L1_MB', schema: whole(0).default(256), description: 'in-process tile cache bound in MiB; `0` turns it off' },
  workers: { env: 'WORKERS', schema: whole(1).default(() => Math.max(1, os.availableParallelism())), shown: 'number of cores', description: 'render threads' },
  sourceRecheckS: { env: 'SOURCE_RECHECK_S', schema: seconds(0).default(30), description: 'seconds between checks that a source file or URL is unchanged' },
  maxQueue: { env: 'MAX_QUEUE', schema: whole(1).default(256), description: 'tiles waiting for a render thread before new requests get `503`' },
  maxAreaRequests: {
    env: 'MAX_AREA_REQUESTS',
    schema: whole(1).default(16),
    description:
      '`/statistics` and `/preview` requests taken at once (a `POST /statistics` from before its body is read): as many as there are render threads run, the others wait their turn, and past this number new ones get `503`',
  },
  renderTimeoutMs: { env: 'RENDER_TIMEOUT_MS', schema: milliseconds(100).default(15000), description: 'time limit of one tile render' },
  requestTimeoutS: {
    env: 'REQUEST_TIMEOUT_S',
    schema: seconds(1).default(30),
    description: 'seconds a client has to send a whole request, headers and body, before it gets `408` and its connection is closed',
  },
  blockCacheMb: {
    env: 'BLOCK_CACHE_MB',
    schema: whole(1).default(256),
    description: 'decoded COG blocks each render thread keeps, in MiB; the threads share the blocks they decode, so their caches are largely the same memory',
  },
  kernels: {
    env: 'KERNELS',
    schema: z.enum(['fast', 'reference']).default('fast'),
    description:
      "the hot loops of the render threads and of the seeding command's own tile planning: `fast` runs the WebAssembly SIMD kernels and libdeflate's inflate and deflate where they fit, `reference` the JavaScript loops and Node's zlib everywhere (the same pixels, slower)",
  },
  mosaicMaxFiles: {
    env: 'MOSAIC_MAX_FILES',
    schema: whole(1).default(64),
    description: 'members of one mosaic a tile may read; a tile over more answers `400` naming the zoom from which none does',
  },
  allowedHosts: {
    env: 'ALLOWED_HOSTS',
    schema: commaList('', (h) => h.toLowerCase()),
    shown: '(empty)',
    description: 'comma-separated hosts that `http(s)` sources may name',
  },
  redisUrl: {
    env: 'REDIS_URL',
    schema: z.string().optional(),
    shown: '(unset: no L2)',
    description:
      'Redis for the shared tile cache (L2) and cross-process single flight: `redis://`, `rediss://`, `redis+sentinel://h:p,h:p/master`, `redis+cluster://h:p,h:p`',
  },
  redisPrefix: { env: 'REDIS_PREFIX', schema: z.string().max(64).default('tilegraph:'), description: 'put before every Redis key' },
  redisTimeoutMs: {
    env: 'REDIS_TIMEOUT_MS',
    schema: milliseconds(1).default(100),
    description: 'time limit of one Redis command; after 3 failures in a row Redis is skipped for a second, then tried again',
  },
  trustedProxies: {
    env: 'TRUSTED_PROXIES',
    schema: commaList('127.0.0.1,::1'),
    shown: '127.0.0.1,::1',
    description:
      'comma-separated addresses or CIDR ranges whose `X-Forwarded-Proto/Host/Port/For` are believed (nginx, a load balancer; `For` names the client of `ADHOC_POSTS_PER_MINUTE`); from anyone else they are ignored',
  },
  seedLockMs: {
    env: 'SEED_LOCK_MS',
    schema: milliseconds(1000).default(30_000),
    description:
      "`tilegraph worker`: how long a job's lock lasts unless renewed (BullMQ's lockDuration; stalled jobs are looked for as often). A killed worker's jobs go to the other workers after about twice this",
  },
  seedRoots: {
    env: 'SEED_ROOTS',
    schema: commaList('').refine((dirs) => dirs.every((d) => path.isAbsolute(d)), 'expected absolute directories, comma-separated'),
    shown: '(empty)',
    description:
      "`tilegraph worker`: comma-separated directories that a run's `dir:` target must lie in (after resolving links); a run into any other fails for good, before a tile is written. Empty: wherever the run's record in Redis says",
  },
  adhocPipelines: {
    env: 'ADHOC_PIPELINES',
    schema: z.enum(['on', 'off']).default('off'),
    description: "`on` lets clients post layer documents (`POST /pipelines`) that read the loaded layers' sources",
  },
  adhocMaxPipelines: {
    env: 'ADHOC_MAX_PIPELINES',
    schema: whole(1).default(64),
    description: 'ad-hoc pipelines kept at once; the least recently used is forgotten first',
  },
  adhocRenderMs: {
    env: 'ADHOC_RENDER_MS',
    schema: milliseconds(1).default(2000),
    description: 'time one tile of an ad-hoc pipeline may take; past it the tile answers `422`',
  },
  adhocPostsPerMinute: {
    env: 'ADHOC_POSTS_PER_MINUTE',
    schema: whole(1).default(30),
    description: 'documents one client may post to `/pipelines` a minute; past it `429`',
  },
  logLevel: {
    env: 'LOG_LEVEL',
    schema: z
      .string()
      .trim()
      .toLowerCase()
      .pipe(z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }))
      .default('info'),
    description: 'pino log level (`silent` for none)',
  },
} satisfies Record<string, SettingDef<unknown>>;

type Defs = typeof DEFS;
export type Settings = { [K in keyof Defs]: z.output<Defs[K]['schema']> };

export interface SettingSpec {
  env: string;
  default: string;
  description: string;
}

/** The settings as the README lists them. */
export const SETTINGS: readonly SettingSpec[] = Object.values(DEFS).map((d: SettingDef<unknown>) => ({
  env: d.env,
  default: d.shown ?? String((d.schema as z.ZodType).parse(undefined)),
  description: d.description,
}));

/** What a setting's schema refused, as its messages. */
const problems = (error: z.ZodError): string => error.issues.map((i) => i.message).join('; ');

/** Settings from the environment; an empty or blank value means the default. Throws naming the variable and what it expects. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const out: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(DEFS) as [keyof Defs, SettingDef<unknown>][]) {
    const raw = env[def.env];
    const parsed = def.schema.safeParse(raw === undefined || raw.trim() === '' ? undefined : raw);
    if (!parsed.success) throw new Error(`${def.env}=${raw}: ${problems(parsed.error)}`);
    out[key] = parsed.data;
  }
  return out as Settings;
}

/**
 * A program's number for a setting (an option of createTileRouter), checked as the setting's
 * variable is: throws `${name} ${value}: ...` when the variable would be refused.
 */
export function settingValue<K extends keyof Defs>(key: K, value: number, name: string): Settings[K] {
  const parsed = (DEFS[key].schema as z.ZodType).safeParse(String(value));
  if (!parsed.success) throw new Error(`${name} ${value}: ${problems(parsed.error)}`);
  return parsed.data as Settings[K];
}

/** The README's settings table, in Markdown. */
export function settingsTable(): string {
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...SETTINGS.map((s) => `| \`${s.env}\` | ${s.default} | ${s.description} |`)].join('\n');
}
