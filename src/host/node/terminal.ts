/**
 * The host terminal as the guest's console: raw mode, and QEMU's escape prefix Ctrl-A
 * (Ctrl-A X quits, Ctrl-A H lists the keys, Ctrl-A Ctrl-A sends a Ctrl-A; Ctrl-A C opens the
 * monitor prompt for one command line, as in QEMU). Without a terminal (a pipe), input goes to
 * the guest unchanged.
 */
const CTRL_A = 0x01;

export interface TerminalHandlers {
  /** Bytes for the guest. */
  input(bytes: Uint8Array): void;
  /** The user asked to quit (Ctrl-A X) or input ended. */
  quit(reason: 'user' | 'eof'): void;
  /** A command typed at the Ctrl-A C prompt; resolves with the answer to print. */
  monitor?(line: string): Promise<string>;
  /** What Ctrl-A X does, for the line it prints and the key help (default: quit, "terminated"). */
  quitWord?: { key: string; done: string };
}

export class Terminal {
  private escape = false;
  /** The monitor command being typed after Ctrl-A C, or null. */
  private line: number[] | null = null;
  private readonly tty: boolean;
  private readonly onData = (chunk: Buffer): void => this.data(chunk);
  private readonly onEnd = (): void => this.h.quit('eof');

  constructor(private readonly h: TerminalHandlers) {
    this.tty = process.stdin.isTTY === true;
  }

  start(): void {
    if (this.tty) process.stdin.setRawMode(true);
    process.stdin.on('data', this.onData);
    process.stdin.on('end', this.onEnd);
    process.stdin.resume();
  }

  stop(): void {
    process.stdin.off('data', this.onData);
    process.stdin.off('end', this.onEnd);
    if (this.tty) process.stdin.setRawMode(false);
    process.stdin.pause();
  }

  private data(chunk: Buffer): void {
    if (!this.tty) {
      this.h.input(new Uint8Array(chunk));
      return;
    }
    const out: number[] = [];
    for (const b of chunk) {
      if (this.line) {
        this.lineKey(b);
        continue;
      }
      if (this.escape) {
        this.escape = false;
        const k = String.fromCharCode(b).toLowerCase();
        if (k === 'x') {
          this.flush(out);
          process.stderr.write(`\r\nvirtus: ${this.h.quitWord?.done ?? 'terminated'} (Ctrl-A X)\r\n`);
          this.h.quit('user');
          return;
        }
        if (b === CTRL_A) out.push(CTRL_A);
        else if (k === 'h') process.stderr.write(`\r\nC-a h  this help\r\nC-a x  ${this.h.quitWord?.key ?? 'quit'}\r\n${this.h.monitor ? 'C-a c  monitor prompt\r\n' : ''}C-a C-a  send C-a\r\n`);
        else if (k === 'c') {
          this.flush(out);
          if (this.h.monitor) {
            this.line = [];
            process.stderr.write('\r\n(virtus) ');
          } else process.stderr.write('\r\nvirtus: no monitor in this version\r\n');
        }
        continue;
      }
      if (b === CTRL_A) this.escape = true;
      else out.push(b);
    }
    this.flush(out);
  }

  /** One key at the monitor prompt: Enter runs the line, Backspace edits, Esc or Ctrl-C cancels. */
  private lineKey(b: number): void {
    const line = this.line!;
    if (b === 0x0d || b === 0x0a) {
      this.line = null;
      process.stderr.write('\r\n');
      const text = String.fromCharCode(...line);
      if (text.trim()) void this.h.monitor!(text).then((answer) => process.stderr.write(answer + '\r\n'));
    } else if (b === 0x7f || b === 0x08) {
      if (line.pop() !== undefined) process.stderr.write('\b \b');
    } else if (b === 0x1b || b === 0x03) {
      this.line = null;
      process.stderr.write(' (cancelled)\r\n');
    } else if (b >= 0x20 && b < 0x7f) {
      line.push(b);
      process.stderr.write(String.fromCharCode(b));
    }
  }

  private flush(out: number[]): void {
    if (out.length) this.h.input(new Uint8Array(out.splice(0)));
  }
}
