/*
 * Sockets for `virtus exec` (src/host/node/exec/sockets.ts): the guest's socket calls made on
 * host sockets, synchronously. Node has no synchronous socket API; these are the system calls
 * themselves. Addresses are struct sockaddr bytes, the same on riscv64 and the host (Linux's
 * generic layout). Every function returns its result, or -errno.
 *
 *   socket(domain, type, protocol)        connect(fd, addr)       bind(fd, addr)
 *   listen(fd, backlog)                   accept(fd, flags)       name(fd, peer, out)
 *   setsockopt(fd, level, name, value)    getsockopt(fd, level, name, out)
 *   shutdown(fd, how)                     send(fd, buf, flags, addr | null)
 *   recv(fd, buf, flags, addrOut | null)  poll(fd, events)        -> revents, without waiting
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <node_api.h>

#define MAX_ARGS 5

struct args {
  napi_value v[MAX_ARGS];
  size_t n;
};

static int get_args(napi_env env, napi_callback_info info, struct args *a) {
  a->n = MAX_ARGS;
  return napi_get_cb_info(env, info, &a->n, a->v, NULL, NULL) == napi_ok;
}

static int32_t int_arg(napi_env env, struct args *a, size_t i) {
  int32_t v = 0;
  if (i < a->n) napi_get_value_int32(env, a->v[i], &v);
  return v;
}

/* A Buffer argument (NULL for null or undefined). */
static void *buf_arg(napi_env env, struct args *a, size_t i, size_t *len) {
  void *data = NULL;
  *len = 0;
  bool is;
  if (i >= a->n || napi_is_buffer(env, a->v[i], &is) != napi_ok || !is) return NULL;
  napi_get_buffer_info(env, a->v[i], &data, len);
  return data;
}

static napi_value result(napi_env env, long r) {
  napi_value out;
  napi_create_int64(env, r < 0 ? -errno : r, &out);
  return out;
}

static napi_value js_socket(napi_env env, napi_callback_info info) {
  struct args a;
  if (!get_args(env, info, &a)) return NULL;
  return result(env, socket(int_arg(env, &a, 0), int_arg(env, &a, 1), int_arg(env, &a, 2)));
}

static napi_value js_connect(napi_env env, napi_callback_info info) {
  struct args a;
  size_t len;
  if (!get_args(env, info, &a)) return NULL;
  void *addr = buf_arg(env, &a, 1, &len);
  return result(env, connect(int_arg(env, &a, 0), (struct sockaddr *)addr, (socklen_t)len));
}

static napi_value js_bind(napi_env env, napi_callback_info info) {
  struct args a;
  size_t len;
  if (!get_args(env, info, &a)) return NULL;
  void *addr = buf_arg(env, &a, 1, &len);
  return result(env, bind(int_arg(env, &a, 0), (struct sockaddr *)addr, (socklen_t)len));
}

static napi_value js_listen(napi_env env, napi_callback_info info) {
  struct args a;
  if (!get_args(env, info, &a)) return NULL;
  return result(env, listen(int_arg(env, &a, 0), int_arg(env, &a, 1)));
}

static napi_value js_accept(napi_env env, napi_callback_info info) {
  struct args a;
  if (!get_args(env, info, &a)) return NULL;
  return result(env, accept4(int_arg(env, &a, 0), NULL, NULL, int_arg(env, &a, 1)));
}

static napi_value js_name(napi_env env, napi_callback_info info) {
  struct args a;
  size_t len;
  if (!get_args(env, info, &a)) return NULL;
  void *out = buf_arg(env, &a, 2, &len);
  socklen_t sl = (socklen_t)len;
  int fd = int_arg(env, &a, 0);
  int r = int_arg(env, &a, 1) ? getpeername(fd, (struct sockaddr *)out, &sl) : getsockname(fd, (struct sockaddr *)out, &sl);
  return result(env, r < 0 ? r : (long)sl);
}

static napi_value js_setsockopt(napi_env env, napi_callback_info info) {
  struct args a;
  size_t len;
  if (!get_args(env, info, &a)) return NULL;
  void *val = buf_arg(env, &a, 3, &len);
  return result(env, setsockopt(int_arg(env, &a, 0), int_arg(env, &a, 1), int_arg(env, &a, 2), val, (socklen_t)len));
}

static napi_value js_getsockopt(napi_env env, napi_callback_info info) {
  struct args a;
  size_t len;
  if (!get_args(env, info, &a)) return NULL;
  void *out = buf_arg(env, &a, 3, &len);
  socklen_t sl = (socklen_t)len;
  int r = getsockopt(int_arg(env, &a, 0), int_arg(env, &a, 1), int_arg(env, &a, 2), out, &sl);
  return result(env, r < 0 ? r : (long)sl);
}

static napi_value js_shutdown(napi_env env, napi_callback_info info) {
  struct args a;
  if (!get_args(env, info, &a)) return NULL;
  return result(env, shutdown(int_arg(env, &a, 0), int_arg(env, &a, 1)));
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  struct args a;
  size_t len, alen;
  if (!get_args(env, info, &a)) return NULL;
  void *buf = buf_arg(env, &a, 1, &len);
  void *addr = buf_arg(env, &a, 3, &alen);
  return result(env, sendto(int_arg(env, &a, 0), buf, len, int_arg(env, &a, 2) | MSG_NOSIGNAL, (struct sockaddr *)addr, (socklen_t)alen));
}

static napi_value js_recv(napi_env env, napi_callback_info info) {
  struct args a;
  size_t len, alen;
  if (!get_args(env, info, &a)) return NULL;
  void *buf = buf_arg(env, &a, 1, &len);
  void *addr = buf_arg(env, &a, 3, &alen);
  socklen_t sl = (socklen_t)alen;
  return result(env, recvfrom(int_arg(env, &a, 0), buf, len, int_arg(env, &a, 2), (struct sockaddr *)addr, addr ? &sl : NULL));
}

static napi_value js_poll(napi_env env, napi_callback_info info) {
  struct args a;
  if (!get_args(env, info, &a)) return NULL;
  struct pollfd p = { .fd = int_arg(env, &a, 0), .events = (short)int_arg(env, &a, 1), .revents = 0 };
  int r = poll(&p, 1, 0);
  return result(env, r < 0 ? r : p.revents);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "socket", NULL, js_socket, NULL, NULL, NULL, napi_enumerable, NULL },
    { "connect", NULL, js_connect, NULL, NULL, NULL, napi_enumerable, NULL },
    { "bind", NULL, js_bind, NULL, NULL, NULL, napi_enumerable, NULL },
    { "listen", NULL, js_listen, NULL, NULL, NULL, napi_enumerable, NULL },
    { "accept", NULL, js_accept, NULL, NULL, NULL, napi_enumerable, NULL },
    { "name", NULL, js_name, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setsockopt", NULL, js_setsockopt, NULL, NULL, NULL, napi_enumerable, NULL },
    { "getsockopt", NULL, js_getsockopt, NULL, NULL, NULL, napi_enumerable, NULL },
    { "shutdown", NULL, js_shutdown, NULL, NULL, NULL, napi_enumerable, NULL },
    { "send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL },
    { "recv", NULL, js_recv, NULL, NULL, NULL, napi_enumerable, NULL },
    { "poll", NULL, js_poll, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
