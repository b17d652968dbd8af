/**
 * Snapshots: the whole board as data (docs/snapshots.md). A snapshot file is a configuration
 * record (the machine's description as the VMM layer writes it, each disk's size and identity,
 * the boot images' names and sizes), the boot images, RAM (pages ever written; zero pages as
 * counts), the state of every hart and device, and an end record. The same records travel in a
 * migration stream (migrate.ts).
 *
 * Nothing here opens a host file: a snapshot describes its disks (slot, size, identity), and
 * whoever restores it decides which host files those are; checkDisks() then confirms that each
 * disk given is the one the snapshot was taken with. All input is untrusted: any failure is one
 * VirtusError('BAD_SNAPSHOT') or ('BAD_STATE'), and a half-restored board is to be thrown away.
 */
import { StateReader } from '../devices/state.ts';
import { bootMeta, BootCollector, bootRecords, checkBootMeta, type BootMeta } from './snapshot-boot.ts';
import {
  bad, checkFileHeader, encodeRecord, FILE_HEADER, fileHeader, jsonRecord, Rec, RecordParser, recordName, unpackJson,
  type Frame,
} from './snapshot-format.ts';
import { applyRam, ramRecords } from './snapshot-ram.ts';
import { restoreBoard, saveBoard } from './snapshot-state.ts';
import type { BootOptions, VirtBoard } from './virt.ts';

export { applyRam, countPages, ramRecords } from './snapshot-ram.ts';
export { restoreBoard, saveBoard } from './snapshot-state.ts';
export { BootCollector, bootRecords, type BootMeta } from './snapshot-boot.ts';

export const SNAPSHOT_MAGIC = 'VIRTSNAP';

/** A disk as the snapshot remembers it, to check a restore was given the same one. */
export interface DiskRef {
  /** The virtio slot its device sits in. */
  slot: number;
  /** Virtual size in bytes. */
  size: number;
  /** storage/identity.ts: a hash of the size and the first MiB. */
  identity: string;
}

/** The configuration record: what a restore must know before it applies anything. */
export interface SnapshotConfig {
  /** The machine's description, written and checked by the VMM layer (opaque here). */
  machine: unknown;
  disks: DiskRef[];
  /** The boot images that follow, for a reboot of the restored machine (null: none kept). */
  boot: BootMeta | null;
  /** Instructions retired when the snapshot was taken. */
  instret: number;
}

/** The configuration of `board`, described by the VMM as `machine`. */
export function describeBoard(board: VirtBoard, machine: unknown): SnapshotConfig {
  const disks = board.virtioDevices().flatMap(({ slot, device }) =>
    device.storage ? [{ slot, size: device.storage.size, identity: device.storage.identity() }] : [],
  );
  return { machine, disks, boot: board.lastBoot ? bootMeta(board.lastBoot) : null, instret: board.machine.instret() };
}

/** Checks an untrusted configuration record. */
export function checkConfig(v: unknown, what: string): SnapshotConfig {
  const r = new StateReader(`${what} configuration`, v, ['machine', 'disks', 'boot', 'instret']);
  const o = v as Record<string, unknown>;
  const instret = r.uint('instret', Number.MAX_SAFE_INTEGER);
  if (!Array.isArray(o.disks) || o.disks.length > 8) r.fail('disks must be an array of at most 8');
  const disks = (o.disks as unknown[]).map((d, i) => {
    const dr = new StateReader(`${what} disk ${i}`, d, ['slot', 'size', 'identity']);
    const identity = (d as Record<string, unknown>).identity as string;
    if (typeof identity !== 'string' || identity.length > 64) dr.fail('identity must be a short string');
    return { slot: dr.uint('slot', 7), size: dr.uint('size', Number.MAX_SAFE_INTEGER), identity };
  });
  return { machine: o.machine, disks, boot: o.boot === null ? null : checkBootMeta(o.boot, what), instret };
}

/** Checks that each disk of `config` is the disk now in its slot of `board`. */
export function checkDisks(board: VirtBoard, config: SnapshotConfig): void {
  const here = board.virtioDevices().filter((d) => d.device.storage);
  if (here.length !== config.disks.length) bad(`the snapshot's machine has ${config.disks.length} disks, this one ${here.length}`);
  for (const d of config.disks) {
    const dev = board.virtio[d.slot]?.device;
    const s = dev?.storage;
    if (!dev || !s) bad(`the snapshot has a disk in virtio slot ${d.slot}, but this machine has none there`);
    if (s.size !== d.size) bad(`disk ${s.name} is ${s.size} bytes, but the snapshot's ${dev.name} was ${d.size}: not the same disk`);
    if (!s.hasIdentity(d.identity)) bad(`disk ${s.name} is not the disk the snapshot was taken with (its first MiB differs): was it changed since?`);
  }
}

/** A snapshot of `board` as the parts of a file, in order; `machine` is the VMM's description. */
export function encodeSnapshot(board: VirtBoard, machine: unknown): Uint8Array[] {
  const ram = board.machine.ram;
  return [
    fileHeader(SNAPSHOT_MAGIC),
    jsonRecord(Rec.Config, describeBoard(board, machine)),
    ...(board.lastBoot ? bootRecords(board.lastBoot) : []),
    ...ramRecords(ram, ram.written()),
    jsonRecord(Rec.State, saveBoard(board)),
    encodeRecord(Rec.End, 0, new Uint8Array(0)),
  ];
}

/** A snapshot file read as far as its boot images; restore() applies the rest to a board. */
export interface SnapshotReader {
  readonly config: SnapshotConfig;
  /** The boot images, for a reboot of the restored machine (null when the snapshot has none). */
  readonly boot: BootOptions | null;
  /** Checks the disks, writes RAM and applies the state; throws on anything wrong. */
  restore(board: VirtBoard): void;
}

/** Only the configuration of snapshot `bytes` (checked as openSnapshot checks it), without reading further. */
export function snapshotConfig(bytes: Uint8Array, name: string): SnapshotConfig {
  const what = `snapshot ${name}`;
  checkFileHeader(bytes.subarray(0, FILE_HEADER), SNAPSHOT_MAGIC, what);
  const p = new RecordParser(what);
  p.push(bytes.subarray(FILE_HEADER));
  const first = p.next();
  if (!first) bad(`${what} is truncated: it ends ${p.pending ? 'inside' : 'before'} record 1`);
  if (first.type !== Rec.Config) bad(`${what} is corrupt: it opens with a ${recordName(first.type)} record, not the configuration`);
  return checkConfig(unpackJson(first, `${what}: configuration`), what);
}

/** Opens snapshot bytes: checks the header, reads the configuration and boot images. `name` names the file in errors. */
export function openSnapshot(bytes: Uint8Array, name: string): SnapshotReader {
  const what = `snapshot ${name}`;
  checkFileHeader(bytes.subarray(0, FILE_HEADER), SNAPSHOT_MAGIC, what);
  const p = new RecordParser(what);
  p.push(bytes.subarray(FILE_HEADER));
  const next = (): Frame => {
    const f = p.next();
    if (!f) bad(`${what} is truncated: it ends ${p.pending ? 'inside' : 'before'} record ${p.count + 1}`);
    return f;
  };
  const first = next();
  if (first.type !== Rec.Config) bad(`${what} is corrupt: it opens with a ${recordName(first.type)} record, not the configuration`);
  const config = checkConfig(unpackJson(first, `${what}: configuration`), what);
  let f = next();
  let boot: BootOptions | null = null;
  if (config.boot) {
    const images = new BootCollector(config.boot, what);
    while (!images.complete) {
      if (f.type !== Rec.Boot) bad(`${what} is corrupt: its boot images end early`);
      images.add(f, `${what}: record ${p.count} (boot)`);
      f = next();
    }
    boot = images.options();
  }
  return {
    config,
    boot,
    restore(board: VirtBoard) {
      checkDisks(board, config);
      for (;; f = next()) {
        const at = `${what}: record ${p.count} (${recordName(f.type)})`;
        if (f.type === Rec.Ram || f.type === Rec.Zero) {
          applyRam(board.machine.ram, f, at);
          continue;
        }
        if (f.type !== Rec.State) bad(`${at} is out of place: the snapshot is corrupt`);
        restoreBoard(board, unpackJson(f, at));
        break;
      }
      const end = next();
      if (end.type !== Rec.End) bad(`${what}: record ${p.count} (${recordName(end.type)}) follows the state; the snapshot is corrupt`);
      if (p.pending) bad(`${what} is corrupt: ${p.pending} bytes follow its end record`);
      board.lastBoot = boot;
    },
  };
}
