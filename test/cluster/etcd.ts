/**
 * Test support: a real etcd cluster (Debian's etcd-server) of N members on loopback ports chosen
 * at run time, each with its data directory under a scratch directory, started and stopped by
 * the test. A member can be killed (the cluster's leader, for the tests that lose it) and its
 * leader found through etcdctl. Raft timing is shortened (heartbeat 50 ms, election 500 ms) so
 * a lost leader is replaced within a second, as a test wants.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../net/support.ts';

/** One etcd member. */
export interface Member {
  name: string;
  client: string;
  peer: string;
  child: ChildProcess;
  exited: Promise<void>;
  log(): string;
}

/** A running etcd cluster. */
export interface EtcdCluster {
  members: Member[];
  /** etcd://HOST:PORT,HOST:PORT,... of the members still running. */
  url(): string;
  /** The member that leads the Raft group now. */
  leader(): Member;
  /** SIGKILL of one member; resolves once it is gone. */
  kill(m: Member): Promise<void>;
  /** Stops every member. */
  stop(): Promise<void>;
}

/** Starts an etcd cluster of `n` members in `dir`; resolves once every member serves. */
export async function startEtcd(dir: string, n = 3): Promise<EtcdCluster> {
  const ports: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) ports.push([await freePort(), await freePort()]);
  const names = ports.map((_, i) => `e${i}`);
  const token = `virtus-test-${ports[0]![0]}`;
  const initial = names.map((nm, i) => `${nm}=http://127.0.0.1:${ports[i]![1]}`).join(',');
  const members: Member[] = names.map((name, i) => {
    const [cp, pp] = ports[i]!;
    const client = `http://127.0.0.1:${cp}`;
    const peer = `http://127.0.0.1:${pp}`;
    const data = join(dir, name);
    mkdirSync(data, { recursive: true });
    const child = spawn('etcd', [
      '--name', name, '--data-dir', data,
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', token,
      '--heartbeat-interval', '50', '--election-timeout', '500',
      '--logger', 'zap', '--log-level', 'warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => void (log = (log + d).slice(-20000)));
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    return { name, client, peer, child, exited, log: () => log };
  });
  const alive = (): Member[] => members.filter((m) => m.child.exitCode === null && m.child.signalCode === null);
  const ctl = (args: string[]) => spawnSync('etcdctl', ['--endpoints', alive().map((m) => m.client).join(','), ...args], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, timeout: 10_000 });
  const cluster: EtcdCluster = {
    members,
    url: () => `etcd://${alive().map((m) => m.client.slice('http://'.length)).join(',')}`,
    leader() {
      const r = ctl(['endpoint', 'status', '-w', 'json']);
      if (r.status !== 0) throw new Error(`etcdctl endpoint status: ${r.stderr}`);
      const list = JSON.parse(r.stdout) as Array<{ Endpoint: string; Status: { header: { member_id: number | string }; leader: number | string } }>;
      const lead = list.find((e) => String(e.Status.header.member_id) === String(e.Status.leader));
      const m = lead && members.find((x) => x.client === lead.Endpoint);
      if (!m) throw new Error(`no etcd leader in ${r.stdout}`);
      return m;
    },
    async kill(m) {
      m.child.kill('SIGKILL');
      await m.exited;
    },
    async stop() {
      for (const m of members) if (m.child.exitCode === null) m.child.kill('SIGTERM');
      await Promise.all(members.map((m) => m.exited));
    },
  };
  // Serving: a write goes through (it needs a quorum and a leader).
  const end = Date.now() + 30_000;
  for (;;) {
    const r = ctl(['put', '/virtus-test/ready', '1']);
    if (r.status === 0) break;
    if (Date.now() > end) {
      await cluster.stop();
      throw new Error(`etcd did not start: ${r.stderr}\n${members.map((m) => m.log()).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return cluster;
}
