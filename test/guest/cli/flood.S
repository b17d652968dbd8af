# Writes FLOOD_BYTES (default 16 MiB) of 'x' to the UART as a polite driver does (waiting for
# LSR.THRE before each byte), then exits 0 through HTIF: a guest that writes faster than its
# console is read.
#ifndef FLOOD_BYTES
#define FLOOD_BYTES (16 * 1024 * 1024)
#endif
  .section .text.init
  .globl _start
_start:
  li a0, 0x10000000        # UART
  li t0, FLOOD_BYTES
  li t1, 'x'
1:
  lbu t2, 5(a0)            # LSR
  andi t2, t2, 0x20        # THRE
  beqz t2, 1b
  sb t1, 0(a0)
  addi t0, t0, -1
  bnez t0, 1b
  li t0, 1                 # exit code 0
  la t1, tohost
  sd t0, 0(t1)
2: j 2b
  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .size tohost, 8
