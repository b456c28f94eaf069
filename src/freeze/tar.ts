/**
 * The few tar archives `tilegraph freeze` writes and `tilegraph verify` reads, with Node alone.
 *
 * POSIX.1-1988 ustar (IEEE Std 1003.1, "pax" §ustar Interchange Format): each file is a
 * 512-byte header and its bytes padded to 512; two zero blocks end the archive. Numbers in a
 * header are octal text; the checksum is the sum of the header's bytes with its own field read
 * as eight spaces. GNU tar's own format ("ustar  \0" magic), its long names (type `L`) and pax
 * extended headers (types `x`, `g`) are read too, so an archive repacked with `tar -cf` verifies.
 */

const BLOCK = 512;
/** The largest archive read: a manifest of a 50,000-member mosaic is about 10 MB. */
export const MAX_ARCHIVE_BYTES = 64 * 1024 * 1024;

export interface TarEntry {
  name: string;
  data: Uint8Array;
}

/** An archive that cannot be read, with the reason (the caller names the file). */
export class ArchiveError extends Error {}

/** Header fields: offset and length (ustar). */
const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  magic: [257, 6],
  version: [263, 2],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;

/** A ustar archive of regular files (mode 0644, owner 0), each stamped with `mtime`. */
export function writeTar(entries: readonly TarEntry[], mtime: Date): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    if (name.length === 0 || name.length > 100) throw new Error(`tar: '${e.name}' needs a name of 1 to 100 bytes`);
    const h = Buffer.alloc(BLOCK);
    name.copy(h, F.name[0]);
    const octal = (field: readonly [number, number], n: number) => h.write(`${n.toString(8).padStart(field[1] - 1, '0')}\0`, field[0], 'latin1');
    octal(F.mode, 0o644);
    octal(F.uid, 0);
    octal(F.gid, 0);
    octal(F.size, e.data.length);
    octal(F.mtime, Math.floor(mtime.getTime() / 1000));
    h.write('0', F.typeflag[0], 'latin1');
    h.write('ustar\0', F.magic[0], 'latin1');
    h.write('00', F.version[0], 'latin1');
    // Six octal digits, NUL, space: as tar itself writes the checksum.
    h.write(`${checksum(h).toString(8).padStart(6, '0')}\0 `, F.chksum[0], 'latin1');
    parts.push(h, Buffer.from(e.data.buffer, e.data.byteOffset, e.data.length), Buffer.alloc(padding(e.data.length)));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/**
 * The regular files of an archive, by name (a leading `./` dropped). Throws ArchiveError for
 * anything that is not a whole tar archive: not one at all, a damaged header, a file cut short,
 * no end-of-archive blocks, a name given twice.
 */
export function readTar(bytes: Uint8Array): Map<string, Uint8Array> {
  if (bytes.length === 0) throw new ArchiveError('the file is empty, not a tar archive');
  if (bytes.length < BLOCK) throw new ArchiveError(`not a tar archive (${bytes.length} bytes; a tar header alone takes ${BLOCK})`);
  const files = new Map<string, Uint8Array>();
  let longName: string | undefined;
  let paxPath: string | undefined;
  for (let at = 0; ;) {
    if (at + BLOCK > bytes.length) {
      const last = [...files.keys()].at(-1);
      const where = at === bytes.length ? 'where a header should follow' : `${bytes.length - at} bytes into a header`;
      throw new ArchiveError(`truncated: it ends ${where}${last ? `, after '${last}'` : ''}, without the end-of-archive blocks`);
    }
    const h = bytes.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    const stored = octal(h, F.chksum);
    if (stored === null || stored !== checksum(h)) {
      if (at === 0) throw new ArchiveError('not a tar archive (its first 512 bytes are not a tar header)');
      throw new ArchiveError(`damaged: the header at byte ${at} fails its checksum`);
    }
    const size = octal(h, F.size);
    if (size === null) throw new ArchiveError(`damaged: the header at byte ${at} has no readable size`);
    let name = text(h, F.name);
    // The ustar prefix; GNU's own format ("ustar  \0") keeps other fields there.
    const posix = Buffer.from(h.subarray(F.magic[0], F.magic[0] + 8)).toString('latin1') === 'ustar\u000000';
    const prefix = posix ? text(h, F.prefix) : '';
    if (prefix) name = `${prefix}/${name}`;
    const start = at + BLOCK;
    if (start + size > bytes.length)
      throw new ArchiveError(`truncated: '${name}' needs ${size} bytes from byte ${start}, the file holds ${bytes.length - start}`);
    const data = bytes.subarray(start, start + size);
    at = start + size + padding(size);
    const type = String.fromCharCode(h[F.typeflag[0]]!);
    if (type === 'L') {
      longName = text(data, [0, data.length]);
      continue;
    }
    if (type === 'x') {
      paxPath = paxRecords(data, name).get('path') ?? paxPath;
      continue;
    }
    if (type !== '0' && type !== '\0' && type !== '7') {
      // Directories, links, global pax headers: nothing a freeze holds.
      longName = paxPath = undefined;
      continue;
    }
    name = (paxPath ?? longName ?? name).replace(/^(\.\/)+/, '');
    longName = paxPath = undefined;
    if (files.has(name)) throw new ArchiveError(`'${name}' is in the archive twice`);
    files.set(name, data);
  }
  return files;
}

/** Bytes that fill a file's last block. */
function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function checksum(h: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1] ? 0x20 : h[i]!;
  return sum;
}

/** An octal field (digits, then NULs or spaces), or null when it is not one. */
function octal(h: Uint8Array, [offset, length]: readonly [number, number]): number | null {
  const s = text(h, [offset, length]).trim();
  if (!/^[0-7]{1,12}$/.test(s)) return null;
  return parseInt(s, 8);
}

/** A NUL-terminated field as text. */
function text(h: Uint8Array, [offset, length]: readonly [number, number]): string {
  const field = h.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return Buffer.from(field.subarray(0, end < 0 ? field.length : end)).toString('utf8');
}

/** pax extended header records: `LEN key=value\n`, LEN counting the whole record. */
function paxRecords(data: Uint8Array, name: string): Map<string, string> {
  const out = new Map<string, string>();
  const buf = Buffer.from(data);
  for (let at = 0; at < buf.length;) {
    const space = buf.indexOf(0x20, at);
    const len = space < 0 ? NaN : Number(buf.toString('latin1', at, space));
    if (!Number.isInteger(len) || len <= space - at || at + len > buf.length)
      throw new ArchiveError(`damaged: the pax header '${name}' has a malformed record`);
    const record = buf.toString('utf8', space + 1, at + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}
