//! A JSON answer on its way to stdout: read whole before any of it is written, so a truncated
//! line can never reach the client.
//!
//! Up to [`MEMORY_BYTES`] stay in memory; a larger answer goes to an unnamed temporary file
//! (`O_TMPFILE` on Linux: it has no name to leave behind, even on a crash), which the stdout
//! writer copies to the pipe in the kernel once the answer is complete. Every byte is checked on
//! the way in ([`json_scan`]): the answer must be exactly one JSON object or array, and its
//! top-level `id` is noted, so an answer for another request, or one that is not JSON, is
//! replaced by an error instead of being passed on.

pub mod json_scan;

use std::{
    fs::File,
    io::{self, Seek as _, Write as _},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use serde::de::DeserializeOwned;

use self::json_scan::{Envelope, JsonScan};
use crate::errors::{AnswerProblem, Failure};

/// Answers up to this size are held in memory; larger ones go to a temporary file. 256 KiB keeps
/// the proxy's peak RSS where it was when answers were streamed through (8.4–8.7 MiB for a 22 MB
/// answer, release build); at 1 MiB the buffer added ~1 MiB to the peak (9.2–9.6 MiB), too close
/// to the 10 MB goal. Most answers are far smaller; a larger one costs a file in the page cache.
pub const MEMORY_BYTES: usize = 256 * 1024;
/// The start of a refused answer kept for the error message.
const HEAD_BYTES: usize = 512;
/// The part of an error body (4xx, 5xx) that is read; the rest is not needed for the message.
const ERROR_BODY_BYTES: usize = 64 * 1024;
/// Line breaks are rewritten in pieces of this size on their way to the temporary file.
const PIECE_BYTES: usize = 64 * 1024;

/// A complete answer, ready for stdout as one line.
#[derive(Debug)]
pub enum Body {
    /// Held in memory.
    Memory(Bytes),
    /// In an unnamed temporary file, rewound, `bytes` long.
    File {
        /// The file, positioned at its start.
        file: File,
        /// Its length.
        bytes: u64,
    },
}

impl Body {
    /// The answer parsed as `T`.
    ///
    /// # Errors
    ///
    /// When it does not parse as `T`, or the file cannot be read.
    pub fn parse<T: DeserializeOwned>(&mut self) -> serde_json::Result<T> {
        match self {
            Self::Memory(bytes) => serde_json::from_slice(bytes),
            Self::File { file, .. } => {
                let parsed = serde_json::from_reader(io::BufReader::new(&mut *file));
                file.rewind().map_err(serde_json::Error::io)?;
                parsed
            }
        }
    }
}

/// A checked, complete answer.
#[derive(Debug)]
pub struct Spooled {
    /// The answer, on one line.
    pub body: Body,
    /// What its top level says.
    pub envelope: Envelope,
    /// Its first bytes, for error messages.
    pub head: Bytes,
}

/// Collects one answer: [`push`](Self::push) its chunks, then [`finish`](Self::finish).
#[derive(Debug)]
pub struct Spool {
    limit: u64,
    bytes: u64,
    memory: Vec<u8>,
    file: Option<File>,
    scan: JsonScan,
    head: Vec<u8>,
}

impl Spool {
    /// A spool for an answer of at most `limit` bytes; `expected` is its Content-Length, if sent.
    ///
    /// # Errors
    ///
    /// When the announced length is past the limit, or the temporary file cannot be made.
    pub fn new(limit: u64, expected: Option<u64>) -> Result<Self, Failure> {
        if let Some(expected) = expected.filter(|expected| *expected > limit) {
            return Err(too_large(expected, limit, "announced by Content-Length"));
        }
        let mut spool =
            Self { limit, bytes: 0, memory: Vec::new(), file: None, scan: JsonScan::new(), head: Vec::new() };
        match expected {
            Some(expected) if expected > MEMORY_BYTES as u64 => spool.file = Some(temporary_file()?),
            Some(expected) => spool.memory.reserve_exact(expected as usize),
            None => {}
        }
        Ok(spool)
    }

    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds the next chunk of the answer.
    ///
    /// # Errors
    ///
    /// When the answer passes the limit, stops being JSON, or the temporary file fails.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Failure> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.limit {
            return Err(too_large(self.bytes, self.limit, "and more to come"));
        }
        if self.head.len() < HEAD_BYTES {
            let take = chunk.len().min(HEAD_BYTES - self.head.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        if let Err(error) = self.scan.push(chunk) {
            let mut failure = Failure::answer(AnswerProblem::NotJson, error);
            if let Failure::Answer { body, .. } = &mut failure {
                *body = Some(Bytes::from(std::mem::take(&mut self.head)));
            }
            return Err(failure);
        }
        if self.file.is_none() && self.memory.len() + chunk.len() > MEMORY_BYTES {
            let mut file = temporary_file()?;
            file.write_all(&self.memory).map_err(spool_failure)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        // Raw line breaks can only be whitespace between tokens (inside strings they are not
        // valid JSON, which the scan has refused), so they become spaces: one answer, one line.
        match &mut self.file {
            // Writes to a file land in the page cache: a few microseconds for a chunk, so they
            // are made in place rather than on a blocking thread.
            Some(file) if memchr::memchr2(b'\n', b'\r', chunk).is_some() => {
                let mut piece = Vec::with_capacity(PIECE_BYTES.min(chunk.len()));
                for part in chunk.chunks(PIECE_BYTES) {
                    piece.clear();
                    piece.extend_from_slice(part);
                    one_line(&mut piece);
                    file.write_all(&piece).map_err(spool_failure)?;
                }
            }
            Some(file) => file.write_all(chunk).map_err(spool_failure)?,
            None => {
                let start = self.memory.len();
                self.memory.extend_from_slice(chunk);
                one_line(&mut self.memory[start..]);
            }
        }
        Ok(())
    }

    /// The complete answer.
    ///
    /// # Errors
    ///
    /// When the answer is empty or ends before its JSON value does.
    pub fn finish(self) -> Result<Spooled, Failure> {
        if self.bytes == 0 {
            return Err(Failure::answer(AnswerProblem::Empty, "no body"));
        }
        let head = Bytes::from(self.head);
        let envelope = match self.scan.finish() {
            Ok(envelope) => envelope,
            Err(error) => {
                return Err(Failure::Answer { problem: AnswerProblem::NotJson, detail: error, body: Some(head) });
            }
        };
        let body = match self.file {
            Some(mut file) => {
                file.rewind().map_err(spool_failure)?;
                Body::File { file, bytes: self.bytes }
            }
            None => Body::Memory(Bytes::from(self.memory)),
        };
        Ok(Spooled { body, envelope, head })
    }
}

/// Reads a whole JSON answer into a [`Spool`], each chunk within `timeout` of the last.
///
/// # Errors
///
/// A broken, stalled, oversized or invalid answer, or a failing temporary file.
pub async fn receive(response: reqwest::Response, limit: u64, timeout: Duration) -> Result<Spooled, Failure> {
    let mut spool = Spool::new(limit, response.content_length())?;
    let mut stream = response.bytes_stream();
    loop {
        match tokio::time::timeout(timeout, stream.next()).await {
            Ok(Some(Ok(chunk))) => spool.push(&chunk)?,
            Ok(None) => return spool.finish(),
            Ok(Some(Err(error))) => {
                let detail = format!("after {} bytes: {}", spool.bytes(), crate::credentials::aws_error_chain(&error));
                return Err(Failure::answer(AnswerProblem::Broken, detail));
            }
            Err(_) => {
                let detail = format!("no data for {} s after {} bytes", timeout.as_secs(), spool.bytes());
                return Err(Failure::answer(AnswerProblem::Stalled, detail));
            }
        }
    }
}

/// At most the first [`ERROR_BODY_BYTES`] of a body, read within `timeout`: enough for the
/// message of an error status or an unexpected content type, however much the server sends.
pub async fn read_head(response: reqwest::Response, timeout: Duration) -> Bytes {
    let mut head = BytesMut::new();
    let mut stream = response.bytes_stream();
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            let take = chunk.len().min(ERROR_BODY_BYTES - head.len());
            head.extend_from_slice(&chunk[..take]);
            if head.len() >= ERROR_BODY_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    head.freeze()
}

/// Whether a content type is JSON (a missing one is taken as JSON: the scan checks anyway).
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence.is_empty() || essence == "application/json" || essence.ends_with("+json")
}

/// Whether a content type is an event stream.
pub fn is_event_stream(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("text/event-stream")
}

/// Raw CR and LF become spaces.
pub fn one_line(bytes: &mut [u8]) {
    if memchr::memchr2(b'\n', b'\r', bytes).is_some() {
        bytes.iter_mut().filter(|b| matches!(b, b'\n' | b'\r')).for_each(|b| *b = b' ');
    }
}

fn too_large(bytes: u64, limit: u64, detail: &str) -> Failure {
    Failure::answer(AnswerProblem::TooLarge, format!("{bytes} bytes ({detail}), over --max-answer-bytes {limit}"))
}

fn temporary_file() -> Result<File, Failure> {
    tempfile::tempfile().map_err(spool_failure)
}

fn spool_failure(error: io::Error) -> Failure {
    Failure::answer(AnswerProblem::Spool, format!("temporary file: {error}"))
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use serde_json::{Value, json};

    use super::*;

    fn contents(body: Body) -> Vec<u8> {
        match body {
            Body::Memory(bytes) => bytes.to_vec(),
            Body::File { mut file, bytes } => {
                let mut read = Vec::new();
                file.read_to_end(&mut read).unwrap_or_else(|error| panic!("{error}"));
                assert_eq!(read.len() as u64, bytes);
                read
            }
        }
    }

    #[test]
    fn small_answers_stay_in_memory_on_one_line() {
        let mut spool = Spool::new(1 << 20, None).unwrap_or_else(|error| panic!("{error}"));
        for chunk in [&b"{\"id\":1,\r\n"[..], b" \"result\": {\n\"a\": \"x\\ny\"}}\n"] {
            spool.push(chunk).unwrap_or_else(|error| panic!("{error}"));
        }
        let spooled = spool.finish().unwrap_or_else(|error| panic!("{error}"));
        assert!(spooled.envelope.answers(&json!(1)));
        assert!(matches!(spooled.body, Body::Memory(_)));
        assert_eq!(contents(spooled.body), b"{\"id\":1,   \"result\": { \"a\": \"x\\ny\"}} ");
    }

    #[test]
    fn large_answers_go_to_an_unnamed_file_and_parse_back() {
        let text = serde_json::to_vec_pretty(
            &json!({"jsonrpc": "2.0", "id": "big", "result": {"rows": vec!["row"; 300_000]}}),
        )
        .unwrap_or_default();
        assert!(text.len() > MEMORY_BYTES);
        let mut spool = Spool::new(1 << 30, None).unwrap_or_else(|error| panic!("{error}"));
        for chunk in text.chunks(100_000) {
            spool.push(chunk).unwrap_or_else(|error| panic!("{error}"));
        }
        let mut spooled = spool.finish().unwrap_or_else(|error| panic!("{error}"));
        assert!(matches!(spooled.body, Body::File { .. }));
        let value: Value = spooled.body.parse().unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(value["result"]["rows"].as_array().map(Vec::len), Some(300_000));
        let line = contents(spooled.body);
        assert_eq!(line.len(), text.len());
        assert!(!line.contains(&b'\n'));
    }

    #[test]
    fn truncated_empty_and_oversized_answers_are_failures() {
        let reason =
            |result: Result<Spooled, Failure>| result.err().map(|failure| failure.reason()).unwrap_or_default();
        let mut truncated = Spool::new(1024, None).unwrap_or_else(|error| panic!("{error}"));
        truncated.push(br#"{"id":1,"result":{"text":"cut he"#).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(reason(truncated.finish()), "answer-not-json");
        assert_eq!(reason(Spool::new(1024, None).and_then(Spool::finish)), "answer-empty");
        assert_eq!(reason(Spool::new(1024, Some(1025)).and_then(Spool::finish)), "answer-too-large");
        let mut growing = Spool::new(8, None).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            growing.push(b"[1,2,3,4,5]").err().map(|failure| failure.reason()).unwrap_or_default(),
            "answer-too-large"
        );
        let mut html = Spool::new(1024, None).unwrap_or_else(|error| panic!("{error}"));
        let failure = html.push(b"<html>502</html>").err();
        assert!(matches!(failure, Some(Failure::Answer { body: Some(head), .. }) if head == "<html>502</html>"));
    }

    #[test]
    fn content_types() {
        assert!(is_json("application/json; charset=utf-8") && is_json("") && is_json("application/vnd.x+json"));
        assert!(!is_json("text/html") && !is_json("text/event-stream"));
        assert!(is_event_stream("text/event-stream; charset=utf-8") && !is_event_stream("text/plain"));
    }
}
