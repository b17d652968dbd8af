/**
 * A host folder as the 9P server's HostFs (src/devices/virtio/9p/fs.ts), confined to that
 * folder: paths are joined from checked names only; every directory on the way is checked
 * with lstat to be a real directory (a symbolic link there is ELOOP, so a link pointing out
 * of the folder is never followed); the last name is acted on with operations that do not
 * follow links (lstat, O_NOFOLLOW opens, lchown, lutimes). The guest cannot race these
 * checks: requests are served one at a time while the guest is stopped. (Another host
 * process changing the folder between a check and its use could; Node has no openat().)
 */
import {
  chmodSync, closeSync, constants, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, lchownSync, linkSync, lstatSync, lutimesSync,
  mkdirSync, openSync, readdirSync, readlinkSync, readSync, realpathSync, renameSync, rmdirSync, statfsSync, statSync, symlinkSync,
  unlinkSync, writeSync, type BigIntStats,
} from 'node:fs';
import { join } from 'node:path';
import { E, FsError, S_IFLNK, S_IFMT, type FsDirEntry, type FsOpenFlags, type FsStat, type FsStatFs, type HostFs } from '../../devices/virtio/9p/fs.ts';
import { VirtusError } from '../../util/errors.ts';

/** Node's error codes as Linux errno values (the guest's), whatever the host's numbers are. */
const ERRNO: Record<string, number> = {
  EPERM: E.PERM, ENOENT: E.NOENT, EIO: E.IO, EBADF: E.BADF, EAGAIN: E.AGAIN, ENOMEM: E.NOMEM, EACCES: E.ACCES, EBUSY: E.BUSY,
  EEXIST: E.EXIST, EXDEV: E.XDEV, ENOTDIR: E.NOTDIR, EISDIR: E.ISDIR, EINVAL: E.INVAL, EFBIG: E.FBIG, ENOSPC: E.NOSPC,
  EROFS: E.ROFS, EMLINK: E.MLINK, ENAMETOOLONG: E.NAMETOOLONG, ENOSYS: E.NOSYS, ENOTEMPTY: E.NOTEMPTY, ELOOP: E.LOOP,
  ENODATA: E.NODATA, EOVERFLOW: E.OVERFLOW, EOPNOTSUPP: E.OPNOTSUPP, ENOTSUP: E.OPNOTSUPP, EDQUOT: E.DQUOT,
};

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
  const c = constants;
  const acc = f.read && f.write ? c.O_RDWR : f.write ? c.O_WRONLY : c.O_RDONLY;
  return acc | c.O_NOFOLLOW | (f.truncate ? c.O_TRUNC : 0) | (f.append ? c.O_APPEND : 0);
}

export interface NodeHostFsOptions {
  readOnly?: boolean;
}

/** The folder at `root`, shared through 9P. */
export class NodeHostFs implements HostFs {
  readonly root: string;
  readonly readOnly: boolean;
  private readonly handles = new Set<number>();

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
    this.root = real;
    this.readOnly = o.readOnly ?? false;
  }

  /**
   * The host path of `path`, after checking every name and that every directory on the way
   * is a directory and not a symbolic link.
   */
  private resolve(path: readonly string[]): string {
    let p = this.root;
    path.forEach((name, i) => {
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new FsError(E.INVAL, `bad name ${JSON.stringify(name)}`);
      p = join(p, name);
      if (i < path.length - 1) {
        const st = host(() => lstatSync(p));
        if (st.isSymbolicLink()) throw new FsError(E.LOOP, 'a symbolic link on the way');
        if (!st.isDirectory()) throw new FsError(E.NOTDIR, 'not a directory');
      }
    });
    return p;
  }

  private change(): void {
    if (this.readOnly) throw new FsError(E.ROFS, 'read-only share');
  }

  private fd(handle: number): number {
    if (!this.handles.has(handle)) throw new FsError(E.BADF, 'no such handle');
    return handle;
  }

  lstat(path: readonly string[]): FsStat {
    const p = this.resolve(path);
    return toStat(host(() => lstatSync(p, { bigint: true })));
  }

  readdir(path: readonly string[]): FsDirEntry[] {
    const p = this.resolve(path);
    const names = host(() => readdirSync(p));
    const out: FsDirEntry[] = [];
    for (const name of names) {
      try {
        const st = lstatSync(join(p, name), { bigint: true });
        out.push({ name, ino: st.ino, type: Number(st.mode) & S_IFMT });
      } catch {
        // removed by the host while listing
      }
    }
    return out;
  }

  open(path: readonly string[], flags: FsOpenFlags): number {
    if (flags.write || flags.truncate) this.change();
    const p = this.resolve(path);
    const fd = host(() => openSync(p, openMode(flags)));
    if (fstatSync(fd).isDirectory()) {
      closeSync(fd);
      throw new FsError(E.ISDIR, 'is a directory');
    }
    this.handles.add(fd);
    return fd;
  }

  create(path: readonly string[], mode: number, flags: FsOpenFlags & { exclusive: boolean }): number {
    this.change();
    const p = this.resolve(path);
    const fd = host(() => openSync(p, openMode(flags) | constants.O_CREAT | (flags.exclusive ? constants.O_EXCL : 0), mode));
    this.handles.add(fd);
    return fd;
  }

  read(handle: number, position: number, buf: Uint8Array): number {
    const fd = this.fd(handle);
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
    const fd = this.fd(handle);
    let done = 0;
    while (done < data.length) done += host(() => writeSync(fd, data, done, data.length - done, position + done));
    return done;
  }

  fsync(handle: number, dataOnly: boolean): void {
    const fd = this.fd(handle);
    host(() => (dataOnly ? fdatasyncSync(fd) : fsyncSync(fd)));
  }

  close(handle: number): void {
    if (!this.handles.delete(handle)) return;
    host(() => closeSync(handle));
  }

  mkdir(path: readonly string[], mode: number): void {
    this.change();
    const p = this.resolve(path);
    host(() => mkdirSync(p, { mode }));
  }

  symlink(path: readonly string[], target: string): void {
    this.change();
    const p = this.resolve(path);
    host(() => symlinkSync(target, p));
  }

  readlink(path: readonly string[]): string {
    const p = this.resolve(path);
    return host(() => readlinkSync(p, 'utf8'));
  }

  link(existing: readonly string[], path: readonly string[]): void {
    this.change();
    const from = this.resolve(existing);
    const to = this.resolve(path);
    host(() => linkSync(from, to)); // link(2) does not follow a symbolic link at `from`
  }

  unlink(path: readonly string[]): void {
    this.change();
    const p = this.resolve(path);
    host(() => unlinkSync(p));
  }

  rmdir(path: readonly string[]): void {
    this.change();
    const p = this.resolve(path);
    host(() => rmdirSync(p));
  }

  rename(from: readonly string[], to: readonly string[]): void {
    this.change();
    const a = this.resolve(from);
    const b = this.resolve(to);
    host(() => renameSync(a, b));
  }

  chmod(path: readonly string[], mode: number): void {
    this.change();
    const p = this.resolve(path);
    // chmod follows links and Linux has no lchmod: a link's own mode cannot change anyway.
    if ((Number(host(() => lstatSync(p)).mode) & S_IFMT) === S_IFLNK) throw new FsError(E.OPNOTSUPP, 'cannot chmod a symbolic link');
    host(() => chmodSync(p, mode));
  }

  chown(path: readonly string[], uid: number | null, gid: number | null): void {
    this.change();
    const p = this.resolve(path);
    const st = host(() => lstatSync(p));
    try {
      lchownSync(p, uid ?? st.uid, gid ?? st.gid);
    } catch {
      // As QEMU's security_model=none: files stay the monitor user's when it may not give them away.
    }
  }

  truncate(path: readonly string[], size: number): void {
    this.change();
    const p = this.resolve(path);
    const fd = host(() => openSync(p, constants.O_WRONLY | constants.O_NOFOLLOW));
    try {
      if (fstatSync(fd).isDirectory()) throw new FsError(E.ISDIR, 'is a directory');
      host(() => ftruncateSync(fd, size));
    } finally {
      closeSync(fd);
    }
  }

  utimes(path: readonly string[], atimeNs: bigint, mtimeNs: bigint): void {
    this.change();
    const p = this.resolve(path);
    // Node takes seconds as a number: microsecond precision survives, which is what utimes(2) keeps too.
    host(() => lutimesSync(p, Number(atimeNs / 1000n) / 1e6, Number(mtimeNs / 1000n) / 1e6));
  }

  statfs(): FsStatFs {
    const s = host(() => statfsSync(this.root, { bigint: true }));
    return {
      type: Number(s.type), bsize: Number(s.bsize), blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, namelen: 255,
    };
  }

  /** Closes every handle (at exit). */
  closeAll(): void {
    for (const h of this.handles) this.close(h);
  }
}
