/**
 * virtio-9p: a host folder shared with the guest over 9P2000.L (device ID 9; the transport
 * is the one Linux's 9pnet_virtio speaks: each chain carries a T-message in its readable
 * part and room for the R-message in its writable part). The configuration space holds the
 * mount tag (VIRTIO_9P_MOUNT_TAG): `mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt`.
 * Requests are served synchronously by the server (server.ts) inside QueueNotify.
 */
import { VirtusError } from '../../../util/errors.ts';
import { StateReader } from '../../state.ts';
import { ChainWriter, readSegments } from '../chain.ts';
import { DEVICE_ID, type VirtioContext, type VirtioCounters, type VirtioDevice } from '../types.ts';
import type { HostFs } from './fs.ts';
import { MAX_MSIZE, P9Server } from './server.ts';

export const P9_F_MOUNT_TAG = 1n << 0n;
export const P9_QUEUE_SIZE = 128;
/** Linux's limit on the tag (it copies at most this many bytes). */
export const MAX_TAG = 31;

export interface P9DeviceOptions {
  name?: string;
  /** The mount tag the guest names (e.g. host0). */
  tag: string;
  fs: HostFs;
  /** Deterministic mode: the guest's wall clock, in ns since the epoch (see server.ts). */
  clock?: () => bigint;
  /** Told of a request that failed by a bug in the server (the guest gets EIO; see server.ts). */
  onInternalError?: (e: unknown) => void;
}

export class VirtioP9 implements VirtioDevice {
  readonly deviceId = DEVICE_ID.p9;
  readonly name: string;
  readonly features = P9_F_MOUNT_TAG;
  readonly queueMax = [P9_QUEUE_SIZE];
  readonly configSize: number;
  readonly server: P9Server;
  private readonly config: Uint8Array;
  private ctx: VirtioContext | null = null;

  constructor(o: P9DeviceOptions) {
    this.name = o.name ?? 'virtio-9p0';
    const tag = new TextEncoder().encode(o.tag);
    if (tag.length === 0 || tag.length > MAX_TAG || o.tag.includes(',')) {
      throw new VirtusError('BAD_TAG', `9p tag "${o.tag}" must be 1 to ${MAX_TAG} bytes without commas`, { exitCode: 2 });
    }
    // The 9P transport's config: le16 tag_len, then the tag bytes (no NUL).
    this.config = new Uint8Array(2 + tag.length);
    new DataView(this.config.buffer).setUint16(0, tag.length, true);
    this.config.set(tag, 2);
    this.configSize = this.config.length;
    this.server = new P9Server({ fs: o.fs, ...(o.clock ? { clock: o.clock } : {}), ...(o.onInternalError ? { onInternalError: o.onInternalError } : {}) });
  }

  attach(ctx: VirtioContext): void {
    this.ctx = ctx;
  }

  readConfig(offset: number, width: 1 | 2 | 4): number {
    let v = 0;
    for (let i = width - 1; i >= 0; i--) v = (v << 8) | (this.config[offset + i] ?? 0);
    return v >>> 0;
  }

  writeConfig(): void {}

  reset(): void {
    this.server.reset();
  }

  counters(): VirtioCounters {
    return { ...this.server.stats, fids: this.server.fidCount };
  }

  notify(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const q = ctx.queue(0);
    for (let c = q.pop(); c; c = q.pop()) {
      // A request is at most msize bytes; anything longer is cut and fails the size check.
      const req = readSegments(ctx.ram, c.readable, 0, MAX_MSIZE + 1);
      const reply = this.server.handle(req, c.writeLen);
      if (!reply) {
        ctx.fail(`request at head ${c.head} has ${c.readLen} bytes and room for a ${c.writeLen}-byte reply: not a 9P exchange`);
        return;
      }
      const w = new ChainWriter(ctx.ram, c.writable);
      w.write(reply);
      q.push(c, w.written);
    }
  }

  save(): unknown {
    return { server: this.server.save() };
  }

  restore(state: unknown): void {
    new StateReader(this.name, state, ['server']); // checks the shape
    this.server.restore((state as { server: unknown }).server, this.name);
  }
}
