/** A FIFO of bytes held as the chunks they arrived in: read from any offset, drop from the front. */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  /** Bytes of the first chunk already dropped. */
  private head = 0;
  length = 0;

  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /** Drops `n` bytes from the front. */
  drop(n: number): void {
    n = Math.min(n, this.length);
    this.length -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      const left = c.length - this.head;
      if (n < left) {
        this.head += n;
        return;
      }
      n -= left;
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** Copies bytes [from, from + n) into `out` at `at`. */
  copy(from: number, n: number, out: Uint8Array, at: number): void {
    let skip = from + this.head;
    for (const c of this.chunks) {
      if (n <= 0) return;
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      const k = Math.min(c.length - skip, n);
      out.set(c.subarray(skip, skip + k), at);
      at += k;
      n -= k;
      skip = 0;
    }
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.length = 0;
  }
}
