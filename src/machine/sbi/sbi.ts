/**
 * The built-in SBI firmware: virtus itself plays the M-mode firmware, so a guest kernel's ecalls
 * from S-mode are hypercalls handled here in TypeScript (RISC-V SBI specification v2.0). This is
 * the paravirtual interface between the guest kernel and the monitor; every call is counted by
 * extension and function (see stats()).
 *
 * Implemented: Base, TIME, IPI, RFENCE, HSM (hsm.ts), SRST, DBCN and the legacy extensions
 * 0x00-0x08, for every hart of the machine.
 */
import { MIP_SSIP, MIP_STIP, MSTATUS_MPP } from '../../cpu/csr-numbers.ts';
import { PRIV_S, S, type Hart } from '../../cpu/hart.ts';
import { PAGE_SIZE } from '../../cpu/layout.ts';
import { Cause } from '../../cpu/trap.ts';
import { StateReader } from '../../devices/state.ts';
import { Hsm, startInS } from './hsm.ts';
import { EID, ERR, extensionName, functionName, SPEC_VERSION, IMPL_ID, IMPL_VERSION } from './sbi-ids.ts';

/**
 * How the firmware acts on a hart other than the caller (or on the caller outside its own
 * trap): directly when one thread runs every hart (directHarts), through the hart's request
 * ring when harts run in host threads (machine/hart-threads.ts), where a fence is done by the
 * target and the caller's SBI call returns only once the target has acknowledged it.
 */
export interface RemoteHarts {
  /** Sets software-driven pending bits (SSIP for an IPI, STIP for a firmware timer) in `t`'s mip. */
  raise(t: Hart, bits: number): void;
  /** SFENCE.VMA on `t` over [start, start + size) (size 0: everything). */
  sfenceVma(t: Hart, start: number, size: number): void;
  /** FENCE.I on `t`. */
  fenceI(t: Hart): void;
  /** `t` was started (HSM hart_start) and must look at its state again. */
  started(t: Hart): void;
}

/** One thread runs every hart: the firmware acts on the target's state at once. */
export const directHarts: RemoteHarts = {
  raise: (t, bits) => {
    t.s[S.mip] = t.s[S.mip]! | bits;
  },
  sfenceVma: (t, start, size) => sfenceVma(t, start, size),
  fenceI: (t) => fenceI(t),
  started: () => {},
};

/** What the firmware needs from the machine it runs on. */
export interface SbiPlatform {
  harts: Hart[];
  /** The machine's per-hart "stopped" flags (HSM parks harts there). */
  parked: Uint8Array;
  /** How to reach other harts (default directHarts). */
  remote?(): RemoteHarts;
  /** Current machine time in ticks. */
  now(): number;
  /** Guest RAM access for the debug console. */
  readRam(pa: number, len: number): Uint8Array | null;
  writeRam(pa: number, data: Uint8Array): boolean;
  /** Console output and input (input returns up to `max` bytes, possibly none). */
  consoleWrite(bytes: Uint8Array): void;
  consoleRead(max: number): Uint8Array;
  /** System reset: shutdown, cold or warm reboot; `reason` 0 = none, 1 = system failure. */
  reset(kind: 'shutdown' | 'reboot', reason: number): void;
  /** A guest error the firmware cannot recover from. */
  fatal(message: string): void;
}

/** The most pages a remote_sfence_vma flushes one by one; a larger range flushes everything. */
const RFENCE_PAGES = 64;

/**
 * A remote FENCE.I (SBI 8.1). The target needs nothing: its decode cache checks each
 * instruction's bits, and every store into translated code has already dropped that code in
 * every hart's engine (machine.ts codeWritten).
 */
function fenceI(_t: Hart): void {}

/**
 * A remote SFENCE.VMA over [start, start + size) (SBI 8.2; all ASIDs: the TLB has none), done
 * on the target before the call returns: one hart runs at a time, so it is not running now.
 * A size of 0 or beyond RFENCE_PAGES pages, or all ones, flushes the whole TLB.
 */
function sfenceVma(t: Hart, start: number, size: number): void {
  if (size === 0 || size > RFENCE_PAGES * PAGE_SIZE) {
    t.flushTlb();
    return;
  }
  for (let va = start - (start % PAGE_SIZE); va < start + size; va += PAGE_SIZE) {
    t.flushTlbPage(va % 0x1_0000_0000 | 0, Math.floor(va / 0x1_0000_0000) | 0);
  }
}

const SUPPORTED: ReadonlySet<number> = new Set([EID.BASE, EID.TIME, EID.IPI, EID.RFENCE, EID.HSM, EID.SRST, EID.DBCN]);
/**
 * The most bytes one DBCN console_write passes on (SBI 12.1: it returns how many it wrote,
 * and the caller writes the rest again), so a call never copies more than this of guest RAM.
 */
export const DBCN_WRITE_MAX = 64 << 10;

export class SbiFirmware {
  /**
   * Calls by "extension.function". Extensions and functions that do not exist count under
   * one name each, so the guest cannot make the map grow with the IDs it invents.
   */
  readonly calls = new Map<string, number>();
  /** Per-hart supervisor timer deadline (ticks), Infinity when none is set. */
  private readonly timers: number[];
  /** Hart state management: which harts run. */
  readonly hsm: Hsm;

  constructor(private readonly p: SbiPlatform) {
    this.timers = p.harts.map(() => Infinity);
    this.hsm = new Hsm({
      harts: p.harts,
      parked: p.parked,
      inRam: (pa) => p.readRam(pa, 4) !== null,
      enterS: (h, entry, a1) => {
        startInS(h, entry, a1);
        this.remote().started(h);
      },
    });
  }

  /**
   * Puts a hart in the state firmware leaves it in before jumping to the kernel: delegations
   * as OpenSBI sets them (every exception S-mode can handle, all S interrupts), counters and
   * Sstc enabled (no timer set), full-access PMP, and S-mode at `entry` with a0 = hartid,
   * a1 = `dtb`.
   */
  enterKernel(h: Hart, entry: number, dtb: number): void {
    this.prepareHart(h);
    startInS(h, entry, dtb);
  }

  /** The firmware's M-mode settings for a hart that will run S-mode code (see enterKernel). */
  prepareHart(h: Hart): void {
    // Every delegable exception except ecall from S (the SBI itself), 3.1.8.
    h.set('medeleg', 0xb1ff, 0);
    h.set('mideleg', MIP_SSIP | MIP_STIP | (1 << 9), 0);
    h.set('mcounteren', -1, 0);
    h.set('menvcfg', 1, 0x8000_0000 | 0); // FIOM, and STCE: Sstc is available to S-mode
    h.set('stimecmp', -1, -1); // no timer until the kernel sets one (as OpenSBI leaves it)
    h.set('pmpaddr0', -1, 0x3fffff);
    h.set('pmpcfg0', 0x1f, 0);
    h.set('mstatus', (h.get('mstatus') & ~MSTATUS_MPP) | (PRIV_S << 11), h.getHi('mstatus'));
    h.stateChanged();
  }

  /** The hart hook for traps into M-mode. Handles ecalls from S-mode; anything else is fatal. */
  handleTrap(h: Hart, cause: number, interrupt: boolean): boolean {
    if (!interrupt && cause === Cause.EcallS) {
      this.call(h);
      const lo = (h.pc[0]! + 4) | 0;
      h.setPc(lo, (lo >>> 0) < (h.pc[0]! >>> 0) ? (h.pc[1]! + 1) | 0 : h.pc[1]!);
      return true;
    }
    const what = interrupt ? `interrupt ${cause}` : `exception ${cause}`;
    this.p.fatal(`the guest took ${what} into M-mode at pc 0x${h.pcBig.toString(16)}, which no firmware handles`);
    return true;
  }

  /** The earliest supervisor timer deadline, for the run loop. */
  nextDeadline(): number {
    return Math.min(...this.timers);
  }

  /** Raises STIP on harts whose SBI timer has expired (called at every slice boundary). */
  tick(): void {
    const now = this.p.now();
    for (let i = 0; i < this.timers.length; i++) {
      if (now >= this.timers[i]!) {
        this.remote().raise(this.p.harts[i]!, MIP_STIP);
        this.timers[i] = Infinity;
      }
    }
  }

  private remote(): RemoteHarts {
    return this.p.remote?.() ?? directHarts;
  }

  /** The supervisor timers (ticks as decimal strings; null: none set) and the harts' HSM states as plain data. */
  save(): { timers: Array<string | null>; hsm: number[] } {
    return { timers: this.timers.map((t) => (t === Infinity ? null : String(t))), hsm: this.hsm.save() };
  }

  /** Restores the timers and HSM states from untrusted data (snapshots before SMP have no `hsm`). */
  restore(state: unknown): void {
    const hasHsm = typeof state === 'object' && state !== null && 'hsm' in state;
    const r: StateReader = new StateReader('sbi', state, hasHsm ? ['timers', 'hsm'] : ['timers']);
    const raw = (state as { timers: unknown }).timers;
    if (!Array.isArray(raw) || raw.length !== this.timers.length) r.fail(`timers must be an array of ${this.timers.length} entries`);
    const t = raw.map((v: unknown, i: number) => {
      if (v === null) return Infinity;
      if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,15})$/.test(v) || !Number.isSafeInteger(Number(v))) r.fail(`timers[${i}] must be null or a decimal tick count`);
      return Number(v);
    });
    this.hsm.restore(r, hasHsm ? (state as { hsm: unknown }).hsm : undefined);
    this.timers.splice(0, t.length, ...t);
  }

  /** Counters for --stats and the web console. */
  stats(): Record<string, number> {
    return Object.fromEntries([...this.calls].sort((a, b) => b[1] - a[1]));
  }

  private count(eid: number, fid: number): void {
    const known = eid <= 8 || SUPPORTED.has(eid);
    const key = known ? `${extensionName(eid)}.${functionName(eid, fid) ?? 'other'}` : 'unknown extension';
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
  }

  /** Dispatches one call: a7 = extension, a6 = function, a0-a5 arguments; returns in a0/a1. */
  private call(h: Hart): void {
    const x = h.x;
    const eid = x[2 * 17]! >>> 0;
    const fid = x[2 * 16]! >>> 0;
    this.count(eid, fid);
    const arg = (i: number): number => (x[2 * (10 + i) + 1]! >>> 0) * 0x1_0000_0000 + (x[2 * (10 + i)]! >>> 0);
    const ret = (error: number, value = 0): void => {
      h.setX(10, BigInt(error));
      h.setX(11, BigInt(value));
    };
    if (eid <= 0x08) return this.legacy(h, eid, arg);
    switch (eid) {
      case EID.BASE:
        return ret(ERR.SUCCESS, this.base(fid, arg(0)));
      case EID.TIME:
        if (fid !== 0) return ret(ERR.NOT_SUPPORTED);
        this.setTimer(h);
        return ret(ERR.SUCCESS);
      case EID.IPI:
        if (fid !== 0) return ret(ERR.NOT_SUPPORTED);
        return ret(this.forHarts(arg(0), arg(1), (t) => this.remote().raise(t, MIP_SSIP)));
      case EID.RFENCE:
        // remote_fence_i (0), remote_sfence_vma (1), remote_sfence_vma_asid (2); the hypervisor
        // fences (3-6) need the H extension, which this hart does not have.
        if (fid > 2) return ret(ERR.NOT_SUPPORTED);
        return ret(this.forHarts(arg(0), arg(1), (t) => (fid === 0 ? this.remote().fenceI(t) : this.remote().sfenceVma(t, arg(2), arg(3)))));
      case EID.HSM:
        return ret(...this.hsm.call(h, fid, arg));
      case EID.SRST:
        if (fid !== 0) return ret(ERR.NOT_SUPPORTED);
        if (arg(0) > 2 || arg(1) > 1) return ret(ERR.INVALID_PARAM);
        this.p.reset(arg(0) === 0 ? 'shutdown' : 'reboot', arg(1));
        return ret(ERR.SUCCESS);
      case EID.DBCN:
        return this.dbcn(fid, arg, ret);
      default:
        return ret(ERR.NOT_SUPPORTED);
    }
  }

  private base(fid: number, a0: number): number {
    switch (fid) {
      case 0: return SPEC_VERSION;
      case 1: return IMPL_ID;
      case 2: return IMPL_VERSION;
      case 3: return SUPPORTED.has(a0) || a0 <= 8 ? 1 : 0;
      default: return 0; // mvendorid, marchid, mimpid: 0, as the hart's CSRs read
    }
  }

  /**
   * set_timer with the time in a0 (SBI 6.1): it also clears the pending timer interrupt. With
   * Sstc enabled for S-mode (menvcfg.STCE), STIP follows stimecmp alone, so the timer is
   * stimecmp, as OpenSBI does it; otherwise the firmware keeps it and raises STIP in tick().
   */
  private setTimer(h: Hart): void {
    const lo = h.x[20]!;
    const hi = h.x[21]!;
    if (h.s[S.menvcfg + 1]! < 0) {
      h.set('stimecmp', lo, hi);
      this.timers[h.id] = Infinity;
      return;
    }
    h.s[S.mip] = h.s[S.mip]! & ~MIP_STIP;
    // A deadline past 2^53 ticks (28 years at 10 MHz; Linux stops its timer with all ones)
    // is never reached, and as a double it would not be an exact tick count in a snapshot.
    const t = (hi >>> 0) * 0x1_0000_0000 + (lo >>> 0);
    this.timers[h.id] = t >= 2 ** 53 ? Infinity : t;
  }

  /** Applies `f` to the harts in (mask, base); base = -1 (all ones) means every hart. */
  private forHarts(mask: number, base: number, f: (h: Hart) => void): number {
    const harts = this.p.harts;
    if (base === 0xffff_ffff_ffff_ffff || base >= 2 ** 64 - 2048) {
      harts.forEach(f);
      return ERR.SUCCESS;
    }
    for (let i = 0; i < 53; i++) {
      if (Math.floor(mask / 2 ** i) % 2 === 0) continue;
      const t = harts[base + i];
      if (!t) return ERR.INVALID_PARAM;
      f(t);
    }
    return ERR.SUCCESS;
  }

  /**
   * The debug console (SBI 12): num_bytes, base_addr_lo, base_addr_hi. On RV64 the address is
   * base_addr_lo and base_addr_hi holds bits beyond 64, which no RAM has.
   */
  private dbcn(fid: number, arg: (i: number) => number, ret: (e: number, v?: number) => void): void {
    const len = arg(0);
    const addr = arg(1);
    // INVALID_PARAM unless all of [addr, addr + num_bytes) is RAM (probed at both ends: RAM is one range).
    const inRam = arg(2) === 0 && this.p.readRam(addr, 0) !== null && (len === 0 || this.p.readRam(addr + len - 1, 1) !== null);
    if (fid === 0) {
      if (!inRam) return ret(ERR.INVALID_PARAM);
      const bytes = this.p.readRam(addr, Math.min(len, DBCN_WRITE_MAX))!;
      this.p.consoleWrite(bytes);
      return ret(ERR.SUCCESS, bytes.length);
    }
    if (fid === 1) {
      if (!inRam) return ret(ERR.INVALID_PARAM);
      const input = this.p.consoleRead(len);
      this.p.writeRam(addr, input);
      return ret(ERR.SUCCESS, input.length);
    }
    if (fid === 2) {
      this.p.consoleWrite(new Uint8Array([arg(0) & 0xff]));
      return ret(ERR.SUCCESS);
    }
    return ret(ERR.NOT_SUPPORTED);
  }

  /** The legacy extensions (SBI v0.1): results in a0 only. */
  private legacy(h: Hart, eid: number, arg: (i: number) => number): void {
    let r = 0;
    switch (eid) {
      case 0x00:
        this.setTimer(h);
        break;
      case 0x01:
        this.p.consoleWrite(new Uint8Array([arg(0) & 0xff]));
        break;
      case 0x02: {
        const b = this.p.consoleRead(1);
        r = b.length ? b[0]! : -1;
        break;
      }
      case 0x03:
        h.s[S.mip] = h.s[S.mip]! & ~MIP_SSIP;
        break;
      case 0x04:
      case 0x05:
      case 0x06:
      case 0x07: {
        // The hart mask is a pointer to a mask in guest memory; these act on every hart, a
        // superset of any mask (an extra IPI or fence is harmless: SBI 0.1 callers tolerate
        // spurious ones). SBI v0.2 kernels use IPI and RFENCE, which honour their masks.
        for (const t of this.p.harts) {
          if (eid === 0x04) this.remote().raise(t, MIP_SSIP);
          else this.remote().sfenceVma(t, 0, 0);
        }
        break;
      }
      case 0x08:
        this.p.reset('shutdown', 0);
        break;
      default:
        r = ERR.NOT_SUPPORTED;
    }
    h.setX(10, BigInt(r));
  }
}
