/* The migration benchmark's guest: prints "ready", then dirties a region of MIB MiB at RATE
   MB/s for ever, one 64-bit store per 4 KiB page, walking the region round and round (RATE 0:
   an idle guest, waiting for interrupts that never come). The pace follows mtime (10 MHz on
   QEMU's virt machine and on virtus), so both dirty memory at the same rate. */
#include <stdint.h>

#ifndef MIB
#define MIB 128
#endif
#ifndef RATE
#define RATE 50
#endif

#define UART ((volatile uint8_t *)0x10000000ul)
#define MTIME (*(volatile uint64_t *)0x200bff8ul)
#define PAGES ((MIB) * 256u)

static volatile uint64_t region[PAGES * 512u]; /* volatile: stores nobody reads stay */

int main(void) {
  for (const char *s = "ready\n"; *s; s++) UART[0] = (uint8_t)*s;
  if (RATE == 0) for (;;) asm volatile("wfi");
  const uint64_t start = MTIME;
  uint64_t pages = 0;
  for (;;) {
    /* Pages due by now: RATE MB/s is RATE * 10^6 / 4096 pages per 10^7 ticks. */
    uint64_t due = (MTIME - start) * (uint64_t)RATE / 40960u;
    while (pages < due) {
      region[(pages % PAGES) * 512u] = pages;
      pages++;
    }
  }
  return 0;
}
