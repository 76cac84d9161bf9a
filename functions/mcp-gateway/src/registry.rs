//! The tool registry: tool name to tool, in a deterministic order.
//!
//! A built-in tool is anything that implements [`Tool`]: the tools in `tools/` do so through the
//! typed [`TypedTool`] adapter (schemas generated from Rust types). Upstream MCP servers' tools
//! come from the federation's catalogue (`upstream::Catalogue`), with the definitions their
//! servers gave; the registry routes a call to the built-in tool or to the upstream that owns the
//! exposed name, and nothing above it knows which.

use std::{
    collections::BTreeMap,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResult,
    JsonObject, Prompt, ReadResourceResult, RequestMetaObject, Resource, ResourceContents, ResourceTemplate,
    Tool as ToolDefinition,
};
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::sync::CancellationToken;

use crate::{
    caller::Caller,
    progress::Progress,
    upstream::{
        Catalogue,
        catalogue::CatalogueError,
        client::{CallOptions, UpstreamError},
        names,
    },
};

/// A boxed, sendable future, as returned by [`Tool::call`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything a tool call may use besides its arguments.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// Cancelled when the client goes away or cancels the request.
    pub cancel: CancellationToken,
    /// Reports progress to the client when the request carried a progress token.
    pub progress: Progress,
    /// When the answer must be sent by at the latest (a Lambda invocation's deadline).
    pub deadline: Option<Instant>,
    /// Who asked.
    pub caller: Caller,
    /// The request's span, passed to upstreams as `_meta.traceparent`.
    pub trace: Option<mcp_wire::trace::TraceContext>,
}

impl CallContext {
    /// A context with no progress token and a token that is never cancelled (stdio tests, CLI).
    pub fn detached() -> Self {
        Self {
            cancel: CancellationToken::new(),
            progress: Progress::disabled(),
            deadline: None,
            caller: Caller::default(),
            trace: None,
        }
    }
}

/// One callable tool, compiled in or not.
pub trait Tool: Send + Sync + 'static {
    /// The definition advertised by `tools/list`: name, description, schemas, annotations.
    fn definition(&self) -> &ToolDefinition;

    /// Runs the tool. Failures a user can act on are `isError: true` results, never panics.
    fn call(&self, arguments: JsonObject, context: CallContext) -> BoxFuture<'_, CallToolResult>;

    /// How long one call may run before it is abandoned with an `isError` result.
    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// A failure a tool reports to its caller as an `isError: true` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError(pub String);

impl ToolError {
    /// A tool error with the given user-facing message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for ToolError {
    fn from(error: E) -> Self {
        Self(error.to_string())
    }
}

/// What a typed tool returns: its structured output and a readable text rendering of it.
#[derive(Debug)]
pub struct Output<T> {
    /// The value sent as `structuredContent`, matching the tool's `outputSchema`.
    pub structured: T,
    /// The text sent as the first content block, for clients that do not read structured output.
    pub text: String,
}

impl<T: Serialize> Output<T> {
    /// Output whose text block is the pretty-printed JSON of `structured`.
    pub fn json(structured: T) -> Self {
        let text = serde_json::to_string_pretty(&structured).unwrap_or_default();
        Self { structured, text }
    }
}

/// A tool with typed input and output; [`typed`] turns it into a [`Tool`].
pub trait TypedTool: Send + Sync + 'static {
    /// The arguments, deserialized from `tools/call` and described by the input schema.
    type Input: DeserializeOwned + JsonSchema + Send;
    /// The structured result, described by the output schema.
    type Output: Serialize + JsonSchema + Send;

    /// The tool's name, unique in the registry.
    const NAME: &'static str;
    /// A short human title.
    const TITLE: &'static str;
    /// What the tool does, written for the model that will call it.
    const DESCRIPTION: &'static str;

    /// Behaviour hints for clients (read-only, destructive, idempotent, open-world).
    fn annotations(&self) -> rmcp::model::ToolAnnotations;

    /// Runs the tool on validated input.
    fn run(
        &self,
        input: Self::Input,
        context: CallContext,
    ) -> impl Future<Output = Result<Output<Self::Output>, ToolError>> + Send;

    /// How long one call may run.
    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// Wraps a [`TypedTool`] as a [`Tool`], generating its definition once.
pub fn typed<T: TypedTool>(tool: T) -> Arc<dyn Tool> {
    let mut annotations = tool.annotations();
    annotations.title = Some(T::TITLE.to_owned());
    let definition = ToolDefinition::new(T::NAME, T::DESCRIPTION, schema_object::<T::Input>())
        .with_title(T::TITLE)
        .with_raw_output_schema(schema_object::<T::Output>())
        .with_annotations(annotations);
    Arc::new(Typed { tool, definition })
}

struct Typed<T> {
    tool: T,
    definition: ToolDefinition,
}

impl<T: TypedTool> Tool for Typed<T> {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call(&self, arguments: JsonObject, context: CallContext) -> BoxFuture<'_, CallToolResult> {
        Box::pin(async move {
            let input: T::Input = match serde_json::from_value(serde_json::Value::Object(arguments)) {
                Ok(input) => input,
                Err(error) => {
                    return error_result(format!(
                        "invalid arguments for tool `{}`: {error}; see its inputSchema in tools/list",
                        T::NAME
                    ));
                }
            };
            match self.tool.run(input, context).await {
                Ok(output) => match serde_json::to_value(&output.structured) {
                    Ok(structured) => {
                        let mut result = CallToolResult::success(vec![ContentBlock::text(output.text)]);
                        result.structured_content = Some(structured);
                        result
                    }
                    Err(error) => error_result(format!("tool `{}` produced unserializable output: {error}", T::NAME)),
                },
                Err(error) => error_result(error.0),
            }
        })
    }

    fn timeout(&self) -> Duration {
        self.tool.timeout()
    }
}

/// The offset in an opaque pagination cursor (`o<offset>`), or 0 without one; offsets above
/// `max` are refused before any library is asked to skip (or allocate) that far.
pub fn cursor_offset(cursor: Option<&str>, max: usize) -> Result<usize, ToolError> {
    let Some(cursor) = cursor else { return Ok(0) };
    let invalid = || {
        let shown: String = cursor.chars().take(40).collect();
        ToolError::new(format!("invalid cursor `{shown}`; pass the next_cursor of the previous call"))
    };
    let digits =
        cursor.strip_prefix('o').filter(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()));
    let offset: u64 = digits.and_then(|n| n.parse().ok()).ok_or_else(invalid)?;
    match usize::try_from(offset) {
        Ok(offset) if offset <= max => Ok(offset),
        _ => Err(ToolError::new(format!(
            "cursor offset {offset} is past the last page (at most {max}); start again without a cursor"
        ))),
    }
}

/// The cursor of the page after `next` items, when `total` has more.
pub fn next_cursor(next: usize, total: usize) -> Option<String> {
    (next < total).then(|| format!("o{next}"))
}

/// An `isError: true` result carrying `message` as text.
pub fn error_result(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// The JSON Schema of `T` as an object, the form MCP requires for input and output schemas.
fn schema_object<T: JsonSchema>() -> Arc<JsonObject> {
    let settings = schemars::generate::SchemaSettings::draft2020_12();
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut object = match serde_json::to_value(schema) {
        Ok(serde_json::Value::Object(object)) => object,
        _ => JsonObject::new(),
    };
    object.remove("$schema");
    object.remove("title");
    for value in object.values_mut() {
        drop_numeric_formats(value);
    }
    object.entry("type").or_insert_with(|| "object".into());
    Arc::new(object)
}

/// Removes schemars' Rust-specific numeric `format`s (`uint64`, `double`, ...): they are not
/// JSON Schema formats and validators such as AJV warn about every one of them.
fn drop_numeric_formats(value: &mut serde_json::Value) {
    const RUST_FORMATS: &[&str] =
        &["int", "uint", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float", "double"];
    match value {
        serde_json::Value::Object(object) => {
            if object.get("format").and_then(|f| f.as_str()).is_some_and(|f| RUST_FORMATS.contains(&f)) {
                object.remove("format");
            }
            object.values_mut().for_each(drop_numeric_formats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_numeric_formats),
        _ => {}
    }
}

/// All tools the server offers, ordered by name so `tools/list` is deterministic: the built-in
/// tools, then every upstream's.
#[derive(Clone, Default)]
pub struct Registry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
    upstreams: Option<Arc<Catalogue>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .field("upstreams", &self.upstreams.as_ref().map(|catalogue| catalogue.upstreams().len()))
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `tool`, replacing any tool of the same name.
    pub fn register(&mut self, tool: Arc<dyn Tool>) -> &mut Self {
        self.tools.insert(tool.definition().name.to_string(), tool);
        self
    }

    /// Serves the tools of `catalogue`'s upstreams beside the built-in ones.
    pub fn federate(&mut self, catalogue: Arc<Catalogue>) -> &mut Self {
        self.upstreams = Some(catalogue);
        self
    }

    /// The federation's catalogue, when the gateway has upstreams.
    pub fn upstreams(&self) -> Option<&Arc<Catalogue>> {
        self.upstreams.as_ref()
    }

    /// The built-in tool called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// The definition of the tool exposed as `name`, built-in or upstream (from the current
    /// catalogue, without contacting an upstream).
    pub fn definition(&self, name: &str) -> Option<ToolDefinition> {
        match self.tools.get(name) {
            Some(tool) => Some(tool.definition().clone()),
            None => self.upstreams.as_ref()?.get(name).map(|entry| entry.definition),
        }
    }

    /// Every tool definition, ordered by name: the built-in tools and the catalogue's (filled
    /// from the upstreams on first use, then refreshed in the background).
    pub async fn definitions(&self) -> Result<Vec<ToolDefinition>, CatalogueError> {
        let mut definitions: BTreeMap<String, ToolDefinition> =
            self.tools.iter().map(|(name, tool)| (name.clone(), tool.definition().clone())).collect();
        if let Some(catalogue) = &self.upstreams {
            let snapshot = catalogue.tools().await?;
            definitions.extend(snapshot.tools.iter().map(|(name, entry)| (name.clone(), entry.definition.clone())));
        }
        Ok(definitions.into_values().collect())
    }

    /// The tools of `upstream` alone, under its own names (what `/mcp/{upstream}` lists).
    pub async fn tools_of(&self, upstream: &str) -> Result<Vec<ToolDefinition>, CatalogueError> {
        let Some(catalogue) = &self.upstreams else { return Ok(Vec::new()) };
        let snapshot = catalogue.tools().await?;
        Ok(snapshot
            .tools
            .values()
            .filter(|entry| entry.upstream.name() == upstream)
            .map(|entry| {
                let mut definition = entry.definition.clone();
                definition.name = entry.original.clone().into();
                definition
            })
            .collect())
    }

    /// The exposed name of `upstream`'s own tool `original`, if the catalogue has it.
    pub async fn exposed_tool(&self, upstream: &str, original: &str) -> Option<String> {
        let snapshot = self.upstreams.as_ref()?.tools().await.ok()?;
        snapshot
            .tools
            .iter()
            .find(|(_, entry)| entry.upstream.name() == upstream && entry.original == original)
            .map(|(exposed, _)| exposed.clone())
    }

    /// Built-in tool names, ordered.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tools.keys().map(String::as_str)
    }

    /// Calls the tool `request.name` with a timeout; an unknown name is `None` (a protocol
    /// error). An upstream's JSON-RPC error stays one (`Err`); every other failure a user can act
    /// on is an `isError` result.
    ///
    /// The time limit is the tool's own, cut short to end [`DEADLINE_MARGIN`] before the
    /// context's deadline, so that on Lambda the caller gets an `isError` result naming the limit
    /// instead of the function being killed mid-answer.
    pub async fn call(
        &self,
        request: CallToolRequestParams,
        context: CallContext,
    ) -> Option<Result<CallToolResponse, rmcp::ErrorData>> {
        let name = request.name.to_string();
        if let Some(tool) = self.get(&name) {
            let (limit, hint) = time_limit(tool.timeout(), context.deadline, Instant::now());
            let cancel = context.cancel.clone();
            let arguments = request.arguments.unwrap_or_default();
            let result = tokio::select! {
                result = tokio::time::timeout(limit, tool.call(arguments, context)) => match result {
                    Ok(result) => result,
                    Err(_) => error_result(format!("tool `{name}` timed out after {:.1} s; {hint}", limit.as_secs_f64())),
                },
                () = cancel.cancelled() => error_result(format!("tool `{name}` was cancelled by the client")),
            };
            return Some(Ok(CallToolResponse::Complete(result)));
        }
        let entry = self.upstreams.as_ref()?.lookup(&name).await?;
        let (options, hint) = upstream_options(entry.upstream.config.timeout, context);
        let mut upstream_request = CallToolRequestParams::new(entry.original.clone());
        upstream_request.arguments = request.arguments;
        upstream_request.meta = forwarded_meta(request.meta);
        upstream_request.input_responses = request.input_responses;
        upstream_request.request_state = request.request_state;
        let answer = match entry.upstream.call_tool(upstream_request, options).await {
            Ok(response) => Ok(response),
            Err(UpstreamError::Rpc(error)) => Err(error),
            Err(error @ UpstreamError::Timeout { .. }) => {
                Ok(CallToolResponse::Complete(error_result(format!("tool `{name}`: {error}; {hint}"))))
            }
            Err(error) => Ok(CallToolResponse::Complete(error_result(format!("tool `{name}`: {error}")))),
        };
        Some(answer)
    }
}

impl Registry {
    /// The resources and resource templates beyond the data root's: every upstream's, under
    /// their exposed URIs.
    pub async fn resources(&self) -> Result<(Vec<Resource>, Vec<ResourceTemplate>), CatalogueError> {
        let Some(catalogue) = &self.upstreams else { return Ok((Vec::new(), Vec::new())) };
        let snapshot = catalogue.tools().await?;
        Ok((snapshot.resources.clone(), snapshot.templates.clone()))
    }

    /// Reads a resource of an upstream by its exposed URI; `None` when the URI is not one.
    pub async fn read_resource(
        &self,
        uri: &str,
        context: CallContext,
    ) -> Option<Result<ReadResourceResult, rmcp::ErrorData>> {
        let (upstream_name, original) = names::parse_resource_uri(uri)?;
        let catalogue = self.upstreams.as_ref()?;
        let Some(upstream) = catalogue.upstream(&upstream_name) else {
            return Some(Err(rmcp::ErrorData::invalid_params(format!("no upstream named `{upstream_name}`"), None)));
        };
        let (options, _) = upstream_options(upstream.config.timeout, context);
        Some(upstream.read_resource(original, options).await.map_err(rpc_error).map(|mut result| {
            for contents in &mut result.contents {
                rename_contents(contents, &upstream_name);
            }
            result
        }))
    }

    /// The prompts beyond the gateway's own: every upstream's, under their exposed names.
    pub async fn prompts(&self) -> Result<Vec<Prompt>, CatalogueError> {
        let Some(catalogue) = &self.upstreams else { return Ok(Vec::new()) };
        let snapshot = catalogue.tools().await?;
        Ok(snapshot.prompts.values().map(|entry| entry.definition.clone()).collect())
    }

    /// The prompts of `upstream` alone, under its own names.
    pub async fn prompts_of(&self, upstream: &str) -> Result<Vec<Prompt>, CatalogueError> {
        let Some(catalogue) = &self.upstreams else { return Ok(Vec::new()) };
        let snapshot = catalogue.tools().await?;
        Ok(snapshot
            .prompts
            .values()
            .filter(|entry| entry.upstream.name() == upstream)
            .map(|entry| {
                let mut definition = entry.definition.clone();
                definition.name.clone_from(&entry.original);
                definition
            })
            .collect())
    }

    /// The exposed name of `upstream`'s own prompt `original`, if the catalogue has it.
    pub async fn exposed_prompt(&self, upstream: &str, original: &str) -> Option<String> {
        let snapshot = self.upstreams.as_ref()?.tools().await.ok()?;
        snapshot
            .prompts
            .iter()
            .find(|(_, entry)| entry.upstream.name() == upstream && entry.original == original)
            .map(|(exposed, _)| exposed.clone())
    }

    /// Gets an upstream prompt by its exposed name; `None` when no upstream has it.
    pub async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: CallContext,
    ) -> Option<Result<GetPromptResult, rmcp::ErrorData>> {
        let entry = self.upstreams.as_ref()?.prompt(&request.name).await?;
        let (options, _) = upstream_options(entry.upstream.config.timeout, context);
        let mut upstream_request = GetPromptRequestParams::new(entry.original.clone());
        upstream_request.arguments = request.arguments;
        upstream_request.meta = forwarded_meta(request.meta);
        Some(entry.upstream.get_prompt(upstream_request, options).await.map_err(rpc_error))
    }
}

/// An upstream's resource contents, their URIs made the exposed ones.
fn rename_contents(contents: &mut ResourceContents, upstream: &str) {
    match contents {
        ResourceContents::TextResourceContents { uri, .. } | ResourceContents::BlobResourceContents { uri, .. } => {
            *uri = names::resource_uri(upstream, uri);
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

/// The client's `_meta` as an upstream may see it, `None` when nothing is left: without the
/// protocol's own keys (the progress token and `io.modelcontextprotocol/*`, which the gateway sets
/// for its own connection).
fn forwarded_meta(meta: Option<RequestMetaObject>) -> Option<RequestMetaObject> {
    let mut kept = meta?;
    kept.0.0.retain(|key, _| key != "progressToken" && !key.starts_with("io.modelcontextprotocol/"));
    (!kept.0.0.is_empty()).then_some(kept)
}

/// How a call to an upstream whose timeout is `timeout` runs in `context` (its time limit cut
/// short by the deadline, as for a built-in tool), and what to tell the user if it runs out.
fn upstream_options(timeout: Duration, context: CallContext) -> (CallOptions, &'static str) {
    let (limit, hint) = time_limit(timeout, context.deadline, Instant::now());
    let options = CallOptions {
        cancel: context.cancel,
        progress: context.progress,
        timeout: limit,
        caller: context.caller,
        trace: context.trace,
    };
    (options, hint)
}

/// An upstream's failure as the JSON-RPC error of a request that has no `isError` result
/// (`resources/read`, `prompts/get`): its own error as it was, anything else an internal error.
fn rpc_error(error: UpstreamError) -> rmcp::ErrorData {
    match error {
        UpstreamError::Rpc(error) => error,
        other => rmcp::ErrorData::internal_error(other.to_string(), None),
    }
}

/// How long before an invocation's deadline a tool call is abandoned, leaving time to answer.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// The time a call may run, given the tool's timeout and the request's deadline, and what to tell
/// the user if it runs out.
fn time_limit(tool_timeout: Duration, deadline: Option<Instant>, now: Instant) -> (Duration, &'static str) {
    let left = deadline.map(|deadline| deadline.saturating_duration_since(now).saturating_sub(DEADLINE_MARGIN));
    match left {
        Some(left) if left < tool_timeout => (
            left,
            "the Lambda invocation was about to time out: narrow the request (a smaller range, a LIMIT, \
             a path filter) or raise the function's Timeout (template parameter `Timeout`)",
        ),
        _ => (tool_timeout, "narrow the request (a smaller range, a LIMIT, a path filter) or raise the tool timeout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, JsonSchema)]
    struct EchoInput {
        /// Text to echo.
        text: String,
    }

    #[derive(Serialize, JsonSchema)]
    struct EchoOutput {
        echoed: String,
        length: u64,
    }

    struct Echo;

    impl TypedTool for Echo {
        type Input = EchoInput;
        type Output = EchoOutput;
        const NAME: &'static str = "echo";
        const TITLE: &'static str = "Echo";
        const DESCRIPTION: &'static str = "Echoes text.";

        fn annotations(&self) -> rmcp::model::ToolAnnotations {
            rmcp::model::ToolAnnotations::new().read_only(true)
        }

        async fn run(&self, input: EchoInput, _context: CallContext) -> Result<Output<EchoOutput>, ToolError> {
            if input.text.is_empty() {
                return Err(ToolError::new("text must not be empty"));
            }
            let length = input.text.len() as u64;
            Ok(Output::json(EchoOutput { echoed: input.text, length }))
        }
    }

    fn registry() -> Registry {
        let mut registry = Registry::new();
        registry.register(typed(Echo));
        registry
    }

    fn args(value: serde_json::Value) -> JsonObject {
        match value {
            serde_json::Value::Object(object) => object,
            _ => JsonObject::new(),
        }
    }

    #[test]
    fn typed_tool_definition_has_object_schemas_and_annotations() {
        let definitions = futures::executor::block_on(registry().definitions()).unwrap_or_default();
        let echo = &definitions[0];
        assert_eq!(echo.name, "echo");
        assert_eq!(echo.input_schema.get("type"), Some(&"object".into()));
        assert!(echo.input_schema["properties"]["text"].is_object());
        let output = echo.output_schema.as_ref().map(|schema| schema.get("type").cloned());
        assert_eq!(output, Some(Some("object".into())));
        assert_eq!(echo.annotations.as_ref().and_then(|a| a.read_only_hint), Some(true));
    }

    async fn call(name: &str, arguments: serde_json::Value) -> Option<CallToolResult> {
        let mut request = CallToolRequestParams::new(name.to_owned());
        request.arguments = Some(args(arguments));
        match registry().call(request, CallContext::detached()).await? {
            Ok(CallToolResponse::Complete(result)) => Some(result),
            other => panic!("not a complete result: {other:?}"),
        }
    }

    #[tokio::test]
    async fn call_returns_structured_content() {
        let result = call("echo", serde_json::json!({"text": "hi"})).await;
        let result = result.map(|r| (r.is_error, r.structured_content));
        assert_eq!(result, Some((Some(false), Some(serde_json::json!({"echoed": "hi", "length": 2})))));
    }

    #[tokio::test]
    async fn bad_arguments_are_an_is_error_result() {
        let Some(result) = call("echo", serde_json::json!({"txt": 1})).await else { panic!("echo is registered") };
        assert_eq!(result.is_error, Some(true));
        let text = serde_json::to_string(&result.content).unwrap_or_default();
        assert!(text.contains("missing field `text`"), "{text}");
    }

    #[tokio::test]
    async fn tool_errors_are_is_error_results() {
        let result = call("echo", serde_json::json!({"text": ""})).await;
        assert_eq!(result.and_then(|r| r.is_error), Some(true));
    }

    #[tokio::test]
    async fn unknown_tool_is_none() {
        assert!(call("nope", serde_json::json!({})).await.is_none());
    }

    #[test]
    fn lambda_deadline_shortens_the_time_limit_and_says_so() {
        let now = Instant::now();
        let tool_timeout = Duration::from_secs(600);
        let (limit, hint) = time_limit(tool_timeout, Some(now + Duration::from_secs(30)), now);
        assert_eq!(limit, Duration::from_secs(29));
        assert!(hint.contains("Timeout"), "{hint}");
        let (limit, hint) = time_limit(tool_timeout, Some(now + Duration::from_secs(900)), now);
        assert_eq!(limit, tool_timeout);
        assert!(hint.contains("raise the tool timeout"), "{hint}");
        assert_eq!(time_limit(tool_timeout, None, now).0, tool_timeout);
        // A deadline already (nearly) past leaves no time rather than wrapping around.
        assert_eq!(time_limit(tool_timeout, Some(now), now).0, Duration::ZERO);
    }

    mod cursors {
        use proptest::prelude::*;

        use super::super::{cursor_offset, next_cursor};

        proptest! {
            /// Any cursor text: an offset within the bound or a clear error, never a panic.
            #[test]
            fn cursors_parse_within_their_bound_or_are_refused(text in ".{0,30}", max in 0usize..1_000_000) {
                match cursor_offset(Some(&text), max) {
                    Ok(offset) => prop_assert!(offset <= max),
                    Err(error) => prop_assert!(error.0.contains("cursor")),
                }
            }

            /// The cursor of the next page reads back as its offset; past the bound it is refused.
            #[test]
            fn next_cursors_round_trip(next in 0usize..usize::MAX / 2, more in 1usize..10) {
                let cursor = next_cursor(next, next + more);
                prop_assert_eq!(cursor_offset(cursor.as_deref(), next).ok(), Some(next));
                if next > 0 {
                    prop_assert!(cursor_offset(cursor.as_deref(), next - 1).is_err());
                }
            }
        }
    }
}
