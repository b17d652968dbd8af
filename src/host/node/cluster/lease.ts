/**
 * A daemon's lease, and the local deadline that fences it.
 *
 * etcd expires a lease `ttl` seconds after the last keepalive it processed; a keepalive is
 * processed after it was sent, so the lease cannot expire before (send time of the last
 * keepalive that was answered) + ttl. The daemon keeps that send time (on the monotonic clock)
 * and counts its own deadline from it: ttl minus a margin (FENCE_MARGIN_MS, at least 30% of
 * the ttl). When the deadline passes without a newer answered keepalive — etcd unreachable,
 * the daemon cut off, or etcd says the lease is gone — `lost` is called at once and the daemon
 * stops its machines then, before etcd can expire the lease, before the scheduler can see the
 * node gone and before any other node can start its machines. The margin is the time the
 * stop may take (a machine's quit has 1 s, see DaemonMachine.fence).
 *
 * Keepalives go every ttl/6, each with a deadline of 800 ms, and a failed one is retried after
 * 100 ms, so a lost etcd member or a leader election (under a second and a half) costs no
 * fence with a 5 s ttl.
 */
import type { Etcd3, Lease } from 'etcd3';
import { performance } from 'node:perf_hooks';

/** Time the fence may take, at least (ms). */
export const FENCE_MARGIN_MS = 1500;
const KEEPALIVE_DEADLINE_MS = 800;

/** The margin of a ttl (ms). */
export function fenceMargin(ttlSeconds: number): number {
  return Math.max(FENCE_MARGIN_MS, ttlSeconds * 1000 * 0.3);
}

/** One lease of one daemon (see the file's comment). A lost lease is never renewed: acquire a new one. */
export class NodeLease {
  private lease: Lease | null = null;
  private id: string | null = null;
  /** performance.now() when the last answered keepalive (or the grant) was sent. */
  private renewedAt = -Infinity;
  private lost = false;
  private timer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;

  constructor(
    private readonly client: Etcd3,
    private readonly o: {
      ttl: number;
      lost(reason: string): void;
      /** The lease was granted or renewed: it surely holds until `deadline` and may expire from `expiry` (performance.now() ms). */
      renewed?(deadline: number, expiry: number): void;
    },
  ) {}

  /** The lease's id (once granted). */
  get leaseId(): string {
    if (this.id === null) throw new Error('the lease is not granted yet');
    return this.id;
  }

  /** The local deadline, as performance.now() time. */
  get deadline(): number {
    return this.renewedAt + this.o.ttl * 1000 - fenceMargin(this.o.ttl);
  }

  /** True while the lease is surely held (its deadline is ahead). */
  get valid(): boolean {
    return !this.lost && this.id !== null && performance.now() < this.deadline;
  }

  /** Ms since the last answered keepalive was sent. */
  get age(): number {
    return performance.now() - this.renewedAt;
  }

  /** Grants the lease and starts keeping it. */
  async acquire(): Promise<string> {
    const sent = performance.now();
    const lease = this.client.lease(this.o.ttl, { autoKeepAlive: false });
    this.lease = lease;
    lease.on('lost', (e: Error) => this.lose(`etcd says the lease is gone (${e.message})`));
    this.id = await lease.grant();
    this.renewedAt = sent;
    this.o.renewed?.(this.deadline, sent + this.o.ttl * 1000);
    this.schedule(this.o.ttl * 1000 / 6);
    this.watchdog = setInterval(() => {
      if (!this.lost && performance.now() >= this.deadline) this.lose(`no keepalive answered for ${Math.round(this.age)} ms (ttl ${this.o.ttl} s)`);
    }, 50);
    return this.id;
  }

  private schedule(ms: number): void {
    if (this.lost) return;
    this.timer = setTimeout(() => void this.renew(), ms);
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (!lease || this.lost) return;
    const sent = performance.now();
    try {
      await Promise.race([
        lease.keepaliveOnce({ deadline: Date.now() + KEEPALIVE_DEADLINE_MS }),
        new Promise((_, reject) => setTimeout(() => reject(new Error('keepalive timed out')), KEEPALIVE_DEADLINE_MS + 100).unref()),
      ]);
      if (!this.lost && sent > this.renewedAt) {
        this.renewedAt = sent;
        this.o.renewed?.(this.deadline, sent + this.o.ttl * 1000);
      }
      this.schedule(this.o.ttl * 1000 / 6);
    } catch {
      this.schedule(100);
    }
  }

  private lose(reason: string): void {
    if (this.lost) return;
    this.lost = true;
    this.stopTimers();
    this.o.lost(reason);
  }

  private stopTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.timer = null;
    this.watchdog = null;
  }

  /** Stops keeping the lease without a word to etcd (it expires by itself); `lost` is not called. */
  abandon(): void {
    this.lost = true;
    this.stopTimers();
  }

  /** Gives the lease back (the node's keys go at once). */
  async release(): Promise<void> {
    this.lost = true;
    this.stopTimers();
    await this.lease?.revoke().catch(() => {});
  }
}
