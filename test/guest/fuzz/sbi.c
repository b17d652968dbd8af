/* Guest fuzzer: random SBI calls (RISC-V SBI v2.0) from S-mode under virtus's built-in SBI:
   random extension and function IDs (the implemented ones, legacy ones, and any 32- or
   64-bit value) with random arguments, HSM/RFENCE/IPI with hostile hart masks and bases,
   DBCN with lengths and addresses inside, across the end of and outside RAM, timers set
   anywhere (also through Sstc's stimecmp), and suspends woken by a timer a few ticks ahead.
   Never asks for a system reset that would be honoured (SRST with a valid type and reason,
   legacy shutdown), so a run ends only when the host stops it. */
#include <stdint.h>
#include "fuzz.h"

#define RAM_SIZE (64ul << 20)

enum {
  EID_BASE = 0x10, EID_TIME = 0x54494d45, EID_IPI = 0x735049, EID_RFENCE = 0x52464e43, EID_HSM = 0x48534d,
  EID_SRST = 0x53525354, EID_PMU = 0x504d55, EID_DBCN = 0x4442434e, EID_SUSP = 0x53555350,
};
static const uint64_t EIDS[] = { EID_BASE, EID_TIME, EID_IPI, EID_RFENCE, EID_HSM, EID_SRST, EID_PMU, EID_DBCN, EID_SUSP, 0, 1, 2, 3, 4, 5, 6, 7, 8 };
#define N_EIDS (sizeof EIDS / sizeof EIDS[0])

#define STIE (1ul << 5)
#define SSIP (1ul << 1)
#define CSR_STIMECMP "0x14d"

uint8_t fuzz_stack[16384] __attribute__((aligned(16)));
uint64_t fuzz_traps;

/* S-mode entry (the built-in SBI starts the kernel in S-mode with a0 = hartid, a1 = DTB). */
void __attribute__((naked, section(".text.init"))) _start(void) {
  asm volatile(
    "la sp, fuzz_stack\n"
    "li t0, 16384\n"
    "add sp, sp, t0\n"
    "li t0, 1 << 13\n"
    "csrs sstatus, t0\n"
    "la t0, _strap\n"
    "csrw stvec, t0\n"
    "call main\n"
    "1: j 1b\n");
}

/* Exceptions delegated to S-mode (none are expected) are skipped; interrupts stay masked. */
void __attribute__((interrupt("supervisor"), aligned(4))) _strap(void) {
  uint64_t cause;
  asm volatile("csrr %0, scause" : "=r"(cause));
  if ((int64_t)cause < 0) return;
  uint64_t pc;
  asm volatile("csrr %0, sepc" : "=r"(pc));
  uint16_t insn = *(volatile uint16_t *)pc;
  pc += (insn & 3) == 3 ? 4 : 2;
  asm volatile("csrw sepc, %0" :: "r"(pc));
  fuzz_traps++;
}

struct ret { int64_t error; uint64_t value; };

static struct ret sbi(uint64_t eid, uint64_t fid, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
  register uint64_t r0 asm("a0") = a0, r1 asm("a1") = a1, r2 asm("a2") = a2, r3 asm("a3") = a3;
  register uint64_t r4 asm("a4") = a4, r5 asm("a5") = a5, r6 asm("a6") = fid, r7 asm("a7") = eid;
  asm volatile("ecall" : "+r"(r0), "+r"(r1) : "r"(r2), "r"(r3), "r"(r4), "r"(r5), "r"(r6), "r"(r7) : "memory");
  return (struct ret){ (int64_t)r0, r1 };
}

static uint64_t rdtime(void) {
  uint64_t t;
  asm volatile("rdtime %0" : "=r"(t));
  return t;
}

/* An argument: an address inside, at the end of or outside RAM, a hart mask, or any value. */
static uint64_t arg(void) {
  switch (below(6)) {
    case 0: return RAM_BASE + below(RAM_SIZE);
    case 1: return RAM_BASE + RAM_SIZE - below(64);
    case 2: return below(4);
    case 3: return -1ull - below(4);
    default: return value();
  }
}

/* A call that would really reset or power off the machine becomes one that is refused. */
static int resets(uint64_t eid, uint64_t fid, uint64_t a0, uint64_t a1) {
  return (eid == 8) || ((uint32_t)eid == EID_SRST && (uint32_t)fid == 0 && a0 <= 2 && a1 <= 1);
}

/* Waits for the supervisor timer a few ticks ahead, set through the SBI or through stimecmp. */
static void timed_wait(void) {
  uint64_t at = rdtime() + 1 + below(500);
  if (one_in(2)) sbi(EID_TIME, 0, at, 0, 0, 0, 0, 0);
  else asm volatile("csrw " CSR_STIMECMP ", %0" :: "r"(at));
  asm volatile("csrs sie, %0" :: "r"(STIE));
  if (one_in(2)) sbi(EID_HSM, 3, 0, 0, 0, 0, 0, 0); /* hart_suspend, default retentive */
  else asm volatile("wfi");
  asm volatile("csrc sie, %0" :: "r"(STIE));
  sbi(EID_TIME, 0, -1ull, 0, 0, 0, 0, 0);
  asm volatile("csrw " CSR_STIMECMP ", %0" :: "r"(-1ull));
}

static void call(void) {
  uint64_t eid, fid;
  switch (below(8)) {
    case 0: eid = (uint32_t)rnd(); break;
    case 1: eid = value(); break;
    default: eid = EIDS[below(N_EIDS)]; break;
  }
  fid = one_in(4) ? value() : below(10);
  uint64_t a[6];
  for (int i = 0; i < 6; i++) a[i] = arg();
  if ((uint32_t)eid == EID_DBCN && !one_in(4)) a[2] = 0; /* base_addr_hi: mostly zero on RV64 */
  /* console_read writes host input there: never over this program (its first MiB) */
  if ((uint32_t)eid == EID_DBCN && (uint32_t)fid == 1 && a[1] >= RAM_BASE && a[1] < RAM_BASE + (1ul << 20)) a[1] += 1ul << 20;
  if ((uint32_t)eid == EID_HSM && (uint32_t)fid == 3) return timed_wait();
  if (resets(eid, fid, a[0], a[1])) a[0] = 3 + below(100);
  if (eid == 8) eid = 9;
  sbi(eid, fid, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int main(void) {
  seed_rng();
  for (;;) {
    switch (below(64)) {
      case 0: timed_wait(); break;
      case 1: asm volatile("csrw " CSR_STIMECMP ", %0" :: "r"(value())); break;
      case 2: asm volatile("csrc sip, %0" :: "r"(SSIP)); break;
      default: call(); break;
    }
    fuzz_ops++;
  }
}
