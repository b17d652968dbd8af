# Runs hot code, reboots through the syscon (0x7777, FINISHER_RESET), runs the same hot code
# again after the reboot, then powers off (0x5555). Each boot prints "boot N sum S" on the
# UART; a boot counter outside the image survives the reboot, as RAM does on QEMU's virt.
# The hot loop calls a function on another page, so control passes between translated
# regions through the jump cache; each boot starts with a TLB flush, as firmware and kernels
# do, which moves the translator's jump-cache generation on.
#include "uart-hex.S"
  .section .text.init
  .globl _start
_start:
  sfence.vma
  li s0, 0x80100000        # the boot counter
  lw s1, 0(s0)
  addi s1, s1, 1
  sw s1, 0(s0)
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
  li a1, 0x100000          # syscon
  li t2, 2
  blt s1, t2, 6f
  li t2, 0x5555
  sw t2, 0(a1)
  j .
6:
  li t2, 0x7777
  sw t2, 0(a1)
  j .

  .balign 4096
  # work(n): the sum of i * n for i in 0..31.
work:
  li t0, 32
  li t1, 0
7:
  addi t0, t0, -1
  mul t2, t0, a0
  add t1, t1, t2
  bnez t0, 7b
  mv a0, t1
  ret

  .section .rodata
msg:
  .string "boot "
