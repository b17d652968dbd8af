/** The Node event-loop side of the machine runner: yielding and interruptible sleeps. */
import type { RunnerHost } from '../../machine/runner.ts';

export class NodeRunnerHost implements RunnerHost {
  private wakeUp: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;

  yield(): Promise<void> {
    return new Promise((r) => setImmediate(r));
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeUp = resolve;
      this.timer = setTimeout(() => this.wake(), ms);
    });
  }

  /** Ends a sleep early (input arrived, a device has work). */
  wake(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }
}

/** What the output buffer and the stream may hold before the guest's consoles must wait. */
const OUTPUT_LIMIT = 1 << 20;

/**
 * Buffers guest console output and writes it to a stream in chunks. `room()` says how much
 * more it takes: a stream read more slowly than the guest writes (a pipe, a slow terminal)
 * holds the guest's consoles back instead of growing without bound.
 */
export class OutputBuffer {
  private chunks: Uint8Array[] = [];
  private pending = 0;
  private scheduled = false;

  /** `drained` is told when the stream has taken what it held (to wake an idle machine). */
  constructor(
    private readonly stream: NodeJS.WriteStream,
    drained?: () => void,
  ) {
    if (drained) stream.on('drain', drained);
  }

  /** Bytes it takes before the stream has caught up. */
  room(): number {
    return OUTPUT_LIMIT - this.pending - this.stream.writableLength;
  }

  write(b: Uint8Array): void {
    this.chunks.push(b.slice());
    this.pending += b.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.chunks.length === 0) return;
    const all = Buffer.concat(this.chunks);
    this.chunks = [];
    this.pending = 0;
    this.stream.write(all);
  }
}
