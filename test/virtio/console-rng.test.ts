/**
 * virtio-console (virtio 1.2 §5.3) and virtio-rng (§5.4) against the test driver: output,
 * input with back-pressure, resize through a configuration change, emergency writes; random
 * bytes from the host source, and reproducible ones in deterministic mode, with save/restore.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONSOLE_F_EMERG_WRITE, CONSOLE_F_SIZE, VirtioConsole } from '../../src/devices/virtio/console/console.ts';
import { INT_CONFIG, REG } from '../../src/devices/virtio/mmio.ts';
import { VirtioRng } from '../../src/devices/virtio/rng/rng.ts';
import { isVirtusError } from '../../src/util/errors.ts';
import { Driver } from './driver.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('virtio-console', () => {
  function setup() {
    const out: string[] = [];
    const con = new VirtioConsole({ output: (b) => out.push(dec(b)), cols: 100, rows: 30 });
    const d = new Driver(con);
    return { con, d, out };
  }

  it('emergency writes reach the host before the driver set anything up', () => {
    const { d, out } = setup();
    d.mmio.write(REG.CONFIG + 8, 4, 0x41);
    assert.deepEqual(out, ['A']);
  });

  it('sends transmitq buffers to the host and fills receiveq buffers with input as they come', () => {
    const { d, con, out } = setup();
    d.init({ features: CONSOLE_F_SIZE | CONSOLE_F_EMERG_WRITE });
    assert.equal(d.r(REG.DEVICE_ID), 3);
    d.submit(1, [{ data: enc('hello ') }, { data: enc('world') }]);
    assert.equal(out.join(''), 'hello world');
    assert.deepEqual(d.used(1).map((u) => u.len), [0]);
    // Input with no receive buffer waits; a buffer added later takes it.
    con.write(enc('ls -l\n'));
    assert.deepEqual(d.used(0), []);
    const a = d.submit(0, [{ room: 4 }]);
    const b = d.submit(0, [{ room: 4 }]);
    assert.deepEqual(d.used(0), [{ id: a.head, len: 4 }, { id: b.head, len: 2 }]);
    assert.equal(dec(d.read(a.bufs[0]!.addr, 4)) + dec(d.read(b.bufs[0]!.addr, 2)), 'ls -l\n');
    // Buffers posted first take input at once (and the guest is interrupted).
    const c = d.submit(0, [{ room: 16 }]);
    d.ack();
    const ring = d.rings[0]!;
    d.setU16(ring.avail + 4 + 2 * ring.size, 2); // used_event: interrupt when entry 2 is used
    con.write(enc('x'));
    assert.deepEqual(d.used(0), [{ id: c.head, len: 1 }]);
    assert.equal(d.line.level, true);
  });

  it('a resize changes cols and rows and raises a configuration change interrupt', () => {
    const { d, con } = setup();
    d.init({ features: CONSOLE_F_SIZE });
    assert.equal(d.mmio.read(REG.CONFIG, 2), 100);
    assert.equal(d.mmio.read(REG.CONFIG + 2, 2), 30);
    const gen = d.r(REG.CONFIG_GENERATION);
    con.resize(132, 43);
    assert.equal(d.mmio.read(REG.CONFIG, 2), 132);
    assert.equal(d.mmio.read(REG.CONFIG + 2, 2), 43);
    assert.equal(d.r(REG.CONFIG_GENERATION), gen + 1);
    assert.equal(d.ack(), INT_CONFIG);
    con.resize(132, 43);
    assert.equal(d.r(REG.INTERRUPT_STATUS), 0, 'no change, no interrupt');
  });

  it('saves size and pending input; rejects bad state', () => {
    const { con } = setup();
    con.write(enc('abc'));
    const s = JSON.parse(JSON.stringify(con.save()));
    const other = setup().con;
    other.restore(s);
    assert.deepEqual(other.save(), { cols: 100, rows: 30, input: [97, 98, 99] });
    assert.throws(() => other.restore({ ...s, rows: -1 }), (e) => isVirtusError(e, 'BAD_STATE') && /rows/.test(e.message));
    assert.throws(() => other.restore({ ...s, input: [256] }), (e) => isVirtusError(e, 'BAD_STATE') && /input\[0\]/.test(e.message));
  });
});

describe('virtio-rng', () => {
  it('fills each buffer completely with random bytes', () => {
    const d = new Driver(new VirtioRng());
    d.init();
    assert.equal(d.r(REG.DEVICE_ID), 4);
    const r = d.submit(0, [{ room: 4096 }, { room: 100 }]);
    assert.deepEqual(d.used(0), [{ id: r.head, len: 4196 }]);
    const bytes = d.read(r.bufs[0]!.addr, 4096);
    assert.ok(new Set(bytes).size > 200, 'looks random');
  });

  it('is reproducible in deterministic mode and resumes its sequence after save/restore', () => {
    const run = (rng: VirtioRng, n: number) => {
      const d = new Driver(rng);
      d.init();
      return Array.from({ length: n }, () => {
        const r = d.submit(0, [{ room: 32 }]);
        d.used(0);
        return [...d.read(r.bufs[0]!.addr, 32)];
      });
    };
    const a = run(new VirtioRng({ seed: 7 }), 2);
    const b = new VirtioRng({ seed: 7 });
    assert.deepEqual(run(b, 1), a.slice(0, 1));
    const saved = JSON.parse(JSON.stringify(b.save()));
    const c = new VirtioRng({ seed: 1 });
    c.restore(saved);
    assert.deepEqual(run(c, 1), a.slice(1, 2));
    assert.notDeepEqual(run(new VirtioRng({ seed: 8 }), 1), a.slice(0, 1));
    assert.throws(() => c.restore({ prng: [0, 0, 0, 0] }), (e) => isVirtusError(e, 'BAD_STATE'));
    assert.throws(() => new VirtioRng().restore(saved), (e) => isVirtusError(e, 'BAD_STATE') && /host source/.test(e.message));
  });
});
