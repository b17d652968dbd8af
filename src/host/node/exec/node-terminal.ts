/**
 * The terminal behind `virtus exec`'s stdin, when it is one: the guest's termios is kept here
 * and its mode reaches the host's terminal. A program that turns canonical mode or echo off
 * (busybox's line editor, vi) gets the host terminal in raw mode, as it asked, instead of a
 * terminal that goes on echoing and editing lines underneath it; turning both back on
 * restores the cooked mode, as does the end of the run. The window size is the host's.
 */
import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ReadStream } from 'node:tty';
import type { ExecTerminal } from '../../../exec/host.ts';
import { cookedTermios, TERMIOS_SIZE } from '../../../exec/sys-file.ts';

// asm-generic/termbits.h: c_lflag is the fourth word.
const LFLAG = 12;
const ICANON = 0o2;
const ECHO = 0o10;

let ttyModule: typeof import('node:tty') | null = null;

/**
 * node:tty, loaded on first use: it loads node:net, which took about 8 ms of the start of a
 * `virtus exec` whose standard streams are pipes or files (the common case in scripts).
 */
function tty(): typeof import('node:tty') {
  return (ttyModule ??= createRequire(import.meta.url)('node:tty') as typeof import('node:tty'));
}

/** Linux's major number of the memory devices (/dev/null, /dev/zero, /dev/urandom...): none is a terminal. */
const MEM_MAJOR = 1;

/**
 * isatty(fd), without loading node:tty unless `fd` is a character device other than Linux's
 * memory devices (a program run with its input from /dev/null, as CI and scripts do).
 */
export function isTerminal(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    if (!st.isCharacterDevice()) return false;
    if (process.platform === 'linux' && ((st.rdev >>> 8) & 0xfff) === MEM_MAJOR) return false;
  } catch {
    return false;
  }
  return tty().isatty(fd);
}

/** The guest's view of the host terminal on stdin (see the file's comment). */
export class NodeTerminal implements ExecTerminal {
  private termios = cookedTermios();
  /** Made at the first switch to raw mode (a run that never asks leaves the terminal alone). */
  private input: ReadStream | null = null;
  private raw = false;

  constructor() {
    process.once('exit', () => this.restore());
  }

  /** Gives the host's terminal its cooked mode back (at the end of the run, before a signal ends virtus). */
  restore(): void {
    this.setRaw(false);
  }

  getAttr(): Uint8Array {
    return this.termios.slice();
  }

  setAttr(t: Uint8Array): void {
    this.termios = t.slice(0, TERMIOS_SIZE);
    const lflag = this.termios[LFLAG]! | (this.termios[LFLAG + 1]! << 8);
    this.setRaw((lflag & (ICANON | ECHO)) !== (ICANON | ECHO));
  }

  winsize(): { rows: number; cols: number } {
    for (const s of [process.stdout, process.stderr]) {
      if (s instanceof tty().WriteStream && s.columns > 0 && s.rows > 0) return { rows: s.rows, cols: s.columns };
    }
    return { rows: 24, cols: 80 };
  }

  private setRaw(on: boolean): void {
    if (on === this.raw) return;
    this.raw = on;
    try {
      this.input ??= new (tty().ReadStream)(0);
      this.input.setRawMode(on);
    } catch {
      // the terminal went away
    }
  }
}
