# Hot code, a pause, the same hot code, then the code changed: for the translator's sweep
# (JitEngine.sweep), which forgets translations an idle machine did not run. Each phase prints
# "run N <sum>" on the UART:
#   1. a loop calls work() on another page 30000 times (both pages get translated);
#   2. after waiting half a second of guest time in WFI (CLINT timer), the same loop again
#      (its translations were swept meanwhile and are made again);
#   3. work()'s first instruction is rewritten (32 iterations become 16), then the loop again:
#      the store into a page whose translation was swept must still reach the code that runs.
# Then the syscon powers the machine off.
#include "uart-hex.S"
#include "wfi-wait.S"
  .section .text.init
  .globl _start
_start:
  li s1, 1
  call phase
  call pause
  li s1, 2
  call phase
  la t0, work
  li t1, 0x01000293        # addi t0, zero, 16
  sw t1, 0(t0)
  fence.i
  li s1, 3
  call phase
  li a1, 0x100000          # syscon
  li t2, 0x5555
  sw t2, 0(a1)
  j .

  # phase: the hot loop, then "run <s1> <sum>".
phase:
  mv s5, ra
  li s2, 0                 # the sum
  li s3, 30000             # calls of work
1:
  mv a0, s3
  call work
  add s2, s2, a0
  addi s3, s3, -1
  bnez s3, 1b
  li a0, 0x10000000        # UART transmit register
  la a1, msg
2:
  lbu t2, 0(a1)
  beqz t2, 3f
  sb t2, 0(a0)
  addi a1, a1, 1
  j 2b
3:
  addi t2, s1, '0'
  sb t2, 0(a0)
  li t2, ' '
  sb t2, 0(a0)
  UART_HEX s2
  mv ra, s5
  ret

  .balign 4096
  # pause: waits for mtime + 5,000,000 ticks (0.5 s at the virt board's 10 MHz) in WFI, woken by
  # the CLINT timer every 50 ms. It has a page of its own: only this page runs while it waits.
pause:
  WFI_WAIT 5000000
  ret

  .balign 4096
  # work(n): the sum of i * n for i in 0..k-1, k = 32 (16 once phase 3 rewrote the first instruction).
  .option push
  .option norvc
work:
  addi t0, zero, 32
  li t1, 0
7:
  addi t0, t0, -1
  mul t2, t0, a0
  add t1, t1, t2
  bnez t0, 7b
  mv a0, t1
  ret
  .option pop

  .section .rodata
msg:
  .string "run "
