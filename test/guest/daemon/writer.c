/* A guest for the daemon's tests: a virtio-blk writer driven from the UART console.
   It prints "writer ready", then reads one command line from the console, idling in WFI
   between keys (PLIC source 10 wakes it; the monitor costs no host CPU meanwhile):

     W TAG N    writes sectors 1..N (N = 0: without end) with "TAG sector K" padded to
                512 bytes, flushes after each (VIRTIO_BLK_T_FLUSH) and prints "synced TAG K"
                once the flush completed; then prints "done TAG" and idles.
     R K        reads sector K and prints "sector K: <text>".
     S          spins forever (a guest that never idles).

   Sector 0 is never written. Exits through HTIF only on a driver failure. */
#include <stdint.h>
#include "test.h"

#define UART ((volatile uint8_t *)0x10000000ul)
#define PLIC 0x0c000000ul
#define SLOT(i) (0x10001000ul + 0x1000ul * (i))
#define R(off) (*(volatile uint32_t *)(blk + (off)))
#define QN 8

enum { STATUS = 0x070, DEV_ID = 0x008, DRV_FEAT = 0x020, DRV_FEAT_SEL = 0x024, QUEUE_SEL = 0x030, QUEUE_NUM = 0x038,
  QUEUE_READY = 0x044, QUEUE_NOTIFY = 0x050, INT_STATUS = 0x060, INT_ACK = 0x064, DESC_LO = 0x080, DRIVER_LO = 0x090, DEVICE_LO = 0x0a0 };
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4 };

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QN], used_event; };
struct used { uint16_t flags, idx; struct { uint32_t id, len; } ring[QN]; uint16_t avail_event; };
struct req { uint32_t type, reserved; uint64_t sector; };

static struct desc descs[QN] __attribute__((aligned(16)));
static struct avail av __attribute__((aligned(4)));
static struct used us __attribute__((aligned(4)));
static struct req hdr;
static uint8_t sector[512] __attribute__((aligned(8)));
static volatile uint8_t status;
static uint64_t blk;

static void uputc(char c) { UART[0] = (uint8_t)c; }
static void uputs(const char *s) { while (*s) uputc(*s++); }
static void udec(uint64_t v) {
  char b[24];
  int n = 0;
  do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) uputc(b[--n]);
}

/* Waits for a key: WFI until the UART's interrupt is pending at the PLIC (virt: source 10). */
static char ugetc(void) {
  for (;;) {
    if (UART[5] & 1) return (char)UART[0];
    asm volatile("wfi");
    uint32_t claim = *(volatile uint32_t *)(PLIC + 0x200004);
    if (claim) *(volatile uint32_t *)(PLIC + 0x200004) = claim;
  }
}

static int getline_(char *buf, int max) {
  int n = 0;
  for (;;) {
    char c = ugetc();
    if (c == '\r' || c == '\n') {
      if (n) break;
      continue;
    }
    if (n < max - 1) buf[n++] = c;
  }
  buf[n] = 0;
  return n;
}

static int request(uint32_t type, uint64_t sec, int len) {
  hdr.type = type;
  hdr.reserved = 0;
  hdr.sector = sec;
  status = 0xee;
  descs[0] = (struct desc){ (uintptr_t)&hdr, sizeof hdr, 1, 1 };
  if (len) {
    descs[1] = (struct desc){ (uintptr_t)sector, (uint32_t)len, (uint16_t)((type == T_OUT ? 0 : 2) | 1), 2 };
    descs[2] = (struct desc){ (uintptr_t)&status, 1, 2, 0 };
  } else {
    descs[1] = (struct desc){ (uintptr_t)&status, 1, 2, 0 };
  }
  uint16_t seen = us.idx;
  av.ring[av.idx % QN] = 0;
  __sync_synchronize();
  av.idx++;
  __sync_synchronize();
  R(QUEUE_NOTIFY) = 0;
  while (*(volatile uint16_t *)&us.idx == seen) {}
  R(INT_ACK) = R(INT_STATUS);
  return status;
}

static void init(void) {
  for (int i = 7; i >= 0 && !blk; i--) if (*(volatile uint32_t *)(SLOT(i) + DEV_ID) == 2) blk = SLOT(i);
  if (!blk) { uputs("no virtio-blk\n"); exit(2); }
  R(STATUS) = 0;
  R(STATUS) = 1 | 2;
  R(DRV_FEAT_SEL) = 1;
  R(DRV_FEAT) = 1; /* VIRTIO_F_VERSION_1 */
  R(DRV_FEAT_SEL) = 0;
  R(DRV_FEAT) = 1u << 9; /* VIRTIO_BLK_F_FLUSH */
  R(STATUS) = 1 | 2 | 8;
  if (!(R(STATUS) & 8)) { uputs("features refused\n"); exit(3); }
  R(QUEUE_SEL) = 0;
  R(QUEUE_NUM) = QN;
  R(DESC_LO) = (uint32_t)(uintptr_t)descs;
  R(DRIVER_LO) = (uint32_t)(uintptr_t)&av;
  R(DEVICE_LO) = (uint32_t)(uintptr_t)&us;
  R(QUEUE_READY) = 1;
  R(STATUS) = 1 | 2 | 8 | 4;
}

static uint64_t number(const char **p) {
  uint64_t v = 0;
  while (**p == ' ') (*p)++;
  while (**p >= '0' && **p <= '9') v = v * 10 + (uint64_t)(*(*p)++ - '0');
  return v;
}

int main(void) {
  /* UART receive interrupt -> PLIC source 10 -> M-mode external interrupt (MIE stays off: WFI only wakes). */
  UART[1] = 1;
  *(volatile uint32_t *)(PLIC + 4 * 10) = 1;
  *(volatile uint32_t *)(PLIC + 0x2000) = 1u << 10;
  *(volatile uint32_t *)(PLIC + 0x200000) = 0;
  set_csr(mie, 1 << 11);
  init();
  uputs("writer ready\n");
  char line[80];
  for (;;) {
    getline_(line, sizeof line);
    const char *p = line + 1;
    if (line[0] == 'S') {
      uputs("spinning\n");
      for (volatile uint64_t i = 0;; i++) {}
    } else if (line[0] == 'R') {
      uint64_t k = number(&p);
      for (int i = 0; i < 512; i++) sector[i] = 0;
      if (request(T_IN, k, 512)) { uputs("read failed\n"); exit(4); }
      sector[80] = 0;
      uputs("sector ");
      udec(k);
      uputs(": ");
      uputs((const char *)sector);
      uputc('\n');
    } else if (line[0] == 'W') {
      while (*p == ' ') p++;
      char tag[40];
      int t = 0;
      while (*p && *p != ' ' && t < 39) tag[t++] = *p++;
      tag[t] = 0;
      uint64_t n = number(&p);
      for (uint64_t k = 1; n == 0 || k <= n; k++) {
        int at = 0;
        for (int i = 0; tag[i]; i++) sector[at++] = (uint8_t)tag[i];
        const char *s = " sector ";
        while (*s) sector[at++] = (uint8_t)*s++;
        char d[24];
        int dn = 0;
        uint64_t v = k;
        do { d[dn++] = (char)('0' + v % 10); v /= 10; } while (v);
        while (dn) sector[at++] = (uint8_t)d[--dn];
        while (at < 512) sector[at++] = 0;
        if (request(T_OUT, k, 512)) { uputs("write failed\n"); exit(5); }
        if (request(T_FLUSH, 0, 0)) { uputs("flush failed\n"); exit(6); }
        uputs("synced ");
        uputs(tag);
        uputc(' ');
        udec(k);
        uputc('\n');
      }
      uputs("done ");
      uputs(tag);
      uputc('\n');
    } else {
      uputs("unknown command\n");
    }
  }
}
