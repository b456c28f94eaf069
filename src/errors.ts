/**
 * Errors as data. Every failure that can end a tile carries a code; the code alone decides the
 * HTTP status (src/server/errors.ts maps it, in one table), and it survives the trip from a
 * render thread, where a class would not: a structured clone keeps an Error's message, not its
 * prototype.
 */

export type ErrorCode =
  /** The request itself is wrong: a malformed path, a bad query value. */
  | 'bad_request'
  /** No such layer, tile, route. */
  | 'not_found'
  /** The resource exists, not for this method. */
  | 'method_not_allowed'
  /** The request's body is larger than its limit. */
  | 'too_large'
  /** A client asked more often than its limit allows. */
  | 'too_many_requests'
  /** A client's document asks more than its budget (nodes, render time). */
  | 'over_budget'
  /** A source's bytes are wrong: a truncated or corrupt COG, an unsupported layout. */
  | 'bad_source'
  /** An http(s) source answered with an error or could not be reached. */
  | 'upstream'
  /** An http(s) source did not answer in time. */
  | 'upstream_timeout'
  /** A render took longer than its limit. */
  | 'render_timeout'
  /** A quality check of the layer failed with `on_fail: raise`. */
  | 'quality'
  /** The render queue is full. */
  | 'overload'
  /** The client went away while its question waited for a render thread: never asked. */
  | 'client_closed'
  /** Anything else: a bug. */
  | 'internal';

/**
 * A failure with its code. `title` is short and fixed for its kind ("unknown layer"), the
 * `error` of a JSON answer; `detail` names the layer, the file, the offset (and is the Error's
 * message, so that logs and tests see the whole story).
 */
export class TileError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly title: string,
    readonly detail = '',
  ) {
    super(detail || title);
  }
}

/** A source file or response whose content cannot be used, naming the file and what is wrong. */
export class SourceError extends TileError {
  constructor(message: string) {
    super('bad_source', 'bad source data', message);
  }
}

/** What crosses a thread boundary in place of an Error. */
export interface WireError {
  code: ErrorCode;
  title: string;
  detail: string;
}

export function toWire(err: unknown): WireError {
  if (err instanceof TileError) return { code: err.code, title: err.title, detail: err.detail };
  return { code: 'internal', title: 'render failed', detail: err instanceof Error ? err.message : String(err) };
}

export function fromWire(w: WireError): TileError {
  return new TileError(w.code, w.title, w.detail);
}
