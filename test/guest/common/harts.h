/* For programs of several harts sharing memory (test/guest/smp/): a variable alone in its
   64-byte line, and a doubleword store and load the compiler neither merges nor moves. */
#ifndef HARTS_H
#define HARTS_H
#include <stdint.h>

struct line { volatile uint64_t v; uint64_t pad[7]; };

#define STORE(p, v) asm volatile("sd %1, 0(%0)" :: "r"(p), "r"((uint64_t)(v)) : "memory")
#define LOAD(p) ({ uint64_t __v; asm volatile("ld %0, 0(%1)" : "=r"(__v) : "r"(p) : "memory"); __v; })

#endif
