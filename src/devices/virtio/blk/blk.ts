/**
 * virtio-blk (virtio 1.2 §5.2) over any block backend (raw, qcow2, overlays: src/storage/).
 * One request queue; requests are served inside the QueueNotify write as far as a turn allows.
 *
 * Served: read, write, flush (the backend's flush makes every completed write durable
 * before the flush completes: §5.2.6.2 case 3), get-ID (the serial string), discard and
 * write-zeroes. A read-only drive offers VIRTIO_BLK_F_RO and fails writes with IOERR
 * without touching the image (§5.2.6.2). Out-of-range sectors, partial sectors and backend
 * failures are I/O errors to the guest; a request without a header or status byte is a
 * protocol violation (DEVICE_NEEDS_RESET, as QEMU does).
 *
 * Data moves in pieces of at most PIECE_BYTES straight between guest RAM and the backend,
 * a turn's credit at a time (types.ts): a request of gigabytes is served over many slices,
 * and the next request waits for it. Every kind of request may be served again from its
 * start (a snapshot restores it as in flight), so none keeps progress in saved state.
 */
import type { BlockBackend } from '../../../storage/backend.ts';
import { diskIdentity, IDENTITY_BYTES, sameIdentity } from '../../../storage/identity.ts';
import { eachWindow, readSegments, slice } from '../chain.ts';
import type { Chain } from '../queue.ts';
import { DEVICE_ID, PIECE_BYTES, type StorageCapability, type VirtioContext, type VirtioCounters, type VirtioDevice } from '../types.ts';

// §5.2.3 feature bits
export const BLK_F_SEG_MAX = 1n << 2n;
export const BLK_F_RO = 1n << 5n;
export const BLK_F_BLK_SIZE = 1n << 6n;
export const BLK_F_FLUSH = 1n << 9n;
export const BLK_F_DISCARD = 1n << 13n;
export const BLK_F_WRITE_ZEROES = 1n << 14n;
// §5.2.6 request types and status values
export const T_IN = 0;
export const T_OUT = 1;
export const T_FLUSH = 4;
export const T_GET_ID = 8;
export const T_DISCARD = 11;
export const T_WRITE_ZEROES = 13;
export const S_OK = 0;
export const S_IOERR = 1;
export const S_UNSUPP = 2;

export const SECTOR = 512;
/** Queue size, as QEMU's virtio-blk. */
export const BLK_QUEUE_SIZE = 256;
/** §5.2.6: the ID string is at most 20 bytes. */
export const ID_BYTES = 20;
/** Most segments in one discard or write-zeroes request, and sectors per segment. */
const MAX_SEGMENTS = 32;
const MAX_SECTORS = 0x3f_ffff;
/** §5.2.4 configuration layout, up to write_zeroes_may_unmap and its padding. */
const CONFIG_SIZE = 60;

export interface BlkOptions {
  /** Statistics name, e.g. virtio-blk0. */
  name: string;
  /** The ID string (GET_ID), at most 20 bytes of ASCII. */
  serial?: string;
  /** Told about backend failures (the guest sees IOERR; the host log should see why). */
  onIoError?: (device: string, message: string) => void;
}

/** Thrown inside request handling for an answer other than OK. */
class Status {
  constructor(readonly code: number) {}
}

/**
 * One part of a request's work: `len` bytes at byte `disk` of the disk; for reads and
 * writes, at byte `at` of the chain's writable or readable buffers. Served in pieces.
 */
interface Step {
  kind: 'read' | 'write' | 'flush' | 'zeroes' | 'discard';
  disk: number;
  at: number;
  len: number;
}

/** A request taken from the queue and not yet completed. */
interface Request {
  chain: Chain;
  /** What is left to do, in order. */
  steps: Step[];
  /** The status byte it will complete with. */
  status: number;
}

/**
 * Write-zeroes and discard go to the backend in pieces of this size: a multiple of every
 * qcow2 cluster size (at most 2 MiB), so the pieces of a cluster-aligned range stay aligned.
 */
const ZERO_PIECE = 4 << 20;
/** A discard touches metadata only: it costs the turn a 64th of its length. */
const DISCARD_DIVISOR = 64;
/** A flush waits for the host's disk: it costs the turn as much as moving 1 MiB. */
const FLUSH_COST = 1 << 20;

export class VirtioBlk implements VirtioDevice {
  readonly deviceId = DEVICE_ID.blk;
  readonly name: string;
  readonly features: bigint;
  readonly queueMax = [BLK_QUEUE_SIZE];
  readonly configSize = CONFIG_SIZE;
  /** Disk size in sectors (a partial last sector is not addressable, as on QEMU). */
  readonly capacity: number;
  private readonly config = new Uint8Array(CONFIG_SIZE);
  private readonly id: Uint8Array;
  private ctx: VirtioContext | null = null;
  /** The request being served over several turns (types.ts, TURN_BYTES), if any. */
  private req: Request | null = null;
  private readonly stats = {
    'read requests': 0, 'write requests': 0, 'flush requests': 0, 'discard requests': 0, 'write-zeroes requests': 0,
    'bytes read': 0, 'bytes written': 0, 'bytes zeroed': 0, 'bytes discarded': 0, 'I/O errors': 0, 'unsupported requests': 0,
  };

  readonly storage: StorageCapability;
  /**
   * The disk's identity (storage/identity.ts) while the guest has not written its first MiB
   * since it was computed: a migration asks for it again inside its downtime.
   */
  private identity: string | null = null;

  constructor(
    readonly backend: BlockBackend,
    private readonly o: BlkOptions,
  ) {
    this.name = o.name;
    const identity = (): string => (this.identity ??= diskIdentity(backend));
    this.storage = {
      name: backend.name, size: backend.size, flush: () => backend.flush(), identity,
      hasIdentity: (recorded) => sameIdentity(backend, recorded, identity),
    };
    this.capacity = Math.floor(backend.size / SECTOR);
    this.features = BLK_F_SEG_MAX | BLK_F_BLK_SIZE | BLK_F_FLUSH | BLK_F_DISCARD | BLK_F_WRITE_ZEROES | (backend.readOnly ? BLK_F_RO : 0n);
    this.id = new Uint8Array(ID_BYTES);
    this.id.set(new TextEncoder().encode(o.serial ?? '').subarray(0, ID_BYTES));
    const v = new DataView(this.config.buffer);
    v.setBigUint64(0, BigInt(this.capacity), true);
    v.setUint32(12, BLK_QUEUE_SIZE - 2, true); // seg_max: the header and status take two descriptors
    v.setUint32(20, SECTOR, true); // blk_size
    v.setUint16(34, 1, true); // num_queues
    v.setUint32(36, MAX_SECTORS, true); // max_discard_sectors
    v.setUint32(40, MAX_SEGMENTS, true); // max_discard_seg
    v.setUint32(44, 8, true); // discard_sector_alignment: 4 KiB
    v.setUint32(48, MAX_SECTORS, true); // max_write_zeroes_sectors
    v.setUint32(52, MAX_SEGMENTS, true); // max_write_zeroes_seg
    this.config[56] = backend.format === 'qcow2' ? 1 : 0; // write_zeroes_may_unmap: qcow2 stores zero clusters
  }

  attach(ctx: VirtioContext): void {
    this.ctx = ctx;
  }

  readConfig(offset: number, width: 1 | 2 | 4): number {
    const v = new DataView(this.config.buffer);
    return width === 1 ? v.getUint8(offset) : width === 2 ? v.getUint16(offset, true) : v.getUint32(offset, true);
  }

  writeConfig(): void {
    // Every field we offer is read-only (VIRTIO_BLK_F_CONFIG_WCE is not offered).
  }

  reset(): void {
    this.req = null;
  }

  counters(): VirtioCounters {
    return { ...this.stats };
  }

  notify(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const q = ctx.queue(0);
    for (;;) {
      if (this.req && !q.holds(this.req.chain)) this.req = null;
      if (!this.req) {
        const c = q.pop();
        if (!c) return;
        const req = this.start(ctx, c);
        if (!req) return;
        this.req = req;
      }
      const r = this.req;
      if (!this.advance(ctx, r)) return; // the rest in the next turn
      this.req = null;
      ctx.ram.load(slice(r.chain.writable, r.chain.writeLen - 1, 1)[0]!.addr, new Uint8Array([r.status]));
      q.push(r.chain, r.chain.writeLen);
    }
  }

  /** Reads a request's header and plans its work; null when the chain broke the protocol (the device is failed). */
  private start(ctx: VirtioContext, c: Chain): Request | null {
    if (c.readLen < 16 || c.writeLen < 1) {
      ctx.fail(`request at head ${c.head} has no 16-byte header or no status byte`);
      return null;
    }
    const hdr = new DataView(readSegments(ctx.ram, c.readable, 0, 16).buffer);
    const req: Request = { chain: c, steps: [], status: S_OK };
    try {
      req.steps = this.plan(ctx, c, hdr.getUint32(0, true), hdr.getBigUint64(8, true));
    } catch (e) {
      this.failed(req, e);
    }
    return req;
  }

  /** Records why a request failed: its status, a counter, and the host log for backend errors. */
  private failed(r: Request, e: unknown): void {
    r.steps = [];
    if (e instanceof Status) r.status = e.code;
    else {
      r.status = S_IOERR;
      this.o.onIoError?.(this.name, e instanceof Error ? e.message : String(e));
    }
    if (r.status === S_IOERR) this.stats['I/O errors']++;
    else this.stats['unsupported requests']++;
  }

  /** Byte offset of `sector` after checking that `bytes` from there lie on the disk. */
  private range(sector: bigint, bytes: number): number {
    if (bytes % SECTOR !== 0) throw new Status(S_IOERR);
    if (sector > BigInt(this.capacity) || Number(sector) * SECTOR + bytes > this.capacity * SECTOR) throw new Status(S_IOERR);
    return Number(sector) * SECTOR;
  }

  /** The work a request asks for (checked against the disk), as steps of byte ranges. */
  private plan(ctx: VirtioContext, c: Chain, type: number, sector: bigint): Step[] {
    const b = this.backend;
    switch (type) {
      case T_IN: {
        this.stats['read requests']++;
        const len = c.writeLen - 1;
        return [{ kind: 'read', disk: this.range(sector, len), at: 0, len }];
      }
      case T_OUT: {
        this.stats['write requests']++;
        if (b.readOnly) throw new Status(S_IOERR);
        const len = c.readLen - 16;
        return [{ kind: 'write', disk: this.range(sector, len), at: 16, len }];
      }
      case T_FLUSH:
        this.stats['flush requests']++;
        return [{ kind: 'flush', disk: 0, at: 0, len: 0 }];
      case T_GET_ID: {
        const n = Math.min(ID_BYTES, c.writeLen - 1);
        eachWindow(ctx.ram, c.writable, { n, write: true }, (view, pos) => view.set(this.id.subarray(pos, pos + view.length)));
        return [];
      }
      case T_DISCARD:
      case T_WRITE_ZEROES:
        return this.ranges(ctx, c, type);
      default:
        throw new Status(S_UNSUPP);
    }
  }

  /**
   * Does as much of a request as this turn's credit allows, in pieces of bounded size
   * straight between guest RAM and the backend. Returns true when the request is done.
   */
  private advance(ctx: VirtioContext, r: Request): boolean {
    const b = this.backend;
    const ram = ctx.ram;
    try {
      while (r.steps.length > 0) {
        const s = r.steps[0]!;
        const piece = s.kind === 'read' || s.kind === 'write' ? PIECE_BYTES : ZERO_PIECE;
        const n = Math.min(s.len, piece);
        const cost = s.kind === 'flush' ? FLUSH_COST : s.kind === 'discard' ? Math.ceil(n / DISCARD_DIVISOR) : n;
        if (ctx.credit() <= 0) return false;
        ctx.spend(cost);
        if (s.disk < IDENTITY_BYTES && s.kind !== 'read' && s.kind !== 'flush') this.identity = null;
        switch (s.kind) {
          case 'read':
            eachWindow(ram, r.chain.writable, { from: s.at, n, write: true }, (view, pos) => b.read(s.disk + pos, view));
            this.stats['bytes read'] += n;
            break;
          case 'write':
            eachWindow(ram, r.chain.readable, { from: s.at, n, write: false }, (view, pos) => b.write(s.disk + pos, view));
            this.stats['bytes written'] += n;
            break;
          case 'flush':
            b.flush();
            break;
          case 'zeroes':
            b.writeZeroes(s.disk, n);
            this.stats['bytes zeroed'] += n;
            break;
          case 'discard':
            b.discard(s.disk, n);
            this.stats['bytes discarded'] += n;
            break;
        }
        s.disk += n;
        s.at += n;
        s.len -= n;
        if (s.len <= 0) r.steps.shift();
      }
    } catch (e) {
      this.failed(r, e);
    }
    return true;
  }

  /** Discard and write-zeroes: a list of {sector, num_sectors, flags} segments (§5.2.6). */
  private ranges(ctx: VirtioContext, c: Chain, type: number): Step[] {
    const zeroes = type === T_WRITE_ZEROES;
    this.stats[zeroes ? 'write-zeroes requests' : 'discard requests']++;
    const len = c.readLen - 16;
    if (len === 0 || len % 16 !== 0 || len / 16 > MAX_SEGMENTS) throw new Status(S_IOERR);
    const v = new DataView(readSegments(ctx.ram, c.readable, 16, len).buffer);
    const steps: Step[] = [];
    for (let i = 0; i < len; i += 16) {
      const sector = v.getBigUint64(i, true);
      const count = v.getUint32(i + 8, true);
      const flags = v.getUint32(i + 12, true);
      // §5.2.6.2: unknown flags, or unmap on a discard, are unsupported.
      if (flags & ~1 || (!zeroes && flags & 1)) throw new Status(S_UNSUPP);
      if (count > MAX_SECTORS) throw new Status(S_IOERR);
      steps.push({ kind: zeroes ? 'zeroes' : 'discard', disk: this.range(sector, count * SECTOR), at: 0, len: count * SECTOR });
    }
    if (this.backend.readOnly) throw new Status(S_IOERR);
    return steps;
  }
}
