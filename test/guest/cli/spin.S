# Never ends: for --max-insns.
  .section .text.init
  .globl _start
_start:
  li a0, 0
1: addi a0, a0, 1
  j 1b
  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .size tohost, 8
