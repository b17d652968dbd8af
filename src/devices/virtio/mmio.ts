/**
 * The virtio-mmio transport, version 2 (virtio 1.2 §4.2; the legacy version 1 is not
 * offered). One transport per board slot; a slot without a device presents DeviceID 0, as
 * QEMU's empty slots do, and a driver skips it (§4.2.3.1.1).
 *
 * The transport owns everything common to all devices: the status field and device reset
 * (§2.1, §2.4), feature negotiation (§2.2: FEATURES_OK is refused for features not offered
 * or without VIRTIO_F_VERSION_1), the split virtqueues (queue.ts), ConfigGeneration, and the
 * interrupt line with its InterruptStatus bits (used buffer, configuration change). Devices
 * supply their configuration space and queue handlers (types.ts).
 *
 * I/O is synchronous: a QueueNotify write runs the device's handler, which serves requests
 * before the write returns; the used buffer interrupt is raised at once (the hart takes it at
 * the next slice boundary). What a device does between two slice boundaries is bounded
 * (types.ts, TURN_BYTES): a device that ran out of credit is notified again on every ready
 * queue at the next boundary (poll()) and carries on there, and `busy` tells the machine not
 * to idle meanwhile. Input from the host (console) is delivered by poll() as well. A driver
 * that breaks the protocol gets DEVICE_NEEDS_RESET and a configuration change interrupt
 * (§2.1.2); the monitor carries on.
 */
import type { GuestMemory } from '../memory.ts';
import type { Device, IrqLine } from '../device.ts';
import { StateReader, type Stateful } from '../state.ts';
import { Virtqueue, type QueueHost, type QueueState } from './queue.ts';
import {
  F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1, STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER_OK, STATUS_FEATURES_OK, TURN_BYTES,
  type VirtioContext, type VirtioCounters, type VirtioDevice,
} from './types.ts';

/** §4.2.2: "virt" in little-endian. */
export const MMIO_MAGIC = 0x7472_6976;
export const MMIO_VERSION = 2;
/** The vendor ID QEMU's transports present ("QEMU"). */
export const MMIO_VENDOR = 0x554d_4551;
/** The window of one slot (QEMU virt's stride; the registers and config space fill its start). */
export const MMIO_SIZE = 0x1000;

/** §4.2.2 register offsets. */
export const REG = {
  MAGIC: 0x000, VERSION: 0x004, DEVICE_ID: 0x008, VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010, DEVICE_FEATURES_SEL: 0x014, DRIVER_FEATURES: 0x020, DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030, QUEUE_NUM_MAX: 0x034, QUEUE_NUM: 0x038, QUEUE_READY: 0x044, QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060, INTERRUPT_ACK: 0x064, STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080, QUEUE_DESC_HIGH: 0x084, QUEUE_DRIVER_LOW: 0x090, QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0, QUEUE_DEVICE_HIGH: 0x0a4, SHM_SEL: 0x0ac, SHM_LEN_LOW: 0x0b0, SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8, SHM_BASE_HIGH: 0x0bc, QUEUE_RESET: 0x0c0, CONFIG_GENERATION: 0x0fc, CONFIG: 0x100,
} as const;

/** InterruptStatus bits (§4.2.2). */
export const INT_USED_BUFFER = 1;
export const INT_CONFIG = 2;

/** The features every device gets from the transport. */
const TRANSPORT_FEATURES = F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX;

/** Saved transport state (and the device's, under `device`). */
export interface MmioState {
  status: number;
  deviceFeaturesSel: number;
  driverFeaturesSel: number;
  driverFeatures: string;
  queueSel: number;
  interruptStatus: number;
  configGeneration: number;
  broken: boolean;
  queues: QueueState[];
  device: unknown;
}

export interface MmioOptions {
  /** Told about each protocol violation that broke the device (for the host's log). */
  onError?: (device: string, reason: string) => void;
}

export class VirtioMmio implements Device, Stateful<MmioState> {
  readonly size = MMIO_SIZE;
  private dev: VirtioDevice | null = null;
  private queues: Virtqueue[] = [];
  private status = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private driverFeatures = 0n;
  private queueSel = 0;
  private interruptStatus = 0;
  private configGeneration = 0;
  private broken = false;
  /** Work left in this turn (TURN_BYTES at each slice boundary). */
  private turnCredit = TURN_BYTES;
  /** The credit ran out in this turn: there may be work left for the next. */
  private starved = false;
  private readonly count = { notifications: 0, 'used buffer interrupts': 0, 'config interrupts': 0, 'driver errors': 0 };
  /** The last protocol violation, for tests and messages. */
  lastError: string | null = null;
  private readonly ctx: VirtioContext & QueueHost;

  constructor(
    ram: GuestMemory,
    private readonly irq: IrqLine,
    private readonly o: MmioOptions = {},
  ) {
    this.ctx = {
      ram,
      queue: (i) => this.queues[i]!,
      features: () => this.driverFeatures & this.offered(),
      live: () => this.live(),
      usable: () => this.live(),
      configChanged: () => this.configChanged(),
      fail: (reason) => this.fail(reason),
      needsReset: (reason) => this.fail(reason, false),
      flush: () => this.flush(),
      credit: () => this.turnCredit,
      spend: (bytes) => {
        this.turnCredit -= bytes;
        if (this.turnCredit <= 0) this.starved = true;
      },
    };
  }

  /** The device's name, for statistics (`virtio-mmio` for an empty slot). */
  get name(): string {
    return this.dev?.name ?? 'virtio-mmio';
  }

  /** The device in this slot, if any. */
  get device(): VirtioDevice | null {
    return this.dev;
  }

  /** Plugs `dev` into this (empty) slot. */
  attach(dev: VirtioDevice): void {
    if (this.dev) throw new Error(`${this.dev.name} already occupies this virtio-mmio slot`);
    this.dev = dev;
    this.queues = dev.queueMax.map((max, i) => new Virtqueue(i, max, this.ctx));
    dev.attach(this.ctx);
  }

  /** Features offered: the device's and the transport's (§6). */
  offered(): bigint {
    return this.dev ? this.dev.features | TRANSPORT_FEATURES : 0n;
  }

  private live(): boolean {
    return (this.status & STATUS_DRIVER_OK) !== 0 && !this.broken;
  }

  private updateIrq(): void {
    this.irq.set(this.interruptStatus !== 0);
  }

  private configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if (this.status & STATUS_DRIVER_OK) this.raise(INT_CONFIG);
  }

  private raise(bit: number): void {
    if (bit === INT_CONFIG) this.count['config interrupts']++;
    else this.count['used buffer interrupts']++;
    this.interruptStatus |= bit;
    this.updateIrq();
  }

  /**
   * §2.1.2: an error only a reset cures; with DRIVER_OK the driver hears of it through a config
   * change interrupt. `driverError` false: the device asks for the reset itself (needsReset).
   */
  private fail(reason: string, driverError = true): void {
    if (this.broken) return;
    this.broken = true;
    this.status |= STATUS_DEVICE_NEEDS_RESET;
    if (driverError) {
      this.count['driver errors']++;
      this.lastError = reason;
      this.o.onError?.(this.name, reason);
    }
    if (this.status & STATUS_DRIVER_OK) this.raise(INT_CONFIG);
  }

  private flush(): void {
    let due = false;
    for (const q of this.queues) if (q.needsNotification()) due = true;
    if (due) this.raise(INT_USED_BUFFER);
  }

  private selected(): Virtqueue | undefined {
    return this.queues[this.queueSel];
  }

  read(offset: number, width: 1 | 2 | 4): number {
    if (offset >= REG.CONFIG) {
      const d = this.dev;
      const at = offset - REG.CONFIG;
      return d && at + width <= d.configSize ? d.readConfig(at, width) >>> 0 : 0;
    }
    // §4.2.2.2: registers are accessed 32 bits wide; QEMU ignores other widths too.
    if (width !== 4) return 0;
    switch (offset) {
      case REG.MAGIC: return MMIO_MAGIC;
      case REG.VERSION: return MMIO_VERSION;
      case REG.DEVICE_ID: return this.dev?.deviceId ?? 0;
      case REG.VENDOR_ID: return MMIO_VENDOR;
    }
    if (!this.dev) return 0;
    switch (offset) {
      case REG.DEVICE_FEATURES: {
        const f = this.offered();
        return this.deviceFeaturesSel < 2 ? Number((f >> BigInt(32 * this.deviceFeaturesSel)) & 0xffff_ffffn) : 0;
      }
      case REG.QUEUE_NUM_MAX: return this.selected()?.max ?? 0;
      case REG.QUEUE_READY: return this.selected()?.ready ? 1 : 0;
      case REG.INTERRUPT_STATUS: return this.interruptStatus;
      case REG.STATUS: return this.status;
      case REG.CONFIG_GENERATION: return this.configGeneration;
      // No shared memory regions: §4.2.2 gives -1 for the length and base of a region that does not exist.
      case REG.SHM_LEN_LOW: case REG.SHM_LEN_HIGH: case REG.SHM_BASE_LOW: case REG.SHM_BASE_HIGH: return 0xffff_ffff;
      default: return 0;
    }
  }

  write(offset: number, width: 1 | 2 | 4, value: number): void {
    const d = this.dev;
    if (!d) return;
    if (offset >= REG.CONFIG) {
      const at = offset - REG.CONFIG;
      if (at + width <= d.configSize) d.writeConfig(at, width, value);
      return;
    }
    if (width !== 4) return;
    const v = value >>> 0;
    const q = this.selected();
    const setAddr = (field: 'desc' | 'driver' | 'device', high: boolean) => {
      // §4.2.2.1: the driver must not change a ready queue's layout; such writes are ignored.
      if (!q || q.ready) return;
      q[field] = high ? (q[field] & 0xffff_ffffn) | (BigInt(v) << 32n) : (q[field] & ~0xffff_ffffn) | BigInt(v);
    };
    switch (offset) {
      case REG.DEVICE_FEATURES_SEL: this.deviceFeaturesSel = v; break;
      case REG.DRIVER_FEATURES_SEL: this.driverFeaturesSel = v; break;
      case REG.DRIVER_FEATURES:
        // §3.1.1: features are fixed once FEATURES_OK is set. Bits never offered are kept as
        // written, so that FEATURES_OK is refused (§2.2.2) here and after a restore alike.
        if (this.status & STATUS_FEATURES_OK || this.driverFeaturesSel > 1) break;
        if (this.driverFeaturesSel === 0) this.driverFeatures = (this.driverFeatures & ~0xffff_ffffn) | BigInt(v);
        else this.driverFeatures = (this.driverFeatures & 0xffff_ffffn) | (BigInt(v) << 32n);
        break;
      case REG.QUEUE_SEL: this.queueSel = v; break;
      case REG.QUEUE_NUM: if (q && !q.ready) q.size = v; break;
      case REG.QUEUE_READY: this.setReady(q, (v & 1) === 1); break;
      case REG.QUEUE_NOTIFY: this.notify(v & 0xffff); break;
      case REG.INTERRUPT_ACK:
        this.interruptStatus &= ~v;
        this.updateIrq();
        break;
      case REG.STATUS: this.setStatus(v & 0xff); break;
      case REG.QUEUE_DESC_LOW: setAddr('desc', false); break;
      case REG.QUEUE_DESC_HIGH: setAddr('desc', true); break;
      case REG.QUEUE_DRIVER_LOW: setAddr('driver', false); break;
      case REG.QUEUE_DRIVER_HIGH: setAddr('driver', true); break;
      case REG.QUEUE_DEVICE_LOW: setAddr('device', false); break;
      case REG.QUEUE_DEVICE_HIGH: setAddr('device', true); break;
      default: break; // read-only registers, SHMSel, QueueReset (VIRTIO_F_RING_RESET is not offered)
    }
  }

  private setReady(q: Virtqueue | undefined, on: boolean): void {
    if (!q || q.ready === on) return;
    if (!on) {
      q.disable();
      return;
    }
    const err = q.check();
    if (err) {
      this.fail(err);
      return;
    }
    // §4.2.3.2: the driver hands over freshly zeroed rings, so both indices start at 0.
    q.enable();
  }

  private notify(index: number): void {
    this.count.notifications++;
    const d = this.dev;
    const q = this.queues[index];
    // §2.1.2: nothing is consumed before DRIVER_OK; a notification for a queue that is not ready is ignored.
    if (!d || !q || !q.ready || !this.live()) return;
    d.notify(index);
    this.flush();
  }

  private setStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    const was = this.status;
    let next = v & ~STATUS_DEVICE_NEEDS_RESET;
    if (next & STATUS_FEATURES_OK && !(was & STATUS_FEATURES_OK)) {
      // §2.2.2: refuse FEATURES_OK for a subset we cannot honour (we offer no legacy interface).
      const f = this.driverFeatures;
      if ((f & ~this.offered()) !== 0n || !(f & F_VERSION_1)) next &= ~STATUS_FEATURES_OK;
    }
    this.status = next | (this.broken ? STATUS_DEVICE_NEEDS_RESET : 0);
    if (this.status & STATUS_DRIVER_OK && !(was & STATUS_DRIVER_OK) && this.live()) {
      // Buffers made available before DRIVER_OK (a receive queue filled at probe) are looked at now.
      for (const q of this.queues) if (q.ready) this.dev!.notify(q.index);
      this.flush();
    }
  }

  /**
   * A slice boundary: a new turn's credit, host input, and work left from the last turn
   * (every ready queue is notified again, so a device carries on with what it started).
   */
  poll(): void {
    const resume = this.starved;
    this.turnCredit = TURN_BYTES;
    this.starved = false;
    const d = this.dev;
    if (!d || !this.live()) return;
    d.poll?.();
    if (resume) for (const q of this.queues) if (q.ready && this.live()) d.notify(q.index);
    this.flush();
  }

  /** True when the device has work left for the next turn: the machine must not idle. */
  get busy(): boolean {
    return this.starved && this.live();
  }

  /** §2.4 device reset (status 0, or the machine's reset). */
  reset(): void {
    this.status = 0;
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    this.driverFeatures = 0n;
    this.interruptStatus = 0;
    this.broken = false;
    for (const q of this.queues) q.reset();
    this.dev?.reset();
    this.updateIrq();
  }

  /** Counters for `--stats`: the transport's and the device's. */
  counters(): VirtioCounters {
    return this.dev ? { ...this.dev.counters(), ...this.count } : {};
  }

  save(): MmioState {
    return {
      status: this.status, deviceFeaturesSel: this.deviceFeaturesSel, driverFeaturesSel: this.driverFeaturesSel,
      driverFeatures: this.driverFeatures.toString(), queueSel: this.queueSel, interruptStatus: this.interruptStatus,
      configGeneration: this.configGeneration, broken: this.broken, queues: this.queues.map((q) => q.save()),
      device: this.dev?.save?.() ?? null,
    };
  }

  restore(state: unknown): void {
    const name = this.name;
    const r = new StateReader(name, state, [
      'status', 'deviceFeaturesSel', 'driverFeaturesSel', 'driverFeatures', 'queueSel', 'interruptStatus', 'configGeneration', 'broken', 'queues', 'device',
    ]);
    const s = {
      status: r.uint('status', 0xff), deviceFeaturesSel: r.uint('deviceFeaturesSel', 0xffff_ffff), driverFeaturesSel: r.uint('driverFeaturesSel', 0xffff_ffff),
      driverFeatures: r.u64('driverFeatures'), queueSel: r.uint('queueSel', 0xffff_ffff), interruptStatus: r.uint('interruptStatus', INT_USED_BUFFER | INT_CONFIG),
      configGeneration: r.uint('configGeneration', 0xffff_ffff), broken: r.bool('broken'),
    };
    // §2.2.2: before FEATURES_OK the driver may have written any bits (they only make FEATURES_OK
    // fail); once FEATURES_OK is set, every accepted feature was offered.
    if (s.status & STATUS_FEATURES_OK && s.driverFeatures & ~this.offered()) {
      r.fail(`driverFeatures 0x${s.driverFeatures.toString(16)} were never offered, yet FEATURES_OK is set`);
    }
    if (s.broken !== ((s.status & STATUS_DEVICE_NEEDS_RESET) !== 0)) r.fail('broken disagrees with DEVICE_NEEDS_RESET in status');
    const raw = (state as Record<string, unknown>).queues;
    if (!Array.isArray(raw) || raw.length !== this.queues.length) r.fail(`queues must be an array of ${this.queues.length} entries`);
    const dev = this.dev;
    const devState = (state as Record<string, unknown>).device;
    if (!dev && devState !== null) r.fail('device state given for an empty slot');
    // Everything is checked on fresh queues first, so a bad state leaves this transport as it was.
    const fresh = this.queues.map((q) => new Virtqueue(q.index, q.max, this.ctx));
    fresh.forEach((q, i) => q.restore((raw as unknown[])[i], name));
    if (dev) {
      if (dev.restore) dev.restore(devState);
      else if (devState !== null) r.fail('this device keeps no state');
    }
    this.queues = fresh;
    Object.assign(this, s);
    // Chains that were in flight are handed to the device again at the next slice boundary.
    this.starved = true;
    this.updateIrq();
    dev?.restored?.();
  }
}
