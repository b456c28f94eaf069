#!/usr/bin/env bash
# Makes the benchmark's rasters in bench/data (git-ignored), skipping any that exist:
#
#   dem.tif         Float32 DEM, EPSG:3857, SIZE x SIZE (default 8192), COG: 512 px blocks,
#                   DEFLATE + floating-point predictor (TIFF predictor 3), overviews.
#   dem4x.tif       the same area at twice the resolution per side (4x the pixels), same layout:
#                   the overview target (a zoom-8 tile must cost about the same from both).
#   scene.tif       4-band UInt16 scene (blue, green, red, NIR) in UTM 12N (EPSG:32612), COG
#                   with DEFLATE + horizontal predictor and overviews: NDVI needs reprojection.
#   scene-rgb-deflate.tif, scene-rgb-jpeg.tif
#                   the scene's NIR, red and green bands as 8-bit RGB, DEFLATE and JPEG.
#   dem-relief.tif  dem.tif coloured (gdaldem color-relief, RGBA): gdal2tiles' input.
#   dem-pieces/     dem.tif cut into PIECES x PIECES (BENCH_DEM_PIECES, default 8: 64 pieces
#                   of 1024x1024) COGs, dem_rRR_cCC.tif, DEFLATE + predictor, 512 px blocks:
#                   the mosaic target (a tile over the 64-member mosaic against dem.tif).
#
# The DEM is the shipped 100 m SRTM excerpt (layers/data/srtm_jasper_ab_100m.tif) warped to
# Web Mercator with cubic resampling, cropped to a square inside its footprint, with fractal
# detail added by bench/terrain.ts; the scene is the shipped Landsat 8 red and NIR bands of
# Zion upsampled the same way, with texture and sensor noise. Needs GDAL (gdalwarp,
# gdal_translate, gdaltransform) and the compiled dist/bench/terrain.js (npm run build).
set -euo pipefail
export PROJ_NETWORK=OFF
export GDAL_NUM_THREADS=ALL_CPUS
export GDAL_CACHEMAX=1024

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
OUT=${BENCH_DATA:-$HERE/data}
SIZE=${BENCH_DEM_SIZE:-8192}
SCENE_SIZE=${BENCH_SCENE_SIZE:-8192}
TERRAIN="$ROOT/dist/bench/terrain.js"
SRTM="$ROOT/layers/data/srtm_jasper_ab_100m.tif"
RED="$ROOT/layers/data/landsat8_zion_20150818_b4_red.tif"
NIR="$ROOT/layers/data/landsat8_zion_20150818_b5_nir.tif"

[ -f "$TERRAIN" ] || { echo "make-data: $TERRAIN is missing: run npm run build first" >&2; exit 1; }
mkdir -p "$OUT"
TMP=$(mktemp -d "$OUT/.tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

COG=(-of COG -co BLOCKSIZE=512 -co COMPRESS=DEFLATE -co LEVEL=6 -co NUM_THREADS=ALL_CPUS -co OVERVIEW_RESAMPLING=AVERAGE -co BIGTIFF=IF_SAFER)
log() { echo "make-data: $*" >&2; }

# An axis-aligned square inside the footprint of a rotated source, in EPSG:3857:
# "cx cy halfside" from the source's four corners (pixel coordinates through gdaltransform).
inner_square() {
  local src=$1 w h
  read -r w h < <(gdalinfo "$src" | sed -n 's/^Size is \([0-9]*\), \([0-9]*\)$/\1 \2/p')
  printf '0 0\n%s 0\n0 %s\n%s %s\n' "$w" "$h" "$w" "$h" | gdaltransform -t_srs EPSG:3857 "$src" |
    awk '{ x[NR] = $1; y[NR] = $2 }
         END {
           # corners: 1 upper left, 2 upper right, 3 lower left, 4 lower right
           xmin = x[1] > x[3] ? x[1] : x[3]; xmax = x[2] < x[4] ? x[2] : x[4];
           ymax = y[1] < y[2] ? y[1] : y[2]; ymin = y[3] > y[4] ? y[3] : y[4];
           side = (xmax - xmin < ymax - ymin ? xmax - xmin : ymax - ymin) * 0.98;
           printf "%.3f %.3f %.3f\n", (xmin + xmax) / 2, (ymin + ymax) / 2, side / 2 }'
}

if [ ! -f "$OUT/dem.tif" ] || [ ! -f "$OUT/dem4x.tif" ]; then
  read -r CX CY HALF < <(inner_square "$SRTM")
  TE=$(awk -v cx="$CX" -v cy="$CY" -v h="$HALF" 'BEGIN { printf "%.3f %.3f %.3f %.3f", cx - h, cy - h, cx + h, cy + h }')
  # Ground size of a pixel: Web Mercator metres times cos(latitude) at the centre.
  GROUND=$(awk -v cy="$CY" -v h="$HALF" -v n="$SIZE" 'BEGIN { lat = atan2(exp(cy / 6378137), 1) * 2 - 3.14159265358979 / 2; printf "%.4f", 2 * h / n * cos(lat) }')
  log "DEM ${SIZE}x${SIZE} over EPSG:3857 [$TE], $GROUND m ground pixels"
  gdalwarp -q -t_srs EPSG:3857 -te $TE -ts "$SIZE" "$SIZE" -r cubic -ot Float32 -dstnodata nan \
    -wo NUM_THREADS=ALL_CPUS -multi -of ENVI "$SRTM" "$TMP/dem.envi"
  log "adding fractal detail"
  node "$TERRAIN" dem "$TMP/dem.envi" "$SIZE" "$SIZE" "$GROUND"
  if [ ! -f "$OUT/dem.tif" ]; then
    log "writing dem.tif (COG)"
    gdal_translate -q "${COG[@]}" -co PREDICTOR=FLOATING_POINT "$TMP/dem.envi" "$TMP/dem.tif"
    mv "$TMP/dem.tif" "$OUT/dem.tif"
  fi
  if [ ! -f "$OUT/dem4x.tif" ]; then
    log "writing dem4x.tif ($((SIZE * 2))x$((SIZE * 2)), COG)"
    gdal_translate -q "${COG[@]}" -co PREDICTOR=FLOATING_POINT -outsize $((SIZE * 2)) $((SIZE * 2)) -r cubic \
      "$TMP/dem.envi" "$TMP/dem4x.tif"
    mv "$TMP/dem4x.tif" "$OUT/dem4x.tif"
  fi
  rm -f "$TMP"/dem.*
fi

if [ ! -f "$OUT/scene.tif" ]; then
  # A square of the Zion excerpt from its top-left corner, in its own UTM zone.
  read -r ULX ULY RES W < <(gdalinfo "$RED" | awk -F'[(), ]+' '/^Origin/ { ox = $3; oy = $4 } /^Pixel Size/ { px = $4 } /^Size is/ { w = $3 } END { print ox, oy, px, w }')
  SIDE=$(awk -v r="$RES" -v w="$W" 'BEGIN { printf "%.3f", r * w }')
  TE=$(awk -v x="$ULX" -v y="$ULY" -v s="$SIDE" 'BEGIN { printf "%.3f %.3f %.3f %.3f", x, y - s, x + s, y }')
  log "scene ${SCENE_SIZE}x${SCENE_SIZE}x4 UInt16 over EPSG:32612 [$TE]"
  # Bands in as red, NIR, red, NIR; terrain.js turns the first two into blue and green.
  gdalbuildvrt -q -separate "$TMP/rn.vrt" "$RED" "$NIR" "$RED" "$NIR"
  gdalwarp -q -te $TE -ts "$SCENE_SIZE" "$SCENE_SIZE" -r cubic -ot UInt16 -srcnodata 65535 -dstnodata 65535 \
    -wo NUM_THREADS=ALL_CPUS -multi -of ENVI "$TMP/rn.vrt" "$TMP/scene.envi"
  log "adding texture and noise"
  node "$TERRAIN" scene "$TMP/scene.envi" "$SCENE_SIZE" "$SCENE_SIZE"
  log "writing scene.tif (COG)"
  gdal_translate -q "${COG[@]}" -co PREDICTOR=YES \
    -colorinterp_1 blue -colorinterp_2 green -colorinterp_3 red -colorinterp_4 undefined \
    "$TMP/scene.envi" "$TMP/scene.tif"
  mv "$TMP/scene.tif" "$OUT/scene.tif"
fi

# The scene as 8-bit false colour (NIR, red, green) in two encodings of the same pixels:
# grid: DEFLATE with the horizontal predictor, and JPEG (YCbCr, quality 90), what aerial and
# satellite RGB COGs are usually published as.
for codec in deflate jpeg; do
  if [ ! -f "$OUT/scene-rgb-$codec.tif" ]; then
    log "writing scene-rgb-$codec.tif"
    if [ "$codec" = jpeg ]; then opts=(-co COMPRESS=JPEG -co QUALITY=90); else opts=(-co COMPRESS=DEFLATE -co PREDICTOR=YES); fi
    gdal_translate -q -of COG -co BLOCKSIZE=512 -co NUM_THREADS=ALL_CPUS "${opts[@]}" -b 4 -b 3 -b 2 -ot Byte -scale 5000 30000 1 255 -a_nodata none \
      "$OUT/scene.tif" "$TMP/scene-rgb-$codec.tif"
    mv "$TMP/scene-rgb-$codec.tif" "$OUT/scene-rgb-$codec.tif"
  fi
done

if [ ! -f "$OUT/dem-relief.tif" ] && command -v gdaldem >/dev/null; then
  # The same stops as the bench's DEM layer (bench.ts writes them as a colormap).
  cat > "$TMP/ramp.txt" <<'EOF'
nv 0 0 0 0
950 43 107 58
1200 111 154 74
1500 216 201 138
1800 181 131 79
2100 140 106 90
2400 217 212 208
2600 255 255 255
EOF
  log "writing dem-relief.tif (gdaldem color-relief, for gdal2tiles)"
  gdaldem color-relief -q -alpha "$OUT/dem.tif" "$TMP/ramp.txt" "$TMP/dem-relief.tif" \
    -of GTiff -co TILED=YES -co BLOCKXSIZE=512 -co BLOCKYSIZE=512 -co COMPRESS=DEFLATE -co NUM_THREADS=ALL_CPUS
  mv "$TMP/dem-relief.tif" "$OUT/dem-relief.tif"
fi
# dem.tif cut into a grid of PIECES x PIECES COGs, made whole in a temporary folder and moved
# into place, so that a folder with every piece is a finished one. gdal_translate's COG driver
# gives each piece as many overviews as dem.tif has (4: down to 1/16), so that both pyramids end
# at the same scale.
PIECES=${BENCH_DEM_PIECES:-8}
if [ "$(find "$OUT/dem-pieces" -maxdepth 1 -name 'dem_r*_c*.tif' 2>/dev/null | wc -l)" -ne $((PIECES * PIECES)) ]; then
  read -r DW DH < <(gdalinfo "$OUT/dem.tif" | sed -n 's/^Size is \([0-9]*\), \([0-9]*\)$/\1 \2/p')
  PW=$((DW / PIECES))
  PH=$((DH / PIECES))
  log "cutting dem.tif into $((PIECES * PIECES)) pieces of ${PW}x${PH} (dem-pieces/)"
  mkdir -p "$TMP/dem-pieces"
  for ((r = 0; r < PIECES; r++)); do
    for ((c = 0; c < PIECES; c++)); do
      gdal_translate -q -srcwin $((c * PW)) $((r * PH)) "$PW" "$PH" -of COG -co COMPRESS=DEFLATE -co PREDICTOR=YES \
        -co BLOCKSIZE=512 -co OVERVIEW_COUNT=4 -co RESAMPLING=AVERAGE -co NUM_THREADS=ALL_CPUS \
        "$OUT/dem.tif" "$TMP/dem-pieces/$(printf 'dem_r%02d_c%02d.tif' "$r" "$c")"
    done
  done
  rm -rf "$OUT/dem-pieces"
  mv "$TMP/dem-pieces" "$OUT/dem-pieces"
fi
log "done: $(cd "$OUT" && ls -la dem.tif dem4x.tif scene.tif scene-rgb-deflate.tif scene-rgb-jpeg.tif dem-relief.tif 2>/dev/null | awk '{ printf "%s %d MB; ", $NF, $5 / 1048576 }')dem-pieces/ $(du -sm "$OUT/dem-pieces" 2>/dev/null | cut -f1) MB"
