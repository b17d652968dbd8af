/* The A extension: LR/SC reservations and every AMO on words and doublewords, plus the
   misaligned-address exceptions AMOs raise (Unprivileged ch. 14). */
#include "trap.h"

static volatile uint64_t cell[4] __attribute__((aligned(64)));
static volatile uint64_t vals[] = {0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x8000000000000000,
                                   0x7fffffffffffffff, 0xffffffffffffffff, 0x123456789abcdef0};
#define NV (sizeof vals / sizeof vals[0])
static uint64_t h;
static void mix(uint64_t v) { h = (h ^ v) * 0x100000001b3ull; }

#define AMO(name)                                                                   \
  do {                                                                              \
    h = 0xcbf29ce484222325ull;                                                      \
    for (unsigned i = 0; i < NV; i++)                                               \
      for (unsigned j = 0; j < NV; j++) {                                           \
        uint64_t old;                                                               \
        cell[0] = vals[i];                                                          \
        asm volatile(#name " %0, %1, (%2)" : "=r"(old) : "r"(vals[j]), "r"(&cell[0]) : "memory"); \
        mix(old);                                                                   \
        mix(cell[0]);                                                               \
      }                                                                             \
    report(#name, h);                                                               \
  } while (0)

int main(void) {
  trap_init();
  AMO(amoswap.w); AMO(amoadd.w); AMO(amoxor.w); AMO(amoand.w); AMO(amoor.w);
  AMO(amomin.w); AMO(amomax.w); AMO(amominu.w); AMO(amomaxu.w);
  AMO(amoswap.d); AMO(amoadd.d); AMO(amoxor.d); AMO(amoand.d); AMO(amoor.d);
  AMO(amomin.d); AMO(amomax.d); AMO(amominu.d); AMO(amomaxu.d);
  AMO(amoadd.w.aq); AMO(amoor.d.aqrl);

  uint64_t v, fail;
  /* SC without a reservation fails and leaves memory alone. */
  cell[1] = 5;
  asm volatile("sc.d %0, %2, (%1)" : "=r"(fail) : "r"(&cell[1]), "r"(9ull) : "memory");
  CHECK(fail != 0 && cell[1] == 5, 2);
  /* LR then SC to the same address succeeds. */
  asm volatile("lr.d %0, (%1)" : "=r"(v) : "r"(&cell[1]) : "memory");
  asm volatile("sc.d %0, %2, (%1)" : "=r"(fail) : "r"(&cell[1]), "r"(9ull) : "memory");
  CHECK(v == 5 && fail == 0 && cell[1] == 9, 3);
  /* A second SC fails: a successful SC consumes the reservation. */
  asm volatile("sc.d %0, %2, (%1)" : "=r"(fail) : "r"(&cell[1]), "r"(11ull) : "memory");
  CHECK(fail != 0 && cell[1] == 9, 4);
  /* lr.w sign-extends; sc.w stores 32 bits. */
  cell[2] = 0x00000000fffffffeull;
  asm volatile("lr.w %0, (%1)" : "=r"(v) : "r"(&cell[2]) : "memory");
  asm volatile("sc.w %0, %2, (%1)" : "=r"(fail) : "r"(&cell[2]), "r"(0x1234567811111111ull) : "memory");
  CHECK(v == 0xfffffffffffffffeull && fail == 0 && cell[2] == 0x11111111ull, 5);
  /* rd may be rs2: the value is stored before rd receives the result. */
  cell[1] = 1;
  v = 0x7777;
  asm volatile("lr.d t0, (%1)\n mv t0, %2\n sc.d t0, t0, (%1)\n mv %0, t0" : "=r"(fail) : "r"(&cell[1]), "r"(v) : "t0", "memory");
  CHECK(fail == 0 && cell[1] == 0x7777, 12);
  /* A trap between LR and SC may clear the reservation; an ecall in between is a trap. */
  asm volatile("lr.d %0, (%1)" : "=r"(v) : "r"(&cell[1]) : "memory");
  asm volatile("ecall");
  asm volatile("sc.d %0, %2, (%1)" : "=r"(fail) : "r"(&cell[1]), "r"(13ull) : "memory");
  report("sc-after-trap", fail != 0);

  /* LR/SC hot enough to be translated: a counter bumped through an LR/SC retry loop, a word
     pair, and an SC to another address than the reserved one, which fails. */
  h = 0xcbf29ce484222325ull;
  for (unsigned i = 0; i < 300; i++) {
    uint64_t old, f;
    asm volatile("1: lr.d %0, (%2)\n addi %0, %0, 3\n sc.d %1, %0, (%2)\n bnez %1, 1b"
                 : "=&r"(old), "=&r"(f) : "r"(&cell[1]) : "memory");
    mix(old);
    asm volatile("lr.w %0, (%2)\n sc.w %1, %3, (%2)" : "=&r"(old), "=&r"(f) : "r"(&cell[2]), "r"(vals[i % NV]) : "memory");
    mix(old);
    mix(f);
    asm volatile("lr.d %0, (%2)\n sc.d %1, %3, (%4)" : "=&r"(old), "=&r"(f) : "r"(&cell[1]), "r"(7ull), "r"(&cell[0]) : "memory");
    mix(f);
    mix(cell[0]);
  }
  report("lrsc-loop", h);

  /* Misaligned AMO: store/AMO address misaligned (6); misaligned LR: load address misaligned (4). */
  volatile uint8_t *p = (volatile uint8_t *)&cell[3] + 1;
  asm volatile("amoadd.w %0, %1, (%2)" : "=r"(v) : "r"(1ull), "r"(p) : "memory");
  report("amo-misaligned-cause", last_m.cause);
  report("amo-misaligned-tval-ok", last_m.tval == (uint64_t)p);
  asm volatile("lr.d %0, (%1)" : "=r"(v) : "r"(p) : "memory");
  report("lr-misaligned-cause", last_m.cause);
  asm volatile("sc.w %0, %1, (%2)" : "=r"(v) : "r"(1ull), "r"(p) : "memory");
  report("sc-misaligned-cause", last_m.cause);
  puts_("atomics done\n");
  return 0;
}
