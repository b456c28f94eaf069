/**
 * The import directions of ARCHITECTURE.md hold: every relative import of src/ and workers/
 * goes to the module's own folder or to a folder that its row of the table names.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/root.js';

/** The folder a module belongs to: `src/ops/` for src/ops/builtin/read.ts, `src/cli.ts` for itself. */
function unitOf(rel: string, base: ReadonlySet<string>): string {
  const parts = rel.split('/');
  if (parts[0] === 'workers') return 'workers/';
  if (parts.length === 2) return base.has(rel) ? 'base' : rel;
  return `${parts[0]}/${parts[1]}/`;
}

function rules(): { allowed: Map<string, Set<string>>; base: Set<string> } {
  const doc = readFileSync(path.join(ROOT, 'ARCHITECTURE.md'), 'utf8');
  const table = doc.split('<!-- imports:start -->')[1]?.split('<!-- imports:end -->')[0];
  assert.ok(table, 'ARCHITECTURE.md has the import table between its markers');
  const rows = table
    .split('\n')
    .filter((l) => l.startsWith('|') && !l.startsWith('| folder') && !l.startsWith('| ---'))
    .map((l) =>
      l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  const names = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  const base = new Set(names(rows[0]![0]!));
  const allowed = new Map<string, Set<string>>();
  const everything = rows.map((r) => (r === rows[0] ? 'base' : names(r[0]!)[0]!));
  for (const [folder, , may] of rows) {
    const unit = folder!.startsWith('base') ? 'base' : names(folder!)[0]!;
    const targets = may!.startsWith('everything') ? everything : [...names(may!), ...(/\bbase\b/.test(may!) ? ['base'] : [])];
    allowed.set(unit, new Set(targets));
  }
  return { allowed, base };
}

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')));
}

test('no module imports from a layer above it (ARCHITECTURE.md)', () => {
  const { allowed, base } = rules();
  const files = [...sources('src'), ...sources('workers')];
  assert.ok(files.length > 50, `found ${files.length} modules`);
  const wrong: string[] = [];
  for (const file of files) {
    const from = unitOf(file, base);
    const may = allowed.get(from);
    assert.ok(may, `${file}: its folder ${from} has no row in ARCHITECTURE.md`);
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/^(?:import|export)[^'"]*?from\s+'(\.[^']+)'/gm)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!)).replace(/\.js$/, '.ts');
      const to = unitOf(target, base);
      if (to !== from && !may.has(to)) wrong.push(`${file} imports ${m[1]} (${to}), which ${from} may not`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('the rule catches an upward import', () => {
  const { allowed, base } = rules();
  // src/tiles/tilejson.ts once took its layer type from the loader above it.
  assert.equal(allowed.get(unitOf('src/tiles/tilejson.ts', base))!.has(unitOf('src/layers/layer.ts', base)), false);
  assert.equal(allowed.get(unitOf('src/ops/builtin/read.ts', base))!.has(unitOf('src/render/renderer.ts', base)), false);
  assert.equal(allowed.get(unitOf('workers/render.ts', base))!.has(unitOf('src/layers/layer.ts', base)), false);
  assert.equal(allowed.get(unitOf('src/crs/epsg.ts', base))!.has(unitOf('src/sources/cog.ts', base)), false);
});
