#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { loadSettings, SETTINGS } from './config.js';
import { serve } from './server/serve.js';

const USAGE = `usage: tilegraph serve [--PORT n] [--HOST addr] [--LAYERS_DIR dir] ... (every setting of the README, as a flag or in the environment)`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'serve') {
    // Flags carry the same names as the environment settings: --port 9000 or --PORT 9000.
    const options = Object.fromEntries(SETTINGS.flatMap((s) => [
      [s.env, { type: 'string' as const }],
      [s.env.toLowerCase().replace(/_/g, '-'), { type: 'string' as const }],
    ]));
    const { values } = parseArgs({ args: rest, options, allowPositionals: false });
    const env = { ...process.env };
    for (const s of SETTINGS) {
      const v = values[s.env] ?? values[s.env.toLowerCase().replace(/_/g, '-')];
      if (typeof v === 'string') env[s.env] = v;
    }
    await serve(loadSettings(env), { signals: true });
    return;
  }
  console.error(USAGE);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`tilegraph: ${(err as Error).message}`);
  process.exit(1);
});
