/**
 * Opening disk images by path: format detection, backing chains, and creating images and
 * overlays. Works on any HostFileSystem (Node's, or one a browser supplies).
 */
import { VirtusError } from '../util/errors.ts';
import type { BlockBackend, ImageFormat } from './backend.ts';
import type { HostFile, HostFileSystem, LockMode } from './host-file.ts';
import { createQcow2, type Qcow2CreateOptions } from './qcow2/create.ts';
import { readHeader } from './qcow2/header.ts';
import { probeFile } from './probe.ts';
import { Qcow2Backend } from './qcow2/qcow2.ts';
import { RawBackend } from './raw.ts';

/** Backing chains longer than this are refused (and catch loops that evade the path check). */
export const MAX_CHAIN_DEPTH = 64;

export const FORMATS: readonly ImageFormat[] = ['raw', 'qcow2'];

/** Parses a format name given by a user or recorded in an image. */
export function parseFormat(name: string, what: string): ImageFormat {
  if ((FORMATS as readonly string[]).includes(name)) return name as ImageFormat;
  throw new VirtusError('BAD_FORMAT', `${what}: unknown image format '${name}' (virtus knows ${FORMATS.join(', ')})`);
}

/**
 * Guesses the format from the first bytes: qcow2 by its magic number; a format qemu-img
 * knows by another magic is refused by name; anything else is raw.
 */
export function probeFormat(file: HostFile): ImageFormat {
  const p = probeFile(file);
  if ('format' in p) return p.format;
  throw new VirtusError('FOREIGN_FORMAT', `${file.name} is a ${p.foreign} image, which virtus does not read; convert it (qemu-img convert -O qcow2 ${file.name} OUT.qcow2), or give the format as raw (format=raw, -f raw) to use its bytes as they are`);
}

export interface OpenImageOptions {
  /** Insist on this format instead of detecting it (QEMU's format=). */
  format?: ImageFormat;
  /** Open the top image read-only (backing images always are). */
  readOnly?: boolean;
  /** Open only this image, not its backing chain (reads of unallocated ranges give zeros). */
  noBacking?: boolean;
  /**
   * Image locking (QEMU's, see LockMode): 'on' (the default) locks every image of the chain,
   * the top one for writing unless read-only, backing images for reading; 'off' takes and
   * checks no locks (QEMU's file.locking=off).
   */
  locking?: Locking;
  /** Let other processes write the images meanwhile (qemu-img -U, --force-share); read-only only. */
  forceShare?: boolean;
  /**
   * Lock the backing images letting others write them: for commit, which writes a backing
   * image through a second, writable open of it.
   */
  shareBacking?: boolean;
}

/** Image locking on or off (QEMU's `locking=` option; its "auto" is "on" here). */
export type Locking = 'on' | 'off';

/** Parses a `locking=` value as QEMU spells it. */
export function parseLocking(value: string, what: string): Locking {
  if (value === 'on' || value === 'auto' || value === 'true') return 'on';
  if (value === 'off' || value === 'false') return 'off';
  throw new VirtusError('BAD_OPTION', `${what}: expected on, off or auto, got '${value}'`, { exitCode: 2 });
}

interface LayerLocks {
  top: LockMode | null;
  backing: LockMode | null;
}

/** Opens the image at `path` and its whole backing chain. */
export function openImage(fs: HostFileSystem, path: string, options: OpenImageOptions = {}): BlockBackend {
  const readOnly = options.readOnly ?? false;
  if (options.forceShare && !readOnly) throw new VirtusError('BAD_OPTION', `${path}: --force-share needs the image opened read-only`, { exitCode: 2 });
  const off = options.locking === 'off';
  const locks: LayerLocks = {
    top: off ? null : readOnly ? (options.forceShare ? 'shared' : 'read') : 'write',
    backing: off ? null : options.forceShare || options.shareBacking ? 'shared' : 'read',
  };
  return openLayer(fs, path, options.format, readOnly, [], options.noBacking ?? false, locks);
}

function openLayer(fs: HostFileSystem, path: string, format: ImageFormat | undefined, readOnly: boolean, above: string[], noBacking: boolean, locks: LayerLocks): BlockBackend {
  if (above.includes(path)) {
    throw new VirtusError('BACKING_LOOP', `${above[0]}: backing chain loops back to ${path}`);
  }
  if (above.length >= MAX_CHAIN_DEPTH) {
    throw new VirtusError('BACKING_DEPTH', `${above[0]}: backing chain is deeper than ${MAX_CHAIN_DEPTH} images`);
  }
  const file = fs.open(path, { writable: !readOnly });
  try {
    const mode = above.length === 0 ? locks.top : locks.backing;
    if (mode) file.lock?.(mode);
    if (format === 'raw') return new RawBackend(file, { readOnly });
    const detected = probeFormat(file);
    if ((format ?? detected) === 'raw') return new RawBackend(file, { readOnly });
    if (detected !== 'qcow2') throw new VirtusError('NOT_QCOW2', `${path}: not a qcow2 image`);
    const header = readHeader(file);
    let backing: BlockBackend | null = null;
    if (header.backingFile !== null && !noBacking) {
      const bpath = fs.resolveBacking(path, header.backingFile);
      const bfmt = header.backingFormat !== null ? parseFormat(header.backingFormat, `${path}: backing file format`) : undefined;
      try {
        backing = openLayer(fs, bpath, bfmt, true, [...above, path], false, locks);
      } catch (e) {
        if (e instanceof VirtusError && (e.code === 'BACKING_LOOP' || e.code === 'BACKING_DEPTH' || e.code === 'BACKING_OPEN' || e.code === 'IMAGE_LOCKED')) throw e;
        throw new VirtusError('BACKING_OPEN', `${path}: cannot open backing file ${header.backingFile}: ${(e as Error).message}`, { cause: e });
      }
    }
    try {
      return new Qcow2Backend(file, header, { readOnly, backing });
    } catch (e) {
      backing?.close();
      throw e;
    }
  } catch (e) {
    file.close();
    throw e;
  }
}

export interface CreateImageOptions extends Partial<Qcow2CreateOptions> {
  format: ImageFormat;
  /** Virtual size; with a backing file it defaults to the backing image's size. */
  size?: number;
  /** Image locking for the new image and the backing file read (default on). */
  locking?: Locking;
}

/**
 * Creates an image at `path` (replacing any file there). A backing file is opened first,
 * resolved against the new image's directory as QEMU does, to learn its format and size.
 */
export function createImage(fs: HostFileSystem, path: string, options: CreateImageOptions): { size: number; backingFormat: ImageFormat | null } {
  let size = options.size;
  let backingFormat: ImageFormat | null = null;
  if (options.backingFile) {
    if (options.format !== 'qcow2') throw new VirtusError('BAD_OPTION', `format ${options.format} does not support backing files`);
    const bpath = fs.resolveBacking(path, options.backingFile);
    const insisted = options.backingFormat ? parseFormat(options.backingFormat, 'backing format') : undefined;
    let b: BlockBackend;
    try {
      b = openImage(fs, bpath, { readOnly: true, ...(insisted ? { format: insisted } : {}), ...(options.locking ? { locking: options.locking } : {}) });
    } catch (e) {
      if (e instanceof VirtusError && e.code === 'IMAGE_LOCKED') throw e;
      throw new VirtusError('BACKING_OPEN', `cannot open backing file ${options.backingFile}: ${(e as Error).message}`, { cause: e });
    }
    backingFormat = b.format;
    size ??= b.size;
    b.close();
  }
  if (size === undefined) throw new VirtusError('BAD_OPTION', 'an image size is required (or a backing file to take it from)', { exitCode: 2 });
  // qemu-img rounds sizes up to whole 512-byte sectors.
  size = Math.ceil(size / 512) * 512;
  const file = fs.create(path, { lock: options.locking !== 'off' });
  try {
    if (options.format === 'raw') {
      file.truncate(size);
      file.flush(false);
    } else {
      createQcow2(file, { ...options, size, backingFile: options.backingFile ?? null, backingFormat });
    }
  } catch (e) {
    file.close();
    fs.remove(path);
    throw e;
  }
  file.close();
  return { size, backingFormat };
}

/**
 * Creates a thin qcow2 overlay at `path` over `backing` (for many machines sharing one
 * read-only base: each gets its own overlay). The backing name is stored as given; pass an
 * absolute path when the overlay lives in another directory than the base.
 */
export function createOverlay(fs: HostFileSystem, path: string, backing: string, options: { backingFormat?: ImageFormat; clusterSize?: number; locking?: Locking } = {}): void {
  createImage(fs, path, { format: 'qcow2', backingFile: backing, ...options });
}
