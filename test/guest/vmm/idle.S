# Prints "ready" on the UART, then waits for interrupts that never come (wfi, with none
# enabled): a guest that keeps running without using the host's CPU, on virtus and on QEMU's
# virt board alike. A reset runs it again from the start ("ready" once more).
  .section .text.init
  .globl _start
_start:
  li a0, 0x10000000        # UART transmit register
  la a1, msg
1:
  lbu t0, 0(a1)
  beqz t0, 2f
  sb t0, 0(a0)
  addi a1, a1, 1
  j 1b
2:
  wfi
  j 2b

  .section .rodata
msg:
  .string "ready\n"
