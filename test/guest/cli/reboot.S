# Reboots once through the syscon register (0x7777, FINISHER_RESET), then powers off (0x5555):
# a boot counter kept in RAM outside the program's image survives the reboot, as RAM does on
# QEMU's virt. Prints "boot N" on the UART at each start.
  .section .text.init
  .globl _start
_start:
  li t0, 0x80100000        # the boot counter
  lw t1, 0(t0)
  addi t1, t1, 1
  sw t1, 0(t0)
  li a0, 0x10000000        # UART transmit register
  la a1, msg
1:
  lbu t2, 0(a1)
  beqz t2, 2f
  sb t2, 0(a0)
  addi a1, a1, 1
  j 1b
2:
  addi t2, t1, '0'
  sb t2, 0(a0)
  li t2, '\n'
  sb t2, 0(a0)
  li a1, 0x100000          # syscon
  li t2, 2
  blt t1, t2, 3f
  li t2, 0x5555
  sw t2, 0(a1)
  j .
3:
  li t2, 0x7777
  sw t2, 0(a1)
  j .

  .section .rodata
msg:
  .string "boot "
