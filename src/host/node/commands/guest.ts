/** `virtus guest`: fetch the default guest from Debian, and show what the cache holds. */
import { statSync } from 'node:fs';
import { VirtusError } from '../../../util/errors.ts';
import { parseFlags, type Command } from '../command.ts';
import { cacheRoot, currentGuest, fetchDefaultGuest, rootDiskPath, stderrProgress, type DefaultGuest } from '../guest/index.ts';
import { mb } from '../guest/progress.ts';

const HELP = `usage: virtus guest <fetch|info> [options]

The default guest is Debian unstable's riscv64 kernel with an initramfs (busybox,
and the virtio, 9p and ext4 modules the kernel builds as modules) and an ext4
root disk, built by virtus from Debian's packages. 'virtus run' without --kernel
boots it, fetching it first when there is none.

  fetch            bring the default guest up to date with Debian unstable:
                   downloads (about 130 MB) and builds only when versions changed
    --force        download and build again even when up to date
  info             show the default guest's files, versions and sizes
    --json         as JSON

It is fetched with the host's apt-get and dpkg-deb from the Debian mirror the
host's apt sources name (VIRTUS_DEBIAN_MIRROR overrides it) into the cache
directory, $XDG_CACHE_HOME/virtus or ~/.cache/virtus (VIRTUS_CACHE_DIR
overrides it). On a host without apt, pass --kernel and --initrd to 'virtus run'.`;

const OPTIONS = {
  force: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function size(path: string): string {
  try {
    return mb(statSync(path).size);
  } catch {
    return 'missing';
  }
}

/** A disk's size and, as images are sparse, the host space it takes. */
function diskSize(path: string): string {
  try {
    const st = statSync(path);
    return `${Math.round(st.size / 2 ** 20)} MiB, ${mb(st.blocks * 512)} used on the host`;
  } catch {
    return 'not created yet';
  }
}

function describe(g: DefaultGuest): string {
  const p = g.manifest.packages;
  const disk = rootDiskPath();
  return [
    `default guest: Linux ${g.release} (Debian ${g.version}), built ${g.manifest.built}`,
    `  kernel   ${g.kernel}  (${size(g.kernel)}, ${p.kernel.name} ${p.kernel.version})`,
    `  initrd   ${g.initrd}  (${size(g.initrd)}, ${p.busybox.name} ${p.busybox.version}, ${g.manifest.modules.length} modules)`,
    `  rootfs   ${g.rootfs}  (pristine ext4, ${diskSize(g.rootfs)})`,
    `  opensbi  ${g.opensbi}  (${size(g.opensbi)}, ${p.opensbi.name} ${p.opensbi.version})`,
    `  modules  ${g.manifest.modules.join(' ')}`,
    ...(g.manifest.builtin.length ? [`  built in ${g.manifest.builtin.join(' ')}`] : []),
    `  mirror   ${g.manifest.mirror}`,
    `  disk     ${disk}  (the root disk runs use, ${diskSize(disk)})`,
  ].join('\n');
}

export const guestCommand: Command = {
  name: 'guest',
  summary: 'fetch the default guest (Debian kernel, busybox) and show it',
  async run(argv) {
    const { values: v, positionals } = parseFlags('guest', argv, OPTIONS, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const [sub, ...extra] = positionals;
    if (extra.length > 0) throw new VirtusError('BAD_FLAG', `guest: unexpected argument '${extra[0]}' (try 'virtus guest --help')`, { exitCode: 2 });
    switch (sub) {
      case 'fetch': {
        if (v.json) throw new VirtusError('BAD_FLAG', "guest fetch: --json belongs to 'virtus guest info'", { exitCode: 2 });
        const { guest, built } = await fetchDefaultGuest({ force: v.force ?? false, progress: stderrProgress() });
        console.log(built ? describe(guest) : `the default guest is up to date: Linux ${guest.release} (Debian ${guest.version})`);
        return 0;
      }
      case 'info': {
        if (v.force) throw new VirtusError('BAD_FLAG', "guest info: --force belongs to 'virtus guest fetch'", { exitCode: 2 });
        const g = currentGuest();
        if (v.json) {
          console.log(JSON.stringify(g ? { ...g, rootDisk: rootDiskPath(), cache: cacheRoot() } : null, null, 2));
          return g ? 0 : 1;
        }
        if (!g) {
          console.log(`no default guest built by this virtus in ${cacheRoot()}: 'virtus guest fetch' builds one`);
          return 1;
        }
        console.log(describe(g));
        return 0;
      }
      case undefined:
        throw new VirtusError('BAD_FLAG', "guest: say 'fetch' or 'info' (try 'virtus guest --help')", { exitCode: 2 });
      default:
        throw new VirtusError('BAD_FLAG', `guest: unknown subcommand '${sub}' (try 'virtus guest --help')`, { exitCode: 2 });
    }
  },
};
