/**
 * The benchmark's layer files, written next to the data (a layer's sources must lie under
 * the layers directory), and the choice of NDVI form from the operators that exist.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadLayer, type Layer } from '../src/layers/layer.js';
import { OPERATOR_NAMES } from '../src/ops/registry.js';

/** The colour stops of layers/dem-relief.yaml (and of bench/make-data.sh's gdaldem ramp). */
export const DEM_STOPS: [number, string][] = [
  [950, '#2b6b3a'],
  [1200, '#6f9a4a'],
  [1500, '#d8c98a'],
  [1800, '#b5834f'],
  [2100, '#8c6a5a'],
  [2400, '#d9d4d0'],
  [2600, '#ffffff'],
];

export const DEM_PIPELINE = [{ read: { source: 'dem', bands: [1], resampling: 'bilinear' } }, { colormap: { stops: DEM_STOPS } }];

function layerFile(title: string, sources: Record<string, unknown>, pipeline: unknown): Record<string, unknown> {
  return { title, sources, minzoom: 0, maxzoom: 18, pipeline };
}

const NDVI_COLOURS = { name: 'rdylgn', range: [-0.2, 0.8] };
const SCENE = { scene: './scene.tif' };

/** NDVI forms, most faithful first; `needs` are the operators each one uses beyond read/colormap. */
const NDVI_CANDIDATES: { form: string; needs: string[]; pipeline: unknown }[] = [
  {
    form: 'graph: read red, read nir -> normalized_difference(nir, red) -> colormap rdylgn',
    needs: ['normalized_difference'],
    pipeline: {
      nodes: {
        red: { op: 'read', source: 'scene', bands: [3] },
        nir: { op: 'read', source: 'scene', bands: [4] },
        ndvi: { op: 'normalized_difference', in: ['nir', 'red'] },
        colour: { op: 'colormap', in: ['ndvi'], ...NDVI_COLOURS },
      },
      output: 'colour',
    },
  },
  {
    form: 'list: read bands [4, 3] -> normalized_difference -> colormap rdylgn',
    needs: ['normalized_difference'],
    pipeline: [{ read: { source: 'scene', bands: [4, 3] } }, { normalized_difference: {} }, { colormap: NDVI_COLOURS }],
  },
  {
    form: 'graph: read bands [3, 4] -> normalized_difference -> colormap rdylgn',
    needs: ['normalized_difference'],
    pipeline: {
      nodes: {
        bands: { op: 'read', source: 'scene', bands: [3, 4] },
        ndvi: { op: 'normalized_difference', in: ['bands'], bands: [2, 1] },
        colour: { op: 'colormap', in: ['ndvi'], ...NDVI_COLOURS },
      },
      output: 'colour',
    },
  },
  ...['expression', 'expr'].flatMap((key) => [
    {
      form: `list: read bands [3, 4] -> expression {${key}: (b2 - b1) / (b2 + b1)} -> colormap rdylgn`,
      needs: ['expression'],
      pipeline: [{ read: { source: 'scene', bands: [3, 4] } }, { expression: { [key]: '(b2 - b1) / (b2 + b1)' } }, { colormap: NDVI_COLOURS }],
    },
  ]),
  {
    form: 'fallback (no NDVI operator registered): read band 4 (NIR) -> rescale -> colormap greys',
    needs: [],
    pipeline: [{ read: { source: 'scene', bands: [4] } }, { rescale: { from: [5000, 30000] } }, { colormap: { name: 'greys', reverse: true } }],
  },
];

const RGB_PIPELINE = [{ read: { source: 'rgb', bands: [1, 2, 3], resampling: 'bilinear' } }, { rgb: {} }];

export interface BenchLayers {
  dir: string;
  /** The scene as 8-bit RGB, the same pixels DEFLATE- and JPEG-compressed. */
  rgbDeflate: Layer;
  rgbJpeg: Layer;
  dem: Layer;
  dem4x: Layer;
  ndvi: Layer;
  ndviForm: string;
  /** Forms tried before the chosen one, with why they were refused. */
  ndviRefused: { form: string; why: string }[];
  operators: readonly string[];
}

const opts = (dir: string) => ({ layersDir: dir, allowedHosts: [] as string[] });

async function writeLayer(dir: string, name: string, doc: Record<string, unknown>): Promise<string> {
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, `# Written by bench/bench.ts on every run.\n${stringify(doc)}`);
  return file;
}

/** The folder of bench/make-data.sh's DEM pieces, inside the data directory, and how many it holds. */
export const DEM_PIECES_DIR = 'dem-pieces';
export const DEM_PIECES = 64;

/**
 * Writes bench-dem-mosaic (the pieces of dem.tif as one mosaic source, the DEM layer's
 * pipeline) into `dir` and loads it. Apart from writeBenchLayers: the pieces are made only
 * when the mosaic step runs.
 */
export async function writeMosaicLayer(dir: string): Promise<Layer> {
  const doc = layerFile('Bench DEM colour relief, 64-piece mosaic', { dem: { mosaic: `./${DEM_PIECES_DIR}/*.tif`, method: 'first' } }, DEM_PIPELINE);
  return loadLayer(await writeLayer(dir, 'bench-dem-mosaic', doc), opts(dir));
}

/** Writes bench-dem, bench-dem4x, bench-rgb-deflate, bench-rgb-jpeg and bench-ndvi into `dir` (the data directory) and loads them. */
export async function writeBenchLayers(dir: string): Promise<BenchLayers> {
  const dem = await loadLayer(await writeLayer(dir, 'bench-dem', layerFile('Bench DEM colour relief', { dem: './dem.tif' }, DEM_PIPELINE)), opts(dir));
  const dem4x = await loadLayer(
    await writeLayer(dir, 'bench-dem4x', layerFile('Bench DEM colour relief, 4x the pixels', { dem: './dem4x.tif' }, DEM_PIPELINE)),
    opts(dir),
  );
  const rgb = async (codec: string) =>
    loadLayer(
      await writeLayer(dir, `bench-rgb-${codec}`, layerFile(`Bench scene, 8-bit RGB, ${codec}`, { rgb: `./scene-rgb-${codec}.tif` }, RGB_PIPELINE)),
      opts(dir),
    );
  const [rgbDeflate, rgbJpeg] = [await rgb('deflate'), await rgb('jpeg')];
  const refused: { form: string; why: string }[] = [];
  for (const c of NDVI_CANDIDATES) {
    const missing = c.needs.filter((op) => !OPERATOR_NAMES.includes(op));
    if (missing.length) {
      refused.push({ form: c.form, why: `not registered: ${missing.join(', ')}` });
      continue;
    }
    const file = await writeLayer(dir, 'bench-ndvi', layerFile('Bench NDVI, UTM scene', SCENE, c.pipeline));
    try {
      const ndvi = await loadLayer(file, opts(dir));
      return { dir, rgbDeflate, rgbJpeg, dem, dem4x, ndvi, ndviForm: c.form, ndviRefused: refused, operators: OPERATOR_NAMES };
    } catch (err) {
      refused.push({ form: c.form, why: (err as Error).message });
    }
  }
  await rm(path.join(dir, 'bench-ndvi.yaml'), { force: true });
  throw new Error(`no NDVI layer form loads: ${refused.map((r) => `${r.form}: ${r.why}`).join('; ')}`);
}
