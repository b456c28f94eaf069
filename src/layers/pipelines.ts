/**
 * Ad-hoc pipelines (`POST /pipelines`, on with ADHOC_PIPELINES=on): a client posts a layer
 * document, which the loader checks exactly as it checks a layer file, with its sources
 * limited to those the loaded layers read. It is kept under the hash of its canonical
 * config, so identical documents are one pipeline and share their cache entries, and every
 * budget a client could exceed is a 4xx naming it.
 */
import { LRUCache } from 'lru-cache';
import { TileError } from '../errors.js';
import { operatorsOf } from '../ops/operator.js';
import { LayerError, layerFromText, type Layer, type LoadOptions } from './layer.js';
import type { LayerRegistry } from './registry.js';

/** Bytes of one posted document. */
export const MAX_DOCUMENT_BYTES = 64 * 1024;
/** Operators in one ad-hoc graph (a layer file may have up to 256). */
export const MAX_PIPELINE_NODES = 32;

export interface PipelineOptions extends LoadOptions {
  /** Pipelines kept at once; the least recently used is forgotten first (ADHOC_MAX_PIPELINES). */
  max: number;
  /** Time one tile of a pipeline may take (ADHOC_RENDER_MS). */
  renderMs: number;
  /** Documents one client may post a minute (ADHOC_POSTS_PER_MINUTE). */
  postsPerMinute: number;
}

/** Clients whose posts are counted at once; past this, the oldest windows are dropped. */
const MAX_CLIENTS = 10_000;

export class PipelineRegistry {
  private readonly live: LRUCache<string, Layer>;
  private readonly posts = new Map<string, { since: number; count: number }>();

  constructor(
    private readonly layers: LayerRegistry,
    private readonly o: PipelineOptions,
  ) {
    this.live = new LRUCache({ max: o.max });
  }

  /** Counts a post of this client; a 429 past ADHOC_POSTS_PER_MINUTE within a minute. */
  admit(client: string, now = Date.now()): void {
    let w = this.posts.get(client);
    if (!w || now - w.since >= 60_000) {
      this.posts.delete(client);
      if (this.posts.size >= MAX_CLIENTS) this.posts.delete(this.posts.keys().next().value!);
      this.posts.set(client, (w = { since: now, count: 0 }));
    }
    if (++w.count > this.o.postsPerMinute)
      throw new TileError(
        'too_many_requests',
        'too many pipelines posted',
        `at most ${this.o.postsPerMinute} documents a minute from one client (ADHOC_POSTS_PER_MINUTE); try again in ${Math.ceil((w.since + 60_000 - now) / 1000)} s`,
      );
  }

  /** Checks and keeps a document; the same document (by canonical config) gives the same pipeline. */
  async add(text: string): Promise<Layer> {
    if (Buffer.byteLength(text) > MAX_DOCUMENT_BYTES)
      throw new TileError('too_large', 'document too large', `the document is ${Buffer.byteLength(text)} bytes; at most ${MAX_DOCUMENT_BYTES}`);
    const readable = new Set(
      this.layers
        .all()
        .flatMap((l) => l.sources)
        .filter((s) => !s.mosaic)
        .map((s) => s.location),
    );
    let layer: Layer;
    try {
      layer = await layerFromText(
        text,
        {
          name: 'pipeline',
          file: 'the document',
          dir: this.o.layersDir,
          fail: (msg) => {
            throw new LayerError('the document', msg);
          },
          checkSource: (location, ref) => {
            if (!readable.has(location)) throw new Error(`'${ref}' is not a source of a loaded layer; an ad-hoc pipeline reads only those`);
          },
        },
        this.o,
      );
    } catch (err) {
      if (err instanceof LayerError) throw new TileError('bad_request', 'invalid pipeline', err.message);
      throw err;
    }
    const nodes = [...operatorsOf(layer.graph)].filter((op) => op.children().length === 0).length;
    if (nodes > MAX_PIPELINE_NODES)
      throw new TileError('over_budget', 'too many nodes', `the graph has ${nodes} operators; an ad-hoc pipeline has at most ${MAX_PIPELINE_NODES}`);
    const hash = layer.hash.slice(0, 32);
    const known = this.live.get(hash);
    if (known) return known;
    const name = `p-${hash}`;
    const kept: Layer = { ...layer, name, spec: { ...layer.spec, name }, budget: { renderMs: this.o.renderMs } };
    this.live.set(hash, kept);
    return kept;
  }

  /** The pipeline of this hash, or a 404 saying it is gone (forgotten, or the server restarted). */
  require(hash: string): Layer {
    const layer = this.live.get(hash);
    if (!layer)
      throw new TileError(
        'not_found',
        'unknown pipeline',
        `no pipeline ${hash.slice(0, 64)}: it was never posted here, or was forgotten (post the document again)`,
      );
    return layer;
  }

  get size(): number {
    return this.live.size;
  }
}
