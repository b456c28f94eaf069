/**
 * The naive baseline: what a tile server written in an afternoon does. geotiff.js opens the
 * file, `GeoTIFF.readRasters({ bbox, width, height, resampleMethod })` picks the overview
 * (the least detailed one still finer than the tile) and reads and resamples the window,
 * a plain JavaScript loop applies the colour stops, and sharp encodes the PNG with the same
 * settings as tilegraph. One thread, no block cache (geotiff.js `fromFile` keeps none).
 */
import { fromFile, type GeoTIFF } from 'geotiff';
import sharp from 'sharp';
import { tileBounds, type Tile } from './tiles.js';

export type Stop = [number, [number, number, number]];

export function parseStops(stops: readonly (readonly [number, string])[]): Stop[] {
  return stops.map(([v, c]) => [v, [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)]]);
}

export class NaiveRenderer {
  private constructor(
    private readonly tiff: GeoTIFF,
    private readonly stops: Stop[],
  ) {}

  static async open(file: string, stops: Stop[]): Promise<NaiveRenderer> {
    return new NaiveRenderer(await fromFile(file), stops);
  }

  /** A PNG, or null when the tile has no data (tilegraph answers 204 then). */
  async render(t: Tile, size = 256): Promise<Buffer | null> {
    const bbox = tileBounds(t);
    const rasters = await this.tiff.readRasters({
      bbox,
      width: size,
      height: size,
      resampleMethod: 'bilinear',
      samples: [0],
      fillValue: NaN,
      interleave: false,
    });
    const band = (rasters as unknown as ArrayLike<number>[])[0]!;
    const rgba = new Uint8Array(size * size * 4);
    const stops = this.stops;
    let any = false;
    for (let i = 0; i < size * size; i++) {
      const v = band[i]!;
      if (Number.isNaN(v)) continue;
      let c: [number, number, number];
      if (v <= stops[0]![0]) c = stops[0]![1];
      else if (v >= stops[stops.length - 1]![0]) c = stops[stops.length - 1]![1];
      else {
        let s = 0;
        while (v > stops[s + 1]![0]) s++;
        const [v0, c0] = stops[s]!,
          [v1, c1] = stops[s + 1]!;
        const t = (v - v0) / (v1 - v0);
        c = [c0[0] + (c1[0] - c0[0]) * t, c0[1] + (c1[1] - c0[1]) * t, c0[2] + (c1[2] - c0[2]) * t];
      }
      rgba[i * 4] = Math.round(c[0]);
      rgba[i * 4 + 1] = Math.round(c[1]);
      rgba[i * 4 + 2] = Math.round(c[2]);
      rgba[i * 4 + 3] = 255;
      any = true;
    }
    if (!any) return null;
    return sharp(rgba, { raw: { width: size, height: size, channels: 4 } })
      .png({ compressionLevel: 6, adaptiveFiltering: false, palette: false })
      .toBuffer();
  }

  close(): void {
    this.tiff.close();
  }
}
