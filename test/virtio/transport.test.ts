/**
 * The virtio-mmio transport and split virtqueues against a driver written from the
 * specification (driver.ts): registers, feature negotiation, status and reset, direct and
 * indirect chains, notification suppression (NO_INTERRUPT, EVENT_IDX), malformed chains
 * putting the device into DEVICE_NEEDS_RESET (virtio 1.2 §2.1.2), and save/restore.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readSegments, ChainWriter } from '../../src/devices/virtio/chain.ts';
import { INT_CONFIG, INT_USED_BUFFER, MMIO_MAGIC, MMIO_VENDOR, REG, VirtioMmio } from '../../src/devices/virtio/mmio.ts';
import type { Chain } from '../../src/devices/virtio/queue.ts';
import {
  F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1, STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER_OK, STATUS_FEATURES_OK,
  type VirtioContext, type VirtioDevice,
} from '../../src/devices/virtio/types.ts';
import { isVirtusError } from '../../src/util/errors.ts';
import { Driver, INDIRECT, makeRam, NEXT, WRITE } from './driver.ts';

/** A device that answers each request with its readable bytes reversed; `hold` keeps chains in flight. */
class Echo implements VirtioDevice {
  readonly deviceId = 42;
  readonly name = 'echo0';
  readonly features = 1n << 3n;
  readonly queueMax = [16];
  readonly configSize = 8;
  ctx!: VirtioContext;
  hold = false;
  held: Chain[] = [];
  value = 0x1234_5678;
  attach(ctx: VirtioContext) {
    this.ctx = ctx;
  }
  readConfig(off: number, width: 1 | 2 | 4) {
    return off === 0 && width === 4 ? this.value : 0;
  }
  writeConfig() {}
  reset() {
    this.held = [];
  }
  counters() {
    return {};
  }
  notify() {
    const q = this.ctx.queue(0);
    for (let c = q.pop(); c; c = q.pop()) {
      if (this.hold) this.held.push(c);
      else this.complete(c);
    }
  }
  complete(c: Chain) {
    const data = readSegments(this.ctx.ram, c.readable).reverse();
    const w = new ChainWriter(this.ctx.ram, c.writable);
    w.write(data);
    this.ctx.queue(0).push(c, w.written);
  }
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function setup() {
  const dev = new Echo();
  const d = new Driver(dev);
  return { dev, d };
}

describe('virtio-mmio registers', () => {
  it('an empty slot reads magic, version 2, device ID 0 and the vendor, and nothing else', () => {
    const t = new VirtioMmio(makeRam(), { set() {} });
    assert.equal(t.read(REG.MAGIC, 4), MMIO_MAGIC);
    assert.equal(t.read(REG.VERSION, 4), 2);
    assert.equal(t.read(REG.DEVICE_ID, 4), 0);
    assert.equal(t.read(REG.VENDOR_ID, 4), MMIO_VENDOR);
    t.write(REG.STATUS, 4, 1);
    assert.equal(t.read(REG.STATUS, 4), 0);
    assert.equal(t.read(REG.DEVICE_FEATURES, 4), 0);
    assert.equal(t.name, 'virtio-mmio');
  });

  it('offers the device features plus VERSION_1, INDIRECT_DESC and EVENT_IDX; reads config space', () => {
    const { d } = setup();
    assert.equal(d.r(REG.DEVICE_ID), 42);
    assert.equal(d.offered(), (1n << 3n) | F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX);
    assert.equal(d.r(REG.CONFIG), 0x1234_5678);
    assert.equal(d.mmio.read(REG.CONFIG + 8, 4), 0, 'beyond the config space reads 0');
    assert.equal(d.mmio.read(REG.MAGIC, 2), 0, 'registers only answer 32-bit accesses');
    d.w(REG.SHM_SEL, 0);
    assert.equal(d.r(REG.SHM_LEN_LOW), 0xffff_ffff, 'no shared memory region: length -1');
  });

  it('refuses FEATURES_OK without VERSION_1 or with a feature not offered', () => {
    const { d } = setup();
    assert.equal(d.negotiate(0n), false);
    assert.equal(d.negotiate(F_VERSION_1 | (1n << 4n)), false);
    assert.equal(d.negotiate(F_VERSION_1 | (1n << 3n)), true);
    // §3.1.1: features are fixed once FEATURES_OK is set.
    d.w(REG.DRIVER_FEATURES_SEL, 0);
    d.w(REG.DRIVER_FEATURES, 0);
    assert.equal(d.mmio.save().driverFeatures, (F_VERSION_1 | (1n << 3n)).toString());
  });

  it('resets on status 0: status, features, queues and interrupts clear', () => {
    const { d } = setup();
    d.init();
    d.submit(0, [{ data: enc('ab') }, { room: 2 }]);
    assert.equal(d.line.level, true);
    d.w(REG.STATUS, 0);
    assert.equal(d.r(REG.STATUS), 0);
    assert.equal(d.r(REG.INTERRUPT_STATUS), 0);
    assert.equal(d.line.level, false);
    d.w(REG.QUEUE_SEL, 0);
    assert.equal(d.r(REG.QUEUE_READY), 0);
    assert.equal(d.r(REG.QUEUE_NUM_MAX), 16);
  });
});

describe('split virtqueues', () => {
  it('serves a direct chain and an indirect one, reporting the bytes written', () => {
    const { d } = setup();
    d.init();
    const a = d.submit(0, [{ data: enc('hel') }, { data: enc('lo') }, { room: 3 }, { room: 4 }]);
    assert.deepEqual(d.used(0), [{ id: a.head, len: 5 }]);
    assert.equal(dec(d.read(a.bufs[2]!.addr, 3)) + dec(d.read(a.bufs[3]!.addr, 2)), 'olleh');
    assert.equal(d.ack(), INT_USED_BUFFER);
    assert.equal(d.line.level, false);
    const b = d.submit(0, [{ data: enc('xyz') }, { room: 8 }], { indirect: true });
    assert.deepEqual(d.used(0), [{ id: b.head, len: 3 }]);
    assert.equal(dec(d.read(b.bufs[1]!.addr, 3)), 'zyx');
  });

  it('consumes nothing before DRIVER_OK, and serves what was queued once it is set', () => {
    const { d } = setup();
    assert.ok(d.negotiate(F_VERSION_1));
    d.setupQueue(0);
    d.submit(0, [{ data: enc('q') }, { room: 1 }]);
    assert.deepEqual(d.used(0), []);
    assert.equal(d.line.level, false);
    d.w(REG.STATUS, d.r(REG.STATUS) | STATUS_DRIVER_OK);
    assert.equal(d.used(0).length, 1);
    assert.equal(d.line.level, true);
  });

  it('honours VIRTQ_AVAIL_F_NO_INTERRUPT without EVENT_IDX', () => {
    const { d } = setup();
    d.init({ transport: F_VERSION_1 });
    d.setU16(d.rings[0]!.avail, 1);
    d.submit(0, [{ data: enc('a') }, { room: 1 }]);
    assert.equal(d.used(0).length, 1);
    assert.equal(d.line.level, false);
    d.setU16(d.rings[0]!.avail, 0);
    d.submit(0, [{ data: enc('a') }, { room: 1 }]);
    assert.equal(d.line.level, true);
  });

  it('with EVENT_IDX notifies only when the used idx passes used_event, and publishes avail_event', () => {
    const { d } = setup();
    d.init();
    const ring = d.rings[0]!;
    const usedEvent = ring.avail + 4 + 2 * ring.size;
    d.setU16(usedEvent, 2); // notify when entry 2 is used (idx reaches 3)
    d.setU16(ring.avail, 1); // NO_INTERRUPT must be ignored with EVENT_IDX
    for (let i = 0; i < 2; i++) d.submit(0, [{ data: enc('a') }, { room: 1 }]);
    assert.equal(d.line.level, false);
    d.submit(0, [{ data: enc('a') }, { room: 1 }]);
    assert.equal(d.line.level, true);
    assert.equal(d.u16(ring.used + 4 + 8 * ring.size), 3, 'avail_event: the next entry the device wants to hear about');
  });

  it('serves a batch made available before one notification', () => {
    const { d } = setup();
    d.init();
    for (let i = 0; i < 5; i++) d.submit(0, [{ data: enc(`m${i}`) }, { room: 2 }], { kick: false });
    d.kick(0);
    assert.equal(d.used(0).length, 5);
  });

  it('bumps ConfigGeneration and raises a configuration change interrupt', () => {
    const { d, dev } = setup();
    d.init();
    const g = d.r(REG.CONFIG_GENERATION);
    dev.value = 7;
    dev.ctx.configChanged();
    assert.equal(d.r(REG.CONFIG_GENERATION), g + 1);
    assert.equal(d.r(REG.INTERRUPT_STATUS), INT_CONFIG);
    assert.equal(d.line.level, true);
  });
});

describe('malformed chains put the device in DEVICE_NEEDS_RESET', () => {
  /** Builds a malformed chain with `make`, kicks, and checks the error state and recovery. */
  function broken(what: string, make: (d: Driver) => void, message: RegExp, o: { transport?: bigint } = {}) {
    it(what, () => {
      const { d } = setup();
      d.init(o);
      make(d);
      d.kick(0);
      const status = d.r(REG.STATUS);
      assert.equal(status & STATUS_DEVICE_NEEDS_RESET, STATUS_DEVICE_NEEDS_RESET, `status 0x${status.toString(16)}`);
      assert.equal(d.r(REG.INTERRUPT_STATUS) & INT_CONFIG, INT_CONFIG, 'a configuration change notification');
      assert.equal(d.line.level, true);
      assert.equal(d.errors.length, 1);
      assert.match(d.errors[0]!, message);
      assert.deepEqual(d.used(0), [], 'nothing is used');
      // Still broken: further requests are not served; a write of other status bits keeps NEEDS_RESET.
      d.w(REG.STATUS, status & ~STATUS_DEVICE_NEEDS_RESET);
      assert.ok(d.r(REG.STATUS) & STATUS_DEVICE_NEEDS_RESET);
      // A reset recovers it.
      d.init();
      const ok = d.submit(0, [{ data: enc('ok') }, { room: 2 }]);
      assert.deepEqual(d.used(0), [{ id: ok.head, len: 2 }]);
      assert.equal(d.r(REG.STATUS) & STATUS_DEVICE_NEEDS_RESET, 0);
    });
  }
  const ring = (d: Driver) => d.rings[0]!;
  const room = (d: Driver) => d.alloc(8);

  broken('a head index beyond the queue size', (d) => d.publish(0, 16), /head index 16/);
  broken('a loop in the descriptor chain', (d) => {
    d.putDesc(ring(d).desc, 0, room(d), 4, NEXT, 1);
    d.putDesc(ring(d).desc, 1, room(d), 4, NEXT, 0);
    d.publish(0, 0);
  }, /loop/);
  broken('a buffer outside RAM', (d) => {
    d.putDesc(ring(d).desc, 0, 0x1000, 4, 0);
    d.publish(0, 0);
  }, /outside RAM/);
  broken('a buffer running off the end of RAM', (d) => {
    d.putDesc(ring(d).desc, 0, d.ram.end - 8, 16, WRITE);
    d.publish(0, 0);
  }, /outside RAM/);
  broken('a huge length', (d) => {
    d.putDesc(ring(d).desc, 0, room(d), 0xffff_ffff, WRITE);
    d.publish(0, 0);
  }, /outside RAM/);
  broken('an address above 4 GiB', (d) => {
    d.putDesc(ring(d).desc, 0, 2 ** 40 + d.ram.base, 4, 0);
    d.publish(0, 0);
  }, /outside RAM/);
  broken('a readable descriptor after a writable one', (d) => {
    d.putDesc(ring(d).desc, 0, room(d), 4, WRITE | NEXT, 1);
    d.putDesc(ring(d).desc, 1, room(d), 4, 0);
    d.publish(0, 0);
  }, /device-readable descriptor after a device-writable/);
  broken('a next index beyond the queue', (d) => {
    d.putDesc(ring(d).desc, 0, room(d), 4, NEXT, 99);
    d.publish(0, 0);
  }, /next index 99/);
  broken('an available idx too far ahead', (d) => d.setU16(ring(d).avail + 2, 40), /ahead/);
  broken('an indirect descriptor without the feature', (d) => {
    const t = d.alloc(16);
    d.putDesc(t, 0, room(d), 4, 0);
    d.putDesc(ring(d).desc, 0, t, 16, INDIRECT);
    d.publish(0, 0);
  }, /without VIRTIO_F_INDIRECT_DESC/, { transport: F_VERSION_1 });
  broken('an indirect table inside an indirect table', (d) => {
    const inner = d.alloc(16);
    d.putDesc(inner, 0, room(d), 4, 0);
    const outer = d.alloc(16);
    d.putDesc(outer, 0, inner, 16, INDIRECT);
    d.putDesc(ring(d).desc, 0, outer, 16, INDIRECT);
    d.publish(0, 0);
  }, /inside an indirect table/);
  broken('an indirect descriptor with NEXT', (d) => {
    const t = d.alloc(16);
    d.putDesc(t, 0, room(d), 4, 0);
    d.putDesc(ring(d).desc, 0, t, 16, INDIRECT | NEXT, 1);
    d.publish(0, 0);
  }, /NEXT/);
  broken('an indirect table length that is not a multiple of 16', (d) => {
    d.putDesc(ring(d).desc, 0, d.alloc(32), 24, INDIRECT);
    d.publish(0, 0);
  }, /multiple of 16/);
  broken('a loop inside an indirect table', (d) => {
    const t = d.alloc(32);
    d.putDesc(t, 0, room(d), 4, NEXT, 1);
    d.putDesc(t, 1, room(d), 4, NEXT, 0);
    d.putDesc(ring(d).desc, 0, t, 32, INDIRECT);
    d.publish(0, 0);
  }, /loop/);
  broken('an indirect table outside RAM', (d) => {
    d.putDesc(ring(d).desc, 0, d.ram.end - 16, 64, INDIRECT);
    d.publish(0, 0);
  }, /outside RAM/);

  it('a queue enabled with rings outside RAM, misaligned, or of a size that is not a power of 2', () => {
    for (const [what, setup2, message] of [
      ['outside RAM', (d: Driver) => d.w(REG.QUEUE_DESC_LOW, 0x1000), /outside RAM/],
      ['misaligned', (d: Driver) => d.w(REG.QUEUE_DESC_LOW, d.alloc(300) + 8), /aligned/],
      ['size 12', (d: Driver) => d.w(REG.QUEUE_NUM, 12), /power of 2/],
      ['size above the maximum', (d: Driver) => d.w(REG.QUEUE_NUM, 32), /power of 2 up to 16/],
    ] as const) {
      const { d } = setup();
      assert.ok(d.negotiate(F_VERSION_1));
      d.w(REG.QUEUE_SEL, 0);
      d.setupQueue(0);
      d.w(REG.QUEUE_READY, 0);
      setup2(d);
      d.w(REG.QUEUE_READY, 1);
      assert.equal(d.r(REG.QUEUE_READY), 0, what);
      assert.ok(d.r(REG.STATUS) & STATUS_DEVICE_NEEDS_RESET, what);
      assert.match(d.errors[0]!, message, what);
    }
  });
});

describe('transport save/restore', () => {
  it('round-trips mid-request: a chain in flight is handed to the device again after restore', () => {
    const { d, dev } = setup();
    d.init();
    dev.hold = true;
    const a = d.submit(0, [{ data: enc('abc') }, { room: 3 }]);
    assert.equal(dev.held.length, 1);
    const saved = JSON.parse(JSON.stringify(d.mmio.save()));
    assert.deepEqual(saved.queues[0].inflight, [a.head]);

    // A second machine with the same RAM contents and the saved transport state.
    const dev2 = new Echo();
    const t2 = new VirtioMmio(d.ram, d.line);
    t2.attach(dev2);
    t2.restore(saved);
    assert.deepEqual(t2.save(), d.mmio.save());
    dev2.notify();
    assert.deepEqual(d.used(0), [{ id: a.head, len: 3 }]);
    assert.equal(dec(d.read(a.bufs[1]!.addr, 3)), 'cba');
  });

  const base = () => {
    const { d } = setup();
    d.init();
    return d;
  };
  const corruptions: Array<[string, (s: any) => unknown, RegExp]> = [
    ['an unknown field', (s) => ({ ...s, x: 1 }), /unknown field "x"/],
    ['a status out of range', (s) => ({ ...s, status: 256 }), /status must be/],
    ['features never offered', (s) => ({ ...s, driverFeatures: (1n << 60n).toString() }), /never offered/],
    ['broken without NEEDS_RESET', (s) => ({ ...s, broken: true }), /broken disagrees/],
    ['interrupt bits beyond 2', (s) => ({ ...s, interruptStatus: 4 }), /interruptStatus/],
    ['too few queues', (s) => ({ ...s, queues: [] }), /queues must be an array of 1/],
    ['a queue size above the maximum', (s) => ({ ...s, queues: [{ ...s.queues[0], size: 32 }] }), /size 32 is not a power of 2 up to 16/],
    ['a queue size not a power of 2', (s) => ({ ...s, queues: [{ ...s.queues[0], size: 6 }] }), /power of 2/],
    ['a ready queue outside RAM', (s) => ({ ...s, queues: [{ ...s.queues[0], desc: '4096' }] }), /outside RAM/],
    ['an in-flight head beyond the queue', (s) => ({ ...s, queues: [{ ...s.queues[0], inflight: [20] }] }), /inflight\[0\]/],
    ['chains in flight on a queue that is not ready', (s) => ({ ...s, queues: [{ ...s.queues[0], ready: false, inflight: [1] }] }), /not ready has no chains in flight/],
    ['device state for a device without state', (s) => ({ ...s, device: {} }), /keeps no state/],
  ];
  for (const [what, corrupt, message] of corruptions) {
    it(`rejects ${what}, leaving the transport as it was`, () => {
      const d = base();
      const before = d.mmio.save();
      assert.throws(() => d.mmio.restore(corrupt(JSON.parse(JSON.stringify(before)))), (e) => isVirtusError(e, 'BAD_STATE') && message.test(e.message));
      assert.deepEqual(d.mmio.save(), before);
    });
  }

  it('a driver that wrote features never offered can be saved and restored, and is still refused FEATURES_OK', () => {
    // §2.2.1: the driver must not accept what was not offered, but may write any bits before
    // FEATURES_OK; §2.2.2: the device then fails FEATURES_OK. Both must survive a snapshot.
    const { d } = setup();
    d.w(REG.STATUS, 1);
    d.w(REG.STATUS, 3);
    for (const sel of [0, 1]) {
      d.w(REG.DRIVER_FEATURES_SEL, sel);
      d.w(REG.DRIVER_FEATURES, 0xffff_ffff);
    }
    const saved = JSON.parse(JSON.stringify(d.mmio.save()));
    const t2 = new VirtioMmio(d.ram, d.line);
    t2.attach(new Echo());
    t2.restore(saved);
    assert.deepEqual(t2.save(), d.mmio.save());
    for (const t of [d.mmio, t2]) {
      t.write(REG.STATUS, 4, 3 | STATUS_FEATURES_OK);
      assert.equal(t.read(REG.STATUS, 4) & STATUS_FEATURES_OK, 0, 'FEATURES_OK refused');
    }
    // Once FEATURES_OK is set, features that were not offered cannot be there: restore refuses them.
    const ok = base().mmio.save();
    assert.throws(() => t2.restore({ ...ok, driverFeatures: (0xffff_ffff_ffff_ffffn).toString() }), /never offered/);
  });

  it('a queue size the driver wrote but never enabled can be saved and restored, and enabling it still fails', () => {
    // §4.2.2: QueueNum is any 32-bit write; only enabling the queue checks it (found by test/guest/fuzz/mmio.c).
    for (const size of [127, 0, 0xffff_ffff]) {
      const { d } = setup();
      assert.ok(d.negotiate(F_VERSION_1));
      d.w(REG.QUEUE_SEL, 0);
      d.w(REG.QUEUE_NUM, size);
      const t2 = new VirtioMmio(d.ram, d.line);
      t2.attach(new Echo());
      t2.restore(JSON.parse(JSON.stringify(d.mmio.save())));
      assert.deepEqual(t2.save(), d.mmio.save());
      t2.write(REG.QUEUE_READY, 4, 1);
      assert.equal(t2.read(REG.QUEUE_READY, 4), 0, `size ${size}`);
      assert.ok(t2.read(REG.STATUS, 4) & STATUS_DEVICE_NEEDS_RESET);
    }
  });

  it('disabling a queue withdraws its chains in flight, so a smaller size written afterwards still restores', () => {
    const { d, dev } = setup();
    d.init();
    dev.hold = true;
    for (let i = 0; i < 3; i++) d.submit(0, [{ data: enc('x') }, { room: 1 }]);
    assert.deepEqual(d.mmio.save().queues[0]!.inflight, [0, 2, 4]);
    d.w(REG.QUEUE_SEL, 0);
    d.w(REG.QUEUE_READY, 0);
    d.w(REG.QUEUE_NUM, 1);
    const saved = d.mmio.save();
    assert.deepEqual(saved.queues[0]!.inflight, []);
    const t2 = new VirtioMmio(d.ram, d.line);
    t2.attach(new Echo());
    t2.restore(JSON.parse(JSON.stringify(saved)));
    assert.equal(dev.ctx.queue(0).holds(dev.held[0]!), false, 'the device knows the chain was withdrawn');
  });

  it('keeps FEATURES_OK and DRIVER_OK across a round trip', () => {
    const d = base();
    const s = d.mmio.save();
    assert.equal(s.status & (STATUS_FEATURES_OK | STATUS_DRIVER_OK), STATUS_FEATURES_OK | STATUS_DRIVER_OK);
  });
});
