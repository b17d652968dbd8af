/** The Node event-loop side of the machine runner: yielding, interruptible sleeps, collecting. */
import type { RunnerHost } from '../../machine/runner.ts';
import { collectGarbage } from './gc.ts';
import { nodeHartThreads } from './hart-worker.ts';
import { trimMemory } from './native.ts';

/** A word nobody changes: Atomics.wait on it sleeps for its timeout. */
const REST = new Int32Array(new SharedArrayBuffer(4));

export class NodeRunnerHost implements RunnerHost {
  /** Harts run in worker threads (machine/hart-threads.ts); null keeps them on the run loop's thread. */
  threads = nodeHartThreads as typeof nodeHartThreads | undefined;
  private wakeUp: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  /**
   * When set, the guest runs only while it answers true (a cluster machine: its node's lease
   * holds, cluster/lease-gate.ts): the run loop waits at its next yield or sleep until it does,
   * or until `release()`.
   */
  gate: (() => boolean) | null = null;
  private released = false;

  async yield(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await this.gated();
  }

  /**
   * Resolves after `ms` (or at wake()). Node's timers count whole milliseconds of the event
   * loop's clock and fire up to about a millisecond early (a quarter of an idle machine's
   * sleeps did, and the run loop slept again and took the guest's timer interrupt a
   * millisecond late): what is left is waited out here, on a futex, without another turn of
   * the event loop.
   */
  async sleep(ms: number): Promise<void> {
    const until = performance.now() + ms;
    let timedOut = false;
    await new Promise<void>((resolve) => {
      this.wakeUp = resolve;
      this.timer = setTimeout(() => {
        timedOut = true;
        this.wake();
      }, ms);
    });
    const left = until - performance.now();
    if (timedOut && left > 0) Atomics.wait(REST, 0, 0, left);
    await this.gated();
  }

  /** Lets a run loop waiting at the gate go on (to stop: it was asked to). */
  release(): void {
    this.released = true;
  }

  private async gated(): Promise<void> {
    while (this.gate && !this.gate() && !this.released) await new Promise((r) => setTimeout(r, 10));
    this.released = false;
  }

  /**
   * After a sweep of the translations: V8 frees a dropped module's code and bytes only when it
   * collects it, and glibc keeps freed pages mapped until trimmed (native/memory.c).
   */
  collect(): void {
    collectGarbage();
    trimMemory();
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
 * Buffered output that goes to the stream at once rather than at the next turn of the event
 * loop: small writes (a UART's bytes) are gathered, a virtio console's pieces are not held.
 */
const FLUSH_AT = 64 << 10;

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
    private readonly drained?: () => void,
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
    // A file takes a piece at once, a pipe queues it (room() counts what the stream holds):
    // waiting for the event loop would make the guest's console wait for the machine's next
    // yield, a megabyte per 10 ms (test/virtio/hostile spent 20 s on 1.7 GiB to /dev/null).
    if (this.pending >= FLUSH_AT) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.chunks.length === 0) return;
    const c = this.chunks;
    const all = c.length === 1 ? Buffer.from(c[0]!.buffer, c[0]!.byteOffset, c[0]!.byteLength) : Buffer.concat(c);
    this.chunks = [];
    this.pending = 0;
    this.stream.write(all);
    // A file (or /dev/null) takes the bytes at once and never says 'drain': the room is back now,
    // and a guest idle until its console can go on must hear it (it waited for a timer before,
    // and moved a megabyte per wakeup).
    if (this.stream.writableLength === 0) this.drained?.();
  }
}
