/* Single-copy atomicity of aligned doubleword accesses (Unprivileged 17.1, RVWMO's rule 1): one
   hart stores 0 and all ones in turn to one doubleword, ROUNDS times, while the other loads it
   without end; a load must see one of the two values, never half of each. Then the harts swap.
   Hart 0 reports how many loads saw a mix ("torn"): it must be none. */
#include "test.h"
#include "harts.h"

#ifndef ROUNDS
#define ROUNDS 2000000
#endif

static struct line word __attribute__((aligned(64)));
static struct line done __attribute__((aligned(64)));
static struct line torn __attribute__((aligned(64)));
static struct line loads __attribute__((aligned(64)));
static struct line phase __attribute__((aligned(64)));
static struct line ready __attribute__((aligned(64)));

static void store_side(uint64_t p) {
  while (ready.v != p + 1) {} /* the loads have begun */
  for (uint64_t i = 0; i < ROUNDS; i++) STORE(&word.v, (i & 1) ? ~0ull : 0);
  asm volatile("fence rw, rw" ::: "memory");
  done.v = 1;
}

static void load_side(uint64_t p) {
  uint64_t bad = 0, n = 0;
  ready.v = p + 1;
  while (!done.v) {
    uint64_t v = LOAD(&word.v);
    if (v != 0 && v != ~0ull) bad++;
    n++;
  }
  torn.v += bad;
  loads.v += n;
}

int main(uint64_t hart) {
  if (hart > 1) return 0;
  for (uint64_t p = 0; p < 2; p++) {
    /* Phase p: hart p stores, the other loads; both start once hart 0 says so. */
    if (hart == 0) {
      done.v = 0;
      asm volatile("fence rw, rw" ::: "memory");
      phase.v = p + 1;
    } else {
      while (phase.v != p + 1) {}
    }
    if (hart == p) store_side(p); else load_side(p);
    /* Hart 0 waits for the loads of phase 1 to be counted before it reports. */
    if (hart == 1) { asm volatile("fence rw, rw" ::: "memory"); phase.v = 100 + p; }
    else while (phase.v != 100 + p) {}
  }
  if (hart != 0) return 0;
  report("torn", torn.v);
  CHECK(loads.v > 0, 2);
  CHECK(torn.v == 0, 3);
  puts_("PASS\n");
  return 0;
}
