/**
 * The geodetic part of a CRS given by GeoKeys (GeoTIFF 1.0 section 2.7.2, "Geographic CS
 * Parameter Keys"): ellipsoid, datum shift and prime meridian as PROJ tokens. The fallbacks
 * between keys mirror libgeotiff's geo_normalize.c (GTIFGetDefn), because files in the wild
 * are written against what libgeotiff/GDAL read, not only the spec text.
 */
import { fmt, tokenize, unsupported, type Token } from './crs.js';
import { fromEpsgKey, geographicCrsOfDatum } from './epsg.js';
import { degreesPerAngularUnit, ellipsoidParams, EPSG_ELLIPSOIDS, linearUnit, PRIME_MERIDIANS, PROJ_ELLIPSOIDS, type Ellipsoid } from './geodesy.js';
import { GeoKey, geoKeyName, KV_USER_DEFINED, type GeoKeys } from './geokeys.js';

export interface Geodetic {
  params: Token[];
  label: string;
}

/** Keys that describe the geodetic datum (ellipsoid, shift, prime meridian). */
const GEODETIC_KEYS = new Set(['datum', 'ellps', 'a', 'b', 'rf', 'f', 'R', 'towgs84', 'nadgrids', 'pm']);

/** Geodetic tokens (ellipsoid + shift) of an EPSG geographic CRS; prime meridian separately. */
function geodeticFromEpsgGcs(code: number, key: GeoKey): Geodetic {
  const crs = fromEpsgKey(key, code);
  if (!crs.isGeographic) throw unsupported(`${geoKeyName(key)} ${code} is not a geographic CRS (${crs.name})`);
  return { params: tokenize(crs.proj4).filter((t) => GEODETIC_KEYS.has(t.key)), label: crs.name };
}

/** GeogGeodeticDatumGeoKey: an EPSG datum code, through the geographic CRS that has it. */
function geodeticFromDatumCode(datum: number): Geodetic {
  if (datum === 6326) return { params: tokenize('+datum=WGS84'), label: 'WGS 84' };
  const gcs = geographicCrsOfDatum(datum);
  if (gcs === undefined) throw unsupported(`GeogGeodeticDatumGeoKey ${datum} (no matching EPSG geographic CRS)`);
  const g = geodeticFromEpsgGcs(gcs, GeoKey.GeogGeodeticDatum);
  return { params: g.params.filter((t) => t.key !== 'pm'), label: g.label };
}

function ellipsoidFromKeys(keys: GeoKeys): { params: Token[]; label: string } | undefined {
  const toMeter = linearUnit(keys, GeoKey.GeogLinearUnits, GeoKey.GeogLinearUnitSize);
  const a = keys.number(GeoKey.GeogSemiMajorAxis);
  if (a !== undefined) {
    const b = keys.number(GeoKey.GeogSemiMinorAxis);
    const rf = keys.number(GeoKey.GeogInvFlattening);
    // libgeotiff: inverse flattening wins over semi-minor; neither (or rf 0) means a sphere.
    const e: Ellipsoid =
      rf !== undefined && rf !== 0 ? { a: a * toMeter, rf } : b !== undefined ? { a: a * toMeter, b: b * toMeter } : { a: a * toMeter, b: a * toMeter };
    const label = e.rf !== undefined ? `a=${fmt(e.a)} 1/f=${fmt(e.rf)}` : e.b === e.a ? `sphere R=${fmt(e.a)}` : `a=${fmt(e.a)} b=${fmt(e.b ?? e.a)}`;
    return { params: tokenize(ellipsoidParams(e).join(' ')), label };
  }
  const code = keys.code(GeoKey.GeogEllipsoid);
  if (code !== undefined && code !== KV_USER_DEFINED) {
    const e = EPSG_ELLIPSOIDS[code];
    if (!e) throw unsupported(`GeogEllipsoidGeoKey ${code}`);
    return { params: tokenize(ellipsoidParams(e).join(' ')), label: `ellipsoid EPSG:${code}` };
  }
  return undefined;
}

/** GeogTOWGS84GeoKey: 3 or 7 values, same order and convention as PROJ's +towgs84. */
function towgs84FromKeys(keys: GeoKeys): string | undefined {
  const v = keys.numbers(GeoKey.GeogTOWGS84);
  if (v === undefined) return undefined;
  if (v.length !== 3 && v.length !== 7) throw unsupported(`GeogTOWGS84GeoKey with ${v.length} values (3 or 7 expected)`);
  return v.map(fmt).join(',');
}

/** Prime meridian in degrees east of Greenwich. */
function primeMeridian(keys: GeoKeys): number {
  const lon = keys.number(GeoKey.GeogPrimeMeridianLong);
  if (lon !== undefined) return lon * degreesPerAngularUnit(keys);
  const code = keys.code(GeoKey.GeogPrimeMeridian);
  if (code === undefined || code === KV_USER_DEFINED) return 0;
  const pm = PRIME_MERIDIANS[code];
  if (pm === undefined) throw unsupported(`GeogPrimeMeridianGeoKey ${code}`);
  return pm;
}

/** Replaces the datum shift of `params` by an explicit +towgs84. */
function withTowgs84(params: Token[], towgs84: string): Token[] {
  const out: Token[] = [];
  for (const t of params) {
    if (t.key === 'towgs84' || t.key === 'nadgrids') continue;
    if (t.key === 'datum') {
      // +datum bundles an ellipsoid with its shift; keep the ellipsoid. Only WGS84 survives
      // normalizeEpsgProj4 as a +datum.
      if (t.value !== 'WGS84') throw unsupported(`GeogTOWGS84GeoKey together with datum ${t.value ?? '?'}`);
      out.push(...tokenize(ellipsoidParams(PROJ_ELLIPSOIDS.WGS84!).join(' ')));
      continue;
    }
    out.push(t);
  }
  out.push({ key: 'towgs84', value: towgs84 });
  return out;
}

/**
 * Ellipsoid, datum shift and prime meridian for a CRS whose geographic part is given by
 * GeographicTypeGeoKey (an EPSG code) or by the user-defined Geog* keys.
 */
export function geodetic(keys: GeoKeys): Geodetic {
  const gcs = keys.code(GeoKey.GeographicType);
  let g: Geodetic;
  if (gcs !== undefined && gcs !== KV_USER_DEFINED) {
    g = geodeticFromEpsgGcs(gcs, GeoKey.GeographicType);
  } else {
    // A coded datum implies its ellipsoid (and shift); the ellipsoid keys matter only for a
    // user-defined datum.
    const datum = keys.code(GeoKey.GeogGeodeticDatum);
    const ell = datum !== undefined && datum !== KV_USER_DEFINED ? undefined : ellipsoidFromKeys(keys);
    if (datum !== undefined && datum !== KV_USER_DEFINED) {
      g = geodeticFromDatumCode(datum);
    } else if (ell) {
      g = { params: ell.params, label: ell.label };
    } else {
      throw unsupported(
        'no ellipsoid (GeographicTypeGeoKey, GeogGeodeticDatumGeoKey, GeogEllipsoidGeoKey and GeogSemiMajorAxisGeoKey all missing or user-defined)',
      );
    }
    const pm = primeMeridian(keys);
    if (pm !== 0) g.params.push({ key: 'pm', value: fmt(pm) });
  }
  const towgs84 = towgs84FromKeys(keys);
  if (towgs84 !== undefined) g = { params: withTowgs84(g.params, towgs84), label: g.label };
  return g;
}
