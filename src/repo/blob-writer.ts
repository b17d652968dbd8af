/**
 * Writing a blob into the store: bytes go to a temporary file while a sha256 runs over
 * them; commit() checks the digest (and size) and only then renames the file into
 * blobs/sha256/. A download names its temporary file after the digest it expects
 * (tmp/<hex>.partial) and keeps it when interrupted, so the next attempt, in this process
 * or another, resumes with an HTTP Range request (distribution-spec "Resumable Pull").
 * A lock file beside the partial keeps two processes from appending to it at once.
 */
import { closeSync, createReadStream, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { VirtusError } from '../util/errors.ts';
import { digestMismatch, Hasher, hexOf } from './digest.ts';
import { tryLock, unlock } from './lock.ts';
import type { ImageStore } from './store.ts';

export class BlobWriter {
  private fd: number;
  private hasher = new Hasher();
  private closed = false;

  private constructor(
    private readonly store: ImageStore,
    readonly path: string,
    private readonly lockPath: string | null,
    private readonly expected: { digest: string; size: number } | null,
  ) {
    this.fd = openSync(path, 'a');
  }

  /** Bytes written so far (for a resumed download, what the partial file already held). */
  get offset(): number {
    return this.hasher.size;
  }

  /** The digest of what has been written. */
  digest(): string {
    return this.hasher.digest();
  }

  /**
   * A writer for a blob of known digest and size. An existing partial file is kept and
   * re-hashed, so writing continues at `offset`; null when another live process is
   * downloading the same blob (the caller waits for it and looks again).
   */
  static async resumable(store: ImageStore, expected: { digest: string; size: number }): Promise<BlobWriter | null> {
    const path = join(store.tmpDir, `${hexOf(expected.digest)}.partial`);
    const lock = `${path}.lock`;
    if (!tryLock(lock)) return null;
    try {
      let have = 0;
      try {
        have = statSync(path).size;
      } catch {
        // no partial file yet
      }
      if (have > expected.size) {
        rmSync(path, { force: true });
        have = 0;
      }
      const w = new BlobWriter(store, path, lock, expected);
      if (have > 0) {
        for await (const chunk of createReadStream(path, { end: have - 1 })) w.hasher.update(chunk as Buffer);
      }
      return w;
    } catch (e) {
      unlock(lock);
      throw new VirtusError('STORE', `cannot write to the image store ${store.root}: ${(e as Error).message}`);
    }
  }

  /** A writer for content whose digest is known only at the end (packing a file). */
  static fresh(store: ImageStore): BlobWriter {
    const path = join(store.tmpDir, `new-${process.pid}-${Math.random().toString(36).slice(2)}`);
    return new BlobWriter(store, path, null, null);
  }

  write(chunk: Uint8Array): void {
    if (this.expected && this.hasher.size + chunk.length > this.expected.size) {
      throw new VirtusError('SIZE_MISMATCH', `blob ${this.expected.digest}: more than the ${this.expected.size} bytes its descriptor gives; refused`);
    }
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
    this.hasher.update(chunk);
  }

  /** Drops what was written and starts again from byte 0 (a server that ignored Range). */
  restart(): void {
    closeSync(this.fd);
    this.fd = openSync(this.path, 'w');
    this.hasher = new Hasher();
  }

  /**
   * Checks the content and moves it into the store; returns its digest and size. On a
   * mismatch the temporary file is deleted (a resumed download must not keep bad bytes)
   * and a DIGEST_MISMATCH error is thrown: nothing enters the store. `beforeRename` runs
   * once the digest is known and checked (to hold it against a concurrent collection).
   */
  commit(what: string, beforeRename?: (digest: string) => void): { digest: string; size: number } {
    const digest = this.hasher.digest();
    const size = this.hasher.size;
    fsyncSync(this.fd);
    this.close();
    try {
      if (this.expected) {
        if (size !== this.expected.size) throw new VirtusError('SIZE_MISMATCH', `${what}: got ${size} bytes, expected ${this.expected.size}; refused`);
        if (digest !== this.expected.digest) throw digestMismatch(what, this.expected.digest, digest);
      }
      beforeRename?.(digest);
      renameSync(this.path, this.store.blobPath(digest));
    } catch (e) {
      rmSync(this.path, { force: true });
      throw e;
    } finally {
      if (this.lockPath) unlock(this.lockPath);
    }
    return { digest, size };
  }

  /**
   * Keeps the content under `dest` rather than in the blob directory (a disk unpacked from a
   * compressed layer): flushed, then renamed; the temporary file is deleted on failure.
   */
  keepAs(dest: string): void {
    fsyncSync(this.fd);
    this.close();
    try {
      renameSync(this.path, dest);
    } catch (e) {
      rmSync(this.path, { force: true });
      throw e;
    } finally {
      if (this.lockPath) unlock(this.lockPath);
    }
  }

  /** Stops writing: a resumable partial file is kept for next time unless `discard`. */
  abort(discard = false): void {
    this.close();
    if (discard || !this.expected) rmSync(this.path, { force: true });
    if (this.lockPath) unlock(this.lockPath);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
