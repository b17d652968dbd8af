/**
 * Drives as the command line names them: `--drive file=disk.qcow2[,format=qcow2]
 * [,readonly=on][,overlay=auto|PATH][,locking=off]`, in QEMU's -drive syntax (comma-separated key=value,
 * ",," for a literal comma), and opening them.
 *
 * overlay= gives a machine its own thin qcow2 overlay over a base image that stays
 * read-only, so many machines can share one base:
 * - overlay=auto: a temporary overlay, deleted when the drive is closed (QEMU's -snapshot);
 * - overlay=PATH: a persistent overlay at PATH, created on first use and reused after.
 */
import { VirtusError } from '../util/errors.ts';
import type { BlockBackend, ImageFormat } from './backend.ts';
import type { HostFileSystem } from './host-file.ts';
import { createOverlay, openImage, parseFormat, parseLocking, type Locking } from './open.ts';

/** A parsed --drive value. */
export interface DriveSpec {
  file: string;
  format?: ImageFormat;
  readOnly: boolean;
  /** 'auto' for a temporary overlay, or the path of a persistent one. */
  overlay?: string;
  /** Image locking (QEMU's locking=, also spelled file.locking=); on by default. */
  locking: Locking;
  /** Keys this module does not know (e.g. if=, id=), left for the caller to judge. */
  other: Map<string, string>;
}

/** Parses `file=...,format=...,readonly=on,overlay=auto`; a first item without "=" is the file. */
export function parseDriveSpec(text: string): DriveSpec {
  const items = text.replace(/,,/g, '\0').split(',').map((p) => p.replace(/\0/g, ','));
  const spec: Partial<DriveSpec> & { other: Map<string, string> } = { readOnly: false, locking: 'on', other: new Map() };
  items.forEach((item, i) => {
    const eq = item.indexOf('=');
    if (eq < 0 && i === 0 && item !== '') {
      spec.file = item;
      return;
    }
    if (eq < 0) throw new VirtusError('BAD_DRIVE', `--drive: '${item}' is not key=value`, { exitCode: 2 });
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    switch (key) {
      case 'file': spec.file = value; break;
      case 'format': spec.format = parseFormat(value, '--drive format'); break;
      case 'readonly':
        if (!['on', 'off', 'true', 'false'].includes(value)) throw new VirtusError('BAD_DRIVE', `--drive readonly: expected on or off, got '${value}'`, { exitCode: 2 });
        spec.readOnly = value === 'on' || value === 'true';
        break;
      case 'locking': case 'file.locking': spec.locking = parseLocking(value, '--drive locking'); break;
      case 'overlay':
        if (value === '') throw new VirtusError('BAD_DRIVE', '--drive overlay: expected auto or a path', { exitCode: 2 });
        spec.overlay = value;
        break;
      default: spec.other.set(key, value);
    }
  });
  if (!spec.file) throw new VirtusError('BAD_DRIVE', `--drive ${text}: file= is missing`, { exitCode: 2 });
  if (spec.overlay !== undefined && spec.readOnly) {
    throw new VirtusError('BAD_DRIVE', '--drive: overlay= and readonly=on do not go together (the overlay is what takes the writes)', { exitCode: 2 });
  }
  return spec as DriveSpec;
}

export interface OpenDriveOptions {
  /** The absolute form of a path (the overlay records its base by absolute path). */
  absolute(path: string): string;
  /** A fresh path for a temporary overlay (overlay=auto). */
  temporaryPath(): string;
}

/** An opened drive: its backend, and the temporary overlay to delete, if any. */
export interface Drive {
  readonly backend: BlockBackend;
  /** The overlay file machines write to, when overlay= was given. */
  readonly overlayPath: string | null;
  /** Closes the backend (flushing it) and deletes a temporary overlay. */
  close(): void;
}

/** Opens the drive a spec describes, creating its overlay if it asks for one. */
export function openDrive(fs: HostFileSystem, spec: DriveSpec, options: OpenDriveOptions): Drive {
  if (spec.overlay === undefined) {
    const backend = openImage(fs, spec.file, { readOnly: spec.readOnly, locking: spec.locking, ...(spec.format ? { format: spec.format } : {}) });
    return { backend, overlayPath: null, close: () => backend.close() };
  }
  const temporary = spec.overlay === 'auto';
  const path = temporary ? options.temporaryPath() : spec.overlay;
  if (temporary || !fs.exists(path)) {
    createOverlay(fs, path, options.absolute(spec.file), { locking: spec.locking, ...(spec.format ? { backingFormat: spec.format } : {}) });
  }
  let backend: BlockBackend;
  try {
    backend = openImage(fs, path, { format: 'qcow2', locking: spec.locking });
  } catch (e) {
    if (temporary) fs.remove(path);
    throw e;
  }
  return {
    backend,
    overlayPath: path,
    close() {
      try {
        backend.close();
      } finally {
        if (temporary) fs.remove(path);
      }
    },
  };
}
