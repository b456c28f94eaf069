/**
 * tilegraph as a library: build a layer's graph in code (`Graph`, `ops`, with `tap` and
 * `lambda` for a program's own functions), render tiles without HTTP (`renderTile`), or mount
 * the tile routes in an express app (`createTileRouter`). Layer files stay sandboxed: code
 * runs only where a program passes it in.
 */
export { Graph, type GraphOptions } from './api/graph.js';
export { ops, type BuiltinStep, type GraphNode, type OperatorName, type OperatorParams, type Ops, type Step } from './api/ops.js';
export type { LambdaFn, LambdaOptions, LambdaOutput, TapFn } from './api/code.js';
export { renderTile, type RenderTileOptions } from './api/render.js';
export { createTileRouter, type TileRouter, type TileRouterOptions } from './api/router.js';
export { LayerError, loadLayer, type Layer, type LoadOptions } from './layers/layer.js';
export { bandRaster, type BandRaster, type OutputShape, type Raster, type RgbaRaster, type TileContext } from './ops/raster.js';
export { TileError } from './errors.js';
