/* Cross-modifying code: hart 1 calls patchme() until it is hot (the translator compiles its
   page for hart 1), then hart 0 rewrites patchme()'s first instruction, and after the
   handshake hart 1 executes FENCE.I (Unprivileged 5.1: the hart that runs the code fences)
   and calls it again: it must run the new instruction. The same ELF runs on QEMU's spike
   machine with -smp 2 as the reference. */
#include "test.h"

int patchme(void);
asm(".section .text.patch, \"ax\"\n"
    ".option push\n.option norvc\n"
    ".balign 4096\n.globl patchme\npatchme:\n"
    "  addi a0, zero, 1\n"
    "  jalr zero, 0(ra)\n"
    ".balign 4096\n.option pop\n.text\n");

#define ADDI_A0_2 0x00200513u /* addi a0, zero, 2 */
#define CALLS 200000

static volatile uint64_t ready, patched, done, before, after;

int main(uint64_t hart) {
  if (hart == 1) {
    uint64_t sum = 0;
    for (int i = 0; i < CALLS; i++) sum += patchme();
    before = sum;
    asm volatile("fence rw, rw" ::: "memory");
    ready = 1;
    while (!patched) {}
    asm volatile("fence.i" ::: "memory");
    after = patchme();
    asm volatile("fence rw, rw" ::: "memory");
    done = 1;
    return 0;
  }
  if (hart != 0) return 0;
  while (!ready) {}
  *(volatile uint32_t *)(void *)patchme = ADDI_A0_2;
  asm volatile("fence rw, rw" ::: "memory");
  patched = 1;
  while (!done) {}
  report("before", before);
  report("after", after);
  CHECK(before == CALLS, 2);
  CHECK(after == 2, 3);
  puts_("PASS\n");
  return 0;
}
