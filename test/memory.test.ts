/**
 * Memory a rendering process gives back. A render allocates blocks, windows and rasters of a
 * few hundred KiB to several MiB and frees them a moment later; glibc's malloc, left to
 * itself, raises its mapping threshold past the largest block it has freed, and from then on
 * serves such blocks from its heaps, which keep the pages. A server's resident memory then
 * climbs with the churn while what it holds stays the same (the bench's soak saw it). The
 * render pool fixes the threshold (src/kernels.ts, mapLargeAllocations): a freed block goes
 * back to the system.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';

const KERNELS = new URL('../src/kernels.js', import.meta.url).href;

/**
 * A process that frees a 16 MiB buffer, then allocates 256 buffers of 1 MiB, each followed by
 * a small one that stays (so the freed ones leave holes below it), and frees the large ones:
 * its resident MiB before, at the peak and after, with or without the pool's threshold.
 */
const CHURN = `
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
const { mapLargeAllocations } = await import(${JSON.stringify(KERNELS)});
const applied = process.env.CHURN_MODE === 'mapped' ? mapLargeAllocations() : false;
const rss = () => Number(/VmRSS:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
const settle = async () => { for (let i = 0; i < 3; i++) { globalThis.gc(); await sleep(50); } };
let first = new Uint8Array(16 << 20).fill(1);
first = null;
await settle();
const before = rss();
let large = [];
const stay = [];
for (let i = 0; i < 256; i++) {
  large.push(new Uint8Array(1 << 20).fill(1));
  stay.push(new Uint8Array(32 << 10).fill(1));
}
const peak = rss();
large = null;
await settle();
console.log(JSON.stringify({ applied, before, peak, after: rss(), stay: stay.length }));
`;

function churn(mode: 'mapped' | 'glibc default'): { applied: boolean; before: number; peak: number; after: number } {
  const env: NodeJS.ProcessEnv = { ...process.env, CHURN_MODE: mode };
  delete env.MALLOC_MMAP_THRESHOLD_;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHURN], { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim()) as { applied: boolean; before: number; peak: number; after: number };
}

describe('large allocations go back to the system when freed', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
  test("with glibc's defaults the freed megabytes stay resident; with the render pool's threshold they are given back", () => {
    const plain = churn('glibc default');
    assert.ok(plain.peak - plain.before > 200, `the churn is resident at its peak: ${JSON.stringify(plain)}`);
    assert.ok(plain.after - plain.before > 128, `glibc left to itself keeps most of the 256 MiB freed: ${JSON.stringify(plain)}`);

    const mapped = churn('mapped');
    assert.equal(mapped.applied, true, 'the threshold is set (glibc)');
    assert.ok(mapped.peak - mapped.before > 200, `the churn is resident at its peak: ${JSON.stringify(mapped)}`);
    assert.ok(mapped.after - mapped.before < 48, `the 256 MiB freed are given back (the 8 MiB that stay are kept): ${JSON.stringify(mapped)}`);
  });

  test('a threshold in the environment (MALLOC_MMAP_THRESHOLD_) is left to rule', () => {
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `const k = await import(${JSON.stringify(KERNELS)}); console.log(JSON.stringify(k.mapLargeAllocations()));`],
      { env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '1048576' }, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'false');
  });
});
