/**
 * Ad-hoc pipelines over HTTP (src/layers/pipelines.ts): `POST /pipelines` with a layer
 * document answers its hash and its TileJSON; its tiles are `/tiles/p/{hash}/{z}/{x}/{y}.png`.
 */
import type { Request, RequestHandler } from 'express';
import { TileError } from '../../errors.js';
import type { PipelineRegistry } from '../../layers/pipelines.js';
import { buildTileJson, type TileScale, type TileUrlFormat } from '../../tiles/tilejson.js';
import { documentHeaders, requestBaseUrl } from './clients.js';
import { queryText } from './params.js';

/** Where a pipeline's tiles are. */
export const pipelineRoute = (hash: string): string => `/tiles/p/${hash}`;

/** Off unless ADHOC_PIPELINES=on: a 404 that says how to turn them on. */
function enabled(pipelines: PipelineRegistry | undefined): PipelineRegistry {
  if (!pipelines) throw new TileError('not_found', 'ad-hoc pipelines are off', 'this server takes no posted pipelines (ADHOC_PIPELINES=on turns them on)');
  return pipelines;
}

/** `POST /pipelines`: `client` names who posts, for ADHOC_POSTS_PER_MINUTE. */
export function postPipeline(pipelines: PipelineRegistry | undefined, client: (req: Request) => string): RequestHandler {
  return async (req, res) => {
    const registry = enabled(pipelines);
    registry.admit(client(req));
    if (typeof req.body !== 'string' || req.body.trim() === '')
      throw new TileError('bad_request', 'no document', 'POST a layer document (YAML or JSON) as the body');
    const layer = await registry.add(req.body);
    const hash = layer.name.slice(2);
    const base = requestBaseUrl(req);
    documentHeaders(res);
    res.json({ hash, tilejson: buildTileJson(base, layer, 1, 'png', pipelineRoute(hash)), url: `${base}${pipelineRoute(hash)}/tilejson.json` });
  };
}

/** `GET /tiles/p/{hash}/tilejson.json` */
export function pipelineTileJson(pipelines: PipelineRegistry | undefined): RequestHandler {
  return (req, res) => {
    const hash = String(req.params.layer);
    const layer = enabled(pipelines).require(hash);
    const scale = queryText(req, 'scale') ?? '1';
    if (scale !== '1' && scale !== '2') throw new TileError('bad_request', 'bad scale', "'scale' is 1 or 2");
    const format = queryText(req, 'format') ?? 'png';
    if (format !== 'png' && format !== 'webp') throw new TileError('bad_request', 'bad format', "'format' is png or webp");
    documentHeaders(res);
    res.json(buildTileJson(requestBaseUrl(req), layer, Number(scale) as TileScale, format as TileUrlFormat, pipelineRoute(hash)));
  };
}

/** The pipelines as the tile route finds layers: by hash. */
export function pipelineLayers(pipelines: PipelineRegistry | undefined) {
  return { require: (hash: string) => enabled(pipelines).require(hash) };
}
