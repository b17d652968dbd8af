/* SBI Hart State Management and IPIs on a 2-hart machine, from an S-mode kernel (SBI v2.0
   ch. 9): the kernel runs on the hart the firmware booted (OpenSBI's lottery may pick either
   when the harts run in parallel threads; a0 at the entry says which), and the other hart
   starts STOPPED; hart_start runs it at an address with a0 = hartid and
   a1 = opaque; a retentive hart_suspend shows SUSPENDED until an IPI wakes it; hart_stop
   shows STOPPED, and the hart starts again. Bad hart ids, and starting a running or a
   suspended hart, are refused. Prints name=value lines, the same under virtus's built-in SBI and under OpenSBI
   (on QEMU and on virtus); exits through SRST. */
#include <stdint.h>
#include "sbi.h"

#define HSM 0x48534d
#define IPI 0x735049
#define STARTED 0
#define STOPPED 1
#define SUSPENDED 4
#define SSIE (1ul << 1)
#define SSIP (1ul << 1)

static volatile uint64_t starts, published, hartid[2], opaque[2], suspend_error, woke;
uint8_t stack2[4096] __attribute__((aligned(16), used));

void secondary(void);
asm(".text\n.globl secondary\nsecondary:\n"
    "  la sp, stack2 + 4096\n"
    "  la t0, _default_strap\n"
    "  csrw stvec, t0\n"
    "  call secondary_main\n"
    "1: j 1b\n");

static uint64_t amoadd(volatile uint64_t *p, uint64_t v) {
  uint64_t old;
  asm volatile("amoadd.d.aqrl %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory");
  return old;
}

void secondary_main(uint64_t id, uint64_t arg) {
  uint64_t n = amoadd(&starts, 1);
  hartid[n] = id;
  opaque[n] = arg;
  /* Published after the stores: hart 0 may run at the same time (QEMU's threads, virtus's). */
  amoadd(&published, 1);
  if (n == 0) {
    /* Wait for an IPI with interrupts masked (sstatus.SIE = 0): suspend returns once one is pending. */
    csr_set(sie, SSIE);
    suspend_error = sbi_call(HSM, 3, 0, 0, 0).error;
    csr_clear(sip, SSIP);
    csr_clear(sie, SSIE);
    asm volatile("fence rw, rw" ::: "memory");
    woke = 1;
  }
  sbi_call(HSM, 1, 0, 0, 0); /* hart_stop: does not return */
  for (;;) {}
}

static uint64_t status(uint64_t hart) { return sbi_call(HSM, 2, hart, 0, 0).value; }

/* The hart this kernel does not run on. */
static uint64_t other;

/* True until 10 s of the 10 MHz timer have passed since `t0` (waits are bounded in time: QEMU's
   harts are host threads that start when the host gets round to it). */
static int within(uint64_t t0) { return csr_read(time) - t0 < 100000000ul; }

/* Polls the other hart's status until it is `want`; returns the last seen. */
static uint64_t await_status(uint64_t want) {
  uint64_t s = 0, t0 = csr_read(time);
  while ((s = status(other)) != want && within(t0)) {}
  return s;
}

/* `boot_hart`: a0 as the firmware entered the kernel (crt-s.S leaves it for main). */
int main(uint64_t boot_hart) {
  other = boot_hart ^ 1;
  report("status_before_start", status(other));
  report("status_of_hart_7_error", sbi_call(HSM, 2, 7, 0, 0).error);
  report("start_hart_7_error", sbi_call(HSM, 0, 7, (uintptr_t)secondary, 0).error);
  report("start_error", sbi_call(HSM, 0, other, (uintptr_t)secondary, 0x1234).error);
  report("status_while_suspended", await_status(SUSPENDED));
  report("started_hartid_is_the_other", hartid[0] == other);
  report("started_opaque", opaque[0]);
  report("start_suspended_hart_error", sbi_call(HSM, 0, other, (uintptr_t)secondary, 0).error);
  report("start_self_error", sbi_call(HSM, 0, boot_hart, (uintptr_t)secondary, 0).error);
  report("ipi_error", sbi_call(IPI, 0, 1ul << other, 0, 0).error);
  for (uint64_t t0 = csr_read(time); !woke && within(t0);) {}
  report("woke", woke);
  report("suspend_error", suspend_error);
  report("status_after_stop", await_status(STOPPED));
  report("restart_error", sbi_call(HSM, 0, other, (uintptr_t)secondary, 0x5678).error);
  for (uint64_t t0 = csr_read(time); published < 2 && within(t0);) {}
  report("restarted_opaque", opaque[1]);
  report("status_after_second_stop", await_status(STOPPED));
  report("starts", starts);
  return 0;
}
