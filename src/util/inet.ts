/**
 * Reading and writing the headers of Ethernet II (IEEE 802.3), ARP (RFC 826), IPv4
 * (RFC 791), UDP (RFC 768) and TCP (RFC 9293), and the Internet checksum (RFC 1071).
 * Parsers take untrusted bytes and return null for anything malformed; nothing throws.
 */

export const ETH_HEADER = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const IP_PROTO_ICMP = 1;
export const IP_PROTO_TCP = 6;
export const IP_PROTO_UDP = 17;
/** The largest Ethernet payload without jumbo frames, and so the largest frame (+ a VLAN tag). */
export const MTU = 1500;
export const MAX_FRAME = ETH_HEADER + 4 + MTU;
/** Shortest frame accepted: an Ethernet header and something after it. */
export const MIN_FRAME = ETH_HEADER;

export const BROADCAST_MAC = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** `aa:bb:cc:dd:ee:ff`. */
export function macString(b: Uint8Array, at = 0): string {
  const h: string[] = [];
  for (let i = 0; i < 6; i++) h.push(b[at + i]!.toString(16).padStart(2, '0'));
  return h.join(':');
}

/** Parses `aa:bb:cc:dd:ee:ff` (or `-` separated); null when malformed. */
export function parseMac(text: string): Uint8Array | null {
  const m = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(text);
  if (!m) return null;
  return new Uint8Array([m[1], m[3], m[4], m[5], m[6], m[7]].map((x) => parseInt(x!, 16)));
}

/** Dotted IPv4 address as a 32-bit unsigned number; null when malformed. */
export function parseIp(text: string): number | null {
  const p = text.split('.');
  if (p.length !== 4 || !p.every((x) => /^(0|[1-9][0-9]{0,2})$/.test(x) && Number(x) < 256)) return null;
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/** A 32-bit address in dotted form. */
export function ipString(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** The ones'-complement sum of `b[from, to)` folded to 16 bits, added to `init` (RFC 1071). */
export function sum16(b: Uint8Array, from: number, to: number, init = 0): number {
  let s = init;
  let i = from;
  for (; i + 1 < to; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < to) s += b[i]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The Internet checksum of `b[from, to)` with `init` folded in (the value to store). */
export function checksum(b: Uint8Array, from: number, to: number, init = 0): number {
  return ~sum16(b, from, to, init) & 0xffff;
}

/** The TCP/UDP pseudo-header sum for IPv4 (RFC 9293 §3.1), not complemented. */
export function pseudoSum(b: Uint8Array, ip: number, proto: number, len: number): number {
  let s = sum16(b, ip + 12, ip + 20);
  s += proto + len;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export function rd16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}
export function rd32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}
export function wr16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 255;
  b[at + 1] = v & 255;
}
export function wr32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 255;
  b[at + 1] = (v >>> 16) & 255;
  b[at + 2] = (v >>> 8) & 255;
  b[at + 3] = v & 255;
}

/** An IPv4 packet inside a frame, its header checked (RFC 791 §3.1). */
export interface Ipv4 {
  /** Offset of the IP header in the frame. */
  at: number;
  headerLen: number;
  /** Offset just past the packet (total length; trailing Ethernet padding excluded). */
  end: number;
  proto: number;
  src: number;
  dst: number;
  ttl: number;
  /** True for a fragment (MF set or a non-zero offset). */
  fragment: boolean;
}

/**
 * The IPv4 packet of an Ethernet frame whose EtherType is IPv4, or null when the header is
 * malformed: version, header length, total length within the frame, header checksum.
 */
export function parseIpv4(f: Uint8Array, at = ETH_HEADER): Ipv4 | null {
  if (f.length < at + 20) return null;
  const vihl = f[at]!;
  const headerLen = (vihl & 15) * 4;
  if (vihl >> 4 !== 4 || headerLen < 20 || f.length < at + headerLen) return null;
  const total = rd16(f, at + 2);
  // A TSO segment from the guest may carry 0 here when it exceeds 64 KiB; we never offer that.
  if (total < headerLen || at + total > f.length) return null;
  if (sum16(f, at, at + headerLen) !== 0xffff) return null;
  const frag = rd16(f, at + 6);
  return {
    at, headerLen, end: at + total, proto: f[at + 9]!, src: rd32(f, at + 12), dst: rd32(f, at + 16), ttl: f[at + 8]!,
    fragment: (frag & 0x2000) !== 0 || (frag & 0x1fff) !== 0,
  };
}

/** Writes an Ethernet header. */
export function writeEth(f: Uint8Array, dst: Uint8Array, src: Uint8Array, type: number): void {
  f.set(dst.subarray(0, 6), 0);
  f.set(src.subarray(0, 6), 6);
  wr16(f, 12, type);
}

let ipId = 1;

/** Writes a 20-byte IPv4 header at `at` for a packet of `total` bytes, with its checksum. */
export function writeIpv4(f: Uint8Array, at: number, o: { src: number; dst: number; proto: number; total: number; ttl?: number }): void {
  f[at] = 0x45;
  f[at + 1] = 0;
  wr16(f, at + 2, o.total);
  wr16(f, at + 4, ipId);
  ipId = (ipId + 1) & 0xffff;
  wr16(f, at + 6, 0x4000); // DF
  f[at + 8] = o.ttl ?? 64;
  f[at + 9] = o.proto;
  wr16(f, at + 10, 0);
  wr32(f, at + 12, o.src);
  wr32(f, at + 16, o.dst);
  wr16(f, at + 10, checksum(f, at, at + 20));
}

/**
 * A whole IPv4 frame: Ethernet + IP header + `l4` (a UDP/TCP/ICMP header and payload whose
 * checksum field is filled here for UDP/TCP at `csumAt` within l4, or -1 for none).
 */
export function ipv4Frame(o: {
  dstMac: Uint8Array; srcMac: Uint8Array; src: number; dst: number; proto: number; l4Len: number; csumAt: number;
  fill: (f: Uint8Array, l4: number) => void;
}): Uint8Array {
  const l4 = ETH_HEADER + 20;
  const f = new Uint8Array(l4 + o.l4Len);
  writeEth(f, o.dstMac, o.srcMac, ETHERTYPE_IPV4);
  writeIpv4(f, ETH_HEADER, { src: o.src, dst: o.dst, proto: o.proto, total: 20 + o.l4Len });
  o.fill(f, l4);
  if (o.csumAt >= 0) {
    wr16(f, l4 + o.csumAt, 0);
    let c = checksum(f, l4, f.length, pseudoSum(f, ETH_HEADER, o.proto, o.l4Len));
    if (o.proto === IP_PROTO_UDP && c === 0) c = 0xffff; // RFC 768: 0 means "no checksum"
    wr16(f, l4 + o.csumAt, c);
  }
  return f;
}

/** A UDP frame from `src:sport` to `dst:dport`. */
export function udpFrame(o: { dstMac: Uint8Array; srcMac: Uint8Array; src: number; dst: number; sport: number; dport: number; data: Uint8Array }): Uint8Array {
  return ipv4Frame({
    ...o, proto: IP_PROTO_UDP, l4Len: 8 + o.data.length, csumAt: 6,
    fill: (f, l4) => {
      wr16(f, l4, o.sport);
      wr16(f, l4 + 2, o.dport);
      wr16(f, l4 + 4, 8 + o.data.length);
      f.set(o.data, l4 + 8);
    },
  });
}
