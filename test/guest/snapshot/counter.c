/* A guest for snapshot and migration tests: a timer interrupt every PERIOD ticks advances a
   counter that the main loop prints on the UART ("counter N", each value exactly once, in
   order), while the main loop keeps rewriting a buffer of WORDS 64-bit words and keeps a
   running checksum of it, verified against the buffer after every sweep. With RNG, every
   counter line also carries 4 bytes from virtio-rng (a request in flight in the virtqueue
   whenever the machine is saved between its notify and its completion). Exits 0 after COUNT
   counters with "checksum ok"; a wrong checksum exits 3. */
#include <stdint.h>
#include "test.h"

#ifndef COUNT
#define COUNT 100
#endif
#ifndef WORDS
#define WORDS (1u << 17)
#endif
#ifndef PERIOD
#define PERIOD 20000 /* timer ticks (10 MHz): 2 ms */
#endif

#define CLINT 0x2000000ul
#define MTIMECMP (*(volatile uint64_t *)(CLINT + 0x4000))
#define MTIME (*(volatile uint64_t *)(CLINT + 0xbff8))
#define UART ((volatile uint8_t *)0x10000000ul)

static volatile uint64_t ticks;
static uint64_t buf[WORDS];

static void uputc(char c) { UART[0] = (uint8_t)c; }
static void uputs(const char *s) { while (*s) uputc(*s++); }
static void udec(uint64_t v) {
  char b[24];
  int n = 0;
  do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) uputc(b[--n]);
}
static void uhex8(uint8_t v) { uputc("0123456789abcdef"[v >> 4]); uputc("0123456789abcdef"[v & 15]); }

void __attribute__((interrupt("machine"), aligned(4))) on_trap(void) {
  uint64_t cause = read_csr(mcause);
  if (cause == ((1ull << 63) | 7)) {
    ticks++;
    MTIMECMP = MTIMECMP + PERIOD;
    return;
  }
  exit(0x1000 + (int)(cause & 0xfff));
}

#ifdef RNG
/* virtio 1.2 §4.2.3 and §5.4 on the highest slot holding a virtio-rng (device ID 4). */
#define SLOT(i) (0x10001000ul + 0x1000ul * (i))
#define R(off) (*(volatile uint32_t *)(rng + (off)))
#define QN 4
struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QN], used_event; };
struct used { uint16_t flags, idx; struct { uint32_t id, len; } ring[QN]; uint16_t avail_event; };
static struct desc descs[QN] __attribute__((aligned(16)));
static struct avail av __attribute__((aligned(4)));
static struct used us __attribute__((aligned(4)));
static uint8_t random[4];
static uint64_t rng;

static void rng_init(void) {
  for (int i = 7; i >= 0 && !rng; i--) if (*(volatile uint32_t *)(SLOT(i) + 8) == 4) rng = SLOT(i);
  if (!rng) { uputs("no virtio-rng\n"); exit(4); }
  R(0x070) = 0;
  R(0x070) = 1 | 2;
  R(0x024) = 1;
  R(0x020) = 1; /* VIRTIO_F_VERSION_1 */
  R(0x070) = 1 | 2 | 8;
  R(0x030) = 0;
  R(0x038) = QN;
  R(0x080) = (uint32_t)(uintptr_t)descs;
  R(0x090) = (uint32_t)(uintptr_t)&av;
  R(0x0a0) = (uint32_t)(uintptr_t)&us;
  R(0x044) = 1;
  R(0x070) = 1 | 2 | 8 | 4;
}

/* Asks for 4 bytes and waits for them (the device answers inside the notify). */
static void rng_read(void) {
  uint16_t seen = us.idx;
  descs[0].addr = (uint64_t)(uintptr_t)random;
  descs[0].len = sizeof random;
  descs[0].flags = 2; /* VIRTQ_DESC_F_WRITE */
  av.ring[av.idx % QN] = 0;
  __sync_synchronize();
  av.idx++;
  __sync_synchronize();
  R(0x050) = 0;
  while (*(volatile uint16_t *)&us.idx == seen) {}
  R(0x064) = R(0x060);
}
#endif

static void counter(uint64_t n) {
  uputs("counter ");
  udec(n);
#ifdef RNG
  rng_read();
  uputs(" rng ");
  for (int i = 0; i < 4; i++) uhex8(random[i]);
#endif
  uputc('\n');
}

int main(void) {
  write_csr(mtvec, (uint64_t)(uintptr_t)on_trap);
  uint64_t sum = 0;
  for (uint32_t i = 0; i < WORDS; i++) sum += buf[i];
#ifdef RNG
  rng_init();
#endif
  MTIMECMP = MTIME + PERIOD;
  set_csr(mie, 1 << 7);
  set_csr(mstatus, 1 << 3);
  uint64_t printed = 0, seq = 1, sweeps = 0;
  while (printed < COUNT) {
    for (uint32_t i = 0; i < WORDS; i++) {
      uint64_t v = (seq * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)i * 0xbf58476d1ce4e5b9ull);
      sum += v - buf[i];
      buf[i] = v;
      if ((i & 4095) == 0) while (printed < ticks && printed < COUNT) counter(printed++);
    }
    uint64_t s = 0;
    for (uint32_t i = 0; i < WORDS; i++) s += buf[i];
    if (s != sum) {
      uputs("CHECKSUM FAIL\n");
      exit(3);
    }
    sweeps++;
    seq++;
  }
  clear_csr(mie, 1 << 7);
  uputs("checksum ok sweeps=");
  udec(sweeps);
  uputc('\n');
  return 0;
}
