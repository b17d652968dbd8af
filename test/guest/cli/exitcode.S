# Exits through HTIF with code 42 (tohost = 42 << 1 | 1).
  .section .text.init
  .globl _start
_start:
  li t0, (42 << 1) | 1
  la t1, tohost
  sd t0, 0(t1)
1: j 1b
  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .size tohost, 8
#ifdef FROMHOST_OUTSIDE
# A fromhost that is not in RAM (a hostile or broken program): virtus must refuse it at load.
  .globl fromhost
  .set fromhost, 0x1000
#endif
