# The translator's sweep on a hart in a thread of its own (hart-thread.ts): hart 1 runs a hot
# loop (its thread translates it), says so, and sleeps in WFI with no interrupt enabled; hart 0
# waits for that, then waits a second of guest time in WFI (the CLINT timer, every 50 ms) and
# powers the machine off. Meanwhile hart 1's thread, asleep through its stretches, must sweep
# what it translated. Prints "hot <sum>" and "done" on the UART.
#include "uart-hex.S"
  .section .text.init
  .globl _start
_start:
  csrr t0, mhartid
  bnez t0, hart1
  la t1, flag
1:
  lw t2, 0(t1)
  beqz t2, 1b
  li a0, 0x10000000        # UART transmit register
  li t2, 'h'
  sb t2, 0(a0)
  li t2, 'o'
  sb t2, 0(a0)
  li t2, 't'
  sb t2, 0(a0)
  li t2, ' '
  sb t2, 0(a0)
  la t1, sum
  ld s2, 0(t1)
  UART_HEX s2
  # A second of guest time (10,000,000 ticks of the virt board's 10 MHz mtime).
  li t0, 0x0200bff8        # CLINT mtime
  ld s4, 0(t0)
  li t1, 10000000
  add s4, s4, t1
  li t1, 0x80              # mie.MTIE: WFI wakes on the timer (mstatus.MIE stays 0)
  csrs mie, t1
  li t1, 0x02004000        # mtimecmp of hart 0
  li t3, 500000
2:
  ld t2, 0(t0)
  add t2, t2, t3
  sd t2, 0(t1)
  wfi
  ld t2, 0(t0)
  bltu t2, s4, 2b
  li a0, 0x10000000
  li t2, 'd'
  sb t2, 0(a0)
  li t2, 'o'
  sb t2, 0(a0)
  li t2, 'n'
  sb t2, 0(a0)
  li t2, 'e'
  sb t2, 0(a0)
  li t2, '\n'
  sb t2, 0(a0)
  li a1, 0x100000          # syscon
  li t2, 0x5555
  sw t2, 0(a1)
  j .

hart1:
  # The sum of (i * 7) ^ (i >> 3) for i below 200,000: hot enough to be translated.
  li s2, 0
  li s3, 200000
3:
  li t1, 7
  mul t2, s3, t1
  srli t3, s3, 3
  xor t2, t2, t3
  add s2, s2, t2
  addi s3, s3, -1
  bnez s3, 3b
  la t1, sum
  sd s2, 0(t1)
  fence
  la t1, flag
  li t2, 1
  sw t2, 0(t1)
  csrw mie, zero
4:
  wfi
  j 4b

  .data
  .balign 8
sum: .dword 0
flag: .word 0
