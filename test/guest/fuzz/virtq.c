/* Guest fuzzer: a malicious virtio driver (virtio 1.2 §2, §4.2) on the virt board's eight
   virtio-mmio slots (the host attaches blk, console and rng; the others are empty). It
   initializes devices with random features and queue layouts, builds random descriptor
   chains (huge lengths, addresses outside RAM or across its end, loops, indirect tables of
   any length, heads and indices out of range), well-formed requests with random fields,
   notifies at random times, resets devices and disables queues while requests are in
   flight, scribbles on live rings, and reads and writes random registers. Runs in M-mode with
   interrupts masked. The device may write only into the arena (the upper half of RAM), so
   the program itself stays intact; reads may come from anywhere. */
#include <stdint.h>
#include "test.h"
#include "fuzz.h"

#define R(base, off) (*(volatile uint32_t *)((base) + (off)))
#define RAM_SIZE (64ul << 20)
#define RAM_END (RAM_BASE + RAM_SIZE)
#define ARENA (RAM_BASE + RAM_SIZE / 2)
#define ARENA_SIZE (RAM_SIZE / 2)

enum {
  MAGIC = 0x000, DEVICE_ID = 0x008, DEV_FEAT = 0x010, DEV_FEAT_SEL = 0x014, DRV_FEAT = 0x020, DRV_FEAT_SEL = 0x024,
  QUEUE_SEL = 0x030, QUEUE_NUM_MAX = 0x034, QUEUE_NUM = 0x038, QUEUE_READY = 0x044, QUEUE_NOTIFY = 0x050,
  INT_STATUS = 0x060, INT_ACK = 0x064, STATUS = 0x070, DESC_LO = 0x080, DESC_HI = 0x084, DRIVER_LO = 0x090,
  DRIVER_HI = 0x094, DEVICE_LO = 0x0a0, DEVICE_HI = 0x0a4, CONFIG = 0x100,
};
enum { ACK = 1, DRIVER = 2, DRIVER_OK = 4, FEATURES_OK = 8 };
enum { F_NEXT = 1, F_WRITE = 2, F_INDIRECT = 4 };

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };

struct queue {
  volatile struct desc *desc;
  volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
  volatile uint16_t *used;  /* flags, idx, then {u32 id, u32 len}[size], avail_event */
  uint32_t size;
  uint16_t idx;
};

struct slot {
  uint64_t base;
  uint32_t id;
  int queues;
  struct queue q[2];
};

static struct slot slots[8];
static uint64_t arena_next = ARENA;

uint64_t fuzz_traps;

void __attribute__((interrupt("machine"), aligned(4))) _default_trap(void) {
  uint64_t cause = read_csr(mcause);
  if ((int64_t)cause < 0) return;
  uint64_t pc = read_csr(mepc);
  uint16_t insn = *(volatile uint16_t *)pc;
  write_csr(mepc, pc + ((insn & 3) == 3 ? 4 : 2));
  fuzz_traps++;
}

/* `n` bytes of the arena, aligned; the arena is reused from its start when it runs out. */
static uint64_t arena(uint64_t n, uint64_t align) {
  if (n > ARENA_SIZE) n = ARENA_SIZE;
  uint64_t a = (arena_next + align - 1) & ~(align - 1);
  if (a + n > ARENA + ARENA_SIZE) a = ARENA;
  arena_next = a + n;
  return a;
}

/* Zeroes `n` bytes (a multiple of 8) at an 8-byte aligned address. */
static void zero(volatile void *p, uint64_t n) {
  for (uint64_t i = 0; i < n / 8; i++) ((volatile uint64_t *)p)[i] = 0;
}

/* A length: mostly small, sometimes large, sometimes one that breaks arithmetic. */
static uint32_t length(void) {
  switch (below(16)) {
    case 0: return (uint32_t)value();
    case 1: return (uint32_t)below(16 << 20);
    case 2: return 0;
    default: return (uint32_t)below(4096);
  }
}

/* A buffer address: inside the arena for the device to write; for reading also anywhere in
   RAM; sometimes outside RAM or running off its end. */
static uint64_t address(uint32_t len, int writable) {
  switch (below(16)) {
    case 0: return writable ? away_from(value(), ARENA) : value();
    case 1: return RAM_END - below(4096);
    case 2: if (!writable) return RAM_BASE + below(RAM_SIZE); /* fall through */
    default: return arena(len < ARENA_SIZE ? len : 1, 1 + below(2) * 7);
  }
}

/* §3.1.1, with random features (usually what was offered), and random queue layouts
   (usually valid). */
static void init(struct slot *s) {
  uint64_t b = s->base;
  R(b, STATUS) = 0;
  R(b, STATUS) = ACK;
  R(b, STATUS) = ACK | DRIVER;
  R(b, DEV_FEAT_SEL) = 0;
  uint64_t offered = R(b, DEV_FEAT);
  R(b, DEV_FEAT_SEL) = 1;
  offered |= (uint64_t)R(b, DEV_FEAT) << 32;
  uint64_t f = one_in(8) ? rnd() : offered & (rnd() | (1ull << 32));
  R(b, DRV_FEAT_SEL) = 0;
  R(b, DRV_FEAT) = (uint32_t)f;
  R(b, DRV_FEAT_SEL) = 1;
  R(b, DRV_FEAT) = (uint32_t)(f >> 32);
  if (!one_in(16)) R(b, STATUS) = ACK | DRIVER | FEATURES_OK;
  for (int i = 0; i < s->queues + (one_in(8) ? 1 : 0); i++) {
    R(b, QUEUE_SEL) = i;
    uint32_t max = R(b, QUEUE_NUM_MAX);
    uint32_t size = max ? max >> below(4) : 1;
    if (one_in(16)) size = (uint32_t)value();
    if (size == 0 || size > 1024) size = 8;
    struct queue *q = i < 2 ? &s->q[i] : &s->q[1];
    q->size = size;
    q->idx = 0;
    q->desc = (volatile struct desc *)arena(16 * size, 16);
    q->avail = (volatile uint16_t *)arena(6 + 2 * size, 2);
    q->used = (volatile uint16_t *)arena(6 + 8 * size, 4);
    /* Fresh indices (§4.2.3.2) and an empty table: the arena may hold anything, and a
       chain may lead to a descriptor not written since. */
    zero(q->desc, 16 * size);
    q->avail[0] = q->avail[1] = 0;
    q->used[0] = q->used[1] = 0;
    uint64_t d = (uint64_t)(uintptr_t)q->desc, a = (uint64_t)(uintptr_t)q->avail, u = (uint64_t)(uintptr_t)q->used;
    if (one_in(32)) d = away_from(value(), ARENA);
    if (one_in(32)) a += 1;
    if (one_in(32)) u = RAM_END - 4;
    R(b, QUEUE_NUM) = size;
    R(b, DESC_LO) = (uint32_t)d;
    R(b, DESC_HI) = (uint32_t)(d >> 32);
    R(b, DRIVER_LO) = (uint32_t)a;
    R(b, DRIVER_HI) = (uint32_t)(a >> 32);
    R(b, DEVICE_LO) = (uint32_t)u;
    R(b, DEVICE_HI) = (uint32_t)(u >> 32);
    R(b, QUEUE_READY) = 1;
  }
  R(b, STATUS) = R(b, STATUS) | DRIVER_OK;
}

static void put(volatile struct desc *t, uint32_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  t[i].addr = addr;
  t[i].len = len;
  t[i].flags = flags;
  t[i].next = next;
}

/* A virtio-blk request header (§5.2.6) with a random type and sector, and its data. */
static uint32_t blk_request(volatile struct desc *t, uint32_t at, uint32_t room) {
  static const uint32_t TYPES[] = { 0, 1, 4, 8, 11, 13 };
  uint64_t h = arena(16 + 32 * 16, 8);
  volatile uint32_t *w = (volatile uint32_t *)h;
  w[0] = one_in(16) ? (uint32_t)value() : TYPES[below(6)];
  w[1] = 0;
  *(volatile uint64_t *)(h + 8) = one_in(4) ? value() : below(8192);
  uint32_t n = 0;
  uint32_t hlen = 16;
  if (w[0] == 11 || w[0] == 13) {
    uint32_t segs = 1 + below(4);
    for (uint32_t k = 0; k < segs; k++) {
      *(volatile uint64_t *)(h + 16 + 16 * k) = one_in(4) ? value() : below(8192);
      w[4 + 4 * k + 2] = one_in(4) ? (uint32_t)value() : (uint32_t)below(64);
      w[4 + 4 * k + 3] = one_in(8) ? (uint32_t)value() : (uint32_t)below(2);
    }
    hlen += 16 * segs;
  }
  put(t, at, h, hlen, F_NEXT, (at + 1) % room);
  n++;
  if (w[0] != 4 && n < room) {
    uint32_t len = one_in(8) ? length() : 512 * (uint32_t)below(9);
    int wr = w[0] != 1;
    put(t, (at + n) % room, address(len, wr), len, F_NEXT | (wr ? F_WRITE : 0), (at + n + 1) % room);
    n++;
  }
  if (n < room) {
    put(t, (at + n) % room, arena(1, 1), 1, F_WRITE, 0);
    n++;
  }
  return n;
}

/* A random chain of `n` descriptors from index `at` of table `t` of `room` entries. */
static void random_chain(volatile struct desc *t, uint32_t at, uint32_t room, uint32_t n, int allow_indirect) {
  int writing = 0;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t i = (at + k) % room;
    uint32_t len = length();
    if (!writing && one_in(3)) writing = 1;
    int wr = one_in(16) ? !writing : writing;
    uint16_t flags = (wr ? F_WRITE : 0) | (k + 1 < n ? F_NEXT : 0);
    uint16_t next = one_in(16) ? (uint16_t)rnd() : (uint16_t)((i + 1) % room);
    if (one_in(32)) flags = (uint16_t)rnd();
    wr = (flags & F_WRITE) != 0;
    if (allow_indirect && one_in(8)) {
      uint32_t m = 1 + below(one_in(16) ? 1100 : 8); /* the device walks at most 1024 */
      uint32_t tlen = one_in(8) ? (uint32_t)value() : 16 * m;
      uint32_t span = tlen > 16 * m && tlen <= 16 * 1100 ? tlen : 16 * m;
      uint64_t tab = arena(span, 16);
      zero((volatile void *)tab, span & ~7u);
      random_chain((volatile struct desc *)tab, 0, m, m, 0);
      put(t, i, one_in(16) ? away_from(value(), ARENA) : tab, tlen, F_INDIRECT | (one_in(8) ? F_NEXT : 0), next);
      continue;
    }
    put(t, i, address(len, wr), len, flags, next);
  }
}

static struct slot *any_slot(void) { return &slots[below(8)]; }

static struct queue *any_queue(struct slot *s, int *qi) {
  *qi = s->queues ? (int)below(s->queues) : 0;
  return &s->q[*qi];
}

/* A chain made available on a queue: a device request, or random descriptors. */
static void submit(struct slot *s) {
  int qi;
  struct queue *q = any_queue(s, &qi);
  if (!q->desc || !q->size) return;
  uint32_t head = (uint32_t)below(q->size);
  if (s->id == 2 && !one_in(4)) {
    blk_request(q->desc, head, q->size);
  } else {
    uint32_t n = 1 + (uint32_t)below(one_in(8) ? 64 : 4);
    random_chain(q->desc, head, q->size, n, 1);
  }
  uint16_t h = one_in(32) ? (uint16_t)rnd() : (uint16_t)head;
  q->avail[2 + q->idx % q->size] = h;
  fence();
  q->idx += one_in(32) ? (uint16_t)rnd() : 1;
  q->avail[1] = q->idx;
  fence();
  if (!one_in(4)) R(s->base, QUEUE_NOTIFY) = one_in(16) ? (uint32_t)value() : (uint32_t)qi;
}

/* Lets the device catch up with what it was given (requests may span several turns). */
static void wait_used(struct slot *s) {
  int qi;
  struct queue *q = any_queue(s, &qi);
  if (!q->used) return;
  uint16_t want = q->idx;
  for (int k = 0; k < 200 && q->used[1] != want; k++) {}
  R(s->base, INT_ACK) = R(s->base, INT_STATUS);
}

static void scribble(struct slot *s) {
  int qi;
  struct queue *q = any_queue(s, &qi);
  if (!q->desc || !q->size) return;
  switch (below(4)) {
    case 0: q->avail[1] = (uint16_t)rnd(); break;
    case 1: q->avail[2 + below(q->size)] = (uint16_t)rnd(); break;
    case 2: q->desc[below(q->size)].len = (uint32_t)value(); break;
    default: q->avail[0] = (uint16_t)rnd(); break;
  }
}

static void registers(struct slot *s) {
  uint64_t off = one_in(4) ? CONFIG + below(0x40) : below(0x100);
  int width = 1 << below(3);
  off &= ~(uint64_t)(width - 1);
  if (one_in(2)) mmio_read(s->base + off, width);
  else mmio_write(s->base + off, width, ring_register(off, width) ? away_from(value(), ARENA) : value());
}

int main(void) {
  seed_rng();
  for (int i = 0; i < 8; i++) {
    struct slot *s = &slots[i];
    s->base = VIRTIO(i);
    s->id = R(s->base, DEVICE_ID);
    s->queues = s->id == 3 ? 2 : s->id ? 1 : 0;
    init(s);
  }
  for (;;) {
    struct slot *s = any_slot();
    switch (below(32)) {
      case 0: case 1: init(s); break;
      case 2: R(s->base, STATUS) = 0; break;
      case 3: R(s->base, QUEUE_SEL) = (uint32_t)below(3); R(s->base, QUEUE_READY) = (uint32_t)below(2); break;
      case 4: case 5: scribble(s); break;
      case 6: case 7: case 8: registers(s); break;
      case 9: R(s->base, QUEUE_NOTIFY) = (uint32_t)below(3); break;
      case 10: case 11: case 12: wait_used(s); break;
      case 13: if (s->id == 3) R(s->base, CONFIG + 8) = 'A' + (uint32_t)below(26); break;
      default: submit(s); break;
    }
    fuzz_ops++;
  }
}
