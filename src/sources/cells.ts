/**
 * Cell digests of decoded blocks: a block cut into a grid of at most CELLS × CELLS cells, each
 * checked over its decoded samples inside the image. A seeding run records them for the blocks
 * its render threads decode anyway, and keeps them in its manifest (src/seed/lineage.ts): a
 * later `--since` run then tells which cells of a changed block changed, and renders again only
 * the tiles that read those, not every tile over the block.
 *
 * A cell's digest is the CRC-32 and the Adler-32 of its rows (64 bits, as zlib computes them),
 * by libdeflate where the addon is in use and by the loops here otherwise (the same digits). It
 * only says which cells of a block changed, once the SHA-256 of the block's bytes has said
 * that the block did; SHA-256 of the cells cost a seed of zooms 10-14 of the bench DEM 9% of
 * its time, these checksums a seventh of that.
 */
import { rowChecksums } from '../kernels.js';
import type { Samples } from './types.js';

/** Cells across and down a block (fewer for a block narrower than this). */
export const CELLS = 4;
/** Hex digits of a cell's digest: its CRC-32, then its Adler-32. */
export const CELL_HASH_HEX = 16;

export interface CellGrid {
  across: number;
  down: number;
  /** Pixels of a cell (the last ones of a row or column may be cut short by the block or the image). */
  width: number;
  height: number;
}

export function cellGrid(blockWidth: number, blockHeight: number): CellGrid {
  const across = Math.max(1, Math.min(CELLS, blockWidth));
  const down = Math.max(1, Math.min(CELLS, blockHeight));
  return { across, down, width: Math.ceil(blockWidth / across), height: Math.ceil(blockHeight / down) };
}

/** Where a block lies: its image's size and block size, the block's column and row, and what it decoded to. */
export interface BlockPlace {
  imageWidth: number;
  imageHeight: number;
  blockWidth: number;
  blockHeight: number;
  bx: number;
  by: number;
  /** Rows decoded (a strip image's last block may be short) and samples a pixel. */
  rows: number;
  samples: number;
}

/**
 * The digests of a decoded block's cells, row by row of cells, CELL_HASH_HEX hex digits each:
 * the samples of the cell's pixels inside the image (a tiled image's edge blocks are padded
 * past it). Undefined for a block shorter than its place says: its cells stay unknown, and a
 * change to it is told block by block.
 */
export function cellHashes(samples: Samples, place: BlockPlace): string | undefined {
  const grid = cellGrid(place.blockWidth, place.blockHeight);
  const pixelBytes = samples.BYTES_PER_ELEMENT * place.samples;
  const rowBytes = place.blockWidth * pixelBytes;
  if (samples.byteLength < rowBytes * place.rows) return undefined;
  // The block's pixels inside the image.
  const inWidth = Math.max(0, Math.min(place.blockWidth, place.imageWidth - place.bx * place.blockWidth));
  const inRows = Math.max(0, Math.min(place.rows, place.imageHeight - place.by * place.blockHeight));
  let out = '';
  for (let cy = 0; cy < grid.down; cy++) {
    const y0 = cy * grid.height,
      y1 = Math.min(y0 + grid.height, inRows);
    for (let cx = 0; cx < grid.across; cx++) {
      const x0 = cx * grid.width,
        x1 = Math.min(x0 + grid.width, inWidth);
      const at = y0 * rowBytes + x0 * pixelBytes;
      const width = Math.max(0, x1 - x0) * pixelBytes,
        rows = Math.max(0, y1 - y0);
      out += rowChecksums(samples, at, rowBytes, width, rows) ?? referenceChecksums(samples, at, rowBytes, width, rows);
    }
  }
  return out;
}

let crcTable: Uint32Array | undefined;

/** `rowChecksums` in JavaScript: CRC-32 (IEEE 802.3, reflected) and Adler-32 over the rows one after another. */
export function referenceChecksums(src: ArrayBufferView, at: number, stride: number, rowBytes: number, rows: number): string {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const bytes = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  if (rowBytes > 0 && rows > 0 && at + (rows - 1) * stride + rowBytes > bytes.length)
    throw new RangeError('referenceChecksums: a row past the end of the view');
  let crc = 0xffffffff;
  let a = 1,
    b = 0;
  for (let r = 0; r < rows; r++) {
    const start = at + r * stride;
    for (let i = start; i < start + rowBytes;) {
      // Adler-32's sums stay exact in doubles for 5552 bytes between reductions (zlib's NMAX).
      const end = Math.min(i + 5552, start + rowBytes);
      for (; i < end; i++) {
        const v = bytes[i]!;
        crc = crcTable[(crc ^ v) & 0xff]! ^ (crc >>> 8);
        a += v;
        b += a;
      }
      a %= 65521;
      b %= 65521;
    }
  }
  const hex = (v: number) => (v >>> 0).toString(16).padStart(8, '0');
  return hex(crc ^ 0xffffffff) + hex((b << 16) | a);
}

/** The cells of one decoded block, as a render thread reports them. */
export interface CellRecord {
  location: string;
  version: string;
  /** The image's index in the TIFF (a level or a mask), and the block's index in its TileOffsets. */
  image: number;
  index: number;
  hashes: string;
}

let recording: CellRecord[] | undefined;

/** From now on, this thread records the cells of every block it decodes (seeding threads: see `takeCells`). */
export function recordCells(): void {
  recording ??= [];
}

/** Whether this thread records cells. */
export const recordsCells = (): boolean => recording !== undefined;

export function addCells(record: CellRecord): void {
  recording?.push(record);
}

/** The cells recorded since the last call (none when not recording). */
export function takeCells(): CellRecord[] | undefined {
  if (!recording?.length) return undefined;
  const out = recording;
  recording = [];
  return out;
}
