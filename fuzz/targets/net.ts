/**
 * The network's parsers of untrusted input: frames from a guest into the user NAT (ARP, IPv4,
 * ICMP, UDP, DHCP, TCP with host sockets that connect, send and close as the frames go), the
 * NAT's saved state on restore, the stream framing of a link peer, and virtio-net transmit
 * chains from a driver (header fields and frames of any shape) with the NAT behind them.
 */
import { VirtioNet, NET_F_CSUM, NET_F_HOST_TSO4, NET_F_MAC, NET_F_MRG_RXBUF, NET_HDR } from '../../src/devices/virtio/net/net.ts';
import { StreamDecoder, encodeStream } from '../../src/net/framing.ts';
import { parseNic } from '../../src/net/nic.ts';
import { IP_PROTO_TCP, ipv4Frame, udpFrame, wr16, wr32 } from '../../src/util/inet.ts';
import type { HostTcp, NatHost, TcpEvents } from '../../src/net/user/host.ts';
import { UserNet } from '../../src/net/user/nat.ts';
import { wispNatHost } from '../../src/net/user/wisp-host.ts';
import { CONTINUE, DATA, STREAM_TCP, WispClient, u32Payload, wispPacket } from '../../src/net/wisp.ts';
import { Driver } from '../../test/virtio/driver.ts';
import type { FuzzTarget } from '../harness.ts';

const GUEST = new Uint8Array([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
const GW = new Uint8Array([0x52, 0x55, 10, 0, 2, 2]);

/** A host whose sockets do nothing by themselves; the target drives their events. */
function fakeHost(events: TcpEvents[]): NatHost {
  let t = 0;
  const sock: HostTcp = { write() {}, buffered: () => 0, end() {}, destroy() {}, pause() {}, resume() {} };
  return {
    connectTcp: (_a, _p, ev) => {
      events.push(ev);
      return sock;
    },
    openUdp: () => ({ send() {}, close() {} }),
    resolver: () => ({ addr: '127.0.0.1', port: 53 }),
    now: () => (t += 300),
    later() {},
    wake() {},
    warn() {},
  };
}

function nat(events: TcpEvents[]): UserNet {
  const d = parseNic('user');
  if (d.backend.type !== 'user') throw new Error('unreachable');
  const n = new UserNet(d.backend, d.mac, fakeHost(events));
  n.attach({ receive() {}, backlog: () => 0 }, { guestLargeFrames: () => true });
  return n;
}

function tcpSyn(): Uint8Array {
  return ipv4Frame({
    dstMac: GW, srcMac: GUEST, src: 0x0a00020f, dst: 0x0a000202, proto: IP_PROTO_TCP, l4Len: 28, csumAt: 16,
    fill: (f, l4) => {
      wr16(f, l4, 40000);
      wr16(f, l4 + 2, 80);
      wr32(f, l4 + 4, 1000);
      f[l4 + 12] = 7 << 4;
      f[l4 + 13] = 2;
      wr16(f, l4 + 14, 65535);
      f.set([2, 4, 5, 180, 1, 3, 3, 7], l4 + 20);
    },
  });
}

function seedFrames(): Uint8Array[] {
  const arp = new Uint8Array(42);
  arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...GUEST, 8, 6, 0, 1, 8, 0, 6, 4, 0, 1, ...GUEST, 10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2]);
  const dhcp = new Uint8Array(300);
  dhcp.set([1, 1, 6, 0, 1, 2, 3, 4]);
  dhcp.set(GUEST, 28);
  dhcp.set([0x63, 0x82, 0x53, 0x63, 53, 1, 1, 255], 236);
  const discover = udpFrame({ dstMac: GW, srcMac: GUEST, src: 0, dst: 0xffffffff, sport: 68, dport: 67, data: dhcp });
  const dns = udpFrame({ dstMac: GW, srcMac: GUEST, src: 0x0a00020f, dst: 0x0a000203, sport: 5353, dport: 53, data: new Uint8Array(30) });
  const ping = ipv4Frame({ dstMac: GW, srcMac: GUEST, src: 0x0a00020f, dst: 0x0a000202, proto: 1, l4Len: 16, csumAt: -1, fill: (f, l4) => (f[l4] = 8) });
  return [arp, discover, dns, ping, tcpSyn()];
}

/** Frames packed with 2-byte big-endian lengths, so one input is a conversation. */
function pack(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + 2 + f.length, 0));
  let at = 0;
  for (const f of frames) {
    wr16(out, at, f.length);
    out.set(f, at + 2);
    at += 2 + f.length;
  }
  return out;
}

function* unpack(b: Uint8Array): Generator<Uint8Array> {
  let at = 0;
  while (at + 2 <= b.length) {
    const n = (b[at]! << 8) | b[at + 1]!;
    yield b.subarray(at + 2, Math.min(b.length, at + 2 + n));
    at += 2 + n;
  }
}

const natFrames: FuzzTarget = {
  name: 'net-nat',
  seeds: () => [pack(seedFrames()), pack([tcpSyn(), tcpSyn()]), ...seedFrames().map((f) => pack([f]))],
  run(input) {
    const events: TcpEvents[] = [];
    const n = nat(events);
    let i = 0;
    for (const f of unpack(input)) {
      n.send(f.slice());
      // Drive the host side of whatever connections the frames opened.
      for (const ev of events) {
        const k = (i++ + f.length) % 5;
        if (k === 0) ev.connected();
        else if (k === 1) ev.data(f.subarray(0, 100));
        else if (k === 2) ev.ended();
        else if (k === 3) ev.drained();
        else ev.closed(f.length & 1 ? 'reset' : null);
      }
      n.tick();
    }
    const saved = JSON.parse(JSON.stringify(n.save())) as unknown;
    nat([]).restore(saved);
    n.close();
  },
};

const natState: FuzzTarget = {
  name: 'net-nat-state',
  seeds: () => [
    new TextEncoder().encode(JSON.stringify({ leases: [{ mac: '52:54:00:12:34:56', ip: 0x0a00020f }], conns: [{ gaddr: 0x0a00020f, gport: 1, raddr: 2, rport: 3, seq: 4, ack: 5 }] })),
    new TextEncoder().encode(JSON.stringify({ leases: [], conns: [] })),
  ],
  run(input) {
    let state: unknown;
    try {
      state = JSON.parse(new TextDecoder().decode(input));
    } catch {
      return; // not JSON: the snapshot reader refuses it before any device sees it
    }
    nat([]).restore(state);
  },
};

const stream: FuzzTarget = {
  name: 'net-stream',
  seeds: () => [encodeStream(new Uint8Array(60).fill(1)), new Uint8Array([...encodeStream(new Uint8Array(14)), ...encodeStream(new Uint8Array(1514))])],
  run(input) {
    const d = new StreamDecoder();
    for (let i = 0; i < input.length; i += 7) d.push(input.subarray(i, i + 7 + (input[i]! & 15)));
  },
};

let driver: Driver | null = null;
let uses = 0;

/** A virtio-net device with the NAT behind it, driven by the spec driver; remade now and then (the driver never frees). */
function device(): Driver {
  if (!driver || ++uses > 200) {
    const events: TcpEvents[] = [];
    const d = parseNic('user');
    if (d.backend.type !== 'user') throw new Error('unreachable');
    const dev = new VirtioNet(new UserNet(d.backend, d.mac, fakeHost(events)), { mac: GUEST });
    driver = new Driver(dev, 2 << 20);
    driver.init({ features: NET_F_MAC | NET_F_CSUM | NET_F_HOST_TSO4 | NET_F_MRG_RXBUF });
    for (let i = 0; i < 64; i++) driver.submit(0, [{ room: 1526 }], { kick: false });
    driver.kick(0);
    uses = 0;
  }
  return driver;
}

const tx: FuzzTarget = {
  name: 'net-device',
  seeds: () => seedFrames().map((f) => new Uint8Array([...new Uint8Array(NET_HDR), ...f])),
  maxLength: 70_000,
  run(input) {
    const d = device();
    const cut = Math.min(input.length, NET_HDR + (input[0]! & 3));
    d.submit(1, [{ data: input.subarray(0, cut) }, { data: input.subarray(cut) }]);
    d.used(1);
    d.used(0);
  },
};

/** Server messages into a Wisp client with a TCP stream open through the NAT's host interface. */
const wisp: FuzzTarget = {
  name: 'net-wisp',
  seeds: () => {
    const msg = (m: Uint8Array) => [m.length - 1, ...m];
    return [
      new Uint8Array([...msg(wispPacket(CONTINUE, 0, u32Payload(128))), ...msg(wispPacket(DATA, 1, new Uint8Array(20)))]),
      new Uint8Array([...msg(wispPacket(CONTINUE, 2, u32Payload(1))), ...msg(wispPacket(4, 1, new Uint8Array([2])))]),
    ];
  },
  run(input) {
    const c = new WispClient({ send() {}, close() {} });
    const host = wispNatHost(c, { resolver: null, now: () => 0, later() {}, wake() {}, warn() {} });
    const t = host.connectTcp('127.0.0.1', 80, { connected() {}, data() {}, ended() {}, closed() {}, drained() {} });
    t.write(new Uint8Array(10));
    c.open(STREAM_TCP, 'x', 1, { data() {}, closed() {} }).send(new Uint8Array(3));
    // Each chunk (its first byte gives the length) is one message from the server.
    for (let i = 0; i < input.length;) {
      const n = 1 + (input[i]! & 31);
      c.receive(input.subarray(i + 1, i + 1 + n));
      i += 1 + n;
    }
    c.down();
  },
};

export const targets: FuzzTarget[] = [natFrames, natState, stream, tx, wisp];
