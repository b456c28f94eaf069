import type { Request, Response } from 'express';
import { TileError } from '../../errors.js';
import { wgs84Bounds, type Layer } from '../../layers/layer.js';
import type { Mosaic } from '../../layers/mosaic.js';
import type { LayerRegistry } from '../../layers/registry.js';
import { lonLatToMercator, wrapBounds } from '../../tiles/mercator.js';
import { queryBbox } from './params.js';

function summary(l: Layer) {
  return {
    name: l.name,
    title: l.config.title,
    hash: l.hash,
    version: l.version,
    bounds: wrapBounds(l.bounds),
    minzoom: l.config.minzoom,
    maxzoom: l.config.maxzoom,
    tileSize: l.config.tileSize,
  };
}

export function listLayers(layers: LayerRegistry) {
  return (_req: Request, res: Response): void => {
    res.setHeader('Cache-Control', 'no-cache');
    res.json({ layers: layers.all().map(summary), refused: layers.problems });
  };
}

export function describeLayer(layers: LayerRegistry) {
  return (req: Request, res: Response): void => {
    const l = layers.require(String(req.params.layer));
    res.setHeader('Cache-Control', 'no-cache');
    res.json({
      ...summary(l),
      config: l.config,
      sources: l.sources.map((s) => ({
        name: s.name,
        ref: s.ref,
        ...(s.mosaic ? { mosaic: mosaicSummary(s.mosaic) } : {}),
        version: s.version,
        crs: { name: s.meta.crs.name, epsg: s.meta.crs.epsg ?? null, proj4: s.meta.crs.proj4 },
        width: s.meta.width,
        height: s.meta.height,
        bands: s.meta.bands,
        dataType: s.meta.dataType,
        nodata: s.meta.nodata !== null && Number.isNaN(s.meta.nodata) ? 'nan' : s.meta.nodata,
        palette: !!s.meta.palette,
        overviews: s.meta.levels.slice(1).map((lv) => [lv.width, lv.height]),
        blockSize: [s.meta.levels[0]!.image.blockWidth, s.meta.levels[0]!.image.blockHeight],
        compression: s.meta.compression,
        bounds: s.meta.bounds,
      })),
    });
  };
}

/** A mosaic as `GET /layers/{layer}` shows it: how many members, where, in which CRSs (its first member's metadata follows). */
function mosaicSummary(m: Mosaic) {
  const crss = new Map<string, { name: string; epsg: number | null; members: number }>();
  for (const { meta } of m.members) {
    const c = crss.get(meta.crs.proj4) ?? { name: meta.crs.name, epsg: meta.crs.epsg ?? null, members: 0 };
    c.members++;
    crss.set(meta.crs.proj4, c);
  }
  return { method: m.method, members: m.members.length, bounds: wrapBounds(m.index.bounds), crss: [...crss.values()], footprint: m.index.footprint() };
}

/** At most this many members in one answer of `GET /layers/{layer}/members`. */
const MAX_LISTED = 10_000;

/** `GET /layers/{layer}/members?bbox=W,S,E,N`: the members of the layer's mosaics whose footprint meets the area (all without `bbox`). */
export function listMembers(layers: LayerRegistry) {
  return (req: Request, res: Response): void => {
    const l = layers.require(String(req.params.layer));
    if (l.mosaics.size === 0) throw new TileError('not_found', 'not a mosaic', `layer '${l.name}' has no mosaic source`);
    const bbox = queryBbox(req);
    const rect = bbox && ([...lonLatToMercator(bbox[0], bbox[1]), ...lonLatToMercator(bbox[2], bbox[3])] as [number, number, number, number]);
    const members: Record<string, unknown>[] = [];
    let count = 0;
    for (const [source, m] of l.mosaics) {
      const found = rect ? m.index.search(rect) : m.members.map((_, i) => i);
      count += found.length;
      for (const i of found.slice(0, Math.max(0, MAX_LISTED - members.length))) {
        const { ref, version, meta } = m.members[i]!;
        members.push({
          source,
          ref,
          version,
          bounds: wrapBounds(wgs84Bounds(meta)),
          crs: { name: meta.crs.name, epsg: meta.crs.epsg ?? null },
          width: meta.width,
          height: meta.height,
          overviews: meta.levels.length - 1,
        });
      }
    }
    res.setHeader('Cache-Control', 'no-cache');
    res.json({ layer: l.name, bbox: bbox ?? null, count, truncated: count > members.length, members });
  };
}
