/**
 * The network path, with the default guest (initramfs root) on each machine:
 *
 * - TCP throughput guest → host and host → guest: busybox nc moves 256 MiB of zeros to or
 *   from a server on the host's loopback (through the router address 10.0.2.2); MB/s over the
 *   host's wall-clock time until the last byte arrived;
 * - round-trip latency: the average of `ping -c 20 -i 0.2 10.0.2.2` (the guest's clock follows
 *   the host's in interactive runs).
 *
 * Machines: virtus `--nic user` (the NAT in the monitor), QEMU 7.2 `-netdev user` (slirp) on
 * the same kernel and initramfs, and (alt column) two virtus machines on `virtus switch`,
 * where "guest → host" is guest → guest and the ping goes to the other guest.
 *
 * Run with `npm run bench -- net` (NET_BENCH_MIB=N moves N MiB instead of 256).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDefaultGuest, stderrProgress, type DefaultGuest } from '../src/host/node/guest/index.ts';
import { Guest } from '../test/support/guest.ts';
import { requireTool, VIRTUS } from '../test/support/toolchain.ts';
import type { Benchmark, Row } from './harness.ts';

const MIB = Number(process.env.NET_BENCH_MIB ?? '256');
const BYTES = MIB * 1048576;
const STEP_MS = 30 * 60_000;

async function listen(srv: Server): Promise<number> {
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return (srv.address() as AddressInfo).port;
}

/** guest → host: MB/s until the host has every byte. */
async function upload(m: Guest): Promise<number> {
  let t0 = 0;
  let done!: (ms: number) => void;
  const finished = new Promise<number>((r) => (done = r));
  const srv = createServer((s) => {
    let got = 0;
    s.on('data', (b: Buffer) => {
      got += b.length;
      if (got >= BYTES) {
        done(performance.now() - t0);
        s.end();
      }
    });
  });
  const port = await listen(srv);
  try {
    t0 = performance.now();
    m.send(`dd if=/dev/zero bs=1M count=${MIB} 2>/dev/null | nc 10.0.2.2 ${port}; echo "up-$((40+2))"`);
    const ms = await finished;
    await m.waitFor('up-42', STEP_MS);
    return BYTES / (ms / 1000) / 1e6;
  } finally {
    srv.close();
  }
}

/** host → guest: MB/s until the guest's nc has read the last byte and exited. */
async function download(m: Guest): Promise<number> {
  const block = new Uint8Array(1 << 20);
  const srv = createServer((s) => {
    let left = MIB;
    const more = () => {
      while (left > 0) {
        left--;
        if (!s.write(block)) return void s.once('drain', more);
      }
      s.end();
    };
    more();
  });
  const port = await listen(srv);
  try {
    const t0 = performance.now();
    const out = await m.run(`nc 10.0.2.2 ${port} | wc -c`, STEP_MS);
    const ms = performance.now() - t0;
    if (Number(out.trim()) !== BYTES) throw new Error(`the guest received ${out.trim()} bytes, not ${BYTES}`);
    return BYTES / (ms / 1000) / 1e6;
  } finally {
    srv.close();
  }
}

/** Average ping round trip to `ip` in ms. */
async function rtt(m: Guest, ip: string): Promise<number> {
  const out = await m.run(`ping -c 20 -i 0.2 ${ip}`, STEP_MS);
  const r = /round-trip min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(out);
  if (!r) throw new Error(`ping: ${out}`);
  return Number(r[1]);
}

async function measure(m: Guest): Promise<{ up: number; down: number; ping: number }> {
  try {
    await m.shell({ timeoutMs: STEP_MS });
    await m.run('echo 1 > /proc/sys/kernel/printk; ping -c 1 10.0.2.2 >/dev/null', STEP_MS);
    const ping = await rtt(m, '10.0.2.2');
    const up = await upload(m);
    const down = await download(m);
    return { up, down, ping };
  } finally {
    m.kill();
  }
}

function onQemu(g: DefaultGuest): Promise<{ up: number; down: number; ping: number }> {
  requireTool('qemu-system-riscv64');
  return measure(Guest.command('qemu-system-riscv64', [
    '-M', 'virt', '-m', '512M', '-smp', '1', '-nographic', '-bios', g.opensbi, '-kernel', g.kernel, '-initrd', g.initrd,
    '-append', 'console=ttyS0', '-netdev', 'user,id=n0', '-device', 'virtio-net-device,netdev=n0',
  ]));
}

function onVirtus(g: DefaultGuest): Promise<{ up: number; down: number; ping: number }> {
  return measure(Guest.virtus(['--kernel', g.kernel, '--initrd', g.initrd, '--append', 'console=ttyS0', '--nic', 'user']));
}

/** Two machines on a switch (with the NAT for their addresses): guest → guest throughput and ping. */
async function onSwitch(g: DefaultGuest): Promise<{ up: number; ping: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'virtus-net-bench-'));
  const sock = join(dir, 'sw.sock');
  const sw = Guest.command(process.execPath, [VIRTUS, 'switch', '--listen', `unix:${sock}`, '--nat', 'user']);
  const boot = (mac: string) => Guest.virtus(['--kernel', g.kernel, '--initrd', g.initrd, '--append', 'console=ttyS0', '--nic', `switch=unix:${sock},mac=${mac}`]);
  let a: Guest | null = null;
  let b: Guest | null = null;
  try {
    await sw.waitForStderr(/listening on/);
    a = boot('52:54:00:00:00:0a');
    b = boot('52:54:00:00:00:0b');
    await Promise.all([a.shell({ timeoutMs: STEP_MS }), b.shell({ timeoutMs: STEP_MS })]);
    const ipB = /inet (10\.0\.2\.\d+)\//.exec(await b.run('ip -4 addr show eth0'))?.[1];
    if (!ipB) throw new Error('the second machine has no address');
    await a.run(`ping -c 1 ${ipB} >/dev/null`, STEP_MS);
    const ping = await rtt(a, ipB);
    b.send(`nc -l -p 5000 | wc -c; echo "got-$((40+2))"`);
    await b.waitFor('nc -l -p 5000');
    const t0 = performance.now();
    await a.run(`for i in 1 2 3 4 5; do dd if=/dev/zero bs=1M count=${MIB} 2>/dev/null | nc ${ipB} 5000 && break; sleep 1; done`, STEP_MS);
    const got = await b.waitFor('got-42', STEP_MS);
    const ms = performance.now() - t0;
    if (!got.includes(String(BYTES))) throw new Error(`the receiver counted ${got}`);
    return { up: BYTES / (ms / 1000) / 1e6, ping };
  } finally {
    a?.kill();
    b?.kill();
    sw.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const bench: Benchmark = {
  name: 'net',
  altLabel: 'two virtus machines on virtus switch (guest to guest)',
  async run(): Promise<Row[]> {
    const g = await ensureDefaultGuest({ progress: stderrProgress() });
    const q = await onQemu(g);
    const v = await onVirtus(g);
    const s = await onSwitch(g);
    const note = `busybox nc, ${MIB} MiB, virtio-net, initramfs root`;
    return [
      { name: `TCP guest -> host ${MIB} MiB (user NAT)`, unit: 'MB/s', better: 'higher', virtus: v.up, virtusAlt: s.up, qemu: q.up, note },
      { name: `TCP host -> guest ${MIB} MiB (user NAT)`, unit: 'MB/s', better: 'higher', virtus: v.down, qemu: q.down, note },
      { name: 'ping 10.0.2.2 round trip', unit: 'ms', better: 'lower', virtus: v.ping, virtusAlt: s.ping, qemu: q.ping, note: 'busybox ping -c 20 -i 0.2, average' },
    ];
  },
};
