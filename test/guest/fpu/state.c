/* The FPU as part of the hart: mstatus.FS (Privileged 3.1.6.6: Off traps every F/D
   instruction and FP CSR; writes make the state Dirty, SD summarises it), fcsr/frm/fflags
   (Unprivileged 20.2), reserved rounding modes, NaN-boxing (Unprivileged 21.2), the compressed
   FP loads and stores, and bit-exact transfers. Every observation is printed for comparison
   with QEMU. */
#include "trap.h"

#define FS_SHIFT 13
#define FS_MASK (3ull << FS_SHIFT)
#define SD (1ull << 63)

static volatile uint64_t mem[8] __attribute__((aligned(16)));
static volatile uint8_t bytes[24] __attribute__((aligned(16)));

static void set_fs(uint64_t v) {
  clear_csr(mstatus, FS_MASK);
  set_csr(mstatus, v << FS_SHIFT);
}
static uint64_t fs(void) { return (read_csr(mstatus) & FS_MASK) >> FS_SHIFT; }

/* Runs `insn` (inline assembly text) and reports whether it trapped, with cause and tval. */
#define TRY(name, insn, ...)                                       \
  do {                                                             \
    uint64_t c0_ = last_m.count;                                   \
    asm volatile(insn ::__VA_ARGS__ : "memory", "t0", "a0", "ft0", "ft1", "fa0", "fa1"); \
    int t_ = last_m.count != c0_;                                  \
    report(name "-trap", t_ ? last_m.cause : 0);                   \
    if (t_) report(name "-tval", last_m.tval);                     \
  } while (0)

/* FS after `insn`, starting from `from`; FS is left Initial afterwards. */
#define FS_AFTER(name, from, insn, ...)                            \
  do {                                                             \
    set_fs(from);                                                  \
    asm volatile(insn ::__VA_ARGS__ : "memory", "t0", "ft0", "ft1"); \
    uint64_t s_ = read_csr(mstatus);                               \
    report(name, ((s_ & FS_MASK) >> FS_SHIFT) | (s_ & SD ? 0x10 : 0)); \
    set_fs(1);                                                     \
  } while (0)

static uint64_t fmv_x_d_of(uint64_t v, const char *op);

int main(void) {
  trap_init();
  report("misa-fd", read_csr(misa) & ((1 << 3) | (1 << 5)));
  report("fs-at-start", fs());

  /* ---- FS = Off: every F/D instruction and FP CSR access is illegal ---- */
  set_fs(0);
  report("fs-off", fs());
  TRY("off-flw", "la t0, mem\n flw ft0, 0(t0)");
  TRY("off-fsw", "la t0, mem\n fsw ft0, 0(t0)");
  TRY("off-fld", "la t0, mem\n fld ft0, 0(t0)");
  TRY("off-fsd", "la t0, mem\n fsd ft0, 0(t0)");
  TRY("off-c.fld", "mv a0, %0\n c.fld fa0, 8(a0)", "r"(mem));
  TRY("off-c.fsd", "mv a0, %0\n c.fsd fa0, 8(a0)", "r"(mem));
  TRY("off-c.fldsp", "c.fldsp fa0, 0(sp)");
  TRY("off-c.fsdsp", "c.fsdsp fa0, 0(sp)");
  TRY("off-fadd.d", "fadd.d ft0, ft0, ft1");
  TRY("off-fmadd.s", "fmadd.s ft0, ft0, ft1, ft1");
  TRY("off-fmv.x.d", "fmv.x.d t0, ft0");
  TRY("off-fmv.d.x", "fmv.d.x ft0, zero");
  TRY("off-fmv.x.w", "fmv.x.w t0, ft0");
  TRY("off-feq.s", "feq.s t0, ft0, ft1");
  TRY("off-fclass.d", "fclass.d t0, ft0");
  TRY("off-fsgnj.d", "fsgnj.d ft0, ft0, ft1");
  TRY("off-fcvt.w.d", "fcvt.w.d t0, ft0");
  TRY("off-fcvt.d.l", "fcvt.d.l ft0, t0");
  TRY("off-csrr-fflags", "csrr t0, fflags");
  TRY("off-csrw-frm", "csrw frm, zero");
  TRY("off-csrr-fcsr", "csrr t0, fcsr");
  report("fs-still-off", fs());

  /* ---- Dirty tracking: writes of f registers or fflags make FS Dirty; SD follows ---- */
  set_fs(1);
  asm volatile("fmv.d.x ft0, zero\n fmv.d.x ft1, zero" ::: "ft0", "ft1");
  FS_AFTER("fs-initial-fsd", 1, "la t0, mem\n fsd ft0, 0(t0)");
  FS_AFTER("fs-initial-fmv.x.d", 1, "fmv.x.d t0, ft0");
  FS_AFTER("fs-initial-fld", 1, "la t0, mem\n fld ft0, 0(t0)");
  FS_AFTER("fs-clean-flw", 2, "la t0, mem\n flw ft0, 0(t0)");
  FS_AFTER("fs-clean-fadd", 2, "fadd.d ft0, ft1, ft1");
  FS_AFTER("fs-clean-fmv.w.x", 2, "fmv.w.x ft0, zero");
  FS_AFTER("fs-clean-fsgnj", 2, "fsgnj.d ft0, ft1, ft1");
  FS_AFTER("fs-clean-fcvt.d.w", 2, "fcvt.d.w ft0, zero");
  FS_AFTER("fs-clean-feq-quiet", 2, "feq.d t0, ft1, ft1");
  FS_AFTER("fs-clean-fclass", 2, "fclass.d t0, ft1");
  FS_AFTER("fs-clean-csrr-fcsr", 2, "csrr t0, fcsr");
  FS_AFTER("fs-clean-csrw-fflags", 2, "csrw fflags, zero");
  FS_AFTER("fs-clean-csrw-frm", 2, "csrwi frm, 0");
  /* An x-register result that raises a flag writes fflags: Dirty (Unprivileged 20.2 accrues the
     flag; Privileged 3.1.6.6 makes any modification of the FP state Dirty). */
  mem[0] = 0x7ff0000000000001ull; /* signaling NaN */
  asm volatile("la t0, mem\n fld ft1, 0(t0)" ::: "t0", "ft1");
  FS_AFTER("fs-clean-feq-snan", 2, "feq.d t0, ft1, ft1");
  FS_AFTER("fs-clean-flt-nan", 2, "flt.d t0, ft1, ft1");
  asm volatile("li t0, 0x3ff8000000000000\n fmv.d.x ft1, t0" ::: "t0", "ft1"); /* 1.5 */
  FS_AFTER("fs-clean-fcvt.w.d-inexact", 2, "fcvt.w.d t0, ft1, rtz");
  FS_AFTER("fs-dirty-stays", 3, "fmv.x.d t0, ft0");
  set_csr(sstatus, 3ull << FS_SHIFT);
  report("sstatus-fs-sd", read_csr(sstatus) & (FS_MASK | SD));
  clear_csr(sstatus, FS_MASK);
  report("sstatus-fs-cleared", read_csr(mstatus) & (FS_MASK | SD));
  set_fs(1);

  /* ---- fcsr, frm, fflags ---- */
  write_csr(fcsr, 0xffffffffull);
  report("fcsr-all-ones", read_csr(fcsr));
  report("frm-of-ones", read_csr(frm));
  report("fflags-of-ones", read_csr(fflags));
  write_csr(frm, 0x1fd);
  report("frm-masked", read_csr(frm));
  report("fcsr-after-frm", read_csr(fcsr));
  write_csr(fflags, 0x1e5);
  report("fflags-masked", read_csr(fflags));
  uint64_t old;
  asm volatile("fsflags %0, %1" : "=r"(old) : "r"(0x3ull));
  report("fsflags-old", old);
  asm volatile("fsrm %0, %1" : "=r"(old) : "r"(0x2ull));
  report("fsrm-old", old);
  report("fcsr-now", read_csr(fcsr));
  write_csr(fcsr, 0);
  /* Flags accrue: 1/3 (NX) then 1/0 (DZ) then 0/0 (NV). */
  asm volatile("li t0, 1\n fcvt.d.l ft0, t0\n li t0, 3\n fcvt.d.l ft1, t0\n fdiv.d ft2, ft0, ft1\n"
               "fmv.d.x ft1, zero\n fdiv.d ft2, ft0, ft1\n fdiv.d ft2, ft1, ft1" ::: "t0", "ft0", "ft1", "ft2");
  report("fflags-accrued", read_csr(fflags));

  /* ---- reserved rounding modes are illegal (Unprivileged 20.2), dynamic ones only when used ---- */
  write_csr(fcsr, 0);
  TRY("rm5-fadd.d", ".insn r 0x53, 5, 0x01, ft0, ft1, ft1");
  TRY("rm6-fadd.d", ".insn r 0x53, 6, 0x01, ft0, ft1, ft1");
  TRY("rm5-fcvt.d.s", ".insn r 0x53, 5, 0x21, ft0, ft1, f0");
  TRY("rm6-fcvt.d.w", ".insn r 0x53, 6, 0x69, ft0, zero, x0");
  TRY("rm5-fmadd.d", ".insn r4 0x43, 5, 1, ft0, ft1, ft1, ft1");
  for (unsigned m = 0; m < 8; m++) {
    write_csr(frm, m);
    uint64_t c0 = last_m.count;
    asm volatile("fadd.d ft0, ft1, ft1, dyn" ::: "ft0");
    report(m == 0 ? "dyn-frm0" : m == 1 ? "dyn-frm1" : m == 2 ? "dyn-frm2" : m == 3 ? "dyn-frm3" : m == 4 ? "dyn-frm4" : m == 5 ? "dyn-frm5" : m == 6 ? "dyn-frm6" : "dyn-frm7",
           last_m.count != c0 ? last_m.cause : 0);
    asm volatile("fsgnj.d ft0, ft1, ft1" ::: "ft0"); /* no rm: never illegal */
    report("frm-kept", read_csr(frm));
  }
  write_csr(frm, 0);

  /* ---- NaN-boxing (Unprivileged 21.2) ---- */
  const uint64_t unboxed = 0x123456783f800000ull, boxed_one = 0xffffffff3f800000ull, boxed_neg = 0xffffffffc0000000ull;
  write_csr(fflags, 0);
  report("nanbox-fadd.s-unboxed", fmv_x_d_of(unboxed, "fadd"));
  report("nanbox-fadd.s-flags", read_csr(fflags));
  report("nanbox-fsgnj.s-unboxed-rs1", fmv_x_d_of(unboxed, "fsgnj1"));
  report("nanbox-fsgnjn.s-unboxed-rs2", fmv_x_d_of(unboxed, "fsgnjn2"));
  report("nanbox-fmv.x.w-unboxed", fmv_x_d_of(unboxed, "fmv.x.w"));
  report("nanbox-fclass.s-unboxed", fmv_x_d_of(unboxed, "fclass"));
  report("nanbox-fcvt.d.s-unboxed", fmv_x_d_of(unboxed, "fcvt.d.s"));
  report("nanbox-feq.s-unboxed", fmv_x_d_of(unboxed, "feq"));
  report("nanbox-feq.s-flags", read_csr(fflags));
  report("nanbox-fsw-unboxed", fmv_x_d_of(unboxed, "fsw"));
  report("nanbox-fmv.w.x", fmv_x_d_of(0x55555555c0490fdbull, "fmv.w.x"));
  report("nanbox-flw", fmv_x_d_of(0xc0490fdbull, "flw"));
  report("nanbox-fcvt.s.w", fmv_x_d_of(7, "fcvt.s.w"));
  report("nanbox-fmin.s-boxed", fmv_x_d_of(boxed_one, "fmin"));
  report("nanbox-fsgnjx.s-boxed", fmv_x_d_of(boxed_neg, "fsgnjx"));

  /* ---- transfers keep every bit: NaN payloads through loads, stores and moves ---- */
  mem[0] = 0x7ff4000000000abcull;
  mem[1] = 0xfffc123456789abcull;
  asm volatile("la t0, mem\n fld ft0, 0(t0)\n fld ft1, 8(t0)\n fsd ft1, 16(t0)\n fsd ft0, 24(t0)\n"
               "fmv.x.d t1, ft0\n sd t1, 32(t0)\n fmv.d.x ft1, t1\n fsw ft1, 40(t0)" ::: "t0", "t1", "ft0", "ft1", "memory");
  report("payload-fsd", mem[2]);
  report("payload-fsd2", mem[3]);
  report("payload-fmv", mem[4]);
  report("payload-fsw", mem[5]);

  /* ---- compressed FP loads and stores (Unprivileged 26.3), and a misaligned fld/fsd ---- */
  mem[0] = 0x400921fb54442d18ull;
  mem[1] = 0x4005bf0a8b145769ull;
  uint64_t r0, r1;
  asm volatile(
      "mv a0, %2\n c.fld fa0, 0(a0)\n c.fld fa1, 8(a0)\n c.fsd fa1, 16(a0)\n c.fsd fa0, 24(a0)\n"
      "addi sp, sp, -16\n c.fsdsp fa0, 8(sp)\n c.fldsp fa2, 8(sp)\n c.fsdsp fa1, 0(sp)\n c.fldsp fa3, 0(sp)\n addi sp, sp, 16\n"
      "fmv.x.d %0, fa2\n fmv.x.d %1, fa3"
      : "=r"(r0), "=r"(r1) : "r"(mem) : "a0", "fa0", "fa1", "fa2", "fa3", "memory");
  report("c.fld-c.fsd-0", mem[2]);
  report("c.fld-c.fsd-1", mem[3]);
  report("c.fsdsp-c.fldsp-0", r0);
  report("c.fsdsp-c.fldsp-1", r1);
  for (int i = 0; i < 24; i++) bytes[i] = (uint8_t)(0x11 * (i + 1));
  asm volatile("mv a0, %1\n fld fa0, 3(a0)\n fsd fa0, 13(a0)\n flw fa1, 1(a0)\n fmv.x.d %0, fa1"
               : "=r"(r0) : "r"(bytes) : "a0", "fa0", "fa1", "memory");
  report("misaligned-flw", r0);
  report("misaligned-fsd-lo", *(volatile uint64_t *)&bytes[8]);
  report("misaligned-fsd-hi", *(volatile uint64_t *)&bytes[16]);
  return 0;
}

static int streq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

/* A few operations on a raw 64-bit pattern placed in ft0 (and ft1 where a second operand is
   needed), returning the raw result. */
static uint64_t fmv_x_d_of(uint64_t v, const char *op) {
  uint64_t r = 0;
  const uint64_t one = 0xffffffff3f800000ull;
#define OP(name, text, ...) if (streq(op, name)) { asm volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n " text : "=r"(r) : "r"(v), "r"(one) : "ft0", "ft1", "ft2", "t0", "memory"); return r; }
  OP("fadd", "fadd.s ft2, ft0, ft0\n fmv.x.d %0, ft2")
  OP("fsgnj1", "fsgnj.s ft2, ft0, ft1\n fmv.x.d %0, ft2")
  OP("fsgnjn2", "fsgnjn.s ft2, ft1, ft0\n fmv.x.d %0, ft2")
  OP("fsgnjx", "fsgnjx.s ft2, ft1, ft0\n fmv.x.d %0, ft2")
  OP("fmin", "fmin.s ft2, ft0, ft1\n fmv.x.d %0, ft2")
  OP("fmv.x.w", "fmv.x.w %0, ft0")
  OP("fclass", "fclass.s %0, ft0")
  OP("fcvt.d.s", "fcvt.d.s ft2, ft0\n fmv.x.d %0, ft2")
  OP("feq", "feq.s %0, ft0, ft0")
  OP("fsw", "la t0, mem\n sd zero, 0(t0)\n fsw ft0, 0(t0)\n ld %0, 0(t0)")
  OP("fmv.w.x", "fmv.w.x ft2, %1\n fmv.x.d %0, ft2")
  OP("flw", "la t0, mem\n sd %1, 0(t0)\n flw ft2, 0(t0)\n fmv.x.d %0, ft2")
  OP("fcvt.s.w", "fcvt.s.w ft2, %1\n fmv.x.d %0, ft2")
#undef OP
  return r;
}
