/**
 * The SiFive test finisher ("sifive,test0"), which QEMU's virt board puts at 0x0010_0000 and
 * also declares as a syscon so Linux's syscon-poweroff and syscon-reboot drivers use it.
 * A 32-bit write to offset 0 is a command in bits 15:0 with an argument in bits 31:16:
 *
 *   0x5555           FINISHER_PASS: power off (exit code 0)
 *   0x3333 | c << 16 FINISHER_FAIL: power off reporting failure with code c
 *   0x7777           FINISHER_RESET: reboot
 *
 * Other values are ignored; reads return 0. The device acts only through its host callbacks.
 */
import type { Device } from '../device.ts';
import { StateReader, type Stateful } from '../state.ts';

export const SYSCON_SIZE = 0x1000;
export const FINISHER_FAIL = 0x3333;
export const FINISHER_PASS = 0x5555;
export const FINISHER_RESET = 0x7777;

/** What the guest asked of the machine. */
export interface SysconHost {
  /** Power off; `failed` is true for FINISHER_FAIL, whose code the guest chose (0..65535). */
  poweroff(code: number, failed: boolean): void;
  reboot(): void;
}

/** The finisher has no state; saved state is an empty object. */
export type SysconState = Record<string, never>;

export class Syscon implements Device, Stateful<SysconState> {
  readonly name = 'syscon';
  readonly size = SYSCON_SIZE;

  constructor(private readonly host: SysconHost) {}

  read(_offset: number, _width: 1 | 2 | 4): number {
    return 0;
  }

  write(offset: number, width: 1 | 2 | 4, value: number): void {
    // The register is 32 bits wide; a 16-bit store reaches the command half alone.
    if (offset !== 0 || width === 1) return;
    const cmd = value & 0xffff;
    const arg = width === 4 ? value >>> 16 : 0;
    if (cmd === FINISHER_PASS) this.host.poweroff(0, false);
    else if (cmd === FINISHER_FAIL) this.host.poweroff(arg, true);
    else if (cmd === FINISHER_RESET) this.host.reboot();
  }

  save(): SysconState {
    return {};
  }

  restore(state: unknown): void {
    new StateReader('syscon', state, []);
  }
}
