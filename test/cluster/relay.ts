/**
 * A TCP relay in front of each member of an etcd cluster, run as its own process by
 * support.ts's etcdRelay: `node --import tsx relay.ts etcd://H:P,...` listens on a loopback port
 * per member and prints `etcd://…` naming them. Lines on stdin: `cut` ends every relayed
 * connection and refuses new ones, `heal` lets connections through again; each is confirmed
 * with `cut done`/`heal done` on stdout. It exits when stdin closes.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

let open = true;
const sockets = new Set<Socket>();
const servers: Server[] = [];
const listened: string[] = [];
for (const member of process.argv[2]!.slice('etcd://'.length).split(',')) {
  const at = member.lastIndexOf(':');
  const host = member.slice(0, at);
  const port = Number(member.slice(at + 1));
  const server = createServer((c) => {
    if (!open) return void c.destroy();
    const up = connect(port, host);
    for (const s of [c, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    c.pipe(up).pipe(c);
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  listened.push(`127.0.0.1:${(server.address() as AddressInfo).port}`);
}
process.stdout.write(`etcd://${listened.join(',')}\n`);
const rl = createInterface({ input: process.stdin });
rl.on('line', (cmd) => {
  if (cmd === 'cut') {
    open = false;
    for (const s of sockets) s.destroy();
  } else if (cmd === 'heal') {
    open = true;
  } else {
    return;
  }
  process.stdout.write(`${cmd} done\n`);
});
rl.on('close', () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});
