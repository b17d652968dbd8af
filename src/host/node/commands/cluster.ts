/**
 * `virtus cluster <subcommand>`: the cluster of daemons coordinated through etcd (see
 * cluster/agent.ts). Each subcommand talks to etcd itself (`--cluster etcd://…`, else
 * $VIRTUS_CLUSTER); `status` can also ask a daemon of the cluster (`--host`, GET /cluster).
 * drain and rebalance wait until the scheduler and the daemons have done the work, printing
 * each machine that moved.
 */
import type { Etcd3 } from 'etcd3';
import { VirtusError } from '../../../util/errors.ts';
import { parseFlags, type Command } from '../command.ts';
import { etcdError, openEtcd } from '../cluster/etcd.ts';
import { cordon, removeVm, requestRebalance, setRunning, uncordon } from '../cluster/ops.ts';
import { readState } from '../cluster/state.ts';
import { readStatus, statusText, type ClusterStatus } from '../cluster/status.ts';
import { DaemonClient, daemonAddress } from '../daemon/client.ts';

const CLUSTER_HELP = `  --cluster etcd://HOST:PORT[,HOST:PORT...]
                       the cluster's etcd (default $VIRTUS_CLUSTER)`;

const HELP = `usage: virtus cluster <subcommand> [options]

The daemons started with 'virtus daemon --cluster etcd://... --node NAME' form a
cluster: machines declared with 'virtus create --cluster ...' (or POST /vms on
any of them) run on the node the elected scheduler chose.

subcommands:
  status [--json]        nodes and machines (--host asks a daemon instead)
  drain NODE [--no-wait] live-migrate every machine off NODE and keep it empty
  cordon NODE            NODE takes no new machine
  uncordon NODE          NODE takes machines again (an unfinished drain stops)
  rebalance [--threshold PERCENT]
                         move machines until no node holds more than PERCENT of
                         its memory (default 80)
  start NAME, stop NAME  start or stop a machine of the cluster
  rm [--force] NAME      delete a machine of the cluster (its disks stay)

${CLUSTER_HELP}`;

const OPTIONS = {
  cluster: { type: 'string' },
  host: { type: 'string' },
  json: { type: 'boolean' },
  'no-wait': { type: 'boolean' },
  threshold: { type: 'string' },
  force: { type: 'boolean', short: 'f' },
  help: { type: 'boolean', short: 'h' },
} as const;

function usage(message: string): VirtusError {
  return new VirtusError('BAD_FLAG', `cluster: ${message}`, { exitCode: 2 });
}

/** The etcd URL of a command: --cluster, else $VIRTUS_CLUSTER. */
export function clusterUrl(flag: string | undefined): string {
  const url = flag ?? process.env.VIRTUS_CLUSTER;
  if (!url) throw usage('name the cluster: --cluster etcd://HOST:PORT[,...] (or set VIRTUS_CLUSTER)');
  return url;
}

/** Runs `f` with a client of the cluster, closed afterwards; etcd failures become one-line errors. */
export async function withCluster<T>(url: string, what: string, f: (c: Etcd3) => Promise<T>): Promise<T> {
  const client = await openEtcd(url);
  try {
    return await f(client);
  } catch (e) {
    throw etcdError(e, what);
  } finally {
    client.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Prints machines as they change node, until `done` says the work is over (true) or failed (a message). */
async function follow(c: Etcd3, done: (s: Awaited<ReturnType<typeof readState>>) => true | string | null): Promise<void> {
  let where = new Map([...(await readState(c)).assigns].map(([n, a]) => [n, a.value.node] as const));
  for (;;) {
    const s = await readState(c);
    for (const [name, a] of s.assigns) {
      const was = where.get(name);
      if (was !== undefined && was !== a.value.node) console.log(`${name}\t${was} -> ${a.value.node}\t${a.value.reason}`);
    }
    where = new Map([...s.assigns].map(([n, a]) => [n, a.value.node] as const));
    const d = done(s);
    if (d === true) return;
    if (typeof d === 'string') throw new VirtusError('CLUSTER_STOPPED', d);
    await sleep(200);
  }
}

/** `virtus cluster`. */
export const clusterCommand: Command = {
  name: 'cluster',
  summary: 'the cluster of daemons: status, drain, rebalance',
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      console.log(HELP);
      return sub === undefined ? 2 : 0;
    }
    const { values: v, positionals } = parseFlags(`cluster ${sub}`, rest, OPTIONS, true);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const one = (what: string): string => {
      if (positionals.length !== 1) throw usage(`${sub}: name one ${what} (virtus cluster ${sub} ${what.toUpperCase()})`);
      return positionals[0]!;
    };
    switch (sub) {
      case 'status': {
        if (positionals.length) throw usage('status takes no arguments');
        const st = v.host !== undefined || (v.cluster === undefined && !process.env.VIRTUS_CLUSTER)
          ? await new DaemonClient(daemonAddress(v.host)).call<ClusterStatus>('GET', '/cluster')
          : await withCluster(clusterUrl(v.cluster), 'cluster status', readStatus);
        console.log(v.json ? JSON.stringify(st, null, 2) : statusText(st));
        return 0;
      }
      case 'drain': {
        const node = one('node');
        const start = performance.now();
        return withCluster(clusterUrl(v.cluster), 'drain', async (c) => {
          await cordon(c, node, true);
          if (v['no-wait']) return 0;
          const before = [...(await readState(c)).assigns.values()].filter((a) => a.value.node === node).length;
          await follow(c, (s) => {
            const k = s.cordons.get(node)?.value;
            if (!k) return `${node} was uncordoned before it was empty`;
            if (k.drain) return null;
            return k.error ? `drain of ${node} stopped: ${k.error}` : true;
          });
          console.log(`drained ${node}: ${before} machine(s) moved in ${((performance.now() - start) / 1000).toFixed(1)} s`);
          return 0;
        });
      }
      case 'cordon':
      case 'uncordon': {
        const node = one('node');
        await withCluster(clusterUrl(v.cluster), sub, (c) => (sub === 'cordon' ? cordon(c, node, false) : uncordon(c, node)));
        console.log(`${node}\t${sub === 'cordon' ? 'cordoned' : 'ready'}`);
        return 0;
      }
      case 'rebalance': {
        if (positionals.length) throw usage('rebalance takes no arguments');
        const pct = v.threshold === undefined ? 80 : Number(v.threshold.replace(/%$/, ''));
        if (!(pct > 0 && pct <= 100)) throw usage(`rebalance: --threshold ${v.threshold}: a percentage above 0, at most 100`);
        return withCluster(clusterUrl(v.cluster), 'rebalance', async (c) => {
          await requestRebalance(c, pct / 100);
          let moves = 0;
          await follow(c, (s) => {
            const r = s.rebalance?.value;
            if (!r) return 'the rebalance request was removed';
            moves = r.moves;
            return r.status === 'pending' ? null : r.status === 'done' ? true : `rebalance stopped: ${r.error ?? 'unknown'}`;
          });
          console.log(`rebalanced to ${pct}%: ${moves} machine(s) moved`);
          return 0;
        });
      }
      case 'start':
      case 'stop': {
        const name = one('name');
        await withCluster(clusterUrl(v.cluster), sub, (c) => setRunning(c, name, sub === 'start'));
        console.log(`${name}\t${sub === 'start' ? 'running' : 'stopped'}`);
        return 0;
      }
      case 'rm': {
        if (!positionals.length) throw usage('rm: name a machine');
        await withCluster(clusterUrl(v.cluster), 'rm', async (c) => {
          for (const name of positionals) {
            await removeVm(c, name, v.force === true);
            console.log(name);
          }
        });
        return 0;
      }
      default:
        throw usage(`unknown subcommand '${sub}' (try 'virtus cluster --help')`);
    }
  },
};
