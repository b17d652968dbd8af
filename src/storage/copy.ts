/**
 * Whole-image operations on opened backends: convert (copy a chain's contents into a fresh
 * image, leaving zeros unwritten so the result stays sparse) and commit (merge an overlay's
 * data into its backing image). Both report progress through a callback.
 */
import { VirtusError } from '../util/errors.ts';
import type { BlockBackend } from './backend.ts';
import { Qcow2Backend } from './qcow2/qcow2.ts';

/** Called with the bytes handled so far and the total. */
export type Progress = (done: number, total: number) => void;

const CHUNK = 2 << 20;
/** Zero detection granularity for sparse output (qemu-img convert's default is 4 KiB). */
const SPARSE = 4096;

/**
 * Where the bytes at `offset` come from once the whole chain is taken into account:
 * 'data' (some layer stores them) or 'zero' (they read as zeros), for `length` bytes.
 */
export function chainStatus(top: BlockBackend, offset: number, length: number): { state: 'data' | 'zero'; length: number } {
  let layer: BlockBackend | null = top;
  let len = length;
  while (layer) {
    if (offset >= layer.size) return { state: 'zero', length: len };
    len = Math.min(len, layer.size - offset);
    const s = layer.blockStatus(offset, len);
    if (s.state !== 'backing') return { state: s.state, length: s.length };
    len = s.length;
    layer = layer.backing;
  }
  return { state: 'zero', length: len };
}

function isZero(b: Uint8Array): boolean {
  // Compare 32 bits at a time where alignment allows.
  if (b.byteOffset % 4 === 0 && b.length % 4 === 0) {
    const w = new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
    for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

export interface ConvertOptions {
  onProgress?: Progress;
  /** Store clusters compressed (qcow2 output only), as `qemu-img convert -c`. */
  compress?: boolean;
}

/**
 * Copies the virtual disk of `src` (through its backing chain) into `dst`, which must be
 * freshly created (reading as zeros) and at least as large. Writes only non-zero blocks.
 */
export function convertImage(src: BlockBackend, dst: BlockBackend, options: ConvertOptions = {}): void {
  if (dst.size < src.size) throw new VirtusError('CONVERT_SIZE', `${dst.name} is smaller than ${src.name}`);
  const onProgress = options.onProgress;
  if (options.compress) {
    if (!(dst instanceof Qcow2Backend) || dst.size !== src.size) {
      throw new VirtusError('NOT_SUPPORTED', `${dst.name}: compressed output needs a qcow2 image of the source's size`);
    }
    convertCompressed(src, dst, onProgress);
    return;
  }
  const size = src.size;
  const grain = Math.max(SPARSE, dst.info().clusterSize ?? SPARSE);
  const buf = new Uint8Array(CHUNK);
  onProgress?.(0, size);
  for (let off = 0; off < size;) {
    const want = Math.min(CHUNK - (off % CHUNK), size - off);
    const st = chainStatus(src, off, want);
    if (st.state === 'data') {
      const chunk = buf.subarray(0, st.length);
      src.read(off, chunk);
      // Write the non-zero grains, merged into runs.
      let runStart = -1;
      for (let at = 0; at <= chunk.length; ) {
        const g = at < chunk.length ? Math.min(grain - ((off + at) % grain), chunk.length - at) : 0;
        const zero = at === chunk.length || isZero(chunk.subarray(at, at + g));
        if (!zero && runStart < 0) runStart = at;
        if (zero && runStart >= 0) {
          dst.write(off + runStart, chunk.subarray(runStart, at));
          runStart = -1;
        }
        if (at === chunk.length) break;
        at += g;
      }
    }
    off += st.length;
    onProgress?.(off, size);
  }
  dst.flush();
}

/** convertImage with compression: every non-zero cluster of `dst` is written compressed. */
function convertCompressed(src: BlockBackend, dst: Qcow2Backend, onProgress?: Progress): void {
  const size = src.size;
  const cs = dst.info().clusterSize!;
  const buf = new Uint8Array(cs);
  onProgress?.(0, size);
  for (let off = 0; off < size; off += cs) {
    const n = Math.min(cs, size - off);
    let data = false;
    for (let p = off; p < off + n && !data;) {
      const st = chainStatus(src, p, off + n - p);
      data = st.state === 'data';
      p += st.length;
    }
    if (data) {
      const chunk = buf.subarray(0, n);
      src.read(off, chunk);
      if (!isZero(chunk)) dst.writeCompressed(off, chunk);
    }
    onProgress?.(off + n, size);
  }
  dst.flush();
}

/** How the range at `offset` looks in the layers above `base`. */
function statusAbove(top: BlockBackend, base: BlockBackend, offset: number, length: number): { state: 'data' | 'zero' | 'backing'; length: number } {
  let layer: BlockBackend | null = top;
  let len = length;
  while (layer && layer !== base) {
    if (offset >= layer.size) return { state: 'zero', length: len };
    len = Math.min(len, layer.size - offset);
    const s = layer.blockStatus(offset, len);
    if (s.state !== 'backing') return s;
    len = s.length;
    layer = layer.backing;
  }
  return { state: 'backing', length: len };
}

export interface CommitOptions {
  /** The image of the chain to commit into (default: top's backing image). */
  base: BlockBackend;
  /** The same image as `base`, opened for writing. */
  baseWritable: BlockBackend;
  /** Empty the top image afterwards (qemu-img commit does unless -d or -b). */
  empty: boolean;
  onProgress?: Progress;
}

/**
 * Copies every range that the layers above `base` define (data or zeros) into
 * `baseWritable`, flushes it, then optionally empties `top`, so that the chain reads the
 * same before and after. A crash in between leaves the chain reading the same as well.
 */
export function commitImage(top: BlockBackend, options: CommitOptions): void {
  const { base, baseWritable } = options;
  const size = top.size;
  if (baseWritable.size < size) {
    throw new VirtusError('COMMIT_SIZE', `${base.name} (${baseWritable.size} bytes) is smaller than ${top.name} (${size} bytes); resize it first`);
  }
  const buf = new Uint8Array(CHUNK);
  options.onProgress?.(0, size);
  for (let off = 0; off < size;) {
    const want = Math.min(CHUNK - (off % CHUNK), size - off);
    const st = statusAbove(top, base, off, want);
    if (st.state === 'data') {
      const chunk = buf.subarray(0, st.length);
      top.read(off, chunk);
      baseWritable.write(off, chunk);
    } else if (st.state === 'zero') {
      baseWritable.writeZeroes(off, st.length);
    }
    off += st.length;
    options.onProgress?.(off, size);
  }
  baseWritable.flush();
  if (options.empty) {
    if (!(top instanceof Qcow2Backend)) throw new VirtusError('COMMIT_EMPTY', `${top.name}: only qcow2 images can be emptied`);
    top.makeEmpty();
    top.flush();
  }
}
