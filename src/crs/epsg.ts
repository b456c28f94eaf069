/**
 * CRSs by EPSG code, from the proj4 strings of the epsg-index package, made usable by
 * proj4js with the results PROJ/GDAL give (see normalizeEpsgProj4 and its tables).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { detokenize, makeCrs, tokenize, unsupported, unsupportedReason, validateProj4, type Crs, type Token } from './crs.js';
import { ellipsoidParams, PROJ_ELLIPSOIDS } from './geodesy.js';
import { geoKeyName, type GeoKey } from './geokeys.js';

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
  OSGB36: 4277,
  DHDN: 4314,
  NZGD49: 4272,
  AGD84: 4203,
  'NTF (Paris)': 4807,
  NAD27: 4267,
};

/**
 * epsg-index entries whose +towgs84 has its rotations in the wrong unit, compared with what
 * PROJ/GDAL apply (`projinfo -s EPSG:<gcs> -t EPSG:4326`):
 * - NAD83(CSRS), 70 CRSs such as EPSG:3402: radians with coordinate-frame sign instead of
 *   arc-seconds in position-vector convention (about 0.9 m off);
 * - KSA-GRF17, EPSG:9356-9360: milli-arc-seconds written as arc-seconds (about 300 m off).
 */
const TOWGS84_FIXES: Readonly<Record<string, string>> = {
  '-0.991,1.9072,0.5129,-1.25033e-07,-4.6785e-08,-5.6529e-08,0': '-0.991,1.9072,0.5129,0.0257899075194932,0.0096500989602704,0.0116599432323421,0',
  '0,0,0,-8.393,0.749,-10.276,0': '0,0,0,-0.008393,0.000749,-0.010276,0',
};

/** proj4js built-in datum names that epsg-index uses, spelled out (see normalizeEpsgProj4). */
const DATUM_EXPANSIONS: Readonly<Record<string, { ellps: string; towgs84: string; gcs: number }>> = {
  NAD83: { ellps: 'GRS80', towgs84: '0,0,0', gcs: 4269 },
  NAD27: { ellps: 'clrk66', towgs84: DATUM_SHIFT_FALLBACK[4267]!, gcs: 4267 },
};

// ---------------------------------------------------------------------------
// epsg-index

interface EpsgEntry {
  code: string;
  kind: string;
  name: string;
  wkt?: string | null;
  proj4?: string | null;
}

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

/** Definitions that must work without epsg-index (and the commonest ones). */
function builtinEpsg(code: number): Crs | undefined {
  if (code === 4326) return makeCrs('+proj=longlat +datum=WGS84 +no_defs', 'WGS 84', true, 4326);
  if (code === 3857) {
    return makeCrs(
      '+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +no_defs',
      'WGS 84 / Pseudo-Mercator',
      false,
      3857,
    );
  }
  if ((code >= 32601 && code <= 32660) || (code >= 32701 && code <= 32760)) {
    const zone = code % 100;
    const south = code >= 32701;
    return makeCrs(
      `+proj=utm +zone=${zone}${south ? ' +south' : ''} +datum=WGS84 +units=m +no_defs`,
      `WGS 84 / UTM zone ${zone}${south ? 'S' : 'N'}`,
      false,
      code,
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
      : ((typeof entry.wkt === 'string' ? wktOwnEpsg(wktNode(entry.wkt, 'GEOGCS')) : undefined) ?? FALLBACK_GCS_BY_NAME[entry.name.split(' / ')[0] ?? '']);
    const def = normalizeEpsgProj4(entry.proj4, code, gcs);
    validateProj4(def, `EPSG:${code}`);
    crs = makeCrs(def, entry.name, geographic || /\+proj=(longlat|latlong|lonlat|latlon)\b/.test(def), code);
  }
  epsgCrsCache.set(code, crs);
  return crs;
}

/** crsFromEpsg with the GeoKey that carried the code named in the error. */
export function fromEpsgKey(key: GeoKey, code: number): Crs {
  try {
    return crsFromEpsg(code);
  } catch (e) {
    throw unsupported(`${geoKeyName(key)} ${code}: ${unsupportedReason(e)}`);
  }
}

/**
 * The EPSG geographic CRS whose datum is EPSG datum `datum`: datum 6xxx is the datum of
 * geographic CRS 4xxx (EPSG convention), when epsg-index confirms it.
 */
export function geographicCrsOfDatum(datum: number): number | undefined {
  const gcs = datum - 2000;
  const entry = datum >= 6001 && datum <= 6999 ? epsgEntry(gcs) : null;
  // The GCS's WKT names its datum's code when it has one; a different code means the
  // numbering convention does not hold for this datum.
  const datumAuth = typeof entry?.wkt === 'string' ? wktOwnEpsg(wktNode(entry.wkt, 'DATUM')) : undefined;
  if (!entry || entry.kind !== 'CRS-GEOGCRS' || (datumAuth !== undefined && datumAuth !== datum)) return undefined;
  return gcs;
}
