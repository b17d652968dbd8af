/** Reading and writing host files with errors a user can act on. */
import { closeSync, constants, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { VirtusError } from '../../util/errors.ts';

function why(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT': return 'no such file';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'a parent is not a directory';
    case 'ENOSPC': return 'no space left on device';
    default: return (e as Error).message;
  }
}

/** Reads a whole file; `what` names it in the error (e.g. "kernel"). */
export function readHostFile(path: string, what: string): Uint8Array {
  try {
    const b = readFileSync(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw new VirtusError('FILE_OPEN', `cannot open ${what} ${path}: ${why(e)}`);
  }
}

export function writeHostFile(path: string, data: Uint8Array | string, what: string): void {
  try {
    writeFileSync(path, data);
  } catch (e) {
    throw new VirtusError('FILE_WRITE', `cannot write ${what} ${path}: ${why(e)}`);
  }
}

/**
 * A reader of the regular file at `path` that reads it again at each call, and fails when it is
 * no longer the file (device, inode, size, modification and change times) found now: bytes read
 * for a reboot or a snapshot are the machine's boot image, or nothing. Throws if the file cannot
 * be read now.
 */
export function rereadableFile(path: string, what: string): () => Uint8Array {
  const read = (expect: string | null): { key: string; bytes: Uint8Array | null } => {
    let fd: number;
    try {
      // Not blocking: a FIFO put in the file's place must not stall the machine's thread.
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (e) {
      throw new VirtusError('FILE_OPEN', `cannot open ${what} ${path}: ${why(e)}`);
    }
    try {
      const s = fstatSync(fd, { bigint: true });
      const key = `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
      if (!s.isFile() || (expect !== null && key !== expect)) {
        throw new VirtusError('BOOT_FILE_CHANGED', `${what} ${path} is not the file the machine booted from any more: it was replaced or rewritten`);
      }
      if (expect === null) return { key, bytes: null };
      const b = readFileSync(fd);
      if (BigInt(b.length) !== s.size) throw new VirtusError('BOOT_FILE_CHANGED', `${what} ${path} changed while it was read`);
      return { key, bytes: new Uint8Array(b.buffer, b.byteOffset, b.byteLength) };
    } finally {
      closeSync(fd);
    }
  };
  const { key } = read(null);
  return () => read(key).bytes!;
}
