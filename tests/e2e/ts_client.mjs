// Drives mcp-gateway with the official TypeScript SDK clients: `@modelcontextprotocol/sdk` 1.x
// (2025-11-25 initialize session) or `@modelcontextprotocol/client` 2.x (2026-07-28 stateless).
// Usage: node ts_client.mjs <sdk1|client2-legacy|client2-modern> <url> [<extra tool> <its arguments as JSON>]
// where <url> is an HTTP URL, or `stdio:` and a JSON array (command and arguments) for the stdio transport.
// Prints one JSON line with what it saw; exits non-zero on any failure.

const [flavor, url, extraTool, extraArguments] = process.argv.slice(2);

const stdio = url.startsWith("stdio:") ? JSON.parse(url.slice("stdio:".length)) : null;
const stdioParameters = stdio && { command: stdio[0], args: stdio.slice(1), stderr: "ignore" };

async function connect() {
  if (flavor === "sdk1") {
    const { Client } = await import("@modelcontextprotocol/sdk/client/index.js");
    const { StreamableHTTPClientTransport } = await import("@modelcontextprotocol/sdk/client/streamableHttp.js");
    const { StdioClientTransport } = await import("@modelcontextprotocol/sdk/client/stdio.js");
    const client = new Client({ name: "ts-sdk1-e2e", version: "1.0.0" });
    const transport = stdio ? new StdioClientTransport(stdioParameters) : new StreamableHTTPClientTransport(new URL(url));
    await client.connect(transport);
    return { client, transport, version: transport.protocolVersion ?? null, sessionId: transport.sessionId ?? null };
  }
  const { Client, StreamableHTTPClientTransport } = await import("@modelcontextprotocol/client");
  const mode = flavor === "client2-modern" ? { pin: "2026-07-28" } : "legacy";
  const client = new Client({ name: "ts-client2-e2e", version: "2.0.0" }, { versionNegotiation: { mode } });
  const { StdioClientTransport } = await import("@modelcontextprotocol/client/stdio");
  const transport = stdio ? new StdioClientTransport(stdioParameters) : new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport, version: transport.protocolVersion ?? null, sessionId: transport.sessionId ?? null };
}

const { client, version, sessionId } = await connect();
const tools = await client.listTools();
const result = await client.callTool({ name: "file", arguments: { action: "read", path: "sales/regions.csv" } });
const failed = await client.callTool({ name: "file", arguments: { action: "read", path: "/etc/passwd" } });
const extra = extraTool ? await client.callTool({ name: extraTool, arguments: JSON.parse(extraArguments ?? "{}") }) : null;
await client.close();
console.log(
  JSON.stringify({
    version,
    sessionId,
    tools: tools.tools.map((tool) => tool.name),
    readOnly: tools.tools.find((tool) => tool.name === "file")?.annotations?.readOnlyHint ?? null,
    isError: result.isError ?? false,
    text: result.structuredContent?.text ?? null,
    failedIsError: failed.isError ?? false,
    failedText: failed.content?.[0]?.text ?? null,
    extraText: extra?.content?.[0]?.text ?? null,
  }),
);
