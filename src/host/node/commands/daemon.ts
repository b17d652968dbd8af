/** `virtus daemon`: many machines on one host, each in its own worker thread, behind an HTTP API. */
import { hostname, totalmem } from 'node:os';
import { VirtusError } from '../../../util/errors.ts';
import { formatSize, parseSize } from '../../../util/size.ts';
import { parseFlags, type Command } from '../command.ts';
import { buildApi } from '../daemon/api.ts';
import { Daemon } from '../daemon/daemon.ts';
import { ClusterAgent } from '../cluster/agent.ts';
import { LeaseGate } from '../cluster/lease-gate.ts';
import { parseClusterUrl } from '../cluster/etcd.ts';
import { NAME } from '../cluster/model.ts';
import { Listeners, parseListen } from '../daemon/listen.ts';
import { defaultStateDir, StateDir } from '../daemon/state-dir.ts';

/** The daemon's version (GET /info). */
export const VERSION = '0.1.0';

const HELP = `usage: virtus daemon [options]

Runs machines in the background, each in its own thread, driven through an HTTP
API (described by /openapi.json; docs/openapi.json in the sources). The virtus
commands ps, create, start, stop, pause, resume, rm, console, logs, snapshot and
migrate are its clients.

  --listen unix:PATH      serve the API on a unix socket (mode 0600); default
                          <state-dir>/daemon.sock when no --listen is given
  --listen tcp:HOST:PORT  serve the API on TCP; every request must carry
                          'Authorization: Bearer TOKEN' (<state-dir>/token)
                          --listen may be given several times
  --state-dir DIR         machine definitions, overlays, snapshots, the token
                          (default $VIRTUS_STATE_DIR, else $XDG_STATE_HOME/virtus,
                          else ~/.local/state/virtus)
  --max-memory SIZE       guest RAM all running machines may hold together
                          (default 80% of the host's memory)
  --cluster etcd://HOST:PORT[,HOST:PORT...]
                          join a cluster coordinated through etcd: machines are
                          declared cluster-wide (POST /vms, virtus create
                          --cluster) and run on the node the scheduler chose
  --node NAME             this daemon's name in the cluster (default: hostname)
  --lease-ttl SECONDS     the node's etcd lease (default 5): a node silent this
                          long is dead and its restart:always machines start
                          elsewhere; it stops them itself well before
  --address HOST          where other nodes reach this one: migrations to it
                          listen there (default 127.0.0.1)
  -h, --help              show this help

Machines whose restart policy is 'always' (and 'on-failure' ones that were running)
start with the daemon. SIGTERM or SIGINT stops every machine (their disks flushed)
and the daemon.`;

const OPTIONS = {
  listen: { type: 'string', multiple: true },
  'state-dir': { type: 'string' },
  'max-memory': { type: 'string' },
  cluster: { type: 'string' },
  node: { type: 'string' },
  'lease-ttl': { type: 'string' },
  address: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `virtus daemon`. */
export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'run machines in the background behind an HTTP API',
  async run(argv) {
    const { values: v } = parseFlags('daemon', argv, OPTIONS);
    if (v.help) {
      console.log(HELP);
      return 0;
    }
    const maxMemory = v['max-memory'] !== undefined ? parseSize(v['max-memory'], '--max-memory', 'M') : Math.floor((totalmem() * 0.8) / 1048576) * 1048576;
    if (maxMemory < 4096) throw new VirtusError('BAD_FLAG', `daemon: --max-memory ${v['max-memory']}: too small for any machine`, { exitCode: 2 });
    const cluster = v.cluster;
    if (cluster !== undefined) parseClusterUrl(cluster);
    else if (v.node !== undefined || v['lease-ttl'] !== undefined || v.address !== undefined) {
      throw new VirtusError('BAD_FLAG', 'daemon: --node, --lease-ttl and --address go with --cluster', { exitCode: 2 });
    }
    const node = v.node ?? hostname().split('.')[0]!;
    if (!NAME.test(node)) throw new VirtusError('BAD_FLAG', `daemon: --node "${node}": use letters, digits, '_', '.', '-'`, { exitCode: 2 });
    const ttl = v['lease-ttl'] === undefined ? 5 : Number(v['lease-ttl']);
    if (!Number.isInteger(ttl) || ttl < 2 || ttl > 3600) throw new VirtusError('BAD_FLAG', `daemon: --lease-ttl ${v['lease-ttl']}: whole seconds from 2 to 3600`, { exitCode: 2 });
    const state = new StateDir(v['state-dir'] ?? defaultStateDir());
    const listen = (v.listen?.length ? v.listen : [`unix:${state.socket}`]).map((t) => parseListen(t));
    state.open();
    const log = (line: string): void => void process.stderr.write(line + '\n');
    const gate = cluster !== undefined ? new LeaseGate() : undefined;
    const daemon = new Daemon({ state, maxMemory, log, cluster: cluster !== undefined, ...(gate ? { lease: gate.buffer } : {}) });
    const listeners = new Listeners();
    let agent: ClusterAgent | null = null;
    try {
      await buildApi({ daemon, version: VERSION, token: state.token(), isTcp: listeners.isTcp, cluster: () => agent }, listeners.factory);
      await listeners.listen(listen);
      await daemon.load();
      if (cluster !== undefined) {
        agent = await ClusterAgent.join({ url: cluster, node, ttl, address: v.address ?? '127.0.0.1', api: listeners.addresses, daemon, gate: gate!, log });
      }
    } catch (e) {
      await listeners.close();
      await daemon.shutdown();
      state.close();
      throw e;
    }
    log(`virtus daemon: listening on ${listeners.addresses.join(' ')} (state ${state.root}, max memory ${formatSize(maxMemory)}${agent ? `, node ${node} of ${cluster}` : ''})`);
    const code = await new Promise<number>((resolve) => {
      const stop = (sig: string): void => {
        log(`virtus daemon: ${sig}: stopping the machines`);
        resolve(0);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await listeners.close();
    // Its machines stop before its lease goes: no other node starts them while they run here.
    agent?.pause();
    await daemon.shutdown();
    await agent?.leave();
    state.close();
    log('virtus daemon: stopped');
    // The etcd client keeps retry and keepalive timers of an etcd it could not say goodbye to
    // (the campaign's lease, a member that is gone): everything that matters is closed, so
    // those are not waited for.
    if (agent) setTimeout(() => process.exit(code), 200).unref();
    return code;
  },
};
