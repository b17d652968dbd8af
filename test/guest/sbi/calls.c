/* The built-in SBI against calls a hostile or unusual kernel makes (RISC-V SBI v2.0): the
   timer through the TIME extension and the legacy set_timer (which must interrupt even though
   Sstc is on for S-mode), DBCN console writes of 100 KiB, from outside RAM, across its end
   and with base_addr_hi set, and a thousand calls to extensions that do not exist. Prints
   name=value lines; exits through SRST with a failure reason when a check failed. */
#include <stdint.h>
#include "sbi.h"

#define STIE (1ul << 5)
#define STIP (1ul << 5)

static uint8_t big[100 << 10];
static int failures;

#define EXPECT(cond) do { if (!(cond)) { puts_("FAIL: " #cond "\n"); failures++; } } while (0)

static uint64_t rdtime(void) { return csr_read(time); }

/* Sets the timer 100 ticks ahead with `eid` (TIME or legacy 0) and waits for it in WFI. */
static uint64_t timer_wait(uint64_t eid) {
  uint64_t t = rdtime() + 100;
  sbi_call(eid, 0, t, 0, 0);
  csr_set(sie, STIE);
  uint64_t sleeps = 0;
  while (!(csr_read(sip) & STIP)) {
    asm volatile("wfi");
    sleeps++;
  }
  csr_clear(sie, STIE);
  EXPECT(rdtime() >= t);
  sbi_call(eid, 0, -1ull, 0, 0);
  EXPECT(!(csr_read(sip) & STIP));
  return sleeps;
}

int main(void) {
  report("time_sleeps", timer_wait(0x54494d45));
  report("legacy_sleeps", timer_wait(0));

  uint64_t ram_end = 0x80000000ul + (64ul << 20);
  for (unsigned i = 0; i < sizeof big; i++) big[i] = 'a' + i % 26;
  struct sbiret r = sbi_call(0x4442434e, 0, sizeof big, (uintptr_t)big, 0);
  report("dbcn_write_error", r.error);
  report("dbcn_write_count", r.value);
  EXPECT(r.error == 0 && r.value > 0 && r.value < sizeof big);
  putch('\n');
  EXPECT(sbi_call(0x4442434e, 0, 16, 0x1000, 0).error == -3);
  EXPECT(sbi_call(0x4442434e, 0, 16, ram_end - 8, 0).error == -3);
  EXPECT(sbi_call(0x4442434e, 0, 16, (uintptr_t)big, 1).error == -3);
  EXPECT(sbi_call(0x4442434e, 1, 16, ram_end - 8, 0).error == -3);
  EXPECT(sbi_call(0x4442434e, 0, 0, (uintptr_t)big, 0).error == 0);

  for (uint64_t i = 0; i < 1000; i++) EXPECT(sbi_call(0x0a000000 + i, i, 0, 0, 0).error == -2);

  report("failures", failures);
  puts_(failures ? "sbi: FAILED\n" : "sbi: ok\n");
  return failures;
}
