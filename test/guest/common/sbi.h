/* Helpers for test programs that run in S-mode under an SBI (crt-s.S): SBI calls, console
   output through the legacy console_putchar, and name=value reports. */
#ifndef VIRTUS_SBI_H
#define VIRTUS_SBI_H
#include <stdint.h>

struct sbiret { int64_t error; uint64_t value; };

static inline struct sbiret sbi_call(uint64_t eid, uint64_t fid, uint64_t a0, uint64_t a1, uint64_t a2) {
  register uint64_t r0 asm("a0") = a0, r1 asm("a1") = a1, r2 asm("a2") = a2, r6 asm("a6") = fid, r7 asm("a7") = eid;
  asm volatile("ecall" : "+r"(r0), "+r"(r1) : "r"(r2), "r"(r6), "r"(r7) : "memory");
  return (struct sbiret){ (int64_t)r0, r1 };
}

static inline void putch(char c) { sbi_call(0x01, 0, (unsigned char)c, 0, 0); }
static inline void puts_(const char *s) { while (*s) putch(*s++); }

static inline void put_hex(uint64_t v) {
  puts_("0x");
  for (int i = 60; i >= 0; i -= 4) putch("0123456789abcdef"[(v >> i) & 15]);
}

static inline void report(const char *name, uint64_t v) {
  puts_(name);
  putch('=');
  put_hex(v);
  putch('\n');
}

#define csr_read(reg) ({ uint64_t __v; asm volatile ("csrr %0, " #reg : "=r"(__v)); __v; })
#define csr_set(reg, bit) asm volatile ("csrs " #reg ", %0" :: "rK"((uint64_t)(bit)))
#define csr_clear(reg, bit) asm volatile ("csrc " #reg ", %0" :: "rK"((uint64_t)(bit)))

#endif
