/**
 * Moving bytes between a descriptor chain's buffers and the device: copies out of the
 * device-readable part, sequential writes into the device-writable part, and zero-copy
 * windows over guest RAM for bulk transfers (disk reads land directly in guest memory).
 * Every write into guest memory goes through GuestMemory.commit so the dirty log sees DMA.
 * The segments were checked against RAM when the chain was walked (queue.ts).
 */
import type { GuestMemory } from '../memory.ts';
import type { Segment } from './queue.ts';

/** The segments covering bytes [from, from + n) of a segment list (n clipped to what exists). */
export function slice(segments: readonly Segment[], from: number, n = Infinity): Segment[] {
  const out: Segment[] = [];
  let skip = from;
  let left = n;
  for (const s of segments) {
    if (left <= 0) break;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const len = Math.min(s.len - skip, left);
    out.push({ addr: s.addr + skip, len });
    left -= len;
    skip = 0;
  }
  return out;
}

/** Total length of segments. */
export function totalLength(segments: readonly Segment[]): number {
  let n = 0;
  for (const s of segments) n += s.len;
  return n;
}

/** A copy of bytes [from, from + n) of the segments' contents (fewer if they hold less). */
export function readSegments(ram: GuestMemory, segments: readonly Segment[], from = 0, n = Infinity): Uint8Array {
  const parts = slice(segments, from, n);
  const out = new Uint8Array(totalLength(parts));
  let at = 0;
  for (const p of parts) {
    out.set(ram.window(p.addr, p.len), at);
    at += p.len;
  }
  return out;
}

/**
 * Calls `f` with a view of guest RAM for each piece of bytes [from, from + n) of the
 * segments, and the position of that piece within the range. With `write`, each piece is
 * committed to the dirty log after `f` filled it.
 */
export function eachWindow(
  ram: GuestMemory,
  segments: readonly Segment[],
  o: { from?: number; n?: number; write: boolean },
  f: (view: Uint8Array, pos: number) => void,
): number {
  let pos = 0;
  for (const p of slice(segments, o.from ?? 0, o.n ?? Infinity)) {
    f(ram.window(p.addr, p.len), pos);
    if (o.write) ram.commit(p.addr, p.len);
    pos += p.len;
  }
  return pos;
}

/** Writes sequentially into a chain's device-writable buffers. */
export class ChainWriter {
  /** Bytes written so far. */
  written = 0;
  readonly capacity: number;

  constructor(
    private readonly ram: GuestMemory,
    private readonly segments: readonly Segment[],
  ) {
    this.capacity = totalLength(segments);
  }

  /** Bytes that still fit. */
  get room(): number {
    return this.capacity - this.written;
  }

  /** Writes as much of `data` as fits; returns how much that was. */
  write(data: Uint8Array): number {
    const n = Math.min(data.length, this.room);
    eachWindow(this.ram, this.segments, { from: this.written, n, write: true }, (view, pos) => view.set(data.subarray(pos, pos + view.length)));
    this.written += n;
    return n;
  }
}
