# Start-up code for the project's bare-metal C test programs: a stack, the FPU switched on,
# a trap vector that reports unexpected traps, then main(); main's return value becomes the
# HTIF exit code (0 = pass). Runs identically on virtus and on QEMU's spike machine.
  .section .text.init
  .globl _start
_start:
  la sp, _stack_top
  li t0, (1 << 13)          # mstatus.FS = Initial (read-only zero without F: harmless)
  csrs mstatus, t0
  la t0, _default_trap
  csrw mtvec, t0
  call main
  .globl exit
exit:
  slli a0, a0, 1
  ori a0, a0, 1
  la t0, tohost
  sd a0, 0(t0)
1: j 1b

# An unexpected trap exits with 0x1000 + mcause (interrupts: 0x2000 + cause).
  .align 2
  .weak _default_trap
_default_trap:
  csrr a0, mcause
  bltz a0, 2f
  addi a0, a0, 0x7ff
  addi a0, a0, 0x7ff
  addi a0, a0, 2
  j exit
2: slli a0, a0, 1
  srli a0, a0, 1
  li t0, 0x2000
  add a0, a0, t0
  j exit

  .section .bss
  .align 4
  .space 16384
_stack_top:

  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .size tohost, 8
  .align 6
  .globl fromhost
fromhost: .dword 0
  .size fromhost, 8
