# An RV32 program (for the test that virtus refuses 32-bit ELF files).
  .section .text.init
  .globl _start
_start:
  li t0, 1
  la t1, tohost
  sw t0, 0(t1)
1: j 1b
  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
