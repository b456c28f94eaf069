/**
 * The README stays true: its settings table is the configuration module's list, and every
 * operator of the registry is documented.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadSettings, SETTINGS, settingsTable } from '../src/config.js';
import { OPERATOR_NAMES } from '../src/ops/registry.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

test('the README settings table is the one src/config.ts declares (`tilegraph settings`)', () => {
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
  assert.equal(table.trim(), settingsTable());
});

test('settings come from the environment with their declared defaults, and bad values are refused by name', () => {
  const s = loadSettings({});
  assert.equal(s.port, 8080);
  assert.equal(s.cacheL1Mb, 256);
  assert.deepEqual(s.allowedHosts, []);
  const t = loadSettings({ PORT: '9000', CACHE_L1_MB: '0', ALLOWED_HOSTS: ' A.example:8080, b.example ', BLOCK_CACHE_MB: '' });
  assert.deepEqual([t.port, t.cacheL1Mb, t.allowedHosts, t.blockCacheMb], [9000, 0, ['a.example:8080', 'b.example'], 256]);
  assert.throws(() => loadSettings({ WORKERS: '0' }), /^Error: WORKERS=0: /);
  assert.throws(() => loadSettings({ PORT: 'eighty' }), /^Error: PORT=eighty: /);
  assert.throws(() => loadSettings({ RENDER_TIMEOUT_MS: '1.5' }), /^Error: RENDER_TIMEOUT_MS=1.5: /);
});

test('every registered operator is documented in the README', () => {
  for (const op of OPERATOR_NAMES) assert.match(readme, new RegExp(`\\| \`${op}\` \\|`), `README documents '${op}'`);
});
