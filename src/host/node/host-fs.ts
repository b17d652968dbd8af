/**
 * A host folder as the 9P server's HostFs (src/devices/virtio/9p/fs.ts), confined to that
 * folder without following a symbolic link anywhere.
 *
 * Node has no openat(), so this uses Linux's /proc/self/fd to get its effect: the root is
 * held open (O_PATH), and a path is resolved one name at a time, each directory opened
 * (O_PATH | O_NOFOLLOW) through `/proc/self/fd/DIR/NAME`, which the kernel looks up in
 * exactly the directory DIR holds, and checked with fstat to be a directory (a link there is
 * ELOOP). The operation then names its last component the same way, through the call that
 * does not follow it (lstat, unlink, rename, mkdir, symlink, readlink, lchown, lutimes, an
 * O_EXCL | O_NOFOLLOW create), or acts on an O_PATH handle of the thing itself, checked by
 * fstat first: only regular files are opened for I/O (reopened through their own
 * `/proc/self/fd/N`, which reaches that inode and no other), so a FIFO, socket or device is
 * never opened; chmod goes through the handle, so it cannot be redirected by a link either.
 * Open directories are handles too: Treaddir lists the directory that was opened, even after
 * its path was removed or replaced (a removed directory lists nothing).
 *
 * What remains racy, and only against another host process (or a second guest sharing the
 * same folder) changing the folder while a request runs; the guest itself cannot race, as
 * requests are served one at a time while it is stopped:
 * - fids name paths (as QEMU's local backend does), resolved again from the root at each
 *   request, so a path renamed between two requests names whatever is there now; always
 *   something inside the folder, reached without following links.
 * - a directory the host moves out of the folder while a request holds it open is acted
 *   on where it now is, as is an open handle to it; what it holds came from the folder.
 * Hosts without /proc/self/fd (not Linux, or no /proc) are refused when the share is made.
 */
import {
  chmodSync, chownSync, closeSync, constants, existsSync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, lchownSync, linkSync,
  lstatSync, lutimesSync, mkdirSync, opendirSync, openSync, readlinkSync, readSync, realpathSync, renameSync, rmdirSync, statfsSync,
  statSync, symlinkSync, unlinkSync, utimesSync, writeSync, type BigIntStats, type Dir,
} from 'node:fs';
import { E, FsError, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type FsDirEntry, type FsOpenFlags, type FsStat, type FsStatFs, type HostFs } from '../../devices/virtio/9p/fs.ts';
import { VirtusError } from '../../util/errors.ts';

/** Node's error codes as Linux errno values (the guest's), whatever the host's numbers are. */
const ERRNO: Record<string, number> = {
  EPERM: E.PERM, ENOENT: E.NOENT, EIO: E.IO, ENXIO: E.NXIO, EBADF: E.BADF, EAGAIN: E.AGAIN, ENOMEM: E.NOMEM, EACCES: E.ACCES,
  EBUSY: E.BUSY, EEXIST: E.EXIST, EXDEV: E.XDEV, ENOTDIR: E.NOTDIR, EISDIR: E.ISDIR, EINVAL: E.INVAL, ENFILE: E.NFILE,
  EMFILE: E.MFILE, ETXTBSY: E.TXTBSY, EFBIG: E.FBIG, ENOSPC: E.NOSPC, EROFS: E.ROFS, EMLINK: E.MLINK, ENAMETOOLONG: E.NAMETOOLONG,
  ENOSYS: E.NOSYS, ENOTEMPTY: E.NOTEMPTY, ELOOP: E.LOOP, ENODATA: E.NODATA, EOVERFLOW: E.OVERFLOW, EOPNOTSUPP: E.OPNOTSUPP,
  ENOTSUP: E.OPNOTSUPP, EDQUOT: E.DQUOT,
};

/** Linux's O_PATH (Node does not export it): a handle that names a file without opening it. */
const O_PATH = 0o10000000;
const { O_DIRECTORY, O_NOFOLLOW, O_CREAT, O_EXCL, O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_APPEND } = constants;
const FD_DIR = '/proc/self/fd';
/** Open files and directories a share may hold at once (each is a host descriptor). */
export const MAX_HANDLES = 4096;
/** Directory entries read from the host at a time. */
const DIR_BATCH = 64;

function fsError(e: unknown): FsError {
  if (e instanceof FsError) return e;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  return new FsError(ERRNO[code] ?? E.IO, (e as Error).message);
}

/** Runs a host call, turning its failure into the errno the guest sees. */
function host<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw fsError(e);
  }
}

function toStat(s: BigIntStats): FsStat {
  return {
    ino: s.ino, mode: Number(s.mode), nlink: Number(s.nlink), uid: Number(s.uid), gid: Number(s.gid), rdev: s.rdev,
    size: Number(s.size), blksize: Number(s.blksize), blocks: Number(s.blocks), atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs,
  };
}

function openMode(f: FsOpenFlags): number {
  const acc = f.read && f.write ? O_RDWR : f.write ? O_WRONLY : O_RDONLY;
  return acc | (f.truncate ? O_TRUNC : 0) | (f.append ? O_APPEND : 0);
}

/** `/proc/self/fd/FD`, or the entry NAME of the directory FD holds. */
const fdPath = (fd: number, name?: string) => (name === undefined ? `${FD_DIR}/${fd}` : `${FD_DIR}/${fd}/${name}`);

/** An open directory: its descriptor and where the listing is. */
interface DirHandle {
  fd: number;
  /** The host's listing, positioned at entry `pos`; null until the first Treaddir. */
  dir: Dir | null;
  pos: number;
  /** The entries last returned (a reply that had no room for them all asks again from one of them). */
  kept: FsDirEntry[];
  keptFrom: number;
}

export interface NodeHostFsOptions {
  readOnly?: boolean;
}

/** The folder at `root`, shared through 9P. */
export class NodeHostFs implements HostFs {
  readonly root: string;
  readonly readOnly: boolean;
  private rootFd: number | null = null;
  private readonly files = new Set<number>();
  private readonly dirs = new Map<number, DirHandle>();

  /** Checks that `root` is a directory; its real path (links resolved once, here) is the root. */
  constructor(root: string, o: NodeHostFsOptions = {}) {
    let real: string;
    try {
      real = realpathSync(root);
      if (!statSync(real).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (e as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'not a directory' : (e as Error).message;
      throw new VirtusError('BAD_SHARE', `--share ${root}: ${why}`, { exitCode: 2 });
    }
    if (process.platform !== 'linux' || !existsSync(FD_DIR)) {
      throw new VirtusError('BAD_SHARE', `--share ${root}: sharing a folder needs Linux's ${FD_DIR} (to open files there without following symbolic links)`, { exitCode: 2 });
    }
    this.root = real;
    this.readOnly = o.readOnly ?? false;
  }

  /** The root directory's handle (opened again after closeAll). */
  private top(): number {
    this.rootFd ??= host(() => openSync(this.root, O_PATH | O_DIRECTORY));
    return this.rootFd;
  }

  private change(): void {
    if (this.readOnly) throw new FsError(E.ROFS, 'read-only share');
  }

  private room(): void {
    if (this.files.size + this.dirs.size >= MAX_HANDLES) throw new FsError(E.NFILE, `${MAX_HANDLES} files are open in this share`);
  }

  private closeFd(fd: number): void {
    if (fd !== this.rootFd) closeSync(fd);
  }

  /**
   * Runs `f` on the directory that holds the last name of `path` (a handle that is only
   * valid during `f`) and that name. Every directory on the way is opened without following
   * a link and checked to be a directory.
   */
  private inParent<T>(path: readonly string[], f: (dir: number, name: string) => T): T {
    if (path.length === 0) throw new FsError(E.BUSY, 'the root of the share');
    for (const name of path) {
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new FsError(E.INVAL, `bad name ${JSON.stringify(name)}`);
    }
    let dir = this.top();
    try {
      for (const name of path.slice(0, -1)) {
        const next = host(() => openSync(fdPath(dir, name), O_PATH | O_NOFOLLOW));
        this.closeFd(dir);
        dir = next;
        const t = Number(fstatSync(dir).mode) & S_IFMT;
        if (t === S_IFLNK) throw new FsError(E.LOOP, 'a symbolic link on the way');
        if (t !== S_IFDIR) throw new FsError(E.NOTDIR, 'not a directory');
      }
      return f(dir, path[path.length - 1]!);
    } finally {
      this.closeFd(dir);
    }
  }

  /** Runs `f` on an O_PATH handle of `path` itself (never through a link) and its stat. */
  private atNode<T>(path: readonly string[], f: (fd: number, st: BigIntStats) => T): T {
    if (path.length === 0) {
      const fd = this.top();
      return f(fd, host(() => fstatSync(fd, { bigint: true })));
    }
    return this.inParent(path, (dir, name) => {
      const fd = host(() => openSync(fdPath(dir, name), O_PATH | O_NOFOLLOW));
      try {
        return f(fd, host(() => fstatSync(fd, { bigint: true })));
      } finally {
        closeSync(fd);
      }
    });
  }

  /** Opens the regular file an O_PATH handle names, through that handle (so that very inode). */
  private reopen(fd: number, st: BigIntStats, mode: number): number {
    const t = Number(st.mode) & S_IFMT;
    if (t === S_IFDIR) throw new FsError(E.ISDIR, 'is a directory');
    if (t === S_IFLNK) throw new FsError(E.LOOP, 'is a symbolic link');
    if (t !== S_IFREG) throw new FsError(E.NXIO, 'not a regular file (FIFOs, sockets and devices are not opened)');
    this.room();
    const file = host(() => openSync(fdPath(fd), mode));
    this.files.add(file);
    return file;
  }

  private file(handle: number): number {
    if (!this.files.has(handle)) throw new FsError(E.BADF, 'no such file handle');
    return handle;
  }

  private dirHandle(handle: number): DirHandle {
    const d = this.dirs.get(handle);
    if (!d) throw new FsError(E.BADF, 'no such directory handle');
    return d;
  }

  lstat(path: readonly string[]): FsStat {
    if (path.length === 0) return toStat(host(() => fstatSync(this.top(), { bigint: true })));
    return this.inParent(path, (dir, name) => toStat(host(() => lstatSync(fdPath(dir, name), { bigint: true }))));
  }

  fstat(handle: number): FsStat {
    const fd = this.dirs.get(handle)?.fd ?? this.file(handle);
    return toStat(host(() => fstatSync(fd, { bigint: true })));
  }

  open(path: readonly string[], flags: FsOpenFlags): number {
    if (flags.write || flags.truncate) this.change();
    return this.atNode(path, (fd, st) => this.reopen(fd, st, openMode(flags)));
  }

  openDir(path: readonly string[]): number {
    return this.atNode(path, (fd, st) => {
      const t = Number(st.mode) & S_IFMT;
      if (t === S_IFLNK) throw new FsError(E.LOOP, 'is a symbolic link');
      if (t !== S_IFDIR) throw new FsError(E.NOTDIR, 'not a directory');
      this.room();
      // Opened for reading (the permission check a listing needs happens here, as opendir's).
      const dir = host(() => openSync(fdPath(fd), O_RDONLY | O_DIRECTORY));
      this.dirs.set(dir, { fd: dir, dir: null, pos: 0, kept: [], keptFrom: 0 });
      return dir;
    });
  }

  readdir(handle: number, index: number, count: number): FsDirEntry[] {
    const d = this.dirHandle(handle);
    // Entries from `index` that the last call returned: a reply that had no room for them all.
    const out = index >= d.keptFrom ? d.kept.filter((e) => e.next > index) : [];
    if (!d.dir || index < d.keptFrom || (out.length === 0 && index < d.pos)) {
      // The first listing, or a rewind: the directory as it is now.
      d.dir?.closeSync();
      d.dir = null;
      d.dir = host(() => opendirSync(fdPath(d.fd), { bufferSize: DIR_BATCH }));
      d.pos = 0;
      out.length = 0;
    }
    const dir = d.dir;
    while (out.length < count) {
      const e = host(() => dir.readSync());
      if (!e) break;
      d.pos++;
      if (d.pos <= index) continue; // before `index`: skipped
      try {
        const st = lstatSync(fdPath(d.fd, e.name), { bigint: true });
        out.push({ name: e.name, ino: st.ino, type: Number(st.mode) & S_IFMT, next: d.pos });
      } catch {
        // removed by the host while listing
      }
    }
    d.kept = out;
    d.keptFrom = index;
    return out.slice(0, count);
  }

  create(path: readonly string[], mode: number, flags: FsOpenFlags & { exclusive: boolean }): number {
    this.change();
    const made = this.inParent(path, (dir, name) => {
      this.room();
      try {
        const fd = openSync(fdPath(dir, name), openMode(flags) | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
        this.files.add(fd);
        return fd;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST' && !flags.exclusive) return null;
        throw fsError(e);
      }
    });
    return made ?? this.open(path, flags);
  }

  read(handle: number, position: number, buf: Uint8Array): number {
    const fd = this.file(handle);
    let done = 0;
    while (done < buf.length) {
      const n = host(() => readSync(fd, buf, done, buf.length - done, position + done));
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  write(handle: number, position: number, data: Uint8Array): number {
    this.change();
    const fd = this.file(handle);
    let done = 0;
    while (done < data.length) done += host(() => writeSync(fd, data, done, data.length - done, position + done));
    return done;
  }

  fsync(handle: number, dataOnly: boolean): void {
    const fd = this.file(handle);
    host(() => (dataOnly ? fdatasyncSync(fd) : fsyncSync(fd)));
  }

  close(handle: number): void {
    const d = this.dirs.get(handle);
    if (d) {
      this.dirs.delete(handle);
      try {
        d.dir?.closeSync();
      } finally {
        host(() => closeSync(d.fd));
      }
    } else if (this.files.delete(handle)) host(() => closeSync(handle));
  }

  mkdir(path: readonly string[], mode: number): void {
    this.change();
    this.inParent(path, (dir, name) => host(() => mkdirSync(fdPath(dir, name), { mode })));
  }

  symlink(path: readonly string[], target: string): void {
    this.change();
    this.inParent(path, (dir, name) => host(() => symlinkSync(target, fdPath(dir, name))));
  }

  readlink(path: readonly string[]): string {
    if (path.length === 0) throw new FsError(E.INVAL, 'not a symbolic link');
    return this.inParent(path, (dir, name) => host(() => readlinkSync(fdPath(dir, name), 'utf8')));
  }

  link(existing: readonly string[], path: readonly string[]): void {
    this.change();
    // link(2) does not follow a symbolic link at `existing`.
    this.inParent(existing, (a, an) => this.inParent(path, (b, bn) => host(() => linkSync(fdPath(a, an), fdPath(b, bn)))));
  }

  unlink(path: readonly string[]): void {
    this.change();
    this.inParent(path, (dir, name) => host(() => unlinkSync(fdPath(dir, name))));
  }

  rmdir(path: readonly string[]): void {
    this.change();
    this.inParent(path, (dir, name) => host(() => rmdirSync(fdPath(dir, name))));
  }

  rename(from: readonly string[], to: readonly string[]): void {
    this.change();
    this.inParent(from, (a, an) => this.inParent(to, (b, bn) => host(() => renameSync(fdPath(a, an), fdPath(b, bn)))));
  }

  chmod(path: readonly string[], mode: number): void {
    this.change();
    this.atNode(path, (fd, st) => {
      // Linux has no lchmod: a link's own mode cannot change.
      if ((Number(st.mode) & S_IFMT) === S_IFLNK) throw new FsError(E.OPNOTSUPP, 'cannot chmod a symbolic link');
      host(() => chmodSync(fdPath(fd), mode));
    });
  }

  chown(path: readonly string[], uid: number | null, gid: number | null): void {
    this.change();
    const set = (p: string, st: FsStat, f: typeof chownSync) => {
      try {
        f(p, uid ?? st.uid, gid ?? st.gid);
      } catch {
        // As QEMU's security_model=none: files stay the monitor user's when it may not give them away.
      }
    };
    if (path.length === 0) set(fdPath(this.top()), this.lstat([]), chownSync);
    else this.inParent(path, (dir, name) => set(fdPath(dir, name), toStat(host(() => lstatSync(fdPath(dir, name), { bigint: true }))), lchownSync));
  }

  truncate(path: readonly string[], size: number): void {
    this.change();
    this.atNode(path, (fd, st) => {
      const t = Number(st.mode) & S_IFMT;
      // truncate(2)'s answer for a FIFO, socket or device, without opening it.
      if (t !== S_IFREG && t !== S_IFDIR && t !== S_IFLNK) throw new FsError(E.INVAL, 'not a regular file');
      const file = this.reopen(fd, st, O_WRONLY);
      try {
        host(() => ftruncateSync(file, size));
      } finally {
        this.close(file);
      }
    });
  }

  utimes(path: readonly string[], atimeNs: bigint, mtimeNs: bigint): void {
    this.change();
    // Node takes seconds as a number: microsecond precision survives, which is what utimes(2) keeps too.
    const a = Number(atimeNs / 1000n) / 1e6;
    const m = Number(mtimeNs / 1000n) / 1e6;
    if (path.length === 0) host(() => utimesSync(fdPath(this.top()), a, m));
    else this.inParent(path, (dir, name) => host(() => lutimesSync(fdPath(dir, name), a, m)));
  }

  statfs(): FsStatFs {
    const s = host(() => statfsSync(fdPath(this.top()), { bigint: true }));
    return {
      type: Number(s.type), bsize: Number(s.bsize), blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, namelen: 255,
    };
  }

  /** Closes every handle and the root's (at exit; a later request opens the root again). */
  closeAll(): void {
    for (const h of [...this.files, ...this.dirs.keys()]) {
      try {
        this.close(h);
      } catch {
        // closing at exit: nothing to tell the guest
      }
    }
    if (this.rootFd !== null) closeSync(this.rootFd);
    this.rootFd = null;
  }
}
