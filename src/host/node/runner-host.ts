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

/** Buffers guest console output and writes it to a stream in chunks. */
export class OutputBuffer {
  private chunks: Uint8Array[] = [];
  private scheduled = false;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  write(b: Uint8Array): void {
    this.chunks.push(b.slice());
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
    this.stream.write(all);
  }
}
