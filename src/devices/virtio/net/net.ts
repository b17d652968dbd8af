/**
 * virtio-net (virtio 1.2 §5.1): one receive and one transmit queue and a control queue,
 * over any NetBackend (src/util/net-backend.ts): a user-mode NAT, a socket link, a switch.
 *
 * Offered: a MAC address (VIRTIO_NET_F_MAC), link status (F_STATUS), mergeable receive
 * buffers (F_MRG_RXBUF), checksum offload both ways (F_CSUM: the guest may leave TCP/UDP
 * checksums to the device; F_GUEST_CSUM: frames the NAT built are marked DATA_VALID), TCP
 * segmentation offload both ways (F_HOST_TSO4: segments up to 64 KiB from the guest;
 * F_GUEST_TSO4: the NAT hands the guest large segments), and F_GUEST_ANNOUNCE with its
 * control queue: after a restore or migration `announce()` asks the guest to send
 * gratuitous ARPs so switches learn where it is now.
 *
 * Frames from the guest are untrusted: a chain without a whole header, a runt frame, an
 * oversize frame or offload fields that do not match the frame are dropped and counted,
 * never thrown on. Frames for the guest wait in a bounded backlog until the driver has
 * buffers; beyond it they are dropped and counted, as a NIC's ring overflows.
 */
import { HDR_F_DATA_VALID, HDR_F_NEEDS_CSUM, GSO_NONE, GSO_TCPV4, wireFrames, type TxHeader } from './offload.ts';
import { ETH_HEADER, IP_PROTO_TCP, MAX_FRAME, MIN_FRAME, macString, pseudoSum, wr16 } from '../../../util/inet.ts';
import type { NetBackend, RxOffload } from '../../../util/net-backend.ts';
import { StateReader } from '../../state.ts';
import { ChainWriter, readSegments } from '../chain.ts';
import type { Chain } from '../queue.ts';
import type { VirtioContext, VirtioCounters, VirtioDevice } from '../types.ts';

/** virtio 1.2 §5.1.1: the network device's ID. */
export const NET_DEVICE_ID = 1;
/** virtio 1.2 §5.1.3 feature bits. */
export const NET_F_CSUM = 1n << 0n;
export const NET_F_GUEST_CSUM = 1n << 1n;
export const NET_F_MAC = 1n << 5n;
export const NET_F_GUEST_TSO4 = 1n << 7n;
export const NET_F_HOST_TSO4 = 1n << 11n;
export const NET_F_MRG_RXBUF = 1n << 15n;
export const NET_F_STATUS = 1n << 16n;
export const NET_F_CTRL_VQ = 1n << 17n;
export const NET_F_GUEST_ANNOUNCE = 1n << 21n;
/** §5.1.4 status bits. */
export const NET_S_LINK_UP = 1;
export const NET_S_ANNOUNCE = 2;
/** §5.1.6: the header in front of every frame (VERSION_1: num_buffers is always there). */
export const NET_HDR = 12;
export const NET_QUEUE_SIZE = 256;
const CTRL_QUEUE_SIZE = 64;
const RX = 0;
const TX = 1;
const CTRL = 2;
/** §5.1.4: mac, status, max_virtqueue_pairs, mtu. */
const CONFIG_SIZE = 12;
/** §5.1.6.5 control classes and answers. */
const CTRL_RX = 0;
const CTRL_MAC = 1;
const CTRL_ANNOUNCE = 3;
const CTRL_ANNOUNCE_ACK = 0;
const CTRL_OK = 0;
const CTRL_ERR = 1;
/** The largest TSO frame taken from the guest: 64 KiB of IP packet and the Ethernet header. */
const MAX_TSO_FRAME = ETH_HEADER + 0xffff;
/** Frames, and bytes, the device holds for the guest before it drops more. */
export const RX_BACKLOG = 4096;
export const RX_BACKLOG_BYTES = 16 << 20;

export interface NetOptions {
  /** Statistics name, e.g. virtio-net0. */
  name?: string;
  /** The MAC address (6 bytes). */
  mac: Uint8Array;
  /** Link starts up (default true). */
  linkUp?: boolean;
}

/**
 * Saved state: the link and announce bits, and the backend's own (the NAT's); frames not yet
 * delivered count as in flight on the wire and are dropped.
 */
export interface NetState {
  status: number;
  /** The address the driver read (absent in states saved before it was kept). */
  mac?: string;
  backend: unknown;
}

interface Pending {
  frame: Uint8Array;
  valid: boolean;
  gsoSize: number;
}

export class VirtioNet implements VirtioDevice {
  readonly deviceId = NET_DEVICE_ID;
  readonly name: string;
  readonly features = NET_F_CSUM | NET_F_GUEST_CSUM | NET_F_MAC | NET_F_GUEST_TSO4 | NET_F_HOST_TSO4 | NET_F_MRG_RXBUF |
    NET_F_STATUS | NET_F_CTRL_VQ | NET_F_GUEST_ANNOUNCE;
  readonly queueMax = [NET_QUEUE_SIZE, NET_QUEUE_SIZE, CTRL_QUEUE_SIZE];
  readonly configSize = CONFIG_SIZE;
  readonly mac: Uint8Array;
  private ctx: VirtioContext | null = null;
  /** Restored under another MAC address than the state's (see restored()). */
  private renamed = false;
  private status: number;
  private pending: Pending[] = [];
  private pendingBytes = 0;
  /** Receive chains taken from the ring and not yet used (a frame spanning buffers waits for more). */
  private held: Chain[] = [];
  private heldBytes = 0;
  private readonly stats = {
    'rx frames': 0, 'rx bytes': 0, 'rx dropped': 0, 'tx frames': 0, 'tx bytes': 0, 'tx dropped': 0,
    'tx runt': 0, 'tx oversize': 0, 'tx malformed': 0, 'rx oversize': 0, 'tx tso frames': 0, 'rx tso frames': 0, 'announcements': 0,
  };

  constructor(
    readonly backend: NetBackend,
    o: NetOptions,
  ) {
    this.name = o.name ?? 'virtio-net0';
    this.mac = o.mac.slice(0, 6);
    this.status = o.linkUp === false ? 0 : NET_S_LINK_UP;
    backend.attach(
      { receive: (f, off) => this.receive(f, off), backlog: () => this.pending.length },
      { guestLargeFrames: () => this.has(NET_F_GUEST_TSO4) && this.has(NET_F_MRG_RXBUF) },
    );
  }

  attach(ctx: VirtioContext): void {
    this.ctx = ctx;
  }

  private has(f: bigint): boolean {
    return this.ctx !== null && (this.ctx.features() & f) !== 0n;
  }

  readConfig(offset: number, width: 1 | 2 | 4): number {
    const c = new Uint8Array(CONFIG_SIZE);
    c.set(this.mac);
    c[6] = this.status & 0xff; // little-endian u16
    c[7] = this.status >> 8;
    c[8] = 1; // max_virtqueue_pairs (only meaningful with F_MQ)
    const v = new DataView(c.buffer);
    return width === 1 ? v.getUint8(offset) : width === 2 ? v.getUint16(offset, true) : v.getUint32(offset, true);
  }

  writeConfig(): void {
    // §5.1.4: the MAC is writable only for legacy drivers; nothing else is writable.
  }

  /** The MAC as text. */
  get macAddress(): string {
    return macString(this.mac);
  }

  /** True when the link is up. */
  get linkUp(): boolean {
    return (this.status & NET_S_LINK_UP) !== 0;
  }

  /** Sets the link state; the guest hears of it through a configuration change (§5.1.4). */
  setLink(up: boolean): void {
    if (up === this.linkUp) return;
    this.status = up ? this.status | NET_S_LINK_UP : this.status & ~NET_S_LINK_UP;
    if (!up) {
      this.pending = [];
      this.pendingBytes = 0;
    }
    this.ctx?.configChanged();
  }

  /**
   * Asks the guest to announce itself (gratuitous ARP, §5.1.6.5.3): call after a restore or
   * a migration. Returns false when the driver did not accept VIRTIO_NET_F_GUEST_ANNOUNCE.
   */
  announce(): boolean {
    if (!this.has(NET_F_GUEST_ANNOUNCE) || !this.ctx?.live()) return false;
    this.status |= NET_S_ANNOUNCE;
    this.stats.announcements++;
    this.ctx.configChanged();
    return true;
  }

  reset(): void {
    this.held = [];
    this.heldBytes = 0;
    this.pending = [];
    this.pendingBytes = 0;
    this.status &= ~NET_S_ANNOUNCE;
  }

  counters(): VirtioCounters {
    return { ...this.stats, ...(this.backend.counters?.() ?? {}) };
  }

  poll(): void {
    this.backend.flush?.();
    this.deliver();
  }

  notify(queue: number): void {
    if (queue === RX) this.deliver();
    else if (queue === TX) this.transmit();
    else if (queue === CTRL) this.control();
  }

  /** A frame from the backend for the guest. */
  private receive(frame: Uint8Array, off?: RxOffload): void {
    const gsoSize = off?.gsoSize ?? 0;
    if (!this.linkUp || this.pending.length >= RX_BACKLOG || this.pendingBytes + frame.length > RX_BACKLOG_BYTES) {
      this.stats['rx dropped']++;
      return;
    }
    if (frame.length < MIN_FRAME || (frame.length > MAX_FRAME && !(gsoSize > 0 && this.has(NET_F_GUEST_TSO4)))) {
      this.stats['rx oversize']++;
      this.stats['rx dropped']++;
      return;
    }
    this.pending.push({ frame: frame.slice(), valid: off?.checksumValid ?? false, gsoSize });
    this.pendingBytes += frame.length;
    if (this.ctx?.live()) {
      this.deliver();
      this.ctx.flush();
    }
  }

  /** The virtio-net header and frame for the guest in one buffer. */
  private packet(p: Pending): Uint8Array {
    const b = new Uint8Array(NET_HDR + p.frame.length);
    b.set(p.frame, NET_HDR);
    if (p.gsoSize > 0) {
      // A large TCP segment: the guest's stack cuts nothing, but it wants the checksum left
      // partial (the pseudo-header sum in the field), as a host's tap device hands it over.
      const f = b.subarray(NET_HDR);
      const l4 = ETH_HEADER + (f[ETH_HEADER]! & 15) * 4;
      const hdrLen = l4 + (f[l4 + 12]! >> 4) * 4;
      wr16(f, l4 + 16, pseudoSum(f, ETH_HEADER, IP_PROTO_TCP, f.length - l4));
      b[0] = HDR_F_NEEDS_CSUM;
      b[1] = GSO_TCPV4;
      this.stats['rx tso frames']++;
      setU16le(b, 2, hdrLen);
      setU16le(b, 4, p.gsoSize);
      setU16le(b, 6, l4);
      setU16le(b, 8, 16);
    } else if (p.valid && this.has(NET_F_GUEST_CSUM)) {
      b[0] = HDR_F_DATA_VALID;
    }
    return b;
  }

  /** Moves waiting frames into the guest's receive buffers while there are some. */
  private deliver(): void {
    const ctx = this.ctx;
    if (!ctx || !ctx.live()) return;
    const q = ctx.queue(RX);
    const mergeable = this.has(NET_F_MRG_RXBUF);
    while (this.pending.length > 0) {
      const p = this.pending[0]!;
      const need = NET_HDR + p.frame.length;
      if (mergeable) {
        while (this.heldBytes < need) {
          const c = q.pop();
          if (!c) return;
          this.held.push(c);
          this.heldBytes += c.writeLen;
        }
        const b = this.packet(p);
        let at = 0;
        const used: Array<[Chain, number]> = [];
        while (at < b.length) {
          const c = this.held.shift()!;
          this.heldBytes -= c.writeLen;
          const n = new ChainWriter(ctx.ram, c.writable).write(b.subarray(at));
          used.push([c, n]);
          at += n;
        }
        // §5.1.6.4.2: num_buffers in the first buffer's header counts the buffers used.
        const first = used[0]![0].writable;
        const count = new Uint8Array(2);
        setU16le(count, 0, used.length);
        writeAt(ctx, first, 10, count);
        for (const [c, n] of used) q.push(c, n);
      } else {
        const c = this.held.shift() ?? q.pop();
        if (!c) return;
        if (c.writeLen < need) {
          // §5.1.6.3.1: without mergeable buffers each buffer must hold a whole frame; this
          // one cannot: the frame is dropped and the buffer kept for the next.
          this.held.unshift(c);
          this.pendingBytes -= this.pending.shift()!.frame.length;
          this.stats['rx dropped']++;
          continue;
        }
        const b = this.packet(p);
        b[10] = 1;
        q.push(c, new ChainWriter(ctx.ram, c.writable).write(b));
      }
      this.pendingBytes -= this.pending.shift()!.frame.length;
      this.stats['rx frames']++;
      this.stats['rx bytes'] += p.frame.length;
    }
  }

  private transmit(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const q = ctx.queue(TX);
    for (let c = q.pop(); c; c = q.pop()) {
      this.transmitOne(ctx, c);
      q.push(c, 0);
    }
  }

  private drop(why: 'tx runt' | 'tx oversize' | 'tx malformed'): void {
    this.stats[why]++;
    this.stats['tx dropped']++;
  }

  private transmitOne(ctx: VirtioContext, c: Chain): void {
    if (c.readLen < NET_HDR) return this.drop('tx malformed');
    const len = c.readLen - NET_HDR;
    if (len < MIN_FRAME) return this.drop('tx runt');
    const tso = this.has(NET_F_HOST_TSO4);
    if (len > (tso ? MAX_TSO_FRAME : MAX_FRAME)) return this.drop('tx oversize');
    if (!this.linkUp) return void this.stats['tx dropped']++;
    const hb = readSegments(ctx.ram, c.readable, 0, NET_HDR);
    const h: TxHeader = { flags: hb[0]!, gsoType: hb[1]!, gsoSize: u16le(hb, 4), csumStart: u16le(hb, 6), csumOffset: u16le(hb, 8) };
    if (h.gsoType !== GSO_NONE && !tso) return this.drop('tx malformed');
    if (h.flags & HDR_F_NEEDS_CSUM && !this.has(NET_F_CSUM)) return this.drop('tx malformed');
    const frame = readSegments(ctx.ram, c.readable, NET_HDR, len);
    if (h.gsoType !== GSO_NONE) this.stats['tx tso frames']++;
    if (this.backend.acceptsOffload) {
      // The NAT reads payloads, never TCP/UDP checksums: no need to finish or cut anything,
      // but the fields must still describe the frame.
      if (h.flags & HDR_F_NEEDS_CSUM && h.csumStart + h.csumOffset + 2 > len) return this.drop('tx malformed');
      if (h.gsoType === GSO_NONE && len > MAX_FRAME) return this.drop('tx oversize');
      this.count(len);
      this.backend.send(frame);
      return;
    }
    const frames = wireFrames(frame, h);
    if (!frames) return this.drop('tx malformed');
    this.count(len);
    for (const f of frames) this.backend.send(f);
  }

  private count(len: number): void {
    this.stats['tx frames']++;
    this.stats['tx bytes'] += len;
  }

  /** The control queue (§5.1.6.5): announce acknowledgements; receive filters are accepted (no filtering is done). */
  private control(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const q = ctx.queue(CTRL);
    for (let c = q.pop(); c; c = q.pop()) {
      if (c.readLen < 2 || c.writeLen < 1) {
        ctx.fail(`control request at head ${c.head} has no class, command or ack byte`);
        return;
      }
      const cmd = readSegments(ctx.ram, c.readable, 0, 2);
      let ack = CTRL_ERR;
      if (cmd[0] === CTRL_ANNOUNCE && cmd[1] === CTRL_ANNOUNCE_ACK) {
        this.status &= ~NET_S_ANNOUNCE;
        ack = CTRL_OK;
      } else if (cmd[0] === CTRL_RX || cmd[0] === CTRL_MAC) {
        ack = CTRL_OK;
      }
      writeAt(ctx, c.writable, c.writeLen - 1, new Uint8Array([ack]));
      q.push(c, c.writeLen);
    }
  }

  save(): NetState {
    return { status: this.status, mac: macString(this.mac), backend: this.backend.save?.() ?? null };
  }

  restore(state: unknown): void {
    // States saved before the MAC address was kept have no `mac`.
    const hasMac = typeof state === 'object' && state !== null && 'mac' in state;
    const r = new StateReader(this.name, state, hasMac ? ['status', 'mac', 'backend'] : ['status', 'backend']);
    const status = r.uint('status', NET_S_LINK_UP | NET_S_ANNOUNCE);
    const mac = (state as Partial<NetState>).mac;
    if (mac !== undefined && (typeof mac !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac))) r.fail(`mac ${JSON.stringify(mac)} is not a MAC address`);
    const backend = (state as NetState).backend;
    if (!this.backend.restore && backend !== null) r.fail(`backend ${this.backend.name} keeps no state`);
    // Frames in the backlog belong to the machine being replaced; the backend's restore may
    // queue new ones (the NAT's resets), and it checks all its state before changing any.
    const [pending, pendingBytes] = [this.pending, this.pendingBytes];
    this.pending = [];
    this.pendingBytes = 0;
    try {
      if (this.backend.restore && backend !== null) this.backend.restore(backend);
    } catch (e) {
      [this.pending, this.pendingBytes] = [pending, pendingBytes];
      throw e;
    }
    this.held = [];
    this.heldBytes = 0;
    this.status = status;
    this.renamed = mac !== undefined && mac !== macString(this.mac);
  }

  /**
   * A machine restored with another MAC address than the one its driver read (a clone's fresh
   * identity): the driver must reset the device to read the new one, so the device asks for
   * that (DEVICE_NEEDS_RESET) rather than send frames under an address it no longer has.
   */
  restored(): void {
    if (!this.renamed) return;
    this.renamed = false;
    this.ctx?.needsReset(`the MAC address is now ${macString(this.mac)}`);
  }
}

function u16le(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

function setU16le(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >> 8) & 0xff;
}

/** Writes `data` at byte `at` of a chain's writable segments. */
function writeAt(ctx: VirtioContext, segs: Chain['writable'], at: number, data: Uint8Array): void {
  let skip = at;
  let from = 0;
  for (const s of segs) {
    if (from >= data.length) return;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const n = Math.min(s.len - skip, data.length - from);
    ctx.ram.load(s.addr + skip, data.subarray(from, from + n));
    from += n;
    skip = 0;
  }
}
