/**
 * The NAT's DHCP server (RFC 2131, options RFC 2132): one guest, one address. DISCOVER gets
 * an OFFER of the DHCP address, REQUEST for it (or renewing it) an ACK, REQUEST for anything
 * else a NAK, INFORM an ACK without an address. Messages are untrusted; anything malformed is
 * ignored (null).
 */
import { rd32, wr32 } from '../../util/inet.ts';

const OP_REQUEST = 1;
const OP_REPLY = 2;
const MAGIC = 0x63825363;
/** RFC 2132 §9.6 message types. */
const DISCOVER = 1;
const OFFER = 2;
const REQUEST = 3;
const ACK = 5;
const NAK = 6;
const INFORM = 8;
const OPT_SUBNET = 1;
const OPT_ROUTER = 3;
const OPT_DNS = 6;
const OPT_HOSTNAME = 12;
const OPT_REQUESTED_IP = 50;
const OPT_LEASE = 51;
const OPT_MSG_TYPE = 53;
const OPT_SERVER_ID = 54;
const OPT_END = 255;
const OPT_PAD = 0;
/** The fixed BOOTP part before the magic cookie (RFC 2131 §2). */
const FIXED = 236;
export const LEASE_SECONDS = 86400;

export interface DhcpConfig {
  server: number;
  client: number;
  mask: number;
  router: number;
  dns: number;
  hostname: string;
}

/** The options of a request, by code (each the last occurrence). */
function options(m: Uint8Array): Map<number, Uint8Array> | null {
  const o = new Map<number, Uint8Array>();
  let i = FIXED + 4;
  while (i < m.length) {
    const code = m[i++]!;
    if (code === OPT_PAD) continue;
    if (code === OPT_END) return o;
    if (i >= m.length) return null;
    const len = m[i++]!;
    if (i + len > m.length) return null;
    o.set(code, m.subarray(i, i + len));
    i += len;
  }
  return o;
}

/**
 * The reply to a DHCP message (the UDP payload from the client's port 68), or null when there
 * is none to give.
 */
export function dhcpReply(req: Uint8Array, c: DhcpConfig): Uint8Array | null {
  if (req.length < FIXED + 4 || req[0] !== OP_REQUEST || req[1] !== 1 || req[2] !== 6 || rd32(req, FIXED) !== MAGIC) return null;
  const opt = options(req);
  const type = opt?.get(OPT_MSG_TYPE);
  if (!opt || !type || type.length !== 1) return null;
  let answer: number;
  let yiaddr = c.client;
  if (type[0] === DISCOVER) answer = OFFER;
  else if (type[0] === REQUEST) {
    const asked = opt.get(OPT_REQUESTED_IP);
    const want = asked && asked.length === 4 ? rd32(asked, 0) : rd32(req, 12);
    const server = opt.get(OPT_SERVER_ID);
    if (server && server.length === 4 && rd32(server, 0) !== c.server) return null; // chose another server
    answer = want === c.client ? ACK : NAK;
  } else if (type[0] === INFORM) {
    answer = ACK;
    yiaddr = 0;
  } else return null;
  const out = new Uint8Array(FIXED + 4 + 64);
  out[0] = OP_REPLY;
  out[1] = 1;
  out[2] = 6;
  out.set(req.subarray(4, 8), 4); // xid
  out.set(req.subarray(10, 12), 10); // flags
  if (type[0] === INFORM) out.set(req.subarray(12, 16), 12); // ciaddr
  if (answer !== NAK) wr32(out, 16, yiaddr);
  wr32(out, 20, c.server);
  out.set(req.subarray(28, 44), 28); // chaddr
  wr32(out, FIXED, MAGIC);
  let i = FIXED + 4;
  const put = (code: number, bytes: number[]) => {
    out[i++] = code;
    out[i++] = bytes.length;
    for (const b of bytes) out[i++] = b;
  };
  const ip = (a: number) => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255];
  put(OPT_MSG_TYPE, [answer]);
  put(OPT_SERVER_ID, ip(c.server));
  if (answer !== NAK) {
    if (type[0] !== INFORM) put(OPT_LEASE, ip(LEASE_SECONDS));
    put(OPT_SUBNET, ip(c.mask));
    put(OPT_ROUTER, ip(c.router));
    put(OPT_DNS, ip(c.dns));
    const name = new TextEncoder().encode(c.hostname).subarray(0, 32);
    if (name.length) put(OPT_HOSTNAME, [...name]);
  }
  out[i++] = OPT_END;
  // RFC 2131 §2 (and BOOTP): replies are at least 300 bytes; the tail stays zero padding.
  return out.subarray(0, Math.max(i, 300));
}
