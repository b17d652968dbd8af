/* C side of the trap framework (see trap.S, trap.h). */
#include "trap.h"

struct trap_record last_m, last_s;
volatile uint64_t redirect_m, redirect_s;
int (*irq_hook)(uint64_t cause, int smode);
int (*ecall_hook)(struct frame *f);

static uint8_t m_stack[8192] __attribute__((aligned(16)));
static uint8_t s_stack[8192] __attribute__((aligned(16)));
static uint8_t lower_stack[16384] __attribute__((aligned(16)));

void trap_init(void) {
  /* PMP: one NAPOT entry over the whole address space, RWX, as firmware sets it up; without
     an entry S- and U-mode can access nothing (Privileged 3.7.1). */
  write_csr(pmpaddr0, ~0ull >> 10);
  write_csr(pmpcfg0, 0x1f);
  write_csr(mscratch, m_stack + sizeof m_stack);
  write_csr(sscratch, s_stack + sizeof s_stack);
  write_csr(mtvec, (uint64_t)m_trap_entry);
  write_csr(stvec, (uint64_t)s_trap_entry);
}

long in_mode(long priv, long (*fn)(long), long arg) {
  /* A forwarded return (see trap_s) abandons the S trap stack: start each run afresh. */
  write_csr(sscratch, s_stack + sizeof s_stack);
  return run_in_mode(priv, fn, arg, lower_stack + sizeof lower_stack);
}

static uint64_t insn_len(uint64_t epc) {
  return (*(volatile uint16_t *)epc & 3) == 3 ? 4 : 2;
}

static void record(struct trap_record *r, struct frame *f, uint64_t mode) {
  r->count++;
  r->cause = f->cause;
  r->epc = f->epc;
  r->tval = f->tval;
  r->mode = mode;
}

void trap_m(struct frame *f) {
  uint64_t mpp = (read_csr(mstatus) >> 11) & 3;
  record(&last_m, f, mpp);
  if ((int64_t)f->cause < 0) {
    if (irq_hook && irq_hook(f->cause, 0)) return;
    exit(0x2000 + (int)(f->cause & 0xff));
  }
  if ((f->cause == 8 || f->cause == 9) && ecall_hook && ecall_hook(f)) {
    f->epc += 4;
    return;
  }
  if (redirect_m) {
    f->epc = redirect_m;
    redirect_m = 0;
  } else {
    f->epc += insn_len(f->epc);
  }
}

void trap_s(struct frame *f) {
  /* The return ecall of run_in_mode from U-mode, delegated to S: forward it to M-mode. */
  if (f->cause == 8 && f->x[17] == 0x5eed) {
    register uint64_t a0 asm("a0") = f->x[10];
    register uint64_t a7 asm("a7") = 0x5eed;
    asm volatile("ecall" :: "r"(a0), "r"(a7));
  }
  uint64_t spp = (read_csr(sstatus) >> 8) & 1;
  record(&last_s, f, spp);
  if ((int64_t)f->cause < 0) {
    if (irq_hook && irq_hook(f->cause, 1)) return;
    exit(0x3000 + (int)(f->cause & 0xff));
  }
  if (redirect_s) {
    f->epc = redirect_s;
    redirect_s = 0;
  } else {
    f->epc += insn_len(f->epc);
  }
}
