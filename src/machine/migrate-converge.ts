/**
 * When pre-copy may stop the guest, and how hard auto-converge slows it (QEMU 7.2's
 * migration.c and ram.c: migration_iteration_run, migration_trigger_throttle,
 * mig_throttle_guest_down). After each round: the bandwidth is what the link took during the
 * round; the last copy is expected to take the pages left at that bandwidth, and the guest
 * stops once that fits the downtime limit. With auto-converge, a round whose newly dirtied
 * bytes exceed throttle-trigger-threshold % of what it sent counts as "dirty rate high"; the
 * second such round throttles the guest to cpu-throttle-initial %, and every second one after
 * raises it by cpu-throttle-increment (or, with cpu-throttle-tailslow, by what the ratio of
 * sent to dirtied bytes calls for, at most that), up to max-cpu-throttle.
 */
import { PAGE_SIZE } from '../cpu/layout.ts';
import type { MigrationSettings } from './migrate-params.ts';

/** One round as measured. */
export interface RoundMeasure {
  ms: number;
  /** Bytes sent during the round. */
  bytes: number;
  /** Pages dirty at its end (all still to send). */
  dirtyPages: number;
}

/** What a round tells. */
export interface Verdict {
  converged: boolean;
  dirtyPages: number;
  /** Pages dirtied per second during the round. */
  dirtyRate: number;
  /** Bytes per second sent during the round. */
  bandwidth: number;
  expectedDowntimeMs: number;
}

export class Converger {
  /** Percent of the guest's time idled now. */
  throttle = 0;
  maxThrottle = 0;
  private high = 0;

  round(s: MigrationSettings, r: RoundMeasure): Verdict {
    const ms = Math.max(r.ms, 0.001);
    const bandwidth = (r.bytes / ms) * 1000;
    const pending = r.dirtyPages * PAGE_SIZE;
    const expectedDowntimeMs = bandwidth > 0 ? (pending / bandwidth) * 1000 : Infinity;
    const p = s.parameters;
    const converged = expectedDowntimeMs <= p['downtime-limit'];
    if (!converged && s.capabilities['auto-converge']) {
      const threshold = (r.bytes * p['throttle-trigger-threshold']) / 100;
      if (pending > threshold && ++this.high >= 2) {
        this.high = 0;
        this.throttleDown(s, r.bytes, pending);
      }
    }
    return { converged, dirtyPages: r.dirtyPages, dirtyRate: (r.dirtyPages / ms) * 1000, bandwidth, expectedDowntimeMs };
  }

  private throttleDown(s: MigrationSettings, sent: number, dirtied: number): void {
    const p = s.parameters;
    const max = p['max-cpu-throttle'];
    if (this.throttle === 0) {
      this.throttle = Math.min(p['cpu-throttle-initial'], max);
    } else {
      let inc = p['cpu-throttle-increment'];
      if (p['cpu-throttle-tailslow']) {
        const cpuNow = 100 - this.throttle;
        const ideal = cpuNow * (sent / dirtied);
        inc = Math.max(1, Math.min(Math.round(cpuNow - ideal), inc));
      }
      this.throttle = Math.min(this.throttle + inc, max);
    }
    this.maxThrottle = Math.max(this.maxThrottle, this.throttle);
  }
}
