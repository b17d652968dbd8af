/**
 * The daemon's handle on one machine's worker thread: it starts the thread, sends actions and
 * matches their results, and reports the thread's events and its end — whether the machine
 * stopped and the thread was ended, or the thread died (an uncaught error, memory exhausted).
 *
 * The thread runs the same code as the daemon: the CLI's bundle when the CLI runs from one
 * (bin/virtus.mjs), the TypeScript sources through tsx otherwise.
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { processAlive } from '../../../repo/lock.ts';
import { Worker } from 'node:worker_threads';
import { VirtusError } from '../../../util/errors.ts';
import type { StopInfo, VmEvent, VmmAction, VmmResult, VmState } from '../../../vmm/actions.ts';
import type { MachineSpec } from '../../../vmm/spec.ts';
import type { FromWorker, ToWorker, WireError, WorkerInit } from './protocol.ts';

/** What the owner of a worker is told. */
export interface VmWorkerEvents {
  event(e: VmEvent): void;
  /** The machine stopped for good (its disks are closed); the thread is being ended. */
  stopped(info: StopInfo): void;
  /** The thread ended without the machine stopping first: it crashed, or was terminated. */
  died(message: string): void;
}

let bundleCopy: string | null = null;

/**
 * The daemon's own copy of the CLI's bundle: bin/virtus.mjs replaces the bundle whenever a
 * source changes, and a daemon runs for long. The copy is named by the daemon's pid, beside the
 * bundle (so the bundle's packages resolve the same); copies of daemons that are gone are removed.
 */
function ownBundle(self: string): string {
  if (bundleCopy) return bundleCopy;
  const path = fileURLToPath(self);
  const dir = join(dirname(path), 'daemon');
  try {
    mkdirSync(dir, { recursive: true });
    for (const f of readdirSync(dir)) {
      const pid = Number(/^(\d+)\.mjs$/.exec(f)?.[1]);
      if (pid && pid !== process.pid && !processAlive(pid)) rmSync(join(dir, f), { force: true });
    }
    const copy = join(dir, `${process.pid}.mjs`);
    copyFileSync(path, copy);
    process.once('exit', () => rmSync(copy, { force: true }));
    bundleCopy = pathToFileURL(copy).href;
  } catch {
    bundleCopy = self;
  }
  return bundleCopy;
}

/** The code a worker thread evaluates: load this module's program and run the worker's main. */
function workerSource(): string {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return `import(${JSON.stringify(ownBundle(self))}).then((m) => m.vmWorkerMain())`;
  const tsx = pathToFileURL(createRequire(self).resolve('tsx/esm/api')).href;
  const worker = new URL('./worker.ts', self).href;
  return `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(worker)}); }).then((m) => m.vmWorkerMain())`;
}

function fromWire(e: WireError): VirtusError {
  return new VirtusError(e.code, e.message);
}

/** One machine's worker thread, seen from the daemon. */
export class VmWorker {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private ended = false;
  private stoppedSeen = false;
  /** Resolves when the machine is built (or rejects when it cannot be). */
  readonly ready: Promise<{ state: VmState; spec: MachineSpec }>;
  /** For an incoming machine: resolves with the address the thread listens on. */
  readonly listening: Promise<string>;
  /** Resolves once the thread has ended. */
  readonly exited: Promise<void>;

  constructor(init: WorkerInit, private readonly on: VmWorkerEvents) {
    this.worker = new Worker(workerSource(), { eval: true, workerData: init, stdout: false, stderr: false });
    let ready!: { resolve: (v: { state: VmState; spec: MachineSpec }) => void; reject: (e: Error) => void };
    this.ready = new Promise((resolve, reject) => (ready = { resolve, reject }));
    let listening!: { resolve: (uri: string) => void; reject: (e: Error) => void };
    this.listening = new Promise((resolve, reject) => (listening = { resolve, reject }));
    // Nobody need wait for these: the failure also arrives through `ready` or `died`.
    this.listening.catch(() => {});
    this.worker.on('message', (m: FromWorker) => {
      switch (m.t) {
        case 'listening': return listening.resolve(m.uri);
        case 'ready': return ready.resolve({ state: m.state, spec: m.spec });
        case 'failed': {
          const e = fromWire(m.error);
          ready.reject(e);
          listening.reject(e);
          void this.worker.terminate();
          return;
        }
        case 'result': {
          const p = this.pending.get(m.id);
          if (!p) return;
          this.pending.delete(m.id);
          if (m.ok) p.resolve(m.value);
          else p.reject(fromWire(m.error));
          return;
        }
        case 'event': return this.on.event(m.event);
        case 'stopped':
          this.stoppedSeen = true;
          this.on.stopped(m.info);
          void this.worker.terminate();
          return;
      }
    });
    let crash: string | null = null;
    this.worker.on('error', (e) => (crash = e.message));
    this.exited = new Promise((resolve) => {
      this.worker.on('exit', (code) => {
        this.ended = true;
        const why = crash ?? `its thread ended (exit code ${code})`;
        const e = new VirtusError('VM_DIED', `the machine's worker thread died: ${why}`);
        ready.reject(e);
        listening.reject(e);
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
        if (!this.stoppedSeen) this.on.died(crash ?? `its thread ended (exit code ${code})`);
        resolve();
      });
    });
    this.ready.catch(() => {});
  }

  /** Carries out one action on the machine. */
  action<A extends VmmAction>(action: A): Promise<VmmResult<A>> {
    return this.send((id) => ({ t: 'action', id, action })) as Promise<VmmResult<A>>;
  }

  /** Saves the machine to `path` (the worker writes the file). */
  savevm(path: string): Promise<{ bytes: number; ms: number }> {
    return this.send((id) => ({ t: 'savevm', id, path })) as Promise<{ bytes: number; ms: number }>;
  }

  private send(make: (id: number) => ToWorker): Promise<unknown> {
    if (this.ended) return Promise.reject(new VirtusError('VMM_STATE', 'the machine is not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(make(id));
    });
  }

  /** The share of wall time the thread was busy since `since` (an ELU sample), and a new sample. */
  utilization(since?: ReturnType<Worker['performance']['eventLoopUtilization']>): { busy: number; sample: ReturnType<Worker['performance']['eventLoopUtilization']> } {
    const sample = this.worker.performance.eventLoopUtilization();
    const d = since ? this.worker.performance.eventLoopUtilization(sample, since) : sample;
    return { busy: d.utilization, sample };
  }

  /** Ends the thread now (the machine's disks are not flushed: a hard power-off). */
  terminate(): Promise<void> {
    void this.worker.terminate();
    return this.exited;
  }

  get alive(): boolean {
    return !this.ended;
  }
}
