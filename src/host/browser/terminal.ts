/**
 * The guest's console in the page: an xterm.js terminal (colours, cursor keys, mouse
 * selection), sized to its box, with the copy and paste keys of Linux terminal emulators
 * (Ctrl+Shift+C, Ctrl+Shift+V; the plain Ctrl keys stay with the guest, where Ctrl-C is an
 * interrupt). Bytes typed go to `input`; the guest's bytes come in through write().
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';

export interface ConsoleOptions {
  /** Bytes for the guest (UTF-8 of what was typed or pasted). */
  input(bytes: Uint8Array): void;
  /** The terminal's size changed (columns and rows). */
  resize(cols: number, rows: number): void;
}

/** A colour scheme close to the Linux console's, on a dark background. */
const THEME = {
  background: '#101418',
  foreground: '#d8dee4',
  cursor: '#d8dee4',
  selectionBackground: '#4a5a6a',
};

export class GuestConsole {
  readonly term: Terminal;
  private readonly fit = new FitAddon();
  private readonly encoder = new TextEncoder();

  constructor(
    readonly element: HTMLElement,
    private readonly o: ConsoleOptions,
  ) {
    this.term = new Terminal({
      cursorBlink: true,
      convertEol: false,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace',
      fontSize: 14,
      // Room below the baseline: at 1.0 the underscore falls outside the cell and is not drawn.
      lineHeight: 1.15,
      scrollback: 5000,
      theme: THEME,
    });
    this.term.loadAddon(this.fit);
    this.term.open(element);
    this.term.onData((s) => o.input(this.encoder.encode(s)));
    // Mouse reports in X10 encoding arrive as binary strings: one byte per character.
    this.term.onBinary((s) => o.input(Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff)));
    this.term.onResize(({ cols, rows }) => o.resize(cols, rows));
    this.term.attachCustomKeyEventHandler((e) => this.key(e));
    new ResizeObserver(() => this.refit()).observe(element);
    this.refit();
  }

  /** Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes; everything else goes to xterm. */
  private key(e: KeyboardEvent): boolean {
    if (!(e.ctrlKey && e.shiftKey) || e.altKey || e.metaKey) return true;
    const k = e.key.toLowerCase();
    if (k === 'c') {
      if (e.type === 'keydown' && this.term.hasSelection()) void navigator.clipboard?.writeText(this.term.getSelection());
      e.preventDefault();
      return false;
    }
    // Returning false without preventDefault lets the browser raise its paste event, which
    // xterm turns into input (with bracketed paste when the guest asked for it).
    return k !== 'v';
  }

  /** Fits the terminal to its box (the box follows the window). */
  refit(): void {
    if (this.element.clientWidth > 0 && this.element.clientHeight > 0) this.fit.fit();
  }

  /** Guest output: bytes as the guest wrote them (UTF-8 and escape sequences). */
  write(bytes: Uint8Array | string): void {
    this.term.write(bytes);
  }

  /** A message from the page itself (not the guest), set apart in colour. */
  note(text: string): void {
    this.term.write(`\r\n\x1b[1;36m[virtus] ${text}\x1b[0m\r\n`);
  }

  /** Types text as a user would: a newline is the Enter key (carriage return). */
  type(text: string): void {
    this.o.input(this.encoder.encode(text.replace(/\r?\n/g, '\r')));
  }

  /**
   * The visible screen as text, trailing blanks cut. A line the terminal wrapped because it
   * was longer than the screen is wide comes back whole, as copying it would give it.
   */
  screenText(): string {
    const b = this.term.buffer.active;
    const lines: string[] = [];
    for (let y = b.viewportY; y < b.viewportY + this.term.rows; y++) {
      const line = b.getLine(y);
      if (!line) continue;
      const next = b.getLine(y + 1);
      // A row continued on the next one keeps its trailing blanks: they are part of the line.
      const text = line.translateToString(!(next?.isWrapped && y + 1 < b.viewportY + this.term.rows));
      if (line.isWrapped && lines.length > 0) lines[lines.length - 1] += text;
      else lines.push(text);
    }
    return lines.join('\n');
  }

  /** Clears the screen and the scrollback, and resets modes (for a machine reset). */
  reset(): void {
    this.term.reset();
  }

  focus(): void {
    this.term.focus();
  }
}
