//! Server-Sent Events: one incremental parser of `text/event-stream` for the whole workspace.
//!
//! It follows the WHATWG rules that matter for MCP's Streamable HTTP
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>):
//! lines end in LF, CR or CRLF (a CRLF may be split across two chunks); a leading UTF-8 BOM is
//! skipped; lines starting with `:` are comments; the fields are `data`, `event`, `id` (ignored
//! when it contains NUL) and `retry` (ASCII digits only); one space after the colon is removed; a
//! line without a colon is a field with an empty value; `data` lines are joined with `\n`; an
//! event is dispatched at a blank line, and only when it has data.
//!
//! Bytes are parsed as they arrive: a `data` value goes straight into the event's buffer, comments
//! and unknown fields are skipped without being kept, so a reader holds about one event. An event
//! larger than the limit given to [`EventReader::new`] is an error, not an allocation.

use bytes::{Buf as _, Bytes, BytesMut};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event` field, when it was given and not empty (the spec's default type is `message`).
    pub event: Option<String>,
    /// The `data` lines, joined with `\n` (not necessarily UTF-8: the caller decides).
    pub data: Bytes,
    /// The last event id in effect: as in the spec, an `id` carries over to later events until
    /// another `id` field replaces it. `None` until the stream has sent one.
    pub id: Option<String>,
    /// The `retry` field (milliseconds) sent since the previous event, if any.
    pub retry: Option<u64>,
}

/// Why an event stream cannot be read further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// One event needed more than `limit` bytes (its data, type and the field being read).
    #[error("an event of the stream exceeds {limit} bytes")]
    EventTooLarge {
        /// The limit given to [`EventReader::new`].
        limit: usize,
    },
}

/// An incremental event-stream parser: [`push`](Self::push) bytes as they arrive, then take
/// events with [`next_event`](Self::next_event) until it returns `Ok(None)`.
///
/// After an error the reader stays failed: it drops what it held, ignores further input and
/// returns the same error again.
#[derive(Debug)]
pub struct EventReader {
    max_event_bytes: usize,
    /// Pushed and not parsed yet (at most what the caller pushed since it last drained).
    input: BytesMut,
    /// Bytes of the UTF-8 BOM matched at the start of the stream, [`BOM_DONE`] once decided.
    bom: usize,
    state: State,
    /// The previous line ended in CR: a LF right after it completes that CRLF.
    after_cr: bool,
    /// The field name read so far; known names have at most 5 bytes, so a 6th marks it unknown.
    name: [u8; 6],
    name_len: usize,
    /// The value of an `event`, `id` or `retry` field being read.
    value: Vec<u8>,
    /// The pending event's data buffer (each `data` line adds its value and `\n`).
    data: BytesMut,
    event_type: Vec<u8>,
    last_id: Option<String>,
    retry: Option<u64>,
    reconnection_time: Option<u64>,
    failed: Option<SseError>,
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
const BOM_DONE: usize = usize::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// Reading a field name.
    Name,
    /// Reading the value of a field we keep; `fresh` until its first byte (a space is dropped).
    Value { field: Field, fresh: bool },
    /// A comment or an unknown field: skipped up to the end of the line.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Data,
    Event,
    Id,
    Retry,
}

impl Field {
    fn from_name(name: &[u8]) -> Option<Self> {
        match name {
            b"data" => Some(Self::Data),
            b"event" => Some(Self::Event),
            b"id" => Some(Self::Id),
            b"retry" => Some(Self::Retry),
            _ => None,
        }
    }
}

impl EventReader {
    /// A reader that refuses any single event of more than `max_event_bytes` bytes.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            input: BytesMut::new(),
            bom: 0,
            state: State::LineStart,
            after_cr: false,
            name: [0; 6],
            name_len: 0,
            value: Vec::new(),
            data: BytesMut::new(),
            event_type: Vec::new(),
            last_id: None,
            retry: None,
            reconnection_time: None,
            failed: None,
        }
    }

    /// Adds the next bytes of the stream (any split: inside a line, between CR and LF, ...).
    pub fn push(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.input.extend_from_slice(chunk);
        }
    }

    /// The next complete event, `Ok(None)` when the bytes pushed so far hold no further one.
    ///
    /// # Errors
    ///
    /// [`SseError::EventTooLarge`] when the event being read passes the limit.
    pub fn next_event(&mut self) -> Result<Option<Event>, SseError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if !self.skip_bom() {
            return Ok(None);
        }
        let result = self.parse();
        if let Err(error) = &result {
            self.fail(error.clone());
        }
        result
    }

    /// Ends the stream and returns the event still being read, if it has data.
    ///
    /// The spec drops an event that the stream ends in before its blank line; MCP servers
    /// sometimes omit that last blank line, so this dispatches it instead (and an unterminated
    /// last line counts as complete). Call [`next_event`](Self::next_event) until it returns
    /// `Ok(None)` first: `finish` returns one event only.
    ///
    /// # Errors
    ///
    /// [`SseError::EventTooLarge`] when the reader has failed, or the last event passes the limit.
    pub fn finish(mut self) -> Result<Option<Event>, SseError> {
        // A line ending and a blank line: the pending line completes and the event dispatches.
        // After a CR the first LF only completes that CRLF, and the second is the blank line.
        self.push(b"\n\n");
        self.next_event()
    }

    /// The latest `retry` value of the stream (milliseconds), if any, even from an event that was
    /// not dispatched.
    pub fn reconnection_time(&self) -> Option<u64> {
        self.reconnection_time
    }

    /// Bytes held for the event being read and input not parsed yet (at most the limit plus the
    /// last chunk pushed).
    pub fn buffered_bytes(&self) -> usize {
        self.input.len() + self.pending_bytes()
    }

    fn pending_bytes(&self) -> usize {
        self.data.len() + self.value.len() + self.event_type.len()
    }

    /// Skips a leading BOM; false while the input is too short to tell.
    fn skip_bom(&mut self) -> bool {
        while self.bom != BOM_DONE {
            let Some(&byte) = self.input.first() else {
                return false;
            };
            if byte == BOM[self.bom] {
                self.input.advance(1);
                self.bom += 1;
                if self.bom == BOM.len() {
                    self.bom = BOM_DONE;
                }
            } else {
                self.replay_bom();
            }
        }
        true
    }

    /// The stream started with part of a BOM only: those bytes are ordinary input after all.
    fn replay_bom(&mut self) {
        let matched = self.bom.min(BOM.len());
        let mut input = BytesMut::with_capacity(matched + self.input.len());
        input.extend_from_slice(&BOM[..matched]);
        input.extend_from_slice(&self.input);
        self.input = input;
        self.bom = BOM_DONE;
    }

    fn fail(&mut self, error: SseError) {
        self.failed = Some(error);
        self.input = BytesMut::new();
        self.data = BytesMut::new();
        self.value = Vec::new();
        self.event_type = Vec::new();
    }

    /// Parses the input up to the next dispatched event or its end.
    fn parse(&mut self) -> Result<Option<Event>, SseError> {
        let input = std::mem::take(&mut self.input);
        let mut at = 0;
        let mut dispatched = None;
        while at < input.len() && dispatched.is_none() {
            if self.after_cr {
                self.after_cr = false;
                if input[at] == b'\n' {
                    at += 1;
                    continue;
                }
            }
            let rest = &input[at..];
            match self.state {
                State::LineStart => match rest[0] {
                    b'\r' | b'\n' => {
                        self.end_line(rest[0]);
                        at += 1;
                        dispatched = self.dispatch();
                    }
                    b':' => {
                        self.state = State::Skip;
                        at += 1;
                    }
                    _ => {
                        self.state = State::Name;
                        self.name_len = 0;
                    }
                },
                State::Name => {
                    let end = memchr::memchr3(b':', b'\r', b'\n', rest);
                    let name = &rest[..end.unwrap_or(rest.len())];
                    let keep = name.len().min(self.name.len() - self.name_len);
                    self.name[self.name_len..self.name_len + keep].copy_from_slice(&name[..keep]);
                    self.name_len += keep;
                    at += name.len();
                    if let Some(end) = end {
                        let field = Field::from_name(&self.name[..self.name_len]);
                        if rest[end] == b':' {
                            at += 1;
                            self.state = match field {
                                Some(field) => State::Value { field, fresh: true },
                                None => State::Skip,
                            };
                        } else {
                            // A field name alone: the field with an empty value.
                            if let Some(field) = field {
                                self.complete_field(field)?;
                            }
                            self.end_line(rest[end]);
                            at += 1;
                        }
                    }
                }
                State::Value { field, fresh } => {
                    if fresh {
                        self.state = State::Value { field, fresh: false };
                        if rest[0] == b' ' {
                            at += 1;
                        }
                        continue;
                    }
                    let end = memchr::memchr2(b'\r', b'\n', rest);
                    let part = &rest[..end.unwrap_or(rest.len())];
                    match field {
                        Field::Data => self.data.extend_from_slice(part),
                        Field::Event | Field::Id | Field::Retry => self.value.extend_from_slice(part),
                    }
                    self.check_size()?;
                    at += part.len();
                    if let Some(end) = end {
                        self.complete_field(field)?;
                        self.end_line(rest[end]);
                        at += 1;
                    }
                }
                State::Skip => match memchr::memchr2(b'\r', b'\n', rest) {
                    Some(end) => {
                        self.end_line(rest[end]);
                        at += end + 1;
                    }
                    None => at = input.len(),
                },
            }
        }
        self.input = input;
        self.input.advance(at);
        Ok(dispatched)
    }

    fn end_line(&mut self, terminator: u8) {
        self.after_cr = terminator == b'\r';
        self.state = State::LineStart;
    }

    fn check_size(&self) -> Result<(), SseError> {
        if self.pending_bytes() > self.max_event_bytes {
            return Err(SseError::EventTooLarge { limit: self.max_event_bytes });
        }
        Ok(())
    }

    /// Applies a field whose line has ended.
    fn complete_field(&mut self, field: Field) -> Result<(), SseError> {
        match field {
            Field::Data => {
                self.data.extend_from_slice(b"\n");
                self.check_size()?;
            }
            Field::Event => self.event_type = std::mem::take(&mut self.value),
            Field::Id => {
                if !self.value.contains(&0) {
                    self.last_id = Some(String::from_utf8_lossy(&self.value).into_owned());
                }
                self.value.clear();
            }
            Field::Retry => {
                let digits = !self.value.is_empty() && self.value.iter().all(u8::is_ascii_digit);
                // Digits only; a value too large for u64 is ignored like any other bad value.
                let parsed = digits.then(|| std::str::from_utf8(&self.value).ok()?.parse::<u64>().ok()).flatten();
                if let Some(milliseconds) = parsed {
                    self.retry = Some(milliseconds);
                    self.reconnection_time = Some(milliseconds);
                }
                self.value.clear();
            }
        }
        Ok(())
    }

    /// A blank line: the pending event, if it has data; the event type is reset either way.
    fn dispatch(&mut self) -> Option<Event> {
        let event_type = std::mem::take(&mut self.event_type);
        if self.data.is_empty() {
            return None;
        }
        self.data.truncate(self.data.len() - 1); // the `\n` the last data line added
        Some(Event {
            event: (!event_type.is_empty()).then(|| String::from_utf8_lossy(&event_type).into_owned()),
            data: self.data.split().freeze(),
            id: self.last_id.clone(),
            retry: self.retry.take(),
        })
    }
}

/// The events of a complete body (no size limit: the body is in memory already), including an
/// unterminated last one (see [`EventReader::finish`]).
pub fn events(body: &[u8]) -> impl Iterator<Item = Event> + '_ {
    let mut reader = Some(EventReader::new(usize::MAX));
    if let Some(reader) = &mut reader {
        reader.push(body);
    }
    std::iter::from_fn(move || {
        let current = reader.as_mut()?;
        match current.next_event() {
            Ok(Some(event)) => Some(event),
            Ok(None) | Err(_) => reader.take()?.finish().ok().flatten(),
        }
    })
}

#[cfg(test)]
mod tests;
