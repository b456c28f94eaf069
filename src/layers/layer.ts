/**
 * Layer files -> validated layers: the canonical config (defaults filled, keys sorted), its
 * SHA-256 hash, the opened sources with their version identities, and the operator graph.
 */
import { createHash } from 'node:crypto';
import { realpathSync, statSync, type Stats } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import proj4 from '../proj4.js';
import { TileError } from '../errors.js';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { buildGraph } from '../ops/build.js';
import { formatIssues, operatorsOf, Sequential, type Operator } from '../ops/operator.js';
import type { CodeOperators } from '../ops/registry.js';
import type { LayerSpec } from '../render/task.js';
import { Cog, type CogMeta } from '../sources/cog.js';
import { loadMosaic, MosaicRef, type Mosaic } from './mosaic.js';

export const LAYER_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** The 404 of a layer name no layer has; a name longer than any layer's is cut (a client may send kilobytes of it). */
export function unknownLayer(name: string): TileError {
  return new TileError('not_found', 'unknown layer', `no layer named '${name.length > 64 ? `${name.slice(0, 64)}…` : name}'`);
}
/** Layer files are small; anything larger is refused before it is parsed. */
const MAX_FILE_BYTES = 256 * 1024;
/**
 * Flow collections (`[`, `{`) nested deeper than this are refused before parsing: the YAML
 * parser recurses once per level, and 100,000 levels take seconds to fail. Brackets inside
 * strings are counted too, which is harmless at this depth.
 */
const MAX_FLOW_DEPTH = 64;
/**
 * Block collections nest by indentation and by compact indicators (`- - - x`, `? ? x`): a line
 * whose content starts past this column is refused before parsing. Near the stack's end a
 * regular expression the parser compiles there aborts the whole process (V8 reports it as
 * out of memory), so no document may take the parser anywhere near it.
 */
const MAX_BLOCK_COLUMN = 128;
/** The deepest plain data a document may give once its aliases are followed. */
const MAX_DATA_DEPTH = MAX_FLOW_DEPTH + MAX_BLOCK_COLUMN;
/** Keys that reach Object.prototype when assigned to a plain object; refused anywhere in a file. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

const zoom = z.number().int().min(0).max(30);
const LayerFile = z
  .strictObject({
    title: z.string().max(200).optional(),
    description: z.string().max(2000).optional(),
    attribution: z.string().max(1000).optional(),
    sources: z
      .record(z.string().regex(IDENTIFIER, 'source names are identifiers'), z.union([z.string().min(1).max(2000), MosaicRef]))
      .refine((s) => Object.keys(s).length >= 1 && Object.keys(s).length <= 16, 'between 1 and 16 sources'),
    minzoom: zoom.optional(),
    maxzoom: zoom.optional(),
    tileSize: z.union([z.literal(256), z.literal(512)], { error: 'expected 256 or 512' }).optional(),
    empty: z.union([z.literal(204), z.literal('transparent')], { error: "expected 204 or 'transparent'" }).optional(),
    cache: z
      .strictObject({
        maxAge: z.number().int().min(0).optional(),
        sMaxAge: z.number().int().min(0).optional(),
        staleWhileRevalidate: z.number().int().min(0).optional(),
        l2Ttl: z.number().int().min(0).optional(),
        l2EmptyTtl: z.number().int().min(0).optional(),
      })
      .optional(),
    pipeline: z.union([
      z.array(z.record(z.string(), z.unknown())).min(1),
      z.strictObject({
        nodes: z.record(z.string().regex(IDENTIFIER, 'node names are identifiers (letters, digits, _ and -)'), z.record(z.string(), z.unknown())),
        output: z.string(),
      }),
    ]),
  })
  .refine((d) => (d.minzoom ?? 0) <= (d.maxzoom ?? 18), { path: ['minzoom'], message: 'minzoom is above maxzoom' });
type LayerFileData = z.infer<typeof LayerFile>;

export interface CachePolicy {
  /** Seconds browsers keep a tile (`max-age`). */
  maxAge: number;
  /** Seconds shared caches (nginx, a CDN) keep a tile (`s-maxage`). */
  sMaxAge: number;
  staleWhileRevalidate: number;
  /** Seconds a tile lives in Redis (L2); 0 keeps it out. Default: sMaxAge. */
  l2Ttl: number;
  /** The same for empty tiles (204 or transparent). Default: l2Ttl, at most an hour. */
  l2EmptyTtl: number;
}

export interface LayerSource {
  name: string;
  /** As written in the layer file (a mosaic's glob, list or STAC file). */
  ref: string;
  /** Absolute path or URL (a mosaic's first member). */
  location: string;
  version: string;
  /** The COG's metadata (a mosaic's first member's: the bands, nodata and palette all share). */
  meta: CogMeta;
  mosaic?: Mosaic;
}

export interface CanonicalConfig {
  attribution: string;
  cache: CachePolicy;
  description: string;
  empty: 204 | 'transparent';
  maxzoom: number;
  minzoom: number;
  pipeline: unknown;
  sources: Record<string, string | MosaicRef>;
  tileSize: 256 | 512;
  title: string;
}

export interface Layer {
  name: string;
  file: string;
  config: CanonicalConfig;
  /** SHA-256 (hex) of the canonical config. */
  hash: string;
  /**
   * The config hash and every source's version identity (each mosaic member's included): it
   * changes whenever a tile could. Tile URLs carry it (`?v=`), and so do seeding manifests.
   */
  version: string;
  /**
   * The config hash and the version identities of the sources that are not mosaics: a tile's
   * cache key and ETag carry it with the versions of the mosaic members under that tile alone
   * (src/layers/mosaic.ts), so that replacing one member re-renders only its own tiles. Without
   * mosaics it is `version`.
   */
  baseVersion: string;
  sources: LayerSource[];
  /** The mosaic sources by name. */
  mosaics: ReadonlyMap<string, Mosaic>;
  /** WGS84 [west, south, east, north] of the data. */
  bounds: [number, number, number, number];
  graph: Operator;
  spec: LayerSpec;
  /** An ad-hoc pipeline's limits (src/layers/pipelines.ts): the time one tile may take. */
  budget?: { renderMs: number };
}

export class LayerError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

export interface LoadOptions {
  layersDir: string;
  /** Hosts http(s) sources may name. */
  allowedHosts: readonly string[];
}

/** Reads, validates, opens and builds one layer file. Throws LayerError naming the file and the problem. */
export async function loadLayer(file: string, opts: LoadOptions): Promise<Layer> {
  const rel = path.relative(opts.layersDir, file) || file;
  const fail = (msg: string): never => {
    throw new LayerError(rel, msg);
  };
  const name = path.basename(file).replace(/\.ya?ml$/, '');
  if (!LAYER_NAME.test(name)) fail(`'${name}' is not a layer name: use lower-case letters, digits, '-' and '_' (at most 64)`);
  let info: Stats;
  try {
    // A layer file may be a link (a mounted config map), but only to a file inside the
    // directory: parts of any other file would reach /layers through the error messages.
    const [real, root] = await Promise.all([realpath(file), realpath(opts.layersDir)]);
    if (!isInside(real, root)) return fail('a link to a file outside the layers directory');
    info = await stat(real);
  } catch (err) {
    if (err instanceof LayerError) throw err;
    // The code only: the error's own message spells out the server's paths.
    return fail(`cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // A device (/dev/zero) or a FIFO would never finish reading.
  if (!info.isFile()) fail('not a regular file');
  if (info.size > MAX_FILE_BYTES) fail(`the file is ${info.size} bytes; layer files are at most ${MAX_FILE_BYTES}`);
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => fail(`cannot read the file (${err.code ?? 'error'})`));
  return layerFromText(text, { name, file, dir: path.dirname(file), fail }, opts);
}

/** Where a layer document comes from, for `layerFromText`. */
export interface LayerText {
  name: string;
  /** The file it was read from (or a name for a document that is not a file). */
  file: string;
  /** Relative source paths are resolved from here. */
  dir: string;
  fail: (msg: string) => never;
  /** Refuses a source location the document may not read (ad-hoc pipelines read the loaded layers' sources only). */
  checkSource?: (location: string, ref: string) => void;
}

/** Validates, opens and builds a layer document (YAML or JSON, which YAML takes too). */
export async function layerFromText(text: string, t: LayerText, opts: LoadOptions): Promise<Layer> {
  return layerFromData(parseLayerYaml(text, t.fail), t, opts);
}

/**
 * Validates, opens and builds a layer document already parsed: a layer file's, or one a
 * program builds (src/api/). Only a program passes `code`, which builds the operators that
 * take functions (`tap`, `lambda`); without it they are refused, as in every layer file.
 */
export async function layerFromData(doc: unknown, t: LayerText, opts: LoadOptions, code?: CodeOperators): Promise<Layer> {
  const { name, file, fail } = t;
  const parsed = LayerFile.safeParse(doc);
  if (!parsed.success) fail(formatIssues(parsed.error));
  const data = parsed.data!;

  const sources: LayerSource[] = [];
  const metas = new Map<string, { meta: CogMeta; mosaic?: boolean }>();
  const mosaics = new Map<string, Mosaic>();
  const resolve = (ref: string, base: string) => resolveSource(ref, base, opts);
  for (const [srcName, ref] of Object.entries(data.sources)) {
    if (typeof ref !== 'string') {
      if (t.checkSource) fail(`source '${srcName}': a mosaic; this document may read only single files that loaded layers read`);
      const mosaic = await loadMosaic(ref, t.dir, opts.layersDir, resolve).catch((err: Error) => fail(`source '${srcName}': ${err.message}`));
      const first = mosaic.members[0]!;
      mosaics.set(srcName, mosaic);
      metas.set(srcName, { meta: first.meta, mosaic: true });
      sources.push({
        name: srcName,
        ref: 'stac' in ref ? ref.stac : String(ref.mosaic),
        location: first.location,
        version: first.version,
        meta: first.meta,
        mosaic,
      });
      continue;
    }
    const location = await resolve(ref, t.dir).catch((err: Error) => fail(`source '${srcName}': ${err.message}`));
    if (t.checkSource) {
      try {
        t.checkSource(location, ref);
      } catch (err) {
        fail(`source '${srcName}': ${(err as Error).message}`);
      }
    }
    // Named as the layer file names it: refusals are listed by GET /layers, server paths are not.
    const cog = await Cog.open(location).catch((err: Error) => fail(`source '${srcName}': ${err.message.split(location).join(ref)}`));
    // The render threads open their own; the server keeps only the metadata.
    await cog.close().catch(() => {});
    metas.set(srcName, cog);
    sources.push({ name: srcName, ref, location, version: cog.meta.version, meta: cog.meta });
  }
  // Files the graph reads besides its sources (models), by the name the layer file gives them.
  const files = new Map<string, { location: string; identity: string }>();
  const graphFile = (ref: string): string => {
    const known = files.get(ref);
    if (known) return known.location;
    const location = resolveFileSync(ref, t.dir, opts.layersDir);
    const info = statSync(location);
    files.set(ref, { location, identity: `${info.size}-${Math.round(info.mtimeMs)}` });
    return location;
  };
  let graph: Operator;
  try {
    graph = buildGraph(data.pipeline, { sources: metas, file: graphFile, code });
    for (const op of operatorsOf(graph)) await op.check();
  } catch (err) {
    return fail((err as Error).message);
  }
  const config = canonicalize(data, graph);
  const hash = sha256(stableStringify(config));
  const identity = (s: LayerSource) => (s.mosaic ? `mosaic ${stableStringify(config.sources[s.name])}` : `${s.location}@${s.version}`);
  const fileIdentities = [...files].map(([ref, f]) => `\nfile ${ref}=${f.location}@${f.identity}`);
  const baseVersion = sha256(hash + sources.map((s) => `\n${s.name}=${identity(s)}`).join('') + fileIdentities.join('')).slice(0, 16);
  const members = [...mosaics].flatMap(([n, m]) => m.members.map((x) => `\n${n}:${x.location}@${x.version}`));
  const version = mosaics.size ? sha256(baseVersion + members.join('')).slice(0, 16) : baseVersion;
  const spec: LayerSpec = { name, version, pipeline: config.pipeline, sources: Object.fromEntries(sources.map((s) => [s.name, s.location])) };
  if (mosaics.size) spec.mosaics = Object.fromEntries([...mosaics].map(([n, m]) => [n, { method: m.method }]));
  if (files.size) spec.files = Object.fromEntries([...files].map(([ref, f]) => [ref, f.location]));
  const bounds = unionBounds(sources.map((s) => (s.mosaic ? s.mosaic.index.bounds : wgs84Bounds(s.meta))));
  return { name, file, config, hash, version, baseVersion, sources, mosaics, bounds, graph, spec };
}

/** A layer file's YAML as plain data, for `layerFromData` to validate. */
function parseLayerYaml(text: string, fail: (msg: string) => never): unknown {
  if (flowDepth(text) > MAX_FLOW_DEPTH) fail(`not valid YAML: nested more than ${MAX_FLOW_DEPTH} levels deep`);
  const deep = deepLine(text);
  if (deep) fail(`not valid YAML: line ${deep.line} is nested ${deep.column} columns deep (at most ${MAX_BLOCK_COLUMN})`);
  // Aliases are capped so that a "billion laughs" file fails at once instead of expanding.
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) fail(`not valid YAML: ${doc.errors[0]!.message}`);
  // Unknown tags (!!python/object, !!js/function, !include) only warn in the yaml library,
  // which then reads the tagged value as a plain string: refuse them instead.
  if (doc.warnings.length) fail(`unsupported YAML: ${doc.warnings[0]!.message}`);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 50 });
  } catch (err) {
    fail(`not valid YAML: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('a layer file is a YAML mapping (title, sources, pipeline, ...)');
  checkPlainData(raw, [], fail);
  return raw;
}

/** The deepest nesting of flow collections, counted without parsing. */
function flowDepth(text: string): number {
  let depth = 0,
    max = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return max;
}

/** The first line whose content starts past MAX_BLOCK_COLUMN, after its indentation and compact indicators (`- `, `? `, `: `). */
function deepLine(text: string): { line: number; column: number } | undefined {
  let line = 1;
  for (let start = 0; start < text.length; line++) {
    let i = start;
    for (;;) {
      while (text.charCodeAt(i) === 0x20) i++;
      const c = text.charCodeAt(i);
      const next = text.charCodeAt(i + 1);
      // An indicator, then a space: one more level on the same line.
      if ((c === 0x2d || c === 0x3f || c === 0x3a) && (next === 0x20 || next === 0x09)) i += 2;
      else break;
    }
    // Blank lines and comments nest nothing, however far they are indented.
    const content = text.charCodeAt(i);
    const blank = Number.isNaN(content) || content === 0x0a || content === 0x0d || content === 0x23;
    if (i - start > MAX_BLOCK_COLUMN && !blank) return { line, column: i - start };
    const end = text.indexOf('\n', i);
    if (end < 0) break;
    start = end + 1;
  }
  return undefined;
}

/**
 * Only plain data goes on to validation: mappings, lists, strings, numbers, booleans, null
 * (no !!binary, !!set, !!timestamp objects), and no key that reaches Object.prototype
 * (`__proto__`, `constructor`, `prototype`), which schema checks would otherwise drop silently.
 */
function checkPlainData(value: unknown, at: (string | number)[], fail: (msg: string) => never, inside: object[] = []): void {
  if (value === null || typeof value !== 'object') return;
  // An alias to a node around it makes data without end; aliases of aliases make it deep.
  if (inside.includes(value)) fail(`${describePath(at)}an alias inside the node it names`);
  if (inside.length >= MAX_DATA_DEPTH) fail(`${describePath(at.slice(0, 2))}nested more than ${MAX_DATA_DEPTH} levels deep once aliases are followed`);
  inside.push(value);
  if (Array.isArray(value)) value.forEach((v, i) => checkPlainData(v, [...at, i], fail, inside));
  else {
    if (Object.getPrototypeOf(value) !== Object.prototype)
      fail(`${describePath(at)}only plain YAML values are allowed (mappings, lists, strings, numbers, booleans, null)`);
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) fail(`${describePath([...at, key])}'${key}' is not allowed as a name or key`);
      checkPlainData((value as Record<string, unknown>)[key], [...at, key], fail, inside);
    }
  }
  inside.pop();
}

/** Where in a layer file a path points, worded as the loader's other errors are: "node 'x': ". */
function describePath(at: (string | number)[]): string {
  if (at[0] === 'pipeline' && at[1] === 'nodes' && at.length > 2) return `node '${at[2]}': `;
  if (at[0] === 'pipeline' && typeof at[1] === 'number') {
    const op = at[2];
    return `node 'step ${at[1] + 1}${op !== undefined ? ` (${op})` : ''}': `;
  }
  return at.length ? `${at.join('.')}: ` : '';
}

/** A source reference: a path under the layers directory (after links), or an allowed URL. */
async function resolveSource(ref: string, baseDir: string, opts: LoadOptions): Promise<string> {
  if (/^[a-z][a-z0-9+.-]*:/i.test(ref) && !/^[a-z]:[\\/]/i.test(ref)) {
    let url: URL;
    try {
      url = new URL(ref);
    } catch {
      throw new Error(`'${ref}' is not a valid URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`'${url.protocol}' sources are not allowed (only files under the layers directory and http(s) URLs)`);
    if (!opts.allowedHosts.includes(url.host.toLowerCase()) && !opts.allowedHosts.includes(url.hostname.toLowerCase())) {
      throw new Error(`host '${url.host}' is not allowed (ALLOWED_HOSTS: ${opts.allowedHosts.join(', ') || 'none'})`);
    }
    return url.href;
  }
  if (path.isAbsolute(ref)) {
    // Inside the layers directory the advice names the path to write instead, and not the directory: clients never see it.
    if (isInside(path.resolve(ref), path.resolve(opts.layersDir))) {
      const relative = path.relative(baseDir, ref).split(path.sep).join('/');
      throw new Error(`the path is absolute; sources are given relative to the layer file, as '${relative.startsWith('../') ? '' : './'}${relative}'`);
    }
    throw new Error(`'${ref}' is an absolute path; sources are given relative to the layer file`);
  }
  // As written first ('./data/../../x.tif'), then after links: either way it stays inside.
  if (!isInside(path.resolve(baseDir, ref), path.resolve(opts.layersDir))) throw new Error(`'${ref}' resolves outside the layers directory`);
  const root = await realpath(opts.layersDir);
  let real: string;
  try {
    real = await realpath(path.resolve(baseDir, ref));
  } catch {
    throw new Error(`'${ref}' does not exist`);
  }
  if (!isInside(real, root)) throw new Error(`'${ref}' resolves outside the layers directory`);
  // A directory fails to read; a FIFO would block the loader forever.
  if (!(await stat(real)).isFile()) throw new Error(`'${ref}' is not a regular file`);
  return real;
}

/** A file the graph reads (a model), relative to the layer file and inside the layers directory, as sources are. */
function resolveFileSync(ref: string, baseDir: string, layersDir: string): string {
  if (path.isAbsolute(ref) || /^[a-z][a-z0-9+.-]*:/i.test(ref))
    throw new Error(`file '${ref}': give a path relative to the layer file, inside the layers directory`);
  if (!isInside(path.resolve(baseDir, ref), path.resolve(layersDir))) throw new Error(`file '${ref}' resolves outside the layers directory`);
  let real: string;
  try {
    real = realpathSync(path.resolve(baseDir, ref));
  } catch {
    throw new Error(`file '${ref}' does not exist`);
  }
  if (!isInside(real, realpathSync(layersDir))) throw new Error(`file '${ref}' resolves outside the layers directory`);
  if (!statSync(real).isFile()) throw new Error(`file '${ref}' is not a regular file`);
  return real;
}

/** Whether the path is `root` or lies under it (both absolute, normalised). */
export function isInside(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function canonicalize(data: LayerFileData, graph: Operator): CanonicalConfig {
  const pipeline = graph instanceof Sequential ? graph.config().steps : graph.config();
  return sortKeys({
    attribution: data.attribution ?? '',
    cache: cachePolicy(data.cache ?? {}),
    description: data.description ?? '',
    empty: data.empty ?? 204,
    maxzoom: data.maxzoom ?? 18,
    minzoom: data.minzoom ?? 0,
    pipeline,
    // One spelling per file: './data/x.tif' and 'data/x.tif' are the same source.
    sources: Object.fromEntries(Object.entries(data.sources).map(([k, ref]) => [k, canonicalSource(ref)])),
    tileSize: data.tileSize ?? 256,
    title: data.title ?? '',
  }) as CanonicalConfig;
}

function canonicalSource(ref: string | MosaicRef): string | MosaicRef {
  const spelt = (r: string) => (/^https?:/i.test(r) ? r : path.posix.normalize(r));
  if (typeof ref === 'string') return spelt(ref);
  if ('stac' in ref) return { stac: spelt(ref.stac), asset: ref.asset, method: ref.method ?? 'first' };
  return { mosaic: Array.isArray(ref.mosaic) ? ref.mosaic.map(spelt) : spelt(ref.mosaic), method: ref.method ?? 'first' };
}

function cachePolicy(c: Partial<CachePolicy>): CachePolicy {
  const sMaxAge = c.sMaxAge ?? 86400;
  const l2Ttl = c.l2Ttl ?? sMaxAge;
  return { maxAge: c.maxAge ?? 3600, sMaxAge, staleWhileRevalidate: c.staleWhileRevalidate ?? 600, l2Ttl, l2EmptyTtl: c.l2EmptyTtl ?? Math.min(l2Ttl, 3600) };
}

export function sortKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortKeys) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out as T;
  }
  return value;
}

export function stableStringify(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The source's footprint in WGS84, from points along its edges (a reprojected edge bends).
 * East may exceed 180 for a layer across the antimeridian.
 */
export function wgs84Bounds(meta: CogMeta): [number, number, number, number] {
  const conv = proj4(meta.crs.proj4, 'EPSG:4326');
  const [a, b, c, d, e, f] = meta.geoTransform;
  let w = Infinity,
    s = Infinity,
    east = -Infinity,
    n = -Infinity;
  const N = 16;
  for (let k = 0; k <= N; k++) {
    const t = k / N;
    for (const [px, py] of [
      [t * meta.width, 0],
      [t * meta.width, meta.height],
      [0, t * meta.height],
      [meta.width, t * meta.height],
    ] as const) {
      const x = a + b * px + c * py;
      const y = d + e * px + f * py;
      let lon: number, lat: number;
      try {
        [lon, lat] = conv.forward([x, y]) as [number, number];
      } catch {
        continue;
      }
      if (!Number.isFinite(lon) || !Number.isFinite(lat)) continue;
      w = Math.min(w, lon);
      east = Math.max(east, lon);
      s = Math.min(s, lat);
      n = Math.max(n, lat);
    }
  }
  if (w === Infinity) return [-180, -85.0511287798066, 180, 85.0511287798066];
  // A geographic raster may run past ±180 (170° to 190°): its east edge stays past 180 rather
  // than being cut there, with the west edge within [-180, 180) (see boundsParts).
  if (east - w >= 360) return [-180, Math.max(-90, s), 180, Math.min(90, n)];
  const shift = w < -180 ? 360 : w >= 180 ? -360 : 0;
  return [w + shift, Math.max(-90, s), east + shift, Math.min(90, n)];
}

function unionBounds(all: [number, number, number, number][]): [number, number, number, number] {
  return all.reduce((u, b) => [Math.min(u[0], b[0]), Math.min(u[1], b[1]), Math.max(u[2], b[2]), Math.max(u[3], b[3])]);
}
