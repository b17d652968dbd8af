# Runs code on more pages than the interpreter's decode cache has slots (DECODED_SLOTS, 256),
# so pages lose their slots and slots are reused by pages holding different instructions at
# the same offsets. Page k (1..PAGES) holds `addi a0, a0, k; xori a0, a0, k; slli t1, a0, 1;
# add a0, a0, t1; ret`: a stale decoded entry would change the sum. Three passes call every
# page (up, down, up), then the sum goes to the UART in hexadecimal and the syscon powers off.
#include "uart-hex.S"
  .equ PAGES, 600
  .section .text.init
  .globl _start
_start:
  li a0, 1
  li s1, 3                 # passes
  li s4, 0                 # direction: 0 up, 1 down
1:
  la s2, pages
  li s3, PAGES
  beqz s4, 2f
  li t0, (PAGES - 1) * 4096
  add s2, s2, t0
2:
  jalr s2
  li t0, 4096
  beqz s4, 3f
  neg t0, t0
3:
  add s2, s2, t0
  addi s3, s3, -1
  bnez s3, 2b
  xori s4, s4, 1
  addi s1, s1, -1
  bnez s1, 1b
  UART_HEX a0
  li a1, 0x100000          # syscon
  li t2, 0x5555
  sw t2, 0(a1)
  j .

  .balign 4096
pages:
  .set k, 1
  .rept PAGES
  .balign 4096
  addi a0, a0, k
  xori a0, a0, k
  slli t1, a0, 1
  add a0, a0, t1
  ret
  .set k, k + 1
  .endr
