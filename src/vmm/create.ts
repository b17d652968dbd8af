/**
 * The three ways a Vm comes to be: booted from a spec, restored from a snapshot, or received
 * from another host by live migration. A restored or received machine is built from the shape
 * its snapshot or stream carries, bound to host resources the caller names (shape.ts): nothing
 * the file or the stream says is opened.
 */
import { randomGenerationId } from '../devices/vmgenid/vmgenid.ts';
import { migrateIn, type IncomingLink } from '../machine/migrate.ts';
import { gateOf, type PageReceiver } from '../machine/migrate-postcopy.ts';
import { openSnapshot, snapshotConfig, type SnapshotConfig } from '../machine/snapshot.ts';
import type { VirtBoard } from '../machine/virt.ts';
import { VirtusError } from '../util/errors.ts';
import { attachDevices, bootOptions, buildBoard, newBoard, type BuiltMachine, type MachineIo } from './build.ts';
import type { VmHost } from './host.ts';
import { bindResources, parseShape, type MachineShape, type ResourceNames, type Resources } from './shape.ts';
import type { MachineSpec } from './spec.ts';
import { Emitter, Vm, type VmOptions } from './vm.ts';

/** How the host names each kind of resource, for the messages of a restore. */
export type ResourceFlags = ResourceNames;

function emitter(o: VmOptions): Emitter {
  const e = new Emitter();
  if (o.on) e.on(o.on);
  return e;
}

/** Console output and warnings as the machine's events (warnings also to the host's log). */
function io(host: VmHost, e: Emitter, o: VmOptions, deterministic: () => boolean): MachineIo {
  const room = o.outputRoom;
  return {
    output: (bytes) => e.emit({ type: 'output', bytes }),
    // A deterministic guest must not see the host's pace: its run loop waits instead (Vm).
    ...(room ? { room: () => (deterministic() ? Infinity : room()) } : {}),
    warn: (line) => {
      host.warn(line);
      e.emit({ type: 'warning', message: line });
    },
  };
}

/** Builds and boots the machine `spec` describes; it waits in `created` for a start action. */
export async function createVm(spec: MachineSpec, host: VmHost, o: VmOptions = {}): Promise<Vm> {
  const events = emitter(o);
  const boot = await bootOptions(spec, host);
  const built = await buildBoard(spec, host, io(host, events, o, () => spec.deterministic));
  try {
    const bootInfo = built.board.boot(boot);
    return new Vm({ spec, built, host, bootInfo, state: 'created', emit: events }, o);
  } catch (e) {
    built.close();
    throw e;
  }
}

/**
 * Gives a restored machine (a copy) a new generation ID, so its kernel reseeds its random
 * numbers (a deterministic machine keeps its own: its runs must repeat).
 */
function renewGeneration(board: VirtBoard, spec: MachineSpec): void {
  if (!spec.deterministic) board.vmgenid.renew(randomGenerationId());
}

/** The spec of the machine a snapshot or stream describes, bound to the caller's resources. */
function specOf(config: SnapshotConfig, what: string, given: Resources, flags: ResourceFlags): MachineSpec {
  return bindResources(parseShape(config.machine, `${what}: machine`), given, flags);
}

/** The shape of the machine in snapshot `bytes` (what a host must give it), read from its configuration alone. */
export function snapshotShape(bytes: Uint8Array, name: string): MachineShape {
  return parseShape(snapshotConfig(bytes, name).machine, `snapshot ${name}: machine`);
}

/**
 * Restores the machine in snapshot `bytes` (`name` names the file in messages) with the disks,
 * folders and NICs `given`; it waits in `paused` for a resume action. A snapshot that cannot
 * be restored leaves nothing open.
 */
export async function restoreVm(bytes: Uint8Array, name: string, given: Resources, flags: ResourceFlags, host: VmHost, o: VmOptions = {}): Promise<Vm> {
  const reader = openSnapshot(bytes, name);
  const spec = specOf(reader.config, `snapshot ${name}`, given, flags);
  const events = emitter(o);
  const built = await buildBoard(spec, host, io(host, events, o, () => spec.deterministic));
  try {
    reader.restore(built.board);
    // A snapshot may be restored any number of times: each copy is a new generation.
    renewGeneration(built.board, spec);
    // The network may have moved: the guest tells it where it is now.
    built.announce();
    return new Vm({ spec, built, host, bootInfo: null, state: 'paused', emit: events }, o);
  } catch (e) {
    built.close();
    throw e;
  }
}

/**
 * Receives a machine over `link` and runs it. The board is built when the stream's
 * configuration arrives; its disks are opened only once the source has stopped and flushed
 * them. A stream that fails leaves nothing open (and the source's guest runs on).
 */
export async function receiveVm(link: IncomingLink, given: Resources, flags: ResourceFlags, host: VmHost, o: VmOptions = {}): Promise<{ vm: Vm; rounds: number }> {
  const events = emitter(o);
  let spec: MachineSpec | null = null;
  const mio = io(host, events, o, () => (spec as MachineSpec | null)?.deterministic ?? false);
  let built: BuiltMachine | null = null;
  // Post-copy needs the capability on the target too (QEMU's postcopy-ram on both sides).
  const postcopy = o.migration?.capabilities?.['postcopy-ram'] === true && link.pages !== undefined;
  let receiver: PageReceiver | null = null;
  try {
    const got = await migrateIn(link, {
      build: (config): VirtBoard => {
        spec = specOf(config, 'migration stream', given, flags);
        const board = newBoard(spec, host, mio);
        if (postcopy) receiver = link.pages!(board.machine.memory, board.machine.ram.size);
        return board;
      },
      prepare: () => {
        for (const [i, d] of spec!.devices.disks.entries()) host.prepareDisk?.(d, i);
      },
      devices: async (board) => {
        built = await attachDevices(board, spec!, host, mio);
      },
      abandon: () => {
        (built as BuiltMachine | null)?.close();
        built = null;
      },
      ...(postcopy ? {
        postcopy: async (board: VirtBoard, pending: Uint8Array, token: string) => {
          const pc = await (receiver as PageReceiver | null)!.open(pending, token);
          // From the answer on, nothing (a device, a host event) may touch a page not yet here.
          board.machine.setGate(gateOf(pc.pages, board.machine.ram.size));
          return pc;
        },
      } : {}),
    });
    if (!got.pages) (receiver as PageReceiver | null)?.close();
    if (!built || !spec) throw new VirtusError('BAD_SNAPSHOT', 'the migration stream ended without a machine');
    // The same machine, moved: it keeps its generation (Microsoft's VMGenID specification lists
    // live migration among what must not change it; libvirt migrates its genid too).
    // The guest is on another host now: switches must learn its new port.
    (built as BuiltMachine).announce();
    const vm = new Vm({ spec, built, host, bootInfo: null, state: 'running', emit: events }, o);
    const where = link.address ? { socketAddress: link.address } : {};
    if (got.pages) vm.migration.incoming(got.pages, got.rounds, where);
    else vm.migration.received({ status: 'completed', target: 'incoming', rounds: got.rounds, ...where });
    return { vm, rounds: got.rounds };
  } catch (e) {
    (receiver as PageReceiver | null)?.close();
    (built as BuiltMachine | null)?.close();
    throw e;
  }
}
