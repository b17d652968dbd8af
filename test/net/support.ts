/**
 * Test support for networking: loopback servers a test starts (HTTP serving generated files,
 * a tiny DNS server that answers A queries from a table, a TCP sink and source), free ports,
 * and checksums. Everything listens on 127.0.0.1 and is closed by the test.
 */
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createServer as createHttp, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';

/** A port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Deterministic bytes of length n (not compressible, not all one value). */
export function pattern(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 255;
  }
  return b;
}

/** An HTTP server on 127.0.0.1 serving `files` (path → bytes). */
export async function httpServer(files: Record<string, Uint8Array>): Promise<{ port: number; server: HttpServer }> {
  const server = createHttp((req, res) => {
    const f = files[req.url ?? ''];
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': f.length, 'content-type': 'application/octet-stream' });
    res.end(f);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, server };
}

/** A DNS server on 127.0.0.1 (UDP) answering A queries for `names` (RFC 1035 §4.1), NXDOMAIN otherwise. */
export async function dnsServer(names: Record<string, string>): Promise<{ port: number; queries: string[]; close(): void }> {
  const s = createSocket('udp4');
  const queries: string[] = [];
  s.on('message', (q, peer) => {
    if (q.length < 12) return;
    let i = 12;
    const labels: string[] = [];
    while (i < q.length && q[i]! !== 0) {
      labels.push(q.subarray(i + 1, i + 1 + q[i]!).toString('latin1'));
      i += q[i]! + 1;
    }
    const qEnd = i + 5;
    const name = labels.join('.').toLowerCase();
    const qtype = q.readUInt16BE(i + 1);
    queries.push(name);
    const ip = names[name];
    const header = Buffer.from(q.subarray(0, 12));
    header.writeUInt16BE(0x8180 | (ip ? 0 : 3), 2); // response, RD, RA; NXDOMAIN when unknown
    const withA = ip && qtype === 1;
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(withA ? 1 : 0, 6);
    header.writeUInt16BE(0, 8);
    header.writeUInt16BE(0, 10);
    const parts = [header, q.subarray(12, qEnd)];
    if (withA) {
      const a = Buffer.alloc(16);
      a.writeUInt16BE(0xc00c, 0);
      a.writeUInt16BE(1, 2);
      a.writeUInt16BE(1, 4);
      a.writeUInt32BE(60, 6);
      a.writeUInt16BE(4, 10);
      ip.split('.').forEach((x, k) => (a[12 + k] = Number(x)));
      parts.push(a);
    }
    s.send(Buffer.concat(parts), peer.port, peer.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return { port: s.address().port, queries, close: () => s.close() };
}
