/**
 * Query parameters as the routes read them: each given at most once, as text. A parameter given
 * twice (`?bbox=…&bbox=…`) is refused by name, not read as the two values joined by a comma.
 */
import type { Request } from 'express';
import { TileError } from '../../errors.js';
import { bboxNumbers } from '../../tiles/area.js';

const bad = (title: string, detail: string) => new TileError('bad_request', title, detail);

/** The parameter's text, or undefined when absent. */
export function queryText(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined || typeof v === 'string') return v;
  const times = Array.isArray(v) ? v.length : 2;
  throw bad(`bad ${name}`, `'${name}' is given ${times} times: give it once`);
}

/** A whole number from the query, or undefined when absent. */
export function queryWhole(req: Request, name: string): number | undefined {
  const v = queryText(req, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,9}$/.test(v)) throw bad(`bad ${name}`, `${name}=${v.slice(0, 50)}: expected a whole number`);
  return Number(v);
}

/** `bbox=W,S,E,N` in WGS84 degrees, or undefined when absent. */
export function queryBbox(req: Request): [number, number, number, number] | undefined {
  const v = queryText(req, 'bbox');
  return v === undefined ? undefined : parseBbox(v);
}

function parseBbox(value: string): [number, number, number, number] {
  const parts = bboxNumbers(value);
  const refuse = (why: string) => bad('bad bbox', `bbox=${value.slice(0, 100)}: ${why}`);
  if (parts.length !== 4 || !parts.every(Number.isFinite)) throw refuse('expected four decimal numbers W,S,E,N in degrees');
  const [w, s, e, n] = parts as [number, number, number, number];
  if (w < -180 || e > 180 || s < -90 || n > 90) throw refuse('longitudes lie in -180..180 and latitudes in -90..90');
  if (!(w <= e && s <= n)) throw refuse('west is at most east and south at most north');
  return [w, s, e, n];
}
