/**
 * Live migration over an abstract link (the host supplies a TCP socket or anything else that
 * carries bytes one way and a line of text back). The stream is the snapshot's records
 * (snapshot-format.ts) under its own magic:
 *
 *   header, config, boot images, RAM of every page ever written (the guest runs),
 *   { round, RAM of the pages dirtied during the previous round }   (the guest runs)
 *   RAM dirtied since (the guest is stopped), state, end
 *
 * and the target answers one line: `OK`, or `ERR <message>`. Pre-copy rounds go on until a
 * round's dirty set is small enough or a number of rounds is reached; only then does the
 * guest stop, so the downtime is the last round, the device state and the target's answer.
 * The source gives the machine up only on `OK`; any failure lets it run on.
 *
 * Dirty tracking is the RAM dirty log (ram.ts takeDirty): clearing it and flushing the harts'
 * TLBs makes every later store (interpreter, translated code, device DMA) log its page again.
 */
import { VirtusError } from '../util/errors.ts';
import {
  applyRam, BootCollector, bootRecords, countPages, describeBoard, checkConfig, checkDisks, ramRecords, restoreBoard, saveBoard,
  type SnapshotConfig,
} from './snapshot.ts';
import {
  bad, checkFileHeader, encodeRecord, FILE_HEADER, fileHeader, jsonRecord, Rec, RecordParser, recordName, unpackJson,
} from './snapshot-format.ts';
import type { VirtBoard } from './virt.ts';

export const STREAM_MAGIC = 'VIRTMIGR';

/** The source's side of a link. */
export interface OutgoingLink {
  /** Sends bytes; resolves once the link can take more (backpressure). Rejects when the link broke. */
  send(bytes: Uint8Array): Promise<void>;
  /** The target's answer line (rejects when the link closes first). */
  answer(): Promise<string>;
}

/** What migrateOut needs from the machine's owner. */
export interface MigrationHost {
  /** Lets the guest run for a while (the machine runs on the host's event loop). */
  yield(): Promise<void>;
  /** Stops the guest at a slice boundary; resolves once it is stopped. */
  pause(): Promise<void>;
  /** Lets a paused guest run again (the migration failed). */
  resume(): void;
  /**
   * The guest is stopped and its disks flushed: lets go of their image locks, so the target
   * can open them (shared storage on one host). Called before the last records go out.
   */
  handover?(): void;
  /** Takes the disks back after a handover, when the migration failed. */
  takeBack?(): void;
}

export interface MigrationOptions {
  /** Stop-and-copy once a round's dirty set has at most this many pages (default 512: 2 MiB). */
  maxDirtyPages?: number;
  /** Stop-and-copy after this many rounds after the first full copy, converged or not (default 30). */
  maxRounds?: number;
  /** Told as the migration progresses (for `info migrate`). */
  progress?: (p: MigrationProgress) => void;
}

export interface MigrationProgress {
  status: 'active' | 'stop-and-copy' | 'completed' | 'failed';
  /** Rounds of pre-copy done (the first full copy is round 1). */
  rounds: number;
  bytes: number;
  /** Pages in the last dirty set taken. */
  dirtyPages: number;
}

/** A finished migration. */
export interface MigrationReport {
  totalMs: number;
  /** From the guest's stop to the target's answer. */
  downtimeMs: number;
  rounds: number;
  bytes: number;
  /** Pages sent in the stop-and-copy phase. */
  finalPages: number;
}

/** Clears the dirty log and makes every later store log its page again. */
function takeDirty(board: VirtBoard): Uint8Array {
  const bits = board.machine.ram.takeDirty();
  for (const h of board.machine.harts) h.flushTlb();
  return bits;
}

function or(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = a.slice();
  for (let i = 0; i < o.length; i++) o[i] = o[i]! | b[i]!;
  return o;
}

/**
 * Migrates `board` over `link` (`machine` is the VMM's description of it); resolves once the
 * target has taken over (the source must then stop for good).
 */
export async function migrateOut(board: VirtBoard, machine: unknown, link: OutgoingLink, host: MigrationHost, o: MigrationOptions = {}): Promise<MigrationReport> {
  const maxDirty = o.maxDirtyPages ?? 512;
  const maxRounds = o.maxRounds ?? 30;
  const start = performance.now();
  const p: MigrationProgress = { status: 'active', rounds: 0, bytes: 0, dirtyPages: 0 };
  const ram = board.machine.ram;
  let paused = false;
  let handedOver = false;
  let sliceStart = performance.now();
  const send = async (b: Uint8Array): Promise<void> => {
    p.bytes += b.length;
    await link.send(b);
    // Give the guest its turn every few ms: pre-copy runs alongside it.
    if (!paused && performance.now() - sliceStart > 8) {
      await host.yield();
      sliceStart = performance.now();
    }
  };
  try {
    await send(fileHeader(STREAM_MAGIC));
    await send(jsonRecord(Rec.Config, describeBoard(board, machine)));
    if (board.lastBoot) for (const rec of bootRecords(board.lastBoot)) await send(rec);
    // Round 1: every page ever written. What the guest writes meanwhile is logged for the next round.
    takeDirty(board);
    let dirty = ram.written();
    for (;;) {
      p.rounds++;
      p.dirtyPages = countPages(dirty);
      o.progress?.({ ...p });
      await send(encodeRecord(Rec.Round, p.rounds, new Uint8Array(0)));
      for (const rec of ramRecords(ram, dirty)) await send(rec);
      dirty = takeDirty(board);
      if (countPages(dirty) <= maxDirty || p.rounds >= maxRounds) break;
    }
    // Stop and copy: what was dirtied during the last round and since, then the devices.
    p.status = 'stop-and-copy';
    o.progress?.({ ...p });
    await host.pause();
    paused = true;
    const down = performance.now();
    for (const { device } of board.virtioDevices()) device.storage?.flush();
    host.handover?.();
    handedOver = true;
    dirty = or(dirty, takeDirty(board));
    const finalPages = countPages(dirty);
    for (const rec of ramRecords(ram, dirty)) await send(rec);
    // The configuration again: the disks' identities as they are now that the guest is stopped.
    await send(jsonRecord(Rec.Config, describeBoard(board, machine)));
    await send(jsonRecord(Rec.State, saveBoard(board)));
    await send(encodeRecord(Rec.End, 0, new Uint8Array(0)));
    const answer = await link.answer();
    if (answer !== 'OK') throw new VirtusError('MIGRATE_REFUSED', `the target refused the machine: ${answer.replace(/^ERR /, '')}`);
    const end = performance.now();
    p.status = 'completed';
    o.progress?.({ ...p });
    return { totalMs: end - start, downtimeMs: end - down, rounds: p.rounds, bytes: p.bytes, finalPages };
  } catch (e) {
    p.status = 'failed';
    o.progress?.({ ...p });
    // The source keeps the machine: its dirty log is already complete again (every page stays logged).
    if (handedOver) host.takeBack?.();
    if (paused) host.resume();
    throw e;
  }
}

/** The target's side of a link. */
export interface IncomingLink {
  /** The stream's bytes as they arrive; ends when the source closes. */
  chunks: AsyncIterable<Uint8Array>;
  /** Sends the answer line. */
  answer(line: string): void;
}

export interface IncomingHooks {
  /**
   * Builds the board the first configuration describes (without devices that open host
   * storage), or throws when this host cannot: an incompatible or unacceptable machine.
   */
  build(config: SnapshotConfig): Promise<VirtBoard> | VirtBoard;
  /** Attaches the devices (opens the shared disks) once the source has stopped. */
  devices(board: VirtBoard, config: SnapshotConfig): Promise<void> | void;
  /** The stream failed: let go of what `devices` opened, before the source hears of it (it takes its disks back). */
  abandon?(): void;
}

/**
 * Receives a machine. Resolves with the board, restored and ready to run, after answering OK;
 * on anything wrong (truncated, corrupt, incompatible) answers ERR and throws.
 */
export async function migrateIn(link: IncomingLink, hooks: IncomingHooks): Promise<{ board: VirtBoard; config: SnapshotConfig; rounds: number }> {
  const what = 'migration stream';
  const parser = new RecordParser(what);
  let headerSeen = false;
  let board: VirtBoard | null = null;
  let config: SnapshotConfig | null = null;
  let images: BootCollector | null = null;
  let rounds = 0;
  let stateDone = false;
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
        switch (f.type) {
          case Rec.Config: {
            const c = checkConfig(unpackJson(f, at), what);
            if (!board) {
              config = c;
              board = await hooks.build(c);
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
            break;
          case Rec.Ram:
          case Rec.Zero:
            if (!board) bad(`${at} comes before the configuration: the stream is corrupt`);
            applyRam(board.machine.ram, f, at);
            break;
          case Rec.Round:
            rounds = f.arg;
            break;
          case Rec.State:
            if (!board || !config) bad(`${at} comes before the configuration: the stream is corrupt`);
            await hooks.devices(board, config);
            checkDisks(board, config);
            restoreBoard(board, unpackJson(f, at));
            board.lastBoot = images ? images.options() : null;
            stateDone = true;
            break;
          case Rec.End:
            if (!stateDone || !board || !config) bad(`${what} ends before the machine's state: the source gave up or the stream is corrupt`);
            if (parser.pending) bad(`${what} is corrupt: bytes follow its end record`);
            link.answer('OK');
            return { board, config, rounds };
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
