//! JSON-RPC checks shared by the HTTP and stdio transports: every message is parsed and checked
//! here before rmcp sees it, so that malformed input gets the JSON-RPC code the spec names
//! (rmcp answers some with a generic error, treats a known method with bad params as an unknown
//! method, and ignores others).

use rmcp::model::ErrorCode;
use serde_json::Value;

/// A message refused before it reached the server: the JSON-RPC error to answer with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rejected {
    /// -32700 (parse error), -32600 (invalid request) or -32602 (invalid params).
    pub(crate) code: ErrorCode,
    /// What was wrong, for the client and the log.
    pub(crate) message: String,
    /// The request id, when it could be read.
    pub(crate) id: Value,
}

impl Rejected {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), id: Value::Null }
    }

    /// The JSON-RPC error response.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": { "code": self.code.0, "message": self.message },
        })
    }
}

/// What the check learned from a valid message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checked {
    /// The method (None for a response to one of the server's requests).
    pub(crate) method: Option<String>,
    /// The id (null for a notification).
    pub(crate) id: Value,
}

/// Parses one message's bytes as JSON (-32700 when they are not).
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, Rejected> {
    serde_json::from_slice(bytes).map_err(|error| {
        Rejected::new(ErrorCode::PARSE_ERROR, format!("Parse error: the message is not valid JSON ({error})"))
    })
}

/// Checks that `value` is one JSON-RPC 2.0 request, notification or response, with params of the
/// shape its method needs.
pub(crate) fn check(value: &Value) -> Result<Checked, Rejected> {
    let Value::Object(object) = value else {
        return Err(Rejected::new(ErrorCode::INVALID_REQUEST, "Invalid Request: a JSON-RPC message must be an object"));
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    let invalid = |message: &str| {
        let id = if matches!(id, Value::String(_) | Value::Number(_)) { id.clone() } else { Value::Null };
        Rejected { code: ErrorCode::INVALID_REQUEST, message: format!("Invalid Request: {message}"), id }
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("\"jsonrpc\" must be \"2.0\""));
    }
    if !matches!(id, Value::Null | Value::String(_) | Value::Number(_)) || object.get("id") == Some(&Value::Null) {
        return Err(invalid("\"id\" must be a string or a number"));
    }
    let method = match object.get("method") {
        Some(Value::String(method)) => Some(method.clone()),
        Some(_) => return Err(invalid("\"method\" must be a string")),
        None if object.contains_key("result") || object.contains_key("error") => None,
        None => return Err(invalid("missing \"method\"")),
    };
    let invalid_params = |message: String| Rejected {
        code: ErrorCode::INVALID_PARAMS,
        message: format!("Invalid params: {message}"),
        id: id.clone(),
    };
    if object.get("params").is_some_and(|params| !params.is_object()) {
        return Err(invalid_params("\"params\" must be an object".to_owned()));
    }
    if let Some(method) = &method
        && let Err(error) = check_params(method, object.get("params"))
    {
        return Err(invalid_params(format!("bad params for {method}: {error}")));
    }
    Ok(Checked { method, id })
}

/// Deserializes the params of the methods whose params have a required shape; rmcp would
/// otherwise treat a known method with malformed params as an unknown method.
fn check_params(method: &str, params: Option<&Value>) -> Result<(), serde_json::Error> {
    use rmcp::model::{
        CallToolRequestParams, CompleteRequestParams, GetPromptRequestParams, InitializeRequestParams,
        PaginatedRequestParams, ReadResourceRequestParams,
    };
    fn shape<T: serde::de::DeserializeOwned>(params: Option<&Value>) -> Result<(), serde_json::Error> {
        T::deserialize(params.unwrap_or(&Value::Null)).map(drop)
    }
    match method {
        "initialize" => shape::<InitializeRequestParams>(params),
        "tools/call" => shape::<CallToolRequestParams>(params),
        "resources/read" => shape::<ReadResourceRequestParams>(params),
        "prompts/get" => shape::<GetPromptRequestParams>(params),
        "completion/complete" => shape::<CompleteRequestParams>(params),
        "tools/list" | "resources/list" | "resources/templates/list" | "prompts/list" => {
            shape::<Option<PaginatedRequestParams>>(params)
        }
        "logging/setLevel" => {
            #[allow(deprecated)]
            let checked = shape::<rmcp::model::SetLevelRequestParams>(params);
            checked
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn codes_follow_json_rpc() {
        let code = |value: Value| check(&value).err().map(|rejected| rejected.code.0);
        assert_eq!(code(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})), None);
        assert_eq!(code(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})), None);
        assert_eq!(code(json!({"jsonrpc": "2.0", "id": 1, "result": {}})), None);
        assert_eq!(code(json!([1])), Some(-32600));
        assert_eq!(code(json!({"id": 1, "method": "ping"})), Some(-32600));
        assert_eq!(code(json!({"jsonrpc": "2.0", "id": null, "method": "ping"})), Some(-32600));
        assert_eq!(code(json!({"jsonrpc": "2.0", "id": [1], "method": "ping"})), Some(-32600));
        assert_eq!(code(json!({"jsonrpc": "2.0", "id": 1, "method": 5})), Some(-32600));
        assert_eq!(
            code(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 5}})),
            Some(-32602)
        );
        assert_eq!(code(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": [1]})), Some(-32602));
        assert_eq!(parse(b"\xff{").err().map(|rejected| rejected.code.0), Some(-32700));
    }

    /// Any JSON value: scalars, and arrays and objects nested a few levels.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
            ".{0,12}".prop_map(Value::String),
            prop::sample::select(vec!["2.0", "ping", "tools/call", "initialize", "resources/read", "name", "uri"])
                .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "jsonrpc",
                        "id",
                        "method",
                        "params",
                        "result",
                        "error",
                        "name",
                        "arguments",
                        "uri",
                        "_meta",
                        "x"
                    ])
                    .prop_map(str::to_owned),
                    inner,
                    0..6
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The guard never panics, and whatever it refuses gets one of the three codes it may
        /// use, with an id that is a string, a number or null.
        #[test]
        fn check_never_panics_and_refuses_with_json_rpc_codes(value in json_value()) {
            if let Err(rejected) = check(&value) {
                prop_assert!([-32700, -32600, -32602].contains(&rejected.code.0));
                prop_assert!(matches!(rejected.id, Value::Null | Value::String(_) | Value::Number(_)));
                prop_assert!(rejected.to_json()["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
            }
        }

        /// Any bytes: parsed or refused with -32700, never a panic.
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Err(rejected) = parse(&bytes) {
                prop_assert_eq!(rejected.code.0, -32700);
            }
        }

        /// A message that passes keeps its id and method as given.
        #[test]
        fn valid_requests_keep_their_id_and_method(id in any::<i64>(), method in "[a-z]{1,8}(/[a-z]{1,8})?") {
            // Methods whose params have a required shape are checked further (see above).
            prop_assume!(!["tools/call", "prompts/get", "resources/read"].contains(&method.as_str()));
            let value = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method});
            let checked = check(&value);
            prop_assert_eq!(checked.map(|c| (c.id, c.method)), Ok((Value::from(id), Some(method))));
        }
    }
}
