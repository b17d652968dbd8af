/**
 * The process VM's host on Node (src/exec/host.ts): the guest's files are the host's files under
 * a root directory, its standard streams the host's, its clocks and randomness Node's. Paths
 * arrive resolved by the core (no `..`, no link but perhaps the last component), and every open
 * refuses a link as last component (O_NOFOLLOW), so nothing leads outside the root.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { hostname, release, version } from 'node:os';
import { E } from '../../../exec/abi.ts';
import { isTerminal, NodeTerminal } from './node-terminal.ts';
import { nodeSockets } from './sockets.ts';
import type { ExecDirent, ExecHost, ExecSockets, ExecStat, ExecStatfs, HostHandle, OpenMode } from '../../../exec/host.ts';

const C = fs.constants;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** -errno for a Node error (by its code; EIO when it has none the guest knows). */
export function errnoOf(e: unknown): number {
  const code = (e as { code?: string }).code;
  return code && code in E ? -E[code as keyof typeof E] : -E.EIO;
}

function call(f: () => number | void): number {
  try {
    return f() ?? 0;
  } catch (e) {
    return errnoOf(e);
  }
}

function statOf(s: fs.BigIntStats): ExecStat {
  return {
    dev: s.dev, ino: s.ino, mode: Number(s.mode), nlink: Number(s.nlink), uid: Number(s.uid), gid: Number(s.gid),
    rdev: s.rdev, size: s.size, blksize: Number(s.blksize), blocks: s.blocks,
    atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs,
  };
}

function direntType(d: fs.Dirent): number {
  return d.isDirectory() ? 4 : d.isFile() ? 8 : d.isSymbolicLink() ? 10 : d.isFIFO() ? 1 : d.isCharacterDevice() ? 2 : d.isBlockDevice() ? 6 : d.isSocket() ? 12 : 0;
}

/** Runs a stream operation again while it would block (a non-blocking pipe or terminal). */
function retrying(f: () => number): number {
  for (;;) {
    try {
      return f();
    } catch (e) {
      if ((e as { code?: string }).code !== 'EAGAIN') return errnoOf(e);
      Atomics.wait(sleeper, 0, 0, 5);
    }
  }
}

export class NodeExecHost implements ExecHost {
  readonly stdio = [0, 1, 2] as const;
  readonly ids = {
    pid: process.pid, ppid: process.ppid, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0,
  };
  readonly uname = { nodename: hostname(), release: release(), version: version() };
  /** The host's terminal, when stdin is one: the guest's raw and cooked modes reach it. */
  readonly terminal?: NodeTerminal = isTerminal(0) ? new NodeTerminal() : undefined;
  private socketsLoaded = false;
  private hostSockets: ExecSockets | undefined;

  /** Host sockets, loaded at a program's first socket call (the native helper's load took 5 ms of every start). */
  get sockets(): ExecSockets | undefined {
    if (!this.socketsLoaded) {
      this.socketsLoaded = true;
      this.hostSockets = nodeSockets();
    }
    return this.hostSockets;
  }

  /** `root`: the host directory that is the guest's `/` (an absolute path). */
  constructor(private readonly root: string) {}

  private at(path: string): string {
    return this.root === '/' ? path : `${this.root}${path === '/' ? '' : path}`;
  }

  lstat(path: string): ExecStat | number {
    try {
      return statOf(fs.lstatSync(this.at(path), { bigint: true }));
    } catch (e) {
      return errnoOf(e);
    }
  }

  readlink(path: string): string | number {
    try {
      return fs.readlinkSync(this.at(path));
    } catch (e) {
      return errnoOf(e);
    }
  }

  open(path: string, m: OpenMode): HostHandle | number {
    let flags = m.read && m.write ? C.O_RDWR : m.write ? C.O_WRONLY : C.O_RDONLY;
    if (m.create) flags |= C.O_CREAT;
    if (m.exclusive) flags |= C.O_EXCL;
    if (m.truncate) flags |= C.O_TRUNC;
    if (m.append) flags |= C.O_APPEND;
    if (m.directory) flags |= C.O_DIRECTORY;
    if (m.noFollow) flags |= C.O_NOFOLLOW;
    return call(() => fs.openSync(this.at(path), flags, m.mode));
  }

  read(h: HostHandle, buf: Uint8Array, pos: number | null): number {
    if (buf.length === 0) return 0;
    return retrying(() => fs.readSync(h, buf, 0, buf.length, pos));
  }

  write(h: HostHandle, buf: Uint8Array, pos: number | null): number {
    if (buf.length === 0) return 0;
    return retrying(() => fs.writeSync(h, buf, 0, buf.length, pos));
  }

  fstat(h: HostHandle): ExecStat | number {
    try {
      return statOf(fs.fstatSync(h, { bigint: true }));
    } catch (e) {
      return errnoOf(e);
    }
  }

  close(h: HostHandle): number {
    return call(() => fs.closeSync(h));
  }

  ftruncate(h: HostHandle, len: number): number {
    return call(() => fs.ftruncateSync(h, len));
  }

  fsync(h: HostHandle): number {
    return call(() => fs.fsyncSync(h));
  }

  fchmod(h: HostHandle, mode: number): number {
    return call(() => fs.fchmodSync(h, mode));
  }

  isatty(h: HostHandle): boolean {
    return isTerminal(h);
  }

  readdir(path: string): ExecDirent[] | number {
    // fs.opendirSync keeps the directory's own order, as getdents64 returns it (readdirSync sorts).
    let dir: fs.Dir | undefined;
    try {
      const at = this.at(path);
      dir = fs.opendirSync(at);
      const out: ExecDirent[] = [];
      for (let d = dir.readSync(); d !== null; d = dir.readSync()) {
        let ino = 0n;
        try {
          ino = fs.lstatSync(`${at}/${d.name}`, { bigint: true }).ino;
        } catch {
          // gone meanwhile: listed without an inode number
        }
        out.push({ name: d.name, ino, type: direntType(d) });
      }
      return out;
    } catch (e) {
      return errnoOf(e);
    } finally {
      dir?.closeSync();
    }
  }

  mkdir(path: string, mode: number): number {
    return call(() => fs.mkdirSync(this.at(path), { mode }));
  }

  unlink(path: string): number {
    return call(() => fs.unlinkSync(this.at(path)));
  }

  rmdir(path: string): number {
    return call(() => fs.rmdirSync(this.at(path)));
  }

  rename(from: string, to: string): number {
    return call(() => fs.renameSync(this.at(from), this.at(to)));
  }

  symlink(target: string, path: string): number {
    return call(() => fs.symlinkSync(target, this.at(path)));
  }

  chmod(path: string, mode: number): number {
    return call(() => fs.chmodSync(this.at(path), mode));
  }

  link(from: string, to: string): number {
    return call(() => fs.linkSync(this.at(from), this.at(to)));
  }

  truncate(path: string, len: number): number {
    return call(() => fs.truncateSync(this.at(path), len));
  }

  chown(target: string | HostHandle, uid: number, gid: number, noFollow: boolean): number {
    if (typeof target === 'number') return call(() => fs.fchownSync(target, uid, gid));
    const at = this.at(target);
    return call(() => (noFollow ? fs.lchownSync : fs.chownSync)(at, uid, gid));
  }

  statfs(path: string): ExecStatfs | number {
    try {
      const s = fs.statfsSync(this.at(path), { bigint: true });
      return { type: Number(s.type), bsize: Number(s.bsize), blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree };
    } catch (e) {
      return errnoOf(e);
    }
  }

  utimes(target: string | HostHandle, atimeNs: bigint, mtimeNs: bigint, noFollow: boolean): number {
    const sec = (ns: bigint) => Number(ns) / 1e9;
    if (typeof target === 'number') return call(() => fs.futimesSync(target, sec(atimeNs), sec(mtimeNs)));
    const at = this.at(target);
    return call(() => (noFollow ? fs.lutimesSync : fs.utimesSync)(at, sec(atimeNs), sec(mtimeNs)));
  }

  realtimeNs(): bigint {
    return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
  }

  monotonicNs(): bigint {
    return process.hrtime.bigint();
  }

  sleep(ns: number): void {
    Atomics.wait(sleeper, 0, 0, ns / 1e6);
  }

  random(buf: Uint8Array): void {
    hostRandom(buf);
  }
}

let urandom: number | null | undefined;

/**
 * Fills `buf` from the host's /dev/urandom, or node:crypto where there is none. (Loading
 * node:crypto took 6 ms of every start, and a program asks for randomness at once: AT_RANDOM.)
 */
function hostRandom(buf: Uint8Array): void {
  if (urandom === undefined) {
    try {
      urandom = fs.openSync('/dev/urandom', 'r');
    } catch {
      urandom = null;
    }
  }
  if (urandom !== null) {
    let done = 0;
    try {
      while (done < buf.length) {
        const n = fs.readSync(urandom, buf, done, buf.length - done, null);
        if (n <= 0) break;
        done += n;
      }
    } catch {}
    if (done === buf.length) return;
  }
  (createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto')).randomFillSync(buf);
}
