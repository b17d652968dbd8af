/**
 * HTIF, the host-target interface of Spike and the RISC-V test programs: the guest writes a
 * command to the `tohost` symbol in RAM and the host answers through `fromhost`. Commands
 * (device << 56 | command << 48 | payload):
 *   device 0, command 0, odd payload v:  exit with code v >> 1 (0 = pass)
 *   device 0, command 0, even payload:   address of a syscall block; `write` (64) to fd 1/2 is served
 *   device 1, command 1:                 print the character in the low byte
 * A 32-bit guest writes tohost as two halves; like QEMU, the command is taken when the high
 * half is written (a 64-bit store writes both).
 */
import type { GuestMemory } from '../memory.ts';
import { VirtusError } from '../../util/errors.ts';

const SYS_WRITE = 64n;
const ENOSYS = 38n;
/**
 * The most bytes one `write` syscall passes on; it returns how many, as write(2) may, so a
 * guest cannot make the monitor copy its whole RAM at once.
 */
export const HTIF_WRITE_MAX = 64 << 10;

export interface HtifHost {
  /** Guest output for the console (bytes). */
  output(bytes: Uint8Array): void;
  /** The guest asked to exit with `code`. */
  exit(code: number): void;
}

export class Htif {
  /** Throws VirtusError('HTIF_RANGE') when `fromhost` lies outside RAM (the ELF's symbol is bad). */
  constructor(
    private readonly ram: GuestMemory,
    readonly tohost: number,
    readonly fromhost: number | null,
    private readonly host: HtifHost,
  ) {
    if (fromhost !== null && !ram.contains(fromhost, 8)) {
      throw new VirtusError('HTIF_RANGE', `fromhost at 0x${fromhost.toString(16)} is outside RAM`);
    }
  }

  /** Called after a store to the watched page; acts when the store reached tohost's high half. */
  onStore(pa: number, size: number): void {
    if (!(pa < this.tohost + 8 && pa + size > this.tohost + 4)) return;
    const cmd = this.ram.readU64(this.tohost);
    if (cmd === 0n) return;
    this.ram.writeU64(this.tohost, 0n);
    const device = Number(cmd >> 56n);
    const command = Number((cmd >> 48n) & 0xffn);
    const payload = cmd & 0xffff_ffff_ffffn;
    if (device === 0 && command === 0) {
      if (payload & 1n) {
        this.host.exit(Number(payload >> 1n));
        return;
      }
      this.syscall(Number(payload));
      this.respond(1n);
    } else if (device === 1 && command === 1) {
      this.host.output(new Uint8Array([Number(payload & 0xffn)]));
      this.respond((cmd >> 48n << 48n) | 0x100n | (payload & 0xffn));
    }
  }

  private syscall(block: number): void {
    if (!this.ram.contains(block, 64)) return;
    const which = this.ram.readU64(block);
    const fd = this.ram.readU64(block + 8);
    const buf = Number(this.ram.readU64(block + 16));
    const len = Number(this.ram.readU64(block + 24));
    let ret = -ENOSYS;
    if (which === SYS_WRITE && (fd === 1n || fd === 2n) && this.ram.contains(buf, len)) {
      const n = Math.min(len, HTIF_WRITE_MAX);
      this.host.output(this.ram.read(buf, n));
      ret = BigInt(n);
    }
    this.ram.writeU64(block, ret);
  }

  private respond(v: bigint): void {
    if (this.fromhost !== null) this.ram.writeU64(this.fromhost, v);
  }
}
