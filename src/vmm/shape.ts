/**
 * A machine's shape: its MachineSpec without the host's files — what the guest can see
 * (memory, harts, how it booted, each device's guest-visible identity) and nothing that names
 * a host resource. A snapshot or a migration stream carries the shape, never a path: whoever
 * restores or receives the machine supplies the disks, folders and network backends
 * (`bindResources`), and the snapshot's disk identities then confirm they are the same disks.
 */
import { VirtusError } from '../util/errors.ts';
import { Fields } from './fields.ts';
import { MAX_HARTS, SERIAL_BYTES, type BootMode, type DiskSpec, type MachineSpec, type NicSpec, type ShareSpec } from './spec.ts';
import { RAM_MAX } from '../cpu/layout.ts';

export interface MachineShape {
  memory: number;
  harts: number;
  deterministic: boolean;
  boot: { mode: BootMode; append: string };
  devices: {
    disks: Array<{ serial: string; readonly: boolean }>;
    shares: Array<{ tag: string; readonly: boolean }>;
    nics: Array<{ mac: string }>;
    console: 'serial' | 'virtio';
  };
}

/** The host resources a restore is given: the user's disks, folders and NICs, in order. */
export interface Resources {
  disks: DiskSpec[];
  shares: ShareSpec[];
  nics: NicSpec[];
  engine: MachineSpec['engine'];
  /** RAM the user expects the machine to have (a restore refuses another size). */
  memory?: number;
  /**
   * The NICs take the MAC addresses given here, not the machine's: a clone's fresh identity
   * (its driver is asked to reset and read them, virtio-net's restored()).
   */
  freshMacs?: boolean;
}

/** The shape of `spec`; `macs` are the NICs' addresses as the machine uses them. */
export function shapeOf(spec: MachineSpec, macs: string[]): MachineShape {
  return {
    memory: spec.memory,
    harts: spec.harts,
    deterministic: spec.deterministic,
    boot: { mode: spec.boot.mode, append: spec.boot.append },
    devices: {
      disks: spec.devices.disks.map((d) => ({ serial: d.serial, readonly: d.readonly })),
      shares: spec.devices.shares.map((s) => ({ tag: s.tag, readonly: s.readonly })),
      nics: macs.map((mac) => ({ mac })),
      console: spec.devices.console,
    },
  };
}

/** Checks a shape read from a snapshot or stream (untrusted). */
export function parseShape(json: unknown, what: string): MachineShape {
  const f = new Fields(what, json, ['memory', 'harts', 'deterministic', 'boot', 'devices']);
  const memory = f.int('memory', { min: 4096, max: RAM_MAX });
  if (memory % 4096) f.fail('memory', 'must be a multiple of 4 KiB');
  const harts = f.int('harts', { min: 1, max: MAX_HARTS });
  const b = f.object('boot', true);
  b.only(['mode', 'append']);
  const d = f.object('devices', true);
  d.only(['disks', 'shares', 'nics', 'console']);
  return {
    memory,
    harts,
    deterministic: f.bool('deterministic'),
    boot: { mode: b.oneOf('mode', ['builtin', 'firmware', 'bare'] as const), append: b.string('append', { max: 4096 }) },
    devices: {
      disks: d.array('disks', 8, (x) => {
        x.only(['serial', 'readonly']);
        return { serial: x.string('serial', { max: SERIAL_BYTES }), readonly: x.bool('readonly') };
      }),
      shares: d.array('shares', 8, (x) => {
        x.only(['tag', 'readonly']);
        return { tag: x.string('tag', { min: 1, max: 64 }), readonly: x.bool('readonly') };
      }),
      nics: d.array('nics', 8, (x) => {
        x.only(['mac']);
        return { mac: x.string('mac', { min: 17, max: 17 }) };
      }),
      console: d.oneOf('console', ['serial', 'virtio'] as const),
    },
  };
}

/** How the host names each kind of resource, for the messages of a restore. */
export interface ResourceNames {
  disk: string;
  share: string;
  nic: string;
  memory: string;
  /** The whole message when the numbers of devices differ (default: in terms of the flags). */
  mismatch?: (want: number, got: number, what: string) => string;
}

/** What a restored machine's spec names as its boot files: they come with the snapshot, not from the host. */
export const FROM_SNAPSHOT = '<the snapshot>';

function refuse(message: string): never {
  throw new VirtusError('RESTORE_DEVICES', message, { exitCode: 2 });
}

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

/**
 * The spec of a machine of `shape` whose host resources are `given`: each disk, share and NIC
 * of the shape is bound, in order, to the one the user named. The counts must agree, and so
 * must what the guest sees of each (a read-only disk stays read-only); serials, tags and MAC
 * addresses come from the shape. `flag` names the option that gives each kind, for messages.
 */
export function bindResources(shape: MachineShape, given: Resources, flag: ResourceNames): MachineSpec {
  const want = shape.devices;
  if (given.memory !== undefined && given.memory !== shape.memory) {
    refuse(`the machine has ${shape.memory} bytes of RAM, not the ${given.memory} of ${flag.memory}`);
  }
  const check = (n: number, got: number, what: string, opt: string): void => {
    if (n === got) return;
    refuse(flag.mismatch?.(n, got, what) ?? `the machine has ${plural(n, what)}, but ${got === 0 ? `no ${opt} was given` : `${opt} was given ${plural(got, 'time')}`}: name ${n === 0 ? 'none' : `each in order with ${opt}`}`);
  };
  check(want.disks.length, given.disks.length, 'disk', flag.disk);
  check(want.shares.length, given.shares.length, 'shared folder', flag.share);
  check(want.nics.length, given.nics.length, 'network interface', flag.nic);
  const disks = given.disks.map((d, i) => {
    const w = want.disks[i]!;
    if (d.readonly && !w.readonly) refuse(`disk ${i} of the machine is read-write, but ${flag.disk} ${d.file} says readonly`);
    return { ...d, readonly: w.readonly, serial: w.serial };
  });
  const shares = given.shares.map((s, i) => ({ ...s, tag: want.shares[i]!.tag, readonly: want.shares[i]!.readonly }));
  const nics = given.nics.map((n, i) => ({ ...n, mac: given.freshMacs && n.mac !== undefined ? n.mac : want.nics[i]!.mac }));
  return {
    memory: shape.memory,
    harts: shape.harts,
    deterministic: shape.deterministic,
    engine: given.engine,
    // The boot images travel with the snapshot; the spec keeps only how the machine booted.
    boot: { mode: shape.boot.mode, append: shape.boot.append, ...(shape.boot.mode === 'firmware' ? { firmware: FROM_SNAPSHOT } : { kernel: FROM_SNAPSHOT }) },
    devices: { disks, shares, nics, console: want.console },
  };
}
