import { loadSharp } from '../sharp.js';

export type TileFormat = 'png' | 'webp';

/** The media type of a tile in a format. */
export function contentType(format: TileFormat): string {
  return `image/${format}`;
}

/**
 * zlib level of tile PNGs, chosen by `npm run bench`'s encoder table: on DEM tiles level 4
 * takes about 70% of level 6's time for 10% more bytes; level 1 is faster still but 2.5x
 * the size, which a CDN pays for on every hit.
 */
export const PNG_LEVEL = 4;

/** One sharp call per tile; no adaptive filtering or palette quantisation (both cost several times more). */
export async function encodeTile(rgba: Uint8Array, size: number, format: TileFormat): Promise<Buffer> {
  const sharp = await loadSharp();
  const img = sharp(rgba, { raw: { width: size, height: size, channels: 4 } });
  return format === 'png'
    ? img.png({ compressionLevel: PNG_LEVEL, adaptiveFiltering: false, palette: false }).toBuffer()
    : img.webp({ lossless: true, effort: 2 }).toBuffer();
}

const transparent = new Map<string, Promise<Buffer>>();

/** A fully transparent tile, for layers with `empty: transparent`. */
export function transparentTile(size: number, format: TileFormat): Promise<Buffer> {
  const key = `${size}.${format}`;
  let p = transparent.get(key);
  if (!p) {
    p = encodeTile(new Uint8Array(size * size * 4), size, format);
    transparent.set(key, p);
  }
  return p;
}
