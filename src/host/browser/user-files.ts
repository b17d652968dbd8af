/**
 * The user's own guest files, dropped onto the page or picked with the file chooser. A file
 * dropped on a slot (kernel, initramfs, disk) takes that slot; a file dropped anywhere else
 * goes where its first bytes say it belongs, as `file(1)` would tell. A snapshot dropped
 * anywhere is loaded, not booted.
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

/**
 * Makes the whole page a drop target: files dropped on an element with `data-role` go to
 * that role, others are classified. `onFiles` gets them sorted; a single snapshot file
 * dropped goes to `onSnapshot` instead.
 */
export function installDropTarget(
  page: HTMLElement,
  onFiles: (files: Partial<Record<Role, UserFile>>) => void,
  onSnapshot: (file: UserFile) => void,
): void {
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
    const slot = (e.target as HTMLElement | null)?.closest<HTMLElement>('[data-role]')?.dataset.role as Role | undefined;
    void (async () => {
      const first = files[0]!;
      if (files.length === 1 && isSnapshot(new Uint8Array(await first.slice(0, 8).arrayBuffer()))) {
        onSnapshot({ name: first.name, bytes: new Uint8Array(await first.arrayBuffer()) });
      } else onFiles(await sortFiles(files, slot));
    })();
  });
}
