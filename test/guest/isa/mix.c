/* A program written to make gcc emit a wide mix of RV64GC code for the disassembler's
   comparison with objdump (test/isa/disasm.test.ts): integer and 32-bit arithmetic, mul/div,
   shifts and bit tricks, single and double precision (fused multiply-add, conversions with
   rounding modes, comparisons, classification, sign injection, min/max, sqrt), atomics (AMOs,
   LR/SC loops, fences), CSR access, jump tables, indirect calls, long double and __int128
   through libgcc, struct copies. Built at several optimisation levels; never run. */
#include <stdint.h>
#include <stddef.h>
#include "test.h"

void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *p = d;
  const unsigned char *q = s;
  while (n--) *p++ = *q++;
  return d;
}

void *memset(void *d, int c, size_t n) {
  unsigned char *p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}

/* Library functions gcc may call instead of inlining (freestanding: nothing else provides
   them). With F and D they are single instructions. */
#ifdef __riscv_flen
double fmin(double a, double b) { double r; asm("fmin.d %0, %1, %2" : "=f"(r) : "f"(a), "f"(b)); return r; }
double fmax(double a, double b) { double r; asm("fmax.d %0, %1, %2" : "=f"(r) : "f"(a), "f"(b)); return r; }
float fminf(float a, float b) { float r; asm("fmin.s %0, %1, %2" : "=f"(r) : "f"(a), "f"(b)); return r; }
float fmaxf(float a, float b) { float r; asm("fmax.s %0, %1, %2" : "=f"(r) : "f"(a), "f"(b)); return r; }
double sqrt(double a) { double r; asm("fsqrt.d %0, %1" : "=f"(r) : "f"(a)); return r; }
float sqrtf(float a) { float r; asm("fsqrt.s %0, %1" : "=f"(r) : "f"(a)); return r; }
#else
double fmin(double a, double b) { return a < b ? a : b; }
double fmax(double a, double b) { return a > b ? a : b; }
float fminf(float a, float b) { return a < b ? a : b; }
float fmaxf(float a, float b) { return a > b ? a : b; }
double sqrt(double a) { double r = a; for (int i = 0; i < 20; i++) r = (r + a / r) / 2; return r; }
float sqrtf(float a) { return (float)sqrt(a); }
double fma(double a, double b, double c) { return a * b + c; }
float fmaf(float a, float b, float c) { return a * b + c; }
#endif

struct point { double x, y, z; int32_t tag; uint8_t flags[20]; };

static volatile uint64_t sink64;
static volatile uint32_t sink32;
static volatile double sinkd;
static volatile float sinkf;
static uint64_t counter;
static uint32_t counter32;
static struct point points[16];

__attribute__((noinline)) int64_t int_mix(int64_t a, int64_t b, uint32_t c, int32_t d) {
  int64_t r = a * b + (a / (b | 1)) - (a % (b | 3));
  uint64_t u = (uint64_t)a / ((uint64_t)b | 1) + (uint64_t)a % ((uint64_t)b | 5);
  int32_t w = d * (int32_t)c + d / ((int32_t)c | 1) - (int32_t)((uint32_t)d % (c | 7));
  r ^= (a << 13) | ((uint64_t)b >> 7) | (a >> 3);
  r += (int64_t)(c << 3) + (int32_t)(c >> 5) + (d >> 2);
  r += __builtin_popcountll(u) + __builtin_clzll(u | 1) + __builtin_ctzll(u | 0x100);
  r += (a < b) + ((uint64_t)a < (uint64_t)b) + (a == 0) + (b != 0) + (d > 17);
  r += (int64_t)((__int128)a * b >> 64) + (int64_t)((unsigned __int128)u * (uint64_t)a >> 64);
  return r + w + (int64_t)~u + -a;
}

__attribute__((noinline)) uint64_t wide_div(unsigned __int128 n, uint64_t d) {
  return (uint64_t)(n / (d | 1)) ^ (uint64_t)(n % (d | 1));
}

__attribute__((noinline)) double fp_mix(double a, double b, float c, float d, int64_t i, uint32_t u) {
  double r = a * b + c;
  r = __builtin_fma(a, b, r) - __builtin_fma(-a, b, 1.5);
  float s = c * d - c / (d + 1.0f);
  s = __builtin_fmaf(c, d, s);
  s += __builtin_sqrtf(__builtin_fabsf(s)) + __builtin_fminf(c, d) + __builtin_fmaxf(c, d);
  r += __builtin_sqrt(__builtin_fabs(r)) + __builtin_fmin(a, b) + __builtin_fmax(a, b);
  r += __builtin_copysign(a, b) + (double)__builtin_copysignf(c, -d);
  r += (double)i + (double)u + (float)i + (float)u;
  r += (double)(int64_t)a + (double)(uint64_t)b + (double)(int32_t)c + (double)(uint32_t)d;
  r += (a < b) + (a <= b) + (a == b) + (c < d) + (c >= d);
  r += __builtin_isnan(a) + __builtin_isinf(b) + __builtin_isnan(c) + __builtin_isfinite(d);
  r += (double)s + (float)r;
  sinkf = (float)(int64_t)s + (float)(uint64_t)r;
  sink64 = (uint64_t)a + (uint64_t)(int64_t)r + (uint32_t)c + (int32_t)d;
  union { double d; uint64_t u; } bits = { r };
  union { float f; uint32_t u; } fbits = { s };
  sink64 ^= bits.u ^ fbits.u;
  return r;
}

__attribute__((noinline)) long double quad_mix(long double a, long double b, int64_t i) {
  long double r = a * b + a / (b + 1) - (long double)i;
  return r < a ? r : (long double)(double)r + (long double)(float)b;
}

__attribute__((noinline)) uint64_t atomics(uint64_t v, uint32_t w) {
  uint64_t r = __atomic_fetch_add(&counter, v, __ATOMIC_RELAXED);
  r += __atomic_fetch_and(&counter, ~v, __ATOMIC_ACQUIRE);
  r += __atomic_fetch_or(&counter, v << 1, __ATOMIC_RELEASE);
  r += __atomic_fetch_xor(&counter, v >> 1, __ATOMIC_ACQ_REL);
  r += __atomic_exchange_n(&counter, v, __ATOMIC_SEQ_CST);
  r += __atomic_fetch_add(&counter32, w, __ATOMIC_SEQ_CST);
  r += __atomic_fetch_sub(&counter32, w, __ATOMIC_RELAXED);
  uint64_t expected = v;
  __atomic_compare_exchange_n(&counter, &expected, r, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
  uint32_t expected32 = w;
  __atomic_compare_exchange_n(&counter32, &expected32, (uint32_t)r, 1, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  r += __atomic_load_n(&counter, __ATOMIC_SEQ_CST);
  __atomic_store_n(&counter32, w, __ATOMIC_RELEASE);
  return r + expected + expected32;
}

__attribute__((noinline)) uint64_t csrs(void) {
  uint64_t r = read_csr(mstatus) + read_csr(mhartid) + read_csr(misa) + read_csr(mcause);
  r += read_csr(cycle) + read_csr(instret) + read_csr(fcsr) + read_csr(frm) + read_csr(fflags);
  write_csr(mscratch, r);
  set_csr(mie, 1 << 7);
  clear_csr(mie, 8);
  write_csr(frm, 2);
  asm volatile("fence.i" ::: "memory");
  asm volatile("sfence.vma" ::: "memory");
  return r;
}

__attribute__((noinline)) int dispatch(int op, int a, int b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / (b | 1);
    case 4: return a << (b & 31);
    case 5: return a >> (b & 31);
    case 6: return a & b;
    case 7: return a | b;
    case 8: return a ^ b;
    case 9: return a < b;
    case 10: return -a;
    default: return 0;
  }
}

typedef int64_t (*binop)(int64_t, int64_t);
static int64_t add(int64_t a, int64_t b) { return a + b; }
static int64_t sub(int64_t a, int64_t b) { return a - b; }
static int64_t mulx(int64_t a, int64_t b) { return a * b; }
static const binop ops[] = { add, sub, mulx };

__attribute__((noinline)) int64_t indirect(unsigned i, int64_t a, int64_t b) {
  return ops[i % 3](a, b);
}

__attribute__((noinline)) double structs(int n) {
  struct point acc = points[0];
  for (int i = 1; i < n && i < 16; i++) {
    struct point p = points[i];
    acc.x += p.x;
    acc.y = acc.y * p.y;
    acc.z -= p.z;
    acc.tag ^= p.tag;
    acc.flags[i] = p.flags[i] | 1;
  }
  points[n & 15] = acc;
  return acc.x + acc.y + acc.z + acc.tag;
}

__attribute__((noinline)) uint64_t fib(uint64_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

__attribute__((noinline)) void fill(uint8_t *buf, size_t n, uint16_t *h, uint32_t *w) {
  for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(i * 7);
  for (size_t i = 0; i < n / 2; i++) h[i] = (uint16_t)(buf[i] | (buf[i + 1] << 8));
  for (size_t i = 0; i < n / 4; i++) w[i] = (uint32_t)h[i] * 0x01000193u;
  int8_t sb = (int8_t)buf[3];
  int16_t sh = (int16_t)h[1];
  int32_t sw = (int32_t)w[0];
  sink64 = (uint64_t)(int64_t)sb + (uint64_t)(int64_t)sh + (uint64_t)(int64_t)sw;
}

int main(void) {
  static uint8_t buf[64];
  static uint16_t h[32];
  static uint32_t w[16];
  fill(buf, sizeof buf, h, w);
  sink64 = (uint64_t)int_mix((int64_t)sink64, 12345, 77, -9) + wide_div(sink64, 3);
  sinkd = fp_mix(1.5, -2.25, 3.0f, 0.5f, -7, 9);
  sinkd += (double)quad_mix(1.0L, 3.0L, 5);
  sink64 += atomics(sink64, sink32) + csrs() + (uint64_t)dispatch((int)sink32, 3, 4);
  sink64 += (uint64_t)indirect(sink32, 6, 7) + (uint64_t)structs(5) + fib(10);
  return (int)sink64;
}
