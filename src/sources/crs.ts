/**
 * GeoTIFF GeoKeys -> proj4 definition.
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
 * The result is a PROJ.4-style string meant for proj4js, which differs from PROJ
 * in ways that matter here (unknown +ellps names silently become WGS84, +axis is
 * ignored by default, grid files must be registered by the application), so
 * every definition is normalised for proj4js and validated by constructing it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import proj4 from 'proj4';

/**
 * GeoKeys by their GeoTIFF 1.0 names, as geotiff.js names them (GTModelTypeGeoKey,
 * ProjectedCSTypeGeoKey, GeographicTypeGeoKey, ProjCoordTransGeoKey, ProjStdParallel1GeoKey,
 * GeogSemiMajorAxisGeoKey, ...); ASCII values are strings, doubles numbers, multi-valued
 * arrays. geotiff.js returns multi-valued doubles (GeogTOWGS84GeoKey) as Float64Array,
 * hence ArrayLike.
 */
export type GeoKeys = Record<string, number | string | number[] | ArrayLike<number> | undefined>;

export interface Crs {
  /** proj4js definition string (PROJ.4 syntax). */
  proj4: string;
  /** Human-readable name (EPSG name, file citation, or a generated description). */
  name: string;
  /** EPSG code when the CRS was given by one (ProjectedCSTypeGeoKey / GeographicTypeGeoKey). */
  epsg?: number;
  /** True when raster coordinates are longitude/latitude in degrees. */
  isGeographic: boolean;
}

/** GeoTIFF 1.0 section 6.3.1: 32767 means "user-defined", 0 "undefined". */
const KV_USER_DEFINED = 32767;
const KV_UNDEFINED = 0;

function unsupported(what: string): Error {
  return new Error(`unsupported CRS: ${what}`);
}

// ---------------------------------------------------------------------------
// Key access

function isArrayLike(v: unknown): v is ArrayLike<number> {
  return typeof v === 'object' && v !== null && typeof (v as ArrayLike<number>).length === 'number';
}

function numKey(keys: GeoKeys, name: string): number | undefined {
  const v = keys[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string') {
    throw unsupported(`${name} has an ASCII value "${v}" where a number is required`);
  }
  if (isArrayLike(v)) return v.length > 0 && Number.isFinite(v[0]) ? Number(v[0]) : undefined;
  return undefined;
}

function numsKey(keys: GeoKeys, name: string): number[] | undefined {
  const v = keys[name];
  if (v === undefined || v === null || typeof v === 'string') return undefined;
  if (typeof v === 'number') return [v];
  return Array.from(v, Number);
}

/** SHORT code keys: 0 (undefined) is treated like an absent key. */
function codeKey(keys: GeoKeys, name: string): number | undefined {
  const v = numKey(keys, name);
  return v === undefined || v === KV_UNDEFINED ? undefined : v;
}

function strKey(keys: GeoKeys, name: string): string | undefined {
  const v = keys[name];
  if (typeof v !== 'string') return undefined;
  // GeoTIFF ASCII values end with '|' (spec 2.6); GDAL also packs several fields.
  const s = v.replace(/\|+$/, '').trim();
  return s === '' ? undefined : s;
}

function firstNum(keys: GeoKeys, names: readonly string[]): number | undefined {
  for (const n of names) {
    const v = numKey(keys, n);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Shortest round-trip decimal; proj4js splits definitions on '+', so no exponent '+'. */
function fmt(n: number): string {
  if (!Number.isFinite(n)) throw unsupported(`non-finite parameter ${n}`);
  const s = String(n);
  return s.includes('e+') ? n.toFixed(0) : s;
}

// ---------------------------------------------------------------------------
// Units

/**
 * Linear units (GeoTIFF 1.0 section 6.3.1.3, values from the EPSG dataset): metres per unit.
 * 9015 is GeoTIFF's Linear_Mile_International_Nautical (EPSG uses 9030).
 */
const LINEAR_UNITS: Readonly<Record<number, number>> = {
  9001: 1, 9002: 0.3048, 9003: 1200 / 3937, 9005: 0.3047972654, 9014: 1.8288, 9015: 1852,
  9030: 1852, 9031: 1.0000135965, 9033: 20.11684023368047, 9034: 0.2011684023368047,
  9035: 1609.3472186944375, 9036: 1000, 9037: 0.9143917962, 9038: 20.1166195164,
  9039: 0.201166195164, 9040: 0.9143984146160287, 9041: 0.3047994715386762,
  9042: 20.116765121552632, 9043: 0.2011676512155263, 9050: 0.9143992, 9051: 0.3047997333333333,
  9052: 20.1167824, 9053: 0.201167824, 9060: 0.9143992042898124, 9061: 0.30479973476327077,
  9062: 20.116782494375872, 9063: 0.2011678249437587, 9070: 0.30480083333333335,
  9080: 0.30479951024814694, 9081: 0.30479841, 9082: 0.3047996, 9083: 0.3047995,
  9084: 0.9143985307444408, 9085: 0.91439523, 9086: 0.9143988, 9087: 0.9143985, 9093: 1609.344,
  9094: 0.3047997101815088, 9095: 0.3048007491, 9096: 0.9144, 9097: 20.1168, 9098: 0.201168,
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

function linearUnit(keys: GeoKeys, codeName: string, sizeName: string): number {
  const code = codeKey(keys, codeName);
  if (code === undefined) return 1; // metres are the implied default
  if (code === KV_USER_DEFINED) {
    // *LinearUnitSizeGeoKey: metres per user-defined unit (spec 2.7.1).
    const size = numKey(keys, sizeName);
    if (size === undefined || !(size > 0)) throw unsupported(`${codeName} 32767 without a valid ${sizeName}`);
    return size;
  }
  const m = LINEAR_UNITS[code];
  if (m === undefined) throw unsupported(`${codeName} ${code}`);
  return m;
}

function angularUnit(keys: GeoKeys, codeName: string, sizeName: string): number | undefined {
  const code = codeKey(keys, codeName);
  if (code === undefined) return undefined;
  if (code === KV_USER_DEFINED) {
    // GeogAngularUnitSizeGeoKey is in radians per unit (spec 2.7.2).
    const size = numKey(keys, sizeName);
    if (size === undefined || !(size > 0)) throw unsupported(`${codeName} 32767 without a valid ${sizeName}`);
    return (size * 180) / Math.PI;
  }
  const d = ANGULAR_UNITS[code];
  if (d === undefined) throw unsupported(`${codeName} ${code} (only decimal angle units are handled)`);
  return d;
}

/** Degrees per GeogAngularUnit; GeoTIFF angular parameters are in these units (spec 2.7.3). */
function degreesPerAngularUnit(keys: GeoKeys): number {
  return angularUnit(keys, 'GeogAngularUnitsGeoKey', 'GeogAngularUnitSizeGeoKey') ?? 1;
}

function unitsParam(toMeter: number): string {
  if (toMeter === 1) return '+units=m';
  if (toMeter === 0.3048) return '+units=ft';
  if (toMeter === 1200 / 3937) return '+units=us-ft';
  return `+to_meter=${fmt(toMeter)}`;
}

// ---------------------------------------------------------------------------
// Ellipsoids, datums, prime meridians

interface Ellipsoid { a: number; rf?: number; b?: number }

/** EPSG ellipsoid codes (GeogEllipsoidGeoKey), values as in the EPSG dataset. */
const EPSG_ELLIPSOIDS: Readonly<Record<number, Ellipsoid>> = {
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
const PROJ_ELLIPSOIDS: Readonly<Record<string, Ellipsoid>> = {
  MERIT: { a: 6378137, rf: 298.257 }, SGS85: { a: 6378136, rf: 298.257 },
  GRS80: { a: 6378137, rf: 298.257222101 }, IAU76: { a: 6378140, rf: 298.257 },
  airy: { a: 6377563.396, rf: 299.3249646 }, 'APL4.9': { a: 6378137, rf: 298.25 },
  NWL9D: { a: 6378145, rf: 298.25 }, mod_airy: { a: 6377340.189, b: 6356034.446 },
  andrae: { a: 6377104.43, rf: 300 }, danish: { a: 6377019.2563, rf: 300 },
  aust_SA: { a: 6378160, rf: 298.25 }, GRS67: { a: 6378160, rf: 298.247167427 },
  GSK2011: { a: 6378136.5, rf: 298.2564151 }, bessel: { a: 6377397.155, rf: 299.1528128 },
  bess_nam: { a: 6377483.865, rf: 299.1528128 }, clrk66: { a: 6378206.4, b: 6356583.8 },
  clrk80: { a: 6378249.145, rf: 293.4663 }, clrk80ign: { a: 6378249.2, rf: 293.4660212936269 },
  CPM: { a: 6375738.7, rf: 334.29 }, delmbr: { a: 6376428, rf: 311.5 },
  engelis: { a: 6378136.05, rf: 298.2566 }, evrst30: { a: 6377276.345, rf: 300.8017 },
  evrst48: { a: 6377304.063, rf: 300.8017 }, evrst56: { a: 6377301.243, rf: 300.8017 },
  evrst69: { a: 6377295.664, rf: 300.8017 }, evrstSS: { a: 6377298.556, rf: 300.8017 },
  fschr60: { a: 6378166, rf: 298.3 }, fschr60m: { a: 6378155, rf: 298.3 },
  fschr68: { a: 6378150, rf: 298.3 }, helmert: { a: 6378200, rf: 298.3 },
  hough: { a: 6378270, rf: 297 }, intl: { a: 6378388, rf: 297 }, krass: { a: 6378245, rf: 298.3 },
  kaula: { a: 6378163, rf: 298.24 }, lerch: { a: 6378139, rf: 298.257 },
  mprts: { a: 6397300, rf: 191 }, new_intl: { a: 6378157.5, b: 6356772.2 },
  plessis: { a: 6376523, b: 6355863 }, PZ90: { a: 6378136, rf: 298.25784 },
  SEasia: { a: 6378155, b: 6356773.3205 }, walbeck: { a: 6376896, b: 6355834.8467 },
  WGS60: { a: 6378165, rf: 298.3 }, WGS66: { a: 6378145, rf: 298.25 },
  WGS72: { a: 6378135, rf: 298.26 }, WGS84: { a: 6378137, rf: 298.257223563 },
  sphere: { a: 6370997, b: 6370997 },
};

function ellipsoidParams(e: Ellipsoid): string[] {
  // proj4js needs +b or +rf next to +a; with neither it computes NaN eccentricity.
  if (e.b !== undefined) return [`+a=${fmt(e.a)}`, `+b=${fmt(e.b)}`];
  if (e.rf !== undefined && e.rf !== 0) return [`+a=${fmt(e.a)}`, `+rf=${fmt(e.rf)}`];
  return [`+a=${fmt(e.a)}`, `+b=${fmt(e.a)}`];
}

/** EPSG prime meridian codes (GeogPrimeMeridianGeoKey), longitudes in degrees from Greenwich. */
const PRIME_MERIDIANS: Readonly<Record<number, number>> = {
  8901: 0, 8902: -9.131906111111, 8903: 2.337229166667, 8904: -74.080916666667,
  8905: -3.687938888889, 8906: 12.452333333333, 8907: 7.439583333333, 8908: 106.807719444444,
  8909: -17.666666666667, 8910: 4.367975, 8911: 18.058277777778, 8912: 23.7163375,
  8913: 10.722916666667, 8914: 2.337208333333,
};

/**
 * Helmert shifts for EPSG geographic CRSs whose proj4 string in epsg-index either relies on
 * a grid file (+nadgrids) that proj4js does not have unless the application registers it,
 * or has no shift at all although PROJ knows one. These are the transformations PROJ
 * itself selects when no grid is available (checked with `projinfo -s EPSG:<gcs> -t
 * EPSG:4326`), expressed as +towgs84 (position vector):
 *   4277 OSGB36: EPSG:1314 (2 m)    4314 DHDN: EPSG:1777 (3 m)    4272 NZGD49: EPSG:1564 (4 m)
 *   4203 AGD84: EPSG:1669 (3 m)     4807 NTF (Paris): EPSG:8094 (2 m)
 *   4267 NAD27: EPSG:1173 (CONUS, 10 m; PROJ picks others elsewhere, e.g. in Canada)
 */
const DATUM_SHIFT_FALLBACK: Readonly<Record<number, string>> = {
  4277: '446.448,-125.157,542.06,0.15,0.247,0.842,-20.489',
  4314: '598.1,73.7,418.2,0.202,0.045,-2.455,6.7',
  4272: '59.47,-5.04,187.44,0.47,-0.1,1.024,-4.5993',
  4203: '-117.763,-51.51,139.061,0.292,0.443,0.277,-0.191',
  4807: '-168,-60,320',
  4267: '-8,160,176',
};

/**
 * Base geographic CRS by name, for the ~120 projected entries of epsg-index that have no
 * WKT (EPSG projected CRS names are "<base geographic CRS> / <projection>").
 */
const FALLBACK_GCS_BY_NAME: Readonly<Record<string, number>> = {
  OSGB36: 4277, DHDN: 4314, NZGD49: 4272, AGD84: 4203, 'NTF (Paris)': 4807, NAD27: 4267,
};

/**
 * epsg-index entries whose +towgs84 has its rotations in the wrong unit, compared with what
 * PROJ/GDAL apply (`projinfo -s EPSG:<gcs> -t EPSG:4326`):
 * - NAD83(CSRS), 70 CRSs such as EPSG:3402: radians with coordinate-frame sign instead of
 *   arc-seconds in position-vector convention (about 0.9 m off);
 * - KSA-GRF17, EPSG:9356-9360: milli-arc-seconds written as arc-seconds (about 300 m off).
 */
const TOWGS84_FIXES: Readonly<Record<string, string>> = {
  '-0.991,1.9072,0.5129,-1.25033e-07,-4.6785e-08,-5.6529e-08,0':
    '-0.991,1.9072,0.5129,0.0257899075194932,0.0096500989602704,0.0116599432323421,0',
  '0,0,0,-8.393,0.749,-10.276,0': '0,0,0,-0.008393,0.000749,-0.010276,0',
};

/** proj4js built-in datum names that epsg-index uses, spelled out (see normalizeEpsgProj4). */
const DATUM_EXPANSIONS: Readonly<Record<string, { ellps: string; towgs84: string; gcs: number }>> = {
  NAD83: { ellps: 'GRS80', towgs84: '0,0,0', gcs: 4269 },
  NAD27: { ellps: 'clrk66', towgs84: DATUM_SHIFT_FALLBACK[4267]!, gcs: 4267 },
};

// ---------------------------------------------------------------------------
// PROJ string tokens

interface Token { key: string; value?: string }

function tokenize(def: string): Token[] {
  const out: Token[] = [];
  // Values may be double-quoted (e.g. grid names with spaces in epsg-index).
  for (const m of def.matchAll(/\+([A-Za-z_][\w.]*)(?:=("[^"]*"|\S*))?/g)) {
    const value = m[2];
    out.push(value === undefined ? { key: m[1]! } : { key: m[1]!, value: value.replace(/^"|"$/g, '') });
  }
  return out;
}

function detokenize(tokens: readonly Token[]): string {
  return tokens.map((t) => (t.value === undefined ? `+${t.key}` : `+${t.key}=${t.value}`)).join(' ');
}

/** Keys that describe the geodetic datum (ellipsoid, shift, prime meridian). */
const GEODETIC_KEYS = new Set(['datum', 'ellps', 'a', 'b', 'rf', 'f', 'R', 'towgs84', 'nadgrids', 'pm']);

// ---------------------------------------------------------------------------
// epsg-index

interface EpsgEntry { code: string; kind: string; name: string; wkt?: string | null; proj4?: string | null }

let epsgDir: string | null | undefined;
const epsgEntries = new Map<number, EpsgEntry | null>();
const epsgCrsCache = new Map<number, Crs>();

function epsgIndexDir(): string | null {
  if (epsgDir === undefined) {
    try {
      epsgDir = path.join(path.dirname(createRequire(import.meta.url).resolve('epsg-index/package.json')), 's');
    } catch {
      epsgDir = null;
    }
  }
  return epsgDir;
}

/** One per-code JSON file from epsg-index (never all.json: it is ~40 MB). */
function epsgEntry(code: number): EpsgEntry | null {
  const cached = epsgEntries.get(code);
  if (cached !== undefined) return cached;
  const dir = epsgIndexDir();
  let entry: EpsgEntry | null = null;
  if (dir !== null) {
    let text: string | undefined;
    try {
      text = readFileSync(path.join(dir, `${code}.json`), 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw unsupported(`EPSG:${code}: unreadable epsg-index entry ${code}.json`);
      }
      if (typeof parsed === 'object' && parsed !== null && typeof (parsed as EpsgEntry).kind === 'string') {
        entry = parsed as EpsgEntry;
      }
    }
  }
  epsgEntries.set(code, entry);
  return entry;
}

/** The first `KEYWORD[...]` node of a WKT1 string, brackets balanced. */
function wktNode(wkt: string, keyword: string): string | undefined {
  const start = wkt.indexOf(`${keyword}[`);
  if (start < 0) return undefined;
  let depth = 0;
  for (let i = start + keyword.length; i < wkt.length; i++) {
    const c = wkt[i];
    if (c === '[') depth++;
    else if (c === ']' && --depth === 0) return wkt.slice(start, i + 1);
  }
  return undefined;
}

/** A WKT1 node's own EPSG code: its AUTHORITY is its last child, just before the closing bracket. */
function wktOwnEpsg(node: string | undefined): number | undefined {
  const m = node === undefined ? null : /AUTHORITY\["EPSG","(\d+)"\]\]$/.exec(node);
  return m ? Number(m[1]) : undefined;
}

/**
 * Makes an epsg-index proj4 string usable by proj4js with PROJ-equivalent results:
 * ellipsoid names spelled out, grid-based datum shifts replaced by PROJ's grid-less
 * Helmert choice (or made optional), +type/+wktext dropped, +axis rejected.
 */
function normalizeEpsgProj4(def: string, code: number, gcsCode: number | undefined): string {
  const out: Token[] = [];
  for (const t of tokenize(def)) {
    switch (t.key) {
      case 'type':
      case 'wktext':
      case 'no_defs':
        break;
      case 'axis':
        // proj4js applies +axis only when callers pass enforceAxis, so a south/west
        // oriented CRS would silently come out mirrored.
        if (t.value !== 'enu') throw unsupported(`EPSG:${code} has axis order ${t.value ?? '?'}`);
        break;
      case 'ellps': {
        const e = t.value !== undefined ? PROJ_ELLIPSOIDS[t.value] : undefined;
        if (!e) throw unsupported(`EPSG:${code} uses ellipsoid ${t.value ?? '?'}`);
        out.push(...tokenize(ellipsoidParams(e).join(' ')));
        break;
      }
      case 'datum': {
        const exp = t.value !== undefined ? DATUM_EXPANSIONS[t.value] : undefined;
        if (exp) {
          out.push(...tokenize(ellipsoidParams(PROJ_ELLIPSOIDS[exp.ellps]!).join(' ')));
          out.push({ key: 'towgs84', value: exp.towgs84 });
        } else {
          out.push(t); // WGS84: proj4js special-cases it
        }
        break;
      }
      case 'nadgrids': {
        if (t.value === '@null') {
          out.push(t);
          break;
        }
        const fallback = gcsCode !== undefined ? DATUM_SHIFT_FALLBACK[gcsCode] : undefined;
        if (fallback !== undefined) {
          out.push({ key: 'towgs84', value: fallback });
        } else {
          // Optional grids + @null: used when registered with proj4.nadgrid(), otherwise no
          // shift at all (what PROJ calls a "ballpark" transformation).
          const grids = (t.value ?? '').split(',').filter((g) => g !== '' && !/\s/.test(g));
          const optional = grids.map((g) => (g.startsWith('@') ? g : `@${g}`)).filter((g) => g !== '@null');
          out.push({ key: 'nadgrids', value: [...optional, '@null'].join(',') });
        }
        break;
      }
      case 'towgs84':
        out.push(t.value !== undefined && TOWGS84_FIXES[t.value] !== undefined ? { key: 'towgs84', value: TOWGS84_FIXES[t.value] } : t);
        break;
      default:
        out.push(t);
    }
  }
  const hasShift = out.some((t) => t.key === 'towgs84' || t.key === 'nadgrids' || t.key === 'datum');
  const fallback = gcsCode !== undefined ? DATUM_SHIFT_FALLBACK[gcsCode] : undefined;
  if (!hasShift && fallback !== undefined) out.push({ key: 'towgs84', value: fallback });
  // proj4js honours only one shift; keep the first if a grid fallback met an explicit one.
  let shiftSeen = false;
  const single = out.filter((t) => {
    if (t.key !== 'towgs84' && t.key !== 'nadgrids') return true;
    if (shiftSeen) return false;
    shiftSeen = true;
    return true;
  });
  return `${detokenize(single)} +no_defs`;
}

/** Fails early, with a clear message, on definitions proj4js cannot build (unknown +proj names). */
function validateProj4(def: string, what: string): void {
  try {
    proj4(def, 'WGS84');
  } catch (e) {
    // proj4js throws a bare string (or undefined) here rather than an Error.
    const reason = e instanceof Error ? e.message : typeof e === 'string' ? e : '';
    const projName = /\+proj=(\S+)/.exec(def)?.[1] ?? '?';
    throw unsupported(`${what}: proj4js cannot use "+proj=${projName}"${reason ? ` (${reason})` : ''}`);
  }
}

function makeCrs(proj4Def: string, name: string, isGeographic: boolean, epsg?: number): Crs {
  const crs: Crs = epsg === undefined ? { proj4: proj4Def, name, isGeographic } : { proj4: proj4Def, name, epsg, isGeographic };
  return Object.freeze(crs);
}

/** Definitions that must work without epsg-index (and the commonest ones). */
function builtinEpsg(code: number): Crs | undefined {
  if (code === 4326) return makeCrs('+proj=longlat +datum=WGS84 +no_defs', 'WGS 84', true, 4326);
  if (code === 3857) {
    return makeCrs(
      '+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +no_defs',
      'WGS 84 / Pseudo-Mercator', false, 3857,
    );
  }
  if ((code >= 32601 && code <= 32660) || (code >= 32701 && code <= 32760)) {
    const zone = code % 100;
    const south = code >= 32701;
    return makeCrs(
      `+proj=utm +zone=${zone}${south ? ' +south' : ''} +datum=WGS84 +units=m +no_defs`,
      `WGS 84 / UTM zone ${zone}${south ? 'S' : 'N'}`, false, code,
    );
  }
  return undefined;
}

/** A CRS from its EPSG code (projected or geographic). Throws `unsupported CRS: ...` when unknown. */
export function crsFromEpsg(code: number): Crs {
  if (!Number.isInteger(code) || code <= 0) throw unsupported(`EPSG code ${String(code)} is not a positive integer`);
  const cached = epsgCrsCache.get(code);
  if (cached) return cached;
  let crs = builtinEpsg(code);
  if (!crs) {
    const entry = epsgEntry(code);
    if (!entry) {
      throw unsupported(`EPSG:${code} not found in epsg-index${epsgIndexDir() === null ? ' (epsg-index is not installed)' : ''}`);
    }
    const geographic = entry.kind === 'CRS-GEOGCRS' || entry.kind === 'CRS-GEOG3DCRS';
    if (!geographic && entry.kind !== 'CRS-PROJCRS') throw unsupported(`EPSG:${code} is a ${entry.kind}, not a projected or geographic CRS`);
    if (!entry.proj4) throw unsupported(`EPSG:${code} (${entry.name}) has no proj4 definition in epsg-index`);
    const gcs = geographic
      ? code
      : (typeof entry.wkt === 'string' ? wktOwnEpsg(wktNode(entry.wkt, 'GEOGCS')) : undefined) ??
        FALLBACK_GCS_BY_NAME[entry.name.split(' / ')[0] ?? ''];
    const def = normalizeEpsgProj4(entry.proj4, code, gcs);
    validateProj4(def, `EPSG:${code}`);
    crs = makeCrs(def, entry.name, geographic || /\+proj=(longlat|latlong|lonlat|latlon)\b/.test(def), code);
  }
  epsgCrsCache.set(code, crs);
  return crs;
}

// ---------------------------------------------------------------------------
// Geodetic part of a user-defined CRS (GeoTIFF 1.0 section 2.7.2, "Geographic CS Parameter Keys")

interface Geodetic { params: Token[]; label: string }

/** crsFromEpsg with the GeoKey that carried the code named in the error. */
function fromEpsgKey(keyName: string, code: number): Crs {
  try {
    return crsFromEpsg(code);
  } catch (e) {
    throw unsupported(`${keyName} ${code}: ${(e as Error).message.replace(/^unsupported CRS: /, '')}`);
  }
}


/** Geodetic tokens (ellipsoid + shift) of an EPSG geographic CRS; prime meridian separately. */
function geodeticFromEpsgGcs(code: number, keyName: string): Geodetic {
  const crs = fromEpsgKey(keyName, code);
  if (!crs.isGeographic) throw unsupported(`${keyName} ${code} is not a geographic CRS (${crs.name})`);
  return { params: tokenize(crs.proj4).filter((t) => GEODETIC_KEYS.has(t.key)), label: crs.name };
}

/** GeogGeodeticDatumGeoKey: EPSG datum 6xxx is the datum of geographic CRS 4xxx (EPSG convention). */
function geodeticFromDatumCode(datum: number): Geodetic {
  if (datum === 6326) return { params: tokenize('+datum=WGS84'), label: 'WGS 84' };
  const gcs = datum - 2000;
  const entry = datum >= 6001 && datum <= 6999 ? epsgEntry(gcs) : null;
  // The GCS's WKT names its datum's code when it has one; a different code means the
  // numbering convention does not hold for this datum.
  const datumAuth = typeof entry?.wkt === 'string' ? wktOwnEpsg(wktNode(entry.wkt, 'DATUM')) : undefined;
  if (!entry || entry.kind !== 'CRS-GEOGCRS' || (datumAuth !== undefined && datumAuth !== datum)) {
    throw unsupported(`GeogGeodeticDatumGeoKey ${datum} (no matching EPSG geographic CRS)`);
  }
  const g = geodeticFromEpsgGcs(gcs, 'GeogGeodeticDatumGeoKey');
  return { params: g.params.filter((t) => t.key !== 'pm'), label: g.label };
}

function ellipsoidFromKeys(keys: GeoKeys): { params: Token[]; label: string } | undefined {
  const toMeter = linearUnit(keys, 'GeogLinearUnitsGeoKey', 'GeogLinearUnitSizeGeoKey');
  const a = numKey(keys, 'GeogSemiMajorAxisGeoKey');
  if (a !== undefined) {
    const b = numKey(keys, 'GeogSemiMinorAxisGeoKey');
    const rf = numKey(keys, 'GeogInvFlatteningGeoKey');
    // libgeotiff: inverse flattening wins over semi-minor; neither (or rf 0) means a sphere.
    const e: Ellipsoid = rf !== undefined && rf !== 0
      ? { a: a * toMeter, rf }
      : b !== undefined ? { a: a * toMeter, b: b * toMeter } : { a: a * toMeter, b: a * toMeter };
    const label = e.rf !== undefined ? `a=${fmt(e.a)} 1/f=${fmt(e.rf)}` : e.b === e.a ? `sphere R=${fmt(e.a)}` : `a=${fmt(e.a)} b=${fmt(e.b ?? e.a)}`;
    return { params: tokenize(ellipsoidParams(e).join(' ')), label };
  }
  const code = codeKey(keys, 'GeogEllipsoidGeoKey');
  if (code !== undefined && code !== KV_USER_DEFINED) {
    const e = EPSG_ELLIPSOIDS[code];
    if (!e) throw unsupported(`GeogEllipsoidGeoKey ${code}`);
    return { params: tokenize(ellipsoidParams(e).join(' ')), label: `ellipsoid EPSG:${code}` };
  }
  return undefined;
}

/** GeogTOWGS84GeoKey: 3 or 7 values, same order and convention as PROJ's +towgs84. */
function towgs84FromKeys(keys: GeoKeys): string | undefined {
  const v = numsKey(keys, 'GeogTOWGS84GeoKey');
  if (v === undefined) return undefined;
  if (v.length !== 3 && v.length !== 7) throw unsupported(`GeogTOWGS84GeoKey with ${v.length} values (3 or 7 expected)`);
  return v.map(fmt).join(',');
}

/** Prime meridian in degrees east of Greenwich. */
function primeMeridian(keys: GeoKeys): number {
  const lon = numKey(keys, 'GeogPrimeMeridianLongGeoKey');
  if (lon !== undefined) return lon * degreesPerAngularUnit(keys);
  const code = codeKey(keys, 'GeogPrimeMeridianGeoKey');
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
function geodetic(keys: GeoKeys): Geodetic {
  const gcs = codeKey(keys, 'GeographicTypeGeoKey');
  let g: Geodetic;
  if (gcs !== undefined && gcs !== KV_USER_DEFINED) {
    g = geodeticFromEpsgGcs(gcs, 'GeographicTypeGeoKey');
  } else {
    // A coded datum implies its ellipsoid (and shift); the ellipsoid keys matter only for a
    // user-defined datum.
    const datum = codeKey(keys, 'GeogGeodeticDatumGeoKey');
    const ell = datum !== undefined && datum !== KV_USER_DEFINED ? undefined : ellipsoidFromKeys(keys);
    if (datum !== undefined && datum !== KV_USER_DEFINED) {
      g = geodeticFromDatumCode(datum);
    } else if (ell) {
      g = { params: ell.params, label: ell.label };
    } else {
      throw unsupported('no ellipsoid (GeographicTypeGeoKey, GeogGeodeticDatumGeoKey, GeogEllipsoidGeoKey and GeogSemiMajorAxisGeoKey all missing or user-defined)');
    }
    const pm = primeMeridian(keys);
    if (pm !== 0) g.params.push({ key: 'pm', value: fmt(pm) });
  }
  const towgs84 = towgs84FromKeys(keys);
  if (towgs84 !== undefined) g = { params: withTowgs84(g.params, towgs84), label: g.label };
  return g;
}

// ---------------------------------------------------------------------------
// Projection (GeoTIFF 1.0 section 2.7.3, "Projected CS Parameter Keys")

/** ProjCoordTransGeoKey codes, GeoTIFF 1.0 section 6.3.3.3 (9815 is a libgeotiff/GDAL extension). */
const CT_NAMES: Readonly<Record<number, string>> = {
  1: 'Transverse Mercator', 2: 'Transverse Mercator (Modified Alaska)', 3: 'Oblique Mercator (Hotine)',
  4: 'Oblique Mercator (Laborde)', 5: 'Oblique Mercator (Rosenmund)', 6: 'Oblique Mercator (Spherical)',
  7: 'Mercator', 8: 'Lambert Conformal Conic (2SP)', 9: 'Lambert Conformal Conic (1SP)',
  10: 'Lambert Azimuthal Equal Area', 11: 'Albers Equal Area', 12: 'Azimuthal Equidistant',
  13: 'Equidistant Conic', 14: 'Stereographic', 15: 'Polar Stereographic', 16: 'Oblique Stereographic',
  17: 'Equirectangular', 18: 'Cassini-Soldner', 19: 'Gnomonic', 20: 'Miller Cylindrical',
  21: 'Orthographic', 22: 'Polyconic', 23: 'Robinson', 24: 'Sinusoidal', 25: 'Van der Grinten',
  26: 'New Zealand Map Grid', 27: 'Transverse Mercator (South Oriented)', 28: 'Cylindrical Equal Area',
  9815: 'Hotine Oblique Mercator (azimuth centre)',
};

// Which key holds an origin depends on the method (natural origin, false origin or centre),
// but producers mix them up; libgeotiff accepts any of the three, in an order that prefers
// the method's own key. Same here.
const NAT = {
  lat: ['ProjNatOriginLatGeoKey', 'ProjFalseOriginLatGeoKey', 'ProjCenterLatGeoKey'],
  lon: ['ProjNatOriginLongGeoKey', 'ProjFalseOriginLongGeoKey', 'ProjCenterLongGeoKey'],
  fe: ['ProjFalseEastingGeoKey', 'ProjCenterEastingGeoKey', 'ProjFalseOriginEastingGeoKey'],
  fn: ['ProjFalseNorthingGeoKey', 'ProjCenterNorthingGeoKey', 'ProjFalseOriginNorthingGeoKey'],
} as const;
const FALSE_ORIGIN = {
  lat: ['ProjFalseOriginLatGeoKey', 'ProjNatOriginLatGeoKey', 'ProjCenterLatGeoKey'],
  lon: ['ProjFalseOriginLongGeoKey', 'ProjNatOriginLongGeoKey', 'ProjCenterLongGeoKey'],
  fe: ['ProjFalseOriginEastingGeoKey', 'ProjFalseEastingGeoKey', 'ProjCenterEastingGeoKey'],
  fn: ['ProjFalseOriginNorthingGeoKey', 'ProjFalseNorthingGeoKey', 'ProjCenterNorthingGeoKey'],
} as const;
const CENTER = {
  lat: ['ProjCenterLatGeoKey', 'ProjNatOriginLatGeoKey', 'ProjFalseOriginLatGeoKey'],
  lon: ['ProjCenterLongGeoKey', 'ProjNatOriginLongGeoKey', 'ProjFalseOriginLongGeoKey'],
  fe: ['ProjFalseEastingGeoKey', 'ProjCenterEastingGeoKey', 'ProjFalseOriginEastingGeoKey'],
  fn: ['ProjFalseNorthingGeoKey', 'ProjCenterNorthingGeoKey', 'ProjFalseOriginNorthingGeoKey'],
} as const;
/** Hotine variant B: EPSG's "easting/northing at projection centre" comes first. */
const CENTER_B = {
  lat: CENTER.lat,
  lon: CENTER.lon,
  fe: ['ProjCenterEastingGeoKey', 'ProjFalseEastingGeoKey', 'ProjFalseOriginEastingGeoKey'],
  fn: ['ProjCenterNorthingGeoKey', 'ProjFalseNorthingGeoKey', 'ProjFalseOriginNorthingGeoKey'],
} as const;
interface Origin { readonly lat: readonly string[]; readonly lon: readonly string[]; readonly fe: readonly string[]; readonly fn: readonly string[] }
const SCALE = ['ProjScaleAtNatOriginGeoKey', 'ProjScaleAtCenterGeoKey'] as const;
const SCALE_CENTER = ['ProjScaleAtCenterGeoKey', 'ProjScaleAtNatOriginGeoKey'] as const;

/** Reads projection parameters, converting angles to degrees and FE/FN to metres. */
class ParamReader {
  private readonly deg: number;
  private readonly azDeg: number;

  constructor(private readonly keys: GeoKeys, private readonly toMeter: number, private readonly ctName: string) {
    // Angular parameters are in GeogAngularUnits (spec 2.7.3); azimuths may have their own
    // GeogAzimuthUnitsGeoKey.
    this.deg = degreesPerAngularUnit(keys);
    this.azDeg = angularUnit(keys, 'GeogAzimuthUnitsGeoKey', 'GeogAngularUnitSizeGeoKey') ?? this.deg;
  }

  /** First of `names` in degrees; `fallbackDeg` (already degrees) when none is present. */
  angle(names: readonly string[], fallbackDeg = 0): number {
    const v = firstNum(this.keys, names);
    return v === undefined ? fallbackDeg : v * this.deg;
  }

  requiredAngle(name: string): number {
    const v = numKey(this.keys, name);
    if (v === undefined) throw unsupported(`${this.ctName} without ${name}`);
    return v * this.deg;
  }

  azimuth(name: string): number | undefined {
    const v = numKey(this.keys, name);
    return v === undefined ? undefined : v * this.azDeg;
  }

  scale(names: readonly string[]): number {
    return firstNum(this.keys, names) ?? 1;
  }

  /** False easting/northing are in ProjLinearUnits (spec 2.7.3); PROJ's +x_0/+y_0 are metres. */
  falseEN(o: Origin): string[] {
    // Rounded to the nanometre so that e.g. 699998.6 US ft prints as 213360, not 213359.99999999997.
    const fe = Math.round((firstNum(this.keys, o.fe) ?? 0) * this.toMeter * 1e9) / 1e9;
    const fn = Math.round((firstNum(this.keys, o.fn) ?? 0) * this.toMeter * 1e9) / 1e9;
    return [`+x_0=${fmt(fe)}`, `+y_0=${fmt(fn)}`];
  }
}

function projectionFromCoordTrans(keys: GeoKeys, ct: number, toMeter: number): string[] {
  const name = CT_NAMES[ct];
  if (name === undefined) throw unsupported(`ProjCoordTransGeoKey ${ct}`);
  const r = new ParamReader(keys, toMeter, `ProjCoordTransGeoKey ${ct} (${name})`);
  const p = (k: string, v: number): string => `+${k}=${fmt(v)}`;
  switch (ct) {
    case 1: // CT_TransverseMercator
      return ['+proj=tmerc', p('lat_0', r.angle(NAT.lat)), p('lon_0', r.angle(NAT.lon)), p('k', r.scale(SCALE)), ...r.falseEN(NAT)];
    case 3: { // CT_ObliqueMercator: Hotine variant A (GDAL writes variant B as 9815)
      const alpha = r.azimuth('ProjAzimuthAngleGeoKey');
      if (alpha === undefined) throw unsupported(`ProjCoordTransGeoKey 3 (${name}) without ProjAzimuthAngleGeoKey`);
      const gamma = r.azimuth('ProjRectifiedGridAngleGeoKey');
      return ['+proj=omerc', '+no_uoff', p('lat_0', r.angle(CENTER.lat)), p('lonc', r.angle(CENTER.lon)), p('alpha', alpha),
        ...(gamma === undefined ? [] : [p('gamma', gamma)]), p('k', r.scale(SCALE_CENTER)), ...r.falseEN(CENTER)];
    }
    case 9815: { // Hotine variant B: FE/FN are at the projection centre
      const alpha = r.azimuth('ProjAzimuthAngleGeoKey');
      if (alpha === undefined) throw unsupported(`ProjCoordTransGeoKey 9815 (${name}) without ProjAzimuthAngleGeoKey`);
      const gamma = r.azimuth('ProjRectifiedGridAngleGeoKey');
      const lat0 = r.angle(CENTER.lat);
      const lon0 = r.angle(CENTER.lon);
      const k = r.scale(SCALE_CENTER);
      // Azimuth 90 at the centre is the Swiss Oblique Mercator (EPSG 9815 as used by EPSG:2056);
      // PROJ's omerc is singular there, so GDAL and epsg-index express it as somerc.
      if (Math.abs(alpha - 90) < 1e-9 && (gamma === undefined || Math.abs(gamma - 90) < 1e-9)) {
        return ['+proj=somerc', p('lat_0', lat0), p('lon_0', lon0), p('k_0', k), ...r.falseEN(CENTER_B)];
      }
      return ['+proj=omerc', p('lat_0', lat0), p('lonc', lon0), p('alpha', alpha),
        ...(gamma === undefined ? [] : [p('gamma', gamma)]), p('k', k), ...r.falseEN(CENTER_B)];
    }
    case 7: { // CT_Mercator: 2SP when a standard parallel is given, else 1SP with a scale
      const sp1 = numKey(keys, 'ProjStdParallel1GeoKey');
      if (sp1 !== undefined) {
        return ['+proj=merc', p('lat_ts', r.angle(['ProjStdParallel1GeoKey'])), p('lon_0', r.angle(NAT.lon)), ...r.falseEN(NAT)];
      }
      return ['+proj=merc', p('lon_0', r.angle(NAT.lon)), p('k', r.scale(SCALE)), ...r.falseEN(NAT)];
    }
    case 8: // CT_LambertConfConic_2SP: origin is the false origin
      return ['+proj=lcc', p('lat_1', r.requiredAngle('ProjStdParallel1GeoKey')),
        p('lat_2', r.angle(['ProjStdParallel2GeoKey', 'ProjStdParallel1GeoKey'])),
        p('lat_0', r.angle(FALSE_ORIGIN.lat)), p('lon_0', r.angle(FALSE_ORIGIN.lon)), ...r.falseEN(FALSE_ORIGIN)];
    case 9: { // CT_LambertConfConic_1SP: the standard parallel is the natural origin latitude
      const lat0 = r.angle(NAT.lat);
      return ['+proj=lcc', p('lat_1', lat0), p('lat_0', lat0), p('lon_0', r.angle(NAT.lon)), p('k_0', r.scale(SCALE)), ...r.falseEN(NAT)];
    }
    case 10:
      return ['+proj=laea', p('lat_0', r.angle(CENTER.lat)), p('lon_0', r.angle(CENTER.lon)), ...r.falseEN(CENTER)];
    case 11:
    case 13:
      return [ct === 11 ? '+proj=aea' : '+proj=eqdc', p('lat_1', r.requiredAngle('ProjStdParallel1GeoKey')),
        p('lat_2', r.angle(['ProjStdParallel2GeoKey', 'ProjStdParallel1GeoKey'])),
        p('lat_0', r.angle(NAT.lat)), p('lon_0', r.angle(NAT.lon)), ...r.falseEN(NAT)];
    case 12:
      return ['+proj=aeqd', p('lat_0', r.angle(CENTER.lat)), p('lon_0', r.angle(CENTER.lon)), ...r.falseEN(CENTER)];
    case 14:
      return ['+proj=stere', p('lat_0', r.angle(CENTER.lat)), p('lon_0', r.angle(CENTER.lon)), p('k', r.scale(SCALE)), ...r.falseEN(CENTER)];
    case 15: { // CT_PolarStereographic
      // ProjNatOriginLatGeoKey is +-90 for variant A (scale given at the pole) and the
      // latitude of true scale for variant B (what GDAL writes); some writers put +-90 there
      // and the latitude of true scale in ProjStdParallel1GeoKey instead.
      const lat = r.angle(NAT.lat, 90);
      const lon = r.angle(['ProjStraightVertPoleLongGeoKey', ...NAT.lon]);
      if (Math.abs(Math.abs(lat) - 90) < 1e-9) {
        const ts = numKey(keys, 'ProjStdParallel1GeoKey') === undefined ? undefined : r.angle(['ProjStdParallel1GeoKey']);
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
      return ['+proj=eqc', p('lat_ts', r.angle(['ProjStdParallel1GeoKey'])), p('lat_0', r.angle(CENTER.lat)),
        p('lon_0', r.angle(CENTER.lon)), ...r.falseEN(CENTER)];
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
      return ['+proj=cea', p('lat_ts', r.angle(['ProjStdParallel1GeoKey'])), p('lon_0', r.angle(NAT.lon)), ...r.falseEN(NAT)];
    default:
      // 2, 4, 5, 6: no proj4js implementation; 27: needs +axis=wsu, which proj4js ignores
      // unless every caller passes enforceAxis.
      throw unsupported(`ProjCoordTransGeoKey ${ct} (${name})`);
  }
}

/** ProjectionGeoKey (an EPSG coordinate operation code): UTM zones 16001-16060 N, 16101-16160 S. */
function projectionFromProjectionCode(code: number): { params: string[]; label: string } {
  if (code >= 16001 && code <= 16060) return { params: ['+proj=utm', `+zone=${code - 16000}`], label: `UTM zone ${code - 16000}N` };
  if (code >= 16101 && code <= 16160) return { params: ['+proj=utm', `+zone=${code - 16100}`, '+south'], label: `UTM zone ${code - 16100}S` };
  throw unsupported(`ProjectionGeoKey ${code} (only UTM projection codes 16001-16060/16101-16160 are known)`);
}

function citation(keys: GeoKeys, ...names: string[]): string | undefined {
  for (const n of names) {
    const s = strKey(keys, n);
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
  const toMeter = linearUnit(keys, 'ProjLinearUnitsGeoKey', 'ProjLinearUnitSizeGeoKey');
  const ct = codeKey(keys, 'ProjCoordTransGeoKey');
  const projCode = codeKey(keys, 'ProjectionGeoKey');
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
  const name = citation(keys, 'PCSCitationGeoKey', 'GTCitationGeoKey') ?? `User-defined ${label} (${g.label})`;
  validateProj4(def, `user-defined ${label}`);
  return makeCrs(def, name, false);
}

function userDefinedGeographic(keys: GeoKeys): Crs {
  // Raster coordinates of a geographic model are in GeogAngularUnits (spec 2.7.2); proj4js
  // longlat only takes degrees.
  const deg = degreesPerAngularUnit(keys);
  if (deg !== 1) throw unsupported(`geographic raster in GeogAngularUnitsGeoKey ${codeKey(keys, 'GeogAngularUnitsGeoKey') ?? '?'} (only degrees)`);
  const g = geodetic(keys);
  const def = ['+proj=longlat', detokenize(g.params), '+no_defs'].join(' ');
  const name = citation(keys, 'GeogCitationGeoKey', 'GTCitationGeoKey') ?? `User-defined geographic (${g.label})`;
  validateProj4(def, 'user-defined geographic CRS');
  return makeCrs(def, name, true);
}

/**
 * The CRS of a GeoTIFF from its GeoKeys. EPSG codes (ProjectedCSTypeGeoKey,
 * GeographicTypeGeoKey) are looked up; user-defined (32767) CRSs are assembled from the
 * parameter keys. Throws `Error('unsupported CRS: ...')` naming the offending key.
 */
export function crsFromGeoKeys(keys: GeoKeys): Crs {
  const pcs = codeKey(keys, 'ProjectedCSTypeGeoKey');
  const gcs = codeKey(keys, 'GeographicTypeGeoKey');
  let model = codeKey(keys, 'GTModelTypeGeoKey');
  if (model === undefined) {
    // GTModelTypeGeoKey is required by the spec, but infer it rather than give up.
    if (pcs !== undefined || codeKey(keys, 'ProjectionGeoKey') !== undefined || codeKey(keys, 'ProjCoordTransGeoKey') !== undefined) model = 1;
    else if (gcs !== undefined || numKey(keys, 'GeogSemiMajorAxisGeoKey') !== undefined || codeKey(keys, 'GeogGeodeticDatumGeoKey') !== undefined) model = 2;
    else throw unsupported('no GTModelTypeGeoKey and no CRS keys');
  }

  if (model === 1) { // ModelTypeProjected
    if (pcs !== undefined && pcs !== KV_USER_DEFINED) {
      try {
        const crs = crsFromEpsg(pcs);
        if (crs.isGeographic) throw unsupported(`ProjectedCSTypeGeoKey ${pcs} is a geographic CRS (${crs.name})`);
        return crs;
      } catch (e) {
        // A code we cannot resolve is still usable when the file also spells it out.
        if (codeKey(keys, 'ProjCoordTransGeoKey') === undefined) {
          const msg = (e as Error).message.replace(/^unsupported CRS: /, '');
          throw unsupported(msg.startsWith('ProjectedCSTypeGeoKey') ? msg : `ProjectedCSTypeGeoKey ${pcs}: ${msg}`);
        }
      }
    }
    return userDefinedProjected(keys);
  }
  if (model === 2) { // ModelTypeGeographic
    if (gcs !== undefined && gcs !== KV_USER_DEFINED) {
      const crs = fromEpsgKey('GeographicTypeGeoKey', gcs);
      if (!crs.isGeographic) throw unsupported(`GeographicTypeGeoKey ${gcs} is not a geographic CRS (${crs.name})`);
      return crs;
    }
    return userDefinedGeographic(keys);
  }
  if (model === 3) throw unsupported('GTModelTypeGeoKey 3 (geocentric)');
  throw unsupported(`GTModelTypeGeoKey ${model}`);
}
