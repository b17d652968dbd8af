/**
 * The block backend interface: what a disk device (virtio-blk) sees of a disk image.
 *
 * All calls are synchronous (see host-file.ts for why). Offsets and lengths are bytes;
 * the device checks guest requests against `size` before calling, and a backend throws a
 * VirtusError for anything out of range or for a write to a read-only backend.
 *
 * Durability contract: once `flush()` returns, every write, discard and writeZeroes that
 * returned before the flush was called survives a crash of the process or of the host
 * (given a host file whose flush() is a real barrier). Before that, a crash may lose any
 * subset of those writes, but never makes the image inconsistent.
 */
import { VirtusError } from '../util/errors.ts';

/** The image formats virtus reads and writes. */
export type ImageFormat = 'raw' | 'qcow2';

/** Where the bytes of a range of the virtual disk come from, in one layer of a chain. */
export type BlockState =
  /** Stored in this layer. */
  | 'data'
  /** Reads as zeros, decided by this layer (a qcow2 zero cluster). */
  | 'zero'
  /** Not allocated in this layer: read from the backing image, or zeros without one. */
  | 'backing';

/** The answer of `blockStatus`: `length` bytes from the asked offset share `state`. */
export interface BlockStatus {
  state: BlockState;
  length: number;
}

/** What `virtus image info` shows about one image (one layer, not the chain). */
export interface ImageInfo {
  format: ImageFormat;
  /** Virtual disk size in bytes. */
  virtualSize: number;
  /** Bytes the image file occupies on the host, when the host can tell. */
  actualSize?: number;
  clusterSize?: number;
  /** Backing file name exactly as stored in the image. */
  backingFile?: string;
  /** Backing format as recorded in the image (qcow2 header extension), if any. */
  backingFormat?: string;
  /** qcow2 details, named as qemu-img names them. */
  qcow2?: {
    compat: '0.10' | '1.1';
    compressionType: 'zlib' | 'zstd';
    lazyRefcounts: boolean;
    refcountBits: number;
    corrupt: boolean;
    extendedL2: boolean;
    dirty: boolean;
    snapshots: number;
  };
}

/** A disk image as a flat, byte-addressed virtual disk. */
export interface BlockBackend {
  readonly format: ImageFormat;
  /** Virtual disk size in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  /** The image this one reads unallocated ranges from, if any (always read-only). */
  readonly backing: BlockBackend | null;
  /** Name of the host file, for messages. */
  readonly name: string;
  /** Fills `buf` with the virtual disk's bytes at `offset`. */
  read(offset: number, buf: Uint8Array): void;
  /** Writes `buf` at `offset`. */
  write(offset: number, buf: Uint8Array): void;
  /** Makes every earlier write durable (see the contract above). */
  flush(): void;
  /**
   * Tells the backend the range's contents are no longer needed. Afterwards the range reads
   * as zeros or as its old contents (qcow2 v3 gives zeros; a partial cluster is ignored).
   */
  discard(offset: number, length: number): void;
  /** Makes the range read as zeros, without storing zeros where the format can avoid it. */
  writeZeroes(offset: number, length: number): void;
  /** The state of the range starting at `offset`, for at most `length` bytes (> 0 returned). */
  blockStatus(offset: number, length: number): BlockStatus;
  /** Format details for `image info`. */
  info(): ImageInfo;
  /** Flushes, then closes this image and its backing chain. */
  close(): void;
}

/** Throws unless [offset, offset+length) lies inside a disk of `size` bytes. */
export function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new VirtusError('BLOCK_RANGE', `${name}: access at ${offset}+${length} lies outside the disk (${size} bytes)`);
  }
}

/** Throws the error for a write to a read-only backend. */
export function readOnlyError(name: string): VirtusError {
  return new VirtusError('READ_ONLY', `${name}: image is open read-only`);
}
