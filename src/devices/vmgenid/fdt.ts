/** The generation ID's device-tree node (Linux's microsoft,vmgenid binding). */
import { regCells, type FdtNode } from '../../fdt/fdt.ts';
import { VMGENID_BYTES } from './vmgenid.ts';

/** Adds `vmgenid@<base>` under `parent` (the soc node): 16 bytes and one interrupt. */
export function addVmGenIdNode(parent: FdtNode, o: { base: number; irq: number; interruptParent: number }): FdtNode {
  const n = parent.addNode(`vmgenid@${o.base.toString(16)}`);
  n.setU32('interrupts', o.irq);
  n.setU32('interrupt-parent', o.interruptParent);
  n.setCells('reg', regCells(o.base, VMGENID_BYTES));
  n.setStrings('compatible', ['microsoft,vmgenid']);
  return n;
}
