/**
 * Node's HostFile and HostFileSystem for block storage: synchronous positional I/O on a file
 * descriptor (fs.readSync/writeSync), fdatasync/fsync as the write barrier.
 */
import { closeSync, constants, existsSync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { VirtusError } from '../../util/errors.ts';
import type { HostFile, HostFileSystem, LockMode } from '../../storage/host-file.ts';
import { lockImage, unlockImage } from './image-lock.ts';

function why(e: unknown): string {
  switch ((e as NodeJS.ErrnoException).code) {
    case 'ENOENT': return 'no such file';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'a parent is not a directory';
    case 'ENOSPC': return 'no space left on device';
    case 'EROFS': return 'read-only file system';
    case 'EIO': return 'input/output error';
    default: return (e as Error).message;
  }
}

/** A host file opened with fs.openSync. */
export class NodeHostFile implements HostFile {
  private fd: number | null;

  constructor(readonly name: string, fd: number, readonly readOnly: boolean) {
    this.fd = fd;
  }

  private get handle(): number {
    if (this.fd === null) throw new VirtusError('FILE_CLOSED', `${this.name}: file is closed`);
    return this.fd;
  }

  read(position: number, buf: Uint8Array): number {
    let done = 0;
    try {
      while (done < buf.length) {
        const n = readSync(this.handle, buf, done, buf.length - done, position + done);
        if (n === 0) break;
        done += n;
      }
    } catch (e) {
      throw new VirtusError('IO', `cannot read ${this.name}: ${why(e)}`, { cause: e });
    }
    return done;
  }

  write(position: number, buf: Uint8Array): void {
    try {
      let done = 0;
      while (done < buf.length) done += writeSync(this.handle, buf, done, buf.length - done, position + done);
    } catch (e) {
      throw new VirtusError('IO', `cannot write ${this.name}: ${why(e)}`, { cause: e });
    }
  }

  size(): number {
    return fstatSync(this.handle).size;
  }

  truncate(size: number): void {
    try {
      ftruncateSync(this.handle, size);
    } catch (e) {
      throw new VirtusError('IO', `cannot resize ${this.name}: ${why(e)}`, { cause: e });
    }
  }

  flush(dataOnly = false): void {
    try {
      if (dataOnly) fdatasyncSync(this.handle);
      else fsyncSync(this.handle);
    } catch (e) {
      throw new VirtusError('IO', `cannot flush ${this.name}: ${why(e)}`, { cause: e });
    }
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    closeSync(fd);
  }

  allocatedSize(): number {
    return fstatSync(this.handle).blocks * 512;
  }

  /** QEMU-compatible image locks on this open file (image-lock.ts), dropped when it closes. */
  lock(mode: LockMode): void {
    lockImage(this.handle, this.name, mode);
  }

  /** Drops this file's image locks (it stays open). */
  unlock(): void {
    unlockImage(this.handle);
  }
}

/** The host's file system, for openImage/createImage. */
export const nodeFileSystem: HostFileSystem = {
  open(path, { writable }) {
    try {
      if (statSync(path).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      return new NodeHostFile(path, openSync(path, writable ? 'r+' : 'r'), !writable);
    } catch (e) {
      throw new VirtusError('FILE_OPEN', `cannot open ${path}: ${why(e)}`, { cause: e });
    }
  },
  create(path, options = {}) {
    let file: NodeHostFile;
    try {
      // Not O_TRUNC: an existing image is only emptied once its write lock is ours.
      file = new NodeHostFile(path, openSync(path, constants.O_RDWR | constants.O_CREAT, 0o666), false);
    } catch (e) {
      throw new VirtusError('FILE_OPEN', `cannot create ${path}: ${why(e)}`, { cause: e });
    }
    try {
      if (options.lock) file.lock('write');
      file.truncate(0);
    } catch (e) {
      file.close();
      throw e;
    }
    return file;
  },
  resolveBacking(imagePath, backing) {
    // As QEMU does: the image's directory prefix and the name, not normalized (so that
    // "dir/../base" still goes through dir when dir is a symbolic link).
    const slash = imagePath.lastIndexOf('/');
    return isAbsolute(backing) || slash < 0 ? backing : `${imagePath.slice(0, slash + 1)}${backing}`;
  },
  exists(path) {
    return existsSync(path);
  },
  remove(path) {
    try {
      unlinkSync(path);
    } catch {
      // best effort cleanup
    }
  },
};
