/* A hostile bare-metal virtio driver (virtio 1.2 §2.7, §4.2) for the virt board: requests
   that would make a careless monitor allocate or copy gigabytes in one go, and chains that
   break the limits of §2.7. Run with --memory 640M --console virtio and a disk of at least
   512 MiB (sparse). Every check is reported as name=value through HTIF; the program exits 0
   when all held.

     console   a transmitq chain of 3 x 512 MiB (the same 512 MiB of RAM three times), then one
               of 3 x 64 MiB waited for in WFI: the monitor has to keep the machine running while
               the device has work left (also under --deterministic, where time stands still)
     blk       a read of 4 x 128 MiB into the same 128 MiB, and write-zeroes of 32 x 2 MiB
     rng       a full queue of 16 MiB buffers
     limits    a chain of more than 4 GiB, an indirect table of 65536 entries, a loop through
               an indirect table: each puts the device in DEVICE_NEEDS_RESET, and a reset
               brings it back */
#include <stdint.h>
#include "test.h"

#define SLOT(i) (0x10001000ul + 0x1000ul * (i))
#define PLIC 0x0c000000ul
#define MTIME 0x0200bff8ul
#define R(base, off) (*(volatile uint32_t *)((base) + (off)))
#define MiB (1ul << 20)
/* Guest RAM the requests point at: beyond the program, inside --memory 640M. */
#define BIG ((uint8_t *)0x84000000ul)

enum {
  DEVICE_ID = 0x008, DRV_FEAT = 0x020, DRV_FEAT_SEL = 0x024, QUEUE_SEL = 0x030, QUEUE_NUM = 0x038,
  QUEUE_READY = 0x044, QUEUE_NOTIFY = 0x050, INT_STATUS = 0x060, INT_ACK = 0x064, STATUS = 0x070,
  DESC_LO = 0x080, DESC_HI = 0x084, DRIVER_LO = 0x090, DRIVER_HI = 0x094, DEVICE_LO = 0x0a0, DEVICE_HI = 0x0a4,
};
enum { ACK = 1, DRIVER = 2, DRIVER_OK = 4, FEATURES_OK = 8, NEEDS_RESET = 64 };
enum { F_NEXT = 1, F_WRITE = 2, F_INDIRECT = 4 };
#define QN 16

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QN], used_event; };
struct used_elem { uint32_t id, len; };
struct used { uint16_t flags, idx; struct used_elem ring[QN]; uint16_t avail_event; };
struct queue { struct desc d[QN] __attribute__((aligned(16))); struct avail a __attribute__((aligned(4))); struct used u __attribute__((aligned(4))); };

static struct queue qs[2];
static struct desc table[1024] __attribute__((aligned(16)));
static uint8_t req[16 + 32 * 16] __attribute__((aligned(8)));
static volatile uint8_t status;
static int failures;

#define EXPECT(cond) do { if (!(cond)) { puts_("FAIL line "); put_dec(__LINE__); puts_(": " #cond "\n"); failures++; } } while (0)

static void fence(void) { __sync_synchronize(); }
static void clear(void *p, unsigned long n) { for (unsigned long i = 0; i < n; i++) ((volatile uint8_t *)p)[i] = 0; }

static uint64_t find(uint32_t id) {
  for (int i = 7; i >= 0; i--) if (R(SLOT(i), DEVICE_ID) == id) return SLOT(i);
  return 0;
}

/* §3.1.1 with VERSION_1 and INDIRECT_DESC; `n` queues of QN entries. */
static int init(uint64_t base, int n) {
  R(base, STATUS) = 0;
  R(base, STATUS) = ACK | DRIVER;
  R(base, DRV_FEAT_SEL) = 0;
  R(base, DRV_FEAT) = 1u << 28;
  R(base, DRV_FEAT_SEL) = 1;
  R(base, DRV_FEAT) = 1;
  R(base, STATUS) = ACK | DRIVER | FEATURES_OK;
  if (!(R(base, STATUS) & FEATURES_OK)) return 0;
  for (int i = 0; i < n; i++) {
    struct queue *q = &qs[i];
    clear(q, sizeof *q);
    R(base, QUEUE_SEL) = i;
    R(base, QUEUE_NUM) = QN;
    R(base, DESC_LO) = (uint32_t)(uintptr_t)q->d;
    R(base, DESC_HI) = 0;
    R(base, DRIVER_LO) = (uint32_t)(uintptr_t)&q->a;
    R(base, DRIVER_HI) = 0;
    R(base, DEVICE_LO) = (uint32_t)(uintptr_t)&q->u;
    R(base, DEVICE_HI) = 0;
    R(base, QUEUE_READY) = 1;
  }
  R(base, STATUS) = ACK | DRIVER | FEATURES_OK | DRIVER_OK;
  return 1;
}

static void set(struct queue *q, int i, void *addr, uint32_t len, uint16_t flags, uint16_t next) {
  q->d[i] = (struct desc){ (uint64_t)(uintptr_t)addr, len, flags, next };
}

static void publish(uint64_t base, int qi, uint16_t head) {
  struct queue *q = &qs[qi];
  q->a.ring[q->a.idx % QN] = head;
  fence();
  q->a.idx++;
  fence();
  R(base, QUEUE_NOTIFY) = qi;
}

/* Spins until queue `qi` has used `want` entries in all. */
static void wait_used(int qi, uint16_t want) {
  while (*(volatile uint16_t *)&qs[qi].u.idx != want) {}
}

/* After a chain that breaks §2.7: NEEDS_RESET, nothing used; a reset recovers the device. */
static void expect_broken(uint64_t base, const char *what, int n) {
  uint32_t st = R(base, STATUS);
  puts_(what);
  puts_(": status=");
  put_hex(st);
  putch('\n');
  EXPECT(st & NEEDS_RESET);
  EXPECT(qs[0].u.idx == 0);
  EXPECT(init(base, n));
  EXPECT(!(R(base, STATUS) & NEEDS_RESET));
}

int main(void) {
  uint64_t con = find(3), blk = find(2), rng = find(4);
  report("console", con != 0);
  report("blk", blk != 0);
  report("rng", rng != 0);
  if (!con || !blk || !rng) exit(2);

  /* Console: 3 x 512 MiB in one transmit chain. */
  EXPECT(init(con, 2));
  for (int i = 0; i < 3; i++) set(&qs[1], i, BIG, 512 * MiB, i < 2 ? F_NEXT : 0, i + 1);
  publish(con, 1, 0);
  wait_used(1, 1);
  EXPECT(qs[1].u.ring[0].id == 0);
  report("console_sent", 1);

  /* 3 x 64 MiB, waited for in WFI on the console's interrupt (PLIC context 0, M-mode). */
  uint32_t src = 1 + (uint32_t)((con - SLOT(0)) / 0x1000);
  R(PLIC, 4 * src) = 1;
  R(PLIC, 0x2000) = 1u << src;
  R(PLIC, 0x200000) = 0;
  R(con, INT_ACK) = R(con, INT_STATUS);
  uint32_t stale = R(PLIC, 0x200004); /* the first chain's interrupt, still pending at the gateway */
  R(PLIC, 0x200004) = stale;
  EXPECT(!(read_csr(mip) & (1 << 11)));
  set_csr(mie, 1 << 11);
  for (int i = 0; i < 3; i++) set(&qs[1], i, BIG, 64 * MiB, i < 2 ? F_NEXT : 0, i + 1);
  publish(con, 1, 0);
  int sleeps = 0;
  uint64_t t0 = *(volatile uint64_t *)MTIME;
  while (*(volatile uint16_t *)&qs[1].u.idx != 2) {
    asm volatile("wfi");
    sleeps++;
  }
  /* Waiting for a device is not idling: time must not leap ahead. The bound (1000 s of ticks)
     is far beyond what the copy takes in real time on a loaded host (a CI run took 10 s and
     more under the translator), far below a leap to the next timer or to the end of time. */
  uint64_t slept = *(volatile uint64_t *)MTIME - t0;
  report("console_wfi_ticks", slept);
  EXPECT(slept < 10000000000ul);
  EXPECT(R(con, INT_STATUS) & 1);
  R(con, INT_ACK) = R(con, INT_STATUS);
  R(PLIC, 0x200004) = R(PLIC, 0x200004); /* claim and complete */
  clear_csr(mie, 1 << 11);
  report("console_wfi_sleeps", sleeps);

  /* blk: 4 x 128 MiB read into the same 128 MiB. */
  EXPECT(init(blk, 1));
  struct { uint32_t type, reserved; uint64_t sector; } hdr = { 0, 0, 0 };
  set(&qs[0], 0, &hdr, 16, F_NEXT, 1);
  for (int i = 0; i < 4; i++) set(&qs[0], 1 + i, BIG, 128 * MiB, F_WRITE | F_NEXT, 2 + i);
  status = 0xee;
  set(&qs[0], 5, (void *)&status, 1, F_WRITE, 0);
  publish(blk, 0, 0);
  wait_used(0, 1);
  EXPECT(status == 0);
  EXPECT(qs[0].u.ring[0].len == 512 * MiB + 1);
  report("blk_read_status", status);

  /* blk: write-zeroes of 32 segments of 2 MiB. */
  uint32_t *w = (uint32_t *)req;
  clear(req, sizeof req);
  w[0] = 13; /* VIRTIO_BLK_T_WRITE_ZEROES */
  for (int i = 0; i < 32; i++) w[4 + 4 * i + 2] = (2 * MiB) / 512;
  set(&qs[0], 0, req, sizeof req, F_NEXT, 1);
  status = 0xee;
  set(&qs[0], 1, (void *)&status, 1, F_WRITE, 0);
  publish(blk, 0, 0);
  wait_used(0, 2);
  report("blk_zeroes_status", status);
  EXPECT(status == 0);

  /* rng: a full queue of 16 MiB buffers. */
  EXPECT(init(rng, 1));
  set(&qs[0], 0, BIG, 16 * MiB, F_WRITE, 0);
  for (int i = 0; i < QN; i++) qs[0].a.ring[i] = 0;
  fence();
  qs[0].a.idx = QN;
  fence();
  R(rng, QUEUE_NOTIFY) = 0;
  wait_used(0, QN);
  report("rng_used", qs[0].u.idx);

  /* Limits of §2.7, on the blk queue. */
  EXPECT(init(blk, 1));
  set(&qs[0], 0, &hdr, 16, F_NEXT, 1);
  for (int i = 0; i < 9; i++) set(&qs[0], 1 + i, BIG, 512 * MiB, F_WRITE | F_NEXT, 2 + i);
  set(&qs[0], 10, (void *)&status, 1, F_WRITE, 0);
  publish(blk, 0, 0);
  expect_broken(blk, "chain of more than 4 GiB", 1);
  set(&qs[0], 0, BIG, 65536 * 16, F_INDIRECT, 0);
  publish(blk, 0, 0);
  expect_broken(blk, "indirect table of 65536 entries", 1);
  for (int i = 0; i < 1024; i++) table[i] = (struct desc){ (uintptr_t)BIG, 16, F_NEXT, (uint16_t)((i + 1) % 1024) };
  set(&qs[0], 0, table, sizeof table, F_INDIRECT, 0);
  publish(blk, 0, 0);
  expect_broken(blk, "loop through an indirect table", 1);

  report("failures", failures);
  puts_(failures ? "hostile: FAILED\n" : "hostile: ok\n");
  return failures ? 1 : 0;
}
