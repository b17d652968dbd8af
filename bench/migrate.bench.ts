/**
 * Live migration on loopback, virtus against QEMU 7.2 (`-incoming tcp:...` targets, the same
 * bare-metal guests, the same QMP commands and capabilities): an idle guest, and guests that
 * dirty a 128 MiB region at 50, 200 and 800 MB/s (test/guest/migrate/dirty.c, paced by the
 * machine timer), each migrated with auto-converge at QEMU's defaults (downtime-limit 300 ms,
 * max-bandwidth 128 MiB/s, throttle 20 % + 10 %). Per case: total time, downtime, bytes sent
 * and the highest throttle query-migrate showed, from query-migrate on the source once the
 * migration completed (virtus: from its last report before it handed the machine over).
 * A case that has not converged after MIGRATE_BENCH_S seconds (default 60) is cancelled and
 * shown as such.
 *
 * Not measured here yet: post-copy (virtus has no post-copy yet) and the gzip workload (it
 * needs the Linux guest on both sides).
 *
 * Run with `npm run bench -- migrate`.
 */
import { freePort } from '../test/support/migration.ts';
import { QmpMachine, type Json, type QmpClient } from '../test/support/qmp.ts';
import { buildGuest } from '../test/support/toolchain.ts';
import type { Benchmark, Row } from './harness.ts';

const LIMIT_MS = Number(process.env.MIGRATE_BENCH_S ?? '60') * 1000;
const MEMORY = '512M';

interface Result {
  converged: boolean;
  totalMs: number;
  downtimeMs: number;
  bytes: number;
  throttle: number;
}

const guest = (rate: number): string => buildGuest(`migrate-dirty-${rate}`, ['common/crt.S', 'migrate/dirty.c'], { cflags: [`-DRATE=${rate}`] });

async function negotiated(m: QmpMachine): Promise<QmpClient> {
  const q = await m.connect();
  await q.greeting();
  await q.execute('qmp_capabilities');
  return q;
}

async function migrate(kind: 'virtus' | 'qemu', elf: string): Promise<Result> {
  const args = ['-M', 'virt', '-m', MEMORY, '-nographic', '-bios', 'none'];
  const port = await freePort();
  // QEMU's target is started as its source is; virtus's takes the machine from the stream.
  const tgt = new QmpMachine(kind, [...(kind === 'qemu' ? [...args, '-kernel', elf] : ['-m', MEMORY, '-nographic']), '-incoming', `tcp:127.0.0.1:${port}`]);
  const src = new QmpMachine(kind, [...args, '-kernel', elf]);
  try {
    const q = await negotiated(src);
    await src.waitOutput(/ready\n/);
    if (kind === 'qemu') (await negotiated(tgt)).close();
    else {
      while (!/waiting for a machine/.test(tgt.stderr)) {
        if (tgt.exitCode !== undefined) throw new Error(`virtus's target ended: ${tgt.stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    // Let the guest reach its pace first.
    await new Promise((r) => setTimeout(r, 1000));
    await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'auto-converge', state: true }] });
    await q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
    const t0 = performance.now();
    let last: Json = {};
    let throttle = 0;
    for (;;) {
      const r = await q.execute('query-migrate').catch(() => null);
      if (!r) break; // virtus's source ends once the target has the machine
      const info = r.return as Json;
      if (info.status === 'failed') throw new Error(`${kind}: the migration failed: ${JSON.stringify(info)}`);
      throttle = Math.max(throttle, Number(info['cpu-throttle-percentage'] ?? 0));
      last = info;
      if (info.status === 'completed') break;
      if (performance.now() - t0 > LIMIT_MS) {
        await q.execute('migrate_cancel');
        return { converged: false, totalMs: performance.now() - t0, downtimeMs: NaN, bytes: Number((last.ram as Json | undefined)?.transferred ?? 0), throttle };
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    if (last.status !== 'completed') {
      // virtus: the source's last words hold the numbers.
      const m = /total (\d+) ms, downtime ([\d.]+) ms, \d+ rounds, (\d+) bytes sent \([^)]*\), throttle up to (\d+)%/.exec(src.stderr);
      if (!m) throw new Error(`${kind}: no report from the source: ${src.stderr}`);
      return { converged: true, totalMs: Number(m[1]), downtimeMs: Number(m[2]), bytes: Number(m[3]), throttle: Math.max(throttle, Number(m[4])) };
    }
    return { converged: true, totalMs: Number(last['total-time']), downtimeMs: Number(last.downtime), bytes: Number((last.ram as Json).transferred), throttle };
  } finally {
    await src.stop();
    await tgt.stop();
  }
}

export const bench: Benchmark = {
  name: 'migrate',
  async run(): Promise<Row[]> {
    const rows: Row[] = [];
    for (const [name, rate] of [['idle guest', 0], ['dirtying 50 MB/s', 50], ['dirtying 200 MB/s', 200], ['dirtying 800 MB/s', 800]] as const) {
      const elf = guest(rate);
      const v = await migrate('virtus', elf);
      const q = await migrate('qemu', elf);
      const note = (r: Result, who: string): string => (r.converged ? '' : `${who} did not converge in ${LIMIT_MS / 1000} s`);
      const notes = [note(v, 'virtus'), note(q, 'QEMU')].filter(Boolean).join('; ');
      const val = (r: Result, x: number): number | undefined => (r.converged ? x : undefined);
      rows.push(
        { name: `${name}: total time`, unit: 's', better: 'lower', virtus: val(v, v.totalMs / 1000), qemu: val(q, q.totalMs / 1000), note: notes },
        { name: `${name}: downtime`, unit: 'ms', better: 'lower', virtus: val(v, v.downtimeMs), qemu: val(q, q.downtimeMs) },
        { name: `${name}: bytes sent`, unit: 'MB', better: 'lower', virtus: v.bytes / 1e6, qemu: q.bytes / 1e6 },
        { name: `${name}: highest throttle`, unit: '%', better: 'lower', virtus: v.throttle, qemu: q.throttle },
      );
    }
    return rows;
  },
};
