/**
 * Which tiles a seeding run covers (src/seed/coverage.ts), checked against references written
 * here or taken elsewhere: floor/ceil of the tile coordinates by hand, @mapbox/tilebelt's
 * projection, a brute force over every tile with polygon clipping (Sutherland–Hodgman) in
 * place of the walker's edge tests, and GDAL's gdaltransform for a UTM raster's footprint.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { pointToTileFraction } from '@mapbox/tilebelt';
import {
  bboxArea,
  countTiles,
  footprintArea,
  geoJsonArea,
  parseShard,
  parseZooms,
  tilesFromList,
  tilesOf,
  type Area,
  type Polygon,
  type Shard,
} from '../src/seed/coverage.js';
import type { TileId } from '../src/tiles/mercator.js';
import { GDAL_ENV, gdalMissing } from './helpers/gdal.js';

type Bbox = [number, number, number, number];
const key = (t: TileId) => `${t.z}/${t.x}/${t.y}`;
const all = (tiles: Iterable<TileId>) => [...tiles];

function perZoom(tiles: readonly TileId[], zooms: [number, number]): Map<number, number> {
  const out = new Map<number, number>();
  for (let z = zooms[0]; z <= zooms[1]; z++) out.set(z, 0);
  for (const t of tiles) out.set(t.z, out.get(t.z)! + 1);
  return out;
}

/** Zooms ascending, 8×8 blocks row-major, tiles row-major in a block; no tile twice. */
function assertOrder(tiles: readonly TileId[]): void {
  const rank = (t: TileId) => [t.z, t.y >> 3, t.x >> 3, t.y, t.x];
  for (let i = 1; i < tiles.length; i++) {
    const [a, b] = [rank(tiles[i - 1]!), rank(tiles[i]!)];
    const k = a.findIndex((v, j) => v !== b[j]);
    assert.ok(k >= 0 && a[k]! < b[k]!, `${key(tiles[i - 1]!)} before ${key(tiles[i]!)}`);
  }
}

/** Fractional tile coordinates of the spherical Mercator (EPSG:3857), written out here. */
const fx = (lon: number, n: number) => ((lon + 180) / 360) * n;
const fy = (lat: number, n: number) => ((1 - Math.asinh(Math.tan((lat * Math.PI) / 180)) / Math.PI) / 2) * n;

/** The tiles of a bbox by hand: floor on the min side, ceil - 1 on the max side (exclusive edges). */
function handRange([w, s, e, n]: Bbox, z: number): Bbox {
  const size = 2 ** z;
  const clamp = (v: number) => Math.max(0, Math.min(size - 1, v));
  return [clamp(Math.floor(fx(w, size))), clamp(Math.floor(fy(n, size))), clamp(Math.ceil(fx(e, size)) - 1), clamp(Math.ceil(fy(s, size)) - 1)];
}
const rangeSize = ([x0, y0, x1, y1]: Bbox) => (x1 - x0 + 1) * (y1 - y0 + 1);

describe('bboxArea', () => {
  const cases: [string, Bbox, [number, number]][] = [
    ['Europe', [-10.3, 35.2, 30.7, 60.1], [0, 13]],
    ['southern hemisphere', [5.5, -40.25, 150.75, -3.5], [0, 11]],
    ['on tile edges at every zoom', [-90, 0, 0, 45], [0, 11]],
    ['the world', [-180, -90, 180, 90], [0, 6]],
  ];
  for (const [name, bbox, zooms] of cases)
    it(`${name}: counts per zoom equal the hand computation, and tilesOf yields them`, () => {
      const area = bboxArea(bbox);
      const counts = countTiles(area, zooms);
      for (const [z, count] of counts) assert.equal(count, rangeSize(handRange(bbox, z)), `zoom ${z}`);
      const low: [number, number] = [zooms[0], Math.min(zooms[1], 9)];
      const tiles = all(tilesOf(area, low));
      assertOrder(tiles);
      assert.deepEqual(perZoom(tiles, low), countTiles(area, low));
      for (const t of tiles) {
        const [x0, y0, x1, y1] = handRange(bbox, t.z);
        assert.ok(t.x >= x0 && t.x <= x1 && t.y >= y0 && t.y <= y1, key(t));
      }
    });

  it('tile ranges equal @mapbox/tilebelt pointToTileFraction', () => {
    const bbox: Bbox = [-123.3, 45.1, -121.9, 46.05];
    for (let z = 0; z <= 18; z++) {
      const [wx, ny] = pointToTileFraction(bbox[0], bbox[3], z);
      const [ex, sy] = pointToTileFraction(bbox[2], bbox[1], z);
      const range: Bbox = [Math.floor(wx), Math.floor(ny), Math.ceil(ex) - 1, Math.ceil(sy) - 1];
      assert.equal(countTiles(bboxArea(bbox), [z, z]).get(z), rangeSize(range), `zoom ${z}`);
      if (z > 12) continue;
      const tiles = all(tilesOf(bboxArea(bbox), [z, z]));
      const xs = tiles.map((t) => t.x);
      const ys = tiles.map((t) => t.y);
      assert.deepEqual([Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)], range, `zoom ${z}`);
    }
  });

  it('refuses bad boxes, naming --bbox', () => {
    assert.throws(() => bboxArea([10, 0, 5, 1]), /--bbox 10,0,5,1: west must be less than east/);
    assert.throws(() => bboxArea([0, 5, 1, 5]), /--bbox .*south less than north/);
    assert.throws(() => bboxArea([0, 0, 181, 1]), /--bbox .*-180\.\.180/);
    assert.throws(() => bboxArea([0, -91, 1, 1]), /--bbox .*-90\.\.90/);
    assert.throws(() => bboxArea([0, NaN, 1, 1]), /--bbox .*four decimal numbers/);
    assert.throws(() => bboxArea([0, 86, 1, 89]), /--bbox .*85\.05/);
    assert.deepEqual(bboxArea([-180, -90, 180, 90]).bbox, [-180, -85.0511287798066, 180, 85.0511287798066]);
  });
});

// ---------------------------------------------------------------------------------------------
// Polygons against a brute force: a tile is covered when the polygon clipped to its square has
// an area (the interior meets the open square), holes subtracted.

type XY = [number, number];

/** Sutherland–Hodgman: a ring clipped to the box [x0, x1] × [y0, y1]. */
function clip(ring: readonly XY[], x0: number, y0: number, x1: number, y1: number): XY[] {
  let pts = ring.slice(0, -1) as XY[];
  const sides: [(p: XY) => number][] = [[(p) => p[0] - x0], [(p) => x1 - p[0]], [(p) => p[1] - y0], [(p) => y1 - p[1]]];
  for (const [d] of sides) {
    const out: XY[] = [];
    pts.forEach((p, i) => {
      const q = pts[(i + 1) % pts.length]!;
      const [dp, dq] = [d(p), d(q)];
      if (dp >= 0) out.push(p);
      if (dp >= 0 !== dq >= 0) {
        const t = dp / (dp - dq);
        out.push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
      }
    });
    pts = out;
    if (pts.length === 0) break;
  }
  return pts;
}

const shoelace = (pts: readonly XY[]) =>
  Math.abs(pts.reduce((s, p, i) => s + p[0] * pts[(i + 1) % pts.length]![1] - pts[(i + 1) % pts.length]![0] * p[1], 0)) / 2;

/** Every tile of the grid near the polygons, tested by clipping; in tilesOf's order. */
function bruteForce(polygons: readonly Polygon[], z: number): string[] {
  const n = 2 ** z;
  const frac = polygons.map((rings) => rings.map((ring) => ring.map(([lon, lat]): XY => pointToTileFraction(lon, lat, z).slice(0, 2) as XY)));
  const pts = frac.flat(2);
  const [x0, x1] = [Math.max(0, Math.floor(Math.min(...pts.map((p) => p[0]))) - 1), Math.min(n - 1, Math.ceil(Math.max(...pts.map((p) => p[0]))))];
  const [y0, y1] = [Math.max(0, Math.floor(Math.min(...pts.map((p) => p[1]))) - 1), Math.min(n - 1, Math.ceil(Math.max(...pts.map((p) => p[1]))))];
  const hits: TileId[] = [];
  for (let y = y0; y <= y1; y++)
    for (let x = x0; x <= x1; x++) {
      const covered = frac.some(([outer, ...holes]) => {
        const area = shoelace(clip(outer!, x, y, x + 1, y + 1)) - holes.reduce((s, h) => s + shoelace(clip(h, x, y, x + 1, y + 1)), 0);
        return area > 1e-9;
      });
      if (covered) hits.push({ z, x, y });
    }
  return hits.sort((a, b) => (a.y >> 3) - (b.y >> 3) || (a.x >> 3) - (b.x >> 3) || a.y - b.y || a.x - b.x).map(key);
}

const TRIANGLE: Polygon = [
  [
    [5.3, 40.2],
    [25.1, 42.7],
    [12.4, 55.3],
    [5.3, 40.2],
  ],
];
const HOLED: Polygon = [
  [
    [0.1, 30.2],
    [22.3, 31.1],
    [24.2, 44.6],
    [10.7, 48.3],
    [-2.2, 41.4],
    [0.1, 30.2],
  ],
  [
    [6.1, 35.3],
    [15.2, 35.6],
    [14.3, 42.1],
    [7.4, 41.2],
    [6.1, 35.3],
  ],
];
/** Its top on the equator and a vertex on the prime meridian: tile edges at every zoom. */
const TOUCHING: Polygon = [
  [
    [-90, 0],
    [0, 0],
    [-45.5, -40.3],
    [-90, 0],
  ],
];

function polygonArea(polygons: Polygon[]): Area {
  return geoJsonArea(JSON.stringify({ type: 'MultiPolygon', coordinates: polygons }), 'test.geojson');
}

describe('tilesOf on polygons, against a brute force over every tile', () => {
  const cases: [string, Polygon[]][] = [
    ['a triangle', [TRIANGLE]],
    ['a polygon with a hole', [HOLED]],
    ['a triangle touching tile edges', [TOUCHING]],
    ['overlapping polygons (their union)', [TRIANGLE, HOLED]],
  ];
  for (const [name, polygons] of cases)
    it(name, () => {
      const area = polygonArea(polygons);
      for (let z = 0; z <= 10; z++) {
        const tiles = all(tilesOf(area, [z, z]));
        assert.deepEqual(tiles.map(key), bruteForce(polygons, z), `zoom ${z}`);
        assert.equal(countTiles(area, [z, z]).get(z), tiles.length, `zoom ${z}`);
      }
      assertOrder(all(tilesOf(area, [0, 10])));
    });

  it('the hole matters: tiles wholly inside it are left out', () => {
    const holed = countTiles(polygonArea([HOLED]), [9, 9]).get(9)!;
    const filled = countTiles(polygonArea([[HOLED[0]!]]), [9, 9]).get(9)!;
    assert.ok(holed < filled - 100, `${holed} tiles with the hole, ${filled} without`);
  });

  it('a polygon that touches tiles along edges and at a corner does not cover them', () => {
    for (let z = 1; z <= 12; z++) {
      const n = 2 ** z;
      for (const t of tilesOf(polygonArea([TOUCHING]), [z, z])) assert.ok(t.y >= n / 2 && t.x >= Math.floor(n / 4) && t.x < n / 2, key(t));
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('footprintArea', () => {
  const UTM12 = '+proj=utm +zone=12 +datum=WGS84 +units=m +no_defs';
  // A 90 × 60 km raster in Utah, 30 m pixels, rotated by 25°.
  const [W, H, PX, ROT] = [3000, 2000, 30, (25 * Math.PI) / 180];
  const GT = [400000, PX * Math.cos(ROT), PX * Math.sin(ROT), 4500000, PX * Math.sin(ROT), -PX * Math.cos(ROT)];
  const source = { geoTransform: GT, width: W, height: H, crs: { proj4: UTM12 } };
  const Z = 13;

  it('gives fewer tiles than its bbox', () => {
    const area = footprintArea([source]);
    assert.equal(area.polygons.length, 1);
    assert.equal(area.polygons[0]![0]!.length, 4 * 64 + 1);
    const footprint = countTiles(area, [Z, Z]).get(Z)!;
    const box = countTiles(bboxArea(area.bbox), [Z, Z]).get(Z)!;
    assert.ok(footprint < box * 0.8, `${footprint} footprint tiles, ${box} bbox tiles`);
  });

  it('a north-up Web Mercator source covers what its bbox covers', () => {
    const merc = '+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +no_defs';
    const area = footprintArea([{ geoTransform: [1234567.8, 10, 0, 5432109.8, 0, -10], width: 20000, height: 15000, crs: { proj4: merc } }]);
    for (let z = 8; z <= 14; z++) assert.equal(countTiles(area, [z, z]).get(z), countTiles(bboxArea(area.bbox), [z, z]).get(z), `zoom ${z}`);
  });

  it('holds every tile whose centre GDAL maps inside the raster, and only tiles that reach it', { skip: gdalMissing(['gdaltransform']) }, () => {
    const area = footprintArea([source]);
    const n = 2 ** Z;
    const [x0, y0, x1, y1] = handRange(area.bbox, Z);
    const yielded = new Set(all(tilesOf(area, [Z, Z])).map(key));
    // Samples in each tile on a 5 × 5 grid (the middle one its centre), mapped by GDAL to UTM.
    const lon = (x: number) => (x / n) * 360 - 180;
    const lat = (y: number) => (Math.atan(Math.sinh(Math.PI * (1 - (2 * y) / n))) * 180) / Math.PI;
    const samples: XY[] = [];
    for (let y = y0; y <= y1; y++)
      for (let x = x0; x <= x1; x++) for (let j = 0; j < 5; j++) for (let i = 0; i < 5; i++) samples.push([lon(x + (i + 0.5) / 5), lat(y + (j + 0.5) / 5)]);
    const out = execFileSync('gdaltransform', ['-s_srs', 'EPSG:4326', '-t_srs', UTM12, '-output_xy'], {
      input: samples.map((p) => `${p[0]} ${p[1]}`).join('\n') + '\n',
      env: GDAL_ENV,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    // Back from UTM to pixel/line by inverting the geotransform.
    const det = GT[1]! * GT[5]! - GT[2]! * GT[4]!;
    const pixels = out
      .trim()
      .split('\n')
      .map((line): XY => {
        const [ex, ny] = line.trim().split(/\s+/).map(Number);
        const [dx, dy] = [ex! - GT[0]!, ny! - GT[3]!];
        return [(GT[5]! * dx - GT[2]! * dy) / det, (GT[1]! * dy - GT[4]! * dx) / det];
      });
    assert.equal(pixels.length, samples.length);
    // A tile is about 124 px here; its samples lie 25 px apart, so one lies within 18 px of any raster point in it.
    const within = ([p, l]: XY, m: number) => p >= -m && p <= W + m && l >= -m && l <= H + m;
    let k = 0;
    let centres = 0;
    for (let y = y0; y <= y1; y++)
      for (let x = x0; x <= x1; x++, k += 25) {
        const tile = pixels.slice(k, k + 25);
        const id = key({ z: Z, x, y });
        if (within(tile[12]!, 0)) {
          centres++;
          assert.ok(yielded.has(id), `${id}: its centre is inside the raster`);
        }
        if (yielded.has(id))
          assert.ok(
            tile.some((p) => within(p, 30)),
            `${id}: nowhere near the raster`,
          );
      }
    assert.ok(centres > 100 && yielded.size < (x1 - x0 + 1) * (y1 - y0 + 1), `${centres} centres inside, ${yielded.size} tiles`);
  });

  it('refuses a layer without sources', () => {
    assert.throws(() => footprintArea([]), /no sources/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('shards', () => {
  const areas: [string, Area, [number, number]][] = [
    ['a polygon with a hole', polygonArea([HOLED, TRIANGLE]), [0, 10]],
    ['a bbox', bboxArea([-10.3, 35.2, 30.7, 60.1]), [0, 9]],
  ];
  for (const [name, area, zooms] of areas)
    for (const count of [1, 2, 3, 7])
      it(`${name}, N = ${count}: disjoint, complete, in order, whole blocks, balanced`, () => {
        const whole = all(tilesOf(area, zooms));
        const shards = Array.from({ length: count }, (_, index) => all(tilesOf(area, zooms, { index, count })));
        const owner = new Map<string, number>();
        shards.forEach((tiles, i) =>
          tiles.forEach((t) => {
            assert.equal(owner.get(key(t)), undefined, `${key(t)} in two shards`);
            owner.set(key(t), i);
          }),
        );
        assert.equal(owner.size, whole.length);
        for (let i = 0; i < count; i++)
          assert.deepEqual(shards[i]!.map(key), whole.filter((t) => owner.get(key(t)) === i).map(key), `shard ${i} is the whole run's order, filtered`);
        const blockOwner = new Map<string, number>();
        for (const t of whole) {
          const block = `${t.z}/${t.x >> 3}/${t.y >> 3}`;
          assert.equal(blockOwner.get(block) ?? owner.get(key(t)), owner.get(key(t)), `block ${block} is split`);
          blockOwner.set(block, owner.get(key(t))!);
        }
        const sizes = shards.map((tiles) => perZoom(tiles, zooms));
        for (let z = zooms[0]; z <= zooms[1]; z++) {
          const perShard = sizes.map((s) => s.get(z)!);
          assert.ok(Math.max(...perShard) - Math.min(...perShard) <= 64, `zoom ${z}: ${perShard.join(', ')}`);
          shards.forEach((_, index) => assert.equal(countTiles(area, zooms, { index, count }).get(z), perShard[index], `zoom ${z}, shard ${index}`));
        }
        // Zooms of a single block spread over the shards rather than all landing on shard 0.
        if (count === 3)
          assert.deepEqual(
            [0, 1, 2].map((z) => owner.get(key(whole.find((t) => t.z === z)!))),
            [0, 1, 2],
          );
      });

  it('parseShard takes I/N and refuses the rest, naming --shard', () => {
    assert.deepEqual(parseShard('0/1'), { index: 0, count: 1 });
    assert.deepEqual(parseShard('6/7'), { index: 6, count: 7 });
    assert.deepEqual(parseShard('9999/10000'), { index: 9999, count: 10000 });
    for (const bad of ['', '1', '1/', '/2', 'a/b', '-1/2', '1.5/3', '2/2', '0/0', '0/10001'])
      assert.throws(
        () => parseShard(bad),
        (err: Error) => err.message.startsWith(`--shard "${bad}":`),
        bad,
      );
  });
});

describe('parseZooms', () => {
  it('takes a zoom or a range, 0..30', () => {
    assert.deepEqual(parseZooms('12'), [12, 12]);
    assert.deepEqual(parseZooms('10-14'), [10, 14]);
    assert.deepEqual(parseZooms('0-30'), [0, 30]);
    for (const bad of ['', '-1', '31', '0-31', '14-10', '1-2-3', 'a', '1.5', '10-'])
      assert.throws(
        () => parseZooms(bad),
        (err: Error) => err.message.startsWith(`--zoom "${bad}":`),
        bad,
      );
  });
});

// ---------------------------------------------------------------------------------------------

describe('tilesFromList', () => {
  it('reads z/x/y lines, skipping blank lines and comments', () => {
    const text = '# tiles to warm\n0/0/0\r\n\n  3/7/1  \n12/4095/0 # the last column\n   # indented comment\n30/1073741823/1073741823\n';
    assert.deepEqual(all(tilesFromList(text, 'tiles.txt')), [
      { z: 0, x: 0, y: 0 },
      { z: 3, x: 7, y: 1 },
      { z: 12, x: 4095, y: 0 },
      { z: 30, x: 1073741823, y: 1073741823 },
    ]);
  });

  it('shards in runs of 64 lines, round-robin', () => {
    const lines = Array.from({ length: 300 }, (_, i) => `9/${i}/${i % 7}`);
    const text = ['# header', ...lines].join('\n');
    for (const count of [1, 2, 3, 7]) {
      const shards = Array.from({ length: count }, (_, index) => all(tilesFromList(text, 'list', { index, count })).map((t) => `${t.z}/${t.x}/${t.y}`));
      shards.forEach((tiles, i) =>
        assert.deepEqual(
          tiles,
          lines.filter((_, k) => Math.floor(k / 64) % count === i),
        ),
      );
      assert.equal(shards.flat().length, lines.length);
    }
  });

  const bad: [string, RegExp][] = [
    ['1/2', /not z\/x\/y/],
    ['a/b/c', /not z\/x\/y/],
    ['-1/0/0', /not z\/x\/y/],
    ['1.5/0/0', /not z\/x\/y/],
    ['1/0/0/0', /not z\/x\/y/],
    ['2 0 0', /not z\/x\/y/],
    ['2/4/0', /x 4 is outside 0\.\.3 at zoom 2/],
    ['2/0/4', /y 4 is outside 0\.\.3 at zoom 2/],
    ['31/0/0', /zoom 31 is outside 0\.\.30/],
  ];
  for (const [line, problem] of bad)
    it(`refuses "${line}", naming the file and line`, () => {
      const text = `0/0/0\n# ok so far\n${line}\n1/1/1\n`;
      assert.throws(
        () => all(tilesFromList(text, 'warm.txt')),
        (err: Error) => err.message.startsWith('warm.txt:3: ') && problem.test(err.message),
      );
    });
});

describe('geoJsonArea', () => {
  const square = (w: number, s: number, d: number) => [
    [
      [w, s],
      [w + d, s],
      [w + d, s + d],
      [w, s + d],
      [w, s],
    ],
  ];

  it('takes every polygon of a FeatureCollection', () => {
    const text = JSON.stringify({
      type: 'FeatureCollection',
      features: [
        { type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: square(1, 2, 1) } },
        { type: 'Feature', properties: { name: 'two' }, geometry: { type: 'MultiPolygon', coordinates: [square(-5, -3, 2), square(10, 40, 0.5)] } },
      ],
    });
    const area = geoJsonArea(text, 'areas.geojson');
    assert.equal(area.polygons.length, 3);
    assert.deepEqual(area.bbox, [-5, -3, 10.5, 40.5]);
    const counts = countTiles(area, [6, 6]).get(6)!;
    const parts = [square(1, 2, 1), square(-5, -3, 2), square(10, 40, 0.5)].map((p) => countTiles(polygonArea([p as Polygon]), [6, 6]).get(6)!);
    assert.equal(counts, parts[0]! + parts[1]! + parts[2]!);
  });

  it('takes a Feature, a bare MultiPolygon and a Polygon with a hole', () => {
    assert.equal(geoJsonArea(JSON.stringify({ type: 'Feature', geometry: { type: 'Polygon', coordinates: square(0, 0, 1) } }), 'f').polygons.length, 1);
    const multi = geoJsonArea(JSON.stringify({ type: 'MultiPolygon', coordinates: [square(0, 0, 1), square(3, 3, 1)] }), 'm');
    assert.deepEqual(multi.bbox, [0, 0, 4, 4]);
    assert.equal(geoJsonArea(JSON.stringify({ type: 'Polygon', coordinates: HOLED }), 'h').polygons[0]!.length, 2);
  });

  const refusals: [string, string, RegExp][] = [
    ['a Point', JSON.stringify({ type: 'Point', coordinates: [0, 0] }), /in\.geojson: the geometry is a Point; .*Polygon and MultiPolygon/],
    [
      'a LineString feature among polygons',
      JSON.stringify({
        type: 'FeatureCollection',
        features: [
          { type: 'Feature', geometry: { type: 'Polygon', coordinates: square(0, 0, 1) } },
          { type: 'Feature', geometry: { type: 'LineString', coordinates: [] } },
        ],
      }),
      /in\.geojson: feature 1 is a LineString/,
    ],
    ['bad JSON', '{"type": "Polygon", ', /in\.geojson: not valid JSON/],
    ['an empty FeatureCollection', JSON.stringify({ type: 'FeatureCollection', features: [] }), /in\.geojson: holds no polygons/],
    ['a feature without geometry', JSON.stringify({ type: 'Feature', geometry: null }), /in\.geojson: the feature has no geometry/],
    ['a JSON array', '[]', /in\.geojson: expected a GeoJSON object/],
    ['coordinates in metres', JSON.stringify({ type: 'Polygon', coordinates: square(500000, 4000000, 1000) }), /in\.geojson: .*is not WGS84 lon\/lat/],
    [
      'a ring of two points',
      JSON.stringify({
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [1, 1],
          ],
        ],
      }),
      /in\.geojson: .*ring 0: a ring needs at least four positions/,
    ],
  ];
  for (const [name, text, message] of refusals)
    it(`refuses ${name}, naming the file`, () => {
      assert.throws(() => geoJsonArea(text, 'in.geojson'), message);
    });
});

describe('streaming', () => {
  it('yields the first tiles of zooms 0-24 over most of the world without enumerating them all', () => {
    const tiles: TileId[] = [];
    for (const t of tilesOf(bboxArea([-170, -80, 170, 80]), [0, 24], { index: 1, count: 3 } satisfies Shard)) {
      tiles.push(t);
      if (tiles.length === 1000) break;
    }
    assert.equal(tiles.length, 1000);
    assertOrder(tiles);
  });
});
