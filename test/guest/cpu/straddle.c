/* A 32-bit instruction that straddles a page boundary, inside a loop that runs often enough
   for the translator to compile both pages (the instruction's second half is on the next
   page, so a translation of the first page cannot contain it). */
#include "test.h"

uint64_t straddle_loop(uint64_t n);
asm(".text\n .option push\n .option norvc\n .balign 4096\n"
    " .skip 4096 - 22\n"
    "straddle_loop:\n"          /* page offset 4074 */
    " li a1, 0\n"
    " li a2, 0\n"
    "1: addi a1, a1, 3\n"       /* 4082 */
    " addi a2, a2, 5\n"
    " addi a0, a0, -1\n"
    "straddler:\n"
    " add a3, a1, a2\n"         /* 4094: the first half ends the page */
    " xor a1, a1, a3\n"         /* next page */
    " slli a2, a2, 1\n"
    " bnez a0, 1b\n"
    " add a0, a1, a2\n"
    " ret\n"
    " .option pop\n");
extern char straddler[];

int main(void) {
  CHECK(((uintptr_t)straddler & 0xfff) == 0xffe, 2);
  report("straddle-1", straddle_loop(1));
  report("straddle-100k", straddle_loop(100000));
  puts_("straddle done\n");
  return 0;
}
