/* Guest fuzzer: random reads and writes of random widths (1, 2, 4, 8 bytes, sometimes
   misaligned) at random offsets of every device window of the virt board (MROM, syscon, RTC,
   CLINT, PLIC, UART, the eight virtio-mmio slots) and just outside them; HTIF commands with
   random syscall blocks; now and then a WFI with a CLINT timer armed. Runs in M-mode with
   interrupts masked; a faulting access is skipped by the trap handler. Never writes the
   syscon's power-off or reboot commands (fuzz.h). */
#include <stdint.h>
#include "test.h"
#include "fuzz.h"

struct win { uint64_t base, size, hot; };

/* Each window with the span where its registers are (offsets there are picked more often). */
static const struct win WINS[] = {
  { MROM, 0xf000, 0x100 }, { SYSCON, 0x1000, 0x10 }, { RTC, 0x1000, 0x20 }, { CLINT, 0x10000, 0x10 },
  { PLIC, 0x600000, 0x200 }, { UART, 0x100, 8 },
  { VIRTIO(0), 0x1000, 0x110 }, { VIRTIO(1), 0x1000, 0x110 }, { VIRTIO(2), 0x1000, 0x110 }, { VIRTIO(3), 0x1000, 0x110 },
  { VIRTIO(4), 0x1000, 0x110 }, { VIRTIO(5), 0x1000, 0x110 }, { VIRTIO(6), 0x1000, 0x110 }, { VIRTIO(7), 0x1000, 0x110 },
};
#define N_WINS (sizeof WINS / sizeof WINS[0])

uint64_t fuzz_traps;

/* A faulting access (outside a window, or refused by the bus) is skipped. */
void __attribute__((interrupt("machine"), aligned(4))) _default_trap(void) {
  uint64_t cause = read_csr(mcause);
  if ((int64_t)cause < 0) return;
  uint64_t pc = read_csr(mepc);
  uint16_t insn = *(volatile uint16_t *)pc;
  write_csr(mepc, pc + ((insn & 3) == 3 ? 4 : 2));
  fuzz_traps++;
}

/* Offsets where the CLINT and PLIC keep their registers. */
static uint64_t clint_offset(void) {
  switch (below(4)) {
    case 0: return below(16);
    case 1: return 0x4000 + below(16);
    case 2: return 0xbff8 + below(8);
    default: return below(0x10000);
  }
}

static uint64_t plic_offset(void) {
  uint64_t ctx = below(4);
  switch (below(5)) {
    case 0: return below(0x200);
    case 1: return 0x1000 + below(0x10);
    case 2: return 0x2000 + 0x80 * ctx + below(0x10);
    case 3: return 0x200000 + 0x1000 * ctx + below(8);
    default: return below(0x600000);
  }
}

static volatile uint64_t syscall_block[8] __attribute__((aligned(64)));

/* HTIF (htif.ts): a syscall block with random fields (a write of random length from a random
   address), a console character, or a command for a device that does not exist; never the
   odd payload of device 0, which ends the run. */
static void htif_op(void) {
  uint64_t cmd;
  switch (below(3)) {
    case 0:
      syscall_block[0] = one_in(2) ? 64 : value();
      syscall_block[1] = below(4);
      syscall_block[2] = one_in(2) ? RAM_BASE + below(64 << 20) : value();
      syscall_block[3] = one_in(2) ? below(4096) : value();
      cmd = one_in(4) ? (value() & ~1ull & 0xffffffffffffull) : (uint64_t)(uintptr_t)syscall_block;
      break;
    case 1:
      cmd = (1ull << 56) | (1ull << 48) | (below(95) + 32);
      break;
    default:
      cmd = ((2 + below(254)) << 56) | (value() & 0xffffffffffffffull);
      break;
  }
  tohost = cmd;
  while (tohost) {}
}

/* A WFI woken by the CLINT timer a few ticks ahead (or at once: mtime may be anything). */
static void wfi_op(void) {
  uint64_t now = *(volatile uint64_t *)(CLINT + 0xbff8);
  *(volatile uint64_t *)(CLINT + 0x4000) = now + 1 + below(1000);
  set_csr(mie, 1 << 7);
  asm volatile("wfi");
  clear_csr(mie, 1 << 7);
}

static void access(void) {
  const struct win *w = &WINS[below(N_WINS)];
  uint64_t off;
  if (w->base == CLINT) off = clint_offset();
  else if (w->base == PLIC) off = plic_offset();
  else off = one_in(4) ? below(w->size) : below(w->hot);
  int width = 1 << below(4);
  if (!one_in(16)) off &= ~(uint64_t)(width - 1);
  uint64_t a = w->base + off;
  if (one_in(32)) a = one_in(2) ? w->base + w->size - below(8) : w->base - 1 - below(8);
  if (one_in(2)) {
    mmio_read(a, width);
    return;
  }
  uint64_t v = value();
  if (a < SYSCON + 8 && a + width > SYSCON) v &= 0x0101010101010101ull; /* no 16 bits of it is a command */
  if (a >= VIRTIO(0) && a < VIRTIO(8) && ring_register(a & 0xfff, width)) v = away_from(v, RAM_BASE + (64ul << 20));
  mmio_write(a, width, v);
}

int main(void) {
  seed_rng();
  for (;;) {
    uint64_t r = below(256);
    if (r == 0) htif_op();
    else if (r == 1) wfi_op();
    else access();
    fuzz_ops++;
  }
}
