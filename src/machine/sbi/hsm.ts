/**
 * The Hart State Management extension of the built-in SBI (SBI v2.0 ch. 9): which harts run,
 * and starting, stopping and suspending them. Hart 0 starts the kernel; every other hart waits
 * STOPPED until the kernel's hart_start (Linux brings its secondary harts up this way, and CPU
 * hotplug takes them down with hart_stop and up again).
 *
 * The machine runs its harts one at a time (machine.ts), so a start or stop takes effect
 * before the call returns: the states START_PENDING and STOP_PENDING are never observed.
 * A stopped hart is "parked" in the machine: never scheduled, and not woken by interrupts.
 */
import { MSTATUS_SIE, MSTATUS_SPIE } from '../../cpu/csr-numbers.ts';
import { PRIV_S, S, type Hart } from '../../cpu/hart.ts';
import { StateReader } from '../../devices/state.ts';
import { ERR } from './sbi-ids.ts';

/** hart_get_status values (SBI 9.1, table 27). */
export const HART_STARTED = 0;
export const HART_STOPPED = 1;
export const HART_SUSPENDED = 4;

/** hart_suspend types (SBI 9.4, table 28): the default retentive suspend is the one implemented. */
const SUSPEND_RETENTIVE = 0;
const SUSPEND_NON_RETENTIVE = 0x8000_0000;

/** What HSM needs from the machine. */
export interface HsmPlatform {
  harts: Hart[];
  /** The machine's per-hart "stopped" flags (Machine.parked). */
  parked: Uint8Array;
  /** True when [pa, pa + 4) is RAM (a start address must be). */
  inRam(pa: number): boolean;
  /** Puts a hart in S-mode at `entry` with a0 = its id, a1 = `a1` (the firmware's hand-over). */
  enterS(h: Hart, entry: number, a1: number): void;
}

export class Hsm {
  /** Harts that entered a retentive suspend (SUSPENDED while they still wait in WFI). */
  private readonly suspended: Uint8Array;

  constructor(private readonly p: HsmPlatform) {
    this.suspended = new Uint8Array(p.harts.length);
  }

  /** At boot: hart 0 runs, the others wait STOPPED for hart_start. */
  boot(): void {
    this.p.parked.fill(1);
    this.p.parked[0] = 0;
    this.suspended.fill(0);
  }

  /** Every hart runs (firmware or bare boots: the guest's own M-mode code holds harts back). */
  releaseAll(): void {
    this.p.parked.fill(0);
    this.suspended.fill(0);
  }

  /** hart_get_status of hart `i`. */
  status(i: number): number {
    if (this.p.parked[i]) return HART_STOPPED;
    if (this.suspended[i]) {
      if (this.p.harts[i]!.s[S.wfi]) return HART_SUSPENDED;
      this.suspended[i] = 0; // it woke up and ran since
    }
    return HART_STARTED;
  }

  /** Dispatches HSM function `fid` for hart `h`; returns [error, value]. */
  call(h: Hart, fid: number, arg: (i: number) => number): [number, number] {
    const harts = this.p.harts;
    switch (fid) {
      case 0: { // hart_start(hartid, start_addr, opaque)
        const t = harts[arg(0)];
        if (!t) return [ERR.INVALID_PARAM, 0];
        // A started hart is ALREADY_AVAILABLE; a suspended one cannot be started either (as
        // OpenSBI answers: INVALID_PARAM).
        if (!this.p.parked[t.id]) return [this.status(t.id) === HART_SUSPENDED ? ERR.INVALID_PARAM : ERR.ALREADY_AVAILABLE, 0];
        if (!this.p.inRam(arg(1))) return [ERR.INVALID_ADDRESS, 0];
        this.p.enterS(t, arg(1), arg(2));
        this.p.parked[t.id] = 0;
        this.suspended[t.id] = 0;
        return [ERR.SUCCESS, 0];
      }
      case 1: // hart_stop: the calling hart stops; it ends its slice here (the ecall trapped)
        if (harts.every((t) => t === h || this.p.parked[t.id])) return [ERR.FAILED, 0];
        this.p.parked[h.id] = 1;
        h.s[S.resValid] = 0;
        return [ERR.SUCCESS, 0];
      case 2: // hart_get_status(hartid)
        return harts[arg(0)] ? [ERR.SUCCESS, this.status(arg(0))] : [ERR.INVALID_PARAM, 0];
      case 3: { // hart_suspend(suspend_type, resume_addr, opaque)
        const type = arg(0);
        if (type === SUSPEND_RETENTIVE) {
          // Behaves like WFI (SBI 9.4): the hart resumes after the ecall on an interrupt.
          h.s[S.wfi] = 1;
          this.suspended[h.id] = 1;
          return [ERR.SUCCESS, 0];
        }
        // Non-retentive suspend and the platform-specific types are valid but not implemented;
        // the reserved ranges are invalid (table 28).
        const valid = type === SUSPEND_NON_RETENTIVE || (type >= 0x1000_0000 && type <= 0x7fff_ffff) || (type >= 0x9000_0000 && type <= 0xffff_ffff);
        return [valid ? ERR.NOT_SUPPORTED : ERR.INVALID_PARAM, 0];
      }
      default:
        return [ERR.NOT_SUPPORTED, 0];
    }
  }

  /** Each hart's status as plain data. */
  save(): number[] {
    return this.p.harts.map((_, i) => this.status(i));
  }

  /** Restores the statuses from untrusted data (absent in snapshots of one-hart machines: hart 0 runs). */
  restore(r: StateReader, state: unknown): void {
    if (state === undefined) {
      this.releaseAll();
      return;
    }
    const n = this.p.harts.length;
    if (!Array.isArray(state) || state.length !== n) r.fail(`hsm must be an array of ${n} hart states`);
    (state as unknown[]).forEach((v, i) => {
      if (v !== HART_STARTED && v !== HART_STOPPED && v !== HART_SUSPENDED) r.fail(`hsm[${i}] must be 0 (started), 1 (stopped) or 4 (suspended)`);
    });
    (state as number[]).forEach((v, i) => {
      this.p.parked[i] = v === HART_STOPPED ? 1 : 0;
      this.suspended[i] = v === HART_SUSPENDED ? 1 : 0;
    });
  }
}

/**
 * The state hart_start leaves a hart in (SBI 9.2): S-mode at `entry`, satp = 0, sstatus.SIE =
 * 0, a0 = hartid, a1 = opaque; other registers undefined. The firmware's M-mode settings
 * (delegation, counters, PMP) are the boot's; the retired-instruction count carries on.
 */
export function startInS(h: Hart, entry: number, a1: number): void {
  h.set('satp', 0, 0);
  h.set('mstatus', h.get('mstatus') & ~(MSTATUS_SIE | MSTATUS_SPIE), h.getHi('mstatus'));
  h.s[S.priv] = PRIV_S;
  h.s[S.wfi] = 0;
  h.s[S.resValid] = 0;
  h.setPcNum(entry);
  h.setX(10, BigInt(h.id));
  h.setX(11, BigInt(a1));
  h.stateChanged();
}
