/* The counters mcycle and minstret under writes and mcountinhibit (Privileged 3.1.11, 3.1.13;
   Unprivileged, Zicsr chapter: "a value written to instret by one instruction will be the value
   read by the following instruction"). The straight-line probes print what QEMU can be compared
   with (it runs with -icount, where its counters count instructions); the hot loop writes and
   inhibits the counters inside code the translator compiles, for the lockstep test. */
#include "test.h"

static volatile uint64_t sink[64];

static void probes(void) {
  uint64_t a, b, c, d;
  asm volatile("li t0, 1000; csrw minstret, t0; csrr %0, minstret; csrr %1, minstret" : "=r"(a), "=r"(b) :: "t0");
  report("minstret-after-write", a);
  report("minstret-next", b - a);
  asm volatile("li t0, 5000; csrw mcycle, t0; csrr %0, mcycle; csrr %1, mcycle" : "=r"(a), "=r"(b) :: "t0");
  report("mcycle-after-write", a);
  report("mcycle-next", b - a);
  asm volatile("li t0, -1; csrw minstret, t0; csrr %0, minstret; csrr %1, minstret" : "=r"(a), "=r"(b) :: "t0");
  report("minstret-wrap", a);
  report("minstret-wrap-next", b - a);
  /* Inhibited counters stand still and take writes as they are. */
  asm volatile("csrsi mcountinhibit, 4; csrr %0, minstret; nop; nop; csrr %1, minstret; li t0, 77; csrw minstret, t0; nop;"
               "csrr %2, minstret" : "=r"(a), "=r"(b), "=r"(c) :: "t0");
  report("inhibited-still", b - a);
  report("inhibited-write", c);
  asm volatile("csrci mcountinhibit, 4; csrr %0, minstret; csrr %1, minstret" : "=r"(a), "=r"(b));
  report("resumed", b - a);
  asm volatile("csrr %0, mcycle; csrsi mcountinhibit, 1; csrr %1, mcycle" : "=r"(a), "=r"(b));
  report("cy-stop-delta", b - a);
  asm volatile("csrci mcountinhibit, 1; csrr %0, mcycle; csrr %1, mcycle" : "=r"(a), "=r"(b));
  report("cy-resumed", b - a);
  /* The unprivileged views read the same counters. */
  asm volatile("csrr %0, minstret; csrr %1, instret; csrr %2, mcycle; csrr %3, cycle" : "=r"(a), "=r"(b), "=r"(c), "=r"(d));
  report("instret-view", b - a);
  report("cycle-view", d - c);
  /* mcountinhibit is WARL: CY and IR are implemented, TM is read-only zero. */
  asm volatile("li t0, -1; csrw mcountinhibit, t0; csrr %0, mcountinhibit; csrw mcountinhibit, zero" : "=r"(a) :: "t0");
  report("mcountinhibit", a);
}

/* Writes, inhibits and reads both counters, many times, from translated code. */
static void hot(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    uint64_t a, b;
    asm volatile("csrw minstret, %2; addi %0, %2, 3; csrr %0, minstret; csrw mcycle, %0; csrr %1, cycle"
                 : "=&r"(a), "=&r"(b) : "r"(i < 1000 ? i : i * 0x9e3779b97f4a7c15ull));
    if (i % 3 == 0) asm volatile("csrsi mcountinhibit, 5");
    if (i % 5 == 0) asm volatile("csrci mcountinhibit, 1");
    if (i % 7 == 0) asm volatile("csrci mcountinhibit, 4");
    sink[i & 63] += a ^ b ^ read_csr(minstret) ^ (read_csr(mcycle) << 1);
  }
  write_csr(mcountinhibit, 0);
}

int main(void) {
  probes();
  hot(20000);
  uint64_t sum = 0;
  for (int i = 0; i < 64; i++) sum += sink[i];
  /* Engines must agree on the sum (lockstep); QEMU 7.2's inhibited counters are not a reference. */
  CHECK(sum != 0, 2);
  puts_("counters done\n");
  return 0;
}
