/**
 * The child process of test/fuzz.test.ts: runs a range of fuzz cases the way the server meets
 * a file (the layer loader in this thread, tiles in a real render pool) and reports each case
 * to the parent over IPC before and after it runs, so that a crash or a hang of this process
 * is pinned on the case that caused it.
 *
 * Usage (from the parent only): fuzz-runner.js MANIFEST START END
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TileError } from '../../src/errors.js';
import { LayerError, loadLayer } from '../../src/layers/layer.js';
import { encodeTile } from '../../src/render/encode.js';
import { RenderPool } from '../../src/render/pool.js';
import { LayerGraph } from '../../src/render/renderer.js';
import type { LayerSpec } from '../../src/render/task.js';
import { Cog } from '../../src/sources/cog.js';
import { fuzzCase, KNOWN_OUTSIDE, parseLayout, type FuzzManifest, type RunnerMessage } from './fuzz.js';

/**
 * Where an internal error of a render thread was thrown: the thread sends only its message,
 * so the tile is rendered again here, on the same code, for the stack.
 */
async function whereThrown(spec: LayerSpec, tile: { z: number; x: number; y: number }): Promise<string> {
  try {
    const graph = await LayerGraph.open(spec);
    try {
      await graph.render({ ...tile, size: 256 });
    } finally {
      await graph.close();
    }
  } catch (err) {
    if (err instanceof TileError || !(err instanceof Error)) return '';
    const frames = (err.stack ?? '').split('\n').filter((l) => l.trim().startsWith('at '));
    return ` (${frames
      .slice(0, 3)
      .map((l) => l.trim().replace(/\(file:\/\/.*\/dist\//, '(dist/'))
      .join(', ')})`;
  }
  return '';
}

/** The peak of this process's address space in MiB (VmPeak, Linux), or 0 where there is no /proc. */
function vmPeakMb(): number {
  try {
    return Number(/^VmPeak:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/**
 * Address space reserved and inaccessible (`---p` in /proc/self/maps), in MiB: V8 reserves some
 * 10 GiB so for each WebAssembly memory (a decoder's), and more for a new thread's heap. None
 * of it is memory; a buffer that is allocated is readable and writable.
 */
function reservedMb(): number {
  let total = 0;
  try {
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) ---p/.exec(line);
      if (m) total += (parseInt(m[2]!, 16) - parseInt(m[1]!, 16)) / 1048576;
    }
  } catch {
    return 0;
  }
  return total;
}

function send(msg: RunnerMessage): Promise<void> {
  return new Promise((resolve) => process.send!(msg, () => resolve()));
}

const describe = (err: unknown): string => (err instanceof Error ? `${err.constructor.name}: ${err.message}` : `non-Error thrown: ${String(err)}`);

async function main(): Promise<void> {
  const [manifestFile, startArg, endArg] = process.argv.slice(2);
  const manifest = JSON.parse(readFileSync(manifestFile!, 'utf8')) as FuzzManifest;
  const start = Number(startArg);
  const end = Number(endArg);
  const seeds = manifest.seeds.map((s) => {
    const bytes = new Uint8Array(readFileSync(s.file));
    return { ...s, bytes, layout: parseLayout(bytes) };
  });
  const layerFile = path.join(manifest.layersDir, 'fuzz.yaml');
  const opts = { layersDir: manifest.layersDir, allowedHosts: [] };

  // What the render threads report outside a task (a thread that dies) belongs to the case running.
  let threadProblems: string[] = [];
  const pool = new RenderPool({
    threads: 2,
    maxQueue: 1000,
    timeoutMs: manifest.renderTimeoutMs,
    blockCacheMb: 16,
    onError: (err) => threadProblems.push(`a render thread failed: ${describe(err)}`),
  });

  /** Loads the layer file as the server does and renders `tiles`; the outcome, and what is not acceptable. */
  async function run(
    file: string,
    ref: string,
    tiles: FuzzManifest['seeds'][number]['tiles'],
  ): Promise<{ outcome: string; problems: string[]; tiles: number }> {
    const problems: string[] = [];
    // The source by itself first: the loader turns any failure into a refusal, which would hide a raw error.
    try {
      const c = await Cog.open(file);
      await c.close();
    } catch (err) {
      if (!(err instanceof TileError)) problems.push(`Cog.open threw ${describe(err)}`);
      else if (!err.detail.includes(file)) problems.push(`Cog.open failed without naming the file: ${err.detail}`);
    }
    let layer;
    try {
      layer = await loadLayer(layerFile, opts);
    } catch (err) {
      if (!(err instanceof LayerError)) problems.push(`loadLayer threw ${describe(err)}`);
      return { outcome: 'refused', problems, tiles: 0 };
    }
    const outcomes = new Set<string>();
    let drawn = 0;
    await Promise.all(
      tiles.map(async (t, k) => {
        const at = `tile ${t.z}/${t.x}/${t.y}`;
        try {
          // Spread over both threads, as the server's column bands do: they share decoded blocks.
          const r = await pool.render({ layer: layer.spec, ...t, size: 256, format: 'png', affinity: k / tiles.length });
          // As the service does: a thread's RGBA (more than 256 colours) is encoded here.
          if (!r.png && r.rgba) await encodeTile(new Uint8Array(r.rgba), 256, 'png');
          if (r.png || r.rgba) drawn++;
          outcomes.add(r.png || r.rgba ? 'tile' : 'empty');
        } catch (err) {
          if (!(err instanceof TileError)) {
            problems.push(`${at}: the pool threw ${describe(err)}`);
            return;
          }
          outcomes.add(err.code);
          if (err.code === 'internal')
            problems.push(`${at}: internal error (a bug, or a render thread that died): ${err.detail}${await whereThrown(layer.spec, t)}`);
          else if (err.code === 'render_timeout') problems.push(`${at}: the render hung (${err.detail})`);
          else if (err.code === 'bad_source' && !err.detail.includes(file)) problems.push(`${at}: bad_source without naming the file: ${err.detail}`);
        }
      }),
    );
    return { outcome: [...outcomes].sort().join('+'), problems, tiles: drawn };
  }

  /** Every unmutated seed loads and draws at least one tile; problems if not. */
  async function checkSeeds(when: string): Promise<string[]> {
    const problems: string[] = [];
    for (const s of seeds) {
      const ref = `./data/good-${s.name}.tif`;
      const file = path.join(manifest.layersDir, 'data', `good-${s.name}.tif`);
      writeFileSync(file, s.bytes);
      writeFileSync(layerFile, `sources:\n  s: ${ref}\n${s.pipeline}`);
      const r = await run(file, ref, s.tiles);
      if (r.problems.length || r.tiles === 0)
        problems.push(`${when}, seed ${s.name} (unmutated): ${r.outcome}, ${r.tiles} tile(s) drawn; ${r.problems.join('; ')}`);
      rmSync(file, { force: true });
    }
    return problems;
  }

  // Both threads started and every code path warm before the first case: the memory a case
  // takes is then its own.
  const problems = await checkSeeds('before the cases');
  for (let warm = 0; warm < 2; warm++)
    await Promise.all(
      [0, 0.99].map((affinity) =>
        pool.render({ layer: { name: 'warm', version: `warm-${warm}`, pipeline: [], sources: {} }, z: 0, x: 0, y: 0, size: 256, affinity }).catch(() => {}),
      ),
    );

  for (let i = start; i < end; i++) {
    const c = fuzzCase(manifest, seeds, i);
    const s = seeds.find((x) => x.name === c.seed)!;
    const ref = `./data/c${i}.tif`;
    const file = path.join(manifest.layersDir, 'data', `c${i}.tif`);
    writeFileSync(file, c.bytes);
    writeFileSync(layerFile, `sources:\n  s: ${ref}\n${s.pipeline}`);
    await send({ t: 'start', i, seed: c.seed, description: c.description, file });
    const t0 = performance.now();
    const vmBefore = vmPeakMb();
    const reservedBefore = reservedMb();
    threadProblems = [];
    const r = await run(file, ref, s.tiles);
    const all = [...r.problems, ...threadProblems];
    const known = all.filter((p) => KNOWN_OUTSIDE.some((k) => k.pattern.test(p)));
    const problems = all.filter((p) => !known.includes(p));
    // Memory is the process's, render threads included. Resident memory shows what was written;
    // the peak of the address space also shows a buffer allocated and never filled.
    const rssMb = process.resourceUsage().maxRSS / 1024;
    const grown = vmPeakMb() - vmBefore - Math.max(0, reservedMb() - reservedBefore);
    let restart = false;
    if (rssMb > manifest.maxRssMb) {
      problems.push(`peak resident memory of the process reached ${Math.round(rssMb)} MiB (limit ${manifest.maxRssMb} MiB)`);
      restart = true;
    }
    if (grown > manifest.maxAllocMb) {
      problems.push(`the address space grew by ${Math.round(grown)} MiB during the case, reservations aside (limit ${manifest.maxAllocMb} MiB)`);
      restart = true;
    }
    if (!problems.length) rmSync(file, { force: true });
    await send({ t: 'end', i, outcome: r.outcome, problems, known, ms: performance.now() - t0, restart });
    // The peak cannot go down: a fresh process measures the next cases.
    if (restart) {
      await pool.close();
      process.exit(0);
    }
  }

  // The pool still serves after the cases.
  problems.push(...(await checkSeeds('after the cases')));
  await send({ t: 'final', problems });
  await pool.close();
  process.exit(0);
}

const fatal = (err: unknown) => {
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.send!({ t: 'fatal', text } satisfies RunnerMessage, () => process.exit(70));
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
main().catch(fatal);
