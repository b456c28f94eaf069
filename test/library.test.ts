/**
 * tilegraph as a library (src/index.ts, src/api/).
 *
 * - The README's example (the ```ts block under "## Library"; docs-library.md's until the
 *   README has the section) is type-checked against the package as a user installs it
 *   (`tilegraph` resolved through package.json's `exports` and `types` to dist/), compiled
 *   with TypeScript's transpileModule and run with node. What it prints and serves is checked:
 *   its `tap` saw the read's heights (an intermediate raster, in metres, before the rescale),
 *   its `lambda`'s terraces are in the PNG's pixels (one colour per band of heights, measured
 *   here on the same tile), and its router answers TileJSON whose URLs carry the mount path
 *   and the same tile, rendered in the example's own thread (its tap prints for it).
 * - Every operator of the registry has a builder, typed by its parameters.
 * - The sandbox: a layer file naming `tap` or `lambda` is refused by the loader with the
 *   registry's message, so is a look-alike step that `ops` did not make, and a layer with a
 *   program's function cannot be rebuilt where render threads rebuild layers.
 * - The router renders a layer without functions in its render threads.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import sharp from 'sharp';
import ts from 'typescript';
import { createTileRouter, Graph, LayerError, loadLayer, ops, renderTile, type Raster } from '../src/index.js';
import { OPERATOR_NAMES } from '../src/ops/registry.js';
import { LayerGraph } from '../src/render/renderer.js';
import { ROOT } from './helpers/root.js';

const LAYERS = path.join(ROOT, 'layers');
const DEM = 'data/srtm_jasper_ab_100m.tif';
const TAP_REFUSED = "'tap' takes a callable and exists only for programmatic use; it is refused in layer files";
const LAMBDA_REFUSED = "'lambda' takes a function and exists only for programmatic use; it is refused in layer files";

/** The ```ts block of the "## Library" section: the README's once it has one, docs-library.md's until then. */
function example(): { file: string; code: string } {
  for (const file of ['README.md', 'docs-library.md']) {
    const full = path.join(ROOT, file);
    if (!existsSync(full)) continue;
    const text = readFileSync(full, 'utf8');
    const start = text.search(/^## Library$/m);
    if (start < 0) continue;
    const next = text.slice(start + 1).search(/^## /m);
    const section = next < 0 ? text.slice(start) : text.slice(start, start + 1 + next);
    if (file === 'README.md') {
      const dev = text.search(/^## Development$/m);
      assert.ok(dev < 0 || start < dev, 'README.md: "## Library" comes before "## Development"');
    }
    const block = /^```ts\n([\s\S]*?)^```$/m.exec(section);
    assert.ok(block, `${file}: the "## Library" section has a \`\`\`ts block`);
    return { file, code: block[1]! };
  }
  return assert.fail('neither README.md nor docs-library.md has a "## Library" section');
}

/** Opaque pixels of a PNG, RGBA. */
async function pixels(png: Buffer): Promise<{ data: Buffer; width: number }> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 4);
  return { data, width: info.width };
}

/** The raw heights of a tile of the DEM, as `read` gives them to the step after it. */
async function heightsOf(z: number, x: number, y: number): Promise<{ heights: Float32Array; mask: Uint8Array; colours: number }> {
  let seen: { heights: Float32Array; mask: Uint8Array } | undefined;
  const plain = new Graph({
    name: 'heights',
    dir: LAYERS,
    sources: { dem: DEM },
    steps: [
      ops.read({ source: 'dem', bands: [1], resampling: 'bilinear' }),
      ops.tap((r) => {
        assert.equal(r.kind, 'bands');
        if (r.kind === 'bands') seen = { heights: r.bands[0]!.slice(), mask: r.mask.slice() };
      }),
      ops.rescale({ from: [950, 2600] }),
      ops.colormap({ name: 'viridis' }),
    ],
  });
  const png = await renderTile(plain, z, x, y);
  assert.ok(png && seen);
  const { data } = await pixels(png);
  const colours = new Set<number>();
  for (let i = 0; i < data.length; i += 4) if (data[i + 3]) colours.add(data.readUInt32BE(i));
  return { ...seen, colours: colours.size };
}

describe('the README example, run against the built package', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let stdout = '';
  let stderr = '';
  let from: string;

  /** Resolves with the first match in the example's output, waiting for it to be printed. */
  const printed = (re: RegExp, ms = 60_000): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const look = () => {
        const m = re.exec(stdout);
        if (m) return resolve(m);
        if (child?.exitCode !== null || Date.now() - started > ms)
          return reject(new Error(`the example did not print ${re} (exit ${child?.exitCode}):\n${stdout}\n${stderr}`));
        setTimeout(look, 50);
      };
      look();
    });

  before(async () => {
    const { file, code } = example();
    from = file;
    dir = await mkdtemp(path.join(os.tmpdir(), 'tilegraph-library-'));
    // What an app that installed tilegraph (and express) has: the package resolved by its name,
    // through package.json's `exports` and `types`, to the compiled entry and its declarations.
    await mkdir(path.join(dir, 'node_modules'));
    await symlink(ROOT, path.join(dir, 'node_modules', 'tilegraph'));
    await symlink(path.join(ROOT, 'node_modules', 'express'), path.join(dir, 'node_modules', 'express'));
    await symlink(path.join(ROOT, 'node_modules', '@types'), path.join(dir, 'node_modules', '@types'));
    await symlink(LAYERS, path.join(dir, 'layers'));
    await writeFile(path.join(dir, 'example.mts'), code);
    // The builders are typed by each operator's parameters.
    await writeFile(
      path.join(dir, 'types.mts'),
      [
        "import { ops, Graph, type Step } from 'tilegraph';",
        'const steps: Step[] = [ops.read({ source: "dem" }), ops.hillshade(), ops.colormap({ name: "viridis", reverse: true })];',
        'new Graph({ name: "x", sources: { dem: "a.tif" }, steps });',
        '// @ts-expect-error: rescale takes `from`',
        'ops.rescale({ form: [0, 1] });',
        '// @ts-expect-error: reverse is a boolean',
        'ops.colormap({ name: "viridis", reverse: "yes" });',
        '// @ts-expect-error: no such operator',
        'ops.not_an_operator({});',
        '// @ts-expect-error: a lambda declares its output',
        'ops.lambda(([r]) => r ?? null, {});',
        '// @ts-expect-error: a graph has steps or nodes',
        'new Graph({ name: "x", sources: { dem: "a.tif" } });',
        '',
      ].join('\n'),
    );
    const program = ts.createProgram([path.join(dir, 'example.mts'), path.join(dir, 'types.mts')], {
      strict: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: ['node'],
      skipLibCheck: true,
      noEmit: true,
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
      return `${d.file ? path.basename(d.file.fileName) : ''}${where ? `:${where.line + 1}` : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    assert.deepEqual(problems, [], `${file}'s example and the package's types`);
    const js = ts.transpileModule(code, { fileName: 'example.mts', compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
    await writeFile(path.join(dir, 'example.mjs'), js.outputText);
    child = spawn(process.execPath, [path.join(dir, 'example.mjs')], { cwd: dir, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    // Printed once the example has written its tile and is listening.
    await printed(/^TileJSON: /m);
  });

  after(async () => {
    if (child && child.exitCode === null) {
      const gone = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await gone;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the tap saw the read step: heights in metres, before the rescale to [0, 1]', async () => {
    const png = (await readdir(dir)).filter((f) => f.endsWith('.png'));
    assert.equal(png.length, 1, `the example wrote one tile (${from})`);
    const [, z, x, y] = /(\d+)-(\d+)-(\d+)\.png$/.exec(png[0]!)!.map(Number);
    const m = await printed(new RegExp(`^tap ${z}/${x}/${y}: heights (-?\\d+) to (-?\\d+) m$`, 'm'));
    const [low, high] = [Number(m[1]), Number(m[2])];
    const { heights, mask } = await heightsOf(z!, x!, y!);
    let lo = Infinity,
      hi = -Infinity;
    heights.forEach((h, i) => {
      if (mask[i]) [lo, hi] = [Math.min(lo, h), Math.max(hi, h)];
    });
    assert.deepEqual([low, high], [Math.round(lo), Math.round(hi)]);
    assert.ok(low > 500 && high > low + 100, `raw heights: ${low} to ${high} m`);
  });

  test("the lambda's terraces are in the tile's pixels: one colour for each eighth of the heights", async () => {
    const file = (await readdir(dir)).find((f) => f.endsWith('.png'))!;
    const [, z, x, y] = /(\d+)-(\d+)-(\d+)\.png$/.exec(file)!.map(Number);
    const { data } = await pixels(await readFile(path.join(dir, file)));
    const { heights, mask, colours: smooth } = await heightsOf(z!, x!, y!);
    // Each colour covers one interval of heights, and the intervals do not overlap: the
    // colour is a step function of the height, as terraces are.
    const spans = new Map<number, [number, number]>();
    for (let i = 0; i < heights.length; i++) {
      assert.equal(data[i * 4 + 3]! > 0, mask[i] === 1, `pixel ${i}: drawn where the DEM has data`);
      if (!mask[i]) continue;
      const c = data.readUInt32BE(i * 4);
      const s = spans.get(c);
      spans.set(c, s ? [Math.min(s[0], heights[i]!), Math.max(s[1], heights[i]!)] : [heights[i]!, heights[i]!]);
    }
    const sorted = [...spans.values()].sort((a, b) => a[0] - b[0]);
    assert.ok(sorted.length >= 2 && sorted.length <= 9, `${sorted.length} colours; terraces of eighths give at most 9`);
    for (let k = 1; k < sorted.length; k++) assert.ok(sorted[k - 1]![1] < sorted[k]![0], `height intervals ${sorted[k - 1]} and ${sorted[k]} overlap`);
    assert.ok(smooth > 3 * sorted.length, `without the lambda the tile has ${smooth} colours`);
  });

  test('the router, mounted at /maps: TileJSON with the mount path, and the tile, rendered in the calling thread', async () => {
    const m = await printed(/^TileJSON: (http:\/\/127\.0\.0\.1:\d+)(\/maps)\/tiles\/([a-z0-9_-]+)\/tilejson\.json$/m);
    const [url, origin, mount, name] = [m[0].slice('TileJSON: '.length), m[1]!, m[2]!, m[3]!];
    const res = await fetch(url);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { tiles: string[]; id: string };
    assert.equal(doc.id, name);
    assert.match(doc.tiles[0]!, new RegExp(`^${origin.replace(/\./g, '\\.')}${mount}/tiles/${name}/\\{z\\}/\\{x\\}/\\{y\\}\\.png\\?v=\\w+$`));

    const file = (await readdir(dir)).find((f) => f.endsWith('.png'))!;
    const [, z, x, y] = /(\d+)-(\d+)-(\d+)\.png$/.exec(file)!.map(Number);
    const tileUrl = (tz: number, tx: number, ty: number) => doc.tiles[0]!.replace('{z}', String(tz)).replace('{x}', String(tx)).replace('{y}', String(ty));
    const tile = await fetch(tileUrl(z!, x!, y!));
    assert.equal(tile.status, 200);
    assert.equal(tile.headers.get('content-type'), 'image/png');
    assert.ok(tile.headers.get('etag'));
    const served = await pixels(Buffer.from(await tile.arrayBuffer()));
    const rendered = await pixels(await readFile(path.join(dir, file)));
    assert.ok(served.data.equals(rendered.data), 'the router serves the pixels renderTile drew');

    // A tile the example has not drawn yet: its tap prints, in the example's own process.
    assert.doesNotMatch(stdout, new RegExp(`^tap ${z}/${x! + 1}/${y}:`, 'm'));
    assert.equal((await fetch(tileUrl(z!, x! + 1, y!))).status, 200);
    await printed(new RegExp(`^tap ${z}/${x! + 1}/${y}: heights`, 'm'));

    const unknown = await fetch(`${origin}${mount}/tiles/no-such-layer/${z}/${x}/${y}.png`);
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: string }).error, 'unknown layer');
  });
});

describe('ops', () => {
  test('a builder for every operator of the registry, giving the step a layer file writes', () => {
    for (const op of OPERATOR_NAMES) {
      const build = (ops as unknown as Record<string, (p: unknown) => unknown>)[op];
      assert.equal(typeof build, 'function', `ops.${op}`);
      assert.deepEqual(build!({ a: 1 }), { [op]: { a: 1 } });
    }
    assert.deepEqual(ops.hillshade(), { hillshade: {} });
  });

  test('the graph form: a tap and a lambda as nodes, with their inputs', async () => {
    let taps = 0;
    const graph = new Graph({
      name: 'nodes',
      dir: LAYERS,
      sources: { dem: DEM },
      nodes: {
        dem: ops.read({ source: 'dem', bands: [1] }),
        seen: { ...ops.tap(() => void taps++), in: ['dem'] },
        shade: { ...ops.hillshade(), in: ['seen'] },
        // Both inputs in one raster: the shade where it is darker than a half, else transparent.
        out: {
          ...ops.lambda(
            ([dem, shade]) =>
              dem!.kind === 'bands' && shade!.kind === 'bands' ? { ...shade!, mask: shade!.mask.map((v, i) => v & +(shade!.bands[0]![i]! < 0.5)) } : null,
            {
              output: { kind: 'bands', bands: 1 },
            },
          ),
          in: ['dem', 'shade'],
        },
      },
      output: 'out',
    });
    const png = await renderTile(graph, 10, 177, 332);
    assert.ok(png);
    assert.equal(taps, 1);
    const { data } = await pixels(png);
    let drawn = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i]) drawn++;
    assert.ok(drawn > 0 && drawn < data.length / 4, `${drawn} pixels drawn`);
    assert.ok((await graph.load()).config.pipeline);
  });

  test('a lambda is checked against what it declares: when the graph is built, and on every tile', async () => {
    const base = { name: 'checked', dir: LAYERS, sources: { dem: DEM } };
    const rgba = new Graph({
      ...base,
      steps: [ops.read({ source: 'dem' }), ops.lambda(() => null, { output: { kind: 'rgba' } }), ops.rescale({ from: [0, 1] })],
    });
    await assert.rejects(
      rgba.load(),
      (err: Error) => err instanceof LayerError && /node 'step 3 \(rescale\)': rescale takes bands, not RGBA/.test(err.message),
    );
    const three = new Graph({
      ...base,
      steps: [ops.read({ source: 'dem' }), ops.lambda(([r]) => r!, { output: { kind: 'bands', bands: 3 }, key: 'three-bands' })],
    });
    await assert.rejects(renderTile(three, 10, 177, 332), /lambda 'three-bands' returned 1 band\(s\); it declared 3/);
    await assert.rejects(renderTile(three, 25, 0, 0), /layer 'checked' serves zooms 0-18/);
  });
});

describe('the sandbox: tap and lambda only through the API', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tilegraph-library-sandbox-'));
    await copyFile(path.join(LAYERS, DEM), path.join(dir, 'dem.tif'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const load = async (name: string, yaml: string) => {
    const file = path.join(dir, `${name}.yaml`);
    await writeFile(file, yaml);
    return loadLayer(file, { layersDir: dir, allowedHosts: [] });
  };

  test('a layer file naming tap is refused with the registry message', async () => {
    await assert.rejects(load('tap', 'sources: { dem: ./dem.tif }\npipeline:\n  - read: { source: dem }\n  - tap: {}\n'), (err: Error) => {
      assert.ok(err instanceof LayerError);
      assert.equal(err.message, `tap.yaml: node 'step 2 (tap)': ${TAP_REFUSED}`);
      return true;
    });
  });

  test('a layer file naming lambda is refused, in a list and as a graph node', async () => {
    await assert.rejects(load('lambda', 'sources: { dem: ./dem.tif }\npipeline:\n  - read: { source: dem }\n  - lambda: { key: x }\n'), {
      message: `lambda.yaml: node 'step 2 (lambda)': ${LAMBDA_REFUSED}`,
    });
    await assert.rejects(
      load(
        'lambda-node',
        'sources: { dem: ./dem.tif }\npipeline:\n  nodes:\n    dem: { op: read, source: dem }\n    f: { op: lambda, in: [dem], code: x }\n  output: f\n',
      ),
      { message: `lambda-node.yaml: node 'f': ${LAMBDA_REFUSED}` },
    );
  });

  test('a step that looks like a tap or a lambda but that ops did not make is refused in code too', async () => {
    const fake = (step: Record<string, unknown>) =>
      new Graph({ name: 'fake', dir, sources: { dem: 'dem.tif' }, steps: [ops.read({ source: 'dem' }), step as never] }).load();
    await assert.rejects(fake({ tap: { code: { op: 'tap', build: () => ({}) } } }), { message: `graph 'fake': node 'step 2 (tap)': ${TAP_REFUSED}` });
    await assert.rejects(fake({ lambda: { fn: (r: Raster[]) => r[0] } }), { message: `graph 'fake': node 'step 2 (lambda)': ${LAMBDA_REFUSED}` });
  });

  test('a layer with a function cannot be rebuilt from its spec, as render threads rebuild layers', async () => {
    const layer = await new Graph({ name: 'coded', dir, sources: { dem: 'dem.tif' }, steps: [ops.read({ source: 'dem' }), ops.tap(() => {})] }).load();
    assert.deepEqual(layer.config.pipeline, [{ read: { bands: [1], nodata: 'nan', resampling: 'bilinear', source: 'dem' } }, { tap: {} }]);
    await assert.rejects(LayerGraph.open(layer.spec), new RegExp(TAP_REFUSED.replace(/[()]/g, '\\$&')));
  });
});

describe('createTileRouter', () => {
  // The settings' own rules: renderTimeoutMs: 1e14 made a 1 ms timer (Node's hold 2^31 - 1 ms), which failed every tile.
  test('its options are checked as the settings they stand for, before a thread starts', async () => {
    const layer = await loadLayer(path.join(LAYERS, 'dem-relief.yaml'), { layersDir: LAYERS, allowedHosts: [] });
    for (const [options, message] of [
      [{ renderTimeoutMs: 1e14 }, /^createTileRouter: renderTimeoutMs 100000000000000: at most 2147483647 \(/],
      [{ renderTimeoutMs: 50 }, /^createTileRouter: renderTimeoutMs 50: at least 100$/],
      [{ workers: 1.5 }, /^createTileRouter: workers 1\.5: expected a whole number in decimal digits$/],
      [{ cacheMb: -1 }, /^createTileRouter: cacheMb -1: expected a whole number in decimal digits$/],
      [{ maxQueue: 0 }, /^createTileRouter: maxQueue 0: at least 1$/],
      [{ blockCacheMb: Number.NaN }, /^createTileRouter: blockCacheMb NaN: expected a whole number in decimal digits$/],
      [{ mosaicMaxFiles: Infinity }, /^createTileRouter: mosaicMaxFiles Infinity: expected a whole number in decimal digits$/],
    ] as const)
      assert.throws(() => createTileRouter({ layers: [layer], ...options }), { message }, JSON.stringify(options));
    const longest = createTileRouter({ layers: [layer], workers: 1, renderTimeoutMs: 2 ** 31 - 1 });
    const app = express().use(longest);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const tile = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/tiles/dem-relief/10/177/332.png`);
      assert.equal(tile.status, 200, await tile.clone().text());
    } finally {
      server.close();
      await longest.close();
    }
  });

  test('a layer without functions renders in the render threads; other paths fall through to the app', async () => {
    const layer = await loadLayer(path.join(LAYERS, 'dem-relief.yaml'), { layersDir: LAYERS, allowedHosts: [] });
    const tiles = createTileRouter({ layers: [layer], workers: 1 });
    const app = express();
    app.use('/x/y', tiles);
    app.use((_req, res) => void res.status(418).send('the app'));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const doc = (await (await fetch(`${base}/x/y/tiles/dem-relief/tilejson.json?scale=2`)).json()) as { tiles: string[]; tileSize: number };
      assert.equal(doc.tiles[0], `${base}/x/y/tiles/dem-relief/{z}/{x}/{y}@2x.png?v=${layer.version}`);
      assert.equal(doc.tileSize, 512);
      const tile = await fetch(`${base}/x/y/tiles/dem-relief/10/177/332.png`);
      assert.equal(tile.status, 200);
      assert.equal(tile.headers.get('x-cache'), 'miss');
      const direct = await renderTile(layer, 10, 177, 332);
      assert.ok((await pixels(Buffer.from(await tile.arrayBuffer()))).data.equals((await pixels(direct!)).data), 'the thread drew what renderTile draws');
      assert.equal((await fetch(`${base}/x/y/tiles/dem-relief/10/177/332.png`)).headers.get('x-cache'), 'hit-l1');
      assert.equal((await fetch(`${base}/x/y/tiles/dem-relief/10/177/332.png`, { method: 'POST' })).status, 405);
      assert.equal((await fetch(`${base}/x/y/elsewhere`)).status, 418);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await tiles.close();
    }
  });
});
