/* Drives each floating-point fast path of the translator (src/jit/emit.ts) and each of its
   fallbacks from hot loops, for test/jit/fp.test.ts to run in lockstep with the interpreter:
   NX clear and set, every frm (reserved ones trap), static rm, results that are zero,
   subnormal, 2^emin, infinite or NaN, sNaN operands, singles that are not NaN-boxed, FS Off
   (illegal), Initial and Clean (an f write makes FS Dirty). Results are folded into a hash
   the program prints; the lockstep test compares the whole state as it runs. */
#include "trap.h"

#define FS_MASK (3ull << 13)
#define SD (1ull << 63)

static uint64_t acc;
static void mix(uint64_t v) { acc = (acc ^ v) * 0x100000001b3ull; }

/* One instruction on ft0, ft1, ft2 (loaded from a, b, c with FS Dirty) under fcsr, with FS set
   to fs just around it; the instruction writes ft3 or t1. Folds in the result, FS and SD after
   it, and fflags. */
#define DEF(name, insn)                                                                    \
  static void name(uint64_t a, uint64_t b, uint64_t c, uint64_t fcsr, uint64_t fs) {        \
    uint64_t r, st, fl, xr;                                                                 \
    asm volatile("csrs mstatus, %[m]\n csrw fcsr, %[fcsr]\n"                                \
                 "fmv.d.x ft0, %[a]\n fmv.d.x ft1, %[b]\n fmv.d.x ft2, %[c]\n"              \
                 "fmv.d.x ft3, zero\n li t1, 0\n"                                           \
                 "csrc mstatus, %[m]\n csrs mstatus, %[fs]\n" insn "\n"                     \
                 "csrr %[st], mstatus\n csrs mstatus, %[m]\n"                               \
                 "fmv.x.d %[r], ft3\n mv %[xr], t1\n csrr %[fl], fflags\n"                  \
                 : [r] "=&r"(r), [st] "=&r"(st), [fl] "=&r"(fl), [xr] "=&r"(xr)             \
                 : [a] "r"(a), [b] "r"(b), [c] "r"(c), [fcsr] "r"(fcsr), [fs] "r"(fs << 13), \
                   [m] "r"(FS_MASK)                                                         \
                 : "t1", "ft0", "ft1", "ft2", "ft3", "memory");                             \
    mix(r);                                                                                 \
    mix(st & (FS_MASK | SD));                                                               \
    mix(fl);                                                                                \
    mix(xr);                                                                                \
  }

DEF(fadd_d, "fadd.d ft3, ft0, ft1")
DEF(fadd_d_rne, "fadd.d ft3, ft0, ft1, rne")
DEF(fadd_d_rtz, "fadd.d ft3, ft0, ft1, rtz")
DEF(fsub_d, "fsub.d ft3, ft0, ft1")
DEF(fmul_d, "fmul.d ft3, ft0, ft1")
DEF(fdiv_d, "fdiv.d ft3, ft0, ft1")
DEF(fsqrt_d, "fsqrt.d ft3, ft0")
DEF(fmadd_d, "fmadd.d ft3, ft0, ft1, ft2")
DEF(fmadd_d_rne, "fmadd.d ft3, ft0, ft1, ft2, rne")
DEF(fmsub_d, "fmsub.d ft3, ft0, ft1, ft2")
DEF(fnmsub_d, "fnmsub.d ft3, ft0, ft1, ft2")
DEF(fnmadd_d, "fnmadd.d ft3, ft0, ft1, ft2")
DEF(fsgnj_d, "fsgnj.d ft3, ft0, ft1")
DEF(fsgnjn_d, "fsgnjn.d ft3, ft0, ft1")
DEF(fsgnjx_d, "fsgnjx.d ft3, ft0, ft1")
DEF(feq_d, "feq.d t1, ft0, ft1")
DEF(flt_d, "flt.d t1, ft0, ft1")
DEF(fle_d, "fle.d t1, ft0, ft1")
DEF(fcvt_w_d, "fcvt.w.d t1, ft0, rtz")
DEF(fcvt_w_d_rne, "fcvt.w.d t1, ft0, rne")
DEF(fcvt_l_d, "fcvt.l.d t1, ft0, rtz")
DEF(fcvt_d_w, "fcvt.d.w ft3, %[a]")
DEF(fcvt_d_wu, "fcvt.d.wu ft3, %[a]")
DEF(fcvt_d_l, "fcvt.d.l ft3, %[a]")
DEF(fcvt_d_lu, "fcvt.d.lu ft3, %[a]")
DEF(fcvt_s_w, "fcvt.s.w ft3, %[a]")
DEF(fmv_x_d, "fmv.x.d t1, ft0")
DEF(fmv_d_x, "fmv.d.x ft3, %[a]")
DEF(fmv_x_w, "fmv.x.w t1, ft0")
DEF(fmv_w_x, "fmv.w.x ft3, %[a]")
DEF(fadd_s, "fadd.s ft3, ft0, ft1")
DEF(fsub_s, "fsub.s ft3, ft0, ft1")
DEF(fmul_s, "fmul.s ft3, ft0, ft1")
DEF(fdiv_s, "fdiv.s ft3, ft0, ft1")
DEF(fsqrt_s, "fsqrt.s ft3, ft0")
DEF(fmadd_s, "fmadd.s ft3, ft0, ft1, ft2")
DEF(fnmsub_s, "fnmsub.s ft3, ft0, ft1, ft2")
DEF(fsgnj_s, "fsgnj.s ft3, ft0, ft1")
DEF(fsgnjn_s, "fsgnjn.s ft3, ft0, ft1")
DEF(fsgnjx_s, "fsgnjx.s ft3, ft0, ft1")
DEF(feq_s, "feq.s t1, ft0, ft1")
DEF(flt_s, "flt.s t1, ft0, ft1")
DEF(fle_s, "fle.s t1, ft0, ft1")

static volatile uint64_t cell[2];
DEF(fld_fsd, "fsd ft0, 0(%[c])\n fld ft3, 0(%[c])")
DEF(flw_fsw, "fsw ft0, 0(%[c])\n flw ft3, 0(%[c])")

typedef void (*op_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

static const uint64_t DV[] = {
  0x3ff0000000000000ull, /* 1 */
  0x3ff8000000000000ull, /* 1.5 */
  0xc002000000000000ull, /* -2.25 */
  0x4008000000000000ull, /* 3 */
  0x3ff0000000000001ull, /* 1 + ulp */
  0x7e37e43c8800759cull, /* 1e300 */
  0xfe37e43c8800759cull, /* -1e300 */
  0x7fefffffffffffffull, /* largest */
  0x0010000000000000ull, /* 2^-1022 */
  0x0010000000000001ull,
  0x000fffffffffffffull, /* largest subnormal */
  0x0000000000000001ull, /* smallest subnormal */
  0x2000000000000000ull, /* 2^-511 */
  0x0000000000000000ull, /* +0 */
  0x8000000000000000ull, /* -0 */
  0x7ff0000000000000ull, /* +inf */
  0xfff0000000000000ull, /* -inf */
  0x7ff8000000000000ull, /* canonical NaN */
  0xfff8000000000123ull, /* qNaN with payload */
  0x7ff0000000000001ull, /* sNaN */
  0x41e0000000000000ull, /* 2^31 */
  0xc1e0000000200000ull, /* -2^31 - 1 */
  0x43e0000000000000ull, /* 2^63 */
  0x4340000000000001ull, /* 2^53 + 2 */
};
#define ND (sizeof DV / sizeof DV[0])

#define BOXED(v) (0xffffffff00000000ull | (v))
static const uint64_t SV[] = {
  BOXED(0x3f800000), /* 1 */
  BOXED(0x3fc00000), /* 1.5 */
  BOXED(0xc0100000), /* -2.25 */
  BOXED(0x3f800001), /* 1 + ulp */
  BOXED(0x7f7fffff), /* largest */
  BOXED(0x00800000), /* 2^-126 */
  BOXED(0x007fffff), /* largest subnormal */
  BOXED(0x00000001),
  BOXED(0x1f800000), /* 2^-64 */
  BOXED(0x00000000),
  BOXED(0x80000000),
  BOXED(0x7f800000), /* +inf */
  BOXED(0x7fc00000), /* canonical NaN */
  BOXED(0x7f800001), /* sNaN */
  0x000000003f800000ull, /* 1, not NaN-boxed */
  0xfffffffe3fc00000ull, /* 1.5, not quite NaN-boxed */
};
#define NS (sizeof SV / sizeof SV[0])

/* Integers for the conversions. */
static const uint64_t IV[] = {
  0, 1, (uint64_t)-1, 12345, 0x7fffffff, 0x80000000, 0xffffffff, 1ull << 53, (1ull << 53) + 1,
  (uint64_t)-(1ll << 53), (uint64_t)-(1ll << 53) - 1, 1ull << 24, (1ull << 24) + 1, 0x8000000000000000ull,
  0xfffffffffffffff1ull, 0x123456789abcdefull,
};
#define NI (sizeof IV / sizeof IV[0])

/* NX clear and set under RNE, dynamic RTZ/RDN/RUP/RMM, the reserved frm 5-7, all flags set. */
static const uint64_t FCSR[] = { 0, 1, 1 | 1 << 5, 1 | 2 << 5, 1 | 3 << 5, 1 | 4 << 5, 1 | 5 << 5, 1 | 7 << 5, 0x1f };
#define NF (sizeof FCSR / sizeof FCSR[0])

/* Every pair of operands (the third from a short list) under every fcsr, FS Dirty; then FS Off,
   Initial and Clean on a few. */
static void sweep(op_fn f, const uint64_t *v, unsigned n, int three) {
  for (unsigned k = 0; k < NF; k++)
    for (unsigned i = 0; i < n; i++)
      for (unsigned j = 0; j < n; j++)
        for (unsigned l = 0; l < (three ? 3u : 1u); l++) f(v[i], v[j], v[(i + j + l * 5) % n], FCSR[k], 3);
  for (uint64_t fs = 0; fs < 3; fs++)
    for (unsigned i = 0; i < 4; i++) f(v[i], v[i + 1], v[i + 2], 1, fs);
}

static uint64_t seed = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  seed = seed * 6364136223846793005ull + 1442695040888963407ull;
  return seed;
}
/* A random double of moderate exponent (within 2^±40 around 1, so most results are normal). */
static uint64_t rnd_d(void) {
  uint64_t r = rnd();
  return (r & 0x800fffffffffffffull) | ((uint64_t)(1023 - 40 + (r >> 52) % 81) << 52);
}
static uint64_t rnd_s(void) {
  uint64_t r = rnd() >> 16;
  return BOXED((r & 0x807fffff) | ((uint32_t)(127 - 20 + (r >> 24) % 41) << 23));
}

int main(void) {
  trap_init();
  cell[0] = 0;
  static const op_fn d2[] = { fadd_d, fadd_d_rne, fadd_d_rtz, fsub_d, fmul_d, fdiv_d, fsqrt_d, fsgnj_d, fsgnjn_d,
                              fsgnjx_d, feq_d, flt_d, fle_d, fcvt_w_d, fcvt_w_d_rne, fcvt_l_d, fmv_x_d, fmv_x_w };
  static const op_fn d3[] = { fmadd_d, fmadd_d_rne, fmsub_d, fnmsub_d, fnmadd_d };
  static const op_fn s2[] = { fadd_s, fsub_s, fmul_s, fdiv_s, fsqrt_s, fsgnj_s, fsgnjn_s, fsgnjx_s, feq_s, flt_s, fle_s, fmv_x_w };
  static const op_fn s3[] = { fmadd_s, fnmsub_s };
  static const op_fn ints[] = { fcvt_d_w, fcvt_d_wu, fcvt_d_l, fcvt_d_lu, fcvt_s_w, fmv_d_x, fmv_w_x };
  for (unsigned i = 0; i < sizeof d2 / sizeof d2[0]; i++) sweep(d2[i], DV, ND, 0);
  report("double", acc);
  for (unsigned i = 0; i < sizeof d3 / sizeof d3[0]; i++) sweep(d3[i], DV, ND, 1);
  report("double-fused", acc);
  for (unsigned i = 0; i < sizeof s2 / sizeof s2[0]; i++) sweep(s2[i], SV, NS, 0);
  for (unsigned i = 0; i < sizeof s3 / sizeof s3[0]; i++) sweep(s3[i], SV, NS, 1);
  report("single", acc);
  for (unsigned i = 0; i < sizeof ints / sizeof ints[0]; i++) sweep(ints[i], IV, NI, 0);
  report("integer", acc);
  for (unsigned i = 0; i < 8; i++) {
    fld_fsd(DV[i], 0, (uint64_t)cell, 1, i & 3);
    flw_fsw(SV[i], 0, (uint64_t)cell, 1, i & 3);
  }
  for (unsigned k = 0; k < 200; k++) {
    fld_fsd(DV[k % ND], 0, (uint64_t)cell, 1, 3);
    flw_fsw(SV[k % NS], 0, (uint64_t)cell, 1, 3);
  }
  report("memory", acc);
  /* Random operands under RNE with NX set: the fast paths, and the fused multiply-add's rare
     midpoints and cancellations. */
  for (unsigned k = 0; k < 6000; k++) {
    uint64_t a = rnd_d(), b = rnd_d(), c = rnd_d();
    if (k & 1) c ^= 0x8000000000000000ull;
    if ((k & 7) == 2) c = a; /* deep cancellation */
    fmadd_d(a, b, c, 1, 3);
    fnmsub_d(a, b, c, 1, 3);
    fdiv_d(a, b, c, 1, 3);
    fmadd_s(rnd_s(), rnd_s(), rnd_s(), 1, 3);
  }
  report("random", acc);
  report("traps", last_m.count);
  return 0;
}
