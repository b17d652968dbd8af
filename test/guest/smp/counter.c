/* HARTS harts increment shared counters three ways, and hart 0 reports the totals: with
   amoadd (AMOs are atomic across harts), with LR/SC retry loops (a store by another hart
   breaks a reservation), and inside a ticket spinlock around plain loads and stores (the lock
   gives mutual exclusion; an owner field checks nobody else is inside). Every total must be
   exact. The same ELF runs on QEMU's spike machine with -smp HARTS as the reference. */
#include "test.h"

#ifndef HARTS
#define HARTS 4
#endif
#ifndef AMO_ITERS
#define AMO_ITERS 1000000
#endif
#ifndef LRSC_ITERS
#define LRSC_ITERS 1000000
#endif
#ifndef LOCK_ITERS
#define LOCK_ITERS 2000
#endif

struct shared {
  volatile uint64_t amo;
  volatile uint64_t lrsc;
  volatile uint64_t locked;
  volatile uint64_t next_ticket;
  volatile uint64_t serving;
  volatile uint64_t owner;
  volatile uint64_t overlaps;
  volatile uint64_t barrier_count;
  volatile uint64_t barrier_sense;
  volatile uint64_t sc_failures;
  volatile uint64_t lock_order;
};
static struct shared s __attribute__((aligned(64)));

static inline uint64_t amoadd(volatile uint64_t *p, uint64_t v) {
  uint64_t old;
  asm volatile("amoadd.d.aqrl %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory");
  return old;
}

/* Increments *p with an LR/SC loop; returns how many SCs failed. */
static inline uint64_t lrsc_inc(volatile uint64_t *p) {
  uint64_t v, fail, failures = 0;
  for (;;) {
    asm volatile("lr.d %0, (%1)" : "=r"(v) : "r"(p) : "memory");
    v++;
    asm volatile("sc.d %0, %2, (%1)" : "=r"(fail) : "r"(p), "r"(v) : "memory");
    if (fail == 0) return failures;
    failures++;
  }
}

/* A sense-reversing barrier over amoadd: every hart leaves after all HARTS arrived. */
static void barrier(uint64_t *sense) {
  *sense = !*sense;
  if (amoadd(&s.barrier_count, 1) == HARTS - 1) {
    s.barrier_count = 0;
    asm volatile("fence rw, rw" ::: "memory");
    s.barrier_sense = *sense;
  } else {
    while (s.barrier_sense != *sense) {}
  }
  asm volatile("fence rw, rw" ::: "memory");
}

int main(uint64_t hart) {
  uint64_t sense = 0;
  if (hart >= HARTS) return 0;
  barrier(&sense);
  if (hart == 0) puts_("started\n");

  for (int i = 0; i < AMO_ITERS; i++) amoadd(&s.amo, 1);
  barrier(&sense);

  uint64_t failures = 0;
  for (int i = 0; i < LRSC_ITERS; i++) failures += lrsc_inc(&s.lrsc);
  amoadd(&s.sc_failures, failures);
  barrier(&sense);

  for (int i = 0; i < LOCK_ITERS; i++) {
    uint64_t ticket = amoadd(&s.next_ticket, 1);
    while (s.serving != ticket) {}
    asm volatile("fence r, rw" ::: "memory"); /* acquire */
    s.owner = hart;
    uint64_t v = s.locked;
    for (volatile int k = 0; k < 10; k++) {}
    s.locked = v + 1;
    s.lock_order = s.lock_order * 31 + hart + 1;
    if (s.owner != hart) s.overlaps++;
    asm volatile("fence rw, w" ::: "memory"); /* release */
    s.serving = ticket + 1;
  }
  barrier(&sense);

  if (hart != 0) return 0;
  report("harts", HARTS);
  report("amoadd", s.amo);
  report("lrsc", s.lrsc);
  report("locked", s.locked);
  report("overlaps", s.overlaps);
  /* Scheduling-dependent values, for runs compared with themselves (not with QEMU): how often
     an SC failed, a hash of the order the harts took the lock in, and the CLINT's mtime now (virtus --deterministic derives it from the
     instruction count). */
  report("sc_failures", s.sc_failures);
  report("lock_order", s.lock_order);
  report("mtime", *(volatile uint64_t *)0x200bff8);
  CHECK(s.amo == (uint64_t)HARTS * AMO_ITERS, 2);
  CHECK(s.lrsc == (uint64_t)HARTS * LRSC_ITERS, 3);
  CHECK(s.locked == (uint64_t)HARTS * LOCK_ITERS, 4);
  CHECK(s.overlaps == 0, 5);
  puts_("PASS\n");
  return 0;
}
