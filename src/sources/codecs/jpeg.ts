/**
 * JPEG in TIFF (compression 7, TIFF Technical Note 2): each block is a JPEG stream, usually
 * "abbreviated": the quantisation and Huffman tables are kept once for the whole image in the
 * JPEGTables tag (347) and go in front of the block's own data before decoding. libjpeg-turbo
 * (through sharp, codecs/image.ts) then converts YCbCr (Photometric 6, what GDAL writes for
 * RGB) to RGB as GDAL does.
 */
const SOI = 0xd8;
const EOI = 0xd9;

/** The block's stream with the image's tables in front: the tables' stream without its end marker, then the block's without its start marker. */
export function withTables(block: Uint8Array, tables: Uint8Array | undefined): Uint8Array {
  if (!tables || tables.length < 4) return block;
  const tablesEnd = tables[tables.length - 2] === 0xff && tables[tables.length - 1] === EOI ? tables.length - 2 : tables.length;
  const blockStart = block[0] === 0xff && block[1] === SOI ? 2 : 0;
  const out = new Uint8Array(tablesEnd + block.length - blockStart);
  out.set(tables.subarray(0, tablesEnd));
  out.set(block.subarray(blockStart), tablesEnd);
  return out;
}
