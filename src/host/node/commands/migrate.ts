/**
 * `virtus migrate NAME --to HOST`: live-migrates a machine between two daemons, the way
 * libvirt splits it: prepare on the target (POST /vms/incoming: a machine that waits, with the
 * source's disks as shared storage), perform on the source (POST /vms/NAME/migrate to the
 * address the target listens on), and follow the source's events until it completed or failed
 * (a failed migration leaves the machine running on the source and the waiting one is deleted).
 */
import { VirtusError } from '../../../util/errors.ts';
import type { MigrationInfo } from '../../../vmm/actions.ts';
import { parseFlags, type Command } from '../command.ts';
import { addressText, DaemonClient, daemonAddress } from '../daemon/client.ts';
import type { MachineInfo } from '../daemon/machine.ts';

const HELP = `usage: virtus migrate NAME --to HOST [--host HOST]

Moves the running machine NAME to the daemon at --to (unix:PATH or tcp:HOST:PORT)
while it runs. Its disks must be reachable there under the same paths (shared
storage). On TCP the target's token is $VIRTUS_TO_TOKEN, else as for --host.`;

/** `virtus migrate`. */
export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'live-migrate a machine to another daemon',
  async run(argv) {
    const { values: v, positionals } = parseFlags('migrate', argv, { host: { type: 'string' }, to: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length !== 1 || v.to === undefined) throw new VirtusError('BAD_FLAG', 'migrate: usage: virtus migrate NAME --to HOST', { exitCode: 2 });
    const ref = encodeURIComponent(positionals[0]!);
    const src = new DaemonClient(daemonAddress(v.host));
    const dstAddress = daemonAddress(v.to, { ...process.env, ...(process.env.VIRTUS_TO_TOKEN ? { VIRTUS_TOKEN: process.env.VIRTUS_TO_TOKEN } : {}) });
    const dst = new DaemonClient(dstAddress);
    const m = await src.call<MachineInfo>('GET', `/vms/${ref}`);
    if (!m.spec) throw new VirtusError('VMM_STATE', `migrate: ${m.name} has not arrived yet`);
    const names = new Set((await dst.call<{ machines: MachineInfo[] }>('GET', '/vms')).machines.map((x) => x.name));
    const target = await dst.call<{ machine: MachineInfo; uri: string }>('POST', '/vms/incoming', {
      ...(names.has(m.name) ? {} : { name: m.name }),
      disks: m.spec.devices.disks,
      restart: m.restart,
    });
    let result: MigrationInfo | null = null;
    const abort = new AbortController();
    // The end: the machine stopped here (migrated), or the migration failed and it runs on.
    const done = src.events(`/vms/${ref}/events`, (type, data) => {
      if (type === 'stop') return true;
      if (type !== 'migration') return false;
      result = data.info as MigrationInfo;
      return result.status === 'failed';
    }, abort.signal).catch((e: unknown) => {
      if (!abort.signal.aborted) throw e;
    });
    try {
      await src.call('POST', `/vms/${ref}/migrate`, { to: target.uri });
      await done;
    } catch (e) {
      abort.abort();
      await dst.call('DELETE', `/vms/${target.machine.id}?force=true`).catch(() => {});
      throw e;
    }
    const r = result === null ? null : (await src.call<MachineInfo>('GET', `/vms/${ref}`)).migration;
    if (!r || r.status !== 'completed') {
      await dst.call('DELETE', `/vms/${target.machine.id}?force=true`).catch(() => {});
      throw new VirtusError('MIGRATE_FAILED', `migrate: ${r?.error ?? 'the source stopped reporting'} (the machine runs on at the source)`);
    }
    console.log(`${m.name} -> ${addressText(dstAddress)} as ${target.machine.name}: ${r.totalMs} ms, downtime ${r.downtimeMs} ms, ${r.rounds} rounds, ${r.bytes} bytes`);
    return 0;
  },
};
