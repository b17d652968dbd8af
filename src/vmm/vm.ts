/**
 * Vm: one machine and its life, driven by VmmActions. Every host runs machines through this
 * class only: the CLI (its keys, its human monitor and QMP), the browser's worker, the daemon.
 *
 *   created ──start──▶ running ◀──resume/pause──▶ paused
 *                        │  ▲                        │
 *                 migrate│  │failed           quit, guest poweroff, fatal, limit
 *                        ▼  │                        ▼
 *                   migrating-out ──completed──▶  stopped ◀── (from any state)
 *   incoming ──(machine received)──▶ running
 *
 * The run loop (machine/runner.ts) goes on while the guest should run; actions that need the
 * machine between slices (savevm, reset, the last phase of a migration) hold it there and let
 * it go again. A guest reboot restarts the machine from its boot images in place.
 */
import { Runner } from '../machine/runner.ts';
import { encodeSnapshot } from '../machine/snapshot.ts';
import { collectStats } from '../machine/stats.ts';
import type { BootInfo, VirtBoard } from '../machine/virt.ts';
import { isVirtusError, VirtusError } from '../util/errors.ts';
import type {
  StopInfo, VmEvent, VmmAction, VmmResult, VmmResults, VmState, VmStatus,
} from './actions.ts';
import type { BuiltMachine } from './build.ts';
import type { VmHost } from './host.ts';
import { VmMigration, type MigrationDefaults } from './migration.ts';
import { shapeOf } from './shape.ts';
import type { MachineSpec } from './spec.ts';

export interface VmOptions {
  /** Told of every event from the start (before the machine first runs). */
  on?: (e: VmEvent) => void;
  /**
   * Bytes of console output the listener can take now (optional): at 0 the guest's consoles
   * hold output back (the UART's THR stays full, virtio-console waits) until there is room;
   * a deterministic machine instead pauses between slices, so the guest cannot tell.
   */
  outputRoom?: () => number;
  /** Stop after exactly this many instructions (counted from power-on). */
  maxInsns?: number;
  /** A guest reboot ends the machine instead of restarting it (QEMU's -no-reboot). */
  noReboot?: boolean;
  /** Migration settings to start with (QEMU's capabilities and parameters, and virtus's bounds). */
  migration?: MigrationDefaults;
  /**
   * Called as the machine stops for good, while it is still whole (between slices, its disks
   * still open): the last moment to save it (`virtus run --snapshot-on-exit`).
   */
  stopping?: (info: StopInfo) => void;
}

/** The parts of a Vm its constructors hand over. */
export interface VmParts {
  spec: MachineSpec;
  built: BuiltMachine;
  host: VmHost;
  /** Where the last boot put things (null for a restored or received machine). */
  bootInfo: BootInfo | null;
  state: 'created' | 'paused' | 'running';
  /** Listeners that were already listening while the machine was built. */
  emit: Emitter;
}

/** Event listeners of one machine. */
export class Emitter {
  private readonly listeners = new Set<(e: VmEvent) => void>();

  on(f: (e: VmEvent) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  emit(e: VmEvent): void {
    for (const f of this.listeners) f(e);
  }
}

function stateError(action: string, state: VmState): VirtusError {
  return new VirtusError('VMM_STATE', `${action}: the machine is ${state}`);
}

export class Vm {
  readonly spec: MachineSpec;
  readonly board: VirtBoard;
  /** Where the boot put things (kernel symbols for --signature; the DTB for --dtb-dump). */
  readonly bootInfo: BootInfo | null;
  private readonly built: BuiltMachine;
  private readonly host: VmHost;
  private readonly runner: Runner;
  private readonly events: Emitter;
  private st: VmState;
  /** True while the guest should run (running, or a pre-copy migration of a running guest). */
  private guestRuns = false;
  private loop: Promise<void> | null = null;
  private stopInfo: StopInfo | null = null;
  private readonly stoppedWaiters: Array<(s: StopInfo) => void> = [];
  /** Its migrations: settings, the one under way, what query-migrate shows. */
  readonly migration: VmMigration;
  /** State changes and snapshots, one at a time. */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(
    p: VmParts,
    private readonly o: VmOptions = {},
  ) {
    this.spec = p.spec;
    this.built = p.built;
    this.board = p.built.board;
    this.host = p.host;
    this.bootInfo = p.bootInfo;
    this.events = p.emit;
    this.runner = new Runner(this.board.machine, p.host.runner);
    this.st = p.state;
    this.migration = new VmMigration({
      board: this.board,
      state: () => this.st,
      setState: (st) => this.setState(st),
      shape: () => this.shape(),
      ...(p.host.connect ? { connect: p.host.connect.bind(p.host) } : {}),
      halt: () => this.halt(),
      run: () => this.run(),
      throttle: (pct) => (this.runner.throttle = pct),
      handover: () => this.built.handover(),
      takeBack: () => this.built.takeBack(),
      finish: (info) => this.finish(info),
      emit: (info) => this.events.emit({ type: 'migration', info: { ...info } }),
    }, o.migration);
    if (p.state === 'running') this.run();
  }

  get state(): VmState {
    return this.st;
  }

  /** Listens to the machine's events; returns a function that stops listening. */
  on(f: (e: VmEvent) => void): () => void {
    return this.events.on(f);
  }

  /** Resolves once the machine has stopped for good, with why. */
  stopped(): Promise<StopInfo> {
    if (this.stopInfo) return Promise.resolve(this.stopInfo);
    return new Promise((r) => this.stoppedWaiters.push(r));
  }

  /**
   * A snapshot now, for a caller that already holds the machine between slices (a stopping
   * hook); everyone else asks with the savevm action.
   */
  snapshot(): Uint8Array[] {
    if (this.loop && this.guestRuns) throw new VirtusError('VMM_STATE', 'snapshot: the machine is running (use the savevm action)');
    return encodeSnapshot(this.board, this.shape());
  }

  /** Carries out one action. */
  handle<A extends VmmAction>(a: A): Promise<VmmResult<A>> {
    // Input and queries answer at once; everything that changes the machine waits its turn.
    switch (a.type) {
      case 'console-input':
      case 'console-resize':
      case 'query-status':
      case 'query-stats':
      case 'query-migrate':
      case 'query-spec':
      case 'query-vm-generation-id':
      case 'query-migrate-capabilities':
      case 'query-migrate-parameters':
      case 'migrate-set-capabilities':
      case 'migrate-set-parameters':
      case 'migrate-cancel':
      case 'migrate-start-postcopy':
        try {
          return Promise.resolve(this.now(a) as VmmResult<A>);
        } catch (e) {
          return Promise.reject(e);
        }
    }
    const next = this.busy.then(() => this.serial(a));
    this.busy = next.catch(() => {});
    return next as Promise<VmmResult<A>>;
  }

  private now(a: VmmAction): VmmResults[keyof VmmResults] {
    const empty = {} as Record<string, never>;
    switch (a.type) {
      case 'console-input':
        if (this.built.console) this.built.console.write(a.bytes);
        else this.board.consoleInput(a.bytes);
        this.host.runner.wake();
        return empty;
      case 'console-resize':
        this.built.console?.resize(a.cols, a.rows);
        return empty;
      case 'query-status':
        return this.status();
      case 'query-stats':
        return collectStats(this.board);
      case 'query-migrate':
        return this.migration.query();
      case 'query-migrate-capabilities':
        return this.migration.capabilities();
      case 'query-migrate-parameters':
        return this.migration.parameters();
      case 'migrate-set-capabilities':
        this.migration.setCapabilities(a.capabilities);
        return empty;
      case 'migrate-set-parameters':
        this.migration.setParameters(a.parameters);
        return empty;
      case 'migrate-cancel':
        this.migration.cancel();
        return empty;
      case 'migrate-start-postcopy':
        this.migration.startPostcopy();
        return empty;
      case 'query-spec':
        return this.spec;
      case 'query-vm-generation-id':
        return { guid: this.board.vmgenid.guid };
      default:
        throw new Error(`unhandled ${a.type}`);
    }
  }

  private status(): VmStatus {
    return {
      state: this.st,
      running: this.guestRuns && this.st !== 'stopped',
      instret: this.board.machine.instret(),
      ...(this.stopInfo ? { stop: this.stopInfo } : {}),
    };
  }

  private async serial(a: VmmAction): Promise<VmmResults[keyof VmmResults]> {
    const empty = {} as Record<string, never>;
    const st = this.st;
    switch (a.type) {
      case 'start':
        if (st !== 'created') throw stateError('start', st);
        this.setState('running');
        this.run();
        return empty;
      case 'pause':
        if (st === 'paused') return empty;
        if (st !== 'running') throw stateError('pause', st);
        this.setState('paused');
        await this.halt();
        return empty;
      case 'resume':
        if (st === 'running') return empty;
        if (st !== 'paused' && st !== 'created') throw stateError('resume', st);
        this.setState('running');
        this.run();
        return empty;
      case 'quit':
        if (st === 'stopped') return empty;
        await this.halt();
        this.finish({ reason: 'quit', code: 0 });
        return empty;
      case 'reset':
        if (st === 'stopped' || st === 'migrating-out' || st === 'incoming') throw stateError('reset', st);
        await this.held(() => this.restart(false));
        return empty;
      case 'powerdown':
        if (st === 'stopped') throw stateError('powerdown', st);
        this.events.emit({ type: 'powerdown' });
        return empty;
      case 'savevm': {
        if (st === 'stopped' || st === 'migrating-out' || st === 'incoming') throw stateError('savevm', st);
        if (this.migration.receiving) throw new VirtusError('VMM_STATE', 'savevm: the machine is still receiving its memory by post-copy');
        return this.held(() => {
          const t = performance.now();
          const parts = encodeSnapshot(this.board, this.shape());
          return { parts, bytes: parts.reduce((n, p) => n + p.length, 0), ms: performance.now() - t };
        });
      }
      case 'flush':
        if (st === 'stopped' || st === 'migrating-out' || st === 'incoming') throw stateError('flush', st);
        await this.held(() => this.built.flush());
        return empty;
      case 'migrate':
        this.migration.start(a.uri);
        return empty;
      default:
        throw new Error(`unhandled ${a.type}`);
    }
  }

  /** The guest-visible description a snapshot or migration carries. */
  private shape(): unknown {
    return shapeOf(this.spec, this.built.macs);
  }

  private setState(s: VmState): void {
    if (this.st === s) return;
    this.st = s;
    this.events.emit({ type: 'state', state: s });
  }

  /** Runs the guest (the run loop starts unless it already runs). */
  private run(): void {
    this.guestRuns = true;
    if (this.loop) return;
    this.loop = this.runLoop()
      .catch((e: unknown) => this.fail(e))
      .finally(() => (this.loop = null));
  }

  private async runLoop(): Promise<void> {
    // The action that started the guest is answered first, as QEMU's monitor replies before
    // its vCPUs run: nothing the guest does comes ahead of the answer to `cont`.
    await this.host.runner.yield();
    while (this.guestRuns && this.st !== 'stopped') {
      const room = this.o.outputRoom;
      const exit = await this.runner.run({
        ...(this.o.maxInsns !== undefined ? { maxInsns: this.o.maxInsns } : {}),
        // A deterministic machine's devices do not see the host's pace (create.ts): it waits here.
        ...(room && this.spec.deterministic ? { outputFull: () => room() <= 0 } : {}),
      });
      if (!exit) continue;
      if (exit.reason === 'reboot' && !this.o.noReboot && this.board.lastBoot) {
        this.restart(true);
        continue;
      }
      const info: StopInfo = { reason: exit.reason, code: exit.code > 255 ? 1 : exit.code, ...(exit.message ? { message: exit.message } : {}) };
      if (exit.reason === 'reboot' && !this.board.lastBoot) info.message = 'the guest rebooted, and the machine has no boot images to reboot from';
      this.finish(info);
    }
  }

  /** Holds the machine between slices until it should run again. */
  private async halt(): Promise<void> {
    this.guestRuns = false;
    const loop = this.loop;
    if (!loop) return;
    this.runner.requestStop();
    this.host.runner.wake();
    await loop;
  }

  /** Runs `f` with the machine between slices, then lets it run on if it was running. */
  private async held<T>(f: () => T): Promise<T> {
    const wasRunning = this.guestRuns;
    await this.halt();
    try {
      return f();
    } finally {
      if (wasRunning && this.st !== 'stopped') this.run();
    }
  }

  /** Restarts the machine from its boot images (the guest's reboot, or a reset action). */
  private restart(guest: boolean): void {
    if (!this.board.lastBoot) throw new VirtusError('NO_REBOOT', 'the machine has no boot images to restart from');
    this.board.reboot();
    this.events.emit({ type: 'reset', guest });
  }

  private fail(e: unknown): void {
    const message = isVirtusError(e) ? e.message : `internal error: ${e instanceof Error ? e.message : String(e)}`;
    this.finish({ reason: 'error', code: isVirtusError(e) ? e.exitCode : 70, message });
  }

  /** The machine has stopped for good: tell everyone, and give back what it held on the host. */
  private finish(info: StopInfo): void {
    if (this.st === 'stopped') return;
    this.guestRuns = false;
    this.runner.requestStop();
    this.stopInfo = info;
    try {
      this.o.stopping?.(info);
    } catch (e) {
      this.host.warn(`virtus: ${isVirtusError(e) ? e.message : `internal error: ${(e as Error).message}`}`);
    }
    this.setState('stopped');
    // A migrated machine's disks belong to the target now: nothing here may write them again.
    if (info.reason === 'migrated') this.built.abandon();
    else {
      this.migration.ended();
      this.built.close();
    }
    this.events.emit({ type: 'stop', info });
    for (const w of this.stoppedWaiters.splice(0)) w(info);
  }
}
