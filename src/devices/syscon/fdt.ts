/**
 * The finisher's device tree nodes, as QEMU 7.2's virt board writes them: `test@<base>` in the
 * soc node, compatible with sifive,test1/test0 and syscon, plus `poweroff` and `reboot` nodes
 * at the root that point at it through `regmap` (bindings syscon-poweroff, syscon-reboot).
 */
import { regCells, type FdtNode } from '../../fdt/fdt.ts';
import { FINISHER_PASS, FINISHER_RESET, type Syscon } from './syscon.ts';

export interface SysconFdtOptions {
  /** Guest physical base address. */
  base: number;
  syscon: Syscon;
  /** Where the poweroff and reboot nodes go (default: the tree's root). */
  root?: FdtNode;
}

export interface SysconNodes {
  test: FdtNode;
  poweroff: FdtNode;
  reboot: FdtNode;
}

/** Adds `test@<base>` under `parent` (the soc node) and the `poweroff` and `reboot` nodes. */
export function addSysconNodes(parent: FdtNode, o: SysconFdtOptions): SysconNodes {
  const test = parent.addNode(`test@${o.base.toString(16)}`);
  test.setStrings('compatible', ['sifive,test1', 'sifive,test0', 'syscon']);
  test.setCells('reg', regCells(o.base, o.syscon.size));
  const regmap = test.phandle();
  const root = o.root ?? parent.tree.root;
  const action = (name: string, compatible: string, value: number): FdtNode => {
    const n = root.addNode(name);
    n.setStrings('compatible', [compatible]);
    n.setU32('regmap', regmap);
    n.setU32('offset', 0);
    n.setU32('value', value);
    return n;
  };
  return {
    test,
    poweroff: action('poweroff', 'syscon-poweroff', FINISHER_PASS),
    reboot: action('reboot', 'syscon-reboot', FINISHER_RESET),
  };
}
