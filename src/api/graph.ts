/**
 * A layer built in code: the fields of a layer file, with steps from `ops`. It goes through
 * the loader's own path (`layerFromData`: the layer file schema, sources opened and confined
 * to a directory, the graph built and checked); the one difference is that the program's
 * `tap` and `lambda` steps are built, where a layer file's are refused.
 */
import path from 'node:path';
import type { z } from 'zod';
import { LAYER_NAME, LayerError, layerFromData, type CachePolicy, type Layer } from '../layers/layer.js';
import type { MosaicRef } from '../layers/mosaic.js';
import { codeOperators } from './code.js';
import type { GraphNode, Step } from './ops.js';

interface LayerFields {
  /** The layer's name: its URL segment under `/tiles/` (`[a-z0-9][a-z0-9_-]{0,63}`). */
  name: string;
  /**
   * Relative source paths (and model files) are resolved from here and must stay inside it,
   * as a layer file's must stay inside LAYERS_DIR. Default: the working directory.
   */
  dir?: string;
  /** Hosts that http(s) sources (and mosaics' STAC items) may name. Default: the hosts of the URLs in `sources`. */
  allowedHosts?: readonly string[];
  /** As in a layer file: a path relative to `dir`, an http(s) URL, or a mosaic. */
  sources: Record<string, string | z.input<typeof MosaicRef>>;
  title?: string;
  description?: string;
  attribution?: string;
  minzoom?: number;
  maxzoom?: number;
  tileSize?: 256 | 512;
  empty?: 204 | 'transparent';
  cache?: Partial<CachePolicy>;
}

/** A list of steps, each taking the previous one's output; or named nodes and the one that is drawn. */
export type GraphOptions = LayerFields &
  ({ steps: readonly Step[]; nodes?: undefined; output?: undefined } | { nodes: Readonly<Record<string, GraphNode>>; output: string; steps?: undefined });

export class Graph {
  readonly name: string;
  private loading?: Promise<Layer>;

  constructor(readonly options: GraphOptions) {
    this.name = options.name;
  }

  /**
   * The layer, validated as a layer file is (LayerError naming the graph, the node and the
   * problem otherwise), its sources opened for their metadata. Built once.
   */
  load(): Promise<Layer> {
    this.loading ??= this.build().catch((err: unknown) => {
      this.loading = undefined;
      throw err;
    });
    return this.loading;
  }

  private async build(): Promise<Layer> {
    const { name, dir = '.', allowedHosts, sources, steps, nodes, output, ...fields } = this.options;
    const label = `graph '${name}'`;
    const fail = (msg: string): never => {
      throw new LayerError(label, msg);
    };
    if (typeof name !== 'string' || !LAYER_NAME.test(name)) fail(`'${name}' is not a layer name: use lower-case letters, digits, '-' and '_' (at most 64)`);
    let pipeline: unknown;
    if (steps !== undefined) {
      if (nodes !== undefined) fail("give either 'steps' or 'nodes' and 'output', not both");
      pipeline = [...steps];
    } else if (nodes !== undefined) {
      pipeline = { nodes: Object.fromEntries(Object.entries(nodes).map(([node, step]) => [node, nodeOf(step, node, fail)])), output };
    } else fail("the graph needs 'steps', or 'nodes' and 'output'");
    const layersDir = path.resolve(dir);
    const hosts = allowedHosts ?? Object.values(sources ?? {}).flatMap((s) => (typeof s === 'string' && /^https?:\/\//i.test(s) ? [hostOf(s)] : []));
    const doc = Object.fromEntries(Object.entries({ ...fields, sources, pipeline }).filter(([, v]) => v !== undefined));
    return layerFromData(doc, { name, file: label, dir: layersDir, fail }, { layersDir, allowedHosts: hosts.map((h) => h.toLowerCase()) }, codeOperators);
  }
}

/** A node as the graph form of a layer file writes it: `{ op, in, ...params }`. */
function nodeOf(step: GraphNode, node: string, fail: (msg: string) => never): Record<string, unknown> {
  const { in: inputs, ...rest } = step as GraphNode & Record<string, unknown>;
  const keys = Object.keys(rest);
  if (keys.length !== 1) fail(`node '${node}': a node is one step (from ops) and its 'in'; got keys ${keys.join(', ') || 'none'}`);
  const op = keys[0]!;
  const params = rest[op];
  return { ...(params && typeof params === 'object' ? params : {}), op, ...(inputs !== undefined ? { in: [...inputs] } : {}) };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}
