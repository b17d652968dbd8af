/* The migration workload: SWEEPS times, rewrite every word of a buffer of WORDS 64-bit words
   (64 MiB by default) with values of the sweep's number, then read the buffer back and print
   "sweep N sum X" (X: the sum of what was read, the sum of what it wrote). The output depends on
   nothing but the program, so a run that migrates mid-way must print exactly what an
   uninterrupted run prints, on virtus or QEMU's virt machine. With STRIDE > 1 each sweep writes
   one word per STRIDE words (one per page at 512: the dirty rate without the work). Ends with
   "done" and a poweroff through the SiFive test device (QEMU's virt board and virtus have it
   at 0x100000); a wrong sum prints "BAD" and exits with failure. */
#include <stdint.h>

#ifndef WORDS
#define WORDS (8u << 20)
#endif
#ifndef SWEEPS
#define SWEEPS 40
#endif
#ifndef STRIDE
#define STRIDE 1
#endif

#define UART ((volatile uint8_t *)0x10000000ul)
#define TEST (*(volatile uint32_t *)0x100000ul)

static uint64_t buf[WORDS];

static void uputc(char c) {
  while (!(UART[5] & 0x20)) {} /* LSR.THRE */
  UART[0] = (uint8_t)c;
}
static void uputs(const char *s) { while (*s) uputc(*s++); }
static void uhex(uint64_t v) {
  for (int i = 60; i >= 0; i -= 4) uputc("0123456789abcdef"[(v >> i) & 15]);
}
static void udec(uint64_t v) {
  char b[24];
  int n = 0;
  do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) uputc(b[--n]);
}

static void off(uint32_t code) {
  TEST = code;
  for (;;) {}
}

int main(void) {
  for (uint64_t s = 1; s <= SWEEPS; s++) {
    uint64_t wrote = 0;
    for (uint32_t i = 0; i < WORDS; i += STRIDE) {
      uint64_t v = (s * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)i * 0xbf58476d1ce4e5b9ull);
      buf[i] = v;
      wrote += v;
    }
    uint64_t read = 0;
    for (uint32_t i = 0; i < WORDS; i += STRIDE) read += buf[i];
    uputs("sweep ");
    udec(s);
    uputs(" sum ");
    uhex(read);
    uputc('\n');
    if (read != wrote) {
      uputs("BAD\n");
      off(0x13333); /* FINISHER_FAIL, code 1 */
    }
  }
  uputs("done\n");
  off(0x5555); /* FINISHER_PASS */
  return 0;
}
