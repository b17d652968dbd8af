/** Reading and writing host files with errors a user can act on. */
import { readFileSync, writeFileSync } from 'node:fs';
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
