/**
 * What the process VM needs from its host: the files under the guest's root, its standard
 * streams, time, randomness and sleep. Node implements it over `node:fs`
 * (src/host/node/exec/); a browser would over an in-memory or OPFS tree. Every call is
 * synchronous (a guest's system call completes before the guest runs on), and a failure is a
 * negative Linux errno (abi.ts `E`), never a throw.
 *
 * Paths given to the host are guest-absolute paths already resolved by the core (path.ts): no
 * `.` or `..` component and no symbolic link except, where the call says so, the last
 * component. The host places them under the guest's root.
 */

/** File status as the guest's `struct stat` carries it (times in nanoseconds since the epoch). */
export interface ExecStat {
  dev: bigint;
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: bigint;
  size: bigint;
  blksize: number;
  blocks: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/**
 * Sockets on the host, never blocking: a call that would wait answers -EAGAIN (the core waits
 * by making the guest's call again later). Addresses are `struct sockaddr` bytes as Linux lays
 * them out; option values are the guest's bytes. Handles are host handles like files'.
 */
export interface ExecSockets {
  socket(domain: number, type: number, protocol: number): HostHandle | number;
  connect(h: HostHandle, addr: Uint8Array): number;
  bind(h: HostHandle, addr: Uint8Array): number;
  listen(h: HostHandle, backlog: number): number;
  accept(h: HostHandle): HostHandle | number;
  /** The socket's own address (getsockname) or its peer's, or -errno. */
  name(h: HostHandle, peer: boolean): Uint8Array | number;
  setsockopt(h: HostHandle, level: number, name: number, value: Uint8Array): number;
  getsockopt(h: HostHandle, level: number, name: number, len: number): Uint8Array | number;
  shutdown(h: HostHandle, how: number): number;
  send(h: HostHandle, data: Uint8Array, flags: number, addr: Uint8Array | null): number;
  /** Receives into `buf`; with `from`, the sender's address goes there. */
  recv(h: HostHandle, buf: Uint8Array, flags: number, from: Uint8Array | null): number;
  /** poll(2) events ready now (POLLIN 1, POLLOUT 4, POLLERR 8, POLLHUP 16). */
  poll(h: HostHandle, events: number): number;
}

/** What statfs reports about a file system. */
export interface ExecStatfs {
  type: number;
  bsize: number;
  blocks: bigint;
  bfree: bigint;
  bavail: bigint;
  files: bigint;
  ffree: bigint;
}

/** One directory entry (getdents64). `type` is the DT_* value (DT_DIR 4, DT_REG 8, DT_LNK 10...). */
export interface ExecDirent {
  name: string;
  ino: bigint;
  type: number;
}

/** How to open a file (from the guest's O_* flags; the host maps them to its own). */
export interface OpenMode {
  read: boolean;
  write: boolean;
  create: boolean;
  exclusive: boolean;
  truncate: boolean;
  append: boolean;
  directory: boolean;
  /** Refuse (ELOOP) when the path names a symbolic link. */
  noFollow: boolean;
  /** Permission bits for a created file (before the umask, which the host applies). */
  mode: number;
}

/**
 * A terminal the host keeps itself (a browser tab's), for the handles it calls terminals
 * (isatty): the core answers TCGETS, TCSETS* and TIOCGWINSZ from it. Without one, TCGETS
 * answers a cooked terminal and TCSETS* changes nothing (the host's own terminal keeps its
 * mode, as under `virtus exec` on a real terminal).
 */
export interface ExecTerminal {
  /** The current struct termios (36 bytes, asm-generic/termbits.h). */
  getAttr(): Uint8Array;
  /** Sets the termios; `flush` (TCSETSF) drops input not yet read. */
  setAttr(termios: Uint8Array, flush: boolean): void;
  /** The window size in characters. */
  winsize(): { rows: number; cols: number };
}

/** A host file handle (opaque to the core). */
export type HostHandle = number;

/** The host side of a guest process: files, streams, time. */
export interface ExecHost {
  /** Status of a path without following a last symbolic link, or -errno. */
  lstat(path: string): ExecStat | number;
  /** A symbolic link's target, or -errno. */
  readlink(path: string): string | number;
  /** Opens a path (its last component is not a link when mode.noFollow is set). */
  open(path: string, mode: OpenMode): HostHandle | number;
  /** Reads up to buf.length bytes at `pos` (null: the handle's own position, for streams). */
  read(h: HostHandle, buf: Uint8Array, pos: number | null): number;
  /** Writes buf at `pos` (null: the handle's own position, for streams). */
  write(h: HostHandle, buf: Uint8Array, pos: number | null): number;
  fstat(h: HostHandle): ExecStat | number;
  close(h: HostHandle): number;
  ftruncate(h: HostHandle, len: number): number;
  fsync(h: HostHandle): number;
  fchmod(h: HostHandle, mode: number): number;
  /** True when the handle is a terminal. */
  isatty(h: HostHandle): boolean;
  /** A directory's entries, without `.` and `..`. */
  readdir(path: string): ExecDirent[] | number;
  mkdir(path: string, mode: number): number;
  unlink(path: string): number;
  rmdir(path: string): number;
  rename(from: string, to: string): number;
  symlink(target: string, path: string): number;
  chmod(path: string, mode: number): number;
  /** Makes a hard link `to` naming the file `from` (neither followed if a link). */
  link(from: string, to: string): number;
  truncate(path: string, len: number): number;
  /** Changes owner and group (-1 keeps one) of a path (its last link not followed when `noFollow`), or of an open handle. */
  chown(target: string | HostHandle, uid: number, gid: number, noFollow: boolean): number;
  /** The file system holding a path: its type (f_type), block size and counts, or -errno. */
  statfs(path: string): ExecStatfs | number;
  /**
   * Sets access and modification times (nanoseconds since the epoch) of a path, or of an
   * open handle when `path` is a number; a link itself when `noFollow`.
   */
  utimes(target: string | HostHandle, atimeNs: bigint, mtimeNs: bigint, noFollow: boolean): number;
  /** The guest's standard streams: handles for fds 0, 1 and 2. */
  readonly stdio: readonly [HostHandle, HostHandle, HostHandle];
  /**
   * The terminal behind the standard streams that are terminals, when the host keeps one
   * (see ExecTerminal). Its reads answer -EAGAIN while no input is ready: the guest's call
   * then waits on the host (ExecKernel.turn reports `hostWait`).
   */
  readonly terminal?: ExecTerminal;
  /** Host sockets (IPv4 and IPv6), when the host has them. */
  readonly sockets?: ExecSockets;
  /** Wall-clock time in nanoseconds since the epoch. */
  realtimeNs(): bigint;
  /** A monotonic clock in nanoseconds. */
  monotonicNs(): bigint;
  /** Blocks the guest for `ns` nanoseconds. */
  sleep(ns: number): void;
  /** Fills `buf` with random bytes. */
  random(buf: Uint8Array): void;
  /** Identity the guest sees (getpid, getuid...). */
  readonly ids: { pid: number; ppid: number; uid: number; gid: number };
  /** What uname reports (nodename, release, version). */
  readonly uname: { nodename: string; release: string; version: string };
}
