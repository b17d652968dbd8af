/**
 * Migration links over TCP or a unix socket (the core's OutgoingLink and IncomingLink,
 * machine/migrate.ts), addressed as QEMU's migrate and -incoming are: tcp:HOST:PORT or
 * unix:PATH (the daemon moves machines into browser tabs through a unix socket in the
 * machine's own directory, daemon/tab-move.ts).
 *
 * The source connects and streams; the target answers one line (`OK` or `ERR message`). The
 * target listens until a stream succeeds (or the user stops it): a connection that fails — a
 * foreign or corrupt stream, an incompatible machine, a source that stalls — is one line on
 * stderr and the target waits for the next. A source that sends nothing for the handshake
 * timeout (10 s for the header) or the idle timeout (30 s later on) is dropped, so no peer can
 * hold the target; VIRTUS_MIGRATION_TIMEOUT (seconds) sets both.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { IncomingLink } from '../../machine/migrate.ts';
import { VirtusError } from '../../util/errors.ts';
import type { MigrationLink } from '../../vmm/host.ts';
import type { Worker } from 'node:worker_threads';
import { connectPages, pageReceiver, receiverThread } from './postcopy.ts';

/** Parses tcp:HOST:PORT (an empty host is `dflt`). */
export function parseTcp(uri: string, what: string, dflt: string): { host: string; port: number } {
  const m = /^tcp:(.*):(\d{1,5})$/.exec(uri);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new VirtusError('BAD_FLAG', `${what}: expected tcp:HOST:PORT, not "${uri}"`, { exitCode: 2 });
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1') || dflt, port };
}

/** Where a link goes: a TCP address or a unix socket. */
export type MigrationAddress = { host: string; port: number } | { path: string };

/** Parses tcp:HOST:PORT (an empty host is `dflt`) or unix:PATH. */
export function parseMigrationUri(uri: string, what: string, dflt: string): MigrationAddress {
  if (uri.startsWith('unix:') && uri.length > 5) return { path: uri.slice(5) };
  return parseTcp(uri, what, dflt);
}

function timeouts(): { headerMs: number; idleMs: number } {
  const s = Number(process.env.VIRTUS_MIGRATION_TIMEOUT);
  return s > 0 ? { headerMs: s * 1000, idleMs: s * 1000 } : { headerMs: 10_000, idleMs: 30_000 };
}

/** Connects to a target waiting with --incoming at `uri` (tcp:HOST:PORT or unix:PATH). */
export function connectMigration(uri: string): Promise<MigrationLink> {
  const addr = parseMigrationUri(uri, 'migrate', 'localhost');
  return new Promise((resolve, reject) => {
    const sock: Socket = connect(addr);
    let failure: Error | null = null;
    let text = '';
    let answerWaiter: { resolve: (l: string) => void; reject: (e: Error) => void } | null = null;
    let drainWaiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
    const line = (): string | null => {
      const i = text.indexOf('\n');
      return i >= 0 ? text.slice(0, i) : null;
    };
    /** A target that refused answers at once and stops reading: its answer explains everything after. */
    const refusal = (): Error | null => {
      const l = line();
      return l !== null && l !== 'OK' ? new VirtusError('MIGRATE_REFUSED', `the target refused the machine: ${l.replace(/^ERR /, '')}`) : null;
    };
    const broken = (e: Error): void => {
      failure ??= refusal() ?? e;
      drainWaiter?.reject(failure);
      answerWaiter?.reject(failure);
      drainWaiter = answerWaiter = null;
    };
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      text += d;
      const l = line();
      if (l === null) return;
      if (answerWaiter) answerWaiter.resolve(l);
      else if (l !== 'OK') broken(refusal()!);
    });
    sock.on('drain', () => {
      drainWaiter?.resolve();
      drainWaiter = null;
    });
    sock.on('error', (e) => broken(new VirtusError('MIGRATE_LINK', `the link to ${uri} broke: ${e.message}`)));
    sock.on('close', () => broken(new VirtusError('MIGRATE_LINK', `the target at ${uri} closed the connection`)));
    sock.once('error', (e) => reject(new VirtusError('MIGRATE_CONNECT', `cannot connect to ${uri}: ${e.message}`)));
    sock.once('connect', () => {
      sock.setNoDelay(true);
      resolve({
        send(bytes) {
          if (failure) return Promise.reject(failure);
          if (sock.write(bytes)) return Promise.resolve();
          return new Promise((res, rej) => (drainWaiter = { resolve: res, reject: rej }));
        },
        answer() {
          const l = line();
          if (l !== null) return Promise.resolve(l);
          if (failure) return Promise.reject(failure);
          return new Promise((res, rej) => (answerWaiter = { resolve: res, reject: rej }));
        },
        pages: (where, token) => connectPages(where, 'host' in addr ? addr.host : '', token),
        close: () => sock.destroy(),
      });
    });
  });
}

/** The incoming side of one connection, with its timeouts. */
function incomingLink(sock: Socket, t: { headerMs: number; idleMs: number }, addr: MigrationAddress, thread: () => Worker | undefined): IncomingLink & { finish(ms: number): Promise<void> } {
  // Chunks are queued from 'data' events rather than read with for-await, so that leaving the
  // loop early (a bad stream) keeps the socket open for the answer.
  const queue: Uint8Array[] = [];
  let ended = false;
  let error: Error | null = null;
  let wake: (() => void) | null = null;
  let received = 0;
  let timer: NodeJS.Timeout | null = null;
  const poke = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const arm = (): void => {
    if (timer) clearTimeout(timer);
    const ms = received < 16 ? t.headerMs : t.idleMs;
    timer = setTimeout(() => {
      error = new VirtusError('MIGRATE_TIMEOUT', `the source sent nothing for ${ms / 1000} s`);
      poke();
    }, ms);
  };
  arm();
  sock.on('data', (d: Buffer) => {
    received += d.length;
    queue.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    arm();
    poke();
  });
  sock.on('end', () => ((ended = true), poke()));
  sock.on('close', () => ((ended = true), poke()));
  sock.on('error', (e) => ((error = new VirtusError('MIGRATE_LINK', `the link from the source broke: ${e.message}`)), poke()));
  return {
    chunks: {
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            if (queue.length) yield queue.shift()!;
            else if (error) throw error;
            else if (ended) return;
            else await new Promise<void>((r) => (wake = r));
          }
        } finally {
          if (timer) clearTimeout(timer);
        }
      },
    },
    answer: (line) => {
      if (timer) clearTimeout(timer);
      if (!sock.destroyed) sock.end(line + '\n');
    },
    address: 'path' in addr
      ? { type: 'unix', path: addr.path }
      : { type: 'inet', host: sock.localAddress ?? addr.host, port: String(sock.localPort ?? addr.port), ...(sock.localFamily === 'IPv6' ? { ipv6: true } : { ipv4: true }) },
    // Post-copy's page channel listens beside this link: on the address the source reached, or next to its socket.
    pages: (memory, ramSize) => pageReceiver(memory, ramSize, 'path' in addr ? { path: `${addr.path}.pages` } : { host: sock.localAddress ?? addr.host }, { connectMs: t.headerMs, idleMs: t.idleMs }, thread()),
    finish: (ms) =>
      new Promise((r) => {
        if (timer) clearTimeout(timer);
        if (sock.destroyed) return r();
        const tm = setTimeout(() => (sock.destroy(), r()), ms);
        sock.once('close', () => (clearTimeout(tm), r()));
      }),
  };
}

/** Options of receiveMigration. */
export interface ReceiveOptions {
  /** Told the address actually bound, as a URI (port 0 in the URI lets the system choose one). */
  listening?: (uri: string) => void;
  /** Gives up after the first connection that fails (rejects with its error) instead of waiting for another. */
  once?: boolean;
  /** Post-copy may come: a page receiver thread is started ahead, while the target waits. */
  postcopy?: boolean;
}

/**
 * Listens on `uri` (tcp:HOST:PORT or unix:PATH) and hands each connection to `receive`, one at a
 * time, until one succeeds; resolves with its result. A failed connection is one line through
 * `log`, and the next is awaited (with `once`, the failure is the result); connections arriving
 * while one is being received are turned away.
 */
export async function receiveMigration<T>(uri: string, log: (line: string) => void, receive: (link: IncomingLink) => Promise<T>, o: ReceiveOptions = {}): Promise<T> {
  const addr = parseMigrationUri(uri, '--incoming', '0.0.0.0');
  const t = timeouts();
  // Half-open: a source that sent a truncated stream and hung up still hears why.
  const server: Server = createServer({ allowHalfOpen: true });
  await new Promise<void>((res, rej) => {
    server.once('error', (e) => rej(new VirtusError('MIGRATE_LISTEN', `--incoming ${uri}: ${e.message}`, { exitCode: 2 })));
    if ('path' in addr) {
      // A socket left by an earlier listener is replaced; anything else at the path is not touched.
      if (existsSync(addr.path)) {
        if (!statSync(addr.path).isSocket()) return rej(new VirtusError('MIGRATE_LISTEN', `--incoming ${uri}: ${addr.path} exists and is not a socket`, { exitCode: 2 }));
        rmSync(addr.path, { force: true });
      }
      server.listen(addr.path, () => res());
    } else server.listen(addr.port, addr.host, () => res());
  });
  const where = 'path' in addr ? `unix:${addr.path}` : `tcp:${addr.host}:${(server.address() as { port: number } | null)?.port ?? addr.port}`;
  o.listening?.(where);
  log(`virtus: waiting for a machine on ${where}`);
  let busy = false;
  // One receiver thread ready for the next connection (post-copy), replaced when a connection used it.
  let spare = o.postcopy ? receiverThread() : undefined;
  const thread = (): Worker | undefined => {
    const w = spare;
    spare = undefined;
    return w;
  };
  try {
    return await new Promise<T>((resolve, reject) => {
      server.on('connection', (sock: Socket) => {
        const peer = sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : 'a unix socket';
        if (busy) {
          sock.end('ERR the target is receiving another machine\n');
          return;
        }
        busy = true;
        const link = incomingLink(sock, t, addr, thread);
        receive(link).then(
          (r) => {
            server.close();
            resolve(r);
          },
          (e: unknown) => {
            // The source reads the answer before it hangs up.
            const answered = link.finish(2000);
            if (o.once) {
              server.close();
              void answered.then(() => reject(e));
              return;
            }
            log(`virtus: incoming migration from ${peer} failed: ${e instanceof Error ? e.message : String(e)}; waiting for another`);
            if (o.postcopy) spare ??= receiverThread();
            busy = false;
          },
        );
      });
    });
  } finally {
    server.close();
    if (spare) void spare.terminate();
    if ('path' in addr) rmSync(addr.path, { force: true });
  }
}
