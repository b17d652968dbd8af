/**
 * The terminal of the exec page's guest: a small line discipline between the page's xterm.js
 * and the process VM's standard streams, as Linux's n_tty is between a pty and its programs.
 * Keys go through input processing (ICRNL), signal characters (ISIG: ^C is SIGINT for every
 * process, as a shell without job control leaves them all in the terminal's foreground
 * group), and in canonical mode (ICANON) line editing with echo, read a line at a time. In
 * non-canonical mode (busybox's line editor, vi) each byte is ready at once and echo is the
 * program's business. Output gets OPOST/ONLCR. Reads with nothing ready answer 'wait', and
 * the guest's call waits on the host until `input` brings something (termios(3), n_tty.c).
 */
import type { ExecTerminal } from '../../../exec/host.ts';
import { cookedTermios, TERMIOS_SIZE } from '../../../exec/sys-file.ts';

// asm-generic/termbits.h
const ICRNL = 0o400;
const INLCR = 0o100;
const IGNCR = 0o200;
const OPOST = 0o1;
const ONLCR = 0o4;
const ISIG = 0o1;
const ICANON = 0o2;
const ECHO = 0o10;
const ECHOE = 0o20;
const ECHONL = 0o100;
const ECHOCTL = 0o1000;
const CC = 17;
const VINTR = 0;
const VQUIT = 1;
const VERASE = 2;
const VKILL = 3;
const VEOF = 4;
const SIGINT = 2;
const SIGQUIT = 3;
/** What a canonical line holds at most (N_TTY_BUF_SIZE). */
const LINE_MAX = 4095;

/** Where the line discipline sends what it makes. */
export interface TtyOptions {
  /** Bytes for the screen: echo, and the guest's output after output processing. */
  screen(bytes: Uint8Array): void;
  /** A signal character was typed: `sig` goes to the terminal's foreground processes. */
  signal(sig: number): void;
}

/** One terminal: its termios, the line being edited and the input ready for reads. */
export class LineDiscipline implements ExecTerminal {
  private termios = cookedTermios();
  /** The line being edited (canonical mode). */
  private line: number[] = [];
  /** Input ready for reads: whole lines in canonical mode (an empty one is end of file). */
  private ready: Uint8Array[] = [];
  private size = { rows: 24, cols: 80 };

  constructor(private readonly o: TtyOptions) {}

  private flag(word: number, bit: number): boolean {
    return ((this.termios[word * 4]! | (this.termios[word * 4 + 1]! << 8)) & bit) !== 0;
  }

  private cc(i: number): number {
    return this.termios[CC + i]!;
  }

  getAttr(): Uint8Array {
    return this.termios.slice();
  }

  setAttr(t: Uint8Array, flush: boolean): void {
    const wasCanon = this.flag(3, ICANON);
    this.termios = t.slice(0, TERMIOS_SIZE);
    if (flush) {
      this.line = [];
      this.ready = [];
    } else if (wasCanon && !this.flag(3, ICANON) && this.line.length > 0) {
      // Leaving canonical mode makes the partial line readable (n_tty_set_termios).
      this.ready.push(Uint8Array.from(this.line));
      this.line = [];
    }
  }

  winsize(): { rows: number; cols: number } {
    return this.size;
  }

  /** The window's size changed (the page's terminal was refitted). */
  resize(cols: number, rows: number): void {
    this.size = { rows, cols };
  }

  /** Whether a read would find input (or end of file) now. */
  get readable(): boolean {
    return this.ready.length > 0;
  }

  /** Keys typed (or pasted) in the page. */
  input(bytes: Uint8Array): void {
    const out: number[] = [];
    const canon = this.flag(3, ICANON);
    const echo = this.flag(3, ECHO);
    const raw: number[] = [];
    for (let c of bytes) {
      if (c === 13 && this.flag(0, IGNCR)) continue;
      if (c === 13 && this.flag(0, ICRNL)) c = 10;
      else if (c === 10 && this.flag(0, INLCR)) c = 13;
      if (this.flag(3, ISIG) && (c === this.cc(VINTR) || c === this.cc(VQUIT)) && c !== 0) {
        if (echo) out.push(...caret(c));
        this.line = [];
        this.ready = [];
        raw.length = 0;
        this.o.signal(c === this.cc(VINTR) ? SIGINT : SIGQUIT);
        continue;
      }
      if (!canon) {
        raw.push(c);
        if (echo) out.push(...this.echoed(c));
        continue;
      }
      if (c === this.cc(VERASE) || c === 8) {
        const gone = this.line.pop();
        if (gone !== undefined && echo && this.flag(3, ECHOE)) out.push(...(gone < 32 && this.flag(3, ECHOCTL) ? [8, 8, 32, 32, 8, 8] : [8, 32, 8]));
      } else if (c === this.cc(VKILL)) {
        if (echo) for (const g of this.line) out.push(...(g < 32 && this.flag(3, ECHOCTL) ? [8, 8, 32, 32, 8, 8] : [8, 32, 8]));
        this.line = [];
      } else if (c === this.cc(VEOF)) {
        this.ready.push(Uint8Array.from(this.line));
        this.line = [];
      } else if (c === 10) {
        this.line.push(10);
        this.ready.push(Uint8Array.from(this.line));
        this.line = [];
        if (echo || this.flag(3, ECHONL)) out.push(...this.echoed(10));
      } else if (this.line.length < LINE_MAX) {
        this.line.push(c);
        if (echo) out.push(...this.echoed(c));
      }
    }
    if (raw.length > 0) this.ready.push(Uint8Array.from(raw));
    if (out.length > 0) this.o.screen(Uint8Array.from(out));
  }

  /** How an input byte echoes: control characters as ^X under ECHOCTL, newline as output. */
  private echoed(c: number): number[] {
    if (c === 10) return this.processed([10]);
    if (c < 32 && c !== 9 && this.flag(3, ECHOCTL)) return caret(c);
    return [c];
  }

  /** Output processing (OPOST | ONLCR: a newline becomes CR LF). */
  private processed(bytes: ArrayLike<number>): number[] {
    const out: number[] = [];
    const crlf = this.flag(1, OPOST) && this.flag(1, ONLCR);
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] === 10 && crlf) out.push(13);
      out.push(bytes[i]!);
    }
    return out;
  }

  /** The guest's output to the terminal. */
  write(bytes: Uint8Array): void {
    const crlf = this.flag(1, OPOST) && this.flag(1, ONLCR);
    this.o.screen(crlf && bytes.includes(10) ? Uint8Array.from(this.processed(bytes)) : bytes.slice());
  }

  /**
   * A read of up to `max` bytes: a line (or what fits of it) in canonical mode, whatever is
   * ready otherwise; null at end of file (^D on an empty line); 'wait' when nothing is ready.
   */
  read(max: number): Uint8Array | null | 'wait' {
    const first = this.ready[0];
    if (!first) return 'wait';
    if (first.length === 0) {
      this.ready.shift();
      return null;
    }
    if (this.flag(3, ICANON)) {
      const got = first.subarray(0, max);
      if (got.length === first.length) this.ready.shift();
      else this.ready[0] = first.subarray(max);
      return got;
    }
    const out: number[] = [];
    while (this.ready.length > 0 && out.length < max) {
      const c = this.ready[0]!;
      const take = c.subarray(0, max - out.length);
      out.push(...take);
      if (take.length === c.length) this.ready.shift();
      else this.ready[0] = c.subarray(take.length);
    }
    return Uint8Array.from(out);
  }
}

/** A control character as ECHOCTL shows it: ^C, ^\, ^?. */
function caret(c: number): number[] {
  return [94, c === 127 ? 63 : c + 64];
}
