/**
 * A guest process: one hart in U-mode over an Sv39 address space the monitor keeps, its files,
 * and the system calls between them. The hart delegates nothing, so every trap from the
 * program reaches the machine's trap hook: an `ecall` is a system call (syscalls.ts), a page
 * fault inside a mapping populates the page (address-space.ts), and anything else is a signal
 * to the program. Processes belong to an ExecKernel, which schedules them.
 */
import { MSTATUS_FS, MSTATUS_HI_XL } from '../cpu/csr-numbers.ts';
import { PRIV_U, type Hart } from '../cpu/hart.ts';
import { Cause } from '../cpu/trap.ts';
import { Machine } from '../machine/machine.ts';
import { VirtusError } from '../util/errors.ts';
import { BLOCK, E, KEEP, SIGBUS, SIGILL, SIGSEGV } from './abi.ts';
import { AddressSpace, Use } from './address-space.ts';
import { FdTable, stdioFile } from './files.ts';
import type { ExecHost } from './host.ts';
import type { ExecKernel } from './kernel.ts';
import { outOfMemory } from './loader.ts';
import { resolvePath } from './path.ts';
import { prepareProgram, startProgram } from './program.ts';
import { SignalState } from './signals.ts';
import { SYSCALLS, type SyscallArgs } from './syscalls.ts';

/** How to start a process. */
export interface ExecOptions {
  /** The program as the guest names it (resolved from `cwd` inside the root). */
  program: string;
  argv: string[];
  envp: string[];
  /** Guest-absolute working directory. */
  cwd: string;
  /** Guest RAM in bytes for each process (default 1 GiB; pages are used as the program touches them). */
  memory?: number;
  engine?: 'jit' | 'interp';
}

/** How a process ended: its exit status, or the signal that killed it. */
export interface ExecExit {
  code: number;
  signal: number | null;
  /** For a signal: what happened, for the user (`SIGSEGV at 0x0, pc 0x10554`). */
  message?: string;
}

const SLICE = 1 << 22;
const A0 = 20;
const A7 = 34;

export class GuestProcess {
  readonly machine: Machine;
  readonly hart: Hart;
  readonly as: AddressSpace;
  fds: FdTable;
  signals = new SignalState();
  readonly host: ExecHost;
  /** Guest-absolute working directory. */
  cwd = '/';
  /** The file mode creation mask. */
  umask = 0o022;
  /** The program's guest-absolute path (/proc/self/exe). */
  exe = '';
  exit: ExecExit | null = null;
  /** Set by a system call that must wait (it runs again at the process's next turn). */
  blocked = false;
  /** A vfork child this process waits for until it execs or exits (CLONE_VFORK). */
  vforkChild: GuestProcess | null = null;
  /** The process has called execve (its vfork parent may go on). */
  execed = false;
  /** A child exited since the last wait4 (it may have a zombie to reap). */
  private childNews = false;
  private readonly args: SyscallArgs;

  constructor(readonly kernel: ExecKernel, readonly pid: number, public parent: GuestProcess | null) {
    this.host = kernel.host;
    this.machine = new Machine({ ramSize: kernel.options.memory ?? 1 << 30, console: () => {}, engine: kernel.options.engine ?? 'jit' });
    const h = (this.hart = this.machine.harts[0]!);
    this.as = new AddressSpace(this.machine.ram, () => h.flushTlb());
    this.fds = new FdTable(this.host);
    this.args = argsOf(h);
    this.machine.machineTrap = (_h, cause, irq, lo, hi) => this.trap(cause, irq, (hi >>> 0) * 2 ** 32 + (lo >>> 0));
  }

  /** The first process of a run: the host's standard streams and the program from `o`. */
  static first(kernel: ExecKernel, o: ExecOptions): GuestProcess {
    const p = new GuestProcess(kernel, kernel.host.ids.pid, null);
    p.cwd = o.cwd;
    kernel.host.stdio.forEach((handle, fd) => p.fds.add(stdioFile(handle, fd === 0 ? 0 : 1), false, fd));
    const prog = prepareProgram(p, o.program);
    if ('errno' in prog) throw new VirtusError('EXEC_NO_PROGRAM', prog.message);
    startProgram(p, prog, o.argv, o.envp, o.program);
    return p;
  }

  /** The parent's ppid as Linux reports it: the host's parent for the first process. */
  get ppid(): number {
    return this.parent?.pid ?? this.host.ids.ppid;
  }

  /** U-mode, Sv39 over this address space, the FPU on, counters readable, PMP open (3.7.1). */
  configureHart(): void {
    const h = this.hart;
    h.set('priv', PRIV_U, 0);
    h.set('mstatus', MSTATUS_FS, MSTATUS_HI_XL);
    h.set('mcounteren', 7, 0);
    h.set('scounteren', 7, 0);
    h.set('pmpaddr0', -1, 0x3f_ffff);
    h.set('pmpcfg0', 0x1f, 0);
    const [lo, hi] = this.as.satp();
    h.set('satp', lo, hi);
    h.stateChanged();
  }

  /**
   * fork(2): a child with a copy of this address space, the same open files (shared
   * descriptions), dispositions and mask, returning 0 from the call this process is making.
   */
  fork(): GuestProcess {
    const c = new GuestProcess(this.kernel, this.kernel.newPid(), this);
    c.as.copyFrom(this.as);
    c.fds = this.fds.clone();
    c.signals = this.signals.forChild();
    c.cwd = this.cwd;
    c.umask = this.umask;
    c.exe = this.exe;
    c.configureHart();
    c.hart.x.set(this.hart.x);
    c.hart.f.set(this.hart.f);
    c.hart.set('fcsr', this.hart.get('fcsr'), 0);
    c.hart.setPc(this.hart.pc[0]!, this.hart.pc[1]!);
    c.hart.x[A0] = 0;
    c.hart.x[A0 + 1] = 0;
    advancePc(c.hart);
    this.kernel.adopt(c);
    return c;
  }

  /** Runs one slice; false when the process could not move (it waits on another). */
  step(): boolean {
    const v = this.vforkChild;
    if (v) {
      if (!v.exit && !v.execed) return false;
      this.vforkChild = null;
    }
    const before = this.hart.getNum('minstret');
    this.blocked = false;
    this.machine.engines[0]!.run(SLICE);
    return !this.blocked || this.hart.getNum('minstret') !== before;
  }

  /** Resolves a guest path from a guest-absolute directory (path.ts). */
  resolve(base: string, path: string, followLast: boolean): string | number {
    return resolvePath(this.host, base, path, followLast);
  }

  /** Ends the process with an exit status. */
  exitWith(code: number): void {
    if (this.exit) return;
    this.exit = { code: code & 0xff, signal: null };
    this.kernel.exited(this);
  }

  /** Ends the process by a signal (the default action of a fatal signal). */
  killWith(sig: number, message: string): void {
    if (this.exit) return;
    this.exit = { code: 128 + sig, signal: sig, message };
    this.kernel.exited(this);
  }

  /** A child has exited: wait4 may find a zombie, and SIGCHLD is sent. */
  childExited(): void {
    this.childNews = true;
    this.signals.send(17);
  }

  /** Takes the news that a child exited (wait4 looks for zombies only then or when asked to block). */
  takeChildNews(): boolean {
    const n = this.childNews;
    this.childNews = false;
    return n;
  }

  private trap(cause: number, irq: boolean, tval: number): boolean {
    if (irq) return true; // no interrupt is enabled in U-mode here
    const h = this.hart;
    if (cause === Cause.EcallU) {
      this.syscall();
      return true;
    }
    const use = cause === Cause.InsnPageFault ? Use.Exec : cause === Cause.StorePageFault ? Use.Write : cause === Cause.LoadPageFault ? Use.Read : null;
    if (use !== null && this.as.fault(tval, use)) return true;
    if (use !== null && this.as.exhausted) throw outOfMemory();
    const sig = cause === Cause.IllegalInsn ? SIGILL : cause === Cause.LoadMisaligned || cause === Cause.StoreMisaligned ? SIGBUS : SIGSEGV;
    // si_code: SEGV_ACCERR where a mapping refused the access, SEGV_MAPERR where there is none.
    const code = sig === SIGSEGV && this.as.find(tval) ? 2 : 1;
    this.signals.deliver(this, sig, tval, `${signalName(sig)} at 0x${tval.toString(16)}, pc 0x${h.pcBig.toString(16)}`, code);
    return true;
  }

  private syscall(): void {
    const h = this.hart;
    const n = h.x[A7]!;
    const k = this.kernel;
    const f = SYSCALLS[n];
    let r: number;
    if (f) r = f(this, this.args);
    else {
      k.unimplemented.set(n, (k.unimplemented.get(n) ?? 0) + 1);
      r = -E.ENOSYS;
    }
    if (r === BLOCK) {
      this.blocked = true; // the pc stays on the ecall: the call is made again
      return;
    }
    k.calls.set(n, (k.calls.get(n) ?? 0) + 1);
    if (this.exit) return;
    if (r !== KEEP) {
      h.x[A0] = r % 2 ** 32 | 0;
      h.x[A0 + 1] = Math.floor(r / 2 ** 32) | 0;
      advancePc(h);
    }
    // Signals sent to this process arrive as a call returns, unless blocked.
    const sig = this.signals.nextPending();
    if (sig) this.signals.deliver(this, sig, 0, `${signalName(sig)}`, null);
  }
}

function advancePc(h: Hart): void {
  const lo = (h.pc[0]! + 4) | 0;
  h.setPc(lo, (lo >>> 0) < (h.pc[0]! >>> 0) ? (h.pc[1]! + 1) | 0 : h.pc[1]!);
}

/** The arguments a0-a5 of the current system call, read from the hart. */
function argsOf(h: Hart): SyscallArgs {
  const x = h.x;
  return {
    int: (i) => x[20 + 2 * i]!,
    num: (i) => (x[21 + 2 * i]! >>> 0) * 2 ** 32 + (x[20 + 2 * i]! >>> 0),
    i64: (i) => x[21 + 2 * i]! * 2 ** 32 + (x[20 + 2 * i]! >>> 0),
  };
}

const ERRNO_TEXT: Record<number, string> = {
  [E.ENOENT]: 'no such file or directory', [E.EACCES]: 'permission denied', [E.ENOTDIR]: 'not a directory',
  [E.ELOOP]: 'too many levels of symbolic links', [E.EISDIR]: 'is a directory', [E.ENOEXEC]: 'not an executable',
};

/** A user-facing text for -errno. */
export function errnoText(e: number): string {
  return ERRNO_TEXT[-e] ?? `error ${-e}`;
}

const SIGNAL_NAMES: Record<number, string> = {
  1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL',
  10: 'SIGUSR1', 11: 'SIGSEGV', 12: 'SIGUSR2', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM',
};

/** A signal's name (SIGSEGV), or its number. */
export function signalName(sig: number): string {
  return SIGNAL_NAMES[sig] ?? `signal ${sig}`;
}
