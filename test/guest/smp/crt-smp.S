# Start-up code for the SMP test programs: every hart enters here (QEMU's reset vector and
# virtus's --bios none both send all harts to the entry with a0 = mhartid). Each hart gets
# its own 4 KiB stack, the FPU on, the default trap vector, then main(hartid). Hart 0 exits
# with main's return value through HTIF; the others wait in WFI with interrupts off.
  .section .text.init
  .globl _start
_start:
  csrr a0, mhartid
  li t0, 8
  bgeu a0, t0, park            # more harts than the stacks provide for: stay out of the way
  la sp, _stacks_top
  slli t0, a0, 12
  sub sp, sp, t0
  li t0, (1 << 13)
  csrs mstatus, t0
  la t0, _default_trap
  csrw mtvec, t0
  csrw mie, zero
  call main
  csrr t0, mhartid
  bnez t0, park
  .globl exit
exit:
  slli a0, a0, 1
  ori a0, a0, 1
  la t0, tohost
  sd a0, 0(t0)
1: j 1b
park:
  wfi
  j park

# An unexpected trap exits with 0x1000 + mcause (interrupts: 0x2000 + cause).
  .align 2
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
  .align 12
  .space 8 * 4096
_stacks_top:

  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
tohost: .dword 0
  .size tohost, 8
  .align 6
  .globl fromhost
fromhost: .dword 0
  .size fromhost, 8
