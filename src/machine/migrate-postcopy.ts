/**
 * Post-copy (QEMU's postcopy-ram, migrate-start-postcopy): the switch from a running pre-copy
 * to a target that runs before all its RAM has arrived.
 *
 * Source (postcopyOut): stops the guest, sends a Postcopy record (the bitmap of pages the
 * target lacks or holds stale, and a token), the configuration, the device state and the end
 * record. The target restores the machine and answers `POSTCOPY <channel>`: from then on it
 * runs, and the source never runs again. The source opens the page channel (the host's: a
 * second connection to the target, proved by the token) and sends every page of the bitmap
 * once, in address order, each page the target asks for on the channel's return path going
 * ahead of the rest; the target confirms once all have arrived.
 *
 * Target: the host's receiver writes arriving pages into RAM and clears their bits
 * (PageSource). Until then a missing page is never touched: the machine's gate
 * (Machine.setGate, gateOf here) is asked before any access outside the TLB — every slow path
 * of both engines (mmu.ts translate, so a missing page never gets a TLB entry of any kind), the
 * page-table walker, atomics, and device DMA (GuestRam, the virtqueues) — and it blocks until
 * the page is in, asking the source for it first. Blocking (the host's receiver runs on its own
 * thread) rather than ending the slice lets a device request that meets a missing page wait in
 * the middle, which no device could undo and retry.
 *
 * A link that breaks during post-copy loses the machine (QEMU's trade-off): the target cannot
 * run on without its pages, and the source's copy is behind the target's. Both end with one
 * line; see vmm/migration.ts for the source's side.
 */
import { PAGE_SIZE, RAM_BASE } from '../cpu/layout.ts';
import type { PageGate } from '../cpu/hart.ts';
import { VirtusError } from '../util/errors.ts';
import { countPages, describeBoard, saveBoard } from './snapshot.ts';
import { encodeRecord, jsonRecord, Rec } from './snapshot-format.ts';
import { zeroPage } from './snapshot-ram.ts';
import { takeDirty, orInto, type MigrationReport, type Outgoing } from './migrate-out.ts';

/** The pages still coming to a target in post-copy (the host's channel to the source). */
export interface PageSource {
  /** The pages not yet here, one bit per page; bits only ever clear (read with Atomics: another thread clears them). */
  readonly missing: Uint8Array;
  /** Blocks until `page` has arrived, asking the source for it first; throws a VirtusError when it never will. */
  wait(page: number): void;
  /** Resolves once every page has arrived; rejects when the source broke off. */
  readonly done: Promise<void>;
  /** Pages asked for so far. */
  requests(): number;
  /** Pages still missing. */
  remaining(): number;
  /** Lets go of the channel (the machine ended). */
  close(): void;
}

/** A target host's receiver of post-copy pages, made when the board is built (so it is ready when the switch comes). */
export interface PageReceiver {
  /**
   * Opens the channel on which the pages set in `pending` will come (the source proves itself
   * with `token`); resolves with the answer that tells the source where it is, and the pages' source.
   */
  open(pending: Uint8Array, token: string): Promise<{ answer: string; pages: PageSource }>;
  /** Lets go of the receiver (the stream failed, or ended without post-copy). */
  close(): void;
}

/** The gate a target's machine asks before it touches RAM (Machine.setGate). */
export function gateOf(src: PageSource, ramSize: number): PageGate {
  const bits = src.missing;
  return {
    need(pa, len) {
      // Devices and anything else outside RAM have nothing to wait for.
      const end = Math.min(pa + len, RAM_BASE + ramSize);
      if (pa < RAM_BASE || pa >= end) return;
      for (let p = (pa - RAM_BASE) >>> 12, last = (end - 1 - RAM_BASE) >>> 12; p <= last; p++) {
        if (Atomics.load(bits, p >>> 3) & (1 << (p & 7))) src.wait(p);
      }
    },
  };
}

/** The source's end of the page channel (the host opens it where the target's answer says). */
export interface PageChannel {
  /** Sends bytes; resolves once the channel can take more. Rejects when it broke. */
  send(bytes: Uint8Array): Promise<void>;
  /** Pages the target asked for since the last call, in order. */
  asked(): number[];
  /** Resolves once the target has asked for a page not yet taken with asked() (or the channel broke). */
  request(): Promise<void>;
  /** Resolves when the target confirms every page arrived; rejects when the channel closed first. */
  confirmed(): Promise<void>;
  close(): void;
}

/** The channel's return path: a page number (u32, little-endian) per request, then this once every page is in. */
export const PAGES_CONFIRMED = 0xffff_ffff;

/** The answer of a target that runs the machine in post-copy: `POSTCOPY <where its page channel listens>`. */
export const POSTCOPY_ANSWER = 'POSTCOPY ';

/** Pages per background record: small, so that a page asked for waits little behind them. */
const CHUNK = 16;

/** Random hex digits for the token that proves the source on the page channel. */
function token(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * Switches `out` to post-copy, `pending` the pages not yet sent (or sent and dirtied since).
 * Resolves once the target has every page; before the target runs, a failure leaves the
 * source's guest to run on (the caller resumes it); after, it is MIGRATE_LOST.
 */
export async function postcopyOut(out: Outgoing, pending: Uint8Array, machine: unknown, maxThrottle: number): Promise<MigrationReport> {
  const { board, link, p } = out;
  if (!link.pages) throw new VirtusError('NO_POSTCOPY', 'this host cannot migrate a machine in post-copy');
  // QEMU goes from active straight to postcopy-active: the device state goes out meanwhile.
  const down = await out.stopGuest();
  orInto(pending, takeDirty(board));
  const finalPages = countPages(pending);
  const proof = token();
  const rec = new Uint8Array(pending.length + 32);
  rec.set(pending);
  rec.set(new TextEncoder().encode(proof), pending.length);
  await out.send(encodeRecord(Rec.Postcopy, 0, rec), 'downtime');
  await out.send(jsonRecord(Rec.Config, describeBoard(board, machine)), 'downtime');
  await out.send(jsonRecord(Rec.State, saveBoard(board)), 'downtime');
  out.checkCancel();
  await out.send(encodeRecord(Rec.End, 0, new Uint8Array(0)), 'downtime');
  const answer = await link.answer();
  if (!answer.startsWith(POSTCOPY_ANSWER)) throw new VirtusError('MIGRATE_REFUSED', `the target refused the machine: ${answer.replace(/^ERR /, '')}`);
  // The point of no return: the target runs the machine.
  p.downtimeMs = performance.now() - down;
  p.dirtyPages = finalPages;
  out.report('postcopy-active');
  try {
    const ch = await link.pages(answer.slice(POSTCOPY_ANSWER.length), proof);
    try {
      await servePages(out, ch, pending);
      await ch.confirmed();
      // Requests for pages already sent, made before the target had them all.
      p.postcopyRequests += ch.asked().length;
    } finally {
      ch.close();
    }
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new VirtusError('MIGRATE_LOST', `the page channel broke (${why}); the machine ran on the target, which cannot get the rest of its memory: it is lost on both sides`);
  }
  const end = performance.now();
  p.dirtyPages = 0;
  out.report('completed');
  return {
    totalMs: end - out.start, downtimeMs: p.downtimeMs, rounds: p.rounds, bytes: p.bytes, finalPages, maxThrottle, postcopy: true, postcopyRequests: p.postcopyRequests,
  };
}

/** Sends every page set in `pending` once: pages the target asks for first, the rest in order. */
async function servePages(out: Outgoing, ch: PageChannel, pending: Uint8Array): Promise<void> {
  const { p } = out;
  const ram = out.board.machine.ram;
  const pages = ram.size / PAGE_SIZE;
  const words = new Int32Array(ram.bytes.buffer, ram.bytes.byteOffset, ram.size / 4);
  let periodStart = performance.now();
  let periodBytes = 0;
  const send = async (b: Uint8Array, background: boolean): Promise<void> => {
    p.bytes += b.length;
    p.postcopyBytes += b.length;
    if (background) periodBytes += b.length;
    await ch.send(b);
  };
  /** How long the background stream must wait to keep to max-postcopy-bandwidth (QEMU's budget per 100 ms). */
  const budgetWait = (): number => {
    const limit = out.settings().parameters['max-postcopy-bandwidth'];
    const now = performance.now();
    if (now - periodStart >= 100) {
      periodStart = now;
      periodBytes = 0;
      return 0;
    }
    return limit > 0 && periodBytes >= (limit * 100) / 1000 ? periodStart + 100 - now : 0;
  };
  const take = (pg: number): boolean => {
    if (pg >= pages || !(pending[pg >>> 3]! & (1 << (pg & 7)))) return false;
    pending[pg >>> 3]! &= ~(1 << (pg & 7));
    return true;
  };
  /** Sends pages [first, first + n) (all taken from pending): zero pages as counts. */
  const sendRun = async (first: number, n: number, background: boolean): Promise<void> => {
    for (let pg = first; pg < first + n; ) {
      const z = zeroPage(words, pg);
      let k = 1;
      while (pg + k < first + n && zeroPage(words, pg + k) === z) k++;
      if (z) {
        p.ram.duplicate += k;
        await send(encodeRecord(Rec.Zero, pg, new Uint8Array(new Uint32Array([k]).buffer), false), background);
      } else {
        p.ram.normal += k;
        await send(encodeRecord(Rec.Ram, pg, ram.bytes.subarray(pg * PAGE_SIZE, (pg + k) * PAGE_SIZE), false), background);
      }
      pg += k;
    }
  };
  let left = countPages(pending);
  let cursor = 0;
  let reported = performance.now();
  while (left > 0) {
    let asked = false;
    for (const pg of ch.asked()) {
      // Every request counts (QEMU's postcopy-requests), also for a page already on its way.
      p.postcopyRequests++;
      if (!take(pg)) continue;
      left--;
      asked = true;
      await sendRun(pg, 1, false);
    }
    if (asked) continue;
    // A page asked for goes at once, even while the background stream waits for its budget.
    const ms = budgetWait();
    if (ms > 0) {
      await Promise.race([out.host.sleep(ms), ch.request()]);
      continue;
    }
    // The next run of pending pages, at most CHUNK long.
    while (cursor < pages && !(pending[cursor >>> 3]! & (1 << (cursor & 7)))) cursor++;
    let n = 0;
    while (cursor + n < pages && n < CHUNK && take(cursor + n)) n++;
    if (n === 0) break;
    left -= n;
    await sendRun(cursor, n, true);
    cursor += n;
    p.dirtyPages = left;
    if (performance.now() - reported > 100) {
      reported = performance.now();
      out.report();
    }
  }
  p.dirtyPages = 0;
  await send(encodeRecord(Rec.End, 0, new Uint8Array(0)), false);
}
