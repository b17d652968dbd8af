/**
 * HTIF (src/devices/htif/htif.ts) against what a guest or an ELF may hand it: a syscall block
 * asking to write 32 MiB (a write passes on at most HTIF_WRITE_MAX bytes and says so, as
 * write(2) may), blocks and buffers outside RAM, and a `fromhost` symbol outside RAM (refused
 * when the program is loaded, not at its first output).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Htif, HTIF_WRITE_MAX } from '../../src/devices/htif/htif.ts';
import { isVirtusError } from '../../src/util/errors.ts';
import { makeRam } from '../virtio/driver.ts';

const MiB = 1 << 20;

function setup() {
  const ram = makeRam(64 * MiB);
  const tohost = ram.base + 0x1000;
  const fromhost = ram.base + 0x1040;
  const out: Uint8Array[] = [];
  let exit: number | null = null;
  const htif = new Htif(ram, tohost, fromhost, { output: (b) => void out.push(b.slice()), exit: (c) => void (exit = c) });
  /** Stores `cmd` to tohost as a guest would (a 64-bit store). */
  const store = (cmd: bigint) => {
    ram.writeU64(tohost, cmd);
    htif.onStore(tohost, 8);
  };
  return { ram, out, store, fromhost, exit: () => exit };
}

describe('HTIF', () => {
  it('a syscall write of 32 MiB passes on a bounded piece and returns its length', () => {
    const { ram, out, store } = setup();
    const block = ram.base + 0x2000;
    const buf = ram.base + 0x10_0000;
    ram.load(buf, new Uint8Array(32 * MiB).fill(0x41));
    for (const [i, v] of [64n, 1n, BigInt(buf), BigInt(32 * MiB)].entries()) ram.writeU64(block + 8 * i, v);
    store(BigInt(block));
    assert.equal(out.reduce((n, b) => n + b.length, 0), HTIF_WRITE_MAX);
    assert.equal(ram.readU64(block), BigInt(HTIF_WRITE_MAX), 'the return value says how much was written');
  });

  it('blocks and buffers outside RAM get -ENOSYS, a console character goes out, exit ends', () => {
    const { ram, out, store, exit } = setup();
    const block = ram.base + 0x2000;
    for (const [i, v] of [64n, 1n, 0x1000n, 16n].entries()) ram.writeU64(block + 8 * i, v);
    store(BigInt(block));
    assert.equal(ram.readU64(block), BigInt.asUintN(64, -38n));
    store(BigInt(ram.end - 8)); // a block running off the end of RAM is ignored
    store((1n << 56n) | (1n << 48n) | 0x5an);
    assert.deepEqual(out, [Uint8Array.of(0x5a)]);
    store((7n << 1n) | 1n);
    assert.equal(exit(), 7);
  });

  it('refuses a fromhost outside RAM when the program is loaded', () => {
    const ram = makeRam(MiB);
    const host = { output: () => {}, exit: () => {} };
    for (const fromhost of [0x1000, ram.end - 4, ram.end]) {
      assert.throws(() => new Htif(ram, ram.base, fromhost, host), (e) => isVirtusError(e, 'HTIF_RANGE') && /fromhost at 0x[0-9a-f]+ is outside RAM/.test(e.message));
    }
  });
});
