/**
 * The host folder a 9P server shares, as an abstract file system: the core speaks 9P2000.L
 * (server.ts) over this interface and the host supplies it (Node's, confined to one folder,
 * is src/host/node/host-fs.ts; a browser could supply one over OPFS).
 *
 * Paths are arrays of names relative to the shared root ([] is the root), each already
 * checked by the server (no "/", NUL, ".", ".." or empty names). Implementations must never
 * follow a symbolic link in any component: every operation acts on the link itself (lstat,
 * O_NOFOLLOW), and a link in the middle of a path is refused (ELOOP). Only regular files
 * and directories are ever opened: a FIFO, socket or device is refused without opening it
 * (opening one may block, or act on a host device). An open handle keeps naming the file or
 * directory it opened, whatever later happens to its path. Failures throw FsError with a
 * Linux errno, which the server returns to the guest in Rlerror.
 */

/** Linux errno values (the guest's, whatever the host is). */
export const E = {
  PERM: 1, NOENT: 2, IO: 5, NXIO: 6, BADF: 9, AGAIN: 11, NOMEM: 12, ACCES: 13, EXIST: 17, XDEV: 18, BUSY: 16, NOTDIR: 20, ISDIR: 21,
  INVAL: 22, NFILE: 23, MFILE: 24, TXTBSY: 26, FBIG: 27, NOSPC: 28, ROFS: 30, MLINK: 31, NAMETOOLONG: 36, NOSYS: 38, NOTEMPTY: 39, LOOP: 40,
  NODATA: 61, PROTO: 71, OVERFLOW: 75, MSGSIZE: 90, OPNOTSUPP: 95, DQUOT: 122,
} as const;

/** A failure with the errno the guest should see. */
export class FsError extends Error {
  constructor(
    readonly errno: number,
    message = `errno ${errno}`,
  ) {
    super(message);
    this.name = 'FsError';
  }
}

/** st_mode file type bits (Linux). */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** What lstat reports (times in nanoseconds since the Unix epoch). */
export interface FsStat {
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: bigint;
  size: number;
  blksize: number;
  blocks: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** A directory entry with its inode number and st_mode type bits. */
export interface FsDirEntry {
  name: string;
  ino: bigint;
  /** S_IFMT bits of the entry (0 when unknown). */
  type: number;
  /** The index to ask for to go on after this entry. */
  next: number;
}

export interface FsStatFs {
  type: number;
  bsize: number;
  blocks: bigint;
  bfree: bigint;
  bavail: bigint;
  files: bigint;
  ffree: bigint;
  namelen: number;
}

/** How to open a file (Linux open(2) semantics for these bits). */
export interface FsOpenFlags {
  read: boolean;
  write: boolean;
  truncate: boolean;
  append: boolean;
}

/**
 * The shared folder. Handles are small integers owned by the implementation; each open file
 * or directory holds one (an implementation may limit how many are open: ENFILE).
 */
export interface HostFs {
  /** Refuses every change with EROFS. */
  readonly readOnly: boolean;
  lstat(path: readonly string[]): FsStat;
  /** The attributes of an open file or directory. */
  fstat(handle: number): FsStat;
  /**
   * Opens an existing regular file. A directory is EISDIR, a symbolic link ELOOP, anything
   * else (FIFO, socket, device) ENXIO, all without opening it.
   */
  open(path: readonly string[], flags: FsOpenFlags): number;
  /** Opens an existing directory for listing (a link is ELOOP, anything else ENOTDIR). */
  openDir(path: readonly string[]): number;
  /**
   * Up to `count` entries of an open directory from entry `index` (0 is the first; "." and
   * ".." are not listed), fewer at its end. Each entry's `next` is where to go on; reading
   * on from there costs nothing extra, and only what is returned is held in memory.
   */
  readdir(handle: number, index: number, count: number): FsDirEntry[];
  /**
   * Creates a regular file with permission bits `mode` and opens it; `exclusive` fails if
   * it exists; otherwise an existing name is opened as open() would.
   */
  create(path: readonly string[], mode: number, flags: FsOpenFlags & { exclusive: boolean }): number;
  read(handle: number, position: number, buf: Uint8Array): number;
  write(handle: number, position: number, data: Uint8Array): number;
  fsync(handle: number, dataOnly: boolean): void;
  /** Closes a file or directory handle. */
  close(handle: number): void;
  mkdir(path: readonly string[], mode: number): void;
  symlink(path: readonly string[], target: string): void;
  readlink(path: readonly string[]): string;
  link(existing: readonly string[], path: readonly string[]): void;
  unlink(path: readonly string[]): void;
  rmdir(path: readonly string[]): void;
  rename(from: readonly string[], to: readonly string[]): void;
  chmod(path: readonly string[], mode: number): void;
  /** Changes the owner where the host allows it (a monitor without privileges cannot: then nothing happens). */
  chown(path: readonly string[], uid: number | null, gid: number | null): void;
  /** Sets the size of a regular file (anything else is EISDIR, ELOOP or EINVAL, never opened). */
  truncate(path: readonly string[], size: number): void;
  /** Sets access and modification times (nanoseconds since the epoch). */
  utimes(path: readonly string[], atimeNs: bigint, mtimeNs: bigint): void;
  statfs(): FsStatFs;
}
