/**
 * Test support: a QMP client (QEMU Machine Protocol) on a unix socket, for virtus and for QEMU
 * alike. It keeps every message the server sent, in order; replies (`return`/`error`) are
 * taken one by one in the order requests were sent, events are kept apart with the number of
 * replies that came before each. Waits end on a message or the connection closing, never on
 * a fixed time; a wait that runs out names what it waited for and what had arrived.
 * QmpMachine starts virtus or QEMU on the same command line with a QMP socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool, VIRTUS } from './toolchain.ts';

export type Json = Record<string, unknown>;

/** How long a single wait may take before the test fails. */
const WAIT_MS = 60_000;

/** An event as the client saw it: the message, and how many replies had arrived before it. */
export interface SeenEvent {
  message: Json;
  afterReplies: number;
}

export class QmpClient {
  /** Every message, in the order it arrived. */
  readonly messages: Json[] = [];
  /** The raw text the server sent. */
  text = '';
  private buf = '';
  private replies = 0;
  private taken = 0;
  private closedFlag = false;
  private readonly listeners = new Set<() => void>();

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.text += d;
      this.buf += d;
      for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (!line) continue;
        const m = JSON.parse(line) as Json;
        this.messages.push(m);
        if ('return' in m || 'error' in m) this.replies++;
      }
      this.notify();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closedFlag = true;
      this.notify();
    });
  }

  /** Connects once the server's socket exists (`alive` says whether the server still runs). */
  static async connect(path: string, alive: () => boolean = () => true): Promise<QmpClient> {
    const t0 = Date.now();
    for (;;) {
      // The socket file appears when the server binds it, a moment before it listens.
      const sock = existsSync(path) ? connect(path) : null;
      const ok = sock && await new Promise<boolean>((resolve) => {
        sock.once('connect', () => resolve(true));
        sock.once('error', () => resolve(false));
      });
      if (ok) return new QmpClient(sock);
      if (!alive()) throw new Error(`the server exited before it listened on ${path}`);
      if (Date.now() - t0 > WAIT_MS) throw new Error(`nothing listens on ${path} after ${WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }

  /** Waits until `ready()` returns something other than undefined. */
  private wait<T>(what: string, ready: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const v = ready();
        if (v !== undefined) {
          done();
          resolve(v);
        } else if (this.closedFlag) {
          done();
          reject(new Error(`QMP: the connection closed while waiting for ${what}; got:\n${this.text}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`QMP: waited ${WAIT_MS} ms for ${what} in vain; got:\n${this.text}`));
      }, WAIT_MS);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** The greeting (the first message). */
  greeting(): Promise<Json> {
    return this.wait('greeting', () => this.messages[0]);
  }

  /** Writes `text` as it is (several commands, half a command, bad JSON). */
  write(text: string): void {
    this.sock.write(text);
  }

  /** The next reply not yet taken. */
  reply(): Promise<Json> {
    const n = this.taken++;
    return this.wait(`reply #${n + 1}`, () => this.messages.filter((m) => 'return' in m || 'error' in m)[n]);
  }

  /** Sends one command and returns its reply. */
  async execute(command: string, args?: Json, extra: Json = {}): Promise<Json> {
    this.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), ...extra }) + '\n');
    return this.reply();
  }

  /** The events so far, each with the count of replies before it. */
  events(): SeenEvent[] {
    const out: SeenEvent[] = [];
    let replies = 0;
    for (const m of this.messages) {
      if ('event' in m) out.push({ message: m, afterReplies: replies });
      else if ('return' in m || 'error' in m) replies++;
    }
    return out;
  }

  /** Waits for the `n`th event named `name` (from 1). */
  event(name: string, n = 1): Promise<Json> {
    return this.wait(`event ${name} #${n}`, () => this.messages.filter((m) => m.event === name)[n - 1]);
  }

  /** Resolves when the server closes the connection. */
  closed(): Promise<void> {
    return this.wait('the end of the connection', () => (this.closedFlag ? true : undefined)).then(() => {});
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A machine with a QMP socket: virtus or QEMU, on the same QEMU command line. */
export class QmpMachine {
  /** Console output so far. */
  output = '';
  stderr = '';
  exitCode: number | null | undefined = undefined;
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private readonly listeners = new Set<() => void>();

  /**
   * Starts `kind` with `args` and `-qmp unix:SOCKET,server=on,wait=off` (the socket in a fresh
   * temporary folder, removed by stop()).
   */
  constructor(readonly kind: 'virtus' | 'qemu', args: string[]) {
    this.dir = mkdtempSync(join(tmpdir(), 'virtus-qmp-'));
    this.socket = join(this.dir, 'qmp.sock');
    const all = [...args, '-qmp', `unix:${this.socket},server=on,wait=off`];
    if (kind === 'qemu') requireTool('qemu-system-riscv64');
    // stdin stays an open pipe: QEMU's stdio console stops at the end of its input.
    this.child = kind === 'qemu'
      ? spawn('qemu-system-riscv64', all, { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(process.execPath, [VIRTUS, 'run', ...all], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (b: Buffer) => {
      this.output += b.toString('latin1');
      for (const l of this.listeners) l();
    });
    this.child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.exited = new Promise((r) => this.child.once('exit', (code) => {
      this.exitCode = code;
      for (const l of this.listeners) l();
      r(code);
    }));
  }

  readonly socket: string;
  private readonly dir: string;

  /** A new QMP connection (the greeting not yet read). */
  connect(): Promise<QmpClient> {
    return QmpClient.connect(this.socket, () => this.exitCode === undefined);
  }

  /** Waits until the console output matches `re`. */
  waitOutput(re: RegExp): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (re.test(this.output)) {
          done();
          resolve();
        } else if (this.exitCode !== undefined) {
          done();
          reject(new Error(`${this.kind} exited (${this.exitCode}) before its console matched ${re}: ${JSON.stringify(this.output)}\n${this.stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.kind}: the console did not match ${re} in ${WAIT_MS} ms: ${JSON.stringify(this.output)}`));
      }, WAIT_MS);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Types `line` and Enter on the console (its stdin). */
  type(line: string): void {
    this.child.stdin!.write(line + '\n');
  }

  /** Ends the process if it still runs, and removes the socket's folder. */
  async stop(): Promise<void> {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
    await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
