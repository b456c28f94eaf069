/**
 * Pixel selection across the members of a mosaic: rasters of one grid laid over each other in
 * the members' listed order, each pixel chosen by `method` among the members valid there.
 * Bands are taken independently (`highest` of a two-band pixel may take its bands from two
 * members), as numpy's masked maximum does; a pixel is valid where any member is.
 */

/** How a mosaic chooses a pixel among the members valid there. */
export const MOSAIC_METHODS = ['first', 'last', 'highest', 'lowest', 'mean', 'median', 'count'] as const;
export type MosaicMethod = (typeof MOSAIC_METHODS)[number];

/** A raster of bands with its validity: a source window, or a band raster on the tile grid. */
export interface Layered {
  width: number;
  height: number;
  bands: Float32Array[];
  /** 1 valid, 0 nodata. */
  valid: Uint8Array;
}

/**
 * Builds one raster from members added in order, each at its offset in the target. The
 * target's bands and validity are written in place; `finish` completes the methods that
 * need every member first (mean, median, count).
 */
export class Compositor {
  /** Target pixels still invalid (`first` stops reading members at 0; none: the target is all valid). */
  missing: number;
  private counts?: Uint16Array;
  private sums?: Float64Array[];
  private readonly stack: { src: Layered; dx: number; dy: number }[] = [];

  /** `sum` adds rasters of counts up (members counted on several grids). */
  constructor(
    readonly method: MosaicMethod | 'sum',
    private readonly target: Layered,
  ) {
    target.valid.fill(0);
    this.missing = target.valid.length;
    if (method === 'mean' || method === 'count') this.counts = new Uint16Array(target.valid.length);
    if (method === 'mean' || method === 'sum') this.sums = target.bands.map(() => new Float64Array(target.valid.length));
  }

  /** Every target pixel has its value: later members cannot change a `first` mosaic. */
  get full(): boolean {
    return this.method === 'first' && this.missing === 0;
  }

  /** Lays `src` over the target with its top-left pixel at (dx, dy) of the target. */
  add(src: Layered, dx: number, dy: number): void {
    const t = this.target;
    const x0 = Math.max(0, dx),
      x1 = Math.min(t.width, dx + src.width);
    const y0 = Math.max(0, dy),
      y1 = Math.min(t.height, dy + src.height);
    if (x0 >= x1 || y0 >= y1) return;
    if (this.method === 'median') {
      this.stack.push({ src, dx, dy });
      for (let y = y0; y < y1; y++)
        for (let x = x0, s = (y - dy) * src.width + x0 - dx; x < x1; x++, s++) {
          const k = y * t.width + x;
          if (src.valid[s] && !t.valid[k]) {
            t.valid[k] = 1;
            this.missing--;
          }
        }
      return;
    }
    const nb = t.bands.length;
    for (let y = y0; y < y1; y++) {
      const row = y * t.width;
      const srow = (y - dy) * src.width - dx;
      for (let x = x0; x < x1; x++) {
        const s = srow + x;
        if (!src.valid[s]) continue;
        const k = row + x;
        const had = t.valid[k] === 1;
        switch (this.method) {
          case 'first':
            if (had) continue;
            for (let b = 0; b < nb; b++) t.bands[b]![k] = src.bands[b]![s]!;
            break;
          case 'last':
            for (let b = 0; b < nb; b++) t.bands[b]![k] = src.bands[b]![s]!;
            break;
          case 'highest':
            for (let b = 0; b < nb; b++) if (!had || src.bands[b]![s]! > t.bands[b]![k]!) t.bands[b]![k] = src.bands[b]![s]!;
            break;
          case 'lowest':
            for (let b = 0; b < nb; b++) if (!had || src.bands[b]![s]! < t.bands[b]![k]!) t.bands[b]![k] = src.bands[b]![s]!;
            break;
          case 'mean':
            for (let b = 0; b < nb; b++) this.sums![b]![k]! += src.bands[b]![s]!;
            this.counts![k]!++;
            break;
          case 'count':
            this.counts![k]!++;
            break;
          case 'sum':
            for (let b = 0; b < nb; b++) this.sums![b]![k]! += src.bands[b]![s]!;
            break;
        }
        if (!had) {
          t.valid[k] = 1;
          this.missing--;
        }
      }
    }
  }

  /** Completes the target: means, medians and counts once every member is in. */
  finish(): void {
    const t = this.target;
    const n = t.valid.length;
    if (this.method === 'mean') {
      for (let b = 0; b < t.bands.length; b++) {
        const out = t.bands[b]!,
          sum = this.sums![b]!;
        for (let k = 0; k < n; k++) out[k] = this.counts![k]! ? sum[k]! / this.counts![k]! : 0;
      }
    } else if (this.method === 'count') {
      for (const out of t.bands) for (let k = 0; k < n; k++) out[k] = this.counts![k]!;
    } else if (this.method === 'sum') {
      for (let b = 0; b < t.bands.length; b++) t.bands[b]!.set(this.sums![b]!);
    } else if (this.method === 'median') {
      this.medians();
    }
  }

  /** numpy's median of the valid members at each pixel: the middle value, or the mean of the middle two. */
  private medians(): void {
    const t = this.target;
    const values = new Float64Array(this.stack.length);
    for (let y = 0; y < t.height; y++) {
      for (let x = 0; x < t.width; x++) {
        const k = y * t.width + x;
        if (!t.valid[k]) continue;
        for (let b = 0; b < t.bands.length; b++) {
          let m = 0;
          for (const { src, dx, dy } of this.stack) {
            const sx = x - dx,
              sy = y - dy;
            if (sx < 0 || sy < 0 || sx >= src.width || sy >= src.height) continue;
            const s = sy * src.width + sx;
            if (src.valid[s]) values[m++] = src.bands[b]![s]!;
          }
          const v = values.subarray(0, m).sort();
          t.bands[b]![k] = m % 2 ? v[m >> 1]! : (v[m / 2 - 1]! + v[m / 2]!) / 2;
        }
      }
    }
  }
}
