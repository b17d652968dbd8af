/**
 * The device tree of a virt-like machine built from our devices' node helpers: dtc must read
 * the blob without a warning, and each device node must match the one QEMU 7.2's virt board
 * generates (names, compatible strings, reg, interrupts, phandle references), compared through
 * our decoder on QEMU's own dumpdtb output.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Clint } from '../../src/devices/clint/clint.ts';
import { addClintNode } from '../../src/devices/clint/fdt.ts';
import { addPlicNode } from '../../src/devices/plic/fdt.ts';
import { Plic } from '../../src/devices/plic/plic.ts';
import { addRtcNode } from '../../src/devices/rtc/fdt.ts';
import { GoldfishRtc } from '../../src/devices/rtc/rtc.ts';
import { addSysconNodes } from '../../src/devices/syscon/fdt.ts';
import { Syscon } from '../../src/devices/syscon/syscon.ts';
import { addUartNode } from '../../src/devices/uart/fdt.ts';
import { Uart } from '../../src/devices/uart/uart.ts';
import { Clock, TIMEBASE_HZ } from '../../src/machine/clock.ts';
import { decodeFdt } from '../../src/fdt/decode.ts';
import { encodeFdt, FdtTree, regCells, type FdtNode } from '../../src/fdt/fdt.ts';
import { requireTool } from '../support/toolchain.ts';

const dir = mkdtempSync(join(tmpdir(), 'virtus-fdt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const nil = { set() {} };
const RAM = 0x800_0000;
const DEVICES = ['/soc/plic@c000000', '/soc/clint@2000000', '/soc/serial@10000000', '/soc/rtc@101000', '/soc/test@100000', '/poweroff', '/reboot'];

/** A virt-like machine's tree: what the board will build, with our devices' helpers. */
function virtTree(harts: number): FdtTree {
  const t = new FdtTree();
  const root = t.root;
  root.setCells('#address-cells', [2]).setCells('#size-cells', [2]);
  root.setStrings('compatible', ['riscv-virtio']).setString('model', 'riscv-virtio,qemu');

  const cpus = root.addNode('cpus');
  cpus.setCells('#address-cells', [1]).setCells('#size-cells', [0]).setU32('timebase-frequency', TIMEBASE_HZ);
  const intc: number[] = [];
  for (let h = 0; h < harts; h++) {
    const cpu = cpus.addNode(`cpu@${h}`);
    cpu.setString('device_type', 'cpu').setU32('reg', h).setString('status', 'okay').setString('compatible', 'riscv');
    cpu.setString('riscv,isa', 'rv64imafdc_zicsr_zifencei').setString('mmu-type', 'riscv,sv48');
    const ic = cpu.addNode('interrupt-controller');
    // #address-cells = 0 is what dtc's interrupt_provider check asks of a controller (QEMU omits it).
    ic.setCells('#interrupt-cells', [1]).setCells('#address-cells', [0]).setEmpty('interrupt-controller');
    ic.setString('compatible', 'riscv,cpu-intc');
    intc.push(ic.phandle());
    cpu.phandle();
  }
  root.addNode('memory@80000000').setString('device_type', 'memory').setCells('reg', regCells(0x8000_0000, RAM));

  const soc = root.addNode('soc');
  soc.setCells('#address-cells', [2]).setCells('#size-cells', [2]).setString('compatible', 'simple-bus').setEmpty('ranges');
  const plic = new Plic(Array.from({ length: 2 * harts }, () => nil));
  const plicNode = addPlicNode(soc, { base: 0x0c00_0000, plic, intc });
  const clock = new Clock({ deterministic: true, instret: () => 0 });
  const clint = new Clint(clock, intc.map(() => nil), intc.map(() => nil));
  addClintNode(soc, { base: 0x0200_0000, clint, intc });
  const uart = new Uart(plic.input(10), { output: () => {} });
  const serial = addUartNode(soc, { base: 0x1000_0000, uart, irq: 10, interruptParent: plicNode.phandle() });
  const rtc = new GoldfishRtc(plic.input(11), () => 0n);
  addRtcNode(soc, { base: 0x0010_1000, rtc, irq: 11, interruptParent: plicNode.phandle() });
  addSysconNodes(soc, { base: 0x0010_0000, syscon: new Syscon({ poweroff() {}, reboot() {} }) });

  root.addNode('chosen').setString('stdout-path', serial.path()).setString('bootargs', 'console=ttyS0');
  t.reservations.push({ address: 0x8000_0000n, size: 0x8_0000n });
  return t;
}

function run(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  requireTool(cmd);
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A node's properties with phandle references replaced by the paths they point to. */
function normalized(t: FdtTree, n: FdtNode): Record<string, unknown> {
  const path = (ph: number) => t.byPhandle(ph)?.path() ?? `<dangling ${ph}>`;
  const out: Record<string, unknown> = {};
  for (const p of n.props) {
    const cells = n.getCells(p.name);
    if (p.name === 'phandle') out[p.name] = 'present';
    else if (p.name === 'interrupt-parent' || p.name === 'regmap') out[p.name] = path(cells![0]!);
    else if (p.name === 'interrupts-extended') out[p.name] = cells!.map((c, i) => (i % 2 === 0 ? path(c) : c));
    else if (p.name === 'compatible' || p.name === 'device_type') out[p.name] = n.getStrings(p.name);
    else out[p.name] = cells ?? [...p.value];
  }
  return out;
}

describe('virt device tree', () => {
  it('is read by dtc without warnings, with the expected nodes and properties', () => {
    const dtb = join(dir, 'virtus.dtb');
    writeFileSync(dtb, encodeFdt(virtTree(1)));
    const r = run('dtc', ['-I', 'dtb', '-O', 'dts', dtb]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'dtc warned');
    const dts = r.stdout;
    assert.match(dts, /\/memreserve\/\s+0x0*80000000 0x0*80000;/);
    for (const line of [
      'compatible = "riscv-virtio";',
      'riscv,isa = "rv64imafdc_zicsr_zifencei";',
      'timebase-frequency = <0x989680>;',
      'reg = <0x00 0x80000000 0x00 0x8000000>;',
      'stdout-path = "/soc/serial@10000000";',
      'compatible = "sifive,plic-1.0.0\\0riscv,plic0";',
      'riscv,ndev = <0x60>;',
      'reg = <0x00 0xc000000 0x00 0x600000>;',
      'compatible = "sifive,clint0\\0riscv,clint0";',
      'compatible = "ns16550a";',
      'compatible = "google,goldfish-rtc";',
      'compatible = "sifive,test1\\0sifive,test0\\0syscon";',
      'compatible = "syscon-poweroff";',
      'value = <0x7777>;',
    ]) {
      assert.ok(dts.includes(line), `missing: ${line}`);
    }
    for (const node of ['cpu@0 {', 'interrupt-controller {', 'memory@80000000 {', 'soc {', 'plic@c000000 {', 'clint@2000000 {',
      'serial@10000000 {', 'rtc@101000 {', 'test@100000 {', 'poweroff {', 'reboot {', 'chosen {']) {
      assert.ok(dts.includes(node), `missing node: ${node}`);
    }

    // dtc's own blob of our source decodes to the same tree.
    const dts2 = join(dir, 'virtus.dts');
    writeFileSync(dts2, dts);
    const back = join(dir, 'back.dtb');
    assert.equal(run('dtc', ['-I', 'dts', '-O', 'dtb', '-o', back, dts2]).status, 0);
    assert.deepEqual(encodeFdt(decodeFdt(readFileSync(back))), encodeFdt(virtTree(1)));
  });

  for (const harts of [1, 2]) {
    it(`matches QEMU 7.2's virt device nodes with ${harts} hart(s)`, () => {
      const dtb = join(dir, `qemu-${harts}.dtb`);
      const q = run('qemu-system-riscv64', ['-M', `virt,dumpdtb=${dtb}`, '-smp', String(harts), '-display', 'none', '-nographic']);
      assert.equal(q.status, 0, q.stderr);
      const qemu = decodeFdt(readFileSync(dtb));
      const ours = virtTree(harts);
      for (const path of DEVICES) {
        const a = ours.find(path);
        const b = qemu.find(path);
        assert.ok(a, `we have no ${path}`);
        assert.ok(b, `QEMU has no ${path}`);
        const sorted = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).sort(([x], [y]) => x.localeCompare(y)));
        assert.deepEqual(sorted(normalized(ours, a)), sorted(normalized(qemu, b)), path);
      }
      assert.equal(ours.find('/chosen')?.getString('stdout-path'), qemu.find('/chosen')?.getString('stdout-path'));
    });
  }
});
