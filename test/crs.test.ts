/**
 * crsFromGeoKeys / crsFromEpsg against GDAL as the independent reference.
 *
 * test/fixtures/make-crs-fixtures.sh has GDAL write tiny GeoTIFFs in many CRSs (EPSG codes
 * and user-defined proj strings, so GDAL emits the GeoKeys itself). For each file the
 * GeoKeys are read back with geotiff.js, turned into a proj4 definition, and the raster's
 * corners and centre (from `gdalinfo -json`) are taken to WGS84 lon/lat with proj4js. GDAL
 * does the same from the file's own georeferencing (`gdaltransform <file>` with pixel/line
 * input), so the reference never sees our proj4 string.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { fromFile } from 'geotiff';
import proj4 from 'proj4';
import { crsFromEpsg } from '../src/crs/epsg.js';
import { GeoKeys, type NamedGeoKeys } from '../src/crs/geokeys.js';
import { crsFromGeoKeys } from '../src/crs/geotiff.js';
import { ROOT } from './helpers/root.js';

const WGS84 = '+proj=longlat +datum=WGS84 +no_defs';

/** crsFromGeoKeys on keys by their GeoTIFF 1.0 names, as geotiff.js returns them and as written below. */
const crsFromNamedKeys = (keys: NamedGeoKeys) => crsFromGeoKeys(GeoKeys.fromNames(keys));

/**
 * Default agreement with GDAL, in degrees (1e-6 deg is ~0.1 m). Projection formulas agree to
 * ~1e-9 deg except proj4js's Robinson (~2e-7 deg) and Cylindrical Equal Area (~1e-8 deg)
 * inverses. Datum shifts agree to the same level because every non-null shift in the
 * fixtures is the same Helmert transformation PROJ picks (see GRID_DEPENDENT for the
 * exception).
 */
const TOL_DEG = 1e-6;

const SCRIPT = path.join(ROOT, 'test/fixtures/make-crs-fixtures.sh');
const OUT = path.join(ROOT, 'test/fixtures/out/crs');
// Keep GDAL's answer deterministic: no grid downloads from the PROJ CDN.
const GDAL_ENV = { ...process.env, PROJ_NETWORK: 'OFF' };

function hasTool(cmd: string): boolean {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}
const GDAL_MISSING = ['gdal_translate', 'gdalinfo', 'gdaltransform'].filter((t) => !hasTool(t));
const SKIP_GDAL = GDAL_MISSING.length > 0 ? `GDAL command line tools not installed (${GDAL_MISSING.join(', ')})` : false;

/** True when a PROJ grid file is installed locally (PROJ would then prefer it over a Helmert). */
function projGridInstalled(name: string): boolean {
  const r = spawnSync('projinfo', ['--searchpaths'], { encoding: 'utf8' });
  if (r.status !== 0) return false;
  return r.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)
    .some((d) => existsSync(path.join(d, name)));
}

interface Fixture {
  file: string;
  /** Expected Crs.epsg (undefined for user-defined CRSs). */
  epsg?: number;
  geographic?: boolean;
  /** Fragments the proj4 definition must contain. */
  contains?: string[];
  /** Tolerance in metres instead of TOL_DEG, with the reason. */
  tolM?: { metres: number; why: string };
}

/**
 * OSGB36 -> WGS84: without the OSTN15 grid PROJ uses the EPSG:1314 Helmert, exactly what
 * crsFromEpsg substitutes; with the grid installed PROJ uses it and the two legitimately
 * differ by up to the Helmert's stated accuracy (2 m).
 */
const GRID_DEPENDENT: Readonly<Record<string, string>> = { 'epsg_27700.tif': 'OSTN15_NTv2_OSGBtoETRS.gsb' };

const FIXTURES: Fixture[] = [
  { file: 'epsg_4326.tif', epsg: 4326, geographic: true },
  { file: 'epsg_4269.tif', epsg: 4269, geographic: true },
  { file: 'epsg_3857.tif', epsg: 3857 },
  { file: 'epsg_32612.tif', epsg: 32612 },
  { file: 'epsg_32733.tif', epsg: 32733, contains: ['+south'] },
  { file: 'epsg_3402.tif', epsg: 3402 },
  { file: 'epsg_2154.tif', epsg: 2154, contains: ['+proj=lcc'] },
  { file: 'epsg_5070.tif', epsg: 5070, contains: ['+proj=aea'] },
  { file: 'epsg_3413.tif', epsg: 3413, contains: ['+proj=stere', '+lat_ts=70'] },
  { file: 'epsg_27700.tif', epsg: 27700, contains: ['+towgs84=446.448'] },
  // Swiss Oblique Mercator (Hotine variant B, azimuth 90): proj4js has somerc, so no skip.
  { file: 'epsg_2056.tif', epsg: 2056, contains: ['+proj=somerc'] },
  { file: 'epsg_3035.tif', epsg: 3035, contains: ['+proj=laea'] },
  { file: 'epsg_2264.tif', epsg: 2264, contains: ['+units=us-ft'] },
  { file: 'epsg_27572.tif', epsg: 27572, contains: ['+pm=paris', '+towgs84=-168,-60,320'] },
  { file: 'ud_lcc2sp.tif', contains: ['+proj=lcc', '+lat_1=33', '+lat_2=45', '+x_0=1000000', '+y_0=500000'] },
  { file: 'ud_lcc1sp_paris.tif', contains: ['+proj=lcc', '+k_0=0.99987742', '+pm=2.33722'] },
  { file: 'ud_aea.tif', contains: ['+proj=aea', '+towgs84=0,0,0'] },
  { file: 'ud_tmerc_usft.tif', contains: ['+proj=tmerc', '+x_0=213360 ', '+units=us-ft'] },
  { file: 'ud_tmerc_ft.tif', contains: ['+proj=tmerc', '+x_0=500000 ', '+units=ft', '+datum=WGS84'] },
  { file: 'ud_utm12_grs80.tif', contains: ['+proj=utm +zone=12 ', '+towgs84=0,0,0'] },
  { file: 'ud_utm33s_intl.tif', contains: ['+proj=utm +zone=33 +south', '+a=6378388 +rf=297', '+towgs84=-87,-98,-121'] },
  { file: 'ud_stere_north.tif', contains: ['+proj=stere', '+lat_0=90', '+lat_ts=70', '+lon_0=-45'] },
  { file: 'ud_ups_south.tif', contains: ['+proj=stere', '+lat_0=-90', '+k=0.994'] },
  { file: 'ud_stere_oblique.tif', contains: ['+proj=stere', '+lat_0=45'] },
  { file: 'ud_sterea.tif', contains: ['+proj=sterea'] },
  { file: 'ud_laea.tif', contains: ['+proj=laea'] },
  { file: 'ud_merc1sp.tif', contains: ['+proj=merc', '+k=0.997'] },
  { file: 'ud_merc2sp.tif', contains: ['+proj=merc', '+lat_ts=41'] },
  { file: 'ud_eqc.tif', contains: ['+proj=eqc', '+lat_ts=30'] },
  { file: 'ud_sinu.tif', contains: ['+proj=sinu', '+a=6371007.181 +b=6371007.181'] },
  { file: 'ud_somerc.tif', contains: ['+proj=somerc'] },
  { file: 'ud_omerc.tif', contains: ['+proj=omerc', '+no_uoff', '+alpha=323.0257905'] },
  { file: 'ud_omerc_b.tif', contains: ['+proj=omerc', '+alpha=53.3158204722222'] },
  { file: 'ud_cass.tif', contains: ['+proj=cass'] },
  { file: 'ud_aeqd.tif', contains: ['+proj=aeqd'] },
  { file: 'ud_eqdc.tif', contains: ['+proj=eqdc'] },
  { file: 'ud_poly.tif', contains: ['+proj=poly'] },
  { file: 'ud_cea.tif', contains: ['+proj=cea', '+lat_ts=30'] },
  { file: 'ud_mill.tif', contains: ['+proj=mill'] },
  { file: 'ud_gnom.tif', contains: ['+proj=gnom'] },
  { file: 'ud_ortho.tif', contains: ['+proj=ortho'] },
  { file: 'ud_robin.tif', contains: ['+proj=robin'] },
  { file: 'ud_vandg.tif', contains: ['+proj=vandg'] },
  { file: 'ud_nzmg.tif', contains: ['+proj=nzmg'] },
  { file: 'ud_longlat_clrk66.tif', geographic: true, contains: ['+proj=longlat', '+a=6378206.4'] },
  { file: 'ud_longlat_intl_towgs84.tif', geographic: true, contains: ['+proj=longlat', '+towgs84=-87,-98,-121'] },
];

function fixturesStale(): boolean {
  const scriptTime = statSync(SCRIPT).mtimeMs;
  return FIXTURES.some((f) => {
    const p = path.join(OUT, f.file);
    return !existsSync(p) || statSync(p).mtimeMs < scriptTime;
  });
}

type XY = [number, number];

/** Corners and centre in the raster's CRS, with their pixel/line positions, from gdalinfo. */
function rasterPoints(file: string): { crs: XY[]; pixel: XY[] } {
  const info = JSON.parse(execFileSync('gdalinfo', ['-json', file], { env: GDAL_ENV, encoding: 'utf8' })) as {
    size: [number, number];
    cornerCoordinates: Record<'upperLeft' | 'lowerLeft' | 'upperRight' | 'lowerRight' | 'center', XY>;
  };
  const [w, h] = info.size;
  const c = info.cornerCoordinates;
  return {
    crs: [c.upperLeft, c.lowerLeft, c.upperRight, c.lowerRight, c.center],
    pixel: [
      [0, 0],
      [0, h],
      [w, 0],
      [w, h],
      [w / 2, h / 2],
    ],
  };
}

/** GDAL's lon/lat for pixel/line positions, using only the file's own georeferencing. */
function gdalLonLat(file: string, pixel: XY[]): XY[] {
  const out = execFileSync('gdaltransform', ['-t_srs', WGS84, '-output_xy', file], {
    input: pixel.map((p) => `${p[0]} ${p[1]}`).join('\n') + '\n',
    env: GDAL_ENV,
    encoding: 'utf8',
  });
  return out
    .trim()
    .split('\n')
    .map((line) => {
      const [x, y] = line.trim().split(/\s+/).map(Number);
      return [x!, y!];
    });
}

function metresApart(a: XY, b: XY): number {
  const k = Math.PI / 180;
  const dx = (a[0] - b[0]) * k * 6378137 * Math.cos(b[1] * k);
  const dy = (a[1] - b[1]) * k * 6378137;
  return Math.hypot(dx, dy);
}

describe('crsFromGeoKeys on GDAL-written fixtures vs gdaltransform', { skip: SKIP_GDAL }, () => {
  before(() => {
    if (fixturesStale()) execFileSync('bash', [SCRIPT, OUT], { cwd: ROOT, env: GDAL_ENV, stdio: ['ignore', 'ignore', 'inherit'] });
  });

  it('covers every fixture the script makes', () => {
    const made = readdirSync(OUT)
      .filter((f) => f.endsWith('.tif'))
      .sort();
    const listed = FIXTURES.map((f) => f.file).sort();
    assert.deepEqual(
      made.filter((f) => !listed.includes(f)),
      [],
      'fixtures without expectations in crs.test.ts',
    );
    assert.deepEqual(
      listed.filter((f) => !made.includes(f)),
      [],
      'expected fixtures the script did not make',
    );
  });

  for (const fx of FIXTURES) {
    it(fx.file, async () => {
      const file = path.join(OUT, fx.file);
      const image = await (await fromFile(file)).getImage();
      const keys = image.getGeoKeys() as NamedGeoKeys | null;
      assert.ok(keys, 'no GeoKeys');
      const crs = crsFromNamedKeys(keys);

      assert.equal(crs.epsg, fx.epsg, `epsg of ${crs.proj4}`);
      assert.equal(crs.isGeographic, fx.geographic ?? false);
      assert.ok(crs.name.length > 0);
      for (const frag of fx.contains ?? []) assert.ok(`${crs.proj4} `.includes(frag), `"${frag}" not in ${crs.proj4}`);
      assert.doesNotMatch(crs.proj4, /\+nadgrids=[^@]/, 'mandatory grids would make proj4js fail without the grid file');

      const { crs: pts, pixel } = rasterPoints(file);
      // gdalinfo's corners are the same points geotiff.js sees.
      const [minX, minY, maxX, maxY] = image.getBoundingBox();
      assert.ok(Math.abs(pts[0]![0] - minX!) < 1e-6 && Math.abs(pts[0]![1] - maxY!) < 1e-6, 'upper left differs from geotiff.js');
      assert.ok(Math.abs(pts[3]![0] - maxX!) < 1e-6 && Math.abs(pts[3]![1] - minY!) < 1e-6, 'lower right differs from geotiff.js');

      const ref = gdalLonLat(file, pixel);
      const conv = proj4(crs.proj4, WGS84);
      const grid = GRID_DEPENDENT[fx.file];
      const tolM =
        fx.tolM ??
        (grid !== undefined && projGridInstalled(grid) ? { metres: 2, why: `PROJ has ${grid} installed and uses it instead of the Helmert` } : undefined);
      pts.forEach((p, i) => {
        const got = conv.forward([p[0], p[1]]) as XY;
        const want = ref[i]!;
        assert.ok(Number.isFinite(got[0]) && Number.isFinite(got[1]), `proj4js gave ${String(got)} for ${String(p)}`);
        if (tolM) {
          const d = metresApart(got, want);
          assert.ok(d <= tolM.metres, `point ${i} (${String(p)}): ${d.toFixed(3)} m from GDAL > ${tolM.metres} m (${tolM.why}); proj4: ${crs.proj4}`);
        } else {
          const d = Math.max(Math.abs(got[0] - want[0]), Math.abs(got[1] - want[1]));
          assert.ok(d <= TOL_DEG, `point ${i} (${String(p)}): [${String(got)}] vs GDAL [${String(want)}], ${d.toExponential(2)} deg; proj4: ${crs.proj4}`);
        }
      });
    });
  }
});

describe('crsFromGeoKeys without GDAL', () => {
  /** GeoKeys of /work/shared/data/nlcd2011_zion.tif (geotiff.js output), copied so tests need no shared data. */
  const NLCD: NamedGeoKeys = {
    GTModelTypeGeoKey: 1,
    GTRasterTypeGeoKey: 1,
    GTCitationGeoKey: 'UTM Zone 12, Northern Hemisphere',
    GeographicTypeGeoKey: 32767,
    GeogCitationGeoKey: 'GCS Name = GRS 1980(IUGG, 1980)|Datum = unknown|Ellipsoid = GRS80|Primem = Greenwich|',
    GeogGeodeticDatumGeoKey: 32767,
    GeogAngularUnitsGeoKey: 9102,
    GeogEllipsoidGeoKey: 32767,
    GeogSemiMajorAxisGeoKey: 6378137,
    GeogInvFlatteningGeoKey: 298.257222101,
    GeogPrimeMeridianLongGeoKey: 0,
    GeogTOWGS84GeoKey: new Float64Array([0, 0, 0]),
    ProjectedCSTypeGeoKey: 32767,
    ProjectionGeoKey: 16012,
    ProjLinearUnitsGeoKey: 9001,
  };

  it('NLCD: UTM 12N from ProjectionGeoKey 16012 on GRS80 with TOWGS84 0 (Float64Array)', () => {
    const crs = crsFromNamedKeys(NLCD);
    assert.equal(crs.epsg, undefined);
    assert.equal(crs.isGeographic, false);
    assert.equal(crs.name, 'UTM Zone 12, Northern Hemisphere');
    assert.equal(crs.proj4, '+proj=utm +zone=12 +a=6378137 +rf=298.257222101 +towgs84=0,0,0 +units=m +no_defs');
    // Same place as WGS 84 / UTM 12N to well under a millimetre (GRS80 vs WGS84 ellipsoid).
    const a = proj4(crs.proj4, WGS84).forward([330000, 4130000]);
    const b = proj4(crsFromEpsg(32612).proj4, WGS84).forward([330000, 4130000]);
    assert.ok(Math.abs(a[0]! - b[0]!) < 1e-8 && Math.abs(a[1]! - b[1]!) < 1e-8, `${String(a)} vs ${String(b)}`);
  });

  it('UTM south from ProjectionGeoKey 16133', () => {
    const crs = crsFromNamedKeys({ ...NLCD, ProjectionGeoKey: 16133, GTCitationGeoKey: undefined });
    assert.match(crs.proj4, /^\+proj=utm \+zone=33 \+south /);
    assert.match(crs.name, /UTM zone 33S/);
  });

  it('built-in EPSG codes', () => {
    assert.equal(crsFromEpsg(4326).proj4, '+proj=longlat +datum=WGS84 +no_defs');
    assert.equal(crsFromEpsg(4326).isGeographic, true);
    assert.match(crsFromEpsg(3857).proj4, /^\+proj=merc \+a=6378137 \+b=6378137 /);
    assert.equal(crsFromEpsg(32612).proj4, '+proj=utm +zone=12 +datum=WGS84 +units=m +no_defs');
    assert.equal(crsFromEpsg(32733).proj4, '+proj=utm +zone=33 +south +datum=WGS84 +units=m +no_defs');
    assert.equal(crsFromEpsg(32733).name, 'WGS 84 / UTM zone 33S');
    assert.equal(crsFromEpsg(2154), crsFromEpsg(2154), 'cached');
  });

  it('epsg-index lookups are normalised for proj4js', () => {
    // proj4js would silently use WGS84 for +ellps names it lacks (WGS72, GSK2011, ...).
    assert.doesNotMatch(crsFromEpsg(32201).proj4, /\+ellps=/);
    assert.match(crsFromEpsg(32201).proj4, /\+a=6378135 \+rf=298\.26/);
    // Grid-based datum without a Helmert fallback: optional grid, then no shift.
    assert.match(crsFromEpsg(4122).proj4, /\+nadgrids=@NB7783v2\.gsb,@null/);
    const p = proj4(crsFromEpsg(4122).proj4, WGS84).forward([-64, 46]);
    assert.ok(Number.isFinite(p[0]) && Number.isFinite(p[1]));
    // Known-bad rotation units in epsg-index are corrected.
    assert.match(crsFromEpsg(3402).proj4, /\+towgs84=-0\.991,1\.9072,0\.5129,0\.0257899075194932,/);
  });

  it('rejects what it cannot represent, naming the problem', () => {
    assert.throws(() => crsFromEpsg(99999999), /^Error: unsupported CRS: EPSG:99999999 not found in epsg-index/);
    assert.throws(() => crsFromEpsg(1.5), /unsupported CRS: EPSG code 1.5/);
    assert.throws(() => crsFromEpsg(9001), /unsupported CRS: EPSG:9001 is a CRS-GCENCRS/);
    assert.throws(() => crsFromEpsg(2046), /unsupported CRS: EPSG:2046 has axis order wsu/);
    assert.throws(() => crsFromEpsg(54042), /unsupported CRS: EPSG:54042: proj4js cannot use "\+proj=wintri"/);
  });

  const LCC_KEYS: NamedGeoKeys = {
    GTModelTypeGeoKey: 1,
    ProjectedCSTypeGeoKey: 32767,
    GeographicTypeGeoKey: 4269,
    GeogAngularUnitsGeoKey: 9102,
    ProjCoordTransGeoKey: 8,
    ProjLinearUnitsGeoKey: 9001,
    ProjStdParallel1GeoKey: 33,
    ProjStdParallel2GeoKey: 45,
    ProjFalseOriginLatGeoKey: 39,
    ProjFalseOriginLongGeoKey: -96,
    ProjFalseOriginEastingGeoKey: 1000000,
    ProjFalseOriginNorthingGeoKey: 500000,
  };

  it('unsupported ProjCoordTransGeoKey throws a clear message', () => {
    assert.throws(
      () => crsFromNamedKeys({ ...LCC_KEYS, ProjCoordTransGeoKey: 27 }),
      /^Error: unsupported CRS: ProjCoordTransGeoKey 27 \(Transverse Mercator \(South Oriented\)\)$/,
    );
    assert.throws(() => crsFromNamedKeys({ ...LCC_KEYS, ProjCoordTransGeoKey: 4 }), /unsupported CRS: ProjCoordTransGeoKey 4 \(Oblique Mercator \(Laborde\)\)/);
    assert.throws(() => crsFromNamedKeys({ ...LCC_KEYS, ProjCoordTransGeoKey: 999 }), /unsupported CRS: ProjCoordTransGeoKey 999$/);
  });

  it('other unsupported keys name the key', () => {
    const { ProjCoordTransGeoKey: _ct, ...noCt } = LCC_KEYS;
    assert.throws(() => crsFromNamedKeys({ ...noCt, ProjectionGeoKey: 10101 }), /unsupported CRS: ProjectionGeoKey 10101/);
    assert.throws(() => crsFromNamedKeys(noCt), /unsupported CRS: user-defined ProjectedCSTypeGeoKey without ProjCoordTransGeoKey or ProjectionGeoKey/);
    assert.throws(() => crsFromNamedKeys({ GTModelTypeGeoKey: 3 }), /unsupported CRS: GTModelTypeGeoKey 3 \(geocentric\)/);
    assert.throws(() => crsFromNamedKeys({ ...LCC_KEYS, ProjLinearUnitsGeoKey: 9999 }), /unsupported CRS: ProjLinearUnitsGeoKey 9999/);
    assert.throws(() => crsFromNamedKeys({ ...LCC_KEYS, GeogAngularUnitsGeoKey: 9110 }), /unsupported CRS: GeogAngularUnitsGeoKey 9110/);
    assert.throws(() => crsFromNamedKeys({ ...LCC_KEYS, GeographicTypeGeoKey: 32767, GeogEllipsoidGeoKey: 7999 }), /unsupported CRS: GeogEllipsoidGeoKey 7999/);
    assert.throws(() => crsFromNamedKeys({ ...LCC_KEYS, GeographicTypeGeoKey: 32767 }), /unsupported CRS: no ellipsoid/);
    assert.throws(() => crsFromNamedKeys({ ...LCC_KEYS, GeographicTypeGeoKey: 12345678 }), /unsupported CRS: GeographicTypeGeoKey 12345678/);
    assert.throws(() => crsFromNamedKeys({ ...NLCD, GeogTOWGS84GeoKey: [1, 2] }), /unsupported CRS: GeogTOWGS84GeoKey with 2 values/);
    assert.throws(() => crsFromNamedKeys({ GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 99999999 }), /unsupported CRS: ProjectedCSTypeGeoKey 99999999/);
    assert.throws(
      () => crsFromNamedKeys({ GTModelTypeGeoKey: 2, GeographicTypeGeoKey: 32767, GeogAngularUnitsGeoKey: 9101, GeogEllipsoidGeoKey: 7030 }),
      /unsupported CRS: geographic raster in GeogAngularUnitsGeoKey 9101/,
    );
  });

  it('angular parameters in radians (GeogAngularUnitsGeoKey 9101) equal the degree version', () => {
    const r = Math.PI / 180;
    const rad: NamedGeoKeys = {
      ...LCC_KEYS,
      GeogAngularUnitsGeoKey: 9101,
      ProjStdParallel1GeoKey: 33 * r,
      ProjStdParallel2GeoKey: 45 * r,
      ProjFalseOriginLatGeoKey: 39 * r,
      ProjFalseOriginLongGeoKey: -96 * r,
    };
    const a = proj4(crsFromNamedKeys(LCC_KEYS).proj4, WGS84).forward([1100000, 600000]);
    const b = proj4(crsFromNamedKeys(rad).proj4, WGS84).forward([1100000, 600000]);
    assert.ok(Math.abs(a[0]! - b[0]!) < 1e-9 && Math.abs(a[1]! - b[1]!) < 1e-9, `${String(a)} vs ${String(b)}`);
  });

  it('user-defined linear unit size and EPSG ellipsoid / datum codes', () => {
    const ft = crsFromNamedKeys({ ...LCC_KEYS, ProjLinearUnitsGeoKey: 32767, ProjLinearUnitSizeGeoKey: 0.3048, ProjFalseOriginEastingGeoKey: 1000 });
    assert.match(ft.proj4, /\+x_0=304\.8 .*\+units=ft /);
    const byEllipsoid = crsFromNamedKeys({ GTModelTypeGeoKey: 2, GeographicTypeGeoKey: 32767, GeogGeodeticDatumGeoKey: 32767, GeogEllipsoidGeoKey: 7022 });
    assert.equal(byEllipsoid.proj4, '+proj=longlat +a=6378388 +rf=297 +no_defs');
    const nad83 = crsFromNamedKeys({ GTModelTypeGeoKey: 2, GeographicTypeGeoKey: 32767, GeogGeodeticDatumGeoKey: 6269 });
    assert.equal(nad83.proj4, '+proj=longlat +a=6378137 +rf=298.257222101 +towgs84=0,0,0,0,0,0,0 +no_defs');
    const wgs84 = crsFromNamedKeys({ GTModelTypeGeoKey: 2, GeographicTypeGeoKey: 32767, GeogGeodeticDatumGeoKey: 6326, GeogPrimeMeridianGeoKey: 8903 });
    assert.equal(wgs84.proj4, '+proj=longlat +datum=WGS84 +pm=2.337229166667 +no_defs');
  });

  it('polar stereographic: variant B via ProjStdParallel1GeoKey, variant A in radians', () => {
    const base: NamedGeoKeys = {
      GTModelTypeGeoKey: 1,
      ProjectedCSTypeGeoKey: 32767,
      GeographicTypeGeoKey: 4326,
      ProjCoordTransGeoKey: 15,
      ProjStraightVertPoleLongGeoKey: -45,
      ProjFalseEastingGeoKey: 0,
      ProjFalseNorthingGeoKey: 0,
    };
    const b = crsFromNamedKeys({ ...base, ProjNatOriginLatGeoKey: 90, ProjStdParallel1GeoKey: 70 });
    assert.match(b.proj4, /\+lat_0=90 \+lat_ts=70 \+lon_0=-45 /);
    const p1 = proj4(b.proj4, WGS84).forward([-450000, -1050000]);
    const p2 = proj4(crsFromEpsg(3413).proj4, WGS84).forward([-450000, -1050000]);
    assert.ok(Math.abs(p1[0]! - p2[0]!) < 1e-9 && Math.abs(p1[1]! - p2[1]!) < 1e-9);
    // No latitude key at all: the pole (90), not 90 radians.
    const a = crsFromNamedKeys({ ...base, GeogAngularUnitsGeoKey: 9101, ProjStraightVertPoleLongGeoKey: 0, ProjScaleAtNatOriginGeoKey: 0.994 });
    assert.match(a.proj4, /\+proj=stere \+lat_0=90 \+lon_0=0 \+k=0\.994 /);
  });

  it('an unknown PCS code falls back to the parameter keys when present', () => {
    const crs = crsFromNamedKeys({ ...LCC_KEYS, ProjectedCSTypeGeoKey: 99999999 });
    assert.match(crs.proj4, /^\+proj=lcc /);
    assert.equal(crs.epsg, undefined);
  });
});
