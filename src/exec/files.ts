/**
 * The guest's file descriptors: a table from small integers to open file descriptions, which
 * dup and friends share (POSIX: the offset and status flags belong to the description, the
 * close-on-exec flag to the descriptor).
 */
import { E } from './abi.ts';
import type { ExecDirent, ExecHost, HostHandle } from './host.ts';
import type { Pipe } from './pipe.ts';

/** An open file description. */
export interface OpenFile {
  handle: HostHandle;
  /** Guest-absolute path it was opened by ('' for the standard streams). */
  path: string;
  /** O_ACCMODE, O_APPEND, O_NONBLOCK as opened (or set by F_SETFL). */
  flags: number;
  /**
   * The file offset the core keeps for seekable files; null for streams (the standard streams,
   * pipes, terminals), which read and write at the host handle's own position.
   */
  pos: number | null;
  isDir: boolean;
  /** A directory's entries, read at the first getdents64 (`.` and `..` first). */
  dirents: ExecDirent[] | null;
  /** The host handle is one of the host's own standard streams: never closed. */
  keepOpen: boolean;
  /** Descriptors naming this description (in every process). */
  refs: number;
  /** For a pipe's end: the pipe (the host handle is then unused). */
  pipe?: Pipe;
  /** A file the monitor made (/proc/self/maps): its bytes, read at `pos`. */
  mem?: Uint8Array;
  /** A host socket (the host handle is never blocking; O_NONBLOCK in `flags` is the guest's). */
  socket?: { connecting: boolean };
}

interface Slot {
  file: OpenFile;
  cloexec: boolean;
}

/** RLIMIT_NOFILE's usual soft limit. */
export const MAX_FDS = 1024;

export class FdTable {
  private readonly slots = new Map<number, Slot>();

  constructor(private readonly host: ExecHost) {}

  /** The description behind `fd`, or undefined. */
  get(fd: number): OpenFile | undefined {
    return this.slots.get(fd)?.file;
  }

  /** Installs `file` at the lowest free descriptor >= `min`; returns it or -EMFILE. */
  add(file: OpenFile, cloexec: boolean, min = 0): number {
    for (let fd = min; fd < MAX_FDS; fd++) {
      if (!this.slots.has(fd)) {
        this.place(fd, file, cloexec);
        return fd;
      }
    }
    return -E.EMFILE;
  }

  /** Installs `file` at exactly `fd`, closing what was there (dup2/dup3). */
  place(fd: number, file: OpenFile, cloexec: boolean): void {
    if (this.slots.has(fd)) this.close(fd);
    file.refs++;
    this.slots.set(fd, { file, cloexec });
  }

  /** Closes `fd`: 0, or -EBADF. The host handle closes with its last descriptor. */
  close(fd: number): number {
    const s = this.slots.get(fd);
    if (!s) return -E.EBADF;
    this.slots.delete(fd);
    if (--s.file.refs === 0 && !s.file.keepOpen && !s.file.pipe) this.host.close(s.file.handle);
    return 0;
  }

  /** A copy for a forked child: the same descriptions, each named once more. */
  clone(): FdTable {
    const t = new FdTable(this.host);
    for (const [fd, s] of this.slots) t.place(fd, s.file, s.cloexec);
    return t;
  }

  /** Closes the descriptors marked close-on-exec (execve). */
  closeOnExec(): void {
    for (const [fd, s] of [...this.slots]) if (s.cloexec) this.close(fd);
  }

  cloexec(fd: number): boolean {
    return this.slots.get(fd)?.cloexec ?? false;
  }

  setCloexec(fd: number, on: boolean): void {
    const s = this.slots.get(fd);
    if (s) s.cloexec = on;
  }

  /** Closes every descriptor (at exit). */
  closeAll(): void {
    for (const fd of [...this.slots.keys()]) this.close(fd);
  }
}

/** A description for one end of a pipe. */
export function pipeFile(pipe: Pipe, write: boolean, nonBlocking: boolean): OpenFile {
  return { handle: -1, path: '', flags: (write ? 1 : 0) | (nonBlocking ? 0o4000 : 0), pos: null, isDir: false, dirents: null, keepOpen: false, refs: 0, pipe };
}

/** A description for one of the host's standard streams. */
export function stdioFile(handle: HostHandle, flags: number): OpenFile {
  return { handle, path: '', flags, pos: null, isDir: false, dirents: null, keepOpen: true, refs: 0 };
}
