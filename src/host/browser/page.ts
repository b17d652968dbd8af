/**
 * The page of `virtus web`: a terminal for the guest's console, the monitor's counters in a
 * side panel, and the buttons. The machine itself runs in a Web Worker (worker.ts); this
 * script loads the guest's files (from the browser's cache when it has them), boots the
 * worker, and wires the two together. `window.virtus` lets scripts and tests drive the page.
 */
import '@xterm/xterm/css/xterm.css';
import './static/style.css';
import { MAX_HARTS } from '../../cpu/layout.ts';
import type { MachineStats } from '../../machine/stats.ts';
import { loadFile, loadManifest, pruneCache, type Manifest } from './images.ts';
import { MachineWorker, type SavedSnapshot } from './machine-worker.ts';
import { DEFAULT_CMDLINE, TAB_SHARE, type MachineSpec } from '../../vmm/spec.ts';
import type { Capabilities, GuestImage, RunState, ShareFile, ShareListing } from './protocol.ts';
import { SharePanel } from './share-panel.ts';
import { compact, StatsPanel } from './stats-panel.ts';
import { GuestConsole } from './terminal.ts';
import { installDropTarget, ROLES, sortFiles, type Role, type UserFile } from './user-files.ts';

/** What scripts and tests see as `window.virtus`. */
export interface VirtusPageApi {
  /** The terminal's visible text, one line per row. */
  screenText(): string;
  /** Types text into the guest's console as a user would (a newline is Enter). */
  type(text: string): void;
  /** The monitor's counters, as `--stats` prints them (the latest sample; null before boot). */
  stats(): MachineStats | null;
  /** The machine's run state. */
  state(): RunState;
  /** How the machine is set up (memory sharing, console, disk, where the files came from). */
  info(): PageInfo;
  pause(): void;
  resume(): void;
  /** Power-cycles the machine; resolves once the new one is booting. */
  reset(): Promise<void>;
  /** Saves a snapshot of the machine (the bytes of a .snap file); it runs on afterwards, or stays paused. */
  saveSnapshot(): Promise<Uint8Array>;
  /**
   * Replaces the machine with the one in snapshot `bytes` and runs it (unless paused). A file
   * that cannot be loaded rejects with the reason, also shown on the terminal, and the
   * machine that was running runs on.
   */
  loadSnapshot(bytes: Uint8Array): Promise<void>;
  /** The tab's shared folder (null when the machine has none): its files, as the Files panel lists them. */
  shareFiles(): Promise<ShareListing | null>;
  /** Puts a file in the shared folder's root, as a drop does; rejects with the reason. */
  putFile(name: string, bytes: Uint8Array): Promise<void>;
}

export interface PageInfo {
  title: string;
  crossOriginIsolated: boolean;
  capabilities: Capabilities | null;
  diskAttached: boolean;
  /** Per file: downloaded, read from the browser's cache, or given by the user. */
  sources: Partial<Record<Role, 'network' | 'cache' | 'user'>>;
  /** The terminal's size in characters. */
  terminal: { cols: number; rows: number };
  /** The snapshot the machine was loaded from, if it was. */
  snapshot: string | null;
}

declare global {
  interface Window {
    virtus: VirtusPageApi;
  }
}

/** The machine when the server describes none (its files are the user's). */
const DEFAULT_SPEC: MachineSpec = {
  memory: 512 * 1024 * 1024, harts: 1, deterministic: false, engine: 'jit',
  boot: { mode: 'builtin', append: DEFAULT_CMDLINE },
  devices: { disks: [], shares: [], nics: [], console: 'serial' },
};

/** The engine: the page's ?engine=jit|interp (as v86 and JSLinux take settings in the URL), else the server's. */
function engine(m: Manifest | null): 'jit' | 'interp' {
  const q = new URLSearchParams(location.search).get('engine');
  return q === 'jit' || q === 'interp' ? q : (m?.spec.engine ?? 'jit');
}
/** Harts: the page's ?smp=N (1 to 8, QEMU's flag), else the server's. */
function harts(m: Manifest | null): number {
  const q = Number(new URLSearchParams(location.search).get('smp') ?? NaN);
  return Number.isInteger(q) && q >= 1 && q <= MAX_HARTS ? q : (m?.spec.harts ?? 1);
}
/** Bytes as MiB with one decimal (download progress, file sizes). */
const mib = (n: number): string => `${Number((n / 2 ** 20).toFixed(1))} MiB`;
const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

class Page {
  private readonly console: GuestConsole;
  private readonly panel = new StatsPanel($('stats'));
  private machine: MachineWorker | null = null;
  private runState: RunState = 'booting';
  private lastStats: MachineStats | null = null;
  private lastRate = 0;
  private prev: { time: number; insns: number } | null = null;
  private caps: Capabilities | null = null;
  private diskAttached = false;
  private manifest: Manifest | null = null;
  /** The default guest's files, loaded once per page. */
  private readonly defaults: Partial<Record<Role, UserFile>> = {};
  /** The user's files; each replaces the default of its role. */
  private readonly user: Partial<Record<Role, UserFile>> = {};
  private readonly sources: PageInfo['sources'] = {};
  private snapshot: string | null = null;
  /** Counts power(): one that a later one overtook while it waited stops there. */
  private powering = 0;
  /** The shared files the next machine starts with (from the one before). */
  private carry: Promise<ShareFile[]> = Promise.resolve([]);
  private readonly share = new SharePanel($<HTMLDetailsElement>('share'), { machine: () => this.machine, note: (l) => this.console.note(l) });

  constructor() {
    this.console = new GuestConsole($('terminal'), {
      input: (b) => {
        if (this.runState === 'running' || this.runState === 'paused') this.machine?.input(b);
      },
      resize: (cols, rows) => this.machine?.resize(cols, rows),
    });
    $('pause').onclick = () => (this.runState === 'paused' ? this.machine?.resume() : this.machine?.pause());
    $('reset').onclick = () => void this.reset();
    $('snapshot-save').onclick = () => void this.downloadSnapshot();
    $('snapshot-load').onclick = () => $<HTMLInputElement>('snapshot-file').click();
    $<HTMLInputElement>('snapshot-file').onchange = async (e) => {
      const input = e.target as HTMLInputElement;
      const f = input.files?.[0];
      input.value = ''; // choosing the same file again is a new change
      if (f) await this.loadSnapshot(f.name, new Uint8Array(await f.arrayBuffer())).catch(() => {});
    };
    this.setupFiles();
    window.virtus = {
      screenText: () => this.console.screenText(),
      type: (text) => this.console.type(text),
      stats: () => this.lastStats,
      state: () => this.runState,
      info: () => this.info(),
      pause: () => this.machine?.pause(),
      resume: () => this.machine?.resume(),
      reset: () => this.reset(),
      saveSnapshot: async () => join((await this.saveSnapshot()).parts),
      loadSnapshot: (bytes) => this.loadSnapshot('(bytes)', bytes),
      shareFiles: () => this.share.refresh(),
      putFile: (name, bytes) => this.share.put([{ name, bytes }]),
    };
  }

  private info(): PageInfo {
    return {
      title: $('title').textContent ?? '',
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
      capabilities: this.caps,
      diskAttached: this.diskAttached,
      sources: { ...this.sources },
      terminal: { cols: this.console.term.cols, rows: this.console.term.rows },
      snapshot: this.snapshot,
    };
  }

  /**
   * Starts a machine: a new worker, the files, then boot. The shared folder's files are
   * carried over from the old worker (a reset keeps them; a worker that does not answer in
   * time loses them, and the terminal says so).
   */
  async power(): Promise<void> {
    const turn = ++this.powering;
    const old = this.machine;
    this.machine = null;
    this.share.setEnabled(false);
    // A second reset while the first waits gets the same files (its "old" is already gone).
    if (old) this.carry = carryShare(old).catch((e: unknown) => (this.console.note(message(e)), []));
    const carried = await this.carry;
    old?.terminate();
    if (turn !== this.powering) return;
    this.lastStats = null;
    this.prev = null;
    this.diskAttached = false;
    this.snapshot = null;
    this.setState('booting');
    const m: MachineWorker = new MachineWorker({
      output: (b) => this.machine === m && this.console.write(b),
      stats: (t, s) => this.machine === m && this.onStats(t, s),
      state: (s, reason) => {
        if (this.machine !== m) return;
        this.setState(s);
        if (s === 'stopped' && reason) this.console.note(`${reason}. Reset powers it on again.`);
      },
      started: (caps, _memory, disk) => {
        if (this.machine !== m) return;
        this.caps = caps;
        this.diskAttached = disk;
        this.share.setEnabled(caps.share);
        this.showInfo();
      },
      error: (message) => {
        if (this.machine !== m) return;
        this.console.note(`error: ${message}`);
        this.setState('stopped');
      },
    });
    this.machine = m;
    try {
      const caps = (this.caps = await m.ready);
      const files = await this.files(caps);
      if (this.machine !== m) return;
      if (!files.kernel) throw new Error('no kernel to boot: drop one on the page');
      const used = [files.kernel, files.initrd, caps.disk ? files.disk : undefined].filter((f): f is UserFile => f !== undefined);
      const images: GuestImage[] = used.map((f) => ({ name: f.name, bytes: f.bytes }));
      m.boot({ spec: this.spec(files, caps), files: images, cols: this.console.term.cols, rows: this.console.term.rows, shareFiles: carried });
      this.showInfo();
      this.console.focus();
    } catch (e) {
      if (this.machine !== m) return;
      this.console.note(`cannot boot: ${e instanceof Error ? e.message : String(e)}`);
      this.setState('stopped');
    } finally {
      $('progress').hidden = true;
    }
  }

  /** The machine to boot: the server's, with the files the page has and the settings the page chose. */
  private spec(files: Partial<Record<Role, UserFile>>, caps: Capabilities): MachineSpec {
    const base = this.manifest?.spec ?? DEFAULT_SPEC;
    const spec: MachineSpec = structuredClone(base);
    spec.engine = engine(this.manifest);
    spec.harts = harts(this.manifest);
    spec.boot = { mode: 'builtin', kernel: files.kernel!.name, append: $<HTMLInputElement>('append').value || base.boot.append || DEFAULT_CMDLINE };
    if (files.initrd) spec.boot.initrd = files.initrd.name;
    // The user's own kernel gets the UART, which every RISC-V Linux configuration has.
    if (this.user.kernel) spec.devices.console = 'serial';
    const disk = base.devices.disks[0];
    spec.devices.disks = files.disk && caps.disk ? [{ file: files.disk.name, readonly: false, serial: disk?.serial ?? 'virtus-root', locking: true }] : [];
    return spec;
  }

  /** The files to boot: the user's where given, else the default guest's (fetched once). */
  private async files(caps: Capabilities): Promise<Partial<Record<Role, UserFile>>> {
    // A user's kernel needs none of the default files, only the server's settings (RAM size).
    if (this.user.kernel) await this.loadManifest().catch(() => {});
    else await this.loadDefaults(caps);
    const out: Partial<Record<Role, UserFile>> = {};
    for (const r of ROLES) {
      const f = this.user[r] ?? this.defaults[r];
      if (f) out[r] = f;
      if (this.user[r]) this.sources[r] = 'user';
    }
    // A user's kernel without an initramfs of their own boots alone, not with ours.
    if (this.user.kernel && !this.user.initrd) delete out.initrd;
    return out;
  }

  private async loadManifest(): Promise<Manifest> {
    if (!this.manifest) {
      this.manifest = await loadManifest();
      $('title').textContent = this.manifest.title;
      document.title = `virtus: ${this.manifest.title}`;
      const append = $<HTMLInputElement>('append');
      if (!append.value) append.value = this.manifest.spec.boot.append;
      void pruneCache(this.manifest);
    }
    return this.manifest;
  }

  private async loadDefaults(caps: Capabilities): Promise<void> {
    const manifest = await this.loadManifest();
    // The disk is fetched only when the board can attach it.
    const wanted = ROLES.filter((r) => r !== 'disk' || caps.disk);
    for (const role of wanted) {
      const f = manifest.files[role];
      if (!f || this.defaults[role] || this.user[role]) continue;
      const bytes = await loadFile(f, (name, done, total, cached) => {
        this.sources[role] = cached ? 'cache' : 'network';
        this.progress(`${cached ? 'reading' : 'downloading'} ${name}: ${mib(done)} of ${mib(total)}${cached ? ' from the browser cache' : ''}`, total ? done / total : 0);
      });
      this.defaults[role] = { name: f.name, bytes };
    }
    this.showSlots();
  }

  private progress(text: string, fraction: number): void {
    const p = $('progress');
    p.hidden = false;
    (p.querySelector('.text') as HTMLElement).textContent = text;
    (p.querySelector('.bar i') as HTMLElement).style.width = `${Math.round(fraction * 100)}%`;
  }

  private onStats(time: number, s: MachineStats): void {
    this.lastStats = s;
    if (this.prev && time > this.prev.time) this.lastRate = ((s.instructions - this.prev.insns) * 1000) / (time - this.prev.time);
    this.prev = { time, insns: s.instructions };
    this.panel.update(time, s);
    this.showStatus();
  }

  private setState(s: RunState): void {
    this.runState = s;
    const pause = $<HTMLButtonElement>('pause');
    pause.textContent = s === 'paused' ? 'Resume' : 'Pause';
    pause.disabled = s !== 'running' && s !== 'paused';
    $<HTMLButtonElement>('reset').disabled = s === 'booting' && !this.caps;
    const snapshots = this.caps?.snapshots === true;
    $<HTMLButtonElement>('snapshot-save').disabled = !snapshots || (s !== 'running' && s !== 'paused');
    $<HTMLButtonElement>('snapshot-load').disabled = !snapshots;
    if (s !== 'running') this.lastRate = 0;
    this.showStatus();
  }

  private showStatus(): void {
    const st = $('status');
    st.dataset.state = this.runState;
    st.textContent = this.runState === 'running' && this.lastRate > 0 ? `running · ${compact(this.lastRate)} IPS` : this.runState;
  }

  /** How many harts, and where they run (each in a Web Worker of its own, or taking turns, and why). */
  private hartsInfo(): string {
    const n = harts(this.manifest);
    if (n === 1) return '1';
    const why = this.caps?.noHartThreads;
    if (why === undefined) return `${n}`;
    return why === null ? `${n}, each in a Web Worker of its own (hart 0 in the machine's)` : `${n}, taking turns in the machine's worker: ${why}`;
  }

  private showInfo(): void {
    const c = this.caps;
    const ram = mib((this.manifest?.spec ?? DEFAULT_SPEC).memory);
    const mem = c?.sharedMemory
      ? 'shared WebAssembly.Memory (the page is cross-origin isolated)'
      : 'ordinary WebAssembly.Memory (the page is not cross-origin isolated)';
    const rows: Array<[string, string]> = [
      ['guest RAM', `${ram}, ${mem}`],
      ['engine', engine(this.manifest) === 'jit' ? 'hot code translated to WebAssembly' : 'interpreter'],
      ['harts', this.hartsInfo()],
      ['console', c?.consoleResize ? 'virtio-console (hvc0): the guest follows the window size' : 'serial (ttyS0): the guest is not told the window size'],
      ['disk', this.diskAttached ? `/dev/vda, ${c?.persistentDisk ? "kept in this browser's storage" : 'in memory (changes end with the tab)'}` : 'none'],
      ['shared folder', c?.share ? `${TAB_SHARE.mountPoint} in the guest (9p tag ${TAB_SHARE.tag}), in this tab's memory: see Files` : 'none'],
      ['files', ROLES.filter((r) => this.sources[r]).map((r) => `${r} from ${this.sources[r]}`).join(', ') || '…'],
      ...(this.snapshot ? [['state', `loaded from snapshot ${this.snapshot}`] as [string, string]] : []),
    ];
    $('machine-info').replaceChildren(
      ...rows.map(([k, v]) => {
        const d = document.createElement('div');
        d.innerHTML = '<b></b> <span></span>';
        d.firstElementChild!.textContent = k;
        d.lastElementChild!.textContent = v;
        return d;
      }),
    );
  }

  /** Power-cycles: a new worker boots the same files; the terminal and the charts start over. */
  async reset(): Promise<void> {
    this.console.reset();
    this.panel.reset();
    await this.power();
  }

  /** Has the worker save a snapshot; failures are noted on the terminal and rethrown. */
  private async saveSnapshot(): Promise<SavedSnapshot> {
    const m = this.machine;
    if (!m) throw new Error('no machine to save');
    try {
      const s = await m.save();
      const bytes = s.parts.reduce((n, p) => n + p.length, 0);
      this.console.note(`snapshot saved: ${mib(bytes)} in ${Math.round(s.ms)} ms`);
      return s;
    } catch (e) {
      this.console.note(`cannot save a snapshot: ${message(e)}`);
      throw e;
    }
  }

  /** The Save snapshot button: the snapshot becomes a download. */
  private async downloadSnapshot(): Promise<void> {
    const s = await this.saveSnapshot().catch(() => null);
    if (!s) return;
    const url = URL.createObjectURL(new Blob(s.parts as BlobPart[], { type: 'application/octet-stream' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `virtus-${new Date().toISOString().slice(0, 19).replace(/:/g, '-')}.snap`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  /**
   * Loads a snapshot into the worker, in place of the running machine. The terminal goes on
   * (the guest's screen is its own business); the counters start over with the new machine.
   */
  private async loadSnapshot(name: string, bytes: Uint8Array): Promise<void> {
    const m = this.machine;
    try {
      if (!m) throw new Error('no machine to load it into');
      const r = await m.restore(name, bytes);
      if (this.machine !== m) return;
      this.caps = r.capabilities;
      this.diskAttached = r.diskAttached;
      this.share.setEnabled(r.capabilities.share);
      this.snapshot = name;
      this.panel.reset();
      this.prev = null;
      this.showInfo();
      this.console.note(`snapshot loaded: ${mib(bytes.length)} in ${Math.round(r.ms)} ms`);
      this.console.focus();
    } catch (e) {
      this.console.note(`cannot load ${name === '(bytes)' ? 'the snapshot' : name}: ${message(e)}`);
      throw e;
    }
  }

  private setupFiles(): void {
    installDropTarget(document.body, {
      onFiles: (files) => this.useFiles(files, true),
      onSnapshot: (f) => void this.loadSnapshot(f.name, f.bytes).catch(() => {}),
      onShare: (files) => void this.share.put(files).catch(() => {}),
      // Before the machine has started, the server's spec says whether it will have the folder.
      hasShare: () => this.machine !== null && (this.caps?.share === true || (this.runState === 'booting' && (this.manifest?.spec.devices.shares.length ?? 0) > 0)),
    });
    for (const slot of document.querySelectorAll<HTMLElement>('#files .slot')) {
      const role = slot.dataset.role as Role;
      slot.querySelector('input')!.onchange = async (e) => {
        const list = (e.target as HTMLInputElement).files;
        if (list?.length) this.useFiles(await sortFiles(list, role), false);
      };
      (slot.querySelector('.clear') as HTMLButtonElement).onclick = () => {
        delete this.user[role];
        delete this.sources[role];
        this.showSlots();
      };
    }
    $('boot-files').onclick = () => void this.reset();
    this.showSlots();
  }

  /** Takes the user's files; a drop boots them at once, a file chooser waits for "Boot these". */
  private useFiles(files: Partial<Record<Role, UserFile>>, boot: boolean): void {
    Object.assign(this.user, files);
    ($('files') as HTMLDetailsElement).open = true;
    this.showSlots();
    if (boot) void this.reset();
  }

  private showSlots(): void {
    for (const slot of document.querySelectorAll<HTMLElement>('#files .slot')) {
      const role = slot.dataset.role as Role;
      const f = this.user[role] ?? this.defaults[role];
      const name = slot.querySelector('.name') as HTMLElement;
      name.textContent = f ? `${f.name} (${mib(f.bytes.length)})${this.user[role] ? '' : ', default'}` : 'none';
      (slot.querySelector('.clear') as HTMLButtonElement).hidden = !this.user[role];
    }
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** How long a reset waits for the old worker's shared files. */
const CARRY_MS = 10_000;

/** The old worker's shared files, for the next one. */
function carryShare(old: MachineWorker): Promise<ShareFile[]> {
  return Promise.race([
    old.exportShare(),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the machine did not hand over its shared files in ${CARRY_MS / 1000} s: the new one starts with an empty folder`)), CARRY_MS)),
  ]);
}

/** The parts of a file as one array. */
function join(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const page = new Page();
void page.power();
