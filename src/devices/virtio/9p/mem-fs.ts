/**
 * A shared folder held in memory, as the 9P server's HostFs (fs.ts): the folder a browser tab
 * gives its machine (files dropped on the page, files the guest writes for the user to
 * download), and anything else without a host folder. Core code: no Node, no DOM.
 *
 * The guest is hostile and the tab's memory is finite, so everything it can make is bounded:
 * the bytes held by all files together (`maxBytes`: a write beyond is cut short, or ENOSPC
 * when nothing fits; a file's buffer grows by doubling, and the doubling is counted too), the
 * entries (`maxEntries`, ENOSPC), open handles (MAX_HANDLES, ENFILE), the depth of a path
 * (MAX_DEPTH, ENAMETOOLONG) and a symbolic link's target (MAX_TARGET, ENAMETOOLONG). Names are
 * checked again here, as the server checks them (no "/", NUL, ".", ".." or empty names), so
 * the host's own calls (putFile) obey the same rules. Links are stored, never followed: a
 * link in the middle of a path is ELOOP, as fs.ts requires. A file removed while open keeps
 * its bytes (and its share of `maxBytes`) until its last handle closes.
 */
import { E, FsError, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type FsDirEntry, type FsOpenFlags, type FsStat, type FsStatFs, type HostFs } from './fs.ts';
import { validName } from './server.ts';

/** Open files and directories at once. */
export const MAX_HANDLES = 1024;
/** Names in a path from the root (Linux's PATH_MAX of 4096 allows about this many short ones). */
export const MAX_DEPTH = 256;
/** Bytes of a symbolic link's target (Linux's PATH_MAX less the NUL). */
export const MAX_TARGET = 4095;
const BLOCK = 4096;
const NAME_MAX = 255;
const utf8 = new TextEncoder();
const PERMS = 0o7777;

export interface MemFsLimits {
  /** Bytes all files may hold together. */
  maxBytes: number;
  /** Files, directories and links, the root included. */
  maxEntries: number;
}

/** A file, directory or link of the tree. */
interface Node {
  ino: bigint;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** A file's bytes: `size` of them are the file, the rest is room to grow. */
  data: Uint8Array;
  size: number;
  /** A directory's entries, each with the cookie Treaddir goes on from (insertion order). */
  entries: Map<string, { node: Node; cookie: number }> | null;
  nextCookie: number;
  target: string;
  /** Open handles on it (a removed file keeps its bytes while any is open). */
  opens: number;
}

/** A regular file of the folder, for the host's listing (download buttons). */
export interface MemFileInfo {
  path: string[];
  size: number;
  mtimeNs: bigint;
}

/** A path that names something below the root, every name valid, not too deep. */
function checkPath(path: readonly string[]): void {
  if (path.length === 0) throw new FsError(E.BUSY, 'the root has no name');
  if (path.length > MAX_DEPTH) throw new FsError(E.NAMETOOLONG, `paths are at most ${MAX_DEPTH} names deep`);
  for (const name of path) {
    // Linux's NAME_MAX counts bytes: a longer name could be listed but never opened by the guest.
    if (name.length > NAME_MAX || utf8.encode(name).length > NAME_MAX) throw new FsError(E.NAMETOOLONG, `names are at most ${NAME_MAX} bytes`);
    if (!validName(name)) throw new FsError(E.INVAL, `invalid name ${JSON.stringify(name)}`);
  }
}

const type = (n: Node): number => n.mode & S_IFMT;
const EMPTY = new Uint8Array(0);

export class MemFs implements HostFs {
  readonly readOnly = false;
  private readonly root: Node;
  private readonly handles = new Map<number, { node: Node; flags: FsOpenFlags | null }>();
  private nextHandle = 1;
  private nextIno = 1n;
  private entries = 0;
  /** Bytes held by file buffers (their capacity, not only their size). */
  private held = 0;

  constructor(
    readonly limits: MemFsLimits,
    private readonly now: () => bigint = () => BigInt(Date.now()) * 1_000_000n,
  ) {
    this.root = this.node(S_IFDIR | 0o777);
  }

  /** Bytes the files hold now (at most `limits.maxBytes`). */
  get bytesUsed(): number {
    return this.held;
  }

  private node(mode: number): Node {
    if (this.entries >= this.limits.maxEntries) throw new FsError(E.NOSPC, `the share holds ${this.limits.maxEntries} entries, its limit`);
    this.entries++;
    const t = this.now();
    const dir = (mode & S_IFMT) === S_IFDIR;
    return {
      ino: this.nextIno++, mode, uid: 0, gid: 0, nlink: dir ? 2 : 1, atimeNs: t, mtimeNs: t, ctimeNs: t,
      data: EMPTY, size: 0, entries: dir ? new Map() : null, nextCookie: 0, target: '', opens: 0,
    };
  }

  /** The directory holding the last name of `path`, and that name; every name is checked. */
  private parent(path: readonly string[]): { dir: Node; name: string } {
    checkPath(path);
    let dir = this.root;
    for (const [i, name] of path.entries()) {
      if (i === path.length - 1) break;
      const next = dir.entries!.get(name)?.node;
      if (!next) throw new FsError(E.NOENT, `no ${path.slice(0, i + 1).join('/')}`);
      if (type(next) === S_IFLNK) throw new FsError(E.LOOP, 'a symbolic link in the path');
      if (type(next) !== S_IFDIR) throw new FsError(E.NOTDIR, `${path.slice(0, i + 1).join('/')} is not a directory`);
      dir = next;
    }
    return { dir, name: path[path.length - 1]! };
  }

  private find(path: readonly string[]): Node {
    if (path.length === 0) return this.root;
    const { dir, name } = this.parent(path);
    const n = dir.entries!.get(name)?.node;
    if (!n) throw new FsError(E.NOENT, `no ${path.join('/')}`);
    return n;
  }

  private insert(dir: Node, name: string, n: Node): void {
    dir.entries!.set(name, { node: n, cookie: dir.nextCookie++ });
    if (type(n) === S_IFDIR) dir.nlink++;
    dir.mtimeNs = dir.ctimeNs = this.now();
  }

  private detach(dir: Node, name: string): Node {
    const n = dir.entries!.get(name)!.node;
    dir.entries!.delete(name);
    if (type(n) === S_IFDIR) dir.nlink--;
    dir.mtimeNs = dir.ctimeNs = this.now();
    n.nlink -= type(n) === S_IFDIR ? 2 : 1;
    n.ctimeNs = this.now();
    this.release(n);
    return n;
  }

  /** Frees a node nothing names and nothing holds open. */
  private release(n: Node): void {
    if (n.nlink > 0 || n.opens > 0) return;
    this.entries--;
    this.held -= n.data.length;
    n.data = EMPTY;
    n.size = 0;
  }

  /** Makes room for `size` bytes in a file; returns how many of them the limit allows. */
  private reserve(n: Node, size: number): number {
    if (size <= n.data.length) return size;
    const free = this.limits.maxBytes - this.held;
    const most = n.data.length + free;
    const want = Math.min(size, most);
    if (want <= n.data.length) return n.data.length;
    const cap = Math.min(Math.max(want, n.data.length * 2), most);
    const data = new Uint8Array(cap);
    data.set(n.data.subarray(0, n.size));
    this.held += cap - n.data.length;
    n.data = data;
    return want;
  }

  /** Sets a file's size, zeroing what it gains and giving back room it no longer needs. */
  private resize(n: Node, size: number): void {
    if (size > n.size) {
      if (this.reserve(n, size) < size) throw new FsError(E.NOSPC, `the share holds ${this.limits.maxBytes} bytes, its limit`);
      n.data.fill(0, n.size, size);
    } else if (size < n.data.length / 4) {
      const data = new Uint8Array(size);
      data.set(n.data.subarray(0, size));
      this.held -= n.data.length - size;
      n.data = data;
    }
    n.size = size;
    n.mtimeNs = n.ctimeNs = this.now();
  }

  private handle(n: Node, flags: FsOpenFlags | null): number {
    if (this.handles.size >= MAX_HANDLES) throw new FsError(E.NFILE, `${MAX_HANDLES} files are open in this share`);
    const h = this.nextHandle++;
    this.handles.set(h, { node: n, flags });
    n.opens++;
    return h;
  }

  private open_(h: number): { node: Node; flags: FsOpenFlags | null } {
    const o = this.handles.get(h);
    if (!o) throw new FsError(E.BADF, `no handle ${h}`);
    return o;
  }

  private stat(n: Node): FsStat {
    return {
      ino: n.ino, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, rdev: 0n, size: type(n) === S_IFLNK ? n.target.length : n.size,
      blksize: BLOCK, blocks: Math.ceil(n.data.length / 512), atimeNs: n.atimeNs, mtimeNs: n.mtimeNs, ctimeNs: n.ctimeNs,
    };
  }

  lstat(path: readonly string[]): FsStat {
    return this.stat(this.find(path));
  }

  fstat(handle: number): FsStat {
    return this.stat(this.open_(handle).node);
  }

  private checkFile(n: Node): void {
    if (type(n) === S_IFDIR) throw new FsError(E.ISDIR, 'is a directory');
    if (type(n) === S_IFLNK) throw new FsError(E.LOOP, 'is a symbolic link');
  }

  open(path: readonly string[], flags: FsOpenFlags): number {
    const n = this.find(path);
    this.checkFile(n);
    const h = this.handle(n, flags);
    if (flags.truncate && flags.write) this.resize(n, 0);
    return h;
  }

  openDir(path: readonly string[]): number {
    const n = this.find(path);
    if (type(n) === S_IFLNK) throw new FsError(E.LOOP, 'is a symbolic link');
    if (type(n) !== S_IFDIR) throw new FsError(E.NOTDIR, 'not a directory');
    return this.handle(n, null);
  }

  readdir(handle: number, index: number, count: number): FsDirEntry[] {
    const d = this.open_(handle).node;
    if (!d.entries) throw new FsError(E.NOTDIR, 'not a directory');
    const out: FsDirEntry[] = [];
    for (const [name, e] of d.entries) {
      if (out.length >= count) break;
      if (e.cookie >= index) out.push({ name, ino: e.node.ino, type: type(e.node), next: e.cookie + 1 });
    }
    return out;
  }

  create(path: readonly string[], mode: number, flags: FsOpenFlags & { exclusive: boolean }): number {
    const { dir, name } = this.parent(path);
    const have = dir.entries!.get(name)?.node;
    if (have) {
      if (flags.exclusive) throw new FsError(E.EXIST, `${path.join('/')} exists`);
      return this.open(path, flags);
    }
    const n = this.node(S_IFREG | (mode & PERMS));
    this.insert(dir, name, n);
    return this.handle(n, flags);
  }

  read(handle: number, position: number, buf: Uint8Array): number {
    const { node } = this.open_(handle);
    this.checkFile(node);
    if (position >= node.size) return 0;
    const part = node.data.subarray(position, Math.min(node.size, position + buf.length));
    buf.set(part);
    return part.length;
  }

  write(handle: number, position: number, data: Uint8Array): number {
    const { node, flags } = this.open_(handle);
    this.checkFile(node);
    if (!flags?.write) throw new FsError(E.BADF, 'not open for writing');
    const at = flags.append ? node.size : position;
    if (data.length === 0) return 0;
    const end = this.reserve(node, at + data.length);
    if (end <= at) throw new FsError(E.NOSPC, `the share holds ${this.limits.maxBytes} bytes, its limit`);
    if (at > node.size) node.data.fill(0, node.size, at);
    node.data.set(data.subarray(0, end - at), at);
    node.size = Math.max(node.size, end);
    node.mtimeNs = node.ctimeNs = this.now();
    return end - at;
  }

  fsync(handle: number): void {
    this.open_(handle);
  }

  close(handle: number): void {
    const o = this.open_(handle);
    this.handles.delete(handle);
    o.node.opens--;
    this.release(o.node);
  }

  private add(path: readonly string[], mode: number): Node {
    const { dir, name } = this.parent(path);
    if (dir.entries!.has(name)) throw new FsError(E.EXIST, `${path.join('/')} exists`);
    const n = this.node(mode);
    this.insert(dir, name, n);
    return n;
  }

  mkdir(path: readonly string[], mode: number): void {
    this.add(path, S_IFDIR | (mode & PERMS));
  }

  symlink(path: readonly string[], target: string): void {
    if (target.length > MAX_TARGET) throw new FsError(E.NAMETOOLONG, `link targets are at most ${MAX_TARGET} bytes`);
    if (target.includes('\0')) throw new FsError(E.INVAL, 'NUL in a link target');
    this.add(path, S_IFLNK | 0o777).target = target;
  }

  readlink(path: readonly string[]): string {
    const n = this.find(path);
    if (type(n) !== S_IFLNK) throw new FsError(E.INVAL, 'not a symbolic link');
    return n.target;
  }

  link(existing: readonly string[], path: readonly string[]): void {
    const n = this.find(existing);
    if (type(n) === S_IFDIR) throw new FsError(E.PERM, 'cannot link a directory');
    const { dir, name } = this.parent(path);
    if (dir.entries!.has(name)) throw new FsError(E.EXIST, `${path.join('/')} exists`);
    n.nlink++;
    n.ctimeNs = this.now();
    this.insert(dir, name, n);
  }

  unlink(path: readonly string[]): void {
    const { dir, name } = this.parent(path);
    const n = dir.entries!.get(name)?.node;
    if (!n) throw new FsError(E.NOENT, `no ${path.join('/')}`);
    if (type(n) === S_IFDIR) throw new FsError(E.ISDIR, 'is a directory');
    this.detach(dir, name);
  }

  rmdir(path: readonly string[]): void {
    const { dir, name } = this.parent(path);
    const n = dir.entries!.get(name)?.node;
    if (!n) throw new FsError(E.NOENT, `no ${path.join('/')}`);
    if (type(n) !== S_IFDIR) throw new FsError(E.NOTDIR, 'not a directory');
    if (n.entries!.size > 0) throw new FsError(E.NOTEMPTY, 'directory not empty');
    this.detach(dir, name);
  }

  rename(from: readonly string[], to: readonly string[]): void {
    const src = this.parent(from);
    const n = src.dir.entries!.get(src.name)?.node;
    if (!n) throw new FsError(E.NOENT, `no ${from.join('/')}`);
    const dst = this.parent(to);
    if (type(n) === S_IFDIR && to.length > from.length && from.every((x, i) => to[i] === x)) throw new FsError(E.INVAL, 'cannot move a directory into itself');
    const old = dst.dir.entries!.get(dst.name)?.node;
    if (old === n) return;
    if (old) {
      // rename(2): a directory replaces only an empty directory; a file only a non-directory.
      if (type(n) === S_IFDIR && type(old) !== S_IFDIR) throw new FsError(E.NOTDIR, 'not a directory');
      if (type(n) !== S_IFDIR && type(old) === S_IFDIR) throw new FsError(E.ISDIR, 'is a directory');
      if (old.entries && old.entries.size > 0) throw new FsError(E.NOTEMPTY, 'directory not empty');
      this.detach(dst.dir, dst.name);
    }
    src.dir.entries!.delete(src.name);
    if (type(n) === S_IFDIR) src.dir.nlink--;
    src.dir.mtimeNs = src.dir.ctimeNs = this.now();
    this.insert(dst.dir, dst.name, n);
  }

  chmod(path: readonly string[], mode: number): void {
    const n = this.find(path);
    n.mode = (n.mode & S_IFMT) | (mode & PERMS);
    n.ctimeNs = this.now();
  }

  chown(path: readonly string[], uid: number | null, gid: number | null): void {
    const n = this.find(path);
    if (uid !== null) n.uid = uid;
    if (gid !== null) n.gid = gid;
    n.ctimeNs = this.now();
  }

  truncate(path: readonly string[], size: number): void {
    const n = this.find(path);
    this.checkFile(n);
    this.resize(n, size);
  }

  utimes(path: readonly string[], atimeNs: bigint, mtimeNs: bigint): void {
    const n = this.find(path);
    n.atimeNs = atimeNs;
    n.mtimeNs = mtimeNs;
    n.ctimeNs = this.now();
  }

  statfs(): FsStatFs {
    const { maxBytes, maxEntries } = this.limits;
    const free = BigInt(Math.floor((maxBytes - this.held) / BLOCK));
    return {
      type: 0x0102_1997, bsize: BLOCK, blocks: BigInt(Math.floor(maxBytes / BLOCK)), bfree: free, bavail: free,
      files: BigInt(maxEntries), ffree: BigInt(maxEntries - this.entries), namelen: NAME_MAX,
    };
  }

  /**
   * The host puts a file in the folder (a file dropped on the page): creates or replaces
   * `path`, its directories made as needed. Fails with the FsError the guest would get (a bad
   * name, no room); a file too big for the room left is refused before anything changes.
   */
  putFile(path: readonly string[], bytes: Uint8Array): void {
    checkPath(path);
    const old = this.findOrNull(path);
    if (old && type(old) !== S_IFREG) throw new FsError(E.EXIST, `${path.join('/')} is not a regular file`);
    const room = this.limits.maxBytes - this.held + (old?.data.length ?? 0);
    if (bytes.length > room) throw new FsError(E.NOSPC, `the share holds ${this.limits.maxBytes} bytes, its limit, and has ${room} free`);
    for (let i = 1; i < path.length; i++) if (!this.findOrNull(path.slice(0, i))) this.mkdir(path.slice(0, i), 0o755);
    const h = this.create(path, 0o644, { read: false, write: true, truncate: true, append: false, exclusive: false });
    try {
      this.write(h, 0, bytes);
    } finally {
      this.close(h);
    }
  }

  /** A copy of the regular file at `path`. */
  getFile(path: readonly string[]): Uint8Array {
    const n = this.find(path);
    this.checkFile(n);
    return n.data.slice(0, n.size);
  }

  /** Every regular file, depth first, in each directory's order. */
  listFiles(): MemFileInfo[] {
    const out: MemFileInfo[] = [];
    const walk = (d: Node, at: string[]): void => {
      for (const [name, { node }] of d.entries!) {
        if (type(node) === S_IFDIR) walk(node, [...at, name]);
        else if (type(node) === S_IFREG) out.push({ path: [...at, name], size: node.size, mtimeNs: node.mtimeNs });
      }
    };
    walk(this.root, []);
    return out;
  }

  private findOrNull(path: readonly string[]): Node | null {
    try {
      return this.find(path);
    } catch (e) {
      if (e instanceof FsError && e.errno === E.NOENT) return null;
      throw e;
    }
  }
}

/**
 * One machine's view of a MemFs: the same tree, with the handles this machine opened closed
 * when it goes (a machine replaced by a snapshot's must not leave its open files behind).
 */
export function openMemShare(mem: MemFs): { fs: HostFs; close(): void } {
  const mine = new Set<number>();
  const opened = (h: number): number => (mine.add(h), h);
  const fs: HostFs = {
    readOnly: mem.readOnly,
    lstat: (p) => mem.lstat(p),
    fstat: (h) => mem.fstat(h),
    open: (p, f) => opened(mem.open(p, f)),
    openDir: (p) => opened(mem.openDir(p)),
    readdir: (h, i, n) => mem.readdir(h, i, n),
    create: (p, m, f) => opened(mem.create(p, m, f)),
    read: (h, at, buf) => mem.read(h, at, buf),
    write: (h, at, data) => mem.write(h, at, data),
    fsync: (h) => mem.fsync(h),
    close: (h) => {
      mem.close(h);
      mine.delete(h);
    },
    mkdir: (p, m) => mem.mkdir(p, m),
    symlink: (p, t) => mem.symlink(p, t),
    readlink: (p) => mem.readlink(p),
    link: (a, b) => mem.link(a, b),
    unlink: (p) => mem.unlink(p),
    rmdir: (p) => mem.rmdir(p),
    rename: (a, b) => mem.rename(a, b),
    chmod: (p, m) => mem.chmod(p, m),
    chown: (p, u, g) => mem.chown(p, u, g),
    truncate: (p, n) => mem.truncate(p, n),
    utimes: (p, a, m) => mem.utimes(p, a, m),
    statfs: () => mem.statfs(),
  };
  return {
    fs,
    close: () => {
      for (const h of mine) mem.close(h);
      mine.clear();
    },
  };
}
