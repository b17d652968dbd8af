/*
 * The C library's allocator, for Node: returning freed memory to the system.
 *
 *   trim()  -> 1 when memory was returned, 0 when none was, -ENOSYS without glibc
 *
 * glibc keeps what a thread's arena freed mapped (only the top of an arena shrinks), so a
 * daemon's machine threads keep the peak of what compiling their guest's code took long after
 * it is freed. malloc_trim(0) gives the free pages of every arena back, as QEMU does after its
 * RCU callbacks (util/rcu.c).
 */
#include <errno.h>
#include <node_api.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  int32_t r;
#ifdef __GLIBC__
  r = malloc_trim(0);
#else
  r = -ENOSYS;
#endif
  napi_value out;
  napi_create_int32(env, r, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "trim", NULL, trim, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
