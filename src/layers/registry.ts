import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { loadLayer, type Layer, type LoadOptions } from './layer.js';

export interface LayerProblem {
  file: string;
  error: string;
}

/**
 * Every layer file of a directory. A bad file is reported and skipped; it never stops the
 * other layers from serving. `reload` swaps in a new set atomically (SIGHUP).
 */
export class LayerRegistry {
  private layers = new Map<string, Layer>();
  problems: LayerProblem[] = [];

  constructor(private readonly opts: LoadOptions, private readonly log?: Logger) {}

  get(name: string): Layer | undefined {
    return this.layers.get(name);
  }

  all(): Layer[] {
    return [...this.layers.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async reload(): Promise<void> {
    const { layers, problems } = await loadLayerDir(this.opts);
    for (const p of problems) this.log?.error({ file: p.file }, p.error);
    this.layers = layers;
    this.problems = problems;
    this.log?.info({ layers: [...layers.keys()] }, `${layers.size} layer(s) loaded, ${problems.length} refused`);
  }
}

export async function loadLayerDir(opts: LoadOptions): Promise<{ layers: Map<string, Layer>; problems: LayerProblem[] }> {
  const files = (await readdir(opts.layersDir, { withFileTypes: true }))
    .filter((d) => (d.isFile() || d.isSymbolicLink()) && /\.ya?ml$/.test(d.name))
    .map((d) => path.join(opts.layersDir, d.name))
    .sort();
  const layers = new Map<string, Layer>();
  const problems: LayerProblem[] = [];
  for (const file of files) {
    try {
      const layer = await loadLayer(file, opts);
      if (layers.has(layer.name)) throw new Error(`${path.basename(file)}: a layer named '${layer.name}' is already loaded`);
      layers.set(layer.name, layer);
    } catch (err) {
      problems.push({ file: path.relative(opts.layersDir, file), error: (err as Error).message });
    }
  }
  return { layers, problems };
}
