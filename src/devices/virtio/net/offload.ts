/**
 * What a NIC does for a guest that offloads work to it (virtio 1.2 §5.1.6.2): finishing a
 * partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM) and cutting a TCP segment larger than the
 * MTU into wire-sized segments (VIRTIO_NET_HDR_GSO_TCPV4), so that what leaves on a link is
 * exactly what a NIC without offloads would have sent. Input is untrusted: a frame whose
 * headers do not describe what the virtio header claims is refused (null), never thrown on.
 */
import {
  ETH_HEADER, ETHERTYPE_IPV4, IP_PROTO_TCP, MAX_FRAME, checksum, pseudoSum, rd16, rd32, sum16, wr16, wr32,
} from '../../../util/inet.ts';

/** virtio 1.2 §5.1.6: struct virtio_net_hdr flags and gso types. */
export const HDR_F_NEEDS_CSUM = 1;
export const HDR_F_DATA_VALID = 2;
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_ECN = 0x80;

/** The offload fields of a transmitted frame's virtio-net header. */
export interface TxHeader {
  flags: number;
  gsoType: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/**
 * Finishes the checksum the guest left partial: the ones'-complement sum over
 * [csumStart, end) stored at csumStart + csumOffset. False when those offsets lie outside
 * the frame.
 */
export function finishChecksum(f: Uint8Array, csumStart: number, csumOffset: number): boolean {
  const at = csumStart + csumOffset;
  if (csumStart >= f.length || at + 2 > f.length) return false;
  wr16(f, at, checksum(f, csumStart, f.length));
  return true;
}

/** Where the TCP header of an untagged IPv4/TCP frame is, or -1. */
function tcpAt(f: Uint8Array): number {
  if (f.length < ETH_HEADER + 40 || rd16(f, 12) !== ETHERTYPE_IPV4) return -1;
  const ihl = (f[ETH_HEADER]! & 15) * 4;
  if (f[ETH_HEADER]! >> 4 !== 4 || ihl < 20 || f[ETH_HEADER + 9] !== IP_PROTO_TCP) return -1;
  const l4 = ETH_HEADER + ihl;
  if (f.length < l4 + 20) return -1;
  const doff = (f[l4 + 12]! >> 4) * 4;
  return doff < 20 || l4 + doff > f.length ? -1 : l4;
}

/**
 * Makes a transmitted frame wire-ready: finishes a partial checksum and cuts a TSO segment
 * into segments of at most `gsoSize` payload bytes (RFC 9293 sequence numbers advanced, FIN
 * and PSH only on the last, CWR only on the first, IP identification counted up, every
 * checksum recomputed). Returns the frames, or null when the header and frame disagree.
 */
export function wireFrames(f: Uint8Array, h: TxHeader): Uint8Array[] | null {
  const gso = h.gsoType & ~GSO_ECN;
  if (gso === GSO_NONE) {
    if (f.length > MAX_FRAME) return null;
    if (h.flags & HDR_F_NEEDS_CSUM && !finishChecksum(f, h.csumStart, h.csumOffset)) return null;
    return [f];
  }
  if (gso !== GSO_TCPV4 || h.gsoSize === 0) return null;
  const l4 = tcpAt(f);
  if (l4 < 0) return null;
  const ip = ETH_HEADER;
  const ihl = l4 - ip;
  const doff = (f[l4 + 12]! >> 4) * 4;
  const hdrs = l4 + doff;
  const payload = f.length - hdrs;
  const mss = Math.min(h.gsoSize, 1500 - ihl - doff);
  if (mss <= 0) return null;
  if (payload <= mss) return wireFrames(f, { ...h, gsoType: GSO_NONE, flags: 0 }) && [fixTcp(f, l4)];
  const seq = rd32(f, l4 + 4);
  const id = rd16(f, ip + 4);
  const flags = f[l4 + 13]!;
  const out: Uint8Array[] = [];
  for (let off = 0, i = 0; off < payload; off += mss, i++) {
    const n = Math.min(mss, payload - off);
    const s = new Uint8Array(hdrs + n);
    s.set(f.subarray(0, hdrs));
    s.set(f.subarray(hdrs + off, hdrs + off + n), hdrs);
    wr16(s, ip + 2, ihl + doff + n);
    wr16(s, ip + 4, (id + i) & 0xffff);
    wr16(s, ip + 10, 0);
    wr16(s, ip + 10, checksum(s, ip, l4));
    wr32(s, l4 + 4, (seq + off) >>> 0);
    const last = off + n >= payload;
    s[l4 + 13] = flags & ~(last ? 0 : 0x09) & ~(i > 0 ? 0x80 : 0); // FIN|PSH until the last; CWR after the first
    out.push(fixTcp(s, l4));
  }
  return out;
}

/** Recomputes the TCP checksum of a frame in full (the guest left a partial one). */
function fixTcp(f: Uint8Array, l4: number): Uint8Array {
  const len = f.length - l4;
  wr16(f, l4 + 16, 0);
  wr16(f, l4 + 16, ~sum16(f, l4, f.length, pseudoSum(f, ETH_HEADER, IP_PROTO_TCP, len)) & 0xffff);
  return f;
}
