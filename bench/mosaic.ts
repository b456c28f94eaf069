/**
 * The mosaic targets (bench step `mosaic`):
 *
 * - a tile over a 64-member mosaic of the benchmark DEM costs at most 1.3x the same tile from
 *   the single COG: bench-dem (dem.tif) against bench-dem-mosaic (dem.tif cut by
 *   bench/make-data.sh into 8x8 COGs of 1024x1024 in dem-pieces/, `method: first`), the same
 *   pipeline, the same tiles (the DEM step's: every tile of zooms 10-14 over the DEM, every
 *   n-th of each zoom when the rounds would exceed BENCH_MOSAIC_S), through the same path as
 *   the DEM step: `tilegraph serve` with CACHE_L1_MB=0, a fresh server (cold block caches) for
 *   each run, 8 keep-alive connections on loopback. The two layers take turns, in ABBA order
 *   over BENCH_MOSAIC_ROUNDS rounds, so that both meet the same state of a shared machine;
 *   each round's cost ratio pairs its two runs, and the median of those is reported, from
 *   tiles/s (`costRatio`) and from the server's CPU time per tile (`cpuCostRatio`, which the
 *   share of a busy machine the server got does not move). `inOneThread` renders the same
 *   tiles in this thread, zoom by zoom, to show where the difference lies.
 * - a zoom-6 tile over the whole mosaic stays within MOSAIC_MAX_FILES and under 1 s: that tile
 *   asked once of a fresh server (its graphs built by two zoom-14 tiles, no block of the tile
 *   decoded, its members not yet opened), from both layers in turn, BENCH_MOSAIC_Z6_SAMPLES
 *   times; then once more on the same server (blocks decoded, members open) to show what
 *   the cold request spends on decoding and opening.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadSettings } from '../src/config.js';
import type { Layer } from '../src/layers/layer.js';
import { tileMembers } from '../src/layers/mosaic.js';
import { blockCache } from '../src/sources/blockcache.js';
import { singleThread, type DirectResult } from './direct.js';
import { DEM_PIECES, DEM_PIECES_DIR, writeMosaicLayer } from './layers.js';
import { drive, summarise, type LatencySummary, type LoadResult } from './loadgen.js';
import { countByZoom, everyNth, tilesCovering, type Tile } from './tiles.js';

export interface MosaicBenchDeps {
  root: string;
  data: string;
  connections: number;
  zooms: [number, number];
  startTilegraph(extraEnv?: Record<string, string>): Promise<{ url: string; stop(): Promise<void> }>;
  blockReads(url: string): Promise<Record<string, number>>;
  log(msg: string): void;
}

const ROUNDS = Math.max(1, Number(process.env.BENCH_MOSAIC_ROUNDS ?? 4));
const BUDGET_S = Number(process.env.BENCH_MOSAIC_S ?? 120);
const Z6_SAMPLES = Math.max(1, Number(process.env.BENCH_MOSAIC_Z6_SAMPLES ?? 5));
const DIRECT_ROUNDS = 2;

const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
/** The middle value, or the mean of the two middle ones (the rounds come in pairs). */
const median = (v: readonly number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : round((s[m - 1]! + s[m]!) / 2, 3);
};
const tilePath = (layer: string) => (t: Tile) => `/tiles/${layer}/${t.z}/${t.x}/${t.y}.png`;

function pieces(data: string): string[] {
  try {
    return readdirSync(path.join(data, DEM_PIECES_DIR)).filter((f) => /^dem_r\d+_c\d+\.tif$/.test(f));
  } catch {
    return [];
  }
}

/** dem-pieces/ as bench/make-data.sh makes it (only what is missing), when it does not hold every piece. */
export async function ensurePieces(deps: MosaicBenchDeps): Promise<boolean> {
  if (pieces(deps.data).length === DEM_PIECES) return false;
  deps.log(`  cutting dem.tif into ${DEM_PIECES} pieces (bench/make-data.sh)`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('bash', [path.join(deps.root, 'bench/make-data.sh')], {
      env: { ...process.env, BENCH_DATA: deps.data, BENCH_DEM_PIECES: String(Math.sqrt(DEM_PIECES)) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench/make-data.sh exited with ${code}`))));
  });
  const n = pieces(deps.data).length;
  if (n !== DEM_PIECES) throw new Error(`${DEM_PIECES_DIR}/ holds ${n} pieces after bench/make-data.sh, not ${DEM_PIECES}`);
  return true;
}

interface LayerRun {
  tilesPerSec: number;
  /** The server process's CPU time (every thread) per tile, in ms: the cost, whatever share of a shared machine the server got. */
  cpuMsPerTile: number;
  seconds: number;
  tiles: number;
  statuses: Record<string, number>;
  latencyMs: LatencySummary;
  meanBytes: number;
  blocks: Record<string, number>;
  cutShort: boolean;
  errors: string[];
}

/** The server process's CPU seconds (user + system, every thread), from its own metrics. */
async function serverCpuSeconds(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^tilegraph_process_cpu_seconds_total (\S+)$/m.exec(text);
  if (!m) throw new Error('the server does not report tilegraph_process_cpu_seconds_total');
  return Number(m[1]);
}

/** Two zoom-14 tiles at the west and east ends of the set, so that each render thread (the pool hands out columns) builds the layer's graph. */
function warmupPaths(tiles: readonly Tile[], layer: string, n: number): string[] {
  const top = tiles.filter((t) => t.z === tiles.at(-1)!.z);
  const ends = [top[0]!, top.at(-1)!].map(tilePath(layer));
  return Array.from({ length: n }, (_, i) => ends[i % 2]!);
}

/** One run of `tiles` on a fresh server, as the DEM step drives it. */
async function layerRun(deps: MosaicBenchDeps, layer: string, tiles: readonly Tile[], warm: readonly Tile[], maxMs: number): Promise<LayerRun> {
  const srv = await deps.startTilegraph();
  try {
    await drive(srv.url, warmupPaths(warm, layer, 2 * deps.connections), { connections: deps.connections });
    const before = await deps.blockReads(srv.url);
    const cpu0 = await serverCpuSeconds(srv.url);
    const r: LoadResult = await drive(srv.url, tiles.map(tilePath(layer)), { connections: deps.connections, maxMs, timeoutMs: 60_000 });
    const cpu = (await serverCpuSeconds(srv.url)) - cpu0;
    const after = await deps.blockReads(srv.url);
    return {
      tilesPerSec: r.perSecond,
      cpuMsPerTile: round((cpu * 1000) / Math.max(1, r.requests), 2),
      seconds: r.seconds,
      tiles: r.requests,
      statuses: r.statuses,
      latencyMs: r.latencyMs,
      meanBytes: Math.round(r.bytes / Math.max(1, r.requests)),
      blocks: Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)])),
      cutShort: r.cutShort,
      errors: r.errors.slice(0, 5),
    };
  } finally {
    await srv.stop();
  }
}

/**
 * Where the difference lies, zoom by zoom: the render thread's entry in this thread (no HTTP,
 * no pool: wall time is CPU time here), the same tiles, each layer from an empty block cache
 * and zoom after zoom in the HTTP runs' order, in ABBA order over DIRECT_ROUNDS rounds.
 */
async function directByZoom(single: Layer, mosaic: Layer, tiles: readonly Tile[]) {
  const members = (t: Tile) => tileMembers(mosaic, t, Infinity).members;
  const zooms = [...new Set(tiles.map((t) => t.z))];
  const warm = tiles.filter((t) => t.z === zooms.at(-1)).slice(0, 1);
  await singleThread(single.spec, warm);
  await singleThread(mosaic.spec, warm, Infinity, members);
  const runs: Record<'single' | 'mosaic', Record<string, DirectResult>[]> = { single: [], mosaic: [] };
  for (let i = 0; i < DIRECT_ROUNDS; i++) {
    const order = i % 2 === 0 ? (['single', 'mosaic'] as const) : (['mosaic', 'single'] as const);
    for (const which of order) {
      blockCache.resize(256 * 1024 * 1024); // empty, at a render thread's default bound
      const byZoom: Record<string, DirectResult> = {};
      for (const z of zooms) {
        const zt = tiles.filter((t) => t.z === z);
        byZoom[z] = which === 'single' ? await singleThread(single.spec, zt) : await singleThread(mosaic.spec, zt, Infinity, members);
      }
      runs[which].push(byZoom);
    }
  }
  const msPerTile = (r: DirectResult) => (r.seconds * 1000) / Math.max(1, r.tiles);
  const total = (which: 'single' | 'mosaic', k: number) => Object.values(runs[which][k]!).reduce((a, r) => a + r.seconds, 0);
  const costs = runs.single.map((_, k) => total('mosaic', k) / total('single', k));
  return {
    what: `the render thread's entry (renderEncoded) and the server's encoder in this thread, one tile at a time, the same tiles zoom after zoom, each layer from an empty block cache (256 MiB), ${DIRECT_ROUNDS} rounds in ABBA order; a mosaic tile is given the members under it as the server's task gives them`,
    msPerTile: {
      single: round((median(runs.single.map((_, k) => total('single', k))) * 1000) / tiles.length, 2),
      mosaic: round((median(runs.mosaic.map((_, k) => total('mosaic', k))) * 1000) / tiles.length, 2),
    },
    costRatio: round(median(costs), 2),
    byZoom: Object.fromEntries(
      zooms.map((z) => {
        const ms = (which: 'single' | 'mosaic') => round(median(runs[which].map((r) => msPerTile(r[z]!))), 2);
        const of = (which: 'single' | 'mosaic', f: (r: DirectResult) => number) => median(runs[which].map((r) => f(r[z]!)));
        return [
          z,
          {
            tiles: runs.single[0]![z]!.tiles,
            msPerTile: { single: ms('single'), mosaic: ms('mosaic') },
            costRatio: round(median(runs.single.map((_, k) => msPerTile(runs.mosaic[k]![z]!) / msPerTile(runs.single[k]![z]!))), 2),
            readMsPerTile: { single: of('single', (r) => r.phasesMs.read), mosaic: of('mosaic', (r) => r.phasesMs.read) },
            blocksDecoded: { single: of('single', (r) => r.blocksDecoded), mosaic: of('mosaic', (r) => r.blocksDecoded) },
          },
        ];
      }),
    ),
  };
}

/** One GET, timed from sending to the last byte of the body. */
async function timedGet(url: string): Promise<{ status: number; ms: number; bytes: number }> {
  const t0 = performance.now();
  const res = await fetch(url);
  const body = await res.arrayBuffer();
  return { status: res.status, ms: round(performance.now() - t0, 2), bytes: body.byteLength };
}

function describeMosaic(deps: MosaicBenchDeps, layer: Layer) {
  const mosaic = [...layer.mosaics.values()][0]!;
  const first = mosaic.members[0]!.meta;
  return {
    layer: layer.name,
    folder: path.relative(deps.root, path.join(deps.data, DEM_PIECES_DIR)),
    members: mosaic.members.length,
    method: mosaic.method,
    memberSize: [first.width, first.height],
    memberOverviews: first.levels.slice(1).map((lv) => lv.width),
    blockSize: [first.levels[0]!.image.blockWidth, first.levels[0]!.image.blockHeight],
    compression: first.levels[0]!.image.compression,
    predictor: first.levels[0]!.image.predictor,
    bytes: mosaic.members.reduce((a, m) => a + statSync(m.location).size, 0),
  };
}

/** The mosaic step: both targets, in one JSON object for the report. */
export async function mosaicBench(deps: MosaicBenchDeps, single: Layer): Promise<Record<string, unknown> & { name: string }> {
  const made = await ensurePieces(deps);
  const mosaic = await writeMosaicLayer(deps.data);
  const limit = loadSettings(process.env).mosaicMaxFiles;
  const { log, connections, zooms } = deps;
  const layers = { single: single.name, mosaic: mosaic.name };
  const all = tilesCovering(single.bounds, zooms[0], zooms[1]);
  const membersPerTile = all.map((t) => tileMembers(mosaic, t, Infinity).members.dem!.length);

  // Pilot, on one server: the last tenth of each zoom's tiles (whole rows, so that neighbours
  // share blocks as in the full set) from each layer, untimed (the files come into the page
  // cache, the code is compiled), then the first tenth, timed: their rates set the stride.
  const zoomIndex = new Map<number, { first: number; count: number }>();
  all.forEach((t, k) => {
    const e = zoomIndex.get(t.z) ?? { first: k, count: 0 };
    e.count++;
    zoomIndex.set(t.z, e);
  });
  const tenth = (t: Tile, k: number, last: boolean) => {
    const { first, count } = zoomIndex.get(t.z)!;
    const n = Math.ceil(count / 10);
    return last ? k - first >= count - n : k - first < n;
  };
  const warm = all.filter((t, k) => tenth(t, k, true));
  const pilot = all.filter((t, k) => tenth(t, k, false));
  const srv = await deps.startTilegraph();
  const pilotRates: Record<'single' | 'mosaic', number> = { single: 0, mosaic: 0 };
  try {
    for (const which of ['single', 'mosaic'] as const) await drive(srv.url, warm.map(tilePath(layers[which])), { connections, timeoutMs: 60_000 });
    for (const which of ['single', 'mosaic'] as const) {
      const r = await drive(srv.url, pilot.map(tilePath(layers[which])), { connections, maxMs: BUDGET_S * 500, timeoutMs: 60_000 });
      pilotRates[which] = r.perSecond;
    }
  } finally {
    await srv.stop();
  }
  const estimate = all.length / Math.max(0.01, pilotRates.single) + all.length / Math.max(0.01, pilotRates.mosaic);
  const stride = estimate * ROUNDS > BUDGET_S ? Math.ceil((estimate * ROUNDS) / BUDGET_S) : 1;
  const measured = everyNth(all, stride);
  log(
    `  mosaic pilot: ${pilot.length} tiles, single ${pilotRates.single} tiles/s, mosaic ${pilotRates.mosaic} tiles/s; ${ROUNDS} rounds of both over the ${all.length} tiles would take ${round(estimate * ROUNDS)} s${stride > 1 ? `: measuring every ${stride}th tile of each zoom (${measured.length})` : ''}`,
  );

  // Rounds in ABBA order: single, mosaic; mosaic, single; ...
  const runs: { single: LayerRun; mosaic: LayerRun; order: string[] }[] = [];
  const maxMs = (BUDGET_S / ROUNDS) * 1.5 * 1000;
  for (let i = 0; i < ROUNDS; i++) {
    const order = i % 2 === 0 ? (['single', 'mosaic'] as const) : (['mosaic', 'single'] as const);
    const got: Partial<Record<'single' | 'mosaic', LayerRun>> = {};
    for (const which of order) got[which] = await layerRun(deps, layers[which], measured, all, maxMs);
    const pair = { single: got.single!, mosaic: got.mosaic!, order: [...order] };
    runs.push(pair);
    log(
      `  mosaic round ${i + 1}/${ROUNDS}: single ${pair.single.tilesPerSec} tiles/s, mosaic ${pair.mosaic.tilesPerSec} tiles/s (cost ${round(pair.single.tilesPerSec / pair.mosaic.tilesPerSec, 2)}x); server CPU ${pair.single.cpuMsPerTile} / ${pair.mosaic.cpuMsPerTile} ms a tile (${round(pair.mosaic.cpuMsPerTile / pair.single.cpuMsPerTile, 2)}x); statuses ${JSON.stringify(pair.single.statuses)} / ${JSON.stringify(pair.mosaic.statuses)}; blocks decoded ${pair.single.blocks.decoded ?? '?'} / ${pair.mosaic.blocks.decoded ?? '?'}`,
    );
  }
  const costs = runs.map((r) => round(r.single.tilesPerSec / r.mosaic.tilesPerSec, 3));
  const cpuCosts = runs.map((r) => round(r.mosaic.cpuMsPerTile / r.single.cpuMsPerTile, 3));
  const medianRun = (which: 'single' | 'mosaic') => {
    const ranked = [...runs].sort((a, b) => a[which].tilesPerSec - b[which].tilesPerSec);
    return ranked[Math.floor((ranked.length - 1) / 2)]![which];
  };
  const membersByZoom = Object.fromEntries(
    [...new Set(all.map((t) => t.z))].map((z) => {
      const m = membersPerTile.filter((_, k) => all[k]!.z === z);
      return [z, { mean: round(m.reduce((a, b) => a + b, 0) / m.length, 2), max: Math.max(...m) }];
    }),
  );
  const singleRate = median(runs.map((r) => r.single.tilesPerSec));
  const mosaicRate = median(runs.map((r) => r.mosaic.tilesPerSec));
  const costRatio = round(median(costs), 2);
  const cpuCostRatio = round(median(cpuCosts), 2);
  log(
    `  mosaic: single ${singleRate} tiles/s, mosaic ${mosaicRate} tiles/s: a mosaic tile costs ${costRatio}x (median of the rounds' ratios); in server CPU time ${cpuCostRatio}x`,
  );

  // Zoom by zoom, in this thread.
  const direct = await directByZoom(single, mosaic, measured);
  log(
    `  mosaic in one thread: ${direct.msPerTile.single} / ${direct.msPerTile.mosaic} ms a tile (${direct.costRatio}x); by zoom ${Object.entries(direct.byZoom)
      .map(([z, v]) => `${z}: ${v.costRatio}x`)
      .join(', ')}`,
  );

  // Zoom 6: the tile(s) over the whole mosaic, cold, on fresh servers.
  const z6 = tilesCovering(mosaic.bounds, 6, 6);
  const z6Members = z6.map((t) => tileMembers(mosaic, t, Infinity).members.dem!.length);
  const samples: Record<
    'single' | 'mosaic',
    { cold: { status: number; ms: number; bytes: number }[]; cpuMs: number[]; again: { status: number; ms: number }[] }
  > = {
    single: { cold: [], cpuMs: [], again: [] },
    mosaic: { cold: [], cpuMs: [], again: [] },
  };
  for (let i = 0; i < Z6_SAMPLES; i++) {
    const s = await deps.startTilegraph();
    try {
      for (const which of ['single', 'mosaic'] as const) await drive(s.url, warmupPaths(all, layers[which], 2 * connections), { connections });
      const order = i % 2 === 0 ? (['single', 'mosaic'] as const) : (['mosaic', 'single'] as const);
      for (const which of order) {
        const cpu0 = await serverCpuSeconds(s.url);
        for (const t of z6) samples[which].cold.push(await timedGet(`${s.url}${tilePath(layers[which])(t)}`));
        samples[which].cpuMs.push(round(((await serverCpuSeconds(s.url)) - cpu0) * 1000));
        for (const t of z6) samples[which].again.push(await timedGet(`${s.url}${tilePath(layers[which])(t)}`));
      }
    } finally {
      await s.stop();
    }
  }
  const z6Of = (which: 'single' | 'mosaic') => {
    const st: Record<string, number> = {};
    for (const c of samples[which].cold) st[c.status] = (st[c.status] ?? 0) + 1;
    return {
      statuses: st,
      coldMs: summarise(samples[which].cold.map((c) => c.ms)),
      coldRunsMs: samples[which].cold.map((c) => c.ms),
      // The server's CPU time over the cold request(s), every thread.
      coldCpuMs: samples[which].cpuMs,
      againMs: summarise(samples[which].again.map((c) => c.ms)),
      bytes: samples[which].cold[0]!.bytes,
    };
  };
  const z6Single = z6Of('single'),
    z6Mosaic = z6Of('mosaic');
  const z6Ok = samples.mosaic.cold.every((c) => c.status === 200) && z6Members.every((n) => n <= limit);
  log(
    `  mosaic z6 ${z6.map((t) => `${t.z}/${t.x}/${t.y}`).join(', ')}: ${z6Members.join(', ')} members (limit ${limit}), statuses ${JSON.stringify(z6Mosaic.statuses)}, cold p50 ${z6Mosaic.coldMs.p50} ms (max ${z6Mosaic.coldMs.max}), again ${z6Mosaic.againMs.p50} ms; single COG cold ${z6Single.coldMs.p50} ms`,
  );

  return {
    name: 'tilegraph-dem-mosaic-vs-single',
    kind: 'http',
    what: `bench-dem (dem.tif) against bench-dem-mosaic (the same pixels as ${DEM_PIECES} COGs), the same pipeline and tiles; tilegraph serve, CACHE_L1_MB=0, no Redis, a fresh server per run, ${connections} connections (as tilegraph-dem-uncached); ${ROUNDS} rounds in ABBA order; costRatio is the median of the rounds' (single tiles/s / mosaic tiles/s); cpuCostRatio the same of the server's CPU ms per tile`,
    mosaic: { ...describeMosaic(deps, mosaic), madeThisRun: made, maxFilesPerTile: limit },
    tiles: { zooms, total: all.length, measured: measured.length, byZoom: countByZoom(measured), sampled: stride > 1, stride },
    pilotTilesPerSec: pilotRates,
    singleTilesPerSec: singleRate,
    mosaicTilesPerSec: mosaicRate,
    costRatio,
    costRatioOfMedians: round(singleRate / mosaicRate, 2),
    // The same cost in the server's CPU time per tile: what a tile costs whatever share of a shared machine the server got.
    cpuMsPerTile: { single: median(runs.map((r) => r.single.cpuMsPerTile)), mosaic: median(runs.map((r) => r.mosaic.cpuMsPerTile)) },
    cpuCostRatio,
    rounds: runs.map((r, i) => ({
      order: r.order,
      single: r.single.tilesPerSec,
      mosaic: r.mosaic.tilesPerSec,
      costRatio: round(costs[i]!, 2),
      cpuMsPerTile: { single: r.single.cpuMsPerTile, mosaic: r.mosaic.cpuMsPerTile },
      cpuCostRatio: round(cpuCosts[i]!, 2),
    })),
    medianRuns: { single: medianRun('single'), mosaic: medianRun('mosaic') },
    membersPerTileByZoom: membersByZoom,
    inOneThread: direct,
    zoom6: {
      what: `the zoom-6 tile(s) over the whole mosaic, asked once of a fresh server (graphs built by two zoom-14 tiles; no block of the tile decoded, its members not opened), both layers in turn, ${Z6_SAMPLES} servers; 'again' asks the same server once more (blocks decoded, members open)`,
      tiles: z6,
      membersUnderTile: z6Members,
      maxFilesPerTile: limit,
      withinLimit: z6Ok,
      mosaic: z6Mosaic,
      single: z6Single,
      coldCostVsSingle: round(z6Mosaic.coldMs.p50 / Math.max(0.01, z6Single.coldMs.p50), 2),
    },
  };
}
