/**
 * The README stays true: its settings table is the configuration module's list, and every
 * operator of the registry is documented.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../src/config.js';
import { OPERATOR_NAMES } from '../src/ops/registry.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

test('the README settings table matches src/config.ts', () => {
  const table = readme.split('<!-- settings:start -->')[1]?.split('<!-- settings:end -->')[0];
  assert.ok(table, 'README has a settings table between the markers');
  const rows = table
    .split('\n')
    .filter((l) => /^\| `[A-Z0-9_]+` \|/.test(l))
    .map((l) =>
      l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  assert.deepEqual(
    rows,
    SETTINGS.map((s) => [`\`${s.env}\``, s.default, s.description]),
  );
});

test('every registered operator is documented in the README', () => {
  for (const op of OPERATOR_NAMES) assert.match(readme, new RegExp(`\\| \`${op}\` \\|`), `README documents '${op}'`);
});
