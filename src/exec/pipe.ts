/**
 * Pipes between guest processes (pipe(7)): a bounded byte queue with a read end and a write
 * end, each an open file description that may be shared by many descriptors and processes.
 * Reading an empty pipe whose write end is open blocks (the caller retries the system call
 * later); reading one whose write end is closed is end of file. Writing a pipe without readers
 * is EPIPE and SIGPIPE; a write of at most PIPE_BUF bytes is atomic.
 */
import { BLOCK, E } from './abi.ts';
import type { OpenFile } from './files.ts';

/** Bytes a pipe holds (Linux's default pipe size). */
export const PIPE_SIZE = 65536;
/** Writes up to this size are never split (POSIX PIPE_BUF on Linux). */
export const PIPE_BUF = 4096;

export class Pipe {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;
  /** The two ends, set when the descriptions are made. */
  readEnd!: OpenFile;
  writeEnd!: OpenFile;

  /** Up to `max` bytes, an empty array at end of file, or BLOCK / -EAGAIN when empty. */
  read(max: number, nonBlocking: boolean): Uint8Array | number {
    if (this.size === 0) {
      if (this.writeEnd.refs === 0) return new Uint8Array(0);
      return nonBlocking ? -E.EAGAIN : BLOCK;
    }
    const out = new Uint8Array(Math.min(max, this.size));
    let done = 0;
    while (done < out.length) {
      const c = this.chunks[0]!;
      const n = Math.min(c.length, out.length - done);
      out.set(c.subarray(0, n), done);
      done += n;
      if (n === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(n);
    }
    this.size -= done;
    return out;
  }

  /** Queues what fits of `data`: the count, -EPIPE without a reader, or BLOCK / -EAGAIN when full. */
  write(data: Uint8Array, nonBlocking: boolean): number {
    if (this.readEnd.refs === 0) return -E.EPIPE;
    const room = PIPE_SIZE - this.size;
    if (room === 0 || (data.length <= PIPE_BUF && room < data.length)) return nonBlocking ? -E.EAGAIN : BLOCK;
    const n = Math.min(room, data.length);
    this.chunks.push(data.slice(0, n));
    this.size += n;
    return n;
  }

  /** Bytes waiting to be read. */
  get available(): number {
    return this.size;
  }
}
