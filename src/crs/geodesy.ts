/**
 * Units, ellipsoids and prime meridians by their EPSG codes, as GeoTIFF keys give them
 * (GeoTIFF 1.0 section 6.3.1.3 linear units, 6.3.1.4 angular units; ellipsoid and prime
 * meridian codes from the EPSG dataset), and PROJ's +ellps names.
 */
import { fmt, unsupported } from './crs.js';
import { GeoKey, geoKeyName, KV_USER_DEFINED, type GeoKeys } from './geokeys.js';

// ---------------------------------------------------------------------------
// Units

/**
 * Linear units (GeoTIFF 1.0 section 6.3.1.3, values from the EPSG dataset): metres per unit.
 * 9015 is GeoTIFF's Linear_Mile_International_Nautical (EPSG uses 9030).
 */
const LINEAR_UNITS: Readonly<Record<number, number>> = {
  9001: 1,
  9002: 0.3048,
  9003: 1200 / 3937,
  9005: 0.3047972654,
  9014: 1.8288,
  9015: 1852,
  9030: 1852,
  9031: 1.0000135965,
  9033: 20.11684023368047,
  9034: 0.2011684023368047,
  9035: 1609.3472186944375,
  9036: 1000,
  9037: 0.9143917962,
  9038: 20.1166195164,
  9039: 0.201166195164,
  9040: 0.9143984146160287,
  9041: 0.3047994715386762,
  9042: 20.116765121552632,
  9043: 0.2011676512155263,
  9050: 0.9143992,
  9051: 0.3047997333333333,
  9052: 20.1167824,
  9053: 0.201167824,
  9060: 0.9143992042898124,
  9061: 0.30479973476327077,
  9062: 20.116782494375872,
  9063: 0.2011678249437587,
  9070: 0.30480083333333335,
  9080: 0.30479951024814694,
  9081: 0.30479841,
  9082: 0.3047996,
  9083: 0.3047995,
  9084: 0.9143985307444408,
  9085: 0.91439523,
  9086: 0.9143988,
  9087: 0.9143985,
  9093: 1609.344,
  9094: 0.3047997101815088,
  9095: 0.3048007491,
  9096: 0.9144,
  9097: 20.1168,
  9098: 0.201168,
  9099: 0.914398,
};

/** Angular units (GeoTIFF 1.0 section 6.3.1.4, EPSG factors): degrees per unit. */
const ANGULAR_UNITS: Readonly<Record<number, number>> = {
  9101: 180 / Math.PI, // radian
  9102: 1, // degree
  9103: 1 / 60, // arc-minute
  9104: 1 / 3600, // arc-second
  9105: 0.9, // grad
  9106: 0.9, // gon
  9109: 180e-6 / Math.PI, // microradian
  9112: 0.009, // centesimal minute
  9113: 0.00009, // centesimal second
  9122: 1, // degree (supplier to define representation)
};

export function linearUnit(keys: GeoKeys, codeKey: GeoKey, sizeKey: GeoKey): number {
  const code = keys.code(codeKey);
  if (code === undefined) return 1; // metres are the implied default
  if (code === KV_USER_DEFINED) {
    // *LinearUnitSizeGeoKey: metres per user-defined unit (spec 2.7.1).
    const size = keys.number(sizeKey);
    if (size === undefined || !(size > 0)) throw unsupported(`${geoKeyName(codeKey)} 32767 without a valid ${geoKeyName(sizeKey)}`);
    return size;
  }
  const m = LINEAR_UNITS[code];
  if (m === undefined) throw unsupported(`${geoKeyName(codeKey)} ${code}`);
  return m;
}

export function angularUnit(keys: GeoKeys, codeKey: GeoKey, sizeKey: GeoKey): number | undefined {
  const code = keys.code(codeKey);
  if (code === undefined) return undefined;
  if (code === KV_USER_DEFINED) {
    // GeogAngularUnitSizeGeoKey is in radians per unit (spec 2.7.2).
    const size = keys.number(sizeKey);
    if (size === undefined || !(size > 0)) throw unsupported(`${geoKeyName(codeKey)} 32767 without a valid ${geoKeyName(sizeKey)}`);
    return (size * 180) / Math.PI;
  }
  const d = ANGULAR_UNITS[code];
  if (d === undefined) throw unsupported(`${geoKeyName(codeKey)} ${code} (only decimal angle units are handled)`);
  return d;
}

/** Degrees per GeogAngularUnit; GeoTIFF angular parameters are in these units (spec 2.7.3). */
export function degreesPerAngularUnit(keys: GeoKeys): number {
  return angularUnit(keys, GeoKey.GeogAngularUnits, GeoKey.GeogAngularUnitSize) ?? 1;
}

export function unitsParam(toMeter: number): string {
  if (toMeter === 1) return '+units=m';
  if (toMeter === 0.3048) return '+units=ft';
  if (toMeter === 1200 / 3937) return '+units=us-ft';
  return `+to_meter=${fmt(toMeter)}`;
}

// ---------------------------------------------------------------------------
// Ellipsoids, prime meridians

export interface Ellipsoid {
  a: number;
  rf?: number;
  b?: number;
}

/** EPSG ellipsoid codes (GeogEllipsoidGeoKey), values as in the EPSG dataset. */
export const EPSG_ELLIPSOIDS: Readonly<Record<number, Ellipsoid>> = {
  7001: { a: 6377563.396, rf: 299.3249646 },
  7002: { a: 6377340.189, rf: 299.3249646 },
  7003: { a: 6378160, rf: 298.25 },
  7004: { a: 6377397.155, rf: 299.1528128 },
  7005: { a: 6377492.018, rf: 299.1528128 },
  7006: { a: 6377483.865, rf: 299.1528128 },
  7008: { a: 6378206.4, b: 6356583.8 },
  7011: { a: 6378249.2, b: 6356515 },
  7012: { a: 6378249.145, rf: 293.465 },
  7013: { a: 6378249.145, rf: 293.4663077 },
  7014: { a: 6378249.2, rf: 293.46598 },
  7015: { a: 6377276.345, rf: 300.8017 },
  7016: { a: 6377298.556, rf: 300.8017 },
  7018: { a: 6377304.063, rf: 300.8017 },
  7019: { a: 6378137, rf: 298.257222101 },
  7020: { a: 6378200, rf: 298.3 },
  7021: { a: 6378160, rf: 298.247 },
  7022: { a: 6378388, rf: 297 },
  7024: { a: 6378245, rf: 298.3 },
  7025: { a: 6378145, rf: 298.25 },
  7027: { a: 6376523, rf: 308.64 },
  7028: { a: 6378298.3, rf: 294.73 },
  7029: { a: 6378300, rf: 296 },
  7030: { a: 6378137, rf: 298.257223563 },
  7031: { a: 6378137, rf: 298.257223563 },
  7033: { a: 6378136.3, rf: 298.257223563 },
  7035: { a: 6371000, b: 6371000 },
  7036: { a: 6378160, rf: 298.247167427 },
  7041: { a: 6378135, rf: 298.257 },
  7043: { a: 6378135, rf: 298.26 },
  7044: { a: 6377301.243, rf: 300.8017255 },
  7045: { a: 6377299.151, rf: 300.8017255 },
  7048: { a: 6371007, b: 6371007 },
  7050: { a: 6378160, rf: 298.25 },
  7052: { a: 6370997, b: 6370997 },
  7053: { a: 6378270, rf: 297 },
  7054: { a: 6378136, rf: 298.257839303 },
  7056: { a: 6377295.664, rf: 300.8017 },
  7057: { a: 6371228, b: 6371228 },
  7058: { a: 6378273, rf: 298.279411123064 },
};

/**
 * PROJ's +ellps names (`proj -le`). proj4js lacks some of them (GSK2011, WGS72, PZ90, ...)
 * and silently falls back to WGS84 for unknown names, so EPSG-derived definitions get
 * their ellipsoid spelled out as +a/+rf (or +a/+b).
 */
export const PROJ_ELLIPSOIDS: Readonly<Record<string, Ellipsoid>> = {
  MERIT: { a: 6378137, rf: 298.257 },
  SGS85: { a: 6378136, rf: 298.257 },
  GRS80: { a: 6378137, rf: 298.257222101 },
  IAU76: { a: 6378140, rf: 298.257 },
  airy: { a: 6377563.396, rf: 299.3249646 },
  'APL4.9': { a: 6378137, rf: 298.25 },
  NWL9D: { a: 6378145, rf: 298.25 },
  mod_airy: { a: 6377340.189, b: 6356034.446 },
  andrae: { a: 6377104.43, rf: 300 },
  danish: { a: 6377019.2563, rf: 300 },
  aust_SA: { a: 6378160, rf: 298.25 },
  GRS67: { a: 6378160, rf: 298.247167427 },
  GSK2011: { a: 6378136.5, rf: 298.2564151 },
  bessel: { a: 6377397.155, rf: 299.1528128 },
  bess_nam: { a: 6377483.865, rf: 299.1528128 },
  clrk66: { a: 6378206.4, b: 6356583.8 },
  clrk80: { a: 6378249.145, rf: 293.4663 },
  clrk80ign: { a: 6378249.2, rf: 293.4660212936269 },
  CPM: { a: 6375738.7, rf: 334.29 },
  delmbr: { a: 6376428, rf: 311.5 },
  engelis: { a: 6378136.05, rf: 298.2566 },
  evrst30: { a: 6377276.345, rf: 300.8017 },
  evrst48: { a: 6377304.063, rf: 300.8017 },
  evrst56: { a: 6377301.243, rf: 300.8017 },
  evrst69: { a: 6377295.664, rf: 300.8017 },
  evrstSS: { a: 6377298.556, rf: 300.8017 },
  fschr60: { a: 6378166, rf: 298.3 },
  fschr60m: { a: 6378155, rf: 298.3 },
  fschr68: { a: 6378150, rf: 298.3 },
  helmert: { a: 6378200, rf: 298.3 },
  hough: { a: 6378270, rf: 297 },
  intl: { a: 6378388, rf: 297 },
  krass: { a: 6378245, rf: 298.3 },
  kaula: { a: 6378163, rf: 298.24 },
  lerch: { a: 6378139, rf: 298.257 },
  mprts: { a: 6397300, rf: 191 },
  new_intl: { a: 6378157.5, b: 6356772.2 },
  plessis: { a: 6376523, b: 6355863 },
  PZ90: { a: 6378136, rf: 298.25784 },
  SEasia: { a: 6378155, b: 6356773.3205 },
  walbeck: { a: 6376896, b: 6355834.8467 },
  WGS60: { a: 6378165, rf: 298.3 },
  WGS66: { a: 6378145, rf: 298.25 },
  WGS72: { a: 6378135, rf: 298.26 },
  WGS84: { a: 6378137, rf: 298.257223563 },
  sphere: { a: 6370997, b: 6370997 },
};

export function ellipsoidParams(e: Ellipsoid): string[] {
  // proj4js needs +b or +rf next to +a; with neither it computes NaN eccentricity.
  if (e.b !== undefined) return [`+a=${fmt(e.a)}`, `+b=${fmt(e.b)}`];
  if (e.rf !== undefined && e.rf !== 0) return [`+a=${fmt(e.a)}`, `+rf=${fmt(e.rf)}`];
  return [`+a=${fmt(e.a)}`, `+b=${fmt(e.a)}`];
}

/** EPSG prime meridian codes (GeogPrimeMeridianGeoKey), longitudes in degrees from Greenwich. */
export const PRIME_MERIDIANS: Readonly<Record<number, number>> = {
  8901: 0,
  8902: -9.131906111111,
  8903: 2.337229166667,
  8904: -74.080916666667,
  8905: -3.687938888889,
  8906: 12.452333333333,
  8907: 7.439583333333,
  8908: 106.807719444444,
  8909: -17.666666666667,
  8910: 4.367975,
  8911: 18.058277777778,
  8912: 23.7163375,
  8913: 10.722916666667,
  8914: 2.337208333333,
};
