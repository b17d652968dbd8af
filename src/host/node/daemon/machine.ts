/**
 * One machine of the daemon: its definition (persisted as machine.json), its worker thread
 * while it runs, its console (a ring buffer and the clients attached), and the restart policy.
 *
 *   created ──start──▶ starting ──▶ running ⇄ paused        (incoming ──machine arrives──▶ running)
 *                                      │  migrate ──▶ migrating ──▶ stopped (reason migrated)
 *                        stop ──▶ stopping ──▶ stopped ──start──▶ starting ...
 *
 * A stopped machine holds no thread and no RAM; starting it again boots it afresh from its spec
 * (its disks keep what was written). When the machine stops by itself — guest poweroff, a fatal
 * guest error, its thread dying — the restart policy decides: `always` starts it again, `on-failure`
 * only after a failure (a non-zero stop, an error, a dead thread), `no` never; restarts back off
 * from 100 ms to 30 s while a machine keeps failing within 10 s of its start.
 */
import type { Capability, MigrationParameters } from '../../../machine/migrate-params.ts';
import { VirtusError } from '../../../util/errors.ts';
import type { MigrationInfo, StopInfo, VmEvent, VmmAction, VmmResult } from '../../../vmm/actions.ts';
import type { Resources } from '../../../vmm/shape.ts';
import type { MachineSpec } from '../../../vmm/spec.ts';
import type { SpecFiles } from './boot-files.ts';
import { ByteRing } from './ring.ts';
import type { WorkerInit } from './protocol.ts';
import { VmWorker } from './vm-worker.ts';

/** What the daemon does when a machine stops by itself (see the file's comment). */
export type RestartPolicy = 'always' | 'on-failure' | 'no';
export type MachineState = 'created' | 'starting' | 'running' | 'paused' | 'migrating' | 'incoming' | 'stopping' | 'stopped';

/** What machine.json holds. */
export interface MachineRecord {
  id: string;
  name: string;
  /** The machine (null for an incoming machine that has not arrived yet). */
  spec: MachineSpec | null;
  /** The store image it was made from. */
  image?: string;
  /** A snapshot it is restored from (each start restores it), with the host resources to bind. */
  snapshot?: { path: string; resources: Resources };
  restart: RestartPolicy;
  /** The daemon should keep it running: set by start, cleared by stop and by a stop the policy accepts. */
  running: boolean;
  created: string;
  /** Files that belong to the machine alone (its overlays): deleted with it. */
  owned: string[];
  /** It migrated to another host (this URI), which owns its disks now: it never starts here again. */
  migratedTo?: string;
  /** A cluster's machine (cluster/agent.ts): etcd defines it, not this file. */
  cluster?: boolean;
}

/** A machine as the API shows it. */
export interface MachineInfo {
  id: string;
  name: string;
  state: MachineState;
  image: string | null;
  memory: number | null;
  restart: RestartPolicy;
  created: string;
  /** When it last started (ISO time), while it runs. */
  started: string | null;
  uptimeSeconds: number | null;
  /** Share of one core its thread used lately (0-100). */
  cpuPercent: number;
  stop: StopInfo | null;
  migration: MigrationInfo | null;
  restarts: number;
  spec: MachineSpec | null;
}

/** What the daemon tells the world about its machines (the event stream). */
export type DaemonEvent = { id: string; name: string } & (
  | { type: 'created' }
  | { type: 'deleted' }
  | { type: 'state'; state: MachineState }
  | { type: 'stop'; reason: StopInfo['reason']; code: number; message?: string }
  | { type: 'powerdown' }
  | { type: 'reset'; guest: boolean }
  | { type: 'migration'; info: MigrationInfo }
  | { type: 'warning'; message: string }
  | { type: 'restart'; attempt: number; delayMs: number }
);

/** What a machine needs from its daemon. */
export interface MachineContext {
  save(record: MachineRecord): void;
  publish(e: DaemonEvent): void;
  /** Throws NO_MEMORY when `memory` more bytes of guest RAM would exceed the daemon's limit. */
  reserve(m: DaemonMachine, memory: number): void;
  /** The machine's directory in the state directory. */
  dir(id: string): string;
  log(line: string): void;
  /** The lease gate of a cluster node (cluster/lease-gate.ts), for its cluster machines' threads. */
  lease?: SharedArrayBuffer;
  /** The boot files of `spec`: shared between the machines that boot from them, or read again (boot-files.ts). */
  bootFiles?: (spec: MachineSpec) => SpecFiles;
}

/** What `migratedTo` says of a machine that moved into a browser tab (tab-move.ts). */
export const IN_A_TAB = 'a browser tab';

/** Bytes of console output kept per machine. */
export const CONSOLE_RING = 256 * 1024;
const MAX_BACKOFF_MS = 30_000;
/** A machine that ran this long is considered healthy: its restart backoff starts over. */
const HEALTHY_MS = 10_000;

function stateError(action: string, state: MachineState): VirtusError {
  return new VirtusError('VMM_STATE', `${action}: the machine is ${state}`);
}

/** A console client: gets output as it comes. */
export type ConsoleClient = (bytes: Uint8Array) => void;

/** One machine of the daemon (see the file's comment). */
export class DaemonMachine {
  state: MachineState;
  private worker: VmWorker | null = null;
  readonly console = new ByteRing(CONSOLE_RING);
  private readonly clients = new Set<ConsoleClient>();
  private stopInfo: StopInfo | null = null;
  private migration: MigrationInfo | null = null;
  private startedAt: number | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private restartCount = 0;
  private cpu = 0;
  private cpuSample: ReturnType<VmWorker['utilization']>['sample'] | undefined;
  /** Set while a stop the user asked for is under way (its end is not the policy's business). */
  private userStop = false;
  /** The migration under way is shown with this target instead of its URI. */
  private relabel: { uri: string; target: string } | null = null;

  constructor(
    readonly record: MachineRecord,
    private readonly ctx: MachineContext,
  ) {
    this.state = record.spec ? 'created' : 'incoming';
  }

  get id(): string {
    return this.record.id;
  }

  get name(): string {
    return this.record.name;
  }

  /** Guest RAM held while it runs. */
  get memory(): number {
    return this.record.spec?.memory ?? 0;
  }

  /** True while it has a thread (and so holds its RAM). */
  get live(): boolean {
    return this.worker !== null;
  }

  info(): MachineInfo {
    const up = this.startedAt !== null && this.live ? (Date.now() - this.startedAt) / 1000 : null;
    return {
      id: this.id,
      name: this.name,
      state: this.state,
      image: this.record.image ?? null,
      memory: this.record.spec?.memory ?? null,
      restart: this.record.restart,
      created: this.record.created,
      started: this.startedAt !== null && this.live ? new Date(this.startedAt).toISOString() : null,
      uptimeSeconds: up === null ? null : Math.round(up * 10) / 10,
      cpuPercent: this.live ? Math.round(this.cpu * 1000) / 10 : 0,
      stop: this.stopInfo,
      migration: this.migration,
      restarts: this.restartCount,
      spec: this.record.spec,
    };
  }

  private setState(s: MachineState): void {
    if (this.state === s) return;
    this.state = s;
    this.ctx.publish({ id: this.id, name: this.name, type: 'state', state: s });
  }

  private persist(): void {
    this.ctx.save(this.record);
  }

  /** The worker's machine as this record describes it. */
  private init(start: boolean, incoming?: string): WorkerInit {
    const r = this.record;
    const lease = r.cluster && this.ctx.lease ? { lease: this.ctx.lease } : {};
    if (incoming !== undefined) return { kind: 'incoming', listen: incoming, resources: r.snapshot!.resources, name: r.name, dir: this.ctx.dir(r.id), ...lease };
    if (r.snapshot) return { kind: 'restore', snapshot: r.snapshot.path, resources: r.snapshot.resources, name: r.name, start, ...lease };
    const boot = this.ctx.bootFiles?.(r.spec!);
    return { kind: 'create', spec: r.spec!, name: r.name, start, ...(boot ? { files: boot.files, reread: boot.reread } : {}), ...lease };
  }

  /** Starts the machine (boots it afresh, or restores its snapshot); resolves once it runs. */
  async start(o: { paused?: boolean } = {}): Promise<void> {
    if (this.worker) throw stateError('start', this.state);
    if (this.record.migratedTo === IN_A_TAB) throw new VirtusError('VMM_STATE', 'start: the machine runs in a browser tab now: move it back from there (or rm it here)');
    if (this.record.migratedTo) throw new VirtusError('VMM_STATE', `start: the machine migrated to ${this.record.migratedTo}, which owns its disks now`);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.ctx.reserve(this, this.memory);
    this.record.running = true;
    this.persist();
    await this.spawn(this.init(!o.paused));
  }

  /**
   * Waits for a machine migrated from another host: the thread listens on `listen`; resolves
   * with the address it listens on. The machine runs once it has arrived.
   */
  async receive(listen: string): Promise<string> {
    if (this.worker) throw stateError('receive', this.state);
    this.record.running = true;
    const w = this.attach(this.init(false, listen));
    this.setState('incoming');
    void w.ready.then(
      ({ spec, state }) => {
        this.startedAt = Date.now();
        this.setState(state === 'running' ? 'running' : 'paused');
        this.record.spec = spec;
        this.record.snapshot = undefined;
        this.persist();
      },
      () => {},
    );
    return w.listening;
  }

  /**
   * Takes back the machine that moved into a browser tab (tab-move.ts): its thread listens on
   * `listen` (a unix socket) for one stream, with no disks, folders or NICs to bind (a tab's
   * machine has none). Resolves with the address once it listens, and `arrived`, which settles
   * when the machine runs here again — or rejects when the stream failed: the machine then stays
   * stopped here, in the tab, as before.
   */
  async receiveFromTab(listen: string): Promise<{ uri: string; arrived: Promise<void> }> {
    const spec = this.record.spec;
    if (this.worker || !spec || this.record.migratedTo !== IN_A_TAB) throw new VirtusError('VMM_STATE', `move from a tab: the machine is ${this.state} here, not in a browser tab`);
    this.ctx.reserve(this, spec.memory);
    const r = this.record;
    const lease = r.cluster && this.ctx.lease ? { lease: this.ctx.lease } : {};
    const w = this.attach({ kind: 'incoming', listen, once: true, resources: { disks: [], shares: [], nics: [], engine: spec.engine }, name: r.name, dir: this.ctx.dir(r.id), ...lease });
    // A stream that fails is no failure of the machine: it is still in the tab.
    this.userStop = true;
    this.setState('incoming');
    const arrived = w.ready.then(({ spec: got, state }) => {
      this.userStop = false;
      this.stopInfo = null;
      this.startedAt = Date.now();
      Object.assign(this.record, { spec: got, running: true, migratedTo: undefined, snapshot: undefined });
      this.setState(state === 'running' ? 'running' : 'paused');
      this.persist();
    });
    arrived.catch(() => {});
    return { uri: await w.listening, arrived };
  }

  private async spawn(init: WorkerInit): Promise<void> {
    this.setState('starting');
    this.stopInfo = null;
    this.migration = null;
    const w = this.attach(init);
    try {
      const { state } = await w.ready;
      if (state === 'paused' || state === 'created') this.setState('paused');
      else if (state === 'running') this.setState('running');
    } catch (e) {
      // A machine that cannot be built is not restarted by the policy: the caller hears why.
      this.userStop = true;
      this.record.running = false;
      this.persist();
      throw e;
    }
  }

  private attach(init: WorkerInit): VmWorker {
    this.userStop = false;
    const w = new VmWorker(init, {
      event: (e) => this.event(e),
      stopped: (info) => this.ended(w, info),
      // A thread the daemon ended itself (a hard stop) did not die: it was stopped.
      died: (message) => this.ended(w, this.userStop ? { reason: 'quit', code: 0 } : { reason: 'error', code: 70, message: `the machine's worker thread died: ${message}` }),
    });
    this.worker = w;
    this.startedAt = Date.now();
    this.cpu = 0;
    this.cpuSample = undefined;
    return w;
  }

  private event(e: VmEvent): void {
    const who = { id: this.id, name: this.name };
    switch (e.type) {
      case 'output':
        this.console.write(e.bytes);
        for (const c of this.clients) c(e.bytes);
        return;
      case 'state':
        if (this.state === 'stopping' && e.state !== 'stopped') return;
        if (e.state === 'migrating-out') this.setState('migrating');
        else if (e.state === 'created') this.setState('paused');
        else if (e.state !== 'stopped') this.setState(e.state);
        return;
      case 'stop':
        if (this.relabel && e.info.message) e = { ...e, info: { ...e.info, message: e.info.message.replace(this.relabel.uri, this.relabel.target) } };
        this.stopInfo = e.info;
        this.ctx.publish({ ...who, type: 'stop', reason: e.info.reason, code: e.info.code, ...(e.info.message ? { message: e.info.message } : {}) });
        return;
      case 'powerdown':
        return this.ctx.publish({ ...who, type: 'powerdown' });
      case 'reset':
        return this.ctx.publish({ ...who, type: 'reset', guest: e.guest });
      case 'migration':
        if (this.relabel && e.info.target === this.relabel.uri) e = { ...e, info: { ...e.info, target: this.relabel.target } };
        this.migration = e.info;
        for (const f of this.migrationWatchers) f(e.info);
        return this.ctx.publish({ ...who, type: 'migration', info: e.info });
      case 'warning':
        this.ctx.log(`${this.name}: ${e.message}`);
        return this.ctx.publish({ ...who, type: 'warning', message: e.message });
    }
  }

  /** The thread is gone: the machine stopped (or its thread died). */
  private ended(w: VmWorker, info: StopInfo): void {
    if (this.worker !== w) return;
    this.worker = null;
    if (!this.stopInfo) {
      this.stopInfo = info;
      this.ctx.publish({ id: this.id, name: this.name, type: 'stop', reason: info.reason, code: info.code, ...(info.message ? { message: info.message } : {}) });
    }
    const ranMs = Date.now() - (this.startedAt ?? Date.now());
    if (info.reason === 'migrated') this.record.migratedTo = this.migration?.target ?? 'another host';
    this.setState('stopped');
    if (this.userStop || !this.record.running) {
      if (this.record.migratedTo) this.persist();
      return;
    }
    const failed = info.reason === 'error' || info.reason === 'fatal' || info.code !== 0;
    const policy = this.record.restart;
    if (info.reason !== 'migrated' && (policy === 'always' || (policy === 'on-failure' && failed))) {
      this.failures = ranMs >= HEALTHY_MS ? 0 : this.failures + 1;
      const delayMs = Math.min(MAX_BACKOFF_MS, 100 * 2 ** this.failures);
      this.restartCount++;
      this.ctx.publish({ id: this.id, name: this.name, type: 'restart', attempt: this.restartCount, delayMs });
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        this.start().catch((e: Error) => this.ctx.log(`${this.name}: restart failed: ${e.message}`));
      }, delayMs);
      this.restartTimer.unref();
      return;
    }
    this.record.running = false;
    this.persist();
  }

  private need(action: string): VmWorker {
    if (!this.worker || this.state === 'starting' || this.state === 'incoming') throw stateError(action, this.state);
    return this.worker;
  }

  /** Carries out a VmmAction on the running machine. */
  action<A extends VmmAction>(a: A): Promise<VmmResult<A>> {
    return this.need(a.type).action(a);
  }

  /**
   * Starts a live migration to `uri`. Resolves once the stream is under way (the first round
   * went out, or 2 s passed); a migration that fails before that — a target that refuses the
   * connection or the machine — is an error here, and the machine runs on as before.
   * `capabilities` and `parameters` are QEMU's (set first, through the same actions as QMP's);
   * a cluster's machines migrate with auto-converge unless told otherwise.
   */
  async migrate(uri: string, o: { capabilities?: Record<string, boolean>; parameters?: Record<string, unknown>; target?: string } = {}): Promise<void> {
    const w = this.need('migrate');
    // What the API shows as the target, in place of `uri` (a tab's move: not the socket's path).
    this.relabel = o.target !== undefined ? { uri, target: o.target } : null;
    const caps = { 'auto-converge': true, ...o.capabilities };
    await w.action({ type: 'migrate-set-capabilities', capabilities: Object.entries(caps).map(([capability, state]) => ({ capability: capability as Capability, state })) });
    if (o.parameters) await w.action({ type: 'migrate-set-parameters', parameters: o.parameters as Partial<MigrationParameters> });
    let off: (() => void) | null = null;
    const settled = new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, 2000);
      off = this.onMigration((info) => {
        if (info.status === 'failed') reject(new VirtusError('MIGRATE_FAILED', `migration to ${o.target ?? uri} failed: ${info.error ?? 'unknown error'}; the machine runs on here`));
        else if ((info.rounds ?? 0) > 0 || (info.status !== 'active' && info.status !== 'setup')) resolve();
        else return;
        clearTimeout(t);
      });
    });
    try {
      await w.action({ type: 'migrate', uri });
      await settled;
    } finally {
      off!();
    }
  }

  private readonly migrationWatchers = new Set<(info: MigrationInfo) => void>();

  private onMigration(f: (info: MigrationInfo) => void): () => void {
    this.migrationWatchers.add(f);
    return () => this.migrationWatchers.delete(f);
  }

  /** Saves the running (or paused) machine to `path`. */
  savevm(path: string): Promise<{ bytes: number; ms: number }> {
    return this.need('snapshot').savevm(path);
  }

  /**
   * Stops the machine. Graceful: the guest is asked to power off (the powerdown event) and
   * given `timeoutMs` to do so; then (or at once with `force`) the machine is quit — its run
   * loop stopped between slices and its disks flushed and closed — and a thread that does not
   * answer within 5 s is ended.
   */
  async stop(o: { force?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
      this.record.running = false;
      this.persist();
      return;
    }
    const w = this.worker;
    if (!w) throw stateError('stop', this.state);
    this.userStop = true;
    this.record.running = false;
    this.persist();
    // A machine still waiting for its migration (or being built) has nothing to flush.
    const waiting = this.state === 'incoming' || this.state === 'starting';
    this.setState('stopping');
    if (waiting) return void (await w.terminate());
    const within = (p: Promise<unknown>, ms: number): Promise<boolean> =>
      Promise.race([p.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
    if (!o.force && (o.timeoutMs ?? 0) > 0) {
      await w.action({ type: 'powerdown' }).catch(() => {});
      const deadline = Date.now() + o.timeoutMs!;
      if (this.record.spec?.devices.console === 'virtio') void this.sysrqPoweroff(w, deadline);
      if (await within(w.exited, o.timeoutMs!)) return;
    }
    await within(w.action({ type: 'quit' }), 5000);
    if (!(await within(w.exited, 2000))) await w.terminate();
  }

  /**
   * The powerdown a Linux guest acts on: the virt board has no power button, but Linux's
   * virtio console (hvc0) takes Ctrl-O as the magic SysRq prefix (drivers/tty/hvc/hvc_console.c),
   * and Debian's kernels allow sync, remount and power-off from it (kernel.sysrq = 438). So:
   * SysRq-S (emergency sync), then once the guest says it is done, SysRq-U (remount every file
   * system read-only), then SysRq-O (power off). Each step waits for the kernel's own message,
   * so the disks are clean before the power goes; a guest that says nothing gets the hard stop.
   */
  private async sysrqPoweroff(w: VmWorker, deadline: number): Promise<void> {
    const key = (k: string): Promise<unknown> => w.action({ type: 'console-input', bytes: new Uint8Array([0x0f, k.charCodeAt(0)]) }).catch(() => {});
    const said = (re: RegExp): Promise<boolean> =>
      new Promise((resolve) => {
        let seen = '';
        const off = this.attachConsole((b) => {
          seen = (seen + Buffer.from(b).toString('latin1')).slice(-512);
          if (re.test(seen)) done(true);
        });
        const t = setTimeout(() => done(false), Math.max(0, deadline - Date.now()));
        const done = (ok: boolean): void => {
          clearTimeout(t);
          off();
          resolve(ok);
        };
      });
    let step = said(/Emergency Sync complete/);
    await key('s');
    if (!(await step)) return;
    step = said(/Emergency Remount complete/);
    await key('u');
    if (!(await step)) return;
    await key('o');
  }

  /**
   * Stops the machine at once, for a node that lost its cluster lease (cluster/lease.ts): no
   * restart, no powerdown; its run loop is quit (disks flushed and closed, their locks let go)
   * and a thread that does not answer within `quitMs` is ended. Resolves once it is stopped.
   */
  async fence(quitMs = 1000): Promise<void> {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const w = this.worker;
    if (!w) return;
    this.userStop = true;
    this.setState('stopping');
    await Promise.race([w.action({ type: 'quit' }).catch(() => {}), new Promise((r) => setTimeout(r, quitMs).unref())]);
    if (this.worker === w && !(await Promise.race([w.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200).unref())]))) {
      await w.terminate();
    }
  }

  /** Ends the thread at once (daemon shutdown: disks are flushed by quit first when it answers). */
  async shutdown(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    this.userStop = true;
    await Promise.race([w.action({ type: 'quit' }).catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
    await w.terminate();
  }

  /** Attaches a console client; returns the detach function. Recent output is the caller's to send. */
  attachConsole(c: ConsoleClient): () => void {
    this.clients.add(c);
    return () => this.clients.delete(c);
  }

  /** Keyboard input for the guest (dropped while it does not run). */
  input(bytes: Uint8Array): void {
    if (this.worker && (this.state === 'running' || this.state === 'paused' || this.state === 'migrating')) {
      void this.worker.action({ type: 'console-input', bytes }).catch(() => {});
    }
  }

  /** Samples the thread's busy share (called every few seconds). */
  sampleCpu(): void {
    if (!this.worker) return;
    const u = this.worker.utilization(this.cpuSample);
    if (this.cpuSample) this.cpu = u.busy;
    this.cpuSample = u.sample;
  }

  /** The stopped state loaded from disk. */
  markStopped(): void {
    this.state = 'stopped';
  }
}
