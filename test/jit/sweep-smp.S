# The translator's sweep on a hart in a thread of its own (hart-thread.ts): hart 1 runs a hot
# loop (its thread translates it), says so, and sleeps in WFI with no interrupt enabled; hart 0
# waits for that, then waits a second of guest time in WFI (the CLINT timer, every 50 ms) and
# powers the machine off. Meanwhile hart 1's thread, asleep through its stretches, must sweep
# what it translated. Prints "hot <sum>" and "done" on the UART.
#include "uart-hex.S"
#include "wfi-wait.S"
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
  WFI_WAIT 10000000        # a second of guest time
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
