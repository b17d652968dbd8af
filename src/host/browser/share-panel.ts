/**
 * The Files panel: the tab's shared folder (TAB_SHARE, mounted by the default guest at
 * /mnt/tab), which lives in the machine's worker. Files dropped on the page or chosen with
 * "Put file" go into the folder's root; every regular file in it, those the guest wrote
 * included, is listed with a Download button (a Blob download of a copy the worker sends).
 * The list follows the folder while the panel is open.
 */
import { TAB_SHARE } from '../../vmm/spec.ts';
import type { MachineWorker } from './machine-worker.ts';
import type { ShareListing } from './protocol.ts';
import type { UserFile } from './user-files.ts';

/** How often an open panel asks the worker for the list (the guest may write at any time). */
const REFRESH_MS = 1000;

const size = (n: number): string => (n < 1024 ? `${n} B` : n < 2 ** 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);

export class SharePanel {
  private listing: ShareListing | null = null;
  private shown = '';
  private enabled = false;

  constructor(
    private readonly root: HTMLDetailsElement,
    private readonly o: { machine: () => MachineWorker | null; note: (line: string) => void },
  ) {
    const chooser = root.querySelector<HTMLInputElement>('input[type="file"]')!;
    root.querySelector<HTMLButtonElement>('.put')!.onclick = () => chooser.click();
    chooser.onchange = async () => {
      const list = [...(chooser.files ?? [])];
      chooser.value = ''; // choosing the same file again is a new change
      await this.put(await Promise.all(list.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) }))));
    };
    root.querySelector<HTMLButtonElement>('.refresh')!.onclick = () => void this.refresh();
    root.addEventListener('toggle', () => void this.refresh());
    setInterval(() => {
      if (root.open && this.enabled) void this.refresh();
    }, REFRESH_MS);
    this.setEnabled(false);
  }

  /** Shows the panel when the machine has the folder. */
  setEnabled(on: boolean): void {
    this.enabled = on;
    this.root.hidden = !on;
    if (on) void this.refresh();
  }

  /** The folder's files as last listed (for scripts and tests). */
  get files(): ShareListing | null {
    return this.listing;
  }

  /** Puts files in the folder, one after another; a refusal is noted on the terminal. */
  async put(files: UserFile[]): Promise<void> {
    const m = this.o.machine();
    if (!m) return;
    this.root.open = true;
    for (const f of files) {
      try {
        this.show(await m.putShareFile(f.name, f.bytes));
        this.o.note(`${f.name} (${size(f.bytes.length)}) is in ${TAB_SHARE.mountPoint}`);
      } catch (e) {
        this.o.note(e instanceof Error ? e.message : String(e));
        throw e;
      }
    }
  }

  async refresh(): Promise<ShareListing | null> {
    const m = this.o.machine();
    if (!m || !this.enabled) return null;
    try {
      this.show(await m.listShare());
    } catch {
      // the worker was reset meanwhile: the next refresh asks the new one
    }
    return this.listing;
  }

  /** Saves a copy of the file at `path` as a download. */
  async download(path: string[]): Promise<void> {
    const m = this.o.machine();
    if (!m) return;
    const bytes = await m.getShareFile(path);
    const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = path[path.length - 1]!;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  private show(l: ShareListing): void {
    this.listing = l;
    // The rows are rebuilt only when the folder changed: a button being clicked stays put.
    const key = JSON.stringify(l);
    if (key === this.shown) return;
    this.shown = key;
    this.root.querySelector('.usage')!.textContent = `${size(l.bytesUsed)} of ${size(l.maxBytes)}`;
    const rows = l.files.map((f) => {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = f.path.join('/');
      name.title = `${TAB_SHARE.mountPoint}/${f.path.join('/')}, modified ${new Date(f.mtimeMs).toLocaleString()}`;
      const bytes = document.createElement('span');
      bytes.className = 'size';
      bytes.textContent = size(f.size);
      const get = document.createElement('button');
      get.className = 'download';
      get.textContent = 'Download';
      get.dataset.path = JSON.stringify(f.path);
      get.onclick = () => void this.download(f.path).catch((e: unknown) => this.o.note(e instanceof Error ? e.message : String(e)));
      li.append(name, bytes, get);
      return li;
    });
    const list = this.root.querySelector('ul')!;
    if (rows.length === 0) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = 'empty';
      rows.push(li);
    }
    list.replaceChildren(...rows);
  }
}
