/**
 * Test support: a machine (QEMU, the reference) driven over its serial console on
 * stdin/stdout. Tests wait for output, never for fixed times; a wait that runs out fails
 * with the console's tail so the boot log explains why.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { matchEnd } from '../support/guest.ts';

// Escape sequences (busybox's line editor asks the terminal for the cursor position).
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

export class SerialConsole {
  private text = '';
  private cursor = 0;
  private exitCode: number | null | undefined = undefined;
  private readonly listeners = new Set<() => void>();

  private constructor(private readonly child: ChildProcessWithoutNullStreams, readonly command: string) {
    const onData = (b: Buffer) => {
      this.text += b.toString('latin1').replace(ANSI, '').replace(/\r/g, '');
      this.notify();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, signal) => {
      this.exitCode = code ?? (signal ? -1 : null);
      this.notify();
    });
  }

  /** Starts `cmd` with piped stdio. */
  static start(cmd: string, args: string[]): SerialConsole {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    return new SerialConsole(child, [cmd, ...args].join(' '));
  }

  /** Everything the machine printed so far. */
  get output(): string {
    return this.text;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private until<T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        fn();
      };
      const listener = () => {
        const v = check();
        if (v !== undefined) done(() => resolve(v));
        else if (this.exitCode !== undefined && what !== 'exit') {
          done(() => reject(new Error(`machine exited (${this.exitCode}) while waiting for ${what}\n--- console tail ---\n${this.text.slice(-3000)}`)));
        }
      };
      const timer = setTimeout(() => {
        done(() => reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}\n--- console tail ---\n${this.text.slice(-3000)}`)));
      }, timeoutMs);
      this.listeners.add(listener);
      listener();
    });
  }

  /**
   * Waits until the output after the previous match contains `pattern`; returns the text up
   * to and including the match, and moves past it.
   */
  waitFor(pattern: string | RegExp, timeoutMs = 240_000): Promise<string> {
    return this.until(() => {
      const rest = this.text.slice(this.cursor);
      const end = matchEnd(rest, pattern);
      if (end < 0) return undefined;
      const got = rest.slice(0, end);
      this.cursor += end;
      return got;
    }, JSON.stringify(String(pattern)), timeoutMs);
  }

  /** Types a line on the console. */
  send(line: string): void {
    this.child.stdin.write(line + '\n');
  }

  /**
   * Runs a shell command and returns what it printed: the output is bracketed by markers
   * that the echoed command line itself cannot contain (the shell computes them).
   */
  async run(command: string, timeoutMs?: number): Promise<string> {
    this.send(`echo "@@<$((6*7))"; ${command}; echo "@@>$((6*7))"`);
    await this.waitFor('@@<42\n', timeoutMs);
    const out = await this.waitFor('@@>42\n', timeoutMs);
    return out.slice(0, -'@@>42\n'.length);
  }

  /** Waits for the process to exit; returns its exit code. */
  exited(timeoutMs = 120_000): Promise<number | null> {
    return this.until(() => (this.exitCode === undefined ? undefined : this.exitCode), 'exit', timeoutMs);
  }

  /** Ends the process if it still runs (cleanup after a failed test). */
  kill(): void {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
  }
}
