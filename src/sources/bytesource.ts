import { open, stat, type FileHandle } from 'node:fs/promises';
import { SourceError, TileError } from '../errors.js';

/** Where a source's bytes come from: a local file or an HTTP(S) URL read with range requests. */
export interface ByteSource {
  /** The path or URL, for messages and cache keys. */
  readonly location: string;
  /** Size in bytes, and a version identity that changes when the content is replaced. */
  identity(): Promise<SourceIdentity>;
  /**
   * Exactly `length` bytes from `offset`, or fewer at the end of the file. `into`, of at least
   * `length` bytes, is lent for this read: a local file is read into it and the answer is a view
   * of it, which the caller must be done with before it lends `into` again.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface SourceIdentity {
  size: number;
  /** size + mtime for files; ETag or Last-Modified for URLs. */
  version: string;
}

export class FileSource implements ByteSource {
  private handle: Promise<FileHandle> | undefined;
  constructor(readonly location: string) {}

  async identity(): Promise<SourceIdentity> {
    const s = await stat(this.location);
    return { size: s.size, version: `${s.size}-${Math.floor(s.mtimeMs)}` };
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    checkRange(this.location, offset, length);
    this.handle ??= open(this.location, 'r');
    const fh = await this.handle;
    const buf = into && into.byteLength >= length ? into : Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, done);
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    if (h) await (await h).close();
  }
}

export interface HttpSourceOptions {
  /** Per-request time limit in milliseconds. */
  timeoutMs?: number;
}

/** A COG behind HTTP(S), read with `Range: bytes=a-b` requests. */
export class HttpSource implements ByteSource {
  private readonly timeoutMs: number;
  constructor(
    readonly location: string,
    options: HttpSourceOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async identity(): Promise<SourceIdentity> {
    return this.request({ method: 'HEAD' }, async (res) => {
      const size = Number(res.headers.get('content-length'));
      const version = res.headers.get('etag') ?? res.headers.get('last-modified') ?? `${size}`;
      if (!Number.isFinite(size)) throw new TileError('upstream', 'upstream failed', `${this.location}: HEAD gave no Content-Length`);
      return { size, version };
    });
  }

  /**
   * The bytes of a `206` are taken only as the range asked for, as its Content-Range names it
   * (or the part of it up to the end of the file), and never more of them than that. A server
   * that ignores Range answers `200` with the whole file: the bytes up to the end of the range
   * are read, the rest is not, for files whose range ends within IGNORED_RANGE_MAX_BYTES.
   */
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.location, offset, length);
    if (length === 0) return new Uint8Array(0);
    const last = offset + length - 1;
    return this.request({ headers: { range: `bytes=${offset}-${last}` } }, async (res, signal) => {
      const refuse = (why: string): never => {
        void res.body?.cancel().catch(() => {});
        throw new TileError('upstream', 'upstream failed', `${this.location}: the range request for bytes ${offset}-${last} ${why}`);
      };
      if (res.status === 200) {
        if (last >= IGNORED_RANGE_MAX_BYTES)
          refuse(
            `was answered with the whole file (the server ignores Range), which is read for ranges within the first ${IGNORED_RANGE_MAX_BYTES} bytes only`,
          );
        const { bytes } = await bodyUpTo(res, offset + length, false, signal);
        return bytes.subarray(offset);
      }
      if (res.status !== 206) refuse(`was answered ${res.status}`);
      const header = res.headers.get('content-range') ?? '';
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
      const [start, end, size] = m ? [Number(m[1]), Number(m[2]), m[3] === '*' ? undefined : Number(m[3])] : [];
      if (start === undefined || end === undefined)
        return refuse(`was answered 206 with ${header ? `Content-Range '${header.slice(0, 80)}'` : 'no Content-Range'}`);
      // Fewer bytes than asked only where the file ends.
      if (start !== offset || end > last || end < start || (end < last && size !== undefined && end !== size - 1))
        refuse(`was answered with bytes ${header.slice(6, 86)}`);
      const n = end - start + 1;
      const { bytes, more } = await bodyUpTo(res, n, true, signal);
      if (more) refuse(`was answered with more than the ${n} bytes its Content-Range names`);
      if (bytes.length !== n) refuse(`was answered with ${bytes.length} of the ${n} bytes its Content-Range names`);
      return bytes;
    });
  }

  /**
   * A request and the reading of its answer by `use`, under the source's time limit; an
   * answer of 400 or more is an upstream failure, and what fails otherwise is the upstream's
   * (fetchError).
   */
  private async request<T>(init: RequestInit, use: (res: Response, signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      // No redirects: a source may only name hosts on ALLOWED_HOSTS, and a redirect could leave them.
      return await fetchWithin(this.location, { ...init, redirect: 'error' }, this.timeoutMs, async (res, signal) => {
        if (res.status >= 400) {
          await res.body?.cancel();
          throw new TileError('upstream', 'upstream failed', `${this.location}: HTTP ${res.status}`);
        }
        return use(res, signal);
      });
    } catch (err) {
      throw err instanceof TileError ? err : fetchError(this.location, this.timeoutMs, err);
    }
  }

  async close(): Promise<void> {}
}

/**
 * The first `limit` bytes of a response body at most, read as they arrive (a server may send
 * more than it announced, or without end). With `past`, `more` tells whether it had more
 * (waiting for the end of the body if need be); the rest is left unread. Once `signal`
 * aborts (fetchWithin's time limit), the read fails with its reason.
 */
export async function bodyUpTo(res: Response, limit: number, past = true, signal?: AbortSignal): Promise<{ bytes: Uint8Array; more: boolean }> {
  const chunks: Uint8Array[] = [];
  let at = 0;
  if (!res.body) return { bytes: new Uint8Array(0), more: false };
  const reader = res.body.getReader();
  const joined = () => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, at));
  // Cancelling ends the read in progress as if the body had ended: each read looks at the signal.
  const stop = () => void reader.cancel(signal!.reason).catch(() => {});
  signal?.addEventListener('abort', stop, { once: true });
  const next = async () => {
    signal?.throwIfAborted();
    const r = await reader.read();
    signal?.throwIfAborted();
    return r;
  };
  try {
    for (;;) {
      const { done, value } = await next();
      if (done) return { bytes: joined(), more: false };
      const take = Math.min(value.length, limit - at);
      chunks.push(take === value.length ? value : value.subarray(0, take));
      at += take;
      if (take < value.length || at === limit) {
        // Whatever follows is not wanted: a whole file past the range, bytes past the Content-Range, a body past its bound.
        const more = take < value.length || (past && !(await next()).done);
        return { bytes: joined(), more };
      }
    }
  } finally {
    signal?.removeEventListener('abort', stop);
    void reader.cancel().catch(() => {});
  }
}

/**
 * `fetch`, and the reading of its answer by `use`, under one time limit of `ms`: once it
 * passes, the request fails with a TimeoutError, and so does the body's read when `use` reads
 * it through bodyUpTo with the signal it is given. The body needs the signal of its own: once
 * fetch has the headers, what it keeps of the request to abort is collectable, and after a
 * collection an abort no longer reached a body that had stalled (it was waited on without end).
 */
export async function fetchWithin<T>(url: string, init: RequestInit, ms: number, use: (res: Response, signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')), ms);
  try {
    return await use(await fetch(url, { ...init, signal: ac.signal }), ac.signal);
  } finally {
    clearTimeout(timer);
  }
}

/** A fetch that failed, or whose body did: a timeout is the upstream's own error. */
function fetchError(location: string, timeoutMs: number, err: unknown): TileError {
  if (err instanceof Error && err.name === 'TimeoutError')
    return new TileError('upstream_timeout', 'upstream timed out', `${location}: timed out after ${timeoutMs} ms`);
  return new TileError('upstream', 'upstream failed', `${location}: ${String(err)}`);
}

/**
 * The furthest byte read from a server that ignores Range (it sends the whole file for each
 * block): 64 MiB, a small file's worth. Past it, a read would download the file up to the
 * block for every block it reads.
 */
const IGNORED_RANGE_MAX_BYTES = 64 * 2 ** 20;

/** The largest read a source takes at once (fs.read takes an int32 length; no block is near it). */
const MAX_READ_BYTES = 1024 * 1024 * 1024;

/** A range that could not come from a sane file: refused before it reaches an allocation or a system call. */
function checkRange(location: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 || length > MAX_READ_BYTES) {
    throw new SourceError(`${location}: refused to read ${length} bytes at byte ${offset}`);
  }
}

export function byteSource(location: string): ByteSource {
  return /^https?:\/\//i.test(location) ? new HttpSource(location) : new FileSource(location);
}
