/**
 * `tilegraph freeze` and `tilegraph verify` as an operator runs them, child processes on the
 * shipped DEM: the archive read by GNU tar (an independent reader), its source hash against
 * `sha256sum`, its sample tiles against the bytes a server process serves; verify passes on
 * the untouched layer and on the archive repacked by GNU tar, and fails, naming the change,
 * after one byte of the COG changes inside a block, after the colour map is edited, without
 * the layer file; a software difference with the same tiles passes and is reported; broken
 * archives are refused with a message, never a stack trace.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fromFile } from 'geotiff';
import { CLI, ROOT } from './helpers/layers.js';
import { makeLayersDir, type TempLayers } from './helpers/http.js';
import { startServerProcess } from './helpers/processes.js';

const COG = 'srtm_jasper_ab_100m.tif';
const REF = `./data/${COG}`;

interface Manifest {
  format: string;
  layer: { name: string; file: string; configHash: string; config: { minzoom: number; maxzoom: number } };
  sources: { name: string; kind: string; ref: string; location: string; size: number; sha256: string }[];
  dependencies: { tilegraph: string; node: string; sharp: string; libvips: string; packageLock: string | null };
  sample: { format: string; tiles: { z: number; x: number; y: number; sha256?: string; bytes?: number; empty?: true }[] };
}

function run(args: string[], env: Record<string, string>, cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    env: { ...process.env, LOG_LEVEL: 'silent', WORKERS: '2', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `sha256sum FILE`: the system's tool, not Node's crypto. */
function sha256sum(file: string): string {
  return execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]!;
}

/** GNU tar, as an operator would read the archive. */
function tar(args: string[], cwd?: string): string {
  return execFileSync('tar', args, { cwd, encoding: 'utf8' });
}

/** The offset and byte count of the last block (in file order) of the COG's full-resolution image, as geotiff.js lists them. */
async function lastBlock(file: string): Promise<{ offset: number; count: number }> {
  const tiff = await fromFile(file);
  try {
    const fd = (await tiff.getImage(0)).fileDirectory;
    const offsets = Array.from((await fd.loadValue('TileOffsets')) ?? [], Number);
    const counts = Array.from((await fd.loadValue('TileByteCounts')) ?? [], Number);
    const i = offsets.indexOf(Math.max(...offsets));
    return { offset: offsets[i]!, count: counts[i]! };
  } finally {
    tiff.close();
  }
}

/** An archive of the files of `dir` written by GNU tar (pax format, entries `./name`). */
function repack(dir: string, out: string): string {
  tar(['--format=pax', '-cf', out, '-C', dir, '.']);
  return out;
}

/** A refusal: exit 1, one line on stderr matching `message`, and no stack trace. */
function assertRefused(r: { status: number | null; stdout: string; stderr: string }, message: RegExp): void {
  assert.equal(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
}

describe('tilegraph freeze and verify', () => {
  let tmp: TempLayers;
  let env: Record<string, string>;
  let archive: string;
  let manifest: Manifest;
  let cog: string;
  let layerFile: string;

  before(async () => {
    tmp = await makeLayersDir(['dem-relief']);
    env = { LAYERS_DIR: tmp.dir };
    archive = path.join(tmp.root, 'dem-relief.tar');
    cog = path.join(tmp.dir, 'data', COG);
    layerFile = path.join(tmp.dir, 'dem-relief.yaml');
  });
  after(async () => {
    await tmp?.remove();
  });

  test('freeze writes a small tar that GNU tar lists and reads: the manifest and the layer file as written', () => {
    const r = run(['freeze', 'dem-relief', '-o', archive], env, tmp.root);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^froze dem-relief into /);
    assert.deepEqual(tar(['-tf', archive]).trim().split('\n').sort(), ['dem-relief.yaml', 'manifest.json']);
    assert.ok(readFileSync(archive).length < 64 * 1024, 'the sources are not in the archive');
    assert.equal(tar(['-xOf', archive, 'dem-relief.yaml']), readFileSync(layerFile, 'utf8'));
    manifest = JSON.parse(tar(['-xOf', archive, 'manifest.json'])) as Manifest;
    assert.equal(manifest.format, 'tilegraph-freeze/1');
    assert.equal(manifest.layer.name, 'dem-relief');
    assert.equal(manifest.layer.file, 'dem-relief.yaml');
  });

  test('the manifest holds the source SHA-256 of sha256sum, the lock file and config hashes, the versions', () => {
    assert.ok(manifest, 'frozen by the test before');
    assert.equal(manifest.sources.length, 1);
    const [src] = manifest.sources;
    assert.deepEqual(
      { name: src!.name, kind: src!.kind, ref: src!.ref, location: src!.location, size: src!.size },
      { name: 'dem', kind: 'file', ref: REF, location: `data/${COG}`, size: readFileSync(cog).length },
    );
    assert.equal(src!.sha256, sha256sum(cog));
    assert.equal(manifest.dependencies.packageLock, sha256sum(path.join(ROOT, 'package-lock.json')));
    assert.equal(manifest.dependencies.node, process.version);
    assert.equal(manifest.dependencies.tilegraph, (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    assert.match(manifest.dependencies.sharp, /^\d+\.\d+\.\d+/);
    assert.match(manifest.dependencies.libvips, /^\d+\.\d+\.\d+/);
    // `tilegraph layers` prints the first 12 hex digits of the config hash.
    const layers = run(['layers', tmp.dir], env, tmp.root);
    assert.match(layers.stdout, new RegExp(`^ok\\s+dem-relief\\s+${manifest.layer.configHash.slice(0, 12)}\\s`, 'm'));
  });

  test('the sample: 16-32 distinct tiles over every zoom the layer serves, each the SHA-256 of the PNG a server serves', async () => {
    const tiles = manifest.sample.tiles;
    assert.equal(manifest.sample.format, 'png');
    assert.ok(tiles.length >= 16 && tiles.length <= 32, `${tiles.length} tiles`);
    assert.equal(new Set(tiles.map((t) => `${t.z}/${t.x}/${t.y}`)).size, tiles.length);
    const { minzoom, maxzoom } = manifest.layer.config;
    assert.deepEqual(
      [...new Set(tiles.map((t) => t.z))].sort((a, b) => a - b),
      Array.from({ length: maxzoom - minzoom + 1 }, (_, i) => minzoom + i),
    );
    assert.ok(tiles.filter((t) => t.sha256).length >= tiles.length / 2, 'most sample tiles lie on the data');
    const server = await startServerProcess(tmp.dir);
    try {
      for (const t of tiles) {
        const res = await fetch(`${server.url}/tiles/dem-relief/${t.z}/${t.x}/${t.y}.png`);
        const body = Buffer.from(await res.arrayBuffer());
        if (t.empty) assert.equal(res.status, 204, `${t.z}/${t.x}/${t.y}`);
        else {
          assert.equal(res.status, 200, `${t.z}/${t.x}/${t.y}`);
          assert.equal(createHash('sha256').update(body).digest('hex'), t.sha256, `${t.z}/${t.x}/${t.y}`);
          assert.equal(body.length, t.bytes);
        }
      }
    } finally {
      await server.stop();
    }
  });

  test('verify passes on the untouched layer, and on the archive repacked by GNU tar', () => {
    const r = run(['verify', archive], env, tmp.root);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`^verified: .* all ${manifest.sample.tiles.length} sample tiles are the same`, 'm'));
    assert.doesNotMatch(r.stdout, /^(FAILED|changed)/m);
    const dir = path.join(tmp.root, 'unpacked');
    mkdirSync(dir, { recursive: true });
    tar(['-xf', archive, '-C', dir]);
    const again = run(['verify', repack(dir, path.join(tmp.root, 'repacked.tar'))], env, tmp.root);
    assert.equal(again.status, 0, again.stderr + again.stdout);
  });

  test('other software with the same tiles passes and says what changed; a tile hash that differs fails naming the tile', () => {
    const dir = path.join(tmp.root, 'other-node');
    mkdirSync(dir, { recursive: true });
    tar(['-xf', archive, '-C', dir]);
    const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    m.dependencies.node = 'v18.0.0';
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
    const r = run(['verify', repack(dir, path.join(tmp.root, 'other-node.tar'))], env, tmp.root);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`^changed +Node was v18\\.0\\.0, now ${process.version.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(r.stdout, /^verified: .*with other software/m);

    const t = m.sample.tiles.find((x) => x.sha256)!;
    const frozen = t.sha256!;
    t.sha256 = '0'.repeat(64);
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m));
    const bad = run(['verify', repack(dir, path.join(tmp.root, 'other-tile.tar'))], env, tmp.root);
    assert.equal(bad.status, 1, bad.stderr + bad.stdout);
    assert.match(bad.stdout, new RegExp(`^FAILED +tile ${t.z}/${t.x}/${t.y}: was sha256 0{64} \\(\\d+ bytes\\), now sha256 ${frozen} `, 'm'));
    assert.match(bad.stdout, /the inputs are the frozen ones: the tiles differ with the software named above/);
    assert.match(bad.stdout, /^not verified: 1 of \d+ sample tiles differ$/m);
  });

  test('one byte of the COG changed inside its last block: verify fails naming the source and both hashes', async () => {
    const original = readFileSync(cog);
    const { offset, count } = await lastBlock(cog);
    assert.ok(offset + count <= original.length && count > 16);
    const damaged = Buffer.from(original);
    damaged[offset + Math.floor(count / 2)] ^= 0xff;
    writeFileSync(cog, damaged);
    try {
      const r = run(['verify', archive], env, tmp.root);
      assert.equal(r.status, 1, r.stderr + r.stdout);
      const now = sha256sum(cog);
      assert.match(
        r.stdout,
        new RegExp(`^FAILED +source 'dem' \\(\\./data/${COG.replace(/\./g, '\\.')}\\) changed: sha256 was ${manifest.sources[0]!.sha256}, now ${now} `, 'm'),
      );
      assert.match(r.stdout, /^not verified: 1 input\(s\) changed/m);
      assert.doesNotMatch(r.stdout, /config changed/);
    } finally {
      writeFileSync(cog, original);
    }
  });

  test('an edited colour map: verify fails naming the config value and the tiles that differ', () => {
    const text = readFileSync(layerFile, 'utf8');
    assert.match(text, /\[950, "#2b6b3a"\]/);
    writeFileSync(layerFile, text.replace('[950, "#2b6b3a"]', '[950, "#000000"]'));
    try {
      const r = run(['verify', archive], env, tmp.root);
      assert.equal(r.status, 1, r.stderr + r.stdout);
      assert.match(r.stdout, new RegExp(`^FAILED +config changed: sha256 was ${manifest.layer.configHash}, now [0-9a-f]{64}$`, 'm'));
      assert.match(r.stdout, /^ +pipeline\[1\]\.colormap\.stops\[0\]\[1\]: was "#2b6b3a", now "#000000"$/m);
      assert.match(r.stdout, /^FAILED +tile \d+\/\d+\/\d+: was sha256 [0-9a-f]{64} \(\d+ bytes\), now sha256 [0-9a-f]{64} /m);
      assert.doesNotMatch(r.stdout, /source 'dem'/);
    } finally {
      writeFileSync(layerFile, text);
    }
  });

  test('a missing or refused layer file: exit 1 with the reason', () => {
    const text = readFileSync(layerFile, 'utf8');
    renameSync(layerFile, `${layerFile}.away`);
    try {
      const r = run(['verify', archive], env, tmp.root);
      assert.equal(r.status, 1, r.stderr + r.stdout);
      assert.match(r.stdout, /^FAILED +layer 'dem-relief' cannot be loaded from .*: no layer file for 'dem-relief'/m);
      assert.match(r.stdout, /^not verified: the layer cannot be loaded/m);
      writeFileSync(layerFile, 'title: no sources\n');
      const refused = run(['verify', archive], env, tmp.root);
      assert.equal(refused.status, 1, refused.stderr + refused.stdout);
      assert.match(refused.stdout, /^FAILED +layer 'dem-relief' cannot be loaded from .*: dem-relief\.yaml: .*sources/m);
    } finally {
      renameSync(`${layerFile}.away`, layerFile);
    }
    assert.equal(readFileSync(layerFile, 'utf8'), text);
  });

  test('-o onto what is not a regular file (a FIFO, a directory) is refused, and it is left as it was', () => {
    const fifo = path.join(tmp.root, 'archive.fifo');
    execFileSync('mkfifo', [fifo]);
    const dir = path.join(tmp.root, 'archive.dir');
    mkdirSync(dir);
    for (const out of [fifo, dir]) {
      assertRefused(run(['freeze', 'dem-relief', '-o', out], env, tmp.root), new RegExp(`-o ${out}: exists and is not a regular file`));
    }
    assert.ok(lstatSync(fifo).isFIFO(), 'still a FIFO');
    assert.ok(lstatSync(dir).isDirectory(), 'still a directory');
  });

  test('-o in a folder that does not exist is refused naming it, and nothing is written', () => {
    const out = path.join(tmp.root, 'no-such-folder', 'dem-relief.tar');
    assertRefused(run(['freeze', 'dem-relief', '-o', out], env, tmp.root), new RegExp(`-o ${out}: cannot write the archive \\(ENOENT\\)`));
    assert.ok(!existsSync(path.dirname(out)));
  });

  test('broken archives are refused with a message, never a crash', () => {
    const bytes = readFileSync(archive);
    const write = (name: string, data: Uint8Array | string) => {
      const file = path.join(tmp.root, name);
      writeFileSync(file, data);
      return file;
    };
    const verify = (file: string) => run(['verify', file], env, tmp.root);
    const size = Number(/^\S+ \S+ +(\d+) .* manifest\.json$/m.exec(tar(['-tvf', archive]))![1]);

    assertRefused(
      verify(write('cut-in-manifest.tar', bytes.subarray(0, 512 + 100))),
      /: truncated: 'manifest\.json' needs \d+ bytes from byte 512, the file holds 100$/m,
    );
    const afterManifest = 512 + Math.ceil(size / 512) * 512;
    assertRefused(
      verify(write('cut-after-manifest.tar', bytes.subarray(0, afterManifest))),
      /: truncated: .*after 'manifest\.json', without the end-of-archive blocks$/m,
    );
    assertRefused(verify(write('empty.tar', '')), /: the file is empty, not a tar archive$/m);
    assertRefused(verify(write('text.tar', 'hello\n')), /: not a tar archive \(6 bytes/m);
    assertRefused(verify(cog), /: not a tar archive \(its first 512 bytes are not a tar header\)$/m);
    const damaged = Buffer.from(bytes);
    damaged[afterManifest + 10] ^= 0x01; // a byte of the second header's name
    assertRefused(verify(write('damaged-header.tar', damaged)), new RegExp(`: damaged: the header at byte ${afterManifest} fails its checksum$`, 'm'));
    assertRefused(verify(path.join(tmp.root, 'no-such.tar')), /no-such\.tar: cannot read the file \(ENOENT\)$/m);

    const dir = path.join(tmp.root, 'bad-manifest');
    mkdirSync(dir, { recursive: true });
    tar(['-xf', archive, '-C', dir]);
    writeFileSync(path.join(dir, 'manifest.json'), '{"format": "tilegraph-freeze/1",');
    assertRefused(verify(repack(dir, path.join(tmp.root, 'not-json.tar'))), /: manifest\.json is not JSON \(/m);
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ format: 'tilegraph-freeze/1', layer: { name: '../etc' } }));
    assertRefused(
      verify(repack(dir, path.join(tmp.root, 'not-manifest.tar'))),
      /: manifest\.json is not a manifest of tilegraph freeze: .*layer\.name: not a layer name/m,
    );
    const other = path.join(tmp.root, 'other-files');
    mkdirSync(other, { recursive: true });
    writeFileSync(path.join(other, 'notes.txt'), 'not a freeze\n');
    assertRefused(verify(repack(other, path.join(tmp.root, 'other.tar'))), /: the archive holds no manifest\.json/m);
  });
});
