//! How the process uses the OS: malloc's settings, and stdout (its pipe and its one writer
//! thread). The proxy is a long-lived helper on a laptop, so memory it keeps is memory the
//! user's editor does not get.

use std::io::Write as _;

use tokio::sync::{mpsc, oneshot};

/// What the stdout writer receives: one complete line (the writer adds the newline), from
/// memory or from the temporary file of a large answer. Only complete lines are ever sent, so
/// nothing truncated can reach stdout.
#[derive(Debug)]
pub enum Out {
    /// One complete line (without the newline).
    Line(bytes::Bytes),
    /// One complete line (without the newline) in a rewound temporary file of `bytes` bytes.
    File {
        /// The file, positioned at its start.
        file: std::fs::File,
        /// Its length.
        bytes: u64,
    },
}

/// glibc's malloc keeps large freed buffers: once the first ~400 KiB HTTP read buffer is freed,
/// it raises its mmap threshold to that size, so every later one is carved from the heap and the
/// heap stays grown (a 20 MB answer left 2 MiB behind). A fixed threshold hands each large buffer
/// back to the kernel when it is freed, and one arena serves the three mostly idle threads.
/// Call it first thing in `main`, before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune_allocator() {
    // SAFETY: mallopt only sets malloc parameters; glibc serialises it against other calls.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Other allocators (macOS, musl) return large buffers on their own.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}

/// Starts the one stdout writer: a thread that writes each item whole (a line and its newline are
/// never interleaved with another) and reports when its channel has closed and all is written.
///
/// A thread rather than `tokio::io::stdout()`, which copies every chunk into a buffer of its own
/// and hands each write to a blocking-pool thread: for a 20 MB answer that was an extra copy and
/// up to two more threads.
pub fn spawn_stdout_writer(mut lines: mpsc::Receiver<Out>) -> std::io::Result<oneshot::Receiver<()>> {
    let (done, writer_done) = oneshot::channel();
    grow_stdout_pipe();
    std::thread::Builder::new().name("stdout".to_owned()).stack_size(STDOUT_THREAD_STACK).spawn(move || {
        let mut stdout = std::io::stdout().lock();
        while let Some(item) = lines.blocking_recv() {
            let write = || -> std::io::Result<()> {
                match item {
                    Out::Line(line) => stdout.write_all(&line)?,
                    Out::File { mut file, bytes } => {
                        // File to pipe: std copies it in the kernel (copy_file_range, sendfile,
                        // splice), so a large answer never passes through our memory.
                        let copied = std::io::copy(&mut file, &mut stdout)?;
                        if copied != bytes {
                            // Cannot happen short of a failing disk; the line is then broken.
                            tracing::error!(
                                copied,
                                bytes,
                                reason = "spool-short-read",
                                "a spooled answer was cut short"
                            );
                        }
                    }
                }
                stdout.write_all(b"\n")?;
                stdout.flush()
            };
            if let Err(error) = write() {
                tracing::warn!(%error, "cannot write to stdout; the client has gone");
                break;
            }
        }
        done.send(()).ok();
    })?;
    Ok(writer_done)
}

/// The stdout thread only moves bytes from a channel into `write(2)` (and logs if that fails).
const STDOUT_THREAD_STACK: usize = 256 * 1024;

/// Grows stdout's pipe, when it is one, so that a large answer crosses to the client in a few
/// large writes instead of hundreds of 64 KiB hand-overs (each a pair of context switches; a
/// 21 MB line took ~25 ms instead of ~16 ms here). The kernel fills the buffer only while the
/// client is behind, and it does not count as our RSS.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn grow_stdout_pipe() {
    use std::os::fd::AsRawFd as _;
    /// The default /proc/sys/fs/pipe-max-size: the most an unprivileged process may ask for.
    const PIPE_BYTES: libc::c_int = 1 << 20;
    let fd = std::io::stdout().as_raw_fd();
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours; on anything but a pipe it
    // fails with EBADF/EINVAL and changes nothing.
    let bytes = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_BYTES) };
    if bytes < 0 {
        // Not a pipe (a socket or a file), or above the system's pipe-max-size: keep what it is.
        tracing::debug!(error = %std::io::Error::last_os_error(), "stdout pipe buffer left as it is");
    } else {
        tracing::debug!(bytes, "stdout pipe buffer");
    }
}

#[cfg(not(target_os = "linux"))]
fn grow_stdout_pipe() {}
