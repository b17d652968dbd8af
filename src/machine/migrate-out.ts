/**
 * The source's side of a migration, as data: the link, what the host does for it, the
 * requests a user makes meanwhile, the progress reported, and Outgoing, which sends records
 * while counting, pacing (max-bandwidth) and checking for a cancel. migrate.ts drives pre-copy
 * with it, migrate-postcopy.ts post-copy.
 */
import { PAGE_SIZE } from '../cpu/layout.ts';
import { VirtusError } from '../util/errors.ts';
import type { PageChannel } from './migrate-postcopy.ts';
import { defaultSettings, type MigrationSettings } from './migrate-params.ts';
import { migrationRam, ramCounters, XbzrleCache, type RamCounters } from './migrate-ram.ts';
import type { VirtBoard } from './virt.ts';

export const STREAM_MAGIC = 'VIRTMIGR';

/** The source's side of a link. */
export interface OutgoingLink {
  /** Sends bytes; resolves once the link can take more (backpressure). Rejects when the link broke. */
  send(bytes: Uint8Array): Promise<void>;
  /** The target's answer line (rejects when the link closes first). */
  answer(): Promise<string>;
  /**
   * Post-copy: opens the page channel at `where` (from the target's answer, relative to this
   * link's address) and proves the source with `token`. Absent: this host has no post-copy.
   */
  pages?(where: string, token: string): Promise<PageChannel>;
}

/** What migrateOut needs from the machine's owner. */
export interface MigrationHost {
  /** Lets the guest run for a while (the machine runs on the host's event loop). */
  yield(): Promise<void>;
  /** Waits `ms` milliseconds, the guest running meanwhile (the bandwidth limit). */
  sleep(ms: number): Promise<void>;
  /** Stops the guest at a slice boundary; resolves once it is stopped. */
  pause(): Promise<void>;
  /** Lets a paused guest run again (the migration failed or was cancelled). */
  resume(): void;
  /** Idles the guest's harts `percent` % of the time (0: full speed). */
  throttle(percent: number): void;
  /**
   * The guest is stopped and its disks flushed: lets go of their image locks, so the target
   * can open them (shared storage on one host). Called before the last records go out.
   */
  handover?(): void;
  /** Takes the disks back after a handover, when the migration failed. */
  takeBack?(): void;
}

/** Requests made while a migration runs (QMP migrate_cancel, migrate-start-postcopy). */
export interface MigrationControl {
  cancel: boolean;
  postcopy: boolean;
}

export interface MigrationOptions {
  /** The settings, read at every round (parameters may change while it runs, as QEMU's). */
  settings?: () => MigrationSettings;
  /** Stop-and-copy once a round's dirty set has at most this many pages, whatever the estimate. */
  maxDirtyPages?: number;
  /** Stop-and-copy after this many rounds, converged or not. */
  maxRounds?: number;
  control?: MigrationControl;
  /** Told as the migration progresses (for `info migrate`, query-migrate, events). */
  progress?: (p: MigrationProgress) => void;
}

/** QEMU's MigrationStatus values a source goes through. */
export type MigrationPhase = 'setup' | 'active' | 'device' | 'postcopy-active' | 'completed' | 'failed' | 'cancelling' | 'cancelled';

/** Where a migration stands (query-migrate's numbers). */
export interface MigrationProgress {
  status: MigrationPhase;
  /** Dirty-log syncs so far (QEMU's dirty-sync-count; the first full copy is round 1). */
  rounds: number;
  /** Bytes sent, and in which phase. */
  bytes: number;
  precopyBytes: number;
  downtimeBytes: number;
  postcopyBytes: number;
  /** Pages in the last dirty set taken (still to send). */
  dirtyPages: number;
  /** Pages the guest dirtied per second in the last round. */
  dirtyRate: number;
  /** Bytes per second the link took in the last round. */
  bandwidth: number;
  /** What the last copy would take now, at that bandwidth (ms). */
  expectedDowntimeMs: number;
  /** The guest's throttle (percent of its time idled). */
  throttle: number;
  setupMs: number;
  totalMs: number;
  downtimeMs?: number;
  ram: RamCounters;
  /** Pages the target asked for during post-copy. */
  postcopyRequests: number;
}

/** A finished migration. */
export interface MigrationReport {
  totalMs: number;
  /** From the guest's stop to the target's answer (post-copy: to the target running). */
  downtimeMs: number;
  rounds: number;
  bytes: number;
  /** Pages sent while the guest was stopped. */
  finalPages: number;
  /** The highest throttle reached. */
  maxThrottle: number;
  postcopy: boolean;
  postcopyRequests: number;
}

/** Clears the dirty log and makes every later store log its page again (with every hart at an instruction boundary). */
export function takeDirty(board: VirtBoard): Uint8Array {
  const m = board.machine;
  // Harts in threads are stopped for it: a store between the two steps would go unlogged.
  return m.atBoundary(() => {
    const bits = m.ram.takeDirty();
    for (const h of m.harts) h.flushTlb();
    return bits;
  });
}

export function orInto(a: Uint8Array, b: Uint8Array): Uint8Array {
  for (let i = 0; i < a.length; i++) a[i] = a[i]! | b[i]!;
  return a;
}

/** The state a source carries from round to round; its send() counts, paces and checks for a cancel. */
export class Outgoing {
  readonly start = performance.now();
  readonly p: MigrationProgress;
  paused = false;
  /** The disks were handed to the target (taken back if the migration fails before it runs). */
  handedOver = false;
  private sliceStart = performance.now();
  private periodStart = performance.now();
  private periodBytes = 0;
  private reported = performance.now();
  private readonly cache: XbzrleCache | null;

  constructor(
    readonly board: VirtBoard,
    readonly link: OutgoingLink,
    readonly host: MigrationHost,
    readonly o: MigrationOptions,
  ) {
    const s = this.settings();
    this.cache = s.capabilities.xbzrle ? new XbzrleCache(s.parameters['xbzrle-cache-size']) : null;
    this.p = {
      status: 'setup', rounds: 0, bytes: 0, precopyBytes: 0, downtimeBytes: 0, postcopyBytes: 0, dirtyPages: 0, dirtyRate: 0,
      bandwidth: 0, expectedDowntimeMs: 0, throttle: 0, setupMs: 0, totalMs: 0, ram: ramCounters(), postcopyRequests: 0,
    };
  }

  settings(): MigrationSettings {
    return this.o.settings?.() ?? defaultSettings();
  }

  /**
   * The start of the downtime: stops the guest at a slice boundary, flushes its disks and hands
   * them to the target. Returns when the guest stopped (performance.now()).
   */
  async stopGuest(): Promise<number> {
    await this.host.pause();
    this.paused = true;
    this.host.throttle(0);
    const down = performance.now();
    this.checkCancel();
    for (const { device } of this.board.virtioDevices()) device.storage?.flush();
    this.host.handover?.();
    this.handedOver = true;
    return down;
  }

  report(status?: MigrationPhase): void {
    if (status) this.p.status = status;
    this.p.totalMs = performance.now() - this.start;
    this.o.progress?.({ ...this.p, ram: { ...this.p.ram } });
  }

  /** Fails with MIGRATE_CANCELLED once a cancel was asked for (before the point of no return). */
  checkCancel(): void {
    if (this.o.control?.cancel) throw new VirtusError('MIGRATE_CANCELLED', 'the migration was cancelled');
  }

  /** Sends bytes, counting them to the phase; in pre-copy, keeps to max-bandwidth and gives the guest its turns. */
  async send(b: Uint8Array, phase: 'precopy' | 'downtime' | 'postcopy' = 'precopy'): Promise<void> {
    this.p.bytes += b.length;
    if (phase === 'precopy') this.p.precopyBytes += b.length;
    else if (phase === 'downtime') this.p.downtimeBytes += b.length;
    else this.p.postcopyBytes += b.length;
    await this.link.send(b);
    if (this.paused) return;
    this.checkCancel();
    // The figures as they stand, as QEMU's query-migrate has them: a round of a large guest
    // takes seconds, and its end alone would leave them that stale.
    const now = performance.now();
    if (now - this.reported >= 100) {
      this.reported = now;
      this.report();
    }
    // QEMU's rate limit: a budget per 100 ms period (migration.c BUFFER_DELAY).
    const limit = this.settings().parameters['max-bandwidth'];
    if (now - this.periodStart >= 100) {
      this.periodStart = now;
      this.periodBytes = b.length;
    } else {
      this.periodBytes += b.length;
    }
    if (limit > 0 && this.periodBytes >= (limit * 100) / 1000) {
      // Until the bytes of the period are due at the limit: a record (up to 1 MiB) may be far
      // larger than a period's budget, and the rate must hold all the same.
      this.reported = now;
      this.report();
      await this.host.sleep(this.periodStart + (this.periodBytes * 1000) / limit - now);
      this.periodStart = performance.now();
      this.periodBytes = 0;
      this.sliceStart = performance.now();
    }
    // Give the guest its turn every few ms: pre-copy runs alongside it.
    if (performance.now() - this.sliceStart > 8) {
      await this.host.yield();
      this.sliceStart = performance.now();
    }
  }

  /** Sends the pages set in `bits`, clearing each bit as its record goes out. */
  async sendRam(bits: Uint8Array, phase: 'precopy' | 'downtime' | 'postcopy', stop?: () => boolean): Promise<number> {
    const s = this.settings();
    const limit = s.parameters['max-bandwidth'];
    // Under a limit, a record is at most a 100 ms period's budget: the figures and the pace stay even.
    const chunkPages = limit > 0 ? Math.floor(limit / 10 / PAGE_SIZE) : undefined;
    let pages = 0;
    const o = { compress: s.capabilities.compress, cache: this.cache, counters: this.p.ram, ...(chunkPages !== undefined ? { chunkPages } : {}) };
    for (const { record, first, count, list } of migrationRam(this.board.machine.ram, bits, o)) {
      await this.send(record, phase);
      if (list) for (const pg of list) bits[pg >>> 3] &= ~(1 << (pg & 7));
      else for (let pg = first; pg < first + count; pg++) bits[pg >>> 3] &= ~(1 << (pg & 7));
      pages += list ? list.length : count;
      if (stop?.()) break;
    }
    return pages;
  }
}

