/**
 * A fuzz test of the TIFF/COG reader and the block decoders (issue 13): small real COGs,
 * written by GDAL from the shipped rasters (test/helpers/fuzz.ts: every codec, predictor,
 * sample type and layout the reader takes), are mutated (bit flips, cuts, tag values at the
 * limits of their types, counts, offsets past the end, IFD loops, duplicate tags, damaged
 * blocks), and each mutated file goes through the layer loader and a real render pool. A
 * case may end in a refusal of the layer with its reason, a tile, an empty tile, or a
 * TileError with its code (a bad_source one naming the file); never in a crash, a hang, a
 * render thread that dies, an error that is not a TileError, or a large allocation. The cases
 * run in a child process (test/helpers/fuzz-runner.ts) that reports each one before it starts,
 * so a crash or a hang names its case. Case i mutates seed i mod 10, with a PRNG of its own
 * drawn from the run's seed and i, so any case reruns alone.
 *
 *   FUZZ_SEED          the run's seed (default 13); printed with every finding
 *   FUZZ_CASES         how many cases (default 3000, 35 to 50 s on two cores)
 *   FUZZ_CASE          run this one case only, and keep its file
 *   FUZZ_CASE_MS       the limit of one case (default 8000 ms; a render's is 60% of it)
 *   FUZZ_MAX_RSS_MB    the limit of the runner's peak resident memory (default 1024)
 *   FUZZ_MAX_ALLOC_MB  how much its address space may grow in one case (default 512)
 *
 * A finding's file is kept under the OS temp dir (tilegraph-fuzz-findings/), named by seed
 * and case, with a note saying what was done to it and what went wrong. Defects found outside
 * the reader and the decoders are listed in KNOWN_OUTSIDE (test/helpers/fuzz.ts): counted and
 * printed, not failed.
 */
import assert from 'node:assert/strict';
import { fork, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test, type TestContext } from 'node:test';
import { TileError } from '../src/errors.js';
import { wgs84Bounds } from '../src/layers/layer.js';
import { Cog } from '../src/sources/cog.js';
import { Bytes, fuzzCase, KNOWN_OUTSIDE, makeSeeds, parseLayout, SEEDS, TYPE_SIZE, type FuzzManifest, type RunnerMessage } from './helpers/fuzz.js';
import { gdalMissing } from './helpers/gdal.js';
import { tileAt } from './helpers/layers.js';

const RUNNER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers/fuzz-runner.js');
const FINDINGS_DIR = path.join(os.tmpdir(), 'tilegraph-fuzz-findings');

const envInt = (name: string, fallback: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}=${v}: expected a whole number`);
  return n;
};
const SEED = envInt('FUZZ_SEED', 13) >>> 0;
const CASES = envInt('FUZZ_CASES', 3000);
const ONE = process.env.FUZZ_CASE === undefined || process.env.FUZZ_CASE === '' ? undefined : envInt('FUZZ_CASE', 0);
const CASE_MS = envInt('FUZZ_CASE_MS', 8000);
const OUTSIDE_CASES_MS = 60_000;

interface Finding {
  /** The case index, or undefined for the checks of the unmutated seeds before and after the cases. */
  i?: number;
  seed?: string;
  description?: string;
  problems: string[];
  /** Where the offending file was kept. */
  kept?: string;
}

interface RunReport {
  findings: Finding[];
  outcomes: Map<string, number>;
  /** Cases that met a KNOWN_OUTSIDE defect, by its fix. */
  known: Map<string, number[]>;
  cases: number;
  slowest: { i: number; ms: number };
}

const rerun = (i: number) => `FUZZ_SEED=${SEED} FUZZ_CASE=${i} node --test dist/test/fuzz.test.js`;

/** Keeps a case's file and a note next to it under FINDINGS_DIR; the kept path. */
function keep(f: Finding, file: string | undefined): string | undefined {
  if (!file || f.i === undefined) return undefined;
  mkdirSync(FINDINGS_DIR, { recursive: true });
  const kept = path.join(FINDINGS_DIR, `seed${SEED}-case${f.i}-${f.seed}.tif`);
  try {
    copyFileSync(file, kept);
  } catch {
    return undefined;
  }
  writeFileSync(`${kept}.txt`, `seed ${SEED}, case ${f.i}, from ${f.seed}\nmutation: ${f.description}\n${f.problems.join('\n')}\nrerun: ${rerun(f.i)}\n`);
  rmSync(file, { force: true });
  return kept;
}

function formatFinding(f: Finding): string {
  if (f.i === undefined) return f.problems.join('\n');
  return [
    `seed ${SEED} case ${f.i} (${f.seed}): ${f.description}`,
    ...f.problems.map((p) => `  - ${p}`),
    `  file: ${f.kept ?? '(not kept)'}`,
    `  rerun: ${rerun(f.i)}`,
  ].join('\n');
}

/** Runs cases [start, end) in child processes, a fresh one after any crash, hang or memory peak. */
async function runCases(manifestFile: string, start: number, end: number): Promise<RunReport> {
  const report: RunReport = { findings: [], outcomes: new Map(), known: new Map(), cases: 0, slowest: { i: -1, ms: 0 } };
  let next = start;
  let finalSeen = false;
  while (next < end || !finalSeen) {
    const from = next;
    const r = await new Promise<{ resumeAt: number; final: boolean }>((resolve) => {
      const child = fork(RUNNER, [manifestFile, String(from), String(end)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      let current: Extract<RunnerMessage, { t: 'start' }> | undefined;
      let timer: NodeJS.Timeout | undefined;
      let hung = false;
      let fatal = '';
      let resumeAt = from;
      let final = false;
      // Silence is a hang: a case has CASE_MS, the runner's own checks of the seeds before and
      // after the cases (two dozen tiles) a minute.
      const watch = (ms: number) => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          hung = true;
          child.kill('SIGKILL');
        }, ms);
      };
      watch(OUTSIDE_CASES_MS);
      child.on('message', (msg: RunnerMessage) => {
        if (msg.t === 'start') {
          current = msg;
          watch(CASE_MS);
        } else if (msg.t === 'end') {
          watch(OUTSIDE_CASES_MS);
          report.cases++;
          report.outcomes.set(msg.outcome, (report.outcomes.get(msg.outcome) ?? 0) + 1);
          for (const k of KNOWN_OUTSIDE.filter((k) => msg.known.some((p) => k.pattern.test(p))))
            report.known.set(k.fix, [...(report.known.get(k.fix) ?? []), msg.i]);
          if (msg.ms > report.slowest.ms) report.slowest = { i: msg.i, ms: Math.round(msg.ms) };
          if (msg.problems.length && current) {
            const f: Finding = { i: msg.i, seed: current.seed, description: current.description, problems: msg.problems };
            f.kept = keep(f, current.file);
            report.findings.push(f);
          }
          current = undefined;
          resumeAt = msg.i + 1;
        } else if (msg.t === 'final') {
          final = true;
          if (msg.problems.length) report.findings.push({ problems: msg.problems });
        } else if (msg.t === 'fatal') {
          fatal = msg.text;
        }
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (current) {
          const what = hung
            ? `hang: no answer within ${CASE_MS} ms`
            : `the process died (exit ${code}, signal ${signal})${fatal ? `: ${fatal}` : ''}${stderr ? `\n    stderr: ${stderr.trim().split('\n').slice(-8).join('\n    ')}` : ''}`;
          const f: Finding = { i: current.i, seed: current.seed, description: current.description, problems: [what] };
          f.kept = keep(f, current.file);
          report.findings.push(f);
          report.cases++;
          report.outcomes.set(hung ? 'HANG' : 'CRASH', (report.outcomes.get(hung ? 'HANG' : 'CRASH') ?? 0) + 1);
          resumeAt = current.i + 1;
        } else if (!final && (code !== 0 || resumeAt === from)) {
          const why = hung ? `no answer within ${OUTSIDE_CASES_MS} ms` : `exit ${code}, signal ${signal}: ${fatal || stderr.trim()}`;
          report.findings.push({ problems: [`the runner stopped outside a case (${why})`] });
          final = true;
          resumeAt = end;
        }
        resolve({ resumeAt, final });
      });
    });
    next = r.resumeAt;
    finalSeen = r.final;
  }
  return report;
}

/** Tiles inside a seed's data: one a level finer than its pixels, one at them, one two levels coarser (an overview). */
async function tilesOf(file: string): Promise<{ z: number; x: number; y: number }[]> {
  const cog = await Cog.open(file);
  try {
    const [w, s, e, n] = wgs84Bounds(cog.meta);
    const lon = (w + e) / 2,
      lat = (s + n) / 2;
    const metres = ((e - w) * 111320 * Math.cos((lat * Math.PI) / 180)) / cog.meta.width;
    const native = Math.round(Math.log2((156543.03 * Math.cos((lat * Math.PI) / 180)) / metres));
    return [native + 1, native, native - 2].map((z) => tileAt(lon, lat, z));
  } finally {
    await cog.close();
  }
}

const skip = gdalMissing(['gdal_translate', 'gdalbuildvrt', 'gdaladdo']);

describe('fuzz: mutated COGs through the loader and the render pool (issue 13)', { skip }, () => {
  let work: string;
  let manifestFile: string;
  let manifest: FuzzManifest;

  before(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'tilegraph-fuzz-'));
    const seedsDir = path.join(work, 'seeds');
    const layersDir = path.join(work, 'layers');
    mkdirSync(seedsDir);
    mkdirSync(path.join(layersDir, 'data'), { recursive: true });
    const files = makeSeeds(seedsDir);
    manifest = {
      seed: SEED,
      layersDir,
      renderTimeoutMs: Math.max(1000, Math.floor(CASE_MS * 0.6)),
      maxRssMb: envInt('FUZZ_MAX_RSS_MB', 1024),
      maxAllocMb: envInt('FUZZ_MAX_ALLOC_MB', 512),
      seeds: await Promise.all(
        SEEDS.map(async (s) => ({ name: s.name, file: files.get(s.name)!, pipeline: s.pipeline, tiles: await tilesOf(files.get(s.name)!) })),
      ),
    };
    manifestFile = path.join(work, 'manifest.json');
    writeFileSync(manifestFile, JSON.stringify(manifest));
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the seeds cover every codec, predictor and layout the reader takes', () => {
    const seen = { compression: new Set<number>(), predictor: new Set<number>(), bits: new Set<number>() };
    let mask = false,
      big = false,
      bigEndian = false,
      planar = false,
      strips = false;
    for (const s of manifest.seeds) {
      const bytes = new Uint8Array(readFileSync(s.file));
      const layout = parseLayout(bytes);
      big ||= layout.big;
      bigEndian ||= !layout.le;
      for (const ifd of layout.ifds) {
        const tag = (t: number) => ifd.entries.find((e) => e.tag === t);
        const value = (t: number, fallback: number) => {
          const e = tag(t);
          if (!e) return fallback;
          const d = new DataView(bytes.buffer, bytes.byteOffset + e.valuePos);
          return e.type === 3 ? d.getUint16(0, layout.le) : d.getUint32(0, layout.le);
        };
        seen.compression.add(value(259, 1));
        seen.predictor.add(value(317, 1));
        seen.bits.add(value(258, 1));
        mask ||= (value(254, 0) & 4) !== 0;
        planar ||= value(284, 1) === 2;
        strips ||= !tag(322);
      }
    }
    assert.deepEqual(
      [...seen.compression].sort((a, b) => a - b),
      [1, 5, 8, 32773, 50000],
    );
    assert.deepEqual([...seen.predictor].sort(), [1, 2, 3]);
    assert.deepEqual(
      [...seen.bits].sort((a, b) => a - b),
      [1, 8, 16, 32, 64],
    );
    assert.deepEqual({ mask, big, bigEndian, planar, strips }, { mask: true, big: true, bigEndian: true, planar: true, strips: true });
  });

  test(
    ONE === undefined ? `${CASES} mutated files: a tile, an empty tile, a refusal or a TileError, never a crash or a hang` : `case ${ONE}`,
    async (t: TestContext) => {
      const start = ONE ?? 0;
      const end = ONE === undefined ? CASES : ONE + 1;
      if (ONE !== undefined) {
        // The case's file, for a look at it, whatever its outcome.
        const seeds = manifest.seeds.map((s) => {
          const bytes = new Uint8Array(readFileSync(s.file));
          return { name: s.name, bytes, layout: parseLayout(bytes) };
        });
        const c = fuzzCase(manifest, seeds, ONE);
        mkdirSync(FINDINGS_DIR, { recursive: true });
        const file = path.join(FINDINGS_DIR, `seed${SEED}-case${ONE}-${c.seed}.tif`);
        writeFileSync(file, c.bytes);
        t.diagnostic(`case ${ONE} of seed ${SEED}: ${c.seed}: ${c.description}; the file: ${file}`);
      }
      const t0 = performance.now();
      const report = await runCases(manifestFile, start, end);
      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      const outcomes = [...report.outcomes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`);
      t.diagnostic(
        `seed ${SEED} (FUZZ_SEED), cases ${start}..${end - 1} (FUZZ_CASES ${CASES}): ${report.cases} in ${seconds} s; slowest case ${report.slowest.i} (${report.slowest.ms} ms)`,
      );
      t.diagnostic(`outcomes: ${outcomes.join(', ')}`);
      for (const [fix, cases] of report.known) {
        const listed = cases.slice(0, 20).join(', ') + (cases.length > 20 ? ` and ${cases.length - 20} more` : '');
        t.diagnostic(`known, to fix elsewhere (${fix}): ${cases.length} case(s): ${listed}`);
      }
      for (const f of report.findings) t.diagnostic(formatFinding(f));
      assert.equal(report.cases, end - start, 'every case ran');
      assert.equal(report.findings.length, 0, `${report.findings.length} finding(s):\n${report.findings.map(formatFinding).join('\n')}`);
    },
  );
});

/**
 * Runs `body` (the body of an async function of `file`, with Cog and decodeBlock in scope) in a
 * fresh Node process: a hang there ends at `timeoutMs`, and the growth of its address space
 * (VmPeak) shows what it allocated, whatever this process did before.
 */
function probe(
  file: string,
  body: string,
  timeoutMs = 20_000,
): { result: { value?: unknown; error?: string; code?: string; type?: string }; growthMb: number; residentMb: number } {
  const modules = { cog: new URL('../src/sources/cog.js', import.meta.url).href, block: new URL('../src/sources/codecs/block.js', import.meta.url).href };
  const script = `
    import { readFileSync } from 'node:fs';
    const { Cog } = await import(${JSON.stringify(modules.cog)});
    const { decodeBlock } = await import(${JSON.stringify(modules.block)});
    const peak = () => Number(/^VmPeak:\\s+(\\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
    const before = peak();
    const rssBefore = process.resourceUsage().maxRSS / 1024;
    let result;
    try {
      result = { value: await (async (file) => { ${body} })(process.argv[1]) };
    } catch (err) {
      result = { error: err.message, code: err.code, type: err.constructor.name };
    }
    process.stdout.write(JSON.stringify({ result, growthMb: peak() - before, residentMb: process.resourceUsage().maxRSS / 1024 - rssBefore }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, file], { encoding: 'utf8', timeout: timeoutMs });
  assert.ok(!r.error, `the probe did not finish in ${timeoutMs} ms (${r.error?.message})`);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ReturnType<typeof probe>;
}

/** A seed with fields of its IFDs changed as a damaged file would have them; its path. */
interface Edit {
  /** The IFD's position in the chain. */
  ifd: number;
  tag: number;
  /** A new value for element `index` (default 0), in the entry's own type. */
  value?: number;
  index?: number;
  /** A new field type for the entry. */
  type?: number;
}

describe('fuzz findings, one mutation each (issue 13)', { skip }, () => {
  let work: string;
  let seeds: Map<string, string>;
  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'tilegraph-fuzz-found-'));
    seeds = makeSeeds(work);
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  let n = 0;
  const damaged = (seed: string, edits: Edit[], truncate?: number): string => {
    const bytes = new Uint8Array(readFileSync(seeds.get(seed)!));
    const layout = parseLayout(bytes);
    const b = new Bytes(bytes, layout.le);
    for (const e of edits) {
      const entry = layout.ifds[e.ifd]!.entries.find((x) => x.tag === e.tag);
      assert.ok(entry, `${seed}: IFD ${e.ifd} has tag ${e.tag}`);
      if (e.type !== undefined) b.set(entry.pos + 2, 2, BigInt(e.type));
      if (e.value !== undefined) {
        const size = TYPE_SIZE[entry.type]!;
        b.set(entry.valuePos + (e.index ?? 0) * size, size, BigInt(e.value));
      }
    }
    const file = path.join(work, `damaged-${++n}.tif`);
    writeFileSync(file, truncate === undefined ? bytes : bytes.subarray(0, truncate));
    return file;
  };

  test('a GeoKeyDirectory read as LONG8 claims 10^18 keys: refused at open, not a loop in the loader', () => {
    const file = damaged('f32-deflate-p3', [{ ifd: 0, tag: 34735, type: 16 }]);
    const { result } = probe(file, 'await (await Cog.open(file)).close();');
    assert.equal(result.code, 'bad_source');
    assert.match(result.error!, /: GeoKeyDirectory \(tag 34735\) holds \d+; its values are SHORTs$/);
  });

  test('an image size stored as a FLOAT or a DOUBLE (1.8e-43, Infinity) is refused at open, not a RangeError in a render thread', async () => {
    for (const [tag, type, name, shown] of [
      [256, 11, 'ImageWidth', '1\\.79\\d*e-43'],
      [257, 12, 'ImageLength', '\\d\\.\\d+e-3\\d\\d'],
    ] as const) {
      const file = damaged('u16x2-planar-zstd-p2-bigtiff', [{ ifd: 0, tag, type }]);
      await assert.rejects(Cog.open(file), (err: TileError) => {
        assert.equal(err.code, 'bad_source');
        assert.match(err.message, new RegExp(`^${file.replace(/[.]/g, '\\.')}: image 0: ${name} ${shown} is not a whole number of at least 1$`));
        return true;
      });
    }
  });

  test('a sparse block of an unsupported sample type is refused naming the file and the block', async () => {
    // The overview says 12 bits a sample, and its first block is sparse (byte count 0).
    const file = damaged('u16-lzw', [
      { ifd: 1, tag: 258, value: 12 },
      { ifd: 1, tag: 325, value: 0 },
    ]);
    const cog = await Cog.open(file);
    try {
      await assert.rejects(cog.readBlock(1, 0, 0, 0), (err: TileError) => {
        assert.equal(err.code, 'bad_source');
        assert.equal(err.message, `${file}: block 0 of image 1 (sparse): unsupported TIFF sample type: 12-bit, sample format 1`);
        return true;
      });
    } finally {
      await cog.close();
    }
  });

  test('a BigTIFF cut to 15 bytes is refused as a source, not an internal error', async () => {
    const file = damaged('u16x2-planar-zstd-p2-bigtiff', [], 15);
    await assert.rejects(Cog.open(file), (err: TileError) => err instanceof TileError && /: 15 bytes is too short for a BigTIFF header$/.test(err.message));
  });

  test('a block whose TileWidth and TileLength say 32768 allocates what its bytes can fill, not 1 GiB', () => {
    for (const seed of ['u8-packbits-mask', 'i16-deflate-p2', 'u16-lzw', 'u8-zstd-palette']) {
      const file = damaged(seed, [
        { ifd: 0, tag: 322, value: 32768 },
        { ifd: 0, tag: 323, value: 32768 },
      ]);
      const { result, growthMb } = probe(file, 'const cog = await Cog.open(file); return (await cog.readBlock(0, 0, 0, 0)).length;');
      assert.equal(result.code, 'bad_source', `${seed}: ${JSON.stringify(result)}`);
      assert.ok(growthMb < 64, `${seed}: the address space grew by ${Math.round(growthMb)} MiB (${result.error})`);
    }
  });

  test('a sparse block of 32768² Float32 samples is refused before it is allocated and filled with nodata', () => {
    const file = damaged('f32-deflate-p3', [
      { ifd: 0, tag: 322, value: 32768 },
      { ifd: 0, tag: 323, value: 32768 },
      { ifd: 0, tag: 325, value: 0 },
    ]);
    const { result, growthMb } = probe(file, 'const cog = await Cog.open(file); return (await cog.readBlock(0, 0, 0, 0)).length;');
    assert.equal(result.code, 'bad_source', JSON.stringify(result));
    assert.match(
      result.error!,
      /: block 0 of image 0 \(sparse\): TIFF block of 32768x32768x1 32-bit samples is too large \(4294967296 bytes; at most 268435456\)$/,
    );
    assert.ok(growthMb < 64, `the address space grew by ${Math.round(growthMb)} MiB`);
  });

  test('a sparse block of nodata 0 takes no resident memory, however large its TileWidth and TileLength say it is', () => {
    // 16384² UInt8 samples: 256 MiB, the most a block may hold; the seed's nodata is 0.
    const file = damaged('u8-packbits-mask', [
      { ifd: 0, tag: 322, value: 16384 },
      { ifd: 0, tag: 323, value: 16384 },
      { ifd: 0, tag: 325, value: 0 },
    ]);
    const { result, residentMb } = probe(
      file,
      'const cog = await Cog.open(file); const s = await cog.readBlock(0, 0, 0, 0); return [cog.meta.nodata, s.length, s[12345]];',
    );
    assert.deepEqual(result.value, [0, 16384 * 16384, 0]);
    assert.ok(residentMb < 64, `resident memory grew by ${Math.round(residentMb)} MiB`);
  });

  test('a mask block of 65535² pixels is refused before it is unpacked', async () => {
    const mask = 1; // u8-packbits-mask: the image, its mask, the two overviews, then their masks
    const file = damaged('u8-packbits-mask', [
      { ifd: mask, tag: 322, value: 65535 },
      { ifd: mask, tag: 323, value: 65535 },
    ]);
    const cog = await Cog.open(file);
    try {
      assert.ok(cog.meta.levels[0]!.mask, 'the mask is found');
      await assert.rejects(cog.readMaskBlock(0, 0, 0)!, /: mask block 0 of image \d+ is 65535x65535 pixels, more than 268435456 unpacked$/);
    } finally {
      await cog.close();
    }
  });
});

/** A ZSTD frame (single segment, a one-byte content size) of one compressed block. */
function zstdFrame(contentSize: number, block: number[]): Uint8Array {
  const header = (block.length << 3) | (2 << 1) | 1;
  return Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x20, contentSize, header & 0xff, (header >> 8) & 0xff, header >> 16, ...block);
}

describe('ZSTD streams that held a render thread (issue 13)', () => {
  const layout = (width: number) => ({ compression: 50000, predictor: 1, width, height: 1, samples: 1, bitsPerSample: 8, sampleFormat: 1, littleEndian: true });

  test('Huffman weights whose FSE states read no bits end at 255 weights', () => {
    // Literals: compressed, one stream; the tree description is FSE-compressed in 4 bytes: accuracy
    // log 5 with one symbol of probability 32 (every state reads 0 bits), then a bitstream.
    // Header: type 2, size format 0, 16 literals, 7 bytes (the description's 5, and a stream of 2).
    const block = [0x02, 0xc1, 0x01, 4, 0xf0, 0x03, 0x00, 0x80, 0xff, 0x01, 0x00];
    const frame = Buffer.from(zstdFrame(16, block)).toString('base64');
    const { result } = probe('', `return decodeBlock(Buffer.from('${frame}', 'base64'), ${JSON.stringify(layout(16))}).length;`, 10_000);
    assert.equal(result.code, 'bad_source');
    assert.equal(result.error, 'ZSTD decode failed: more than 255 Huffman weights');
  });

  test('98303 sequences of 65539-byte matches in a 21-byte frame end at the bitstream, not after minutes', () => {
    // No literals; 0xffff + 0x7f00 sequences; every table RLE: literal length 0, offset code 1, match length code 52.
    const frame = Buffer.from(zstdFrame(255, [0x00, 0xff, 0xff, 0xff, 0x54, 0x00, 0x01, 52, 0x80])).toString('base64');
    const { result } = probe('', `return decodeBlock(Buffer.from('${frame}', 'base64'), ${JSON.stringify(layout(255))}).length;`, 10_000);
    assert.equal(result.code, 'bad_source');
    assert.match(result.error!, /^ZSTD decode failed: /);
  });
});
