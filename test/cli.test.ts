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
import { loadSettings } from '../src/config.js';
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

  // Node's timers take at most 2^31 - 1 ms and fire after 1 ms past it, with a warning on stderr:
  // RENDER_TIMEOUT_MS=99999999999999 failed every tile at once ("rendering took longer than
  // 99999999999999 ms"), SOURCE_RECHECK_S=9999999999 rechecked the sources without pause (a
  // whole core, idle), REDIS_TIMEOUT_MS=99999999999 timed out every Redis command.
  it('a duration longer than a timer holds is refused before it starts; the longest one a timer holds works', async () => {
    for (const [name, value] of [
      ['RENDER_TIMEOUT_MS', '99999999999999'],
      ['SOURCE_RECHECK_S', '9999999999'],
    ]) {
      const r = runCli(['serve', '--port', '0', '--layers-dir', dir], { [name]: value });
      assert.equal(r.status, 1, `${name}=${value}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^tilegraph: ${name}=${value}: at most \\d+ \\(`));
      assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning/);
    }
    const server = await startServerProcess(dir, { RENDER_TIMEOUT_MS: String(2 ** 31 - 1), SOURCE_RECHECK_S: String(Math.floor((2 ** 31 - 1) / 1000)) });
    let stderr = '';
    server.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      // The directory's one layer (an earlier test renames it).
      const name = (await layerNames(server.url))[0]!;
      const tile = await fetch(`${server.url}/tiles/${name}/10/177/332.png`);
      assert.equal(tile.status, 200, await tile.clone().text());
      assert.equal(tile.headers.get('content-type'), 'image/png');
    } finally {
      await server.stop();
    }
    assert.doesNotMatch(stderr, /TimeoutOverflowWarning/);
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

describe('numbers as an operator types them', () => {
  // Number() read them: PORT=' ' (a stray space in an env file) listened on a port the kernel
  // chose, PORT=0x1F90 on 8080, and seed --concurrency 2.5 or --retries 1.5 ran as given.
  it('settings take whole numbers in decimal digits; a blank value is the default', () => {
    assert.equal(loadSettings({ PORT: ' ' }).port, 8080);
    assert.equal(loadSettings({ PORT: ' 9000 ' }).port, 9000);
    assert.equal(loadSettings({ HOST: '  ' }).host, '127.0.0.1');
    for (const value of ['0x1F90', '1e3', '+80', '8080.0', '80 80', '-1', '１２３'])
      assert.throws(
        () => loadSettings({ PORT: value }),
        new RegExp(`^Error: PORT=${value.replace(/[+.]/g, '\\$&')}: expected a whole number in decimal digits`),
        value,
      );
    assert.throws(() => loadSettings({ PORT: '65536' }), /^Error: PORT=65536: at most 65535$/);
    // pino's levels, in any case; another is named here, not by pino's own message, in every command.
    assert.equal(loadSettings({ LOG_LEVEL: 'WARN' }).logLevel, 'warn');
    assert.throws(() => loadSettings({ LOG_LEVEL: 'verbose' }), /^Error: LOG_LEVEL=verbose: expected one of fatal, error, warn, info, debug, trace, silent$/);
  });

  it('every duration setting takes at most what a timer holds, 2^31 - 1 ms', () => {
    const limits: [string, number][] = [
      ['RENDER_TIMEOUT_MS', 2 ** 31 - 1],
      ['REDIS_TIMEOUT_MS', 2 ** 31 - 1],
      ['SEED_LOCK_MS', 2 ** 31 - 1],
      ['ADHOC_RENDER_MS', 2 ** 31 - 1],
      ['SOURCE_RECHECK_S', Math.floor((2 ** 31 - 1) / 1000)],
      ['REQUEST_TIMEOUT_S', Math.floor((2 ** 31 - 1) / 1000)],
    ];
    for (const [name, max] of limits) {
      assert.doesNotThrow(() => loadSettings({ [name]: String(max) }), name);
      assert.throws(() => loadSettings({ [name]: String(max + 1) }), new RegExp(`^Error: ${name}=${max + 1}: at most ${max} \\(`), name);
    }
  });

  it("the commands' number flags take whole numbers in decimal digits, and refuse the rest before doing anything", () => {
    for (const [args, message] of [
      [['seed', 'dem-relief', '--zoom', '6', '--concurrency', '2.5', '--dry-run'], /^tilegraph: --concurrency 2\.5: expected a whole number from 1 to 256\n$/],
      [['seed', 'dem-relief', '--zoom', '6', '--concurrency', '0x10', '--dry-run'], /^tilegraph: --concurrency 0x10: expected a whole number from 1 to 256\n$/],
      [['seed', 'dem-relief', '--zoom', '6', '--retries', '1.5', '--dry-run'], /^tilegraph: --retries 1\.5: expected a whole number from 0 to 10\n$/],
      [['seed', 'dem-relief', '--zoom', '6', '--metatile', '1e0', '--dry-run'], /^tilegraph: --metatile 1e0: expected a whole number from 1 to 8\n$/],
      [['seed', 'dem-relief', '--zoom', '6', '--max-failures', '0x10', '--dry-run'], /^tilegraph: --max-failures 0x10: expected a number from 0 to 100\n$/],
      [['worker', '--concurrency', '1e1'], /^tilegraph: --concurrency 1e1: expected a whole number from 1 to 256\n$/],
      [['diff', 'a.yaml', 'b.yaml', '--sample', ' '], /^tilegraph: --sample {2}: expected a whole number from 0 to 10000\n$/],
    ] as const) {
      const r = runCli(args);
      assert.equal(r.status, 1, args.join(' '));
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
    // A percentage may have a fraction.
    const half = runCli(['seed', 'dem-relief', '--zoom', '6', '--max-failures', '12.5', '--dry-run']);
    assert.equal(half.status, 0, half.stderr);
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
