/**
 * `tilegraph seed LAYER ...`: prewarm a pyramid into the shared cache, a directory or an
 * MBTiles file (or through a running server with --via), with the same render pool and tile
 * service as the server, and write a manifest of what the run made (src/seed/seeding.ts).
 *
 * This module reads the command line and loads little: the CLI imports it for its usage.
 */
import { loadSettings } from '../config.js';
import { parseFlags } from '../args.js';

const OPTIONS = {
  zoom: { type: 'string' },
  bbox: { type: 'string' },
  geojson: { type: 'string' },
  tiles: { type: 'string' },
  to: { type: 'string' },
  via: { type: 'string' },
  format: { type: 'string' },
  concurrency: { type: 'string' },
  metatile: { type: 'string' },
  shard: { type: 'string' },
  resume: { type: 'boolean' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  retries: { type: 'string' },
  'max-failures': { type: 'string' },
  manifest: { type: 'string' },
  queue: { type: 'boolean' },
  status: { type: 'string' },
  since: { type: 'string' },
  changed: { type: 'string' },
} as const;

export const SEED_USAGE = `tilegraph seed LAYER --zoom 10-14 [--bbox W,S,E,N | --geojson FILE | --tiles FILE]
               [--to cache | --to dir:PATH | --to mbtiles:PATH] [--via URL] [--format png|webp]
               [--concurrency N] [--metatile N] [--shard I/N] [--resume] [--force] [--dry-run]
               [--retries N] [--max-failures PCT] [--manifest FILE] [--queue]
       tilegraph seed LAYER --since MANIFEST [--changed AREAS.geojson] [--to TARGET] [--queue] [...]
       tilegraph seed --status RUN`;

/**
 * `--bbox -117.6,53.1,-117.4,53.3` as people write it: node's parser takes a value that starts
 * with '-' for another option, so a negative number is joined to its flag first.
 */
function joinNegativeValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = /^--([a-z-]+)$/.exec(args[i]!)?.[1];
    const next = args[i + 1];
    if (name && OPTIONS[name as keyof typeof OPTIONS]?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(args[i]!);
  }
  return out;
}

export type SeedValues = ReturnType<typeof parseFlags<{ args: string[]; allowPositionals: true; options: typeof OPTIONS }>>['values'];

export async function seedCommand(args: string[]): Promise<void> {
  const { positionals, values } = parseFlags({ args: joinNegativeValues(args), allowPositionals: true, options: OPTIONS });
  const settings = loadSettings();
  if (values.status !== undefined) {
    if (positionals.length) throw new Error('--status RUN takes no layer: the run names it');
    return (await import('./queued.js')).statusCommand(settings, values.status);
  }
  if (positionals.length !== 1) throw new Error(`usage: ${SEED_USAGE}`);
  return (await import('./seeding.js')).seedCommandLayer(values, settings, positionals[0]!);
}
