/**
 * The migration side of a Vm: its capabilities and parameters (QEMU's, migrate-params.ts),
 * the outgoing migration it drives (machine/migrate.ts) with the run loop's pause, resume and
 * throttle, and what `query-migrate` shows on either side. Every front end reaches this
 * through VmmActions, so the CLI, QMP, the daemon and the cluster share the controls.
 *
 * Endings (each leaves one copy of the machine running, or says why none is):
 * - completed: the source stops with reason `migrated`; the target runs.
 * - failed before the target took over (a refusal, a broken link, a target that died) or
 *   cancelled: the source runs on as it was (paused stays paused), the target waits on.
 * - the guest stops its machine (poweroff, exit) during pre-copy: the migration fails with
 *   that reason and the source ends as the guest asked.
 * - post-copy: once the target runs, the source never runs again; a link that breaks then
 *   loses the machine on both sides (QEMU's trade-off): both report it and end with an error.
 */
import type { PageSource } from '../machine/migrate-postcopy.ts';
import { migrateOut, type MigrationControl, type MigrationProgress, type MigrationReport } from '../machine/migrate.ts';
import { defaultSettings, setCapabilities, setParameters, type Capabilities, type MigrationParameters, type MigrationSettings } from '../machine/migrate-params.ts';
import type { VirtBoard } from '../machine/virt.ts';
import { VirtusError } from '../util/errors.ts';
import type { MigrationInfo, StopInfo, VmState } from './actions.ts';
import type { MigrationLink } from './host.ts';

/** Migration settings a Vm starts with (the CLI's flags, the daemon's defaults). */
export interface MigrationDefaults {
  /** Stop-and-copy once a round's dirty set has at most this many pages, whatever the estimate. */
  maxDirtyPages?: number;
  /** Stop-and-copy after this many rounds, converged or not. */
  maxRounds?: number;
  capabilities?: Partial<Capabilities>;
  parameters?: Partial<MigrationParameters>;
}

/** What the migration needs of its Vm. */
export interface MigrationOwner {
  readonly board: VirtBoard;
  state(): VmState;
  setState(s: VmState): void;
  /** The guest-visible description the stream carries. */
  shape(): unknown;
  connect?(uri: string): Promise<MigrationLink>;
  /** Holds the machine between slices (the guest stops). */
  halt(): Promise<void>;
  /** Runs the guest. */
  run(): void;
  throttle(percent: number): void;
  handover(): void;
  takeBack(): void;
  finish(info: StopInfo): void;
  emit(info: MigrationInfo): void;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

/** A MigrationInfo from the core's progress. */
function infoOf(p: MigrationProgress, target: string, totalPages: number, maxThrottle: number): MigrationInfo {
  return {
    status: p.status === 'device' ? 'stop-and-copy' : p.status,
    target,
    rounds: p.rounds,
    bytes: p.bytes,
    precopyBytes: p.precopyBytes,
    downtimeBytes: p.downtimeBytes,
    postcopyBytes: p.postcopyBytes,
    dirtyPages: p.dirtyPages,
    totalPages,
    dirtyRate: Math.round(p.dirtyRate),
    bandwidth: Math.round(p.bandwidth),
    expectedDowntimeMs: Number.isFinite(p.expectedDowntimeMs) ? round1(p.expectedDowntimeMs) : 0,
    throttle: p.throttle,
    maxThrottle: Math.max(maxThrottle, p.throttle),
    setupMs: round1(p.setupMs),
    totalMs: round1(p.totalMs),
    ...(p.downtimeMs !== undefined ? { downtimeMs: round1(p.downtimeMs) } : {}),
    normalPages: p.ram.normal,
    zeroPages: p.ram.duplicate,
    xbzrlePages: p.ram.xbzrlePages,
    xbzrleBytes: p.ram.xbzrleBytes,
    xbzrleCacheMiss: p.ram.cacheMiss,
    xbzrleOverflow: p.ram.overflow,
    postcopyRequests: p.postcopyRequests,
  };
}

/** Why a migration failed when the guest ended its machine first. */
function guestEnded(reason: string): string {
  return `the guest stopped the machine during the migration (${reason}); nothing was handed over`;
}

/** One Vm's migrations. */
export class VmMigration {
  info: MigrationInfo = { status: 'none' };
  private settings: MigrationSettings = defaultSettings();
  private control: MigrationControl | null = null;
  /** The link of a migration under way (closed if the machine ends first). */
  private link: MigrationLink | null = null;
  /** A machine received in post-copy: the pages still coming. */
  private pages: PageSource | null = null;

  constructor(
    private readonly vm: MigrationOwner,
    private readonly defaults: MigrationDefaults = {},
  ) {
    if (defaults.capabilities) {
      this.settings.capabilities = setCapabilities(this.settings.capabilities, Object.entries(defaults.capabilities).map(([capability, state]) => ({ capability, state })));
    }
    if (defaults.parameters) this.settings.parameters = setParameters(this.settings.parameters, defaults.parameters);
  }

  /** True while an outgoing migration runs. */
  get active(): boolean {
    return this.control !== null;
  }

  capabilities(): Capabilities {
    return { ...this.settings.capabilities };
  }

  parameters(): MigrationParameters {
    return { ...this.settings.parameters };
  }

  setCapabilities(list: unknown): void {
    // QEMU refuses any change while a migration runs (migrate_caps_check).
    if (this.active) throw new VirtusError('VMM_STATE', "There's a migration process in progress");
    this.settings = { ...this.settings, capabilities: setCapabilities(this.settings.capabilities, list) };
  }

  setParameters(changes: Record<string, unknown>): void {
    this.settings = { ...this.settings, parameters: setParameters(this.settings.parameters, changes) };
  }

  cancel(): void {
    if (!this.control) return;
    if (this.info.status === 'postcopy-active') {
      throw new VirtusError('VMM_STATE', 'migrate_cancel: post-copy is under way and the machine runs on the target now; cancelling would lose it');
    }
    this.control.cancel = true;
    this.info = { ...this.info, status: 'cancelling' };
    this.vm.emit(this.info);
  }

  startPostcopy(): void {
    if (!this.settings.capabilities['postcopy-ram']) throw new VirtusError('VMM_STATE', 'Enable postcopy with migrate_set_capability before the start of migration');
    if (!this.control) throw new VirtusError('VMM_STATE', 'Postcopy must be started after migration has been started');
    this.control.postcopy = true;
  }

  /** The machine ended: a link still open closes. */
  ended(): void {
    this.link?.close();
    this.pages?.close();
    this.pages = null;
  }

  /** Marks a machine received from another host (query-migrate on the target). */
  received(info: MigrationInfo): void {
    this.info = info;
    this.vm.emit(info);
  }

  /** True while a machine received in post-copy still lacks pages. */
  get receiving(): boolean {
    return this.pages !== null;
  }

  /**
   * A machine received in post-copy runs while `pages` arrive: its RAM accesses wait for
   * missing pages (migrate-postcopy.ts; the gate is in place since the answer). Once all are in
   * it is a normal machine; if the source breaks off first, the machine cannot go on and ends
   * with the reason.
   */
  incoming(pages: PageSource, rounds: number, more: Partial<MigrationInfo> = {}): void {
    const machine = this.vm.board.machine;
    const totalPages = machine.ram.size / 4096;
    this.pages = pages;
    this.received({ status: 'postcopy-active', target: 'incoming', rounds, totalPages, dirtyPages: pages.remaining(), postcopyRequests: 0, ...more });
    pages.done.then(
      () => {
        if (this.pages !== pages) return;
        machine.setGate(null);
        this.pages = null;
        pages.close();
        this.received({ status: 'completed', target: 'incoming', rounds, totalPages, dirtyPages: 0, postcopyRequests: pages.requests(), ...more });
      },
      (e: unknown) => {
        if (this.pages !== pages) return;
        this.pages = null;
        this.vm.finish({ reason: 'error', code: 1, message: e instanceof Error ? e.message : String(e) });
      },
    );
  }

  /** What query-migrate shows now. */
  query(): MigrationInfo {
    const pc = this.pages;
    return pc ? { ...this.info, dirtyPages: pc.remaining(), postcopyRequests: pc.requests() } : { ...this.info };
  }

  /** Starts migrating to `uri`; it goes on in the background, its progress told as events. */
  start(uri: string): void {
    const st = this.vm.state();
    if (st !== 'running' && st !== 'paused') throw new VirtusError('VMM_STATE', `migrate: the machine is ${st}`);
    if (this.pages) throw new VirtusError('VMM_STATE', 'migrate: the machine is still receiving its memory by post-copy');
    if (!this.vm.connect) throw new VirtusError('NO_MIGRATION', 'this host cannot migrate machines');
    const connect = this.vm.connect;
    const wasRunning = st === 'running';
    const board = this.vm.board;
    const totalPages = board.machine.ram.size / 4096;
    const control: MigrationControl = { cancel: false, postcopy: false };
    this.control = control;
    let maxThrottle = 0;
    this.info = { status: 'setup', target: uri, rounds: 0, bytes: 0, dirtyPages: 0, totalPages };
    this.vm.setState('migrating-out');
    this.vm.emit(this.info);
    const update = (p: MigrationProgress): void => {
      maxThrottle = Math.max(maxThrottle, p.throttle);
      // A failure is reported once, with its reason, below; a cancel asked for stays `cancelling`.
      if (p.status === 'failed' || p.status === 'cancelled') return;
      this.info = infoOf(p, uri, totalPages, maxThrottle);
      if (control.cancel && p.status === 'active') this.info.status = 'cancelling';
      // Completion is told once, below, with the final figures.
      if (p.status !== 'completed') this.vm.emit(this.info);
    };
    void (async () => {
      let link: MigrationLink | null = null;
      try {
        link = await connect(uri);
        this.link = link;
        if (this.vm.state() === 'stopped') throw new VirtusError('MIGRATE_ENDED', 'the machine ended before the migration began');
        if (control.cancel) throw new VirtusError('MIGRATE_CANCELLED', 'the migration was cancelled');
        const r: MigrationReport = await migrateOut(board, this.vm.shape(), link, {
          yield: () => new Promise((res) => setTimeout(res, 1)),
          sleep: (ms) => new Promise((res) => setTimeout(res, ms)),
          pause: async () => {
            await this.vm.halt();
            const exit = board.machine.exit;
            if (exit) throw new VirtusError('MIGRATE_ENDED', guestEnded(exit.reason));
          },
          resume: () => {
            if (wasRunning) this.vm.run();
          },
          throttle: (pct) => this.vm.throttle(pct),
          handover: () => this.vm.handover(),
          takeBack: () => this.vm.takeBack(),
        }, {
          ...(this.defaults.maxDirtyPages !== undefined ? { maxDirtyPages: this.defaults.maxDirtyPages } : {}),
          ...(this.defaults.maxRounds !== undefined ? { maxRounds: this.defaults.maxRounds } : {}),
          settings: () => this.settings,
          control,
          progress: update,
        });
        link.close();
        this.link = null;
        this.control = null;
        this.info = { ...this.info, status: 'completed', dirtyPages: 0, throttle: 0, maxThrottle: r.maxThrottle };
        this.vm.emit(this.info);
        const how = r.postcopy ? `post-copy, ${r.postcopyRequests} pages asked for` : `${r.finalPages} pages while stopped`;
        this.vm.finish({
          reason: 'migrated',
          code: 0,
          message: `migrated to ${uri}: total ${r.totalMs.toFixed(0)} ms, downtime ${r.downtimeMs.toFixed(1)} ms, ${r.rounds} rounds, ${r.bytes} bytes sent (${how}), throttle up to ${r.maxThrottle}%`,
        });
      } catch (e) {
        link?.close();
        this.link = null;
        this.control = null;
        const cancelled = e instanceof VirtusError && e.code === 'MIGRATE_CANCELLED';
        // The guest ended its machine meanwhile (the link then closed under the migration): that is why.
        const exit = board.machine.exit;
        const message = exit && !cancelled ? guestEnded(exit.reason) : e instanceof Error ? e.message : String(e);
        this.info = { ...this.info, status: cancelled ? 'cancelled' : 'failed', throttle: 0, ...(cancelled ? {} : { error: message }) };
        // Post-copy broke: the target ran the machine; this copy is behind it and must not run.
        // It stops first, so the failure below is the one line that says why.
        if (e instanceof VirtusError && e.code === 'MIGRATE_LOST' && this.vm.state() !== 'stopped') this.vm.finish({ reason: 'error', code: 1 });
        this.vm.emit(this.info);
        if (this.vm.state() === 'stopped') return;
        // The machine runs on here; if its guest ended it meanwhile, the loop ends it for that reason.
        const ended = board.machine.exit !== null;
        this.vm.setState(wasRunning || ended ? 'running' : 'paused');
        if (wasRunning || ended) this.vm.run();
      }
    })();
  }
}
