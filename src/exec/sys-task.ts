/**
 * System calls between processes and threads: clone as fork, vfork and pthread_create's thread,
 * execve, wait4 and pipe2. A forked child gets a copy of the address space (process.ts); a
 * vfork parent waits until its child execs or exits, as CLONE_VFORK says; a thread is a further
 * hart over the same address space.
 */
import { isVirtusError } from '../util/errors.ts';
import { BLOCK, E, KEEP, O, SYS } from './abi.ts';
import { pipeFile } from './files.ts';
import { Pipe } from './pipe.ts';
import type { GuestProcess } from './process.ts';
import { prepareProgram, startProgram } from './program.ts';
import { put } from './sys-dir.ts';
import type { Syscall, SyscallArgs } from './syscalls.ts';

const CLONE_VM = 0x100;
const CLONE_VFORK = 0x4000;
const CLONE_THREAD = 0x10000;
const CLONE_SETTLS = 0x80000;
const CLONE_PARENT_SETTID = 0x100000;
const CLONE_CHILD_SETTID = 0x100_0000;
const CLONE_CHILD_CLEARTID = 0x20_0000;
const WNOHANG = 1;
const MAX_ARGS = 65536;
/** Bytes of argument and environment strings execve takes (Linux: a quarter of an 8 MiB stack). */
const MAX_ARG_BYTES = 2 << 20;

function u32(v: number): Uint8Array {
  return new Uint8Array(new Uint32Array([v >>> 0]).buffer);
}

/** clone(flags, newsp, parent_tid, tls, child_tid): the riscv64 argument order. */
function clone(p: GuestProcess, a: SyscallArgs): number {
  const flags = a.num(0);
  if (flags & CLONE_THREAD) {
    // A thread shares everything but its registers: CLONE_VM, CLONE_FILES, CLONE_SIGHAND are implied here.
    if (!(flags & CLONE_VM)) return -E.EINVAL;
    const t = p.spawnThread(a.num(1));
    if (!t) return -E.EAGAIN;
    if (flags & CLONE_SETTLS) t.hart.setX(4, BigInt(a.num(3)));
    if (flags & CLONE_PARENT_SETTID) put(p, a.num(2), u32(t.tid));
    if (flags & CLONE_CHILD_SETTID) p.as.write(a.num(4), u32(t.tid));
    if (flags & CLONE_CHILD_CLEARTID) t.clearTid = a.num(4);
    return t.tid;
  }
  if (flags & CLONE_VM && !(flags & CLONE_VFORK)) {
    p.kernel.unimplemented.set(SYS.clone, (p.kernel.unimplemented.get(SYS.clone) ?? 0) + 1);
    return -E.ENOSYS; // a process sharing memory without being a thread or a vfork child
  }
  let c: GuestProcess;
  try {
    c = p.fork();
  } catch (e) {
    // The host could not give the child a machine (its memory): fork(2)'s EAGAIN.
    if (isVirtusError(e, 'EXEC_HOST_MEMORY')) return -E.EAGAIN;
    throw e;
  }
  if (a.num(1) !== 0) c.hart.setX(2, BigInt(a.num(1)));
  if (flags & CLONE_SETTLS) c.hart.setX(4, BigInt(a.num(3)));
  if (flags & CLONE_PARENT_SETTID) {
    put(p, a.num(2), u32(c.pid));
    c.as.write(a.num(2), u32(c.pid));
  }
  if (flags & CLONE_CHILD_SETTID) c.as.write(a.num(4), u32(c.pid));
  c.current.clearTid = flags & CLONE_CHILD_CLEARTID ? a.num(4) : 0;
  if (flags & CLONE_VFORK) p.vforkChild = c;
  return c.pid;
}

/** A NULL-terminated array of string pointers, or -EFAULT / -E2BIG. */
function stringArray(p: GuestProcess, ptr: number): string[] | number {
  const out: string[] = [];
  let bytes = 0;
  if (ptr === 0) return out;
  for (let i = 0; ; i++) {
    if (i >= MAX_ARGS) return -E.E2BIG;
    const w = p.as.read(ptr + 8 * i, 8);
    if (!w) return -E.EFAULT;
    const at = Number(new DataView(w.buffer).getBigUint64(0, true));
    if (at === 0) return out;
    const s = p.as.readString(at, 131072);
    if (s === null) return -E.EFAULT;
    bytes += s.length + 1;
    if (bytes > MAX_ARG_BYTES) return -E.E2BIG;
    out.push(s);
  }
}

function execve(p: GuestProcess, a: SyscallArgs): number {
  const path = p.as.readString(a.num(0));
  if (path === null) return -E.EFAULT;
  const argv = stringArray(p, a.num(1));
  if (typeof argv === 'number') return argv;
  const envp = stringArray(p, a.num(2));
  if (typeof envp === 'number') return envp;
  if (argv.concat(envp).reduce((n, s) => n + s.length + 1, 0) > MAX_ARG_BYTES) return -E.E2BIG;
  const prog = prepareProgram(p, path);
  if ('errno' in prog) return prog.errno;
  p.fds.closeOnExec();
  p.signals.resetForExec();
  startProgram(p, prog, argv, envp, path);
  p.execed = true;
  return KEEP;
}

function wait4(p: GuestProcess, a: SyscallArgs): number {
  const pid = a.int(0);
  const kids = [...p.kernel.procs.values()].filter((c) => c.parent === p && (pid <= 0 || c.pid === pid));
  if (kids.length === 0) return -E.ECHILD;
  p.takeChildNews();
  const z = kids.find((c) => c.exit);
  if (!z) return a.int(2) & WNOHANG ? 0 : BLOCK;
  const e = z.exit!;
  // wait(2)'s status word: the exit code in bits 8-15, or the killing signal in bits 0-6.
  const status = e.signal !== null ? e.signal : (e.code & 0xff) << 8;
  if (a.num(1) !== 0 && put(p, a.num(1), u32(status)) < 0) return -E.EFAULT;
  if (a.num(3) !== 0 && put(p, a.num(3), new Uint8Array(144)) < 0) return -E.EFAULT;
  p.kernel.reap(z);
  return z.pid;
}

const WEXITED = 4;
const WNOWAIT = 0x0100_0000;
const P_ALL = 0;
const P_PID = 1;

/** waitid(idtype, id, infop, options, rusage): wait4 with a siginfo_t for the answer. */
function waitid(p: GuestProcess, a: SyscallArgs): number {
  const type = a.int(0);
  const id = a.int(1);
  const options = a.int(3);
  if ((type !== P_ALL && type !== P_PID) || !(options & WEXITED)) return -E.EINVAL;
  const kids = [...p.kernel.procs.values()].filter((c) => c.parent === p && (type === P_ALL || c.pid === id));
  if (kids.length === 0) return -E.ECHILD;
  const z = kids.find((c) => c.exit);
  const info = new Uint8Array(128);
  if (!z) {
    if (!(options & WNOHANG)) return BLOCK;
    return a.num(2) !== 0 && put(p, a.num(2), info) < 0 ? -E.EFAULT : 0;
  }
  const e = z.exit!;
  const v = new DataView(info.buffer);
  v.setInt32(0, 17, true); // si_signo: SIGCHLD
  v.setInt32(8, e.signal !== null ? 2 : 1, true); // si_code: CLD_KILLED or CLD_EXITED
  v.setInt32(16, z.pid, true);
  v.setUint32(20, p.host.ids.uid, true);
  v.setInt32(24, e.signal ?? e.code, true);
  if (a.num(2) !== 0 && put(p, a.num(2), info) < 0) return -E.EFAULT;
  if (!(options & WNOWAIT)) p.kernel.reap(z);
  return 0;
}

function pipe2(p: GuestProcess, a: SyscallArgs): number {
  const flags = a.int(1);
  if (flags & ~(O.CLOEXEC | O.NONBLOCK)) return -E.EINVAL;
  const pipe = new Pipe();
  const nb = (flags & O.NONBLOCK) !== 0;
  pipe.readEnd = pipeFile(pipe, false, nb);
  pipe.writeEnd = pipeFile(pipe, true, nb);
  const cloexec = (flags & O.CLOEXEC) !== 0;
  const r = p.fds.add(pipe.readEnd, cloexec);
  if (r < 0) return r;
  const w = p.fds.add(pipe.writeEnd, cloexec);
  if (w < 0) {
    p.fds.close(r);
    return w;
  }
  const fds = new Uint8Array(new Int32Array([r, w]).buffer);
  if (!p.as.write(a.num(0), fds)) {
    p.fds.close(r);
    p.fds.close(w);
    return -E.EFAULT;
  }
  return 0;
}

export const TASK_CALLS: Record<number, Syscall> = {
  [SYS.clone]: clone,
  [SYS.execve]: execve,
  [SYS.wait4]: wait4,
  [SYS.waitid]: waitid,
  [SYS.pipe2]: pipe2,
};
