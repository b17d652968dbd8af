/**
 * A guest process: its threads, each a hart in U-mode over one Sv39 address space the monitor
 * keeps, its files, and the system calls between them. The harts delegate nothing, so every
 * trap from the program reaches the machine's trap hook: an `ecall` is a system call
 * (syscalls.ts), a page fault inside a mapping populates the page (address-space.ts), and
 * anything else is a signal to the program. Processes belong to an ExecKernel, which schedules
 * them; a process runs its threads in turn, one slice each, on the calling thread.
 *
 * Threads (clone with CLONE_THREAD) are further harts of the process's machine, up to its
 * MAX_HARTS: the first thread runs on the machine's engine (the translator by default), the
 * others on the interpreter, since only the machine's own translator hears of code written
 * behind its back. A thread switched away from loses its LR reservation, as on Linux.
 */
import { MSTATUS_FS, MSTATUS_HI_XL } from '../cpu/csr-numbers.ts';
import { Hart, PRIV_U, S } from '../cpu/hart.ts';
import { createInterpreter, type Engine } from '../cpu/interp.ts';
import { MAX_HARTS } from '../cpu/layout.ts';
import { Cause } from '../cpu/trap.ts';
import { Machine } from '../machine/machine.ts';
import { VirtusError } from '../util/errors.ts';
import { BLOCK, E, KEEP, S_IFDIR, S_IFMT, SIGBUS, SIGILL, SIGSEGV, TASK_SIZE } from './abi.ts';
import { AddressSpace, Use } from './address-space.ts';
import { FdTable, stdioFile } from './files.ts';
import type { ExecHost, ExecStat } from './host.ts';
import type { ExecKernel } from './kernel.ts';
import { outOfMemory } from './loader.ts';
import { resolvePath } from './path.ts';
import { prepareProgram, startProgram } from './program.ts';
import { SignalState, signalName } from './signals.ts';

export { signalName } from './signals.ts';
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

/** A thread: a hart of the process's machine and what the kernel keeps for it. */
export interface Thread {
  tid: number;
  hart: Hart;
  engine: Engine;
  args: SyscallArgs;
  exited: boolean;
  /** The system call it made must wait (it is made again at the thread's next turn). */
  blocked: boolean;
  /** CLONE_CHILD_CLEARTID / set_tid_address: zeroed and woken when the thread exits. */
  clearTid: number;
  /** The futex word it waits on, and whether a FUTEX_WAKE has released it. */
  futex: number | null;
  woken: boolean;
  /** It waits with a timeout: when nothing else can run, the wait times out. */
  timed: boolean;
  timedOut: boolean;
  /** A sleep's end on the monotonic clock (ns); 0 when not sleeping. */
  wakeAt: bigint;
  /** It waits on a host socket: the host is idled briefly when nothing else can run. */
  hostWait: boolean;
  /** PR_SET_NAME's name, 16 bytes with the NUL. */
  name?: Uint8Array;
}
const A0 = 20;
const A7 = 34;

export class GuestProcess {
  readonly machine: Machine;
  readonly as: AddressSpace;
  /** Live threads; the first is the main thread (tid = pid) until an execve from another. */
  threads: Thread[] = [];
  /** The thread running now (whose trap is being served). */
  current!: Thread;
  /** Harts of exited threads, for new threads. */
  private readonly spareHarts: Hart[] = [];
  fds: FdTable;
  signals = new SignalState();
  readonly host: ExecHost;
  /** Guest-absolute working directory. */
  cwd = '/';
  /** The file mode creation mask. */
  umask = 0o022;
  /** The program's guest-absolute path (/proc/self/exe) and arguments (/proc/self/cmdline). */
  exe = '';
  argv: string[] = [];
  exit: ExecExit | null = null;
  /** ITIMER_REAL (setitimer, alarm): when it fires next on the monotonic clock (0: off), and its period. */
  itimer = { at: 0n, interval: 0n };
  /** A vfork child this process waits for until it execs or exits (CLONE_VFORK). */
  vforkChild: GuestProcess | null = null;
  /** The process has called execve (its vfork parent may go on). */
  execed = false;
  /** A child exited since the last wait4 (it may have a zombie to reap). */
  private childNews = false;

  constructor(readonly kernel: ExecKernel, readonly pid: number, public parent: GuestProcess | null) {
    this.host = kernel.host;
    const ramSize = kernel.options.memory ?? 1 << 30;
    try {
      this.machine = new Machine({ ramSize, console: () => {}, engine: kernel.options.engine ?? 'jit' });
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      throw new VirtusError('EXEC_HOST_MEMORY', `the host cannot reserve ${ramSize >> 20} MiB for a guest process (lower --memory)`);
    }
    const m = this.machine;
    // The monitor alone writes the page tables and flushes after every change that takes
    // anything away: the second-level TLB serves the translator exactly (Hart.enableTlb2).
    for (const h of m.harts) h.enableTlb2();
    this.as = new AddressSpace(m.ram, () => {
      for (const h of m.harts) h.flushTlb();
    });
    this.fds = new FdTable(this.host);
    this.current = this.newThread(pid, m.harts[0]!, m.engines[0]!);
    m.machineTrap = (h, cause, irq, lo, hi) => this.trap(h, cause, irq, (hi >>> 0) * 2 ** 32 + (lo >>> 0));
  }

  private newThread(tid: number, hart: Hart, engine: Engine): Thread {
    const t: Thread = {
      tid, hart, engine, args: argsOf(hart), exited: false, blocked: false, clearTid: 0, futex: null, woken: false, timed: false, timedOut: false, wakeAt: 0n, hostWait: false,
    };
    this.threads.push(t);
    return t;
  }

  /** The hart of the thread running now. */
  get hart(): Hart {
    return this.current.hart;
  }

  /**
   * clone(CLONE_THREAD): a new thread on a further hart, in the current thread's state, returning
   * 0 from the call on the stack `sp` (when not 0). Null when the machine has no hart left.
   */
  spawnThread(sp: number): Thread | null {
    const m = this.machine;
    let h = this.spareHarts.pop();
    if (!h) {
      if (m.harts.length >= MAX_HARTS) return null;
      const first = m.harts[0]!;
      h = new Hart({ id: m.harts.length, memory: m.memory, ramSize: first.ramSize, bus: first.bus, hooks: first.hooks, pageFlags: m.pageFlags });
      h.enableTlb2();
      m.harts.push(h);
    }
    const t = this.newThread(this.kernel.newPid(), h, createInterpreter(h));
    this.configureHart(h);
    copyRegisters(this.hart, h);
    if (sp !== 0) h.setX(2, BigInt(sp));
    return t;
  }

  /** Ends the current thread (exit(2)); the process ends with its last thread. */
  exitThread(code: number): void {
    const t = this.current;
    if (this.threads.length === 1) {
      this.exitWith(code);
      return;
    }
    t.exited = true;
    this.threads = this.threads.filter((x) => x !== t);
    this.spareHarts.push(t.hart);
    // CLONE_CHILD_CLEARTID: zero the tid word and wake one waiter (how pthread_join learns of it).
    if (t.clearTid !== 0 && this.as.write(t.clearTid, new Uint8Array(4))) this.futexWake(t.clearTid, 1);
  }

  /** Wakes up to `n` threads waiting on the futex word at `addr`; returns how many. */
  futexWake(addr: number, n: number): number {
    let woken = 0;
    for (const t of this.threads) {
      if (woken >= n) break;
      if (t.futex === addr && !t.woken) {
        t.woken = true;
        t.futex = null;
        woken++;
      }
    }
    return woken;
  }

  /** Ends every thread but the current one (execve). */
  dropOtherThreads(): void {
    for (const t of this.threads) {
      if (t === this.current) continue;
      t.exited = true;
      this.spareHarts.push(t.hart);
    }
    this.threads = [this.current];
    this.current.tid = this.pid;
  }

  /** The earliest end of a sleep among the threads (monotonic ns), or null. */
  nextWake(): bigint | null {
    let w: bigint | null = null;
    for (const t of this.threads) if (t.wakeAt !== 0n && (w === null || t.wakeAt < w)) w = t.wakeAt;
    return w;
  }

  /** Fires ITIMER_REAL if its time has come (SIGALRM); returns when it fires next (0n: off). */
  tickTimer(now: bigint): bigint {
    const t = this.itimer;
    if (t.at === 0n || this.exit) return 0n;
    if (now >= t.at) {
      t.at = t.interval > 0n ? now + t.interval : 0n;
      if (this.signals.fatal(14)) this.killWith(14, signalName(14));
      else this.signals.send(14);
    }
    return t.at;
  }

  /** Whether a thread waits on a host socket. */
  waitsOnHost(): boolean {
    return this.threads.some((t) => t.blocked && t.hostWait);
  }

  /** Times out the waits that have a timeout (nothing else can run); true when there was one. */
  timeOut(): boolean {
    let any = false;
    for (const t of this.threads) {
      if (t.blocked && t.timed) {
        t.timedOut = true;
        any = true;
      }
    }
    return any;
  }

  /** The first process of a run: the host's standard streams and the program from `o`. */
  static first(kernel: ExecKernel, o: ExecOptions): GuestProcess {
    const p = new GuestProcess(kernel, kernel.host.ids.pid, null);
    const cwd = p.resolve('/', o.cwd, true);
    const st = typeof cwd === 'number' ? cwd : kernel.host.lstat(cwd);
    if (typeof cwd === 'number' || typeof st === 'number' || (st.mode & S_IFMT) !== S_IFDIR) {
      throw new VirtusError('EXEC_CWD', `the working directory ${o.cwd} is not a directory inside the root`, { exitCode: 2 });
    }
    p.cwd = cwd;
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
  configureHart(h: Hart = this.hart): void {
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
    c.argv = this.argv;
    c.configureHart();
    copyRegisters(this.hart, c.hart);
    c.current.clearTid = this.current.clearTid;
    this.kernel.adopt(c);
    return c;
  }

  /** Runs a slice of each thread; false when none could move (each waits on another). */
  step(): boolean {
    const v = this.vforkChild;
    if (v) {
      if (!v.exit && !v.execed) return false;
      this.vforkChild = null;
    }
    let progress = false;
    for (const t of [...this.threads]) {
      if (t.exited || this.exit) continue;
      this.current = t;
      const before = t.hart.getNum('minstret');
      t.blocked = false;
      t.engine.run(SLICE);
      t.hart.s[S.resValid] = 0; // a context switch breaks LR/SC
      if (!t.blocked || t.hart.getNum('minstret') !== before) progress = true;
    }
    return progress;
  }

  /** Resolves a guest path from a guest-absolute directory (path.ts; `out.st`: the lstat it took of the result). */
  resolve(base: string, path: string, followLast: boolean, out?: { st?: ExecStat }): string | number {
    return resolvePath(this.host, base, path, followLast, out);
  }

  /**
   * Writes the populated pages of MAP_SHARED file mappings in [start, end) back to their files,
   * up to each file's end. Returns 0 or the first -errno.
   */
  syncShared(start: number, end: number): number {
    let err = 0;
    for (const pg of this.as.sharedPages(start, end)) {
      const h = this.host.open(pg.path, { read: false, write: true, create: false, exclusive: false, truncate: false, append: false, directory: false, noFollow: true, mode: 0 });
      if (h < 0) {
        err ||= h;
        continue;
      }
      const st = this.host.fstat(h);
      const size = typeof st === 'number' ? 0 : Number(st.size);
      if (pg.offset < size) {
        const n = this.host.write(h, pg.bytes.subarray(0, Math.min(pg.bytes.length, size - pg.offset)), pg.offset);
        if (n < 0) err ||= n;
      }
      this.host.close(h);
    }
    return err;
  }

  /** Ends the process with an exit status. */
  exitWith(code: number): void {
    if (this.exit) return;
    this.syncShared(0, TASK_SIZE);
    this.exit = { code: code & 0xff, signal: null };
    this.kernel.exited(this);
  }

  /** Ends the process by a signal (the default action of a fatal signal). */
  killWith(sig: number, message: string): void {
    if (this.exit) return;
    this.syncShared(0, TASK_SIZE);
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

  private trap(h: Hart, cause: number, irq: boolean, tval: number): boolean {
    if (irq) return true; // no interrupt is enabled in U-mode here
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
    const t = this.current;
    const h = t.hart;
    const n = h.x[A7]!;
    const k = this.kernel;
    const f = SYSCALLS[n];
    let r: number;
    if (f) r = f(this, t.args);
    else {
      k.unimplemented.set(n, (k.unimplemented.get(n) ?? 0) + 1);
      r = -E.ENOSYS;
    }
    if (r === BLOCK) {
      const sig = this.signals.nextPending();
      if (!sig) {
        t.blocked = true; // the pc stays on the ecall: the call is made again
        return;
      }
      // A signal interrupts the wait: with SA_RESTART the handler returns to the ecall, which
      // waits again; without, the call fails with EINTR (signal(7)).
      t.wakeAt = 0n;
      t.futex = null;
      if (this.signals.restarts(sig)) {
        this.signals.deliver(this, sig, 0, signalName(sig), null);
        return;
      }
      r = -E.EINTR;
      this.signals.pending |= 1n << BigInt(sig - 1);
    }
    t.timed = false;
    t.timedOut = false;
    t.wakeAt = 0n;
    t.hostWait = false;
    k.calls.set(n, (k.calls.get(n) ?? 0) + 1);
    if (this.exit || t.exited) return;
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

/** Copies a thread's registers to a new hart, which returns 0 from the system call being made. */
function copyRegisters(from: Hart, to: Hart): void {
  to.x.set(from.x);
  to.f.set(from.f);
  to.set('fcsr', from.get('fcsr'), 0);
  to.setPc(from.pc[0]!, from.pc[1]!);
  to.x[A0] = 0;
  to.x[A0 + 1] = 0;
  advancePc(to);
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

