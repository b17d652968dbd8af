/*
 * Open file description locks for Node (Linux fcntl F_OFD_SETLK / F_OFD_GETLK), the locks
 * QEMU puts on image files (block/file-posix.c: one byte per permission at offsets 100+bit
 * and 200+bit). Node has no fcntl; this is the whole of what virtus needs of it.
 *
 *   setLock(fd, type, start, length)  -> 0, or -errno (EAGAIN/EACCES: someone holds a conflicting lock)
 *   getLock(fd, type, start, length)  -> the type of a lock another description holds that
 *                                        conflicts with `type` (UNLCK when none), or -errno
 *   RDLCK, WRLCK, UNLCK               -> the l_type values
 *
 * Without OFD locks (not Linux, or an old kernel) every call answers -ENOSYS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <node_api.h>

static int32_t lock_call(napi_env env, napi_callback_info info, int get) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd, type;
  int64_t start, length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &type) != napi_ok ||
      napi_get_value_int64(env, argv[2], &start) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok) {
    return -EINVAL;
  }
#ifdef F_OFD_SETLK
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = (short)type;
  fl.l_whence = SEEK_SET;
  fl.l_start = (off_t)start;
  fl.l_len = (off_t)length;
  if (fcntl(fd, get ? F_OFD_GETLK : F_OFD_SETLK, &fl) < 0) return -errno;
  return get ? fl.l_type : 0;
#else
  (void)fd; (void)type; (void)start; (void)length; (void)get;
  return -ENOSYS;
#endif
}

static napi_value int_value(napi_env env, int32_t v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

static napi_value set_lock(napi_env env, napi_callback_info info) {
  return int_value(env, lock_call(env, info, 0));
}

static napi_value get_lock(napi_env env, napi_callback_info info) {
  return int_value(env, lock_call(env, info, 1));
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "setLock", NULL, set_lock, NULL, NULL, NULL, napi_enumerable, NULL },
    { "getLock", NULL, get_lock, NULL, NULL, NULL, napi_enumerable, NULL },
    { "RDLCK", NULL, NULL, NULL, NULL, int_value(env, F_RDLCK), napi_enumerable, NULL },
    { "WRLCK", NULL, NULL, NULL, NULL, int_value(env, F_WRLCK), napi_enumerable, NULL },
    { "UNLCK", NULL, NULL, NULL, NULL, int_value(env, F_UNLCK), napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
