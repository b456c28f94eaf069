/*
 * libdeflate's whole-buffer zlib coder for Node (N-API), linked statically with Debian's
 * libdeflate:
 * - `inflate(src, dst)` decodes the zlib stream `src` into `dst` and answers the bytes
 *   written, or -1 when libdeflate cannot (corrupt data, or more output than `dst` holds), for
 *   the caller to hand the block to Node's zlib, which says why;
 * - `deflate(src, level)` encodes `src` as a zlib stream at libdeflate's `level` (1-12) and
 *   answers it as a Uint8Array.
 * One decompressor and one compressor a level for each thread (N-API instance data), freed
 * with it.
 *
 * And `mallocThresholds(mapBytes, trimBytes)`: glibc's malloc serves allocations of less than
 * `mapBytes` from its heaps (mallopt M_MMAP_THRESHOLD) and gives back the free top of a heap
 * once it passes `trimBytes` (M_TRIM_THRESHOLD), both fixed: left to itself glibc moves them
 * each time a mapped block is freed. And `trim()`: gives back every free page inside the heaps
 * (malloc_trim). Both answer false where the C library is not glibc (`trim`: or nothing was
 * given back).
 *
 * And `externalMemory(bytes)`: tells V8 that this thread holds `bytes` more (or, negative, fewer)
 * bytes outside its heap (napi_adjust_external_memory), which it counts towards its next
 * collection, as it does an ArrayBuffer's own; answers the thread's count.
 *
 * And `copyRows(dst, dstAt, dstStride, src, srcAt, srcStride, rowBytes, rows)`: `rows` rows of
 * `rowBytes` bytes from `src` to `dst` (any typed arrays; offsets and strides in bytes from
 * the start of each view), one memmove a row. V8 copies to or from a SharedArrayBuffer (the
 * render threads' decoded blocks) with relaxed atomic stores, about half as fast. A range past
 * either view throws, having copied nothing.
 *
 * And `rowChecksums(src, srcAt, srcStride, rowBytes, rows)`: the CRC-32 and the Adler-32 of
 * those rows one after another (libdeflate's, as zlib computes them), as 16 hex digits.
 */
#include <libdeflate.h>
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

struct coders {
  struct libdeflate_decompressor *decompressor;
  struct libdeflate_compressor *compressors[13];
};

static void free_coders(napi_env env, void *data, void *hint) {
  struct coders *c = data;
  (void)env;
  (void)hint;
  if (c->decompressor) libdeflate_free_decompressor(c->decompressor);
  for (int i = 0; i < 13; i++)
    if (c->compressors[i]) libdeflate_free_compressor(c->compressors[i]);
  free(c);
}

static struct coders *coders_of(napi_env env) {
  struct coders *c = NULL;
  if (napi_get_instance_data(env, (void **)&c) == napi_ok && c != NULL) return c;
  c = calloc(1, sizeof *c);
  if (c == NULL || napi_set_instance_data(env, c, free_coders, NULL) != napi_ok) {
    free(c);
    return NULL;
  }
  return c;
}

static int bytes_of(napi_env env, napi_value value, void **data, size_t *length) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, data, &buffer, &offset) != napi_ok) return 0;
  return type == napi_uint8_array;
}

static napi_value inflate(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value result;
  void *src, *dst;
  size_t src_len, dst_len, written = 0;
  struct coders *c;
  double answer = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !bytes_of(env, argv[0], &src, &src_len) ||
      !bytes_of(env, argv[1], &dst, &dst_len)) {
    napi_throw_type_error(env, NULL, "inflate(src: Uint8Array, dst: Uint8Array)");
    return NULL;
  }
  c = coders_of(env);
  if (c != NULL && c->decompressor == NULL) c->decompressor = libdeflate_alloc_decompressor();
  if (c == NULL || c->decompressor == NULL) {
    napi_throw_error(env, NULL, "libdeflate: out of memory");
    return NULL;
  }
  enum libdeflate_result r = libdeflate_zlib_decompress(c->decompressor, src, src_len, dst, dst_len, &written);
  if (r == LIBDEFLATE_SUCCESS || r == LIBDEFLATE_SHORT_OUTPUT) answer = (double)written;
  napi_create_double(env, answer, &result);
  return result;
}

static napi_value deflate(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value buffer, result;
  void *src, *out;
  size_t src_len, bound, written;
  int32_t level;
  struct coders *c;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !bytes_of(env, argv[0], &src, &src_len) ||
      napi_get_value_int32(env, argv[1], &level) != napi_ok || level < 1 || level > 12) {
    napi_throw_type_error(env, NULL, "deflate(src: Uint8Array, level: 1-12)");
    return NULL;
  }
  c = coders_of(env);
  if (c != NULL && c->compressors[level] == NULL) c->compressors[level] = libdeflate_alloc_compressor(level);
  if (c == NULL || c->compressors[level] == NULL) {
    napi_throw_error(env, NULL, "libdeflate: out of memory");
    return NULL;
  }
  bound = libdeflate_zlib_compress_bound(c->compressors[level], src_len);
  if (napi_create_arraybuffer(env, bound, &out, &buffer) != napi_ok) return NULL;
  written = libdeflate_zlib_compress(c->compressors[level], src, src_len, out, bound);
  if (written == 0) {
    napi_throw_error(env, NULL, "libdeflate: compressed data past its bound");
    return NULL;
  }
  if (napi_create_typedarray(env, napi_uint8_array, written, buffer, 0, &result) != napi_ok) return NULL;
  return result;
}

static napi_value malloc_thresholds(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value result;
  int64_t map, trim;
  int set = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_int64(env, argv[0], &map) != napi_ok ||
      napi_get_value_int64(env, argv[1], &trim) != napi_ok || map < 0 || map > 32 * 1024 * 1024 || trim < 0 || trim > 1024 * 1024 * 1024) {
    napi_throw_type_error(env, NULL, "mallocThresholds(mapBytes: 0-33554432, trimBytes: 0-1073741824)");
    return NULL;
  }
#ifdef __GLIBC__
  set = mallopt(M_MMAP_THRESHOLD, (int)map) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim) == 1;
#endif
  napi_get_boolean(env, set, &result);
  return result;
}

static napi_value trim(napi_env env, napi_callback_info info) {
  napi_value result;
  int released = 0;
  (void)info;
#ifdef __GLIBC__
  released = malloc_trim(0);
#endif
  napi_get_boolean(env, released, &result);
  return result;
}

static napi_value external_memory(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value result;
  int64_t bytes, total = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int64(env, argv[0], &bytes) != napi_ok) {
    napi_throw_type_error(env, NULL, "externalMemory(bytes: integer)");
    return NULL;
  }
  if (napi_adjust_external_memory(env, bytes, &total) != napi_ok) return NULL;
  napi_create_double(env, (double)total, &result);
  return result;
}

/* The bytes of any typed array: its data and byte length. */
static int view_of(napi_env env, napi_value value, unsigned char **data, size_t *bytes) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t length, offset, size;
  void *p;
  if (napi_get_typedarray_info(env, value, &type, &length, &p, &buffer, &offset) != napi_ok) return 0;
  switch (type) {
  case napi_int8_array:
  case napi_uint8_array:
  case napi_uint8_clamped_array:
    size = 1;
    break;
  case napi_int16_array:
  case napi_uint16_array:
    size = 2;
    break;
  case napi_int32_array:
  case napi_uint32_array:
  case napi_float32_array:
    size = 4;
    break;
  default:
    size = 8;
  }
  *data = p;
  *bytes = length * size;
  return 1;
}

/* A whole number from 0 to 2^52, or -1. */
static double whole(napi_env env, napi_value value) {
  double v;
  if (napi_get_value_double(env, value, &v) != napi_ok || !(v >= 0 && v <= 4503599627370496.0) || v != (double)(int64_t)v) return -1;
  return v;
}

static napi_value copy_rows(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_value result;
  unsigned char *dst, *src;
  size_t dst_len, src_len;
  double n[8];
  int k;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 8 || !view_of(env, argv[0], &dst, &dst_len) ||
      !view_of(env, argv[3], &src, &src_len)) {
    napi_throw_type_error(env, NULL, "copyRows(dst, dstAt, dstStride, src, srcAt, srcStride, rowBytes, rows): typed arrays and whole numbers");
    return NULL;
  }
  for (k = 1; k < 8; k++) {
    if (k == 3) continue;
    n[k] = whole(env, argv[k]);
    if (n[k] < 0) {
      napi_throw_type_error(env, NULL, "copyRows(dst, dstAt, dstStride, src, srcAt, srcStride, rowBytes, rows): typed arrays and whole numbers");
      return NULL;
    }
  }
  /* dstAt, dstStride, srcAt, srcStride, rowBytes, rows */
  if (n[6] > 0 && n[7] > 0 && (n[1] + (n[7] - 1) * n[2] + n[6] > (double)dst_len || n[4] + (n[7] - 1) * n[5] + n[6] > (double)src_len)) {
    napi_throw_range_error(env, NULL, "copyRows: a row past the end of a view");
    return NULL;
  }
  if (n[6] > 0)
    for (k = 0; k < (int)n[7]; k++) memmove(dst + (size_t)n[1] + (size_t)k * (size_t)n[2], src + (size_t)n[4] + (size_t)k * (size_t)n[5], (size_t)n[6]);
  napi_get_undefined(env, &result);
  return result;
}

static napi_value row_checksums(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_value result;
  unsigned char *src;
  size_t src_len;
  double n[5];
  uint32_t crc = 0, adler = 1;
  char hex[17];
  int k;
  static const char *usage = "rowChecksums(src, srcAt, srcStride, rowBytes, rows): a typed array and whole numbers";
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 || !view_of(env, argv[0], &src, &src_len)) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  for (k = 1; k < 5; k++) {
    n[k] = whole(env, argv[k]);
    if (n[k] < 0) {
      napi_throw_type_error(env, NULL, usage);
      return NULL;
    }
  }
  /* srcAt, srcStride, rowBytes, rows */
  if (n[3] > 0 && n[4] > 0 && n[1] + (n[4] - 1) * n[2] + n[3] > (double)src_len) {
    napi_throw_range_error(env, NULL, "rowChecksums: a row past the end of the view");
    return NULL;
  }
  if (n[3] > 0)
    for (k = 0; k < (int)n[4]; k++) {
      const unsigned char *row = src + (size_t)n[1] + (size_t)k * (size_t)n[2];
      crc = libdeflate_crc32(crc, row, (size_t)n[3]);
      adler = libdeflate_adler32(adler, row, (size_t)n[3]);
    }
  snprintf(hex, sizeof hex, "%08x%08x", crc, adler);
  napi_create_string_latin1(env, hex, 16, &result);
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "inflate", NAPI_AUTO_LENGTH, inflate, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "inflate", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "deflate", NAPI_AUTO_LENGTH, deflate, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "deflate", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "mallocThresholds", NAPI_AUTO_LENGTH, malloc_thresholds, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "mallocThresholds", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "externalMemory", NAPI_AUTO_LENGTH, external_memory, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "externalMemory", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "copyRows", NAPI_AUTO_LENGTH, copy_rows, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "copyRows", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "rowChecksums", NAPI_AUTO_LENGTH, row_checksums, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "rowChecksums", fn) != napi_ok) return NULL;
  return exports;
}
