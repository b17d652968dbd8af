import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVirtusError } from '../util/errors.ts';
import { decodeFdt, readFdtHeader } from './decode.ts';
import { encodeFdt, FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_PROP, FdtTree, regCells, u64Cells } from './fdt.ts';

function sample(): FdtTree {
  const t = new FdtTree();
  t.root.setCells('#address-cells', [2]).setCells('#size-cells', [2]);
  t.root.setString('compatible', 'riscv-virtio');
  const mem = t.root.addNode('memory@80000000');
  mem.setString('device_type', 'memory').setCells('reg', regCells(0x8000_0000, 0x800_0000));
  const soc = t.root.addNode('soc');
  soc.setCells('#address-cells', [2]).setCells('#size-cells', [2]).setEmpty('ranges');
  const uart = soc.addNode('serial@10000000');
  uart.setStrings('compatible', ['ns16550a']).setU32('clock-frequency', 3686400);
  t.reservations.push({ address: 0x8000_0000n, size: 0x20_0000n });
  return t;
}

const be32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getUint32(off);

describe('FDT encoder', () => {
  it('writes a version 17 header whose blocks are aligned and fill the blob', () => {
    const blob = encodeFdt(sample());
    const h = readFdtHeader(blob);
    assert.equal(be32(blob, 0), 0xd00dfeed);
    assert.equal(h.version, 17);
    assert.equal(h.lastCompVersion, 16);
    assert.equal(h.totalsize, blob.length);
    assert.equal(h.offMemRsvmap % 8, 0);
    assert.equal(h.offMemRsvmap, 40);
    assert.equal(h.offDtStruct, h.offMemRsvmap + 32, 'one reservation and the terminator');
    assert.equal(h.offDtStrings, h.offDtStruct + h.sizeDtStruct);
    assert.equal(h.offDtStrings + h.sizeDtStrings, blob.length);
    assert.equal(be32(blob, h.offDtStruct), FDT_BEGIN_NODE);
    assert.equal(be32(blob, h.offDtStruct + h.sizeDtStruct - 4), FDT_END);
    assert.equal(be32(blob, h.offDtStruct + h.sizeDtStruct - 8), FDT_END_NODE);
  });

  it('stores each property name once in the strings block', () => {
    const blob = encodeFdt(sample());
    const h = readFdtHeader(blob);
    const strings = new TextDecoder().decode(blob.subarray(h.offDtStrings, h.offDtStrings + h.sizeDtStrings)).split('\0');
    assert.equal(strings.filter((s) => s === '#address-cells').length, 1);
    assert.equal(strings.filter((s) => s === 'compatible').length, 1);
    assert.equal(strings.at(-1), '', 'NUL-terminated');
  });

  it('encodes the root node with an empty name and pads names and values to 4 bytes', () => {
    const t = new FdtTree();
    t.root.addNode('abcde').setBytes('b', new Uint8Array([1, 2, 3]));
    const blob = encodeFdt(t);
    const h = readFdtHeader(blob);
    const s = h.offDtStruct;
    assert.deepEqual([be32(blob, s), be32(blob, s + 4)], [FDT_BEGIN_NODE, 0], 'root: token and an empty name padded to 4');
    assert.equal(be32(blob, s + 8), FDT_BEGIN_NODE);
    assert.equal(new TextDecoder().decode(blob.subarray(s + 12, s + 17)), 'abcde');
    assert.equal(be32(blob, s + 20), FDT_PROP, '"abcde\\0" padded to 8 bytes');
    assert.equal(be32(blob, s + 24), 3);
    assert.deepEqual([...blob.subarray(s + 32, s + 36)], [1, 2, 3, 0]);
    assert.equal(be32(blob, s + 36), FDT_END_NODE);
  });

  it('appends padding counted in totalsize', () => {
    const a = encodeFdt(sample());
    const b = encodeFdt(sample(), { padding: 4096 });
    assert.equal(b.length, a.length + 4096);
    assert.equal(readFdtHeader(b).totalsize, b.length);
  });

  it('encodes cells, u64s and string lists big-endian', () => {
    const t = new FdtTree();
    t.root.setU64('x', 0x1_2345_6789n).setStrings('s', ['ab', 'c']).setCells('c', [0xffff_ffff, 0]);
    assert.deepEqual([...t.root.getBytes('x')!], [0, 0, 0, 1, 0x23, 0x45, 0x67, 0x89]);
    assert.deepEqual([...t.root.getBytes('s')!], [0x61, 0x62, 0, 0x63, 0]);
    assert.deepEqual(t.root.getStrings('s'), ['ab', 'c']);
    assert.deepEqual(t.root.getCells('c'), [0xffff_ffff, 0]);
    assert.deepEqual(u64Cells(2n ** 64n - 1n), [0xffff_ffff, 0xffff_ffff]);
    assert.deepEqual(regCells(0x1000_0000, 0x100), [0, 0x1000_0000, 0, 0x100]);
  });

  it('rejects invalid names, values and duplicate nodes', () => {
    const t = new FdtTree();
    const bad = (f: () => unknown, code: string) => assert.throws(f, (e) => isVirtusError(e, code));
    bad(() => t.root.addNode('has space'), 'FDT_BAD_NAME');
    bad(() => t.root.addNode('x'.repeat(32)), 'FDT_BAD_NAME');
    bad(() => t.root.setU32('bad/name', 1), 'FDT_BAD_NAME');
    bad(() => t.root.setCells('c', [-1]), 'FDT_BAD_VALUE');
    bad(() => t.root.setCells('c', [2 ** 32]), 'FDT_BAD_VALUE');
    bad(() => t.root.setString('s', 'a\0b'), 'FDT_BAD_VALUE');
    bad(() => u64Cells(2n ** 64n), 'FDT_BAD_VALUE');
    t.root.addNode('cpus');
    bad(() => t.root.addNode('cpus'), 'FDT_DUPLICATE');
  });

  it('allocates distinct phandles, skipping ones already in the tree', () => {
    const t = new FdtTree();
    const a = t.root.addNode('a');
    const b = t.root.addNode('b');
    b.setU32('phandle', 1);
    assert.equal(a.phandle(), 2);
    assert.equal(a.phandle(), 2, 'stable');
    assert.equal(b.phandle(), 1);
    assert.equal(t.byPhandle(2), a);
  });

  it('replaces a property in place, keeping its position', () => {
    const t = new FdtTree();
    t.root.setU32('a', 1).setU32('b', 2).setU32('a', 3);
    assert.deepEqual(t.root.props.map((p) => p.name), ['a', 'b']);
    assert.equal(t.root.getU32('a'), 3);
    assert.equal(t.root.remove('a'), true);
    assert.equal(t.root.has('a'), false);
  });
});

describe('FDT decoder', () => {
  it('reads back what the encoder wrote', () => {
    const t = sample();
    t.bootCpuId = 3;
    const back = decodeFdt(encodeFdt(t));
    assert.equal(back.bootCpuId, 3);
    assert.deepEqual(back.reservations, [{ address: 0x8000_0000n, size: 0x20_0000n }]);
    assert.equal(back.find('/soc/serial@10000000')?.getU32('clock-frequency'), 3686400);
    assert.deepEqual(back.find('/memory@80000000')?.getCells('reg'), [0, 0x8000_0000, 0, 0x800_0000]);
    assert.equal(back.find('/soc')?.has('ranges'), true);
    assert.deepEqual(encodeFdt(back), encodeFdt(t), 'a decoded tree encodes to the same bytes');
  });

  it('rejects malformed blobs with FDT_BAD', () => {
    const good = encodeFdt(sample());
    const h = readFdtHeader(good);
    const mutate = (f: (b: Uint8Array, v: DataView) => void): Uint8Array => {
      const b = good.slice();
      f(b, new DataView(b.buffer));
      return b;
    };
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['short', good.subarray(0, 20), /shorter than a header/],
      ['magic', mutate((_, v) => v.setUint32(0, 0xdeadbeef)), /magic/],
      ['totalsize', mutate((_, v) => v.setUint32(4, good.length + 1)), /totalsize/],
      ['version', mutate((_, v) => v.setUint32(20, 16)), /version/],
      ['struct size', mutate((_, v) => v.setUint32(36, good.length)), /structure block/],
      ['strings offset', mutate((_, v) => v.setUint32(12, good.length - 2)), /strings block/],
      ['token', mutate((_, v) => v.setUint32(h.offDtStruct + 8, 7)), /unknown token 0x7/],
      ['no end', mutate((_, v) => v.setUint32(h.offDtStruct + h.sizeDtStruct - 4, FDT_END_NODE)), /without FDT_END|FDT_END_NODE without/],
      ['name offset', mutate((_, v) => v.setUint32(h.offDtStruct + 16, 0xffff)), /name offset/],
      ['prop length', mutate((_, v) => v.setUint32(h.offDtStruct + 12, 0xffff)), /runs past/],
    ];
    for (const [what, blob, message] of cases) {
      assert.throws(() => decodeFdt(blob), (e) => isVirtusError(e, 'FDT_BAD') && message.test(e.message), what);
    }
  });
});
