import { realpathSync } from 'node:fs';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import type { NextFunction } from 'express';
import type { Logger } from 'pino';
import { TileError, type ErrorCode } from '../errors.js';

/** Each error code's answer: the one table from a failure to HTTP. */
const ANSWERS: Record<ErrorCode, { status: number; retryAfter?: number }> = {
  bad_request: { status: 400 },
  not_found: { status: 404 },
  method_not_allowed: { status: 405 },
  too_large: { status: 413 },
  over_budget: { status: 422 },
  too_many_requests: { status: 429, retryAfter: 60 },
  // The server's own data is at fault, not the client: 500 naming the file and the offset.
  bad_source: { status: 500 },
  quality: { status: 500 },
  internal: { status: 500 },
  upstream: { status: 502 },
  upstream_timeout: { status: 504 },
  // Both pass with load: the client may try again.
  overload: { status: 503, retryAfter: 1 },
  render_timeout: { status: 503, retryAfter: 5 },
  // Written to no one: the request log says 499, as nginx does.
  client_closed: { status: 499 },
};

/**
 * Every error becomes a JSON body with `Cache-Control: no-store`, here and nowhere else: as
 * express's error handler, and for the tile route that answers before express (src/server/app.ts).
 */
export function errorHandler(log: Logger, layersDir: string) {
  // Clients see paths relative to the layers directory; the log keeps the full ones. Sources
  // are opened by their real path, so a layers directory reached through a link is cut both ways.
  const prefixes = [...new Set([layersDir, realDir(layersDir)])].map((d) => (d.endsWith(path.sep) ? d : d + path.sep));
  const redact = (text: string) => prefixes.reduce((t, p) => t.split(p).join(''), text);
  return (err: unknown, req: IncomingMessage & { originalUrl?: string }, res: ServerResponse, _next?: NextFunction): void => {
    let status = 500;
    let error = 'internal error';
    let detail: string;
    // The client has gone: nobody to answer, and its connection must not wait for another request.
    if (err instanceof TileError && err.code === 'client_closed') return void res.destroy();
    if (err instanceof TileError) {
      const answer = ANSWERS[err.code];
      status = answer.status;
      error = err.title;
      detail = err.detail;
      if (answer.retryAfter) res.setHeader('Retry-After', String(answer.retryAfter));
    } else if (clientErrorStatus(err) !== undefined) {
      // Express's own request errors, e.g. router's "Failed to decode param" for '%zz' in a path.
      status = clientErrorStatus(err)!;
      error = (STATUS_CODES[status] ?? 'bad request').toLowerCase();
      detail = String((err as Error).message);
    } else {
      detail = err instanceof Error ? err.message : String(err);
    }
    // A full queue or a render past its time is load, not a fault: a warning without a stack.
    if (status === 503) log.warn({ url: req.originalUrl ?? req.url, detail }, error);
    else if (status >= 500) log.error({ err, url: req.originalUrl ?? req.url }, error);
    if (res.headersSent) return void res.end();
    const body = JSON.stringify({ error, detail: redact(detail) });
    res.statusCode = status;
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', String(Buffer.byteLength(body)));
    res.end(body);
  };
}

/** The body parser's refusal of a body over its limit, as a 413 with `title` and `detail` (which names the limit). */
export function bodyTooLarge(title: string, detail: string) {
  return (err: unknown, _req: IncomingMessage, _res: ServerResponse, next: NextFunction): void => {
    if ((err as { type?: string }).type === 'entity.too.large') return next(new TileError('too_large', title, detail));
    next(err);
  };
}

function realDir(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return dir;
  }
}

/** Errors raised by express itself (path parameter decoding, body parsers) carry a 4xx `status` or `statusCode`. */
function clientErrorStatus(err: unknown): number | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const { status, statusCode } = err as { status?: unknown; statusCode?: unknown };
  const s = typeof status === 'number' ? status : statusCode;
  return typeof s === 'number' && Number.isInteger(s) && s >= 400 && s < 500 ? s : undefined;
}
