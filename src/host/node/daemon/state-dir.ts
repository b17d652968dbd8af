/**
 * The daemon's state directory: everything that survives a restart of the daemon.
 *
 *   <state>/daemon.lock             pid of the daemon using the directory (one at a time)
 *   <state>/daemon.sock             the API's default unix socket
 *   <state>/token                   the bearer token TCP clients present (mode 0600)
 *   <state>/machines/<id>/machine.json   a machine's definition (MachineRecord)
 *   <state>/machines/<id>/disk<N>.qcow2  its copy-on-write overlays
 *   <state>/boot/<digest>/kernel|initrd  boot files of the images machines were made from
 *   <state>/snapshots/<name>.snap   snapshots, with <name>.json saying which machine they are of
 *
 * Files are replaced atomically (written aside, fsynced, renamed), so a crash leaves either
 * the old or the new definition, never half of one.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync, chmodSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { VirtusError } from '../../../util/errors.ts';
import { tryLock, unlock } from '../../../repo/lock.ts';

/** The default state directory: $VIRTUS_STATE_DIR, else $XDG_STATE_HOME/virtus, else ~/.local/state/virtus. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VIRTUS_STATE_DIR) return env.VIRTUS_STATE_DIR;
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'virtus');
  return join(homedir(), '.local', 'state', 'virtus');
}

/** The API socket a client uses when told nothing else. */
export function defaultSocket(env: NodeJS.ProcessEnv = process.env): string {
  return join(defaultStateDir(env), 'daemon.sock');
}

/** Writes `data` to `path` through a temporary file, fsynced and renamed into place. */
export function writeAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    // The rename itself is made durable by syncing the directory.
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new VirtusError('STATE_WRITE', `cannot write ${path}: ${(e as Error).message}`);
  }
}

/** The state directory of one daemon (see the file's comment). */
export class StateDir {
  private locked = false;

  constructor(readonly root: string) {}

  get machines(): string {
    return join(this.root, 'machines');
  }

  get snapshots(): string {
    return join(this.root, 'snapshots');
  }

  get socket(): string {
    return join(this.root, 'daemon.sock');
  }

  machineDir(id: string): string {
    return join(this.machines, id);
  }

  bootDir(digestHex: string): string {
    return join(this.root, 'boot', digestHex);
  }

  /** Creates the directory and takes it for this process; refuses one another daemon uses. */
  open(): void {
    try {
      for (const d of [this.root, this.machines, this.snapshots, join(this.root, 'boot')]) mkdirSync(d, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new VirtusError('STATE_DIR', `cannot create the state directory ${this.root}: ${(e as Error).message}`, { exitCode: 2 });
    }
    if (!tryLock(join(this.root, 'daemon.lock'))) {
      const pid = readFileSync(join(this.root, 'daemon.lock'), 'utf8').trim();
      throw new VirtusError('STATE_DIR_BUSY', `another daemon (pid ${pid}) uses the state directory ${this.root}`, { exitCode: 2 });
    }
    this.locked = true;
  }

  /** Lets the directory go (at exit). */
  close(): void {
    if (this.locked) unlock(join(this.root, 'daemon.lock'));
    this.locked = false;
  }

  /** The API token: made at first start (mode 0600), the same ever after. */
  token(): string {
    const path = join(this.root, 'token');
    if (existsSync(path)) {
      const t = readFileSync(path, 'utf8').trim();
      if (/^[0-9a-f]{64}$/.test(t)) {
        chmodSync(path, 0o600);
        return t;
      }
    }
    const t = randomBytes(32).toString('hex');
    writeAtomic(path, t + '\n', 0o600);
    chmodSync(path, 0o600);
    return t;
  }
}
