/**
 * The rest of the calls coreutils-style programs make: links, truncate, ownership, statfs,
 * sendfile, resource usage and times, sysinfo, a thread's name (prctl), and fadvise64 (advice
 * that needs no action).
 */
import { AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW, E, SYS } from './abi.ts';
import { i64At } from './guest-struct.ts';
import type { ExecStatfs } from './host.ts';
import type { GuestProcess } from './process.ts';
import { atPath, put } from './sys-dir.ts';
import type { Syscall, SyscallArgs } from './syscalls.ts';

const AT_SYMLINK_FOLLOW = 0x400;
const PR_SET_NAME = 15;
const PR_GET_NAME = 16;
const CLK_TCK = 100;

/** `struct statfs` on riscv64 (asm-generic/statfs.h, 64-bit longs): 120 bytes. */
function statfsBytes(s: ExecStatfs): Uint8Array {
  const b = new Uint8Array(120);
  const v = new DataView(b.buffer);
  v.setBigInt64(0, BigInt(s.type), true);
  v.setBigInt64(8, BigInt(s.bsize), true);
  [s.blocks, s.bfree, s.bavail, s.files, s.ffree].forEach((x, i) => v.setBigUint64(16 + 8 * i, x, true));
  v.setBigInt64(64, 255n, true); // f_namelen
  v.setBigInt64(72, BigInt(s.bsize), true); // f_frsize
  return b;
}

function linkat(p: GuestProcess, a: SyscallArgs): number {
  const flags = a.int(4);
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) return -E.EINVAL;
  const from = atPath(p, a.int(0), a.num(1), (flags & AT_SYMLINK_FOLLOW) !== 0);
  if (typeof from === 'number') return from;
  const to = atPath(p, a.int(2), a.num(3), false);
  return typeof to === 'number' ? to : p.host.link(from, to);
}

function sendfile(p: GuestProcess, a: SyscallArgs): number {
  const out = p.fds.get(a.int(0));
  const inp = p.fds.get(a.int(1));
  if (!out || !inp) return -E.EBADF;
  if (inp.pipe || inp.pos === null) return -E.EINVAL;
  let at = inp.pos;
  if (a.num(2) !== 0) {
    const o = p.as.read(a.num(2), 8);
    if (!o) return -E.EFAULT;
    at = i64At(o, 0);
  }
  const buf = new Uint8Array(Math.min(a.num(3), 1 << 22));
  const n = p.host.read(inp.handle, buf, at);
  if (n <= 0) return n;
  let w: number;
  if (out.pipe) w = out.pipe.write(buf.subarray(0, n), false);
  else {
    w = p.host.write(out.handle, buf.subarray(0, n), out.pos);
    if (w > 0 && out.pos !== null) out.pos += w;
  }
  if (w < 0) return w;
  if (a.num(2) !== 0) {
    if (!p.as.write(a.num(2), new Uint8Array(new BigInt64Array([BigInt(at + w)]).buffer))) return -E.EFAULT;
  } else inp.pos = at + w;
  return w;
}

function prctl(p: GuestProcess, a: SyscallArgs): number {
  if (a.int(0) === PR_SET_NAME) {
    const n = p.as.read(a.num(1), 16);
    if (!n) return -E.EFAULT;
    const z = n.indexOf(0);
    const name = new Uint8Array(16);
    name.set(n.subarray(0, z < 0 ? 15 : Math.min(z, 15)));
    p.current.name = name;
    return 0;
  }
  if (a.int(0) === PR_GET_NAME) {
    const name = p.current.name ?? new TextEncoder().encode(p.exe.slice(p.exe.lastIndexOf('/') + 1).slice(0, 15).padEnd(16, '\0'));
    return put(p, a.num(1), name);
  }
  return -E.EINVAL;
}

export const MORE_CALLS: Record<number, Syscall> = {
  [SYS.linkat]: linkat,
  [SYS.truncate]: (p, a) => {
    const path = atPath(p, -100, a.num(0), true);
    if (typeof path === 'number') return path;
    return a.i64(1) < 0 ? -E.EINVAL : p.host.truncate(path, a.i64(1));
  },
  [SYS.fchownat]: (p, a) => {
    const flags = a.int(4);
    const path = atPath(p, a.int(0), a.num(1), !(flags & AT_SYMLINK_NOFOLLOW));
    return typeof path === 'number' ? path : p.host.chown(path, a.int(2), a.int(3), (flags & AT_SYMLINK_NOFOLLOW) !== 0);
  },
  [SYS.fchown]: (p, a) => {
    const f = p.fds.get(a.int(0));
    if (!f || f.pipe) return -E.EBADF;
    return p.host.chown(f.handle, a.int(1), a.int(2), false);
  },
  [SYS.statfs]: (p, a) => {
    const path = atPath(p, -100, a.num(0), true);
    if (typeof path === 'number') return path;
    const s = p.host.statfs(path);
    return typeof s === 'number' ? s : put(p, a.num(1), statfsBytes(s));
  },
  [SYS.fstatfs]: (p, a) => {
    const f = p.fds.get(a.int(0));
    if (!f) return -E.EBADF;
    if (f.pipe || f.path === '') return -E.ENOSYS; // no path to ask the host about
    const s = p.host.statfs(f.path);
    return typeof s === 'number' ? s : put(p, a.num(1), statfsBytes(s));
  },
  [SYS.sendfile]: sendfile,
  [SYS.prctl]: prctl,
  // struct rusage (144 bytes): user time from the instructions retired is not kept; zeros.
  [SYS.getrusage]: (p, a) => (a.int(0) < -1 || a.int(0) > 1 ? -E.EINVAL : put(p, a.num(1), new Uint8Array(144))),
  [SYS.times]: (p, a) => {
    const ticks = Number(p.host.monotonicNs() / BigInt(1e9 / CLK_TCK));
    return a.num(0) === 0 ? ticks : put(p, a.num(0), new Uint8Array(32), ticks);
  },
  [SYS.sysinfo]: (p, a) => {
    // struct sysinfo (112 bytes on 64-bit): uptime, loads, RAM of the process's machine, procs.
    const b = new Uint8Array(112);
    const v = new DataView(b.buffer);
    v.setBigInt64(0, p.host.monotonicNs() / 1_000_000_000n, true);
    v.setBigUint64(32, BigInt(p.machine.ram.size), true);
    v.setBigUint64(40, BigInt(p.machine.ram.size - p.as.pagesInUse * 4096), true);
    v.setUint16(80, p.kernel.procs.size, true);
    v.setUint32(104, 1, true); // mem_unit
    return put(p, a.num(0), b);
  },
  [SYS.fadvise64]: () => 0,
};
