/* Helpers for the project's bare-metal test programs: console output and exit through HTIF,
   and CSR access. Everything here works the same on virtus and QEMU's spike machine. */
#ifndef VIRTUS_TEST_H
#define VIRTUS_TEST_H
#include <stdint.h>

extern volatile uint64_t tohost;
extern volatile uint64_t fromhost;
void exit(int code) __attribute__((noreturn));

#define read_csr(reg) ({ uint64_t __v; asm volatile ("csrr %0, " #reg : "=r"(__v)); __v; })
#define write_csr(reg, val) asm volatile ("csrw " #reg ", %0" :: "rK"((uint64_t)(val)))
#define set_csr(reg, bit) asm volatile ("csrs " #reg ", %0" :: "rK"((uint64_t)(bit)))
#define clear_csr(reg, bit) asm volatile ("csrc " #reg ", %0" :: "rK"((uint64_t)(bit)))

static inline void putch(char c) {
  tohost = (1ull << 56) | (1ull << 48) | (unsigned char)c;
  while (tohost) {}
}

static inline void puts_(const char *s) {
  while (*s) putch(*s++);
}

static inline void put_hex(uint64_t v) {
  puts_("0x");
  for (int i = 60; i >= 0; i -= 4) putch("0123456789abcdef"[(v >> i) & 15]);
}

static inline void put_dec(uint64_t v) {
  char buf[24];
  int n = 0;
  do { buf[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) putch(buf[--n]);
}

/* Prints "name=value\n": programs print results so virtus and QEMU outputs can be compared. */
static inline void report(const char *name, uint64_t v) {
  puts_(name);
  putch('=');
  put_hex(v);
  putch('\n');
}

#define CHECK(cond, code) do { if (!(cond)) { puts_("FAIL " #cond "\n"); exit(code); } } while (0)

#endif
