use std::{
    pin::Pin,
    task::{Context, Poll},
};

use proptest::prelude::*;
use tokio::io::{AsyncRead, BufReader, ReadBuf};

use super::*;

/// A reader that hands out its bytes in the given pieces, one per read.
struct Pieces {
    pieces: std::collections::VecDeque<Vec<u8>>,
}

impl AsyncRead for Pieces {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(mut piece) = self.pieces.pop_front() {
            let n = piece.len().min(buf.remaining());
            buf.put_slice(&piece[..n]);
            if n < piece.len() {
                self.pieces.push_front(piece.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap_or_else(|error| panic!("runtime: {error}"))
}

/// Every line of `pieces` read through a buffer of `buffer` bytes, and the largest line buffer
/// capacity seen on the way.
fn read_lines(pieces: Vec<Vec<u8>>, buffer: usize, limit: usize) -> (Vec<Line>, usize) {
    runtime().block_on(async {
        let reader = BufReader::with_capacity(buffer.max(1), Pieces { pieces: pieces.into() });
        let mut lines = LineReader::new(reader, limit);
        let mut read = Vec::new();
        let mut capacity = 0;
        while let Some(line) = lines.next_line().await.unwrap_or_else(|error| panic!("read: {error}")) {
            // A complete line is the buffer itself, handed over: its capacity is the most it grew to.
            let handed_over = if let Line::Complete(line) = &line { line.capacity() } else { 0 };
            capacity = capacity.max(lines.buffer_capacity()).max(handed_over);
            read.push(line);
        }
        (read, capacity)
    })
}

/// What the lines of `bytes` must be, computed the plain way.
fn expected(bytes: &[u8], limit: usize) -> Vec<Line> {
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|last| last.is_empty()) {
        lines.pop(); // a final newline ends the last line; it does not start another
    }
    lines
        .into_iter()
        .map(|line| {
            let content = line.strip_suffix(b"\r").unwrap_or(line);
            if content.len() > limit { Line::TooLong { bytes: line.len() } } else { Line::Complete(content.to_vec()) }
        })
        .collect()
}

fn complete(text: &str) -> Line {
    Line::Complete(text.as_bytes().to_vec())
}

#[test]
fn lines_end_in_lf_or_crlf_and_the_last_needs_none() {
    let (lines, _) = read_lines(vec![b"a\nb\r\n\nc".to_vec()], 64, 16);
    assert_eq!(lines, [complete("a"), complete("b"), complete(""), complete("c")]);
}

#[test]
fn lines_that_are_not_utf8_are_returned_as_bytes() {
    let (lines, _) = read_lines(vec![b"\xff\xfe\n{}\n".to_vec()], 64, 16);
    assert_eq!(lines, [Line::Complete(vec![0xff, 0xfe]), complete("{}")]);
}

#[test]
fn a_line_over_the_limit_is_skipped_and_reading_goes_on() {
    let long = vec![b'x'; 10_000];
    let pieces = vec![b"ok\n".to_vec(), long.clone(), long, b"\nnext\n".to_vec()];
    let (lines, capacity) = read_lines(pieces, 512, 100);
    assert_eq!(lines, [complete("ok"), Line::TooLong { bytes: 20_000 }, complete("next")]);
    assert!(capacity <= 101, "capacity {capacity}");
}

#[test]
fn the_limit_counts_the_line_without_its_crlf() {
    let (lines, _) = read_lines(vec![b"abcd\r".to_vec(), b"\nabcde\r\nabcd\r".to_vec()], 3, 4);
    assert_eq!(lines, [complete("abcd"), Line::TooLong { bytes: 6 }, complete("abcd")]);
}

#[test]
fn an_over_long_last_line_without_newline_is_reported() {
    let (lines, _) = read_lines(vec![b"0123456789".to_vec()], 4, 5);
    assert_eq!(lines, [Line::TooLong { bytes: 10 }]);
}

fn pieces_of(bytes: &[u8], sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut rest = bytes;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at((*size).clamp(1, rest.len()));
        pieces.push(piece.to_vec());
        rest = tail;
    }
    pieces
}

/// Bytes with many line endings, so that lines of every length near the limit occur.
fn lineish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..24),
    ];
    proptest::collection::vec(token, 0..32).prop_map(|tokens| tokens.concat())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        sizes in proptest::collection::vec(1usize..64, 1..8),
        buffer in 1usize..32,
        limit in 0usize..64,
    ) {
        let _ = read_lines(pieces_of(&bytes, &sizes), buffer, limit);
    }

    #[test]
    fn lines_do_not_depend_on_how_the_input_is_split(
        bytes in lineish(),
        sizes in proptest::collection::vec(1usize..40, 1..8),
        buffer in 1usize..32,
        limit in 0usize..40,
    ) {
        let (lines, capacity) = read_lines(pieces_of(&bytes, &sizes), buffer, limit);
        prop_assert_eq!(&lines, &expected(&bytes, limit));
        for line in &lines {
            if let Line::Complete(line) = line {
                prop_assert!(line.len() <= limit);
            }
        }
        // The buffer never grows past the longest line it may hold (plus a last CR).
        prop_assert!(capacity <= limit + 1, "capacity {capacity} > {}", limit + 1);
    }
}
