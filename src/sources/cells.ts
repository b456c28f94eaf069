/**
 * Cell digests of decoded blocks: a block cut into a grid of at most CELLS × CELLS cells, each
 * hashed over its decoded samples inside the image. A seeding run records them for the blocks
 * its render threads decode anyway, and keeps them in its manifest (src/seed/lineage.ts): a
 * later `--since` run then tells which cells of a changed block changed, and renders again only
 * the tiles that read those, not every tile over the block.
 */
import { createHash } from 'node:crypto';
import type { Samples } from './types.js';

/** Cells across and down a block (fewer for a block narrower than this). */
export const CELLS = 4;
/** Hex digits of a cell's hash (the first of its SHA-256), as a block's in the manifest. */
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

let scratch = new Uint8Array(0);

/**
 * The hashes of a decoded block's cells, row by row, CELL_HASH_HEX hex digits each: the samples
 * of the cell's pixels inside the image (a tiled image's edge blocks are padded past it).
 */
export function cellHashes(samples: Samples, place: BlockPlace): string {
  const grid = cellGrid(place.blockWidth, place.blockHeight);
  const bytes = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const pixelBytes = samples.BYTES_PER_ELEMENT * place.samples;
  const rowBytes = place.blockWidth * pixelBytes;
  if (bytes.length < rowBytes * place.rows) throw new Error(`a block of ${bytes.length} bytes, not ${place.blockWidth}x${place.rows} pixels of ${pixelBytes}`);
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
      const width = Math.max(0, x1 - x0) * pixelBytes;
      const size = width * Math.max(0, y1 - y0);
      if (scratch.length < size) scratch = new Uint8Array(size);
      // The cell's rows one after another, hashed at once: one hash call a row costs more than the copy.
      for (let y = y0, at = 0; y < y1; y++, at += width)
        scratch.set(bytes.subarray(y * rowBytes + x0 * pixelBytes, y * rowBytes + x0 * pixelBytes + width), at);
      out += createHash('sha256').update(scratch.subarray(0, size)).digest('hex').slice(0, CELL_HASH_HEX);
    }
  }
  return out;
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
