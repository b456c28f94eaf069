/**
 * Projections from GeoKeys (GeoTIFF 1.0 section 2.7.3, "Projected CS Parameter Keys"):
 * ProjCoordTransGeoKey with its parameter keys, or a ProjectionGeoKey code, as PROJ tokens.
 * The fallbacks between parameter keys mirror libgeotiff's geo_normalize.c
 * (GTIFFetchProjParms), because files in the wild are written against what libgeotiff/GDAL
 * read, not only the spec text.
 */
import { fmt, unsupported } from './crs.js';
import { angularUnit, degreesPerAngularUnit } from './geodesy.js';
import { GeoKey, geoKeyName, type GeoKeys } from './geokeys.js';

/** ProjCoordTransGeoKey codes, GeoTIFF 1.0 section 6.3.3.3 (9815 is a libgeotiff/GDAL extension). */
export const CT_NAMES: Readonly<Record<number, string>> = {
  1: 'Transverse Mercator',
  2: 'Transverse Mercator (Modified Alaska)',
  3: 'Oblique Mercator (Hotine)',
  4: 'Oblique Mercator (Laborde)',
  5: 'Oblique Mercator (Rosenmund)',
  6: 'Oblique Mercator (Spherical)',
  7: 'Mercator',
  8: 'Lambert Conformal Conic (2SP)',
  9: 'Lambert Conformal Conic (1SP)',
  10: 'Lambert Azimuthal Equal Area',
  11: 'Albers Equal Area',
  12: 'Azimuthal Equidistant',
  13: 'Equidistant Conic',
  14: 'Stereographic',
  15: 'Polar Stereographic',
  16: 'Oblique Stereographic',
  17: 'Equirectangular',
  18: 'Cassini-Soldner',
  19: 'Gnomonic',
  20: 'Miller Cylindrical',
  21: 'Orthographic',
  22: 'Polyconic',
  23: 'Robinson',
  24: 'Sinusoidal',
  25: 'Van der Grinten',
  26: 'New Zealand Map Grid',
  27: 'Transverse Mercator (South Oriented)',
  28: 'Cylindrical Equal Area',
  9815: 'Hotine Oblique Mercator (azimuth centre)',
};

// Which key holds an origin depends on the method (natural origin, false origin or centre),
// but producers mix them up; libgeotiff accepts any of the three, in an order that prefers
// the method's own key. Same here.
const NAT = {
  lat: [GeoKey.ProjNatOriginLat, GeoKey.ProjFalseOriginLat, GeoKey.ProjCenterLat],
  lon: [GeoKey.ProjNatOriginLong, GeoKey.ProjFalseOriginLong, GeoKey.ProjCenterLong],
  fe: [GeoKey.ProjFalseEasting, GeoKey.ProjCenterEasting, GeoKey.ProjFalseOriginEasting],
  fn: [GeoKey.ProjFalseNorthing, GeoKey.ProjCenterNorthing, GeoKey.ProjFalseOriginNorthing],
} as const;
const FALSE_ORIGIN = {
  lat: [GeoKey.ProjFalseOriginLat, GeoKey.ProjNatOriginLat, GeoKey.ProjCenterLat],
  lon: [GeoKey.ProjFalseOriginLong, GeoKey.ProjNatOriginLong, GeoKey.ProjCenterLong],
  fe: [GeoKey.ProjFalseOriginEasting, GeoKey.ProjFalseEasting, GeoKey.ProjCenterEasting],
  fn: [GeoKey.ProjFalseOriginNorthing, GeoKey.ProjFalseNorthing, GeoKey.ProjCenterNorthing],
} as const;
const CENTER = {
  lat: [GeoKey.ProjCenterLat, GeoKey.ProjNatOriginLat, GeoKey.ProjFalseOriginLat],
  lon: [GeoKey.ProjCenterLong, GeoKey.ProjNatOriginLong, GeoKey.ProjFalseOriginLong],
  fe: [GeoKey.ProjFalseEasting, GeoKey.ProjCenterEasting, GeoKey.ProjFalseOriginEasting],
  fn: [GeoKey.ProjFalseNorthing, GeoKey.ProjCenterNorthing, GeoKey.ProjFalseOriginNorthing],
} as const;
/** Hotine variant B: EPSG's "easting/northing at projection centre" comes first. */
const CENTER_B = {
  lat: CENTER.lat,
  lon: CENTER.lon,
  fe: [GeoKey.ProjCenterEasting, GeoKey.ProjFalseEasting, GeoKey.ProjFalseOriginEasting],
  fn: [GeoKey.ProjCenterNorthing, GeoKey.ProjFalseNorthing, GeoKey.ProjFalseOriginNorthing],
} as const;
interface Origin {
  readonly lat: readonly GeoKey[];
  readonly lon: readonly GeoKey[];
  readonly fe: readonly GeoKey[];
  readonly fn: readonly GeoKey[];
}
const SCALE = [GeoKey.ProjScaleAtNatOrigin, GeoKey.ProjScaleAtCenter] as const;
const SCALE_CENTER = [GeoKey.ProjScaleAtCenter, GeoKey.ProjScaleAtNatOrigin] as const;

/** Reads projection parameters, converting angles to degrees and FE/FN to metres. */
class ParamReader {
  private readonly deg: number;
  private readonly azDeg: number;

  constructor(
    private readonly keys: GeoKeys,
    private readonly toMeter: number,
    private readonly ctName: string,
  ) {
    // Angular parameters are in GeogAngularUnits (spec 2.7.3); azimuths may have their own
    // GeogAzimuthUnitsGeoKey.
    this.deg = degreesPerAngularUnit(keys);
    this.azDeg = angularUnit(keys, GeoKey.GeogAzimuthUnits, GeoKey.GeogAngularUnitSize) ?? this.deg;
  }

  /** First of `keys` in degrees; `fallbackDeg` (already degrees) when none is present. */
  angle(keys: readonly GeoKey[], fallbackDeg = 0): number {
    const v = this.keys.first(keys);
    return v === undefined ? fallbackDeg : v * this.deg;
  }

  requiredAngle(key: GeoKey): number {
    const v = this.keys.number(key);
    if (v === undefined) throw unsupported(`${this.ctName} without ${geoKeyName(key)}`);
    return v * this.deg;
  }

  azimuth(key: GeoKey): number | undefined {
    const v = this.keys.number(key);
    return v === undefined ? undefined : v * this.azDeg;
  }

  scale(keys: readonly GeoKey[]): number {
    return this.keys.first(keys) ?? 1;
  }

  /** False easting/northing are in ProjLinearUnits (spec 2.7.3); PROJ's +x_0/+y_0 are metres. */
  falseEN(o: Origin): string[] {
    // Rounded to the nanometre so that e.g. 699998.6 US ft prints as 213360, not 213359.99999999997.
    const fe = Math.round((this.keys.first(o.fe) ?? 0) * this.toMeter * 1e9) / 1e9;
    const fn = Math.round((this.keys.first(o.fn) ?? 0) * this.toMeter * 1e9) / 1e9;
    return [`+x_0=${fmt(fe)}`, `+y_0=${fmt(fn)}`];
  }
}

export function projectionFromCoordTrans(keys: GeoKeys, ct: number, toMeter: number): string[] {
  const name = CT_NAMES[ct];
  if (name === undefined) throw unsupported(`ProjCoordTransGeoKey ${ct}`);
  const r = new ParamReader(keys, toMeter, `ProjCoordTransGeoKey ${ct} (${name})`);
  const p = (k: string, v: number): string => `+${k}=${fmt(v)}`;
  switch (ct) {
    case 1: // CT_TransverseMercator
      return ['+proj=tmerc', p('lat_0', r.angle(NAT.lat)), p('lon_0', r.angle(NAT.lon)), p('k', r.scale(SCALE)), ...r.falseEN(NAT)];
    case 3: {
      // CT_ObliqueMercator: Hotine variant A (GDAL writes variant B as 9815)
      const alpha = r.azimuth(GeoKey.ProjAzimuthAngle);
      if (alpha === undefined) throw unsupported(`ProjCoordTransGeoKey 3 (${name}) without ProjAzimuthAngleGeoKey`);
      const gamma = r.azimuth(GeoKey.ProjRectifiedGridAngle);
      return [
        '+proj=omerc',
        '+no_uoff',
        p('lat_0', r.angle(CENTER.lat)),
        p('lonc', r.angle(CENTER.lon)),
        p('alpha', alpha),
        ...(gamma === undefined ? [] : [p('gamma', gamma)]),
        p('k', r.scale(SCALE_CENTER)),
        ...r.falseEN(CENTER),
      ];
    }
    case 9815: {
      // Hotine variant B: FE/FN are at the projection centre
      const alpha = r.azimuth(GeoKey.ProjAzimuthAngle);
      if (alpha === undefined) throw unsupported(`ProjCoordTransGeoKey 9815 (${name}) without ProjAzimuthAngleGeoKey`);
      const gamma = r.azimuth(GeoKey.ProjRectifiedGridAngle);
      const lat0 = r.angle(CENTER.lat);
      const lon0 = r.angle(CENTER.lon);
      const k = r.scale(SCALE_CENTER);
      // Azimuth 90 at the centre is the Swiss Oblique Mercator (EPSG 9815 as used by EPSG:2056);
      // PROJ's omerc is singular there, so GDAL and epsg-index express it as somerc.
      if (Math.abs(alpha - 90) < 1e-9 && (gamma === undefined || Math.abs(gamma - 90) < 1e-9)) {
        return ['+proj=somerc', p('lat_0', lat0), p('lon_0', lon0), p('k_0', k), ...r.falseEN(CENTER_B)];
      }
      return [
        '+proj=omerc',
        p('lat_0', lat0),
        p('lonc', lon0),
        p('alpha', alpha),
        ...(gamma === undefined ? [] : [p('gamma', gamma)]),
        p('k', k),
        ...r.falseEN(CENTER_B),
      ];
    }
    case 7: {
      // CT_Mercator: 2SP when a standard parallel is given, else 1SP with a scale
      const sp1 = keys.number(GeoKey.ProjStdParallel1);
      if (sp1 !== undefined) {
        return ['+proj=merc', p('lat_ts', r.angle([GeoKey.ProjStdParallel1])), p('lon_0', r.angle(NAT.lon)), ...r.falseEN(NAT)];
      }
      return ['+proj=merc', p('lon_0', r.angle(NAT.lon)), p('k', r.scale(SCALE)), ...r.falseEN(NAT)];
    }
    case 8: // CT_LambertConfConic_2SP: origin is the false origin
      return [
        '+proj=lcc',
        p('lat_1', r.requiredAngle(GeoKey.ProjStdParallel1)),
        p('lat_2', r.angle([GeoKey.ProjStdParallel2, GeoKey.ProjStdParallel1])),
        p('lat_0', r.angle(FALSE_ORIGIN.lat)),
        p('lon_0', r.angle(FALSE_ORIGIN.lon)),
        ...r.falseEN(FALSE_ORIGIN),
      ];
    case 9: {
      // CT_LambertConfConic_1SP: the standard parallel is the natural origin latitude
      const lat0 = r.angle(NAT.lat);
      return ['+proj=lcc', p('lat_1', lat0), p('lat_0', lat0), p('lon_0', r.angle(NAT.lon)), p('k_0', r.scale(SCALE)), ...r.falseEN(NAT)];
    }
    case 10:
      return ['+proj=laea', p('lat_0', r.angle(CENTER.lat)), p('lon_0', r.angle(CENTER.lon)), ...r.falseEN(CENTER)];
    case 11:
    case 13:
      return [
        ct === 11 ? '+proj=aea' : '+proj=eqdc',
        p('lat_1', r.requiredAngle(GeoKey.ProjStdParallel1)),
        p('lat_2', r.angle([GeoKey.ProjStdParallel2, GeoKey.ProjStdParallel1])),
        p('lat_0', r.angle(NAT.lat)),
        p('lon_0', r.angle(NAT.lon)),
        ...r.falseEN(NAT),
      ];
    case 12:
      return ['+proj=aeqd', p('lat_0', r.angle(CENTER.lat)), p('lon_0', r.angle(CENTER.lon)), ...r.falseEN(CENTER)];
    case 14:
      return ['+proj=stere', p('lat_0', r.angle(CENTER.lat)), p('lon_0', r.angle(CENTER.lon)), p('k', r.scale(SCALE)), ...r.falseEN(CENTER)];
    case 15: {
      // CT_PolarStereographic
      // ProjNatOriginLatGeoKey is +-90 for variant A (scale given at the pole) and the
      // latitude of true scale for variant B (what GDAL writes); some writers put +-90 there
      // and the latitude of true scale in ProjStdParallel1GeoKey instead.
      const lat = r.angle(NAT.lat, 90);
      const lon = r.angle([GeoKey.ProjStraightVertPoleLong, ...NAT.lon]);
      if (Math.abs(Math.abs(lat) - 90) < 1e-9) {
        const ts = keys.number(GeoKey.ProjStdParallel1) === undefined ? undefined : r.angle([GeoKey.ProjStdParallel1]);
        if (ts !== undefined && Math.abs(Math.abs(ts) - 90) > 1e-9) {
          return ['+proj=stere', p('lat_0', lat), p('lat_ts', ts), p('lon_0', lon), ...r.falseEN(NAT)];
        }
        return ['+proj=stere', p('lat_0', lat), p('lon_0', lon), p('k', r.scale(SCALE)), ...r.falseEN(NAT)];
      }
      return ['+proj=stere', p('lat_0', lat > 0 ? 90 : -90), p('lat_ts', lat), p('lon_0', lon), ...r.falseEN(NAT)];
    }
    case 16: // CT_ObliqueStereographic: the "double" stereographic of EPSG 9809 (PROJ sterea)
      return ['+proj=sterea', p('lat_0', r.angle(NAT.lat)), p('lon_0', r.angle(NAT.lon)), p('k', r.scale(SCALE)), ...r.falseEN(NAT)];
    case 17: // CT_Equirectangular: latitude of true scale in ProjStdParallel1GeoKey (libgeotiff)
      return [
        '+proj=eqc',
        p('lat_ts', r.angle([GeoKey.ProjStdParallel1])),
        p('lat_0', r.angle(CENTER.lat)),
        p('lon_0', r.angle(CENTER.lon)),
        ...r.falseEN(CENTER),
      ];
    case 18:
    case 22:
      return [ct === 18 ? '+proj=cass' : '+proj=poly', p('lat_0', r.angle(NAT.lat)), p('lon_0', r.angle(NAT.lon)), ...r.falseEN(NAT)];
    case 19:
    case 21:
      return [ct === 19 ? '+proj=gnom' : '+proj=ortho', p('lat_0', r.angle(CENTER.lat)), p('lon_0', r.angle(CENTER.lon)), ...r.falseEN(CENTER)];
    case 20:
      return ['+proj=mill', p('lon_0', r.angle(CENTER.lon)), ...r.falseEN(CENTER)];
    case 23:
    case 24:
    case 25:
      return [ct === 23 ? '+proj=robin' : ct === 24 ? '+proj=sinu' : '+proj=vandg', p('lon_0', r.angle(CENTER.lon)), ...r.falseEN(CENTER)];
    case 26:
      return ['+proj=nzmg', p('lat_0', r.angle(NAT.lat)), p('lon_0', r.angle(NAT.lon)), ...r.falseEN(NAT)];
    case 28:
      return ['+proj=cea', p('lat_ts', r.angle([GeoKey.ProjStdParallel1])), p('lon_0', r.angle(NAT.lon)), ...r.falseEN(NAT)];
    default:
      // 2, 4, 5, 6: no proj4js implementation; 27: needs +axis=wsu, which proj4js ignores
      // unless every caller passes enforceAxis.
      throw unsupported(`ProjCoordTransGeoKey ${ct} (${name})`);
  }
}

/** ProjectionGeoKey (an EPSG coordinate operation code): UTM zones 16001-16060 N, 16101-16160 S. */
export function projectionFromProjectionCode(code: number): { params: string[]; label: string } {
  if (code >= 16001 && code <= 16060) return { params: ['+proj=utm', `+zone=${code - 16000}`], label: `UTM zone ${code - 16000}N` };
  if (code >= 16101 && code <= 16160) return { params: ['+proj=utm', `+zone=${code - 16100}`, '+south'], label: `UTM zone ${code - 16100}S` };
  throw unsupported(`ProjectionGeoKey ${code} (only UTM projection codes 16001-16060/16101-16160 are known)`);
}
