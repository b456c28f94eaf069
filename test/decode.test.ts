/**
 * Tests for decodeBlock (src/sources/codecs/) against GeoTIFFs written by GDAL/libtiff.
 *
 * test/fixtures/make-decode-fixtures.sh makes one fixture per case plus the
 * pixels as GDAL reads them back (.bsq). Here every fixture's structure is
 * read with an independent parser (the geotiff package), each block's raw
 * bytes are read with fs and decoded with decodeBlock, and the assembled
 * image must equal GDAL's exactly.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { fromFile } from 'geotiff';
import type { ImageFileDirectory } from 'geotiff';
import { decodeBlock } from '../src/sources/codecs/block.js';
import type { BlockLayout, Samples } from '../src/sources/types.js';

type DataType = 'Byte' | 'Int8' | 'UInt16' | 'Int16' | 'UInt32' | 'Int32' | 'Float32' | 'Float64';
type CompressionName = 'NONE' | 'LZW' | 'DEFLATE' | 'PACKBITS' | 'ZSTD';

interface Fixture {
  name: string;
  tiff: string;
  reference: string;
  dataType: DataType;
  width: number;
  height: number;
  bands: number;
  compression: CompressionName;
  predictor: number;
  tiled: boolean;
  blockWidth: number;
  blockHeight: number;
  interleave: 'PIXEL' | 'BAND';
  endianness: 'LITTLE' | 'BIG';
}

interface Manifest {
  gdal: string;
  fixtures: Fixture[];
}

const COMPRESSION_CODES: Record<CompressionName, number> = {
  NONE: 1,
  LZW: 5,
  DEFLATE: 8,
  PACKBITS: 32773,
  ZSTD: 50000,
};

const SAMPLE_TYPES: Record<DataType, { bits: number; format: number; array: string }> = {
  Byte: { bits: 8, format: 1, array: 'Uint8Array' },
  Int8: { bits: 8, format: 2, array: 'Int8Array' },
  UInt16: { bits: 16, format: 1, array: 'Uint16Array' },
  Int16: { bits: 16, format: 2, array: 'Int16Array' },
  UInt32: { bits: 32, format: 1, array: 'Uint32Array' },
  Int32: { bits: 32, format: 2, array: 'Int32Array' },
  Float32: { bits: 32, format: 3, array: 'Float32Array' },
  Float64: { bits: 64, format: 3, array: 'Float64Array' },
};

function allocSamples(dataType: DataType, source: number | ArrayBuffer): Samples {
  // The two overloads are spelled out so each constructor call type-checks.
  const make = <T extends Samples>(ctor: { new (n: number): T; new (b: ArrayBuffer): T }): T =>
    typeof source === 'number' ? new ctor(source) : new ctor(source);
  switch (dataType) {
    case 'Byte':
      return make(Uint8Array);
    case 'Int8':
      return make(Int8Array);
    case 'UInt16':
      return make(Uint16Array);
    case 'Int16':
      return make(Int16Array);
    case 'UInt32':
      return make(Uint32Array);
    case 'Int32':
      return make(Int32Array);
    case 'Float32':
      return make(Float32Array);
    case 'Float64':
      return make(Float64Array);
  }
}

/** The repository root: the closest ancestor holding the fixture script (works from dist/test and test). */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'test/fixtures/make-decode-fixtures.sh'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find test/fixtures/make-decode-fixtures.sh above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

const ROOT = findRepoRoot();
const FIXTURES = resolve(ROOT, 'test/fixtures/out/decode');

// Generated synchronously at load time because the test list depends on the
// manifest; the script is a no-op when the fixtures are up to date.
execFileSync('bash', [join(ROOT, 'test/fixtures/make-decode-fixtures.sh'), FIXTURES], {
  cwd: ROOT,
  stdio: ['ignore', 'inherit', 'inherit'],
  timeout: 10 * 60 * 1000,
});
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as Manifest;

/** A tag's value as numbers (scalars become one-element arrays), or undefined when absent. */
async function tagNumbers(ifd: ImageFileDirectory, name: string): Promise<number[] | undefined> {
  if (!ifd.hasTag(name as Parameters<ImageFileDirectory['hasTag']>[0])) return undefined;
  const value: unknown = await ifd.loadValue(name as Parameters<ImageFileDirectory['loadValue']>[0]);
  if (typeof value === 'number' || typeof value === 'bigint') return [Number(value)];
  if (value !== null && typeof value === 'object' && 'length' in value) {
    return Array.from(value as ArrayLike<number | bigint>, Number);
  }
  throw new Error(`tag ${name} has an unexpected value ${String(value)}`);
}

async function tagNumber(ifd: ImageFileDirectory, name: string, fallback?: number): Promise<number> {
  const values = await tagNumbers(ifd, name);
  if (values === undefined || values.length === 0) {
    if (fallback === undefined) throw new Error(`missing TIFF tag ${name}`);
    return fallback;
  }
  return values[0];
}

function readBytes(fd: number, offset: number, length: number): Uint8Array {
  // Read one byte further in so the block starts at an odd address: the
  // decoder must not assume aligned input.
  const holder = Buffer.alloc(length + 1);
  const n = readSync(fd, holder, 1, length, offset);
  assert.equal(n, length, `short read at ${offset}`);
  return holder.subarray(1);
}

function sameSample(a: number, b: number): boolean {
  return Object.is(a, b); // NaN equals NaN, and -0 stays distinct from 0
}

async function checkFixture(fx: Fixture, shared = false): Promise<void> {
  const path = join(FIXTURES, fx.tiff);
  const tiff = await fromFile(path);
  const fd = openSync(path, 'r');
  try {
    const image = await tiff.getImage(0);
    const ifd = image.fileDirectory;
    const type = SAMPLE_TYPES[fx.dataType];

    // The fixture really is the case the manifest says (GDAL can silently
    // ignore creation options it does not like).
    const width = await tagNumber(ifd, 'ImageWidth');
    const height = await tagNumber(ifd, 'ImageLength');
    const bands = await tagNumber(ifd, 'SamplesPerPixel', 1);
    const compression = await tagNumber(ifd, 'Compression', 1);
    const predictor = await tagNumber(ifd, 'Predictor', 1);
    const planar = (await tagNumber(ifd, 'PlanarConfiguration', 1)) === 2;
    const bitsPerSample = await tagNumbers(ifd, 'BitsPerSample');
    const sampleFormat = (await tagNumbers(ifd, 'SampleFormat')) ?? [1];
    assert.deepEqual([width, height, bands], [fx.width, fx.height, fx.bands], 'image size');
    assert.equal(compression, COMPRESSION_CODES[fx.compression], 'Compression tag');
    assert.equal(predictor, fx.predictor, 'Predictor tag');
    assert.equal(planar, fx.interleave === 'BAND', 'PlanarConfiguration tag');
    assert.equal(image.littleEndian, fx.endianness === 'LITTLE', 'byte order');
    assert.equal(image.isTiled, fx.tiled, 'tiled');
    assert.ok(
      bitsPerSample?.every((b) => b === type.bits),
      `BitsPerSample ${String(bitsPerSample)}`,
    );
    assert.ok(
      sampleFormat.every((f) => f === type.format),
      `SampleFormat ${String(sampleFormat)}`,
    );

    // Section 15 (tiles) / Section 3 (strips): blocks are ordered row-major,
    // and with PlanarConfiguration=2 all blocks of plane 0 come first, then
    // plane 1, ... Edge tiles are stored full size; the last strip only
    // holds the rows left.
    const blockW = fx.tiled ? await tagNumber(ifd, 'TileWidth') : width;
    const blockH = fx.tiled ? await tagNumber(ifd, 'TileLength') : Math.min(await tagNumber(ifd, 'RowsPerStrip', height), height);
    assert.deepEqual([blockW, blockH], [fx.blockWidth, fx.blockHeight], 'block size');
    const across = Math.ceil(width / blockW);
    const down = Math.ceil(height / blockH);
    const planes = planar ? bands : 1;
    const samples = planar ? 1 : bands;
    const offsets = await tagNumbers(ifd, fx.tiled ? 'TileOffsets' : 'StripOffsets');
    const counts = await tagNumbers(ifd, fx.tiled ? 'TileByteCounts' : 'StripByteCounts');
    assert.ok(offsets && counts, 'block offsets and byte counts');
    assert.equal(offsets.length, across * down * planes, 'block count');
    assert.equal(counts.length, offsets.length, 'byte count count');

    const bandSize = width * height;
    const image2 = allocSamples(fx.dataType, bandSize * bands);
    for (let plane = 0; plane < planes; plane++) {
      for (let by = 0; by < down; by++) {
        const rows = fx.tiled ? blockH : Math.min(blockH, height - by * blockH);
        for (let bx = 0; bx < across; bx++) {
          const index = (plane * down + by) * across + bx;
          const bytes = readBytes(fd, offsets[index], counts[index]);
          const before = Buffer.from(bytes);
          const layout: BlockLayout = {
            compression,
            predictor,
            width: blockW,
            height: rows,
            samples,
            bitsPerSample: type.bits,
            sampleFormat: sampleFormat[0],
            littleEndian: image.littleEndian,
          };
          const block = decodeBlock(bytes, layout, { shared });
          assert.equal(block.constructor.name, type.array, 'sample array type');
          assert.equal(block.buffer instanceof SharedArrayBuffer, shared, shared ? 'in shared memory' : 'in an ArrayBuffer');
          assert.equal(block.length, blockW * rows * samples, 'block length');
          assert.ok(block.byteOffset === 0 && block.buffer.byteLength === block.byteLength, 'block owns its buffer');
          assert.ok(before.equals(bytes), 'input bytes left unchanged');

          const x0 = bx * blockW;
          const y0 = by * blockH;
          const w = Math.min(blockW, width - x0);
          const h = Math.min(rows, height - y0);
          for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
              const src = (y * blockW + x) * samples;
              const dst = (y0 + y) * width + x0 + x;
              for (let s = 0; s < samples; s++) {
                image2[(planar ? plane : s) * bandSize + dst] = block[src + s];
              }
            }
          }
        }
      }
    }

    const file = readFileSync(join(FIXTURES, fx.reference));
    const reference = allocSamples(fx.dataType, file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength));
    assert.equal(reference.length, image2.length, 'reference size');
    for (let i = 0; i < reference.length; i++) {
      if (!sameSample(image2[i], reference[i])) {
        const band = Math.floor(i / bandSize);
        const y = Math.floor((i % bandSize) / width);
        const x = i % width;
        assert.fail(`${fx.name}: band ${band + 1} pixel (${x}, ${y}) decodes to ${image2[i]}, GDAL reads ${reference[i]}`);
      }
    }
  } finally {
    closeSync(fd);
    await tiff.close();
  }
}

describe(`decodeBlock matches GDAL on ${manifest.fixtures.length} fixtures (${manifest.gdal})`, () => {
  for (const fx of manifest.fixtures) {
    test(fx.name, () => checkFixture(fx));
    // As the render threads decode, straight into memory they share (the predictors write there).
    test(`${fx.name}, into a SharedArrayBuffer`, () => checkFixture(fx, true));
  }
});

function layoutOf(overrides: Partial<BlockLayout>): BlockLayout {
  return {
    compression: 1,
    predictor: 1,
    width: 4,
    height: 2,
    samples: 1,
    bitsPerSample: 8,
    sampleFormat: 1,
    littleEndian: true,
    ...overrides,
  };
}

/** The raw bytes and layout of the short last strip (3 of 7 rows) of a striped, 67x45 fixture's first plane. */
async function lastStrip(name: string): Promise<{ bytes: Uint8Array; layout: BlockLayout }> {
  const fx = manifest.fixtures.find((f) => f.name === name);
  assert.ok(fx && !fx.tiled && fx.height % fx.blockHeight !== 0, `striped fixture ${name}`);
  const path = join(FIXTURES, fx.tiff);
  const tiff = await fromFile(path);
  const fd = openSync(path, 'r');
  try {
    const image = await tiff.getImage(0);
    const ifd = image.fileDirectory;
    const strips = Math.ceil(fx.height / fx.blockHeight);
    const offsets = await tagNumbers(ifd, 'StripOffsets');
    const counts = await tagNumbers(ifd, 'StripByteCounts');
    assert.ok(offsets && counts);
    const type = SAMPLE_TYPES[fx.dataType];
    return {
      bytes: readBytes(fd, offsets[strips - 1], counts[strips - 1]),
      layout: {
        compression: COMPRESSION_CODES[fx.compression],
        predictor: fx.predictor,
        width: fx.width,
        height: fx.height - (strips - 1) * fx.blockHeight,
        samples: fx.interleave === 'PIXEL' ? fx.bands : 1,
        bitsPerSample: type.bits,
        sampleFormat: type.format,
        littleEndian: fx.endianness === 'LITTLE',
      },
    };
  } finally {
    closeSync(fd);
    await tiff.close();
  }
}

describe('decodeBlock errors', () => {
  test('unknown compression', () => {
    assert.throws(() => decodeBlock(new Uint8Array(8), layoutOf({ compression: 7 })), {
      message: 'unsupported TIFF compression 7',
    });
  });

  test('unsupported predictor and sample types', () => {
    assert.throws(() => decodeBlock(new Uint8Array(8), layoutOf({ predictor: 4 })), /unsupported TIFF predictor 4/);
    assert.throws(() => decodeBlock(new Uint8Array(8), layoutOf({ predictor: 3 })), /predictor 3 .* needs float samples/);
    assert.throws(() => decodeBlock(new Uint8Array(8), layoutOf({ bitsPerSample: 4 })), /unsupported TIFF sample type: 4-bit/);
    assert.throws(
      () => decodeBlock(new Uint8Array(8), layoutOf({ bitsPerSample: 16, sampleFormat: 3 })),
      /unsupported TIFF sample type: 16-bit, sample format 3/,
    );
    assert.throws(() => decodeBlock(new Uint8Array(8), layoutOf({ width: 0 })), /invalid TIFF block width 0/);
  });

  const striped: Array<[string, RegExp]> = [
    ['Float32-none-p1-striped-pixel-le', /uncompressed block decodes to \d+ bytes, expected \d+/],
    ['Float32-lzw-p3-striped-pixel-le', /LZW stream ended early: decoded \d+ of \d+ bytes/],
    ['Float32-deflate-p3-striped-pixel-le', /DEFLATE block decodes to \d+ bytes, expected \d+/],
    ['Float32-packbits-p1-striped-pixel-le', /PackBits stream ended early/],
    ['Float32-zstd-p2-striped-pixel-le', /ZSTD block decodes to \d+ bytes, expected \d+/],
  ];
  for (const [name, message] of striped) {
    test(`a complete stream with too few rows throws (${name})`, async () => {
      const { bytes, layout } = await lastStrip(name);
      assert.doesNotThrow(() => decodeBlock(bytes, layout));
      assert.throws(() => decodeBlock(bytes, { ...layout, height: 7 }), message);
    });
  }

  const truncated: Array<[string, RegExp]> = [
    ['Int16-none-p1-striped-band-le', /uncompressed block decodes to \d+ bytes/],
    ['Int16-lzw-p2-striped-band-le', /LZW stream ended early/],
    ['Int16-deflate-p2-striped-band-le', /DEFLATE decode failed: unexpected end of file/],
    ['Int16-packbits-p1-striped-band-le', /PackBits stream ended early/],
    ['Int16-zstd-p2-striped-band-le', /ZSTD decode failed: unexpected EOF/],
  ];
  for (const [name, message] of truncated) {
    test(`a truncated stream throws (${name})`, async () => {
      const { bytes, layout } = await lastStrip(name);
      assert.doesNotThrow(() => decodeBlock(bytes, layout));
      assert.throws(() => decodeBlock(bytes.subarray(0, bytes.length >> 1), layout), message);
    });
  }

  test('decompression bombs are refused before they allocate', () => {
    const layout = layoutOf({ width: 16, height: 16 });
    assert.throws(
      () => decodeBlock(deflateSync(new Uint8Array(8 << 20)), { ...layout, compression: 8 }),
      /DEFLATE block decodes to more than \d+ bytes, expected 256/,
    );
    // ZSTD frame headers: magic, descriptor, then a 2^40 byte window, or an
    // 8-byte Frame_Content_Size of 2^40 in a single-segment frame.
    const magic = [0x28, 0xb5, 0x2f, 0xfd];
    assert.throws(() => decodeBlock(Uint8Array.of(...magic, 0x00, 30 << 3, 0, 0, 0), { ...layout, compression: 50000 }), /ZSTD frame window of \d+ bytes/);
    const fcs = [0, 0, 0, 0, 0, 1, 0, 0];
    assert.throws(
      () => decodeBlock(Uint8Array.of(...magic, 0xe0, ...fcs, 0, 0, 0), { ...layout, compression: 50000 }),
      /ZSTD frame declares 1099511627776 bytes/,
    );
  });

  test('old-style LZW is refused', () => {
    assert.throws(() => decodeBlock(Uint8Array.of(0x00, 0x01, 0x02, 0x03), layoutOf({ compression: 5 })), /old-style/);
  });

  test('a corrupt LZW code throws', () => {
    // 9-bit codes MSB-first: Clear (256), then 300 - not yet in the table.
    const bits = '100000000' + '100101100';
    const bytes = new Uint8Array(3);
    for (let i = 0; i < bits.length; i++) if (bits[i] === '1') bytes[i >> 3] |= 0x80 >> (i & 7);
    assert.throws(() => decodeBlock(bytes, layoutOf({ compression: 5 })), /LZW stream corrupt: code 300/);
  });

  test('random garbage never hangs or overruns: it decodes to the right length or throws an Error', () => {
    let seed = 12345;
    const random = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 16;
    };
    for (const compression of [1, 5, 8, 32773, 50000]) {
      for (let round = 0; round < 300; round++) {
        const bytes = new Uint8Array(random() % 200);
        for (let i = 0; i < bytes.length; i++) bytes[i] = random() & 0xff;
        if (compression === 5 && bytes.length > 0) bytes[0] |= 0x80; // not the old-style signature
        if (compression === 50000 && round % 2 === 0 && bytes.length >= 4) bytes.set([0x28, 0xb5, 0x2f, 0xfd]);
        const layout = layoutOf({
          compression,
          width: 1 + (random() % 9),
          height: 1 + (random() % 9),
          samples: 1 + (random() % 3),
          predictor: 1 + (random() % 2),
        });
        try {
          const out = decodeBlock(bytes, layout);
          assert.equal(out.length, layout.width * layout.height * layout.samples);
        } catch (err) {
          assert.ok(err instanceof Error && err.message.length > 0, `compression ${compression}: ${String(err)}`);
        }
      }
    }
  });
});

describe('decodeBlock codecs and predictors on hand-made data', () => {
  test('PackBits: the example of TIFF 6.0 Section 9', () => {
    const packed = Uint8Array.of(0xfe, 0xaa, 0x02, 0x80, 0x00, 0x2a, 0xfd, 0xaa, 0x03, 0x80, 0x00, 0x2a, 0x22, 0xf7, 0xaa);
    const unpacked = [0xaa, 0xaa, 0xaa, 0x80, 0x00, 0x2a, 0xaa, 0xaa, 0xaa, 0xaa, 0x80, 0x00, 0x2a, 0x22, ...new Array<number>(10).fill(0xaa)];
    const out = decodeBlock(packed, layoutOf({ compression: 32773, width: 24, height: 1 }));
    assert.deepEqual(Array.from(out), unpacked);
  });

  test('DEFLATE under code 32946 and code 8', () => {
    const data = new Uint16Array(6 * 5);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 16;
    const packed = deflateSync(new Uint8Array(data.buffer));
    for (const compression of [8, 32946]) {
      const out = decodeBlock(packed, layoutOf({ compression, width: 6, height: 5, bitsPerSample: 16 }));
      assert.deepEqual(out, data);
    }
  });

  test('data beyond the block (a last strip padded to full height) is ignored', () => {
    const rows = new Uint8Array(4 * 7);
    for (let i = 0; i < rows.length; i++) rows[i] = i * 3;
    const layout = layoutOf({ width: 4, height: 3 });
    const expected = Array.from(rows.subarray(0, 12));
    assert.deepEqual(Array.from(decodeBlock(rows, layout)), expected);
    assert.deepEqual(Array.from(decodeBlock(deflateSync(rows), { ...layout, compression: 8 })), expected);
    const packed = Uint8Array.of(rows.length - 1, ...rows);
    assert.deepEqual(Array.from(decodeBlock(packed, { ...layout, compression: 32773 })), expected);
  });

  test('big-endian 16-bit samples with horizontal differencing, chunky', () => {
    // Two pixels of 2 samples each: (1000, 65535), (1001, 0) -> differences
    // per sample: (1000, 65535), (1, 1) with wrap-around; stored MSB first.
    const bytes = Uint8Array.of(0x03, 0xe8, 0xff, 0xff, 0x00, 0x01, 0x00, 0x01);
    const out = decodeBlock(bytes, layoutOf({ width: 2, height: 1, samples: 2, bitsPerSample: 16, predictor: 2, littleEndian: false }));
    assert.deepEqual(Array.from(out), [1000, 65535, 1001, 0]);
  });

  test('floating point predictor with 2 samples per pixel (Adobe TN3)', () => {
    // Encode per TN3: byte planes most significant first, then byte-wise
    // differences with a stride of samples per pixel, across the row.
    const values = Float32Array.of(1.5, -2, 3.25, NaN, -0, 1e-40);
    const width = 3;
    const samples = 2;
    const rowSamples = width * samples;
    const le = new Uint8Array(values.buffer);
    const planes = new Uint8Array(rowSamples * 4);
    for (let i = 0; i < rowSamples; i++) for (let b = 0; b < 4; b++) planes[b * rowSamples + i] = le[i * 4 + 3 - b];
    const diffs = planes.slice();
    for (let i = diffs.length - 1; i >= samples; i--) diffs[i] = (planes[i] - planes[i - samples]) & 0xff;
    const out = decodeBlock(diffs, layoutOf({ width, height: 1, samples, bitsPerSample: 32, sampleFormat: 3, predictor: 3 }));
    assert.ok(out instanceof Float32Array);
    assert.deepEqual(new Uint8Array(out.buffer), le);
  });
});
