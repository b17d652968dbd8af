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

  /** Runs every process until the first one exits; returns how it ended. */
  run(): ExecExit {
    const init = this.init;
    if (!init) throw new Error('ExecKernel.run before start');
    while (!init.exit) {
      const now = this.host.monotonicNs();
      const timers = [...this.procs.values()].map((p) => p.tickTimer(now)).filter((t) => t !== 0n);
      let progress = false;
      for (const p of [...this.procs.values()]) {
        if (p.exit) continue;
        if (p.step()) progress = true;
        if (init.exit) break;
      }
      if (progress || init.exit) continue;
      // Nothing can run: sleep until the first sleeper's time; else waits with a timeout end
      // now; without one, the run is stuck.
      const wakes = [...this.procs.values()].map((p) => p.nextWake()).filter((w): w is bigint => w !== null).concat(timers);
      // Someone waits on the network: look again shortly (the host's sockets never block).
      if ([...this.procs.values()].some((p) => p.waitsOnHost())) {
        this.host.sleep(1_000_000);
        continue;
      }
      if (wakes.length > 0) {
        const first = wakes.reduce((a, b) => (a < b ? a : b));
        const left = first - this.host.monotonicNs();
        if (left > 0n) this.host.sleep(Number(left));
        continue;
      }
      if (![...this.procs.values()].map((p) => p.timeOut()).includes(true)) {
        throw new VirtusError('EXEC_DEADLOCK', 'every guest process is waiting for another (a pipe nobody writes, a child that never exits)');
      }
    }
    for (const p of this.procs.values()) if (!p.exit) p.fds.closeAll();
    return init.exit;
  }
}
