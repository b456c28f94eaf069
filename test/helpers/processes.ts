/**
 * Real processes for integration tests: `tilegraph serve` as a child process, a
 * `redis-server` and an `nginx` of Debian's on ephemeral ports, each of this test run alone.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ROOT } from './root.js';

const CLI = path.join(ROOT, 'dist/src/cli.js');

/** A port nothing listens on now (the kernel's choice, released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  /** SIGTERM (drains, exits 0), or the signal given; resolves when the process has gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * `tilegraph serve --port 0` as a child process, with `env` added to this process's environment.
 * By default the repository's own build; `opts.cwd` and `opts.cli` (relative to it) run
 * another tree, such as the image's file set.
 */
export function startServerProcess(layersDir: string, env: Record<string, string> = {}, opts: { cwd?: string; cli?: string } = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [opts.cli ?? CLI, 'serve', '--port', '0', '--layers-dir', layersDir], {
    cwd: opts.cwd,
    env: { ...process.env, LOG_LEVEL: 'info', WORKERS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited(child);
  };
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        // Keep draining the pipes so that the child never blocks on a full one.
        child.stdout!.removeAllListeners('data').resume();
        resolve({ child, url: m[1]!, stop });
      }
    });
    child.stderr!.resume();
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${out}`));
    });
  });
}

export interface RedisProcess {
  port: number;
  url: string;
  /** Kills it (SIGKILL: no goodbye to its clients) and waits until it has gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: it keeps nothing on disk). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Debian's `redis-server` on a free port of 127.0.0.1, keeping nothing on disk. */
export async function startRedis(): Promise<RedisProcess> {
  const port = await freePort();
  let child: ChildProcess;
  const launch = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    while (!(await answersPing(port))) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server did not start on port ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      child.kill('SIGKILL');
      await exited(child);
    },
    restart: launch,
    async stop() {
      child.kill('SIGTERM');
      await exited(child);
    },
  };
}

/** A raw PING, so that readiness does not depend on the client library under test. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setTimeout(500);
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => {
      sock.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    sock.once('error', () => resolve(false));
    sock.once('timeout', () => {
      sock.destroy();
      resolve(false);
    });
  });
}

export interface NginxProcess {
  url: string;
  /** The configuration it runs: the repo's nginx.conf with port, upstream and paths replaced. */
  conf: string;
  stop(): Promise<void>;
}

/**
 * Debian's nginx running the repo's `nginx.conf`, with only what differs on a test machine
 * replaced: the port it listens on, the upstream servers, and where it keeps its cache, pid,
 * logs and temporary files.
 */
export async function startNginx(dir: string, upstreams: readonly string[]): Promise<NginxProcess> {
  const port = await freePort();
  mkdirSync(path.join(dir, 'logs'), { recursive: true });
  let conf = readFileSync(path.join(ROOT, 'nginx.conf'), 'utf8');
  const swap = (re: RegExp, to: string) => {
    if (!re.test(conf)) throw new Error(`nginx.conf has no ${re}`);
    conf = conf.replace(re, to);
  };
  swap(/^pid .*;$/m, `pid ${dir}/nginx.pid;`);
  swap(/^error_log .*;$/m, `error_log ${dir}/logs/error.log warn;`);
  swap(/^(\s*)access_log \S+/m, `$1access_log ${dir}/logs/access.log`);
  swap(/proxy_cache_path \S+/, `proxy_cache_path ${dir}/cache`);
  swap(/^(\s*)listen \d+;$/m, `$1listen 127.0.0.1:${port};`);
  swap(/(upstream tilegraph \{\n)((?:\s*server .*\n)+)/, `$1${upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=1s;\n`).join('')}`);
  // Root may run the workers as root here; the temporary files go with the rest.
  conf = conf.replace(/^http \{$/m, `user root;\nhttp {\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;`);
  const file = path.join(dir, 'nginx.conf');
  writeFileSync(file, conf);
  const test = spawnSync('nginx', ['-t', '-p', dir, '-c', file], { encoding: 'utf8' });
  if (test.status !== 0) throw new Error(`nginx -t refused the configuration:\n${test.stderr}`);
  const child = spawn('nginx', ['-p', dir, '-c', file, '-g', 'daemon off;'], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (!(await listening(port))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`nginx did not start: ${readFileSync(path.join(dir, 'logs/error.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    conf,
    async stop() {
      // SIGQUIT: graceful shutdown.
      child.kill('SIGQUIT');
      await exited(child);
    },
  };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
