/* A guest that waits in WFI for the CLINT timer at its reset value (2^64-1 ticks: 58 millennia
   at 10 MHz), then for an RTC alarm 150 ns ahead. A deterministic machine must not jump time
   to 2^64: there doubles are 4096 ticks apart, the alarm's deadline rounds to the present and
   the run loop skipped to it forever. It must say that the interrupt never arrives instead. */
#include <stdint.h>
#include "test.h"

#define RTC 0x101000ul
#define PLIC 0x0c000000ul
#define R(a) (*(volatile uint32_t *)(a))

int main(void) {
  puts_("waiting for mtimecmp 2^64-1\n");
  *(volatile uint64_t *)0x02004000ul = ~0ull;
  set_csr(mie, 1 << 7);
  asm volatile("wfi");
  clear_csr(mie, 1 << 7);
  puts_("woke at 2^64; waiting for the RTC\n");
  R(PLIC + 4 * 11) = 1;
  R(PLIC + 0x2000) = 1u << 11;
  R(RTC + 0x10) = 1;
  uint32_t lo = R(RTC);
  uint64_t t = ((uint64_t)R(RTC + 4) << 32 | lo) + 150;
  R(RTC + 0x0c) = (uint32_t)(t >> 32);
  R(RTC + 0x08) = (uint32_t)t;
  set_csr(mie, 1 << 11);
  while (!(read_csr(mip) & (1 << 11))) asm volatile("wfi");
  puts_("leap: woke twice\n");
  return 0;
}
