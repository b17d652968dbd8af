/**
 * The `user` backend: a NAT gateway inside the monitor, as QEMU's `-netdev user` gives one.
 * The guest sees a router at the host address (10.0.2.2 by default) that answers ARP, ICMP
 * echo and DHCP (handing out 10.0.2.15/24, the router, DNS at 10.0.2.3); DNS queries to the
 * DNS address are relayed to the host's resolver; TCP and UDP to any other address are
 * carried on host sockets (the router's own address is the host's loopback, as in slirp).
 * `hostfwd` rules bring host connections in (the Node host owns the listeners and hands each
 * accepted connection or datagram to forwardTcp/forwardUdp). With `restrict`, nothing leaves:
 * only DHCP, ARP, ICMP to the router and forwarded ports work.
 *
 * Everything from the guest is untrusted; malformed frames are dropped and counted. What
 * can be saved is saved (the guest's address, the connections' sequence numbers); host
 * sockets cannot move, so restore() resets the guest's side of each connection that was
 * open (the guest sees ECONNRESET at once rather than a connection that hangs).
 */
import { VirtusError } from '../../util/errors.ts';
import type { NetBackend, NetReceiver } from '../../util/net-backend.ts';
import type { HostFwd, UserOptions } from '../nic.ts';
import {
  BROADCAST_MAC, ETH_HEADER, ETHERTYPE_ARP, ETHERTYPE_IPV4, IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP, MAX_FRAME,
  checksum, ipString, ipv4Frame, macString, parseIp, parseIpv4, parseMac, rd16, rd32, udpFrame, wr16, wr32, writeEth, type Ipv4,
} from '../../util/inet.ts';
import { dhcpReply } from './dhcp.ts';
import type { HostTcp, HostUdp, NatHost, TcpEvents } from './host.ts';
import { ACK, RST, SYN, TcpConn, type OutSeg, type TcpConnState, type TcpSeg } from './tcp.ts';

/** The router's MAC: slirp's 52:55 prefix and the router's address. */
function routerMac(ip: number): Uint8Array {
  return new Uint8Array([0x52, 0x55, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255]);
}

const UDP_IDLE_MS = 60_000;
const MAX_TCP = 1024;
const MAX_UDP = 256;
/** Guests the NAT remembers (address → MAC), oldest forgotten first. */
const MAX_HOSTS = 4096;
/** Ports the router uses as its side of forwarded connections. */
const EPHEMERAL = 49152;

interface UdpFlow {
  sock: HostUdp;
  last: number;
  /** Host address:port → the address:port the guest sent to (e.g. 127.0.0.1:p → 10.0.2.2:p). */
  back: Map<string, [number, number]>;
}

interface UdpFwd {
  guestIp: number;
  guestPort: number;
  reply: (b: Uint8Array) => void;
  last: number;
}

/** Saved NAT state: the DHCP leases and the connections open (to be reset on restore). */
export interface UserNetState {
  leases: Array<{ mac: string; ip: number }>;
  conns: TcpConnState[];
}

export class UserNet implements NetBackend {
  readonly name = 'user';
  readonly acceptsOffload = true;
  readonly producesLargeFrames = true;
  private rx: NetReceiver | null = null;
  private largeFrames: () => boolean = () => false;
  private readonly gw: number;
  private readonly dns: number;
  private readonly net: number;
  private readonly mask: number;
  /** The first DHCP address: where hostfwd goes unless a rule names another. */
  private readonly firstIp: number;
  /** The NIC's MAC when the NAT serves one NIC; null on a switch (MACs are learned). */
  private readonly nicMac: Uint8Array | null;
  private readonly gwMac: Uint8Array;
  /** Guests' addresses and MACs, learned from what they send and from DHCP. */
  private readonly hosts = new Map<number, Uint8Array>();
  /** DHCP leases: MAC → address. */
  private readonly leases = new Map<string, number>();
  private readonly tcp = new Map<string, TcpConn>();
  private readonly udp = new Map<string, UdpFlow>();
  private readonly udpFwd = new Map<number, UdpFwd>();
  private readonly udpFwdKeys = new Map<string, number>();
  private nextPort = EPHEMERAL;
  private readonly stats = {
    'nat tcp connections': 0, 'nat tcp refused': 0, 'nat udp flows': 0, 'nat dns queries': 0, 'nat dhcp replies': 0,
    'nat icmp echo': 0, 'nat dropped': 0, 'nat restricted': 0, 'nat not for us': 0,
  };

  /** `mac` is the NIC's when the NAT serves one NIC directly, null when it is a switch's port. */
  constructor(
    readonly options: UserOptions,
    mac: string | null,
    private readonly host: NatHost,
  ) {
    this.gw = parseIp(options.host)!;
    this.dns = parseIp(options.dns)!;
    this.mask = options.prefix === 0 ? 0 : (0xffffffff << (32 - options.prefix)) >>> 0;
    this.net = (parseIp(options.net)! & this.mask) >>> 0;
    this.firstIp = parseIp(options.dhcpStart)!;
    this.nicMac = mac === null ? null : parseMac(mac);
    this.gwMac = routerMac(this.gw);
  }

  private inNet(ip: number): boolean {
    return ((ip & this.mask) >>> 0) === this.net;
  }

  /** The MAC frames to `ip` go to, or null when no guest has it. */
  private macFor(ip: number): Uint8Array | null {
    return this.hosts.get(ip) ?? this.nicMac;
  }

  /** The address DHCP gives `mac`: its lease, else the next free one from dhcpstart. */
  private lease(mac: string): number | null {
    const have = this.leases.get(mac);
    if (have !== undefined) return have;
    const taken = new Set(this.leases.values());
    for (let ip = this.firstIp; this.inNet(ip) && ip !== ((this.net | ~this.mask) >>> 0); ip = (ip + 1) >>> 0) {
      if (!taken.has(ip) && ip !== this.gw && ip !== this.dns) {
        this.leases.set(mac, ip);
        return ip;
      }
    }
    return null;
  }

  attach(rx: NetReceiver, o: { guestLargeFrames: () => boolean }): void {
    this.rx = rx;
    this.largeFrames = o.guestLargeFrames;
  }

  counters(): Record<string, number> {
    return { ...this.stats, 'nat open tcp': this.tcp.size };
  }

  private deliver(f: Uint8Array, gsoSize = 0): void {
    this.rx?.receive(f, { checksumValid: true, gsoSize });
    this.host.wake();
  }

  private drop(): void {
    this.stats['nat dropped']++;
  }

  /**
   * A frame from the guest. A router takes only frames sent to its own MAC or to a group
   * address (ARP, DHCP): on a switch it also sees frames flooded for other machines (a
   * destination the switch has not learnt, as while a machine moves), and those are not its
   * business — answering them with resets would break the other machines' connections.
   */
  send(f: Uint8Array): void {
    if (f.length < ETH_HEADER) return this.drop();
    if (!(f[0]! & 1) && !this.gwMac.every((b, i) => f[i] === b)) {
      this.stats['nat not for us']++;
      return;
    }
    const type = rd16(f, 12);
    if (type === ETHERTYPE_ARP) return this.arp(f);
    if (type !== ETHERTYPE_IPV4) return this.drop();
    const ip = parseIpv4(f);
    if (!ip || ip.fragment) return this.drop();
    if (ip.src !== 0 && this.inNet(ip.src) && !(f[6]! & 1)) {
      const known = this.hosts.get(ip.src);
      if (!known && this.hosts.size >= MAX_HOSTS) this.hosts.delete(this.hosts.keys().next().value!);
      if (!known || known.some((b, i) => b !== f[6 + i])) this.hosts.set(ip.src, f.slice(6, 12));
    }
    if (ip.proto === IP_PROTO_UDP) this.udpIn(f, ip);
    else if (ip.proto === IP_PROTO_TCP) this.tcpIn(f, ip);
    else if (ip.proto === IP_PROTO_ICMP) this.icmpIn(f, ip);
    else this.drop();
  }

  /** RFC 826: answers who-has for the router and DNS addresses. */
  private arp(f: Uint8Array): void {
    if (f.length < ETH_HEADER + 28 || rd16(f, 14) !== 1 || rd16(f, 16) !== ETHERTYPE_IPV4 || f[18] !== 6 || f[19] !== 4) return this.drop();
    if (rd16(f, 20) !== 1) return; // replies and gratuitous announcements need no answer
    const target = rd32(f, 38);
    if (target !== this.gw && target !== this.dns) return;
    const r = new Uint8Array(ETH_HEADER + 28);
    writeEth(r, f.subarray(6, 12), this.gwMac, ETHERTYPE_ARP);
    r.set([0, 1, 8, 0, 6, 4, 0, 2], 14);
    r.set(this.gwMac, 22);
    wr32(r, 28, target);
    r.set(f.subarray(22, 32), 32); // the asker's MAC and address
    this.deliver(r);
  }

  /** RFC 792: echo requests to the router or DNS address are answered. */
  private icmpIn(f: Uint8Array, ip: Ipv4): void {
    const at = ip.at + ip.headerLen;
    if (ip.end - at < 8 || f[at] !== 8) return this.drop();
    if (ip.dst !== this.gw && ip.dst !== this.dns) return this.drop();
    this.stats['nat icmp echo']++;
    const body = f.slice(at, ip.end);
    body[0] = 0;
    wr16(body, 2, 0);
    wr16(body, 2, checksum(body, 0, body.length));
    this.deliver(ipv4Frame({ dstMac: f.subarray(6, 12), srcMac: this.gwMac, src: ip.dst, dst: ip.src, proto: IP_PROTO_ICMP, l4Len: body.length, csumAt: -1, fill: (o, l4) => o.set(body, l4) }));
  }

  /** The host address a guest destination stands for, or null when it must not leave. */
  private hostAddr(dst: number, dport: number): { addr: string; port: number } | null {
    if (this.options.restrict) {
      this.stats['nat restricted']++;
      return null;
    }
    if (dst === this.gw) return { addr: '127.0.0.1', port: dport };
    if (dst === this.dns) return dport === 53 ? this.host.resolver() : null;
    if (((dst & this.mask) >>> 0) === this.net || dst >>> 28 === 14 || dst === 0xffffffff || dst >>> 24 === 127 || dst === 0) return null;
    return { addr: ipString(dst), port: dport };
  }

  private udpIn(f: Uint8Array, ip: Ipv4): void {
    const at = ip.at + ip.headerLen;
    if (ip.end - at < 8) return this.drop();
    const sport = rd16(f, at);
    const dport = rd16(f, at + 2);
    const len = rd16(f, at + 4);
    if (len < 8 || at + len > ip.end) return this.drop();
    const data = f.slice(at + 8, at + len);
    if (dport === 67) return this.dhcp(data);
    if (!this.inNet(ip.src)) return this.drop();
    const fwd = ip.dst === this.gw ? this.udpFwd.get(dport) : undefined;
    if (fwd && fwd.guestPort === sport && fwd.guestIp === ip.src) {
      fwd.last = this.host.now();
      fwd.reply(data);
      return;
    }
    const to = this.hostAddr(ip.dst, dport);
    if (!to) return this.drop();
    if (ip.dst === this.dns) this.stats['nat dns queries']++;
    const gip = ip.src;
    const key = `${gip}:${sport}`;
    let flow = this.udp.get(key);
    if (!flow) {
      if (this.udp.size >= MAX_UDP) return this.drop();
      const back = new Map<string, [number, number]>();
      const sock = this.host.openUdp((b, addr, port) => this.udpBack(gip, sport, b, addr, port));
      flow = { sock, last: 0, back };
      this.udp.set(key, flow);
      this.stats['nat udp flows']++;
    }
    flow.last = this.host.now();
    flow.back.set(`${to.addr}:${to.port}`, [ip.dst, dport]);
    flow.sock.send(data, to.addr, to.port);
  }

  /** A datagram from the host for the guest's port `gip:gport`. */
  private udpBack(gip: number, gport: number, b: Uint8Array, addr: string, port: number): void {
    const flow = this.udp.get(`${gip}:${gport}`);
    const mac = this.macFor(gip);
    if (!flow || !mac) return;
    flow.last = this.host.now();
    const from = flow.back.get(`${addr}:${port}`) ?? (parseIp(addr) !== null ? [parseIp(addr)!, port] : null);
    if (!from || b.length > MAX_FRAME - 42) return;
    this.deliver(udpFrame({ dstMac: mac, srcMac: this.gwMac, src: from[0], dst: gip, sport: from[1], dport: gport, data: b }));
  }

  private dhcp(data: Uint8Array): void {
    if (data.length < 34) return this.drop();
    const client = this.lease(macString(data, 28));
    if (client === null) return this.drop();
    const reply = dhcpReply(data, { server: this.gw, client, mask: this.mask, router: this.gw, dns: this.dns, hostname: this.options.hostname });
    if (!reply) return;
    this.stats['nat dhcp replies']++;
    // To the client's MAC and the broadcast address: it has no address yet (RFC 2131 §4.1).
    const chaddr = data.subarray(28, 34);
    this.deliver(udpFrame({ dstMac: data[10]! & 0x80 ? BROADCAST_MAC : chaddr, srcMac: this.gwMac, src: this.gw, dst: 0xffffffff, sport: 67, dport: 68, data: reply }));
  }

  /** RFC 9293 §3.1: the header and the options the NAT reads (MSS, window scale). */
  private parseTcp(f: Uint8Array, ip: Ipv4): TcpSeg | null {
    const at = ip.at + ip.headerLen;
    if (ip.end - at < 20) return null;
    const doff = (f[at + 12]! >> 4) * 4;
    if (doff < 20 || at + doff > ip.end) return null;
    let mss: number | null = null;
    let wscale: number | null = null;
    for (let i = at + 20; i < at + doff;) {
      const kind = f[i]!;
      if (kind === 0) break;
      if (kind === 1) {
        i++;
        continue;
      }
      const len = f[i + 1] ?? 0;
      if (len < 2 || i + len > at + doff) return null;
      if (kind === 2 && len === 4) mss = rd16(f, i + 2);
      if (kind === 3 && len === 3) wscale = f[i + 2]!;
      i += len;
    }
    return {
      sport: rd16(f, at), dport: rd16(f, at + 2), seq: rd32(f, at + 4), ack: rd32(f, at + 8), flags: f[at + 13]! & 0x3f,
      window: rd16(f, at + 14), mss, wscale, data: f.subarray(at + doff, ip.end),
    };
  }

  private tcpIn(f: Uint8Array, ip: Ipv4): void {
    const s = this.parseTcp(f, ip);
    if (!s || !this.inNet(ip.src)) return this.drop();
    // Another machine of the segment: nothing to answer, no connection to make through the NAT.
    if (this.inNet(ip.dst) && ip.dst !== this.gw && ip.dst !== this.dns) {
      this.stats['nat not for us']++;
      return;
    }
    const key = `${ip.src}:${s.sport}:${ip.dst}:${s.dport}`;
    const c = this.tcp.get(key);
    if (c) return c.segment(s);
    if ((s.flags & (SYN | ACK | RST)) !== SYN) {
      // RFC 9293 §3.10.7.1: a segment for no connection gets a reset (unless it is one).
      if (!(s.flags & RST)) this.rstFor(ip.src, ip.dst, s);
      return;
    }
    const to = this.hostAddr(ip.dst, s.dport);
    if (!to || this.tcp.size >= MAX_TCP) {
      this.stats['nat tcp refused']++;
      this.rstFor(ip.src, ip.dst, s);
      return;
    }
    this.stats['nat tcp connections']++;
    const conn = TcpConn.fromGuest(this.owner, s, ip.src, ip.dst, (ev) => this.host.connectTcp(to.addr, to.port, ev));
    this.tcp.set(key, conn);
  }

  private rstFor(guest: number, from: number, s: TcpSeg): void {
    const ack = s.flags & ACK;
    const seg: OutSeg = {
      seq: ack ? s.ack : 0, ack: (s.seq + s.data.length + (s.flags & SYN ? 1 : 0) + (s.flags & 1 ? 1 : 0)) >>> 0,
      flags: ack ? RST : RST | ACK, window: 0, options: [], len: 0,
    };
    const f = this.tcpFrame(guest, from, s.dport, s.sport, seg);
    if (f) this.deliver(f);
  }

  private tcpFrame(dst: number, src: number, sport: number, dport: number, s: OutSeg): Uint8Array | null {
    const opts = s.options.length;
    const hl = 20 + ((opts + 3) & ~3);
    const mac = this.macFor(dst);
    if (!mac) return null;
    return ipv4Frame({
      dstMac: mac, srcMac: this.gwMac, src, dst, proto: IP_PROTO_TCP, l4Len: hl + s.len, csumAt: 16,
      fill: (o, l4) => {
        wr16(o, l4, sport);
        wr16(o, l4 + 2, dport);
        wr32(o, l4 + 4, s.seq);
        wr32(o, l4 + 8, s.ack);
        o[l4 + 12] = (hl / 4) << 4;
        o[l4 + 13] = s.flags;
        wr16(o, l4 + 14, s.window);
        for (let i = 0; i < opts; i++) o[l4 + 20 + i] = s.options[i]!;
        for (let i = opts; i < hl - 20; i++) o[l4 + 20 + i] = 1; // NOP padding
        s.fill?.(o, l4 + hl);
      },
    });
  }

  /** Connections owing the guest an acknowledgement (see TcpConn.flushAck), with when it is due. */
  private readonly owed = new Map<TcpConn, number>();
  private timer = false;

  /**
   * Sends the acknowledgements that are due: call at slice boundaries. Deferring them lets a
   * guest that writes in small pieces keep writing while its stack coalesces them (Nagle):
   * acknowledged at once, it sends one small segment per write, each costing a transmit, an
   * interrupt and a receive. A host timer covers a guest gone idle waiting for them.
   */
  flush(): void {
    if (this.owed.size === 0) return;
    const now = this.host.now();
    let next = Infinity;
    for (const [c, due] of this.owed) {
      if (due <= now) {
        this.owed.delete(c);
        c.flushAck();
      } else next = Math.min(next, due);
    }
    if (next !== Infinity && !this.timer) {
      this.timer = true;
      this.host.later(next - now, () => {
        this.timer = false;
        this.flush();
      });
    }
  }

  private readonly owner = {
    emit: (c: TcpConn, s: OutSeg) => {
      const f = this.tcpFrame(c.gaddr, c.raddr, c.rport, c.gport, s);
      if (f) this.deliver(f, s.len > c.mss ? c.mss : 0);
    },
    ackLater: (c: TcpConn, delayMs: number) => {
      const due = this.host.now() + delayMs;
      this.owed.set(c, Math.min(due, this.owed.get(c) ?? Infinity));
    },
    remove: (c: TcpConn) => {
      const key = `${c.gaddr}:${c.gport}:${c.raddr}:${c.rport}`;
      if (this.tcp.get(key) === c) this.tcp.delete(key);
    },
    segmentLimit: (mss: number) => (this.largeFrames() ? Math.max(mss, Math.floor(60000 / mss) * mss) : mss),
    now: () => this.host.now(),
  };

  private ephemeral(used: (p: number) => boolean): number {
    for (let i = 0; i < 65536 - EPHEMERAL; i++) {
      const p = this.nextPort;
      this.nextPort = p + 1 >= 65536 ? EPHEMERAL : p + 1;
      if (!used(p)) return p;
    }
    return -1;
  }

  /** A host connection accepted on a `hostfwd` TCP listener: connects it to the guest's port. */
  forwardTcp(rule: HostFwd, attach: (ev: TcpEvents) => HostTcp): void {
    const gip = rule.guestAddr ? parseIp(rule.guestAddr)! : this.firstIp;
    const rport = this.ephemeral((p) => this.tcp.has(`${gip}:${rule.guestPort}:${this.gw}:${p}`));
    if (rport < 0 || this.tcp.size >= MAX_TCP || !this.macFor(gip)) {
      attach({ connected() {}, data() {}, ended() {}, closed() {}, drained() {} }).destroy();
      return;
    }
    this.stats['nat tcp connections']++;
    const conn = TcpConn.fromHost(this.owner, gip, rule.guestPort, this.gw, rport, attach);
    this.tcp.set(`${gip}:${rule.guestPort}:${this.gw}:${rport}`, conn);
  }

  /**
   * A datagram on a `hostfwd` UDP listener from the host peer `peer` (its address:port):
   * sent to the guest's port from a router port kept for that peer; the guest's answers to
   * that port go back through `reply`.
   */
  forwardUdp(rule: HostFwd, peer: string, data: Uint8Array, reply: (b: Uint8Array) => void): void {
    const key = `${rule.hostPort}|${peer}`;
    let port = this.udpFwdKeys.get(key);
    if (port === undefined) {
      if (this.udpFwd.size >= MAX_UDP) return;
      port = this.ephemeral((p) => this.udpFwd.has(p));
      if (port < 0) return;
      this.udpFwdKeys.set(key, port);
    }
    const gip = rule.guestAddr ? parseIp(rule.guestAddr)! : this.firstIp;
    this.udpFwd.set(port, { guestIp: gip, guestPort: rule.guestPort, reply, last: this.host.now() });
    const mac = this.macFor(gip);
    if (data.length > MAX_FRAME - 42 || !mac) return;
    this.deliver(udpFrame({ dstMac: mac, srcMac: this.gwMac, src: this.gw, dst: gip, sport: port, dport: rule.guestPort, data }));
  }

  /** Timers: TCP retransmission, idle UDP flows. Call a few times a second. */
  tick(): void {
    this.flush();
    const now = this.host.now();
    for (const c of [...this.tcp.values()]) c.tick(now);
    for (const [port, f] of this.udp) {
      if (now - f.last > UDP_IDLE_MS) {
        f.sock.close();
        this.udp.delete(port);
      }
    }
    for (const [key, port] of this.udpFwdKeys) {
      const f = this.udpFwd.get(port);
      if (!f || now - f.last > UDP_IDLE_MS) {
        this.udpFwd.delete(port);
        this.udpFwdKeys.delete(key);
      }
    }
  }

  save(): UserNetState {
    return { leases: [...this.leases].map(([mac, ip]) => ({ mac, ip })), conns: [...this.tcp.values()].filter((c) => c.state !== 'connecting').map((c) => c.save()) };
  }

  /**
   * Restores the guest's address; every connection that was open is reset on the guest's
   * side (its host socket did not move with the machine).
   */
  restore(state: unknown): void {
    const fail = (m: string): never => {
      throw new VirtusError('BAD_STATE', `user NAT: ${m}`);
    };
    const obj = (v: unknown, what: string, keys: string[]): Record<string, unknown> => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} must be an object`);
      const o = v as Record<string, unknown>;
      const extra = Object.keys(o).find((k) => !keys.includes(k));
      if (extra !== undefined) fail(`${what} has an unknown field "${extra}"`);
      return o;
    };
    const uint = (o: Record<string, unknown>, k: string, max: number, what: string): number => {
      const v = o[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) fail(`${what}.${k} must be an integer from 0 to ${max}, got ${JSON.stringify(v)}`);
      return v as number;
    };
    const list = (v: unknown, what: string, max: number): unknown[] => {
      if (!Array.isArray(v) || v.length > max) fail(`${what} must be an array of at most ${max} entries`);
      return v as unknown[];
    };
    const top = obj(state, 'state', ['leases', 'conns']);
    const leases = list(top.leases, 'leases', 1 << 16).map((l, i) => {
      const o = obj(l, `leases[${i}]`, ['mac', 'ip']);
      if (typeof o.mac !== 'string' || !parseMac(o.mac)) fail(`leases[${i}].mac must be a MAC address, got ${JSON.stringify(o.mac)}`);
      const ip = uint(o, 'ip', 0xffffffff, `leases[${i}]`);
      if (!this.inNet(ip)) fail(`leases[${i}].ip ${ipString(ip)} is outside the NAT's network`);
      return [o.mac as string, ip] as const;
    });
    const conns = list(top.conns, 'conns', MAX_TCP).map((c, i) => {
      const o = obj(c, `conns[${i}]`, ['gaddr', 'gport', 'raddr', 'rport', 'seq', 'ack']);
      const w = `conns[${i}]`;
      return { gaddr: uint(o, 'gaddr', 0xffffffff, w), gport: uint(o, 'gport', 0xffff, w), raddr: uint(o, 'raddr', 0xffffffff, w), rport: uint(o, 'rport', 0xffff, w), seq: uint(o, 'seq', 0xffffffff, w), ack: uint(o, 'ack', 0xffffffff, w) };
    });
    for (const c of [...this.tcp.values()]) c.reset();
    this.leases.clear();
    for (const [mac, ip] of leases) {
      this.leases.set(mac, ip);
      this.hosts.set(ip, parseMac(mac)!);
    }
    for (const c of conns) {
      const f = this.tcpFrame(c.gaddr, c.raddr, c.rport, c.gport, { seq: c.seq, ack: c.ack, flags: RST | ACK, window: 0, options: [], len: 0 });
      if (f) this.deliver(f);
    }
  }

  close(): void {
    for (const c of [...this.tcp.values()]) c.close();
    for (const f of this.udp.values()) f.sock.close();
    this.udp.clear();
  }
}
