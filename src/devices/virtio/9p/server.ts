/**
 * A 9P2000.L file server (what Linux's 9p client speaks over trans=virtio) for one shared
 * host folder (fs.ts). Requests are served synchronously: handle() takes a T-message and
 * returns the R-message, or Rlerror with a Linux errno.
 *
 * Confinement: the guest only ever names files by walking from the root one name at a
 * time; ".." is resolved here, lexically, and never goes above the root; names with "/" or
 * NUL are refused; symbolic links are never followed on the host (the guest's kernel reads
 * them with Treadlink and resolves them in its own namespace); only regular files and
 * directories are opened; setuid, setgid and sticky bits the guest asks for are dropped (the
 * host's files belong to the user running the monitor). A read-only share refuses every
 * change with EROFS.
 *
 * Memory: what one request makes the server hold is bounded by msize (a read's buffer, a
 * reply), whatever counts the guest sends; a directory is listed from the host a batch at a
 * time, never whole.
 *
 * Deterministic mode (a `clock` is given): files the guest changes get their access and
 * modification times set from the guest's clock, and the change time reads as the
 * modification time, so no host time reaches the guest through the share. Inode numbers,
 * sizes and free space are the host folder's own and are reported as they are.
 */
import { StateReader } from '../../state.ts';
import { E, FsError, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type FsOpenFlags, type FsStat, type HostFs } from './fs.ts';
import { FidTable, type Fid, type FidState } from './fids.ts';
import { HEADER, R_LERROR, T, WireError, WireReader, WireWriter, type Qid } from './wire.ts';

export const VERSION_9P2000L = '9P2000.L';
/** The largest msize the server agrees to (Linux asks for 512 KiB by default on virtio). */
export const MAX_MSIZE = 512 * 1024 + 4096;
const MIN_MSIZE = 4096;
/** Rread/Rreaddir header: size[4] type[1] tag[2] count[4]. */
const IO_HEADER = HEADER + 4;
const NOFID = 0xffff_ffff;
const MAX_WALK = 16;
const NAME_MAX = 255;
/** Linux open(2) flags as 9P2000.L carries them. */
const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_EXCL = 0o200;
const O_DIRECTORY = 0o200000;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;
const AT_REMOVEDIR = 0x200;
// Tsetattr valid bits
const SET_MODE = 0x1;
const SET_UID = 0x2;
const SET_GID = 0x4;
const SET_SIZE = 0x8;
const SET_ATIME = 0x10;
const SET_MTIME = 0x20;
const SET_ATIME_SET = 0x80;
const SET_MTIME_SET = 0x100;
/** Rgetattr: the fields up to st_blocks are valid. */
const GETATTR_BASIC = 0x7ffn;
/** Permission bits the guest may set: never setuid, setgid or sticky on the host. */
const PERMS = 0o777;
/** Directory entries asked of the host at a time. */
const DIR_BATCH = 64;
/** Treaddir entry: qid[13] offset[8] type[1] name[s]. */
const DIRENT_FIXED = 13 + 8 + 1 + 2;
const DT_DIR = S_IFDIR >> 12;
const QT_DIR = 0x80;
const QT_SYMLINK = 0x02;
const V9FS_MAGIC = 0x0102_1997;

export interface P9ServerOptions {
  fs: HostFs;
  /** Deterministic mode: the guest's wall clock in ns since the epoch (see above). */
  clock?: () => bigint;
  /**
   * Called with anything a request threw that is neither a host failure nor a malformed
   * message: a bug in the server. The guest gets Rlerror(EIO) either way; tests and the
   * fuzzer make it fail loudly.
   */
  onInternalError?: (e: unknown) => void;
}

/** Saved server state. */
export interface P9State {
  msize: number;
  fids: FidState[];
}

/** A name the guest may create or walk to. */
export function validName(n: string): boolean {
  return n.length > 0 && n.length <= NAME_MAX && n !== '.' && n !== '..' && !n.includes('/') && !n.includes('\0');
}

function checkName(n: string): string {
  if (n.length > NAME_MAX) throw new FsError(E.NAMETOOLONG, 'name too long');
  if (!validName(n)) throw new FsError(E.INVAL, `invalid name ${JSON.stringify(n)}`);
  return n;
}

export function qidOf(st: FsStat): Qid {
  const t = st.mode & S_IFMT;
  return { type: t === S_IFDIR ? QT_DIR : t === S_IFLNK ? QT_SYMLINK : 0, version: 0, path: st.ino };
}

function openFlags(flags: number): FsOpenFlags {
  const acc = flags & O_ACCMODE;
  return { read: acc !== O_WRONLY, write: acc === O_WRONLY || acc === O_RDWR, truncate: (flags & O_TRUNC) !== 0, append: (flags & O_APPEND) !== 0 };
}

const encoder = new TextEncoder();
const timePair = (w: WireWriter, ns: bigint) => w.u64(ns / 1_000_000_000n).u64(ns % 1_000_000_000n);

export class P9Server {
  /** The msize agreed by Tversion (0 before the first Tversion). */
  msize = 0;
  private readonly fids: FidTable;
  readonly stats = { requests: 0, 'bytes read': 0, 'bytes written': 0, errors: 0 };

  constructor(private readonly o: P9ServerOptions) {
    this.fids = new FidTable(o.fs);
  }

  get fs(): HostFs {
    return this.o.fs;
  }

  /** Open fids (for tests and statistics). */
  get fidCount(): number {
    return this.fids.size;
  }

  /** Closes every fid (device reset). */
  reset(): void {
    this.fids.clear();
    this.msize = 0;
  }

  /**
   * Serves one request. `room` is the space for the reply; a reply that would not fit becomes
   * Rlerror(EMSGSIZE). Returns null when the request is too short to carry a tag, or when
   * not even an error reply fits: the transport treats that as a broken request.
   */
  handle(req: Uint8Array, room: number): Uint8Array | null {
    if (req.length < HEADER || room < HEADER + 4) return null;
    const head = new WireReader(req);
    const size = head.u32();
    const type = head.u8();
    const tag = head.u16();
    this.stats.requests++;
    let reply: Uint8Array;
    try {
      if (size < HEADER || size > req.length) throw new FsError(E.PROTO, `size field ${size} disagrees with the ${req.length} bytes sent`);
      const r = new WireReader(req.subarray(0, size), HEADER);
      reply = this.dispatch(type, r, Math.min(room, this.msize || MAX_MSIZE)).finish(type + 1, tag);
      if (reply.length > room) throw new FsError(E.MSGSIZE, 'reply larger than the buffer');
    } catch (e) {
      this.stats.errors++;
      if (!(e instanceof FsError || e instanceof WireError)) this.o.onInternalError?.(e);
      const errno = e instanceof FsError ? e.errno : e instanceof WireError ? E.PROTO : E.IO;
      reply = new WireWriter(HEADER + 4).u32(errno).finish(R_LERROR, tag);
    }
    return reply;
  }

  private now(): bigint {
    return this.o.clock ? this.o.clock() : BigInt(Date.now()) * 1_000_000n;
  }

  /** Deterministic mode: the guest's clock becomes the times of what it changed. */
  private stamp(...paths: ReadonlyArray<readonly string[]>): void {
    if (!this.o.clock) return;
    const t = this.o.clock();
    for (const p of paths) {
      try {
        this.fs.utimes(p, t, t);
      } catch {
        // the entry may be gone (a rename raced by the host): nothing to stamp
      }
    }
  }

  private writable(): void {
    if (this.fs.readOnly) throw new FsError(E.ROFS, 'the share is read-only');
  }

  private dirFid(fid: number): Fid {
    const f = this.fids.get(fid);
    if (!f.dir) throw new FsError(E.NOTDIR, 'not a directory');
    return f;
  }

  private qid(path: readonly string[]): Qid {
    return qidOf(this.fs.lstat(path));
  }

  private dispatch(type: number, r: WireReader, room: number): WireWriter {
    const w = new WireWriter();
    switch (type) {
      case T.version: return this.version(r, w);
      case T.auth: throw new FsError(E.OPNOTSUPP, 'no authentication');
      case T.attach: return this.attach(r, w);
      case T.flush: r.u16(); return w; // requests complete synchronously: nothing is ever in flight
      case T.walk: return this.walk(r, w);
      case T.lopen: return this.lopen(r, w);
      case T.lcreate: return this.lcreate(r, w);
      case T.read: return this.read(r, w, room);
      case T.write: return this.write(r, w);
      case T.clunk: this.fids.clunk(r.u32()); return w;
      case T.remove: return this.remove(r, w);
      case T.getattr: return this.getattr(r, w);
      case T.setattr: return this.setattr(r, w);
      case T.readdir: return this.readdir(r, w, room);
      case T.statfs: return this.statfs(r, w);
      case T.mkdir: return this.mkdir(r, w);
      case T.symlink: return this.symlink(r, w);
      case T.mknod: return this.mknod(r, w);
      case T.readlink: return w.str(this.fs.readlink(this.fids.get(r.u32()).path));
      case T.link: return this.link(r, w);
      case T.rename: return this.rename(r, w);
      case T.renameat: return this.renameat(r, w);
      case T.unlinkat: return this.unlinkat(r, w);
      case T.fsync: return this.fsync(r, w);
      case T.xattrwalk: return this.xattrwalk(r, w);
      case T.xattrcreate: throw new FsError(E.OPNOTSUPP, 'extended attributes are not supported');
      case T.lock: return this.lock(r, w);
      case T.getlock: return this.getlock(r, w);
      default: throw new FsError(E.OPNOTSUPP, `message type ${type} is not supported`);
    }
  }

  private version(r: WireReader, w: WireWriter): WireWriter {
    const msize = r.u32();
    const version = r.str();
    this.fids.clear();
    if (msize < MIN_MSIZE) throw new FsError(E.INVAL, `msize ${msize} is too small`);
    this.msize = Math.min(msize, MAX_MSIZE);
    return w.u32(this.msize).str(version.startsWith(VERSION_9P2000L) ? VERSION_9P2000L : 'unknown');
  }

  private attach(r: WireReader, w: WireWriter): WireWriter {
    const fid = r.u32();
    const afid = r.u32();
    r.str(); // uname
    r.str(); // aname: there is one tree
    if (afid !== NOFID) throw new FsError(E.OPNOTSUPP, 'no authentication');
    const st = this.fs.lstat([]);
    this.fids.add(fid, { path: [], dir: true, open: null, xattr: null });
    return w.qid(qidOf(st));
  }

  /** Twalk: one name at a time from the fid; ".." stops at the root; never through a symlink. */
  private walk(r: WireReader, w: WireWriter): WireWriter {
    const fid = r.u32();
    const newfid = r.u32();
    const n = r.u16();
    if (n > MAX_WALK) throw new FsError(E.INVAL, `walk of ${n} names`);
    const names = Array.from({ length: n }, () => r.str());
    const from = this.fids.get(fid);
    if (newfid !== fid && this.fids.has(newfid)) throw new FsError(E.BADF, `fid ${newfid} is in use`);
    let path = [...from.path];
    let dir = from.dir;
    const qids: Qid[] = [];
    for (const name of names) {
      try {
        if (!dir) throw new FsError(E.NOTDIR, 'not a directory');
        if (name === '..') path = path.slice(0, -1);
        else if (name !== '.') path = [...path, checkName(name)];
        const st = this.fs.lstat(path);
        dir = (st.mode & S_IFMT) === S_IFDIR;
        qids.push(qidOf(st));
      } catch (e) {
        if (qids.length === 0) throw e;
        break; // walk(5): a partial walk returns the qids so far and leaves newfid alone
      }
    }
    w.u16(qids.length);
    for (const q of qids) w.qid(q);
    if (qids.length === names.length) {
      const f: Fid = { path, dir, open: null, xattr: null };
      if (newfid === fid) {
        if (from.open) throw new FsError(E.BADF, 'cannot walk an open fid onto itself');
        this.fids.set(fid, f);
      } else this.fids.add(newfid, f);
    }
    return w;
  }

  private lopen(r: WireReader, w: WireWriter): WireWriter {
    const f = this.fids.get(r.u32());
    const flags = r.u32();
    if (f.open) throw new FsError(E.BADF, 'fid is already open');
    const t = this.fs.lstat(f.path).mode & S_IFMT;
    const how = openFlags(flags);
    if (t === S_IFDIR) {
      if (how.write) throw new FsError(E.ISDIR, 'is a directory');
      const handle = this.fs.openDir(f.path);
      f.open = { kind: 'dir', handle };
      return w.qid(qidOf(this.fs.fstat(handle))).u32(0);
    }
    if (flags & O_DIRECTORY) throw new FsError(E.NOTDIR, 'not a directory');
    if (how.write || how.truncate) this.writable();
    // The host refuses links (ELOOP) and FIFOs, sockets and devices (ENXIO) without opening them.
    const handle = this.fs.open(f.path, how);
    f.open = { kind: 'file', flags: { ...how, truncate: false }, handle };
    if (how.truncate) this.stamp(f.path);
    return w.qid(qidOf(this.fs.fstat(handle))).u32(0);
  }

  private lcreate(r: WireReader, w: WireWriter): WireWriter {
    const f = this.dirFid(r.u32());
    const name = checkName(r.str());
    const flags = r.u32();
    const mode = r.u32();
    r.u32(); // gid: files belong to the host user running the monitor
    if (f.open) throw new FsError(E.BADF, 'fid is already open');
    this.writable();
    const path = [...f.path, name];
    const how = openFlags(flags);
    const handle = this.fs.create(path, mode & PERMS, { ...how, exclusive: (flags & O_EXCL) !== 0 });
    this.stamp(path, f.path);
    f.path = path;
    f.dir = false;
    f.open = { kind: 'file', flags: { ...how, truncate: false }, handle };
    return w.qid(qidOf(this.fs.fstat(handle))).u32(0);
  }

  private read(r: WireReader, w: WireWriter, room: number): WireWriter {
    const f = this.fids.get(r.u32());
    const offset = r.u64();
    const count = Math.min(r.u32(), room - IO_HEADER);
    if (f.xattr) {
      const part = offset < BigInt(f.xattr.length) ? f.xattr.subarray(Number(offset), Number(offset) + count) : new Uint8Array(0);
      return w.u32(part.length).bytes(part);
    }
    if (f.open?.kind === 'dir') throw new FsError(E.ISDIR, 'use Treaddir on a directory');
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsError(E.INVAL, 'offset too large');
    const buf = new Uint8Array(Math.max(0, count));
    const n = this.fs.read(this.fids.handle(f), Number(offset), buf);
    this.stats['bytes read'] += n;
    return w.u32(n).bytes(buf.subarray(0, n));
  }

  private write(r: WireReader, w: WireWriter): WireWriter {
    const f = this.fids.get(r.u32());
    const offset = r.u64();
    const data = r.bytes(r.u32());
    if (f.open?.kind !== 'file' || !f.open.flags.write) throw new FsError(E.BADF, 'fid is not open for writing');
    this.writable();
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsError(E.FBIG, 'offset too large');
    const n = this.fs.write(this.fids.handle(f), Number(offset), data);
    this.stats['bytes written'] += n;
    this.stamp(f.path);
    return w.u32(n);
  }

  private remove(r: WireReader, w: WireWriter): WireWriter {
    const fid = r.u32();
    const f = this.fids.get(fid);
    try {
      this.writable();
      if (f.path.length === 0) throw new FsError(E.BUSY, 'cannot remove the root');
      const st = this.fs.lstat(f.path);
      if ((st.mode & S_IFMT) === S_IFDIR) this.fs.rmdir(f.path);
      else this.fs.unlink(f.path);
      this.stamp(f.path.slice(0, -1));
    } finally {
      this.fids.clunk(fid); // remove(5): the fid is clunked even when the remove fails
    }
    return w;
  }

  private getattr(r: WireReader, w: WireWriter): WireWriter {
    const f = this.fids.get(r.u32());
    r.u64(); // request_mask: the basic fields are always valid
    const st = this.fs.lstat(f.path);
    const ctime = this.o.clock ? st.mtimeNs : st.ctimeNs;
    w.u64(GETATTR_BASIC).qid(qidOf(st)).u32(st.mode).u32(st.uid).u32(st.gid).u64(st.nlink).u64(st.rdev).u64(st.size)
      .u64(st.blksize).u64(st.blocks);
    timePair(w, st.atimeNs);
    timePair(w, st.mtimeNs);
    timePair(w, ctime);
    return w.u64(0).u64(0).u64(0).u64(0); // btime, gen, data_version: not reported
  }

  private setattr(r: WireReader, w: WireWriter): WireWriter {
    const f = this.fids.get(r.u32());
    const valid = r.u32();
    const mode = r.u32();
    const uid = r.u32();
    const gid = r.u32();
    const size = r.u64();
    const atime = r.u64() * 1_000_000_000n + r.u64();
    const mtime = r.u64() * 1_000_000_000n + r.u64();
    if (valid & (SET_MODE | SET_UID | SET_GID | SET_SIZE | SET_ATIME | SET_MTIME)) this.writable();
    if (valid & SET_MODE) this.fs.chmod(f.path, mode & PERMS);
    if (valid & (SET_UID | SET_GID)) this.fs.chown(f.path, valid & SET_UID ? uid : null, valid & SET_GID ? gid : null);
    if (valid & SET_SIZE) {
      if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsError(E.FBIG, 'size too large');
      this.fs.truncate(f.path, Number(size));
      this.stamp(f.path);
    }
    if (valid & (SET_ATIME | SET_MTIME)) {
      const st = this.fs.lstat(f.path);
      const now = this.now();
      const a = valid & SET_ATIME ? (valid & SET_ATIME_SET ? atime : now) : st.atimeNs;
      const m = valid & SET_MTIME ? (valid & SET_MTIME_SET ? mtime : now) : st.mtimeNs;
      this.fs.utimes(f.path, a, m);
    }
    return w;
  }

  /**
   * Treaddir: entries from `offset` that fit `count`. Offsets 0 and 1 are "." and "..";
   * offset k + 2 is the host's entry k of the open directory (fs.ts), so a listing goes on
   * where the last reply ended without the server holding it.
   */
  private readdir(r: WireReader, w: WireWriter, room: number): WireWriter {
    const f = this.fids.get(r.u32());
    const offset = r.u64();
    const count = Math.min(r.u32(), room - IO_HEADER);
    const handle = this.fids.dirHandle(f);
    const body = new WireWriter(Math.min(count, 4096));
    let used = 0;
    const put = (qid: Qid, next: number, type: number, name: string): boolean => {
      const bytes = encoder.encode(name);
      if (used + DIRENT_FIXED + bytes.length > count) return false;
      body.qid(qid).u64(next).u8(type).u16Bytes(bytes);
      used += DIRENT_FIXED + bytes.length;
      return true;
    };
    if (offset === 0n && !put(qidOf(this.fs.fstat(handle)), 1, DT_DIR, '.')) return w.u32(0);
    if (offset <= 1n && !put(this.parentQid(f, handle), 2, DT_DIR, '..')) return w.u32(0);
    if (offset <= BigInt(Number.MAX_SAFE_INTEGER)) {
      let index = offset <= 2n ? 0 : Number(offset) - 2;
      fill: for (;;) {
        const batch = this.fs.readdir(handle, index, DIR_BATCH);
        for (const e of batch) {
          const t = e.type & S_IFMT;
          const qid = { type: t === S_IFDIR ? QT_DIR : t === S_IFLNK ? QT_SYMLINK : 0, version: 0, path: e.ino };
          if (!put(qid, e.next + 2, t >> 12, e.name)) break fill;
        }
        if (batch.length < DIR_BATCH) break;
        index = batch[batch.length - 1]!.next;
      }
    }
    const entries = body.finish(0, 0).subarray(HEADER);
    return w.u32(entries.length).bytes(entries);
  }

  /** The qid of a directory's parent ("..": the root is its own parent). */
  private parentQid(f: Fid, handle: number): Qid {
    try {
      if (f.path.length) return this.qid(f.path.slice(0, -1));
    } catch {
      // the path is gone (the directory was moved or removed): name the directory itself
    }
    return qidOf(this.fs.fstat(handle));
  }

  private statfs(r: WireReader, w: WireWriter): WireWriter {
    this.fids.get(r.u32());
    const s = this.fs.statfs();
    return w.u32(V9FS_MAGIC).u32(s.bsize).u64(s.blocks).u64(s.bfree).u64(s.bavail).u64(s.files).u64(s.ffree).u64(0).u32(s.namelen);
  }

  private mkdir(r: WireReader, w: WireWriter): WireWriter {
    const d = this.dirFid(r.u32());
    const path = [...d.path, checkName(r.str())];
    const mode = r.u32();
    r.u32(); // gid
    this.writable();
    this.fs.mkdir(path, mode & PERMS);
    this.stamp(path, d.path);
    return w.qid(this.qid(path));
  }

  private symlink(r: WireReader, w: WireWriter): WireWriter {
    const d = this.dirFid(r.u32());
    const path = [...d.path, checkName(r.str())];
    const target = r.str();
    r.u32(); // gid
    this.writable();
    if (target.includes('\0')) throw new FsError(E.INVAL, 'NUL in symlink target');
    this.fs.symlink(path, target);
    this.stamp(path, d.path);
    return w.qid(this.qid(path));
  }

  /** Tmknod: only regular files can be made (the host monitor has no privilege for devices). */
  private mknod(r: WireReader, w: WireWriter): WireWriter {
    const d = this.dirFid(r.u32());
    const path = [...d.path, checkName(r.str())];
    const mode = r.u32();
    r.u32(); // major
    r.u32(); // minor
    r.u32(); // gid
    this.writable();
    const t = mode & S_IFMT;
    if (t !== 0 && t !== S_IFREG) throw new FsError(E.PERM, 'only regular files can be made');
    this.fs.close(this.fs.create(path, mode & PERMS, { read: false, write: true, truncate: false, append: false, exclusive: true }));
    this.stamp(path, d.path);
    return w.qid(this.qid(path));
  }

  private link(r: WireReader, w: WireWriter): WireWriter {
    const d = this.dirFid(r.u32());
    const target = this.fids.get(r.u32());
    const path = [...d.path, checkName(r.str())];
    this.writable();
    if (target.dir) throw new FsError(E.PERM, 'cannot link a directory');
    this.fs.link(target.path, path);
    this.stamp(target.path, d.path);
    return w;
  }

  private move(from: string[], to: string[]): void {
    this.writable();
    if (from.length === 0 || to.length === 0) throw new FsError(E.BUSY, 'cannot rename the root');
    if (to.length > from.length && from.every((n, i) => to[i] === n)) throw new FsError(E.INVAL, 'cannot move a directory into itself');
    this.fs.rename(from, to);
    this.fids.renamed(from, to);
    this.stamp(to, from.slice(0, -1), to.slice(0, -1));
  }

  private rename(r: WireReader, w: WireWriter): WireWriter {
    const f = this.fids.get(r.u32());
    const d = this.dirFid(r.u32());
    this.move([...f.path], [...d.path, checkName(r.str())]);
    return w;
  }

  private renameat(r: WireReader, w: WireWriter): WireWriter {
    const od = this.dirFid(r.u32());
    const oldName = checkName(r.str());
    const nd = this.dirFid(r.u32());
    const newName = checkName(r.str());
    this.move([...od.path, oldName], [...nd.path, newName]);
    return w;
  }

  private unlinkat(r: WireReader, w: WireWriter): WireWriter {
    const d = this.dirFid(r.u32());
    const path = [...d.path, checkName(r.str())];
    const flags = r.u32();
    this.writable();
    if (flags & AT_REMOVEDIR) this.fs.rmdir(path);
    else this.fs.unlink(path);
    this.stamp(d.path);
    return w;
  }

  private fsync(r: WireReader, w: WireWriter): WireWriter {
    const f = this.fids.get(r.u32());
    const datasync = r.u32();
    if (f.open?.kind === 'file') this.fs.fsync(this.fids.handle(f), datasync !== 0);
    return w;
  }

  /** Txattrwalk: no extended attributes: an empty list, and ENODATA for any name. */
  private xattrwalk(r: WireReader, w: WireWriter): WireWriter {
    const f = this.fids.get(r.u32());
    const newfid = r.u32();
    const name = r.str();
    if (name !== '') throw new FsError(E.NODATA, 'no such attribute');
    this.fids.add(newfid, { path: [...f.path], dir: f.dir, open: null, xattr: new Uint8Array(0) });
    return w.u64(0);
  }

  /** Tlock: one client, so every lock is granted (P9_LOCK_SUCCESS). */
  private lock(r: WireReader, w: WireWriter): WireWriter {
    this.fids.get(r.u32());
    r.u8();
    r.u32();
    r.u64();
    r.u64();
    r.u32();
    r.str();
    return w.u8(0);
  }

  /** Tgetlock: nothing conflicts (answered as F_UNLCK). */
  private getlock(r: WireReader, w: WireWriter): WireWriter {
    this.fids.get(r.u32());
    r.u8();
    const start = r.u64();
    const length = r.u64();
    const proc = r.u32();
    const client = r.str();
    return w.u8(2).u64(start).u64(length).u32(proc).str(client);
  }

  save(): P9State {
    return { msize: this.msize, fids: this.fids.save() };
  }

  restore(state: unknown, component: string): void {
    const r = new StateReader(component, state, ['msize', 'fids']);
    const msize = r.uint('msize', MAX_MSIZE);
    if (msize !== 0 && msize < MIN_MSIZE) r.fail(`msize ${msize} is below ${MIN_MSIZE}`);
    this.fids.restore((state as P9State).fids, component, validName);
    this.msize = msize;
  }
}
