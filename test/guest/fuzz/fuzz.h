/* Shared by the guest fuzzers (test/guest/fuzz/): a seeded generator, values that break
   parsers, and the virt board's device windows. The host writes the seed into `fuzz_seed`
   after loading the program (fuzz/guest.ts), so a run is reproducible from its seed; the
   program then runs until the host stops it, counting its operations in `fuzz_ops`. */
#ifndef VIRTUS_FUZZ_H
#define VIRTUS_FUZZ_H
#include <stdint.h>

volatile uint64_t fuzz_seed = 1;
volatile uint64_t fuzz_ops;

static uint64_t rng_state;

/* splitmix64 (Steele, Lea, Flood): every seed gives a full-period stream. */
static inline uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static inline int one_in(uint64_t n) { return below(n) == 0; }

/* Zero, one, all ones, sign bits, powers of two and their neighbours, page and ring sizes. */
static const uint64_t INTERESTING[] = {
  0, 1, 2, 3, 4, 7, 8, 15, 16, 0x7f, 0x80, 0xff, 0x100, 0x1ff, 0x200, 0xfff, 0x1000, 0x7fff, 0x8000,
  0xffff, 0x10000, 0x3333, 0x5555, 0x7777, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x100000000ull,
  0x80000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull, 0xfffffffffffff000ull, 0xffffffffffffffffull,
};
#define N_INTERESTING (sizeof INTERESTING / sizeof INTERESTING[0])

/* A value to write: interesting (possibly nudged), small, or fully random. */
static inline uint64_t value(void) {
  switch (below(4)) {
    case 0: return INTERESTING[below(N_INTERESTING)];
    case 1: return INTERESTING[below(N_INTERESTING)] + below(5) - 2;
    case 2: return below(256);
    default: return rnd();
  }
}

static inline void seed_rng(void) {
  rng_state = fuzz_seed;
  rnd();
}

/* The virt board (src/machine/virt.ts). */
#define MROM 0x1000ul
#define SYSCON 0x100000ul
#define RTC 0x101000ul
#define CLINT 0x2000000ul
#define PLIC 0xc000000ul
#define UART 0x10000000ul
#define VIRTIO(i) (0x10001000ul + 0x1000ul * (i))
#define RAM_BASE 0x80000000ul

/* Syscon commands that power off or reboot (syscon.ts): the fuzzers never send them, so a
   run ends only when the host stops it. */
static inline uint64_t harmless_syscon(uint64_t v) {
  uint32_t cmd = v & 0xffff;
  return cmd == 0x3333 || cmd == 0x5555 || cmd == 0x7777 ? v ^ 1 : v;
}

/* virtio-mmio registers that place a queue's rings (QueueDesc, QueueDriver, QueueDevice). A
   device writes its used ring wherever the driver puts it: a fuzzer that put it over its own
   code would break itself, so values for these registers never lie in [RAM_BASE, keep). */
static inline int ring_register(uint64_t off, int width) { return off + width > 0x80 && off < 0xa8; }

/* `v` with neither 32-bit half in [RAM_BASE, keep) (the transport takes registers 32 bits at a time). */
static inline uint64_t away_from(uint64_t v, uint64_t keep) {
  uint64_t lo = v & 0xffffffff, hi = v >> 32;
  if (lo >= RAM_BASE && lo < keep) lo -= RAM_BASE;
  if (hi >= RAM_BASE && hi < keep) hi -= RAM_BASE;
  return hi << 32 | lo;
}

static inline uint64_t mmio_read(uint64_t a, int width) {
  switch (width) {
    case 1: return *(volatile uint8_t *)a;
    case 2: return *(volatile uint16_t *)a;
    case 4: return *(volatile uint32_t *)a;
    default: return *(volatile uint64_t *)a;
  }
}

static inline void mmio_write(uint64_t a, int width, uint64_t v) {
  switch (width) {
    case 1: *(volatile uint8_t *)a = (uint8_t)v; break;
    case 2: *(volatile uint16_t *)a = (uint16_t)v; break;
    case 4: *(volatile uint32_t *)a = (uint32_t)v; break;
    default: *(volatile uint64_t *)a = v; break;
  }
}

static inline void fence(void) { __sync_synchronize(); }

#endif
