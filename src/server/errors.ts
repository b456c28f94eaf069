import path from 'node:path';
import type { NextFunction, Request, Response } from 'express';
import { PoolBusyError, RenderTimeoutError } from '../render/pool.js';
import type { Logger } from 'pino';

/** A failure with the HTTP status it should answer. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly detail = '') {
    super(message);
  }
}

/** Every error becomes a JSON body with `Cache-Control: no-store`, here and nowhere else. */
export function errorHandler(log: Logger, layersDir: string) {
  // Clients see paths relative to the layers directory; the log keeps the full ones.
  const redact = (text: string) => text.split(layersDir.endsWith(path.sep) ? layersDir : layersDir + path.sep).join('');
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    let status = 500;
    let error = 'internal error';
    let detail = '';
    if (err instanceof HttpError) {
      status = err.status; error = err.message; detail = err.detail;
    } else if (err instanceof PoolBusyError) {
      status = 503; error = 'busy'; detail = err.message;
      res.setHeader('Retry-After', '1');
    } else if (err instanceof RenderTimeoutError) {
      status = 503; error = 'render timed out'; detail = err.message;
      res.setHeader('Retry-After', '5');
    } else if (clientErrorStatus(err) !== undefined) {
      // Express's own request errors, e.g. router's "Failed to decode param" for '%zz' in a path.
      status = clientErrorStatus(err)!; error = 'bad request'; detail = String((err as Error).message);
    } else {
      error = 'render failed';
      detail = err instanceof Error ? err.message : String(err);
    }
    if (status >= 500) log.error({ err, url: req.originalUrl }, error);
    if (res.headersSent) return void res.end();
    res.status(status).setHeader('Cache-Control', 'no-store');
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.json({ error, detail: redact(detail) });
  };
}

/** Errors raised by express itself (path parameter decoding, body parsers) carry a 4xx `status` or `statusCode`. */
function clientErrorStatus(err: unknown): number | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const { status, statusCode } = err as { status?: unknown; statusCode?: unknown };
  const s = typeof status === 'number' ? status : statusCode;
  return typeof s === 'number' && Number.isInteger(s) && s >= 400 && s < 500 ? s : undefined;
}
