/* The CLINT's mtime at the edges of its range (ACLINT MTIMER: 64-bit mtime and mtimecmp):
   the guest sets mtime near 2^64 and waits in WFI for a timer a few ticks ahead, then sets it
   back to a small value and waits again. The monitor counts time in doubles, exact below
   2^53 ticks (28 years at 10 MHz): writes wrap at 2^52 (clint.ts), and each wait must end,
   with mtime past mtimecmp. Prints name=value lines. */
#include <stdint.h>
#include "test.h"

#define MTIME (*(volatile uint64_t *)0x0200bff8ul)
#define MTIMECMP (*(volatile uint64_t *)0x02004000ul)

static int failures;

static void wait_for(uint64_t ahead, const char *name) {
  uint64_t t = MTIME;
  MTIMECMP = t + ahead;
  set_csr(mie, 1 << 7);
  while (!(read_csr(mip) & (1 << 7))) asm volatile("wfi");
  clear_csr(mie, 1 << 7);
  uint64_t after = MTIME;
  puts_(name);
  puts_(": mtime=");
  put_hex(t);
  puts_(" after=");
  put_hex(after);
  putch('\n');
  if (after < t + ahead) failures++;
  MTIMECMP = ~0ull;
}

int main(void) {
  MTIME = 0xffffffff00000000ull;
  report("mtime_high", MTIME);
  wait_for(100, "near the top");
  MTIME = 0xfffffffffffff000ull;
  wait_for(1000, "at the top");
  MTIME = 5;
  report("mtime_low", MTIME);
  wait_for(100, "back at the bottom");
  report("failures", failures);
  puts_(failures ? "time: FAILED\n" : "time: ok\n");
  return failures;
}
