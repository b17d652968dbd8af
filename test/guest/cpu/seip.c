/* mip.SEIP has two sources (Privileged 3.1.9): a bit M-mode software writes, and the external
   interrupt controller's signal. CSRR reads their OR, but CSRRS/CSRRC modify the software bit
   alone: setting SSIP with csrs while the PLIC drives SEIP must not latch SEIP. Runs in M-mode
   on the virt board (virtus --bios none, QEMU -M virt -bios none): the UART's THR-empty
   interrupt, routed through the PLIC to hart 0's S context, drives SEIP; csrs mip sets SSIP;
   then the UART stops asking and the PLIC's claim/complete ends the request. SEIP must read 0
   again. Output on the UART, exit through the SiFive test finisher. */
#include <stdint.h>

#define UART ((volatile uint8_t *)0x10000000)
#define FINISHER ((volatile uint32_t *)0x100000)
#define PLIC 0x0c000000UL
#define REG32(a) (*(volatile uint32_t *)(a))
#define MIP_SSIP (1u << 1)
#define MIP_SEIP (1u << 9)

static void putc_(char c) {
  while (!(UART[5] & 0x20)) {}
  UART[0] = (uint8_t)c;
}
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void put_bits(const char *name, uint64_t v) {
  puts_(name);
  putc_('=');
  putc_(v ? '1' : '0');
  putc_('\n');
}
static uint64_t mip(void) { uint64_t v; asm volatile("csrr %0, mip" : "=r"(v)); return v; }

int main(void) {
  REG32(PLIC + 4 * 10) = 1;              /* UART source priority */
  REG32(PLIC + 0x2000 + 0x80 * 1) = 1u << 10; /* enabled for context 1: hart 0, S-mode */
  REG32(PLIC + 0x200000 + 0x1000 * 1) = 0;    /* threshold */
  UART[1] = 0x02;                        /* IER: THR empty */
  int spins = 0;
  while (!(mip() & MIP_SEIP) && spins < 1000000) spins++;
  put_bits("seip while the PLIC asks", mip() & MIP_SEIP);
  asm volatile("csrs mip, %0" :: "r"(MIP_SSIP));
  UART[1] = 0;
  uint32_t id = REG32(PLIC + 0x200000 + 0x1000 * 1 + 4);
  REG32(PLIC + 0x200000 + 0x1000 * 1 + 4) = id;
  put_bits("claimed the UART", id == 10);
  put_bits("ssip after csrs", mip() & MIP_SSIP);
  put_bits("seip after the request ended", mip() & MIP_SEIP);
  asm volatile("csrc mip, %0" :: "r"(MIP_SSIP | MIP_SEIP));
  put_bits("ssip after csrc", mip() & MIP_SSIP);
  *FINISHER = 0x5555;
  for (;;) {}
}
