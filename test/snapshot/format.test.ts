/**
 * The snapshot format in-process: the portable and the native codec read each other's files;
 * a board saved and restored saves the same state again; a state with one bad field is
 * refused naming the field; RAM records check their page range.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VirtioRng } from '../../src/devices/virtio/rng/rng.ts';
import { nodeCodec } from '../../src/host/node/snapshot-codec.ts';
import { encodeRecord, jsCodec, Rec, RecordParser, unpack, useCodec } from '../../src/machine/snapshot-format.ts';
import { applyRam, encodeSnapshot, openSnapshot, restoreBoard, saveBoard } from '../../src/machine/snapshot.ts';
import { VirtBoard } from '../../src/machine/virt.ts';

/** The VMM's description of the machine, opaque to the snapshot layer. */
const machine = { described: 'by the VMM' };

function board(): VirtBoard {
  const b = new VirtBoard({ ramSize: 1 << 20, deterministic: true, engine: 'interp', console: () => {} });
  b.attachVirtio(new VirtioRng({ seed: 1 }));
  return b;
}

/** A board with some RAM written and some state changed. */
function busy(): VirtBoard {
  const b = board();
  const ram = b.machine.ram;
  ram.load(ram.base + 0x1000, Uint8Array.from({ length: 9000 }, (_, i) => (i * 7) & 0xff));
  ram.zero(ram.base + 0x8000, 0x2000);
  const h = b.machine.harts[0]!;
  h.setX(5, 0x1234_5678_9abc_def0n);
  h.setPcNum(0x8000_0040);
  h.set('mscratch', 42, 7);
  b.uart.write(7, 1, 0x5a); // scratch register
  return b;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('snapshot format', () => {
  for (const [w, r] of [[jsCodec, nodeCodec], [nodeCodec, jsCodec]] as const) {
    it(`a file written with the ${w === jsCodec ? 'portable' : 'native'} codec restores with the other`, () => {
      const src = busy();
      useCodec(w);
      const file = concat(encodeSnapshot(src, machine));
      useCodec(r);
      try {
        const snap = openSnapshot(file, 't');
        assert.deepEqual(snap.config.machine, machine);
        const dst = board();
        snap.restore(dst);
        assert.deepEqual(saveBoard(dst), saveBoard(src));
        assert.deepEqual(dst.machine.ram.bytes, src.machine.ram.bytes);
      } finally {
        useCodec(jsCodec);
      }
    });
  }

  it('refuses a state with one bad field, naming it', () => {
    const state = saveBoard(busy()) as { harts: Array<{ csr: Record<string, string> }>; devices: { uart0: { state: Record<string, unknown> } } };
    const mutate = (f: (s: typeof state) => void): typeof state => {
      const s = structuredClone(state);
      f(s);
      return s;
    };
    const cases: Array<[typeof state, RegExp]> = [
      [mutate((s) => (s.harts[0]!.csr.priv = '2')), /hart0 csr: priv must be 0, 1 or 3/],
      [mutate((s) => (s.harts[0]!.csr.misa = '0')), /misa 0x0 is not this hart's/],
      [mutate((s) => delete s.harts[0]!.csr.mepc), /hart0 csr: state has no field "mepc"/],
      [mutate((s) => (s.devices.uart0.state.ier = 99)), /uart0?: ier must be an integer/],
      [mutate((s) => ((s.devices as Record<string, unknown>).virtio3 = { device: 'virtio-blk0', state: null })), /holds "virtio-blk0" in the snapshot but virtio-mmio here/],
    ];
    for (const [s, pattern] of cases) assert.throws(() => restoreBoard(board(), s), pattern);
  });

  it('a state from before SC compared values (no resValue) restores with the reservation dropped', () => {
    const src = busy();
    const h = src.machine.harts[0]!;
    h.set('resValid', 1, 0);
    h.setNum('resAddr', 0x8000_1000);
    h.set('resValue', 5, 0);
    const state = saveBoard(src) as { harts: Array<{ csr: Record<string, string> }> };
    assert.equal(state.harts[0]!.csr.resValue, '5');
    const dst = board();
    restoreBoard(dst, state);
    assert.equal(dst.machine.harts[0]!.get('resValid'), 1, 'a current state keeps its reservation');
    delete (state.harts[0]!.csr as Record<string, string>).resValue;
    const old = board();
    restoreBoard(old, state);
    assert.equal(old.machine.harts[0]!.get('resValid'), 0);
    assert.equal(old.machine.harts[0]!.get('mscratch'), 42, 'the rest restored');
  });

  it('RAM records must lie inside RAM and hold whole pages', () => {
    const b = board();
    const rec = (type: number, arg: number, raw: Uint8Array) => {
      const p = new RecordParser('t');
      p.push(encodeRecord(type, arg, raw));
      return p.next()!;
    };
    assert.throws(() => applyRam(b.machine.ram, rec(Rec.Ram, 255, new Uint8Array(8192)), 'r'), /outside the machine's 256 pages/);
    assert.throws(() => applyRam(b.machine.ram, rec(Rec.Ram, 0, new Uint8Array(100)), 'r'), /whole pages/);
    assert.deepEqual(unpack(rec(Rec.Ram, 0, new Uint8Array(4096).fill(3)), 'r'), new Uint8Array(4096).fill(3));
  });

  it('every flipped bit of a record is caught before its payload is used', () => {
    // A deflated page, a stored (incompressible) one and a JSON record. DEFLATE ignores the
    // padding bits after its final block, so only a checksum over the stored bytes sees those.
    let seed = 7;
    const noise = Uint8Array.from({ length: 4096 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24));
    const page = Uint8Array.from({ length: 4096 }, (_, i) => (i % 97 === 0 ? i & 0xff : 0));
    const records = [encodeRecord(Rec.Ram, 3, page), encodeRecord(Rec.Ram, 4, noise), encodeRecord(Rec.Config, 0, new TextEncoder().encode('{"ramSize":1048576}'))];
    assert.ok(records[0]![1] === 1 && records[1]![1] === 0, 'one deflated record and one stored');
    for (const good of records) {
      for (let bit = 0; bit < good.length * 8; bit++) {
        const bytes = good.slice();
        bytes[bit >> 3]! ^= 1 << (bit & 7);
        const p = new RecordParser('t');
        p.push(bytes);
        // A damaged length may leave the parser waiting for bytes that never come (truncation).
        let frame;
        try {
          frame = p.next();
        } catch (e) {
          assert.match((e as Error).message, /corrupt/);
          continue;
        }
        assert.equal(frame, null, `bit ${bit} of a ${good.length}-byte record went unnoticed`);
      }
    }
  });
});
