/**
 * A busybox shell with no kernel: the process VM (src/exec/) over an in-memory file tree
 * (MemExecHost) holding busybox, a link per applet in /bin, /tmp, a minimal /etc and a home,
 * with the line discipline (tty.ts) as its terminal. The caller drives it a turn at a time
 * (`run`) from its event loop and waits between turns when the shell waits (for a key, a
 * sleep); it never sleeps itself.
 */
import { ExecKernel, type ExecTurn } from '../../../exec/kernel.ts';
import { MemExecHost } from '../../../exec/mem-host.ts';
import { LineDiscipline } from './tty.ts';

/** What a session is made of: the busybox to run and where its screen goes. */
export interface ExecSessionOptions {
  /** A riscv64 busybox binary (Debian's busybox-static). */
  busybox: Uint8Array;
  /** Its applet names (each gets a link /bin/NAME -> busybox). */
  applets: readonly string[];
  /** Bytes for the screen (the shell's output and the terminal's echo). */
  screen(bytes: Uint8Array): void;
  engine?: 'jit' | 'interp';
}

/** The user's home directory in the tree. */
export const HOME = '/home/user';
/** Guest RAM of each process (pages are taken as the program touches them). */
const PROCESS_MEMORY = 256 << 20;

/** The shell's run: its terminal, its tree and the process VM's kernel. */
export class ExecSession {
  readonly tty: LineDiscipline;
  readonly host: MemExecHost;
  readonly kernel: ExecKernel;
  /** Scheduler turns run so far (an idle shell makes none). */
  turns = 0;

  constructor(o: ExecSessionOptions) {
    this.tty = new LineDiscipline({ screen: o.screen, signal: (sig) => this.signalAll(sig) });
    const tty = this.tty;
    this.host = new MemExecHost({ read: (max) => tty.read(max), write: (_fd, b) => tty.write(b), terminal: tty });
    populate(this.host, o);
    this.kernel = new ExecKernel(this.host, { memory: PROCESS_MEMORY, engine: o.engine });
    this.kernel.start({
      program: '/bin/sh',
      argv: ['-sh'],
      envp: [`HOME=${HOME}`, 'PATH=/bin', 'TERM=xterm-256color', 'SHELL=/bin/sh', 'USER=user', 'LOGNAME=user', 'PS1=\\w \\$ '],
      cwd: HOME,
    });
  }

  /**
   * Runs scheduler turns for up to `ms` milliseconds of the host's time; returns the last one
   * (`ran`: there is more to do; `idle`: every process waits, see ExecKernel.turn).
   */
  run(ms: number): ExecTurn {
    const until = performance.now() + ms;
    for (;;) {
      const t = this.kernel.turn();
      this.turns++;
      if (t.state !== 'ran' || performance.now() >= until) return t;
    }
  }

  /**
   * A signal for every live process, as the terminal's foreground group holds them all (the
   * shell runs without job control): a signal whose default action is fatal ends a process at
   * once, any other arrives as its next system call returns (see kill in signals.ts).
   */
  signalAll(sig: number): void {
    for (const p of this.kernel.procs.values()) {
      if (p.exit) continue;
      if (p.signals.fatal(sig)) p.killWith(sig, `killed by signal ${sig}`);
      else p.signals.send(sig);
    }
  }
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The tree a shell expects: busybox and its applets, /tmp, /etc, /dev/null, a home. */
function populate(h: MemExecHost, o: ExecSessionOptions): void {
  for (const d of ['/bin', '/etc', '/dev', '/root', HOME]) h.mkdirp(d);
  h.mkdirp('/tmp', 0o1777);
  h.chmod('/tmp', 0o1777);
  h.writeFile('/bin/busybox', o.busybox, 0o755);
  for (const a of o.applets) if (a !== 'busybox') h.symlink('busybox', `/bin/${a}`);
  h.writeFile('/etc/passwd', text(`root:x:0:0:root:/root:/bin/sh\nuser:x:${h.ids.uid}:${h.ids.gid}:user:${HOME}:/bin/sh\n`));
  h.writeFile('/etc/group', text(`root:x:0:\nuser:x:${h.ids.gid}:\n`));
  h.writeFile('/etc/hostname', text(`${h.uname.nodename}\n`));
  h.writeFile('/etc/hosts', text(`127.0.0.1 localhost ${h.uname.nodename}\n`));
  h.writeFile('/etc/profile', text('export PS1="\\w \\$ "\n'));
  // No devices here: /dev/null is a file (reads give end of file; writes are kept).
  h.writeFile('/dev/null', new Uint8Array(0), 0o666);
}
