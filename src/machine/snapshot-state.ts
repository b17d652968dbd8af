/**
 * The board's state as plain data: every hart's registers and named slots, the clock, console
 * input not yet delivered, the built-in SBI, how the machine booted, and one section per row of
 * the board's table (virt.ts), named by the row's id and holding the device's name and saved
 * state. Restoring reads all of it as untrusted input (devices/state.ts): the first bad field
 * is named in a VirtusError('BAD_STATE').
 */
import { S, type Hart } from '../cpu/hart.ts';
import { SLOTS, TLB_ENTRIES, TLB_ENTRY, TLB_OFF, type Slot } from '../cpu/layout.ts';
import { StateReader, u64State } from '../devices/state.ts';
import { SMP_QUANTUM } from './machine.ts';
import type { VirtBoard } from './virt.ts';

/** Slots that are state (the TLB generation, data TLB pointer and jump cache generation are derived). */
const SAVED_SLOTS = SLOTS.filter((s) => s !== 'tlbGen' && s !== 'dtlb' && s !== 'jcGen');
/** The slot older snapshots lack. */
const RES_VALUE = 'resValue';

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
  const saved = (state as Record<string, unknown>).csr;
  // Snapshots made before SC compared memory with what LR loaded have no resValue: their
  // reservation is dropped (one may be lost at any time, Unprivileged 14.2; the LR/SC loop
  // goes round once more).
  const slots = typeof saved === 'object' && saved !== null && !(RES_VALUE in saved) ? SAVED_SLOTS.filter((s) => s !== RES_VALUE) : SAVED_SLOTS;
  const cr = new StateReader(`${name} csr`, saved, slots);
  const csr = new Map<Slot, bigint>(slots.map((s) => [s, cr.u64(s)]));
  if (!csr.has(RES_VALUE)) {
    csr.set(RES_VALUE, 0n);
    csr.set('resValid', 0n);
  }
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

const BOARD_KEYS = ['harts', 'time', 'epochMs', 'input', 'sbi', 'boot', 'devices'];
/** Where the harts' round-robin stands: absent in snapshots made before machines had several harts. */
const SCHEDULE_KEY = 'schedule';

/** Every hart and device of `board` as plain data (the machine must be between slices). */
export function saveBoard(board: VirtBoard): unknown {
  const m = board.machine;
  const started = board.started;
  const devices: Record<string, unknown> = {};
  for (const { row, device } of board.devices()) {
    const d = device as { save?(): unknown };
    devices[row.id] = { device: device.name, state: d.save ? d.save() : null };
  }
  return {
    harts: m.harts.map(saveHart),
    schedule: m.schedule(),
    time: m.clock.now(),
    epochMs: board.epochMs,
    input: [...board.inputQueue],
    sbi: board.sbi.save(),
    boot: { mode: started?.mode ?? 'builtin', htif: started?.htif ?? null },
    devices,
  };
}

/**
 * Applies saved state to a board built for the same machine (same RAM, harts and devices in
 * the same slots). A failure leaves the board half-restored: throw it away.
 */
export function restoreBoard(board: VirtBoard, state: unknown): void {
  const m = board.machine;
  const scheduled = typeof state === 'object' && state !== null && SCHEDULE_KEY in state;
  const r = new StateReader('machine', state, scheduled ? [...BOARD_KEYS, SCHEDULE_KEY] : BOARD_KEYS);
  const o = state as Record<string, unknown>;
  if (!Array.isArray(o.harts) || o.harts.length !== m.harts.length) r.fail(`harts must be an array of ${m.harts.length}`);
  m.harts.forEach((h, i) => restoreHart(h, (o.harts as unknown[])[i]));
  if (scheduled) {
    const sr = new StateReader('machine schedule', o.schedule, ['turn', 'left', 'lastRan']);
    const last = (o.schedule as Record<string, unknown>).lastRan;
    m.setSchedule({
      turn: sr.uint('turn', m.harts.length - 1),
      left: Math.max(1, sr.uint('left', SMP_QUANTUM)),
      lastRan: last === -1 ? -1 : sr.uint('lastRan', m.harts.length - 1),
    });
  } else {
    m.setSchedule({ turn: 0, left: SMP_QUANTUM, lastRan: -1 });
  }
  const time = r.uint('time', Number.MAX_SAFE_INTEGER);
  board.epochMs = r.uint('epochMs', Number.MAX_SAFE_INTEGER);
  const input = r.uintArray('input', 1 << 20, 0xff, { upTo: true });
  m.clock.set(time);
  board.inputQueue.splice(0, board.inputQueue.length, ...input);

  const rows = board.devices();
  const dr = new StateReader('machine devices', o.devices, rows.map((x) => x.row.id));
  for (const { row, device } of rows) {
    const v = (o.devices as Record<string, unknown>)[row.id];
    // A device without state that came later (vmgenid) is absent from older snapshots.
    if (v === undefined && !(device as { restore?: unknown }).restore) continue;
    const sr = new StateReader(row.id, v, ['device', 'state']);
    const saved = v as { device: unknown; state: unknown };
    if (saved.device !== device.name) sr.fail(`holds ${JSON.stringify(saved.device)} in the snapshot but ${device.name} here: the devices differ`);
    const d = device as { restore?(s: unknown): void };
    if (d.restore) d.restore(saved.state);
    else if (saved.state !== null) dr.fail(`${row.id} has no state to restore`);
  }
  board.sbi.restore(o.sbi);

  const br = new StateReader('machine boot', o.boot, ['mode', 'htif']);
  const mode = br.oneOf('mode', ['builtin', 'none', 'firmware'] as const);
  const h = (o.boot as Record<string, unknown>).htif;
  let htif: { tohost: number; fromhost: number | null } | null = null;
  if (h !== null) {
    const hr = new StateReader('machine boot htif', h, ['tohost', 'fromhost']);
    const fromhost = (h as Record<string, unknown>).fromhost;
    htif = { tohost: hr.uint('tohost', 2 ** 40), fromhost: fromhost === null ? null : hr.uint('fromhost', 2 ** 40) };
  }
  board.resume(mode, htif);
}
