/**
 * The processes of one `virtus exec` run: a table by pid, fork's children, exits and the
 * zombies wait4 reaps, and the scheduler. Processes run round-robin on the calling thread,
 * one engine slice each (a slice ends at every system call): a call that must wait for another
 * process (a pipe read, wait4) leaves the pc on its `ecall` and is made again at the process's
 * next turn. The run ends when the first process exits; if every process waits on another, the
 * run stops with an error instead of spinning.
 */
import { VirtusError } from '../util/errors.ts';
import type { ExecHost } from './host.ts';
import { GuestProcess, type ExecExit, type ExecOptions } from './process.ts';

export class ExecKernel {
  /** Live and zombie processes by pid. */
  readonly procs = new Map<number, GuestProcess>();
  /** System calls made, by number, and those answered ENOSYS (all processes; --stats). */
  readonly calls = new Map<number, number>();
  readonly unimplemented = new Map<number, number>();
  /** Processes forked during the run. */
  forks = 0;
  private nextPid: number;
  private init: GuestProcess | null = null;

  constructor(readonly host: ExecHost, readonly options: Pick<ExecOptions, 'memory' | 'engine'> = {}) {
    this.nextPid = host.ids.pid + 1;
  }

  /** Starts the first process (its pid is the host's own, as under qemu-riscv64). */
  start(o: ExecOptions): GuestProcess {
    const p = GuestProcess.first(this, o);
    this.procs.set(p.pid, p);
    this.init = p;
    return p;
  }

  /** A pid for a new process. */
  newPid(): number {
    return this.nextPid++;
  }

  /** Adds a forked child to the table. */
  adopt(child: GuestProcess): void {
    this.procs.set(child.pid, child);
    this.forks++;
  }

  /** The exited children of `parent` no longer waited for: removed when their parent is gone. */
  exited(p: GuestProcess): void {
    p.fds.closeAll();
    for (const c of this.procs.values()) {
      if (c.parent !== p) continue;
      c.parent = null;
      if (c.exit) this.procs.delete(c.pid);
    }
    if (!p.parent || p.parent.exit) this.procs.delete(p.pid);
    else p.parent.childExited();
  }

  /** Removes a reaped zombie. */
  reap(p: GuestProcess): void {
    this.procs.delete(p.pid);
  }

  /**
   * Runs every process until the first one exits; returns how it ended. Whenever nothing can
   * run, the host sleeps: until the first sleeper's time, or a millisecond at a time while a
   * process waits on the host (a socket, a terminal without input).
   */
  run(): ExecExit {
    for (;;) {
      const t = this.turn();
      if (t.state === 'exited') return t.exit;
      if (t.state !== 'idle') continue;
      const left = t.wakeAt === null ? 1_000_000n : t.wakeAt - this.host.monotonicNs();
      if (t.hostWait && left > 1_000_000n) this.host.sleep(1_000_000);
      else if (left > 0n) this.host.sleep(Number(left));
    }
  }

  /**
   * One turn of the scheduler: a slice of each process. Hosts with an event loop (a browser's
   * worker) call this instead of run() and wait between turns themselves when the answer is
   * `idle`: until `wakeAt` (monotonic ns; null: no timer), or, with `hostWait`, until
   * something happens on the host (input, a socket). When nothing can run and nothing waits
   * on time or the host, waits with a timeout end now; without one, the run is stuck (an
   * EXEC_DEADLOCK error).
   */
  turn(): ExecTurn {
    const init = this.init;
    if (!init) throw new Error('ExecKernel.turn before start');
    if (!init.exit) {
      const now = this.host.monotonicNs();
      const timers = [...this.procs.values()].map((p) => p.tickTimer(now)).filter((t) => t !== 0n);
      let progress = false;
      for (const p of [...this.procs.values()]) {
        if (p.exit) continue;
        if (p.step()) progress = true;
        if (init.exit) break;
      }
      if (!progress && !init.exit) {
        const wakes = [...this.procs.values()].map((p) => p.nextWake()).filter((w): w is bigint => w !== null).concat(timers);
        const wakeAt = wakes.length > 0 ? wakes.reduce((a, b) => (a < b ? a : b)) : null;
        const hostWait = [...this.procs.values()].some((p) => p.waitsOnHost());
        if (hostWait || wakeAt !== null) return { state: 'idle', wakeAt, hostWait };
        if (![...this.procs.values()].map((p) => p.timeOut()).includes(true)) {
          throw new VirtusError('EXEC_DEADLOCK', 'every guest process is waiting for another (a pipe nobody writes, a child that never exits)');
        }
      }
      if (!init.exit) return { state: 'ran' };
    }
    for (const p of this.procs.values()) if (!p.exit) p.fds.closeAll();
    return { state: 'exited', exit: init.exit };
  }
}

/** What one scheduler turn (ExecKernel.turn) left. */
export type ExecTurn =
  | { state: 'ran' }
  | { state: 'idle'; wakeAt: bigint | null; hostWait: boolean }
  | { state: 'exited'; exit: ExecExit };
