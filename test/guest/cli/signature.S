# Writes a known pattern between begin_signature and end_signature, then passes (tohost = 1),
# as RISC-V architecture tests do for Spike's +signature.
  .section .text.init
  .globl _start
_start:
  la t0, begin_signature
  li t1, 0x11111111
  li t2, 4
1: sw t1, 0(t0)
  addi t0, t0, 4
  slli t3, t1, 1
  add t1, t1, t3
  addi t2, t2, -1
  bnez t2, 1b
  li t0, 1
  la t1, tohost
  sd t0, 0(t1)
2: j 2b

  .data
  .align 4
  .globl begin_signature
begin_signature:
  .word 0xdeadbeef, 0xdeadbeef, 0xdeadbeef, 0xdeadbeef, 0xcafef00d
  .globl end_signature
end_signature:

  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .size tohost, 8
