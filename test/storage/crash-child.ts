/**
 * The process the kill -9 test kills: applies the operation stream of `seed` to a qcow2
 * image through virtus's Node backend, forever, logging to LOG before each operation starts
 * ("S k") and after each flush returns ("F k": operations 0..k-1 are durable).
 *
 * usage: node --import tsx crash-child.ts IMAGE SEED LOG
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { nodeFileSystem } from '../../src/host/node/host-file.ts';
import { openImage } from '../../src/storage/open.ts';
import { applyOp, crashOps } from './crash-ops.ts';

const [image, seedText, logPath] = process.argv.slice(2);
const b = openImage(nodeFileSystem, image!);
const cs = b.info().clusterSize ?? 65536;
const log = openSync(logPath!, 'a');
let k = 0;
for (const op of crashOps(Number(seedText), b.size, cs)) {
  writeSync(log, `S ${k}\n`);
  applyOp(b, op);
  k++;
  if (op.kind === 'flush') writeSync(log, `F ${k}\n`);
  if (k > 1_000_000) break;
}
closeSync(log);
b.close();
