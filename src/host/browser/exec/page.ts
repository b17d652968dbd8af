/**
 * The exec page of `virtus web` (/exec): a riscv64 busybox shell in the tab with no kernel
 * booting. This script loads busybox (from the browser's cache when it holds this version),
 * starts the worker that runs the process VM (worker.ts), and wires the terminal to it: keys
 * go to the guest's stdin through the worker's line discipline, the guest's output to the
 * screen. A file dropped on the page goes into the shell's home directory. The tree lives in
 * the worker's memory: a new shell (Enter after `exit`) starts from a fresh one.
 * `window.virtusExec` lets scripts and tests drive the page.
 */
import '@xterm/xterm/css/xterm.css';
import '../static/style.css';
import { loadFile } from '../images.ts';
import { GuestConsole } from '../terminal.ts';
import type { ExecManifest, ExecPageMessage, ExecStatus, ExecWorkerMessage } from './protocol.ts';
import { HOME } from './session.ts';

/** What scripts and tests see as `window.virtusExec`. */
export interface ExecPageApi {
  /** The terminal's visible text, one line per row. */
  screenText(): string;
  /** Types text as a user would (a newline is Enter; "\x03" is Ctrl-C). */
  type(text: string): void;
  /** How the worker's run loop stands. */
  status(): Promise<ExecStatus>;
  /** Puts a file in the home directory, as a drop does; rejects with the reason. */
  putFile(name: string, bytes: Uint8Array): Promise<void>;
  /** The terminal's size in characters. */
  size(): { cols: number; rows: number };
  /** 'loading', 'running', 'exited' or 'failed'. */
  state(): string;
}

declare global {
  interface Window {
    virtusExec: ExecPageApi;
  }
}

const WORKER_URL = '/virtus/exec-worker.js';
const MANIFEST_URL = '/exec/manifest.json';
/** The Cache API cache holding busybox (apart from the machine page's, which prunes its own). */
const EXEC_CACHE = 'virtus-exec';
const $ = (id: string): HTMLElement => document.getElementById(id)!;

class ExecPage {
  private readonly console: GuestConsole;
  private worker: Worker | null = null;
  private state = 'loading';
  private busybox: { bytes: Uint8Array; applets: string[] } | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, (s: ExecStatus) => void>();
  private readonly puts = new Map<number, (error: string | null) => void>();

  constructor() {
    this.console = new GuestConsole($('terminal'), {
      input: (bytes) => {
        if (this.state === 'running') this.send({ type: 'input', bytes });
        else if (this.state === 'exited' && bytes.includes(13)) this.start();
      },
      resize: (cols, rows) => this.send({ type: 'resize', cols, rows }),
    });
    window.virtusExec = {
      screenText: () => this.console.screenText(),
      type: (text) => this.console.type(text),
      status: () => this.status(),
      putFile: (name, bytes) => this.put(name, bytes),
      size: () => ({ cols: this.console.term.cols, rows: this.console.term.rows }),
      state: () => this.state,
    };
    document.addEventListener('dragover', (e) => e.preventDefault());
    document.addEventListener('drop', (e) => {
      e.preventDefault();
      for (const f of e.dataTransfer?.files ?? []) {
        void f.arrayBuffer().then((b) => this.put(f.name, new Uint8Array(b))).then(
          () => this.console.note(`${f.name} is in ${HOME}`),
          (err: unknown) => this.console.note(`${f.name}: ${(err as Error).message}`),
        );
      }
    });
    this.console.focus();
  }

  private send(m: ExecPageMessage, transfer: Transferable[] = []): void {
    this.worker?.postMessage(m, transfer);
  }

  private setState(s: string): void {
    this.state = s;
    $('status').textContent = s;
    $('status').dataset.state = s === 'running' ? 'running' : s === 'loading' ? 'booting' : 'stopped';
  }

  /** Loads busybox once, then starts a shell. */
  async load(): Promise<void> {
    try {
      const r = await fetch(MANIFEST_URL, { cache: 'no-store' });
      if (!r.ok) throw new Error(`${MANIFEST_URL}: ${(await r.text()).trim() || `HTTP ${r.status}`}`);
      const m = (await r.json()) as ExecManifest;
      const bytes = await loadFile(m.busybox, (name, done, total, cached) => {
        $('title').textContent = `${cached ? 'reading' : 'downloading'} ${name}: ${Math.floor((done / Math.max(total, 1)) * 100)}%`;
      }, EXEC_CACHE);
      $('title').textContent = `riscv64 ${m.busybox.name}, no kernel`;
      this.busybox = { bytes, applets: m.applets };
      this.start();
    } catch (e) {
      this.setState('failed');
      this.console.note(`cannot start: ${(e as Error).message}`);
    }
  }

  /** A new worker and a new shell over a fresh tree. */
  private start(): void {
    const bb = this.busybox;
    if (!bb) return;
    this.worker?.terminate();
    const w = new Worker(WORKER_URL, { type: 'module', name: 'virtus exec' });
    this.worker = w;
    w.onerror = (e) => {
      e.preventDefault();
      this.setState('failed');
      this.console.note(`the worker failed: ${e.message}`);
    };
    w.onmessage = (e: MessageEvent<ExecWorkerMessage>) => this.onMessage(e.data);
    const engine = new URLSearchParams(location.search).get('engine') === 'interp' ? 'interp' : 'jit';
    this.setState('running');
    // A copy: the page keeps busybox for the next shell.
    this.send({ type: 'start', busybox: bb.bytes.slice(), applets: bb.applets, cols: this.console.term.cols, rows: this.console.term.rows, engine });
  }

  private onMessage(m: ExecWorkerMessage): void {
    switch (m.type) {
      case 'output':
        this.console.write(m.bytes);
        break;
      case 'exited':
        this.setState('exited');
        this.console.note(`the shell ${m.signal === null ? `exited with status ${m.code}` : `was killed: ${m.message ?? `signal ${m.signal}`}`}; Enter starts a new one`);
        break;
      case 'error':
        this.setState('exited');
        this.console.note(`error: ${m.message}; Enter starts a new shell`);
        break;
      case 'status':
        this.waiting.get(m.id)?.({ turns: m.turns, loop: m.loop, processes: m.processes });
        this.waiting.delete(m.id);
        break;
      case 'put':
        this.puts.get(m.id)?.(m.error);
        this.puts.delete(m.id);
        break;
    }
  }

  private status(): Promise<ExecStatus> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.send({ type: 'status', id });
    });
  }

  private put(name: string, bytes: Uint8Array): Promise<void> {
    if (!this.worker || this.state !== 'running') return Promise.reject(new Error('the shell is not running'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.puts.set(id, (error) => (error === null ? resolve() : reject(new Error(error))));
      this.send({ type: 'put', id, name, bytes });
    });
  }
}

void new ExecPage().load();
