/**
 * A machine's recent console output: the last `capacity` bytes, so a client that attaches late
 * (`virtus console`, `virtus logs`, the web console) sees what the guest printed before.
 */
export class ByteRing {
  private readonly buf: Uint8Array;
  /** Bytes ever written (the write position is total % capacity). */
  private total = 0;

  constructor(readonly capacity: number) {
    this.buf = new Uint8Array(capacity);
  }

  write(bytes: Uint8Array): void {
    const cap = this.capacity;
    const src = bytes.length > cap ? bytes.subarray(bytes.length - cap) : bytes;
    this.total += bytes.length - src.length;
    const at = this.total % cap;
    const first = Math.min(src.length, cap - at);
    this.buf.set(src.subarray(0, first), at);
    this.buf.set(src.subarray(first), 0);
    this.total += src.length;
  }

  /** Everything held, oldest first (at most the last `max` bytes). */
  contents(max = this.capacity): Uint8Array {
    const n = Math.min(this.total, this.capacity, max);
    const out = new Uint8Array(n);
    const end = this.total % this.capacity;
    const start = (end - n + this.capacity) % this.capacity;
    if (start + n <= this.capacity) out.set(this.buf.subarray(start, start + n));
    else {
      out.set(this.buf.subarray(start));
      out.set(this.buf.subarray(0, n - (this.capacity - start)), this.capacity - start);
    }
    return out;
  }

  /** Bytes ever written. */
  get written(): number {
    return this.total;
  }
}
