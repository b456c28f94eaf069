/** ZSTD (compression 50000, as libtiff writes it), decoded by fzstd. */
import { decompress as zstdDecompress } from 'fzstd';
import { SourceError } from '../../errors.js';
import { errorMessage, maxDecodedBytes, owned, shortBlock, type OwnedBytes } from './output.js';

/** libzstd refuses larger windows unless told otherwise (ZSTD_WINDOWLOG_LIMIT_DEFAULT). */
const ZSTD_MAX_WINDOW = 2 ** 27;

export function unzstd(bytes: Uint8Array, expected: number): OwnedBytes {
  checkZstdHeader(bytes, expected);
  let out: Uint8Array;
  try {
    // fzstd is given no output buffer on purpose: with one it cannot report
    // how many bytes it produced, so a short frame would go unnoticed.
    out = zstdDecompress(bytes);
  } catch (err) {
    throw new SourceError(`ZSTD decode failed: ${errorMessage(err)}`);
  }
  if (out.length < expected) throw shortBlock('ZSTD', out.length, expected);
  return owned(out, expected);
}

/**
 * fzstd allocates the first frame's Frame_Content_Size, or without one (as
 * libtiff writes them) its window size, before decoding anything (RFC 8878
 * section 3.1.1.1). Checking the header first keeps a hostile frame from
 * making it allocate up to 2 GiB.
 */
function checkZstdHeader(src: Uint8Array, expected: number): void {
  if (src.length < 6 || src[0] !== 0x28 || src[1] !== 0xb5 || src[2] !== 0x2f || src[3] !== 0xfd) return;
  const descriptor = src[4];
  const singleSegment = (descriptor >> 5) & 1;
  const dictIdFlag = descriptor & 3;
  const fcsFlag = descriptor >> 6;
  let pos = 5;
  if (!singleSegment) {
    const wd = src[pos++];
    const base = 2 ** (10 + (wd >> 3));
    const window = base + (base / 8) * (wd & 7);
    if (window > ZSTD_MAX_WINDOW) throw new SourceError(`ZSTD frame window of ${window} bytes is larger than ${ZSTD_MAX_WINDOW}`);
  }
  pos += dictIdFlag === 3 ? 4 : dictIdFlag;
  const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
  let contentSize = fcsBytes === 2 ? 256 : 0;
  for (let i = 0, scale = 1; i < fcsBytes; i++, scale *= 256) contentSize += (src[pos + i] ?? 0) * scale;
  if (fcsBytes > 0 && contentSize > maxDecodedBytes(expected)) {
    throw new SourceError(`ZSTD frame declares ${contentSize} bytes, far more than the ${expected} the block needs`);
  }
}
