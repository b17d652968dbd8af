/**
 * The user's own guest files, dropped onto the page or picked with the file chooser. A file
 * dropped on a slot (kernel, initramfs, disk) takes that slot; a file dropped anywhere else
 * goes where its first bytes say it belongs, as `file(1)` would tell. A snapshot dropped
 * anywhere is loaded, not booted. When the machine has the tab's shared folder, a file that
 * is plainly none of these (dropBootRole) goes into the folder instead, as does any file
 * dropped on the Files panel.
 */

export type Role = 'kernel' | 'initrd' | 'disk';

/** The roles in the order the page lists them. */
export const ROLES: Role[] = ['kernel', 'initrd', 'disk'];

const ascii = (b: Uint8Array, at: number, s: string) => [...s].every((c, i) => b[at + i] === c.charCodeAt(0));

/**
 * The role a file's contents suggest: an ELF or a RISC-V Linux Image ("RSC\x05" at 0x38)
 * is a kernel; a cpio archive or a compressed one (gzip, xz, zstd, lz4) is an initramfs;
 * anything else (a raw disk, an ext2/3/4 or other file system) is a disk.
 */
export function classify(head: Uint8Array): Role {
  if (ascii(head, 0, '\x7fELF') || ascii(head, 0x38, 'RSC\x05')) return 'kernel';
  if (ascii(head, 0, '070701') || ascii(head, 0, '070702')) return 'initrd';
  if ((head[0] === 0x1f && head[1] === 0x8b) || ascii(head, 0, '\xfd7zXZ') || ascii(head, 0, '\x28\xb5\x2f\xfd') || ascii(head, 0, '\x04\x22\x4d\x18')) {
    return 'initrd';
  }
  return 'disk';
}

/** Bytes of a file's head that dropBootRole looks at (an ext2/3/4 superblock's magic is at 0x438). */
export const HEAD_BYTES = 0x440;
/** Where the virt board's RAM starts: a bare-metal ELF kernel is linked to run there or above. */
const RAM_BASE = 0x8000_0000n;
const ET_EXEC = 2;

/** A 64-bit little-endian ELF executable linked to run from the board's RAM (not a Linux program). */
function isElfKernel(head: Uint8Array): boolean {
  if (!ascii(head, 0, '\x7fELF') || head[4] !== 2 || head[5] !== 1 || head.length < 0x20) return false;
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return v.getUint16(0x10, true) === ET_EXEC && v.getBigUint64(0x18, true) >= RAM_BASE;
}

/**
 * The boot role of a file dropped on a machine with a shared folder, or null for "put it in
 * the folder": a RISC-V Linux Image or an ELF linked at or above the RAM base is a kernel; a
 * cpio archive, or a compressed file whose name says initrd, initramfs or cpio, an initramfs;
 * a qcow2 image, an ext2/3/4 file system or a file named *.img, *.qcow2, *.raw, *.iso or
 * *.ext2/3/4 a disk. Anything else (text, a program for the guest, an archive) is data.
 */
export function dropBootRole(name: string, head: Uint8Array): Role | null {
  if (ascii(head, 0x38, 'RSC\x05') || isElfKernel(head)) return 'kernel';
  if (ascii(head, 0, '070701') || ascii(head, 0, '070702')) return 'initrd';
  if (classify(head) === 'initrd' && /initr(d|amfs)|cpio/i.test(name)) return 'initrd';
  if (ascii(head, 0, 'QFI\xfb') || (head[0x438] === 0x53 && head[0x439] === 0xef)) return 'disk';
  return /\.(img|qcow2|raw|iso|ext[234])$/i.test(name) ? 'disk' : null;
}

/** A virtus snapshot file opens with this magic (docs/snapshots.md; machine/snapshot.ts). */
export function isSnapshot(head: Uint8Array): boolean {
  return ascii(head, 0, 'VIRTSNAP');
}

/** A file the user chose, read into memory. */
export interface UserFile {
  name: string;
  bytes: Uint8Array;
}

/** Reads files and sorts them into roles; `forced` puts them all in one slot. */
export async function sortFiles(files: Iterable<File>, forced?: Role): Promise<Partial<Record<Role, UserFile>>> {
  const out: Partial<Record<Role, UserFile>> = {};
  for (const f of files) {
    const bytes = new Uint8Array(await f.arrayBuffer());
    out[forced ?? classify(bytes.subarray(0, 0x40))] = { name: f.name, bytes };
  }
  return out;
}

/** Where dropped files go. */
export interface DropHandlers {
  /** Boot files, sorted into roles. */
  onFiles(files: Partial<Record<Role, UserFile>>): void;
  /** A single snapshot file dropped. */
  onSnapshot(file: UserFile): void;
  /** Files for the shared folder (only while `hasShare()`). */
  onShare(files: UserFile[]): void;
  /** The machine has the tab's shared folder. */
  hasShare(): boolean;
}

/**
 * Makes the whole page a drop target: files dropped on an element with `data-role` go to
 * that role, on an element with `data-share` to the shared folder, others are classified.
 */
export function installDropTarget(page: HTMLElement, on: DropHandlers): void {
  let depth = 0;
  page.addEventListener('dragenter', (e) => {
    if (!e.dataTransfer?.types.includes('Files')) return;
    depth++;
    page.classList.add('dragging');
  });
  page.addEventListener('dragleave', () => {
    if (--depth <= 0) {
      depth = 0;
      page.classList.remove('dragging');
    }
  });
  page.addEventListener('dragover', (e) => {
    if (e.dataTransfer?.types.includes('Files')) e.preventDefault();
  });
  page.addEventListener('drop', (e) => {
    depth = 0;
    page.classList.remove('dragging');
    const files = e.dataTransfer?.files;
    if (!files || files.length === 0) return;
    e.preventDefault();
    const target = e.target as HTMLElement | null;
    const slot = target?.closest<HTMLElement>('[data-role]')?.dataset.role as Role | undefined;
    const toShare = on.hasShare() && target?.closest('[data-share]') !== null;
    void (async () => {
      const first = files[0]!;
      if (!toShare && files.length === 1 && isSnapshot(new Uint8Array(await first.slice(0, 8).arrayBuffer()))) {
        on.onSnapshot({ name: first.name, bytes: new Uint8Array(await first.arrayBuffer()) });
        return;
      }
      if (slot || !on.hasShare()) {
        on.onFiles(await sortFiles(files, slot));
        return;
      }
      const boot: Partial<Record<Role, UserFile>> = {};
      const data: UserFile[] = [];
      for (const f of files) {
        const bytes = new Uint8Array(await f.arrayBuffer());
        const role = toShare ? null : dropBootRole(f.name, bytes.subarray(0, HEAD_BYTES));
        if (role) boot[role] = { name: f.name, bytes };
        else data.push({ name: f.name, bytes });
      }
      if (data.length) on.onShare(data);
      if (Object.keys(boot).length) on.onFiles(boot);
    })();
  });
}
