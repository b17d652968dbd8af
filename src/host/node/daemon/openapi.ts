/**
 * The API's contract: docs/openapi.json (OpenAPI 3.1), read once. The daemon serves it at
 * /openapi.json, registers one route per operation from it, and validates every request's
 * path parameters, query and body against the operation's schemas (JSON Schema 2020-12, the
 * dialect of OpenAPI 3.1) with Ajv. Nothing about a request's shape is checked anywhere else.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VirtusError } from '../../../util/errors.ts';

type Json = Record<string, unknown>;

/** The parts of the document the daemon reads. */
export interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json> };
}

/** One operation of the document. */
export interface Operation {
  operationId: string;
  parameters?: Array<{ name: string; in: 'path' | 'query'; required?: boolean; schema: Json }>;
  requestBody?: { required?: boolean; content: Record<string, { schema: Json }> };
  responses: Record<string, { content?: Record<string, { schema: Json }> }>;
  'x-websocket'?: boolean;
  security?: unknown[];
}

/** One route as the router takes it. */
export interface RouteDef {
  method: 'GET' | 'POST' | 'DELETE';
  /** In the router's syntax (`/vms/:id`). */
  url: string;
  operation: Operation;
  schema: { params?: Json; querystring?: Json; body?: Json };
  websocket: boolean;
}

/** Finds docs/openapi.json from the running module (a source file, or the CLI's bundle in build/cli). */
function docPath(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const p = join(dir, 'docs', 'openapi.json');
    if (existsSync(p)) return p;
    if (dirname(dir) === dir) throw new VirtusError('NO_OPENAPI', 'cannot find docs/openapi.json beside the virtus sources');
  }
}

let cached: OpenApiDoc | null = null;

/** The API document. */
export function openApiDoc(): OpenApiDoc {
  cached ??= JSON.parse(readFileSync(docPath(), 'utf8')) as OpenApiDoc;
  return cached;
}

/** `schema` with the document's component references pointing into its own $defs, so it compiles alone. */
export function standalone(schema: Json, doc: OpenApiDoc): Json {
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (v === null || typeof v !== 'object') return v;
    const out: Json = {};
    for (const [k, x] of Object.entries(v as Json)) {
      out[k] = k === '$ref' && typeof x === 'string' ? x.replace('#/components/schemas/', '#/$defs/') : rewrite(x);
    }
    return out;
  };
  const defs = rewrite(doc.components.schemas) as Json;
  return { ...(rewrite(schema) as Json), $defs: defs };
}

/** The routes the document declares. */
export function routes(doc: OpenApiDoc = openApiDoc()): RouteDef[] {
  const out: RouteDef[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = (op.parameters ?? []).filter((p) => p.in === 'path');
      const query = (op.parameters ?? []).filter((p) => p.in === 'query');
      const schema: RouteDef['schema'] = {};
      if (params.length) {
        schema.params = { type: 'object', required: params.map((p) => p.name), properties: Object.fromEntries(params.map((p) => [p.name, p.schema])) };
      }
      if (query.length) {
        schema.querystring = { type: 'object', properties: Object.fromEntries(query.map((p) => [p.name, p.schema])) };
      }
      const body = op.requestBody?.content['application/json']?.schema;
      if (body) schema.body = standalone(body, doc);
      out.push({ method: method.toUpperCase() as RouteDef['method'], url: path.replace(/\{(\w+)\}/g, ':$1'), operation: op, schema, websocket: op['x-websocket'] === true });
    }
  }
  return out;
}

/** One Ajv error as a line a user can act on: where, and what is wrong. */
export interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** The clearest of a request's schema errors, as one line ("body.spec.memory: must be ..."). */
export function describeSchemaErrors(part: string, errors: SchemaError[]): string {
  // The most specific error is the deepest; an unknown field is what a user most often gets wrong.
  const sorted = [...errors].sort((a, b) => (b.keyword === 'additionalProperties' ? 1 : 0) - (a.keyword === 'additionalProperties' ? 1 : 0) || b.instancePath.length - a.instancePath.length);
  const e = sorted.find((x) => !['if', 'oneOf', 'anyOf', 'not'].includes(x.keyword)) ?? sorted[0]!;
  const where = part + e.instancePath.replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.');
  switch (e.keyword) {
    case 'additionalProperties':
      return `${where}: unknown field "${String(e.params.additionalProperty)}"`;
    case 'required':
      return `${where}: "${String(e.params.missingProperty)}" is missing`;
    case 'enum':
      return `${where}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'oneOf':
      return part === 'body' && e.instancePath === '' ? 'body: give exactly one of spec, image, snapshot' : `${where}: ${e.message ?? 'is not valid'}`;
    case 'not':
      return `${where}: has a field that does not go with the others (overlay with readonly, firmware without mode "firmware")`;
    default:
      return `${where}: ${e.message ?? 'is not valid'}`;
  }
}
