/**
 * `tilegraph freeze LAYER -o FILE.tar` and `tilegraph verify FILE.tar`: a published map frozen
 * as an archive that proves, years later, that the same inputs and software give the same
 * tiles. The archive holds a manifest (the canonical config and its hash, every source file's
 * SHA-256, the software's versions and the dependency lock's SHA-256, a sample of tiles with
 * the SHA-256 of each PNG) and the layer file as written; never the sources themselves.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { loadSettings, type Settings } from '../config.js';
import { TileError } from '../errors.js';
import { loadLayer, type Layer } from '../layers/layer.js';
import { findLayerFile } from '../layers/registry.js';
import { formatIssues } from '../ops/operator.js';
import { openRenderer, type Produce } from '../seed/produce.js';
import { notRegularFile, writeAtomic } from '../seed/runner.js';
import type { TileId } from '../tiles/mercator.js';
import { compareConfig, compareSoftware, compareSources, compareTiles, type Finding, type RenderedTile } from './compare.js';
import { dependencies, hashSources } from './inputs.js';
import { Manifest, MANIFEST_FORMAT, MANIFEST_NAME } from './manifest.js';
import { chooseSample, sampleGroups } from './sample.js';
import { ArchiveError, MAX_ARCHIVE_BYTES, readTar, writeTar } from './tar.js';
import { parseFlags } from '../args.js';

export const FREEZE_USAGE = 'tilegraph freeze LAYER -o FILE.tar';
export const VERIFY_USAGE = 'tilegraph verify FILE.tar';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

export async function freezeCommand(args: string[]): Promise<void> {
  const { positionals, values } = parseFlags({ args, allowPositionals: true, options: { output: { type: 'string', short: 'o' } } });
  if (positionals.length !== 1 || values.output === undefined) throw new Error(`usage: ${FREEZE_USAGE}`);
  const t0 = performance.now();
  const out = path.resolve(values.output);
  // The archive replaces a file there, never a device, a FIFO or a directory (as root, renaming over /dev/full replaced the device).
  if (await notRegularFile(out)) throw new Error(`-o ${values.output}: exists and is not a regular file`);
  const settings = loadSettings();
  const layer = await loadLayer(findLayerFile(settings.layersDir, positionals[0]!), { layersDir: settings.layersDir, allowedHosts: settings.allowedHosts });
  const layerText = await readFile(layer.file);
  const [sources, software, tiles] = await Promise.all([
    hashSources(layer, settings.layersDir),
    dependencies(),
    withRenderer(
      settings,
      layer,
      (t, err) => {
        throw new Error(`tile ${t.z}/${t.x}/${t.y} of '${layer.name}' cannot be rendered, nothing was frozen: ${(err as Error).message}`);
      },
      (render) => chooseSample(sampleGroups(layer), render),
    ),
  ]);
  const createdAt = new Date();
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    createdAt: createdAt.toISOString(),
    layer: { name: layer.name, file: path.basename(layer.file), configHash: layer.hash, version: layer.version, config: { ...layer.config } },
    sources,
    dependencies: software,
    sample: { format: 'png', scale: 1, tiles },
  };
  const archive = writeTar(
    [
      { name: MANIFEST_NAME, data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) },
      { name: manifest.layer.file, data: layerText },
    ],
    createdAt,
  );
  // Written whole or not at all: a half-written archive would be refused as truncated anyway.
  try {
    await writeAtomic(out, archive);
  } catch (err) {
    throw new Error(`-o ${values.output}: cannot write the archive (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      cause: err,
    });
  }
  const files = sources.flatMap((s) => (s.kind === 'mosaic' ? s.members : [s]));
  const bytes = files.reduce((n, f) => n + f.size, 0);
  const empty = tiles.filter((t) => t.empty).length;
  console.log(`froze ${layer.name} into ${values.output} (${archive.length} bytes) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`  config     sha256 ${layer.hash}, version ${layer.version}`);
  console.log(`  sources    ${files.length} file(s), ${bytes} bytes, each hashed whole (SHA-256)`);
  console.log(`  software   ${softwareLine(software)}`);
  console.log(
    `  lock       ${software.packageLock ? `package-lock.json sha256 ${software.packageLock}` : 'no package-lock.json beside the installed package'}`,
  );
  console.log(`  sample     ${tiles.length} tiles over zooms ${layer.config.minzoom}-${layer.config.maxzoom} (${empty} empty), PNG SHA-256 each`);
}

export async function verifyCommand(args: string[]): Promise<void> {
  const { positionals } = parseFlags({ args, allowPositionals: true });
  if (positionals.length !== 1) throw new Error(`usage: ${VERIFY_USAGE}`);
  const file = positionals[0]!;
  const { manifest, layerText } = await readArtifact(file);
  const settings = loadSettings();
  const was = manifest.dependencies;
  console.log(`verify ${manifest.layer.name} from ${file}: frozen ${manifest.createdAt} with ${softwareLine(was)}`);

  const findings: Finding[] = compareSoftware(was, await dependencies());
  let layer: Layer | undefined;
  let refusal: string | undefined;
  try {
    layer = await loadLayer(findLayerFile(settings.layersDir, manifest.layer.name), { layersDir: settings.layersDir, allowedHosts: settings.allowedHosts });
  } catch (err) {
    refusal = (err as Error).message;
  }
  if (!layer) {
    report(findings);
    console.log(`FAILED   layer '${manifest.layer.name}' cannot be loaded from ${settings.layersDir}: ${refusal}`);
    console.log(`not verified: the layer cannot be loaded, no tile was rendered`);
    process.exitCode = 1;
    return;
  }
  findings.push(...compareConfig({ hash: manifest.layer.configHash, config: manifest.layer.config }, { hash: layer.hash, config: layer.config }));
  const text = await readFile(layer.file);
  if (layer.hash === manifest.layer.configHash && !text.equals(layerText))
    console.log(`note     ${path.basename(layer.file)}: its text differs from the frozen file's, its canonical config is the same`);

  const [sources, tiles] = await Promise.all([
    hashSources(layer, settings.layersDir),
    withRenderer(
      settings,
      layer,
      (_t, err) => ({ error: (err as Error).message }),
      (render) => Promise.all(manifest.sample.tiles.map(render)),
    ),
  ]);
  findings.push(...compareSources(manifest.sources, sources), ...compareTiles(manifest.sample.tiles, tiles));
  report(findings);

  const count = (kind: Finding['kind']) => findings.filter((f) => f.kind === kind).length;
  const [inputs, software, differ] = [count('input'), count('software'), count('tile')];
  const n = manifest.sample.tiles.length;
  if (differ && !inputs)
    console.log(
      software
        ? 'note     the inputs are the frozen ones: the tiles differ with the software named above'
        : 'note     the inputs and software are the frozen ones, yet tiles differ: a rendering that is not reproducible (please report it)',
    );
  if (inputs || differ) {
    const what = [inputs && `${inputs} input(s) changed`, differ && `${differ} of ${n} sample tiles differ`].filter(Boolean).join(', ');
    console.log(`not verified: ${what}`);
    process.exitCode = 1;
    return;
  }
  console.log(
    `verified: the config and ${sources.length} source(s) are the frozen ones, and all ${n} sample tiles are the same${software ? ` (with other software: see above)` : ''}`,
  );
}

function report(findings: readonly Finding[]): void {
  for (const f of findings) {
    console.log(`${f.kind === 'software' ? 'changed ' : 'FAILED  '} ${f.message}`);
    for (const line of f.detail ?? []) console.log(`           ${line}`);
  }
}

function softwareLine(d: Manifest['dependencies']): string {
  return `tilegraph ${d.tilegraph}, Node ${d.node} (zlib ${d.zlib}), sharp ${d.sharp}, libvips ${d.libvips}, ${d.platform}`;
}

/**
 * Runs `use` with a function that renders a tile through the render pool, as PNG at scale 1:
 * the server's own bytes, hashed. A tile the service refuses (a zoom out of range, a mosaic tile
 * over MOSAIC_MAX_FILES) comes back refused; any other failure goes to `failed`, which may throw.
 */
async function withRenderer<R>(
  settings: Settings,
  layer: Layer,
  failed: (t: TileId, err: unknown) => Partial<RenderedTile>,
  use: (render: (t: TileId) => Promise<RenderedTile>) => Promise<R>,
): Promise<R> {
  const renderer = openRenderer(settings);
  try {
    const produce: Produce = renderer.producer(layer, 'png');
    return await use(async ({ z, x, y }) => {
      try {
        // service.request throws at once for a tile it refuses: inside the promise.
        const { body } = await Promise.resolve({ z, x, y }).then(produce);
        return body ? { z, x, y, sha256: sha256(body), bytes: body.length } : { z, x, y, empty: true };
      } catch (err) {
        if (err instanceof TileError && (err.code === 'bad_request' || err.code === 'not_found')) return { z, x, y, refused: err.message };
        return { z, x, y, ...failed({ z, x, y }, err) };
      }
    });
  } finally {
    await renderer.close();
  }
}

/** The manifest and the layer file of an archive, or an error that says what is wrong with it. */
async function readArtifact(file: string): Promise<{ manifest: Manifest; layerText: Buffer }> {
  const fail = (msg: string): never => {
    throw new Error(`${file}: ${msg}`);
  };
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => fail(`cannot read the file (${err.code ?? 'error'})`));
  if (!info.isFile()) fail('not a regular file');
  if (info.size > MAX_ARCHIVE_BYTES) fail(`${info.size} bytes; an archive of tilegraph freeze is at most ${MAX_ARCHIVE_BYTES}`);
  let files: Map<string, Uint8Array>;
  try {
    files = readTar(await readFile(file));
  } catch (err) {
    return fail(err instanceof ArchiveError ? err.message : `cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const raw = files.get(MANIFEST_NAME) ?? fail(`the archive holds no ${MANIFEST_NAME}: not one that tilegraph freeze wrote`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch (err) {
    return fail(`${MANIFEST_NAME} is not JSON (${(err as Error).message})`);
  }
  const parsed = Manifest.safeParse(json);
  if (!parsed.success) return fail(`${MANIFEST_NAME} is not a manifest of tilegraph freeze: ${formatIssues(parsed.error)}`);
  const manifest = parsed.data;
  const layerText = files.get(manifest.layer.file) ?? fail(`the archive holds no ${manifest.layer.file}, which its manifest names`);
  return { manifest, layerText: Buffer.from(layerText) };
}
