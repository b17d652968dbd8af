/**
 * The monitor: commands that act on a running machine (`savevm FILE`, `migrate tcp:HOST:PORT`,
 * `info migrate`, `info status`, `stop`, `cont`, `quit`), one per line, each answered with one
 * line of JSON. They arrive on a unix socket (--monitor unix:PATH) or at the Ctrl-A C prompt.
 *
 * A Session owns the run loop of `virtus run`: it runs the machine, pauses it (stop, the
 * stop-and-copy phase of a migration) and ends it (quit, a completed migration). Monitor
 * commands run on the event loop between slices, so the machine is always at a slice boundary
 * when they look at it.
 */
import { closeSync, existsSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { MachineExit } from '../../machine/machine.ts';
import { migrateOut, type IncomingLink, type MigrationOptions, type MigrationProgress, type MigrationReport, type OutgoingLink } from '../../machine/migrate.ts';
import type { Runner } from '../../machine/runner.ts';
import { encodeSnapshot, type HostConfig } from '../../machine/snapshot.ts';
import type { VirtBoard } from '../../machine/virt.ts';
import { isVirtusError, VirtusError } from '../../util/errors.ts';
import type { NodeRunnerHost } from './runner-host.ts';

export interface SessionOptions {
  board: VirtBoard;
  runner: Runner;
  host: NodeRunnerHost;
  /** How to rebuild this machine; a string says why it cannot be snapshotted. */
  hostConfig: HostConfig | string;
  maxInsns?: number;
  migration: MigrationOptions;
  /** Restarts the machine after a guest reboot; null when it cannot (a restored machine). */
  reboot: (() => void) | null;
  /** One line for the user (stderr). */
  log(line: string): void;
}

/** Writes a snapshot of `board` to `path` (through a temporary file, renamed when complete). */
export function writeSnapshot(board: VirtBoard, hostConfig: HostConfig | string, path: string): { bytes: number; ms: number } {
  if (typeof hostConfig === 'string') throw new VirtusError('NO_SNAPSHOT', `cannot snapshot this machine: ${hostConfig}`);
  const t = performance.now();
  const parts = encodeSnapshot(board, hostConfig);
  const tmp = `${path}.tmp-${process.pid}`;
  let bytes = 0;
  try {
    const fd = openSync(tmp, 'w');
    try {
      for (const p of parts) {
        writeSync(fd, p);
        bytes += p.length;
      }
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new VirtusError('FILE_WRITE', `cannot write snapshot ${path}: ${(e as Error).message}`);
  }
  return { bytes, ms: performance.now() - t };
}

type Status = 'running' | 'paused' | 'migrated' | 'quit';
type MigrationState = MigrationProgress & { target: string; error?: string; report?: MigrationReport };

export class Session {
  private status: Status = 'running';
  private wakeRun: (() => void) | null = null;
  private stoppedWaiters: Array<() => void> = [];
  private running = false;
  /** True once the user asked to quit (Ctrl-A X, `quit`): the exit is not the guest's. */
  userQuit = false;
  private migration: MigrationState | null = null;

  constructor(private readonly o: SessionOptions) {}

  /** Runs the machine until it stops for good; returns why (null: quit or migrated). */
  async run(): Promise<MachineExit | null> {
    for (;;) {
      if (this.status === 'paused') await new Promise<void>((r) => (this.wakeRun = r));
      if (this.status === 'quit' || this.status === 'migrated') return this.o.board.machine.exit;
      this.running = true;
      const exit = await this.o.runner.run(this.o.maxInsns !== undefined ? { maxInsns: this.o.maxInsns } : {});
      this.running = false;
      for (const w of this.stoppedWaiters.splice(0)) w();
      if (exit?.reason === 'reboot' && this.o.reboot && this.status === 'running') {
        this.o.reboot();
        continue;
      }
      if (exit) return exit;
    }
  }

  /** Pauses the machine; resolves once it has left its slice. */
  stop(): Promise<void> {
    if (this.status === 'running') this.status = 'paused';
    if (!this.running) return Promise.resolve();
    const p = new Promise<void>((r) => this.stoppedWaiters.push(r));
    this.o.runner.requestStop();
    this.o.host.wake();
    return p;
  }

  cont(): void {
    if (this.status !== 'paused') return;
    this.status = 'running';
    this.wakeRun?.();
    this.wakeRun = null;
  }

  /** Ends the run (Ctrl-A X, `quit`). */
  quit(): void {
    this.userQuit = true;
    this.end('quit');
  }

  private end(status: Status): void {
    this.status = status;
    this.o.board.machine.stop({ code: 0, reason: 'exit' });
    this.o.runner.requestStop();
    this.o.host.wake();
    this.wakeRun?.();
    this.wakeRun = null;
  }

  /** True once the machine went to another virtus (this one must end without a snapshot). */
  get migrated(): boolean {
    return this.status === 'migrated';
  }

  savevm(path: string): { bytes: number; ms: number } {
    return writeSnapshot(this.o.board, this.o.hostConfig, path);
  }

  /** Starts a migration to `uri` (tcp:HOST:PORT); it goes on in the background. */
  migrate(uri: string): void {
    if (this.migration && ['active', 'stop-and-copy'].includes(this.migration.status)) {
      throw new VirtusError('MIGRATE_BUSY', `a migration to ${this.migration.target} is already under way`);
    }
    if (typeof this.o.hostConfig === 'string') throw new VirtusError('NO_SNAPSHOT', `cannot migrate this machine: ${this.o.hostConfig}`);
    if ((this.status !== 'running' && this.status !== 'paused') || this.o.board.machine.exit) throw new VirtusError('MIGRATE_BUSY', 'the machine has ended');
    const { host, port } = parseTcp(uri, 'migrate', 'localhost');
    const hostConfig = this.o.hostConfig;
    const m: MigrationState = { target: uri, status: 'active', rounds: 0, bytes: 0, dirtyPages: 0 };
    this.migration = m;
    const wasPaused = this.status === 'paused';
    void (async () => {
      let link: (OutgoingLink & { close(): void }) | null = null;
      try {
        link = await tcpOutgoing(host, port);
        const report = await migrateOut(this.o.board, hostConfig, link, {
          yield: () => new Promise((r) => setTimeout(r, 1)),
          pause: async () => {
            await this.stop();
            if (this.o.board.machine.exit) throw new VirtusError('MIGRATE_ENDED', 'the guest stopped the machine during the migration');
          },
          resume: () => {
            if (!wasPaused) this.cont();
          },
        }, { ...this.o.migration, progress: (p) => Object.assign(m, p) });
        m.report = report;
        m.status = 'completed';
        link.close();
        this.o.log(
          `virtus: migrated to ${uri}: total ${report.totalMs.toFixed(0)} ms, downtime ${report.downtimeMs.toFixed(1)} ms, ` +
            `${report.rounds} rounds, ${report.bytes} bytes sent (${report.finalPages} pages while stopped)`,
        );
        this.end('migrated');
      } catch (e) {
        link?.close();
        m.status = 'failed';
        m.error = e instanceof Error ? e.message : String(e);
        this.o.log(`virtus: migration to ${uri} failed: ${m.error} (the machine runs on here)`);
      }
    })();
  }

  info(what: string): Record<string, unknown> {
    if (what === 'migrate') {
      const m = this.migration;
      if (!m) return { status: 'none' };
      const r = m.report;
      return {
        status: m.status, target: m.target, rounds: m.rounds, bytes: m.bytes, dirtyPages: m.dirtyPages,
        ...(r ? { totalMs: round(r.totalMs), downtimeMs: round(r.downtimeMs) } : {}),
        ...(m.error ? { error: m.error } : {}),
      };
    }
    if (what === 'status') return { status: this.status, instret: this.o.board.machine.instret() };
    throw new VirtusError('MONITOR_USAGE', `info: unknown item '${what}' (try info status, info migrate)`);
  }
}

const round = (x: number): number => Math.round(x * 10) / 10;

const HELP = 'savevm FILE | migrate tcp:HOST:PORT | info migrate | info status | stop | cont | quit';

/** Executes one monitor command line; the answer is one JSON object. */
export async function execute(s: Session, line: string): Promise<Record<string, unknown>> {
  const [cmd = '', ...args] = line.trim().split(/\s+/);
  try {
    const need = (n: number, usage: string): void => {
      if (args.length !== n) throw new VirtusError('MONITOR_USAGE', `usage: ${usage}`);
    };
    switch (cmd) {
      case 'savevm': {
        need(1, 'savevm FILE');
        const r = s.savevm(args[0]!);
        return { ok: true, file: args[0], bytes: r.bytes, ms: round(r.ms) };
      }
      case 'migrate':
        need(1, 'migrate tcp:HOST:PORT');
        s.migrate(args[0]!);
        return { ok: true, status: 'active' };
      case 'info':
        need(1, 'info migrate|status');
        return { ok: true, ...s.info(args[0]!) };
      case 'stop':
        need(0, 'stop');
        await s.stop();
        return { ok: true, status: 'paused' };
      case 'cont':
        need(0, 'cont');
        s.cont();
        return { ok: true, status: 'running' };
      case 'quit':
        need(0, 'quit');
        s.quit();
        return { ok: true };
      case 'help':
        return { ok: true, commands: HELP };
      case '':
        return { ok: false, error: 'empty command (try help)' };
      default:
        return { ok: false, error: `unknown command '${cmd}' (try help)` };
    }
  } catch (e) {
    if (isVirtusError(e)) return { ok: false, error: e.message };
    return { ok: false, error: `internal error: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** Serves monitor commands on a unix socket at `path` (--monitor unix:PATH). */
export function serveMonitor(s: Session, spec: string): Promise<Server> {
  const m = /^unix:(.+)$/.exec(spec);
  if (!m) throw new VirtusError('BAD_FLAG', `run: --monitor takes unix:PATH, not "${spec}"`, { exitCode: 2 });
  const path = m[1]!;
  if (existsSync(path)) {
    if (!statSync(path).isSocket()) throw new VirtusError('BAD_FLAG', `run: --monitor ${path} exists and is not a socket`, { exitCode: 2 });
    rmSync(path);
  }
  const server = createServer((sock) => {
    let buf = '';
    let chain = Promise.resolve();
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        chain = chain.then(async () => {
          const answer = await execute(s, line);
          if (!sock.destroyed) sock.write(JSON.stringify(answer) + '\n');
        });
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new VirtusError('MONITOR_LISTEN', `run: --monitor ${path}: ${e.message}`, { exitCode: 2 })));
    server.listen(path, () => {
      server.unref();
      process.once('exit', () => rmSync(path, { force: true }));
      resolve(server);
    });
  });
}

/** Parses tcp:HOST:PORT (an empty host is `dflt`). */
export function parseTcp(uri: string, what: string, dflt: string): { host: string; port: number } {
  const m = /^tcp:(.*):(\d{1,5})$/.exec(uri);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new VirtusError('BAD_FLAG', `${what}: expected tcp:HOST:PORT, not "${uri}"`, { exitCode: 2 });
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1') || dflt, port };
}

/** Connects to a target waiting with --incoming. */
export function tcpOutgoing(host: string, port: number): Promise<OutgoingLink & { close(): void }> {
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
    sock.on('error', (e) => broken(new VirtusError('MIGRATE_LINK', `the link to tcp:${host}:${port} broke: ${e.message}`)));
    sock.on('close', () => broken(new VirtusError('MIGRATE_LINK', `the target at tcp:${host}:${port} closed the connection`)));
    sock.once('error', (e) => reject(new VirtusError('MIGRATE_CONNECT', `cannot connect to tcp:${host}:${port}: ${e.message}`)));
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

/** The incoming side of a TCP link; `finish()` waits (briefly) for the source to hang up. */
export type TcpIncoming = IncomingLink & { finish(ms: number): Promise<void> };

/** Waits on tcp:HOST:PORT for one source (--incoming). */
export function tcpIncoming(host: string, port: number, log: (line: string) => void): Promise<TcpIncoming> {
  return new Promise((resolve, reject) => {
    // Half-open: a source that sent a truncated stream and hung up still hears why.
    const server = createServer({ allowHalfOpen: true });
    server.once('error', (e) => reject(new VirtusError('MIGRATE_LISTEN', `--incoming tcp:${host}:${port}: ${e.message}`, { exitCode: 2 })));
    server.listen(port, host, () => log(`virtus: waiting for a machine on tcp:${host}:${port}`));
    server.once('connection', (sock: Socket) => {
      server.close();
      // Chunks are queued from 'data' events rather than read with for-await, so that leaving
      // the loop early (a bad stream) keeps the socket open for the answer.
      const queue: Uint8Array[] = [];
      let ended = false;
      let error: Error | null = null;
      let wake: (() => void) | null = null;
      const poke = (): void => {
        const w = wake;
        wake = null;
        w?.();
      };
      sock.on('data', (d: Buffer) => {
        queue.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        poke();
      });
      sock.on('end', () => ((ended = true), poke()));
      sock.on('close', () => ((ended = true), poke()));
      sock.on('error', (e) => ((error = e), poke()));
      resolve({
        chunks: {
          async *[Symbol.asyncIterator]() {
            for (;;) {
              if (queue.length) yield queue.shift()!;
              else if (error) throw new VirtusError('MIGRATE_LINK', `the link from the source broke: ${error.message}`);
              else if (ended) return;
              else await new Promise<void>((r) => (wake = r));
            }
          },
        },
        answer: (line) => {
          if (!sock.destroyed) sock.end(line + '\n');
        },
        finish: (ms) =>
          new Promise((r) => {
            if (sock.destroyed) return r();
            const t = setTimeout(() => (sock.destroy(), r()), ms);
            sock.once('close', () => (clearTimeout(t), r()));
          }),
      });
    });
  });
}
