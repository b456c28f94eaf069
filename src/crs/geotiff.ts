/**
 * The CRS of a GeoTIFF from its GeoKeys.
 *
 * References:
 * - GeoTIFF 1.0 specification (Ritter & Ruth, 1995), section 2.7 (GeoKeys),
 *   6.2 (key IDs) and 6.3 (key values: 6.3.1.3 linear units, 6.3.1.4 angular
 *   units, 6.3.3.3 coordinate transformation codes); OGC GeoTIFF 1.1 (19-008r4)
 *   for the same keys with EPSG semantics.
 * - libgeotiff geo_normalize.c (GTIFGetDefn / GTIFFetchProjParms), whose
 *   fallbacks between parameter keys are mirrored here, because files in the
 *   wild are written against what libgeotiff/GDAL read, not only the spec text.
 *
 * The result is a PROJ.4-style string meant for proj4js (see crs.ts).
 */
import { detokenize, makeCrs, unsupported, unsupportedReason, validateProj4, type Crs } from './crs.js';
import { geodetic } from './datum.js';
import { crsFromEpsg, fromEpsgKey } from './epsg.js';
import { degreesPerAngularUnit, linearUnit, unitsParam } from './geodesy.js';
import { GeoKey, KV_USER_DEFINED, ModelType, type GeoKeys } from './geokeys.js';
import { CT_NAMES, projectionFromCoordTrans, projectionFromProjectionCode } from './projections.js';

function citation(keys: GeoKeys, ...citationKeys: GeoKey[]): string | undefined {
  for (const k of citationKeys) {
    const s = keys.text(k);
    if (s === undefined || /^unknown$/i.test(s)) continue;
    // ESRI writes its whole WKT as "ESRI PE String = PROJCS["name",...".
    const esriName = /^ESRI PE String = (?:PROJCS|GEOGCS)\["([^"]+)"/.exec(s)?.[1];
    if (esriName !== undefined) return esriName;
    // GDAL packs "GCS Name = X|Datum = Y|..." into GeogCitationGeoKey.
    const gcsName = /GCS Name = ([^|]+)/.exec(s)?.[1]?.trim();
    if (gcsName !== undefined) {
      if (!/^unknown$/i.test(gcsName)) return gcsName;
      continue;
    }
    return s;
  }
  return undefined;
}

function userDefinedProjected(keys: GeoKeys): Crs {
  const toMeter = linearUnit(keys, GeoKey.ProjLinearUnits, GeoKey.ProjLinearUnitSize);
  const ct = keys.code(GeoKey.ProjCoordTrans);
  const projCode = keys.code(GeoKey.Projection);
  let params: string[];
  let label: string;
  // Explicit parameter keys describe the projection completely, so they win over a
  // ProjectionGeoKey code; the code is the fallback (e.g. NLCD: ProjectionGeoKey 16012 only).
  if (ct !== undefined && ct !== KV_USER_DEFINED) {
    params = projectionFromCoordTrans(keys, ct, toMeter);
    label = CT_NAMES[ct] ?? `ProjCoordTransGeoKey ${ct}`;
  } else if (projCode !== undefined && projCode !== KV_USER_DEFINED) {
    ({ params, label } = projectionFromProjectionCode(projCode));
  } else {
    throw unsupported('user-defined ProjectedCSTypeGeoKey without ProjCoordTransGeoKey or ProjectionGeoKey');
  }
  const g = geodetic(keys);
  const def = [...params, detokenize(g.params), unitsParam(toMeter), '+no_defs'].filter((s) => s !== '').join(' ');
  const name = citation(keys, GeoKey.PCSCitation, GeoKey.GTCitation) ?? `User-defined ${label} (${g.label})`;
  validateProj4(def, `user-defined ${label}`);
  return makeCrs(def, name, false);
}

function userDefinedGeographic(keys: GeoKeys): Crs {
  // Raster coordinates of a geographic model are in GeogAngularUnits (spec 2.7.2); proj4js
  // longlat only takes degrees.
  const deg = degreesPerAngularUnit(keys);
  if (deg !== 1) throw unsupported(`geographic raster in GeogAngularUnitsGeoKey ${keys.code(GeoKey.GeogAngularUnits) ?? '?'} (only degrees)`);
  const g = geodetic(keys);
  const def = ['+proj=longlat', detokenize(g.params), '+no_defs'].join(' ');
  const name = citation(keys, GeoKey.GeogCitation, GeoKey.GTCitation) ?? `User-defined geographic (${g.label})`;
  validateProj4(def, 'user-defined geographic CRS');
  return makeCrs(def, name, true);
}

/**
 * The CRS of a GeoTIFF from its GeoKeys. EPSG codes (ProjectedCSTypeGeoKey,
 * GeographicTypeGeoKey) are looked up; user-defined (32767) CRSs are assembled from the
 * parameter keys. Throws `Error('unsupported CRS: ...')` naming the offending key.
 */
export function crsFromGeoKeys(keys: GeoKeys): Crs {
  const pcs = keys.code(GeoKey.ProjectedCSType);
  const gcs = keys.code(GeoKey.GeographicType);
  let model = keys.code(GeoKey.GTModelType);
  if (model === undefined) {
    // GTModelTypeGeoKey is required by the spec, but infer it rather than give up.
    if (pcs !== undefined || keys.code(GeoKey.Projection) !== undefined || keys.code(GeoKey.ProjCoordTrans) !== undefined) model = ModelType.Projected;
    else if (gcs !== undefined || keys.number(GeoKey.GeogSemiMajorAxis) !== undefined || keys.code(GeoKey.GeogGeodeticDatum) !== undefined)
      model = ModelType.Geographic;
    else throw unsupported('no GTModelTypeGeoKey and no CRS keys');
  }

  if (model === ModelType.Projected) {
    if (pcs !== undefined && pcs !== KV_USER_DEFINED) {
      try {
        const crs = crsFromEpsg(pcs);
        if (crs.isGeographic) throw unsupported(`ProjectedCSTypeGeoKey ${pcs} is a geographic CRS (${crs.name})`);
        return crs;
      } catch (e) {
        // A code we cannot resolve is still usable when the file also spells it out.
        if (keys.code(GeoKey.ProjCoordTrans) === undefined) {
          const msg = unsupportedReason(e);
          throw unsupported(msg.startsWith('ProjectedCSTypeGeoKey') ? msg : `ProjectedCSTypeGeoKey ${pcs}: ${msg}`);
        }
      }
    }
    return userDefinedProjected(keys);
  }
  if (model === ModelType.Geographic) {
    if (gcs !== undefined && gcs !== KV_USER_DEFINED) {
      const crs = fromEpsgKey(GeoKey.GeographicType, gcs);
      if (!crs.isGeographic) throw unsupported(`GeographicTypeGeoKey ${gcs} is not a geographic CRS (${crs.name})`);
      return crs;
    }
    return userDefinedGeographic(keys);
  }
  if (model === ModelType.Geocentric) throw unsupported('GTModelTypeGeoKey 3 (geocentric)');
  throw unsupported(`GTModelTypeGeoKey ${model}`);
}
