/* Exceptions, delegation, xRET round trips and the trap-and-emulate controls TVM, TW and TSR
   (Privileged spec 3.1.6, 3.1.8, 3.3). Each observation is printed for comparison with QEMU
   and the rules the spec states are checked. */
#include "trap.h"

#define MSTATUS_MPP (3ull << 11)
#define MSTATUS_SPP (1ull << 8)
#define MSTATUS_TVM (1ull << 20)
#define MSTATUS_TW (1ull << 21)
#define MSTATUS_TSR (1ull << 22)
#define MSTATUS_MPRV (1ull << 17)

extern char illegal32[], illegal16[], ecall_m[], ebreak_m[], cebreak_m[];

static void expect_m(const char *what, uint64_t cause, uint64_t count_before) {
  puts_(what);
  puts_(": cause=");
  put_dec(last_m.cause);
  puts_(" mode=");
  put_dec(last_m.mode);
  puts_(" tval=");
  put_hex(last_m.tval);
  putch('\n');
  CHECK(last_m.count == count_before + 1, 20);
  CHECK(last_m.cause == cause, 21);
}

static long s_satp(long a) {
  (void)a;
  return (long)read_csr(satp);
}
static long s_sfence(long a) {
  (void)a;
  asm volatile("sfence.vma");
  return 0;
}
static long s_wfi(long a) {
  (void)a;
  asm volatile("wfi");
  return 7;
}
static long s_sret(long a) {
  (void)a;
  asm volatile("la t0, 1f\n csrw sepc, t0\n sret\n 1:" ::: "t0");
  return 8;
}
static long s_ecall(long a) {
  asm volatile("ecall");
  return a + 1;
}
static long u_ecall(long a) {
  asm volatile("ecall");
  return a + 2;
}
static long s_illegal(long a) {
  asm volatile(".4byte 0x7ff02573"); /* csrr a0, 0x7ff: no such CSR */
  return a;
}
static long any_mode(long a) {
  (void)a;
  return 42;
}
static long u_csr(long a) {
  (void)a;
  return (long)read_csr(sstatus);
}
static long s_cycle(long a) {
  (void)a;
  return (long)read_csr(cycle);
}
/* instret, not time: QEMU's spike machine has no time CSR (firmware emulates it). */
static long u_instret(long a) {
  (void)a;
  return (long)read_csr(instret);
}
static long u_wfi(long a) {
  (void)a;
  asm volatile("wfi");
  return 3;
}

int main(void) {
  trap_init();
  uint64_t n;

  /* Illegal instructions report their bits in mtval (3.1.16); epc is the instruction. */
  n = last_m.count;
  asm volatile(".globl illegal32\nillegal32: .4byte 0x7ff02573");
  expect_m("illegal-32", 2, n);
  CHECK(last_m.tval == 0x7ff02573 && last_m.epc == (uint64_t)illegal32, 22);
  n = last_m.count;
  asm volatile(".globl illegal16\nillegal16: .2byte 0\n .2byte 0x0001");
  expect_m("illegal-16", 2, n);
  CHECK(last_m.epc == (uint64_t)illegal16, 23);

  n = last_m.count;
  asm volatile(".globl ecall_m\necall_m: ecall");
  expect_m("ecall-m", 11, n);
  CHECK(last_m.epc == (uint64_t)ecall_m && last_m.tval == 0, 24);
  n = last_m.count;
  asm volatile(".globl ebreak_m\nebreak_m: .option push\n .option norvc\n ebreak\n .option pop");
  expect_m("ebreak", 3, n);
  n = last_m.count;
  asm volatile(".globl cebreak_m\ncebreak_m: c.ebreak");
  expect_m("c.ebreak", 3, n);
  CHECK(last_m.epc == (uint64_t)cebreak_m, 25);

  /* Not delegated: an ecall from S and from U reach M-mode with causes 9 and 8. */
  n = last_m.count;
  CHECK(in_mode(PRV_S, s_ecall, 1) == 2, 26);
  expect_m("ecall-s", 9, n);
  n = last_m.count;
  CHECK(in_mode(PRV_U, u_ecall, 1) == 3, 27);
  expect_m("ecall-u", 8, n);
  report("mpp-after-mret", (read_csr(mstatus) & MSTATUS_MPP) >> 11);

  /* Delegated to S: illegal instruction (2) and ecall from U (8) go to the S handler. */
  write_csr(medeleg, (1 << 2) | (1 << 8));
  report("medeleg", read_csr(medeleg));
  uint64_t sn = last_s.count;
  in_mode(PRV_S, s_illegal, 0);
  CHECK(last_s.count == sn + 1 && last_s.cause == 2 && last_s.tval == 0x7ff02573 && last_s.mode == 1, 28);
  in_mode(PRV_U, u_ecall, 0);
  CHECK(last_s.count == sn + 2 && last_s.cause == 8 && last_s.mode == 0, 29);
  /* A delegated exception raised in M-mode still traps to M (3.1.8). */
  n = last_m.count;
  asm volatile(".4byte 0x7ff02573");
  expect_m("illegal-in-m-with-medeleg", 2, n);
  write_csr(medeleg, 0);

  /* MRET into S and U, and the values left in mstatus. */
  CHECK(in_mode(PRV_S, any_mode, 0) == 42, 30);
  CHECK(in_mode(PRV_U, any_mode, 0) == 42, 31);

  /* TVM: satp access and SFENCE.VMA in S-mode are illegal (3.1.6.5). */
  set_csr(mstatus, MSTATUS_TVM);
  n = last_m.count;
  in_mode(PRV_S, s_satp, 0);
  expect_m("tvm-satp", 2, n);
  CHECK(last_m.tval == 0x18002573, 32); /* csrr a0, satp */
  n = last_m.count;
  in_mode(PRV_S, s_sfence, 0);
  expect_m("tvm-sfence", 2, n);
  clear_csr(mstatus, MSTATUS_TVM);
  n = last_m.count;
  in_mode(PRV_S, s_satp, 0);
  CHECK(last_m.count == n, 33); /* no trap at all */

  /* TW: WFI in S-mode is illegal; without TW it completes (an interrupt-free WFI may return). */
  set_csr(mstatus, MSTATUS_TW);
  n = last_m.count;
  in_mode(PRV_S, s_wfi, 0);
  expect_m("tw-wfi", 2, n);
  clear_csr(mstatus, MSTATUS_TW);
  /* WFI in U-mode is illegal regardless of TW. */
  n = last_m.count;
  in_mode(PRV_U, u_wfi, 0);
  expect_m("u-wfi", 2, n);

  /* TSR: SRET in S-mode is illegal. */
  set_csr(mstatus, MSTATUS_TSR);
  n = last_m.count;
  in_mode(PRV_S, s_sret, 0);
  expect_m("tsr-sret", 2, n);
  clear_csr(mstatus, MSTATUS_TSR);
  CHECK(in_mode(PRV_S, s_sret, 0) == 8, 34);

  /* U-mode cannot read S CSRs. */
  n = last_m.count;
  in_mode(PRV_U, u_csr, 0);
  expect_m("u-sstatus", 2, n);

  /* Counters: S needs mcounteren, U needs mcounteren and scounteren (3.1.11). */
  write_csr(mcounteren, 0);
  n = last_m.count;
  in_mode(PRV_S, s_cycle, 0);
  expect_m("s-cycle-disabled", 2, n);
  write_csr(mcounteren, 7);
  write_csr(scounteren, 0);
  n = last_m.count;
  in_mode(PRV_S, s_cycle, 0);
  CHECK(last_m.count == n, 35);
  in_mode(PRV_U, u_instret, 0);
  expect_m("u-instret-disabled", 2, n);
  write_csr(scounteren, 4);
  n = last_m.count;
  in_mode(PRV_U, u_instret, 0);
  CHECK(last_m.count == n, 36);

  /* WARL fields: mepc/sepc clear bit 0; mtvec keeps only legal modes; MPP stays legal. */
  write_csr(mepc, 0x80001235);
  report("mepc", read_csr(mepc));
  write_csr(sepc, 0x80001237);
  report("sepc", read_csr(sepc));
  write_csr(stvec, 0x80001001);
  report("stvec", read_csr(stvec));
  /* QEMU 7.2's default CPU also has H (bit 7), which virtus does not implement. */
  report("misa-without-h", read_csr(misa) & ~(1ull << 7));
  report("mhartid", read_csr(mhartid));
  report("mvendorid", read_csr(mvendorid));
  uint64_t ms = read_csr(mstatus);
  report("mstatus-xl", ms >> 32);
  report("sstatus-mask", read_csr(sstatus) & ~0x8000000000006000ull);
  /* MPRV: M-mode loads with MPP = U use U-mode translation; with satp bare nothing changes. */
  set_csr(mstatus, MSTATUS_MPRV);
  volatile uint64_t probe = 77;
  CHECK(probe == 77, 37);
  clear_csr(mstatus, MSTATUS_MPRV);

  puts_("traps done\n");
  return 0;
}
