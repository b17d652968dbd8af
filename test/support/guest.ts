/**
 * Test support: a machine running in a child process (virtus itself, or QEMU as the
 * reference), driven over its console on stdin/stdout the way a person would: wait for
 * output, type lines. Tests wait for markers and prompts, never for fixed times; a wait that
 * runs out, or a machine that exits while a test waits, fails with a message naming what was
 * awaited and the tail of the console, so the boot log explains the failure.
 *
 *   const m = Guest.virtus(['--drive', 'file=disk.img']);
 *   await m.shell();                          // boot markers up to the first prompt
 *   const out = await m.run('cat /proc/cmdline');
 *   await m.powerOff();                       // 'poweroff', then the exit code
 *
 * Every machine started is killed by Guest.killAll() (call it in an after() hook).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { MARKERS } from '../../src/host/node/guest/scripts.ts';
import { VIRTUS } from './toolchain.ts';

/** Terminal escape sequences (busybox's line editor asks for the cursor position). */
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
/** The default guest's shell prompt. */
export const PROMPT = 'virtus:~# ';
/** How much console text a failure message shows. */
const TAIL = 3000;
/**
 * Default time for a boot step: the interpreter boots Debian's kernel in about a minute;
 * VIRTUS_TEST_TIMEOUT_SCALE stretches every default for slow machines.
 */
const SCALE = Number(process.env.VIRTUS_TEST_TIMEOUT_SCALE ?? '1') || 1;
export const BOOT_TIMEOUT = 300_000 * SCALE;
export const COMMAND_TIMEOUT = 120_000 * SCALE;

const running = new Set<Guest>();

/** Where the first match of `pattern` in `text` ends, or -1 (a global regexp's state is ignored). */
export function matchEnd(text: string, pattern: string | RegExp): number {
  if (typeof pattern === 'string') {
    const i = text.indexOf(pattern);
    return i < 0 ? -1 : i + pattern.length;
  }
  const m = new RegExp(pattern.source, pattern.flags.replace('g', '')).exec(text);
  return m ? m.index + m[0].length : -1;
}

export class Guest {
  private text = '';
  private errText = '';
  private cursor = 0;
  private exitCode: number | null | undefined = undefined;
  private readonly listeners = new Set<() => void>();
  private readonly child: ChildProcessWithoutNullStreams;

  private constructor(readonly command: string, args: string[], env?: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    running.add(this);
    this.child.stdout.on('data', (b: Buffer) => {
      this.text += b.toString('latin1').replace(ANSI, '').replace(/\r/g, '');
      this.notify();
    });
    this.child.stderr.on('data', (b: Buffer) => {
      this.errText += b.toString('latin1');
      this.notify();
    });
    this.child.stdin.on('error', () => {}); // writing to a machine that just exited is not a test failure
    this.child.on('exit', (code, signal) => {
      this.exitCode = code ?? (signal ? -1 : null);
      running.delete(this);
      this.notify();
    });
  }

  /** Starts `virtus run ARGS` (the default guest when ARGS has no --kernel). */
  static virtus(args: string[], o: { env?: NodeJS.ProcessEnv } = {}): Guest {
    return new Guest(process.execPath, [VIRTUS, 'run', ...args], o.env);
  }

  /** Starts any command whose stdin/stdout is a machine's console (e.g. qemu-system-riscv64 -nographic). */
  static command(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv } = {}): Guest {
    return new Guest(cmd, args, o.env);
  }

  /** Kills every machine still running (for after() hooks). */
  static killAll(): void {
    for (const g of running) g.kill();
  }

  /** Everything the console printed so far (escape sequences and CRs removed). */
  get output(): string {
    return this.text;
  }

  /** What the process wrote to stderr (virtus's warnings, --stats). */
  get stderr(): string {
    return this.errText;
  }

  /** The machine's process id. */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The exit code once the process has exited (null after a signal's default), else undefined. */
  get code(): number | null | undefined {
    return this.exitCode;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private describe(what: string, why: string): Error {
    const err = this.errText ? `\n--- stderr tail ---\n${this.errText.slice(-TAIL)}` : '';
    return new Error(`${why} while waiting for ${what} (${this.command})\n--- console tail ---\n${this.text.slice(-TAIL)}${err}`);
  }

  private until<T>(check: () => T | undefined, what: string, timeoutMs: number, exitOk = false): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        f();
      };
      const listener = () => {
        const v = check();
        if (v !== undefined) done(() => resolve(v));
        else if (this.exitCode !== undefined && !exitOk) done(() => reject(this.describe(what, `the machine exited with ${this.exitCode}`)));
      };
      const timer = setTimeout(() => done(() => reject(this.describe(what, `timed out after ${Math.round(timeoutMs / 1000)} s`))), timeoutMs);
      this.listeners.add(listener);
      listener();
    });
  }

  /**
   * Waits until the console output after the previous match contains `pattern`; returns
   * the text up to and including the match and moves past it.
   */
  waitFor(pattern: string | RegExp, timeoutMs = BOOT_TIMEOUT): Promise<string> {
    return this.until(() => {
      const rest = this.text.slice(this.cursor);
      const end = matchEnd(rest, pattern);
      if (end < 0) return undefined;
      this.cursor += end;
      return rest.slice(0, end);
    }, JSON.stringify(String(pattern)), timeoutMs);
  }

  /** Waits for a line on stderr matching `pattern` (it does not move the console cursor). */
  waitForStderr(pattern: RegExp, timeoutMs = COMMAND_TIMEOUT): Promise<string> {
    return this.until(() => pattern.exec(this.errText)?.[0], `stderr ${pattern}`, timeoutMs, true);
  }

  /** Types `line` and Enter on the console. */
  send(line: string): void {
    this.child.stdin.write(line + '\n');
  }

  /** Sends raw bytes (control keys). */
  sendRaw(bytes: string | Uint8Array): void {
    this.child.stdin.write(bytes);
  }

  /**
   * The default guest's boot up to the shell prompt: /init started, its modules loaded
   * (none failed), rcS finished. Returns the console text of the boot.
   */
  async shell(o: { root?: string; timeoutMs?: number } = {}): Promise<string> {
    const t = o.timeoutMs ?? BOOT_TIMEOUT;
    let log = await this.waitFor(/virtus-init: loaded \d+ modules\n/, t);
    if (log.includes(MARKERS.moduleFailed)) throw this.describe('the modules', 'a module failed to load');
    log += await this.waitFor(`${MARKERS.ready}, root is ${o.root ?? 'rootfs'}`, t);
    log += await this.waitFor(PROMPT, t);
    return log;
  }

  /**
   * Runs a shell command and returns what it printed. The output is bracketed by markers
   * the shell computes, so the echoed command line cannot be mistaken for them.
   */
  async run(command: string, timeoutMs = COMMAND_TIMEOUT): Promise<string> {
    this.send(`echo "@@<$((6*7))"; ${command}; echo "@@>$((6*7))"`);
    await this.waitFor('@@<42\n', timeoutMs);
    const out = await this.waitFor('@@>42\n', timeoutMs);
    return out.slice(0, -'@@>42\n'.length);
  }

  /** Runs a command and returns its exit status along with its output. */
  async status(command: string, timeoutMs = COMMAND_TIMEOUT): Promise<{ out: string; status: number }> {
    const out = await this.run(`${command}; echo "@@rc=$?"`, timeoutMs);
    const m = /@@rc=(\d+)\n$/.exec(out);
    if (!m) throw this.describe(`the status of ${command}`, 'no status line');
    return { out: out.slice(0, m.index), status: Number(m[1]) };
  }

  /** Waits for the process to exit; returns its exit code. */
  exited(timeoutMs = COMMAND_TIMEOUT): Promise<number | null> {
    return this.until(() => (this.exitCode === undefined ? undefined : this.exitCode), 'the machine to exit', timeoutMs, true);
  }

  /** 'poweroff' in the default guest; resolves with the exit code (0 for a clean poweroff). */
  async powerOff(timeoutMs = COMMAND_TIMEOUT): Promise<number | null> {
    this.send('poweroff');
    await this.waitFor(MARKERS.shuttingDown, timeoutMs);
    return this.exited(timeoutMs);
  }

  /** Ends the process if it still runs. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exitCode === undefined) this.child.kill(signal);
  }
}
