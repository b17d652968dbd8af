/**
 * The browser event-loop side of the machine runner (the counterpart of the Node adapter in
 * host/node/runner-host.ts): yielding and interruptible sleeps inside a Web Worker.
 */
import type { HartThreadStarter } from '../../machine/hart-threads.ts';
import type { RunnerHost } from '../../machine/runner.ts';

export class BrowserRunnerHost implements RunnerHost {
  /** Web Workers for a machine's harts, where the page can have them (hart-threads.ts). */
  threads?: HartThreadStarter;
  private wakeUp: (() => void) | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly channel = new MessageChannel();
  private readonly pending: Array<() => void> = [];

  /** `beforeYield` runs whenever the machine lets the event loop run (to flush batched output). */
  constructor(private readonly beforeYield: () => void = () => {}) {
    // A message to ourselves is a task that runs as soon as the messages already queued (page
    // input, timers) have run. setTimeout(0) would do the same but browsers clamp nested
    // timeouts to 4 ms, which would cost a third of the machine's time at a 10 ms yield period.
    this.channel.port1.onmessage = () => this.pending.shift()?.();
  }

  yield(): Promise<void> {
    this.beforeYield();
    return new Promise((r) => {
      this.pending.push(r);
      this.channel.port2.postMessage(null);
    });
  }

  sleep(ms: number): Promise<void> {
    this.beforeYield();
    return new Promise((resolve) => {
      this.wakeUp = resolve;
      this.timer = setTimeout(() => this.wake(), ms);
    });
  }

  /** Ends a sleep early (input arrived, the page asked for something). */
  wake(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }
}

/**
 * Collects console output bytes (the UART hands them over one at a time) and passes them on
 * in one piece per flush: one message per event-loop turn instead of one per byte.
 */
export class OutputBatcher {
  private chunks: Uint8Array[] = [];
  private length = 0;

  constructor(private readonly send: (bytes: Uint8Array) => void) {}

  write(b: Uint8Array): void {
    this.chunks.push(b.slice());
    this.length += b.length;
  }

  flush(): void {
    if (this.length === 0) return;
    const all = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      all.set(c, at);
      at += c.length;
    }
    this.chunks = [];
    this.length = 0;
    this.send(all);
  }
}
