/* F and D instructions on edge cases and seeded random operands, in every static rounding mode
   and the dynamic mode (frm cycling through all five), through inline assembly so the compiler
   folds nothing. For each instruction and mode the program prints a hash of every result
   (the whole 64-bit f register, so NaN-boxing is checked too) and of fflags after each
   operation, for comparison with QEMU. Build with -DVERBOSE to print every case instead. */
#include "test.h"

/* binary64 edge values. */
static const uint64_t D_EDGE[] = {
  0, 0x8000000000000000, 1, 0x8000000000000001, 0x000fffffffffffff, 0x0008000000000000, 0x0010000000000000,
  0x0010000000000001, 0x3ff0000000000000, 0xbff0000000000000, 0x3ff0000000000001, 0x3fefffffffffffff,
  0x3ff8000000000000, 0xc004000000000000, 0x3fe0000000000000, 0x4340000000000000, 0x4340000000000001,
  0x41dfffffffc00000, 0x41e0000000000000, 0xc1e0000000000000, 0x41efffffffe00000, 0x43dfffffffffffff,
  0x43e0000000000000, 0xc3e0000000000000, 0x43f0000000000000, 0x7fefffffffffffff, 0xffefffffffffffff,
  0x7fe0000000000000, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 0x7ff0000000000001,
  0xfff4deadbeef0000, 0x7ffc000012345678, 0x3cb0000000000000, 0x36a0000000000000, 0x3690000000000000,
  0x47efffffe0000000, 0x47efffffd0000000, 0x3fb999999999999a, 0xbfd5555555555555, 0x000fffffffffffff,
};
#define N_DEDGE (sizeof D_EDGE / sizeof D_EDGE[0])

/* binary32 edge values (NaN-boxed below), plus a few 64-bit patterns that are not NaN-boxed. */
static const uint32_t S_EDGE[] = {
  0, 0x80000000, 1, 0x80000001, 0x007fffff, 0x00400000, 0x00800000, 0x00800001, 0x3f800000, 0xbf800000,
  0x3f800001, 0x3f7fffff, 0x3fc00000, 0xc0200000, 0x3f000000, 0x4b800000, 0x4b800001, 0x4effffff,
  0x4f000000, 0xcf000000, 0x4f7fffff, 0x5effffff, 0x5f000000, 0xdf000000, 0x5f800000, 0x7f7fffff,
  0xff7fffff, 0x7f000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffa0beef, 0x7fc12345,
  0x34000000, 0x0c800000, 0x3dcccccd, 0xbeaaaaab,
};
#define N_SEDGE (sizeof S_EDGE / sizeof S_EDGE[0])
static const uint64_t UNBOXED[] = { 0x000000003f800000, 0x7fffffff3f800000, 0x3ff0000000000000 };

#define N_RAND 48
#define N_VAL (N_DEDGE + N_RAND)
static uint64_t dv[N_VAL], sv[N_SEDGE + 3 + N_RAND];
static int n_sv;

static uint64_t seed = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
  seed ^= seed << 13;
  seed ^= seed >> 7;
  seed ^= seed << 17;
  return seed;
}

/* A random value with a biased exponent in [lo, lo+span) and a random or short significand. */
static uint64_t rnd_d(unsigned lo, unsigned span) {
  uint64_t r = rnd(), f = r & 0xfffffffffffffull;
  if ((r >> 60) & 1) f &= ~0ull << ((r >> 53) & 63 & 51);
  uint64_t e = (lo + (rnd() % span)) & 0x7ff;
  return (r & 0x8000000000000000ull) | (e << 52) | f;
}
static uint32_t rnd_s(unsigned lo, unsigned span) {
  uint64_t r = rnd();
  uint32_t f = r & 0x7fffff;
  if ((r >> 60) & 1) f &= ~0u << ((r >> 32) % 23);
  uint32_t e = (lo + (rnd() % span)) & 0xff;
  return (uint32_t)((r >> 32) & 0x80000000u) | (e << 23) | f;
}

static uint64_t h;
static void mix(uint64_t v) { h = (h ^ v) * 0x100000001b3ull; }

static const char *const MODE[6] = { "rne", "rtz", "rdn", "rup", "rmm", "dyn" };
static unsigned dyn_next;

/* Before each dynamic-mode operation, frm takes the next of the five modes. */
static void pre(int m) {
  if (m == 5) {
    asm volatile("csrw frm, %0" :: "r"(dyn_next % 5));
    dyn_next++;
  }
  asm volatile("csrw fflags, zero");
}
static uint64_t post(uint64_t r) {
  uint64_t f = read_csr(fflags);
  mix(r);
  mix(f);
  return f;
}

typedef uint64_t (*fn3)(uint64_t, uint64_t, uint64_t);

/* Each DEF* makes one function per rounding mode (FN[6]) or, without rm, one function. */
#define RM_VARIANTS(id, body) \
  body(id, rne) body(id, rtz) body(id, rdn) body(id, rup) body(id, rmm) body(id, dyn) \
  static const fn3 id[6] = { id##_rne, id##_rtz, id##_rdn, id##_rup, id##_rmm, id##_dyn };

#define FF_F(mn) "fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n fmv.d.x ft3, %3\n " mn
#define CLOB "ft0", "ft1", "ft2", "ft3"
#define ASM_F(text) asm volatile(text "\n fmv.x.d %0, ft2" : "=r"(r) : "r"(a), "r"(b), "r"(c) : CLOB)
#define ASM_X(text) asm volatile(text : "=r"(r) : "r"(a), "r"(b), "r"(c) : CLOB)

#define FN_BIN(id, rm) static uint64_t id##_##rm(uint64_t a, uint64_t b, uint64_t c) { uint64_t r; ASM_F(FF_F(MN_##id " ft2, ft0, ft1, " #rm)); return r; }
#define FN_FMA(id, rm) static uint64_t id##_##rm(uint64_t a, uint64_t b, uint64_t c) { uint64_t r; ASM_F(FF_F(MN_##id " ft2, ft0, ft1, ft3, " #rm)); return r; }
#define FN_UN(id, rm) static uint64_t id##_##rm(uint64_t a, uint64_t b, uint64_t c) { uint64_t r; (void)b; ASM_F(FF_F(MN_##id " ft2, ft0, " #rm)); return r; }
#define FN_TOX(id, rm) static uint64_t id##_##rm(uint64_t a, uint64_t b, uint64_t c) { uint64_t r; ASM_X(FF_F(MN_##id " %0, ft0, " #rm)); return r; }
#define FN_FROMX(id, rm) static uint64_t id##_##rm(uint64_t a, uint64_t b, uint64_t c) { uint64_t r; ASM_F(FF_F(MN_##id " ft2, %1, " #rm)); return r; }

/* This assembler takes no rm operand for the conversions that cannot round; .insn encodes
   them with one anyway (OP-FP, funct7 0x21 for fcvt.d.s, 0x69 for fcvt.d.w[u]). */
#define STR(x) #x
#define XSTR(x) STR(x)
#define RMN_rne 0
#define RMN_rtz 1
#define RMN_rdn 2
#define RMN_rup 3
#define RMN_rmm 4
#define RMN_dyn 7
#define INSN_fcvt_d_s(rm) ".insn r 0x53, " XSTR(RMN_##rm) ", 0x21, ft2, ft0, f0"
#define INSN_fcvt_d_w(rm) ".insn r 0x53, " XSTR(RMN_##rm) ", 0x69, ft2, %1, x0"
#define INSN_fcvt_d_wu(rm) ".insn r 0x53, " XSTR(RMN_##rm) ", 0x69, ft2, %1, x1"
#define FN_INSN(id, rm) static uint64_t id##_##rm(uint64_t a, uint64_t b, uint64_t c) { uint64_t r; ASM_F(FF_F(INSN_##id(rm))); return r; }

#define MN_fadd_d "fadd.d"
#define MN_fsub_d "fsub.d"
#define MN_fmul_d "fmul.d"
#define MN_fdiv_d "fdiv.d"
#define MN_fadd_s "fadd.s"
#define MN_fsub_s "fsub.s"
#define MN_fmul_s "fmul.s"
#define MN_fdiv_s "fdiv.s"
#define MN_fmadd_d "fmadd.d"
#define MN_fmsub_d "fmsub.d"
#define MN_fnmsub_d "fnmsub.d"
#define MN_fnmadd_d "fnmadd.d"
#define MN_fmadd_s "fmadd.s"
#define MN_fmsub_s "fmsub.s"
#define MN_fnmsub_s "fnmsub.s"
#define MN_fnmadd_s "fnmadd.s"
#define MN_fsqrt_d "fsqrt.d"
#define MN_fsqrt_s "fsqrt.s"
#define MN_fcvt_s_d "fcvt.s.d"
#define MN_fcvt_w_d "fcvt.w.d"
#define MN_fcvt_wu_d "fcvt.wu.d"
#define MN_fcvt_l_d "fcvt.l.d"
#define MN_fcvt_lu_d "fcvt.lu.d"
#define MN_fcvt_w_s "fcvt.w.s"
#define MN_fcvt_wu_s "fcvt.wu.s"
#define MN_fcvt_l_s "fcvt.l.s"
#define MN_fcvt_lu_s "fcvt.lu.s"
#define MN_fcvt_d_l "fcvt.d.l"
#define MN_fcvt_d_lu "fcvt.d.lu"
#define MN_fcvt_s_w "fcvt.s.w"
#define MN_fcvt_s_wu "fcvt.s.wu"
#define MN_fcvt_s_l "fcvt.s.l"
#define MN_fcvt_s_lu "fcvt.s.lu"

RM_VARIANTS(fadd_d, FN_BIN) RM_VARIANTS(fsub_d, FN_BIN) RM_VARIANTS(fmul_d, FN_BIN) RM_VARIANTS(fdiv_d, FN_BIN)
RM_VARIANTS(fadd_s, FN_BIN) RM_VARIANTS(fsub_s, FN_BIN) RM_VARIANTS(fmul_s, FN_BIN) RM_VARIANTS(fdiv_s, FN_BIN)
RM_VARIANTS(fmadd_d, FN_FMA) RM_VARIANTS(fmsub_d, FN_FMA) RM_VARIANTS(fnmsub_d, FN_FMA) RM_VARIANTS(fnmadd_d, FN_FMA)
RM_VARIANTS(fmadd_s, FN_FMA) RM_VARIANTS(fmsub_s, FN_FMA) RM_VARIANTS(fnmsub_s, FN_FMA) RM_VARIANTS(fnmadd_s, FN_FMA)
RM_VARIANTS(fsqrt_d, FN_UN) RM_VARIANTS(fsqrt_s, FN_UN) RM_VARIANTS(fcvt_s_d, FN_UN) RM_VARIANTS(fcvt_d_s, FN_INSN)
RM_VARIANTS(fcvt_w_d, FN_TOX) RM_VARIANTS(fcvt_wu_d, FN_TOX) RM_VARIANTS(fcvt_l_d, FN_TOX) RM_VARIANTS(fcvt_lu_d, FN_TOX)
RM_VARIANTS(fcvt_w_s, FN_TOX) RM_VARIANTS(fcvt_wu_s, FN_TOX) RM_VARIANTS(fcvt_l_s, FN_TOX) RM_VARIANTS(fcvt_lu_s, FN_TOX)
RM_VARIANTS(fcvt_d_w, FN_INSN) RM_VARIANTS(fcvt_d_wu, FN_INSN) RM_VARIANTS(fcvt_d_l, FN_FROMX) RM_VARIANTS(fcvt_d_lu, FN_FROMX)
RM_VARIANTS(fcvt_s_w, FN_FROMX) RM_VARIANTS(fcvt_s_wu, FN_FROMX) RM_VARIANTS(fcvt_s_l, FN_FROMX) RM_VARIANTS(fcvt_s_lu, FN_FROMX)

/* Instructions without a rounding mode. */
#define NO_RM_F(id, text) static uint64_t id(uint64_t a, uint64_t b, uint64_t c) { uint64_t r; ASM_F(FF_F(text)); return r; }
#define NO_RM_X(id, text) static uint64_t id(uint64_t a, uint64_t b, uint64_t c) { uint64_t r; ASM_X(FF_F(text)); return r; }
NO_RM_F(fmin_d, "fmin.d ft2, ft0, ft1") NO_RM_F(fmax_d, "fmax.d ft2, ft0, ft1")
NO_RM_F(fmin_s, "fmin.s ft2, ft0, ft1") NO_RM_F(fmax_s, "fmax.s ft2, ft0, ft1")
NO_RM_F(fsgnj_d, "fsgnj.d ft2, ft0, ft1") NO_RM_F(fsgnjn_d, "fsgnjn.d ft2, ft0, ft1") NO_RM_F(fsgnjx_d, "fsgnjx.d ft2, ft0, ft1")
NO_RM_F(fsgnj_s, "fsgnj.s ft2, ft0, ft1") NO_RM_F(fsgnjn_s, "fsgnjn.s ft2, ft0, ft1") NO_RM_F(fsgnjx_s, "fsgnjx.s ft2, ft0, ft1")
NO_RM_X(feq_d, "feq.d %0, ft0, ft1") NO_RM_X(flt_d, "flt.d %0, ft0, ft1") NO_RM_X(fle_d, "fle.d %0, ft0, ft1")
NO_RM_X(feq_s, "feq.s %0, ft0, ft1") NO_RM_X(flt_s, "flt.s %0, ft0, ft1") NO_RM_X(fle_s, "fle.s %0, ft0, ft1")
NO_RM_X(fclass_d, "fclass.d %0, ft0") NO_RM_X(fclass_s, "fclass.s %0, ft0")
NO_RM_X(fmv_x_w, "fmv.x.w %0, ft0") NO_RM_F(fmv_w_x, "fmv.w.x ft2, %1")

enum { UNARY, BINARY, TERNARY };

/* Runs fns (six modes, or one when `one`) over the value set, printing one hash per mode. */
static void run(const char *name, const fn3 *fns, int one, int arity, const uint64_t *v, int n) {
  for (int m = 0; m < (one ? 1 : 6); m++) {
    h = 0xcbf29ce484222325ull;
    dyn_next = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < (arity >= BINARY ? n : 1); j++)
        for (int k = 0; k < (arity == TERNARY ? 2 : 1); k++) {
          /* two addends per pair: a full cube would take too long */
          uint64_t a = v[i], b = v[j], c = v[(i * 7 + j * 13 + k * 29 + 1) % n];
          pre(one ? 0 : m);
          uint64_t r = fns[m](a, b, c);
          uint64_t f = post(r);
#ifdef VERBOSE
          puts_(name); putch(' '); puts_(one ? "-" : MODE[m]); putch(' '); put_hex(a); putch(' '); put_hex(b);
          putch(' '); put_hex(c); puts_(" -> "); put_hex(r); putch(' '); put_hex(f); putch('\n');
#else
          (void)f;
#endif
        }
    puts_(name);
    putch('.');
    puts_(one ? "-" : MODE[m]);
    putch('=');
    put_hex(h);
    putch('\n');
  }
}

#define RUN(id, arity, vals, n) run(#id, id, 0, arity, vals, n)
#define RUN1(id, arity, vals, n) do { static const fn3 f_[1] = { id }; run(#id, f_, 1, arity, vals, n); } while (0)

static uint64_t iv[40];

int main(void) {
  for (unsigned i = 0; i < N_DEDGE; i++) dv[i] = D_EDGE[i];
  for (unsigned i = 0; i < N_RAND; i++) {
    /* near 1, near the overflow and underflow thresholds, and anywhere */
    unsigned r = i % 4;
    dv[N_DEDGE + i] = r == 0 ? rnd_d(1000, 48) : r == 1 ? rnd_d(2020, 27) : r == 2 ? rnd_d(0, 40) : rnd();
  }
  for (unsigned i = 0; i < N_SEDGE; i++) sv[n_sv++] = 0xffffffff00000000ull | S_EDGE[i];
  for (unsigned i = 0; i < 3; i++) sv[n_sv++] = UNBOXED[i];
  for (unsigned i = 0; i < N_RAND; i++) {
    unsigned r = i % 4;
    sv[n_sv++] = 0xffffffff00000000ull | (r == 0 ? rnd_s(110, 34) : r == 1 ? rnd_s(240, 15) : r == 2 ? rnd_s(0, 30) : (uint32_t)rnd());
  }
  /* integers: edges around the conversion limits and random widths */
  static const uint64_t I_EDGE[] = {
    0, 1, -1ull, 2, 0x7fffffff, 0x80000000, 0xffffffff, 0xffffffff80000000, 0x7fffffffffffffff, 0x8000000000000000,
    0xffffffffffffffff, 0x20000000000001, 0x20000000000003, 0x1000001, 0x1000003, 0xfffffffffefffffd, 0x7fffffc0,
    0x7fffffffffffff80, 0xfffffffffffffc00, 0x123456789abcdef0,
  };
  int ni = 0;
  for (unsigned i = 0; i < sizeof I_EDGE / sizeof I_EDGE[0]; i++) iv[ni++] = I_EDGE[i];
  while (ni < 40) iv[ni++] = rnd() >> (rnd() % 64);

  RUN(fadd_d, BINARY, dv, N_VAL); RUN(fsub_d, BINARY, dv, N_VAL); RUN(fmul_d, BINARY, dv, N_VAL); RUN(fdiv_d, BINARY, dv, N_VAL);
  RUN(fadd_s, BINARY, sv, n_sv); RUN(fsub_s, BINARY, sv, n_sv); RUN(fmul_s, BINARY, sv, n_sv); RUN(fdiv_s, BINARY, sv, n_sv);
  RUN(fmadd_d, TERNARY, dv, N_VAL); RUN(fmsub_d, TERNARY, dv, N_VAL); RUN(fnmsub_d, TERNARY, dv, N_VAL); RUN(fnmadd_d, TERNARY, dv, N_VAL);
  RUN(fmadd_s, TERNARY, sv, n_sv); RUN(fmsub_s, TERNARY, sv, n_sv); RUN(fnmsub_s, TERNARY, sv, n_sv); RUN(fnmadd_s, TERNARY, sv, n_sv);
  RUN(fsqrt_d, UNARY, dv, N_VAL); RUN(fsqrt_s, UNARY, sv, n_sv);
  RUN(fcvt_s_d, UNARY, dv, N_VAL); RUN(fcvt_d_s, UNARY, sv, n_sv);
  RUN(fcvt_w_d, UNARY, dv, N_VAL); RUN(fcvt_wu_d, UNARY, dv, N_VAL); RUN(fcvt_l_d, UNARY, dv, N_VAL); RUN(fcvt_lu_d, UNARY, dv, N_VAL);
  RUN(fcvt_w_s, UNARY, sv, n_sv); RUN(fcvt_wu_s, UNARY, sv, n_sv); RUN(fcvt_l_s, UNARY, sv, n_sv); RUN(fcvt_lu_s, UNARY, sv, n_sv);
  RUN(fcvt_d_w, UNARY, iv, ni); RUN(fcvt_d_wu, UNARY, iv, ni); RUN(fcvt_d_l, UNARY, iv, ni); RUN(fcvt_d_lu, UNARY, iv, ni);
  RUN(fcvt_s_w, UNARY, iv, ni); RUN(fcvt_s_wu, UNARY, iv, ni); RUN(fcvt_s_l, UNARY, iv, ni); RUN(fcvt_s_lu, UNARY, iv, ni);
  RUN1(fmin_d, BINARY, dv, N_VAL); RUN1(fmax_d, BINARY, dv, N_VAL); RUN1(fmin_s, BINARY, sv, n_sv); RUN1(fmax_s, BINARY, sv, n_sv);
  RUN1(fsgnj_d, BINARY, dv, N_VAL); RUN1(fsgnjn_d, BINARY, dv, N_VAL); RUN1(fsgnjx_d, BINARY, dv, N_VAL);
  RUN1(fsgnj_s, BINARY, sv, n_sv); RUN1(fsgnjn_s, BINARY, sv, n_sv); RUN1(fsgnjx_s, BINARY, sv, n_sv);
  RUN1(feq_d, BINARY, dv, N_VAL); RUN1(flt_d, BINARY, dv, N_VAL); RUN1(fle_d, BINARY, dv, N_VAL);
  RUN1(feq_s, BINARY, sv, n_sv); RUN1(flt_s, BINARY, sv, n_sv); RUN1(fle_s, BINARY, sv, n_sv);
  RUN1(fclass_d, UNARY, dv, N_VAL); RUN1(fclass_s, UNARY, sv, n_sv);
  RUN1(fmv_x_w, UNARY, sv, n_sv); RUN1(fmv_w_x, UNARY, iv, ni);
  return 0;
}
