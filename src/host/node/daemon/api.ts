/**
 * The HTTP API: Fastify routes made from the OpenAPI document (openapi.ts), each handler a thin
 * translation of a request into a call on the Daemon or a DaemonMachine. Requests are checked
 * by Ajv against the document before a handler runs; every failure leaves as
 * `{"error": {"code", "message"}}` with the HTTP status its code maps to.
 *
 * Fastify (routing, hooks, body parsing, WebSocket upgrades through @fastify/websocket) was
 * chosen over an OpenAPI-first framework because its per-route schemas take the document's
 * schemas as they are, its hooks see the socket a request came on (bearer tokens on TCP only),
 * and it is the most used and maintained of the Node frameworks that validate with Ajv.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isVirtusError, VirtusError } from '../../../util/errors.ts';
import type { Daemon } from './daemon.ts';
import type { DaemonEvent, DaemonMachine } from './machine.ts';
import { metricsText } from './metrics.ts';
import type { ClusterAgent } from '../cluster/agent.ts';
import { uiAsset } from './ui.ts';
import { moveFromTab, moveToTab } from './tab-move.ts';
import { describeSchemaErrors, openApiDoc, routes, type SchemaError } from './openapi.ts';

/** HTTP status for each error code (any other VirtusError: 400; anything else: 500). */
const STATUS: Record<string, number> = {
  BAD_REQUEST: 400, BAD_SPEC: 400, UNAUTHORIZED: 401, NOT_FOUND: 404, NO_SUCH_VM: 404, NO_SUCH_SNAPSHOT: 404, NO_SUCH_IMAGE: 404, NOT_IN_CLUSTER: 404, CLUSTER_UNREACHABLE: 503,
  METHOD_NOT_ALLOWED: 405, NAME_TAKEN: 409, VMM_STATE: 409, DISK_IN_USE: 409, NO_CLONE: 409, NO_MEMORY: 409, TAB_MOVE: 409, MIGRATE_LISTEN: 409, UNSUPPORTED_MEDIA: 415, MIGRATE_FAILED: 502, INTERNAL: 500, VM_DIED: 500,
};

/** What the API is built on. */
export interface ApiOptions {
  daemon: Daemon;
  version: string;
  /** The bearer token TCP requests must carry. */
  token: string;
  /** True for a connection that came over TCP (and so must carry the token). */
  isTcp(socket: Socket): boolean;
  /** The daemon's part of a cluster, when it is a node of one (POST /vms declares machines there; GET /cluster). */
  cluster?: () => ClusterAgent | null;
}

/** A JSON error body. */
function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

type Handler = (req: { params: Record<string, string>; query: Record<string, unknown>; body: unknown; raw: IncomingMessage; socket: Socket }, reply: Reply) => unknown;
interface Reply {
  code(n: number): Reply;
  header(k: string, v: string): Reply;
  send(body?: unknown): unknown;
  hijack(): void;
  raw: ServerResponse;
}

/** Builds the Fastify app (not listening; listen.ts serves its handler). */
export async function buildApi(o: ApiOptions, serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => import('node:http').Server) {
  const { default: Fastify } = await import('fastify');
  const { default: websocket } = await import('@fastify/websocket');
  const { Ajv2020 } = await import('ajv/dist/2020.js');
  const d = o.daemon;
  const doc = openApiDoc();
  // Bodies are taken as they are; queries and paths are text and are coerced to their types.
  // (`required` inside oneOf names properties declared beside it: strictRequired would refuse that.)
  const ajvOptions = { strict: true, strictRequired: false, allErrors: true, removeAdditional: false, useDefaults: false } as const;
  const bodyAjv = new Ajv2020({ ...ajvOptions, coerceTypes: false });
  const textAjv = new Ajv2020({ ...ajvOptions, coerceTypes: true });
  for (const a of [bodyAjv, textAjv]) a.addKeyword('x-websocket').addFormat('date-time', true);

  const app = Fastify({ logger: false, bodyLimit: 1 << 20, serverFactory, return503OnClosing: false });
  const table = routes(doc);
  const optionalBodies = new WeakSet<object>(table.flatMap((r) => (r.schema.body && !r.operation.requestBody?.required ? [r.schema.body] : [])));
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const v = (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object);
    if (!optionalBodies.has(schema)) return v;
    // A request without a body is a request with the defaults.
    const optional = (data: unknown): boolean => {
      const ok = data === undefined || data === null || v(data);
      optional.errors = v.errors;
      return ok;
    };
    optional.errors = null as typeof v.errors;
    return optional;
  });
  await app.register(websocket, { options: { maxPayload: 1 << 20 } });

  app.setErrorHandler((err: Error & { validation?: SchemaError[]; validationContext?: string; statusCode?: number; code?: string }, _req, reply) => {
    if (err.validation) {
      const part = err.validationContext === 'querystring' ? 'query' : err.validationContext === 'params' ? 'path' : 'body';
      return reply.code(400).send(errorBody('BAD_REQUEST', describeSchemaErrors(part, err.validation)));
    }
    if (isVirtusError(err)) return reply.code(STATUS[err.code] ?? 400).send(errorBody(err.code, err.message));
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return reply.code(415).send(errorBody('UNSUPPORTED_MEDIA', 'send the body as application/json'));
    if (typeof err.code === 'string' && err.code.startsWith('FST_ERR_CTP') || err.statusCode === 400) {
      return reply.code(400).send(errorBody('BAD_REQUEST', `body: ${err.message}`));
    }
    if (err.statusCode === 413) return reply.code(413).send(errorBody('BAD_REQUEST', 'the body is larger than 1 MiB'));
    return reply.code(500).send(errorBody('INTERNAL', `internal error: ${err.message}`));
  });
  app.setNotFoundHandler((req, reply) => {
    const known = table.some((r) => new RegExp(`^${r.url.replace(/:\w+/g, '[^/]+')}$`).test(req.url.split('?')[0]!));
    if (known) return reply.code(405).send(errorBody('METHOD_NOT_ALLOWED', `${req.method} is not an operation of ${req.url.split('?')[0]} (see /openapi.json)`));
    return reply.code(404).send(errorBody('NOT_FOUND', `no ${req.url.split('?')[0]} in the API (see /openapi.json)`));
  });

  const expected = Buffer.from(`Bearer ${o.token}`);
  // Operations the document marks `security: []` (this document, the web console's files) are open.
  const open = new Set(table.filter((r) => Array.isArray(r.operation.security) && r.operation.security.length === 0).map((r) => `${r.method} ${r.url}`));
  app.addHook('onRequest', async (req) => {
    if (!o.isTcp(req.raw.socket) || open.has(`${req.method} ${req.routeOptions.url}`)) return;
    const q = /[?&]access_token=([0-9a-f]{64})(?:&|$)/.exec(req.url);
    const given = Buffer.from(req.headers.authorization ?? (q ? `Bearer ${q[1]}` : ''));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new VirtusError('UNAUTHORIZED', "this request came over TCP: send 'Authorization: Bearer TOKEN' with the token in the daemon's state directory");
    }
  });

  const info = (m: DaemonMachine) => m.info();
  const h: Record<string, Handler> = {
    getOpenApi: () => doc,
    getInfo: () => ({ version: o.version, stateDir: d.o.state.root, maxMemory: d.o.maxMemory, usedMemory: d.usedMemory(), machines: d.list().length }),
    getMetrics: async (_req, reply) => reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(await metricsText(d)),
    getUi: async (_req, reply) => sendAsset(reply, await uiAsset('index.html')),
    getUiAsset: async (req, reply) => sendAsset(reply, await uiAsset(req.params.asset!)),
    listVms: () => ({ machines: d.list().map(info) }),
    createVms: async (req, reply) => {
      const agent = o.cluster?.();
      if (agent) return reply.code(202).send({ cluster: await agent.declare(req.body as Parameters<ClusterAgent['declare']>[0]) });
      const made = await d.create(req.body as Parameters<Daemon['create']>[0]);
      return reply.code(201).send({ machines: made.map(info) });
    },
    getCluster: async () => {
      const agent = o.cluster?.();
      if (!agent) throw new VirtusError('NOT_IN_CLUSTER', 'this daemon is not a node of a cluster (start it with --cluster etcd://... --node NAME)');
      return agent.status();
    },
    createIncoming: async (req, reply) => {
      const b = (req.body ?? {}) as { name?: string; listen?: string; disks?: []; restart?: 'no' };
      const local = o.isTcp(req.socket) ? req.socket.localAddress ?? '127.0.0.1' : '127.0.0.1';
      const r = await d.incoming({ ...b, listen: b.listen ?? `tcp:${local.includes(':') ? `[${local}]` : local}:0` });
      return reply.code(201).send({ machine: info(r.machine), uri: r.uri });
    },
    listSnapshots: () => ({ snapshots: d.snapshots() }),
    getVm: (req) => info(d.get(req.params.id!)),
    deleteVm: async (req, reply) => {
      await d.remove(req.params.id!, req.query.force === true);
      return reply.code(204).send();
    },
    startVm: async (req) => {
      const m = d.get(req.params.id!);
      await m.start({ paused: (req.body as { paused?: boolean } | undefined)?.paused === true });
      return info(m);
    },
    stopVm: async (req) => {
      const m = d.get(req.params.id!);
      const b = (req.body ?? {}) as { force?: boolean; timeout?: number };
      await m.stop({ force: b.force === true, timeoutMs: (b.timeout ?? 0) * 1000 });
      return info(m);
    },
    pauseVm: async (req) => machineAction(d.get(req.params.id!), 'pause'),
    resumeVm: async (req) => machineAction(d.get(req.params.id!), 'resume'),
    resetVm: async (req) => machineAction(d.get(req.params.id!), 'reset'),
    snapshotVm: async (req, reply) => reply.code(201).send(await d.snapshot(req.params.id!, (req.body as { name: string }).name)),
    cloneVm: async (req, reply) => {
      const made = await d.clone(req.params.id!, (req.body ?? {}) as Parameters<Daemon['clone']>[1]);
      return reply.code(201).send({ machines: made.map(info) });
    },
    migrateVm: async (req, reply) => {
      const m = d.get(req.params.id!);
      const body = req.body as { to: string; capabilities?: Record<string, boolean>; parameters?: Record<string, unknown> };
      await m.migrate(body.to, { ...(body.capabilities ? { capabilities: body.capabilities } : {}), ...(body.parameters ? { parameters: body.parameters } : {}) });
      return reply.code(202).send(info(m));
    },
    cancelMigration: async (req) => {
      const m = d.get(req.params.id!);
      await m.action({ type: 'migrate-cancel' });
      return m.info();
    },
    getVmStats: async (req) => d.get(req.params.id!).action({ type: 'query-stats' }),
    getVmLogs: (req, reply) => {
      const m = d.get(req.params.id!);
      const tail = typeof req.query.tail === 'number' ? req.query.tail : undefined;
      return reply.header('content-type', 'application/octet-stream').send(Buffer.from(m.console.contents(tail)));
    },
    getEvents: (req, reply) => streamEvents(d, req.raw, reply, null),
    getVmEvents: (req, reply) => streamEvents(d, req.raw, reply, d.get(req.params.id!)),
  };

  /** The WebSocket operations, by operationId: each gets the open socket and its machine. */
  const sockets: Record<string, (socket: import('ws').WebSocket, m: DaemonMachine, query: { recent?: boolean }) => void> = {
    attachConsole: (socket, m, query) => attachConsole(m, socket, query.recent !== false),
    moveToTab: (socket, m) => moveToTab(m, socket, { dir: d.o.state.machineDir(m.id), subscribe: (f) => d.subscribe(f) }),
    moveFromTab: (socket, m) => moveFromTab(m, socket, { dir: d.o.state.machineDir(m.id), subscribe: (f) => d.subscribe(f) }),
  };
  for (const r of table) {
    if (r.websocket) {
      const serve = sockets[r.operation.operationId];
      if (!serve) throw new Error(`no handler for WebSocket operation ${r.operation.operationId}`);
      app.route({
        method: 'GET',
        url: r.url,
        schema: r.schema,
        // An unknown machine is refused before the upgrade, with the usual error body.
        preHandler: async (req) => void d.get((req.params as { id: string }).id),
        handler: (_req, reply) => reply.code(426).send(errorBody('BAD_REQUEST', 'this is a WebSocket: send Upgrade: websocket')),
        wsHandler: (socket, req) => serve(socket, d.get((req.params as { id: string }).id), (req.query ?? {}) as { recent?: boolean }),
      });
      continue;
    }
    const handler = h[r.operation.operationId];
    if (!handler) throw new Error(`no handler for operation ${r.operation.operationId}`);
    app.route({
      method: r.method,
      url: r.url,
      schema: r.schema,
      handler: (req, reply) =>
        handler(
          { params: req.params as Record<string, string>, query: (req.query ?? {}) as Record<string, unknown>, body: req.body, raw: req.raw, socket: req.raw.socket as Socket },
          reply as unknown as Reply,
        ),
    });
  }
  await app.ready();
  return app;
}

function sendAsset(reply: Reply, a: { body: Uint8Array; type: string }): unknown {
  return reply.header('content-type', a.type).header('cache-control', 'no-cache').send(Buffer.from(a.body.buffer, a.body.byteOffset, a.body.length));
}

async function machineAction(m: DaemonMachine, type: 'pause' | 'resume' | 'reset') {
  await m.action({ type });
  return m.info();
}

/** Server-sent events: every daemon event (or one machine's), each named by its type. */
function streamEvents(d: Daemon, req: IncomingMessage, reply: Reply, m: DaemonMachine | null): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const send = (e: DaemonEvent | (Record<string, unknown> & { type: string })): void => void res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
  res.write(': virtus daemon events\n\n');
  if (m) send({ type: 'state', id: m.id, name: m.name, state: m.state });
  const off = d.subscribe((e) => {
    if (!m || e.id === m.id) send(e);
  });
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
  const end = (): void => {
    off();
    clearInterval(ping);
  };
  req.on('close', end);
  res.on('close', end);
}

/** One WebSocket console client: recent output first (unless not wanted), then live output; messages are input. */
function attachConsole(m: DaemonMachine, socket: import('ws').WebSocket, withRecent: boolean): void {
  const recent = withRecent ? m.console.contents() : new Uint8Array(0);
  if (recent.length) socket.send(recent, { binary: true });
  const detach = m.attachConsole((bytes) => {
    if (socket.readyState === socket.OPEN) socket.send(bytes, { binary: true });
  });
  socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    const b = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    m.input(new Uint8Array(b.buffer, b.byteOffset, b.length));
  });
  socket.on('close', detach);
  socket.on('error', detach);
}
