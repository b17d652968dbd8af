/* The host reference for the FPU tests: applies one IEEE 754 operation per input record under
   the requested rounding mode (fesetround) and reports the result bits and the exception
   flags (fetestexcept), in RISC-V's fflags encoding.

   Input records (stdin, little-endian): u32 op, u32 rm, u64 a, u64 b, u64 c.
   Output records (stdout): u64 result, u32 flags, u32 zero.
   Operation numbers are listed in test/fpu/reference.ts (OPS); binary32 operands and results
   are the low 32 bits.

   The host is x86-64 with SSE arithmetic (FLT_EVAL_METHOD 0: float operations really are
   binary32) and glibc, whose fma/fmaf use the FMA instructions when the CPU has them and a
   correctly rounded emulation otherwise.

   RISC-V's RMM (round to nearest, ties to max magnitude) has no host mode. It differs from RNE
   only when the exact result is a midpoint, and then takes the neighbour away from zero; its
   flags are RNE's (a midpoint is inexact either way, and at the overflow and tininess
   thresholds both modes round a midpoint the same way, away from zero). So for RMM this
   program evaluates under RNE, and when the exact result, computed in binary128 where it is
   representable, equals the midpoint of the round-toward-zero and round-away results, answers
   the away result. A quotient can be a midpoint only when it is exact and subnormal (a
   midpoint of the coarser grid); a square root never is one. Conversions to an integral
   value use round(), which rounds ties away. */
#define _GNU_SOURCE
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Built with -frounding-math -fsignaling-nans (GCC ignores the FENV_ACCESS pragma). */
typedef __float128 f128;

struct in_rec { uint32_t op, rm; uint64_t a, b, c; };
struct out_rec { uint64_t r; uint32_t flags, zero; };

static double d_of(uint64_t v) { double x; memcpy(&x, &v, 8); return x; }
static float f_of(uint64_t v) { uint32_t w = (uint32_t)v; float x; memcpy(&x, &w, 4); return x; }
static uint64_t bits_d(double x) { uint64_t v; memcpy(&v, &x, 8); return v; }
static uint64_t bits_f(float x) { uint32_t v; memcpy(&v, &x, 4); return v; }

enum {
  ADD_D, SUB_D, MUL_D, DIV_D, SQRT_D, FMADD_D, FMSUB_D, FNMSUB_D, FNMADD_D,
  ADD_S, SUB_S, MUL_S, DIV_S, SQRT_S, FMADD_S, FMSUB_S, FNMSUB_S, FNMADD_S,
  CVT_S_D, CVT_D_S, RINT_D, RINT_S,
  CVT_D_W, CVT_D_WU, CVT_D_L, CVT_D_LU, CVT_S_W, CVT_S_WU, CVT_S_L, CVT_S_LU,
  EQ_D, LT_D, LE_D, EQ_S, LT_S, LE_S, CLASS_D, CLASS_S,
};

static const int HOST_MODE[4] = { FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD };

/* FCLASS mask from the C classification (Unprivileged 20.9 defines the bits). */
#define CLASS(x) ({ \
  int s_ = signbit(x) != 0; \
  uint64_t m_; \
  switch (fpclassify(x)) { \
    case FP_INFINITE: m_ = s_ ? 1 << 0 : 1 << 7; break; \
    case FP_NORMAL: m_ = s_ ? 1 << 1 : 1 << 6; break; \
    case FP_SUBNORMAL: m_ = s_ ? 1 << 2 : 1 << 5; break; \
    case FP_ZERO: m_ = s_ ? 1 << 3 : 1 << 4; break; \
    default: m_ = issignaling(x) ? 1 << 8 : 1 << 9; \
  } \
  m_; })

/* One evaluation under the current host rounding mode. Volatile operands keep the compiler
   from folding or reordering anything across fesetround. */
static uint64_t eval(uint32_t op, uint64_t a, uint64_t b, uint64_t c) {
  volatile double x = d_of(a), y = d_of(b), z = d_of(c);
  volatile float xf = f_of(a), yf = f_of(b), zf = f_of(c);
  volatile uint64_t ia = a;
  switch (op) {
    case ADD_D: return bits_d(x + y);
    case SUB_D: return bits_d(x - y);
    case MUL_D: return bits_d(x * y);
    case DIV_D: return bits_d(x / y);
    case SQRT_D: return bits_d(sqrt(x));
    case FMADD_D: return bits_d(fma(x, y, z));
    case FMSUB_D: return bits_d(fma(x, y, -z));
    case FNMSUB_D: return bits_d(fma(-x, y, z));
    case FNMADD_D: return bits_d(fma(-x, y, -z));
    case ADD_S: return bits_f(xf + yf);
    case SUB_S: return bits_f(xf - yf);
    case MUL_S: return bits_f(xf * yf);
    case DIV_S: return bits_f(xf / yf);
    case SQRT_S: return bits_f(sqrtf(xf));
    case FMADD_S: return bits_f(fmaf(xf, yf, zf));
    case FMSUB_S: return bits_f(fmaf(xf, yf, -zf));
    case FNMSUB_S: return bits_f(fmaf(-xf, yf, zf));
    case FNMADD_S: return bits_f(fmaf(-xf, yf, -zf));
    case CVT_S_D: return bits_f((float)x);
    case CVT_D_S: return bits_d((double)xf);
    case RINT_D: return bits_d(rint(x));
    case RINT_S: return bits_f(rintf(xf));
    case CVT_D_W: return bits_d((double)(int32_t)ia);
    case CVT_D_WU: return bits_d((double)(uint32_t)ia);
    case CVT_D_L: return bits_d((double)(int64_t)ia);
    case CVT_D_LU: return bits_d((double)(uint64_t)ia);
    case CVT_S_W: return bits_f((float)(int32_t)ia);
    case CVT_S_WU: return bits_f((float)(uint32_t)ia);
    case CVT_S_L: return bits_f((float)(int64_t)ia);
    case CVT_S_LU: return bits_f((float)(uint64_t)ia);
    case EQ_D: return x == y;
    case LT_D: return x < y;
    case LE_D: return x <= y;
    case EQ_S: return xf == yf;
    case LT_S: return xf < yf;
    case LE_S: return xf <= yf;
    case CLASS_D: return CLASS(x);
    case CLASS_S: return CLASS(xf);
  }
  return 0;
}

static uint32_t host_flags(void) {
  int e = fetestexcept(FE_ALL_EXCEPT);
  return (e & FE_INEXACT ? 1 : 0) | (e & FE_UNDERFLOW ? 2 : 0) | (e & FE_OVERFLOW ? 4 : 0) |
         (e & FE_DIVBYZERO ? 8 : 0) | (e & FE_INVALID ? 16 : 0);
}

/* a + b in binary128 (round to nearest); *ok = 0 unless the sum is exact (TwoSum's error is 0). */
static f128 sum128(f128 a, f128 b, int *ok) {
  f128 s = a + b, bb = s - a, err = (a - (s - bb)) + (b - bb);
  *ok = err == 0;
  return s;
}

static int is_single(uint32_t op) {
  return (op >= ADD_S && op <= FNMADD_S) || op == CVT_S_D || (op >= CVT_S_W && op <= CVT_S_LU);
}

/* The exact result in binary128, with *ok = 0 when it is not representable there (then it is
   not a midpoint either) or the operation cannot produce midpoints. */
static f128 exact(uint32_t op, uint64_t a, uint64_t b, uint64_t c, int *ok) {
  f128 x = is_single(op) && op != CVT_S_D ? (f128)f_of(a) : (f128)d_of(a);
  f128 y = op >= ADD_S && op <= FNMADD_S ? (f128)f_of(b) : (f128)d_of(b);
  f128 z = op >= ADD_S && op <= FNMADD_S ? (f128)f_of(c) : (f128)d_of(c);
  *ok = 1;
  switch (op) {
    case ADD_D: case ADD_S: return sum128(x, y, ok);
    case SUB_D: case SUB_S: return sum128(x, -y, ok);
    case MUL_D: case MUL_S: return x * y; /* at most 106 significant bits: exact */
    case FMADD_D: case FMADD_S: return sum128(x * y, z, ok);
    case FMSUB_D: case FMSUB_S: return sum128(x * y, -z, ok);
    case FNMSUB_D: case FNMSUB_S: return sum128(-x * y, z, ok);
    case FNMADD_D: case FNMADD_S: return sum128(-x * y, -z, ok);
    case DIV_D: case DIV_S: {
      f128 q = x / y; /* only an exact quotient (≤ 54 bits, so q·y is exact) can be a midpoint */
      *ok = q * y == x;
      return q;
    }
    case CVT_S_D: return x;
    case CVT_D_L: case CVT_S_L: return (f128)(int64_t)a;
    case CVT_D_LU: case CVT_S_LU: return (f128)(uint64_t)a;
    case CVT_S_W: return (f128)(int32_t)a;
    case CVT_S_WU: return (f128)(uint32_t)a;
  }
  *ok = 0;
  return 0;
}

static f128 value128(uint32_t op, uint64_t r) {
  return is_single(op) ? (f128)f_of(r) : (f128)d_of(r);
}

static int finite_result(uint32_t op, uint64_t r) {
  return is_single(op) ? isfinite(f_of(r)) : isfinite(d_of(r));
}

static void run(const struct in_rec *in, struct out_rec *out) {
  out->zero = 0;
  if (in->rm < 4) {
    fesetround(HOST_MODE[in->rm]);
    feclearexcept(FE_ALL_EXCEPT);
    out->r = eval(in->op, in->a, in->b, in->c);
    out->flags = host_flags();
    fesetround(FE_TONEAREST);
    return;
  }
  /* RMM (see the top of this file). */
  fesetround(FE_TONEAREST);
  feclearexcept(FE_ALL_EXCEPT);
  out->r = eval(in->op, in->a, in->b, in->c);
  out->flags = host_flags();
  if (in->op == RINT_D) {
    out->r = bits_d(round(d_of(in->a)));
    return;
  }
  if (in->op == RINT_S) {
    out->r = bits_f(roundf(f_of(in->a)));
    return;
  }
  int ok;
  fesetround(FE_TONEAREST);
  f128 e = exact(in->op, in->a, in->b, in->c, &ok);
  if (!ok || !(out->flags & 1)) return;
  fesetround(FE_TOWARDZERO);
  uint64_t rz = eval(in->op, in->a, in->b, in->c);
  fesetround(e < 0 ? FE_DOWNWARD : FE_UPWARD);
  uint64_t ra = eval(in->op, in->a, in->b, in->c);
  fesetround(FE_TONEAREST);
  if (rz == ra || !finite_result(in->op, rz) || !finite_result(in->op, ra)) return;
  f128 mid = (value128(in->op, rz) + value128(in->op, ra)) / 2;
  if (e == mid) out->r = ra;
}

int main(void) {
  static struct in_rec in[4096];
  static struct out_rec out[4096];
  size_t n;
  while ((n = fread(in, sizeof in[0], 4096, stdin)) > 0) {
    for (size_t i = 0; i < n; i++) run(&in[i], &out[i]);
    if (fwrite(out, sizeof out[0], n, stdout) != n) return 1;
  }
  return 0;
}
