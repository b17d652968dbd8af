/* Interrupts (Privileged 3.1.9, 3.3.3): the CLINT timer and software interrupts, priority among
   pending interrupts, WFI waking without a trap when interrupts are globally off, vectored
   mtvec, and supervisor interrupts delegated through mideleg. */
#include "trap.h"

#define CLINT 0x2000000ul
#define MSIP (*(volatile uint32_t *)(CLINT))
#define MTIMECMP (*(volatile uint64_t *)(CLINT + 0x4000))
#define MTIME (*(volatile uint64_t *)(CLINT + 0xbff8))
#define MIE_BIT (1ull << 3)
#define SIE_BIT (1ull << 1)

static volatile uint64_t order[8];
static volatile int norder;

static int m_irq(uint64_t cause, int smode) {
  order[norder++ & 7] = cause;
  uint64_t c = cause & 0xff;
  if (smode) {
    if (c == 1) clear_csr(sip, 2);
    if (c == 5) asm volatile("li a7, 0x11\n ecall" ::: "a7", "memory"); /* ask M to clear STIP */
    return 1;
  }
  if (c == 3) MSIP = 0;
  if (c == 7) MTIMECMP = ~0ull;
  return 1;
}

static int clear_stip(struct frame *f) {
  if (f->x[17] != 0x11) return 0;
  clear_csr(mip, 1 << 5);
  return 1;
}

static long s_software(long a) {
  (void)a;
  set_csr(sie, 1 << 1);
  set_csr(sstatus, SIE_BIT);
  set_csr(sip, 1 << 1);            /* S-mode software interrupt, delegated */
  for (int i = 0; i < 100 && norder == 0; i++) asm volatile("nop");
  clear_csr(sstatus, SIE_BIT);
  return norder;
}

static long s_wait(long a) {
  (void)a;
  set_csr(sie, 1 << 5);
  set_csr(sstatus, SIE_BIT);
  while (norder == 0) asm volatile("wfi");
  clear_csr(sstatus, SIE_BIT);
  return norder;
}

void vtable(void);
void bad_vector(void) { exit(90); }
asm(".option push\n .option norvc\n .align 6\n vtable:\n"
    " j bad_vector\n j bad_vector\n j bad_vector\n j m_trap_entry\n"
    " j bad_vector\n j bad_vector\n j bad_vector\n j bad_vector\n"
    " j bad_vector\n j bad_vector\n j bad_vector\n j bad_vector\n .option pop\n");

int main(void) {
  trap_init();
  irq_hook = m_irq;
  ecall_hook = clear_stip;

  /* Machine timer: mtimecmp in the near future, WFI until the interrupt is taken. WFI runs
     with MIE clear (it still wakes on the pending timer) and the interrupt is taken when MIE is
     set: with MIE set, a timer firing between the check of norder and the WFI would be taken
     there and the WFI would then wait forever (seen on QEMU under load). */
  MTIMECMP = MTIME + 200;
  write_csr(mie, 1 << 7);
  while (norder == 0) {
    asm volatile("wfi");
    set_csr(mstatus, MIE_BIT);
    clear_csr(mstatus, MIE_BIT);
  }
  report("mti", order[0]);
  CHECK(order[0] == 0x8000000000000007ull && last_m.epc != 0, 2);

  /* Machine software interrupt through the CLINT's msip. */
  norder = 0;
  write_csr(mie, 1 << 3);
  MSIP = 1;
  set_csr(mstatus, MIE_BIT);
  for (int i = 0; i < 100 && norder == 0; i++) asm volatile("nop");
  clear_csr(mstatus, MIE_BIT);
  report("msi", order[0]);

  /* Priority: with both pending, MSI is taken before MTI. */
  norder = 0;
  MSIP = 1;
  MTIMECMP = 0;
  write_csr(mie, (1 << 3) | (1 << 7));
  report("mip-pending", read_csr(mip) & 0x88);
  set_csr(mstatus, MIE_BIT);
  for (int i = 0; i < 100 && norder < 2; i++) asm volatile("nop");
  clear_csr(mstatus, MIE_BIT);
  report("first", order[0]);
  report("second", order[1]);

  /* WFI with MIE clear still wakes on an enabled pending interrupt, without a trap. */
  norder = 0;
  uint64_t before = last_m.count;
  MTIMECMP = MTIME + 200;
  write_csr(mie, 1 << 7);
  asm volatile("wfi");
  while (!(read_csr(mip) & (1 << 7))) {}
  CHECK(last_m.count == before && norder == 0, 3);
  MTIMECMP = ~0ull;

  /* Vectored mtvec: an interrupt goes to base + 4 * cause. */
  norder = 0;
  write_csr(mtvec, (uint64_t)vtable | 1);
  write_csr(mie, 1 << 3);
  MSIP = 1;
  set_csr(mstatus, MIE_BIT);
  for (int i = 0; i < 100 && norder == 0; i++) asm volatile("nop");
  clear_csr(mstatus, MIE_BIT);
  write_csr(mtvec, (uint64_t)m_trap_entry);
  report("vectored", order[0]);

  /* An interrupt that a CSR write makes deliverable is taken before the next instruction. */
  norder = 0;
  write_csr(mie, 1 << 3);
  MSIP = 1;
  uint64_t next;
  asm volatile("la %0, 1f\n csrsi mstatus, 8\n1: csrci mstatus, 8" : "=&r"(next) :: "memory");
  CHECK(norder == 1 && last_m.epc == next, 6);
  report("csr-enable", order[0]);

  /* Delegated supervisor software interrupt, raised by S-mode itself. */
  norder = 0;
  write_csr(mie, 0);
  write_csr(mideleg, (1 << 1) | (1 << 5) | (1 << 9));
  report("mideleg", read_csr(mideleg) & 0x222); /* QEMU also forces the H extension's VS bits */
  CHECK(in_mode(PRV_S, s_software, 0) == 1, 4);
  report("ssi", order[0]);

  /* Supervisor timer interrupt injected by M-mode through mip.STIP. */
  norder = 0;
  set_csr(mip, 1 << 5);
  CHECK(in_mode(PRV_S, s_wait, 0) >= 1, 5);
  report("sti", order[0]);
  report("mip-after", read_csr(mip) & 0x222);

  puts_("interrupts done\n");
  return 0;
}
