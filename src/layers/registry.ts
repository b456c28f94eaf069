import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { byteSource } from '../sources/bytesource.js';
import { LAYER_NAME, loadLayer, unknownLayer, type Layer, type LoadOptions } from './layer.js';

export interface LayerProblem {
  file: string;
  error: string;
}

/**
 * Every layer file of a directory. A bad file is reported and skipped; it never stops the
 * other layers from serving. `reload` swaps in a new set atomically (SIGHUP).
 */
/** The longest wait between two tries of a refused layer file. */
const MAX_RETRY_S = 300;

export class LayerRegistry {
  private layers = new Map<string, Layer>();
  problems: LayerProblem[] = [];
  /** Refused files (by path relative to the directory), tried again with back-off: a source may come back. */
  private retries = new Map<string, { attempts: number; nextAt: number }>();
  /** Seconds between rounds of checks (SOURCE_RECHECK_S): the first wait before a retry. */
  private recheckS = 30;
  private readonly refreshing = new Map<string, Promise<Layer | undefined>>();

  constructor(
    private readonly opts: LoadOptions,
    private readonly log?: Logger,
  ) {}

  /** The layers directory, absolute. */
  get dir(): string {
    return this.opts.layersDir;
  }

  get(name: string): Layer | undefined {
    return this.layers.get(name);
  }

  /** The layer named so, or a 404. */
  require(name: string): Layer {
    const layer = this.layers.get(name);
    if (!layer) throw unknownLayer(name);
    return layer;
  }

  all(): Layer[] {
    return [...this.layers.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Every `seconds`, checks each source's version identity (size + mtime, or ETag /
   * Last-Modified) and reloads the layers whose sources changed, so that a replaced COG is
   * never answered from stale caches: the layer version, and so every key, changes.
   */
  watchSources(seconds: number): () => void {
    if (seconds <= 0) return () => {};
    this.recheckS = seconds;
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      this.recheck().finally(() => {
        running = false;
      });
    }, seconds * 1000);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * One round of checks: the loaded layers' sources (a changed one reloads its layer, a
   * failing one takes it out), then the refused files whose turn has come, so that a layer
   * whose source went away comes back by itself when it returns.
   */
  async recheck(): Promise<void> {
    for (const layer of this.all()) await this.refresh(layer);
    const now = Date.now();
    for (const [file, r] of [...this.retries]) {
      if (r.nextAt > now) continue;
      try {
        const layer = await loadLayer(path.join(this.opts.layersDir, file), this.opts);
        if (this.layers.has(layer.name)) throw new Error(`${file}: a layer named '${layer.name}' is already loaded`);
        this.layers.set(layer.name, layer);
        this.retries.delete(file);
        this.problems = this.problems.filter((p) => p.file !== file);
        this.log?.info({ layer: layer.name, version: layer.version, attempts: r.attempts }, 'layer loads again');
      } catch (err) {
        this.refuse(file, (err as Error).message, r.attempts + 1);
      }
    }
  }

  /**
   * Checks one layer's sources now, as a round of checks does (a render found a source
   * damaged: it may have been overwritten in place): reloads the layer when a source's identity
   * changed and answers the layer now loaded under its name, or undefined when it was taken
   * out. Concurrent calls for a layer share one check.
   */
  refresh(layer: Layer): Promise<Layer | undefined> {
    let p = this.refreshing.get(layer.name);
    if (!p) {
      p = this.checkSources(layer).finally(() => this.refreshing.delete(layer.name));
      this.refreshing.set(layer.name, p);
    }
    return p;
  }

  private async checkSources(layer: Layer): Promise<Layer | undefined> {
    const current = this.layers.get(layer.name);
    // Another check has reloaded it meanwhile.
    if (current !== layer) return current;
    let changed = false;
    for (const s of layer.sources) {
      // A mosaic is listed and its members' identities read again below, with the layer.
      if (s.mosaic) continue;
      const src = byteSource(s.location);
      try {
        changed ||= (await src.identity()).version !== s.version;
      } catch {
        changed = true; // gone or failing: reload, which reports the problem
      } finally {
        await src.close();
      }
    }
    if (!changed && layer.mosaics.size === 0) return layer;
    try {
      const fresh = await loadLayer(layer.file, this.opts);
      if (this.layers.get(layer.name) !== layer) return this.layers.get(layer.name);
      // A mosaic's members neither added, removed nor replaced: nothing changed.
      if (fresh.version === layer.version) return layer;
      this.layers.set(fresh.name, fresh);
      this.log?.info({ layer: fresh.name, version: fresh.version }, 'source changed: layer reloaded');
      return fresh;
    } catch (err) {
      if (this.layers.get(layer.name) !== layer) return this.layers.get(layer.name);
      this.layers.delete(layer.name);
      this.refuse(path.relative(this.opts.layersDir, layer.file), (err as Error).message);
      this.log?.error({ layer: layer.name }, (err as Error).message);
      return undefined;
    }
  }

  /** Lists a refused file with its current reason, and when to try it again (doubling, up to MAX_RETRY_S). */
  private refuse(file: string, error: string, attempts = 1): void {
    this.problems = [...this.problems.filter((p) => p.file !== file), { file, error }];
    const wait = Math.min(MAX_RETRY_S, this.recheckS * 2 ** (attempts - 1));
    this.retries.set(file, { attempts, nextAt: Date.now() + wait * 1000 });
  }

  async reload(): Promise<void> {
    const { layers, problems } = await loadLayerDir(this.opts);
    for (const p of problems) this.log?.error({ file: p.file }, p.error);
    this.layers = layers;
    this.problems = [];
    this.retries.clear();
    for (const p of problems) this.refuse(p.file, p.error);
    this.log?.info({ layers: [...layers.keys()] }, `${layers.size} layer(s) loaded, ${problems.length} refused`);
  }
}

/** The file of the layer named so in `dir` (`NAME.yaml` or `NAME.yml`), or an error saying there is none. */
export function findLayerFile(dir: string, name: string): string {
  if (!LAYER_NAME.test(name)) throw new Error(`'${name}' is not a layer name`);
  const file = [`${name}.yaml`, `${name}.yml`].map((f) => path.join(dir, f)).find((f) => existsSync(f));
  if (!file) throw new Error(`no layer file for '${name}' in ${dir}`);
  return file;
}

export async function loadLayerDir(opts: LoadOptions): Promise<{ layers: Map<string, Layer>; problems: LayerProblem[] }> {
  const files = (await readdir(opts.layersDir, { withFileTypes: true }))
    // Anything but a folder: a FIFO or a device named like a layer file is refused by name
    // (loadLayer says why), never skipped without a word.
    .filter((d) => !d.isDirectory() && /\.ya?ml$/.test(d.name))
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
