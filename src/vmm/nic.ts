/**
 * A NIC's backend in a MachineSpec, read from untrusted JSON: the same plain data the command
 * line's `--nic`/`--netdev` parser makes (net/nic.ts), each field checked and named in errors.
 * Options of the user NAT that a request leaves out take QEMU's defaults.
 */
import type { HostFwd, NicBackendSpec, SocketAddr } from '../net/nic.ts';
import { parseIp } from '../util/inet.ts';
import { Fields } from './fields.ts';

const ip = (f: Fields, key: string, dflt: string): string => {
  const v = f.string(key, { dflt, max: 15 });
  if (parseIp(v) === null) f.fail(key, `"${v}" is not an IPv4 address`);
  return v;
};

function socketAddr(f: Fields): SocketAddr {
  const type = f.oneOf('type', ['inet', 'unix'] as const);
  if (type === 'unix') {
    f.only(['type', 'path']);
    return { type, path: f.string('path', { min: 1, max: 107 }) };
  }
  f.only(['type', 'host', 'port']);
  return { type, host: f.string('host', { min: 1, max: 255 }), port: f.int('port', { min: 0, max: 65535 }) };
}

function hostFwd(f: Fields): HostFwd {
  f.only(['proto', 'hostAddr', 'hostPort', 'guestAddr', 'guestPort']);
  const r: HostFwd = {
    proto: f.oneOf('proto', ['tcp', 'udp'] as const),
    hostAddr: f.string('hostAddr', { dflt: '', max: 15 }),
    hostPort: f.int('hostPort', { min: 0, max: 65535 }),
    guestAddr: f.string('guestAddr', { dflt: '', max: 15 }),
    guestPort: f.int('guestPort', { min: 1, max: 65535 }),
  };
  for (const k of ['hostAddr', 'guestAddr'] as const) if (r[k] !== '' && parseIp(r[k]) === null) f.fail(k, `"${r[k]}" is not an IPv4 address`);
  return r;
}

/** Checks `devices.nics[i].backend`. */
export function parseNicBackend(f: Fields): NicBackendSpec {
  const type = f.oneOf('type', ['user', 'stream', 'dgram'] as const);
  if (type === 'stream') {
    f.only(['type', 'server', 'addr']);
    return { type, server: f.bool('server', false), addr: socketAddr(f.object('addr', true)) };
  }
  if (type === 'dgram') {
    f.only(['type', 'local', 'remote']);
    const addr = (k: string): SocketAddr | null => (f.value[k] === null || f.value[k] === undefined ? null : socketAddr(f.object(k, true)));
    const local = addr('local');
    const remote = addr('remote');
    if (!local && !remote) f.fail(null, 'a dgram backend needs remote (and optionally local)');
    return { type, local, remote };
  }
  f.only(['type', 'net', 'prefix', 'host', 'dns', 'dhcpStart', 'restrict', 'hostfwd', 'hostname', 'resolver', 'wisp']);
  const resolver = f.string('resolver', { dflt: '', max: 262 });
  if (resolver !== '' && !/^[^:]+(:[0-9]{1,5})?$/.test(resolver)) f.fail('resolver', 'expected HOST[:PORT]');
  const wisp = f.string('wisp', { dflt: '', max: 2048 });
  if (wisp !== '' && !/^wss?:\/\/[^/]+\//.test(wisp)) f.fail('wisp', 'expected a ws://HOST:PORT/PATH/ URL');
  return {
    type,
    net: ip(f, 'net', '10.0.2.0'),
    prefix: f.int('prefix', { min: 8, max: 30, dflt: 24 }),
    host: ip(f, 'host', '10.0.2.2'),
    dns: ip(f, 'dns', '10.0.2.3'),
    dhcpStart: ip(f, 'dhcpStart', '10.0.2.15'),
    restrict: f.bool('restrict', false),
    hostfwd: f.array('hostfwd', 64, hostFwd),
    hostname: f.string('hostname', { dflt: '', max: 63 }),
    resolver,
    wisp,
  };
}

/** QEMU's MAC for NIC `index` when none is given: 52:54:00:12:34:56, then :57, ... */
export function defaultMac(index: number): string {
  return `52:54:00:12:34:${(0x56 + index).toString(16).padStart(2, '0')}`;
}
