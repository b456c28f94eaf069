/**
 * OGC WMTS 1.0.0 capabilities (OGC 07-057r7), RESTful encoding only. Pure: layers and the
 * public base URL in, the XML document out.
 *
 * Two tile matrix sets over the XYZ grid (EPSG:3857, y from the top):
 * - `GoogleMapsCompatible`: 256 px tiles, the well-known scale set of 07-057r7 Annex E.4;
 *   a 256-pixel layer's `.png` tiles.
 * - `GoogleMapsCompatible512`: the same tiles (matrix z covers the ground of XYZ zoom z) at
 *   512 px, so every scale denominator is half; a 256-pixel layer's `@2x.png` tiles, or a
 *   512-pixel layer's `.png`.
 */
import { HALF_WORLD, lonLatToMercator, tileRange } from './mercator.js';
import { mercatorBounds, type ClientLayer } from './tilejson.js';

/** WMTS scale denominators assume a 0.28 mm "standardized rendering pixel" (07-057r7 §6.1). */
export const STANDARD_PIXEL_M = 0.00028;
export const CRS_3857 = 'urn:ogc:def:crs:EPSG::3857';
export const WMTS_STYLE = 'default';

export interface MatrixSetDef {
  id: string;
  tileSize: 256 | 512;
  wellKnownScaleSet?: string;
}

export const MATRIX_SETS: readonly MatrixSetDef[] = [
  { id: 'GoogleMapsCompatible', tileSize: 256, wellKnownScaleSet: 'urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible' },
  { id: 'GoogleMapsCompatible512', tileSize: 512 },
];

/** Matrices when no layer says how deep to go. */
const DEFAULT_MAX_ZOOM = 18;

/** Ground metres per pixel over the 0.28 mm pixel: 559082264.0287178 at z0 for 256 px tiles. */
export function scaleDenominator(z: number, tileSize: number): number {
  return (2 * HALF_WORLD) / (tileSize * 2 ** z) / STANDARD_PIXEL_M;
}

/**
 * The tile file suffix that serves a matrix set for a layer, or undefined when the layer has
 * no tiles of that size: `.png` when the sizes match, `@2x.png` at twice the layer's size.
 */
export function matrixSetSuffix(layerTileSize: number, setId: string): '' | '@2x' | undefined {
  const set = MATRIX_SETS.find((s) => s.id === setId);
  if (!set) return undefined;
  if (set.tileSize === layerTileSize) return '';
  if (set.tileSize === layerTileSize * 2) return '@2x';
  return undefined;
}

/** The matrix sets that serve a layer of `layerTileSize` pixels (matrixSetSuffix), in the capabilities' order. */
export function matrixSetsOf(layerTileSize: number): string[] {
  return MATRIX_SETS.filter((s) => matrixSetSuffix(layerTileSize, s.id) !== undefined).map((s) => s.id);
}

/** RESTful tile template of one layer; `{Style}`, `{TileMatrixSet}`, ... are WMTS template variables. */
export function wmtsTileTemplate(baseUrl: string, layer: Pick<ClientLayer, 'name' | 'version'>): string {
  return `${baseUrl}/wmts/1.0.0/${encodeURIComponent(layer.name)}/{Style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.png?v=${encodeURIComponent(layer.version)}`;
}

export function capabilitiesUrl(baseUrl: string): string {
  return `${baseUrl}/wmts/1.0.0/WMTSCapabilities.xml`;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Shortest text that reads back as the same double, never in exponent form for these ranges. */
function num(v: number): string {
  return String(v);
}

function corner(x: number, y: number): string {
  // EPSG:3857 axes are easting, northing, so the URN order is x then y.
  return `${num(x)} ${num(y)}`;
}

function matrixSetXml(set: MatrixSetDef, maxZoom: number): string {
  const out: string[] = [];
  out.push('    <TileMatrixSet>');
  out.push(`      <ows:Identifier>${set.id}</ows:Identifier>`);
  out.push(`      <ows:BoundingBox crs="${CRS_3857}">`);
  out.push(`        <ows:LowerCorner>${corner(-HALF_WORLD, -HALF_WORLD)}</ows:LowerCorner>`);
  out.push(`        <ows:UpperCorner>${corner(HALF_WORLD, HALF_WORLD)}</ows:UpperCorner>`);
  out.push('      </ows:BoundingBox>');
  out.push(`      <ows:SupportedCRS>${CRS_3857}</ows:SupportedCRS>`);
  if (set.wellKnownScaleSet) out.push(`      <WellKnownScaleSet>${set.wellKnownScaleSet}</WellKnownScaleSet>`);
  for (let z = 0; z <= maxZoom; z++) {
    const n = 2 ** z;
    out.push('      <TileMatrix>');
    out.push(`        <ows:Identifier>${z}</ows:Identifier>`);
    out.push(`        <ScaleDenominator>${num(scaleDenominator(z, set.tileSize))}</ScaleDenominator>`);
    out.push(`        <TopLeftCorner>${corner(-HALF_WORLD, HALF_WORLD)}</TopLeftCorner>`);
    out.push(`        <TileWidth>${set.tileSize}</TileWidth>`);
    out.push(`        <TileHeight>${set.tileSize}</TileHeight>`);
    out.push(`        <MatrixWidth>${n}</MatrixWidth>`);
    out.push(`        <MatrixHeight>${n}</MatrixHeight>`);
    out.push('      </TileMatrix>');
  }
  out.push('    </TileMatrixSet>');
  return out.join('\n');
}

function layerXml(baseUrl: string, layer: ClientLayer): string {
  const { config } = layer;
  // Across the antimeridian, the whole width: a box cannot say "170° east to 170° west" here.
  const box = mercatorBounds(layer.bounds);
  const [w, s, e, n] = box[2] > 180 ? [-180, box[1], 180, box[3]] : box;
  const [x0, y0] = lonLatToMercator(w, s);
  const [x1, y1] = lonLatToMercator(e, n);
  const abstract = [config.description, config.attribution && `Attribution: ${config.attribution}`].filter(Boolean).join(' ');
  const out: string[] = [];
  out.push('    <Layer>');
  out.push(`      <ows:Title>${esc(config.title || layer.name)}</ows:Title>`);
  if (abstract) out.push(`      <ows:Abstract>${esc(abstract)}</ows:Abstract>`);
  // Longitude then latitude, always (OWS 1.1 WGS84BoundingBox, urn:ogc:def:crs:OGC:2:84).
  out.push('      <ows:WGS84BoundingBox>');
  out.push(`        <ows:LowerCorner>${num(w)} ${num(s)}</ows:LowerCorner>`);
  out.push(`        <ows:UpperCorner>${num(e)} ${num(n)}</ows:UpperCorner>`);
  out.push('      </ows:WGS84BoundingBox>');
  out.push(`      <ows:Identifier>${esc(layer.name)}</ows:Identifier>`);
  // The same box in the matrix sets' CRS: GDAL takes a layer's extent from this one first.
  out.push(`      <ows:BoundingBox crs="${CRS_3857}">`);
  out.push(`        <ows:LowerCorner>${corner(x0, y0)}</ows:LowerCorner>`);
  out.push(`        <ows:UpperCorner>${corner(x1, y1)}</ows:UpperCorner>`);
  out.push('      </ows:BoundingBox>');
  out.push(`      <Style isDefault="true"><ows:Identifier>${WMTS_STYLE}</ows:Identifier></Style>`);
  out.push('      <Format>image/png</Format>');
  for (const set of MATRIX_SETS) {
    if (matrixSetSuffix(config.tileSize, set.id) === undefined) continue;
    out.push('      <TileMatrixSetLink>');
    out.push(`        <TileMatrixSet>${set.id}</TileMatrixSet>`);
    // Only the layer's zooms, and at each only the tiles over its data: clients skip the rest.
    out.push('        <TileMatrixSetLimits>');
    for (let z = config.minzoom; z <= config.maxzoom; z++) {
      const [minCol, minRow, maxCol, maxRow] = tileRange([w, s, e, n], z);
      out.push(
        `          <TileMatrixLimits><TileMatrix>${z}</TileMatrix><MinTileRow>${minRow}</MinTileRow><MaxTileRow>${maxRow}</MaxTileRow><MinTileCol>${minCol}</MinTileCol><MaxTileCol>${maxCol}</MaxTileCol></TileMatrixLimits>`,
      );
    }
    out.push('        </TileMatrixSetLimits>');
    out.push('      </TileMatrixSetLink>');
  }
  out.push(`      <ResourceURL format="image/png" resourceType="tile" template="${esc(wmtsTileTemplate(baseUrl, layer))}"/>`);
  out.push('    </Layer>');
  return out.join('\n');
}

/** The capabilities document for every layer, with tile URLs under `baseUrl`. */
export function buildWmtsCapabilities(baseUrl: string, layers: readonly ClientLayer[], title = 'tilegraph'): string {
  const maxZoom = layers.length ? Math.max(...layers.map((l) => l.config.maxzoom)) : DEFAULT_MAX_ZOOM;
  const self = esc(capabilitiesUrl(baseUrl));
  const restful = (href: string) =>
    [
      `          <ows:HTTP><ows:Get xlink:href="${href}">`,
      '            <ows:Constraint name="GetEncoding"><ows:AllowedValues><ows:Value>RESTful</ows:Value></ows:AllowedValues></ows:Constraint>',
      '          </ows:Get></ows:HTTP>',
    ].join('\n');
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:gml="http://www.opengis.net/gml" xsi:schemaLocation="http://www.opengis.net/wmts/1.0 http://schemas.opengis.net/wmts/1.0/wmtsGetCapabilities_response.xsd" version="1.0.0">',
    '  <ows:ServiceIdentification>',
    `    <ows:Title>${esc(title)}</ows:Title>`,
    '    <ows:ServiceType>OGC WMTS</ows:ServiceType>',
    '    <ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion>',
    '  </ows:ServiceIdentification>',
    '  <ows:OperationsMetadata>',
    '    <ows:Operation name="GetCapabilities">',
    '      <ows:DCP>',
    restful(self),
    '      </ows:DCP>',
    '    </ows:Operation>',
    '    <ows:Operation name="GetTile">',
    '      <ows:DCP>',
    restful(esc(`${baseUrl}/wmts/1.0.0/`)),
    '      </ows:DCP>',
    '    </ows:Operation>',
    '  </ows:OperationsMetadata>',
    '  <Contents>',
    ...layers.map((l) => layerXml(baseUrl, l)),
    ...MATRIX_SETS.map((s) => matrixSetXml(s, maxZoom)),
    '  </Contents>',
    `  <ServiceMetadataURL xlink:href="${self}"/>`,
    '</Capabilities>',
    '',
  ].join('\n');
}
