/*
 * libdeflate's whole-buffer zlib decoder for Node (N-API): `inflate(src, dst)` decodes the
 * zlib stream `src` into `dst` and answers the bytes written, or -1 when libdeflate cannot
 * (corrupt data, or more output than `dst` holds), for the caller to hand the block to Node's
 * zlib, which says why. One decompressor a thread (N-API instance data), freed with it.
 */
#include <libdeflate.h>
#include <node_api.h>
#include <stddef.h>

static void free_decompressor(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  libdeflate_free_decompressor((struct libdeflate_decompressor *)data);
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
  struct libdeflate_decompressor *d = NULL;
  double answer = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !bytes_of(env, argv[0], &src, &src_len) ||
      !bytes_of(env, argv[1], &dst, &dst_len)) {
    napi_throw_type_error(env, NULL, "inflate(src: Uint8Array, dst: Uint8Array)");
    return NULL;
  }
  if (napi_get_instance_data(env, (void **)&d) != napi_ok || d == NULL) {
    d = libdeflate_alloc_decompressor();
    if (d == NULL || napi_set_instance_data(env, d, free_decompressor, NULL) != napi_ok) {
      napi_throw_error(env, NULL, "libdeflate: out of memory");
      return NULL;
    }
  }
  enum libdeflate_result r = libdeflate_zlib_decompress(d, src, src_len, dst, dst_len, &written);
  if (r == LIBDEFLATE_SUCCESS || r == LIBDEFLATE_SHORT_OUTPUT) answer = (double)written;
  napi_create_double(env, answer, &result);
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "inflate", NAPI_AUTO_LENGTH, inflate, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "inflate", fn) != napi_ok) return NULL;
  return exports;
}
