/**
 * A private apt for Debian unstable's riscv64 packages: its own sources list, package lists,
 * status and cache under virtus's cache directory, so the host's apt state is never touched
 * and no root is needed. The mirror is the host's own (see sources.ts).
 *
 * The configuration is passed with `-c`, which apt reads after the host's apt.conf.d: the
 * host's settings (proxies, timeouts) still apply, but ours win where both set something.
 * (APT_CONFIG would be read first and could be overridden by the host's files.)
 */
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';
import { exec, lastLines, requireTool } from './exec.ts';
import { mirrorCandidates, readHostSources, type AptSource } from './sources.ts';
import type { ProgressFn } from './progress.ts';

/** The suite and architecture of the default guest. */
export const SUITE = 'unstable';
export const ARCH = 'riscv64';
const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
/** Seconds to wait before each retry: Debian's unstable index can be caught mid-sync. */
const RETRY_DELAYS = [5, 15, 30];
const UNREACHABLE = /Could not (connect|resolve)|Temporary failure resolving|Connection refused|Network is unreachable|No route to host/;

/** What `apt-cache show` says about one package version. */
export interface PackageInfo {
  name: string;
  version: string;
  /** Path in the archive's pool, e.g. pool/main/l/linux/linux-binary-….deb. */
  filename: string;
  size: number;
  sha256: string;
  /** Depends, as alternatives of package names (version constraints dropped). */
  depends: string[][];
}

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

/** Parses the first stanza of `apt-cache show` output. */
export function parseStanza(text: string): PackageInfo | null {
  const stanza = text.split(/\n\s*\n/)[0] ?? '';
  const f = new Map<string, string>();
  let last = '';
  for (const line of stanza.split('\n')) {
    if (/^\s/.test(line) && last) continue; // continuation (descriptions): not needed
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (m) f.set((last = m[1]!), m[2]!);
  }
  const name = f.get('Package');
  const version = f.get('Version');
  const filename = f.get('Filename');
  const sha256 = f.get('SHA256');
  if (!name || !version || !filename || !sha256) return null;
  const depends = (f.get('Depends') ?? '')
    .split(',')
    .map((alt) => alt.split('|').map((p) => p.trim().split(/[\s(:]/)[0]!).filter(Boolean))
    .filter((a) => a.length > 0);
  return { name, version, filename, size: Number(f.get('Size') ?? 0), sha256, depends };
}

/** SHA-256 of a file, streamed (the modules package is over 100 MB). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

export class PrivateApt {
  private readonly conf: string;
  private readonly aptGet: string;
  private readonly aptCache: string;

  private constructor(readonly dir: string, readonly mirror: AptSource, private readonly progress: ProgressFn) {
    this.conf = join(dir, 'apt.conf');
    this.aptGet = requireTool('apt-get', 'building the default guest');
    this.aptCache = requireTool('apt-cache', 'building the default guest');
  }

  /**
   * Sets up the private apt in `dir` and reads Debian unstable's package lists from the
   * first of the host's mirrors that serves them (VIRTUS_DEBIAN_MIRROR, when set, instead).
   */
  static async open(dir: string, progress: ProgressFn): Promise<PrivateApt> {
    const override = process.env.VIRTUS_DEBIAN_MIRROR;
    const candidates = override ? [{ uri: override, suites: [SUITE], file: 'VIRTUS_DEBIAN_MIRROR' }] : mirrorCandidates(readHostSources());
    if (candidates.length === 0) {
      throw new VirtusError(
        'GUEST_NO_MIRROR',
        'the host\'s apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d) name no Debian mirror; ' +
          'set VIRTUS_DEBIAN_MIRROR to one, or pass --kernel and --initrd to virtus run',
      );
    }
    let failure = '';
    let tried = '';
    for (const mirror of candidates) {
      tried = mirror.uri;
      const apt = new PrivateApt(dir, mirror, progress);
      apt.writeConfig();
      progress(`reading the package lists of Debian ${SUITE} (${ARCH}) from ${mirror.uri}`);
      try {
        await apt.update();
        return apt;
      } catch (e) {
        failure = e instanceof Error ? e.message : String(e);
        if (candidates.length > 1) progress(`${mirror.uri} failed: ${failure}`);
      }
    }
    throw new VirtusError(
      'GUEST_APT_UPDATE',
      `cannot read Debian ${SUITE}'s ${ARCH} package lists from ${candidates.length > 1 ? 'any of the host\'s mirrors, last ' : ''}${tried}: ${failure}; ` +
        'set VIRTUS_DEBIAN_MIRROR to a Debian mirror, or pass --kernel and --initrd to virtus run',
    );
  }

  private writeConfig(): void {
    const d = this.dir;
    if (d.includes('"')) throw new VirtusError('GUEST_CACHE', `the cache directory ${d} contains a double quote, which apt cannot read`);
    for (const sub of ['state/lists/partial', 'cache/archives/partial', 'sources.list.d', 'preferences.d']) mkdirSync(join(d, sub), { recursive: true });
    writeFileSync(join(d, 'state/status'), ''); // no package is "installed" in this private world
    const keyring = statOk(DEBIAN_KEYRING) ? DEBIAN_KEYRING : this.mirror.signedBy;
    const opts = [`arch=${ARCH}`, ...(keyring ? [`signed-by=${keyring}`] : [])].join(' ');
    writeFileSync(join(d, 'sources.list'), `deb [${opts}] ${this.mirror.uri} ${SUITE} main\n`);
    const lines = [
      `Dir::State "${d}/state";`,
      `Dir::State::Lists "${d}/state/lists";`,
      `Dir::State::status "${d}/state/status";`,
      `Dir::Cache "${d}/cache";`,
      // Some hosts (container images) turn the binary cache off; without it every
      // apt-cache call parses the whole 10 MB package list again.
      'Dir::Cache::pkgcache "pkgcache.bin";',
      'Dir::Cache::srcpkgcache "srcpkgcache.bin";',
      `Dir::Etc::SourceList "${d}/sources.list";`,
      `Dir::Etc::SourceParts "${d}/sources.list.d";`,
      `Dir::Etc::Preferences "${d}/preferences";`,
      `Dir::Etc::PreferencesParts "${d}/preferences.d";`,
      '#clear APT::Architectures;',
      `APT::Architecture "${ARCH}";`,
      `APT::Architectures { "${ARCH}"; };`,
      'Acquire::Languages "none";',
      // As root, apt drops to the _apt user to download and warns when that user cannot
      // write our directory; downloading as root into our own cache is what we want.
      ...(process.getuid?.() === 0 ? ['APT::Sandbox::User "root";'] : []),
    ];
    writeFileSync(this.conf, lines.join('\n') + '\n');
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' };
  }

  /** `apt-get update`, retried: a mirror mid-sync serves mismatching index files for a while. */
  async update(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const r = await exec(this.aptGet, ['-c', this.conf, '-q', 'update'], { env: this.env() });
      // apt may exit 0 yet report that an index failed and "old ones" were used.
      const failed = r.code !== 0 || /^(E|W): (Failed to fetch|Some index files failed)/m.test(r.stderr);
      if (!failed) return;
      const fetchFailure = /^(?:E|W): Failed to fetch .*$/m.exec(r.stderr)?.[0];
      const why = fetchFailure ?? lastLines(r.stderr.replace(/^W: .*unsandboxed.*$/gm, ''));
      // A mirror that cannot be reached will not sync itself meanwhile: no retries then.
      if (attempt >= RETRY_DELAYS.length || UNREACHABLE.test(why)) throw new Error(why.replace(/\s+/g, ' '));
      this.progress(`apt-get update failed (${why}); retrying in ${RETRY_DELAYS[attempt]} s`);
      await sleep(RETRY_DELAYS[attempt]!);
    }
  }

  /** The candidate version of `pkg`, or a VirtusError when the archive lacks it. */
  async show(pkg: string): Promise<PackageInfo> {
    const r = await exec(this.aptCache, ['-c', this.conf, 'show', '--no-all-versions', pkg], { env: this.env() });
    const info = r.code === 0 ? parseStanza(r.stdout.toString('utf8')) : null;
    if (!info) {
      throw new VirtusError('GUEST_NO_PACKAGE', `Debian ${SUITE} (${ARCH}) at ${this.mirror.uri} has no package ${pkg}${r.code ? `: ${lastLines(r.stderr)}` : ''}`);
    }
    return info;
  }

  /**
   * Downloads one package version into `destDir` (named as in the pool) and checks its
   * SHA-256 against the package list. Retries on failure; `onBytes` sees the growing size.
   */
  async download(info: PackageInfo, destDir: string, onBytes?: (bytes: number) => void): Promise<string> {
    const dest = join(destDir, basename(info.filename));
    const work = join(destDir, `partial-${info.name}`);
    for (let attempt = 0; ; attempt++) {
      rmSync(work, { recursive: true, force: true });
      mkdirSync(work, { recursive: true });
      const timer = onBytes ? setInterval(() => onBytes(dirBytes(work)), 1000) : undefined;
      let why: string;
      try {
        const r = await exec(this.aptGet, ['-c', this.conf, '-q', 'download', `${info.name}=${info.version}`], { cwd: work, env: this.env() });
        why = r.code === 0 ? '' : lastLines(r.stderr.replace(/^W: .*unsandboxed.*$/gm, ''));
      } finally {
        if (timer) clearInterval(timer);
      }
      if (!why) {
        const got = readdirSync(work).filter((n) => n.endsWith('.deb'));
        if (got.length !== 1) why = `apt-get download left ${got.length} .deb files`;
        else if ((await sha256File(join(work, got[0]!))) !== info.sha256) why = 'the download does not match the SHA-256 of the package list';
        else {
          renameSync(join(work, got[0]!), dest);
          rmSync(work, { recursive: true, force: true });
          return dest;
        }
      }
      if (attempt >= RETRY_DELAYS.length) {
        rmSync(work, { recursive: true, force: true });
        throw new VirtusError('GUEST_DOWNLOAD', `cannot download ${info.name} ${info.version}: ${why} (the archive may be mid-sync: try again in a few minutes)`);
      }
      this.progress(`downloading ${info.name} failed (${why}); retrying in ${RETRY_DELAYS[attempt]} s`);
      await sleep(RETRY_DELAYS[attempt]!);
      await this.update().catch(() => {}); // a pool file missing mid-sync may be back, or listed anew
    }
  }
}

function statOk(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function dirBytes(dir: string): number {
  let n = 0;
  try {
    for (const f of readdirSync(dir, { recursive: true }) as string[]) {
      try {
        const s = statSync(join(dir, f));
        if (s.isFile()) n += s.size;
      } catch {
        // renamed under us
      }
    }
  } catch {
    // directory gone
  }
  return n;
}
