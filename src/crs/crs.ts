/**
 * A CRS as proj4js takes it: a PROJ.4-style definition string. proj4js differs from PROJ
 * in ways that matter here (unknown +ellps names silently become WGS84, +axis is ignored by
 * default, grid files must be registered by the application), so every definition is
 * normalised for proj4js and validated by constructing it (see validateProj4).
 *
 * This folder is the bottom layer: it imports nothing else from src/.
 */
import proj4 from '../proj4.js';

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

/** The one error of this folder: `Error('unsupported CRS: ...')`, naming the key or code at fault. */
export function unsupported(what: string): Error {
  return new Error(`unsupported CRS: ${what}`);
}

/** The message of an `unsupported` error without its prefix, to say it again with more context. */
export function unsupportedReason(e: unknown): string {
  return (e as Error).message.replace(/^unsupported CRS: /, '');
}

export function makeCrs(proj4Def: string, name: string, isGeographic: boolean, epsg?: number): Crs {
  const crs: Crs = epsg === undefined ? { proj4: proj4Def, name, isGeographic } : { proj4: proj4Def, name, epsg, isGeographic };
  return Object.freeze(crs);
}

/** Fails early, with a clear message, on definitions proj4js cannot build (unknown +proj names). */
export function validateProj4(def: string, what: string): void {
  try {
    proj4(def, 'WGS84');
  } catch (e) {
    // proj4js throws a bare string (or undefined) here rather than an Error.
    const reason = e instanceof Error ? e.message : typeof e === 'string' ? e : '';
    const projName = /\+proj=(\S+)/.exec(def)?.[1] ?? '?';
    throw unsupported(`${what}: proj4js cannot use "+proj=${projName}"${reason ? ` (${reason})` : ''}`);
  }
}

// ---------------------------------------------------------------------------
// PROJ string tokens

/** Shortest round-trip decimal; proj4js splits definitions on '+', so no exponent '+'. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) throw unsupported(`non-finite parameter ${n}`);
  const s = String(n);
  return s.includes('e+') ? n.toFixed(0) : s;
}

export interface Token {
  key: string;
  value?: string;
}

export function tokenize(def: string): Token[] {
  const out: Token[] = [];
  // Values may be double-quoted (e.g. grid names with spaces in epsg-index).
  for (const m of def.matchAll(/\+([A-Za-z_][\w.]*)(?:=("[^"]*"|\S*))?/g)) {
    const value = m[2];
    out.push(value === undefined ? { key: m[1]! } : { key: m[1]!, value: value.replace(/^"|"$/g, '') });
  }
  return out;
}

export function detokenize(tokens: readonly Token[]): string {
  return tokens.map((t) => (t.value === undefined ? `+${t.key}` : `+${t.key}=${t.value}`)).join(' ');
}
