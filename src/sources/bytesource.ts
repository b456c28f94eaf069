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
    const res = await this.fetch({ method: 'HEAD' });
    const size = Number(res.headers.get('content-length'));
    const version = res.headers.get('etag') ?? res.headers.get('last-modified') ?? `${size}`;
    if (!Number.isFinite(size)) throw new TileError('upstream', 'upstream failed', `${this.location}: HEAD gave no Content-Length`);
    return { size, version };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.location, offset, length);
    if (length === 0) return new Uint8Array(0);
    const res = await this.fetch({ headers: { range: `bytes=${offset}-${offset + length - 1}` } });
    if (res.status !== 206 && res.status !== 200) {
      throw new TileError('upstream', 'upstream failed', `${this.location}: range request at byte ${offset} answered ${res.status}`);
    }
    const body = new Uint8Array(await res.arrayBuffer());
    // A server that ignores Range answers 200 with the whole file: cut out what was asked.
    if (res.status === 200) return body.subarray(offset, offset + length);
    return body;
  }

  private async fetch(init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      // No redirects: a source may only name hosts on ALLOWED_HOSTS, and a redirect could leave them.
      res = await fetch(this.location, { ...init, redirect: 'error', signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      if (err instanceof Error && err.name === 'TimeoutError')
        throw new TileError('upstream_timeout', 'upstream timed out', `${this.location}: timed out after ${this.timeoutMs} ms`);
      throw new TileError('upstream', 'upstream failed', `${this.location}: ${String(err)}`);
    }
    if (res.status >= 400) {
      await res.body?.cancel();
      throw new TileError('upstream', 'upstream failed', `${this.location}: HTTP ${res.status}`);
    }
    return res;
  }

  async close(): Promise<void> {}
}

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
