/**
 * virtio-console (virtio 1.2 §5.3) with a single port, the guest's hvc0: transmitq buffers
 * go to the host as they arrive, host input fills receiveq buffers (at once when there are
 * some, otherwise at the next slice boundary or when the driver adds buffers). The console
 * size (VIRTIO_CONSOLE_F_SIZE) follows the host terminal through resize(), which sends a
 * configuration change notification; Linux then resizes hvc0. Emergency writes
 * (VIRTIO_CONSOLE_F_EMERG_WRITE) reach the host even before the driver has set up queues.
 *
 * Output goes to the host straight from guest memory in pieces of at most PIECE_BYTES, a
 * turn's credit at a time (types.ts) and no faster than the host takes it (`room`): a
 * transmit chain of gigabytes streams out over many slices and never needs a buffer of its
 * size. A snapshot taken while a chain is half sent sends it again, whole, after the restore.
 */
import { StateReader } from '../../state.ts';
import { ChainWriter, eachWindow } from '../chain.ts';
import type { Chain } from '../queue.ts';
import { DEVICE_ID, PIECE_BYTES, type VirtioContext, type VirtioCounters, type VirtioDevice } from '../types.ts';

export const CONSOLE_F_SIZE = 1n << 0n;
export const CONSOLE_F_EMERG_WRITE = 1n << 2n;
export const CONSOLE_QUEUE_SIZE = 128;
const RX = 0;
const TX = 1;
/** §5.3.4 configuration: cols, rows, max_nr_ports, emerg_wr. */
const CONFIG_SIZE = 12;
const EMERG_WR = 8;
/** Input the host may queue ahead of the guest before the oldest is dropped. */
const INPUT_MAX = 1 << 20;

export interface ConsoleOptions {
  name?: string;
  /**
   * Where the guest's output goes. `bytes` may be a view of guest memory, valid during the
   * call only: a host that keeps output for later copies it.
   */
  output(bytes: Uint8Array): void;
  /**
   * How many bytes the host takes now (default: any number). Transmission stops at 0 and
   * carries on at a later slice boundary, so a host whose output drains slowly (a pipe, a
   * terminal) holds a bounded amount however fast the guest writes.
   */
  room?(): number;
  cols?: number;
  rows?: number;
}

/** Saved state: the console size and host input not yet taken by the guest. */
export interface ConsoleState {
  cols: number;
  rows: number;
  input: number[];
}

export class VirtioConsole implements VirtioDevice {
  readonly deviceId = DEVICE_ID.console;
  readonly name: string;
  readonly features = CONSOLE_F_SIZE | CONSOLE_F_EMERG_WRITE;
  readonly queueMax = [CONSOLE_QUEUE_SIZE, CONSOLE_QUEUE_SIZE];
  readonly configSize = CONFIG_SIZE;
  private ctx: VirtioContext | null = null;
  private cols: number;
  private rows: number;
  private input: number[] = [];
  /** The transmit chain being sent, and how many of its bytes went out. */
  private tx: { chain: Chain; sent: number } | null = null;
  private readonly stats = { 'bytes out': 0, 'bytes in': 0, 'input dropped': 0 };

  constructor(private readonly o: ConsoleOptions) {
    this.name = o.name ?? 'virtio-console0';
    this.cols = o.cols ?? 80;
    this.rows = o.rows ?? 24;
  }

  attach(ctx: VirtioContext): void {
    this.ctx = ctx;
  }

  /** True while a driver runs the device (DRIVER_OK, not broken): the guest's hvc0 exists. */
  get inUse(): boolean {
    return this.ctx?.live() ?? false;
  }

  readConfig(offset: number, width: 1 | 2 | 4): number {
    const c = new DataView(new ArrayBuffer(CONFIG_SIZE));
    c.setUint16(0, this.cols, true);
    c.setUint16(2, this.rows, true);
    c.setUint32(4, 1, true); // max_nr_ports: meaningful only with MULTIPORT, which is not offered
    return width === 1 ? c.getUint8(offset) : width === 2 ? c.getUint16(offset, true) : c.getUint32(offset, true);
  }

  writeConfig(offset: number, _width: 1 | 2 | 4, value: number): void {
    // §5.3.5.1: the low byte written to emerg_wr goes to the output, configured or not.
    if (offset === EMERG_WR) this.emit(new Uint8Array([value & 0xff]));
  }

  /** The console's size in characters. */
  get size(): { cols: number; rows: number } {
    return { cols: this.cols, rows: this.rows };
  }

  /** The host terminal changed size: the guest learns it through a configuration change (§5.3.6). */
  resize(cols: number, rows: number): void {
    const c = Math.max(0, Math.min(0xffff, Math.floor(cols)));
    const r = Math.max(0, Math.min(0xffff, Math.floor(rows)));
    if (c === this.cols && r === this.rows) return;
    this.cols = c;
    this.rows = r;
    this.ctx?.configChanged();
  }

  /** Host keyboard input for the guest. */
  write(bytes: Uint8Array): void {
    for (const b of bytes) this.input.push(b);
    const over = this.input.length - INPUT_MAX;
    if (over > 0) {
      this.input.splice(0, over);
      this.stats['input dropped'] += over;
    }
    if (this.ctx?.live()) {
      this.deliver();
      this.ctx.flush();
    }
  }

  reset(): void {
    this.tx = null;
  }

  counters(): VirtioCounters {
    return { ...this.stats };
  }

  poll(): void {
    this.deliver();
    this.transmit();
  }

  notify(queue: number): void {
    if (queue === RX) this.deliver();
    else if (queue === TX) this.transmit();
  }

  private emit(bytes: Uint8Array): void {
    this.stats['bytes out'] += bytes.length;
    this.o.output(bytes);
  }

  private transmit(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const q = ctx.queue(TX);
    for (;;) {
      if (this.tx && !q.holds(this.tx.chain)) this.tx = null;
      if (!this.tx) {
        const c = q.pop();
        if (!c) return;
        this.tx = { chain: c, sent: 0 };
      }
      const t = this.tx;
      while (t.sent < t.chain.readLen) {
        const n = Math.min(t.chain.readLen - t.sent, PIECE_BYTES, ctx.credit(), this.o.room?.() ?? Infinity);
        if (n <= 0) return; // the rest goes in a later turn
        eachWindow(ctx.ram, t.chain.readable, { from: t.sent, n, write: false }, (view) => this.emit(view));
        t.sent += n;
        ctx.spend(n);
      }
      this.tx = null;
      q.push(t.chain, 0);
    }
  }

  private deliver(): void {
    const ctx = this.ctx;
    if (!ctx || this.input.length === 0) return;
    const q = ctx.queue(RX);
    while (this.input.length > 0) {
      const c = q.pop();
      if (!c) return;
      const w = new ChainWriter(ctx.ram, c.writable);
      const n = w.write(new Uint8Array(this.input.slice(0, w.capacity)));
      this.input.splice(0, n);
      ctx.spend(n);
      this.stats['bytes in'] += n;
      q.push(c, n);
    }
  }

  save(): ConsoleState {
    return { cols: this.cols, rows: this.rows, input: [...this.input] };
  }

  restore(state: unknown): void {
    const r = new StateReader(this.name, state, ['cols', 'rows', 'input']);
    const s = { cols: r.uint('cols', 0xffff), rows: r.uint('rows', 0xffff), input: r.uintArray('input', INPUT_MAX, 0xff, { upTo: true }) };
    this.cols = s.cols;
    this.rows = s.rows;
    this.input = [...s.input];
  }
}
