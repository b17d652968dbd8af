/* A bare-metal program for comparing QEMU command lines on virtus and QEMU's virt board: it
   prints on the UART, finds the virtio-blk disk in the highest slot holding one, reads
   sector 0, writes sector 1, flushes and reads it back, then ends through the test finisher
   (syscon) with exit code 42, or 3 when something failed. Without a disk it says so and ends
   the same way. It drives both virtio-mmio interfaces: the legacy one QEMU 7.2 offers by
   default (virtio 1.2 §4.2.4) and version 2, the only one virtus has (§4.2.2). Output goes
   through the UART only: QEMU's virt board has no HTIF. */
#include <stdint.h>

#define UART ((volatile uint8_t *)0x10000000ul)
#define FINISHER (*(volatile uint32_t *)0x100000ul)
#define SLOT(i) (0x10001000ul + 0x1000ul * (i))
#define R(off) (*(volatile uint32_t *)(blk + (off)))

enum {
  MAGIC = 0x000, VERSION = 0x004, DEVICE_ID = 0x008, DRV_FEAT = 0x020, DRV_FEAT_SEL = 0x024,
  GUEST_PAGE_SIZE = 0x028, QUEUE_SEL = 0x030, QUEUE_NUM = 0x038, QUEUE_ALIGN = 0x03c, QUEUE_PFN = 0x040,
  QUEUE_READY = 0x044, QUEUE_NOTIFY = 0x050, INT_STATUS = 0x060, INT_ACK = 0x064, STATUS = 0x070,
  DESC_LO = 0x080, DESC_HI = 0x084, DRIVER_LO = 0x090, DRIVER_HI = 0x094, DEVICE_LO = 0x0a0, DEVICE_HI = 0x0a4,
};
enum { ACK = 1, DRIVER = 2, DRIVER_OK = 4, FEATURES_OK = 8 };
enum { F_NEXT = 1, F_WRITE = 2 };
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4 };
#define QN 8

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QN], used_event; };
struct used { uint16_t flags, idx; struct { uint32_t id, len; } ring[QN]; uint16_t avail_event; };
/* The legacy layout (§2.7 with QueueAlign 4096): descriptors, available ring, then the used
   ring on the next page. Version 2 takes the same three addresses one by one. */
static struct {
  struct desc desc[QN];
  struct avail avail;
  uint8_t pad[4096 - QN * sizeof(struct desc) - sizeof(struct avail)];
  struct used used;
} ring __attribute__((aligned(4096)));
static struct { uint32_t type, reserved; uint64_t sector; } hdr;
static uint8_t data[512];
static volatile uint8_t status;
static uint64_t blk;

static void putc_(char c) { UART[0] = (uint8_t)c; }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void putd(uint64_t v) {
  char b[24];
  int n = 0;
  do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) putc_(b[--n]);
}
static void finish(int code) {
  FINISHER = 0x3333u | ((uint32_t)code << 16);
  for (;;) {}
}
static void fence(void) { __sync_synchronize(); }

static int request(uint32_t type, uint64_t sector) {
  hdr.type = type;
  hdr.reserved = 0;
  hdr.sector = sector;
  status = 0xee;
  ring.desc[0] = (struct desc){ (uintptr_t)&hdr, sizeof hdr, F_NEXT, 1 };
  if (type == T_FLUSH) {
    ring.desc[1] = (struct desc){ (uintptr_t)&status, 1, F_WRITE, 0 };
  } else {
    ring.desc[1] = (struct desc){ (uintptr_t)data, sizeof data, (uint16_t)((type == T_IN ? F_WRITE : 0) | F_NEXT), 2 };
    ring.desc[2] = (struct desc){ (uintptr_t)&status, 1, F_WRITE, 0 };
  }
  uint16_t seen = ring.used.idx;
  ring.avail.ring[ring.avail.idx % QN] = 0;
  fence();
  ring.avail.idx++;
  fence();
  R(QUEUE_NOTIFY) = 0;
  while (*(volatile uint16_t *)&ring.used.idx == seen) {}
  R(INT_ACK) = R(INT_STATUS);
  return status;
}

int main(void) {
  puts_("hello from the virt board\n");
  int slot = -1;
  for (int i = 7; i >= 0 && slot < 0; i--) {
    blk = SLOT(i);
    if (R(MAGIC) == 0x74726976 && R(DEVICE_ID) == 2) slot = i;
  }
  if (slot < 0) {
    puts_("no disk\n");
    finish(42);
  }
  puts_("disk in slot ");
  putd((uint64_t)slot);
  putc_('\n');
  int legacy = R(VERSION) == 1;
  R(STATUS) = 0;
  R(STATUS) = ACK | DRIVER;
  R(DRV_FEAT_SEL) = 1;
  R(DRV_FEAT) = legacy ? 0 : 1; /* VIRTIO_F_VERSION_1 on the modern interface */
  R(DRV_FEAT_SEL) = 0;
  R(DRV_FEAT) = 0;
  if (!legacy) {
    R(STATUS) = ACK | DRIVER | FEATURES_OK;
    if (!(R(STATUS) & FEATURES_OK)) finish(3);
  }
  R(QUEUE_SEL) = 0;
  R(QUEUE_NUM) = QN;
  if (legacy) {
    R(GUEST_PAGE_SIZE) = 4096;
    R(QUEUE_ALIGN) = 4096;
    R(QUEUE_PFN) = (uint32_t)((uintptr_t)&ring >> 12);
  } else {
    R(DESC_LO) = (uint32_t)(uintptr_t)ring.desc;
    R(DESC_HI) = 0;
    R(DRIVER_LO) = (uint32_t)(uintptr_t)&ring.avail;
    R(DRIVER_HI) = 0;
    R(DEVICE_LO) = (uint32_t)(uintptr_t)&ring.used;
    R(DEVICE_HI) = 0;
    R(QUEUE_READY) = 1;
  }
  R(STATUS) = ACK | DRIVER | (legacy ? 0 : FEATURES_OK) | DRIVER_OK;

  if (request(T_IN, 0)) finish(3);
  puts_("sector 0: ");
  for (int i = 0; i < 16 && data[i] >= 0x20 && data[i] < 0x7f; i++) putc_((char)data[i]);
  putc_('\n');
  for (int i = 0; i < 512; i++) data[i] = (uint8_t)(i * 7 + 3);
  if (request(T_OUT, 1) || request(T_FLUSH, 0)) finish(3);
  for (int i = 0; i < 512; i++) data[i] = 0;
  if (request(T_IN, 1)) finish(3);
  for (int i = 0; i < 512; i++) if (data[i] != (uint8_t)(i * 7 + 3)) finish(3);
  puts_("sector 1 written and read back\n");
  finish(42);
  return 0;
}
