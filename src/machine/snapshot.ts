/**
 * Snapshots: the whole virt board as data (docs/snapshots.md). A snapshot is the machine's
 * configuration (what to build before restoring: RAM size, boot mode, the host's device
 * description, a reference to each disk), then RAM (only pages ever written; pages of zeros
 * as counts), then the state of every hart and device, then an end record. The same records
 * travel in a migration stream (migrate.ts).
 *
 * A restore builds a fresh board from the configuration, checks that each disk is the one the
 * snapshot was taken with, writes RAM and applies the state. All of it is untrusted input:
 * any failure is one VirtusError('BAD_SNAPSHOT') or ('BAD_STATE'), and the half-restored
 * board is to be thrown away.
 */
import { S, type Hart } from '../cpu/hart.ts';
import { PAGE_SIZE, SLOTS, TLB_ENTRIES, TLB_ENTRY, TLB_OFF, type Slot } from '../cpu/layout.ts';
import { StateReader, u64State } from '../devices/state.ts';
import { VirtioBlk } from '../devices/virtio/blk/blk.ts';
import type { BlockBackend } from '../storage/backend.ts';
import type { GuestRam } from './ram.ts';
import {
  bad, checkFileHeader, encodeRecord, FILE_HEADER, fileHeader, jsonRecord, Rec, RecordParser, recordName, unpack, unpackJson,
  type Frame,
} from './snapshot-format.ts';
import type { VirtBoard } from './virt.ts';

export const SNAPSHOT_MAGIC = 'VIRTSNAP';
/** Pages per RAM record (1 MiB). */
const CHUNK_PAGES = 256;
/** Bytes of each disk hashed for the identity check. */
const IDENTITY_BYTES = 1 << 20;

/** A disk as the snapshot remembers it, to check a restore uses the same one. */
export interface DiskRef {
  /** The virtio slot the disk's device sits in. */
  slot: number;
  name: string;
  /** Virtual size in bytes. */
  size: number;
  /** A hash of the size and the first MiB (see diskIdentity). */
  identity: string;
}

/** What a restore must build before it applies anything: the machine's configuration. */
export interface SnapshotConfig {
  ramSize: number;
  harts: number;
  deterministic: boolean;
  /** How the machine booted: the built-in SBI serves M-mode traps only in 'builtin'. */
  boot: 'builtin' | 'none' | 'firmware';
  /** HTIF's tohost and fromhost when the program uses them. */
  htif: { tohost: number; fromhost: number | null } | null;
  /** The host's description of the devices it attached (re-created in the same order). */
  devices: unknown;
  disks: DiskRef[];
  /** Instructions retired when the snapshot was taken (informational). */
  instret: number;
}

/** The host's part of the configuration. */
export type HostConfig = Pick<SnapshotConfig, 'boot' | 'htif' | 'devices'>;

/** The configuration of `board` as a restore must rebuild it. */
export function describeMachine(board: VirtBoard, host: HostConfig): SnapshotConfig {
  const m = board.machine;
  const disks: DiskRef[] = [];
  board.virtio.forEach((t, slot) => {
    const d = t.device;
    if (d instanceof VirtioBlk) disks.push({ slot, name: d.name, size: d.backend.size, identity: diskIdentity(d.backend) });
  });
  return { ramSize: m.ram.size, harts: m.harts.length, deterministic: m.clock.deterministic, ...host, disks, instret: m.instret() };
}

/**
 * A cheap identity of a disk's contents: its size and an FNV-1a hash (two lanes) of its first
 * MiB, where partition tables and filesystem superblocks live. It tells disks apart and
 * notices most changes made since the snapshot; it is a check, not a proof.
 */
export function diskIdentity(b: BlockBackend): string {
  const buf = new Uint8Array(Math.min(IDENTITY_BYTES, b.size));
  b.read(0, buf);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ b.size;
  for (let i = 0; i < buf.length; i++) {
    h1 = Math.imul(h1 ^ buf[i]!, 0x01000193);
    h2 = Math.imul(h2 ^ buf[i]!, 0x0100_0193 + 0x1000);
  }
  return `${b.size}:${(h1 >>> 0).toString(16).padStart(8, '0')}${(h2 >>> 0).toString(16).padStart(8, '0')}`;
}

/** Checks an untrusted configuration record. */
export function checkConfig(v: unknown, what: string): SnapshotConfig {
  const r = new StateReader(`${what} configuration`, v, ['ramSize', 'harts', 'deterministic', 'boot', 'htif', 'devices', 'disks', 'instret']);
  const o = v as Record<string, unknown>;
  const ramSize = r.uint('ramSize', 3 * 2 ** 30);
  if (ramSize === 0 || ramSize % PAGE_SIZE) r.fail('ramSize must be a non-zero multiple of 4 KiB');
  const harts = r.uint('harts', 8);
  if (harts !== 1) r.fail(`${harts} harts: this virtus runs machines of one hart`);
  const deterministic = r.bool('deterministic');
  const boot = r.oneOf('boot', ['builtin', 'none', 'firmware'] as const);
  const instret = r.uint('instret', Number.MAX_SAFE_INTEGER);
  let htif: SnapshotConfig['htif'] = null;
  if (o.htif !== null) {
    const h = new StateReader(`${what} htif`, o.htif, ['tohost', 'fromhost']);
    const fromhost = (o.htif as Record<string, unknown>).fromhost;
    htif = { tohost: h.uint('tohost', 2 ** 40), fromhost: fromhost === null ? null : h.uint('fromhost', 2 ** 40) };
  }
  if (!Array.isArray(o.disks)) r.fail('disks must be an array');
  const disks = (o.disks as unknown[]).map((d, i) => {
    const dr: StateReader = new StateReader(`${what} disk ${i}`, d, ['slot', 'name', 'size', 'identity']);
    const name = (d as Record<string, unknown>).name;
    const identity = (d as Record<string, unknown>).identity;
    if (typeof name !== 'string' || typeof identity !== 'string') dr.fail('name and identity must be strings');
    return { slot: dr.uint('slot', 7), name, size: dr.uint('size', Number.MAX_SAFE_INTEGER), identity };
  });
  return { ramSize, harts, deterministic, boot, htif, devices: o.devices, disks, instret };
}

/** Checks that each disk of `config` is the disk now in its slot of `board`. */
export function checkDisks(board: VirtBoard, config: SnapshotConfig): void {
  for (const d of config.disks) {
    const dev = board.virtio[d.slot]?.device;
    if (!(dev instanceof VirtioBlk)) bad(`the snapshot has disk ${d.name} in virtio slot ${d.slot}, but this machine has no disk there`);
    const b = dev.backend;
    if (b.size !== d.size) bad(`disk ${b.name} is ${b.size} bytes, but the snapshot's ${d.name} was ${d.size}: not the same disk`);
    if (diskIdentity(b) !== d.identity) bad(`disk ${b.name} is not the disk the snapshot was taken with (its first MiB differs): was it changed since?`);
  }
}

// ---- harts ----

/** Slots that are state (the TLB generation, data TLB pointer and jump cache generation are derived). */
const SAVED_SLOTS = SLOTS.filter((s) => s !== 'tlbGen' && s !== 'dtlb' && s !== 'jcGen');

function u64Of(a: Int32Array, i: number): string {
  return u64State((BigInt(a[i + 1]! >>> 0) << 32n) | BigInt(a[i]! >>> 0));
}

function setU64(a: Int32Array, i: number, v: bigint): void {
  a[i] = Number(v & 0xffff_ffffn) | 0;
  a[i + 1] = Number(v >> 32n) | 0;
}

function saveHart(h: Hart): unknown {
  return {
    x: Array.from({ length: 32 }, (_, r) => u64Of(h.x, 2 * r)),
    f: Array.from({ length: 32 }, (_, r) => u64Of(h.f, 2 * r)),
    pc: u64Of(h.pc, 0),
    csr: Object.fromEntries(SAVED_SLOTS.map((s) => [s, u64Of(h.s, S[s])])),
  };
}

function restoreHart(h: Hart, state: unknown): void {
  const name = `hart${h.id}`;
  const r = new StateReader(name, state, ['x', 'f', 'pc', 'csr']);
  const x = r.u64Array('x', 32);
  const f = r.u64Array('f', 32);
  const pc = r.u64('pc');
  if (x[0] !== 0n) r.fail('x[0] must be 0');
  const cr = new StateReader(`${name} csr`, (state as Record<string, unknown>).csr, SAVED_SLOTS);
  const csr = new Map<Slot, bigint>(SAVED_SLOTS.map((s) => [s, cr.u64(s)]));
  const priv = csr.get('priv')!;
  if (priv !== 0n && priv !== 1n && priv !== 3n) cr.fail(`priv must be 0, 1 or 3, got ${priv}`);
  for (const s of ['wfi', 'resValid'] as const) if (csr.get(s)! > 1n) cr.fail(`${s} must be 0 or 1`);
  if (csr.get('mhartid') !== BigInt(h.id)) cr.fail(`mhartid must be ${h.id}`);
  const misa = (BigInt(h.getHi('misa') >>> 0) << 32n) | BigInt(h.get('misa') >>> 0);
  if (csr.get('misa') !== misa) cr.fail(`misa 0x${csr.get('misa')!.toString(16)} is not this hart's (0x${misa.toString(16)})`);
  x.forEach((v, i) => setU64(h.x, 2 * i, v));
  f.forEach((v, i) => setU64(h.f, 2 * i, v));
  setU64(h.pc, 0, pc);
  for (const [s, v] of csr) setU64(h.s, S[s], v);
  h.stateChanged();
  h.s[S.dtlb] = TLB_OFF + h.dataMmu() * TLB_ENTRIES * TLB_ENTRY;
}

// ---- the board ----

const BOARD_KEYS = ['harts', 'time', 'epochMs', 'input', 'clint', 'plic', 'uart', 'rtc', 'syscon', 'mrom', 'sbi', 'virtio'];

/** Every hart and device of `board` as plain data (the machine must be between slices). */
export function saveBoard(board: VirtBoard): unknown {
  const m = board.machine;
  return {
    harts: m.harts.map(saveHart),
    time: m.clock.now(),
    epochMs: board.epochMs,
    input: [...board.inputQueue],
    clint: m.clint.save(),
    plic: board.plic.save(),
    uart: board.uart.save(),
    rtc: board.rtc.save(),
    syscon: board.syscon.save(),
    mrom: board.mrom.save(),
    sbi: board.sbi.save(),
    virtio: board.virtio.map((t) => ({ name: t.name, state: t.save() })),
  };
}

/** Applies saved state to a board built from the same configuration. */
export function restoreBoard(board: VirtBoard, config: SnapshotConfig, state: unknown): void {
  const m = board.machine;
  const r = new StateReader('machine', state, BOARD_KEYS);
  const o = state as Record<string, unknown>;
  if (!Array.isArray(o.harts) || o.harts.length !== m.harts.length) r.fail(`harts must be an array of ${m.harts.length}`);
  m.harts.forEach((h, i) => restoreHart(h, (o.harts as unknown[])[i]));
  const time = r.uint('time', Number.MAX_SAFE_INTEGER);
  board.epochMs = r.uint('epochMs', Number.MAX_SAFE_INTEGER);
  const input = r.uintArray('input', 1 << 20, 0xff, { upTo: true });
  m.clock.set(time);
  board.inputQueue.splice(0, board.inputQueue.length, ...input);
  if (!Array.isArray(o.virtio) || o.virtio.length !== board.virtio.length) r.fail(`virtio must be an array of ${board.virtio.length}`);
  (o.virtio as unknown[]).forEach((v, i) => {
    const vr = new StateReader(`virtio slot ${i}`, v, ['name', 'state']);
    const name = (v as Record<string, unknown>).name;
    const here = board.virtio[i]!.name;
    if (name !== here) vr.fail(`holds ${JSON.stringify(name)} in the snapshot but ${here} here: the devices differ`);
    board.virtio[i]!.restore((v as Record<string, unknown>).state);
  });
  m.clint.restore(o.clint);
  board.plic.restore(o.plic);
  board.uart.restore(o.uart);
  board.rtc.restore(o.rtc);
  board.syscon.restore(o.syscon);
  board.mrom.restore(o.mrom);
  board.sbi.restore(o.sbi);
  m.machineTrap = config.boot === 'builtin' ? (h, cause, irq) => board.sbi.handleTrap(h, cause, irq) : undefined;
  if (config.htif) m.attachHtif(config.htif.tohost, config.htif.fromhost);
}

// ---- RAM ----

/** The number of pages set in a page bitmap. */
export function countPages(bits: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bits.length; i++) for (let b = bits[i]!; b; b &= b - 1) n++;
  return n;
}

function zeroPage(w: Int32Array, page: number): boolean {
  const start = page * (PAGE_SIZE / 4);
  for (let i = start; i < start + PAGE_SIZE / 4; i++) if (w[i] !== 0) return false;
  return true;
}

/**
 * RAM records for the pages set in `bits`: runs of up to 1 MiB of pages, runs of zero pages as
 * counts. Each record is made when the generator reaches it, so pages are read at that moment.
 */
export function* ramRecords(ram: GuestRam, bits: Uint8Array): Generator<Uint8Array> {
  const words = new Int32Array(ram.bytes.buffer, ram.bytes.byteOffset, ram.size / 4);
  const pages = ram.size / PAGE_SIZE;
  let start = -1;
  let zero = false;
  let n = 0;
  const flush = (): Uint8Array | null => {
    if (n === 0) return null;
    const rec = zero
      ? encodeRecord(Rec.Zero, start, new Uint8Array(new Uint32Array([n]).buffer), false)
      : encodeRecord(Rec.Ram, start, ram.bytes.subarray(start * PAGE_SIZE, (start + n) * PAGE_SIZE));
    n = 0;
    return rec;
  };
  for (let p = 0; p < pages; p++) {
    if (!(bits[p >>> 3]! & (1 << (p & 7)))) {
      const r = flush();
      if (r) yield r;
      continue;
    }
    const z = zeroPage(words, p);
    if (n > 0 && (z !== zero || n === CHUNK_PAGES)) {
      const r = flush();
      if (r) yield r;
    }
    if (n === 0) {
      start = p;
      zero = z;
    }
    n++;
  }
  const r = flush();
  if (r) yield r;
}

/** Writes one Ram or Zero record into RAM (and the dirty log). */
export function applyRam(ram: GuestRam, f: Frame, what: string): void {
  const pages = ram.size / PAGE_SIZE;
  let count: number;
  if (f.type === Rec.Zero) {
    const raw = unpack(f, what);
    if (raw.length !== 4) bad(`${what} is corrupt: a zero-page record holds 4 bytes`);
    count = new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0, true);
  } else {
    if (f.raw === 0 || f.raw % PAGE_SIZE) bad(`${what} is corrupt: RAM records hold whole pages`);
    count = f.raw / PAGE_SIZE;
  }
  if (count === 0 || f.arg + count > pages) bad(`${what} is corrupt: pages ${f.arg}+${count} lie outside the machine's ${pages} pages of RAM`);
  const at = f.arg * PAGE_SIZE;
  const len = count * PAGE_SIZE;
  if (f.type === Rec.Zero) {
    // A page never written holds zeros already; not touching it keeps the host from allocating it.
    for (let p = f.arg; p < f.arg + count; p++) {
      if (ram.pageWritten(p)) ram.zero(ram.base + p * PAGE_SIZE, PAGE_SIZE);
    }
    return;
  }
  unpack(f, what, ram.bytes.subarray(at, at + len));
  ram.commit(ram.base + at, len);
}

// ---- snapshot files ----

/** A snapshot of `board` as the parts of a file, in order. */
export function encodeSnapshot(board: VirtBoard, host: HostConfig): Uint8Array[] {
  const ram = board.machine.ram;
  return [
    fileHeader(SNAPSHOT_MAGIC),
    jsonRecord(Rec.Config, describeMachine(board, host)),
    ...ramRecords(ram, ram.written()),
    jsonRecord(Rec.State, saveBoard(board)),
    encodeRecord(Rec.End, 0, new Uint8Array(0)),
  ];
}

/** A snapshot file read as far as its configuration; restore() applies the rest to a board. */
export interface SnapshotReader {
  readonly config: SnapshotConfig;
  /** Checks the disks, writes RAM and applies the state; throws on anything wrong. */
  restore(board: VirtBoard): void;
}

/** Opens snapshot bytes: checks the header and reads the configuration. `name` names the file in errors. */
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
  return {
    config,
    restore(board: VirtBoard) {
      if (board.machine.ram.size !== config.ramSize) bad(`${what}: the board has ${board.machine.ram.size} bytes of RAM, the snapshot ${config.ramSize}`);
      checkDisks(board, config);
      for (;;) {
        const f = next();
        const at = `${what}: record ${p.count} (${recordName(f.type)})`;
        if (f.type === Rec.Ram || f.type === Rec.Zero) {
          applyRam(board.machine.ram, f, at);
          continue;
        }
        if (f.type !== Rec.State) bad(`${at} is out of place: the snapshot is corrupt`);
        restoreBoard(board, config, unpackJson(f, at));
        break;
      }
      const end = next();
      if (end.type !== Rec.End) bad(`${what}: record ${p.count} (${recordName(end.type)}) follows the state; the snapshot is corrupt`);
      if (p.pending) bad(`${what} is corrupt: ${p.pending} bytes follow its end record`);
    },
  };
}
