import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVirtusError } from '../util/errors.ts';
import { parseMachineSpec, type MachineSpec } from './spec.ts';

const full: MachineSpec = {
  memory: 256 * 1024 * 1024,
  harts: 1,
  deterministic: true,
  engine: 'interp',
  boot: { mode: 'firmware', firmware: 'fw_dynamic.bin', kernel: 'Image', initrd: 'initrd.cpio', append: 'console=ttyS0 quiet' },
  devices: {
    disks: [
      { file: 'a.qcow2', format: 'qcow2', readonly: false, serial: 'disk-a', overlay: 'auto', locking: true },
      { file: 'b.img', readonly: true, serial: '', locking: false },
    ],
    shares: [{ path: '/srv/project', tag: 'host0', readonly: true }],
    nics: [
      {
        mac: '52:54:00:12:34:56',
        backend: {
          type: 'user', net: '10.0.2.0', prefix: 24, host: '10.0.2.2', dns: '10.0.2.3', dhcpStart: '10.0.2.15', restrict: false,
          hostfwd: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestAddr: '', guestPort: 80 }], hostname: '', resolver: '', wisp: '',
        },
      },
      { backend: { type: 'stream', server: true, addr: { type: 'unix', path: '/tmp/sw.sock' } } },
      { mac: '52:54:00:00:00:02', backend: { type: 'dgram', local: null, remote: { type: 'inet', host: '127.0.0.1', port: 6000 } } },
    ],
    console: 'virtio',
  },
};

/** Sets the field at `path` (dotted, with [i] for arrays) of a copy of `o` to `v` (undefined deletes). */
function mutate(o: unknown, path: string, v: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(o));
  const keys = path.replace(/\[(\d+)\]/g, '.$1').split('.');
  let at = copy;
  for (const k of keys.slice(0, -1)) at = at[k];
  if (v === undefined) delete at[keys.at(-1)!];
  else at[keys.at(-1)!] = v;
  return copy;
}

function refusal(json: unknown): string {
  try {
    parseMachineSpec(json);
  } catch (e) {
    assert.ok(isVirtusError(e, 'BAD_SPEC'), `expected BAD_SPEC, got ${String(e)}`);
    return (e as Error).message;
  }
  assert.fail('the spec was accepted');
}

describe('MachineSpec', () => {
  it('round-trips through JSON unchanged', () => {
    const parsed = parseMachineSpec(JSON.parse(JSON.stringify(full)));
    assert.deepEqual(parsed, full);
    assert.deepEqual(parseMachineSpec(JSON.parse(JSON.stringify(parsed))), parsed);
  });

  it('fills in defaults for what a request may leave out', () => {
    const s = parseMachineSpec({ boot: { kernel: 'Image' } });
    assert.deepEqual(s, {
      memory: 512 * 1024 * 1024, harts: 1, deterministic: false, engine: 'jit',
      boot: { mode: 'builtin', kernel: 'Image', append: '' },
      devices: { disks: [], shares: [], nics: [], console: 'serial' },
    });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['memory', 4095, /^machine\.memory: must be an integer from 4096/],
    ['memory', 4 * 1024 ** 3, /^machine\.memory: must be an integer/],
    ['memory', 4096 * 3 + 1, /^machine\.memory: must be a multiple of 4 KiB/],
    ['memory', '512M', /^machine\.memory: must be an integer/],
    ['harts', 0, /^machine\.harts: must be an integer from 1 to 8/],
    ['harts', 9, /^machine\.harts: must be an integer from 1 to 8/],
    ['deterministic', 'yes', /^machine\.deterministic: must be true or false/],
    ['engine', 'tcg', /^machine\.engine: must be one of jit, interp, got "tcg"/],
    ['boot', undefined, /^machine\.boot: is missing/],
    ['boot', [], /^machine\.boot: must be an object/],
    ['boot.mode', 'uefi', /^machine\.boot\.mode: must be one of builtin, firmware, bare/],
    ['boot.firmware', undefined, /^machine\.boot\.firmware: is required with mode "firmware"/],
    ['boot.kernel', 7, /^machine\.boot\.kernel: must be a string/],
    ['boot.append', 'x'.repeat(5000), /^machine\.boot\.append: must be at most 4096/],
    ['boot.initrd', 'a\0b', /^machine\.boot\.initrd: must not contain a NUL/],
    ['boot.extra', 1, /^machine\.boot\.extra: unknown field/],
    ['devices.disks', {}, /^machine\.devices\.disks: must be an array/],
    ['devices.disks[0].file', '', /^machine\.devices\.disks\[0\]\.file: must not be empty/],
    ['devices.disks[0].file', undefined, /^machine\.devices\.disks\[0\]\.file: is missing/],
    ['devices.disks[0].format', 'vmdk', /^machine\.devices\.disks\[0\]\.format: must be one of raw, qcow2, got "vmdk"/],
    ['devices.disks[0].readonly', 1, /^machine\.devices\.disks\[0\]\.readonly: must be true or false/],
    ['devices.disks[0].readonly', true, /^machine\.devices\.disks\[0\]\.overlay: does not go with readonly/],
    ['devices.disks[0].serial', 'x'.repeat(21), /^machine\.devices\.disks\[0\]\.serial: must be at most 20/],
    ['devices.disks[0].serial', 'tab\there', /^machine\.devices\.disks\[0\]\.serial: must be printable ASCII/],
    ['devices.disks[0].overlay', '', /^machine\.devices\.disks\[0\]\.overlay: must be "auto" or a path/],
    ['devices.disks[1].locking', 'off', /^machine\.devices\.disks\[1\]\.locking: must be true or false/],
    ['devices.disks[1].cache', 'none', /^machine\.devices\.disks\[1\]\.cache: unknown field/],
    ['devices.shares[0].path', '', /^machine\.devices\.shares\[0\]\.path: must not be empty/],
    ['devices.shares[0].tag', 'two words', /^machine\.devices\.shares\[0\]\.tag: must be printable ASCII without spaces/],
    ['devices.shares[0].readonly', null, /^machine\.devices\.shares\[0\]\.readonly: must be true or false/],
    ['devices.nics[0].mac', '52:54:00:12:34', /^machine\.devices\.nics\[0\]\.mac: "52:54:00:12:34" is not a MAC address/],
    ['devices.nics[0].mac', '53:54:00:12:34:56', /^machine\.devices\.nics\[0\]\.mac: must be a unicast address/],
    ['devices.nics[0].backend', undefined, /^machine\.devices\.nics\[0\]\.backend: is missing/],
    ['devices.nics[0].backend.type', 'tap', /^machine\.devices\.nics\[0\]\.backend\.type: must be one of user, stream, dgram, got "tap"/],
    ['devices.nics[0].backend.dns', '10.0.2.300', /^machine\.devices\.nics\[0\]\.backend\.dns: "10\.0\.2\.300" is not an IPv4 address/],
    ['devices.nics[0].backend.hostfwd[0].guestPort', 0, /^machine\.devices\.nics\[0\]\.backend\.hostfwd\[0\]\.guestPort: must be an integer from 1/],
    ['devices.nics[0].backend.hostfwd[0].proto', 'sctp', /^machine\.devices\.nics\[0\]\.backend\.hostfwd\[0\]\.proto: must be one of tcp, udp/],
    ['devices.nics[0].backend.tap', 'tap0', /^machine\.devices\.nics\[0\]\.backend\.tap: unknown field/],
    ['devices.nics[1].backend.addr.type', 'vsock', /^machine\.devices\.nics\[1\]\.backend\.addr\.type: must be one of inet, unix/],
    ['devices.nics[2].backend.remote', null, /^machine\.devices\.nics\[2\]\.backend: a dgram backend needs remote/],
    ['devices.console', 'vga', /^machine\.devices\.console: must be one of serial, virtio/],
    ['devices.gpu', {}, /^machine\.devices\.gpu: unknown field/],
    ['cpu', 'rv64', /^machine\.cpu: unknown field/],
  ];
  for (const [path, value, want] of bad) {
    it(`refuses ${path} = ${JSON.stringify(value)?.slice(0, 30) ?? 'missing'}, naming the field`, () => {
      assert.match(refusal(mutate(full, path, value)), want);
    });
  }

  it('refuses what is not an object at all', () => {
    assert.match(refusal(null), /^machine: must be an object, got null/);
    assert.match(refusal('{}'), /^machine: must be an object/);
  });
});
