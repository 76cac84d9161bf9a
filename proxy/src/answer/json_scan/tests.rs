use proptest::prelude::*;
use serde_json::json;

use super::*;

fn scan(chunks: &[&[u8]]) -> Result<Envelope, String> {
    let mut scan = JsonScan::new();
    for chunk in chunks {
        scan.push(chunk)?;
    }
    scan.finish()
}

fn envelope_of(text: &str) -> Result<Envelope, String> {
    scan(&[text.as_bytes()])
}

#[test]
fn a_response_is_recognised_with_its_id() {
    let envelope =
        envelope_of(r#" {"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"a \"b\" \u00e9"}]}} "#);
    let envelope = envelope.unwrap_or_else(|error| panic!("{error}"));
    assert!(envelope.answers(&json!(7)));
    assert!(!envelope.answers(&json!("7")));
    assert!(envelope.is_response());
}

#[test]
fn ids_of_every_shape_are_read_and_the_last_one_counts() {
    for (text, id) in [
        (r#"{"result":1,"id":"abc"}"#, json!("abc")),
        (r#"{"id" : -1.5e3 ,"error":{}}"#, json!(-1.5e3)),
        (r#"{"id":null,"error":{}}"#, Value::Null),
        (r#"{"id":{"a":[1,{"b":true}]},"result":0}"#, json!({"a":[1,{"b":true}]})),
        (r#"{"id":1,"id":2,"result":0}"#, json!(2)),
        (r#"{"\u0069d":9,"result":0}"#, json!(9)),
        (r#"{"nested":{"id":5},"id":6,"result":{"id":7}}"#, json!(6)),
    ] {
        let envelope = envelope_of(text).unwrap_or_else(|error| panic!("{text}: {error}"));
        assert_eq!(envelope.id, Some(id), "{text}");
    }
}

#[test]
fn what_is_not_one_json_object_or_array_is_refused() {
    for text in [
        "",
        "   ",
        "<html><body>502 Bad Gateway</body></html>",
        r#"{"id":1,"result":{"#,
        r#"{"id":1,"result":"trunc"#,
        r#"{"id":1,"result":1"#,
        r#"{"id":1,"result":12"#,
        r#"{"id":1,"result":tru"#,
        r#"{"id":1} {"id":2}"#,
        r#"{"id":1,}"#,
        r#"[1,]"#,
        r#"{"id":01}"#,
        r#"{"id":1.}"#,
        r#"{"id":-}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\u12g4"}"#,
        "{\"a\":\"raw\nnewline\"}",
        r#"{"a" 1}"#,
        r#"{"a":1]"#,
        r#""just a string""#,
        "42",
        "null",
    ] {
        assert!(envelope_of(text).is_err(), "{text:?} was accepted");
    }
    assert!(scan(&[b"{\"a\":\"\xff\"}"]).is_err(), "not UTF-8");
    assert!(scan(&[b"{\"a\":\"\xc3"]).is_err(), "ends inside a UTF-8 sequence");
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(envelope_of(&deep).is_ok());
    let deeper = "[".repeat(100_000);
    let error = envelope_of(&deeper).err().unwrap_or_default();
    assert!(error.contains("nested too deeply"), "{error}");
}

#[test]
fn mismatches_are_described() {
    let check = |text: &str, expected: &str| {
        let envelope = envelope_of(text).unwrap_or_else(|error| panic!("{error}"));
        assert!(!envelope.answers(&json!(1)));
        assert_eq!(envelope.mismatch(&json!(1)), expected, "{text}");
    };
    check(r#"{"jsonrpc":"2.0","result":{}}"#, "no id");
    check(r#"{"jsonrpc":"2.0","id":2,"result":{}}"#, "id 2 instead of 1");
    check(r#"{"jsonrpc":"2.0","id":1}"#, "neither result nor error");
    check(r#"{"jsonrpc":"2.0","id":1,"method":"x"}"#, "a request or notification, not a response");
    check(r#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#, "a JSON array");
    let long = format!(r#"{{"id":"{}","result":0}}"#, "x".repeat(2000));
    assert!(envelope_of(&long).is_ok_and(|envelope| envelope.id.is_none() && envelope.id_too_long));
}

/// JSON-looking tokens, without what serde_json refuses though the grammar allows it (lone
/// surrogate escapes, numbers out of f64's range), so serde_json can be the oracle.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b",".to_vec()),
        Just(b":".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\"id\"".to_vec()),
        Just(b"\"result\"".to_vec()),
        Just(b"\"a\\n\\u00e9\\\"\"".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"-0.5e+3".to_vec()),
        Just(b"12".to_vec()),
        Just(b"0".to_vec()),
        Just(b".".to_vec()),
        Just(b"true".to_vec()),
        Just(b"nul".to_vec()),
        Just(b"l".to_vec()),
        Just("é".as_bytes().to_vec()),
        Just(b"\xff".to_vec()),
    ];
    proptest::collection::vec(token, 0..24).prop_map(|tokens| tokens.concat())
}

fn split_at<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts {
        pieces.push(&bytes[start..cut]);
        start = cut;
    }
    pieces.push(&bytes[start..]);
    pieces
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        "[\\x00-\\x1f\"\\\\]{0,4}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![Just("id".to_owned()), Just("result".to_owned()), "[a-z]{0,6}"],
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn the_checker_agrees_with_serde_json(bytes in jsonish(), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        let expected = serde_json::from_slice::<Value>(&bytes).is_ok_and(|value| value.is_object() || value.is_array());
        let scanned = scan(&split_at(&bytes, &cuts));
        prop_assert_eq!(scanned.is_ok(), expected, "{:?}: {:?}", String::from_utf8_lossy(&bytes), scanned);
    }

    #[test]
    fn serialised_values_pass_whole_and_in_pieces(
        value in any_json(),
        pretty in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let value = match value {
            Value::Object(_) | Value::Array(_) => value,
            other => json!({ "id": other.clone(), "result": other }),
        };
        let text = if pretty { serde_json::to_vec_pretty(&value) } else { serde_json::to_vec(&value) };
        let text = text.unwrap_or_default();
        // Compared with what serde_json reads back (a float may come back one unit off).
        let value: Value = serde_json::from_slice(&text).unwrap_or_default();
        let envelope = match scan(&split_at(&text, &cuts)) {
            Ok(envelope) => envelope,
            Err(error) => return Err(TestCaseError::fail(format!("{error}: {}", String::from_utf8_lossy(&text)))),
        };
        prop_assert_eq!(envelope.is_array, value.is_array());
        prop_assert_eq!(envelope.id.as_ref(), value.get("id").filter(|_| value.is_object()));
        prop_assert_eq!(envelope.has_result, value.get("result").is_some());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = scan(&[&bytes]);
    }
}
