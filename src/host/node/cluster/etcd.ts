/**
 * The connection to etcd, through the `etcd3` client (gRPC; leases, watches, transactions and
 * the Election recipe). `etcd://HOST:PORT[,HOST:PORT…]` names the members; the client spreads
 * requests over them and moves on when one fails. Each unary call has a deadline, so a request
 * to a member that died (or to a cluster that is electing a leader) fails within a second and
 * is retried on another member instead of hanging: the daemon's lease renewals depend on it.
 */
import { VirtusError } from '../../../util/errors.ts';
import type { Etcd3 } from 'etcd3';

/** A unary request's deadline (ms); the client retries a failed one on another member. */
export const CALL_DEADLINE_MS = 1500;

/** The members named by `etcd://HOST:PORT[,HOST:PORT…]`, as the client takes them. */
export function parseClusterUrl(text: string, flag = '--cluster'): string[] {
  const m = /^etcd:\/\/(.+)$/.exec(text);
  if (!m) throw new VirtusError('BAD_FLAG', `${flag}: expected etcd://HOST:PORT[,HOST:PORT...], not "${text}"`, { exitCode: 2 });
  return m[1]!.split(',').map((h) => {
    const hp = /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+):(\d{1,5})$/.exec(h);
    if (!hp || Number(hp[2]) < 1 || Number(hp[2]) > 65535) {
      throw new VirtusError('BAD_FLAG', `${flag}: "${h}" is not HOST:PORT`, { exitCode: 2 });
    }
    return `http://${h}`;
  });
}

/** A client of the etcd cluster `url` names (etcd://...). */
export async function openEtcd(url: string, flag = '--cluster'): Promise<Etcd3> {
  const hosts = parseClusterUrl(url, flag);
  const { Etcd3 } = await import('etcd3');
  return new Etcd3({
    hosts,
    dialTimeout: CALL_DEADLINE_MS,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS }),
  });
}

/** An etcd failure as a VirtusError a user can act on. */
export function etcdError(e: unknown, what: string): VirtusError {
  if (e instanceof VirtusError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new VirtusError('CLUSTER_UNREACHABLE', `${what}: etcd did not answer (${message.split('\n')[0]}); is the cluster up and --cluster right?`);
}
