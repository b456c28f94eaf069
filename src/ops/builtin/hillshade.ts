import { z } from 'zod';
import { Operator, parseParams } from '../operator.js';
import { finite } from '../params.js';
import { allocOf, bandRaster, type BandRaster, type OutputShape, type Raster, type TileContext } from '../raster.js';
import { EARTH_RADIUS } from '../../tiles/mercator.js';

const HillshadeParams = z.strictObject({
  /** Direction the light comes from, degrees clockwise from north. */
  azimuth: z.number().min(0).max(360).default(315),
  /** Height of the light above the horizon, degrees. */
  altitude: z.number().min(0).max(90).default(45),
  /** Vertical exaggeration. */
  zFactor: finite.positive().max(1e6).default(1),
});
export type HillshadeParams = z.input<typeof HillshadeParams>;

const DEG = Math.PI / 180;

/**
 * Shaded relief from one band of elevations in metres, in [0, 1].
 *
 * The formula is gdaldem hillshade's (GDAL apps/gdaldem_lib.cpp, GDALHillshadeAlg with Horn's
 * gradient), with the 3x3 window w0..w8 in row-major order, north up:
 *
 *   x = ((w0 + 2 w3 + w6) - (w2 + 2 w5 + w8)) / ewres
 *   y = ((w6 + 2 w7 + w8) - (w0 + 2 w1 + w2)) / nsres          (nsres < 0: north up)
 *   zs = zFactor / 8
 *   cang = (sin(alt) - zs cos(alt) (y cos(az) - x sin(az))) / sqrt(1 + zs^2 (x^2 + y^2))
 *
 * gdaldem writes the byte 1 + 254 cang (1 where cang <= 0, 0 for nodata); this writes
 * max(0, cang), so gdaldem's byte b corresponds to (b - 1) / 254 here.
 *
 * gdaldem measures ewres/nsres in map units. On the Web Mercator grid a map metre is
 * 1/cos(latitude) ground metres (the sphere's scale factor; EPSG:3857 is conformal on its
 * sphere), so here a pixel of row j is res * cos(lat_j) ground metres both ways, with lat_j
 * the latitude of that row's pixel centres. Using ground distances makes the shading look
 * the same at every latitude and zoom, and it is what `gdaldem -s cos(lat)` computes for one
 * latitude. (The WGS84 ellipsoid would change these distances by at most 0.3%: ignored.)
 *
 * Edges: like gdaldem without -compute_edges, a pixel is valid only when its whole 3x3
 * neighbourhood is valid; the outermost ring of the raster is always masked. That ring is
 * the one-pixel buffer this operator asks `read` for, so tiles still join without seams: each
 * output pixel sees the same neighbours whichever tile renders it.
 */
export class Hillshade extends Operator {
  static readonly op = 'hillshade';
  static readonly params = HillshadeParams;
  readonly arity = 1;
  readonly azimuth: number;
  readonly altitude: number;
  readonly zFactor: number;
  private readonly sinAlt: number;
  /** cos(az) cos(alt) zFactor / 8 and sin(az) cos(alt) zFactor / 8, as in GDALCreateHillshadeData. */
  private readonly cosAzCosAltZ: number;
  private readonly sinAzCosAltZ: number;
  /** (zFactor / 8)^2 */
  private readonly squareZ: number;

  constructor(params: HillshadeParams) {
    super();
    ({ azimuth: this.azimuth, altitude: this.altitude, zFactor: this.zFactor } = parseParams(HillshadeParams, params));
    const az = this.azimuth * DEG;
    const alt = this.altitude * DEG;
    const zs = this.zFactor / 8;
    this.sinAlt = Math.sin(alt);
    this.cosAzCosAltZ = Math.cos(az) * Math.cos(alt) * zs;
    this.sinAzCosAltZ = Math.sin(az) * Math.cos(alt) * zs;
    this.squareZ = zs * zs;
  }

  /** Horn's gradient reads the eight neighbours: one pixel all round. */
  override buffer(): number {
    return 1;
  }

  shape(inputs: OutputShape[]): OutputShape {
    const s = inputs[0]!;
    if (s.kind !== 'bands' || s.bands !== 1) throw new Error(`hillshade takes one band of elevations, got ${s.kind === 'rgba' ? 'RGBA' : `${s.bands} bands`}`);
    return { kind: 'bands', bands: 1 };
  }

  apply([input]: Raster[], ctx: TileContext): Raster {
    const r = input as BandRaster;
    const W = r.width,
      H = r.height;
    if (W !== ctx.size + 2 * ctx.buffer || H !== W) {
      throw new Error(`hillshade got a ${W}x${H} raster for a ${ctx.size} px tile with a ${ctx.buffer} px buffer`);
    }
    const alloc = allocOf(ctx);
    const out = bandRaster(W, H, 1, alloc.bytes(W * H), alloc);
    const dem = r.bands[0]!;
    const mask = r.mask;
    const shade = out.bands[0]!;
    const valid = out.mask;
    const res = (ctx.bounds[2] - ctx.bounds[0]) / ctx.size;
    // Mercator y of the centre of row 0 (the top row of the buffer).
    const top = ctx.bounds[3] + (ctx.buffer - 0.5) * res;
    const { sinAlt, cosAzCosAltZ, sinAzCosAltZ, squareZ } = this;

    for (let j = 1; j < H - 1; j++) {
      // Latitude of this row's pixel centres (inverse spherical Mercator), then its ground pixel size.
      const lat = 2 * Math.atan(Math.exp((top - j * res) / EARTH_RADIUS)) - Math.PI / 2;
      const invEw = 1 / (res * Math.cos(lat));
      const invNs = -invEw;
      const kx = sinAzCosAltZ * invEw;
      const ky = cosAzCosAltZ * invNs;
      const kk = squareZ * invEw * invEw;
      const north = (j - 1) * W,
        row = j * W,
        south = (j + 1) * W;
      // The 3x3 window slides east along the row: columns a (west) and b (centre) carry
      // over, column c (east) is loaded, so each height and mask byte is read once per row.
      let a0 = dem[north]!,
        a3 = dem[row]!,
        a6 = dem[south]!;
      let b1 = dem[north + 1]!,
        b4 = dem[row + 1]!,
        b7 = dem[south + 1]!;
      let ma = mask[north]! & mask[row]! & mask[south]!,
        mb = mask[north + 1]! & mask[row + 1]! & mask[south + 1]!;
      for (let i = 1; i < W - 1; i++) {
        const e = i + 1;
        const c2 = dem[north + e]!,
          c5 = dem[row + e]!,
          c8 = dem[south + e]!;
        const mc = mask[north + e]! & mask[row + e]! & mask[south + e]!;
        if (ma & mb & mc) {
          // Unscaled Horn sums (w0..w8 = a0 b1 c2 / a3 b4 c5 / a6 b7 c8); the per-row
          // factors carry 1/ewres, 1/nsres and zFactor/8.
          const gx = a0 + a3 + a3 + a6 - (c2 + c5 + c5 + c8);
          const gy = a6 + b7 + b7 + c8 - (a0 + b1 + b1 + c2);
          const cang = (sinAlt - (gy * ky - gx * kx)) / Math.sqrt(1 + kk * (gx * gx + gy * gy));
          if (cang === cang) {
            shade[row + i] = cang <= 0 ? 0 : cang >= 1 ? 1 : cang;
            valid[row + i] = 1;
          }
        }
        a0 = b1;
        a3 = b4;
        a6 = b7;
        ma = mb;
        b1 = c2;
        b4 = c5;
        b7 = c8;
        mb = mc;
      }
    }
    return out;
  }

  config(): Record<string, unknown> {
    return { azimuth: this.azimuth, altitude: this.altitude, zFactor: this.zFactor };
  }
}
