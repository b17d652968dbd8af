/**
 * System calls on paths and directories: the *at family's resolution (dirfd, AT_FDCWD,
 * AT_EMPTY_PATH), stat, readlink, getdents64, mkdir, unlink, rename, symlink, chmod, access,
 * getcwd and chdir. Every path goes through path.ts, so it stays inside the guest's root.
 */
import { AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, E, S_IFDIR, S_IFMT, SYS } from './abi.ts';
import { direntBytes, i64At, statBytes, statxBytes } from './guest-struct.ts';
import type { OpenFile } from './files.ts';
import type { ExecStat } from './host.ts';
import type { GuestProcess } from './process.ts';
import type { Syscall, SyscallArgs } from './syscalls.ts';

const DT_DIR = 4;
const S_IFIFO = 0o010000;

/** The guest-absolute directory a *at call's `dirfd` names, or -errno. */
export function dirBase(p: GuestProcess, dirfd: number): string | number {
  if (dirfd === AT_FDCWD) return p.cwd;
  const f = p.fds.get(dirfd);
  if (!f) return -E.EBADF;
  return f.isDir ? f.path : -E.ENOTDIR;
}

/**
 * Reads the path at `ptr` and resolves it against `dirfd`; a guest-absolute path or -errno
 * (`out.st`: the lstat resolving took of the result, see resolvePath).
 */
export function atPath(p: GuestProcess, dirfd: number, ptr: number, follow: boolean, out?: { st?: ExecStat }): string | number {
  const path = p.as.readString(ptr);
  if (path === null) return -E.EFAULT;
  if (path === '') return -E.ENOENT;
  const base = path.startsWith('/') ? '/' : dirBase(p, dirfd);
  if (typeof base === 'number') return base;
  return p.resolve(base, path, follow, out);
}

/** Status of an open file; a pipe is a FIFO and a /proc file a regular file, owned by the process's user. */
export function fileStat(p: GuestProcess, f: OpenFile): ExecStat | number {
  if (!f.pipe && !f.mem) return p.host.fstat(f.handle);
  const ids = p.host.ids;
  // A /proc file, like Linux's, is a regular file of size 0.
  return {
    dev: 0n, ino: 0n, mode: f.pipe ? S_IFIFO | 0o600 : 0o100444, nlink: 1, uid: ids.uid, gid: ids.gid, rdev: 0n, size: 0n, blksize: 4096, blocks: 0n,
    atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n,
  };
}

/** Status of dirfd/path for the stat family (AT_EMPTY_PATH: of dirfd itself). */
function statAt(p: GuestProcess, dirfd: number, ptr: number, flags: number): ExecStat | number {
  if (flags & AT_EMPTY_PATH) {
    const s = p.as.readString(ptr);
    if (s === null) return -E.EFAULT;
    if (s === '') {
      if (dirfd === AT_FDCWD) return p.host.lstat(p.cwd);
      const f = p.fds.get(dirfd);
      return f ? fileStat(p, f) : -E.EBADF;
    }
  }
  // Resolving took the lstat of the file already, unless it was not needed (or was a link).
  const out: { st?: ExecStat } = {};
  const path = atPath(p, dirfd, ptr, !(flags & AT_SYMLINK_NOFOLLOW), out);
  return typeof path === 'number' ? path : out.st ?? p.host.lstat(path);
}

/** Writes `bytes` to guest memory at `ptr`: `ok` on success, -EFAULT otherwise. */
export function put(p: GuestProcess, ptr: number, bytes: Uint8Array, ok = 0): number {
  return p.as.write(ptr, bytes) ? ok : -E.EFAULT;
}

/** Runs `f` on a resolved path, passing errors through. */
function withPath(path: string | number, f: (path: string) => number): number {
  return typeof path === 'number' ? path : f(path);
}

export const DIR_CALLS: Record<number, Syscall> = {
  [SYS.newfstatat]: (p, a) => {
    const st = statAt(p, a.int(0), a.num(1), a.int(3));
    return typeof st === 'number' ? st : put(p, a.num(2), statBytes(st));
  },
  [SYS.fstat]: (p, a) => {
    const f = p.fds.get(a.int(0));
    if (!f) return -E.EBADF;
    const st = fileStat(p, f);
    return typeof st === 'number' ? st : put(p, a.num(1), statBytes(st));
  },
  [SYS.statx]: (p, a) => {
    const st = statAt(p, a.int(0), a.num(1), a.int(2));
    return typeof st === 'number' ? st : put(p, a.num(4), statxBytes(st));
  },
  [SYS.readlinkat]: (p, a) => {
    const raw = p.as.readString(a.num(1));
    if (raw === null) return -E.EFAULT;
    let target: string | number;
    // Linux's /proc/self/exe names the running program; here, its path inside the root.
    if (raw === '/proc/self/exe') target = p.exe;
    else {
      const path = atPath(p, a.int(0), a.num(1), false);
      target = typeof path === 'number' ? path : p.host.readlink(path);
    }
    if (typeof target === 'number') return target;
    const bytes = new TextEncoder().encode(target).subarray(0, a.num(3));
    return put(p, a.num(2), bytes, bytes.length);
  },
  [SYS.getdents64]: (p, a) => {
    const f = p.fds.get(a.int(0));
    if (!f) return -E.EBADF;
    if (!f.isDir) return -E.ENOTDIR;
    if (!f.dirents) {
      const list = p.host.readdir(f.path);
      if (typeof list === 'number') return list;
      const self = p.host.lstat(f.path);
      const parentPath = f.path === '/' ? '/' : f.path.slice(0, f.path.lastIndexOf('/')) || '/';
      const parent = p.host.lstat(parentPath);
      const ino = (s: ExecStat | number) => (typeof s === 'number' ? 0n : s.ino);
      f.dirents = [{ name: '.', ino: ino(self), type: DT_DIR }, { name: '..', ino: ino(parent), type: DT_DIR }, ...list];
      f.pos = 0;
    }
    const [bytes, n] = direntBytes(f.dirents, f.pos ?? 0, Math.min(a.num(2), 1 << 20));
    if (n === 0 && (f.pos ?? 0) < f.dirents.length) return -E.EINVAL;
    if (!p.as.write(a.num(1), bytes)) return -E.EFAULT;
    f.pos = (f.pos ?? 0) + n;
    return bytes.length;
  },
  [SYS.mkdirat]: (p, a) => withPath(atPath(p, a.int(0), a.num(1), false), (path) => p.host.mkdir(path, a.int(2) & ~p.umask & 0o7777)),
  [SYS.unlinkat]: (p, a) =>
    withPath(atPath(p, a.int(0), a.num(1), false), (path) => (a.int(2) & AT_REMOVEDIR ? p.host.rmdir(path) : p.host.unlink(path))),
  [SYS.renameat2]: (p, a) => {
    const RENAME_NOREPLACE = 1;
    const flags = a.int(4);
    if (flags & ~RENAME_NOREPLACE) return -E.EINVAL;
    return withPath(atPath(p, a.int(0), a.num(1), false), (from) =>
      withPath(atPath(p, a.int(2), a.num(3), false), (to) => {
        if (flags & RENAME_NOREPLACE && typeof p.host.lstat(to) !== 'number') return -E.EEXIST;
        return p.host.rename(from, to);
      }));
  },
  [SYS.symlinkat]: (p, a) => {
    const target = p.as.readString(a.num(0));
    if (target === null) return -E.EFAULT;
    return withPath(atPath(p, a.int(1), a.num(2), false), (path) => p.host.symlink(target, path));
  },
  [SYS.fchmodat]: (p, a) => withPath(atPath(p, a.int(0), a.num(1), true), (path) => p.host.chmod(path, a.int(2) & 0o7777)),
  [SYS.faccessat]: (p, a) => access(p, a.int(0), a.num(1), a.int(2), 0),
  [SYS.faccessat2]: (p, a) => access(p, a.int(0), a.num(1), a.int(2), a.int(3)),
  [SYS.utimensat]: utimensat,
  [SYS.getcwd]: (p, a) => {
    const bytes = new TextEncoder().encode(`${p.cwd}\0`);
    if (a.num(1) < bytes.length) return -E.ERANGE;
    return put(p, a.num(0), bytes, bytes.length);
  },
  [SYS.chdir]: (p, a) => withPath(atPath(p, AT_FDCWD, a.num(0), true), (path) => chdir(p, path)),
  [SYS.fchdir]: (p, a) => {
    const f = p.fds.get(a.int(0));
    if (!f) return -E.EBADF;
    return f.isDir ? chdir(p, f.path) : -E.ENOTDIR;
  },
};

function chdir(p: GuestProcess, path: string): number {
  const st = p.host.lstat(path);
  if (typeof st === 'number') return st;
  if ((st.mode & S_IFMT) !== S_IFDIR) return -E.ENOTDIR;
  p.cwd = path;
  return 0;
}

/**
 * faccessat: whether the file exists and its permission bits grant `mode` (R 4, W 2, X 1) to
 * the process's user, its group or others, as the kernel decides for a non-root user.
 */
function access(p: GuestProcess, dirfd: number, ptr: number, mode: number, flags: number): number {
  return withPath(atPath(p, dirfd, ptr, !(flags & AT_SYMLINK_NOFOLLOW)), (path) => {
    const st = p.host.lstat(path);
    if (typeof st === 'number') return st;
    const want = mode & 7;
    if (want === 0 || p.host.ids.uid === 0) return want & 1 && !(st.mode & 0o111) && (st.mode & S_IFMT) !== S_IFDIR ? -E.EACCES : 0;
    const bits = st.uid === p.host.ids.uid ? st.mode >> 6 : st.gid === p.host.ids.gid ? st.mode >> 3 : st.mode;
    return (bits & want) === want ? 0 : -E.EACCES;
  });
}

const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;

/** utimensat(dirfd, path, times[2], flags); a NULL path sets the times of dirfd (futimens). */
function utimensat(p: GuestProcess, a: SyscallArgs): number {
  const flags = a.int(3);
  const now = p.host.realtimeNs();
  let target: string | number;
  let st: ExecStat | number;
  if (a.num(1) === 0) {
    const f = p.fds.get(a.int(0));
    if (!f || f.pipe) return -E.EBADF;
    target = f.handle;
    st = p.host.fstat(f.handle);
  } else {
    const path = atPath(p, a.int(0), a.num(1), !(flags & AT_SYMLINK_NOFOLLOW));
    if (typeof path === 'number') return path;
    target = path;
    st = p.host.lstat(path);
  }
  if (typeof st === 'number') return st;
  let at = now;
  let mt = now;
  if (a.num(2) !== 0) {
    const ts = p.as.read(a.num(2), 32);
    if (!ts) return -E.EFAULT;
    const pick = (i: number, old: bigint): bigint | number => {
      const sec = i64At(ts, 16 * i);
      const nsec = i64At(ts, 16 * i + 8);
      if (nsec === UTIME_NOW) return now;
      if (nsec === UTIME_OMIT) return old;
      if (nsec < 0 || nsec >= 1e9) return -E.EINVAL;
      return BigInt(sec) * 1_000_000_000n + BigInt(nsec);
    };
    const x = pick(0, st.atimeNs);
    const y = pick(1, st.mtimeNs);
    if (typeof x === 'number' || typeof y === 'number') return -E.EINVAL;
    at = x;
    mt = y;
  }
  return p.host.utimes(target, at, mt, (flags & AT_SYMLINK_NOFOLLOW) !== 0);
}
