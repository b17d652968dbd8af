/**
 * System calls on open files: openat, close, read/write and their vector and positioned forms,
 * lseek, dup, fcntl, ioctl (terminals), ftruncate, fsync, fchmod.
 */
import { BLOCK, E, O, S_IFDIR, S_IFMT, S_IFREG, SYS } from './abi.ts';

const SIGPIPE = 13;
import type { OpenFile } from './files.ts';
import { procFile } from './proc-files.ts';
import { sockRecv, sockSend, wouldBlock } from './sys-net.ts';
import type { GuestProcess } from './process.ts';
import { atPath, put } from './sys-dir.ts';
import type { Syscall, SyscallArgs } from './syscalls.ts';

/** The most one read or write moves (a larger count is a short transfer, as POSIX allows). */
const IO_MAX = 1 << 22;
const IOV_MAX = 1024;
const F_DUPFD = 0;
const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const F_DUPFD_CLOEXEC = 1030;
const FD_CLOEXEC = 1;
const TCGETS = 0x5401;
const TIOCGWINSZ = 0x5413;
// _IOR('T', 0x2A, struct termios2) and the _IOW set calls (asm-generic/ioctls.h).
const TCGETS2 = 0x802c542a;
const TCSETS2 = 0x402c542b;
const TCSETSF2 = 0x402c542d;
const TIOCGPGRP = 0x540f;
const TIOCSPGRP = 0x5410;
const FIONREAD = 0x541b;
const FIONBIO = 0x5421;

function fileOf(p: GuestProcess, fd: number): OpenFile | number {
  return p.fds.get(fd) ?? -E.EBADF;
}

/** Reads into guest memory at `ptr`; `at` is the position (null: the file's own offset). */
function readInto(p: GuestProcess, f: OpenFile, ptr: number, count: number, at: number | null): number {
  if ((f.flags & O.ACCMODE) === O.WRONLY) return -E.EBADF;
  if (f.isDir) return -E.EISDIR;
  if (f.mem) {
    const start = Math.min(at ?? f.pos ?? 0, f.mem.length);
    const chunk = f.mem.subarray(start, start + Math.min(count, IO_MAX));
    if (!p.as.write(ptr, chunk)) return -E.EFAULT;
    if (at === null) f.pos = start + chunk.length;
    return chunk.length;
  }
  if (f.socket) {
    const buf = new Uint8Array(Math.min(count, IO_MAX));
    const n = sockRecv(p, f, buf, 0, null);
    return n <= 0 || p.as.write(ptr, buf.subarray(0, n)) ? n : -E.EFAULT;
  }
  if (f.pipe) {
    if (count === 0) return 0;
    const got = f.pipe.read(Math.min(count, IO_MAX), (f.flags & O.NONBLOCK) !== 0);
    if (typeof got === 'number') return got;
    return got.length === 0 || p.as.write(ptr, got) ? got.length : -E.EFAULT;
  }
  const buf = new Uint8Array(Math.min(count, IO_MAX));
  const n = p.host.read(f.handle, buf, at ?? f.pos);
  // A host stream with nothing to read yet (a terminal the user has not typed on): the call
  // waits on the host, as a socket's does.
  if (n === -E.EAGAIN && f.pos === null) return wouldBlock(p, f);
  if (n <= 0) return n;
  if (!p.as.write(ptr, buf.subarray(0, n))) return -E.EFAULT;
  if (at === null && f.pos !== null) f.pos += n;
  return n;
}

/** Writes guest memory at `ptr` to the file; `at` as for readInto. */
function writeFrom(p: GuestProcess, f: OpenFile, ptr: number, count: number, at: number | null): number {
  if ((f.flags & O.ACCMODE) === 0) return -E.EBADF;
  const data = p.as.read(ptr, Math.min(count, IO_MAX));
  if (!data) return -E.EFAULT;
  if (f.socket) return sockSend(p, f, data, 0, null);
  if (f.pipe) {
    if (count === 0) return 0;
    const n = f.pipe.write(data, (f.flags & O.NONBLOCK) !== 0);
    if (n === -E.EPIPE) p.signals.send(SIGPIPE);
    return n;
  }
  let pos = at ?? f.pos;
  if (at === null && f.pos !== null && f.flags & O.APPEND) {
    const st = p.host.fstat(f.handle);
    if (typeof st !== 'number') pos = Number(st.size);
  }
  const n = p.host.write(f.handle, data, pos);
  if (n > 0 && at === null && f.pos !== null) f.pos = pos! + n;
  if (n === -E.EPIPE) p.signals.send(SIGPIPE); // a host pipe or socket without a reader, as for a guest pipe
  return n;
}

/** readv/writev: each iovec in turn, stopping at a short transfer. */
function vector(p: GuestProcess, a: SyscallArgs, write: boolean, at: number | null): number {
  const f = fileOf(p, a.int(0));
  if (typeof f === 'number') return f;
  const cnt = a.num(2);
  if (cnt > IOV_MAX) return -E.EINVAL;
  const iov = p.as.read(a.num(1), cnt * 16);
  if (!iov) return -E.EFAULT;
  const v = new DataView(iov.buffer);
  let total = 0;
  for (let i = 0; i < cnt; i++) {
    const base = Number(v.getBigUint64(i * 16, true));
    const len = Number(v.getBigUint64(i * 16 + 8, true));
    if (len === 0) continue;
    const pos = at === null ? null : at + total;
    const n = write ? writeFrom(p, f, base, len, pos) : readInto(p, f, base, len, pos);
    if (n < 0) return total > 0 && n !== BLOCK ? total : n;
    total += n;
    if (n < len) break;
  }
  return total;
}

function openat(p: GuestProcess, a: SyscallArgs): number {
  const flags = a.int(2);
  const raw = p.as.readString(a.num(1));
  const made = raw === null ? null : procFile(p, raw);
  if (made) {
    if ((flags & O.ACCMODE) !== 0) return -E.EACCES;
    const f: OpenFile = { handle: -1, path: '', flags: 0, pos: 0, isDir: false, dirents: null, keepOpen: true, refs: 0, mem: made };
    return p.fds.add(f, (flags & O.CLOEXEC) !== 0);
  }
  const creating = (flags & (O.CREAT | O.EXCL)) === (O.CREAT | O.EXCL);
  const path = atPath(p, a.int(0), a.num(1), !(flags & O.NOFOLLOW) && !creating);
  if (typeof path === 'number') return path;
  const acc = flags & O.ACCMODE;
  const h = p.host.open(path, {
    read: acc !== O.WRONLY || (flags & O.PATH) !== 0,
    write: acc !== 0 && !(flags & O.PATH),
    create: (flags & O.CREAT) !== 0,
    exclusive: (flags & O.EXCL) !== 0,
    truncate: (flags & O.TRUNC) !== 0,
    append: (flags & O.APPEND) !== 0,
    directory: (flags & O.DIRECTORY) !== 0,
    noFollow: true,
    mode: a.int(3) & ~p.umask & 0o7777,
  });
  if (h < 0) return h;
  const st = p.host.fstat(h);
  const type = typeof st === 'number' ? 0 : st.mode & S_IFMT;
  const file: OpenFile = {
    handle: h, path, flags: flags & (O.ACCMODE | O.APPEND | O.NONBLOCK), pos: type === S_IFREG || type === S_IFDIR ? 0 : null,
    isDir: type === S_IFDIR, dirents: null, keepOpen: false, refs: 0,
  };
  const fd = p.fds.add(file, (flags & O.CLOEXEC) !== 0);
  if (fd < 0) p.host.close(h);
  return fd;
}

function lseek(p: GuestProcess, a: SyscallArgs): number {
  const f = fileOf(p, a.int(0));
  if (typeof f === 'number') return f;
  if (f.pos === null) return -E.ESPIPE;
  const off = a.i64(1);
  const whence = a.int(2);
  if (f.isDir) {
    if (whence !== 0 || off !== 0) return -E.EINVAL;
    f.dirents = null; // rewinddir: read the directory again
    f.pos = 0;
    return 0;
  }
  let base: number;
  if (whence === 0) base = 0;
  else if (whence === 1) base = f.pos;
  else if (whence === 2) {
    const st = p.host.fstat(f.handle);
    if (typeof st === 'number') return st;
    base = Number(st.size);
  } else return -E.EINVAL;
  if (base + off < 0) return -E.EINVAL;
  f.pos = base + off;
  return f.pos;
}

function fcntl(p: GuestProcess, a: SyscallArgs): number {
  const fd = a.int(0);
  const f = fileOf(p, fd);
  if (typeof f === 'number') return f;
  switch (a.int(1)) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
      return p.fds.add(f, a.int(1) === F_DUPFD_CLOEXEC, a.int(2));
    case F_GETFD:
      return p.fds.cloexec(fd) ? FD_CLOEXEC : 0;
    case F_SETFD:
      p.fds.setCloexec(fd, (a.int(2) & FD_CLOEXEC) !== 0);
      return 0;
    case F_GETFL:
      return f.flags;
    case F_SETFL:
      f.flags = (f.flags & O.ACCMODE) | (a.int(2) & (O.APPEND | O.NONBLOCK));
      return 0;
    case 5: // F_GETLK, F_SETLK, F_SETLKW: one process holds every lock it asks for
    case 6:
    case 7:
      return 0;
    default:
      return -E.EINVAL;
  }
}

/** sizeof(struct termios) on riscv64 (asm-generic/termbits.h): four flag words, c_line, 19 c_cc. */
export const TERMIOS_SIZE = 36;

/**
 * A cooked terminal as a shell leaves it (struct termios, asm-generic/termbits.h): ICRNL |
 * IXON; OPOST | ONLCR; B38400 | CS8 | CREAD; ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL
 * | ECHOKE | IEXTEN; c_cc as Linux's INIT_C_CC (VINTR ^C, VQUIT ^\, VERASE DEL, VKILL ^U,
 * VEOF ^D, VMIN 1...).
 */
export function cookedTermios(): Uint8Array {
  const t = new Uint8Array(TERMIOS_SIZE);
  const v = new DataView(t.buffer);
  v.setUint32(0, 0o2400, true);
  v.setUint32(4, 0o5, true);
  v.setUint32(8, 0o277, true);
  v.setUint32(12, 0o105073, true);
  t.set([3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22], 17);
  return t;
}

/** The terminal ioctls programs ask at start (isatty, window size); none on a non-terminal. */
function ioctl(p: GuestProcess, a: SyscallArgs): number {
  const f = fileOf(p, a.int(0));
  if (typeof f === 'number') return f;
  const req = a.num(1) >>> 0;
  if (req === FIONBIO) {
    const on = p.as.read(a.num(2), 4);
    if (!on) return -E.EFAULT;
    f.flags = on.some((b) => b !== 0) ? f.flags | O.NONBLOCK : f.flags & ~O.NONBLOCK;
    return 0;
  }
  if (req === FIONREAD && f.pipe) return put(p, a.num(2), new Uint8Array(new Int32Array([f.pipe.available]).buffer));
  if (f.pipe || !p.host.isatty(f.handle)) return -E.ENOTTY;
  const term = p.host.terminal;
  if (req === TCGETS) return put(p, a.num(2), term ? term.getAttr() : cookedTermios());
  if (req === TCGETS2) {
    // struct termios2: the termios, then c_ispeed and c_ospeed (glibc 2.42's tcgetattr asks this).
    const t = new Uint8Array(TERMIOS_SIZE + 8);
    t.set(term ? term.getAttr() : cookedTermios());
    new DataView(t.buffer).setUint32(TERMIOS_SIZE, 38400, true);
    new DataView(t.buffer).setUint32(TERMIOS_SIZE + 4, 38400, true);
    return put(p, a.num(2), t);
  }
  if (req === TIOCGWINSZ) {
    const { rows, cols } = term?.winsize() ?? { rows: 24, cols: 80 };
    return put(p, a.num(2), new Uint8Array([rows & 0xff, rows >> 8, cols & 0xff, cols >> 8, 0, 0, 0, 0])); // struct winsize
  }
  if (req === TIOCGPGRP) return put(p, a.num(2), new Uint8Array(new Int32Array([p.pid]).buffer));
  // Process groups are not kept (getpgid answers the pid): every process is in the terminal's
  // foreground, so a shell's job control may set it to whatever it likes.
  if (req === TIOCSPGRP) return p.as.read(a.num(2), 4) ? 0 : -E.EFAULT;
  if ((req >= 0x5402 && req <= 0x5404) || (req >= TCSETS2 && req <= TCSETSF2)) {
    // TCSETS, TCSETSW, TCSETSF and their termios2 forms: a host without a terminal of its own
    // keeps its mode as it is.
    if (!term) return 0;
    const t = p.as.read(a.num(2), TERMIOS_SIZE);
    if (!t) return -E.EFAULT;
    term.setAttr(t, req === 0x5404 || req === TCSETSF2);
    return 0;
  }
  return -E.EINVAL;
}

export const FILE_CALLS: Record<number, Syscall> = {
  [SYS.openat]: openat,
  [SYS.close]: (p, a) => p.fds.close(a.int(0)),
  [SYS.read]: (p, a) => {
    const f = fileOf(p, a.int(0));
    return typeof f === 'number' ? f : readInto(p, f, a.num(1), a.num(2), null);
  },
  [SYS.write]: (p, a) => {
    const f = fileOf(p, a.int(0));
    return typeof f === 'number' ? f : writeFrom(p, f, a.num(1), a.num(2), null);
  },
  [SYS.pread64]: (p, a) => {
    const f = fileOf(p, a.int(0));
    if (typeof f === 'number') return f;
    return f.pos === null ? -E.ESPIPE : a.i64(3) < 0 ? -E.EINVAL : readInto(p, f, a.num(1), a.num(2), a.i64(3));
  },
  [SYS.pwrite64]: (p, a) => {
    const f = fileOf(p, a.int(0));
    if (typeof f === 'number') return f;
    return f.pos === null ? -E.ESPIPE : a.i64(3) < 0 ? -E.EINVAL : writeFrom(p, f, a.num(1), a.num(2), a.i64(3));
  },
  [SYS.readv]: (p, a) => vector(p, a, false, null),
  [SYS.writev]: (p, a) => vector(p, a, true, null),
  [SYS.lseek]: lseek,
  [SYS.dup]: (p, a) => {
    const f = fileOf(p, a.int(0));
    return typeof f === 'number' ? f : p.fds.add(f, false);
  },
  [SYS.dup3]: (p, a) => {
    const f = fileOf(p, a.int(0));
    if (typeof f === 'number') return f;
    const to = a.int(1);
    if (to === a.int(0) || to < 0 || to >= 1024 || a.int(2) & ~O.CLOEXEC) return to === a.int(0) ? -E.EINVAL : to < 0 || to >= 1024 ? -E.EBADF : -E.EINVAL;
    p.fds.place(to, f, (a.int(2) & O.CLOEXEC) !== 0);
    return to;
  },
  [SYS.fcntl]: fcntl,
  [SYS.ioctl]: ioctl,
  [SYS.ftruncate]: (p, a) => {
    const f = fileOf(p, a.int(0));
    if (typeof f === 'number') return f;
    return a.i64(1) < 0 ? -E.EINVAL : p.host.ftruncate(f.handle, a.i64(1));
  },
  [SYS.fsync]: (p, a) => {
    const f = fileOf(p, a.int(0));
    return typeof f === 'number' ? f : p.host.fsync(f.handle);
  },
  [SYS.fdatasync]: (p, a) => {
    const f = fileOf(p, a.int(0));
    return typeof f === 'number' ? f : p.host.fsync(f.handle);
  },
  [SYS.fchmod]: (p, a) => {
    const f = fileOf(p, a.int(0));
    return typeof f === 'number' ? f : p.host.fchmod(f.handle, a.int(1) & 0o7777);
  },
};

const POLLIN = 1;
const POLLOUT = 4;
const POLLERR = 8;
const POLLHUP = 16;
const POLLNVAL = 32;

/**
 * ppoll(fds, nfds, timeout, sigmask): a pipe is readable when it holds bytes or has lost its
 * writers, writable while it has room and readers; host files and streams are always ready
 * (their reads block the whole run, as the host's calls are synchronous, or, for a host
 * terminal without input, wait on the host in the read). With nothing ready
 * the call waits for the other processes, or returns 0 at once for a zero timeout. A finite
 * timeout is not measured: the call waits as if it had none.
 */
function ppoll(p: GuestProcess, a: SyscallArgs): number {
  const n = a.num(1);
  if (n > 1024) return -E.EINVAL;
  const buf = p.as.read(a.num(0), n * 8);
  if (!buf) return -E.EFAULT;
  const v = new DataView(buf.buffer);
  let ready = 0;
  for (let i = 0; i < n; i++) {
    const fd = v.getInt32(i * 8, true);
    const events = v.getInt16(i * 8 + 4, true);
    let re = 0;
    if (fd >= 0) {
      const f = p.fds.get(fd);
      if (!f) re = POLLNVAL;
      else if (f.pipe) {
        const write = (f.flags & O.ACCMODE) !== 0;
        if (!write) re = (f.pipe.available > 0 ? POLLIN : 0) | (f.pipe.writeEnd.refs === 0 ? POLLHUP : 0);
        else re = f.pipe.readEnd.refs === 0 ? POLLERR : f.pipe.available < 65536 ? POLLOUT : 0;
      } else if (f.socket) {
        re = p.host.sockets!.poll(f.handle, events);
        if (re < 0) re = POLLERR;
      } else re = POLLIN | POLLOUT;
      re &= events | POLLERR | POLLHUP | POLLNVAL;
    }
    v.setInt16(i * 8 + 6, re, true);
    if (re) ready++;
  }
  if (ready === 0) {
    for (let i = 0; i < n; i++) if (p.fds.get(v.getInt32(i * 8, true))?.socket) p.current.hostWait = true;
  }
  if (ready === 0 && a.num(2) !== 0) {
    const ts = p.as.read(a.num(2), 16);
    if (!ts) return -E.EFAULT;
    const zero = ts.every((b) => b === 0);
    if (!zero) return BLOCK;
  } else if (ready === 0) return BLOCK;
  return p.as.write(a.num(0), buf) ? ready : -E.EFAULT;
}

FILE_CALLS[SYS.ppoll] = ppoll;
