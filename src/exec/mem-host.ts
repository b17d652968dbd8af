/**
 * An ExecHost over an in-memory file tree, for hosts without a file system of their own (a
 * browser tab) and for tests: directories, regular files, symbolic links and hard links with
 * inode numbers, modes and times; the standard streams are callbacks. Paths arrive resolved by
 * the core (path.ts), so only the last component may be a link.
 */
import { E, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from './abi.ts';
import type { ExecDirent, ExecHost, ExecStat, ExecStatfs, ExecTerminal, HostHandle, OpenMode } from './host.ts';

interface Inode {
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  data: Uint8Array;
  size: number;
  /** A directory's entries. */
  entries?: Map<string, Inode>;
  target?: string;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** The standard streams of a MemExecHost. */
export interface MemStdio {
  /** Bytes for the guest's stdin, null at end of input, or 'wait' while none are ready yet. */
  read(max: number): Uint8Array | null | 'wait';
  write(fd: 1 | 2, bytes: Uint8Array): void;
  /** With one, the three streams are this terminal (isatty, a character device, its termios). */
  readonly terminal?: ExecTerminal;
}

const STDIO = 3;

export class MemExecHost implements ExecHost {
  readonly stdio = [0, 1, 2] as const;
  readonly ids = { pid: 1000, ppid: 1, uid: 1000, gid: 1000 };
  readonly uname = { nodename: 'virtus', release: '6.1.0', version: '#1 SMP' };
  private readonly root: Inode;
  private nextIno = 1n;
  private readonly handles = new Map<number, Inode>();
  private nextHandle = 10;

  readonly terminal?: ExecTerminal;

  constructor(private readonly io: MemStdio) {
    this.terminal = io.terminal;
    this.root = this.inode(S_IFDIR | 0o755);
    this.root.entries = new Map();
  }

  private inode(mode: number): Inode {
    const now = this.realtimeNs();
    return {
      ino: this.nextIno++, mode, nlink: 1, uid: this.ids.uid, gid: this.ids.gid, data: new Uint8Array(0), size: 0,
      atimeNs: now, mtimeNs: now, ctimeNs: now,
    };
  }

  /** The inode at a resolved path and its parent directory; the inode is undefined when missing. */
  private walk(path: string): { parent: Inode | undefined; name: string; node: Inode | undefined } | number {
    const parts = path.split('/').filter((c) => c !== '');
    let dir = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const next = dir.entries?.get(parts[i]!);
      if (!next) return -E.ENOENT;
      if (!next.entries) return -E.ENOTDIR;
      dir = next;
    }
    if (parts.length === 0) return { parent: undefined, name: '', node: this.root };
    const name = parts[parts.length - 1]!;
    return { parent: dir, name, node: dir.entries!.get(name) };
  }

  // ---- setting up the tree (host side) ----

  /** Creates a directory and its parents. */
  mkdirp(path: string, mode = 0o755): void {
    let at = '';
    for (const c of path.split('/').filter((x) => x !== '')) {
      at += `/${c}`;
      const r = this.mkdir(at, mode);
      if (r < 0 && r !== -E.EEXIST) throw new RangeError(`mkdirp ${path}: ${r}`);
    }
  }

  /** Writes a regular file (its directory must exist). */
  writeFile(path: string, data: Uint8Array, mode = 0o644): void {
    const h = this.open(path, { read: false, write: true, create: true, exclusive: false, truncate: true, append: false, directory: false, noFollow: true, mode });
    if (h < 0) throw new RangeError(`writeFile ${path}: ${h}`);
    this.write(h, data, 0);
    this.close(h);
  }

  /** A regular file's bytes, or null. */
  readFile(path: string): Uint8Array | null {
    const w = this.walk(path);
    if (typeof w === 'number' || !w.node || (w.node.mode & S_IFMT) !== S_IFREG) return null;
    return w.node.data.slice(0, w.node.size);
  }

  // ---- ExecHost ----

  lstat(path: string): ExecStat | number {
    const w = this.walk(path);
    if (typeof w === 'number') return w;
    return w.node ? this.stat(w.node) : -E.ENOENT;
  }

  private stat(n: Inode): ExecStat {
    const size = (n.mode & S_IFMT) === S_IFLNK ? new TextEncoder().encode(n.target!).length : n.entries ? 4096 : n.size;
    return {
      dev: 1n, ino: n.ino, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, rdev: 0n, size: BigInt(size), blksize: 4096,
      blocks: BigInt(Math.ceil(size / 512)), atimeNs: n.atimeNs, mtimeNs: n.mtimeNs, ctimeNs: n.ctimeNs,
    };
  }

  readlink(path: string): string | number {
    const w = this.walk(path);
    if (typeof w === 'number') return w;
    if (!w.node) return -E.ENOENT;
    return w.node.target ?? -E.EINVAL;
  }

  open(path: string, m: OpenMode): HostHandle | number {
    const w = this.walk(path);
    if (typeof w === 'number') return w;
    let n = w.node;
    if (n && m.create && m.exclusive) return -E.EEXIST;
    if (!n) {
      if (!m.create || !w.parent) return -E.ENOENT;
      n = this.inode(S_IFREG | (m.mode & 0o7777));
      w.parent.entries!.set(w.name, n);
      w.parent.mtimeNs = n.mtimeNs;
    }
    if (n.target !== undefined) return m.noFollow ? -E.ELOOP : -E.ENOENT;
    if (m.directory && !n.entries) return -E.ENOTDIR;
    if (n.entries && m.write) return -E.EISDIR;
    if (m.truncate && m.write) n.size = 0;
    const h = this.nextHandle++;
    this.handles.set(h, n);
    return h;
  }

  read(h: HostHandle, buf: Uint8Array, pos: number | null): number {
    if (h < STDIO) {
      if (h !== 0) return -E.EBADF;
      const got = this.io.read(buf.length);
      if (got === 'wait') return -E.EAGAIN;
      if (!got) return 0;
      buf.set(got.subarray(0, buf.length));
      return Math.min(got.length, buf.length);
    }
    const n = this.handles.get(h);
    if (!n) return -E.EBADF;
    if (n.entries) return -E.EISDIR;
    const at = pos ?? 0;
    if (at >= n.size) return 0;
    const len = Math.min(buf.length, n.size - at);
    buf.set(n.data.subarray(at, at + len));
    return len;
  }

  write(h: HostHandle, buf: Uint8Array, pos: number | null): number {
    if (h < STDIO) {
      if (h === 0) return -E.EBADF;
      this.io.write(h as 1 | 2, buf.slice());
      return buf.length;
    }
    const n = this.handles.get(h);
    if (!n) return -E.EBADF;
    const at = pos ?? n.size;
    this.grow(n, at + buf.length);
    n.data.set(buf, at);
    n.mtimeNs = this.realtimeNs();
    return buf.length;
  }

  /** Makes room for `size` bytes and sets the size when it grows. */
  private grow(n: Inode, size: number): void {
    if (size > n.data.length) {
      const d = new Uint8Array(Math.max(size, n.data.length * 2, 4096));
      d.set(n.data.subarray(0, n.size));
      n.data = d;
    }
    if (size > n.size) {
      n.data.fill(0, n.size, size);
      n.size = size;
    }
  }

  fstat(h: HostHandle): ExecStat | number {
    if (h < STDIO) {
      const now = this.realtimeNs();
      const mode = this.terminal ? 0o020620 : 0o010600; // S_IFCHR (a pty), else S_IFIFO
      return { dev: 2n, ino: BigInt(h + 1), mode, nlink: 1, uid: this.ids.uid, gid: this.ids.gid, rdev: 0n, size: 0n, blksize: 4096, blocks: 0n, atimeNs: now, mtimeNs: now, ctimeNs: now };
    }
    const n = this.handles.get(h);
    return n ? this.stat(n) : -E.EBADF;
  }

  close(h: HostHandle): number {
    return this.handles.delete(h) ? 0 : -E.EBADF;
  }

  ftruncate(h: HostHandle, len: number): number {
    const n = this.handles.get(h);
    if (!n || n.entries) return -E.EINVAL;
    if (len > n.size) this.grow(n, len);
    else n.size = len;
    return 0;
  }

  fsync(h: HostHandle): number {
    return this.handles.has(h) || h < STDIO ? 0 : -E.EBADF;
  }

  fchmod(h: HostHandle, mode: number): number {
    const n = this.handles.get(h);
    if (!n) return -E.EBADF;
    n.mode = (n.mode & S_IFMT) | mode;
    return 0;
  }

  isatty(h: HostHandle): boolean {
    return h < STDIO && this.terminal !== undefined;
  }

  readdir(path: string): ExecDirent[] | number {
    const w = this.walk(path);
    if (typeof w === 'number') return w;
    if (!w.node) return -E.ENOENT;
    if (!w.node.entries) return -E.ENOTDIR;
    const type = (n: Inode) => (n.entries ? 4 : n.target !== undefined ? 10 : 8);
    return [...w.node.entries].map(([name, n]) => ({ name, ino: n.ino, type: type(n) }));
  }

  mkdir(path: string, mode: number): number {
    const w = this.walk(path);
    if (typeof w === 'number') return w;
    if (w.node) return -E.EEXIST;
    const n = this.inode(S_IFDIR | mode);
    n.entries = new Map();
    n.nlink = 2;
    w.parent!.entries!.set(w.name, n);
    return 0;
  }

  unlink(path: string): number {
    const w = this.walk(path);
    if (typeof w === 'number') return w;
    if (!w.node || !w.parent) return -E.ENOENT;
    if (w.node.entries) return -E.EISDIR;
    w.parent.entries!.delete(w.name);
    w.node.nlink--;
    return 0;
  }

  rmdir(path: string): number {
    const w = this.walk(path);
    if (typeof w === 'number') return w;
    if (!w.node || !w.parent) return w.parent ? -E.ENOENT : -E.EBUSY;
    if (!w.node.entries) return -E.ENOTDIR;
    if (w.node.entries.size > 0) return -E.ENOTEMPTY;
    w.parent.entries!.delete(w.name);
    return 0;
  }

  rename(from: string, to: string): number {
    const a = this.walk(from);
    const b = this.walk(to);
    if (typeof a === 'number') return a;
    if (typeof b === 'number') return b;
    if (!a.node || !a.parent || !b.parent) return -E.ENOENT;
    if (b.node?.entries && b.node.entries.size > 0) return -E.ENOTEMPTY;
    if (b.node && !!b.node.entries !== !!a.node.entries) return a.node.entries ? -E.ENOTDIR : -E.EISDIR;
    a.parent.entries!.delete(a.name);
    b.parent.entries!.set(b.name, a.node);
    return 0;
  }

  symlink(target: string, path: string): number {
    const w = this.walk(path);
    if (typeof w === 'number') return w;
    if (w.node) return -E.EEXIST;
    const n = this.inode(S_IFLNK | 0o777);
    n.target = target;
    w.parent!.entries!.set(w.name, n);
    return 0;
  }

  link(from: string, to: string): number {
    const a = this.walk(from);
    const b = this.walk(to);
    if (typeof a === 'number') return a;
    if (typeof b === 'number') return b;
    if (!a.node) return -E.ENOENT;
    if (a.node.entries) return -E.EPERM;
    if (b.node) return -E.EEXIST;
    b.parent!.entries!.set(b.name, a.node);
    a.node.nlink++;
    return 0;
  }

  chmod(path: string, mode: number): number {
    const w = this.walk(path);
    if (typeof w === 'number') return w;
    if (!w.node) return -E.ENOENT;
    w.node.mode = (w.node.mode & S_IFMT) | mode;
    return 0;
  }

  truncate(path: string, len: number): number {
    const h = this.open(path, { read: false, write: true, create: false, exclusive: false, truncate: false, append: false, directory: false, noFollow: true, mode: 0 });
    if (h < 0) return h;
    const r = this.ftruncate(h, len);
    this.close(h);
    return r;
  }

  chown(target: string | HostHandle, uid: number, gid: number): number {
    const n = typeof target === 'number' ? this.handles.get(target) : (() => {
      const w = this.walk(target);
      return typeof w === 'number' ? undefined : w.node;
    })();
    if (!n) return -E.ENOENT;
    if ((uid !== -1 && uid !== this.ids.uid) || (gid !== -1 && gid !== this.ids.gid)) return -E.EPERM;
    return 0;
  }

  statfs(): ExecStatfs {
    return { type: 0x01021994, bsize: 4096, blocks: 1n << 20n, bfree: 1n << 19n, bavail: 1n << 19n, files: 1n << 20n, ffree: 1n << 19n }; // TMPFS_MAGIC
  }

  utimes(target: string | HostHandle, atimeNs: bigint, mtimeNs: bigint): number {
    const n = typeof target === 'number' ? this.handles.get(target) : (() => {
      const w = this.walk(target);
      return typeof w === 'number' ? undefined : w.node;
    })();
    if (!n) return -E.ENOENT;
    n.atimeNs = atimeNs;
    n.mtimeNs = mtimeNs;
    return 0;
  }

  realtimeNs(): bigint {
    return BigInt(Date.now()) * 1_000_000n;
  }

  monotonicNs(): bigint {
    return BigInt(Math.round(performance.now() * 1e6));
  }

  sleep(ns: number): void {
    const until = performance.now() + ns / 1e6;
    while (performance.now() < until) {
      // a synchronous host has nothing else to do meanwhile
    }
  }

  random(buf: Uint8Array): void {
    for (let i = 0; i < buf.length; i += 65536) crypto.getRandomValues(buf.subarray(i, Math.min(buf.length, i + 65536)));
  }
}
