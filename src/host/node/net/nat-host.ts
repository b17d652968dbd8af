/**
 * The user NAT's host side in Node: TCP connections over node:net, UDP over node:dgram, the
 * resolver DNS queries are relayed to (the NIC's `resolver=`, else the first IPv4
 * nameserver of /etc/resolv.conf), and the hostfwd listeners. A hostfwd port that cannot be
 * bound is a one-line VirtusError at start.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { HostFwd, UserOptions } from '../../../net/nic.ts';
import type { HostTcp, HostUdp, NatHost, TcpEvents } from '../../../net/user/host.ts';
import type { UserNet } from '../../../net/user/nat.ts';
import { VirtusError } from '../../../util/errors.ts';

/** Wraps a node:net socket for the NAT (half-open allowed: each direction ends on its own). */
export function wrapTcp(s: Socket, ev: TcpEvents): HostTcp {
  let error: string | null = null;
  s.setNoDelay(true);
  s.on('connect', () => ev.connected());
  s.on('data', (b: Buffer) => ev.data(new Uint8Array(b.buffer, b.byteOffset, b.length)));
  s.on('end', () => ev.ended());
  s.on('error', (e) => {
    error = e.message;
  });
  s.on('close', () => ev.closed(error));
  s.on('drain', () => ev.drained());
  return {
    write: (b) => void s.write(b),
    buffered: () => s.writableLength,
    end: () => void s.end(),
    destroy: () => void s.destroy(),
    pause: () => void s.pause(),
    resume: () => void s.resume(),
  };
}

/** The first IPv4 nameserver in /etc/resolv.conf, or null. */
export function systemResolver(): string | null {
  try {
    for (const line of readFileSync('/etc/resolv.conf', 'utf8').split('\n')) {
      const m = /^\s*nameserver\s+([0-9.]+)\s*$/.exec(line);
      if (m) return m[1]!;
    }
  } catch {
    // no resolv.conf: no relay
  }
  return null;
}

/** A NatHost over Node's sockets. */
export function nodeNatHost(o: UserOptions, h: { wake: () => void; warn: (line: string) => void }): NatHost {
  let resolver: { addr: string; port: number } | null = null;
  if (o.resolver) {
    const [addr, port] = o.resolver.split(':');
    resolver = { addr: addr!, port: Number(port ?? 53) };
  } else {
    const ns = systemResolver();
    if (ns) resolver = { addr: ns, port: 53 };
  }
  return {
    connectTcp(addr, port, ev) {
      return wrapTcp(connect({ host: addr, port, allowHalfOpen: true }), ev);
    },
    openUdp(message): HostUdp {
      const s = createSocket('udp4');
      s.on('message', (b, r) => message(new Uint8Array(b.buffer, b.byteOffset, b.length), r.address, r.port));
      s.on('error', () => {}); // an ICMP error on a connectionless socket: the guest's datagram is lost, as on a wire
      s.bind(0);
      return {
        send: (b, addr, port) => s.send(b, port, addr, () => {}),
        close: () => {
          try {
            s.close();
          } catch {
            // already closed
          }
        },
      };
    },
    resolver: () => resolver,
    now: () => performance.now(),
    later: (ms, f) => void setTimeout(f, ms).unref(),
    wake: h.wake,
    warn: h.warn,
  };
}

const ruleText = (r: HostFwd) => `hostfwd=${r.proto}:${r.hostAddr}:${r.hostPort}-${r.guestAddr}:${r.guestPort}`;

/** Opens every hostfwd listener of the NAT; rejects with a one-line VirtusError when one cannot be bound. */
export async function openHostFwd(nat: UserNet, rules: HostFwd[]): Promise<{ close(): void; ports: number[] }> {
  const servers: Array<Server | UdpSocket> = [];
  const ports: number[] = [];
  const close = () => {
    for (const s of servers) {
      try {
        s.close();
      } catch {
        // already closed
      }
    }
  };
  try {
    for (const r of rules) {
      const host = r.hostAddr || '0.0.0.0';
      if (r.proto === 'tcp') {
        const srv = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => nat.forwardTcp(r, (ev) => wrapTcp(sock, ev)));
        servers.push(srv);
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(r.hostPort, host, () => resolve());
        });
        srv.on('error', () => {});
        ports.push((srv.address() as { port: number }).port);
      } else {
        const s = createSocket('udp4');
        servers.push(s);
        s.on('message', (b, peer) => nat.forwardUdp(r, `${peer.address}:${peer.port}`, new Uint8Array(b), (reply) => s.send(reply, peer.port, peer.address)));
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.bind(r.hostPort, host, () => resolve());
        });
        s.on('error', () => {});
        ports.push(s.address().port);
      }
    }
  } catch (e) {
    close();
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the port is in use' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new VirtusError('NET_HOSTFWD', `--nic ${ruleText(rules[servers.length - 1]!)}: cannot listen: ${why}`, { exitCode: 2 });
  }
  return { close, ports };
}
