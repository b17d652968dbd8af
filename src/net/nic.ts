/**
 * NIC descriptions: QEMU's spelling of a network backend (`-nic`, `-netdev`, `-device
 * virtio-net-device,netdev=..`) parsed into plain data (JSON-safe, no host objects), the form
 * a machine description and a snapshot keep. Supported, as QEMU 7.2 spells them:
 *
 *   user[,id=ID][,net=10.0.2.0/24][,host=10.0.2.2][,dns=10.0.2.3][,dhcpstart=10.0.2.15]
 *       [,restrict=on|off][,hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...
 *       [,hostname=NAME]  and virtus's own [,resolver=HOST[:PORT]] (where DNS is relayed)
 *       [,wisp=ws://HOST:PORT/PATH/] (a Wisp relay carries the NAT's TCP and UDP)
 *   stream[,id=ID][,server=on|off],addr.type=inet,addr.host=HOST,addr.port=PORT
 *   stream[,id=ID][,server=on|off],addr.type=unix,addr.path=PATH
 *   dgram[,id=ID],remote.type=inet,remote.host=HOST,remote.port=PORT[,local.type=inet,local.host=H,local.port=P]
 *   dgram[,id=ID],local.type=unix,local.path=PATH[,remote.type=unix,remote.path=PATH]
 *
 * plus virtus's `switch=unix:PATH|tcp:HOST:PORT` (a stream client plugged into `virtus
 * switch`). With `--nic` each may add `mac=52:54:00:xx:xx:xx` and `model=virtio-net-device`.
 * Bad text is one VirtusError('BAD_NIC') naming the key.
 */
import { VirtusError } from '../util/errors.ts';
import { macString, parseIp, parseMac } from '../util/inet.ts';

/** A socket address as QEMU's `addr.*`, `local.*`, `remote.*` keys give it. */
export type SocketAddr = { type: 'inet'; host: string; port: number } | { type: 'unix'; path: string };

/** One forwarded port of the user NAT (`hostfwd=`). */
export interface HostFwd {
  proto: 'tcp' | 'udp';
  /** Host address to listen on ('' = all, as QEMU; default in virtus: 127.0.0.1 is not assumed). */
  hostAddr: string;
  hostPort: number;
  /** Guest address ('' = the DHCP address). */
  guestAddr: string;
  guestPort: number;
}

/** Options of the user NAT (addresses in dotted form). */
export interface UserOptions {
  net: string;
  prefix: number;
  host: string;
  dns: string;
  dhcpStart: string;
  restrict: boolean;
  hostfwd: HostFwd[];
  hostname: string;
  /** Where DNS queries are relayed: HOST:PORT, or '' for the host's own resolver. */
  resolver: string;
  /** A Wisp relay (ws://HOST:PORT/PATH/) to carry TCP and UDP instead of host sockets, or ''. */
  wisp: string;
}

/** The backends, as a machine description's `backend` field holds them. */
export type UserBackend = { type: 'user' } & UserOptions;
export type StreamBackend = { type: 'stream'; server: boolean; addr: SocketAddr };
export type DgramBackend = { type: 'dgram'; local: SocketAddr | null; remote: SocketAddr | null };
export type NicBackendSpec = UserBackend | StreamBackend | DgramBackend;

/**
 * A NIC: the virtio-net device's MAC and its backend. Plain data, the shape of the machine
 * description's `devices.nics[i]` (vmm's NicSpec, with the MAC always filled in).
 */
export interface NicDesc {
  mac: string;
  backend: NicBackendSpec;
}

function bad(message: string): never {
  throw new VirtusError('BAD_NIC', message, { exitCode: 2 });
}

/** Splits QEMU's `a=b,c=d` (",," is a literal comma); the first item may be a bare word. */
function items(text: string): Array<[string, string | null]> {
  return text.replace(/,,/g, '\0').split(',').map((p) => p.replace(/\0/g, ','))
    .map((p): [string, string | null] => {
      const eq = p.indexOf('=');
      return eq < 0 ? [p, null] : [p.slice(0, eq), p.slice(eq + 1)];
    });
}

function onOff(flag: string, key: string, v: string): boolean {
  if (v === 'on' || v === 'true' || v === 'yes') return true;
  if (v === 'off' || v === 'false' || v === 'no') return false;
  return bad(`${flag} ${key}: expected on or off, got '${v}'`);
}

function port(flag: string, what: string, v: string, allowZero = false): number {
  if (!/^[0-9]{1,5}$/.test(v) || Number(v) > 65535 || (!allowZero && Number(v) === 0)) bad(`${flag} ${what}: '${v}' is not a port number`);
  return Number(v);
}

/** `tcp:127.0.0.1:8080-:80` (QEMU's hostfwd rule). */
export function parseHostFwd(rule: string, flag = '--nic'): HostFwd {
  const m = /^(tcp|udp)?:([^:]*):([0-9]+)-([^:]*):([0-9]+)$/.exec(rule);
  if (!m) return bad(`${flag} hostfwd=${rule}: expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`);
  for (const a of [m[2]!, m[4]!]) if (a !== '' && parseIp(a) === null) bad(`${flag} hostfwd=${rule}: '${a}' is not an IPv4 address`);
  return { proto: (m[1] as 'tcp' | 'udp' | undefined) ?? 'tcp', hostAddr: m[2]!, hostPort: port(flag, 'hostfwd host port', m[3]!, true), guestAddr: m[4]!, guestPort: port(flag, 'hostfwd guest port', m[5]!) };
}

/** `unix:PATH` or `tcp:HOST:PORT`. */
export function parseSocketAddr(text: string, flag: string): SocketAddr {
  if (text.startsWith('unix:') && text.length > 5) return { type: 'unix', path: text.slice(5) };
  const m = /^tcp:(.*):([0-9]+)$/.exec(text);
  if (m && m[1] !== '') return { type: 'inet', host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: port(flag, 'port', m[2]!) };
  return bad(`${flag}: '${text}' is not unix:PATH or tcp:HOST:PORT`);
}

/** A socket address from QEMU's `PREFIX.type=..`, `PREFIX.host=..` keys (null when absent). */
function sockAddr(flag: string, kv: Map<string, string>, prefix: string): SocketAddr | null {
  const type = kv.get(`${prefix}.type`);
  const take = (k: string) => {
    const v = kv.get(`${prefix}.${k}`);
    kv.delete(`${prefix}.${k}`);
    return v;
  };
  kv.delete(`${prefix}.type`);
  if (type === undefined) return null;
  if (type === 'inet') {
    const host = take('host');
    const p = take('port');
    if (!host || p === undefined) bad(`${flag}: ${prefix}.type=inet needs ${prefix}.host and ${prefix}.port`);
    return { type: 'inet', host, port: port(flag, `${prefix}.port`, p, prefix === 'local') };
  }
  if (type === 'unix') {
    const path = take('path');
    if (!path) bad(`${flag}: ${prefix}.type=unix needs ${prefix}.path`);
    return { type: 'unix', path };
  }
  return bad(`${flag}: ${prefix}.type must be inet or unix, got '${type}'`);
}

/** A generated MAC: QEMU's first NIC address for the NAT; a random locally administered one otherwise. */
function defaultMac(kind: string, index: number, random: () => number): string {
  if (kind === 'user') return `52:54:00:12:34:${(0x56 + index).toString(16).padStart(2, '0').slice(-2)}`;
  const b = new Uint8Array([0x52, 0x54, 0x00, random() & 255, random() & 255, random() & 255]);
  return macString(b);
}

/**
 * Parses one `--nic` or `--netdev` value. `index` is the NIC's position (for QEMU's default
 * MAC); `random` gives bytes for a generated MAC (the result keeps it, so a restored or
 * migrated machine has the same address).
 */
export function parseNic(text: string, o: { flag?: string; index?: number; random?: () => number } = {}): NicDesc {
  return parseWithId(text, o).desc;
}

/** parseNic, and the `id=` (QEMU's netdev ID; `net<index>` when absent). */
function parseWithId(text: string, o: { flag?: string; index?: number; random?: () => number }): { id: string; desc: NicDesc } {
  const flag = o.flag ?? '--nic';
  const list = items(text);
  const [first, firstValue] = list[0]!;
  const kv = new Map<string, string>();
  let kind: string;
  if (first === 'switch' && firstValue !== null) {
    kind = 'switch';
    kv.set('switch', firstValue);
  } else {
    if (firstValue !== null || first === '') bad(`${flag} ${text}: start with the backend type (user, stream, dgram, switch=...)`);
    kind = first;
  }
  const fwd: HostFwd[] = [];
  for (const [k, v] of list.slice(1)) {
    if (v === null) bad(`${flag}: '${k}' is not key=value`);
    if (k === 'hostfwd') fwd.push(parseHostFwd(v, flag));
    else if (kv.has(k)) bad(`${flag}: ${k} given twice`);
    else kv.set(k, v);
  }
  const take = (k: string) => {
    const v = kv.get(k);
    kv.delete(k);
    return v;
  };
  const id = take('id') ?? `net${o.index ?? 0}`;
  const macText = take('mac');
  const model = take('model');
  if (model !== undefined && model !== 'virtio-net-device' && model !== 'virtio-net' && model !== 'virtio') bad(`${flag} model=${model}: virtus has only virtio-net-device`);
  if (macText !== undefined) {
    const m = parseMac(macText);
    if (!m) bad(`${flag} mac=${macText}: expected six hex bytes, e.g. 52:54:00:12:34:56`);
    if (m[0]! & 1) bad(`${flag} mac=${macText}: a multicast address cannot be a NIC's`);
  }
  const random = o.random ?? (() => Math.floor(Math.random() * 256));
  const mac = macText !== undefined ? macString(parseMac(macText)!) : defaultMac(kind, o.index ?? 0, random);
  let desc: NicDesc;
  if (kind === 'user') {
    const ip = (k: string, def: string) => {
      const v = take(k) ?? def;
      if (parseIp(v) === null) bad(`${flag} ${k}=${v}: not an IPv4 address`);
      return v;
    };
    const netText = take('net') ?? '10.0.2.0/24';
    const nm = /^([0-9.]+)(?:\/([0-9]{1,2}))?$/.exec(netText);
    if (!nm || parseIp(nm[1]!) === null || Number(nm[2] ?? 24) > 30 || Number(nm[2] ?? 24) < 8) bad(`${flag} net=${netText}: expected ADDR/PREFIX with a prefix from 8 to 30`);
    const restrictText = take('restrict');
    const resolver = take('resolver') ?? '';
    if (resolver !== '' && !/^[^:]+(:[0-9]{1,5})?$/.test(resolver)) bad(`${flag} resolver=${resolver}: expected HOST[:PORT]`);
    const wisp = take('wisp') ?? '';
    if (wisp !== '' && !/^wss?:\/\/[^/]+\//.test(wisp)) bad(`${flag} wisp=${wisp}: expected a ws://HOST:PORT/PATH/ URL`);
    desc = {
      mac,
      backend: {
        type: 'user', net: nm[1]!, prefix: Number(nm[2] ?? 24), host: ip('host', '10.0.2.2'), dns: ip('dns', '10.0.2.3'), dhcpStart: ip('dhcpstart', '10.0.2.15'),
        restrict: restrictText === undefined ? false : onOff(flag, 'restrict', restrictText), hostfwd: fwd, hostname: take('hostname') ?? '', resolver, wisp,
      },
    };
  } else if (kind === 'stream' || kind === 'switch') {
    let addr: SocketAddr | null;
    let server = false;
    if (kind === 'switch') addr = parseSocketAddr(take('switch')!, `${flag} switch`);
    else {
      const s = take('server');
      server = s === undefined ? false : onOff(flag, 'server', s);
      addr = sockAddr(flag, kv, 'addr');
      if (!addr) bad(`${flag} stream: addr.type=inet|unix is required`);
    }
    desc = { mac, backend: { type: 'stream', server, addr } };
  } else if (kind === 'dgram') {
    const local = sockAddr(flag, kv, 'local');
    const remote = sockAddr(flag, kv, 'remote');
    if (!local && !remote) bad(`${flag} dgram: give remote.* (and optionally local.*), or local.type=unix`);
    if (remote && !local && remote.type === 'unix') bad(`${flag} dgram: a unix remote needs a unix local.path too`);
    desc = { mac, backend: { type: 'dgram', local, remote } };
  } else {
    return bad(`${flag}: unknown backend '${kind}' (expected user, stream, dgram or switch=unix:PATH|tcp:HOST:PORT)`);
  }
  if (fwd.length && kind !== 'user') bad(`${flag}: hostfwd belongs to the user backend`);
  const left = [...kv.keys()];
  if (left.length) bad(`${flag} ${kind}: unknown key '${left[0]}'`);
  return { id, desc };
}

/**
 * QEMU's `-netdev TYPE,id=ID,...` values and the `-device virtio-net-device,netdev=ID[,mac=..]`
 * values that name them (the device's MAC wins). Every netdev becomes a NIC, named by a
 * -device or not (virtus has one NIC model); `first` is the index of the first (for MACs).
 */
export function parseNetdevs(netdevs: string[], devices: string[], first = 0): NicDesc[] {
  const parsed = netdevs.map((t, i) => parseWithId(t, { flag: '--netdev', index: first + i }));
  for (const text of devices) {
    const list = items(text);
    const [model, mv] = list[0]!;
    if (mv !== null || (model !== 'virtio-net-device' && model !== 'virtio-net')) bad(`--device ${text}: virtus knows only virtio-net-device,netdev=ID[,mac=..]`);
    const kv = new Map(list.slice(1).map(([k, v]) => [k, v ?? '']));
    const id = kv.get('netdev');
    const nic = parsed.find((n) => n.id === id);
    if (!nic) bad(`--device ${text}: no --netdev with id=${id ?? ''}`);
    for (const k of kv.keys()) if (k !== 'netdev' && k !== 'mac' && k !== 'id') bad(`--device ${text}: unknown key '${k}'`);
    const mac = kv.get('mac');
    if (mac !== undefined) {
      const m = parseMac(mac);
      if (!m || m[0]! & 1) bad(`--device mac=${mac}: expected a unicast MAC such as 52:54:00:12:34:56`);
      nic.desc.mac = macString(m);
    }
  }
  return parsed.map((p) => p.desc);
}
