# Entry of the ticks guest: a stack, then main(hartid, dtb) in S-mode.
  .section .text.init
  .globl _start
_start:
  la sp, stack_top
  call main
1: wfi
  j 1b

  .bss
  .balign 16
  .space 16384
stack_top:
