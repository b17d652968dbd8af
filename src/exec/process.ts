/**
 * A guest process: one hart in U-mode over an Sv39 address space the monitor keeps, its files,
 * and the system calls between them. The hart delegates nothing, so every trap from the
 * program reaches the machine's trap hook: an `ecall` is a system call (syscalls.ts), a page
 * fault inside a mapping populates the page (address-space.ts), and anything else is a signal
 * to the program. Everything runs on the calling thread; the host's calls are synchronous.
 */
import { MSTATUS_FS, MSTATUS_HI_XL } from '../cpu/csr-numbers.ts';
import { PRIV_U, type Hart } from '../cpu/hart.ts';
import { Cause } from '../cpu/trap.ts';
import { Machine } from '../machine/machine.ts';
import { VirtusError } from '../util/errors.ts';
import { AT, E, S_IFDIR, S_IFMT, SIGBUS, SIGILL, SIGSEGV, SYS } from './abi.ts';
import { AddressSpace, Use } from './address-space.ts';
import { parseProgram } from './elf.ts';
import { FdTable, stdioFile } from './files.ts';
import type { ExecHost } from './host.ts';
import { buildStack, HWCAP_RV64GC, loadImage, outOfMemory, PIE_BASE } from './loader.ts';
import { resolvePath } from './path.ts';
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
  /** Guest RAM in bytes (default 1 GiB; pages are used as the program touches them). */
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
  readonly fds: FdTable;
  readonly signals = new SignalState();
  /** Guest-absolute working directory. */
  cwd: string;
  /** The file mode creation mask. */
  umask = 0o022;
  /** The program's guest-absolute path (/proc/self/exe). */
  readonly exe: string;
  /** System calls made, by number, and those answered ENOSYS. */
  readonly calls = new Map<number, number>();
  readonly unimplemented = new Map<number, number>();
  exit: ExecExit | null = null;
  private readonly args: SyscallArgs;

  constructor(readonly host: ExecHost, o: ExecOptions) {
    this.cwd = o.cwd;
    this.machine = new Machine({ ramSize: o.memory ?? 1 << 30, console: () => {}, engine: o.engine ?? 'jit' });
    const h = (this.hart = this.machine.harts[0]!);
    this.as = new AddressSpace(this.machine.ram, () => h.flushTlb());
    this.fds = new FdTable(host);
    host.stdio.forEach((handle, fd) => this.fds.add(stdioFile(handle, fd === 0 ? 0 : 1), false, fd));
    this.args = argsOf(h);
    this.machine.machineTrap = (_h, cause, irq, lo, hi) => this.trap(cause, irq, (hi >>> 0) * 2 ** 32 + (lo >>> 0));

    const path = this.resolve(this.cwd, o.program, true);
    if (typeof path === 'number') throw new VirtusError('EXEC_NO_PROGRAM', `${o.program}: ${errnoText(path)}`);
    this.exe = path;
    const file = readWhole(host, path, o.program);
    const elf = parseProgram(file, o.program);
    const main = loadImage(this.as, elf, file, elf.dyn ? PIE_BASE : null);
    this.as.brkStart = this.as.brkEnd = main.end;
    let entry = main.entry;
    let interpBase = 0;
    if (elf.interp !== null) {
      const ipath = this.resolve('/', elf.interp, true);
      if (typeof ipath === 'number') {
        throw new VirtusError('EXEC_NO_INTERP', `${o.program}: its interpreter ${elf.interp} is not in the root (${errnoText(ipath)}); give the root with --root`);
      }
      const ifile = readWhole(host, ipath, elf.interp);
      const ielf = parseProgram(ifile, elf.interp);
      const interp = loadImage(this.as, ielf, ifile, null);
      entry = interp.entry;
      interpBase = interp.bias;
    }
    SignalState.mapTrampoline(this);
    const random = new Uint8Array(16);
    host.random(random);
    const sp = buildStack(this.as, {
      argv: o.argv,
      envp: o.envp,
      execfn: o.program,
      random,
      auxv: [
        [AT.PHDR, main.phdr], [AT.PHENT, elf.phentsize], [AT.PHNUM, elf.phnum], [AT.PAGESZ, 4096],
        [AT.BASE, interpBase], [AT.FLAGS, 0], [AT.ENTRY, main.entry], [AT.UID, host.ids.uid], [AT.EUID, host.ids.uid],
        [AT.GID, host.ids.gid], [AT.EGID, host.ids.gid], [AT.HWCAP, HWCAP_RV64GC], [AT.CLKTCK, 100], [AT.SECURE, 0],
      ],
    });
    this.startHart(entry, sp);
  }

  /** U-mode, Sv39 over this address space, the FPU on, counters readable, PMP open (3.7.1). */
  private startHart(entry: number, sp: number): void {
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
    h.setPcNum(entry);
    h.setX(2, BigInt(sp));
  }

  /** Runs until the program exits or is killed. */
  run(): ExecExit {
    const e = this.machine.engines[0]!;
    while (!this.exit) e.run(SLICE);
    this.fds.closeAll();
    return this.exit;
  }

  /** Resolves a guest path from a guest-absolute directory (path.ts). */
  resolve(base: string, path: string, followLast: boolean): string | number {
    return resolvePath(this.host, base, path, followLast);
  }

  /** Ends the process with an exit status. */
  exitWith(code: number): void {
    this.exit ??= { code: code & 0xff, signal: null };
  }

  /** Ends the process by a signal (the default action of a fatal signal). */
  killWith(sig: number, message: string): void {
    this.exit ??= { code: 128 + sig, signal: sig, message };
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
    this.calls.set(n, (this.calls.get(n) ?? 0) + 1);
    const f = SYSCALLS[n];
    let r: number;
    if (f) r = f(this, this.args);
    else {
      this.unimplemented.set(n, (this.unimplemented.get(n) ?? 0) + 1);
      r = -E.ENOSYS;
    }
    if (this.exit || n === SYS.rt_sigreturn) return;
    h.x[A0] = r % 2 ** 32 | 0;
    h.x[A0 + 1] = Math.floor(r / 2 ** 32) | 0;
    const lo = (h.pc[0]! + 4) | 0;
    h.setPc(lo, (lo >>> 0) < (h.pc[0]! >>> 0) ? (h.pc[1]! + 1) | 0 : h.pc[1]!);
    const sig = this.signals.pending;
    // A signal the program sent itself arrives as the call returns, unless it is blocked.
    if (sig && !((this.signals.blocked >> BigInt(sig - 1)) & 1n)) {
      this.signals.pending = 0;
      this.signals.deliver(this, sig, 0, `${signalName(sig)} sent by the program itself`, null);
    }
  }
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

/** Reads a whole file through the host (the program, its interpreter). */
export function readWhole(host: ExecHost, path: string, name: string): Uint8Array {
  const fail = (e: number): never => {
    throw new VirtusError('EXEC_NO_PROGRAM', `${name}: ${errnoText(e)}`);
  };
  const fd = host.open(path, { read: true, write: false, create: false, exclusive: false, truncate: false, append: false, directory: false, noFollow: false, mode: 0 });
  if (fd < 0) fail(fd);
  try {
    const st = host.fstat(fd);
    if (typeof st === 'number') return fail(st);
    if ((st.mode & S_IFMT) === S_IFDIR) fail(-E.EISDIR);
    if (st.size > 1n << 30n) throw new VirtusError('EXEC_BAD_ELF', `${name}: larger than 1 GiB`);
    const buf = new Uint8Array(Number(st.size));
    let done = 0;
    while (done < buf.length) {
      const n = host.read(fd, buf.subarray(done), done);
      if (n < 0) fail(n);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    host.close(fd);
  }
}

const ERRNO_TEXT: Record<number, string> = {
  [E.ENOENT]: 'no such file or directory', [E.EACCES]: 'permission denied', [E.ENOTDIR]: 'not a directory',
  [E.ELOOP]: 'too many levels of symbolic links', [E.EISDIR]: 'is a directory',
};

/** A user-facing text for -errno. */
export function errnoText(e: number): string {
  return ERRNO_TEXT[-e] ?? `error ${-e}`;
}

const SIGNAL_NAMES: Record<number, string> = { 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM' };

/** A signal's name (SIGSEGV), or its number. */
export function signalName(sig: number): string {
  return SIGNAL_NAMES[sig] ?? `signal ${sig}`;
}
