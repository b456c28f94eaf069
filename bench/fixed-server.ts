/**
 * The ceiling for cached serving: a bare express app that answers every tile path with the
 * same 16 KB body (about a DEM colour-relief PNG) and the headers a cached tile gets.
 * Run as a child process by bench.ts; prints {"url": ...} on stdout once listening.
 */
import { randomFillSync } from 'node:crypto';
import express from 'express';

const BODY = randomFillSync(Buffer.alloc(16 * 1024));
const ETAG = '"bench-fixed-16k"';

const app = express();
app.disable('x-powered-by');
app.get('/tiles/:layer/:z/:x/:file', (_req, res) => {
  res.setHeader('Cache-Control', 'public, max-age=3600');
  res.setHeader('ETag', ETAG);
  res.setHeader('Content-Type', 'image/png');
  res.setHeader('Content-Length', String(BODY.length));
  res.status(200).end(BODY);
});
const server = app.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
