/**
 * The codec for each TIFF Compression value (tag 259), one file per codec, as LINZ basemaps'
 * tiler-sharp keeps them (`pipeline/decompressors.ts`). Adding a codec is a file and a line
 * here: cog.ts refuses at open what this table cannot read.
 */
import { Compression } from '../types.js';
import { inflate } from './deflate.js';
import { decodeLzw } from './lzw.js';
import type { OwnedBytes } from './output.js';
import { decodePackBits } from './packbits.js';
import { copyUncompressed } from './uncompressed.js';
import { unzstd } from './zstd.js';

/**
 * The still-compressed bytes of one block -> exactly `expected` bytes (see output.ts). With
 * `scratch` the result may sit anywhere in a longer buffer (16-byte aligned), and may be overwritten by the
 * next block this thread decodes: the caller copies it first, without waiting.
 */
export type Decompressor = (bytes: Uint8Array, expected: number, scratch: boolean) => OwnedBytes;

export const DECOMPRESSORS: ReadonlyMap<number, Decompressor> = new Map<number, Decompressor>([
  [Compression.None, copyUncompressed],
  [Compression.Lzw, decodeLzw],
  [Compression.AdobeDeflate, inflate],
  [Compression.Deflate, inflate],
  [Compression.PackBits, decodePackBits],
  [Compression.Zstd, unzstd],
]);
