/**
 * Live migration, the target's side: reads the stream migrate.ts writes, builds the machine
 * its first configuration describes, applies RAM (whole pages, zero runs, deltas), opens the
 * devices once the source has stopped, restores the state and answers `OK`, or `ERR message`
 * for anything wrong (truncated, corrupt, incompatible), so the source runs on. A stream that
 * switched to post-copy (a Postcopy record: the pages still to come) ends with the machine
 * restored before all its RAM arrived; the host's channel brings the rest (migrate-postcopy.ts)
 * and the answer tells the source where that channel is.
 */
import { PAGE_SIZE } from '../cpu/layout.ts';
import { applyDeltas } from './migrate-ram.ts';
import { STREAM_MAGIC } from './migrate-out.ts';
import type { PageReceiver, PageSource } from './migrate-postcopy.ts';
import { applyRam, BootCollector, checkConfig, checkDisks, restoreBoard, type SnapshotConfig } from './snapshot.ts';
import { bad, checkFileHeader, FILE_HEADER, RecordParser, recordName, Rec, unpack, unpackJson } from './snapshot-format.ts';
import type { BootOptions, VirtBoard } from './virt.ts';

/** The target's side of a link. */
export interface IncomingLink {
  /** The stream's bytes as they arrive; ends when the source closes. */
  chunks: AsyncIterable<Uint8Array>;
  /** Sends the answer line. */
  answer(line: string): void;
  /** The address the target received on, as QEMU's SocketAddress (`{type: 'inet', host, port, ipv4}` or `{type: 'unix', path}`). */
  address?: Record<string, string | boolean>;
  /** Post-copy: a receiver of pages into `memory` (absent: this host cannot take a machine in post-copy). */
  pages?(memory: WebAssembly.Memory, ramSize: number): PageReceiver;
}

export interface IncomingHooks {
  /**
   * Builds the board the first configuration describes (without devices that open host
   * storage), or throws when this host cannot: an incompatible or unacceptable machine.
   */
  build(config: SnapshotConfig): Promise<VirtBoard> | VirtBoard;
  /**
   * Optional, after build: readies what `devices` will open without taking it (reads the
   * disks once, unlocked), so that less of the work inside the downtime is done cold.
   */
  prepare?(): void;
  /** Attaches the devices (opens the shared disks) once the source has stopped. */
  devices(board: VirtBoard, config: SnapshotConfig): Promise<void> | void;
  /** The stream failed: let go of what `devices` opened, before the source hears of it (it takes its disks back). */
  abandon?(): void;
  /**
   * Post-copy: opens the channel on which the pages set in `pending` will come (the source
   * proves itself with `token`); resolves with the line that tells the source where it is,
   * and the pages' source. Absent: this host cannot take a machine in post-copy.
   */
  postcopy?(board: VirtBoard, pending: Uint8Array, token: string): Promise<{ answer: string; pages: PageSource }>;
}

/** A machine received: restored, and (post-copy) still receiving pages. */
export interface Received {
  board: VirtBoard;
  config: SnapshotConfig;
  rounds: number;
  /** Post-copy: the pages still coming. */
  pages: PageSource | null;
}

/**
 * Receives a machine. Resolves with the board, restored and ready to run, after answering;
 * on anything wrong answers ERR and throws.
 */
export async function migrateIn(link: IncomingLink, hooks: IncomingHooks): Promise<Received> {
  const what = 'migration stream';
  const parser = new RecordParser(what);
  let headerSeen = false;
  let board: VirtBoard | null = null;
  let config: SnapshotConfig | null = null;
  let images: BootCollector | null = null;
  let boot: BootOptions | null = null;
  let rounds = 0;
  let stateDone = false;
  let pending: { bits: Uint8Array; token: string } | null = null;
  try {
    for await (const chunk of link.chunks) {
      parser.push(chunk);
      if (!headerSeen) {
        const h = parser.take(FILE_HEADER);
        if (!h) continue;
        checkFileHeader(h, STREAM_MAGIC, what);
        headerSeen = true;
      }
      for (let f = parser.next(); f; f = parser.next()) {
        const at = `${what}: record ${parser.count} (${recordName(f.type)})`;
        if (stateDone && f.type !== Rec.End) bad(`${at} follows the state: the stream is corrupt`);
        if (images && !images.complete && f.type !== Rec.Boot) bad(`${at} comes before the boot images are complete: the stream is corrupt`);
        if (pending && f.type !== Rec.Config && f.type !== Rec.State && f.type !== Rec.End) bad(`${at} follows the switch to post-copy: the stream is corrupt`);
        switch (f.type) {
          case Rec.Config: {
            const c = checkConfig(unpackJson(f, at), what);
            if (!board) {
              config = c;
              board = await hooks.build(c);
              hooks.prepare?.();
              if (c.boot) images = new BootCollector(c.boot, what);
            } else {
              if (JSON.stringify(c.machine) !== JSON.stringify(config!.machine) || JSON.stringify(c.boot) !== JSON.stringify(config!.boot)) {
                bad(`${at} changes the machine's configuration`);
              }
              config = c;
            }
            break;
          }
          case Rec.Boot:
            if (!images || images.complete) bad(`${at} is out of place: the stream is corrupt`);
            images.add(f, at);
            // Joined now, while the guest still runs on the source: tens of ms of downtime saved.
            if (images.complete) boot = images.options();
            break;
          case Rec.Ram:
          case Rec.Zero:
            if (!board) bad(`${at} comes before the configuration: the stream is corrupt`);
            applyRam(board.machine.ram, f, at);
            break;
          case Rec.Delta:
            if (!board) bad(`${at} comes before the configuration: the stream is corrupt`);
            applyDeltas(board.machine.ram, f, at);
            break;
          case Rec.Round:
            rounds = f.arg;
            break;
          case Rec.Postcopy: {
            if (!board) bad(`${at} comes before the configuration: the stream is corrupt`);
            if (!hooks.postcopy) bad('the target does not take machines in post-copy: start it with the migration capability postcopy-ram (QEMU asks for it on both sides)');
            const raw = unpack(f, at);
            const len = Math.ceil(board.machine.ram.size / PAGE_SIZE / 8);
            if (raw.length !== len + 32) bad(`${at} is corrupt: it holds ${raw.length} bytes, not a ${len}-byte page bitmap and a token`);
            const token = new TextDecoder('latin1').decode(raw.subarray(len));
            if (!/^[0-9a-f]{32}$/.test(token)) bad(`${at} is corrupt: its token is not 32 hex digits`);
            pending = { bits: raw.slice(0, len), token };
            // Every page still to come will have been written (a later snapshot or migration sends it).
            board.machine.ram.markWritten(pending.bits);
            break;
          }
          case Rec.State:
            if (!board || !config) bad(`${at} comes before the configuration: the stream is corrupt`);
            await hooks.devices(board, config);
            checkDisks(board, config);
            restoreBoard(board, unpackJson(f, at));
            board.lastBoot = images ? boot ?? images.options() : null;
            stateDone = true;
            break;
          case Rec.End: {
            if (!stateDone || !board || !config) bad(`${what} ends before the machine's state: the source gave up or the stream is corrupt`);
            if (parser.pending) bad(`${what} is corrupt: bytes follow its end record`);
            if (!pending) {
              link.answer('OK');
              return { board, config, rounds, pages: null };
            }
            const pc = await hooks.postcopy!(board, pending.bits, pending.token);
            link.answer(pc.answer);
            return { board, config, rounds, pages: pc.pages };
          }
          default:
            bad(`${at} has no place in a migration stream`);
        }
      }
    }
    bad(`${what} is truncated: the source closed it ${headerSeen ? `after ${parser.count} records` : 'inside its header'}${parser.pending ? ', inside a record' : ''}`);
  } catch (e) {
    hooks.abandon?.();
    link.answer(`ERR ${e instanceof Error ? e.message : String(e)}`);
    throw e;
  }
}
