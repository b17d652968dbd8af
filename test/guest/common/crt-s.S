# Start-up code for test programs that run as an S-mode kernel under an SBI (virtus's
# built-in one): a stack, the FPU on, a trap vector that reports unexpected traps, then
# main(); main's return value becomes the reason of an SBI system reset (0: shutdown, else
# system failure, which virtus reports as exit code 1).
  .section .text.init
  .globl _start
_start:
  la sp, _stack_top
  li t0, (1 << 13)          # sstatus.FS = Initial
  csrs sstatus, t0
  la t0, _default_strap
  csrw stvec, t0
  call main                 # a0 as the firmware left it (the hart id under SBI)
  .globl sbi_exit
sbi_exit:
  snez a1, a0               # reset_reason: 0 none, 1 system failure
  li a0, 0                  # reset_type: shutdown
  li a6, 0
  li a7, 0x53525354         # SRST
  ecall
1: j 1b

# An unexpected trap shuts down reporting a failure.
  .align 2
  .weak _default_strap
_default_strap:
  li a0, 1
  j sbi_exit

  .section .bss
  .align 4
  .space 16384
_stack_top:
