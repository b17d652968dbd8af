/**
 * Signals: the dispositions set by rt_sigaction, the blocked mask, and delivery to a guest
 * handler as Linux's arch/riscv/kernel/signal.c does: an rt_sigframe (siginfo, then a
 * ucontext whose mcontext holds the 32 general registers with the pc in slot 0 and the D
 * extension's registers and fcsr) below the stack pointer, aligned to 16; the handler gets
 * a0 = signal, a1 = &siginfo, a2 = &ucontext and returns through a trampoline (`li a7, 139;
 * ecall`, Linux's vDSO rt_sigreturn) on a page the monitor maps above the stack. rt_sigreturn
 * restores the registers and mask from the ucontext, so a handler may change where the program
 * resumes. A signal without a handler takes its default action (terminate, or ignore).
 */
import { E, KEEP, PROT_EXEC, PROT_READ, SIGKILL, SYS, TASK_SIZE } from './abi.ts';
import type { GuestProcess } from './process.ts';
import { put } from './sys-dir.ts';
import type { Syscall } from './syscalls.ts';

const NSIG = 64;
const SIG_DFL = 0;
const SIG_IGN = 1;
const SA_ONSTACK = 0x0800_0000;
const SA_RESTART = 0x1000_0000;
const SA_NODEFER = 0x4000_0000;
const SA_RESETHAND = 0x8000_0000;
const SIGSTOP = 19;
/** Signals whose default action is to do nothing (signal(7)). */
const IGNORED_BY_DEFAULT = new Set([17, 18, 23, 28]);
/** Where the sigreturn trampoline lives: the page above the stack. */
export const TRAMPOLINE = TASK_SIZE - 4096;
const SIGINFO_SIZE = 128;
/** Offset of uc_mcontext in the ucontext (after glibc's 128-byte sigset and 16-byte alignment). */
const MCONTEXT = 176;
const UCONTEXT_SIZE = MCONTEXT + 256 + 528;
const FRAME_SIZE = SIGINFO_SIZE + UCONTEXT_SIZE;

interface Action {
  handler: number;
  flags: number;
  mask: bigint;
}

const SI_TKILL = -6;

export class SignalState {
  readonly actions: Action[] = Array.from({ length: NSIG + 1 }, () => ({ handler: SIG_DFL, flags: 0, mask: 0n }));
  blocked = 0n;
  /** Signals sent to the process, delivered as a system call returns (bit sig - 1). */
  pending = 0n;
  altStack = { sp: 0, size: 0, flags: 2 }; // SS_DISABLE

  /** A forked child's state: the same dispositions, mask and alternate stack, nothing pending (fork(2)). */
  forChild(): SignalState {
    const s = new SignalState();
    this.actions.forEach((a, i) => (s.actions[i] = { ...a }));
    s.blocked = this.blocked;
    s.altStack = { ...this.altStack };
    return s;
  }

  /** After execve: handled signals return to their default action; ignored ones stay ignored (execve(2)). */
  resetForExec(): void {
    for (const a of this.actions) {
      if (a.handler !== SIG_IGN) a.handler = SIG_DFL;
      a.flags = 0;
      a.mask = 0n;
    }
    this.altStack = { sp: 0, size: 0, flags: 2 };
  }

  /** Marks `sig` pending (ignored signals are dropped at once, as Linux does). */
  send(sig: number): void {
    const a = this.actions[sig]!;
    if (a.handler === SIG_IGN || (a.handler === SIG_DFL && IGNORED_BY_DEFAULT.has(sig))) return;
    this.pending |= 1n << BigInt(sig - 1);
  }

  /** Whether a handler for `sig` asked for interrupted calls to be restarted (SA_RESTART). */
  restarts(sig: number): boolean {
    const a = this.actions[sig]!;
    return a.handler !== SIG_DFL && a.handler !== SIG_IGN && (a.flags & SA_RESTART) !== 0;
  }

  /** Whether `sig` would end the process now: default action fatal, not blocked. */
  fatal(sig: number): boolean {
    const a = this.actions[sig]!;
    return a.handler === SIG_DFL && !IGNORED_BY_DEFAULT.has(sig) && !((this.blocked >> BigInt(sig - 1)) & 1n);
  }

  /** The lowest pending signal not blocked (taken off the pending set), or 0. */
  nextPending(): number {
    const ready = this.pending & ~this.blocked;
    if (ready === 0n) return 0;
    for (let sig = 1; sig <= NSIG; sig++) {
      const bit = 1n << BigInt(sig - 1);
      if (ready & bit) {
        this.pending &= ~bit;
        return sig;
      }
    }
    return 0;
  }

  /** Maps the sigreturn trampoline (once, at start). */
  static mapTrampoline(p: GuestProcess): void {
    p.as.insert(TRAMPOLINE, TRAMPOLINE + 4096, PROT_READ | PROT_EXEC);
    p.as.write(TRAMPOLINE, new Uint8Array(new Uint32Array([(SYS.rt_sigreturn << 20) | (17 << 7) | 0x13, 0x73]).buffer), true);
  }

  /**
   * Delivers `sig` now (a fault, or a pending signal at a call's return): to its handler, or by
   * its default action. `addr` is si_addr and `code` si_code for a fault (asm-generic/siginfo.h:
   * ILL_ILLOPC, BUS_ADRALN, SEGV_MAPERR or SEGV_ACCERR); null for a signal sent with kill.
   * `message` says what happened, should the signal kill the process.
   */
  deliver(p: GuestProcess, sig: number, addr: number, message: string, code: number | null): void {
    const fault = code !== null;
    const act = this.actions[sig]!;
    const blocked = (this.blocked >> BigInt(sig - 1)) & 1n;
    if (act.handler === SIG_IGN && !fault) return;
    if (act.handler === SIG_DFL || act.handler === SIG_IGN || (blocked && fault)) {
      if (IGNORED_BY_DEFAULT.has(sig) && !fault) return;
      p.killWith(sig, message);
      return;
    }
    const h = p.hart;
    let sp = Number(h.xBig(2));
    if (act.flags & SA_ONSTACK && this.altStack.flags === 0 && !(sp > this.altStack.sp && sp <= this.altStack.sp + this.altStack.size)) {
      sp = this.altStack.sp + this.altStack.size;
    }
    const frame = Math.floor((sp - FRAME_SIZE) / 16) * 16;
    const f = new Uint8Array(FRAME_SIZE);
    const v = new DataView(f.buffer);
    v.setInt32(0, sig, true);
    v.setInt32(8, code ?? SI_TKILL, true);
    if (fault) v.setBigUint64(16, BigInt(addr), true);
    else v.setInt32(16, p.pid, true);
    const uc = SIGINFO_SIZE;
    v.setBigUint64(uc + 16, BigInt(this.altStack.sp), true);
    v.setInt32(uc + 24, this.altStack.flags, true);
    v.setBigUint64(uc + 32, BigInt(this.altStack.size), true);
    v.setBigUint64(uc + 40, this.blocked, true);
    const mc = uc + MCONTEXT;
    v.setBigUint64(mc, h.pcBig, true);
    for (let r = 1; r < 32; r++) v.setBigUint64(mc + 8 * r, h.xBig(r), true);
    for (let r = 0; r < 32; r++) {
      v.setInt32(mc + 256 + 8 * r, h.f[2 * r]!, true);
      v.setInt32(mc + 256 + 8 * r + 4, h.f[2 * r + 1]!, true);
    }
    v.setUint32(mc + 256 + 256, h.get('fcsr'), true);
    if (!p.as.write(frame, f)) {
      p.killWith(11, `SIGSEGV: no room for a signal frame at 0x${frame.toString(16)}`);
      return;
    }
    if (!(act.flags & SA_NODEFER)) this.blocked |= 1n << BigInt(sig - 1);
    this.blocked |= act.mask;
    if (act.flags & SA_RESETHAND) this.actions[sig] = { handler: SIG_DFL, flags: 0, mask: 0n };
    h.setX(2, BigInt(frame));
    h.setX(1, BigInt(TRAMPOLINE));
    h.setX(10, BigInt(sig));
    h.setX(11, BigInt(frame));
    h.setX(12, BigInt(frame + uc));
    h.setPcNum(act.handler);
  }

  /** rt_sigreturn: the registers, pc and mask from the frame at sp. */
  sigreturn(p: GuestProcess): number {
    const h = p.hart;
    const frame = Number(h.xBig(2));
    const f = p.as.read(frame, FRAME_SIZE);
    if (!f) {
      p.killWith(11, 'SIGSEGV: rt_sigreturn with no signal frame on the stack');
      return KEEP;
    }
    const v = new DataView(f.buffer);
    const mc = SIGINFO_SIZE + MCONTEXT;
    this.blocked = v.getBigUint64(SIGINFO_SIZE + 40, true) & ~((1n << BigInt(SIGKILL - 1)) | (1n << BigInt(SIGSTOP - 1)));
    for (let r = 1; r < 32; r++) h.setX(r, v.getBigUint64(mc + 8 * r, true));
    for (let r = 0; r < 64; r++) h.f[r] = v.getInt32(mc + 256 + 4 * r, true);
    h.set('fcsr', v.getUint32(mc + 512, true) & 0xff, 0);
    const pc = v.getBigUint64(mc, true);
    h.setPc(Number(BigInt.asIntN(32, pc)), Number(BigInt.asIntN(32, pc >> 32n)));
    return KEEP;
  }
}

function kill(p: GuestProcess, pid: number, sig: number): number {
  if (sig < 0 || sig > NSIG) return -E.EINVAL;
  // This process, by its pid, by 0 or -1 (its group, everyone: here, itself), or by a thread's tid.
  if (pid === 0 || pid === -1 || pid === p.pid || p.threads.some((t) => t.tid === pid)) {
    if (sig !== 0) p.signals.send(sig);
    return 0;
  }
  const target = p.kernel.procs.get(Math.abs(pid));
  if (!target || target.exit) return -E.ESRCH;
  if (sig === 0) return 0;
  // Another process: a signal whose default action ends it ends it now (wherever it is, as
  // Linux does); any other arrives as its current or next system call returns.
  if (sig === SIGKILL || target.signals.fatal(sig)) target.killWith(sig, signalName(sig));
  else target.signals.send(sig);
  return 0;
}

export const SIGNAL_CALLS: Record<number, Syscall> = {
  [SYS.rt_sigaction]: (p, a) => {
    const sig = a.int(0);
    if (sig < 1 || sig > NSIG || a.num(3) !== 8) return -E.EINVAL;
    const s = p.signals;
    const old = s.actions[sig]!;
    if (a.num(2) !== 0) {
      const b = new Uint8Array(24);
      const v = new DataView(b.buffer);
      v.setBigUint64(0, BigInt(old.handler), true);
      v.setBigUint64(8, BigInt(old.flags >>> 0), true);
      v.setBigUint64(16, old.mask, true);
      if (put(p, a.num(2), b) < 0) return -E.EFAULT;
    }
    if (a.num(1) !== 0) {
      if (sig === SIGKILL || sig === SIGSTOP) return -E.EINVAL;
      const b = p.as.read(a.num(1), 24);
      if (!b) return -E.EFAULT;
      const v = new DataView(b.buffer);
      s.actions[sig] = { handler: Number(v.getBigUint64(0, true)), flags: Number(v.getBigUint64(8, true) & 0xffff_ffffn), mask: v.getBigUint64(16, true) };
    }
    return 0;
  },
  [SYS.rt_sigprocmask]: (p, a) => {
    if (a.num(3) !== 8) return -E.EINVAL;
    const s = p.signals;
    if (a.num(2) !== 0 && put(p, a.num(2), new Uint8Array(new BigUint64Array([s.blocked]).buffer)) < 0) return -E.EFAULT;
    if (a.num(1) === 0) return 0;
    const b = p.as.read(a.num(1), 8);
    if (!b) return -E.EFAULT;
    const set = new DataView(b.buffer).getBigUint64(0, true) & ~((1n << BigInt(SIGKILL - 1)) | (1n << BigInt(SIGSTOP - 1)));
    const how = a.int(0);
    if (how === 0) s.blocked |= set;
    else if (how === 1) s.blocked &= ~set;
    else if (how === 2) s.blocked = set;
    else return -E.EINVAL;
    return 0;
  },
  [SYS.sigaltstack]: (p, a) => {
    const s = p.signals;
    if (a.num(1) !== 0) {
      const b = new Uint8Array(24);
      const v = new DataView(b.buffer);
      v.setBigUint64(0, BigInt(s.altStack.sp), true);
      v.setInt32(8, s.altStack.flags, true);
      v.setBigUint64(16, BigInt(s.altStack.size), true);
      if (put(p, a.num(1), b) < 0) return -E.EFAULT;
    }
    if (a.num(0) !== 0) {
      const b = p.as.read(a.num(0), 24);
      if (!b) return -E.EFAULT;
      const v = new DataView(b.buffer);
      s.altStack = { sp: Number(v.getBigUint64(0, true)), flags: v.getInt32(8, true) & 2, size: Number(v.getBigUint64(16, true)) };
    }
    return 0;
  },
  [SYS.rt_sigreturn]: (p) => p.signals.sigreturn(p),
  [SYS.kill]: (p, a) => kill(p, a.int(0), a.int(1)),
  [SYS.tgkill]: (p, a) => kill(p, a.int(1), a.int(2)),
  [SYS.tkill]: (p, a) => kill(p, a.int(0), a.int(1)),
};

const SIGNAL_NAMES: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL',
  10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM',
};

/** A signal's name (SIGSEGV), or its number. */
export function signalName(sig: number): string {
  return SIGNAL_NAMES[sig] ?? `signal ${sig}`;
}
