/**
 * The PLIC's device tree node, as QEMU 7.2's virt board writes it (binding
 * sifive,plic-1.0.0): one `interrupts-extended` pair per context, pointing at the hart's
 * interrupt-controller node with the machine (11) or supervisor (9) external interrupt.
 */
import { regCells, type FdtNode } from '../../fdt/fdt.ts';
import { VirtusError } from '../../util/errors.ts';
import { IRQ_M_EXT, IRQ_S_EXT, type Plic } from './plic.ts';

export interface PlicFdtOptions {
  /** Guest physical base address of the PLIC window. */
  base: number;
  plic: Plic;
  /** Phandle of each hart's `interrupt-controller` node, in hart order (the PLIC has two contexts per hart). */
  intc: readonly number[];
}

/** Adds `plic@<base>` under `parent` (the soc node) and returns it; its phandle() is the interrupt parent of the other devices. */
export function addPlicNode(parent: FdtNode, o: PlicFdtOptions): FdtNode {
  if (o.plic.contexts !== 2 * o.intc.length) {
    throw new VirtusError('FDT_MISMATCH', `the PLIC has ${o.plic.contexts} contexts but ${o.intc.length} harts were given (two contexts per hart)`);
  }
  const n = parent.addNode(`plic@${o.base.toString(16)}`);
  n.setCells('#interrupt-cells', [1]);
  n.setCells('#address-cells', [0]);
  n.setStrings('compatible', ['sifive,plic-1.0.0', 'riscv,plic0']);
  n.setEmpty('interrupt-controller');
  n.setCells('interrupts-extended', o.intc.flatMap((ph) => [ph, IRQ_M_EXT, ph, IRQ_S_EXT]));
  n.setCells('reg', regCells(o.base, o.plic.size));
  n.setU32('riscv,ndev', o.plic.ndev);
  n.phandle();
  return n;
}
