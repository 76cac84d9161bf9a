//! A bounded line reader for stdio transports: newline-delimited messages, each at most a given
//! number of bytes, read without ever holding more than that.
//!
//! `tokio`'s `lines()` ends at the first line that is not UTF-8 and holds any line whole,
//! however long. [`LineReader`] returns bytes (the caller decides what is valid), reports a line
//! past the limit by its length while skipping the rest of it, and carries on with the next line.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};

/// One line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line within the limit, without its `\n` or `\r\n` (not necessarily UTF-8).
    Complete(Vec<u8>),
    /// A line past the limit, skipped; `bytes` is its length (without the `\n`).
    TooLong {
        /// The length of the skipped line.
        bytes: usize,
    },
}

/// Reads lines of at most `max_line_bytes` bytes (not counting the line ending) from `reader`.
#[derive(Debug)]
pub struct LineReader<R> {
    reader: R,
    max_line_bytes: usize,
    /// The line read so far: at most `max_line_bytes + 1` bytes (a last `\r` may be half a CRLF).
    line: Vec<u8>,
    /// Bytes of the line being skipped, once it has passed the limit.
    skipped: Option<usize>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// A reader of lines of at most `max_line_bytes` bytes.
    pub fn new(reader: R, max_line_bytes: usize) -> Self {
        Self { reader, max_line_bytes, line: Vec::new(), skipped: None }
    }

    /// The next line; `Ok(None)` at the end of input. The last line needs no newline.
    ///
    /// # Errors
    ///
    /// What reading from the underlying reader returns.
    pub async fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(self.take_line());
            }
            let newline = memchr::memchr(b'\n', available);
            let part = &available[..newline.unwrap_or(available.len())];
            match &mut self.skipped {
                Some(skipped) => *skipped += part.len(),
                None if fits(&self.line, part, self.max_line_bytes) => {
                    let needed = self.line.len() + part.len();
                    if needed > self.line.capacity() {
                        // Grow as a Vec would, but never past the most a line may need.
                        let target = needed.max(self.line.capacity().saturating_mul(2)).min(self.max_line_bytes + 1);
                        self.line.reserve_exact(target.max(needed) - self.line.len());
                    }
                    self.line.extend_from_slice(part);
                }
                None => {
                    self.skipped = Some(self.line.len() + part.len());
                    self.line = Vec::new();
                }
            }
            let consumed = part.len() + usize::from(newline.is_some());
            self.reader.consume(consumed);
            if newline.is_some() {
                return Ok(Some(self.take_line().unwrap_or(Line::Complete(Vec::new()))));
            }
        }
    }

    /// The line read so far, as one line (its newline has come, or the input has ended).
    fn take_line(&mut self) -> Option<Line> {
        if let Some(bytes) = self.skipped.take() {
            return Some(Line::TooLong { bytes });
        }
        if self.line.is_empty() {
            return None;
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some(Line::Complete(line))
    }

    /// The capacity of the line buffer, for the memory tests.
    #[cfg(test)]
    fn buffer_capacity(&self) -> usize {
        self.line.capacity()
    }
}

/// Whether `line` extended by `part` can still become a line of at most `max` bytes: a last `\r`
/// does not count, as it may be the first half of a CRLF.
fn fits(line: &[u8], part: &[u8], max: usize) -> bool {
    let last = part.last().or(line.last());
    let length = line.len() + part.len() - usize::from(last == Some(&b'\r'));
    length <= max
}

#[cfg(test)]
mod tests;
