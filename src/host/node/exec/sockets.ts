/**
 * Host sockets for `virtus exec` (src/exec/host.ts `ExecSockets`) through the native helper
 * build/native/sockets.node (src/host/node/native/sockets.c): Node has no synchronous socket
 * calls. Every socket is made non-blocking on the host; the process VM makes a guest's
 * blocking call wait by trying it again. Without the helper, a program's sockets are ENOSYS.
 */
import type { ExecSockets, HostHandle } from '../../../exec/host.ts';
import { nativeHelper } from '../native.ts';

interface Native {
  socket(domain: number, type: number, protocol: number): number;
  connect(fd: number, addr: Buffer): number;
  bind(fd: number, addr: Buffer): number;
  listen(fd: number, backlog: number): number;
  accept(fd: number, flags: number): number;
  name(fd: number, peer: number, out: Buffer): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer): number;
  getsockopt(fd: number, level: number, name: number, out: Buffer): number;
  shutdown(fd: number, how: number): number;
  send(fd: number, buf: Buffer, flags: number, addr: Buffer | null): number;
  recv(fd: number, buf: Buffer, flags: number, from: Buffer | null): number;
  poll(fd: number, events: number): number;
}

const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;

/** The native helper (host/node/native.ts), or null when it was not built. */
function load(): Native | null {
  return nativeHelper<Native>('sockets');
}

const view = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** Host sockets, or undefined when the native helper was not built. */
export function nodeSockets(): ExecSockets | undefined {
  const n = load();
  if (!n) return undefined;
  return {
    socket: (d, t, p) => n.socket(d, t | SOCK_NONBLOCK | SOCK_CLOEXEC, p),
    connect: (h, addr) => n.connect(h, view(addr)),
    bind: (h, addr) => n.bind(h, view(addr)),
    listen: (h, backlog) => n.listen(h, backlog),
    accept: (h: HostHandle) => n.accept(h, SOCK_NONBLOCK | SOCK_CLOEXEC),
    name: (h, peer) => {
      const out = Buffer.alloc(128);
      const len = n.name(h, peer ? 1 : 0, out);
      return len < 0 ? len : new Uint8Array(out.subarray(0, len));
    },
    setsockopt: (h, level, name, value) => n.setsockopt(h, level, name, view(value)),
    getsockopt: (h, level, name, len) => {
      const out = Buffer.alloc(Math.min(len, 1024));
      const got = n.getsockopt(h, level, name, out);
      return got < 0 ? got : new Uint8Array(out.subarray(0, got));
    },
    shutdown: (h, how) => n.shutdown(h, how),
    send: (h, data, flags, addr) => n.send(h, view(data), flags | MSG_DONTWAIT, addr ? view(addr) : null),
    recv: (h, buf, flags, from) => n.recv(h, view(buf), flags | MSG_DONTWAIT, from ? view(from) : null),
    poll: (h, events) => n.poll(h, events),
  };
}
