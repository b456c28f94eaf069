/**
 * Layer files: the canonical config and its hash, the layer version, the sandboxed loader
 * against a corpus of hostile files (test/fixtures/hostile/, plus a few made here that cannot
 * be committed: links, a device, files too large to keep), and the `tilegraph layers` and
 * `tilegraph diff` commands run as child processes.
 *
 * Every refusal must name the file, the node (or key, or source) and the reason, and must
 * leave the good layers of the same directory loading and serving.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../src/config.js';
import { LayerError, loadLayer, type Layer } from '../src/layers/layer.js';
import { buildGraph, MAX_NODES } from '../src/ops/build.js';
import { loadLayerDir } from '../src/layers/registry.js';
import { GraphError, topologicalOrder } from '../src/ops/operator.js';
import { serve } from '../src/server/serve.js';
import { Cog } from '../src/sources/cog.js';
import { band, HOSTILE_DIR, runCli, SHIPPED_DATA, SHIPPED_LAYERS, tempDir, toolsMissing, writeMercatorCog, type Tile } from './helpers/layers.js';

const skip = toolsMissing(['gdal_translate']);
const ALLOWED_HOSTS = ['tiles.example.org'];
const TILE: Tile = { z: 12, x: 1000, y: 1500 };
const NODATA = -9999;
const MAX_FILE_BYTES = 256 * 1024;

const tmp = tempDir('layers');
/** A layers directory for the hash and version tests. */
const HASH_DIR = path.join(tmp.dir, 'hash');
/** A layers directory holding the good layers and the whole hostile corpus. */
const CORPUS_DIR = path.join(tmp.dir, 'corpus');
/** Outside both: what links point at. */
const OUTSIDE_DIR = path.join(tmp.dir, 'outside');

/** Fills a layers directory's data/: a Float32 grid over TILE (grid.tif, and an identical grid2.tif) and a copy of the paletted NLCD sample (lc.tif). */
function makeData(dir: string): void {
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  writeMercatorCog(path.join(dir, 'data/grid.tif'), TILE, 256, [band(256, (i, j) => (j >= 200 ? NODATA : i + j))], { nodata: NODATA });
  copyFileSync(path.join(dir, 'data/grid.tif'), path.join(dir, 'data/grid2.tif'));
  copyFileSync(path.join(SHIPPED_DATA, 'nlcd2011_zion.tif'), path.join(dir, 'data/lc.tif'));
}

const GOOD: Record<string, string> = {
  'good-grid.yaml': `title: Grid
sources: { grid: ./data/grid.tif }
minzoom: 10
maxzoom: 14
pipeline:
  - read: { source: grid }
  - rescale: { from: [0, 500] }
  - colormap: { name: viridis }
`,
  'good-landcover.yaml': `title: Land cover
sources: { lc: ./data/lc.tif }
pipeline:
  - read: { source: lc }
  - colormap: { name: source }
`,
  'good-graph.yaml': `title: Graph
sources: { grid: ./data/grid.tif }
pipeline:
  nodes:
    a: { op: read, source: grid }
    b: { op: expression, in: [a], expr: "b1 / 2 + 10" }
    nd: { op: normalized_difference, in: [a, b] }
    rgba: { op: colormap, in: [nd], name: rdylgn, range: [-1, 1] }
  output: rgba
`,
};

// ---------------------------------------------------------------------------------------
// Files of the corpus that are made here

/** A graph of `n` nodes written as compactly as YAML allows: a read, then a chain of selects. */
function chainGraph(n: number): string {
  const lines = ['sources: { grid: ./data/grid.tif }', 'pipeline:', '  output: n' + (n - 1), '  nodes:', '    n0: {op: read, source: grid}'];
  for (let k = 1; k < n; k++) lines.push(`    n${k}: {op: select, in: [n${k - 1}], bands: [1]}`);
  return lines.join('\n') + '\n';
}

function makeGenerated(dir: string): void {
  // Valid YAML, padded past the size limit with a comment.
  writeFileSync(path.join(dir, 'huge.yaml'), GOOD['good-grid.yaml']! + '#' + 'x'.repeat(MAX_FILE_BYTES) + '\n');
  writeFileSync(path.join(dir, 'nodes-20000.yaml'), chainGraph(20_000));
  writeFileSync(path.join(dir, 'nodes-400.yaml'), chainGraph(400));
  writeFileSync(
    path.join(dir, 'steps-400.yaml'),
    'sources: { grid: ./data/grid.tif }\npipeline:\n  - read: { source: grid }\n' + '  - select: { bands: [1] }\n'.repeat(400),
  );
  writeFileSync(path.join(dir, 'deep-nesting.yaml'), 'description: ' + '['.repeat(100_000) + ']'.repeat(100_000) + '\n');
  // Block collections nested on one line ('- - - x') and by indentation.
  writeFileSync(path.join(dir, 'deep-block-sequence.yaml'), 'description:\n  ' + '- '.repeat(20_000) + 'x\n');
  writeFileSync(path.join(dir, 'deep-indent.yaml'), Array.from({ length: 300 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' x\n');
  symlinkSync('/dev/zero', path.join(dir, 'device.yaml'));
  symlinkSync(path.join(dir, 'no-such-target.yaml'), path.join(dir, 'dangling.yaml'));
  // A FIFO inside the directory, behind a link (a bare FIFO is not even listed): reading it would block.
  execFileSync('mkfifo', [path.join(dir, 'data/pipe')]);
  symlinkSync(path.join(dir, 'data/pipe'), path.join(dir, 'fifo-link.yaml'));
  writeFileSync(path.join(dir, 'data/corrupt.tif'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
  // Links out of the directory, to a real COG: only the sandbox stands in the way.
  mkdirSync(OUTSIDE_DIR, { recursive: true });
  // A layer file linked to some other YAML file, whose keys must not show up in /layers.
  writeFileSync(path.join(OUTSIDE_DIR, 'secrets.yaml'), 'aws_secret_access_key: hunter2\ndb_password: hunter3\n');
  symlinkSync(path.join(OUTSIDE_DIR, 'secrets.yaml'), path.join(dir, 'link-out.yaml'));
  copyFileSync(path.join(SHIPPED_DATA, 'nlcd2011_zion.tif'), path.join(OUTSIDE_DIR, 'nlcd2011_zion.tif'));
  symlinkSync(path.join(OUTSIDE_DIR, 'nlcd2011_zion.tif'), path.join(dir, 'data/outside.tif'));
  symlinkSync(OUTSIDE_DIR, path.join(dir, 'linked'));
}

interface Expect {
  /** The node, key or source the message must name (absent for whole-file problems). */
  where?: string;
  reason: RegExp;
}

const outside = /resolves outside the layers directory/;
const notPlain = (key: string) => new RegExp(`'${key}' is not allowed as a name or key`);
const notMapping = /a layer file is a YAML mapping/;

/** Every file of the hostile corpus (committed and generated), with what its refusal must say. */
const EXPECT: Record<string, Expect> = {
  // Sources: paths, links, URL schemes and hosts.
  'traversal-etc-passwd.yaml': { where: "source 'grid'", reason: outside },
  'traversal-via-data.yaml': { where: "source 'grid'", reason: outside },
  'absolute-path.yaml': { where: "source 'grid'", reason: /'\/etc\/passwd' is an absolute path/ },
  'vsicurl-path.yaml': { where: "source 'grid'", reason: /is an absolute path/ },
  'symlink-out.yaml': { where: "source 'grid'", reason: outside },
  'symlink-dir-out.yaml': { where: "source 'lc'", reason: outside },
  'scheme-file.yaml': { where: "source 'grid'", reason: /'file:' sources are not allowed/ },
  'scheme-ftp.yaml': { where: "source 'grid'", reason: /'ftp:' sources are not allowed/ },
  'scheme-s3.yaml': { where: "source 'grid'", reason: /'s3:' sources are not allowed/ },
  'scheme-javascript.yaml': { where: "source 'grid'", reason: /'javascript:' sources are not allowed/ },
  'scheme-data.yaml': { where: "source 'grid'", reason: /'data:' sources are not allowed/ },
  'http-host.yaml': { where: "source 'grid'", reason: /host 'evil\.example\.com' is not allowed/ },
  'http-userinfo.yaml': { where: "source 'grid'", reason: /host 'evil\.example\.com' is not allowed/ },
  'http-suffix.yaml': { where: "source 'grid'", reason: /host 'tiles\.example\.org\.evil\.example\.com' is not allowed/ },
  'missing-file.yaml': { where: "source 'grid'", reason: /'\.\/data\/no-such-file\.tif' does not exist/ },
  'source-dir.yaml': { where: "source 'grid'", reason: /'\.\/data' is not a regular file/ },
  'source-fifo.yaml': { where: "source 'grid'", reason: /'\.\/data\/pipe' is not a regular file/ },
  'source-corrupt.yaml': { where: "source 'grid'", reason: /\.\/data\/corrupt\.tif: not a TIFF file/ },
  // Operators: unknown, `tap`, class paths, YAML tags.
  'unknown-op.yaml': { where: "node 'step 2 (frobnicate)'", reason: /unknown operator 'frobnicate'/ },
  'unknown-op-graph.yaml': { where: "node 'boom'", reason: /unknown operator 'os\.system'/ },
  'proto-op.yaml': { where: "node 'ctor'", reason: /unknown operator 'constructor'/ },
  'tap-list.yaml': { where: "node 'step 2 (tap)'", reason: /'tap' takes a callable .* refused in layer files/ },
  'tap-graph.yaml': { where: "node 'spy'", reason: /'tap' takes a callable .* refused in layer files/ },
  'target-step.yaml': { where: "node 'step 2'", reason: /one operator name with its parameters.*got keys _target_, command/ },
  'target-param.yaml': { where: "node 'src'", reason: /Unrecognized keys: "_target_", "args"/ },
  'tag-python-object.yaml': { reason: /unsupported YAML: Unresolved tag: .*python\/object\/apply:os\.system/ },
  'tag-python-name.yaml': { reason: /unsupported YAML: Unresolved tag: .*python\/name:os\.system/ },
  'tag-js-function.yaml': { reason: /unsupported YAML: Unresolved tag: .*js\/function/ },
  'tag-local.yaml': { reason: /unsupported YAML: Unresolved tag: !include/ },
  // Prototype pollution: top level, parameters, node names, sources, classes, cache.
  'proto-top.yaml': { where: '__proto__', reason: notPlain('__proto__') },
  'constructor-top.yaml': { where: 'constructor', reason: notPlain('constructor') },
  'prototype-top.yaml': { where: 'prototype', reason: notPlain('prototype') },
  'proto-param.yaml': { where: "node 'step 1 (read)'", reason: notPlain('__proto__') },
  'constructor-param.yaml': { where: "node 'step 2 (rescale)'", reason: notPlain('constructor') },
  'proto-node.yaml': { where: "node '__proto__'", reason: notPlain('__proto__') },
  'constructor-node.yaml': { where: "node 'constructor'", reason: notPlain('constructor') },
  'prototype-node.yaml': { where: "node 'prototype'", reason: notPlain('prototype') },
  'proto-source.yaml': { where: 'sources.__proto__', reason: notPlain('__proto__') },
  'proto-classes.yaml': { where: "node 'step 2 (colormap)'", reason: notPlain('__proto__') },
  'proto-cache.yaml': { where: 'cache.__proto__', reason: notPlain('__proto__') },
  // Expression injection.
  'expr-process-exit.yaml': { where: "node 'step 2 (expression)'", reason: /unexpected character '\.' at 7/ },
  'expr-require.yaml': { where: "node 'step 2 (expression)'", reason: /unexpected character ';' at 2/ },
  'expr-constructor.yaml': { where: "node 'evil'", reason: /unexpected character '\.' at 11/ },
  'expr-template.yaml': { where: "node 'step 2 (expression)'", reason: /unexpected character '`' at 0/ },
  'expr-deep.yaml': { where: "node 'step 2 (expression)'", reason: /nested too deeply/ },
  // YAML itself: bombs, garbage, empty, the wrong shape, too large, too deep.
  'alias-bomb.yaml': { reason: /not valid YAML: Excessive alias count/ },
  'alias-bomb-params.yaml': { reason: /not valid YAML: Excessive alias count/ },
  'merge-key.yaml': { where: "node 'step 2 (rescale)'", reason: /Unrecognized key: "<<"/ },
  'duplicate-key.yaml': { reason: /not valid YAML: Map keys must be unique/ },
  'empty.yaml': { reason: notMapping },
  'comments-only.yaml': { reason: notMapping },
  'scalar.yaml': { reason: notMapping },
  'list-top.yaml': { reason: notMapping },
  'text-garbage.yaml': { reason: /not valid YAML/ },
  'binary-garbage.yaml': { reason: /not valid YAML/ },
  'huge.yaml': { reason: /the file is \d+ bytes; layer files are at most 262144/ },
  'deep-nesting.yaml': { reason: /not valid YAML: nested more than 64 levels deep/ },
  'deep-block-sequence.yaml': { reason: /not valid YAML: line 2 is nested 40002 columns deep \(at most 128\)/ },
  'deep-indent.yaml': { reason: /not valid YAML: line 130 is nested 129 columns deep \(at most 128\)/ },
  'alias-cycle.yaml': { where: "node 'step 2'", reason: /an alias inside the node it names/ },
  'alias-deep.yaml': { where: 'x3.0', reason: /nested more than 192 levels deep once aliases are followed/ },
  'device.yaml': { reason: /a link to a file outside the layers directory/ },
  'link-out.yaml': { reason: /a link to a file outside the layers directory/ },
  'fifo-link.yaml': { reason: /not a regular file/ },
  'dangling.yaml': { reason: /cannot read the file \(ENOENT\)/ },
  // Graph structure.
  'cycle.yaml': { where: "node 'a'", reason: /cycle: a -> b -> a/ },
  'self-loop.yaml': { where: "node 'loop'", reason: /cycle: loop -> loop/ },
  'missing-input.yaml': { where: "node 'ndvi'", reason: /input 'nir' is not a node of this graph/ },
  'missing-output.yaml': { where: "node 'rgba'", reason: /the output names a node that does not exist/ },
  'missing-source.yaml': { where: "node 'step 1 (read)'", reason: /source 'dem' is not declared under sources/ },
  'in-not-list.yaml': { where: "node 'r'", reason: /'in' is a list of node names/ },
  'op-not-string.yaml': { where: "node 'src'", reason: /every node needs 'op'/ },
  'step-two-ops.yaml': { where: "node 'step 1'", reason: /got keys read, rescale/ },
  'starts-with-rescale.yaml': { where: "node 'step 1'", reason: /starts with a source operator such as 'read', not 'rescale'/ },
  'pipeline-empty.yaml': { where: 'pipeline', reason: /Too small/ },
  'nodes-20000.yaml': { reason: /the file is \d+ bytes; layer files are at most 262144/ },
  'nodes-400.yaml': { where: "node 'nodes'", reason: new RegExp(`400 nodes; at most ${MAX_NODES}`) },
  'steps-400.yaml': { where: "node 'pipeline'", reason: new RegExp(`401 steps; at most ${MAX_NODES}`) },
  // Unknown keys at every level.
  'unknown-key-top.yaml': { where: '"layers"', reason: /Unrecognized key/ },
  'unknown-key-cache.yaml': { where: 'cache', reason: /Unrecognized key: "forever"/ },
  'unknown-key-pipeline.yaml': { where: 'pipeline', reason: /Unrecognized key: "inputs"/ },
  'unknown-key-param.yaml': { where: "node 'step 2 (rescale)'", reason: /Unrecognized key: "form"/ },
  'unknown-key-node.yaml': { where: "node 'cm'", reason: /Unrecognized key: "revrese"/ },
  // Wrong types and ranges.
  'tilesize-300.yaml': { where: 'tileSize', reason: /expected 256 or 512/ },
  'minzoom-negative.yaml': { where: 'minzoom', reason: />=0/ },
  'maxzoom-99.yaml': { where: 'maxzoom', reason: /<=30/ },
  'zoom-order.yaml': { where: 'minzoom', reason: /minzoom is above maxzoom/ },
  'zoom-string.yaml': { where: 'maxzoom', reason: /expected number, received string/ },
  'empty-value.yaml': { where: 'empty', reason: /expected 204 or 'transparent'/ },
  'no-sources.yaml': { where: 'sources', reason: /between 1 and 16 sources/ },
  'bands-zero.yaml': { where: "node 'step 1 (read)'", reason: /bands\.0: Too small: expected number to be >=1/ },
  'bands-missing.yaml': { where: "node 'step 1 (read)'", reason: /band 7 does not exist: source 'grid' has 1 band/ },
  'colour-zzz.yaml': { where: "node 'step 2 (colormap)'", reason: /stops\.1\.1: expected a colour #rrggbb or #rrggbbaa/ },
  'class-not-number.yaml': { where: "node 'step 2 (colormap)'", reason: /class 'water' is not a number/ },
  'class-duplicate.yaml': { where: "node 'step 2 (colormap)'", reason: /class '1\.0' is the same value as another class/ },
  'palette-unknown.yaml': { where: "node 'step 3 (colormap)'", reason: /unknown colour map '\.\.\/\.\.\/\.\.\/etc\/passwd'/ },
  'palette-proto.yaml': { where: "node 'step 3 (colormap)'", reason: /unknown colour map 'constructor'/ },
  'palette-source-reverse.yaml': { where: "node 'step 2 (colormap)'", reason: /'reverse' and 'range' do not apply/ },
  'gamma-zero.yaml': { where: "node 'step 2 (rgb)'", reason: /gamma: Too small/ },
  'rescale-nan.yaml': { where: "node 'step 2 (rescale)'", reason: /from: expected \[min, max\] \(finite numbers\) or 'auto'/ },
  'rescale-flat.yaml': { where: "node 'step 2 (rescale)'", reason: /needs two different values/ },
  'on-fail-ignore.yaml': { where: "node 'step 2 (assert_range)'", reason: /on_fail: Invalid option/ },
  'fraction-above-one.yaml': { where: "node 'step 2 (assert_valid_fraction)'", reason: /min: Too big/ },
  // The file name is the layer name.
  'Bad Name.yaml': { reason: /'Bad Name' is not a layer name/ },
};

function checkRefusal(file: string, message: string): void {
  const e = EXPECT[file]!;
  assert.ok(message.startsWith(`${file}: `), `the message should start with the file name '${file}': ${message}`);
  if (e.where) assert.ok(message.includes(e.where), `${file}: the message should name ${e.where}: ${message}`);
  assert.match(message, e.reason, `${file}: ${message}`);
  // Nothing of the server's paths or of files outside the directory.
  assert.ok(!message.includes(tmp.dir) && !/hunter|aws_secret|db_password/.test(message), `${file}: the message leaks: ${message}`);
}

const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();

before(() => {
  if (skip) return;
  makeData(HASH_DIR);
  makeData(CORPUS_DIR);
  for (const [name, text] of Object.entries(GOOD)) writeFileSync(path.join(CORPUS_DIR, name), text);
  for (const name of readdirSync(HOSTILE_DIR)) copyFileSync(path.join(HOSTILE_DIR, name), path.join(CORPUS_DIR, name));
  makeGenerated(CORPUS_DIR);
});
after(() => tmp.remove());

// ---------------------------------------------------------------------------------------
// (a) canonical config and hash

let probe = 0;
/** Loads `text` as a layer file of HASH_DIR under a fresh name. */
async function load(text: string): Promise<Layer> {
  const file = path.join(HASH_DIR, `probe-${++probe}.yaml`);
  writeFileSync(file, text);
  return loadLayer(file, { layersDir: HASH_DIR, allowedHosts: ALLOWED_HOSTS });
}

/** JSON with keys sorted at every level, written out here rather than imported. */
function sortedJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedJson).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

interface HashCase {
  base: string;
  /** Different spellings of the same layer: the hash must not move. */
  same: [label: string, text: string][];
  /** Each changes one value: each must give a hash of its own. */
  changed: [label: string, text: string][];
}

const LIST: HashCase = {
  base: `title: Grid
sources:
  grid: ./data/grid.tif
pipeline:
  - read: { source: grid }
  - rescale: { from: [0, 300] }
  - colormap: { name: viridis }
`,
  same: [
    [
      'keys reordered',
      `pipeline:
  - read: { source: grid }
  - rescale: { from: [0, 300] }
  - colormap: { name: viridis }
sources:
  grid: ./data/grid.tif
title: Grid
`,
    ],
    [
      'the source path spelt another way',
      `title: Grid
sources:
  grid: data/./grid.tif
pipeline:
  - read: { source: grid }
  - rescale: { from: [0, 300] }
  - colormap: { name: viridis }
`,
    ],
    [
      'comments, block style, quoting, number spellings',
      `# A layer.
title: "Grid"   # the title
sources:
  grid: './data/grid.tif'
pipeline:
  # read, stretch, colour
  - read:
      source: grid
  - rescale:
      from:
        - 0.0
        - 3e2
  - colormap: {name: "viridis"}
`,
    ],
    [
      'every default spelt out',
      `title: Grid
description: ""
attribution: ""
sources:
  grid: ./data/grid.tif
minzoom: 0
maxzoom: 18
tileSize: 256
empty: 204
cache: { maxAge: 3600, sMaxAge: 86400, staleWhileRevalidate: 600, l2Ttl: 86400, l2EmptyTtl: 3600 }
pipeline:
  - read: { source: grid, bands: [1], resampling: bilinear, nodata: ${NODATA} }
  - rescale: { from: [0, 300], to: [0, 1] }
  - colormap: { name: viridis, reverse: false, range: [0, 1] }
`,
    ],
  ],
  changed: [
    ['title', 'title: Grid|title: Grid 2'],
    ['description', 'description: something'],
    ['attribution', 'attribution: someone'],
    ['minzoom', 'minzoom: 1'],
    ['maxzoom', 'maxzoom: 17'],
    ['tileSize', 'tileSize: 512'],
    ['empty', 'empty: transparent'],
    ['cache.maxAge', 'cache: { maxAge: 60 }'],
    ['cache.sMaxAge', 'cache: { sMaxAge: 60 }'],
    ['cache.staleWhileRevalidate', 'cache: { staleWhileRevalidate: 60 }'],
    ['cache.l2Ttl', 'cache: { l2Ttl: 60 }'],
    ['cache.l2EmptyTtl', 'cache: { l2EmptyTtl: 60 }'],
    ['source file', 'grid: ./data/grid.tif|grid: ./data/grid2.tif'],
    ['resampling', 'read: { source: grid }|read: { source: grid, resampling: cubic }'],
    ['nodata', 'read: { source: grid }|read: { source: grid, nodata: 0 }'],
    ['rescale from', 'from: [0, 300]|from: [0, 301]'],
    ['rescale to', 'from: [0, 300]|from: [0, 300], to: [0, 0.5]'],
    ['colour map', 'name: viridis|name: magma'],
    ['reverse', 'name: viridis|name: viridis, reverse: true'],
    ['range', 'name: viridis|name: viridis, range: [0, 2]'],
    ['a step more', '  - rescale: { from: [0, 300] }|  - rescale: { from: [0, 300] }\n  - assert_range: { min: 0 }'],
    ['check on_fail', '  - rescale: { from: [0, 300] }|  - rescale: { from: [0, 300] }\n  - assert_range: { min: 0, on_fail: raise }'],
  ],
};

const GRAPH: HashCase = {
  base: `sources: { grid: ./data/grid.tif, lc: ./data/lc.tif }
pipeline:
  nodes:
    a: { op: read, source: grid }
    b: { op: read, source: lc }
    nd: { op: normalized_difference, in: [a, b] }
    out: { op: colormap, in: [nd], stops: [[-1, "#0000ff"], [1, "#ff0000"]] }
  output: out
`,
  same: [
    [
      'nodes reordered, stops reordered, colour case',
      `sources: { lc: ./data/lc.tif, grid: ./data/grid.tif }
pipeline:
  output: out
  nodes:
    out: { in: [nd], stops: [[1, "#FF0000"], [-1, "#0000FF"]], op: colormap }
    nd: { op: normalized_difference, in: [a, b] }
    b: { source: lc, op: read }
    a: { op: read, source: grid }
`,
    ],
    [
      'defaults spelt out (nearest is the default for a paletted source)',
      `sources: { grid: ./data/grid.tif, lc: ./data/lc.tif }
pipeline:
  nodes:
    a: { op: read, source: grid, resampling: bilinear, bands: [1], nodata: ${NODATA} }
    b: { op: read, source: lc, resampling: nearest, bands: [1], nodata: 255 }
    nd: { op: normalized_difference, in: [a, b] }
    out: { op: colormap, in: [nd], stops: [[-1, "#0000ff"], [1, "#ff0000"]] }
  output: out
`,
    ],
  ],
  changed: [
    ['inputs swapped', 'in: [a, b]|in: [b, a]'],
    ['bilinear on a paletted source is not the default', 'source: lc }|source: lc, resampling: bilinear }'],
    ['a stop value', '[1, "#ff0000"]|[2, "#ff0000"]'],
    ['a stop colour', '[1, "#ff0000"]|[1, "#ff0001"]'],
    ['a stop alpha', '[1, "#ff0000"]|[1, "#ff000080"]'],
    ['a node renamed', 'out: { op|rgba: { op|output: out|output: rgba'],
  ],
};

const CLASSES: HashCase = {
  base: `sources: { lc: ./data/lc.tif }
pipeline:
  - read: { source: lc }
  - colormap: { classes: { 11: "#0000ff", 42: "#00ff00" } }
`,
  same: [
    [
      'class keys spelt and ordered differently, colour case',
      `sources: { lc: ./data/lc.tif }
pipeline:
  - read: { source: lc }
  - colormap: { classes: { "42.0": "#00FF00", "11": "#0000FF" } }
`,
    ],
  ],
  changed: [
    ['a class colour', '42: "#00ff00"|42: "#00ff01"'],
    ['a class value', '42: "#00ff00"|43: "#00ff00"'],
    ['a class more', '42: "#00ff00"|42: "#00ff00", 90: "#ffffff"'],
    ['the file palette instead', 'classes: { 11: "#0000ff", 42: "#00ff00" }|name: source'],
  ],
};

/** Applies a change: 'old|new' replaces text (pairs may repeat), otherwise the line is added at the top level. */
function applyChange(base: string, change: string): string {
  if (!change.includes('|')) return base + change + '\n';
  const parts = change.split('|');
  let out = base;
  for (let i = 0; i < parts.length; i += 2) {
    assert.ok(out.includes(parts[i]!), `the base should contain '${parts[i]}'`);
    out = out.replace(parts[i]!, parts[i + 1]!);
  }
  return out;
}

describe('canonical config and hash', { skip }, () => {
  for (const [name, c] of Object.entries({ list: LIST, graph: GRAPH, classes: CLASSES })) {
    it(`${name}: the hash is the SHA-256 of the canonical config, which has the defaults filled in`, async () => {
      const layer = await load(c.base);
      assert.equal(layer.hash, createHash('sha256').update(sortedJson(layer.config)).digest('hex'));
      assert.equal(layer.config.tileSize, 256);
      assert.equal(layer.config.minzoom, 0);
      assert.equal(layer.config.maxzoom, 18);
      assert.equal(layer.config.empty, 204);
      assert.deepEqual(layer.config.cache, { maxAge: 3600, sMaxAge: 86400, staleWhileRevalidate: 600, l2Ttl: 86400, l2EmptyTtl: 3600 });
      // Keys sorted at every level.
      assert.equal(JSON.stringify(layer.config), sortedJson(layer.config));
    });

    it(`${name}: reordering, comments, spelling and explicit defaults keep the hash`, async () => {
      const base = await load(c.base);
      for (const [label, text] of c.same) {
        const other = await load(text);
        assert.deepEqual(other.config, base.config, label);
        assert.equal(other.hash, base.hash, label);
      }
    });

    it(`${name}: changing any value changes the hash, each change to a hash of its own`, async () => {
      const base = await load(c.base);
      const seen = new Map<string, string>([[base.hash, 'the base']]);
      for (const [label, change] of c.changed) {
        const other = await load(applyChange(c.base, change));
        assert.ok(!seen.has(other.hash), `${label}: same hash as ${seen.get(other.hash)}`);
        seen.set(other.hash, label);
      }
    });
  }

  it('an absolute path inside the layers directory is refused with the relative path to write instead', async () => {
    mkdirSync(path.join(HASH_DIR, 'nested'), { recursive: true });
    const file = path.join(HASH_DIR, 'nested', 'absolute.yaml');
    writeFileSync(file, LIST.base.replace('./data/grid.tif', path.join(HASH_DIR, 'data/grid.tif')));
    await assert.rejects(loadLayer(file, { layersDir: HASH_DIR, allowedHosts: ALLOWED_HOSTS }), (err: unknown) => {
      assert.ok(err instanceof LayerError);
      assert.match(err.message, /the path is absolute; sources are given relative to the layer file, as '\.\.\/data\/grid\.tif'/);
      return true;
    });
  });

  it('the shipped layers are canonical: loading one twice gives the same hash', async () => {
    const opts = { layersDir: SHIPPED_LAYERS, allowedHosts: [] };
    const a = await loadLayer(path.join(SHIPPED_LAYERS, 'zion-ndvi.yaml'), opts);
    const b = await loadLayer(path.join(SHIPPED_LAYERS, 'zion-ndvi.yaml'), opts);
    assert.equal(a.hash, b.hash);
    assert.equal(a.version, b.version);
  });
});

// ---------------------------------------------------------------------------------------
// (b) version: config hash + source identities

describe('layer version', { skip }, () => {
  it("a source's size and mtime are in the layer version: touching the file changes the version, not the hash", async () => {
    const file = path.join(HASH_DIR, 'data/touched.tif');
    copyFileSync(path.join(HASH_DIR, 'data/grid.tif'), file);
    const text = LIST.base.replace('./data/grid.tif', './data/touched.tif');
    const first = await load(text);
    const st = statSync(file);
    assert.equal(first.sources[0]!.version, `${st.size}-${Math.floor(st.mtimeMs)}`, 'size + mtime');
    assert.equal((await load(text)).version, first.version, 'nothing changed');

    const later = new Date(st.mtimeMs + 60_000);
    utimesSync(file, later, later);
    const touched = await load(text);
    assert.equal(touched.hash, first.hash);
    assert.notEqual(touched.version, first.version);
    assert.notEqual(touched.sources[0]!.version, first.sources[0]!.version);
    assert.equal(touched.spec.version, touched.version, 'the render threads key graphs by the same version');

    // Replaced by different content (another size), mtime put back: still a new version.
    copyFileSync(path.join(HASH_DIR, 'data/lc.tif'), file);
    utimesSync(file, later, later);
    const replaced = await load(text.replace('{ name: viridis }', '{ name: source }').replace('  - rescale: { from: [0, 300] }\n', ''));
    const sameConfig = await load(text.replace('{ name: viridis }', '{ name: source }').replace('  - rescale: { from: [0, 300] }\n', ''));
    assert.equal(replaced.version, sameConfig.version);
    assert.notEqual(replaced.sources[0]!.version, touched.sources[0]!.version);
  });

  it('the version changes with the hash too', async () => {
    const a = await load(LIST.base);
    const b = await load(applyChange(LIST.base, 'title: Grid|title: other'));
    assert.notEqual(a.version, b.version);
  });
});

// ---------------------------------------------------------------------------------------
// (c) the hostile corpus

describe('hostile layer files', { skip }, () => {
  it('the corpus and the expectations list the same files', () => {
    const generated = [
      'huge.yaml',
      'nodes-20000.yaml',
      'nodes-400.yaml',
      'steps-400.yaml',
      'deep-nesting.yaml',
      'deep-block-sequence.yaml',
      'deep-indent.yaml',
      'device.yaml',
      'dangling.yaml',
      'fifo-link.yaml',
      'link-out.yaml',
    ];
    assert.deepEqual([...readdirSync(HOSTILE_DIR), ...generated].sort(), Object.keys(EXPECT).sort());
  });

  it('every hostile file is refused naming the file, the node and the reason; the good layers still load', async () => {
    const { layers, problems } = await loadLayerDir({ layersDir: CORPUS_DIR, allowedHosts: ALLOWED_HOSTS });
    assert.deepEqual([...layers.keys()].sort(), ['good-graph', 'good-grid', 'good-landcover']);
    const byFile = new Map(problems.map((p) => [p.file, p.error]));
    assert.deepEqual([...byFile.keys()].sort(), Object.keys(EXPECT).sort());
    for (const [file, error] of byFile) checkRefusal(file, error);
  });

  it('each refusal is a LayerError carrying the file', async () => {
    for (const file of Object.keys(EXPECT)) {
      await assert.rejects(loadLayer(path.join(CORPUS_DIR, file), { layersDir: CORPUS_DIR, allowedHosts: ALLOWED_HOSTS }), (err: unknown) => {
        assert.ok(err instanceof LayerError, `${file}: ${String(err)}`);
        assert.equal(err.file, file);
        checkRefusal(file, err.message);
        return true;
      });
    }
  });

  it('deeply nested documents are refused in a fresh process, one after another, and the process ends cleanly', () => {
    // Near the end of the stack, V8 aborts the whole process ("RegExpCompiler Allocation failed")
    // where the YAML parser compiles a regular expression: in a fresh process the second document
    // nested a thousand levels deep did so, which a caught stack overflow never does.
    const script = `
const { layerFromText } = await import(${JSON.stringify(new URL('../src/layers/layer.js', import.meta.url).href)});
const docs = [
  '- '.repeat(1000) + 'x',
  '- '.repeat(5000) + 'x',
  '? '.repeat(20000) + 'x',
  Array.from({ length: 350 }, (_, i) => ' '.repeat(i) + 'k' + i + ':').join('\\n') + ' x',
  'pipeline: &p\\n  - *p\\n',
];
const refusals = [];
for (let round = 0; round < 2; round++)
  for (const text of docs)
    await layerFromText(text, { name: 'deep', dir: '/tmp', fail: (m) => { throw new Error(m); } }, { layersDir: '/tmp', allowedHosts: [] })
      .then(() => refusals.push('loaded'), (err) => refusals.push(err.message));
console.log(JSON.stringify(refusals));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const refusals = JSON.parse(out) as string[];
    assert.equal(refusals.length, 10);
    for (const r of refusals) assert.match(r, /not valid YAML: line \d+ is nested \d+ columns deep|an alias inside the node it names/);
  });

  it('bombs, huge, deep and endless files fail fast', async () => {
    const limits: [string, number][] = [
      ['alias-bomb.yaml', 1000],
      ['alias-bomb-params.yaml', 1000],
      ['deep-nesting.yaml', 1000],
      ['deep-block-sequence.yaml', 1000],
      ['deep-indent.yaml', 1000],
      ['alias-cycle.yaml', 1000],
      ['alias-deep.yaml', 1000],
      ['huge.yaml', 1000],
      ['device.yaml', 1000],
      ['fifo-link.yaml', 1000],
      ['binary-garbage.yaml', 1000],
      ['nodes-20000.yaml', 2000],
      ['nodes-400.yaml', 2000],
    ];
    for (const [file, ms] of limits) {
      const t0 = performance.now();
      await assert.rejects(loadLayer(path.join(CORPUS_DIR, file), { layersDir: CORPUS_DIR, allowedHosts: ALLOWED_HOSTS }), LayerError);
      const took = performance.now() - t0;
      assert.ok(took < ms, `${file} took ${took.toFixed(0)} ms to refuse (limit ${ms})`);
    }
    assert.equal(
      chainGraph(20_000)
        .split('\n')
        .filter((l) => l.includes('op:')).length,
      20_000,
    );
  });

  it('20,000 nodes built programmatically are refused quickly, and a 20,000-long chain is ordered without overflowing the stack', async () => {
    const cog = await Cog.open(path.join(CORPUS_DIR, 'data/grid.tif'));
    try {
      const nodes: Record<string, Record<string, unknown>> = { n0: { op: 'read', source: 'grid' } };
      for (let k = 1; k < 20_000; k++) nodes[`n${k}`] = { op: 'select', in: [`n${k - 1}`], bands: [1] };
      let t0 = performance.now();
      assert.throws(
        () => buildGraph({ nodes, output: 'n19999' }, { sources: new Map([['grid', cog]]) }),
        (err: unknown) => err instanceof GraphError && /20000 nodes; at most/.test(err.message),
      );
      const steps = [{ read: { source: 'grid' } }, ...Array.from({ length: 19_999 }, () => ({ select: { bands: [1] } }))];
      assert.throws(() => buildGraph(steps, { sources: new Map([['grid', cog]]) }), /20000 steps; at most/);
      assert.ok(performance.now() - t0 < 2000, `took ${(performance.now() - t0).toFixed(0)} ms`);

      t0 = performance.now();
      const chain = new Map<string, { inputs: string[] }>();
      for (let k = 0; k < 20_000; k++) chain.set(`n${k}`, { inputs: k ? [`n${k - 1}`] : [] });
      const order = topologicalOrder(chain);
      assert.equal(order.length, 20_000);
      assert.equal(order[0], 'n0');
      chain.set('n0', { inputs: ['n19999'] });
      assert.throws(
        () => topologicalOrder(chain),
        (err: unknown) => err instanceof GraphError && /cycle: /.test(err.message),
      );
      assert.ok(performance.now() - t0 < 2000, `took ${(performance.now() - t0).toFixed(0)} ms`);
    } finally {
      await cog.close();
    }
  });

  it('nothing reached Object.prototype', () => {
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBefore);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.prototype.toString.call([]), '[object Array]');
  });

  it('through a running server: /layers lists the refused files and the good layers serve tiles', async () => {
    const settings = loadSettings({
      LAYERS_DIR: CORPUS_DIR,
      PORT: '0',
      HOST: '127.0.0.1',
      WORKERS: '1',
      LOG_LEVEL: 'silent',
      ALLOWED_HOSTS: ALLOWED_HOSTS.join(','),
    });
    const server = await serve(settings);
    try {
      const list = (await (await fetch(`${server.url}/layers`)).json()) as { layers: { name: string }[]; refused: { file: string; error: string }[] };
      assert.deepEqual(list.layers.map((l) => l.name).sort(), ['good-graph', 'good-grid', 'good-landcover']);
      assert.deepEqual(list.refused.map((p) => p.file).sort(), Object.keys(EXPECT).sort());
      for (const p of list.refused) checkRefusal(p.file, p.error);

      for (const layer of ['good-grid', 'good-graph']) {
        const res = await fetch(`${server.url}/tiles/${layer}/${TILE.z}/${TILE.x}/${TILE.y}.png`);
        assert.equal(res.status, 200, `${layer}: ${await res.clone().text()}`);
        assert.equal(res.headers.get('content-type'), 'image/png');
        assert.deepEqual([...new Uint8Array(await res.arrayBuffer()).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
      }
      assert.equal((await fetch(`${server.url}/layers/good-landcover`)).status, 200);
      for (const refused of ['cycle', 'proto-node', 'alias-bomb', 'traversal-etc-passwd']) {
        const res = await fetch(`${server.url}/tiles/${refused}/${TILE.z}/${TILE.x}/${TILE.y}.png`);
        assert.equal(res.status, 404, refused);
        await res.arrayBuffer();
      }
    } finally {
      await server.close();
    }
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBefore);
  });
});

// ---------------------------------------------------------------------------------------
// (d) the CLI

describe('tilegraph layers / diff', { skip }, () => {
  it('`tilegraph layers DIR` exits 1 and prints each reason when a file is bad', () => {
    const dir = path.join(tmp.dir, 'cli-bad');
    makeData(dir);
    writeFileSync(path.join(dir, 'good-grid.yaml'), GOOD['good-grid.yaml']!);
    for (const f of ['cycle.yaml', 'proto-node.yaml', 'traversal-etc-passwd.yaml']) copyFileSync(path.join(HOSTILE_DIR, f), path.join(dir, f));
    const r = runCli(['layers', dir]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok +good-grid +[0-9a-f]{12} +z10-14 +Grid$/m);
    for (const f of ['cycle.yaml', 'proto-node.yaml', 'traversal-etc-passwd.yaml']) {
      const line = r.stdout.split('\n').find((l) => l.startsWith(`refused  ${f}: `));
      assert.ok(line, `no line for ${f} in:\n${r.stdout}`);
      checkRefusal(f, line.slice('refused  '.length));
    }
    assert.match(r.stdout, /^1 valid, 3 refused$/m);
  });

  it('`tilegraph layers` exits 0 for the shipped layers/', () => {
    const r = runCli(['layers', SHIPPED_LAYERS]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const shipped = readdirSync(SHIPPED_LAYERS).filter((f) => /\.ya?ml$/.test(f)).length;
    assert.match(r.stdout, new RegExp(`^${shipped} valid, 0 refused$`, 'm'));
  });

  it('`tilegraph diff A B --sample N` prints the changed keys, then per-tile differences worst first', () => {
    const dir = path.join(tmp.dir, 'cli-diff');
    makeData(dir);
    const a = path.join(dir, 'a.yaml'),
      b = path.join(dir, 'b.yaml');
    writeFileSync(a, GOOD['good-grid.yaml']!);
    writeFileSync(b, GOOD['good-grid.yaml']!.replace('name: viridis', 'name: magma').replace('from: [0, 500]', 'from: [0, 400]'));
    const r = runCli(['diff', a, b, '--sample', '6']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const lines = r.stdout.split('\n');
    assert.ok(
      lines.some((l) => /^- .*"name": "viridis"/.test(l)),
      r.stdout,
    );
    assert.ok(
      lines.some((l) => /^\+ .*"name": "magma"/.test(l)),
      r.stdout,
    );
    assert.ok(lines.some((l) => /^- +500$/.test(l)) && lines.some((l) => /^\+ +400$/.test(l)), `the rescale bound should show as changed:\n${r.stdout}`);
    // Only changed lines are printed from the config diff.
    assert.ok(!lines.some((l) => l.includes('"title"')), r.stdout);
    const head = lines.findIndex((l) => /^\d+ sample tiles, worst first/.test(l));
    assert.ok(head > 0, r.stdout);
    assert.match(lines[head + 1]!, /^tile +mean +max$/);
    const rows = lines
      .slice(head + 2)
      .filter(Boolean)
      .map((l) => {
        const m = /^(\d+)\/(\d+)\/(\d+) +([\d.]+) +(\d+)$/.exec(l);
        assert.ok(m, `not a tile row: '${l}'`);
        return { z: Number(m[1]), mean: Number(m[4]), max: Number(m[5]) };
      });
    assert.equal(rows.length, 6);
    for (const row of rows) assert.ok(row.z >= 10 && row.z <= 14, `zoom ${row.z} outside the layers' range`);
    for (let k = 1; k < rows.length; k++) assert.ok(rows[k - 1]!.mean >= rows[k]!.mean, `not worst first: ${lines.slice(head + 2).join('\n')}`);
    assert.ok(rows[0]!.mean > 0 && rows[0]!.max > 0, 'the colour maps differ, so some tile must differ');
  });

  it('`tilegraph diff` of two spellings of one layer reports identical configs and no pixel difference', () => {
    const dir = path.join(tmp.dir, 'cli-diff-same');
    makeData(dir);
    const a = path.join(dir, 'a.yaml'),
      b = path.join(dir, 'b.yaml');
    writeFileSync(a, GOOD['good-grid.yaml']!);
    writeFileSync(b, '# the same layer\n' + GOOD['good-grid.yaml']!.replace('{ name: viridis }', '{ name: viridis, reverse: false }') + 'tileSize: 256\n');
    const r = runCli(['diff', a, b, '--sample', '3']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\(canonical configs are identical\)/);
    const rows = r.stdout.split('\n').filter((l) => /^\d+\/\d+\/\d+ /.test(l));
    assert.equal(rows.length, 3);
    for (const row of rows) assert.match(row, / 0\.000 +0$/);
  });
});

// Keep the committed corpus honest: each file is small text (or the one binary file), named as a layer would be.
describe('the committed corpus', () => {
  it('holds only small files', () => {
    for (const f of readdirSync(HOSTILE_DIR)) {
      const size = statSync(path.join(HOSTILE_DIR, f)).size;
      assert.ok(size < 8192, `${f} is ${size} bytes`);
      if (f !== 'binary-garbage.yaml' && size) assert.ok(!readFileSync(path.join(HOSTILE_DIR, f)).includes(0), `${f} should be text`);
    }
  });
});
