import type { Request, Response } from 'express';
import type { Layer } from '../../layers/layer.js';
import type { LayerRegistry } from '../../layers/registry.js';
import { wrapBounds } from '../../tiles/mercator.js';

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
