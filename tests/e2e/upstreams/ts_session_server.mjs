// An upstream MCP server for the federation tests: the TypeScript SDK 1.x over Streamable HTTP
// WITH sessions (2025-11-25: initialize, Mcp-Session-Id).
//
// Tools: `echo` (text back), `progress` (n progress notifications, then an answer), `fail` (a
// JSON-RPC error -32602 from the tool). `POST /forget` drops every session, as a restart would:
// the next request with an old session id gets 404, and the gateway must initialize again.
//
//   node ts_session_server.mjs --port 8812

import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { McpError, ErrorCode, isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const { values } = parseArgs({ options: { port: { type: 'string' } } });
const transports = new Map();
let initializations = 0;

function buildServer() {
  const server = new McpServer({ name: 'ts-session', version: '1.0.0' });
  server.registerTool('echo', { description: 'Echoes text', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }));
  server.registerTool('progress', { description: 'Reports progress', inputSchema: { steps: z.number() } },
    async ({ steps }, extra) => {
      for (let step = 1; step <= steps; step++) {
        const token = extra._meta?.progressToken;
        if (token !== undefined) {
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: step, total: steps, message: `step ${step}` } });
        }
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
      return { content: [{ type: 'text', text: `progressed ${steps}` }] };
    });
  server.registerTool('fail', { description: 'Fails with -32602', inputSchema: {} }, async () => {
    throw new McpError(ErrorCode.InvalidParams, 'fail always fails');
  });
  server.registerTool('initializations', { description: 'How many sessions were created', inputSchema: {} },
    async () => ({ content: [{ type: 'text', text: String(initializations) }] }));
  return server;
}

const app = createMcpExpressApp();
app.post('/forget', (_req, res) => { transports.clear(); res.json({ forgotten: true }); });
app.post('/mcp', async (req, res) => {
  const sessionId = req.headers['mcp-session-id'];
  let transport = sessionId ? transports.get(sessionId) : undefined;
  if (!transport) {
    if (sessionId || !isInitializeRequest(req.body)) {
      res.status(sessionId ? 404 : 400).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => { transports.set(id, transport); initializations += 1; },
    });
    await buildServer().connect(transport);
  }
  await transport.handleRequest(req, res, req.body);
});
app.listen(Number(values.port), '127.0.0.1');
