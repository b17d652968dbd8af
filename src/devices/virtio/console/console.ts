/**
 * virtio-console (virtio 1.2 §5.3) with a single port, the guest's hvc0: transmitq buffers
 * go to the host as they arrive, host input fills receiveq buffers (at once when there are
 * some, otherwise at the next slice boundary or when the driver adds buffers). The console
 * size (VIRTIO_CONSOLE_F_SIZE) follows the host terminal through resize(), which sends a
 * configuration change notification; Linux then resizes hvc0. Emergency writes
 * (VIRTIO_CONSOLE_F_EMERG_WRITE) reach the host even before the driver has set up queues.
 */
import { StateReader } from '../../state.ts';
import { ChainWriter, readSegments } from '../chain.ts';
import { DEVICE_ID, type VirtioContext, type VirtioCounters, type VirtioDevice } from '../types.ts';

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
  /** Where the guest's output goes. */
  output(bytes: Uint8Array): void;
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
  private readonly stats = { 'bytes out': 0, 'bytes in': 0, 'input dropped': 0 };

  constructor(private readonly o: ConsoleOptions) {
    this.name = o.name ?? 'virtio-console0';
    this.cols = o.cols ?? 80;
    this.rows = o.rows ?? 24;
  }

  attach(ctx: VirtioContext): void {
    this.ctx = ctx;
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

  reset(): void {}

  counters(): VirtioCounters {
    return { ...this.stats };
  }

  poll(): void {
    this.deliver();
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
    for (let c = q.pop(); c; c = q.pop()) {
      if (c.readLen > 0) this.emit(readSegments(ctx.ram, c.readable));
      q.push(c, 0);
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
