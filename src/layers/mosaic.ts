/**
 * Mosaic sources in layer files: many COGs behind one source name.
 *
 * ```yaml
 * sources:
 *   dem: { mosaic: ./data/dem-pieces/*.tif, method: first }   # a glob, a folder, or a list
 *   s2:  { stac: ./data/items.geojson, asset: visual }          # a STAC ItemCollection's assets
 * ```
 *
 * Each member's header is read once (and again only when its identity changes), its outline
 * goes into the layer's index (src/tiles/mosaic.ts), and a tile's cache key carries the
 * versions of the members under it alone: replacing one COG changes only its own tiles.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { TileError } from '../errors.js';
import type { MemberRef } from '../render/mosaic.js';
import { byteSource } from '../sources/bytesource.js';
import { Cog, type CogMeta } from '../sources/cog.js';
import { MOSAIC_METHODS, type MosaicMethod } from '../sources/composite.js';
import { MosaicIndex } from '../tiles/mosaic.js';

/** Members a mosaic may list: its headers are held in memory, about 2 KB each. */
export const MAX_MEMBERS = 50_000;
/** A STAC ItemCollection larger than this is refused before it is parsed. */
const MAX_STAC_BYTES = 64 * 1024 * 1024;
/** Member headers read at once while a mosaic loads. */
const OPEN_CONCURRENCY = 16;

// A string checked by a refinement rather than an enum: a refinement's issue does not end the
// parse, so the unions around it (a string source, a mosaic, a STAC collection) report it as it
// is, where an enum's would leave only "Invalid input".
const method = z
  .string()
  .refine((m) => (MOSAIC_METHODS as readonly string[]).includes(m), {
    error: (iss) => `method '${String(iss.input)}' is not one of ${MOSAIC_METHODS.join(', ')}`,
  })
  .optional();
export const MosaicRef = z.union([
  z.strictObject({ mosaic: z.union([z.string().min(1).max(2000), z.array(z.string().min(1).max(2000)).min(1).max(MAX_MEMBERS)]), method }),
  z.strictObject({ stac: z.string().min(1).max(2000), asset: z.string().min(1).max(200), method }),
]);
export type MosaicRef = z.infer<typeof MosaicRef>;

export interface MosaicMember {
  /** As the layer file or the STAC item names it. */
  ref: string;
  location: string;
  version: string;
  meta: CogMeta;
}

export interface Mosaic {
  method: MosaicMethod;
  members: MosaicMember[];
  index: MosaicIndex;
}

/** Resolves a member reference the way a layer's sources are (inside LAYERS_DIR, or an allowed URL). */
export type Resolve = (ref: string, baseDir: string) => Promise<string>;

/**
 * The mosaic a source names: its members listed (a glob in listed order, sorted), their
 * headers read, checked to share band meaning, and indexed.
 */
export async function loadMosaic(spec: MosaicRef, baseDir: string, layersDir: string, resolve: Resolve): Promise<Mosaic> {
  const refs = 'stac' in spec ? await stacMembers(spec.stac, spec.asset, baseDir, resolve) : await listMembers(spec.mosaic, baseDir, layersDir, resolve);
  if (refs.length === 0) throw new Error(`the mosaic has no members ('${'stac' in spec ? spec.stac : String(spec.mosaic)}' matches no file)`);
  if (refs.length > MAX_MEMBERS) throw new Error(`the mosaic lists ${refs.length} members; at most ${MAX_MEMBERS}`);
  const members: MosaicMember[] = new Array(refs.length);
  let next = 0;
  const worker = async () => {
    while (next < refs.length) {
      const i = next++;
      const { ref, location } = refs[i]!;
      const meta = await memberHeader(location).catch((err: Error) => {
        throw new Error(`member '${ref}': ${err.message.split(location).join(ref)}`);
      });
      members[i] = { ref, location, version: meta.version, meta };
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, refs.length) }, worker));
  const first = members[0]!.meta;
  for (const m of members) {
    if (m.meta.bands !== first.bands)
      throw new Error(`member '${m.ref}' has ${m.meta.bands} band(s), '${members[0]!.ref}' ${first.bands}: members share their bands`);
    if (kindOf(m.meta.dataType) !== kindOf(first.dataType))
      throw new Error(
        `member '${m.ref}' holds ${m.meta.dataType}, '${members[0]!.ref}' ${first.dataType}: members hold numbers of one kind (integers or floating point)`,
      );
  }
  return { method: (spec.method ?? 'first') as MosaicMethod, members, index: new MosaicIndex(members.map((m) => m.meta)) };
}

function kindOf(dataType: string): 'float' | 'integer' {
  return dataType.startsWith('float') ? 'float' : 'integer';
}

/**
 * Headers already read, by location: a reload (SIGHUP, a changed member) reads again only the
 * members whose identity changed, and concurrent loads of one member share its read.
 */
const headers = new Map<string, { version: string; meta: Promise<CogMeta> }>();

async function memberHeader(location: string): Promise<CogMeta> {
  const src = byteSource(location);
  let version: string;
  try {
    version = (await src.identity()).version;
  } finally {
    await src.close().catch(() => {});
  }
  const held = headers.get(location);
  if (held && held.version === version) return held.meta;
  const meta = Cog.open(location).then(async (cog) => {
    await cog.close().catch(() => {});
    return cog.meta;
  });
  headers.set(location, { version, meta });
  meta.catch(() => {
    if (headers.get(location)?.meta === meta) headers.delete(location);
  });
  return meta;
}

/** A glob's characters, in the last path segment only. */
const GLOB = /[*?[]/;

async function listMembers(spec: string | string[], baseDir: string, layersDir: string, resolve: Resolve): Promise<{ ref: string; location: string }[]> {
  if (Array.isArray(spec)) return Promise.all(spec.map(async (ref) => ({ ref, location: await resolve(ref, baseDir) })));
  const dir = GLOB.test(spec) ? path.posix.dirname(spec) : spec;
  const pattern = GLOB.test(spec) ? path.posix.basename(spec) : '*.{tif,tiff}';
  if (GLOB.test(dir)) throw new Error(`'${spec}': a mosaic's glob matches file names in one folder ('./data/pieces/*.tif')`);
  const abs = path.resolve(baseDir, dir);
  const root = await realpath(layersDir);
  let real: string;
  try {
    real = await realpath(abs);
  } catch {
    throw new Error(`'${dir}' does not exist`);
  }
  if (!(real === root || real.startsWith(root + path.sep))) throw new Error(`'${dir}' resolves outside the layers directory`);
  if (!(await stat(real)).isDirectory()) throw new Error(`'${dir}' is not a folder`);
  const match = globRegExp(pattern);
  const names = (await readdir(real, { withFileTypes: true })).filter((d) => !d.isDirectory() && match.test(d.name)).map((d) => d.name);
  names.sort();
  return Promise.all(
    names.map(async (n) => {
      const ref = path.posix.join(dir, n);
      return { ref, location: await resolve(ref, baseDir) };
    }),
  );
}

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `*`, `?`, `[abc]` and `{tif,tiff}` in a file name, as a shell matches them (no `/`). */
export function globRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw new Error(`'${pattern}': '[' without ']'`);
      re += `[${pattern
        .slice(i + 1, end)
        .replace(/[\\\]^]/g, '\\$&')
        .replace(/^!/, '^')}]`;
      i = end;
    } else if (c === '{') {
      const end = pattern.indexOf('}', i + 1);
      if (end < 0) throw new Error(`'${pattern}': '{' without '}'`);
      re += `(?:${pattern
        .slice(i + 1, end)
        .split(',')
        .map(literal)
        .join('|')})`;
      i = end;
    } else re += literal(c);
  }
  return new RegExp(`^${re}$`);
}

const StacItems = z.object({
  type: z.literal('FeatureCollection'),
  features: z
    .array(
      z.object({
        id: z.union([z.string(), z.number()]).optional(),
        assets: z.record(z.string(), z.object({ href: z.string().min(1).max(2000) }).loose()).optional(),
      }),
    )
    .max(MAX_MEMBERS),
});

/** A STAC ItemCollection's asset of one key, per item, in the collection's order; hrefs relative to the file. */
async function stacMembers(file: string, asset: string, baseDir: string, resolve: Resolve): Promise<{ ref: string; location: string }[]> {
  const location = await resolve(file, baseDir);
  if (/^https?:/i.test(location)) throw new Error(`'${file}': a STAC ItemCollection is read from a file inside the layers directory`);
  const info = await stat(location);
  if (info.size > MAX_STAC_BYTES) throw new Error(`'${file}' is ${info.size} bytes; a STAC ItemCollection is at most ${MAX_STAC_BYTES}`);
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(location, 'utf8'));
  } catch (err) {
    throw new Error(`'${file}' is not JSON (${(err as Error).message})`, { cause: err });
  }
  const parsed = StacItems.safeParse(doc);
  if (!parsed.success)
    throw new Error(`'${file}' is not a STAC ItemCollection (a GeoJSON FeatureCollection of items): ${parsed.error.issues[0]?.message ?? ''}`);
  const dir = path.posix.dirname(file);
  return Promise.all(
    parsed.data.features.map(async (f, i) => {
      const href = f.assets?.[asset]?.href;
      if (!href) throw new Error(`'${file}': item ${f.id ?? i} has no asset '${asset}'`);
      // A URL or an absolute path as written (resolve refuses what is not allowed); anything else is relative to the file.
      const ref = /^[a-z][a-z0-9+.-]*:/i.test(href) || path.posix.isAbsolute(href) ? href : path.posix.join(dir, href);
      return { ref, location: await resolve(ref, baseDir) };
    }),
  );
}

/** What a tile of a layer with mosaics reads, and the version its cache key carries. */
export interface TileMembers {
  /** The layer's base version with the versions of the members under the tile. */
  version: string;
  members: Record<string, MemberRef[]>;
}

/**
 * The members under a tile for each mosaic source, at most `limit` per source: past it the
 * tile is refused (400) with the zoom from which no tile needs more.
 */
export function tileMembers(
  layer: {
    name: string;
    baseVersion: string;
    mosaics: ReadonlyMap<string, Mosaic>;
    config: { tileSize: number; maxzoom: number };
    graph: { buffer(): number };
  },
  tile: { z: number; x: number; y: number; bounds?: readonly [number, number, number, number]; size?: number },
  limit: number,
): TileMembers {
  const h = createHash('sha1').update(layer.baseVersion);
  const members: Record<string, MemberRef[]> = {};
  for (const [name, m] of layer.mosaics) {
    const found = m.index.forTile(tile, tile.size ?? layer.config.tileSize, layer.graph.buffer());
    if (found.length > limit) {
      const from = m.index.minzoomFor(limit, layer.config.maxzoom);
      throw new TileError(
        'bad_request',
        'too many mosaic members',
        `tile ${tile.z}/${tile.x}/${tile.y} of layer '${layer.name}' covers ${found.length} members of mosaic '${name}'; at most ${limit} (MOSAIC_MAX_FILES) are read for one tile: ` +
          (from !== null && from > tile.z
            ? `from zoom ${from} no tile needs more (a sensible minzoom for the layer)`
            : `raise MOSAIC_MAX_FILES to at least ${found.length} to serve it`),
      );
    }
    members[name] = found.map((i) => {
      const { location, version } = m.members[i]!;
      h.update(`\n${location}@${version}`);
      return { location, version };
    });
  }
  return { version: h.digest('hex').slice(0, 16), members };
}
