/**
 * What a frozen artifact records (`manifest.json` in the archive): the one declaration of its
 * shape, checked when `tilegraph verify` reads it.
 */
import { z } from 'zod';
import { LAYER_NAME } from '../layers/layer.js';

export const MANIFEST_FORMAT = 'tilegraph-freeze/1';
export const MANIFEST_NAME = 'manifest.json';

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 in hex');
const Coordinate = z
  .number()
  .int()
  .min(0)
  .max(2 ** 30);

/** One file's bytes: where it is (relative to LAYERS_DIR, or its URL), its size and SHA-256. */
export const FileHash = z.strictObject({
  /** As the layer file (or the mosaic's listing) names it. */
  ref: z.string(),
  /** A path relative to LAYERS_DIR, or the URL: never a server's absolute path. */
  location: z.string(),
  size: z.number().int().min(0),
  sha256: Sha256,
});
export type FileHash = z.infer<typeof FileHash>;

export const SourceRecord = z.union([
  z.strictObject({ name: z.string(), kind: z.enum(['file', 'url']), ...FileHash.shape }),
  z.strictObject({ name: z.string(), kind: z.literal('mosaic'), ref: z.string(), members: z.array(FileHash) }),
]);
export type SourceRecord = z.infer<typeof SourceRecord>;

/** The software that decides a tile's bytes. */
export const Dependencies = z.strictObject({
  tilegraph: z.string(),
  node: z.string(),
  /** Node's zlib: the render threads deflate indexed PNGs with it. */
  zlib: z.string(),
  sharp: z.string(),
  /** libvips, under sharp: it encodes the RGBA tiles. */
  libvips: z.string(),
  platform: z.string(),
  /** SHA-256 of the package-lock.json beside the installed package, null without one. */
  packageLock: Sha256.nullable(),
});
export type Dependencies = z.infer<typeof Dependencies>;

/** A sample tile: its PNG's SHA-256 and size, `empty` when the layer has nothing there (204), or why the service refused it. */
export const SampleTile = z.strictObject({
  z: z.number().int().min(0).max(30),
  x: Coordinate,
  y: Coordinate,
  sha256: Sha256.optional(),
  bytes: z.number().int().min(0).optional(),
  empty: z.literal(true).optional(),
  refused: z.string().optional(),
});
export type SampleTile = z.infer<typeof SampleTile>;

export const Manifest = z.strictObject({
  format: z.literal(MANIFEST_FORMAT, { error: `expected format '${MANIFEST_FORMAT}'` }),
  createdAt: z.string(),
  layer: z.strictObject({
    name: z.string().regex(LAYER_NAME, 'not a layer name'),
    /** The layer file's name in the archive (and in LAYERS_DIR). */
    file: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}\.ya?ml$/, 'not a layer file name'),
    configHash: Sha256,
    version: z.string(),
    /** The canonical config (GET /layers/{layer}). */
    config: z.record(z.string(), z.unknown()),
  }),
  sources: z.array(SourceRecord),
  dependencies: Dependencies,
  sample: z.strictObject({
    format: z.literal('png'),
    scale: z.literal(1),
    tiles: z.array(SampleTile).max(1024),
  }),
});
export type Manifest = z.infer<typeof Manifest>;
