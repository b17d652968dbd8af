/**
 * The core runs unchanged in a browser: no module under src/ outside src/host/ (and
 * src/repo/, the host's image store) imports Node's modules or uses Node's globals. The
 * check reads each module's syntax tree, so comments and strings that mention `process` do
 * not count, and a failure names the file and line.
 *
 * Dependencies point down only: each folder of src/ has a layer (LAYERS, the table of
 * docs/architecture.md), and a module imports only from its own folder or from a lower layer.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../support/toolchain.ts';

/** Folders of src/ that are host adapters, where Node is allowed. */
const HOST_DIRS = ['host', 'repo'];
/** Node's globals; a browser has none of them. `NodeJS` is @types/node's namespace of types. */
const NODE_GLOBALS = new Set(['process', 'Buffer', 'require', '__dirname', '__filename', 'global', 'setImmediate', 'clearImmediate', 'NodeJS']);
/** Objects through which a global can also be reached (`globalThis.process`). */
const GLOBAL_OBJECTS = new Set(['globalThis', 'self', 'window']);
const BUILTINS = new Set(builtinModules);

/** One use of Node in a core module. */
export interface Finding {
  file: string;
  line: number;
  what: string;
}

function isNodeModule(spec: string): boolean {
  return spec.startsWith('node:') || BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0]!);
}

/** True when `id` is a name in a member position, not a reference to a variable. */
function isMemberName(id: ts.Identifier): boolean {
  const p = id.parent;
  if (ts.isPropertyAccessExpression(p) && p.name === id) return !(ts.isIdentifier(p.expression) && GLOBAL_OBJECTS.has(p.expression.text));
  if (ts.isQualifiedName(p) && p.right === id) return true;
  if ((ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p) || ts.isPropertySignature(p) || ts.isMethodDeclaration(p) || ts.isMethodSignature(p)) && p.name === id) {
    return true;
  }
  if ((ts.isGetAccessor(p) || ts.isSetAccessor(p) || ts.isEnumMember(p)) && p.name === id) return true;
  if (ts.isImportSpecifier(p) || ts.isExportSpecifier(p)) return p.propertyName === id;
  if (ts.isBindingElement(p) && p.propertyName === id) return true;
  return ts.isLabeledStatement(p) || ts.isBreakOrContinueStatement(p);
}

/** The uses of Node in one module's source text. */
export function scanSource(file: string, text: string): Finding[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Finding[] = [];
  const at = (n: ts.Node, what: string) => out.push({ file, line: sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1, what });
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      if (isNodeModule(n.moduleSpecifier.text)) at(n, `imports '${n.moduleSpecifier.text}'`);
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const a = n.arguments[0];
      if (a && ts.isStringLiteralLike(a) && isNodeModule(a.text)) at(n, `imports '${a.text}'`);
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      if (isNodeModule(n.argument.literal.text)) at(n, `imports types of '${n.argument.literal.text}'`);
    } else if (ts.isIdentifier(n) && NODE_GLOBALS.has(n.text) && !isMemberName(n)) {
      at(n, `uses the Node global '${n.text}'`);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/**
 * The layers, lowest first: a module may import from its own folder and from folders of lower
 * layers. Folders on one line are peers and may not import each other.
 */
export const LAYERS: readonly string[][] = [
  ['util'],
  ['storage', 'fdt'],
  ['isa', 'fpu'],
  ['cpu'],
  ['jit'],
  ['devices', 'net'],
  ['machine'],
  ['vmm', 'exec'],
  ['repo'],
  ['host'],
];

function layerOf(folder: string): number {
  return LAYERS.findIndex((l) => l.includes(folder));
}

/** The imports of a module in src/<folder>/ that go to a folder that is not below it. */
export function scanLayers(file: string, text: string): Finding[] {
  const rel = relative(join(ROOT, 'src'), file);
  const from = rel.split('/')[0]!;
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Finding[] = [];
  const check = (n: ts.Node, spec: string): void => {
    if (!spec.startsWith('.')) return;
    const target = relative(join(ROOT, 'src'), resolve(dirname(file), spec));
    const to = target.split('/')[0]!;
    if (to === from || target.startsWith('..')) return;
    const [a, b] = [layerOf(from), layerOf(to)];
    if (a < 0 || b < 0 || b >= a) {
      const line = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
      const why = a < 0 || b < 0 ? 'a folder with no layer' : b === a ? 'a peer layer' : 'a higher layer';
      out.push({ file: relative(ROOT, file), line, what: `${from}/ imports ${to}/ (${why}): '${spec}'` });
    }
  };
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      check(n, n.moduleSpecifier.text);
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const a = n.arguments[0];
      if (a && ts.isStringLiteralLike(a)) check(n, a.text);
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      check(n, n.argument.literal.text);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** Every module of src/ (tests beside the code excluded: a test may build on anything). */
function allModules(dir = join(ROOT, 'src'), out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) allModules(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** The core's modules: src/**\/*.ts outside the host folders, tests beside the code excluded. */
function coreModules(dir = join(ROOT, 'src'), out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (!(dir === join(ROOT, 'src') && HOST_DIRS.includes(name))) coreModules(p, out);
    } else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) {
      out.push(p);
    }
  }
  return out;
}

describe('core modules import nothing from Node', () => {
  it('finds imports of Node modules and uses of Node globals, by line', () => {
    const src = [
      "import { readFileSync } from 'node:fs';", // 1
      "import path from 'path';", // 2
      '// process.exit() in a comment is fine', // 3
      "const s = 'Buffer in a string is fine';", // 4
      'const o = { process: 1, global: 2 }; o.process;', // 5
      'export const b = Buffer.from([1]);', // 6
      'setImmediate(() => globalThis.process);', // 7
      "const m = await import('node:os');", // 8
      'let t: NodeJS.Timeout;', // 9
      "export { x } from 'fs/promises';", // 10
      'const k = require;', // 11
    ].join('\n');
    const got = scanSource('x.ts', src).map((f) => `${f.line}: ${f.what}`);
    assert.deepEqual(got, [
      "1: imports 'node:fs'",
      "2: imports 'path'",
      "6: uses the Node global 'Buffer'",
      "7: uses the Node global 'setImmediate'",
      "7: uses the Node global 'process'",
      "8: imports 'node:os'",
      "9: uses the Node global 'NodeJS'",
      "10: imports 'fs/promises'",
      "11: uses the Node global 'require'",
    ]);
  });

  it('holds for every core module', () => {
    const files = coreModules();
    assert.ok(files.length > 50, `only ${files.length} core modules found under src/`);
    const findings = files.flatMap((f) => scanSource(relative(ROOT, f), readFileSync(f, 'utf8')));
    const report = findings.map((f) => `${f.file}:${f.line}: ${f.what}`).join('\n');
    assert.equal(findings.length, 0, `core modules must run in a browser, but:\n${report}`);
  });
});

describe('dependencies point down the layers', () => {
  it('finds an upward import planted in a device, and a peer import, by line', () => {
    const planted = [
      "import { Machine } from '../../machine/machine.ts';", // 1: devices -> machine (up)
      "import type { Hart } from '../../cpu/hart.ts';", // 2: devices -> cpu (down: fine)
      "import { VirtioBlk } from '../virtio/blk/blk.ts';", // 3: same folder: fine
      "export { JitEngine } from '../../jit/engine.ts';", // 4: devices -> jit (down: fine)
      "const v = await import('../../vmm/vm.ts');", // 5: devices -> vmm (up)
      "import type { X } from '../../net/x.ts';", // 6: devices -> net (peer)
    ].join('\n');
    const got = scanLayers(join(ROOT, 'src/devices/uart/planted.ts'), planted).map((f) => `${f.line}: ${f.what}`);
    assert.deepEqual(got, [
      "1: devices/ imports machine/ (a higher layer): '../../machine/machine.ts'",
      "5: devices/ imports vmm/ (a higher layer): '../../vmm/vm.ts'",
      "6: devices/ imports net/ (a peer layer): '../../net/x.ts'",
    ]);
  });

  it('every folder of src/ has a layer', () => {
    const folders = readdirSync(join(ROOT, 'src')).filter((n) => statSync(join(ROOT, 'src', n)).isDirectory());
    const missing = folders.filter((f) => layerOf(f) < 0);
    assert.deepEqual(missing, [], 'add the folder to LAYERS (and to the table in docs/architecture.md)');
  });

  it('holds for every module of src/', () => {
    const findings = allModules().flatMap((f) => scanLayers(f, readFileSync(f, 'utf8')));
    const report = findings.map((f) => `${f.file}:${f.line}: ${f.what}`).join('\n');
    assert.equal(findings.length, 0, `imports must point down the layers, but:\n${report}`);
  });
});
