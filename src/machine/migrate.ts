/**
 * Live migration, the source's side, over an abstract link (the host supplies a TCP socket or
 * anything else that carries bytes one way and a line of text back). The stream is the
 * snapshot's records (snapshot-format.ts) under its own magic:
 *
 *   header, config, boot images, RAM of every page ever written (the guest runs),
 *   { round, RAM of the pages dirtied during the previous round }   (the guest runs)
 *   RAM dirtied since (the guest is stopped), config, state, end
 *
 * and the target answers one line: `OK`, or `ERR <message>`. migrate-start-postcopy switches a
 * running pre-copy to post-copy (migrate-postcopy.ts) after the record being sent.
 * Rounds go on until the pages left can be sent within the downtime limit, at the bandwidth
 * the rounds measured (QEMU's rule: pending bytes ≤ bandwidth × downtime-limit); only then
 * does the guest stop, so the downtime is the last RAM, the device state and the answer. With
 * auto-converge, a guest that dirties memory faster than it can be sent is slowed down
 * (migrate-converge.ts). The source gives the machine up only on `OK`; any failure or a
 * cancel lets it run on, its dirty log complete again.
 *
 * Dirty tracking is the RAM dirty log (ram.ts takeDirty): clearing it and flushing the harts'
 * TLBs makes every later store (interpreter, translated code, device DMA) log its page again.
 */
import { VirtusError } from '../util/errors.ts';
import { Converger } from './migrate-converge.ts';
import { Outgoing, orInto, STREAM_MAGIC, takeDirty, type MigrationHost, type MigrationOptions, type MigrationReport, type OutgoingLink } from './migrate-out.ts';
import { postcopyOut } from './migrate-postcopy.ts';
import { bootRecords, countPages, describeBoard, saveBoard } from './snapshot.ts';
import { encodeRecord, fileHeader, jsonRecord, Rec } from './snapshot-format.ts';
import type { VirtBoard } from './virt.ts';

export { migrateIn, type IncomingHooks, type IncomingLink } from './migrate-in.ts';
export * from './migrate-out.ts';

/**
 * Saves the machine's state once and throws it away, while the guest still runs: the save
 * inside the downtime then runs code this thread has run before (in a drain of 8 machines on
 * a busy host, that save took 8-57 ms, cold in the machine's thread). Only reads: harts in
 * threads may be running, and what it reads of them is discarded. Anything it throws, the
 * real save throws again where it is handled.
 */
function rehearseStateSave(board: VirtBoard): void {
  try {
    jsonRecord(Rec.State, saveBoard(board));
  } catch {
    // the save inside the downtime reports it
  }
}

/**
 * Migrates `board` over `link` (`machine` is the VMM's description of it); resolves once the
 * target has taken over (the source must then stop for good).
 */
export async function migrateOut(board: VirtBoard, machine: unknown, link: OutgoingLink, host: MigrationHost, o: MigrationOptions = {}): Promise<MigrationReport> {
  const out = new Outgoing(board, link, host, o);
  const { p } = out;
  const ram = board.machine.ram;
  const converge = new Converger();
  try {
    out.report('setup');
    await out.send(fileHeader(STREAM_MAGIC));
    await out.send(jsonRecord(Rec.Config, describeBoard(board, machine)));
    if (board.lastBoot) for (const rec of bootRecords(board.lastBoot)) await out.send(rec);
    rehearseStateSave(board);
    p.setupMs = performance.now() - out.start;
    // Round 1: every page ever written. What the guest writes meanwhile is logged for the next round.
    takeDirty(board);
    let dirty = ram.written();
    p.dirtyPages = countPages(dirty);
    // The round under way counts from the start, as QEMU's dirty-sync-count does (its first
    // sync is the migration's start).
    p.rounds = 1;
    out.report('active');
    const postcopyAsked = (): boolean => o.control?.postcopy === true && out.settings().capabilities['postcopy-ram'];
    for (;; p.rounds++) {
      const t0 = performance.now();
      const b0 = p.bytes;
      await out.send(encodeRecord(Rec.Round, p.rounds, new Uint8Array(0)));
      await out.sendRam(dirty, 'precopy', postcopyAsked);
      if (postcopyAsked()) {
        return await postcopyOut(out, orInto(dirty, takeDirty(board)), machine, converge.maxThrottle);
      }
      const left = takeDirty(board);
      dirty = orInto(dirty, left);
      const s = out.settings();
      const verdict = converge.round(s, { ms: performance.now() - t0, bytes: p.bytes - b0, dirtyPages: countPages(dirty) });
      Object.assign(p, { dirtyPages: verdict.dirtyPages, dirtyRate: verdict.dirtyRate, bandwidth: verdict.bandwidth, expectedDowntimeMs: verdict.expectedDowntimeMs, throttle: converge.throttle });
      host.throttle(converge.throttle);
      out.report();
      if (verdict.converged || (o.maxDirtyPages !== undefined && verdict.dirtyPages <= o.maxDirtyPages) || (o.maxRounds !== undefined && p.rounds >= o.maxRounds)) break;
    }
    // Stop and copy: what was dirtied during the last round and since, then the devices.
    out.report('device');
    const down = await out.stopGuest();
    dirty = orInto(dirty, takeDirty(board));
    const finalPages = countPages(dirty);
    await out.sendRam(dirty, 'downtime');
    // The configuration again: the disks' identities as they are now that the guest is stopped.
    await out.send(jsonRecord(Rec.Config, describeBoard(board, machine)), 'downtime');
    await out.send(jsonRecord(Rec.State, saveBoard(board)), 'downtime');
    out.checkCancel();
    await out.send(encodeRecord(Rec.End, 0, new Uint8Array(0)), 'downtime');
    const answer = await link.answer();
    if (answer !== 'OK') throw new VirtusError('MIGRATE_REFUSED', `the target refused the machine: ${answer.replace(/^ERR /, '')}`);
    const end = performance.now();
    p.downtimeMs = end - down;
    p.dirtyPages = 0;
    out.report('completed');
    return {
      totalMs: end - out.start, downtimeMs: end - down, rounds: p.rounds, bytes: p.bytes, finalPages, maxThrottle: converge.maxThrottle, postcopy: false, postcopyRequests: 0,
    };
  } catch (e) {
    // Post-copy broke after the target ran the machine: this copy is behind it and stays stopped.
    if (e instanceof VirtusError && e.code === 'MIGRATE_LOST') {
      out.report('failed');
      throw e;
    }
    // The source keeps the machine: its dirty log is already complete again (every page stays logged).
    host.throttle(0);
    if (out.handedOver) host.takeBack?.();
    if (out.paused) host.resume();
    out.report(e instanceof VirtusError && e.code === 'MIGRATE_CANCELLED' ? 'cancelled' : 'failed');
    throw e;
  }
}

