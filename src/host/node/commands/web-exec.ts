/**
 * The server side of the exec page (/exec, src/host/browser/exec/): the busybox it runs is
 * Debian's busybox-static of the default guest (the binary in the guest's initramfs and in
 * the exec tests), unpacked from the package in the cache the first time the page asks, with
 * its applet names read from the binary (as the guest's builder reads them).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';
import { busyboxApplets } from '../guest/busybox.ts';
import { cacheRoot } from '../guest/cache.ts';
import { exec, requireTool } from '../guest/exec.ts';
import { ensureDefaultGuest } from '../guest/fetch.ts';
import { stderrProgress } from '../guest/progress.ts';

/** The busybox the exec page runs. */
export interface ExecBusybox {
  bytes: Uint8Array;
  applets: string[];
  /** The package's name and version, as the page's title shows it. */
  name: string;
  /** The page's cache key: changes with the package. */
  version: string;
}

/** Unpacks the default guest's busybox-static package and reads busybox from it. */
export async function loadExecBusybox(): Promise<ExecBusybox> {
  const guest = await ensureDefaultGuest({ progress: stderrProgress() });
  const pkg = guest.manifest.packages.busybox;
  const deb = join(cacheRoot(), 'debs', pkg.file);
  const dir = mkdtempSync(join(tmpdir(), 'virtus-web-busybox-'));
  try {
    const r = await exec(requireTool('dpkg-deb', 'the exec page'), ['-x', deb, dir]);
    if (r.code !== 0) throw new VirtusError('WEB_BUSYBOX', `web: cannot unpack ${deb} (run 'virtus guest fetch --force'): ${r.stderr.trim().split('\n').pop()}`);
    let bytes: Uint8Array | null = null;
    for (const p of ['usr/bin/busybox', 'bin/busybox']) {
      try {
        bytes = new Uint8Array(readFileSync(join(dir, p)));
        break;
      } catch {
        // the other layout
      }
    }
    if (!bytes) throw new VirtusError('WEB_BUSYBOX', `web: ${pkg.file} holds no busybox`);
    return { bytes, applets: busyboxApplets(bytes), name: `busybox ${pkg.version}`, version: pkg.sha256.slice(0, 16) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
