/**
 * The seeding of one layer (`tilegraph seed`, src/seed/command.ts): its coverage and target,
 * the run through the render pool (src/seed/runner.ts) or the queue (src/seed/queued.ts), and
 * the manifest of what the run made.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { RedisClient } from '../cache/redis.js';
import type { TileEntry } from '../cache/tiles.js';
import type { Settings } from '../config.js';
import { loadLayer, type Layer } from '../layers/layer.js';
import { findLayerFile } from '../layers/registry.js';
import { createLogger } from '../log.js';
import type { TileId } from '../tiles/mercator.js';
import {
  bboxArea,
  bboxNumbers,
  countTiles,
  footprintArea,
  geoJsonArea,
  parseShard,
  parseZooms,
  SEED_BLOCK,
  tilesFromList,
  tilesOf,
  type Area,
  type Shard,
} from './coverage.js';
import { openRenderer, viaProducer, type Renderer } from './produce.js';
import { notRegularFile, runSeed, writeAtomic, type SeedResult, type ZoomCounts } from './runner.js';
import { settleDir } from './dir.js';
import { absoluteTarget, fileTarget, openTarget, targetManifest } from './target.js';
import { lineageOf, withCells } from './lineage.js';
import { sinceRun, type Since } from './since.js';
import { numberFlag } from '../args.js';
import type { SeedValues } from './command.js';

/** Tiles per side of a metatile: the neighbours one render task draws (`--metatile`). */
export const DEFAULT_METATILE = 4;

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
    area = bboxArea(bboxNumbers(String(values.bbox)), String(values.bbox));
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

function defaultManifest(to: string | undefined, via: boolean, layer: string, shard: Shard | undefined): string {
  const suffix = shard ? `.shard-${shard.index}-of-${shard.count}` : '';
  return (!via && to !== undefined && targetManifest(to, suffix)) || path.resolve(`seed-${layer}${suffix}.manifest.json`);
}

/** `tilegraph seed NAME ...` once its flags are read (src/seed/command.ts): the layer's run. */
export async function seedCommandLayer(values: SeedValues, settings: Settings, name: string): Promise<void> {
  const file = findLayerFile(settings.layersDir, name);
  // The render threads start (loading their modules takes each about half a second) while this
  // thread loads the layer and digests its sources (--since, the manifest's lineage).
  const renderer = values.via === undefined && !(values.queue && !values['dry-run']) ? openRenderer(settings, { cells: true }) : undefined;
  try {
    const layer = await loadLayer(file, { layersDir: settings.layersDir, allowedHosts: settings.allowedHosts });
    return await seedLayer(values, settings, layer, renderer);
  } finally {
    await renderer?.close();
  }
}

/** What `options` makes of a manifest's coverage, format and shard, with the manifest named in its errors. */
async function fromManifest<T>(since: Since | undefined, options: () => Promise<T>): Promise<T> {
  try {
    return await options();
  } catch (err) {
    if (since === undefined) throw err;
    throw new Error(`--since ${since.manifest}: the run it records cannot be followed: ${(err as Error).message}`, { cause: err });
  }
}

async function seedLayer(values: SeedValues, settings: Settings, layer: Layer, renderer: Renderer | undefined): Promise<void> {
  // --since: the run follows a manifest's, over its coverage, into its target (or a copy of it, --to), in its format.
  let since: Since | undefined;
  if (values.since !== undefined) {
    const taken = ['zoom', 'bbox', 'geojson', 'tiles', 'format', 'shard', 'via', 'force'].filter((k) => values[k as keyof typeof values] !== undefined);
    if (taken.length) throw new Error(`--since takes the coverage and format of the manifest's run: leave out --${taken.join(', --')}`);
    since = await sinceRun(path.resolve(values.since), layer, {
      ...(values.changed !== undefined && { changed: path.resolve(values.changed) }),
      // Checked before the sources are digested.
      ...(values.to !== undefined && { to: absoluteTarget(values.to) }),
    });
    Object.assign(values, since.options);
  } else if (values.changed !== undefined) throw new Error('--changed names what changed since a run: give the run with --since MANIFEST');

  // Taken from the manifest with --since: a manifest that does not hold says so, naming it.
  const { format, shard, cover } = await fromManifest(since, async () => {
    const format = (values.format ?? 'png') as 'png' | 'webp';
    if (format !== 'png' && format !== 'webp') throw new Error(`--format ${String(values.format)}: png or webp`);
    const shard = values.shard === undefined ? undefined : parseShard(values.shard);
    return { format, shard, cover: await coverage(values, layer, shard) };
  });
  const total = [...cover.counts.values()].reduce((a, b) => a + b, 0);
  // Enough tiles in flight that every render thread stays busy: neighbouring tiles prefer one
  // thread (their blocks are there), and the pool hands work to another only past a queue.
  const concurrency = numberFlag('concurrency', values.concurrency, settings.workers * 8, 1, 256);
  const metatile = numberFlag('metatile', values.metatile, DEFAULT_METATILE, 1, SEED_BLOCK);
  if (!Number.isInteger(Math.log2(metatile)))
    throw new Error(`--metatile ${values.metatile}: 1, 2, 4 or 8 (tiles per side; the blocks of 8×8 tiles divide into them)`);
  const via = values.via;
  if (via !== undefined && values.to !== undefined) throw new Error('--via and --to: give one of them (--via warms a server, which stores the tiles itself)');
  if (via !== undefined && !/^https?:\/\/[^/]+/.test(via)) throw new Error(`--via ${via}: expected http(s)://host[:port]`);
  const to = absoluteTarget(values.to ?? 'cache');
  // The target comes from the manifest: say which, before anything is written to it.
  if (since) console.error(`following ${since.manifest} (version ${since.previous.slice(0, 12)}) into ${to}`);
  if (values.queue) {
    if (via !== undefined) throw new Error('--queue and --via: the workers render the tiles themselves');
    if (values.resume) throw new Error('--queue runs need no --resume: the queue keeps the jobs a stopped worker had (tilegraph seed --status RUN)');
    if (to.startsWith('mbtiles:'))
      throw new Error('--queue writes into the cache or a directory: an MBTiles file takes one writer (seed it without --queue, or into dir:PATH)');
  }
  const retries = numberFlag('retries', values.retries, 2, 0, 10);
  const maxFailures = numberFlag('max-failures', values['max-failures'], 0, 0, 100, true);

  let redis: RedisClient | undefined;
  const redisClient = async () => {
    if (!settings.redisUrl)
      throw new Error(
        values.queue
          ? '--queue needs REDIS_URL: the jobs and the workers meet in Redis'
          : '--to cache needs REDIS_URL: the servers share their cache through Redis (or use --to dir:PATH, --to mbtiles:PATH)',
      );
    // ioredis is loaded by the runs that use Redis.
    redis ??= await (await import('../cache/redis.js')).connectForCommand(settings.redisUrl, settings.redisTimeoutMs, createLogger('silent'));
    return redis;
  };
  const produce = via !== undefined ? viaProducer(via, layer, format) : renderer?.producer(layer, format);
  // --via asks the server tile by tile, as a map client does.
  const produceMany = via !== undefined ? undefined : renderer?.many(layer, format);

  try {
    if (values['dry-run']) return await dryRun(cover, total, produce!, settings.workers);
    const manifest = values.manifest ? path.resolve(values.manifest) : defaultManifest(to, via !== undefined, layer.name, shard);
    // A --since run alone over its coverage (not a shard; its queue's workers write for it) settles a directory when complete (src/seed/dir.ts).
    const settles = since !== undefined && shard === undefined;
    // The run followed did every tile: its tiles are carried without a look (src/seed/target.ts SeedLayer.trusted).
    const trusted = settles && since?.complete === true;
    const coverage = sha256(JSON.stringify({ ...cover.describe, shard: shard ?? null }));
    const failureLog = `${manifest}.failures.jsonl`;
    // Each is replaced or truncated: never a device, a FIFO (writing one waits for a reader) or a directory.
    for (const [file, what] of [
      [manifest, 'manifest'],
      [failureLog, 'failure log'],
      [`${manifest}.progress`, 'progress'],
    ] as const) {
      if (await notRegularFile(file)) throw new Error(`${file}: exists and is not a regular file; the run writes its ${what} there`);
    }
    const target =
      via !== undefined
        ? (await import('./cache.js')).viaTarget()
        : await openTarget(to, layer, {
            format,
            redisPrefix: settings.redisPrefix,
            redis: redisClient,
            previous: since?.previous,
            settles,
            trusted,
            coverage,
          });
    if (!values.resume) await writeFile(failureLog, '');
    // Digested while the tiles render. A source that cannot be read whole (the run then fails
    // on its tiles) leaves the reason instead: a later --since renders everything.
    const lineage = since ? Promise.resolve(since.lineage) : lineageOf(layer).catch((err: Error) => ({ error: err.message }));
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const startedAt = new Date();
    const report = progressReporter(layer.name, total, since !== undefined);
    let result: SeedResult;
    let queued: Record<string, unknown> | undefined;
    try {
      if (values.queue) {
        // The target was opened here first (a directory has its record before any worker writes); the workers open it again.
        await target.close();
        // BullMQ is loaded only for queued runs.
        const { followRun } = await import('./queued.js');
        const run = await followRun({
          settings,
          redis: await redisClient(),
          layer,
          tiles: cover.tiles(),
          stale: since?.stale,
          target: to,
          format,
          force: values.force ?? false,
          retries,
          metatile,
          planned: cover.counts,
          manifest,
          previous: since?.previous,
          settles,
          trusted,
          coverage,
          signal: controller.signal,
          onStart: report.queued,
          onProgress: report.update,
        });
        result = run.result;
        queued = run.queue;
        await writeFile(failureLog, run.failures.map((f) => `${f}\n`).join(''));
        if (result.interrupted) {
          report.stop();
          console.error(
            `stopped enqueuing: run ${run.queue.run} goes on with the jobs it has (${run.queue.jobs}); see it with: tilegraph seed --status ${run.queue.run}`,
          );
          process.exitCode = 130;
          return;
        }
      } else {
        result = await runSeed(cover.tiles(), produce!, target, {
          concurrency,
          metatile,
          produceMany,
          retries,
          force: values.force ?? false,
          total,
          progressFile: `${manifest}.progress`,
          resume: values.resume ?? false,
          params: {
            layer: layer.name,
            version: layer.version,
            coverage: cover.describe,
            shard: shard ?? null,
            target: via ?? to,
            format,
            since: since?.manifest ?? null,
          },
          failureLog,
          signal: controller.signal,
          onProgress: report.update,
          stale: since?.stale,
        });
      }
    } finally {
      report.stop();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (!values.queue) await target.close();
    }
    const settled = fileTarget(to);
    if (settles && settled?.kind === 'dir' && !result.interrupted && result.total.failed === 0)
      await settleDir(settled.path, { name: layer.name, version: layer.version, coverage });
    const failedPct = (100 * result.total.failed) / Math.max(1, total);
    const exitCode = result.interrupted ? 130 : failedPct > maxFailures ? 1 : 0;
    const doc = manifestOf(
      layer,
      cover,
      shard,
      via ?? to,
      format,
      { concurrency, metatile: produceMany ? metatile : 1 },
      startedAt,
      result,
      failureLog,
      exitCode,
    );
    // With the cells of the blocks the renders decoded: a later --since compares changed blocks cell by cell.
    const record = {
      ...doc,
      lineage: withCells(await lineage, layer, renderer?.cells() ?? []),
      ...(since && { since: since.describe }),
      ...(queued && { queue: queued }),
    };
    await writeAtomic(manifest, `${JSON.stringify(record, null, 2)}\n`);
    if (!result.interrupted) await rm(`${manifest}.progress`, { force: true });
    report.summary(result, manifest, failedPct, maxFailures);
    process.exitCode = exitCode;
  } finally {
    redis?.disconnect();
  }
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

/** The counts a JSON line of the run reports, in its order. */
const lineCounts = ({ rendered, empty, skipped, carried, failed }: ZoomCounts) => ({ rendered, empty, skipped, carried, failed });

/** A bar on a terminal; JSON lines, every 2 s and at the end, when not. */
function progressReporter(layer: string, total: number, carrying = false) {
  const tty = process.stderr.isTTY;
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format: `seed ${layer} |{bar}| {value}/{total} {rate} tiles/s ETA {eta_formatted} skipped {skipped} empty {empty} failed {failed}${carrying ? ' carried {carried}' : ''}`,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(total, 0, { rate: '0', skipped: 0, empty: 0, failed: 0, carried: 0 });
  let last = 0;
  return {
    queued(run: string) {
      if (tty) console.error(`run ${run} queued: tilegraph worker processes render it (tilegraph seed --status ${run})`);
      else console.log(JSON.stringify({ event: 'queued', run }));
    },
    update(p: { done: number; counts: ZoomCounts; tilesPerSecond: number; etaS: number }) {
      if (bar)
        return bar.update(p.done, {
          rate: p.tilesPerSecond.toFixed(1),
          skipped: p.counts.skipped,
          empty: p.counts.empty,
          failed: p.counts.failed,
          carried: p.counts.carried,
        });
      if (performance.now() - last < 2000) return;
      last = performance.now();
      console.log(
        JSON.stringify({
          event: 'progress',
          done: p.done,
          total,
          ...lineCounts(p.counts),
          tilesPerSecond: +p.tilesPerSecond.toFixed(1),
          etaS: Math.round(p.etaS),
        }),
      );
    },
    stop() {
      bar?.stop();
    },
    summary(r: SeedResult, manifest: string, failedPct: number, maxFailures: number) {
      const { rendered, empty, skipped, carried, failed, bytes } = r.total;
      const rate = (rendered + empty) / Math.max(r.seconds, 1e-3);
      if (!tty) {
        console.log(
          JSON.stringify({
            event: r.interrupted ? 'interrupted' : 'done',
            total,
            ...lineCounts(r.total),
            bytes,
            seconds: +r.seconds.toFixed(1),
            manifest,
          }),
        );
        return;
      }
      console.log(
        `${r.interrupted ? 'interrupted' : 'done'}: ${rendered} rendered, ${empty} empty, ${skipped} skipped, ${carried} carried over, ${failed} failed of ${total} in ${r.seconds.toFixed(1)} s (${rate.toFixed(1)} tiles/s, ${(bytes / 1e6).toFixed(1)} MB)`,
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
  rendering: { concurrency: number; metatile: number },
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
    ...rendering,
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
