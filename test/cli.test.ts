/**
 * `tilegraph serve` as an operator runs it: a child process that reloads its layer files on
 * SIGHUP and, on SIGTERM, finishes what is in flight and exits 0.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './helpers/layers.js';
import { startServerProcess } from './helpers/processes.js';
import { ROOT } from './helpers/root.js';

async function layerNames(url: string): Promise<string[]> {
  const body = (await (await fetch(`${url}/layers`)).json()) as { layers: { name: string }[] };
  return body.layers.map((l) => l.name);
}

describe('tilegraph serve as a process', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tilegraph-cli-'));
    mkdirSync(path.join(dir, 'data'));
    copyFileSync(path.join(ROOT, 'layers/data/srtm_jasper_ab_100m.tif'), path.join(dir, 'data/srtm_jasper_ab_100m.tif'));
    copyFileSync(path.join(ROOT, 'layers/dem-relief.yaml'), path.join(dir, 'dem-relief.yaml'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('SIGHUP reloads the layer files: a new one serves, a removed one is gone', async () => {
    const { child, url } = await startServerProcess(dir);
    try {
      assert.deepEqual(await layerNames(url), ['dem-relief']);
      const relief = readFileSync(path.join(dir, 'dem-relief.yaml'), 'utf8');
      writeFileSync(path.join(dir, 'dem-grey.yaml'), relief.replace(/- colormap:[\s\S]*$/, '- rescale: { from: [950, 2600] }\n'));
      rmSync(path.join(dir, 'dem-relief.yaml'));
      child.kill('SIGHUP');
      let names: string[] = [];
      for (let i = 0; i < 100 && names.join() !== 'dem-grey'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        names = await layerNames(url);
      }
      assert.deepEqual(names, ['dem-grey']);
      const tile = await fetch(`${url}/tiles/dem-grey/10/177/332.png`);
      assert.equal(tile.status, 200);
      assert.equal((await fetch(`${url}/tiles/dem-relief/10/177/332.png`)).status, 404);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('SIGTERM finishes the request in flight and exits 0', async () => {
    const { child, url } = await startServerProcess(dir);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // An uncached tile is in flight when the signal arrives (its request sent and parsed, its
    // first render still building the layer's graph); it must still be answered.
    const name = (await layerNames(url))[0]!;
    const answer = new Promise<{ status: number; bytes: number }>((resolve, reject) => {
      const req = http.get(`${url}/tiles/${name}/11/354/664@2x.png`, { agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode!, bytes }));
      });
      req.on('error', reject);
      req.on('finish', () => setTimeout(() => child.kill('SIGTERM'), 30));
    });
    const res = await answer;
    assert.equal(res.status, 200);
    assert.ok(res.bytes > 1000);
    assert.equal(await exited, 0);
  });

  it('SIGTERM is not held up by connections with no request in flight: idle keep-alive, or never used (a browser’s preconnect)', async () => {
    const { child, url } = await startServerProcess(dir);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const u = new URL(url);
    const open = (first?: string) =>
      new Promise<net.Socket>((resolve, reject) => {
        const sock = net.connect(Number(u.port), u.hostname, () => {
          if (!first) return resolve(sock);
          sock.write(first);
          sock.once('data', () => resolve(sock));
        });
        sock.on('error', reject);
      });
    const sockets = [await open(), await open(), await open('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')];
    const t0 = performance.now();
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    const ms = performance.now() - t0;
    // An idle connection is kept 65 s (longer than nginx keeps one); a drain does not wait for it.
    assert.ok(ms < 10_000, `the drain waited ${ms.toFixed(0)} ms for connections with nothing in flight`);
    for (const s of sockets) s.destroy();
  });
});

describe('a flag given twice', () => {
  // node:util's parser keeps the last value without a word: `--zoom 0-1 --zoom 3` seeded zoom 3 alone.
  it('is refused by every command, naming both, before anything is done', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tilegraph-twice-'));
    try {
      const a = path.join(dir, 'a'),
        b = path.join(dir, 'b');
      const seed = runCli(['seed', 'dem-relief', '--zoom', '0-1', '--zoom', '3', '--to', `dir:${a}`]);
      assert.equal(seed.status, 1);
      assert.equal(seed.stderr.trim(), 'tilegraph: --zoom is given twice (--zoom 0-1, then --zoom 3): give it once');
      const to = runCli(['seed', 'dem-relief', '--zoom', '0', '--to', `dir:${a}`, '--to', `dir:${b}`]);
      assert.match(to.stderr, /^tilegraph: --to is given twice \(--to dir:.*\/a, then --to dir:.*\/b\): give it once\n$/);
      assert.deepEqual(readdirSync(dir), [], 'nothing seeded anywhere');
      // A negative number joined to its flag is still the flag given twice.
      const bbox = runCli(['seed', 'dem-relief', '--zoom', '5', '--bbox', '-118,52,-117,53', '--bbox', '-117,53,-116,54', '--dry-run']);
      assert.match(bbox.stderr, /^tilegraph: --bbox is given twice \(--bbox -118,52,-117,53, then --bbox -117,53,-116,54\)/);
      assert.equal(bbox.stdout, '');
      // One setting under its two names is the same setting given twice.
      const serve = runCli(['serve', '--port', '0', '--PORT', '1']);
      assert.equal(serve.status, 1);
      assert.match(serve.stderr, /^tilegraph: --PORT is given twice \(--port 0, then --PORT 1\): give it once/);
      const freeze = runCli(['freeze', 'dem-relief', '-o', a, '--output', b]);
      assert.match(freeze.stderr, /^tilegraph: --output is given twice \(-o .*\/a, then --output .*\/b\)/);
      for (const [command, flag] of [
        [['worker', '--concurrency', '1', '--concurrency', '2'], '--concurrency'],
        [['cache', 'purge', 'dem-relief', '--stale', '--stale'], '--stale'],
        [['diff', 'a.yaml', 'b.yaml', '--sample', '1', '--sample', '2'], '--sample'],
      ] as const) {
        const r = runCli(command);
        assert.equal(r.status, 1, command.join(' '));
        assert.match(r.stderr, new RegExp(`^tilegraph: ${flag} is given twice`), command.join(' '));
      }
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('asking the CLI for help', () => {
  it('--help, -h and help print the usage to standard output and succeed; no command is an error', () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = runCli(args);
      assert.equal(r.status, 0, args.join(' '));
      assert.equal(r.stderr, '');
      for (const command of ['serve', 'layers', 'diff', 'settings', 'cache purge', 'seed', 'worker', 'freeze', 'verify'])
        assert.match(r.stdout, new RegExp(`^  tilegraph ${command} `, 'm'));
    }
    const none = runCli([]);
    assert.equal(none.status, 2);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /^usage:\n {2}tilegraph serve /);
  });

  it("a command's --help prints that command's usage, even among other options, and does nothing else", () => {
    const seed = runCli(['seed', 'no-such-layer', '--zoom', '3-4', '--help']);
    assert.equal(seed.status, 0, seed.stderr);
    assert.equal(seed.stderr, '');
    const lines = seed.stdout.trimEnd().split('\n');
    assert.equal(lines[0], 'usage:');
    assert.match(lines[1]!, /^ {2}tilegraph seed LAYER --zoom /);
    assert.ok(lines.some((l) => /tilegraph seed --status RUN/.test(l)));
    assert.ok(lines.some((l) => /prewarm tiles/.test(l)));
    assert.ok(!lines.some((l) => /tilegraph (serve|worker|freeze) /.test(l)));
    for (const [command, first] of [
      [['serve', '--port', '1'], 'serve'],
      [['layers'], 'layers'],
      [['diff', 'a.yaml'], 'diff'],
      [['cache', 'purge'], 'cache purge'],
      [['worker'], 'worker'],
      [['freeze', 'x', '-o', 'y.tar'], 'freeze'],
      [['verify'], 'verify'],
    ] as const) {
      const r = runCli([...command, '-h']);
      assert.equal(r.status, 0, `${command.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout.trimEnd().split('\n').length, 2, r.stdout);
      assert.match(r.stdout, new RegExp(`^usage:\n {2}tilegraph ${first} `));
    }
    // After `--`, --help is an argument like any other: here a file the diff does not find.
    const diff = runCli(['diff', '--', '--help', 'b.yaml']);
    assert.equal(diff.status, 1);
    assert.match(diff.stderr, /^tilegraph: /);
  });
});
