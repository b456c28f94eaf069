/**
 * The render threads' PNG encoders (src/render/png.ts), indexed and RGBA, decoded by two
 * independent decoders: sharp (libspng/libvips) and GDAL's PNG driver (libpng). A tile must
 * come back as exactly the RGBA it was made from, transparent pixels included.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import { useKernels } from '../src/kernels.js';
import { loadLayer } from '../src/layers/layer.js';
import { findLayerFile } from '../src/layers/registry.js';
import { indexedPng, indexedPngOfCodes, rgbaPng } from '../src/render/png.js';
import { LayerGraph } from '../src/render/renderer.js';
import { gdal, readEnviRaw, SHIPPED_LAYERS, tempDir, tileAt, toolsMissing } from './helpers/layers.js';

const SIZE = 256;

/** A tile of `colours` distinct RGBA words (some translucent or fully transparent), in runs and noise. */
function tile(colours: number, seed: number, size = SIZE): Uint8Array {
  let s = seed >>> 0 || 1;
  const rand = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  const palette = Array.from({ length: colours }, (_, k) => {
    const alpha = k % 7 === 0 ? 0 : k % 5 === 0 ? Math.floor(rand() * 255) : 255;
    return [Math.floor(rand() * 256), Math.floor(rand() * 256), Math.floor(rand() * 256), alpha] as const;
  });
  const out = new Uint8Array(size * size * 4);
  for (let i = 0, k = 0; i < size * size; i++) {
    // Runs of one colour (as colour-mapped tiles have) broken by noise.
    if (rand() < 0.3) k = Math.floor(rand() * colours);
    out.set(palette[i < colours ? i : k]!, i * 4);
  }
  return out;
}

async function viaSharp(png: Uint8Array): Promise<{ rgba: Buffer; channels: number; palette: boolean }> {
  const meta = await sharp(png).metadata();
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { rgba: data, channels: info.channels, palette: meta.isPalette === true };
}

function firstDifference(a: Uint8Array, b: Uint8Array): string {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `pixel ${i >> 2} channel ${i & 3}: ${a[i]} vs ${b[i]}`;
  return a.length === b.length ? 'none' : `lengths ${a.length} vs ${b.length}`;
}

describe('indexed PNG', () => {
  for (const colours of [1, 2, 17, 200, 256]) {
    it(`${colours} colour(s): sharp decodes the same RGBA, as a paletted image with alpha`, async () => {
      const rgba = tile(colours, colours * 7919);
      const png = indexedPng(rgba, SIZE);
      assert.ok(png, 'a tile of at most 256 colours is encoded');
      const back = await viaSharp(png);
      assert.equal(back.channels, 4, 'tRNS is always written, so decoders give RGBA');
      assert.equal(back.palette, true);
      assert.ok(Buffer.compare(back.rgba, Buffer.from(rgba)) === 0, firstDifference(back.rgba, rgba));
    });
  }

  it('257 distinct colours do not fit: null, for the caller to write RGBA', () => {
    assert.equal(indexedPng(tile(257, 3), SIZE), null);
  });

  it('an opaque tile still decodes with an alpha channel', async () => {
    const rgba = new Uint8Array(SIZE * SIZE * 4);
    for (let i = 0; i < SIZE * SIZE; i++) rgba.set([i % 200, 30, 90, 255], i * 4);
    const back = await viaSharp(indexedPng(rgba, SIZE)!);
    assert.equal(back.channels, 4);
    assert.ok(Buffer.compare(back.rgba, Buffer.from(rgba)) === 0);
  });

  it('takes RGBA at any byte offset and of @2x size; refuses a wrong length', async () => {
    const rgba = tile(40, 11, 512);
    const shifted = new Uint8Array(rgba.length + 1).subarray(1);
    shifted.set(rgba);
    const back = await viaSharp(indexedPng(shifted, 512)!);
    assert.ok(Buffer.compare(back.rgba, Buffer.from(rgba)) === 0);
    assert.throws(() => indexedPng(rgba, SIZE), /expected 262144 bytes/);
  });

  const missing = toolsMissing(['gdal_translate', 'gdalinfo']);
  const tmp = tempDir('png');
  after(() => tmp.remove());
  it('GDAL (libpng) reads the same indices and colour table', { skip: missing }, () => {
    // GDAL shows a paletted PNG as one band of indices with a colour table (its own RGBA
    // expansion blanks the colour of fully transparent entries, so it is not used here).
    for (const colours of [3, 256]) {
      const rgba = tile(colours, 97 + colours);
      const file = path.join(tmp.dir, `t${colours}.png`);
      writeFileSync(file, indexedPng(rgba, SIZE)!);
      const info = JSON.parse(gdal('gdalinfo', ['-json', file])) as { bands: { colorTable?: { entries: number[][] } }[] };
      assert.equal(info.bands.length, 1);
      const entries = info.bands[0]!.colorTable!.entries;
      assert.equal(entries.length, colours);
      const base = path.join(tmp.dir, `t${colours}`);
      gdal('gdal_translate', ['-q', '-of', 'ENVI', file, `${base}.raw`]);
      const { width, bands } = readEnviRaw(base);
      assert.equal(width, SIZE);
      for (let i = 0; i < SIZE * SIZE; i++) {
        const entry = entries[bands[0]![i]!]!;
        for (let c = 0; c < 4; c++) {
          if (entry[c] !== rgba[i * 4 + c]) assert.fail(`${colours} colours: pixel ${i} channel ${c}: GDAL ${entry[c]}, tile ${rgba[i * 4 + c]}`);
        }
      }
    }
  });
});

describe('indexed PNG from colour-map entries', () => {
  /** A table of `entries` colours, some repeated and some transparent, and codes into it in runs and noise; the RGBA they draw. */
  function coded(entries: number, distinct: number, seed: number): { codes: Uint16Array; lut: Uint32Array; rgba: Uint8Array } {
    const words = new Uint32Array(tile(distinct, seed, 32).buffer);
    const lut = Uint32Array.from({ length: entries }, (_, k) => words[k % distinct]!);
    const codes = new Uint16Array(SIZE * SIZE);
    let s = seed;
    for (let i = 0, c = 0; i < codes.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      if (s % 10 < 3) c = (s >>> 8) % (entries + 1);
      codes[i] = c;
    }
    const rgba = new Uint8Array(SIZE * SIZE * 4);
    const out = new Uint32Array(rgba.buffer);
    for (let i = 0; i < codes.length; i++) out[i] = codes[i] ? lut[codes[i]! - 1]! : 0;
    return { codes, lut, rgba };
  }

  it('sharp decodes the RGBA the entries draw, ramp or classes: repeated and transparent entries, more entries than colours', async () => {
    for (const ordered of [true, false])
      for (const [entries, distinct] of [
        [4, 4],
        [300, 120],
        [4096, 256],
        [4096, 200],
      ] as const) {
        const { codes, lut, rgba } = coded(entries, distinct, entries * 31 + distinct);
        const png = indexedPngOfCodes({ index: codes, lut, ordered }, SIZE);
        if (indexedPng(rgba, SIZE) === null) {
          assert.equal(png, null, `${entries} entries of ${distinct} colours (and transparent): neither fits`);
          continue;
        }
        assert.ok(png, `${entries} entries of ${distinct} colours: encoded`);
        const back = await viaSharp(png);
        assert.equal(back.palette, true);
        assert.equal(back.channels, 4);
        assert.ok(
          Buffer.compare(back.rgba, Buffer.from(rgba)) === 0,
          `${entries} entries of ${distinct} colours, ordered ${ordered}: ${firstDifference(back.rgba, rgba)}`,
        );
      }
  });

  it('past 256 colours neither writer fits the tile', () => {
    const { codes, lut, rgba } = coded(600, 257, 600 * 31 + 257);
    assert.equal(indexedPng(rgba, SIZE), null);
    for (const ordered of [true, false]) assert.equal(indexedPngOfCodes({ index: codes, lut, ordered }, SIZE), null);
  });

  const missing = toolsMissing(['gdal_translate', 'gdalinfo']);
  const tmp = tempDir('png-codes');
  after(() => tmp.remove());
  it('GDAL (libpng) undoes the row filter: the same indices into the same colour table', { skip: missing }, () => {
    const { codes, lut, rgba } = coded(4096, 200, 77);
    const file = path.join(tmp.dir, 'ramp.png');
    writeFileSync(file, indexedPngOfCodes({ index: codes, lut, ordered: true }, SIZE)!);
    const info = JSON.parse(gdal('gdalinfo', ['-json', file])) as { bands: { colorTable?: { entries: number[][] } }[] };
    const entries = info.bands[0]!.colorTable!.entries;
    const base = path.join(tmp.dir, 'ramp');
    gdal('gdal_translate', ['-q', '-of', 'ENVI', file, `${base}.raw`]);
    const { bands } = readEnviRaw(base);
    for (let i = 0; i < SIZE * SIZE; i++) {
      const entry = entries[bands[0]![i]!]!;
      for (let c = 0; c < 4; c++) if (entry[c] !== rgba[i * 4 + c]) assert.fail(`pixel ${i} channel ${c}: GDAL ${entry[c]}, tile ${rgba[i * 4 + c]}`);
    }
  });

  it("the shipped layers' colour maps hand their entries to the writer: the tile's own RGBA, smaller for a ramp", async () => {
    const cases = [
      { layer: 'dem-relief', at: [-117.55, 53.25, 12], codes: true, ordered: true },
      { layer: 'zion-ndvi', at: [-113.0, 37.3, 12], codes: true, ordered: true },
      // The file's own palette: classes, in no order of value.
      { layer: 'zion-landcover', at: [-113.0, 37.3, 11], codes: true, ordered: false },
      // A colour map blended with a hillshade: the blend draws new RGBA, without entries.
      { layer: 'dem-shaded-relief', at: [-117.55, 53.25, 12], codes: false, ordered: false },
    ] as const;
    for (const c of cases) {
      const layer = await loadLayer(findLayerFile(SHIPPED_LAYERS, c.layer), { layersDir: SHIPPED_LAYERS, allowedHosts: [] });
      const graph = await LayerGraph.open(layer.spec);
      try {
        const t = tileAt(c.at[0], c.at[1], c.at[2]);
        const r = await graph.render({ ...t, size: SIZE });
        assert.ok(r.rgba, `${c.layer}: the tile draws something`);
        assert.equal(r.codes !== undefined, c.codes, `${c.layer}: entries ${c.codes ? 'given' : 'not given'}`);
        if (!r.codes) continue;
        assert.equal(r.codes.ordered, c.ordered, `${c.layer}: the table ${c.ordered ? 'runs along the values' : 'is a palette of classes'}`);
        const fromRgba = indexedPng(r.rgba, SIZE);
        const fromCodes = indexedPngOfCodes(r.codes, SIZE);
        assert.ok(fromRgba && fromCodes, `${c.layer}: at most 256 colours`);
        const back = await viaSharp(fromCodes);
        assert.ok(Buffer.compare(back.rgba, Buffer.from(r.rgba)) === 0, `${c.layer}: ${firstDifference(back.rgba, r.rgba)}`);
        if (c.ordered) assert.ok(fromCodes.length < fromRgba.length * 0.9, `${c.layer}: ${fromCodes.length} bytes filtered, ${fromRgba.length} unfiltered`);
      } finally {
        await graph.close();
      }
    }
  });

  it('refuses a wrong length and an entry past the table', () => {
    const { codes, lut } = coded(8, 8, 5);
    assert.throws(() => indexedPngOfCodes({ index: codes.subarray(1), lut, ordered: true }, SIZE), /expected 65536 codes/);
    codes[100] = 9;
    assert.throws(() => indexedPngOfCodes({ index: codes, lut, ordered: true }, SIZE), /code 9 past the 8 entries/);
  });
});

describe('RGBA PNG', () => {
  for (const [colours, size] of [
    [257, 256],
    [5000, 256],
    [3000, 512],
  ] as const) {
    it(`${colours} colours at ${size} px: sharp decodes the same RGBA, as a truecolour image with alpha`, async () => {
      const rgba = tile(colours, colours + size, size);
      assert.equal(indexedPng(rgba, size), null);
      const png = rgbaPng(rgba, size);
      assert.ok(png, 'libdeflate writes it');
      const back = await viaSharp(png);
      assert.equal(back.channels, 4);
      assert.equal(back.palette, false);
      assert.ok(Buffer.compare(back.rgba, Buffer.from(rgba)) === 0, firstDifference(back.rgba, rgba));
    });
  }

  /** An opaque tile of smooth gradients and noise: well over 256 colours. */
  function opaqueTile(size: number, seed: number): Uint8Array {
    const out = tile(3000, seed, size);
    for (let i = 0; i < size * size; i++) {
      const x = i % size,
        y = Math.floor(i / size);
      out[i * 4] = (x + out[i * 4]! / 16) & 255;
      out[i * 4 + 1] = (y * 3 + x) & 255;
      out[i * 4 + 3] = 255;
    }
    return out;
  }

  for (const size of [1, 3, 17, 256, 512]) {
    it(`an opaque tile of more than 256 colours at ${size} px: RGB, each row less the one above; sharp decodes the same pixels`, async () => {
      const rgba = opaqueTile(size, size * 13);
      const png = rgbaPng(rgba, size);
      assert.ok(png);
      const meta = await sharp(png).metadata();
      assert.deepEqual([meta.channels, meta.hasAlpha, meta.isPalette ?? false], [3, false, false], 'colour type 2: three channels, no alpha');
      const { data } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      assert.ok(Buffer.compare(data, Buffer.from(rgba)) === 0, firstDifference(data, rgba));
    });
  }

  it('one pixel short of opaque anywhere keeps the tile RGBA', async () => {
    for (const at of [0, 5, 255, 256 * 256 - 1]) {
      const rgba = opaqueTile(256, at + 1);
      rgba[at * 4 + 3] = 254;
      const png = rgbaPng(rgba, 256)!;
      const back = await viaSharp(png);
      assert.equal(back.channels, 4, `pixel ${at} translucent: RGBA`);
      assert.ok(Buffer.compare(back.rgba, Buffer.from(rgba)) === 0, firstDifference(back.rgba, rgba));
    }
  });

  it('takes RGBA at any byte offset; refuses a wrong length', async () => {
    const rgba = tile(600, 5);
    const shifted = new Uint8Array(rgba.length + 1).subarray(1);
    shifted.set(rgba);
    const back = await viaSharp(rgbaPng(shifted, SIZE)!);
    assert.ok(Buffer.compare(back.rgba, Buffer.from(rgba)) === 0);
    assert.throws(() => rgbaPng(rgba, 512), /expected 1048576 bytes/);
  });

  it('with KERNELS=reference there is none: the server encodes the tile with sharp', () => {
    useKernels('reference');
    try {
      assert.equal(rgbaPng(tile(300, 1), SIZE), undefined);
    } finally {
      useKernels('fast');
    }
  });

  const missing = toolsMissing(['gdal_translate']);
  const tmp = tempDir('rgba-png');
  after(() => tmp.remove());
  /** The tile's PNG as GDAL reads it: the bands, checked against the tile's first `channels` bytes a pixel. */
  function viaGdal(rgba: Uint8Array, name: string, channels: number): void {
    const file = path.join(tmp.dir, `${name}.png`);
    writeFileSync(file, rgbaPng(rgba, SIZE)!);
    const base = path.join(tmp.dir, name);
    gdal('gdal_translate', ['-q', '-of', 'ENVI', '-co', 'INTERLEAVE=BSQ', file, `${base}.raw`]);
    const { width, bands } = readEnviRaw(base);
    assert.equal(width, SIZE);
    assert.equal(bands.length, channels);
    for (let i = 0; i < SIZE * SIZE; i++)
      for (let c = 0; c < channels; c++)
        if (bands[c]![i] !== rgba[i * 4 + c]) assert.fail(`pixel ${i} channel ${c}: GDAL ${bands[c]![i]}, tile ${rgba[i * 4 + c]}`);
  }

  it('GDAL (libpng) reads an opaque tile as three bands, the same pixels', { skip: missing }, () => viaGdal(opaqueTile(256, 7), 'rgb', 3));

  it('GDAL (libpng) reads the same four bands', { skip: missing }, () => viaGdal(tile(2000, 31), 'rgba', 4));
});
