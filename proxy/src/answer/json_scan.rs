//! An incremental JSON checker: is this stream of bytes exactly one JSON object or array, and what
//! does its top level say (`id`, `result`, `error`, `method`)? It keeps no more than the nesting
//! stack and a few bytes of the top-level `id`, so a 200 MB answer is checked as it arrives.

use serde_json::Value;

/// Deeper answers are refused: common clients cannot parse them anyway (serde_json stops at 128
/// levels, Python's json near 1,000).
pub const MAX_DEPTH: usize = 512;
/// The longest top-level `id` kept (a longer one is no id the proxy sent).
const MAX_ID_BYTES: usize = 1024;
/// Top-level keys are kept up to this length; the interesting ones are at most 7 characters,
/// 42 bytes when every character is written as `\uXXXX`.
const MAX_KEY_BYTES: usize = 64;

/// What the top level of a complete JSON text holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// A JSON array (a batch) rather than an object.
    pub is_array: bool,
    /// The top-level `id` (the last one, as JSON parsers keep), if any.
    pub id: Option<Value>,
    /// The `id` was longer than any the proxy would accept.
    pub id_too_long: bool,
    /// A top-level `result` key.
    pub has_result: bool,
    /// A top-level `error` key.
    pub has_error: bool,
    /// A top-level `method` key.
    pub has_method: bool,
}

impl Envelope {
    /// Whether this is a response (`result` or `error`, no `method`) with exactly this id.
    pub fn answers(&self, id: &Value) -> bool {
        !self.is_array && !self.has_method && (self.has_result || self.has_error) && self.id.as_ref() == Some(id)
    }

    /// Whether this is a response of any id.
    pub fn is_response(&self) -> bool {
        !self.is_array && !self.has_method && (self.has_result || self.has_error) && self.id.is_some()
    }

    /// Why this is not the response to `id`, in a few words.
    pub fn mismatch(&self, id: &Value) -> String {
        if self.is_array {
            return "a JSON array".into();
        }
        if self.has_method {
            return "a request or notification, not a response".into();
        }
        let result = if self.has_result || self.has_error { "" } else { "neither result nor error, " };
        match &self.id {
            None if self.id_too_long => format!("{result}an id of more than {MAX_ID_BYTES} bytes instead of {id}"),
            None => format!("{result}no id"),
            Some(other) if other != id => format!("{result}id {other} instead of {id}"),
            Some(_) => result.trim_end_matches(", ").to_owned(),
        }
    }
}

/// The checker: [`push`](Self::push) every byte in order, then [`finish`](Self::finish).
#[derive(Debug)]
pub struct JsonScan {
    state: State,
    /// One byte per open container: `{` or `[`.
    stack: Vec<u8>,
    /// Bytes seen, for error messages.
    offset: u64,
    /// The end of the last chunk cut a UTF-8 sequence: its first bytes.
    utf8_carry: ([u8; 4], usize),
    /// The top-level key being read, and whether it outgrew [`MAX_KEY_BYTES`].
    key: Vec<u8>,
    key_too_long: bool,
    /// The next value is the top-level `id`.
    id_is_next: bool,
    /// The value being read is the top-level `id`: its bytes so far.
    capturing_id: bool,
    id: Vec<u8>,
    envelope: Envelope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the top-level value.
    Start,
    /// A value is expected (after `:`, `,` in an array).
    Value,
    /// Just after `[`: a value or `]`.
    ArrayStart,
    /// Just after `{`: a key or `}`.
    ObjectStart,
    /// After `,` in an object: a key.
    Key,
    /// Inside a string (`key`: an object key).
    Str {
        key: bool,
        escape: Escape,
    },
    /// After a key: `:`.
    Colon,
    /// After a value inside a container: `,` or the closing bracket.
    AfterValue,
    Number(Number),
    /// Inside `true`, `false` or `null`: the bytes still expected.
    Literal {
        word: &'static [u8],
        at: usize,
    },
    /// After the top-level value: whitespace only.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    /// Hex digits of a `\u` escape still to come.
    Unicode(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Number {
    Minus,
    Zero,
    Integer,
    FractionStart,
    Fraction,
    ExponentStart,
    ExponentSign,
    Exponent,
}

impl Number {
    fn is_complete(self) -> bool {
        matches!(self, Self::Zero | Self::Integer | Self::Fraction | Self::Exponent)
    }

    fn next(self, byte: u8) -> Option<Self> {
        match (self, byte) {
            (Self::Minus, b'0') => Some(Self::Zero),
            (Self::Minus, b'1'..=b'9') => Some(Self::Integer),
            (Self::Integer, b'0'..=b'9') => Some(Self::Integer),
            (Self::Zero | Self::Integer, b'.') => Some(Self::FractionStart),
            (Self::FractionStart | Self::Fraction, b'0'..=b'9') => Some(Self::Fraction),
            (Self::Zero | Self::Integer | Self::Fraction, b'e' | b'E') => Some(Self::ExponentStart),
            (Self::ExponentStart, b'+' | b'-') => Some(Self::ExponentSign),
            (Self::ExponentStart | Self::ExponentSign | Self::Exponent, b'0'..=b'9') => Some(Self::Exponent),
            _ => None,
        }
    }
}

impl Default for JsonScan {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonScan {
    /// A checker at the start of a JSON text.
    pub fn new() -> Self {
        Self {
            state: State::Start,
            stack: Vec::new(),
            offset: 0,
            utf8_carry: ([0; 4], 0),
            key: Vec::new(),
            key_too_long: false,
            id_is_next: false,
            capturing_id: false,
            id: Vec::new(),
            envelope: Envelope {
                is_array: false,
                id: None,
                id_too_long: false,
                has_result: false,
                has_error: false,
                has_method: false,
            },
        }
    }

    /// Checks the next bytes.
    ///
    /// # Errors
    ///
    /// What makes the text invalid, and where; the checker must not be used after an error.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.check_utf8(chunk)?;
        let mut at = 0;
        while at < chunk.len() {
            if let State::Str { key, escape: Escape::None } = self.state {
                // The bulk of a large answer is string content: skip it in one go.
                let rest = &chunk[at..];
                let plain = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).unwrap_or(rest.len());
                self.keep(&rest[..plain], key);
                at += plain;
                if at == chunk.len() {
                    break;
                }
            }
            self.byte(chunk[at]).map_err(|what| format!("{what} at byte {}", self.offset + at as u64))?;
            at += 1;
        }
        self.offset += chunk.len() as u64;
        Ok(())
    }

    /// The envelope of the complete text.
    ///
    /// # Errors
    ///
    /// When the text ended before its value was complete (or was empty).
    pub fn finish(self) -> Result<Envelope, String> {
        if self.utf8_carry.1 > 0 {
            return Err(format!("the text ends inside a UTF-8 sequence at byte {}", self.offset));
        }
        match self.state {
            State::End => Ok(self.envelope),
            State::Start => Err("the answer is empty".into()),
            _ => Err(format!("the JSON text ends early, at byte {} (truncated?)", self.offset)),
        }
    }

    fn check_utf8(&mut self, chunk: &[u8]) -> Result<(), String> {
        let mut start = 0;
        let (mut carry, mut carried) = self.utf8_carry;
        while carried > 0 && start < chunk.len() {
            carry[carried] = chunk[start];
            carried += 1;
            start += 1;
            match std::str::from_utf8(&carry[..carried]) {
                Ok(_) => carried = 0,
                Err(error) if error.error_len().is_some() || carried == carry.len() => {
                    return Err(format!("not UTF-8 at byte {}", self.offset + start as u64));
                }
                Err(_) => {}
            }
        }
        self.utf8_carry = (carry, carried);
        if carried > 0 {
            return Ok(()); // the chunk ended before the carried sequence did
        }
        if let Err(error) = std::str::from_utf8(&chunk[start..]) {
            let valid = start + error.valid_up_to();
            if error.error_len().is_some() {
                return Err(format!("not UTF-8 at byte {}", self.offset + valid as u64));
            }
            let tail = &chunk[valid..];
            carry[..tail.len()].copy_from_slice(tail);
            self.utf8_carry = (carry, tail.len());
        }
        Ok(())
    }

    /// Keeps string bytes of a top-level key or of the top-level id.
    fn keep(&mut self, bytes: &[u8], key: bool) {
        if key && self.stack.len() == 1 {
            self.keep_key(bytes);
        }
        if self.capturing_id {
            self.keep_id(bytes);
        }
    }

    fn keep_key(&mut self, bytes: &[u8]) {
        if self.key.len() + bytes.len() <= MAX_KEY_BYTES {
            self.key.extend_from_slice(bytes);
        } else {
            self.key_too_long = true;
        }
    }

    fn keep_id(&mut self, bytes: &[u8]) {
        if self.id.len() + bytes.len() <= MAX_ID_BYTES {
            self.id.extend_from_slice(bytes);
        } else {
            self.envelope.id_too_long = true;
        }
    }

    fn byte(&mut self, byte: u8) -> Result<(), &'static str> {
        if let State::Number(number) = self.state {
            if let Some(next) = number.next(byte) {
                self.capture(byte);
                self.state = State::Number(next);
                return Ok(());
            }
            if !number.is_complete() {
                return Err("malformed number");
            }
            // The number ends before this byte, which belongs to what comes next.
            self.value_done();
        }
        match self.state {
            State::Str { key, escape } => {
                self.capture(byte);
                self.string_byte(byte, key, escape)
            }
            State::Literal { word, at } => {
                if byte != word[at] {
                    return Err("malformed literal");
                }
                self.capture(byte);
                self.state = State::Literal { word, at: at + 1 };
                if at + 1 == word.len() {
                    self.value_done();
                }
                Ok(())
            }
            _ if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') => Ok(()),
            State::Start => match byte {
                b'{' | b'[' => {
                    self.envelope.is_array = byte == b'[';
                    self.open(byte)
                }
                _ => Err("not a JSON object or array: unexpected byte"),
            },
            State::Value | State::ArrayStart => {
                if byte == b']' && self.state == State::ArrayStart {
                    self.capture(byte);
                    self.close(byte)
                } else {
                    self.value_start(byte)
                }
            }
            State::ObjectStart | State::Key => match byte {
                b'"' => {
                    self.capture(byte);
                    self.key.clear();
                    self.key_too_long = false;
                    self.state = State::Str { key: true, escape: Escape::None };
                    Ok(())
                }
                b'}' if self.state == State::ObjectStart => {
                    self.capture(byte);
                    self.close(byte)
                }
                _ => Err("expected a key"),
            },
            State::Colon => match byte {
                b':' => {
                    self.capture(byte);
                    self.state = State::Value;
                    Ok(())
                }
                _ => Err("expected `:`"),
            },
            State::AfterValue => match byte {
                b',' => {
                    self.capture(byte);
                    self.state = if self.stack.last() == Some(&b'{') { State::Key } else { State::Value };
                    Ok(())
                }
                b'}' | b']' => {
                    self.capture(byte);
                    self.close(byte)
                }
                _ => Err("expected `,` or a closing bracket"),
            },
            State::End => Err("more after the JSON value"),
            State::Number(_) => Err("malformed number"), // value_done() has left this state
        }
    }

    /// Keeps `byte` when it belongs to the top-level id.
    fn capture(&mut self, byte: u8) {
        if self.capturing_id {
            self.keep_id(&[byte]);
        }
    }

    fn string_byte(&mut self, byte: u8, key: bool, escape: Escape) -> Result<(), &'static str> {
        let escape = match escape {
            Escape::None => match byte {
                b'"' => {
                    if key {
                        self.key_done();
                    } else {
                        self.value_done();
                    }
                    return Ok(());
                }
                b'\\' => Escape::Backslash,
                0..0x20 => return Err("a control character inside a string"),
                _ => Escape::None,
            },
            Escape::Backslash => match byte {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Escape::None,
                b'u' => Escape::Unicode(4),
                _ => return Err("an invalid escape"),
            },
            Escape::Unicode(left) => {
                if !byte.is_ascii_hexdigit() {
                    return Err("an invalid \\u escape");
                }
                if left == 1 { Escape::None } else { Escape::Unicode(left - 1) }
            }
        };
        if key && self.stack.len() == 1 {
            self.keep_key(&[byte]);
        }
        self.state = State::Str { key, escape };
        Ok(())
    }

    fn value_start(&mut self, byte: u8) -> Result<(), &'static str> {
        if self.id_is_next && self.stack.len() == 1 {
            self.id_is_next = false;
            self.capturing_id = true;
            self.id.clear();
        }
        self.capture(byte);
        match byte {
            b'{' | b'[' => return self.open(byte),
            b'"' => self.state = State::Str { key: false, escape: Escape::None },
            b'-' => self.state = State::Number(Number::Minus),
            b'0' => self.state = State::Number(Number::Zero),
            b'1'..=b'9' => self.state = State::Number(Number::Integer),
            b't' => self.state = State::Literal { word: b"true", at: 1 },
            b'f' => self.state = State::Literal { word: b"false", at: 1 },
            b'n' => self.state = State::Literal { word: b"null", at: 1 },
            _ => return Err("expected a value"),
        }
        Ok(())
    }

    fn open(&mut self, bracket: u8) -> Result<(), &'static str> {
        if self.stack.len() >= MAX_DEPTH {
            return Err("nested too deeply");
        }
        self.stack.push(bracket);
        self.state = if bracket == b'{' { State::ObjectStart } else { State::ArrayStart };
        Ok(())
    }

    fn close(&mut self, bracket: u8) -> Result<(), &'static str> {
        let expected = if bracket == b'}' { b'{' } else { b'[' };
        if self.stack.pop() != Some(expected) {
            return Err("mismatched closing bracket");
        }
        self.value_done();
        Ok(())
    }

    /// A top-level key is complete: note what it announces.
    fn key_done(&mut self) {
        self.state = State::Colon;
        if self.stack.len() != 1 {
            return;
        }
        self.id_is_next = false;
        if self.key_too_long || self.envelope.is_array {
            return;
        }
        let key = if self.key.contains(&b'\\') {
            let mut quoted = Vec::with_capacity(self.key.len() + 2);
            quoted.push(b'"');
            quoted.extend_from_slice(&self.key);
            quoted.push(b'"');
            serde_json::from_slice::<String>(&quoted).unwrap_or_default()
        } else {
            String::from_utf8_lossy(&self.key).into_owned()
        };
        match key.as_str() {
            "id" => {
                // The last `id` counts, as with the JSON parsers of the clients.
                self.id_is_next = true;
                self.envelope.id = None;
                self.envelope.id_too_long = false;
            }
            "result" => self.envelope.has_result = true,
            "error" => self.envelope.has_error = true,
            "method" => self.envelope.has_method = true,
            _ => {}
        }
    }

    /// A value is complete (its last byte already read): the container goes on.
    fn value_done(&mut self) {
        self.state = if self.stack.is_empty() { State::End } else { State::AfterValue };
        if self.capturing_id && self.stack.len() == 1 {
            self.capturing_id = false;
            if !self.envelope.id_too_long {
                self.envelope.id = serde_json::from_slice(&self.id).ok();
            }
            self.id = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests;
