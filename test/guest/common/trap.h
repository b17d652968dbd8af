/* The trap framework of trap.S: record every trap, let tests redirect or skip, and run code
   in S- or U-mode. */
#ifndef VIRTUS_TRAP_H
#define VIRTUS_TRAP_H
#include "test.h"

struct frame {
  uint64_t x[32];
  uint64_t epc, cause, tval;
};

void m_trap_entry(void);
void s_trap_entry(void);
long run_in_mode(long priv, long (*fn)(long), long arg, void *stack_top);

/* The last trap taken, per handler. */
struct trap_record {
  volatile uint64_t count, cause, epc, tval, mode;
};
extern struct trap_record last_m, last_s;
/* When non-zero, the next trap resumes here instead of after the faulting instruction. */
extern volatile uint64_t redirect_m, redirect_s;
/* Optional hook for interrupts (cause with the top bit set); returns non-zero if handled. */
extern int (*irq_hook)(uint64_t cause, int smode);
/* Optional hook for ecalls from S/U reaching M-mode; returns non-zero if handled. */
extern int (*ecall_hook)(struct frame *f);

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* Sets up the trap stacks and vectors; call first in main(). */
void trap_init(void);

/* Runs fn(arg) in mode `priv` on a private stack; returns fn's result. */
long in_mode(long priv, long (*fn)(long), long arg);


void probe_exec(uint64_t va);
#endif
