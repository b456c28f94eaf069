/**
 * The render pool as a short command uses it: opened, then closed before its threads have
 * finished loading their modules. Node aborts the whole process (a fatal error in
 * v8::Module::IsGraphAsync) when a thread is stopped while it instantiates its ES modules; a
 * `tilegraph seed` that found every tile already there did so about 0.1 s after it started.
 * Where in the threads' start-up a close lands depends on the machine, so the pool is closed
 * at every moment of it, each time in a process of its own.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

const POOL = new URL('../src/render/pool.js', import.meta.url).href;

/** Opens a pool of two threads in a new process and closes it `ms` later: how the process ended. */
function closeAfter(ms: number): Promise<{ ms: number; code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const script = `
const { RenderPool } = await import(${JSON.stringify(POOL)});
const pool = new RenderPool({ threads: 2, maxQueue: 1, timeoutMs: 10000, blockCacheMb: 16 });
await new Promise((resolve) => setTimeout(resolve, ${ms}));
await pool.close();`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ ms, code, signal, stderr }));
  });
}

test('a pool closed at any moment of its threads’ start-up (every 3 ms from 0 to 450 ms after it opened) ends its process cleanly', async () => {
  const delays = Array.from({ length: 151 }, (_, i) => i * 3);
  const ended: Awaited<ReturnType<typeof closeAfter>>[] = [];
  // Two processes at a time, as on a machine of two cores.
  for (let i = 0; i < delays.length; i += 2) ended.push(...(await Promise.all(delays.slice(i, i + 2).map(closeAfter))));
  const bad = ended.filter((e) => e.code !== 0);
  assert.deepEqual(
    bad.map((e) => `closed after ${e.ms} ms: exit ${e.code ?? e.signal}: ${e.stderr.split('\n').find((l) => l.trim()) ?? ''}`),
    [],
  );
});
