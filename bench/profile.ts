/**
 * Where an uncached render spends its time: renders the bench layer's tiles of zooms 10-14,
 * one at a time on one thread (the render thread's entry function plus the server's PNG
 * encoder, as bench "tilegraph-*-single-thread"), under V8's sampling profiler, then
 * summarises the profile: self time by function and by file, and the inclusive time of the
 * renderer's main stages.
 *
 *   npm run build && node dist/bench/profile.js [dem|ndvi|mosaic] [seconds=20] [--zooms=10-14] [--cold] [--json]
 *
 * With KERNELS=reference in the environment it profiles the kernels' references (the
 * JavaScript loops and Node's zlib) instead of the WebAssembly kernels and libdeflate.
 *
 * `mosaic` is bench-dem-mosaic (the DEM as 64 COGs, bench/mosaic.ts), each tile given the
 * members under it as the server's task gives them; `--zooms` picks the zooms rendered (6-6:
 * the tile over the whole mosaic, again and again); `--cold` empties the block cache before
 * each tile (a mosaic's members stay open) and goes round the tiles until the time is up.
 *
 * Needs the bench data and layer files (run `npm run bench` once). The raw profile stays in
 * bench/data/profiles/ for Chrome DevTools or speedscope.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DATA = path.resolve(process.env.BENCH_DATA ?? path.join(ROOT, 'bench/data'));
const OUT = path.join(DATA, 'profiles');

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** A source file, relative to the repository, with dist/ mapped back to the TypeScript it came from. */
function fileOf(url: string): string {
  if (!url) return '(native/VM)';
  if (url.startsWith('node:')) return url;
  let p = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (p.startsWith(ROOT + path.sep)) p = path.relative(ROOT, p);
  const nm = p.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = p.slice(nm + 'node_modules/'.length).split('/');
    return `node_modules/${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}/${rest.at(-1)}`;
  }
  return p.replace(/^dist\//, '').replace(/\.js$/, '.ts');
}

const keyOf = (f: CallFrame) => `${f.functionName || '(anonymous)'}  ${fileOf(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;

/** The renderer's stages, by function name, for inclusive time. */
/**
 * The renderer's synchronous stages, by function name, for inclusive time. Async functions
 * (render, readWindow, Sequential.apply) are left out: after an await their callees no
 * longer sit under them in the sampled stacks, so their inclusive time means little.
 */
const STAGES = [
  'planRead',
  'fillCoordinates',
  'gridInterpolate',
  'forward',
  'decodeBlock',
  'inflate',
  'inflateSync',
  'undoFloatingPointPredictor',
  'undoHorizontalPredictor',
  'sampleWindow',
  'bilinear',
  'kernel',
  'cubic',
  'nearest',
  'apply',
  'toTileRgba',
  'encodeTile',
];

export function summarise(profile: CpuProfile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  let idle = 0;
  const fn = new Map<string, number>(),
    file = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') idle += us;
    fn.set(keyOf(f), (fn.get(keyOf(f)) ?? 0) + us);
    const fk = f.url ? fileOf(f.url) : f.functionName || '(native/VM)';
    file.set(fk, (file.get(fk) ?? 0) + us);
  }
  // Inclusive time by stage name, counting each sample once per stage even under recursion.
  const stage = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n)!.callFrame;
      const name = f.functionName;
      if (!STAGES.includes(name) || seen.has(name)) continue;
      // Only the project's own functions (and Node's inflateSync) count as stages.
      if (!(f.url.includes('/dist/') || f.url === 'node:zlib')) continue;
      // Read.apply resumes after its await with sampling and the rest under it: it is a stage.
      seen.add(name);
      stage.set(`${name}  ${fileOf(f.url)}`, (stage.get(`${name}  ${fileOf(f.url)}`) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const rows = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({
        name,
        ms: Math.round(us / 1000),
        pctOfAll: Math.round((1000 * us) / total) / 10,
        pctOfBusy: Math.round((1000 * us) / Math.max(1, busy)) / 10,
      }));
  return {
    sampledMs: Math.round(total / 1000),
    idleMs: Math.round(idle / 1000),
    note: '(idle) is this thread waiting: on sharp (libuv threads) for the PNG and on file reads',
    selfByFunction: rows(fn, top),
    selfByFile: rows(file, 15),
    inclusiveByStage: rows(stage, STAGES.length),
  };
}

async function child(layer: string, seconds: number, zooms: [number, number], cold: boolean): Promise<void> {
  const { writeBenchLayers, writeMosaicLayer } = await import('./layers.js');
  const { tilesCovering } = await import('./tiles.js');
  const { singleThread } = await import('./direct.js');
  const { tileMembers } = await import('../src/layers/mosaic.js');
  const { blockCache } = await import('../src/sources/blockcache.js');
  const { useKernels } = await import('../src/kernels.js');
  // After direct.js has loaded the render thread's entry, which chooses `fast` as it loads.
  if (process.env.KERNELS === 'reference') useKernels('reference');
  const layers = await writeBenchLayers(DATA);
  const l = layer === 'ndvi' ? layers.ndvi : layer === 'mosaic' ? await writeMosaicLayer(DATA) : layers.dem;
  const members = l.mosaics.size ? (t: { z: number; x: number; y: number }) => tileMembers(l, t, Infinity).members : undefined;
  let tiles = tilesCovering(l.bounds, zooms[0], zooms[1]);
  // Few tiles (zoom 6): again and again, for the time given.
  if (tiles.length < 64) tiles = Array.from({ length: Math.ceil(4096 / tiles.length) }, () => tiles).flat();
  await singleThread(l.spec, tilesCovering(l.bounds, 9, 9).slice(0, 1), Infinity, members);
  if (!cold) {
    const r = await singleThread(l.spec, tiles, seconds * 1000, members);
    process.stdout.write(`${JSON.stringify({ layer: l.name, zooms, ...r, tilesTotal: tiles.length })}\n`, () => process.exit(0));
    return;
  }
  // Cold: one tile at a time, each on an empty block cache.
  const started = performance.now();
  const ms: number[] = [];
  const phases = { read: 0, ops: 0, encode: 0 };
  // The tiles in turn, again from the first, until the time is up.
  for (let i = 0; performance.now() - started < seconds * 1000; i++) {
    const t = tiles[i % tiles.length]!;
    blockCache.resize(256 * 1024 * 1024);
    const r = await singleThread(l.spec, [t], Infinity, members);
    ms.push(r.latencyMs.mean);
    for (const k of ['read', 'ops', 'encode'] as const) phases[k] += r.phasesMs[k];
  }
  const n = Math.max(1, ms.length);
  const out = {
    layer: l.name,
    zooms,
    cold: true,
    tiles: ms.length,
    perSecond: Math.round((ms.length / ((performance.now() - started) / 1000)) * 10) / 10,
    meanMs: Math.round((ms.reduce((a, b) => a + b, 0) / n) * 100) / 100,
    phasesMs: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round((v / n) * 100) / 100])),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
}

async function parent(layer: string, seconds: number, json: boolean, extra: string[]): Promise<void> {
  await mkdir(OUT, { recursive: true });
  const before = new Set(await readdir(OUT));
  const self = fileURLToPath(import.meta.url);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const c = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${OUT}`, self, '--child', layer, String(seconds), ...extra], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    c.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`profile run exited with ${code}`))));
  });
  const fresh = (await readdir(OUT)).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
  if (!fresh.length) throw new Error(`no .cpuprofile written to ${OUT}`);
  const newest = (await Promise.all(fresh.map(async (f) => ({ f, t: (await stat(path.join(OUT, f))).mtimeMs })))).sort((a, b) => b.t - a.t)[0]!.f;
  const run = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
  const summary = summarise(JSON.parse(await readFile(path.join(OUT, newest), 'utf8')) as CpuProfile);
  const report = { run, profile: path.relative(ROOT, path.join(OUT, newest)), ...summary };
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const table = (title: string, rows: { name: string; ms: number; pctOfAll: number; pctOfBusy: number }[]) =>
    `${title}\n${rows.map((r) => `  ${String(r.ms).padStart(7)} ms ${String(r.pctOfAll).padStart(5)}% ${String(r.pctOfBusy).padStart(5)}%  ${r.name}`).join('\n')}\n`;
  process.stdout.write(
    [
      `run: ${JSON.stringify(run)}`,
      `profile: ${report.profile}; ${summary.sampledMs} ms sampled, ${summary.idleMs} ms idle ${summary.note}`,
      'columns: ms, % of all samples, % of non-idle samples',
      table('self time by function', summary.selfByFunction),
      table('self time by file', summary.selfByFile),
      table('inclusive time by stage', summary.inclusiveByStage),
    ].join('\n'),
  );
}

const args = process.argv.slice(2);
const zoomArg = args.find((a) => a.startsWith('--zooms='));
const zooms = (zoomArg ? zoomArg.slice('--zooms='.length).split('-').map(Number) : [10, 14]) as [number, number];
if (zooms.length !== 2 || zooms.some((z) => !Number.isInteger(z))) throw new Error(`--zooms=${zoomArg}: give two zooms, as --zooms=10-12`);
if (args[0] === '--child') {
  await child(args[1] ?? 'dem', Number(args[2] ?? 20), zooms, args.includes('--cold'));
} else {
  const pos = args.filter((a) => !a.startsWith('--'));
  await parent(
    pos[0] ?? 'dem',
    Number(pos[1] ?? 20),
    args.includes('--json'),
    args.filter((a) => a.startsWith('--zooms=') || a === '--cold'),
  );
}
