/**
 * The user NAT's frame handling on its own, with a host whose sockets the test drives (the
 * Linux tests in user.test.ts are the reference for the whole; these pin down the edges a
 * well-behaved guest does not reach): restrict=on, connections refused by the host, a host
 * that closes first, resets to the guest after a restore, and state refused by name.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NetReceiver } from '../../src/util/net-backend.ts';
import { parseNic } from '../../src/net/nic.ts';
import { IP_PROTO_TCP, ipv4Frame, parseIpv4, rd16, rd32, udpFrame, wr16, wr32 } from '../../src/util/inet.ts';
import type { HostTcp, NatHost, TcpEvents } from '../../src/net/user/host.ts';
import { UserNet } from '../../src/net/user/nat.ts';
import { ACK, FIN, RST, SYN } from '../../src/net/user/tcp.ts';
import { isVirtusError } from '../../src/util/errors.ts';

const GUEST = new Uint8Array([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
const GW = new Uint8Array([0x52, 0x55, 10, 0, 2, 2]);
const GUEST_IP = 0x0a00020f;
const GW_IP = 0x0a000202;

interface Sock {
  addr: string;
  port: number;
  ev: TcpEvents;
  written: number[];
  ended: boolean;
  destroyed: boolean;
}

function setup(nic = 'user') {
  const d = parseNic(nic);
  if (d.backend.type !== 'user') throw new Error('user expected');
  const socks: Sock[] = [];
  const udp: Array<{ data: Uint8Array; addr: string; port: number }> = [];
  const clock = { t: 0, timers: [] as Array<() => void> };
  const host: NatHost = {
    connectTcp(addr, port, ev): HostTcp {
      const s: Sock = { addr, port, ev, written: [], ended: false, destroyed: false };
      socks.push(s);
      return { write: (b) => s.written.push(...b), buffered: () => 0, end: () => void (s.ended = true), destroy: () => void (s.destroyed = true), pause() {}, resume() {} };
    },
    openUdp: () => ({ send: (data, addr, port) => udp.push({ data, addr, port }), close() {} }),
    resolver: () => ({ addr: '127.0.0.1', port: 5353 }),
    now: () => clock.t,
    later: (_ms, f) => void clock.timers.push(f),
    wake() {},
    warn() {},
  };
  const nat = new UserNet(d.backend, d.mac, host);
  const got: Uint8Array[] = [];
  const rx: NetReceiver = { receive: (f) => void got.push(f.slice()), backlog: () => 0 };
  nat.attach(rx, { guestLargeFrames: () => false });
  return { nat, socks, udp, got, clock };
}

function tcp(o: { sport?: number; dst?: number; dport?: number; seq: number; ack?: number; flags: number; data?: number[]; opts?: number[]; dstMac?: Uint8Array }): Uint8Array {
  const opts = o.opts ?? [];
  const data = o.data ?? [];
  return ipv4Frame({
    dstMac: o.dstMac ?? GW, srcMac: GUEST, src: GUEST_IP, dst: o.dst ?? GW_IP, proto: IP_PROTO_TCP, l4Len: 20 + opts.length + data.length, csumAt: 16,
    fill: (f, l4) => {
      wr16(f, l4, o.sport ?? 40000);
      wr16(f, l4 + 2, o.dport ?? 80);
      wr32(f, l4 + 4, o.seq);
      wr32(f, l4 + 8, o.ack ?? 0);
      f[l4 + 12] = ((20 + opts.length) / 4) << 4;
      f[l4 + 13] = o.flags;
      wr16(f, l4 + 14, 65535);
      f.set(opts, l4 + 20);
      f.set(data, l4 + 20 + opts.length);
    },
  });
}

/** The TCP header fields of a frame for the guest. */
function seg(f: Uint8Array) {
  const ip = parseIpv4(f)!;
  const l4 = ip.at + ip.headerLen;
  const doff = (f[l4 + 12]! >> 4) * 4;
  return { src: ip.src, sport: rd16(f, l4), dport: rd16(f, l4 + 2), seq: rd32(f, l4 + 4), ack: rd32(f, l4 + 8), flags: f[l4 + 13]!, data: f.slice(l4 + doff, ip.end) };
}

describe('user NAT', () => {
  it('terminates a guest connection: host connect first, SYN-ACK, data both ways, FINs', () => {
    const { nat, socks, got, clock } = setup();
    nat.send(tcp({ seq: 100, flags: SYN, opts: [2, 4, 5, 180] }));
    assert.equal(got.length, 0, 'no SYN-ACK before the host connection is up');
    assert.deepEqual([socks[0]!.addr, socks[0]!.port], ['127.0.0.1', 80], 'the router address is the host loopback');
    socks[0]!.ev.connected();
    const synAck = seg(got.pop()!);
    assert.equal(synAck.flags, SYN | ACK);
    assert.equal(synAck.ack, 101);
    nat.send(tcp({ seq: 101, ack: synAck.seq + 1, flags: ACK, data: [1, 2, 3] }));
    assert.deepEqual(socks[0]!.written, [1, 2, 3]);
    nat.flush();
    assert.equal(got.length, 0, 'a pure ACK waits a little');
    assert.equal(clock.timers.length, 1, 'with a host timer in case the guest idles');
    clock.t += 20;
    clock.timers.pop()!();
    assert.equal(seg(got.pop()!).ack, 104);
    socks[0]!.ev.data(new Uint8Array([9, 8]));
    const d = seg(got.pop()!);
    assert.deepEqual([...d.data], [9, 8]);
    socks[0]!.ev.ended();
    const fin = seg(got.pop()!);
    assert.equal(fin.flags & FIN, FIN);
    nat.send(tcp({ seq: 104, ack: fin.seq + 1, flags: ACK | FIN }));
    assert.ok(socks[0]!.ended, "the guest's FIN half-closes the host socket");
    assert.equal(nat.counters()['nat open tcp'], 0, 'forgotten once both FINs are acknowledged');
  });

  it('ends, not destroys, the host socket when both sides closed (buffered bytes still go out)', () => {
    const { nat, socks, got } = setup();
    nat.send(tcp({ seq: 100, flags: SYN }));
    socks[0]!.ev.connected();
    const synAck = seg(got.pop()!);
    nat.send(tcp({ seq: 101, ack: synAck.seq + 1, flags: ACK }));
    socks[0]!.ev.ended(); // the host finishes first
    const fin = seg(got.pop()!);
    assert.equal(fin.flags & FIN, FIN);
    nat.send(tcp({ seq: 101, ack: fin.seq + 1, flags: ACK | FIN, data: [1, 2, 3] }));
    assert.deepEqual(socks[0]!.written, [1, 2, 3]);
    assert.ok(socks[0]!.ended);
    assert.equal(socks[0]!.destroyed, false, 'destroying would drop bytes still buffered for the host');
    assert.equal(nat.counters()['nat open tcp'], 0);
  });

  it('resets the guest when the host refuses, and answers segments for no connection with RST', () => {
    const { nat, socks, got } = setup();
    nat.send(tcp({ seq: 5, flags: SYN }));
    socks[0]!.ev.closed('ECONNREFUSED');
    const r = seg(got.pop()!);
    assert.equal(r.flags & RST, RST);
    assert.equal(r.ack, 6);
    nat.send(tcp({ seq: 50, ack: 77, flags: ACK, data: [1] }));
    const r2 = seg(got.pop()!);
    assert.deepEqual([r2.flags, r2.seq], [RST, 77]);
  });

  it('on a switch, ignores frames for another machine: no reset for a stream between two guests', () => {
    // A switch floods a frame whose destination it has not learnt (a machine that is moving)
    // to every port, the NAT's included: a router takes only what is sent to its own MAC.
    const { nat, socks, got } = setup();
    const other = new Uint8Array([0x52, 0x54, 0, 0, 0, 0x0b]);
    nat.send(tcp({ seq: 50, ack: 77, flags: ACK, data: [1], dstMac: other, dst: 0x0a000210, dport: 5000 }));
    nat.send(tcp({ seq: 51, flags: SYN, dstMac: other, dst: 0x0a000210, dport: 5000 }));
    assert.equal(got.length, 0, 'no reset, no answer');
    assert.equal(socks.length, 0, 'no connection made');
    // Addressed to the router's MAC but to another machine of the segment: not ours either.
    nat.send(tcp({ seq: 52, ack: 7, flags: ACK, data: [1], dst: 0x0a000210, dport: 5000 }));
    assert.equal(got.length, 0);
  });

  it('with restrict=on lets nothing out but still answers on the segment', () => {
    const { nat, socks, udp, got } = setup('user,restrict=on');
    nat.send(tcp({ seq: 1, flags: SYN, dst: 0xc0000201 }));
    assert.equal(socks.length, 0);
    assert.equal(seg(got.pop()!).flags & RST, RST);
    nat.send(udpFrame({ dstMac: GW, srcMac: GUEST, src: GUEST_IP, dst: 0x0a000203, sport: 999, dport: 53, data: new Uint8Array(20) }));
    assert.equal(udp.length, 0);
    assert.ok(nat.counters()['nat restricted']! >= 2);
  });

  it('relays DNS to the resolver and answers from the DNS address', () => {
    const { nat, udp } = setup();
    nat.send(udpFrame({ dstMac: GW, srcMac: GUEST, src: GUEST_IP, dst: 0x0a000203, sport: 999, dport: 53, data: new Uint8Array([1, 2]) }));
    assert.deepEqual(udp.map((u) => [u.addr, u.port]), [['127.0.0.1', 5353]]);
  });

  it('forwards host datagrams to the guest and its answers back (hostfwd=udp)', () => {
    const { nat, got } = setup('user,hostfwd=udp:127.0.0.1:5353-:53');
    if (nat.options.hostfwd.length !== 1) throw new Error('rule');
    const replies: number[][] = [];
    nat.forwardUdp(nat.options.hostfwd[0]!, '127.0.0.1:40000', new Uint8Array([7, 7]), (b) => replies.push([...b]));
    const f = got.pop()!;
    const ip = parseIpv4(f)!;
    const l4 = ip.at + ip.headerLen;
    assert.deepEqual([ip.src, ip.dst, rd16(f, l4 + 2)], [GW_IP, GUEST_IP, 53]);
    const routerPort = rd16(f, l4);
    nat.send(udpFrame({ dstMac: GW, srcMac: GUEST, src: GUEST_IP, dst: GW_IP, sport: 53, dport: routerPort, data: new Uint8Array([1, 2, 3]) }));
    assert.deepEqual(replies, [[1, 2, 3]]);
  });

  it('saves open connections and resets them on the guest side after a restore', () => {
    const a = setup();
    a.nat.send(tcp({ seq: 100, flags: SYN }));
    a.socks[0]!.ev.connected();
    const synAck = seg(a.got.pop()!);
    a.nat.send(tcp({ seq: 101, ack: synAck.seq + 1, flags: ACK }));
    const state = JSON.parse(JSON.stringify(a.nat.save()));
    const b = setup();
    b.nat.restore(state);
    const r = seg(b.got.pop()!);
    assert.deepEqual([r.flags, r.sport, r.dport, r.seq, r.ack], [RST | ACK, 80, 40000, synAck.seq + 1, 101]);
    for (const bad of [{}, { leases: [], conns: [{}] }, { leases: [{ mac: 'x', ip: 1 }], conns: [] }, { leases: [{ mac: '52:54:00:00:00:01', ip: 1 }], conns: [] }, { leases: 3, conns: [] }]) {
      assert.throws(() => b.nat.restore(bad), (e) => isVirtusError(e, 'BAD_STATE'), JSON.stringify(bad));
    }
  });
});
