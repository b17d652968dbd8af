/* Sv39 and Sv48 (Privileged ch. 12): page-table walks, R/W/X/U permissions with SUM and MXR,
   hardware A/D updates, reserved encodings, misaligned superpages, canonical addresses,
   instruction fetch faults, U-mode code, and SFENCE.VMA after a PTE change. */
#include "trap.h"

#define V 1ull
#define R 2ull
#define W 4ull
#define X 8ull
#define U 16ull
#define A 64ull
#define D 128ull
#define SUM (1ull << 18)
#define MXR (1ull << 19)

static uint64_t root39[512] __attribute__((aligned(4096)));
static uint64_t l1[512] __attribute__((aligned(4096)));
static uint64_t l0[512] __attribute__((aligned(4096)));
static uint64_t root48[512] __attribute__((aligned(4096)));
static uint8_t pages[8][4096] __attribute__((aligned(4096)));

#define VA(i) (0x40000000ull + (i) * 4096ull)
static uint64_t pte(void *pa, uint64_t flags) { return (((uint64_t)pa >> 12) << 10) | flags; }

enum { LOAD, STORE, FETCH };

static long s_access(long arg) {
  uint64_t va = (uint64_t)arg & ~3ull, v = 0;
  switch (arg & 3) {
    case LOAD: asm volatile("ld %0, 0(%1)" : "=r"(v) : "r"(va) : "memory"); break;
    case STORE: asm volatile("sd %0, 0(%1)" :: "r"(0x5a5a5a5a5a5a5a5aull), "r"(va) : "memory"); break;
    case FETCH:
      probe_exec(va);
      redirect_m = redirect_s = 0;
      break;
  }
  return (long)v;
}

/* Runs one access in S-mode and prints what happened: the value, or the trap. */
static uint64_t probe(const char *what, uint64_t va, int op) {
  uint64_t n = last_m.count;
  uint64_t v = (uint64_t)in_mode(PRV_S, s_access, (long)(va | op));
  puts_(what);
  if (last_m.count != n) {
    puts_(": trap cause=");
    put_dec(last_m.cause);
    puts_(" tval=");
    put_hex(last_m.tval);
    putch('\n');
    return ~0ull;
  }
  puts_(": ok ");
  put_hex(v);
  putch('\n');
  return v;
}

static void sfence(void) { asm volatile("sfence.vma" ::: "memory"); }

static void run_suite(const char *name) {
  puts_("== ");
  puts_(name);
  putch('\n');
  probe("load-r", VA(0), LOAD);
  probe("store-r", VA(0), STORE);
  /* A/D: a load sets A, a store sets D (done by the hardware here, as QEMU does). */
  l0[1] = pte(pages[1], V | R | W);
  sfence();
  probe("load-rw", VA(1), LOAD);
  report("pte-after-load", l0[1] & (A | D));
  probe("store-rw", VA(1), STORE);
  report("pte-after-store", l0[1] & (A | D));
  report("stored", *(uint64_t *)pages[1]);
  /* Execute-only: readable only with MXR. */
  probe("load-x", VA(2), LOAD);
  set_csr(mstatus, MXR);
  probe("load-x-mxr", VA(2), LOAD);
  clear_csr(mstatus, MXR);
  /* U pages from S-mode: loads need SUM; fetches never succeed. */
  probe("load-u", VA(3), LOAD);
  set_csr(mstatus, SUM);
  probe("load-u-sum", VA(3), LOAD);
  probe("fetch-u-sum", VA(7), FETCH);
  clear_csr(mstatus, SUM);
  probe("load-invalid", VA(4), LOAD);
  probe("load-w-only", VA(5), LOAD);
  probe("fetch-x", VA(6), FETCH);
  probe("fetch-nx", VA(0), FETCH);
  probe("fetch-invalid", VA(4), FETCH);
  probe("load-megapage-misaligned", 0x40200000ull + 8, LOAD);
  uint64_t v = probe("load-megapage", 0x40400000ull + 0x10, LOAD);
  CHECK(v == *(volatile uint64_t *)(0x80200000ull + 0x10), 40);
  probe("load-noncanonical-39", 0x0000004000000000ull, LOAD);
  probe("load-noncanonical-48", 0x0000800000000000ull, LOAD);
  probe("load-high-canonical", 0xffffffffc0000000ull, LOAD);
  /* After a PTE change and SFENCE.VMA, the new mapping is used. */
  l0[0] = pte(pages[6], V | R | A);
  sfence();
  report("remapped", probe("load-remapped", VA(0), LOAD));
  l0[0] = pte(pages[0], V | R | A);
  sfence();
  /* U-mode: its own code page runs; a non-U page faults. */
  uint64_t n = last_m.count;
  uint64_t r = (uint64_t)run_in_mode(PRV_U, (long (*)(long))VA(7), (long)VA(3), (void *)0);
  report("u-load-u", last_m.count == n ? r : ~0ull);
  n = last_m.count;
  redirect_m = VA(7) + 4; /* resume after the faulting load (the handler cannot read a virtual pc) */
  run_in_mode(PRV_U, (long (*)(long))VA(7), (long)VA(0), (void *)0);
  report("u-load-s-cause", last_m.count == n + 1 ? last_m.cause : ~0ull);
}

int main(void) {
  trap_init();
  for (int p = 0; p < 8; p++)
    for (int i = 0; i < 4096; i += 8) *(uint64_t *)&pages[p][i] = 0x1000ull * p + i;
  /* Sv39: identity gigapage over RAM, and the test pages at 0x4000_0000. */
  root39[2] = pte((void *)0x80000000ull, V | R | W | X | A | D);
  root39[1] = pte(l1, V);
  l1[0] = pte(l0, V);
  l1[1] = pte(pages[4], V | R | A);                      /* megapage, misaligned PPN */
  l1[2] = pte((void *)0x80200000ull, V | R | A);         /* megapage, aligned */
  l0[0] = pte(pages[0], V | R | A);
  l0[2] = pte(pages[2], V | X | A);
  l0[3] = pte(pages[3], V | R | W | U | A | D);
  l0[4] = 0;
  l0[5] = pte(pages[5], V | W | A | D);                  /* W without R: reserved */
  l0[6] = pte(pages[6], V | X | A);
  l0[7] = pte(pages[7], V | R | X | U | A);
  /* High canonical half: an Sv39 address with bit 38 set, mapped to RAM. */
  root39[511] = pte((void *)0x80000000ull, V | R | W | A | D);
  /* Code for the X and U pages. */
  *(uint16_t *)pages[6] = 0x8082; /* ret */
  uint32_t *uc = (uint32_t *)pages[7];
  uc[0] = 0x00053503;             /* ld a0, 0(a0) */
  uc[1] = 0x000068b7;             /* lui a7, 0x6 */
  uc[2] = 0xeed8889b;             /* addiw a7, a7, -275: a7 = 0x5eed, trap.S's return magic */
  uc[3] = 0x00000073;             /* ecall */
  asm volatile("fence.i");

  write_csr(satp, (8ull << 60) | ((uint64_t)root39 >> 12));
  sfence();
  run_suite("sv39");

  /* Sv48: one more level on top; the Sv39 root serves as the level-2 table for the low 512 GiB. */
  root48[0] = pte(root39, V);
  write_csr(satp, (9ull << 60) | ((uint64_t)root48 >> 12));
  sfence();
  report("satp-mode", read_csr(satp) >> 60);
  run_suite("sv48");

  /* An unsupported mode leaves satp unchanged (10.1.11). */
  write_csr(satp, (11ull << 60) | 123); /* mode 11 (Sv64) is reserved */
  report("satp-after-bad-mode", read_csr(satp) >> 60);
  write_csr(satp, 0);
  puts_("paging done\n");
  return 0;
}
