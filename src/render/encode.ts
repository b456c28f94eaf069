import sharp from 'sharp';

export type TileFormat = 'png' | 'webp';

/**
 * One sharp call per tile. PNG compression level 4 without adaptive filtering or palette
 * quantisation: measured as the best size for the time (README, Performance).
 */
export async function encodeTile(rgba: Uint8Array, size: number, format: TileFormat): Promise<Buffer> {
  const img = sharp(rgba, { raw: { width: size, height: size, channels: 4 } });
  return format === 'png'
    ? img.png({ compressionLevel: 4, adaptiveFiltering: false, palette: false }).toBuffer()
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
