/**
 * `tilegraph seed LAYER ...`: prewarm a pyramid into the shared cache, a directory or an
 * MBTiles file (or through a running server with --via), with the same render pool and tile
 * service as the server, and write a manifest of what the run made.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { connectForCommand, type RedisClient } from '../cache/redis.js';
import { TileCache, type TileEntry } from '../cache/tiles.js';
import { loadSettings, type Settings } from '../config.js';
import { TileError } from '../errors.js';
import { loadLayer, type Layer } from '../layers/layer.js';
import { findLayerFile } from '../layers/registry.js';
import { createLogger } from '../log.js';
import { Metrics } from '../metrics.js';
import { RenderPool } from '../render/pool.js';
import { TileService } from '../service/tiles.js';
import type { TileId } from '../tiles/mercator.js';
import { cacheTarget, viaTarget } from './cache.js';
import { bboxArea, countTiles, footprintArea, geoJsonArea, parseShard, parseZooms, tilesFromList, tilesOf, type Area, type Shard } from './coverage.js';
import { openDirTarget } from './dir.js';
import { openMbtilesTarget } from './mbtiles.js';
import { runSeed, writeAtomic, type SeedResult, type ZoomCounts } from './runner.js';
import type { SeedLayer, SeedTarget } from './target.js';

const OPTIONS = {
  zoom: { type: 'string' },
  bbox: { type: 'string' },
  geojson: { type: 'string' },
  tiles: { type: 'string' },
  to: { type: 'string' },
  via: { type: 'string' },
  format: { type: 'string' },
  concurrency: { type: 'string' },
  shard: { type: 'string' },
  resume: { type: 'boolean' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  retries: { type: 'string' },
  'max-failures': { type: 'string' },
  manifest: { type: 'string' },
} as const;

export const SEED_USAGE = `tilegraph seed LAYER --zoom 10-14 [--bbox W,S,E,N | --geojson FILE | --tiles FILE]
               [--to cache | --to dir:PATH | --to mbtiles:PATH] [--via URL] [--format png|webp]
               [--concurrency N] [--shard I/N] [--resume] [--force] [--dry-run]
               [--retries N] [--max-failures PCT] [--manifest FILE]`;

function number(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${flag} ${text}: expected a number from ${min} to ${max}`);
  return n;
}

/** What the run covers: the tiles, how many, and how the manifest describes them. */
interface Coverage {
  tiles: () => Iterable<TileId>;
  counts: Map<number, number>;
  describe: Record<string, unknown>;
}

async function coverage(values: Record<string, unknown>, layer: Layer, shard: Shard | undefined): Promise<Coverage> {
  const given = ['bbox', 'geojson', 'tiles'].filter((k) => values[k] !== undefined);
  if (given.length > 1) throw new Error(`--${given.join(' and --')}: give one of them`);
  if (values.tiles !== undefined) {
    const file = String(values.tiles);
    const text = await readFile(file, 'utf8').catch(() => {
      throw new Error(`--tiles ${file}: cannot read the file`);
    });
    const counts = new Map<number, number>();
    for (const t of tilesFromList(text, file, shard)) counts.set(t.z, (counts.get(t.z) ?? 0) + 1);
    return { tiles: () => tilesFromList(text, file, shard), counts, describe: { tiles: path.resolve(file), sha256: sha256(text) } };
  }
  if (values.zoom === undefined) throw new Error('--zoom is required (e.g. --zoom 10-14), unless --tiles names the tiles');
  const [z0, z1] = parseZooms(String(values.zoom));
  const { minzoom, maxzoom } = layer.config;
  const zooms: [number, number] = [Math.max(z0, minzoom), Math.min(z1, maxzoom)];
  if (zooms[0] > zooms[1]) throw new Error(`--zoom ${String(values.zoom)}: layer '${layer.name}' serves zooms ${minzoom}-${maxzoom}`);
  let area: Area;
  let describe: Record<string, unknown>;
  if (values.bbox !== undefined) {
    const parts = String(values.bbox).split(',').map(Number);
    if (parts.length !== 4) throw new Error(`--bbox ${String(values.bbox)}: expected W,S,E,N in degrees`);
    area = bboxArea(parts as [number, number, number, number]);
    describe = { bbox: area.bbox };
  } else if (values.geojson !== undefined) {
    const file = String(values.geojson);
    const text = await readFile(file, 'utf8').catch(() => {
      throw new Error(`--geojson ${file}: cannot read the file`);
    });
    area = geoJsonArea(text, file);
    describe = { geojson: path.resolve(file), sha256: sha256(text), bbox: area.bbox };
  } else {
    // A mosaic's footprint is its members' outlines, not its first member's.
    area = footprintArea(layer.sources.flatMap((s) => (s.mosaic ? s.mosaic.members.map((m) => m.meta) : [s.meta])));
    describe = { footprint: layer.sources.map((s) => s.name), bbox: area.bbox };
  }
  return { tiles: () => tilesOf(area, zooms, shard), counts: countTiles(area, zooms, shard), describe: { ...describe, zooms } };
}

async function openTarget(to: string, layer: Layer, format: 'png' | 'webp', settings: Settings, redis: () => Promise<RedisClient>): Promise<SeedTarget> {
  const seedLayer: SeedLayer = {
    name: layer.name,
    title: layer.config.title,
    description: layer.config.description,
    attribution: layer.config.attribution,
    version: layer.version,
    bounds: layer.bounds,
    minzoom: layer.config.minzoom,
    maxzoom: layer.config.maxzoom,
    format,
    tileSize: layer.config.tileSize,
  };
  if (to === 'cache') return cacheTarget(await redis(), settings.redisPrefix, layer, format);
  if (to.startsWith('dir:') && to.length > 4) return openDirTarget(path.resolve(to.slice(4)), seedLayer);
  if (to.startsWith('mbtiles:') && to.length > 8) return openMbtilesTarget(path.resolve(to.slice(8)), seedLayer);
  throw new Error(`--to ${to}: expected cache, dir:PATH or mbtiles:PATH`);
}

function defaultManifest(to: string | undefined, via: boolean, layer: string, shard: Shard | undefined): string {
  const suffix = shard ? `.shard-${shard.index}-of-${shard.count}` : '';
  if (!via && to?.startsWith('dir:')) return path.resolve(to.slice(4), `manifest${suffix}.json`);
  if (!via && to?.startsWith('mbtiles:')) return path.resolve(`${to.slice(8)}${suffix}.manifest.json`);
  return path.resolve(`seed-${layer}${suffix}.manifest.json`);
}

/**
 * `--bbox -117.6,53.1,-117.4,53.3` as people write it: node's parser takes a value that starts
 * with '-' for another option, so a negative number is joined to its flag first.
 */
function joinNegativeValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = /^--([a-z-]+)$/.exec(args[i]!)?.[1];
    const next = args[i + 1];
    if (name && OPTIONS[name as keyof typeof OPTIONS]?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(args[i]!);
  }
  return out;
}

export async function seedCommand(args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args: joinNegativeValues(args), allowPositionals: true, options: OPTIONS });
  if (positionals.length !== 1) throw new Error(`usage: ${SEED_USAGE}`);
  const settings = loadSettings();
  const name = positionals[0]!;
  const file = findLayerFile(settings.layersDir, name);
  const layer = await loadLayer(file, { layersDir: settings.layersDir, allowedHosts: settings.allowedHosts });
  const format = (values.format ?? 'png') as 'png' | 'webp';
  if (format !== 'png' && format !== 'webp') throw new Error(`--format ${String(values.format)}: png or webp`);
  const shard = values.shard === undefined ? undefined : parseShard(values.shard);
  const cover = await coverage(values, layer, shard);
  const total = [...cover.counts.values()].reduce((a, b) => a + b, 0);
  // Enough tiles in flight that every render thread stays busy: neighbouring tiles prefer one
  // thread (their blocks are there), and the pool hands work to another only past a queue.
  const concurrency = number('concurrency', values.concurrency, settings.workers * 8, 1, 256);
  const via = values.via;
  if (via !== undefined && values.to !== undefined) throw new Error('--via and --to: give one of them (--via warms a server, which stores the tiles itself)');
  if (via !== undefined && !/^https?:\/\/[^/]+/.test(via)) throw new Error(`--via ${via}: expected http(s)://host[:port]`);
  const to = values.to ?? 'cache';

  let redis: RedisClient | undefined;
  const redisClient = async () => {
    if (!settings.redisUrl)
      throw new Error('--to cache needs REDIS_URL: the servers share their cache through Redis (or use --to dir:PATH, --to mbtiles:PATH)');
    redis = await connectForCommand(settings.redisUrl, settings.redisTimeoutMs, createLogger('silent'));
    return redis;
  };
  const pool =
    via === undefined
      ? new RenderPool({ threads: settings.workers, maxQueue: 100_000, timeoutMs: settings.renderTimeoutMs, blockCacheMb: settings.blockCacheMb })
      : undefined;
  // Rendered through the server's own service, without its caches: the target is the cache.
  const service =
    pool && new TileService({ pool, cache: new TileCache(0), metrics: new Metrics(), log: createLogger('silent'), mosaicMaxFiles: settings.mosaicMaxFiles });
  const produce = via !== undefined ? viaProducer(via, layer, format) : (t: TileId) => service!.tile(service!.request(layer, t.z, t.x, t.y, 1, format));

  try {
    if (values['dry-run']) return await dryRun(cover, total, produce, settings.workers);
    const target = via !== undefined ? viaTarget() : await openTarget(to, layer, format, settings, redisClient);
    const manifest = values.manifest ? path.resolve(values.manifest) : defaultManifest(values.to, via !== undefined, layer.name, shard);
    const failureLog = `${manifest}.failures.jsonl`;
    if (!values.resume) await writeFile(failureLog, '');
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const startedAt = new Date();
    const report = progressReporter(layer.name, total);
    let result: SeedResult;
    try {
      result = await runSeed(cover.tiles(), produce, target, {
        concurrency,
        retries: number('retries', values.retries, 2, 0, 10),
        force: values.force ?? false,
        total,
        progressFile: `${manifest}.progress`,
        resume: values.resume ?? false,
        params: { layer: layer.name, version: layer.version, coverage: cover.describe, shard: shard ?? null, target: via ?? to, format },
        failureLog,
        signal: controller.signal,
        onProgress: report.update,
      });
    } finally {
      report.stop();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await target.close();
    }
    const maxFailures = number('max-failures', values['max-failures'], 0, 0, 100);
    const failedPct = (100 * result.total.failed) / Math.max(1, total);
    const exitCode = result.interrupted ? 130 : failedPct > maxFailures ? 1 : 0;
    await writeAtomic(
      manifest,
      `${JSON.stringify(manifestOf(layer, cover, shard, via ?? to, format, concurrency, startedAt, result, failureLog, exitCode), null, 2)}\n`,
    );
    if (!result.interrupted) await rm(`${manifest}.progress`, { force: true });
    report.summary(result, manifest, failedPct, maxFailures);
    process.exitCode = exitCode;
  } finally {
    await pool?.close();
    redis?.disconnect();
  }
}

/** `--via`: asks the server for each tile over HTTP, as a map client would. */
function viaProducer(base: string, layer: Layer, format: 'png' | 'webp'): (t: TileId) => Promise<TileEntry> {
  const root = base.replace(/\/+$/, '');
  return async (t) => {
    const res = await fetch(`${root}/tiles/${encodeURIComponent(layer.name)}/${t.z}/${t.x}/${t.y}.${format}`, { signal: AbortSignal.timeout(60_000) });
    if (res.status === 204) return { body: null, etag: res.headers.get('etag') ?? '' };
    if (res.status !== 200) throw new TileError('upstream', 'upstream failed', `${res.url} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    return { body: Buffer.from(await res.arrayBuffer()), etag: res.headers.get('etag') ?? '', type: res.headers.get('content-type') ?? undefined };
  };
}

/** One line per zoom, an estimate of time and bytes from a small sample, and the total last. */
async function dryRun(cover: Coverage, total: number, produce: (t: TileId) => Promise<TileEntry>, threads: number): Promise<void> {
  for (const [z, n] of [...cover.counts].sort((a, b) => a[0] - b[0])) console.log(`zoom ${z}: ${n} tiles`);
  const every = Math.max(1, Math.floor(total / 16));
  const sample: TileId[] = [];
  let i = 0;
  for (const t of cover.tiles()) if (i++ % every === 0 && sample.length < 16) sample.push(t);
  if (sample.length) {
    const t0 = performance.now();
    let bytes = 0;
    for (const t of sample) bytes += (await produce(t)).body?.length ?? 0;
    const ms = (performance.now() - t0) / sample.length;
    const seconds = (ms * total) / 1000 / Math.max(1, threads);
    const mb = ((bytes / sample.length) * total) / 1e6;
    console.log(`estimate: about ${seconds.toFixed(0)} s on ${threads} render thread(s) and ${mb.toFixed(1)} MB, from a sample of ${sample.length} tiles`);
  }
  console.log(`total ${total} tiles`);
}

/** A bar on a terminal; JSON lines, every 2 s and at the end, when not. */
function progressReporter(layer: string, total: number) {
  const tty = process.stderr.isTTY;
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format: `seed ${layer} |{bar}| {value}/{total} {rate} tiles/s ETA {eta_formatted} skipped {skipped} empty {empty} failed {failed}`,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(total, 0, { rate: '0', skipped: 0, empty: 0, failed: 0 });
  let last = 0;
  return {
    update(p: { done: number; counts: ZoomCounts; tilesPerSecond: number; etaS: number }) {
      if (bar) return bar.update(p.done, { rate: p.tilesPerSecond.toFixed(1), skipped: p.counts.skipped, empty: p.counts.empty, failed: p.counts.failed });
      if (performance.now() - last < 2000) return;
      last = performance.now();
      const { rendered, empty, skipped, failed } = p.counts;
      console.log(
        JSON.stringify({
          event: 'progress',
          done: p.done,
          total,
          rendered,
          empty,
          skipped,
          failed,
          tilesPerSecond: +p.tilesPerSecond.toFixed(1),
          etaS: Math.round(p.etaS),
        }),
      );
    },
    stop() {
      bar?.stop();
    },
    summary(r: SeedResult, manifest: string, failedPct: number, maxFailures: number) {
      const { rendered, empty, skipped, failed, bytes } = r.total;
      const rate = (rendered + empty) / Math.max(r.seconds, 1e-3);
      if (!tty) {
        console.log(
          JSON.stringify({
            event: r.interrupted ? 'interrupted' : 'done',
            total,
            rendered,
            empty,
            skipped,
            failed,
            bytes,
            seconds: +r.seconds.toFixed(1),
            manifest,
          }),
        );
        return;
      }
      console.log(
        `${r.interrupted ? 'interrupted' : 'done'}: ${rendered} rendered, ${empty} empty, ${skipped} skipped, ${failed} failed of ${total} in ${r.seconds.toFixed(1)} s (${rate.toFixed(1)} tiles/s, ${(bytes / 1e6).toFixed(1)} MB)`,
      );
      if (failed) console.log(`failures: ${failedPct.toFixed(2)}% (allowed ${maxFailures}%), listed in ${manifest}.failures.jsonl`);
      console.log(`manifest: ${manifest}`);
    },
  };
}

function manifestOf(
  layer: Layer,
  cover: Coverage,
  shard: Shard | undefined,
  target: string,
  format: string,
  concurrency: number,
  startedAt: Date,
  r: SeedResult,
  failureLog: string,
  exitCode: number,
) {
  return {
    tool: { name: 'tilegraph', version: TOOL_VERSION },
    layer: { name: layer.name, file: path.basename(layer.file), configHash: layer.hash, version: layer.version },
    sources: layer.sources.map((s) => ({
      name: s.name,
      ref: s.ref,
      version: s.version,
      width: s.meta.width,
      height: s.meta.height,
      bands: s.meta.bands,
      dataType: s.meta.dataType,
    })),
    coverage: cover.describe,
    shard: shard ?? null,
    target,
    format,
    concurrency,
    counts: Object.fromEntries([...r.byZoom].sort((a, b) => a[0] - b[0]).map(([z, c]) => [z, { planned: cover.counts.get(z) ?? 0, ...c }])),
    total: { planned: [...cover.counts.values()].reduce((a, b) => a + b, 0), ...r.total },
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    seconds: +r.seconds.toFixed(2),
    interrupted: r.interrupted,
    failureLog,
    exitCode,
  };
}

/** The package's version (dist/src/seed/ is three folders below package.json). */
const TOOL_VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
