/* A deterministic S-mode kernel for the snapshot tests between the CLI and the web console,
   booted by the built-in SBI: COUNT lines, each after WORK rounds of hashing over a buffer
   (so pages are dirtied and the translator is busy) and a timer interrupt PERIOD ticks away
   (SBI TIME, then wfi), carrying what a machine restored on another host must give the same:
   the time CSR, the goldfish RTC, 4 bytes from the virtio-rng in the highest slot holding
   one, and the buffer's hash. Then it powers the machine off (SBI SRST). With --deterministic
   the output is the same on every run and every host, so a run continued from a snapshot
   prints exactly what an uninterrupted run prints after the same instruction. */
#include <stdint.h>

#ifndef COUNT
#define COUNT 40
#endif
#ifndef WORK
#define WORK 24
#endif
#define PERIOD 50000
#define WORDS 16384

#define UART ((volatile uint8_t *)0x10000000ul)
#define RTC(off) (*(volatile uint32_t *)(0x101000ul + (off)))
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
static uint64_t buf[WORDS];

static void putc_(char c) {
  while (!(UART[5] & 0x20)) {}
  UART[0] = (uint8_t)c;
}
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void hex(uint64_t v, int digits) {
  for (int i = (digits - 1) * 4; i >= 0; i -= 4) putc_("0123456789abcdef"[(v >> i) & 15]);
}

static long sbi(long ext, long fid, long a0) {
  register long x10 asm("a0") = a0;
  register long x11 asm("a1") = 0;
  register long x16 asm("a6") = fid;
  register long x17 asm("a7") = ext;
  asm volatile("ecall" : "+r"(x10), "+r"(x11) : "r"(x16), "r"(x17) : "memory");
  return x10;
}

static uint64_t rdtime(void) {
  uint64_t t;
  asm volatile("rdtime %0" : "=r"(t));
  return t;
}

/* virtio 1.2 §4.2.3: the virtio-rng with one queue. */
static void rng_init(void) {
  for (int i = 7; i >= 0 && !rng; i--) if (*(volatile uint32_t *)(SLOT(i) + 8) == 4) rng = SLOT(i);
  if (!rng) {
    puts_("no virtio-rng\r\n");
    return;
  }
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

static uint32_t rng_read(void) {
  if (!rng) return 0;
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
  return (uint32_t)random[0] << 24 | (uint32_t)random[1] << 16 | (uint32_t)random[2] << 8 | random[3];
}

/* Sleeps until the SBI timer fires PERIOD ticks from now (the interrupt is enabled in sie
   only, so wfi returns without a trap). */
static void sleep_tick(void) {
  sbi(0x54494D45, 0, (long)(rdtime() + PERIOD));
  asm volatile("csrs sie, %0" :: "r"(1 << 5));
  uint64_t sip;
  do {
    asm volatile("wfi");
    asm volatile("csrr %0, sip" : "=r"(sip));
  } while (!(sip & (1 << 5)));
  sbi(0x54494D45, 0, -1);
}

int main(void) {
  rng_init();
  puts_("ticks: start\r\n");
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (int n = 0; n < COUNT; n++) {
    for (int r = 0; r < WORK; r++) {
      for (uint32_t i = 0; i < WORDS; i++) {
        h ^= buf[i] + i;
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        buf[i] = h;
      }
    }
    sleep_tick();
    uint32_t lo = RTC(0);
    uint32_t hi = RTC(4);
    puts_("tick ");
    putc_((char)('0' + n / 10));
    putc_((char)('0' + n % 10));
    puts_(" time=");
    hex(rdtime(), 10);
    puts_(" rtc=");
    hex((uint64_t)hi << 32 | lo, 16);
    puts_(" rng=");
    hex(rng_read(), 8);
    puts_(" hash=");
    hex(h, 16);
    puts_("\r\n");
  }
  puts_("ticks: done\r\n");
  sbi(0x53525354, 0, 0); /* SRST: shutdown */
  for (;;) asm volatile("wfi");
}
