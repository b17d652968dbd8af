/**
 * Migration links over TCP (the core's OutgoingLink and IncomingLink, machine/migrate.ts).
 *
 * The source connects and streams; the target answers one line (`OK` or `ERR message`). The
 * target listens until a stream succeeds (or the user stops it): a connection that fails — a
 * foreign or corrupt stream, an incompatible machine, a source that stalls — is one line on
 * stderr and the target waits for the next. A source that sends nothing for the handshake
 * timeout (10 s for the header) or the idle timeout (30 s later on) is dropped, so no peer can
 * hold the target; VIRTUS_MIGRATION_TIMEOUT (seconds) sets both.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { IncomingLink } from '../../machine/migrate.ts';
import { VirtusError } from '../../util/errors.ts';
import type { MigrationLink } from '../../vmm/host.ts';

/** Parses tcp:HOST:PORT (an empty host is `dflt`). */
export function parseTcp(uri: string, what: string, dflt: string): { host: string; port: number } {
  const m = /^tcp:(.*):(\d{1,5})$/.exec(uri);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new VirtusError('BAD_FLAG', `${what}: expected tcp:HOST:PORT, not "${uri}"`, { exitCode: 2 });
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1') || dflt, port };
}

function timeouts(): { headerMs: number; idleMs: number } {
  const s = Number(process.env.VIRTUS_MIGRATION_TIMEOUT);
  return s > 0 ? { headerMs: s * 1000, idleMs: s * 1000 } : { headerMs: 10_000, idleMs: 30_000 };
}

/** Connects to a target waiting with --incoming at `uri` (tcp:HOST:PORT). */
export function connectMigration(uri: string): Promise<MigrationLink> {
  const { host, port } = parseTcp(uri, 'migrate', 'localhost');
  return new Promise((resolve, reject) => {
    const sock: Socket = connect({ host, port });
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
        close: () => sock.destroy(),
      });
    });
  });
}

/** The incoming side of one connection, with its timeouts. */
function incomingLink(sock: Socket, t: { headerMs: number; idleMs: number }): IncomingLink & { finish(ms: number): Promise<void> } {
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
  /** Told the address actually bound (port 0 in the URI lets the system choose one). */
  listening?: (host: string, port: number) => void;
}

/**
 * Listens on `uri` (tcp:HOST:PORT) and hands each connection to `receive`, one at a time, until
 * one succeeds; resolves with its result. A failed connection is one line through `log`, and
 * the next is awaited; connections arriving while one is being received are turned away.
 */
export async function receiveMigration<T>(uri: string, log: (line: string) => void, receive: (link: IncomingLink) => Promise<T>, o: ReceiveOptions = {}): Promise<T> {
  const { host, port } = parseTcp(uri, '--incoming', '0.0.0.0');
  const t = timeouts();
  // Half-open: a source that sent a truncated stream and hung up still hears why.
  const server: Server = createServer({ allowHalfOpen: true });
  await new Promise<void>((res, rej) => {
    server.once('error', (e) => rej(new VirtusError('MIGRATE_LISTEN', `--incoming ${uri}: ${e.message}`, { exitCode: 2 })));
    server.listen(port, host, () => res());
  });
  const bound = (server.address() as { port: number } | null)?.port ?? port;
  o.listening?.(host, bound);
  log(`virtus: waiting for a machine on tcp:${host}:${bound}`);
  let busy = false;
  try {
    return await new Promise<T>((resolve) => {
      server.on('connection', (sock: Socket) => {
        const peer = `${sock.remoteAddress}:${sock.remotePort}`;
        if (busy) {
          sock.end('ERR the target is receiving another machine\n');
          return;
        }
        busy = true;
        const link = incomingLink(sock, t);
        receive(link).then(
          (r) => {
            server.close();
            resolve(r);
          },
          (e: unknown) => {
            log(`virtus: incoming migration from ${peer} failed: ${e instanceof Error ? e.message : String(e)}; waiting for another`);
            busy = false;
            // The source reads the answer before it hangs up.
            void link.finish(2000);
          },
        );
      });
    });
  } finally {
    server.close();
  }
}
