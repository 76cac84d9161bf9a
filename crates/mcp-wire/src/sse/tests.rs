use proptest::prelude::*;

use super::*;

/// All events of `chunks`, fed one by one, then the stream's end; or the error.
fn read_all(chunks: &[&[u8]], limit: usize) -> Result<Vec<Event>, SseError> {
    let mut reader = EventReader::new(limit);
    let mut events = Vec::new();
    for chunk in chunks {
        reader.push(chunk);
        while let Some(event) = reader.next_event()? {
            events.push(event);
        }
    }
    events.extend(reader.finish()?);
    Ok(events)
}

fn data_of(stream: &[u8]) -> Vec<String> {
    events(stream).map(|event| String::from_utf8_lossy(&event.data).into_owned()).collect()
}

fn event(data: &str) -> Event {
    Event { event: None, data: Bytes::copy_from_slice(data.as_bytes()), id: None, retry: None }
}

#[test]
fn lines_end_in_lf_cr_or_crlf() {
    assert_eq!(data_of(b"data: a\n\ndata: b\r\rdata: c\r\n\r\ndata: d\n\r\n"), ["a", "b", "c", "d"]);
}

#[test]
fn a_crlf_split_across_chunks_is_one_line_ending() {
    let split = read_all(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"], 1024);
    assert_eq!(split, Ok(vec![event("a\nb")]));
}

#[test]
fn data_lines_are_joined_with_newlines() {
    assert_eq!(data_of(b"data: {\"a\":\ndata:1}\n\n"), ["{\"a\":\n1}"]);
    assert_eq!(data_of(b"data\ndata:\ndata: x\n\n"), ["\n\nx"], "a bare `data` line is an empty data line");
}

#[test]
fn only_one_space_after_the_colon_is_removed() {
    assert_eq!(data_of(b"data:  two\n\ndata:none\n\n"), [" two", "none"]);
}

#[test]
fn comments_and_unknown_fields_are_ignored() {
    assert_eq!(data_of(b": keep-alive\nfoo: bar\ndatum: x\ndata: kept\n\n:\n\n"), ["kept"]);
}

#[test]
fn events_without_data_are_not_dispatched() {
    let mut stream = events(b"event: ping\n\nid: 1\n\ndata: x\n\n");
    let only = stream.next();
    assert_eq!(only.as_ref().map(|e| (e.event.as_deref(), e.id.as_deref())), Some((None, Some("1"))));
    assert_eq!(stream.next(), None, "the event type was reset by the blank line");
}

#[test]
fn event_type_id_and_retry_are_read() {
    let all: Vec<Event> = events(b"retry: 1500\nevent: message\nid: 7\ndata: x\n\ndata: y\n\n").collect();
    assert_eq!(all[0].event.as_deref(), Some("message"));
    assert_eq!(all[0].id.as_deref(), Some("7"));
    assert_eq!(all[0].retry, Some(1500));
    assert_eq!((all[1].event.as_deref(), all[1].id.as_deref(), all[1].retry), (None, Some("7"), None));
}

#[test]
fn ids_with_nul_and_retry_values_that_are_not_digits_are_ignored() {
    let all: Vec<Event> = events(b"id: 1\ndata: a\n\nid: 2\0\nretry: 10s\nretry: -1\nretry\ndata: b\n\n").collect();
    assert_eq!(all[1].id.as_deref(), Some("1"));
    assert_eq!(all[1].retry, None);
    let mut reader = EventReader::new(64);
    reader.push(b"retry: 99999999999999999999999\nretry: 250\n\n");
    assert_eq!(reader.next_event(), Ok(None));
    assert_eq!(reader.reconnection_time(), Some(250));
}

#[test]
fn a_leading_bom_is_skipped_even_when_split() {
    assert_eq!(read_all(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"], 64), Ok(vec![event("a")]));
    assert_eq!(data_of(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n"), ["b"], "only the first BOM is skipped");
    assert_eq!(read_all(&[b"\xEF\xBB"], 64), Ok(vec![]), "a stream of half a BOM");
}

#[test]
fn finish_dispatches_an_unterminated_last_event() {
    assert_eq!(read_all(&[b"data: a\n\ndata: tail"], 64), Ok(vec![event("a"), event("tail")]));
    assert_eq!(read_all(&[b"data: tail\r"], 64), Ok(vec![event("tail")]));
    assert_eq!(read_all(&[b"data: tail\n"], 64), Ok(vec![event("tail")]));
    assert_eq!(read_all(&[b"event: x\n"], 64), Ok(vec![]), "no data, no event");
}

#[test]
fn an_event_over_the_limit_is_an_error_and_the_reader_stays_failed() {
    let mut reader = EventReader::new(16);
    reader.push(b"data: 0123456789\ndata: 0123456789\n\n");
    assert_eq!(reader.next_event(), Err(SseError::EventTooLarge { limit: 16 }));
    assert_eq!(reader.buffered_bytes(), 0, "what it held is dropped");
    reader.push(b"data: x\n\n");
    assert_eq!(reader.next_event(), Err(SseError::EventTooLarge { limit: 16 }));
    assert_eq!(reader.finish(), Err(SseError::EventTooLarge { limit: 16 }));
}

#[test]
fn an_endless_line_is_refused_while_it_grows() {
    let mut reader = EventReader::new(1000);
    let mut pushed = 0;
    let result = loop {
        reader.push(if pushed == 0 { b"data: xxxxxxxx" } else { b"xxxxxxxxxxxxxx" });
        pushed += 14;
        match reader.next_event() {
            Ok(None) => assert!(reader.buffered_bytes() <= 1000),
            other => break other,
        }
    };
    assert_eq!(result, Err(SseError::EventTooLarge { limit: 1000 }));
    assert!(pushed < 1100);
}

#[test]
fn long_comments_and_unknown_fields_take_no_memory() {
    let mut reader = EventReader::new(8);
    for _ in 0..1000 {
        reader.push(b": a comment that never ends ");
        assert_eq!(reader.next_event(), Ok(None));
        assert_eq!(reader.buffered_bytes(), 0);
    }
    reader.push(b"\nunknownfieldname: also long\ndata: ok\n\n");
    assert_eq!(reader.next_event(), Ok(Some(event("ok"))));
}

#[test]
fn events_may_be_taken_one_at_a_time_from_one_chunk() {
    let mut reader = EventReader::new(64);
    reader.push(b"data: 1\n\ndata: 2\n\ndata: 3");
    assert_eq!(reader.next_event(), Ok(Some(event("1"))));
    assert_eq!(reader.next_event(), Ok(Some(event("2"))));
    assert_eq!(reader.next_event(), Ok(None));
    assert_eq!(reader.finish(), Ok(Some(event("3"))));
}

/// The stream cut at the given (sorted, deduplicated) points.
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

/// Bytes that look like an event stream more often than random bytes do.
fn streamish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"data".to_vec()),
        Just(b"data: ".to_vec()),
        Just(b"event:".to_vec()),
        Just(b"id: ".to_vec()),
        Just(b"retry: 1".to_vec()),
        Just(b":".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"\0".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

#[derive(Debug, Clone)]
struct Sent {
    event: Option<String>,
    id: Option<String>,
    data: String,
}

fn sent_event() -> impl Strategy<Value = Sent> {
    (
        proptest::option::of("[a-z][a-z0-9/]{0,8}"),
        proptest::option::of("[a-zA-Z0-9-]{0,8}"),
        // Any text but CR, which the format cannot carry in data; LF splits it into data lines.
        "[^\r]{0,40}",
    )
        .prop_map(|(event, id, data)| Sent { event, id, data })
}

/// Serialises events the way a server would, every line ending in `ending`. (Mixed endings are
/// not a round trip: a CR ending followed by a LF ending is one CRLF.)
fn serialise(events: &[Sent], ending: &str) -> Vec<u8> {
    let mut text = String::new();
    let line = |text: &mut String, line: &str| {
        text.push_str(line);
        text.push_str(ending);
    };
    for sent in events {
        if let Some(event) = &sent.event {
            line(&mut text, &format!("event: {event}"));
        }
        if let Some(id) = &sent.id {
            line(&mut text, &format!("id: {id}"));
        }
        for data in sent.data.split('\n') {
            line(&mut text, &format!("data: {data}"));
        }
        line(&mut text, "");
    }
    text.into_bytes()
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        limit in 0usize..64,
    ) {
        let _ = read_all(&split_at(&bytes, &cuts), limit);
        let _ = events(&bytes).count();
    }

    #[test]
    fn events_do_not_depend_on_chunk_boundaries(
        stream in streamish(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        limit in prop_oneof![Just(usize::MAX), 0usize..48],
    ) {
        let whole = read_all(&[&stream], limit);
        let chunked = read_all(&split_at(&stream, &cuts), limit);
        prop_assert_eq!(&chunked, &whole);
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        prop_assert_eq!(&read_all(&bytewise, limit), &whole);
    }

    #[test]
    fn memory_stays_within_the_limit(
        stream in streamish(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        limit in 0usize..48,
    ) {
        let mut reader = EventReader::new(limit);
        for chunk in split_at(&stream, &cuts) {
            reader.push(chunk);
            while let Ok(Some(_)) = reader.next_event() {}
            // Drained: nothing but the pending event, within the limit.
            prop_assert!(reader.buffered_bytes() <= limit, "{} > {limit}", reader.buffered_bytes());
        }
    }

    #[test]
    fn serialised_events_read_back_equal(
        sent in proptest::collection::vec(sent_event(), 0..8),
        ending in prop_oneof![Just("\n"), Just("\r"), Just("\r\n")],
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let stream = serialise(&sent, ending);
        let read = read_all(&split_at(&stream, &cuts), usize::MAX);
        let mut last_id = None;
        let expected: Vec<Event> = sent
            .iter()
            .map(|sent| {
                last_id = sent.id.clone().or(last_id.take());
                Event {
                    event: sent.event.clone(),
                    data: Bytes::copy_from_slice(sent.data.as_bytes()),
                    id: last_id.clone(),
                    retry: None,
                }
            })
            .collect();
        prop_assert_eq!(read, Ok(expected));
    }
}
