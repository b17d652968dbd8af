/**
 * Socket system calls on host sockets (IPv4 and IPv6; unix sockets would name host paths
 * outside the root and are refused): socket, connect, bind, listen, accept(4), getsockname,
 * getpeername, setsockopt, getsockopt, shutdown, sendto, recvfrom, sendmsg and recvmsg (without
 * ancillary data); read and write reach them
 * too (sys-file.ts). Host sockets never block: a guest's blocking call that would wait returns
 * BLOCK and is made again at the thread's next turn, and the kernel idles the host meanwhile
 * when nothing else can run. A host without sockets answers ENOSYS.
 */
import { BLOCK, E, O, SYS } from './abi.ts';
import type { OpenFile } from './files.ts';
import type { GuestProcess } from './process.ts';
import { put } from './sys-dir.ts';
import type { Syscall, SyscallArgs } from './syscalls.ts';

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const POLLOUT = 4;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const SIGPIPE = 13;
const MAX_ADDR = 128;

/** The socket behind `fd`, or -errno. */
function sock(p: GuestProcess, fd: number): OpenFile | number {
  const f = p.fds.get(fd);
  if (!f) return -E.EBADF;
  return f.socket ? f : -E.ENOTSOCK;
}

/** A would-block answer for a blocking guest call: wait (the host is idled meanwhile) or -EAGAIN. */
export function wouldBlock(p: GuestProcess, f: OpenFile, flags = 0): number {
  if (f.flags & O.NONBLOCK || flags & MSG_DONTWAIT) return -E.EAGAIN;
  p.current.hostWait = true;
  return BLOCK;
}

function addrArg(p: GuestProcess, ptr: number, len: number): Uint8Array | number {
  if (len < 2 || len > MAX_ADDR) return -E.EINVAL;
  const a = p.as.read(ptr, len);
  if (!a) return -E.EFAULT;
  const family = a[0]! | (a[1]! << 8);
  return family === AF_INET || family === AF_INET6 ? a : -E.EAFNOSUPPORT;
}

/** Writes an address to (ptr, *lenPtr) as the *name and accept calls do (truncated to the room given). */
function putAddr(p: GuestProcess, ptr: number, lenPtr: number, addr: Uint8Array): number {
  if (ptr === 0) return 0;
  const l = p.as.read(lenPtr, 4);
  if (!l) return -E.EFAULT;
  const room = new DataView(l.buffer).getUint32(0, true);
  if (!p.as.write(ptr, addr.subarray(0, Math.min(room, addr.length)))) return -E.EFAULT;
  return put(p, lenPtr, new Uint8Array(new Uint32Array([addr.length]).buffer));
}

/** Sends on a socket for send/sendto/write: SIGPIPE on a broken connection unless MSG_NOSIGNAL. */
export function sockSend(p: GuestProcess, f: OpenFile, data: Uint8Array, flags: number, addr: Uint8Array | null): number {
  const n = p.host.sockets!.send(f.handle, data, flags & ~MSG_NOSIGNAL, addr);
  if (n === -E.EAGAIN) return wouldBlock(p, f, flags);
  if (n === -E.EPIPE && !(flags & MSG_NOSIGNAL)) p.signals.send(SIGPIPE);
  return n;
}

/** Receives for recv/recvfrom/read. */
export function sockRecv(p: GuestProcess, f: OpenFile, buf: Uint8Array, flags: number, from: Uint8Array | null): number {
  const n = p.host.sockets!.recv(f.handle, buf, flags, from);
  return n === -E.EAGAIN ? wouldBlock(p, f, flags) : n;
}

function socket(p: GuestProcess, a: SyscallArgs): number {
  const s = p.host.sockets;
  if (!s) return -E.ENOSYS;
  const domain = a.int(0);
  if (domain !== AF_INET && domain !== AF_INET6) return -E.EAFNOSUPPORT;
  const type = a.int(1);
  const h = s.socket(domain, type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC), a.int(2));
  if (h < 0) return h;
  const f: OpenFile = {
    handle: h, path: '', flags: O.RDWR | (type & SOCK_NONBLOCK ? O.NONBLOCK : 0), pos: null, isDir: false, dirents: null,
    keepOpen: false, refs: 0, socket: { connecting: false },
  };
  const fd = p.fds.add(f, (type & SOCK_CLOEXEC) !== 0);
  if (fd < 0) p.host.close(h);
  return fd;
}

function connect(p: GuestProcess, a: SyscallArgs): number {
  const f = sock(p, a.int(0));
  if (typeof f === 'number') return f;
  const s = p.host.sockets!;
  if (f.socket!.connecting) {
    // Made again while connecting: done once writable, with SO_ERROR as the answer.
    if (!(s.poll(f.handle, POLLOUT) & POLLOUT)) return wouldBlock(p, f);
    f.socket!.connecting = false;
    const err = s.getsockopt(f.handle, SOL_SOCKET, SO_ERROR, 4);
    return typeof err === 'number' ? err : -new DataView(err.buffer, err.byteOffset).getInt32(0, true);
  }
  const addr = addrArg(p, a.num(1), a.num(2));
  if (typeof addr === 'number') return addr;
  const r = s.connect(f.handle, addr);
  if (r !== -E.EINPROGRESS || f.flags & O.NONBLOCK) return r;
  f.socket!.connecting = true;
  return wouldBlock(p, f);
}

function accept(p: GuestProcess, a: SyscallArgs, flags: number): number {
  const f = sock(p, a.int(0));
  if (typeof f === 'number') return f;
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return -E.EINVAL;
  const s = p.host.sockets!;
  const h = s.accept(f.handle);
  if (h === -E.EAGAIN) return wouldBlock(p, f);
  if (h < 0) return h;
  const c: OpenFile = {
    handle: h, path: '', flags: O.RDWR | (flags & SOCK_NONBLOCK ? O.NONBLOCK : 0), pos: null, isDir: false, dirents: null,
    keepOpen: false, refs: 0, socket: { connecting: false },
  };
  const fd = p.fds.add(c, (flags & SOCK_CLOEXEC) !== 0);
  if (fd < 0) {
    p.host.close(h);
    return fd;
  }
  const peer = s.name(h, true);
  if (typeof peer !== 'number') {
    const r = putAddr(p, a.num(1), a.num(2), peer);
    if (r < 0) return r;
  }
  return fd;
}

function name(p: GuestProcess, a: SyscallArgs, peer: boolean): number {
  const f = sock(p, a.int(0));
  if (typeof f === 'number') return f;
  const addr = p.host.sockets!.name(f.handle, peer);
  return typeof addr === 'number' ? addr : putAddr(p, a.num(1), a.num(2), addr);
}

/** The iovecs of a msghdr as (base, len) pairs, or -errno. */
function iovecs(p: GuestProcess, ptr: number, count: number): Array<[number, number]> | number {
  if (count > 1024) return -E.EMSGSIZE;
  const raw = p.as.read(ptr, count * 16);
  if (!raw) return -E.EFAULT;
  const v = new DataView(raw.buffer);
  return Array.from({ length: count }, (_, i) => [Number(v.getBigUint64(i * 16, true)), Number(v.getBigUint64(i * 16 + 8, true))]);
}

/** struct msghdr (riscv64, 56 bytes): name, namelen, iov, iovlen, control, controllen, flags. */
function msghdr(p: GuestProcess, ptr: number): { name: number; namelen: number; iov: number; iovlen: number; controllen: number } | number {
  const m = p.as.read(ptr, 56);
  if (!m) return -E.EFAULT;
  const v = new DataView(m.buffer);
  return {
    name: Number(v.getBigUint64(0, true)), namelen: v.getUint32(8, true), iov: Number(v.getBigUint64(16, true)),
    iovlen: Number(v.getBigUint64(24, true)), controllen: Number(v.getBigUint64(40, true)),
  };
}

function sendmsg(p: GuestProcess, a: SyscallArgs): number {
  const f = sock(p, a.int(0));
  if (typeof f === 'number') return f;
  const m = msghdr(p, a.num(1));
  if (typeof m === 'number') return m;
  if (m.controllen !== 0) return -E.EOPNOTSUPP; // ancillary data (SCM_RIGHTS...) is not carried
  const iov = iovecs(p, m.iov, m.iovlen);
  if (typeof iov === 'number') return iov;
  const parts: Uint8Array[] = [];
  for (const [base, len] of iov) {
    const d = p.as.read(base, Math.min(len, 1 << 22));
    if (!d) return -E.EFAULT;
    parts.push(d);
  }
  const data = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of parts) {
    data.set(x, o);
    o += x.length;
  }
  let addr: Uint8Array | null = null;
  if (m.name !== 0) {
    const r = addrArg(p, m.name, m.namelen);
    if (typeof r === 'number') return r;
    addr = r;
  }
  return sockSend(p, f, data, a.int(2), addr);
}

function recvmsg(p: GuestProcess, a: SyscallArgs): number {
  const f = sock(p, a.int(0));
  if (typeof f === 'number') return f;
  const m = msghdr(p, a.num(1));
  if (typeof m === 'number') return m;
  const iov = iovecs(p, m.iov, m.iovlen);
  if (typeof iov === 'number') return iov;
  const buf = new Uint8Array(Math.min(iov.reduce((n, [, len]) => n + len, 0), 1 << 22));
  const from = m.name !== 0 ? new Uint8Array(MAX_ADDR) : null;
  const n = sockRecv(p, f, buf, a.int(2), from);
  if (n < 0) return n;
  let o = 0;
  for (const [base, len] of iov) {
    if (o >= n) break;
    const k = Math.min(len, n - o);
    if (!p.as.write(base, buf.subarray(o, o + k))) return -E.EFAULT;
    o += k;
  }
  const hdr = new Uint8Array(56);
  const hv = new DataView(hdr.buffer);
  const cur = p.as.read(a.num(1), 56);
  if (!cur) return -E.EFAULT;
  hdr.set(cur);
  if (from) {
    const family = from[0]! | (from[1]! << 8);
    const len = family === AF_INET6 ? 28 : 16;
    if (!p.as.write(m.name, from.subarray(0, Math.min(len, m.namelen)))) return -E.EFAULT;
    hv.setUint32(8, len, true);
  }
  hv.setBigUint64(40, 0n, true); // no ancillary data
  hv.setInt32(48, 0, true);
  return p.as.write(a.num(1), hdr) ? n : -E.EFAULT;
}

export const NET_CALLS: Record<number, Syscall> = {
  [SYS.sendmsg]: sendmsg,
  [SYS.recvmsg]: recvmsg,
  [SYS.socket]: socket,
  [SYS.connect]: connect,
  [SYS.bind]: (p, a) => {
    const f = sock(p, a.int(0));
    if (typeof f === 'number') return f;
    const addr = addrArg(p, a.num(1), a.num(2));
    return typeof addr === 'number' ? addr : p.host.sockets!.bind(f.handle, addr);
  },
  [SYS.listen]: (p, a) => {
    const f = sock(p, a.int(0));
    return typeof f === 'number' ? f : p.host.sockets!.listen(f.handle, a.int(1));
  },
  [SYS.accept]: (p, a) => accept(p, a, 0),
  [SYS.accept4]: (p, a) => accept(p, a, a.int(3)),
  [SYS.getsockname]: (p, a) => name(p, a, false),
  [SYS.getpeername]: (p, a) => name(p, a, true),
  [SYS.setsockopt]: (p, a) => {
    const f = sock(p, a.int(0));
    if (typeof f === 'number') return f;
    if (a.num(4) > 1024) return -E.EINVAL;
    const v = p.as.read(a.num(3), a.num(4));
    return v ? p.host.sockets!.setsockopt(f.handle, a.int(1), a.int(2), v) : -E.EFAULT;
  },
  [SYS.getsockopt]: (p, a) => {
    const f = sock(p, a.int(0));
    if (typeof f === 'number') return f;
    const l = p.as.read(a.num(4), 4);
    if (!l) return -E.EFAULT;
    const v = p.host.sockets!.getsockopt(f.handle, a.int(1), a.int(2), new DataView(l.buffer).getUint32(0, true));
    if (typeof v === 'number') return v;
    if (!p.as.write(a.num(3), v)) return -E.EFAULT;
    return put(p, a.num(4), new Uint8Array(new Uint32Array([v.length]).buffer));
  },
  [SYS.shutdown]: (p, a) => {
    const f = sock(p, a.int(0));
    return typeof f === 'number' ? f : p.host.sockets!.shutdown(f.handle, a.int(1));
  },
  [SYS.sendto]: (p, a) => {
    const f = sock(p, a.int(0));
    if (typeof f === 'number') return f;
    const data = p.as.read(a.num(1), Math.min(a.num(2), 1 << 22));
    if (!data) return -E.EFAULT;
    let addr: Uint8Array | null = null;
    if (a.num(4) !== 0) {
      const r = addrArg(p, a.num(4), a.num(5));
      if (typeof r === 'number') return r;
      addr = r;
    }
    return sockSend(p, f, data, a.int(3), addr);
  },
  [SYS.recvfrom]: (p, a) => {
    const f = sock(p, a.int(0));
    if (typeof f === 'number') return f;
    const buf = new Uint8Array(Math.min(a.num(2), 1 << 22));
    const from = a.num(4) !== 0 ? new Uint8Array(MAX_ADDR) : null;
    const n = sockRecv(p, f, buf, a.int(3), from);
    if (n < 0) return n;
    if (!p.as.write(a.num(1), buf.subarray(0, n))) return -E.EFAULT;
    if (from) {
      const family = from[0]! | (from[1]! << 8);
      const r = putAddr(p, a.num(4), a.num(5), from.subarray(0, family === AF_INET6 ? 28 : 16));
      if (r < 0) return r;
    }
    return n;
  },
};
