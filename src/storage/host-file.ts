/**
 * The host side of block storage: a random-access file and a way to open files by path.
 *
 * Everything here is synchronous. The emulator is single-threaded and deterministic: a
 * virtio-blk request is served to completion inside the device's notify handler, so a block
 * backend never waits on a promise. Node supplies these with fs.readSync/writeSync/fsyncSync
 * (src/host/node/host-file.ts); a browser can supply them with OPFS sync access handles
 * (FileSystemSyncAccessHandle has the same shape: read/write at a position, truncate, flush).
 */
import { VirtusError } from '../util/errors.ts';

/**
 * How an image file is locked while it is open, in QEMU's terms (its permissions "consistent
 * read", "write", "resize"): 'write' reads and writes it and lets nobody else write it;
 * 'read' reads it and lets nobody write it; 'shared' reads it and lets others write it
 * (qemu-img -U, --force-share). A host without locks ignores this.
 */
export type LockMode = 'write' | 'read' | 'shared';

/** A random-access host file. Positions and sizes are byte counts below 2^53. */
export interface HostFile {
  /** Path or name, for messages. */
  readonly name: string;
  /** True when the file was opened without write access. */
  readonly readOnly: boolean;
  /**
   * Reads up to `buf.length` bytes at `position`; returns how many were read (fewer only at
   * the end of the file).
   */
  read(position: number, buf: Uint8Array): number;
  /** Writes all of `buf` at `position`, extending the file if needed. */
  write(position: number, buf: Uint8Array): void;
  /** Current length in bytes. */
  size(): number;
  /** Sets the length (extending with zeros, or cutting). */
  truncate(size: number): void;
  /**
   * Makes every completed write durable (a write barrier). `dataOnly` allows skipping
   * metadata that is not needed to read the data back (fdatasync).
   */
  flush(dataOnly?: boolean): void;
  close(): void;
  /** Bytes the file occupies on the host (sparse files use less than size()); optional. */
  allocatedSize?(): number;
  /**
   * Takes the image lock `mode` for as long as the file is open, or throws a VirtusError
   * (code IMAGE_LOCKED) saying who holds a conflicting one. Optional: hosts without locks
   * (a browser's OPFS handles are exclusive anyway) leave it out.
   */
  lock?(mode: LockMode): void;
  /** Drops the file's image locks while it stays open (a live migration hands the image over). */
  unlock?(): void;
}

/** Opens host files by path; relative backing-file names are resolved through it. */
export interface HostFileSystem {
  /** Opens an existing file. Throws a VirtusError naming `path` when it cannot. */
  open(path: string, options: { writable: boolean }): HostFile;
  /**
   * Creates (or empties) a file for writing. With `lock`, the file's write lock is taken
   * before an existing file is emptied, so an image in use is never cut.
   */
  create(path: string, options?: { lock?: boolean }): HostFile;
  /**
   * The path of `backing` as stored in the image at `imagePath`: QEMU resolves a relative
   * backing file name against the directory of the image that names it.
   */
  resolveBacking(imagePath: string, backing: string): string;
  /** True when `path` names an existing file. */
  exists(path: string): boolean;
  /** Removes a file (used to clean up after a failed create). */
  remove(path: string): void;
}

/** Reads exactly `buf.length` bytes at `position` or throws (a metadata structure is cut off). */
export function readExact(file: HostFile, position: number, buf: Uint8Array, what: string): void {
  const n = file.read(position, buf);
  if (n !== buf.length) {
    throw new VirtusError('IMAGE_TRUNCATED', `${file.name}: ${what} at offset ${position} lies beyond the end of the file (image truncated?)`);
  }
}

/** Reads at `position`, filling whatever lies beyond the end of the file with zeros. */
export function readZeroFilled(file: HostFile, position: number, buf: Uint8Array): void {
  const n = file.read(position, buf);
  if (n < buf.length) buf.fill(0, n);
}

/**
 * A HostFile in memory: for tests and for a browser without OPFS. Grows in steps so that
 * appending is cheap; `size()` is the logical length.
 */
export class MemoryHostFile implements HostFile {
  readonly name: string;
  readonly readOnly: boolean;
  private data: Uint8Array;
  private length: number;
  /** Number of flush() calls, for tests that count barriers. */
  flushes = 0;

  constructor(name = 'memory', initial: Uint8Array = new Uint8Array(0), readOnly = false) {
    this.name = name;
    this.readOnly = readOnly;
    this.data = initial.slice();
    this.length = initial.length;
  }

  /** A copy of the current contents. */
  contents(): Uint8Array {
    return this.data.slice(0, this.length);
  }

  read(position: number, buf: Uint8Array): number {
    const n = Math.max(0, Math.min(buf.length, this.length - position));
    buf.set(this.data.subarray(position, position + n));
    return n;
  }

  write(position: number, buf: Uint8Array): void {
    if (this.readOnly) throw new VirtusError('READ_ONLY', `${this.name}: file is read-only`);
    const end = position + buf.length;
    this.reserve(end);
    this.data.set(buf, position);
    if (end > this.length) this.length = end;
  }

  size(): number {
    return this.length;
  }

  truncate(size: number): void {
    if (size > this.length) this.reserve(size);
    else this.data.fill(0, size, this.length);
    this.length = size;
  }

  flush(): void {
    this.flushes++;
  }

  close(): void {}

  private reserve(end: number): void {
    if (end <= this.data.length) return;
    const next = new Uint8Array(Math.max(end, this.data.length * 2, 4096));
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
}

/** A HostFileSystem over MemoryHostFiles, with POSIX-style path resolution. */
export class MemoryFileSystem implements HostFileSystem {
  readonly files = new Map<string, MemoryHostFile>();

  open(path: string, options: { writable: boolean }): HostFile {
    const f = this.files.get(normalizePath(path));
    if (!f) throw new VirtusError('FILE_OPEN', `cannot open ${path}: no such file`);
    if (options.writable) return f;
    return new ReadOnlyView(f);
  }

  create(path: string): HostFile {
    const f = new MemoryHostFile(path);
    this.files.set(normalizePath(path), f);
    return f;
  }

  resolveBacking(imagePath: string, backing: string): string {
    if (backing.startsWith('/')) return backing;
    const slash = imagePath.lastIndexOf('/');
    return normalizePath(slash < 0 ? backing : `${imagePath.slice(0, slash + 1)}${backing}`);
  }

  exists(path: string): boolean {
    return this.files.has(normalizePath(path));
  }

  remove(path: string): void {
    this.files.delete(normalizePath(path));
  }
}

class ReadOnlyView implements HostFile {
  readonly readOnly = true;
  constructor(private readonly f: MemoryHostFile) {}
  get name(): string {
    return this.f.name;
  }
  read(position: number, buf: Uint8Array): number {
    return this.f.read(position, buf);
  }
  write(): void {
    throw new VirtusError('READ_ONLY', `${this.f.name}: file is open read-only`);
  }
  size(): number {
    return this.f.size();
  }
  truncate(): void {
    throw new VirtusError('READ_ONLY', `${this.f.name}: file is open read-only`);
  }
  flush(): void {}
  close(): void {}
}

/** Removes `.` and `x/..` segments and doubled slashes from a POSIX path. */
export function normalizePath(path: string): string {
  const abs = path.startsWith('/');
  const out: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else if (seg !== '..' || !abs) out.push(seg);
  }
  const joined = out.join('/');
  return abs ? `/${joined}` : joined || '.';
}
