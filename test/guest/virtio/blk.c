/* A bare-metal virtio-blk driver written from the virtio 1.2 specification, for the virt
   board's virtio-mmio slots: it probes the slots, negotiates features, reads, writes,
   flushes and asks for the ID; then it submits malformed descriptor chains and checks that
   each puts the device in DEVICE_NEEDS_RESET with a configuration change interrupt, and that
   a reset brings it back. Results are printed as name=value lines through HTIF; the program
   exits 0 when every check held. The disk must hold "VIRTUS-DISK-TEST" at sector 0. */
#include <stdint.h>
#include "test.h"

#define SLOT(i) (0x10001000ul + 0x1000ul * (i))
#define PLIC_PENDING 0x0c001000ul
#define R(base, off) (*(volatile uint32_t *)((base) + (off)))

enum {
  MAGIC = 0x000, VERSION = 0x004, DEVICE_ID = 0x008, DEV_FEAT = 0x010, DEV_FEAT_SEL = 0x014, DRV_FEAT = 0x020,
  DRV_FEAT_SEL = 0x024, QUEUE_SEL = 0x030, QUEUE_NUM_MAX = 0x034, QUEUE_NUM = 0x038, QUEUE_READY = 0x044,
  QUEUE_NOTIFY = 0x050, INT_STATUS = 0x060, INT_ACK = 0x064, STATUS = 0x070, DESC_LO = 0x080, DESC_HI = 0x084,
  DRIVER_LO = 0x090, DRIVER_HI = 0x094, DEVICE_LO = 0x0a0, DEVICE_HI = 0x0a4, CONFIG = 0x100,
};
enum { ACK = 1, DRIVER = 2, DRIVER_OK = 4, FEATURES_OK = 8, NEEDS_RESET = 64 };
enum { F_NEXT = 1, F_WRITE = 2, F_INDIRECT = 4 };
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8 };
#define QN 8

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QN], used_event; };
struct used_elem { uint32_t id, len; };
struct used { uint16_t flags, idx; struct used_elem ring[QN]; uint16_t avail_event; };
struct req { uint32_t type, reserved; uint64_t sector; };

static struct desc descs[QN] __attribute__((aligned(16)));
static struct desc table[4] __attribute__((aligned(16)));
static struct avail av __attribute__((aligned(4)));
static struct used us __attribute__((aligned(4)));
static struct req hdr;
static uint8_t data[1024] __attribute__((aligned(8)));
static volatile uint8_t status;
static uint16_t seen;
static uint64_t blk;
static int failures;

#define EXPECT(cond) do { if (!(cond)) { puts_("FAIL line "); put_dec(__LINE__); puts_(": " #cond "\n"); failures++; } } while (0)

static void fence(void) { __sync_synchronize(); }

static void clear(void *p, unsigned n) { for (unsigned i = 0; i < n; i++) ((volatile uint8_t *)p)[i] = 0; }

/* Device initialization (§3.1.1, §4.2.3): returns the status after FEATURES_OK. */
static uint32_t init(uint64_t base, uint64_t features) {
  R(base, STATUS) = 0;
  R(base, STATUS) = ACK;
  R(base, STATUS) = ACK | DRIVER;
  R(base, DRV_FEAT_SEL) = 0;
  R(base, DRV_FEAT) = (uint32_t)features;
  R(base, DRV_FEAT_SEL) = 1;
  R(base, DRV_FEAT) = (uint32_t)(features >> 32);
  R(base, STATUS) = ACK | DRIVER | FEATURES_OK;
  uint32_t st = R(base, STATUS);
  if (!(st & FEATURES_OK)) return st;
  clear(descs, sizeof descs);
  clear(&av, sizeof av);
  clear(&us, sizeof us);
  seen = 0;
  R(base, QUEUE_SEL) = 0;
  R(base, QUEUE_NUM) = QN;
  R(base, DESC_LO) = (uint32_t)(uintptr_t)descs;
  R(base, DESC_HI) = 0;
  R(base, DRIVER_LO) = (uint32_t)(uintptr_t)&av;
  R(base, DRIVER_HI) = 0;
  R(base, DEVICE_LO) = (uint32_t)(uintptr_t)&us;
  R(base, DEVICE_HI) = 0;
  R(base, QUEUE_READY) = 1;
  R(base, STATUS) = ACK | DRIVER | FEATURES_OK | DRIVER_OK;
  return st;
}

static const uint64_t FEATURES = (1ull << 32) | (1ull << 28) | (1ull << 9); /* VERSION_1, INDIRECT_DESC, FLUSH */

static void set(int i, void *addr, uint32_t len, uint16_t flags, uint16_t next) {
  descs[i].addr = (uint64_t)(uintptr_t)addr;
  descs[i].len = len;
  descs[i].flags = flags;
  descs[i].next = next;
}

/* Publishes head and notifies; returns 1 when a used entry came back. */
static int kick(uint16_t head) {
  av.ring[av.idx % QN] = head;
  fence();
  av.idx++;
  fence();
  R(blk, QUEUE_NOTIFY) = 0;
  fence();
  if (us.idx == seen) return 0;
  seen = us.idx;
  return 1;
}

/* A request of `type` at `sector` with `len` data bytes; returns the status byte (or 0xff). */
static int request(uint32_t type, uint64_t sector, uint32_t len) {
  hdr.type = type;
  hdr.reserved = 0;
  hdr.sector = sector;
  status = 0xee;
  set(0, &hdr, sizeof hdr, F_NEXT, 1);
  if (len) {
    set(1, data, len, (type == T_OUT ? 0 : F_WRITE) | F_NEXT, 2);
    set(2, (void *)&status, 1, F_WRITE, 0);
  } else {
    set(1, (void *)&status, 1, F_WRITE, 0);
  }
  if (!kick(0)) return 0xff;
  return status;
}

/* Resets and re-initializes the device; checks that it is healthy. */
static void reinit(void) {
  uint32_t st = init(blk, FEATURES);
  EXPECT(st & FEATURES_OK);
  EXPECT(!(R(blk, STATUS) & NEEDS_RESET));
  R(blk, INT_ACK) = R(blk, INT_STATUS);
}

/* After a malformed chain: NEEDS_RESET, a configuration change interrupt, nothing used. */
static void expect_broken(const char *what, int used) {
  uint32_t st = R(blk, STATUS);
  uint32_t is = R(blk, INT_STATUS);
  puts_(what);
  puts_(": status=");
  put_hex(st);
  puts_(" interrupt=");
  put_hex(is);
  putch('\n');
  EXPECT(st & NEEDS_RESET);
  EXPECT(is & 2);
  EXPECT(!used);
  EXPECT(request(T_IN, 0, 512) == 0xff); /* a broken device serves nothing */
  reinit();
  EXPECT(request(T_IN, 0, 512) == 0);
}

int main(void) {
  /* Probe: version 2 everywhere; the disk is in the highest slot with a device. */
  blk = 0;
  uint64_t rng = 0;
  for (int i = 7; i >= 0; i--) {
    uint64_t b = SLOT(i);
    EXPECT(R(b, MAGIC) == 0x74726976);
    EXPECT(R(b, VERSION) == 2);
    uint32_t id = R(b, DEVICE_ID);
    if (id == 2 && !blk) blk = b;
    if (id == 4 && !rng) rng = b;
  }
  report("blk_slot", blk ? (blk - SLOT(0)) / 0x1000 : 99);
  report("rng_slot", rng ? (rng - SLOT(0)) / 0x1000 : 99);
  if (!blk) exit(2);

  R(blk, DEV_FEAT_SEL) = 1;
  uint64_t feat = (uint64_t)R(blk, DEV_FEAT) << 32;
  R(blk, DEV_FEAT_SEL) = 0;
  feat |= R(blk, DEV_FEAT);
  int ro = (feat >> 5) & 1;
  report("features", feat);
  EXPECT(feat & (1ull << 32));

  /* FEATURES_OK is refused without VERSION_1 (no legacy interface). */
  EXPECT(!(init(blk, 1ull << 9) & FEATURES_OK));
  reinit();
  R(blk, QUEUE_SEL) = 0;
  report("queue_max", R(blk, QUEUE_NUM_MAX));
  report("capacity", R(blk, CONFIG) | (uint64_t)R(blk, CONFIG + 4) << 32);

  /* Read sector 0. */
  EXPECT(request(T_IN, 0, 512) == 0);
  const char *magic = "VIRTUS-DISK-TEST";
  for (int i = 0; magic[i]; i++) EXPECT(data[i] == (uint8_t)magic[i]);
  EXPECT(us.ring[0].len == 513);
  EXPECT(R(blk, INT_STATUS) & 1);
  uint32_t pending = *(volatile uint32_t *)PLIC_PENDING;
  uint32_t src = 1 + (uint32_t)((blk - SLOT(0)) / 0x1000);
  EXPECT(pending & (1u << src));
  R(blk, INT_ACK) = 1;
  EXPECT(R(blk, INT_STATUS) == 0);

  /* Write sector 1, flush, read it back (a read-only disk answers IOERR and keeps its data). */
  for (int i = 0; i < 512; i++) data[i] = (uint8_t)(i * 3 + 1);
  int w = request(T_OUT, 1, 512);
  report("write_status", w);
  EXPECT(w == (ro ? 1 : 0));
  EXPECT(request(T_FLUSH, 0, 0) == 0);
  clear(data, 512);
  EXPECT(request(T_IN, 1, 512) == 0);
  int same = 1;
  for (int i = 0; i < 512; i++) if (data[i] != (uint8_t)(i * 3 + 1)) same = 0;
  EXPECT(same == !ro);
  /* Beyond the disk: IOERR. */
  EXPECT(request(T_IN, 1ull << 40, 512) == 1);

  /* The ID string. */
  EXPECT(request(T_GET_ID, 0, 20) == 0);
  data[20] = 0;
  puts_("id=");
  puts_((const char *)data);
  putch('\n');

  /* An indirect chain. */
  hdr.type = T_IN;
  hdr.sector = 0;
  table[0] = (struct desc){ (uintptr_t)&hdr, sizeof hdr, F_NEXT, 1 };
  table[1] = (struct desc){ (uintptr_t)data, 512, F_WRITE | F_NEXT, 2 };
  table[2] = (struct desc){ (uintptr_t)&status, 1, F_WRITE, 0 };
  clear(data, 512);
  set(3, table, 3 * sizeof(struct desc), F_INDIRECT, 0);
  EXPECT(kick(3) && status == 0 && data[0] == 'V');

  /* Malformed chains. */
  set(0, (void *)0x1000, 16, 0, 0);
  expect_broken("address outside RAM", kick(0));
  set(0, &hdr, sizeof hdr, F_NEXT, 1);
  set(1, data, 512, F_NEXT, 0);
  expect_broken("loop", kick(0));
  set(0, &hdr, sizeof hdr, F_NEXT, 1);
  set(1, data, 512, F_WRITE | F_NEXT, 2);
  set(2, data + 512, 16, 0, 0);
  expect_broken("readable after writable", kick(0));
  set(0, &hdr, sizeof hdr, F_NEXT, 1);
  set(1, data, 0xffffffffu, F_WRITE, 0);
  expect_broken("huge length", kick(0));
  set(0, table, 24, F_INDIRECT, 0);
  expect_broken("indirect length 24", kick(0));
  table[0] = (struct desc){ (uintptr_t)table, 16, F_INDIRECT, 0 };
  set(0, table, 16, F_INDIRECT, 0);
  expect_broken("nested indirect", kick(0));
  expect_broken("head out of range", kick(200));
  set(0, (void *)(uintptr_t)0xfffffffffffff000ull, 16, 0, 0);
  expect_broken("address at the top of the address space", kick(0));
  set(0, &hdr, 8, F_NEXT, 1); /* a header too short to be a request */
  set(1, (void *)&status, 1, F_WRITE, 0);
  expect_broken("short header", kick(0));

  /* The rng serves random bytes. */
  if (rng) {
    uint64_t keep = blk;
    blk = rng;
    EXPECT(init(rng, 1ull << 32) & FEATURES_OK);
    clear(data, 64);
    set(0, data, 64, F_WRITE, 0);
    EXPECT(kick(0));
    int nonzero = 0;
    for (int i = 0; i < 64; i++) nonzero += data[i] != 0;
    EXPECT(nonzero > 32);
    EXPECT(us.ring[0].len == 64);
    blk = keep;
  }

  report("failures", failures);
  puts_(failures ? "virtio-blk: FAILED\n" : "virtio-blk: ok\n");
  return failures ? 1 : 0;
}
