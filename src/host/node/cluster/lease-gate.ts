/**
 * The lease's deadline shared with the machines' threads. A node stops its machines when its
 * lease's local deadline passes (lease.ts), but that takes the daemon's thread: a daemon whose
 * whole process was paused (SIGSTOP, a host suspended, a long stall) continues with every
 * machine thread running its guest at once, while the daemon's thread has yet to notice. So
 * each cluster machine's thread reads the deadline itself, from shared memory, before every
 * slice of guest time (NodeRunnerHost's gate): past it, the guest does not run until the lease
 * is renewed, and past the deadline plus the fence margin (when etcd may have expired the lease
 * and another node may run the machine) the thread does not write the machine's disks again,
 * even to flush them when told to quit: it ends instead (crash semantics; the guest's flushed
 * writes are on the disk).
 *
 * Both threads read one clock: performance.timeOrigin + performance.now() (ms, monotonic).
 */

/** The clock the gate is read with, in any thread of the process (ms). */
export const gateClock = (): number => performance.timeOrigin + performance.now();

/** The daemon's side: a buffer for the machines' threads, and the deadline written into it. */
export class LeaseGate {
  /** Passed to each cluster machine's thread (WorkerInit.lease). */
  readonly buffer = new SharedArrayBuffer(16);
  private readonly view = new Float64Array(this.buffer);

  /** The guest may run until `runUntil` and write its disks until `writeUntil` (gateClock ms). */
  open(runUntil: number, writeUntil: number): void {
    this.view[1] = writeUntil;
    this.view[0] = runUntil;
  }

  /** No guest runs and no disk is written (the lease is lost). */
  close(): void {
    this.view[0] = -Infinity;
    this.view[1] = -Infinity;
  }
}

/** A machine thread's side: may the guest run now, may its disks still be written. */
export function readGate(buffer: SharedArrayBuffer): { mayRun(): boolean; mayWrite(): boolean } {
  const view = new Float64Array(buffer);
  return { mayRun: () => gateClock() < view[0]!, mayWrite: () => gateClock() < view[1]! };
}
