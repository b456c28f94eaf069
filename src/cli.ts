#!/usr/bin/env node
import path from 'node:path';
import { loadSettings, SETTINGS, settingsTable } from './config.js';
import type { TileDifference } from './layers/diff.js';
import type { Layer } from './layers/layer.js';
import { seedCommand, SEED_USAGE } from './seed/command.js';
import type { TileId } from './tiles/mercator.js';
import { numberFlag, parseFlags } from './args.js';

const USAGE = `usage:
  tilegraph serve [--port N] [--host ADDR] [--layers-dir DIR] [...]   serve tiles (every setting of the README, as a flag or in the environment)
  tilegraph layers [DIR]                                              validate every layer file of DIR (default LAYERS_DIR); exit 1 if any is refused
  tilegraph diff A.yaml B.yaml [--sample N]                           canonical config diff, then pixel differences over N sample tiles (default 20)
  tilegraph settings                                                  the table of settings, their defaults and meanings (Markdown)
  tilegraph cache purge LAYER [--stale]                               delete the layer's Redis entries (--stale: those of other versions than the current)
  ${SEED_USAGE}
                                                                      prewarm tiles into Redis, a directory or an MBTiles file (README: Seeding)
  tilegraph worker [--concurrency N]                                  take seeding jobs queued with seed --queue (README: Seeding on many machines)
  tilegraph freeze LAYER -o FILE.tar                                  freeze the layer: config, sources' SHA-256, software, sample tiles' SHA-256 (README: Frozen artifacts)
  tilegraph verify FILE.tar                                           re-render a frozen layer's sample and name what differs; exit 1 if an input or a tile does`;

function flagName(env: string): string {
  return env.toLowerCase().replace(/_/g, '-');
}

async function serveCommand(args: string[]): Promise<void> {
  // Flags carry the same names as the environment settings: --port 9000 or --PORT 9000.
  const options = Object.fromEntries(
    SETTINGS.flatMap((s) => [
      [s.env, { type: 'string' as const }],
      [flagName(s.env), { type: 'string' as const }],
    ]),
  );
  const settingOf = new Map(SETTINGS.map((s) => [flagName(s.env), s.env]));
  const { values } = parseFlags({ args, options, allowPositionals: false }, (name) => settingOf.get(name) ?? name);
  const env = { ...process.env };
  for (const s of SETTINGS) {
    const v = values[s.env] ?? values[flagName(s.env)];
    if (typeof v === 'string') env[s.env] = v;
  }
  // Loaded for the command that needs it: a seeding run does not start express and its kin.
  const { serve } = await import('./server/serve.js');
  await serve(loadSettings(env), { signals: true });
}

async function layersCommand(args: string[]): Promise<void> {
  const { positionals } = parseFlags({ args, allowPositionals: true });
  const settings = loadSettings();
  const dir = positionals[0] ? path.resolve(positionals[0]) : settings.layersDir;
  const { loadLayerDir } = await import('./layers/registry.js');
  const { layers, problems } = await loadLayerDir({ layersDir: dir, allowedHosts: settings.allowedHosts });
  for (const l of layers.values()) console.log(`ok       ${l.name}  ${l.hash.slice(0, 12)}  z${l.config.minzoom}-${l.config.maxzoom}  ${l.config.title}`);
  for (const p of problems) console.log(`refused  ${p.error}`);
  console.log(`${layers.size} valid, ${problems.length} refused`);
  if (problems.length) process.exitCode = 1;
}

async function diffCommand(args: string[]): Promise<void> {
  const { positionals, values } = parseFlags({ args, allowPositionals: true, options: { sample: { type: 'string' } } });
  if (positionals.length !== 2) throw new Error('diff takes two layer files');
  const sample = numberFlag('sample', values.sample, 20, 0, 10000);
  const settings = loadSettings();
  const [{ compareRgba, lineDiff, sampleTiles }, { loadLayer }] = await Promise.all([import('./layers/diff.js'), import('./layers/layer.js')]);
  const load = (file: string): Promise<Layer> => {
    const abs = path.resolve(file);
    return loadLayer(abs, { layersDir: path.dirname(abs), allowedHosts: settings.allowedHosts });
  };
  const [a, b] = await Promise.all([load(positionals[0]!), load(positionals[1]!)]);
  console.log(`--- ${positionals[0]}  ${a.hash.slice(0, 12)}`);
  console.log(`+++ ${positionals[1]}  ${b.hash.slice(0, 12)}`);
  if (a.hash === b.hash) console.log('  (canonical configs are identical)');
  else for (const line of lineDiff(JSON.stringify(a.config, null, 2), JSON.stringify(b.config, null, 2))) if (!line.startsWith('  ')) console.log(line);

  const tiles = sampleTiles(a, b, sample);
  if (!tiles.length) return;
  const [{ openRenderer }, { loadSharp }] = await Promise.all([import('./seed/produce.js'), import('./sharp.js')]);
  // The tiles come from the tile service, as the server's do (without a cache).
  const renderer = openRenderer(settings);
  // Compared at the first layer's tile size (a 512 px tile of the other is resized to it).
  const size = a.config.tileSize;
  const sharp = await loadSharp();
  const rgbaOf = async (layer: Layer, t: TileId): Promise<Uint8Array | null> => {
    const { body } = await renderer.producer(layer, 'png')(t);
    if (!body) return null;
    const img = sharp(body).ensureAlpha();
    return new Uint8Array(await (layer.config.tileSize === size ? img : img.resize(size, size)).raw().toBuffer());
  };
  const rows: TileDifference[] = [];
  try {
    for (const t of tiles) {
      const [ra, rb] = await Promise.all([rgbaOf(a, t), rgbaOf(b, t)]);
      rows.push({ tile: `${t.z}/${t.x}/${t.y}`, ...compareRgba(ra, rb, size * size) });
    }
  } finally {
    await renderer.close();
  }
  rows.sort((p, q) => q.mean - p.mean || q.max - p.max);
  console.log(`\n${rows.length} sample tiles, worst first (RGBA difference in levels of 255):`);
  console.log('tile                 mean      max');
  for (const r of rows) console.log(`${r.tile.padEnd(18)} ${r.mean.toFixed(3).padStart(7)}  ${String(r.max).padStart(7)}`);
}

async function cacheCommand(args: string[]): Promise<void> {
  const { positionals, values } = parseFlags({ args, allowPositionals: true, options: { stale: { type: 'boolean' } } });
  const [verb, name] = positionals;
  if (verb !== 'purge' || !name || positionals.length !== 2) throw new Error('usage: tilegraph cache purge LAYER [--stale]');
  const settings = loadSettings();
  if (!settings.redisUrl) throw new Error('cache purge needs REDIS_URL: without Redis there is no shared cache to purge');
  // With --stale, the entries of the layer's current version stay: it is read from its file.
  let keep: string | undefined;
  if (values.stale) {
    const [{ findLayerFile }, { loadLayer }] = await Promise.all([import('./layers/registry.js'), import('./layers/layer.js')]);
    const file = findLayerFile(settings.layersDir, name);
    keep = (await loadLayer(file, { layersDir: settings.layersDir, allowedHosts: settings.allowedHosts })).version;
  }
  const [{ connectForCommand }, { purgeLayer }, { createLogger }] = await Promise.all([
    import('./cache/redis.js'),
    import('./cache/purge.js'),
    import('./log.js'),
  ]);
  const client = await connectForCommand(settings.redisUrl, settings.redisTimeoutMs, createLogger('silent'));
  try {
    const removed = await purgeLayer(client, settings.redisPrefix, name, keep);
    let total = 0;
    for (const [version, n] of removed) {
      console.log(`removed ${n} entr${n === 1 ? 'y' : 'ies'} of ${name} version ${version}`);
      total += n;
    }
    console.log(`${total} removed${keep ? `; version ${keep} (current) kept` : ''}`);
  } finally {
    client.disconnect();
  }
}

/** Whether `args` ask for help (`--help` or `-h`) before any `--` that ends the options. */
function asksHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** The lines of USAGE that describe `command`: its own line and those that continue it. */
function usageOf(command: string): string {
  const lines: string[] = [];
  let ours = false;
  for (const line of USAGE.split('\n').slice(1)) {
    const m = /^ {2}tilegraph (\S+)/.exec(line);
    if (m) ours = m[1] === command;
    if (ours) lines.push(line);
  }
  return `usage:\n${lines.join('\n')}`;
}

/** Each command and what runs it; the heavier ones load their modules when asked for. */
const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  serve: serveCommand,
  layers: layersCommand,
  diff: diffCommand,
  settings: async () => void console.log(settingsTable()),
  cache: cacheCommand,
  seed: seedCommand,
  worker: async (args) => (await import('./seed/worker.js')).workerCommand(args),
  freeze: async (args) => (await import('./freeze/command.js')).freezeCommand(args),
  verify: async (args) => (await import('./freeze/command.js')).verifyCommand(args),
};

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  // Help that was asked for goes to standard output and is a success (README: Command line).
  if (command === 'help' || command === '--help' || command === '-h') return void console.log(USAGE);
  if (command === undefined || !Object.hasOwn(COMMANDS, command)) {
    console.error(USAGE);
    process.exitCode = 2;
    return;
  }
  if (asksHelp(rest)) return void console.log(usageOf(command));
  return COMMANDS[command]!(rest);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`tilegraph: ${(err as Error).message}`);
  process.exit(1);
});
