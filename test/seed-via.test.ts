/**
 * `tilegraph seed --via URL` as an operator runs it: a child process warming a running server
 * (a child process too) tile by tile over HTTP, as a map client would; and against a server
 * that answers what no tile server should, a body without end or an error page of megabytes,
 * which the seeder refuses as it arrives instead of holding it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { MAX_VIA_TILE_BYTES, viaProducer } from '../src/seed/produce.js';
import { bboxTiles, makeLayersDir, metricValue, request, tilePath, type TempLayers, type Tile } from './helpers/http.js';
import { CLI } from './helpers/layers.js';
import { startServerProcess, type ServerProcess } from './helpers/processes.js';
import { forcedGc } from './helpers/gc.js';

/** A corner of the Jasper DEM: a handful of tiles at zooms 10 and 11. */
const BBOX = [-117.6, 53.15, -117.4, 53.3] as const;

const tilesOf = (z: number): Tile[] => bboxTiles(BBOX, z);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The seeder's largest resident set while it ran (VmHWM), in bytes. */
  peakRss: number;
}

/** The seed command as a child process (asynchronous: the servers it talks to live in this one). */
function seed(args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'seed', ...args], {
      cwd,
      env: { ...process.env, LOG_LEVEL: 'silent', WORKERS: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '',
      stderr = '',
      peakRss = 0;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const watch = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        peakRss = Math.max(peakRss, Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024);
      } catch {
        // Gone already.
      }
    }, 50);
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('exit', (status) => {
      clearInterval(watch);
      clearTimeout(timer);
      resolve({ status, stdout, stderr, peakRss });
    });
  });
}

const summaryOf = (r: Run) =>
  JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { event: string; rendered: number; empty: number; failed: number; manifest: string };

/** The errors of the tiles a run gave up on, from the failures file beside its manifest. */
const failuresOf = (r: Run): string[] =>
  readFileSync(`${summaryOf(r).manifest}.failures.jsonl`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { error: string }).error);

/** A server on loopback answering every request with `answer`, and counting them. */
async function hostile(answer: (res: http.ServerResponse) => void): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    answer(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes `bytes` more (in MiB chunks, as fast as the client reads) unless the client goes away first, then ends. */
function sendMiBs(res: http.ServerResponse, bytes: number): void {
  const chunk = Buffer.alloc(2 ** 20, 32);
  let sent = 0;
  const more = () => {
    while (sent < bytes && !res.destroyed) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', more);
    }
    res.end();
  };
  more();
}

describe('tilegraph seed --via', () => {
  let tmp: TempLayers;
  const bbox = BBOX.join(',');
  const planned = tilesOf(10).length + tilesOf(11).length;

  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
  });
  after(async () => {
    await tmp?.remove();
  });

  test('warms a running server: it then answers every seeded tile from its cache', async () => {
    let server: ServerProcess | undefined;
    try {
      server = await startServerProcess(tmp.dir, { REDIS_URL: '', CACHE_L1_MB: '64' });
      const r = await seed(['dem-relief', '--zoom', '10-11', '--bbox', bbox, '--via', server.url, '--manifest', `${tmp.root}/via.manifest.json`], {}, tmp.root);
      assert.equal(r.status, 0, r.stderr + r.stdout);
      const done = summaryOf(r);
      assert.equal(done.event, 'done');
      assert.equal(done.failed, 0);
      assert.equal(done.rendered + done.empty, planned);
      // The server rendered each tile once, for the seeder; a map client now gets them from its L1.
      assert.equal(await metricValue(server.url, 'tilegraph_renders_total', { layer: 'dem-relief' }), planned);
      for (const t of [...tilesOf(10), ...tilesOf(11)]) {
        const a = await request(server.url, tilePath('dem-relief', t));
        assert.equal(a.headers['x-cache'], 'hit-l1', `${t.join('/')}: ${a.status}`);
      }
    } finally {
      await server?.stop();
    }
  });

  test('tried as a hostile server would: a tile body that stalls while the collector runs fails at the time limit', async () => {
    // The limit holds for the body as for the headers, whatever the collector takes meanwhile
    // (src/sources/bytesource.ts fetchWithin: a COG's range read once waited without end).
    const stalling = await hostile((res) => {
      res.writeHead(200, { 'Content-Type': 'image/png' });
      res.write(Buffer.alloc(100));
    });
    const gc = forcedGc();
    const collecting = setInterval(gc, 20);
    try {
      const produce = viaProducer(stalling.url, { name: 'dem-relief' }, 'png', 300);
      const late = new Promise<string>((resolve) => setTimeout(() => resolve('no answer 3 s after its 300 ms limit'), 3000).unref());
      const outcome = await Promise.race([
        produce({ z: 10, x: 0, y: 0 }).then(
          () => 'the tile was taken',
          (err: Error) => `${err.name}: ${err.message}`,
        ),
        late,
      ]);
      assert.equal(outcome, 'TimeoutError: timed out after 300 ms');
    } finally {
      clearInterval(collecting);
      await stalling.close();
    }
  });

  test('a tile body past the bound is refused as it arrives, and the run fails with the reason', async () => {
    const endless = await hostile((res) => {
      res.writeHead(200, { 'Content-Type': 'image/png' });
      sendMiBs(res, 4 * MAX_VIA_TILE_BYTES);
    });
    try {
      const r = await seed(
        [
          'dem-relief',
          '--zoom',
          '10',
          '--bbox',
          bbox,
          '--via',
          endless.url,
          '--retries',
          '0',
          '--concurrency',
          '4',
          '--manifest',
          `${tmp.root}/endless.manifest.json`,
        ],
        {},
        tmp.root,
      );
      assert.equal(r.status, 1, r.stdout + r.stderr);
      const done = summaryOf(r);
      assert.equal(done.failed, tilesOf(10).length);
      for (const error of failuresOf(r)) assert.match(error, new RegExp(`answered more than ${MAX_VIA_TILE_BYTES} bytes for one tile`));
      // Four tiles at once, each cut off at the bound: never the 4 x 128 MiB they were sent.
      assert.ok(r.peakRss < 4 * MAX_VIA_TILE_BYTES + 200 * 2 ** 20, `peak resident set ${(r.peakRss / 2 ** 20).toFixed(0)} MiB`);
    } finally {
      await endless.close();
    }
  });

  test('an error page without end: the reason quotes its start, and the rest is left unread', async () => {
    const down = await hostile((res) => {
      res.writeHead(503, { 'Content-Type': 'text/html' });
      res.write('<html>upstream is down for maintenance</html>');
      sendMiBs(res, 2 ** 30);
    });
    try {
      const r = await seed(
        ['dem-relief', '--zoom', '10', '--bbox', bbox, '--via', down.url, '--retries', '0', '--manifest', `${tmp.root}/down.manifest.json`],
        {},
        tmp.root,
      );
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.equal(summaryOf(r).failed, tilesOf(10).length);
      for (const error of failuresOf(r)) assert.match(error, /answered 503: <html>upstream is down for maintenance<\/html>/);
      assert.equal(down.requests(), tilesOf(10).length);
      // Each page cut off after its start: never the gigabyte it was sent.
      assert.ok(r.peakRss < 400 * 2 ** 20, `peak resident set ${(r.peakRss / 2 ** 20).toFixed(0)} MiB`);
    } finally {
      await down.close();
    }
  });
});
