# Every instruction of the table (RV64I, M, A, F, D, Zicsr, Zifencei, privileged) and every
# compressed form, with register, immediate, CSR and rounding-mode variety, for the
# disassembler's comparison with objdump (test/isa/disasm.test.ts). Never executed.
# The first half is assembled without RVC (every instruction 32 bits), the second with RVC, where
# gas compresses what it can; explicit c.* forms and .insn hints follow.

  .option norelax
  .globl __global_pointer$
  __global_pointer$ = data + 0x800
  .globl mmio
  mmio = 0x10001000

  .section .text.init
  .globl _start
_start:
  .option push
  .option norvc

rv64i:
  lui a0, 0x12345
  lui t6, 0xfffff
  lui zero, 1
  auipc sp, 0x8
  auipc a5, 0xfffff
  jal ra, rv64i
  jal zero, far_away
  jal t0, rv64i
  jalr ra, 0(a0)
  jalr zero, 0(ra)
  jalr zero, 16(t1)
  jalr s0, -4(s1)
  jalr ra, 8(a2)
  jalr t0, 0(t1)
  beq a0, a1, rv64i
  beq a0, zero, rv64i
  bne s2, s3, far_away
  bne t3, zero, far_away
  blt a0, a1, rv64i
  blt a0, zero, rv64i
  blt zero, a1, rv64i
  bge a0, a1, rv64i
  bge zero, a1, rv64i
  bge a1, zero, rv64i
  bltu a2, a3, rv64i
  bltu zero, a3, rv64i
  bgeu a4, a5, far_away
  bgeu a4, zero, far_away
  lb a0, 0(a1)
  lb s1, -1(sp)
  lh a2, 2047(a3)
  lw a4, -2048(a5)
  ld ra, 8(sp)
  lbu t0, 1(t1)
  lhu t2, -2(s0)
  lwu s1, 100(a0)
  sb a0, 0(a1)
  sh zero, -3(t6)
  sw s11, 2047(s10)
  sd ra, -2048(sp)
  addi zero, zero, 0
  addi a0, zero, -1
  addi a1, a2, 0
  addi sp, sp, -64
  addi t0, t1, 2047
  slti a0, a1, -5
  sltiu a0, a1, 1
  sltiu a2, a3, 17
  xori a0, a1, -1
  xori a0, a1, 0x55
  ori a0, a1, 3
  andi a0, a1, 255
  andi a0, a1, -16
  slli a0, a1, 63
  srli a2, a3, 1
  srai a4, a5, 32
  add a0, a1, a2
  add s0, zero, s1
  sub a0, a1, a2
  sub a0, zero, a2
  sll t0, t1, t2
  slt a0, a1, a2
  slt a0, a1, zero
  slt a0, zero, a2
  sltu a0, a1, a2
  sltu a0, zero, a2
  xor a0, a1, a2
  srl a0, a1, a2
  sra a0, a1, a2
  or a0, a1, a2
  and a0, a1, a2
  addiw a0, a1, 0
  addiw a0, a1, -7
  slliw a0, a1, 31
  srliw a0, a1, 5
  sraiw a0, a1, 0
  addw a0, a1, a2
  subw a0, a1, a2
  subw a0, zero, a2
  sllw a0, a1, a2
  srlw a0, a1, a2
  sraw a0, a1, a2
  fence
  fence rw, rw
  fence r, w
  fence i, o
  fence iorw, ow
  fence.tso
  ecall
  ebreak

zifencei_zicsr:
  fence.i
  csrrw a0, mscratch, a1
  csrrw zero, mtvec, t0
  csrrw a0, fcsr, a1
  csrrw zero, frm, a1
  csrrw a0, fflags, zero
  csrrs a0, mstatus, zero
  csrrs zero, mie, a1
  csrrs a0, mip, a1
  csrrs a0, cycle, zero
  csrrs a0, time, zero
  csrrs a0, instret, zero
  csrrs a0, fflags, zero
  csrrs a0, frm, zero
  csrrs a0, fcsr, zero
  csrrs a0, 0x7c0, zero
  csrrc a0, sstatus, a1
  csrrc zero, sie, a1
  csrrwi a0, satp, 5
  csrrwi zero, stvec, 31
  csrrwi a0, frm, 3
  csrrwi zero, fflags, 0
  csrrsi a0, sepc, 1
  csrrsi zero, scause, 2
  csrrci a0, stval, 4
  csrrci zero, sip, 8
  csrr a0, mhartid
  csrr a1, misa
  csrr a2, medeleg
  csrr a3, mideleg
  csrr a4, mepc
  csrr a5, mcause
  csrr a6, mtval
  csrr a7, mcounteren
  csrr t0, pmpcfg0
  csrr t1, pmpaddr15
  csrr t2, mhpmcounter3
  csrr t3, hpmcounter31
  csrr t4, sscratch
  csrr t5, scounteren
  csrr t6, tselect
  csrr s0, dcsr
  csrr s1, 0x30a       # menvcfg (named only from privileged spec 1.12)
  csrr s2, 0x14d       # stimecmp
  csrr s3, 0x320       # mcountinhibit
  csrw 0xc00, zero     # unimp

privileged:
  mret
  sret
  wfi
  sfence.vma
  sfence.vma a0
  sfence.vma a0, a1
  sfence.vma zero, a1

rv64m:
  mul a0, a1, a2
  mulh a3, a4, a5
  mulhsu a6, a7, s2
  mulhu s3, s4, s5
  div s6, s7, s8
  divu s9, s10, s11
  rem t3, t4, t5
  remu t6, zero, ra
  mulw a0, a1, a2
  divw a0, a1, a2
  divuw a0, a1, a2
  remw a0, a1, a2
  remuw a0, a1, a2

rv64a:
  lr.w a0, (a1)
  lr.w.aq a0, (a1)
  sc.w a2, a3, (a4)
  sc.w.rl a2, a3, (a4)
  amoswap.w a0, a1, (a2)
  amoadd.w.aqrl a0, a1, (a2)
  amoxor.w zero, a1, (sp)
  amoand.w a0, a1, (a2)
  amoor.w.aq a0, a1, (a2)
  amomin.w a0, a1, (a2)
  amomax.w a0, a1, (a2)
  amominu.w a0, a1, (a2)
  amomaxu.w.rl a0, a1, (a2)
  lr.d t0, (t1)
  lr.d.aqrl t0, (t1)
  sc.d t2, t3, (t4)
  sc.d.aq t2, t3, (t4)
  amoswap.d.aq a0, a1, (a2)
  amoadd.d a0, a1, (a2)
  amoxor.d a0, a1, (a2)
  amoand.d.rl a0, a1, (a2)
  amoor.d a0, a1, (a2)
  amomin.d.aqrl a0, a1, (a2)
  amomax.d a0, a1, (a2)
  amominu.d a0, a1, (a2)
  amomaxu.d a0, a1, (a2)

rv64f:
  flw fa0, 0(a0)
  flw ft11, -4(sp)
  fsw fs0, 12(s1)
  fmadd.s fa0, fa1, fa2, fa3
  fmadd.s fa0, fa1, fa2, fa3, rne
  fmsub.s ft0, ft1, ft2, ft3, rtz
  fnmsub.s fs0, fs1, fs2, fs3, rdn
  fnmadd.s ft8, ft9, ft10, ft11, rup
  fadd.s fa0, fa1, fa2
  fadd.s fa0, fa1, fa2, rmm
  fsub.s fa0, fa1, fa2, dyn
  fmul.s fa0, fa1, fa2
  fdiv.s fa0, fa1, fa2, rtz
  fsqrt.s fa0, fa1
  fsqrt.s fa0, fa1, rne
  fsgnj.s fa0, fa1, fa2
  fsgnj.s fa0, fa1, fa1
  fsgnjn.s fa0, fa1, fa2
  fsgnjn.s fa0, fa1, fa1
  fsgnjx.s fa0, fa1, fa2
  fsgnjx.s fa0, fa1, fa1
  fmin.s fa0, fa1, fa2
  fmax.s fa0, fa1, fa2
  fcvt.w.s a0, fa0
  fcvt.w.s a0, fa0, rtz
  fcvt.wu.s a0, fa0, rtz
  fcvt.l.s a0, fa0
  fcvt.lu.s a0, fa0, rup
  fmv.x.w a0, fa0
  feq.s a0, fa0, fa1
  flt.s a0, fa0, fa1
  fle.s a0, fa0, fa1
  fclass.s a0, fa0
  fcvt.s.w fa0, a0
  fcvt.s.wu fa0, a0, rdn
  fcvt.s.l fa0, a0
  fcvt.s.lu fa0, a0
  fmv.w.x fa0, a0

rv64d:
  fld fa0, 0(a0)
  fld fs11, 2040(sp)
  fsd fs0, -8(s1)
  fmadd.d fa0, fa1, fa2, fa3
  fmsub.d fa0, fa1, fa2, fa3, rmm
  fnmsub.d fa0, fa1, fa2, fa3
  fnmadd.d fa0, fa1, fa2, fa3, rtz
  fadd.d fa0, fa1, fa2
  fsub.d fa0, fa1, fa2, rne
  fmul.d fa0, fa1, fa2
  fdiv.d fa0, fa1, fa2
  fsqrt.d fa0, fa1
  fsgnj.d fa0, fa1, fa2
  fsgnj.d fa0, fa1, fa1
  fsgnjn.d fa0, fa1, fa2
  fsgnjn.d fa0, fa1, fa1
  fsgnjx.d fa0, fa1, fa2
  fsgnjx.d fa0, fa1, fa1
  fmin.d fa0, fa1, fa2
  fmax.d fa0, fa1, fa2
  fcvt.s.d fa0, fa1
  fcvt.s.d fa0, fa1, rtz
  fcvt.d.s fa0, fa1
  feq.d a0, fa0, fa1
  flt.d a0, fa0, fa1
  fle.d a0, fa0, fa1
  fclass.d a0, fa0
  fcvt.w.d a0, fa0, rtz
  fcvt.wu.d a0, fa0
  fcvt.l.d a0, fa0
  fcvt.lu.d a0, fa0, rtz
  fmv.x.d a0, fa0
  fcvt.d.w fa0, a0
  fcvt.d.wu fa0, a0
  fcvt.d.l fa0, a0
  fcvt.d.lu fa0, a0, rup
  fmv.d.x fa0, a0

# Address computations objdump annotates: a lui/auipc value consumed by the next instruction
# that uses the register as a base.
addresses:
  lla a0, data
  la a1, data + 8
  lui a2, %hi(mmio)
  addi a2, a2, %lo(mmio)
  lui a3, %hi(mmio)
  ld a4, %lo(mmio)(a3)
  lui a5, %hi(mmio + 0x7f8)
  sd a4, %lo(mmio + 0x7f8)(a5)
  lui a6, %hi(mmio - 4)
  addiw a6, a6, %lo(mmio - 4)
  lui a7, 0x7ffff
  addiw a7, a7, 0x7ff
1:auipc t1, %pcrel_hi(far_away)
  jalr ra, %pcrel_lo(1b)(t1)
  call far_away
  tail far_away
  ld a0, 16(gp)
  sd a0, -16(gp)
  addi a0, gp, 32
  ld a0, 8(tp)
  ld a0, 8(zero)
  lui gp, 0x80000
  jalr ra, 4(gp)
  lui tp, 0x1
  jr 8(tp)
  lui a0, 0x2
  mv a0, a0
  lbu a1, 0(a0)
  .option pop

# Compressed forms, first as gas chooses them, then explicitly.
rvc:
  addi a0, a0, 1
  addi sp, sp, -32
  addi s0, sp, 16
  li a1, -7
  lui a2, 0x1f
  lui a3, 0xfffe1
  addiw a4, a4, 3
  addiw a4, a4, 0
  slli a5, a5, 12
  srli s1, s1, 7
  srai a0, a0, 33
  andi a1, a1, -3
  sub a0, a0, a1
  xor s0, s0, s1
  or a2, a2, a3
  and a4, a4, a5
  subw a0, a0, a2
  addw a1, a1, a3
  mv a0, s1
  add t0, t0, t1
  lw a0, 4(a1)
  ld a2, 120(a3)
  fld fa0, 248(s0)
  sw a4, 124(a5)
  sd s0, 0(s1)
  fsd fs1, 8(a0)
  lw ra, 252(sp)
  ld s11, 504(sp)
  fld ft0, 8(sp)
  sw s10, 0(sp)
  sd t6, 256(sp)
  fsd fa7, 16(sp)
  beqz a0, rvc
  bnez s1, rvc
  j rvc
  jr a0
  jr ra
  jalr t0
  ebreak
  nop
explicit:
  c.addi4spn a0, sp, 4
  c.addi4spn s1, sp, 1020
  c.fld fs0, 0(a5)
  c.lw a0, 64(a1)
  c.ld a2, 8(a3)
  c.fsd fa1, 16(s0)
  c.sw a4, 0(a5)
  c.sd s0, 248(s1)
  c.nop
  c.addi t0, -32
  c.addi t1, 31
  c.addiw t2, -1
  c.li s2, 31
  c.li zero, 5
  c.addi16sp sp, -512
  c.addi16sp sp, 496
  c.lui s3, 1
  c.lui s4, 0xfffff
  c.srli a5, 63
  c.srai a4, 1
  c.andi a3, 0
  c.sub s0, s1
  c.xor a0, a1
  c.or a2, a3
  c.and a4, a5
  c.subw s0, a0
  c.addw a1, a2
  c.j explicit
  c.beqz s0, explicit
  c.bnez a5, far_away
  c.slli s5, 1
  c.slli zero, 3
  c.fldsp fs2, 504(sp)
  c.lwsp s6, 0(sp)
  c.ldsp s7, 8(sp)
  c.jr s8
  c.jr ra
  c.mv s9, s10
  c.ebreak
  c.jalr s11
  c.add t3, t4
  c.fsdsp ft3, 0(sp)
  c.swsp t5, 4(sp)
  c.sdsp t6, 496(sp)
  c.lui a0, 0x12
  c.addi a0, -4
  c.lui a1, 0x3
  c.addiw a1, 8

# Hints and reserved encodings, as objdump names them (or prints them as data).
hints:
  .insn 2, 0x0005      # c.addi x0, 1 (HINT)
  .insn 2, 0x0081      # c.addi ra, 0 (HINT)
  .insn 2, 0x4001      # c.li x0, 0 (HINT)
  .insn 2, 0x6005      # c.lui x0, 1 (HINT)
  .insn 2, 0x0002      # c.slli64 x0
  .insn 2, 0x0402      # c.slli64 s0
  .insn 2, 0x8001      # c.srli64 s0
  .insn 2, 0x8401      # c.srai64 s0
  .insn 2, 0x8006      # c.mv x0, ra (HINT)
  .insn 2, 0x9006      # c.add x0, ra (HINT)
  .insn 2, 0x0000      # the illegal instruction
  .insn 2, 0x0004      # c.addi4spn with a zero immediate: reserved
  .insn 2, 0x6101      # c.addi16sp with a zero immediate: reserved
  .insn 2, 0x6001      # c.lui x0, 0: reserved
  .insn 2, 0x2001      # c.addiw x0: reserved
  .insn 2, 0x4002      # c.lwsp x0: reserved
  .insn 2, 0x8002      # c.jr x0: reserved
  .insn 2, 0x9c41      # reserved arithmetic
  .insn 2, 0xffff      # a 192-bit encoding's prefix: printed as a halfword
  .insn 4, 0x0100000f  # fence w, 0
  .insn 4, 0x0000000f  # fence 0, 0
  .insn 4, 0x8ff0000f  # fence with fm = 1000 and sets other than rw, rw
  .insn 4, 0x0ff5000f  # fence with rs1 != 0
  .insn 4, 0x0010100f  # fence.i with a nonzero immediate
  .insn 4, 0x42058553  # fcvt.d.s with rm = rne
  .insn 4, 0xd205f553  # fcvt.d.w with rm = dyn
  .insn 4, 0x0015d553  # fadd.s with rm = 5 (reserved)
  .insn 4, 0x00200073  # uret
  .insn 4, 0x20200073  # hret
  .insn 4, 0x7b200073  # dret
  .insn 4, 0x10400073  # sfence.vm
  .insn 4, 0x10450073  # sfence.vm a0
  .insn 4, 0x30200373  # mret with rd != 0
  .insn 4, 0xffffffb3  # no such OP instruction
  .insn 6, 0x123456780a1f
  .insn 8, 0x0123456789ab0a3f
far_away:
  ret

  .data
  .p2align 4
data:
  .dword 1, 2, 3, 4
