/**
 * GeoKeys: the GeoTIFF key directory, read by key ID.
 *
 * IDs from GeoTIFF 1.0 section 6.2 and OGC GeoTIFF 1.1 (19-008r4) Annex E, Table E.1
 * ("Summary of GeoKey IDs and names"). Members carry the GeoTIFF 1.0 names without their
 * "GeoKey" suffix (GeoTIFF 1.1 renamed some, e.g. GeographicTypeGeoKey to GeodeticCRSGeoKey,
 * keeping the IDs); messages use the full 1.0 names, as libgeotiff, GDAL and geotiff.js do.
 * Laid out like cogeotiff's `const/tiff.tag.id.ts` (`TiffTagGeo`).
 */
import { unsupported } from './crs.js';

export const GeoKey = {
  // GeoTIFF configuration keys (1.0 section 2.7.1)
  GTModelType: 1024,
  GTRasterType: 1025,
  GTCitation: 1026,
  // Geographic CS parameter keys (1.0 section 2.7.2; 1.1: geodetic CRS parameter keys)
  GeographicType: 2048,
  GeogCitation: 2049,
  GeogGeodeticDatum: 2050,
  GeogPrimeMeridian: 2051,
  GeogLinearUnits: 2052,
  GeogLinearUnitSize: 2053,
  GeogAngularUnits: 2054,
  GeogAngularUnitSize: 2055,
  GeogEllipsoid: 2056,
  GeogSemiMajorAxis: 2057,
  GeogSemiMinorAxis: 2058,
  GeogInvFlattening: 2059,
  GeogAzimuthUnits: 2060,
  GeogPrimeMeridianLong: 2061,
  GeogTOWGS84: 2062,
  // Projected CS parameter keys (1.0 section 2.7.3)
  ProjectedCSType: 3072,
  PCSCitation: 3073,
  Projection: 3074,
  ProjCoordTrans: 3075,
  ProjLinearUnits: 3076,
  ProjLinearUnitSize: 3077,
  ProjStdParallel1: 3078,
  ProjStdParallel2: 3079,
  ProjNatOriginLong: 3080,
  ProjNatOriginLat: 3081,
  ProjFalseEasting: 3082,
  ProjFalseNorthing: 3083,
  ProjFalseOriginLong: 3084,
  ProjFalseOriginLat: 3085,
  ProjFalseOriginEasting: 3086,
  ProjFalseOriginNorthing: 3087,
  ProjCenterLong: 3088,
  ProjCenterLat: 3089,
  ProjCenterEasting: 3090,
  ProjCenterNorthing: 3091,
  ProjScaleAtNatOrigin: 3092,
  ProjScaleAtCenter: 3093,
  ProjAzimuthAngle: 3094,
  ProjStraightVertPoleLong: 3095,
  ProjRectifiedGridAngle: 3096,
  // Vertical CS keys (1.0 section 2.7.4)
  VerticalCSType: 4096,
  VerticalCitation: 4097,
  VerticalDatum: 4098,
  VerticalUnits: 4099,
} as const;

export type GeoKey = (typeof GeoKey)[keyof typeof GeoKey];

/** GeoKey IDs -> GeoTIFF 1.0 names, for messages ("ProjCoordTransGeoKey 9815 (...)"). */
const GEO_KEY_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(GeoKey).map(([name, id]) => [id, `${name}GeoKey`]));
const GEO_KEY_IDS: ReadonlyMap<string, number> = new Map(Array.from(GEO_KEY_NAMES, ([id, name]) => [name, id]));

export function geoKeyName(key: GeoKey): string {
  return GEO_KEY_NAMES.get(key)!;
}

/** GTModelTypeGeoKey values (1.0 section 6.3.1.1). */
export const ModelType = { Projected: 1, Geographic: 2, Geocentric: 3 } as const;

/** GTRasterTypeGeoKey values (1.0 section 6.3.1.2). */
export const RasterType = { PixelIsArea: 1, PixelIsPoint: 2 } as const;

/** The TIFF tags a directory entry can point into (GeoTIFF 1.0 section 2.4). */
const GEO_DOUBLE_PARAMS_TAG = 34736;
const GEO_ASCII_PARAMS_TAG = 34737;

/** GeoTIFF 1.0 section 6.3.1: 32767 means "user-defined", 0 "undefined". */
export const KV_USER_DEFINED = 32767;
const KV_UNDEFINED = 0;

/**
 * One key's value: SHORT values and single doubles are numbers, ASCII values strings,
 * multi-valued keys arrays (geotiff.js returns GeogTOWGS84GeoKey as a Float64Array, hence
 * ArrayLike).
 */
export type GeoKeyValue = number | string | ArrayLike<number>;

/** GeoKeys by their GeoTIFF 1.0 names, as geotiff.js's `getGeoKeys()` returns them. */
export type NamedGeoKeys = Record<string, GeoKeyValue | null | undefined>;

function isArrayLike(v: unknown): v is ArrayLike<number> {
  return typeof v === 'object' && v !== null && typeof (v as ArrayLike<number>).length === 'number';
}

/** The GeoKeys of one image, read by ID through typed accessors. */
export class GeoKeys {
  private constructor(private readonly values: ReadonlyMap<number, GeoKeyValue>) {}

  /**
   * The key directory (GeoKeyDirectoryTag 34735, 1.0 section 2.4; 1.1 section 7.1.2): a
   * header of 4 SHORTs, then (id, location, count, value) per key. Location 0 holds the value
   * inline; otherwise it names the tag whose values hold it (GeoDoubleParamsTag 34736,
   * GeoAsciiParamsTag 34737) and `value` is the index there. Undefined without a directory.
   */
  static fromDirectory(directory: unknown, doubles: unknown, ascii: unknown): GeoKeys | undefined {
    if (!Array.isArray(directory) || directory.length < 4) return undefined;
    const values = new Map<number, GeoKeyValue>();
    const n = directory[3] as number;
    for (let i = 0; i < n; i++) {
      const [id, location, count, value] = directory.slice(4 + 4 * i, 8 + 4 * i) as [number, number, number, number];
      if (location === 0) values.set(id, value);
      else if (location === GEO_DOUBLE_PARAMS_TAG && Array.isArray(doubles)) {
        const vals = (doubles as number[]).slice(value, value + count);
        if (count !== 1) values.set(id, vals);
        else if (vals[0] !== undefined) values.set(id, vals[0]);
      } else if (location === GEO_ASCII_PARAMS_TAG && typeof ascii === 'string') {
        values.set(id, ascii.slice(value, value + count).replace(/\|$/, ''));
      }
    }
    return new GeoKeys(values);
  }

  /** From keys by their 1.0 names (geotiff.js); unknown names and empty values are left out. */
  static fromNames(named: NamedGeoKeys): GeoKeys {
    const values = new Map<number, GeoKeyValue>();
    for (const [name, value] of Object.entries(named)) {
      const id = GEO_KEY_IDS.get(name);
      if (id !== undefined && value !== undefined && value !== null) values.set(id, value);
    }
    return new GeoKeys(values);
  }

  /** The value as stored. */
  get(key: GeoKey): GeoKeyValue | undefined {
    return this.values.get(key);
  }

  /** A numeric key: the first value of a multi-valued one; undefined when absent or not finite. */
  number(key: GeoKey): number | undefined {
    const v = this.values.get(key);
    if (v === undefined) return undefined;
    if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
    if (typeof v === 'string') {
      throw unsupported(`${geoKeyName(key)} has an ASCII value "${v}" where a number is required`);
    }
    if (isArrayLike(v)) return v.length > 0 && Number.isFinite(v[0]) ? Number(v[0]) : undefined;
    return undefined;
  }

  /** All values of a numeric key. */
  numbers(key: GeoKey): number[] | undefined {
    const v = this.values.get(key);
    if (v === undefined || typeof v === 'string') return undefined;
    if (typeof v === 'number') return [v];
    return Array.from(v, Number);
  }

  /** SHORT code keys: 0 (undefined) is treated like an absent key. */
  code(key: GeoKey): number | undefined {
    const v = this.number(key);
    return v === undefined || v === KV_UNDEFINED ? undefined : v;
  }

  text(key: GeoKey): string | undefined {
    const v = this.values.get(key);
    if (typeof v !== 'string') return undefined;
    // GeoTIFF ASCII values end with '|' (spec 2.6); GDAL also packs several fields.
    const s = v.replace(/\|+$/, '').trim();
    return s === '' ? undefined : s;
  }

  /** The first of `keys` that is present, as a number. */
  first(keys: readonly GeoKey[]): number | undefined {
    for (const k of keys) {
      const v = this.number(k);
      if (v !== undefined) return v;
    }
    return undefined;
  }
}
