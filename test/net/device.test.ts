/**
 * virtio-net (virtio 1.2 §5.1) against the test driver written from the specification:
 * configuration, transmit with offloads finished or refused, malformed frames counted and
 * dropped (never thrown, the device stays usable), receive into mergeable and whole buffers,
 * the announce handshake over the control queue, and saved state checked on restore.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  NET_F_CSUM, NET_F_CTRL_VQ, NET_F_GUEST_ANNOUNCE, NET_F_GUEST_CSUM, NET_F_GUEST_TSO4, NET_F_HOST_TSO4, NET_F_MAC, NET_F_MRG_RXBUF, NET_F_STATUS, NET_HDR,
  NET_S_ANNOUNCE, RX_BACKLOG, RX_BACKLOG_BYTES, VirtioNet,
} from '../../src/devices/virtio/net/net.ts';
import { INT_CONFIG, REG } from '../../src/devices/virtio/mmio.ts';
import { STATUS_DEVICE_NEEDS_RESET } from '../../src/devices/virtio/types.ts';
import type { NetBackend, NetReceiver } from '../../src/util/net-backend.ts';
import { IP_PROTO_TCP, IP_PROTO_UDP, ipv4Frame, pseudoSum, rd32, sum16, udpFrame, wr16, wr32 } from '../../src/util/inet.ts';
import { isVirtusError } from '../../src/util/errors.ts';
import { Driver } from '../virtio/driver.ts';

const MAC = new Uint8Array([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
const GW = new Uint8Array([0x52, 0x55, 10, 0, 2, 2]);

/** A backend that records what the device sends and lets the test hand frames to the guest. */
class Wire implements NetBackend {
  readonly name = 'wire';
  sent: Uint8Array[] = [];
  rx!: NetReceiver;
  constructor(readonly acceptsOffload = false, readonly producesLargeFrames = false) {}
  attach(rx: NetReceiver): void {
    this.rx = rx;
  }
  send(f: Uint8Array): void {
    this.sent.push(f);
  }
  close(): void {}
}

function setup(features: bigint, o: { offload?: boolean } = {}) {
  const wire = new Wire(o.offload ?? false);
  const net = new VirtioNet(wire, { mac: MAC });
  const d = new Driver(net, 4 << 20);
  d.init({ features });
  return { wire, net, d };
}

const hdr = (o: { flags?: number; gsoType?: number; gsoSize?: number; csumStart?: number; csumOffset?: number } = {}) => {
  const h = new Uint8Array(NET_HDR);
  h[0] = o.flags ?? 0;
  h[1] = o.gsoType ?? 0;
  h[4] = (o.gsoSize ?? 0) & 255;
  h[5] = (o.gsoSize ?? 0) >> 8;
  h[6] = (o.csumStart ?? 0) & 255;
  h[7] = (o.csumStart ?? 0) >> 8;
  h[8] = o.csumOffset ?? 0;
  return h;
};

const udp = (n: number) => udpFrame({ dstMac: GW, srcMac: MAC, src: 0x0a00020f, dst: 0x0a000202, sport: 1000, dport: 2000, data: new Uint8Array(n).fill(7) });

function tcp(payload: number, seq: number, flags = 0x18): Uint8Array {
  return ipv4Frame({
    dstMac: GW, srcMac: MAC, src: 0x0a00020f, dst: 0x0a000202, proto: IP_PROTO_TCP, l4Len: 20 + payload, csumAt: 16,
    fill: (f, l4) => {
      wr16(f, l4, 1000);
      wr16(f, l4 + 2, 80);
      wr32(f, l4 + 4, seq);
      f[l4 + 12] = 5 << 4;
      f[l4 + 13] = flags;
      wr16(f, l4 + 14, 1000);
      for (let i = 0; i < payload; i++) f[l4 + 20 + i] = i & 255;
    },
  });
}

/** True when the TCP or UDP checksum of an IPv4 frame verifies. */
function l4ChecksumOk(f: Uint8Array, proto: number): boolean {
  const l4 = 34;
  return sum16(f, l4, f.length, pseudoSum(f, 14, proto, f.length - l4)) === 0xffff;
}

describe('virtio-net', () => {
  it('shows its MAC and link, and offers the features Linux uses', () => {
    const { d } = setup(NET_F_MAC | NET_F_STATUS);
    assert.equal(d.r(REG.DEVICE_ID), 1);
    const cfg = [0, 1, 2, 3, 4, 5].map((i) => d.mmio.read(REG.CONFIG + i, 1));
    assert.deepEqual(cfg, [...MAC]);
    assert.equal(d.mmio.read(REG.CONFIG + 6, 2), 1, 'VIRTIO_NET_S_LINK_UP');
    for (const f of [NET_F_CSUM, NET_F_HOST_TSO4, NET_F_MRG_RXBUF, NET_F_GUEST_ANNOUNCE, NET_F_CTRL_VQ]) assert.ok(d.offered() & f);
  });

  it('transmits frames and finishes a partial checksum for a wire backend', () => {
    const { d, wire } = setup(NET_F_MAC | NET_F_CSUM);
    const f = udp(100);
    wr16(f, 40, pseudoSum(f, 14, IP_PROTO_UDP, 108)); // what Linux leaves with NEEDS_CSUM
    d.submit(1, [{ data: hdr({ flags: 1, csumStart: 34, csumOffset: 6 }) }, { data: f }]);
    assert.equal(wire.sent.length, 1);
    assert.ok(l4ChecksumOk(wire.sent[0]!, IP_PROTO_UDP));
    assert.deepEqual(d.used(1).map((u) => u.len), [0]);
  });

  it('cuts a TSO segment into wire frames with sequence numbers and checksums', () => {
    const { d, wire } = setup(NET_F_MAC | NET_F_CSUM | NET_F_HOST_TSO4);
    const f = tcp(4000, 1_000_000, 0x19);
    d.submit(1, [{ data: hdr({ flags: 1, gsoType: 1, gsoSize: 1000, csumStart: 34, csumOffset: 16 }) }, { data: f }]);
    assert.equal(wire.sent.length, 4);
    wire.sent.forEach((s, i) => {
      assert.equal(s.length, 54 + 1000);
      assert.equal(rd32(s, 38), 1_000_000 + 1000 * i);
      assert.equal(s[47]! & 1, i === 3 ? 1 : 0, 'FIN only on the last');
      assert.ok(l4ChecksumOk(s, IP_PROTO_TCP));
      assert.equal(sum16(s, 14, 34), 0xffff, 'IP header checksum');
      assert.equal(s[54 + 5], (1000 * i + 5) & 255);
    });
  });

  it('drops and counts malformed frames without failing the device', () => {
    const { d, wire, net } = setup(NET_F_MAC | NET_F_CSUM);
    d.submit(1, [{ data: new Uint8Array(8) }]); // shorter than the header
    d.submit(1, [{ data: hdr() }, { data: new Uint8Array(10) }]); // runt
    d.submit(1, [{ data: hdr() }, { data: new Uint8Array(3000) }]); // oversize without TSO
    d.submit(1, [{ data: hdr({ flags: 1, csumStart: 100, csumOffset: 6 }) }, { data: udp(10) }]); // checksum outside the frame
    d.submit(1, [{ data: hdr({ gsoType: 1, gsoSize: 100 }) }, { data: udp(10) }]); // TSO not negotiated
    assert.equal(wire.sent.length, 0);
    const c = net.counters();
    assert.deepEqual([c['tx malformed'], c['tx runt'], c['tx oversize'], c['tx dropped']], [3, 1, 1, 5]);
    assert.equal(d.r(REG.STATUS) & STATUS_DEVICE_NEEDS_RESET, 0);
    d.submit(1, [{ data: hdr() }, { data: udp(10) }]);
    assert.equal(wire.sent.length, 1, 'still transmitting');
  });

  it('spreads a frame over mergeable buffers and counts them in num_buffers', () => {
    const { d, wire } = setup(NET_F_MAC | NET_F_MRG_RXBUF);
    const bufs = [0, 1, 2, 3].map(() => d.submit(0, [{ room: 512 }]).bufs[0]!);
    const f = udp(1400);
    wire.rx.receive(f);
    const used = d.used(0);
    assert.deepEqual(used.map((u) => u.len), [512, 512, NET_HDR + f.length - 2 * 512]);
    const got = new Uint8Array(used.reduce((n, u) => n + u.len, 0));
    let at = 0;
    used.forEach((u, i) => {
      got.set(d.read(bufs[i]!.addr, u.len), at);
      at += u.len;
    });
    assert.equal(got[10], 3, 'num_buffers');
    assert.deepEqual(got.subarray(NET_HDR), f);
  });

  it('holds frames until buffers come, and drops a frame a whole buffer cannot hold', () => {
    const { d, wire, net } = setup(NET_F_MAC);
    wire.rx.receive(udp(100));
    assert.equal(wire.rx.backlog(), 1);
    d.submit(0, [{ room: 200 }]);
    assert.equal(d.used(0)[0]!.len, NET_HDR + 142);
    wire.rx.receive(udp(1000));
    d.submit(0, [{ room: 500 }]);
    assert.equal(net.counters()['rx dropped'], 1);
    assert.deepEqual(d.used(0), []);
  });

  it('bounds what waits for the guest by frames and by bytes', () => {
    const small = setup(NET_F_MAC);
    for (let i = 0; i < RX_BACKLOG + 3; i++) small.wire.rx.receive(udp(10));
    assert.equal(small.net.counters()['rx dropped'], 3);
    const large = setup(NET_F_MAC | NET_F_MRG_RXBUF | NET_F_GUEST_CSUM | NET_F_GUEST_TSO4);
    const seg = tcp(60000, 1);
    const fits = Math.floor(RX_BACKLOG_BYTES / seg.length);
    for (let i = 0; i < fits + 2; i++) large.wire.rx.receive(seg, { checksumValid: true, gsoSize: 1460 });
    assert.equal(large.net.counters()['rx dropped'], 2);
    assert.equal(large.wire.rx.backlog(), fits);
  });

  it('asks the guest to announce itself, and the control queue acknowledges it', () => {
    const { d, net } = setup(NET_F_MAC | NET_F_STATUS | NET_F_CTRL_VQ | NET_F_GUEST_ANNOUNCE);
    d.ack();
    assert.ok(net.announce());
    assert.ok(d.ack() & INT_CONFIG);
    assert.equal(d.mmio.read(REG.CONFIG + 6, 2), 1 | NET_S_ANNOUNCE);
    const { bufs } = d.submit(2, [{ data: new Uint8Array([3, 0]) }, { room: 1 }]);
    assert.equal(d.read(bufs[1]!.addr, 1)[0], 0, 'VIRTIO_NET_OK');
    assert.equal(d.mmio.read(REG.CONFIG + 6, 2), 1);
  });

  it('saves its state and refuses bad state by name', () => {
    const { net } = setup(NET_F_MAC | NET_F_STATUS);
    const s = net.save();
    assert.deepEqual(s, { status: 1, mac: '52:54:00:12:34:56', backend: null });
    net.restore(s);
    net.restore({ status: 1, backend: null }); // saved before the MAC was kept
    for (const bad of [
      { status: 9, backend: null }, { status: 1 }, { status: 1, backend: null, x: 1 }, { status: 1, backend: { a: 1 } },
      { status: 1, mac: 'nope', backend: null }, { status: 1, mac: 7, backend: null },
    ]) {
      assert.throws(() => net.restore(bad), (e) => isVirtusError(e, 'BAD_STATE'));
    }
  });

  it('restored under another MAC address (a clone), asks the driver for a reset, which reads the new one', () => {
    const a = setup(NET_F_MAC | NET_F_STATUS);
    const saved = a.d.mmio.save();
    // The same machine (a restore, a migration): nothing to ask.
    const same = new Driver(new VirtioNet(new Wire(), { mac: MAC }), 4 << 20);
    same.mmio.restore(saved);
    assert.equal(same.r(REG.STATUS) & STATUS_DEVICE_NEEDS_RESET, 0);
    assert.equal(same.r(REG.INTERRUPT_STATUS) & INT_CONFIG, 0);

    const fresh = new Uint8Array([0x52, 0x54, 0, 0xab, 0xcd, 0xef]);
    const wire = new Wire();
    const clone = new Driver(new VirtioNet(wire, { mac: fresh }), 4 << 20);
    clone.mmio.restore(saved);
    assert.ok(clone.r(REG.STATUS) & STATUS_DEVICE_NEEDS_RESET, 'DEVICE_NEEDS_RESET');
    assert.ok(clone.r(REG.INTERRUPT_STATUS) & INT_CONFIG, 'a configuration change interrupt');
    assert.deepEqual(clone.errors, [], 'not a driver error');
    clone.init({ features: NET_F_MAC | NET_F_STATUS });
    assert.equal(clone.r(REG.STATUS) & STATUS_DEVICE_NEEDS_RESET, 0);
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => clone.mmio.read(REG.CONFIG + i, 1)), [...fresh]);
    clone.submit(1, [{ data: hdr() }, { data: udp(10) }]);
    assert.equal(wire.sent.length, 1);
  });
});
