/**
 * The UART's output once the guest drives virtio-console: Linux writes each kernel message to
 * every console it has (`console=ttyS0 console=hvc0`), and one terminal shows both, so the
 * UART's copy of a message (a line that starts with printk's "[    1.234567] " stamp) is
 * dropped, hvc0's is kept. Everything else written to the UART (an /init that still writes to
 * the console it was started on, a getty on ttyS0) passes unchanged; a line is held only while
 * its first bytes could still be a stamp.
 */

/** States of the line being looked at. */
const enum S {
  /** At the start of a line. */
  Start,
  /** Reading what may be a stamp: `[`, spaces, digits, `.`, digits, `]`, space. */
  Stamp,
  /** The rest of a line that is shown. */
  Pass,
  /** The rest of a kernel message that hvc0 shows. */
  Drop,
}

const SPACE = 0x20;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

export class PrintkFilter {
  private s = S.Start;
  private held: number[] = [];

  /**
   * The bytes of `b` to show. With `drop` false (hvc0 not in use) everything is shown, but
   * lines are still followed, so a switch in the middle of a line is handled.
   */
  push(b: Uint8Array, drop: boolean): Uint8Array {
    if (!drop && this.s !== S.Stamp && this.s !== S.Drop) {
      // Shown as it is (the common case, byte by byte from the UART): only follow the lines.
      if (b.length) this.s = b[b.length - 1] === 0x0a ? S.Start : S.Pass;
      return b;
    }
    const out: number[] = [];
    for (const c of b) {
      switch (this.s) {
        case S.Start:
          if (drop && c === 0x5b /* [ */) {
            this.s = S.Stamp;
            this.held = [c];
          } else {
            out.push(c);
            this.s = c === 0x0a ? S.Start : S.Pass;
          }
          break;
        case S.Stamp:
          this.held.push(c);
          if (this.isStamp()) {
            this.s = S.Drop;
            this.held = [];
          } else if (!this.mayBeStamp()) {
            out.push(...this.held);
            this.held = [];
            this.s = c === 0x0a ? S.Start : S.Pass;
          }
          break;
        case S.Pass:
          out.push(c);
          if (c === 0x0a) this.s = S.Start;
          break;
        case S.Drop:
          if (c === 0x0a) this.s = S.Start;
          break;
      }
    }
    return Uint8Array.from(out);
  }

  /** The held bytes are a prefix of a stamp. */
  private mayBeStamp(): boolean {
    return this.match() !== null;
  }

  private isStamp(): boolean {
    return this.match() === 'whole';
  }

  /** Matches the held bytes against `[ *\d+\.\d+\] `: 'prefix', 'whole' or null (no stamp). */
  private match(): 'prefix' | 'whole' | null {
    const h = this.held;
    let i = 1;
    while (i < h.length && h[i] === SPACE) i++;
    const d1 = i;
    while (i < h.length && isDigit(h[i]!)) i++;
    if (i === h.length) return 'prefix';
    if (i === d1 || h[i] !== 0x2e /* . */) return null;
    const d2 = ++i;
    while (i < h.length && isDigit(h[i]!)) i++;
    if (i === h.length) return 'prefix';
    if (i === d2 || h[i] !== 0x5d /* ] */) return null;
    if (++i === h.length) return 'prefix';
    return h[i] === SPACE && i + 1 === h.length ? 'whole' : null;
  }
}
