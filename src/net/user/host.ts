/**
 * What the user-mode NAT needs from its host: TCP connections and UDP sockets on the host's
 * network stack, a clock and a way to wake the machine's runner. The Node host implements it
 * over node:net and node:dgram (src/host/node/net/); the core never sees a host socket.
 */

/** Events of a host TCP socket, as the NAT handles them. */
export interface TcpEvents {
  /** The connection is up (connectTcp only). */
  connected(): void;
  data(bytes: Uint8Array): void;
  /** The host side finished sending (a FIN). */
  ended(): void;
  /** The socket is gone (after an error, a reset or both ends closing). */
  closed(error: string | null): void;
  /** Bytes written earlier have left the socket's buffer. */
  drained(): void;
}

/** A host TCP socket. */
export interface HostTcp {
  write(bytes: Uint8Array): void;
  /** Bytes written and not yet handed to the host's stack. */
  buffered(): number;
  /** Half-closes (sends a FIN once the buffered bytes are out). */
  end(): void;
  /** Closes at once (a reset when data is pending). */
  destroy(): void;
  pause(): void;
  resume(): void;
}

/** A host UDP socket bound to an ephemeral port. */
export interface HostUdp {
  send(bytes: Uint8Array, addr: string, port: number): void;
  close(): void;
}

export interface NatHost {
  /** Opens a TCP connection to `addr:port`; events arrive later (never during the call). */
  connectTcp(addr: string, port: number, ev: TcpEvents): HostTcp;
  /** Opens a UDP socket; datagrams from anywhere arrive through `message`. */
  openUdp(message: (bytes: Uint8Array, addr: string, port: number) => void): HostUdp;
  /** Where DNS queries to the NAT's DNS address go (host address and port), or null for none. */
  resolver(): { addr: string; port: number } | null;
  /** Host time in milliseconds (monotonic). */
  now(): number;
  /** Wakes the machine's runner: frames for the guest are waiting. */
  wake(): void;
  /** Calls `f` from the host's event loop after `ms` milliseconds. */
  later(ms: number, f: () => void): void;
  /** A one-line warning for the host's log. */
  warn(message: string): void;
}
