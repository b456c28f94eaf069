/**
 * The inputs of a frozen artifact: every source file's SHA-256 (a mosaic's members each), read
 * whole, and the software that decides the tiles' bytes.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { loadSharp } from '../sharp.js';
import type { Layer } from '../layers/layer.js';
import { byteSource } from '../sources/bytesource.js';
import type { Dependencies, FileHash, SourceRecord } from './manifest.js';

/** Bytes a URL source is read in at once. */
const URL_CHUNK = 8 * 1024 * 1024;
/** Mosaic members hashed at once. */
const HASH_CONCURRENCY = 4;

const isUrl = (location: string) => /^https?:\/\//i.test(location);

/**
 * Every source's bytes, hashed whole: a file streamed from disk, a URL read in ranges through
 * the project's byte source. The layer's version identity (size and mtime, or the ETag) is
 * checked before and after, so a file replaced while it is read is never recorded.
 */
export async function hashSources(layer: Layer, layersDir: string): Promise<SourceRecord[]> {
  const one = async (ref: string, location: string, version: string, what: string): Promise<FileHash> => {
    const src = byteSource(location);
    try {
      const changed = () => new Error(`${what} (${ref}) changed after the layer was loaded: run the command again`);
      if ((await src.identity()).version !== version) throw changed();
      const { size, sha256 } = isUrl(location) ? await hashUrl(location) : await hashFile(location);
      if ((await src.identity()).version !== version) throw changed();
      return { ref, location: isUrl(location) ? location : path.relative(layersDir, location).split(path.sep).join('/'), size, sha256 };
    } finally {
      await src.close().catch(() => {});
    }
  };
  const out: SourceRecord[] = [];
  for (const s of layer.sources) {
    if (!s.mosaic) {
      out.push({ name: s.name, kind: isUrl(s.location) ? 'url' : 'file', ...(await one(s.ref, s.location, s.version, `source '${s.name}'`)) });
      continue;
    }
    const members = s.mosaic.members;
    const hashes: FileHash[] = new Array(members.length);
    let next = 0;
    const worker = async () => {
      while (next < members.length) {
        const i = next++;
        const m = members[i]!;
        hashes[i] = await one(m.ref, m.location, m.version, `a member of mosaic '${s.name}'`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(HASH_CONCURRENCY, members.length) }, worker));
    out.push({ name: s.name, kind: 'mosaic', ref: s.ref, members: hashes });
  }
  return out;
}

async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    h.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: h.digest('hex') };
}

async function hashUrl(location: string): Promise<{ size: number; sha256: string }> {
  const src = byteSource(location);
  const { size } = await src.identity();
  const h = createHash('sha256');
  for (let at = 0; at < size; at += URL_CHUNK) {
    const bytes = await src.read(at, Math.min(URL_CHUNK, size - at));
    if (bytes.length === 0) throw new Error(`${location}: ends at byte ${at}, ${size} announced`);
    h.update(bytes);
  }
  return { size, sha256: h.digest('hex') };
}

/** The package's files: dist/src/freeze/ is three folders below package.json. */
const PACKAGE_ROOT = new URL('../../../', import.meta.url);
const TOOL_VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

/** The versions that decide a PNG's bytes, and the dependency lock the package was installed from. */
export async function dependencies(): Promise<Dependencies> {
  const sharp = await loadSharp();
  const lock = await readFile(new URL('package-lock.json', PACKAGE_ROOT)).catch(() => null);
  return {
    tilegraph: TOOL_VERSION,
    node: process.version,
    zlib: process.versions.zlib ?? 'unknown',
    sharp: sharp.versions.sharp ?? 'unknown',
    libvips: sharp.versions.vips,
    platform: `${process.platform}-${process.arch}`,
    packageLock: lock && createHash('sha256').update(lock).digest('hex'),
  };
}
