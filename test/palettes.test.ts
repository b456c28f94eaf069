import { test } from 'node:test';
import assert from 'node:assert/strict';

import { PALETTE_NAMES, paletteLut } from '../src/ops/palettes/lut.js';

type Rgb = readonly [number, number, number];

function entry(lut: Uint8Array, i: number): Rgb {
  return [lut[4 * i]!, lut[4 * i + 1]!, lut[4 * i + 2]!];
}

function hex(h: string): Rgb {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(h);
  if (!m) throw new Error(`bad hex ${h}`);
  return [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
}

/**
 * Published colours are rounded (`to_hex`, colorbrewer2.org) while matplotlib's
 * `bytes=True` truncates, so a LUT byte may sit one below the published value.
 */
function assertNear(name: string, i: number, got: Rgb, want: Rgb): void {
  for (let c = 0; c < 3; c++) {
    const d = want[c]! - got[c]!;
    assert.ok(d === 0 || d === 1, `${name}[${i}] = ${got.join(',')} but published ${want.join(',')}`);
  }
}

/**
 * Independent published references: matplotlib's documented viridis values
 * (viridis(0.0) #440154, viridis(0.5) #21918c, viridis(1.0) #fde725); the end colours
 * of magma / inferno / plasma / cividis / turbo as published with those maps (also in
 * R's viridisLite); ColorBrewer classes from colorbrewer2.org (11-class diverging maps
 * have their k-th class at t = k/10, i.e. index 25.5*k, exact for even k; 9-class
 * sequential maps are checked at the ends only).
 */
const PUBLISHED: Record<string, readonly (readonly [index: number, hex: string])[]> = {
  viridis: [
    [0, '#440154'],
    [128, '#21918c'],
    [255, '#fde725'],
  ],
  magma: [
    [0, '#000004'],
    [255, '#fcfdbf'],
  ],
  inferno: [
    [0, '#000004'],
    [255, '#fcffa4'],
  ],
  plasma: [
    [0, '#0d0887'],
    [255, '#f0f921'],
  ],
  cividis: [
    [0, '#00224e'],
    [255, '#fee838'],
  ],
  turbo: [
    [0, '#30123b'],
    [255, '#7a0403'],
  ],
  // RdYlGn 11: a50026 d73027 f46d43 fdae61 fee08b ffffbf d9ef8b a6d96a 66bd63 1a9850 006837
  rdylgn: [
    [0, '#a50026'],
    [51, '#f46d43'],
    [102, '#fee08b'],
    [153, '#d9ef8b'],
    [204, '#66bd63'],
    [255, '#006837'],
  ],
  // Spectral 11: 9e0142 d53e4f f46d43 fdae61 fee08b ffffbf e6f598 abdda4 66c2a5 3288bd 5e4fa2
  spectral: [
    [0, '#9e0142'],
    [51, '#f46d43'],
    [102, '#fee08b'],
    [153, '#e6f598'],
    [204, '#66c2a5'],
    [255, '#5e4fa2'],
  ],
  // RdBu 11: 67001f b2182b d6604d f4a582 fddbc7 f7f7f7 d1e5f0 92c5de 4393c3 2166ac 053061
  rdbu: [
    [0, '#67001f'],
    [51, '#d6604d'],
    [102, '#fddbc7'],
    [153, '#d1e5f0'],
    [204, '#4393c3'],
    [255, '#053061'],
  ],
  // BrBG 11: 543005 8c510a bf812d dfc27d f6e8c3 f5f5f5 c7eae5 80cdc1 35978f 01665e 003c30
  brbg: [
    [0, '#543005'],
    [51, '#bf812d'],
    [102, '#f6e8c3'],
    [153, '#c7eae5'],
    [204, '#35978f'],
    [255, '#003c30'],
  ],
  blues: [
    [0, '#f7fbff'],
    [255, '#08306b'],
  ],
  greens: [
    [0, '#f7fcf5'],
    [255, '#00441b'],
  ],
  ylorrd: [
    [0, '#ffffcc'],
    [255, '#800026'],
  ],
  reds: [
    [0, '#fff5f0'],
    [255, '#67000d'],
  ],
  oranges: [
    [0, '#fff5eb'],
    [255, '#7f2704'],
  ],
  purples: [
    [0, '#fcfbfd'],
    [255, '#3f007d'],
  ],
  greys: [
    [0, '#ffffff'],
    [255, '#000000'],
  ],
};

const SAMPLED = [0, 1, 64, 127, 128, 200, 254, 255] as const;

/**
 * Reference output of matplotlib 3.6.3 itself: `matplotlib.colormaps[name](i / 255,
 * bytes=True)[:3]` for i in SAMPLED (the name in matplotlib's spelling, e.g. 'RdYlGn').
 */
const MATPLOTLIB_BYTES: Record<string, readonly Rgb[]> = {
  viridis: [
    [68, 1, 84],
    [68, 2, 85],
    [58, 82, 139],
    [32, 143, 140],
    [32, 144, 140],
    [112, 206, 86],
    [250, 230, 34],
    [253, 231, 36],
  ],
  magma: [
    [0, 0, 3],
    [0, 0, 4],
    [80, 18, 123],
    [181, 54, 121],
    [182, 54, 121],
    [253, 151, 104],
    [251, 250, 189],
    [251, 252, 191],
  ],
  inferno: [
    [0, 0, 3],
    [0, 0, 4],
    [87, 15, 109],
    [186, 54, 85],
    [187, 55, 84],
    [251, 157, 6],
    [250, 253, 160],
    [252, 254, 164],
  ],
  plasma: [
    [12, 7, 134],
    [16, 7, 135],
    [126, 3, 167],
    [202, 70, 120],
    [203, 71, 119],
    [250, 160, 57],
    [240, 246, 35],
    [239, 248, 33],
  ],
  cividis: [
    [0, 34, 77],
    [0, 35, 79],
    [67, 78, 107],
    [123, 123, 119],
    [124, 123, 120],
    [196, 180, 104],
    [253, 230, 54],
    [253, 231, 55],
  ],
  turbo: [
    [48, 18, 59],
    [49, 21, 66],
    [40, 187, 235],
    [161, 252, 61],
    [164, 252, 59],
    [244, 101, 22],
    [125, 5, 2],
    [122, 4, 2],
  ],
  terrain: [
    [51, 51, 153],
    [49, 53, 155],
    [1, 204, 102],
    [253, 254, 152],
    [254, 253, 152],
    [145, 114, 107],
    [253, 252, 252],
    [255, 255, 255],
  ],
  gray: [
    [0, 0, 0],
    [1, 1, 1],
    [64, 64, 64],
    [127, 127, 127],
    [128, 128, 128],
    [200, 200, 200],
    [254, 254, 254],
    [255, 255, 255],
  ],
  binary: [
    [255, 255, 255],
    [254, 254, 254],
    [191, 191, 191],
    [128, 128, 128],
    [127, 127, 127],
    [55, 55, 55],
    [0, 0, 0],
    [0, 0, 0],
  ],
  blues: [
    [247, 251, 255],
    [246, 250, 254],
    [197, 218, 238],
    [107, 174, 214],
    [106, 173, 213],
    [26, 104, 174],
    [8, 49, 108],
    [8, 48, 107],
  ],
  brbg: [
    [84, 48, 5],
    [86, 49, 5],
    [207, 162, 85],
    [245, 244, 244],
    [244, 244, 244],
    [64, 159, 150],
    [0, 61, 49],
    [0, 60, 48],
  ],
  bugn: [
    [247, 252, 253],
    [246, 251, 252],
    [203, 235, 229],
    [102, 194, 164],
    [101, 193, 163],
    [25, 130, 62],
    [0, 69, 27],
    [0, 68, 27],
  ],
  bupu: [
    [247, 252, 253],
    [246, 251, 252],
    [190, 210, 229],
    [140, 150, 198],
    [140, 149, 197],
    [134, 51, 147],
    [78, 0, 76],
    [77, 0, 75],
  ],
  gnbu: [
    [247, 252, 240],
    [246, 251, 239],
    [203, 234, 196],
    [123, 204, 195],
    [122, 203, 196],
    [33, 130, 185],
    [8, 65, 130],
    [8, 64, 129],
  ],
  greens: [
    [247, 252, 245],
    [246, 251, 244],
    [198, 232, 191],
    [116, 196, 118],
    [115, 195, 117],
    [25, 130, 62],
    [0, 69, 27],
    [0, 68, 27],
  ],
  greys: [
    [255, 255, 255],
    [254, 254, 254],
    [216, 216, 216],
    [150, 150, 150],
    [149, 149, 149],
    [69, 69, 69],
    [1, 1, 1],
    [0, 0, 0],
  ],
  orrd: [
    [255, 247, 236],
    [254, 246, 234],
    [253, 211, 157],
    [252, 141, 89],
    [251, 140, 88],
    [205, 34, 22],
    [128, 0, 0],
    [127, 0, 0],
  ],
  oranges: [
    [255, 245, 235],
    [254, 244, 234],
    [253, 207, 161],
    [253, 141, 60],
    [252, 140, 59],
    [203, 67, 1],
    [128, 39, 3],
    [127, 39, 4],
  ],
  prgn: [
    [64, 0, 75],
    [66, 1, 77],
    [173, 139, 189],
    [246, 246, 246],
    [246, 246, 246],
    [101, 181, 106],
    [1, 70, 28],
    [0, 68, 27],
  ],
  piyg: [
    [142, 1, 82],
    [144, 2, 83],
    [231, 151, 196],
    [247, 246, 246],
    [246, 246, 246],
    [135, 193, 75],
    [40, 101, 25],
    [39, 100, 25],
  ],
  pubu: [
    [255, 247, 251],
    [254, 246, 250],
    [207, 208, 229],
    [116, 169, 207],
    [115, 168, 206],
    [4, 105, 166],
    [2, 57, 89],
    [2, 56, 88],
  ],
  pubugn: [
    [255, 247, 251],
    [254, 246, 250],
    [207, 208, 229],
    [103, 169, 207],
    [102, 168, 206],
    [1, 123, 124],
    [1, 71, 55],
    [1, 70, 54],
  ],
  puor: [
    [127, 59, 8],
    [129, 60, 7],
    [238, 157, 60],
    [247, 246, 245],
    [246, 246, 246],
    [135, 123, 177],
    [46, 1, 77],
    [45, 0, 75],
  ],
  purd: [
    [247, 244, 249],
    [246, 243, 248],
    [211, 184, 217],
    [222, 101, 176],
    [223, 100, 175],
    [191, 13, 80],
    [104, 0, 32],
    [103, 0, 31],
  ],
  purples: [
    [252, 251, 253],
    [251, 250, 252],
    [217, 217, 234],
    [158, 154, 200],
    [157, 153, 199],
    [99, 69, 157],
    [63, 1, 125],
    [63, 0, 125],
  ],
  rdbu: [
    [103, 0, 31],
    [105, 0, 31],
    [229, 131, 104],
    [247, 246, 246],
    [246, 246, 246],
    [79, 154, 199],
    [6, 50, 99],
    [5, 48, 97],
  ],
  rdgy: [
    [103, 0, 31],
    [105, 0, 31],
    [229, 131, 104],
    [254, 254, 253],
    [254, 254, 254],
    [143, 143, 143],
    [28, 28, 28],
    [26, 26, 26],
  ],
  rdpu: [
    [255, 247, 243],
    [254, 246, 242],
    [251, 196, 191],
    [247, 104, 161],
    [246, 103, 160],
    [159, 1, 124],
    [74, 0, 106],
    [73, 0, 106],
  ],
  rdylbu: [
    [165, 0, 38],
    [166, 1, 38],
    [248, 142, 82],
    [254, 254, 190],
    [254, 254, 192],
    [124, 179, 212],
    [49, 56, 150],
    [49, 54, 149],
  ],
  rdylgn: [
    [165, 0, 38],
    [166, 1, 38],
    [248, 142, 82],
    [254, 254, 189],
    [254, 254, 189],
    [112, 193, 100],
    [1, 105, 55],
    [0, 104, 55],
  ],
  reds: [
    [255, 245, 240],
    [254, 244, 239],
    [252, 186, 160],
    [251, 106, 74],
    [250, 105, 73],
    [192, 21, 26],
    [104, 0, 13],
    [103, 0, 12],
  ],
  spectral: [
    [158, 1, 66],
    [160, 3, 66],
    [248, 142, 82],
    [254, 254, 189],
    [254, 254, 190],
    [112, 198, 164],
    [92, 81, 163],
    [94, 79, 162],
  ],
  ylgn: [
    [255, 255, 229],
    [254, 254, 227],
    [216, 239, 162],
    [120, 198, 121],
    [119, 197, 120],
    [25, 124, 63],
    [0, 70, 41],
    [0, 69, 41],
  ],
  ylgnbu: [
    [255, 255, 217],
    [254, 254, 215],
    [198, 232, 180],
    [65, 182, 195],
    [64, 181, 195],
    [34, 82, 162],
    [8, 29, 89],
    [8, 29, 88],
  ],
  ylorbr: [
    [255, 255, 229],
    [255, 254, 227],
    [254, 226, 144],
    [254, 153, 41],
    [253, 152, 40],
    [190, 69, 2],
    [103, 37, 5],
    [102, 37, 5],
  ],
  ylorrd: [
    [255, 255, 204],
    [255, 254, 202],
    [254, 216, 117],
    [253, 141, 60],
    [252, 140, 59],
    [216, 18, 30],
    [129, 0, 38],
    [128, 0, 38],
  ],
};

const REQUIRED = ['viridis', 'magma', 'inferno', 'plasma', 'cividis', 'terrain', 'greys', 'rdylgn', 'spectral', 'rdbu', 'blues', 'greens', 'ylorrd', 'brbg'];

test('PALETTE_NAMES lists the required maps, lower-case and unique', () => {
  for (const n of REQUIRED) assert.ok(PALETTE_NAMES.includes(n), `missing ${n}`);
  for (const n of PALETTE_NAMES) assert.equal(n, n.toLowerCase());
  assert.equal(new Set(PALETTE_NAMES).size, PALETTE_NAMES.length);
  assert.ok(Object.isFrozen(PALETTE_NAMES));
  assert.deepEqual(Object.keys(MATPLOTLIB_BYTES).sort(), [...PALETTE_NAMES].sort());
});

test('every LUT has 256 RGBA entries with alpha 255', () => {
  for (const n of PALETTE_NAMES) {
    for (const rev of [false, true]) {
      const lut = paletteLut(n, rev);
      assert.ok(lut instanceof Uint8Array);
      assert.equal(lut.length, 1024, n);
      for (let i = 0; i < 256; i++) assert.equal(lut[4 * i + 3], 255, `${n} alpha ${i}`);
    }
  }
});

test('entries match published colours (within the rounding of the published hex)', () => {
  for (const [name, refs] of Object.entries(PUBLISHED)) {
    const lut = paletteLut(name);
    for (const [i, h] of refs) assertNear(name, i, entry(lut, i), hex(h));
  }
});

test('entries match matplotlib cmap(i/255, bytes=True) exactly', () => {
  for (const [name, rows] of Object.entries(MATPLOTLIB_BYTES)) {
    const lut = paletteLut(name);
    SAMPLED.forEach((i, k) => assert.deepEqual(entry(lut, i), rows[k], `${name}[${i}]`));
  }
});

test('viridis: first, middle and last entries', () => {
  const lut = paletteLut('viridis');
  assert.deepEqual(entry(lut, 0), [68, 1, 84]); // #440154
  assert.deepEqual(entry(lut, 255), [253, 231, 36]); // #fde725, 0.143936*255 = 36.7 truncated
});

test('terrain starts at (0.2, 0.2, 0.6) and ends white', () => {
  const lut = paletteLut('terrain');
  assert.deepEqual(entry(lut, 0), [51, 51, 153]);
  assert.deepEqual(entry(lut, 255), [255, 255, 255]);
});

test('greys runs from white to black, never getting lighter', () => {
  const lut = paletteLut('greys');
  assert.deepEqual(entry(lut, 0), [255, 255, 255]);
  assert.deepEqual(entry(lut, 255), [0, 0, 0]);
  for (let i = 1; i < 256; i++) {
    const [r, g, b] = entry(lut, i);
    assert.ok(r === g && g === b, `greys[${i}] not grey`);
    assert.ok(r <= lut[4 * (i - 1)]!, `greys[${i}] lighter than greys[${i - 1}]`);
  }
});

test('gray is black to white, binary white to black', () => {
  const gray = paletteLut('gray');
  const binary = paletteLut('binary');
  assert.deepEqual(entry(gray, 0), [0, 0, 0]);
  assert.deepEqual(entry(gray, 255), [255, 255, 255]);
  assert.deepEqual(entry(binary, 0), [255, 255, 255]);
  assert.deepEqual(entry(binary, 255), [0, 0, 0]);
});

test('reverse flips the table', () => {
  for (const n of PALETTE_NAMES) {
    const fwd = paletteLut(n);
    const rev = paletteLut(n, true);
    for (let i = 0; i < 256; i++) assert.deepEqual(entry(rev, i), entry(fwd, 255 - i), `${n} reversed [${i}]`);
  }
  assert.deepEqual(entry(paletteLut('rdylgn', true), 0), entry(paletteLut('rdylgn'), 255));
});

test('LUTs are cached per name and direction', () => {
  assert.equal(paletteLut('magma'), paletteLut('magma'));
  assert.equal(paletteLut('magma', true), paletteLut('magma', true));
  assert.notEqual(paletteLut('magma'), paletteLut('magma', true));
});

test('names are matched case-insensitively', () => {
  assert.equal(paletteLut('RdYlGn'), paletteLut('rdylgn'));
  assert.equal(paletteLut('Viridis', true), paletteLut('viridis', true));
});

test('unknown names throw, listing the known ones', () => {
  assert.throws(
    () => paletteLut('nope'),
    (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /^unknown colour map 'nope' \(known: .*\)$/);
      for (const n of REQUIRED) assert.ok(e.message.includes(n));
      return true;
    },
  );
  assert.throws(() => paletteLut(''), /unknown colour map '' \(known: /);
  assert.throws(() => paletteLut('viridis_r'), /unknown colour map 'viridis_r'/);
});

test('prototype property names are not colour maps', () => {
  for (const n of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__']) {
    assert.throws(() => paletteLut(n), new RegExp(`^Error: unknown colour map '${n}' \\(known: `));
    assert.throws(() => paletteLut(n, true), /unknown colour map/);
  }
});
