/**
 * `virtus switch`: a learning Ethernet switch (src/net/switch.ts) in its own process.
 * Machines plug in with `--nic switch=unix:PATH|tcp:HOST:PORT` (or any QEMU `-netdev stream`
 * client); switches link to each other with `--link`; `--nat` adds the user NAT as a port,
 * so the machines on the switch share one gateway and DHCP server. Every connection speaks
 * QEMU's stream framing; one that breaks it is closed with a one-line warning.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { encodeStream, StreamDecoder } from '../../../net/framing.ts';
import { parseNic, parseSocketAddr, type SocketAddr } from '../../../net/nic.ts';
import { LearningSwitch } from '../../../net/switch.ts';
import { UserNet } from '../../../net/user/nat.ts';
import { VirtusError } from '../../../util/errors.ts';
import { parseFlags, type Command } from '../command.ts';
import { addrText } from '../net/link.ts';
import { nodeNatHost, openHostFwd } from '../net/nat-host.ts';

const HELP = `usage: virtus switch --listen unix:PATH|tcp:HOST:PORT [options]

Runs a learning Ethernet switch until interrupted. Machines plug in with
'virtus run --nic switch=unix:PATH' (or tcp:HOST:PORT); QEMU machines with
-netdev stream,server=off,addr.type=unix,addr.path=PATH (the same framing).

  --listen unix:PATH|tcp:HOST:PORT
                       where machines connect (repeatable)
  --link unix:PATH|tcp:HOST:PORT
                       plug into another switch (repeatable; reconnects when
                       the other switch goes away). Do not link switches in a
                       ring: there is no spanning tree
  --nat user[,hostfwd=...][,restrict=on][,resolver=HOST:PORT]...
                       a NAT gateway on the switch, as 'virtus run --nic user'
                       gives one machine: DHCP hands out 10.0.2.15 and up
  --stats              print the switch's counters when it stops
  -h, --help           show this help`;

const OPTIONS = {
  listen: { type: 'string', multiple: true },
  link: { type: 'string', multiple: true },
  nat: { type: 'string' },
  stats: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const WRITE_LIMIT = 8 << 20;

/** Plugs a stream socket into the switch as a port until it breaks. */
function plug(sw: LearningSwitch, s: Socket, name: string, log: (l: string) => void, onGone?: () => void): void {
  const dec = new StreamDecoder();
  s.setNoDelay(true);
  const port = sw.addPort(name, (f) => {
    if (s.writableLength < WRITE_LIMIT) s.write(encodeStream(f));
  });
  let open = true;
  const gone = (why: string | null) => {
    if (!open) return;
    open = false;
    port.remove();
    if (why) log(`virtus switch: ${name}: ${why}; port closed`);
    s.destroy();
    onGone?.();
  };
  s.on('data', (b: Buffer) => {
    let frames: Uint8Array[];
    try {
      frames = dec.push(new Uint8Array(b.buffer, b.byteOffset, b.length));
    } catch (e) {
      gone((e as Error).message);
      return;
    }
    for (const f of frames) port.input(f);
  });
  s.on('error', (e) => gone(e.message));
  s.on('close', () => gone(null));
}

const where = (a: SocketAddr) => (a.type === 'unix' ? { path: a.path } : { host: a.host, port: a.port });

async function listen(srv: Server, a: SocketAddr): Promise<void> {
  const attempt = () => new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(where(a), () => {
      srv.off('error', reject);
      resolve();
    });
  });
  try {
    await attempt();
  } catch (e) {
    // A unix socket left by a switch that died: nobody answers on it, so it may go.
    const stale = a.type === 'unix' && (e as NodeJS.ErrnoException).code === 'EADDRINUSE' && existsSync(a.path) &&
      !(await new Promise<boolean>((r) => connect(a.path).once('connect', function (this: Socket) { this.destroy(); r(true); }).once('error', () => r(false))));
    if (!stale) throw new VirtusError('SWITCH_LISTEN', `switch: cannot listen on ${addrText(a)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { exitCode: 2 });
    unlinkSync((a as { path: string }).path);
    await attempt().catch((e2) => {
      throw new VirtusError('SWITCH_LISTEN', `switch: cannot listen on ${addrText(a)}: ${(e2 as NodeJS.ErrnoException).code ?? (e2 as Error).message}`, { exitCode: 2 });
    });
  }
}

export const switchCommand: Command = {
  name: 'switch',
  summary: 'run a learning Ethernet switch that machines plug into',
  async run(argv) {
    const { values: v } = parseFlags('switch', argv, OPTIONS);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const listens = (v.listen ?? []).map((t) => parseSocketAddr(t, '--listen'));
    const links = (v.link ?? []).map((t) => parseSocketAddr(t, '--link'));
    if (listens.length === 0 && links.length === 0) throw new VirtusError('BAD_FLAG', "switch: give --listen (or --link) (try 'virtus switch --help')", { exitCode: 2 });
    const log = (l: string) => void process.stderr.write(l + '\n');
    const sw = new LearningSwitch(() => performance.now());
    const closers: Array<() => void> = [];
    let nat: UserNet | null = null;
    if (v.nat !== undefined) {
      const desc = parseNic(v.nat, { flag: '--nat' });
      const b = desc.backend;
      if (b.type !== 'user') throw new VirtusError('BAD_FLAG', 'switch: --nat takes the user backend: --nat user[,...]', { exitCode: 2 });
      const n = new UserNet(b, null, nodeNatHost(b, { wake: () => {}, warn: log }));
      // The NAT's deferred ACKs go out once the frames that arrived together are handled.
      let flushing = false;
      const port = sw.addPort('nat', (f) => {
        n.send(f);
        if (flushing) return;
        flushing = true;
        setImmediate(() => {
          flushing = false;
          n.flush();
        });
      });
      n.attach({ receive: (f) => port.input(f.slice()), backlog: () => 0 }, { guestLargeFrames: () => false });
      const fwd = await openHostFwd(n, b.hostfwd);
      const timer = setInterval(() => n.tick(), 200);
      closers.push(() => clearInterval(timer), () => fwd.close(), () => n.close());
      nat = n;
    }
    let count = 0;
    for (const a of listens) {
      const srv = createServer((s) => plug(sw, s, `port ${++count} (${addrText(a)})`, log));
      await listen(srv, a);
      closers.push(() => srv.close());
      log(`virtus switch: listening on ${addrText(a)}`);
    }
    let stopping = false;
    for (const a of links) {
      const up = (first: boolean) => new Promise<void>((resolve, reject) => {
        const s = connect(where(a));
        s.once('connect', () => {
          log(`virtus switch: linked to ${addrText(a)}`);
          plug(sw, s, `link ${addrText(a)}`, log, () => {
            if (!stopping) setTimeout(() => void up(false).catch(() => {}), 1000);
          });
          resolve();
        });
        s.once('error', (e) => {
          if (first) reject(new VirtusError('SWITCH_LINK', `switch: cannot link to ${addrText(a)}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { exitCode: 2 }));
          else if (!stopping) setTimeout(() => void up(false).catch(() => {}), 1000);
        });
      });
      await up(true);
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    stopping = true;
    for (const c of closers) c();
    if (v.stats) {
      const all = { ...sw.counters(), ...(nat?.counters() ?? {}) };
      for (const [k, n] of Object.entries(all)) log(`  ${k.padEnd(24)} ${String(n).padStart(12)}`);
    }
    return 0;
  },
};
