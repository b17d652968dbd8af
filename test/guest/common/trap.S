# Trap framework for privileged-architecture test programs.
#  - m_trap_entry / s_trap_entry save every x register in a frame on a trap stack (mscratch /
#    sscratch hold its top), call trap_m(frame) / trap_s(frame) in C, restore and xRET.
#  - run_in_mode(priv, fn, arg, stack_top) runs fn(arg) in U- or S-mode; when fn returns it
#    makes an ecall with a7 = RETURN_MAGIC, which m_trap_entry turns into a return from
#    run_in_mode in M-mode with fn's result.
# Frame layout: x0..x31 at 8*i, then epc (256), cause (264), tval (272).
  .equ RETURN_MAGIC, 0x5eed
  .equ FRAME, 288

.macro SAVE_REGS
  sd x1, 8(sp)
  sd x3, 24(sp)
  sd x4, 32(sp)
  sd x5, 40(sp)
  sd x6, 48(sp)
  sd x7, 56(sp)
  sd x8, 64(sp)
  sd x9, 72(sp)
  sd x10, 80(sp)
  sd x11, 88(sp)
  sd x12, 96(sp)
  sd x13, 104(sp)
  sd x14, 112(sp)
  sd x15, 120(sp)
  sd x16, 128(sp)
  sd x17, 136(sp)
  sd x18, 144(sp)
  sd x19, 152(sp)
  sd x20, 160(sp)
  sd x21, 168(sp)
  sd x22, 176(sp)
  sd x23, 184(sp)
  sd x24, 192(sp)
  sd x25, 200(sp)
  sd x26, 208(sp)
  sd x27, 216(sp)
  sd x28, 224(sp)
  sd x29, 232(sp)
  sd x30, 240(sp)
  sd x31, 248(sp)
.endm

.macro RESTORE_REGS
  ld x1, 8(sp)
  ld x3, 24(sp)
  ld x4, 32(sp)
  ld x5, 40(sp)
  ld x6, 48(sp)
  ld x7, 56(sp)
  ld x8, 64(sp)
  ld x9, 72(sp)
  ld x10, 80(sp)
  ld x11, 88(sp)
  ld x12, 96(sp)
  ld x13, 104(sp)
  ld x14, 112(sp)
  ld x15, 120(sp)
  ld x16, 128(sp)
  ld x17, 136(sp)
  ld x18, 144(sp)
  ld x19, 152(sp)
  ld x20, 160(sp)
  ld x21, 168(sp)
  ld x22, 176(sp)
  ld x23, 184(sp)
  ld x24, 192(sp)
  ld x25, 200(sp)
  ld x26, 208(sp)
  ld x27, 216(sp)
  ld x28, 224(sp)
  ld x29, 232(sp)
  ld x30, 240(sp)
  ld x31, 248(sp)
.endm

  .text
  .align 2
  .globl m_trap_entry
m_trap_entry:
  csrrw sp, mscratch, sp
  addi sp, sp, -FRAME
  SAVE_REGS
  csrr t0, mscratch
  sd t0, 16(sp)
  csrr t0, mepc
  sd t0, 256(sp)
  csrr t0, mcause
  sd t0, 264(sp)
  csrr t0, mtval
  sd t0, 272(sp)
  # An ecall with a7 = RETURN_MAGIC from S or U returns from run_in_mode.
  csrr t0, mcause
  li t1, 8
  bltu t0, t1, 1f
  li t1, 9
  bgtu t0, t1, 1f
  ld t1, 136(sp)
  li t2, RETURN_MAGIC
  beq t1, t2, m_return_to_caller
1:
  mv a0, sp
  call trap_m
  ld t0, 256(sp)
  csrw mepc, t0
  RESTORE_REGS
  ld t0, 16(sp)
  addi sp, sp, FRAME
  csrw mscratch, sp
  mv sp, t0
  mret

m_return_to_caller:
  ld a0, 80(sp)            # fn's result
  addi sp, sp, FRAME
  csrw mscratch, sp        # the trap stack is free again
  la t0, saved_ctx
  ld ra, 0(t0)
  ld sp, 8(t0)
  ld s0, 16(t0)
  ld s1, 24(t0)
  ld s2, 32(t0)
  ld s3, 40(t0)
  ld s4, 48(t0)
  ld s5, 56(t0)
  ld s6, 64(t0)
  ld s7, 72(t0)
  ld s8, 80(t0)
  ld s9, 88(t0)
  ld s10, 96(t0)
  ld s11, 104(t0)
  ret

  .align 2
  .globl s_trap_entry
s_trap_entry:
  csrrw sp, sscratch, sp
  addi sp, sp, -FRAME
  SAVE_REGS
  csrr t0, sscratch
  sd t0, 16(sp)
  csrr t0, sepc
  sd t0, 256(sp)
  csrr t0, scause
  sd t0, 264(sp)
  csrr t0, stval
  sd t0, 272(sp)
  mv a0, sp
  call trap_s
  ld t0, 256(sp)
  csrw sepc, t0
  RESTORE_REGS
  ld t0, 16(sp)
  addi sp, sp, FRAME
  csrw sscratch, sp
  mv sp, t0
  sret

# long run_in_mode(long priv, long (*fn)(long), long arg, void *stack_top)
  .globl run_in_mode
run_in_mode:
  la t0, saved_ctx
  sd ra, 0(t0)
  sd sp, 8(t0)
  sd s0, 16(t0)
  sd s1, 24(t0)
  sd s2, 32(t0)
  sd s3, 40(t0)
  sd s4, 48(t0)
  sd s5, 56(t0)
  sd s6, 64(t0)
  sd s7, 72(t0)
  sd s8, 80(t0)
  sd s9, 88(t0)
  sd s10, 96(t0)
  sd s11, 104(t0)
  li t0, 3 << 11
  csrc mstatus, t0
  slli t1, a0, 11
  csrs mstatus, t1
  csrw mepc, a1
  mv a0, a2
  mv sp, a3
  li a7, 0                 # a stale RETURN_MAGIC must not fake a return
  la ra, lower_return
  mret

  .globl lower_return
lower_return:
  li a7, RETURN_MAGIC
  ecall
1: j 1b

  .section .bss
  .align 4
saved_ctx: .space 112

# void probe_exec(uint64_t va): jumps to va as a call. If fetching at va faults, the trap
# handler resumes at our caller's return address (redirect_m/redirect_s), as if va returned.
# The caller clears redirect_m/redirect_s afterwards.
  .text
  .globl probe_exec
probe_exec:
  la t0, redirect_m
  sd ra, 0(t0)
  la t0, redirect_s
  sd ra, 0(t0)
  jr a0
