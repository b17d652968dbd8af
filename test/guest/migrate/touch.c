/* Post-copy's missing pages, touched every way a hart touches RAM (test/snapshot/postcopy-gate.test.ts):
   loads over a buffer of PAGES pages, a store, an AMO and an LR/SC each on a page of their
   own, and a call into a function placed on a page of its own. The test marks those pages
   missing with stale bytes in them; the program prints what it read, which matches only if
   every page arrived before it was touched. */
#include "test.h"

#define PAGES 32
#define WORDS (PAGES * 512)

uint64_t buf[WORDS] __attribute__((aligned(4096)));
uint64_t amo_page[512] __attribute__((aligned(4096)));
uint64_t lrsc_page[512] __attribute__((aligned(4096)));
uint64_t store_page[512] __attribute__((aligned(4096)));

__attribute__((noinline, aligned(4096), section(".text.far"))) uint64_t far_code(uint64_t x) {
  return x * 3 + 1;
}

int main(void) {
  uint64_t sum = 0;
  for (int r = 0; r < 3; r++)
    for (int i = 0; i < WORDS; i++) sum += buf[i] ^ (uint64_t)i;
  report("sum", sum);
  store_page[7] = 0x1234;
  report("store", store_page[7] + store_page[8]);
  report("amo", __atomic_fetch_add(&amo_page[3], 5, __ATOMIC_SEQ_CST) + amo_page[3]);
  uint64_t old, fail;
  asm volatile("1: lr.d %0, (%2)\n sc.d %1, %3, (%2)\n bnez %1, 1b" : "=&r"(old), "=&r"(fail) : "r"(&lrsc_page[9]), "r"(77ull) : "memory");
  report("lrsc", old + lrsc_page[9] + lrsc_page[10]);
  report("far", far_code(sum));
  exit(0);
}
