/**
 * Memory a rendering process reuses and gives back. A render allocates blocks, windows and
 * rasters of a few hundred KiB to several MiB and frees them a moment later. Served each from
 * a fresh mapping, every one costs the kernel a page fault and a zeroed page every 4 KiB; left
 * to glibc's defaults, they come from its heaps, which keep the pages, and a server's resident
 * memory climbs with the churn while what it holds stays the same (the bench's soak saw it).
 * The render pool (src/kernels.ts, recycleLargeAllocations) serves them from the heaps, so a
 * freed block's pages serve the next, and gives back what stays free every few seconds.
 *
 * And collections a render thread runs. V8 starts a full collection of a heap when the room
 * left under its old generation's limit is no more than its young generation's capacity; a
 * render thread's old generation is small and its young one, left to grow, is as large as
 * that room, so under a burst the thread marked its whole heap about ten times a second. The
 * render pool caps the young generation (src/render/pool.ts, RENDER_THREAD_YOUNG_MB).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GDAL_ENV, gdalMissing } from './helpers/gdal.js';
import { getJson, lonLatToTile, makeLayersDir, metricValue, request, startServer, type TempLayers } from './helpers/http.js';

const KERNELS = new URL('../src/kernels.js', import.meta.url).href;
const BLOCK_CACHE = new URL('../src/sources/blockcache.js', import.meta.url).href;

/**
 * A process that frees a 16 MiB buffer, then twice allocates 256 buffers of 1 MiB, each
 * followed by a small one that stays (so the freed ones leave holes below it), and frees the
 * large ones. It answers its resident MiB before, at the first peak, right after the second
 * round is freed, and at the end (with the pool's thresholds, once its trim interval and a
 * second more have passed); and the page faults of the second round, which the first round's
 * freed memory could serve.
 */
const CHURN = `
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
const { recycleLargeAllocations, TRIM_EVERY_MS } = await import(${JSON.stringify(KERNELS)});
const applied = process.env.CHURN_MODE === 'recycled' ? recycleLargeAllocations() : false;
const rss = () => Number(/VmRSS:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
const minorFaults = () => Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[7]);
const settle = async () => { for (let i = 0; i < 3; i++) { globalThis.gc(); await sleep(50); } };
let first = new Uint8Array(16 << 20).fill(1);
first = null;
await settle();
const before = rss();
const stay = [];
const round = () => {
  const large = [];
  for (let i = 0; i < 256; i++) {
    large.push(new Uint8Array(1 << 20).fill(1));
    stay.push(new Uint8Array(32 << 10).fill(1));
  }
  return large;
};
let large = round();
const peak = rss();
large = null;
await settle();
const faults = minorFaults();
large = round();
const reuseFaults = minorFaults() - faults;
large = null;
await settle();
const freed = rss();
if (applied) await sleep(TRIM_EVERY_MS + 1000);
console.log(JSON.stringify({ applied, before, peak, freed, after: rss(), reuseFaults, stay: stay.length }));
`;

interface Churn {
  applied: boolean;
  before: number;
  peak: number;
  freed: number;
  after: number;
  reuseFaults: number;
}

function churn(mode: 'recycled' | 'glibc default' | 'mapped', env: NodeJS.ProcessEnv = {}): Churn {
  const all: NodeJS.ProcessEnv = { ...process.env, CHURN_MODE: mode, ...env };
  if (!env.MALLOC_MMAP_THRESHOLD_) delete all.MALLOC_MMAP_THRESHOLD_;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHURN], { env: all, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim()) as Churn;
}

/** Pages of 4 KiB in a round of 256 MiB. */
const ROUND_PAGES = (256 * 2 ** 20) / 4096;

describe(
  'large allocations are reused while they churn and go back to the system when they stay free',
  { skip: process.platform !== 'linux' && 'reads /proc' },
  () => {
    test("the render pool's heaps serve a freed block's pages to the next, and give back what stays free within the trim interval", () => {
      const recycled = churn('recycled');
      assert.equal(recycled.applied, true, 'the thresholds are set (glibc)');
      assert.ok(recycled.peak - recycled.before > 200, `the churn is resident at its peak: ${JSON.stringify(recycled)}`);
      assert.ok(recycled.reuseFaults < ROUND_PAGES / 8, `the second round reuses the first one's pages: ${JSON.stringify(recycled)}`);
      assert.ok(recycled.after - recycled.before < 48, `the 256 MiB freed are given back (the 16 MiB that stay are kept): ${JSON.stringify(recycled)}`);
    });

    test('a fresh mapping for each allocation faults every page of every round; glibc left to itself keeps the freed megabytes', () => {
      // Each large allocation in a mapping of its own, given back when freed (glibc's own setting).
      const mapped = churn('mapped', { MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' });
      assert.ok(mapped.reuseFaults >= ROUND_PAGES, `every page of the second round faults: ${JSON.stringify(mapped)}`);
      assert.ok(mapped.freed - mapped.before < 48, `and is given back at once: ${JSON.stringify(mapped)}`);

      const plain = churn('glibc default');
      assert.ok(plain.peak - plain.before > 200, `the churn is resident at its peak: ${JSON.stringify(plain)}`);
      assert.ok(plain.after - plain.before > 128, `glibc left to itself keeps most of the 256 MiB freed: ${JSON.stringify(plain)}`);
    });

    test('a threshold in the environment (MALLOC_MMAP_THRESHOLD_) is left to rule', () => {
      const r = spawnSync(
        process.execPath,
        ['--input-type=module', '-e', `const k = await import(${JSON.stringify(KERNELS)}); console.log(JSON.stringify(k.recycleLargeAllocations()));`],
        { env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '1048576' }, encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'false');
    });
  },
);

/**
 * A render thread's cache of 64 MiB, sharing its blocks, fed 3000 shared blocks of 1 MiB one
 * after another, with a tile's worth of short-lived objects between them (the young
 * collections then move the blocks the cache holds to the old generation): the MiB of array
 * buffers the thread holds at the end, and the blocks it decoded.
 */
const DROPPING = `
const { BlockCache, DROPPED_BLOCKS_BYTES } = await import(${JSON.stringify(BLOCK_CACHE)});
const cache = new BlockCache(64 << 20);
cache.share();
let objects = 0;
for (let i = 0; i < 3000; i++) {
  const block = await cache.get('block ' + i, async () => new Uint16Array(new SharedArrayBuffer(1 << 20)).fill(i));
  for (let k = 0; k < 20000; k++) objects += [k, block.length].length > 1 ? 1 : 0;
  if (i % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
}
for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 20));
console.log(JSON.stringify({ heldMiB: process.memoryUsage().arrayBuffers / 2 ** 20, decoded: cache.takeCounts().decoded, budgetMiB: DROPPED_BLOCKS_BYTES / 2 ** 20, objects }));
`;

describe('shared blocks a cache drops are collected', () => {
  test('3000 blocks of 1 MiB through a cache of 64 MiB leave the thread holding the cache and at most twice the dropped blocks it lets wait', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', DROPPING], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const { heldMiB, decoded, budgetMiB } = JSON.parse(r.stdout.trim()) as { heldMiB: number; decoded: number; budgetMiB: number };
    assert.equal(decoded, 3000);
    // V8 does not count a SharedArrayBuffer towards its next collection: before the cache kept
    // its account of the blocks it dropped, the thread held 470 to 760 MiB of them here, and
    // a server's render threads gigabytes after a few thousand tiles of 2 MiB blocks.
    assert.ok(heldMiB < 64 + 2 * budgetMiB + 64, `the thread holds ${Math.round(heldMiB)} MiB of array buffers`);
  });
});

describe(
  'render threads collect their young objects, not their whole heap, under a burst of tiles',
  { skip: gdalMissing(['gdalwarp', 'gdal_translate']) },
  () => {
    let layers: TempLayers;
    before(async () => {
      // The bench's kind of DEM: 4096 px a side of Float32 in 512 px blocks, DEFLATE with the
      // floating-point predictor, overviews (the shipped SRTM excerpt warped to Web Mercator).
      layers = await makeLayersDir();
      const srtm = await layers.copyData('srtm_jasper_ab_100m.tif');
      const warped = path.join(layers.root, 'warped.tif');
      execFileSync('gdalwarp', ['-q', '-t_srs', 'EPSG:3857', '-ts', '4096', '4096', '-r', 'cubic', '-ot', 'Float32', '-dstnodata', 'nan', srtm, warped], {
        env: GDAL_ENV,
      });
      const cog = ['-q', '-of', 'COG', '-co', 'BLOCKSIZE=512', '-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=FLOATING_POINT', '-co', 'OVERVIEWS=AUTO'];
      execFileSync('gdal_translate', [...cog, warped, path.join(layers.dir, 'data/dem-4096.tif')], { env: GDAL_ENV });
      await layers.write(
        'dem-4096.yaml',
        `sources: { dem: ./data/dem-4096.tif }
pipeline:
  - read: { source: dem, bands: [1], resampling: bilinear }
  - colormap: { stops: [[800, '#2b6b3a'], [1500, '#d8c98a'], [2200, '#8c6a5a'], [2800, '#ffffff']] }
`,
      );
    });
    after(async () => {
      await layers.remove();
    });

    test('a thousand tiles of zooms 10-14: a major collection for every four minor ones at most', async () => {
      const srv = await startServer(layers.dir, { WORKERS: '2', CACHE_L1_MB: '0' });
      try {
        const [w, s, e, n] = (await getJson<{ bounds: [number, number, number, number] }>(srv.url, '/layers/dem-4096')).json.bounds;
        const paths: string[] = [];
        for (let z = 10; z <= 14; z++) {
          const [, x0, y0] = lonLatToTile(w, n, z);
          const [, x1, y1] = lonLatToTile(e, s, z);
          for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) paths.push(`/tiles/dem-4096/${z}/${x}/${y}.png`);
        }
        const burst = paths.slice(0, 1000);
        assert.equal(burst.length, 1000);
        // Eight requests in flight, as the bench's clients.
        const drive = async (list: string[]) => {
          let next = 0;
          await Promise.all(
            Array.from({ length: 8 }, async () => {
              while (next < list.length) {
                const p = list[next++]!;
                const r = await request(srv.url, p);
                assert.ok(r.status === 200 || r.status === 204, `${p}: ${r.status}`);
              }
            }),
          );
        };
        await drive(burst);
        // The threads report their collections with their memory, once a second: a few more tiles after a second bring the last ones in.
        await new Promise((resolve) => setTimeout(resolve, 1100));
        await drive(paths.slice(0, 16).map((p) => p.replace('.png', '.webp')));
        const major = await metricValue(srv.url, 'tilegraph_render_thread_gc_total', { kind: 'major' });
        const minor = await metricValue(srv.url, 'tilegraph_render_thread_gc_total', { kind: 'minor' });
        assert.ok(minor > 0, `the threads' collections are counted: ${major} major, ${minor} minor`);
        // Without the cap, 9 to 20 major collections for 20 to 30 minor ones; with it, 2 for about 90.
        assert.ok(major * 4 <= minor, `${major} major collections for ${minor} minor ones`);
      } finally {
        await srv.close();
      }
    });
  },
);
