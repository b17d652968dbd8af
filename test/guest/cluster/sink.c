/* A guest for the cluster's drain test: the receiving end of a stream over virtio-net, without
   an IP stack. It prints "sink ready", then takes Ethernet frames of type 0x88b5 from its NIC,
   idling in WFI between them (its virtio-mmio slot's PLIC source wakes it):

     'D' SEQ(4, big-endian) LEN(2) DATA   data: taken when SEQ is the next one expected, and
                                          folded into an FNV-1a 64 hash; any other is dropped
     'E' SEQ(4)                           the end, when SEQ is the next one: prints
                                          "stream SEQ frames BYTES bytes fnv HEX" once

   Every frame is answered to its sender with 'A' NEXT(4): the sequence number it expects next
   (a go-back-N sender resends from there). Exits through HTIF only on a driver failure. */
#include <stdint.h>
#include "test.h"

#define UART ((volatile uint8_t *)0x10000000ul)
#define PLIC 0x0c000000ul
#define SLOT(i) (0x10001000ul + 0x1000ul * (i))
#define R(off) (*(volatile uint32_t *)(net + (off)))
#define QN 16
#define HDR 12
#define BUF 1536

enum { STATUS = 0x070, DEV_ID = 0x008, DRV_FEAT = 0x020, DRV_FEAT_SEL = 0x024, QUEUE_SEL = 0x030, QUEUE_NUM = 0x038,
  QUEUE_READY = 0x044, QUEUE_NOTIFY = 0x050, INT_STATUS = 0x060, INT_ACK = 0x064, DESC_LO = 0x080, DRIVER_LO = 0x090,
  DEVICE_LO = 0x0a0, CONFIG = 0x100 };

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QN], used_event; };
struct used { uint16_t flags, idx; struct { uint32_t id, len; } ring[QN]; uint16_t avail_event; };
struct queue {
  struct desc d[QN] __attribute__((aligned(16)));
  struct avail a __attribute__((aligned(4)));
  struct used u __attribute__((aligned(4)));
  uint16_t last;
};

static struct queue rx, tx;
static uint8_t rxbuf[QN][BUF] __attribute__((aligned(8)));
static uint8_t txbuf[HDR + 64] __attribute__((aligned(8)));
static uint8_t mac[6];
static uint64_t net;
static int irq;

static void uputc(char c) { UART[0] = (uint8_t)c; }
static void uputs(const char *s) { while (*s) uputc(*s++); }
static void udec(uint64_t v) {
  char b[24];
  int n = 0;
  do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) uputc(b[--n]);
}
static void uhex(uint64_t v) { for (int i = 60; i >= 0; i -= 4) uputc("0123456789abcdef"[(v >> i) & 15]); }

static void setup(int q, struct queue *s) {
  R(QUEUE_SEL) = (uint32_t)q;
  R(QUEUE_NUM) = QN;
  R(DESC_LO) = (uint32_t)(uintptr_t)s->d;
  R(DRIVER_LO) = (uint32_t)(uintptr_t)&s->a;
  R(DEVICE_LO) = (uint32_t)(uintptr_t)&s->u;
  R(QUEUE_READY) = 1;
}

static void post_rx(uint16_t i) {
  rx.d[i] = (struct desc){ (uintptr_t)rxbuf[i], BUF, 2, 0 };
  rx.a.ring[rx.a.idx % QN] = i;
  __sync_synchronize();
  rx.a.idx++;
}

static void init(void) {
  int slot = -1;
  for (int i = 0; i < 8 && slot < 0; i++) if (*(volatile uint32_t *)(SLOT(i) + DEV_ID) == 1) slot = i;
  if (slot < 0) { uputs("no virtio-net\n"); exit(2); }
  net = SLOT(slot);
  irq = 1 + slot;
  R(STATUS) = 0;
  R(STATUS) = 1 | 2;
  R(DRV_FEAT_SEL) = 1;
  R(DRV_FEAT) = 1; /* VIRTIO_F_VERSION_1 */
  R(DRV_FEAT_SEL) = 0;
  R(DRV_FEAT) = 1u << 5; /* VIRTIO_NET_F_MAC */
  R(STATUS) = 1 | 2 | 8;
  if (!(R(STATUS) & 8)) { uputs("features refused\n"); exit(3); }
  setup(0, &rx);
  setup(1, &tx);
  for (int i = 0; i < 6; i++) mac[i] = *(volatile uint8_t *)(net + CONFIG + i);
  R(STATUS) = 1 | 2 | 8 | 4;
  for (uint16_t i = 0; i < QN; i++) post_rx(i);
  __sync_synchronize();
  R(QUEUE_NOTIFY) = 0;
}

static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Sends 'A' NEXT to `to`; waits for the device to take the frame. */
static void ack(const uint8_t *to, uint32_t next) {
  for (int i = 0; i < HDR; i++) txbuf[i] = 0;
  uint8_t *f = txbuf + HDR;
  for (int i = 0; i < 6; i++) { f[i] = to[i]; f[6 + i] = mac[i]; }
  f[12] = 0x88; f[13] = 0xb5;
  f[14] = 'A';
  put32(f + 15, next);
  for (int i = 19; i < 60; i++) f[i] = 0;
  tx.d[0] = (struct desc){ (uintptr_t)txbuf, HDR + 60, 0, 0 };
  tx.a.ring[tx.a.idx % QN] = 0;
  __sync_synchronize();
  tx.a.idx++;
  __sync_synchronize();
  R(QUEUE_NOTIFY) = 1;
  while (*(volatile uint16_t *)&tx.u.idx == tx.last) {}
  tx.last++;
}

int main(void) {
  init();
  *(volatile uint32_t *)(PLIC + 4 * irq) = 1;
  *(volatile uint32_t *)(PLIC + 0x2000) = 1u << irq;
  *(volatile uint32_t *)(PLIC + 0x200000) = 0;
  set_csr(mie, 1 << 11);
  uputs("sink ready\n");
  uint32_t next = 0;
  uint64_t bytes = 0, hash = 0xcbf29ce484222325ull;
  int ended = 0;
  for (;;) {
    R(INT_ACK) = R(INT_STATUS);
    uint32_t claim = *(volatile uint32_t *)(PLIC + 0x200004);
    if (claim) *(volatile uint32_t *)(PLIC + 0x200004) = claim;
    if (*(volatile uint16_t *)&rx.u.idx == rx.last) {
      asm volatile("wfi");
      continue;
    }
    while (*(volatile uint16_t *)&rx.u.idx != rx.last) {
      __sync_synchronize();
      uint16_t id = (uint16_t)rx.u.ring[rx.last % QN].id;
      uint32_t len = rx.u.ring[rx.last % QN].len;
      rx.last++;
      const uint8_t *f = rxbuf[id] + HDR;
      if (len >= HDR + 19 && f[12] == 0x88 && f[13] == 0xb5 && (f[14] == 'D' || f[14] == 'E')) {
        uint32_t seq = get32(f + 15);
        if (f[14] == 'D' && len >= HDR + 21) {
          uint32_t n = (uint32_t)f[19] << 8 | f[20];
          if (seq == next && !ended && HDR + 21 + n <= len) {
            for (uint32_t i = 0; i < n; i++) hash = (hash ^ f[21 + i]) * 0x100000001b3ull;
            bytes += n;
            next++;
          }
        } else if (f[14] == 'E' && seq == next && !ended) {
          ended = 1;
          next++;
          uputs("stream ");
          udec(seq);
          uputs(" frames ");
          udec(bytes);
          uputs(" bytes fnv ");
          uhex(hash);
          uputc('\n');
        }
        ack(f + 6, next);
      }
      post_rx(id);
    }
    __sync_synchronize();
    R(QUEUE_NOTIFY) = 0;
  }
}
