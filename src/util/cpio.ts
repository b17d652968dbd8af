/**
 * A writer for cpio archives in the "newc" format (SVR4 without checksums), the format the
 * Linux kernel unpacks as an initramfs (Documentation/driver-api/early-userspace/
 * buffer-format.rst). Each entry is a 110-byte ASCII header of thirteen 8-digit hex fields,
 * the NUL-terminated name, then the data, name and data each padded to 4 bytes; the archive
 * ends with an entry named TRAILER!!!.
 *
 * The kernel's unpacker creates no missing parent directories, so the writer adds them
 * itself, before their children. Archives are reproducible: inode numbers count up from 1 in
 * entry order and times default to 0.
 */
import { VirtusError } from './errors.ts';

/** File type bits of st_mode (POSIX <sys/stat.h>), as newc stores them. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

const MAGIC = '070701';
const HEADER_SIZE = 110;
const TRAILER = 'TRAILER!!!';
const MAX_U32 = 0xffff_ffff;

/** Ownership and time of an entry; all default to 0 (root, the epoch). */
export interface CpioAttrs {
  uid?: number;
  gid?: number;
  /** Modification time in seconds since the epoch. */
  mtime?: number;
}

interface Entry {
  name: string;
  mode: number;
  attrs: CpioAttrs;
  nlink: number;
  data: Uint8Array;
  rdevMajor: number;
  rdevMinor: number;
}

const utf8 = new TextEncoder();

/** Normalizes a path to the archive's relative form ("bin/sh"); refuses "..", empty names. */
function normalize(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) throw new VirtusError('CPIO_BAD_PATH', `cpio: "${path}" names no file`);
  if (parts.includes('..')) throw new VirtusError('CPIO_BAD_PATH', `cpio: "${path}" contains ".."`);
  return parts.join('/');
}

function checkPerm(mode: number, path: string): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new VirtusError('CPIO_BAD_MODE', `cpio: ${path}: permission bits 0${mode.toString(8)} are out of range`);
  }
  return mode;
}

/**
 * Builds a newc archive in memory. Add entries in any order (parents are created on demand),
 * then call `finish()` once for the bytes.
 */
export class CpioWriter {
  private readonly entries: Entry[] = [];
  private readonly kinds = new Map<string, number>();
  private finished = false;

  /** Adds a directory (and any missing parents). Adding an existing directory is a no-op. */
  dir(path: string, mode = 0o755, attrs: CpioAttrs = {}): this {
    const name = normalize(path);
    if (this.kinds.get(name) === S_IFDIR) return this;
    this.add(name, S_IFDIR | checkPerm(mode, name), attrs, new Uint8Array(0), 2);
    return this;
  }

  /** Adds a regular file; a string is stored as UTF-8. */
  file(path: string, data: Uint8Array | string, mode = 0o644, attrs: CpioAttrs = {}): this {
    const bytes = typeof data === 'string' ? utf8.encode(data) : data;
    this.add(normalize(path), S_IFREG | checkPerm(mode, path), attrs, bytes);
    return this;
  }

  /** Adds a symbolic link to `target` (stored verbatim, as the link's data). */
  symlink(path: string, target: string, attrs: CpioAttrs = {}): this {
    if (target === '') throw new VirtusError('CPIO_BAD_PATH', `cpio: symlink ${path} has an empty target`);
    this.add(normalize(path), S_IFLNK | 0o777, attrs, utf8.encode(target));
    return this;
  }

  /** Adds a character or block device node, e.g. ("dev/console", "char", 5, 1). */
  device(path: string, kind: 'char' | 'block', major: number, minor: number, mode = 0o600, attrs: CpioAttrs = {}): this {
    const type = kind === 'char' ? S_IFCHR : S_IFBLK;
    this.add(normalize(path), type | checkPerm(mode, path), attrs, new Uint8Array(0), 1, major, minor);
    return this;
  }

  /** Adds a named pipe. */
  fifo(path: string, mode = 0o644, attrs: CpioAttrs = {}): this {
    this.add(normalize(path), S_IFIFO | checkPerm(mode, path), attrs, new Uint8Array(0));
    return this;
  }

  /** True when the archive already holds `path`. */
  has(path: string): boolean {
    return this.kinds.has(normalize(path));
  }

  /** Returns the archive, trailer included. The writer accepts no entries afterwards. */
  finish(): Uint8Array {
    if (this.finished) throw new VirtusError('CPIO_FINISHED', 'cpio: finish() was already called');
    this.finished = true;
    const all = [...this.entries, { name: TRAILER, mode: 0, attrs: {}, nlink: 1, data: new Uint8Array(0), rdevMajor: 0, rdevMinor: 0 }];
    const names = all.map((e) => utf8.encode(e.name + '\0'));
    let size = 0;
    all.forEach((e, i) => (size += pad4(HEADER_SIZE + names[i]!.length) + pad4(e.data.length)));
    const out = new Uint8Array(size);
    let at = 0;
    all.forEach((e, i) => {
      const name = names[i]!;
      const ino = e.name === TRAILER ? 0 : i + 1;
      const fields = [
        ino, e.mode, e.attrs.uid ?? 0, e.attrs.gid ?? 0, e.nlink, e.attrs.mtime ?? 0, e.data.length,
        0, 0, e.rdevMajor, e.rdevMinor, name.length, 0,
      ];
      const header = MAGIC + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
      out.set(utf8.encode(header), at);
      out.set(name, at + HEADER_SIZE);
      at += pad4(HEADER_SIZE + name.length);
      out.set(e.data, at);
      at += pad4(e.data.length);
    });
    return out;
  }

  private add(name: string, mode: number, attrs: CpioAttrs, data: Uint8Array, nlink = 1, rdevMajor = 0, rdevMinor = 0): void {
    if (this.finished) throw new VirtusError('CPIO_FINISHED', `cpio: cannot add ${name} after finish()`);
    if (this.kinds.has(name)) throw new VirtusError('CPIO_DUPLICATE', `cpio: ${name} is already in the archive`);
    if (name === TRAILER) throw new VirtusError('CPIO_BAD_PATH', `cpio: ${TRAILER} is reserved`);
    if (data.length > MAX_U32) throw new VirtusError('CPIO_TOO_BIG', `cpio: ${name} is larger than 4 GiB`);
    for (const [what, v] of [['uid', attrs.uid], ['gid', attrs.gid], ['mtime', attrs.mtime], ['major', rdevMajor], ['minor', rdevMinor]] as const) {
      if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > MAX_U32)) {
        throw new VirtusError('CPIO_BAD_FIELD', `cpio: ${name}: ${what} ${v} does not fit in 32 bits`);
      }
    }
    const slash = name.lastIndexOf('/');
    if (slash > 0) {
      const parent = name.slice(0, slash);
      const kind = this.kinds.get(parent);
      if (kind === undefined) this.dir(parent);
      else if (kind !== S_IFDIR) throw new VirtusError('CPIO_BAD_PATH', `cpio: ${name}: ${parent} is not a directory`);
    }
    this.kinds.set(name, mode & S_IFMT);
    this.entries.push({ name, mode, attrs, nlink, data, rdevMajor, rdevMinor });
  }
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}
