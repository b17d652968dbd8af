/**
 * The 9P server's fids: each names a file by its path from the shared root (the server is
 * path-based, as QEMU's local backend is), and may hold an open host handle (a file's, or a
 * directory's being listed) or an extended-attribute buffer. An open handle keeps naming
 * what was opened, whatever happens to the path later. Renames rewrite the paths of every
 * fid below the renamed entry. Saved state keeps paths and open modes; handles are opened
 * again by path on first use after a restore.
 */
import { VirtusError } from '../../../util/errors.ts';
import { StateReader } from '../../state.ts';
import { E, FsError, type FsOpenFlags, type HostFs } from './fs.ts';

/** How a fid is open: a directory for Treaddir, or a file with its open mode; null handles are opened on use. */
export type Open = { kind: 'dir'; handle: number | null } | { kind: 'file'; flags: FsOpenFlags; handle: number | null };

/** One fid of the session. */
export interface Fid {
  path: string[];
  /** The file is a directory (as it was when walked to). */
  dir: boolean;
  open: Open | null;
  /** An xattr fid's contents (from Txattrwalk). */
  xattr: Uint8Array | null;
}

/** Saved fid: the number, path, and how it was open. */
export interface FidState {
  fid: number;
  path: string[];
  dir: boolean;
  open: 'dir' | 'read' | 'write' | 'rdwr' | 'append' | 'rdwr-append' | null;
}

/** Fids a client may hold at once (Linux uses a handful per open file). */
export const MAX_FIDS = 65536;

const MODES = ['dir', 'read', 'write', 'rdwr', 'append', 'rdwr-append'] as const;

function modeName(f: Open | null): FidState['open'] {
  if (f === null) return null;
  if (f.kind === 'dir') return 'dir';
  const { read, write, append } = f.flags;
  if (append) return read ? 'rdwr-append' : 'append';
  return read && write ? 'rdwr' : write ? 'write' : 'read';
}

function modeFlags(m: Exclude<FidState['open'], null | 'dir'>): FsOpenFlags {
  return { read: m === 'read' || m.startsWith('rdwr'), write: m !== 'read', truncate: false, append: m.endsWith('append') };
}

/** The fids of one session, and the host handles they hold. */
export class FidTable {
  private readonly fids = new Map<number, Fid>();

  constructor(private readonly fs: HostFs) {}

  get size(): number {
    return this.fids.size;
  }

  /** The fid, or EBADF. */
  get(fid: number): Fid {
    const f = this.fids.get(fid);
    if (!f) throw new FsError(E.BADF, `no fid ${fid}`);
    return f;
  }

  has(fid: number): boolean {
    return this.fids.has(fid);
  }

  /** Adds a new fid; a number in use is EBADF (9P: newfid must not be in use). */
  add(fid: number, f: Fid): void {
    if (this.fids.has(fid)) throw new FsError(E.BADF, `fid ${fid} is in use`);
    if (this.fids.size >= MAX_FIDS) throw new FsError(E.NOMEM, 'too many fids');
    this.fids.set(fid, f);
  }

  /** Replaces what `fid` names (a walk onto itself). */
  set(fid: number, f: Fid): void {
    this.fids.set(fid, f);
  }

  /** Forgets a fid, closing its handle. */
  clunk(fid: number): void {
    const f = this.fids.get(fid);
    if (!f) throw new FsError(E.BADF, `no fid ${fid}`);
    this.fids.delete(fid);
    this.closeHandle(f);
  }

  private closeHandle(f: Fid): void {
    if (f.open && f.open.handle !== null) {
      try {
        this.fs.close(f.open.handle);
      } catch {
        // the guest gave the fid up; a failing close changes nothing for it
      }
      f.open.handle = null;
    }
  }

  /** The open handle of a file fid, opened again if it was restored from a snapshot. */
  handle(f: Fid): number {
    if (!f.open || f.open.kind !== 'file') throw new FsError(E.BADF, 'fid is not an open file');
    f.open.handle ??= this.fs.open(f.path, f.open.flags);
    return f.open.handle;
  }

  /** The open handle of a directory fid, opened again if it was restored from a snapshot. */
  dirHandle(f: Fid): number {
    if (!f.open || f.open.kind !== 'dir') throw new FsError(E.BADF, 'fid is not an open directory');
    f.open.handle ??= this.fs.openDir(f.path);
    return f.open.handle;
  }

  /** After a rename of `from` to `to`: fids at or below `from` now live below `to`. */
  renamed(from: readonly string[], to: readonly string[]): void {
    for (const f of this.fids.values()) {
      if (f.path.length >= from.length && from.every((n, i) => f.path[i] === n)) f.path = [...to, ...f.path.slice(from.length)];
    }
  }

  /** Clunks everything (Tversion starts a new session; device reset). */
  clear(): void {
    for (const f of this.fids.values()) this.closeHandle(f);
    this.fids.clear();
  }

  save(): FidState[] {
    return [...this.fids].map(([fid, f]) => ({ fid, path: [...f.path], dir: f.dir, open: modeName(f.open) }));
  }

  /** Restores from untrusted state (names are checked with `validName`). */
  restore(list: unknown, component: string, validName: (s: string) => boolean): void {
    if (!Array.isArray(list) || list.length > MAX_FIDS) throw new VirtusError('BAD_STATE', `${component}: fids must be an array of at most ${MAX_FIDS} entries`);
    const fresh = new Map<number, Fid>();
    list.forEach((entry, i) => {
      const r = new StateReader(`${component} fid ${i}`, entry, ['fid', 'path', 'dir', 'open']);
      const fid = r.uint('fid', 0xffff_ffff);
      const dir = r.bool('dir');
      const open = (entry as FidState).open === null ? null : r.oneOf('open', MODES);
      const path = (entry as FidState).path;
      if (!Array.isArray(path) || path.length > 4096 || !path.every((n) => typeof n === 'string' && validName(n))) r.fail('path must be an array of valid names');
      if (fresh.has(fid)) r.fail(`fid ${fid} appears twice`);
      if (open === 'dir' && !dir) r.fail('a file fid cannot be open as a directory');
      fresh.set(fid, {
        path: [...path], dir, xattr: null,
        open: open === null ? null : open === 'dir' ? { kind: 'dir', handle: null } : { kind: 'file', flags: modeFlags(open), handle: null },
      });
    });
    this.clear();
    for (const [k, v] of fresh) this.fids.set(k, v);
  }
}
