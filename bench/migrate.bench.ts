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
 * The gzip workload is the default Linux guest on both sides (each with its own firmware, as
 * the linux bench boots them): its shell compresses 32 MiB of random bytes with `gzip -9` in a
 * loop into tmpfs, and the migration starts once the first pass is done; the target's console
 * must show a later pass, so the guest ran on after the move.
 *
 * Post-copy cases (postcopy-ram on both sides, no auto-converge) start the same pre-copy and
 * switch with migrate-start-postcopy once 32 MB have gone; they add the pages the target asked
 * for on demand (QEMU's postcopy-requests; virtus's from its source's last line). Downtime is
 * from the source's stop to the target running.
 *
 * Run with `npm run bench -- migrate` (MIGRATE_BENCH_CASES=gzip,idle picks cases by name).
 */
import { ensureDefaultGuest, stderrProgress, type DefaultGuest } from '../src/host/node/guest/index.ts';
import { PROMPT } from '../test/support/guest.ts';
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
  /** Post-copy: pages the target asked for. */
  requests?: number;
}

type Mode = 'precopy' | 'postcopy';

const guest = (rate: number): string => buildGuest(`migrate-dirty-${rate}`, ['common/crt.S', 'migrate/dirty.c'], { cflags: [`-DRATE=${rate}`] });

async function negotiated(m: QmpMachine): Promise<QmpClient> {
  const q = await m.connect();
  await q.greeting();
  await q.execute('qmp_capabilities');
  return q;
}

/** A guest to migrate: how each side boots it, and how to bring it to its steady work. */
interface Workload {
  /** The source's arguments (QEMU's target gets the same, virtus's only the memory size). */
  args(kind: 'virtus' | 'qemu'): string[];
  /** Resolves once the guest does its steady work. */
  started(src: QmpMachine): Promise<void>;
  /** Resolves once the target shows the guest working on after the move (past the source's last output). */
  resumed?(tgt: QmpMachine, src: QmpMachine): Promise<void>;
}

/** A bare-metal guest dirtying memory at `rate` MB/s (0: idle). */
function dirtying(rate: number): Workload {
  const elf = guest(rate);
  return {
    args: () => ['-M', 'virt', '-m', MEMORY, '-nographic', '-bios', 'none', '-kernel', elf],
    started: async (src) => {
      await src.waitOutput(/ready\n/);
      // Let the guest reach its pace first.
      await new Promise((r) => setTimeout(r, 1000));
    },
  };
}

/** The default Linux guest compressing 32 MiB with gzip -9 over and over. */
function gzipLoop(g: DefaultGuest): Workload {
  return {
    args: (kind) => [
      '-M', 'virt', '-m', MEMORY, '-nographic', ...(kind === 'qemu' ? ['-bios', g.opensbi] : []),
      '-kernel', g.kernel, '-initrd', g.initrd, '-append', 'console=ttyS0',
    ],
    started: async (src) => {
      await src.waitOutput(new RegExp(PROMPT));
      src.type('echo 1 > /proc/sys/kernel/printk; dd if=/dev/urandom of=/tmp/x bs=1M count=32 2>/dev/null; ' +
        'n=0; while :; do gzip -9 -c /tmp/x > /tmp/x.gz; n=$((n+1)); echo "gzip-pass-$n"; done');
      await src.waitOutput(/gzip-pass-1\r?\n/);
    },
    resumed: async (tgt, src) => {
      const last = Math.max(0, ...[...src.output.matchAll(/gzip-pass-(\d+)/g)].map((m) => Number(m[1])));
      await tgt.waitOutput(new RegExp(`gzip-pass-${last + 1}\\r?\\n`));
    },
  };
}

async function migrate(kind: 'virtus' | 'qemu', w: Workload, mode: Mode = 'precopy'): Promise<Result> {
  const port = await freePort();
  const postcopy = mode === 'postcopy';
  // QEMU's target is started as its source is; virtus's takes the machine from the stream.
  const tgt = new QmpMachine(kind, [
    ...(kind === 'qemu' ? w.args(kind) : ['-m', MEMORY, '-nographic', ...(postcopy ? ['--migrate-capability', 'postcopy-ram'] : [])]),
    '-incoming', `tcp:127.0.0.1:${port}`,
  ]);
  const src = new QmpMachine(kind, w.args(kind));
  try {
    const q = await negotiated(src);
    await w.started(src);
    if (kind === 'qemu') {
      const t = await negotiated(tgt);
      if (postcopy) await t.execute('migrate-set-capabilities', { capabilities: [{ capability: 'postcopy-ram', state: true }] });
      t.close();
    } else {
      while (!/waiting for a machine/.test(tgt.stderr)) {
        if (tgt.exitCode !== undefined) throw new Error(`virtus's target ended: ${tgt.stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await q.execute('migrate-set-capabilities', { capabilities: [{ capability: postcopy ? 'postcopy-ram' : 'auto-converge', state: true }] });
    await q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
    const t0 = performance.now();
    let last: Json = {};
    let throttle = 0;
    let switched = false;
    for (;;) {
      const r = await q.execute('query-migrate').catch(() => null);
      if (!r) break; // virtus's source ends once the target has the machine
      const info = r.return as Json;
      if (info.status === 'failed') throw new Error(`${kind}: the migration failed: ${JSON.stringify(info)}`);
      if (postcopy && !switched && info.status === 'active' && Number((info.ram as Json | undefined)?.transferred ?? 0) >= 32e6) {
        await q.execute('migrate-start-postcopy');
        switched = true;
      }
      throttle = Math.max(throttle, Number(info['cpu-throttle-percentage'] ?? 0));
      last = info;
      if (info.status === 'completed') break;
      if (performance.now() - t0 > LIMIT_MS) {
        await q.execute('migrate_cancel');
        return { converged: false, totalMs: performance.now() - t0, downtimeMs: NaN, bytes: Number((last.ram as Json | undefined)?.transferred ?? 0), throttle };
      }
      await new Promise((res) => setTimeout(res, postcopy ? 20 : 100));
    }
    let r: Result;
    if (last.status !== 'completed') {
      // virtus: the source's last words hold the numbers.
      await src.exited;
      const m = /total (\d+) ms, downtime ([\d.]+) ms, \d+ rounds, (\d+) bytes sent \([^)]*\), throttle up to (\d+)%/.exec(src.stderr);
      if (!m) throw new Error(`${kind}: no report from the source: ${src.stderr}`);
      const asked = /post-copy, (\d+) pages asked for/.exec(src.stderr);
      r = { converged: true, totalMs: Number(m[1]), downtimeMs: Number(m[2]), bytes: Number(m[3]), throttle: Math.max(throttle, Number(m[4])), ...(asked ? { requests: Number(asked[1]) } : {}) };
    } else {
      const ram = last.ram as Json;
      // QEMU 7.2's query-migrate after a post-copy gives a downtime longer than the whole migration (measured from an unset start): not a number to show.
      const downtime = Number(last.downtime);
      r = {
        converged: true, totalMs: Number(last['total-time']), downtimeMs: downtime <= Number(last['total-time']) ? downtime : NaN, bytes: Number(ram.transferred), throttle,
        ...(postcopy ? { requests: Number(ram['postcopy-requests'] ?? 0) } : {}),
      };
    }
    await w.resumed?.(tgt, src);
    return r;
  } finally {
    await src.stop();
    await tgt.stop();
  }
}

export const bench: Benchmark = {
  name: 'migrate',
  async run(): Promise<Row[]> {
    const rows: Row[] = [];
    const g = await ensureDefaultGuest({ progress: stderrProgress() });
    const cases: Array<[string, () => Workload, Mode]> = [
      ['idle guest', () => dirtying(0), 'precopy'], ['dirtying 50 MB/s', () => dirtying(50), 'precopy'], ['dirtying 200 MB/s', () => dirtying(200), 'precopy'],
      ['dirtying 800 MB/s', () => dirtying(800), 'precopy'], ['gzip -9 in Linux', () => gzipLoop(g), 'precopy'],
      ['post-copy dirtying 800 MB/s', () => dirtying(800), 'postcopy'], ['post-copy gzip -9 in Linux', () => gzipLoop(g), 'postcopy'],
    ];
    const only = process.env.MIGRATE_BENCH_CASES?.split(',');
    for (const [name, workload, mode] of cases) {
      if (only && !only.some((o) => name.includes(o))) continue;
      const w = workload();
      const v = await migrate('virtus', w, mode);
      const q = await migrate('qemu', w, mode);
      const note = (r: Result, who: string): string => (r.converged ? '' : `${who} did not converge in ${LIMIT_MS / 1000} s`);
      const notes = [note(v, 'virtus'), note(q, 'QEMU')].filter(Boolean).join('; ');
      const val = (r: Result, x: number): number | undefined => (r.converged ? x : undefined);
      rows.push(
        { name: `${name}: total time`, unit: 's', better: 'lower', virtus: val(v, v.totalMs / 1000), qemu: val(q, q.totalMs / 1000), note: notes },
        {
          name: `${name}: downtime`, unit: 'ms', better: 'lower', virtus: val(v, v.downtimeMs), qemu: Number.isNaN(q.downtimeMs) ? undefined : val(q, q.downtimeMs),
          ...(mode === 'postcopy' && q.converged && Number.isNaN(q.downtimeMs) ? { note: 'QEMU reports no usable downtime for post-copy' } : {}),
        },
        // Bytes of a migration that gave up are no measure of one that ended: shown in the note only.
        {
          name: `${name}: bytes sent`, unit: 'MB', better: 'lower', virtus: val(v, v.bytes / 1e6), qemu: val(q, q.bytes / 1e6),
          note: [v, q].map((r, i) => (r.converged ? '' : `${i ? 'QEMU' : 'virtus'}: ${(r.bytes / 1e6).toFixed(0)} MB in ${LIMIT_MS / 1000} s without converging`)).filter(Boolean).join('; '),
        },
        ...(mode === 'postcopy'
          ? [{ name: `${name}: pages asked for`, unit: 'pages', better: 'lower' as const, virtus: v.requests, qemu: q.requests }]
          : [{ name: `${name}: highest throttle`, unit: '%', better: 'lower' as const, virtus: v.throttle, qemu: q.throttle }]),
      );
    }
    return rows;
  },
};
