/**
 * The image codecs of COGs people have (JPEG, WebP, LERC) against GDAL's own decode of the
 * same file: every file here is written by `gdal_translate` from the shipped rasters in the
 * test's set-up, read whole at full resolution by tilegraph's reader (src/sources) and by
 * `gdal_translate -of ENVI`, and compared value by value.
 *
 * - JPEG (YCbCr with JPEGTables, one-band, and with the internal mask JPEG COGs carry): within
 *   2 levels on 99% of the samples, and the count of exact ones reported (both use
 *   libjpeg-turbo's IDCT here).
 * - WebP lossless (RGB and RGBA) and LERC (lossless, with DEFLATE, with ZSTD; Float32, UInt16
 *   and three-band Byte): identical.
 * - WebP lossy: within 2 levels on 99% (the same libwebp decodes both).
 * - A layer over a JPEG COG loads and serves, and /layers/{layer} names the compression.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Cog } from '../src/sources/cog.js';
import { readWindow } from '../src/sources/window.js';
import { GDAL_ENV, gdalMissing } from './helpers/gdal.js';
import { getJson, makeLayersDir, request, SHIPPED_DATA, startServer, tilePath, lonLatToTile } from './helpers/http.js';
import { readEnviRaw } from './helpers/layers.js';

const SKIP = gdalMissing(['gdal_translate', 'gdalbuildvrt', 'gdalwarp']);

interface Case {
  file: string;
  what: string;
  /** How the file is made from the prepared inputs: gdal_translate arguments before the input. */
  args: string[];
  input: 'rgb' | 'grey' | 'rgba' | 'dem' | 'nir';
  /** Largest difference allowed, and on what share of the samples at least. */
  within: number;
  share: number;
  /** The file's internal mask compared with GDAL's mask band. */
  mask?: boolean;
}

const CASES: Case[] = [
  { file: 'jpeg_rgb.tif', what: 'JPEG, YCbCr, JPEGTables', args: ['-co', 'COMPRESS=JPEG', '-co', 'QUALITY=90'], input: 'rgb', within: 2, share: 0.99 },
  { file: 'jpeg_grey.tif', what: 'JPEG, one band', args: ['-co', 'COMPRESS=JPEG', '-co', 'QUALITY=85'], input: 'grey', within: 2, share: 0.99 },
  { file: 'jpeg_mask.tif', what: 'JPEG with an internal mask', args: ['-co', 'COMPRESS=JPEG'], input: 'rgba', within: 2, share: 0.99, mask: true },
  { file: 'webp_lossless.tif', what: 'WebP lossless, RGB', args: ['-co', 'COMPRESS=WEBP', '-co', 'QUALITY=100'], input: 'rgb', within: 0, share: 1 },
  { file: 'webp_rgba.tif', what: 'WebP lossless, RGBA', args: ['-co', 'COMPRESS=WEBP', '-co', 'QUALITY=100'], input: 'rgba', within: 0, share: 1 },
  { file: 'webp_lossy.tif', what: 'WebP lossy', args: ['-co', 'COMPRESS=WEBP', '-co', 'QUALITY=75'], input: 'rgb', within: 2, share: 0.99 },
  { file: 'lerc_dem.tif', what: 'LERC, Float32', args: ['-co', 'COMPRESS=LERC', '-co', 'MAX_Z_ERROR=0'], input: 'dem', within: 0, share: 1 },
  {
    file: 'lerc_deflate.tif',
    what: 'LERC + DEFLATE, Float32',
    args: ['-co', 'COMPRESS=LERC_DEFLATE', '-co', 'MAX_Z_ERROR=0'],
    input: 'dem',
    within: 0,
    share: 1,
  },
  { file: 'lerc_zstd.tif', what: 'LERC + ZSTD, UInt16', args: ['-co', 'COMPRESS=LERC_ZSTD', '-co', 'MAX_Z_ERROR=0'], input: 'nir', within: 0, share: 1 },
  { file: 'lerc_rgb.tif', what: 'LERC, three Byte bands', args: ['-co', 'COMPRESS=LERC', '-co', 'MAX_Z_ERROR=0'], input: 'rgb', within: 0, share: 1 },
];

describe('JPEG, WebP and LERC COGs read as GDAL reads them', { skip: SKIP }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tilegraph-codecs-'));
  const gdal = (tool: string, args: string[]) => execFileSync(tool, ['-q', ...args], { env: GDAL_ENV });
  const at = (f: string) => path.join(dir, f);
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(() => {
    const nir = path.join(SHIPPED_DATA, 'landsat8_zion_20150818_b5_nir.tif');
    const red = path.join(SHIPPED_DATA, 'landsat8_zion_20150818_b4_red.tif');
    // A false-colour Byte scene (NIR, red, red), a grey band, and the scene warped with an alpha band.
    gdal('gdalbuildvrt', ['-separate', at('bands.vrt'), nir, red, red]);
    gdal('gdal_translate', ['-ot', 'Byte', '-scale', '5000', '30000', '1', '255', '-a_nodata', 'none', at('bands.vrt'), at('rgb.tif')]);
    gdal('gdal_translate', ['-b', '2', at('rgb.tif'), at('grey.tif')]);
    gdal('gdalwarp', ['-t_srs', 'EPSG:4326', '-dstalpha', at('rgb.tif'), at('rgba.tif')]);
    const inputs = { rgb: at('rgb.tif'), grey: at('grey.tif'), rgba: at('rgba.tif'), dem: path.join(SHIPPED_DATA, 'srtm_jasper_ab_100m.tif'), nir };
    for (const c of CASES) gdal('gdal_translate', ['-of', 'COG', '-co', 'BLOCKSIZE=256', ...c.args, inputs[c.input], at(c.file)]);
  });

  for (const c of CASES) {
    it(`${c.file}: ${c.what}`, async (t) => {
      const base = at(c.file.replace(/\.tif$/, '_gdal'));
      gdal('gdal_translate', ['-of', 'ENVI', '-co', 'INTERLEAVE=BSQ', at(c.file), `${base}.raw`]);
      const ref = readEnviRaw(base);
      const cog = await Cog.open(at(c.file));
      try {
        const { width, height, bands } = cog.meta;
        assert.deepEqual([width, height, bands], [ref.width, ref.height, ref.bands.length]);
        const win = await readWindow(
          cog,
          0,
          [0, 0, width, height],
          ref.bands.map((_, b) => b),
          null,
        );
        let samples = 0,
          exact = 0,
          close = 0,
          worst = 0;
        ref.bands.forEach((band, b) => {
          const ours = win.bands[b]!;
          for (let k = 0; k < band.length; k++) {
            const a = ours[k]!,
              g = band[k]!;
            samples++;
            const d = Number.isNaN(a) && Number.isNaN(g) ? 0 : Math.abs(a - g);
            if (d === 0) exact++;
            if (d <= c.within) close++;
            if (d > worst || Number.isNaN(d)) worst = d;
          }
        });
        t.diagnostic(`${samples} samples: ${((100 * exact) / samples).toFixed(3)}% identical to GDAL's decode, largest difference ${worst}`);
        assert.ok(close / samples >= c.share, `${samples - close} of ${samples} samples differ from GDAL's decode by more than ${c.within}`);
        if (c.mask) {
          gdal('gdal_translate', ['-of', 'ENVI', '-b', 'mask,1', at(c.file), `${base}_mask.raw`]);
          const mask = readEnviRaw(`${base}_mask`).bands[0]!;
          let agree = 0,
            masked = 0;
          for (let k = 0; k < mask.length; k++) {
            if (mask[k] === 0) masked++;
            if (mask[k]! > 0 === !!win.valid[k]) agree++;
          }
          assert.ok(masked > 0.02 * mask.length, `the warped scene has masked corners (${masked})`);
          assert.equal(agree, mask.length, `the mask agrees with GDAL's on ${agree} of ${mask.length} pixels`);
        }
      } finally {
        await cog.close();
      }
    });
  }

  it('a layer over a JPEG COG serves tiles, and /layers/{layer} names the compression', async () => {
    const tmp = await makeLayersDir();
    try {
      execFileSync('cp', [at('jpeg_mask.tif'), path.join(tmp.dir, 'data/scene.tif')]);
      await tmp.write('scene.yaml', 'sources: { s: ./data/scene.tif }\npipeline:\n  - read: { source: s, bands: [1, 2, 3] }\n  - rgb: {}\n');
      const server = await startServer(tmp.dir, { WORKERS: '1' });
      try {
        const { json } = await getJson<{ sources: { compression: string }[] }>(server.url, '/layers/scene');
        assert.deepEqual(
          json.sources.map((s) => s.compression),
          ['JPEG'],
        );
        const r = await request(server.url, tilePath('scene', lonLatToTile(-113.04, 37.32, 12)));
        assert.equal(r.status, 200, r.body.toString());
      } finally {
        await server.close();
      }
    } finally {
      await tmp.remove();
    }
  });
});
