//! The SQL worker: every `db` query runs in a child process of this same binary
//! (`mcp-gateway __mcp-sql-worker`), one process per query. So a query
//! - stops for real when it runs out of time or the client cancels (the process is killed; no
//!   thread of the server keeps running it),
//! - cannot take more memory than its cap (the worker's allocator refuses past it, which ends the
//!   worker, not the server), nor take the server down with a polars panic,
//! - cannot open a network socket: before it reads the query the worker installs a seccomp filter
//!   that fails `socket`, `connect` and `io_uring_setup`, so whatever SQL got through, polars has
//!   nothing to fetch a URL with. Its environment is empty: no AWS credentials either.
//!
//! The parent hands the worker only local files it resolved itself (the dataset files under a
//! local root, or their cached copies from S3), and checks the SQL before and the worker checks
//! it again before running it.

use std::{
    ffi::OsStr,
    io::{Read as _, Write as _},
    path::PathBuf,
    process::{ExitCode, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use polars::prelude::Engine;
use polars_core::query_result::QueryResult;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::{io::AsyncReadExt as _, io::AsyncWriteExt as _, sync::Semaphore};
use tokio_util::sync::CancellationToken;

use super::{Column, policy};
use crate::{
    datasets::{self, CsvDialect, Format},
    registry::ToolError,
};

/// The first argument that turns this binary into a worker (see [`run_if_requested`]).
pub const WORKER_ARG: &str = "__mcp-sql-worker";
/// The argument that runs a worker without its network sandbox (`--db-sandbox off`).
const NO_SANDBOX_ARG: &str = "--no-sandbox";
/// The largest job (SQL plus tables, with the file lists of Delta snapshots) a worker reads.
const MAX_JOB_BYTES: u64 = 64 << 20;
/// The largest answer the server reads back from a worker.
const MAX_ANSWER_BYTES: u64 = 256 << 20;
/// How much of a worker's stderr is kept to explain a failure.
const STDERR_TAIL_BYTES: usize = 4096;

/// Whether the worker forbids itself network sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Sandbox {
    /// seccomp-bpf: `socket`, `connect` and `io_uring_setup` fail with EACCES (Linux).
    #[default]
    Seccomp,
    /// No sandbox: for kernels without seccomp. Queries are still checked before they run.
    Off,
}

/// How workers are started and bounded.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The binary started as the worker: this one (it must call [`run_if_requested`] first thing
    /// in `main`, as `mcp-gateway` does).
    pub program: PathBuf,
    /// The most heap one query may use.
    pub memory_bytes: u64,
    /// polars threads per query.
    pub threads: usize,
    /// The network sandbox.
    pub sandbox: Sandbox,
    /// Queries running at once; more wait for a slot (within their time limit).
    pub slots: Arc<Semaphore>,
}

impl WorkerSettings {
    /// Settings that start `program` with at most `concurrent` queries at a time.
    pub fn new(program: PathBuf, memory_bytes: u64, concurrent: usize, sandbox: Sandbox) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        Self { program, memory_bytes, threads, sandbox, slots: Arc::new(Semaphore::new(concurrent.max(1))) }
    }

    /// This binary as the worker, as far as the OS can tell us where it is.
    pub fn current_exe(memory_bytes: u64, concurrent: usize, sandbox: Sandbox) -> std::io::Result<Self> {
        Ok(Self::new(std::env::current_exe()?, memory_bytes, concurrent, sandbox))
    }
}

/// One query, as the worker receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The SQL (already checked by the server; the worker checks it again).
    pub sql: String,
    /// The most rows to return.
    pub limit: usize,
    /// The tables the query reads, with their local files.
    pub tables: Vec<JobTable>,
    /// The worker's heap cap.
    pub memory_bytes: u64,
}

/// A table of a [`Job`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobTable {
    /// The SQL table name.
    pub name: String,
    /// The local file (or partitioned folder) to scan.
    pub path: PathBuf,
    /// The files of a hive-partitioned Parquet folder (empty for one file).
    pub files: Vec<PathBuf>,
    /// Its format.
    pub format: Format,
    /// CSV: the dialect the server detected.
    pub dialect: Option<CsvDialect>,
    /// Delta: the snapshot's files, partition values and deleted rows, resolved by the server.
    #[serde(default)]
    pub delta: Option<datasets::delta::ScanPlan>,
}

/// A query's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryOutput {
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows, one object each.
    pub rows: Vec<Map<String, Value>>,
    /// Whether more rows exist than were returned.
    pub truncated: bool,
    /// The rows as a table, for the text content.
    pub text: String,
}

/// What a worker writes to its stdout.
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    Rows(QueryOutput),
    Failed(String),
}

/// Runs `job` in a worker, within `timeout` (waiting for a free slot included), killing it when
/// the time runs out or `cancel` fires.
pub async fn run(
    settings: &WorkerSettings,
    job: &Job,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<QueryOutput, ToolError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let too_long = || {
        ToolError::new(format!(
            "the query ran longer than {} s and was stopped; add filters or a LIMIT, or raise --db-timeout",
            timeout.as_secs()
        ))
    };
    let work = async {
        let _slot =
            settings.slots.acquire().await.map_err(|_| ToolError::new("the query workers are shutting down"))?;
        run_now(settings, job).await
    };
    tokio::select! {
        result = tokio::time::timeout_at(deadline, work) => result.map_err(|_| too_long())?,
        () = cancel.cancelled() => Err(ToolError::new("the query was cancelled and its worker stopped")),
    }
}

/// Starts a worker and waits for its answer; dropping the future kills the worker.
async fn run_now(settings: &WorkerSettings, job: &Job) -> Result<QueryOutput, ToolError> {
    let started = Instant::now();
    let mut command = tokio::process::Command::new(&settings.program);
    command.arg(WORKER_ARG);
    if settings.sandbox == Sandbox::Off {
        command.arg(NO_SANDBOX_ARG);
    }
    command
        .env_clear()
        .env("POLARS_MAX_THREADS", settings.threads.to_string())
        .env("TMPDIR", std::env::temp_dir())
        // polars wants a folder of its own for spills and caches; without HOME it needs this.
        .env("POLARS_TEMP_DIR", std::env::temp_dir().join("mcp-gateway-polars"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|error| {
        ToolError::new(format!("cannot start the SQL worker {}: {error}", settings.program.display()))
    })?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(ToolError::new("the SQL worker has no pipes"));
    };
    let job_bytes =
        serde_json::to_vec(job).map_err(|error| ToolError::new(format!("cannot encode the job: {error}")))?;
    let feed = async move {
        // A worker that fails early closes its stdin; its exit status says why.
        let _ = stdin.write_all(&job_bytes).await;
        drop(stdin);
    };
    let mut answer = Vec::new();
    let read_answer = async { stdout.take(MAX_ANSWER_BYTES + 1).read_to_end(&mut answer).await };
    let (_, read, tail, status) = tokio::join!(feed, read_answer, stderr_tail(stderr), child.wait());
    let status = status.map_err(|error| ToolError::new(format!("waiting for the SQL worker: {error}")))?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, %status, "SQL worker finished");
    if answer.len() as u64 > MAX_ANSWER_BYTES {
        return Err(ToolError::new(format!(
            "the query result is larger than {} MiB; select fewer columns or rows",
            MAX_ANSWER_BYTES >> 20
        )));
    }
    read.map_err(|error| ToolError::new(format!("reading the SQL worker's answer: {error}")))?;
    if status.success() {
        return match serde_json::from_slice::<Answer>(&answer) {
            Ok(Answer::Rows(output)) => Ok(output),
            Ok(Answer::Failed(message)) => Err(ToolError::new(message)),
            Err(error) => Err(ToolError::new(format!("the SQL worker answered nonsense: {error}"))),
        };
    }
    Err(ToolError::new(explain_failure(&status, &tail, settings.memory_bytes)))
}

/// Why a worker ended without an answer, in words a user can act on.
fn explain_failure(status: &std::process::ExitStatus, stderr: &str, memory_bytes: u64) -> String {
    if stderr.contains("memory allocation of") {
        return format!(
            "the query needed more than {} MiB of memory (the SQL worker's cap, --db-memory) and was stopped; \
             aggregate, filter or LIMIT it, or raise the cap",
            memory_bytes >> 20
        );
    }
    // A panic prints "thread '…' panicked at <place>:" and then its message on the next line.
    let mut lines = stderr.lines();
    let panic = lines.by_ref().find(|line| line.contains("panicked at")).and_then(|_| lines.next());
    let last = panic.or_else(|| stderr.lines().rev().find(|line| !line.trim().is_empty())).unwrap_or("no message");
    format!("the SQL worker failed ({status}): {}", last.trim())
}

/// The last [`STDERR_TAIL_BYTES`] of a worker's stderr.
async fn stderr_tail(mut stderr: tokio::process::ChildStderr) -> String {
    let mut tail = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(read @ 1..) = stderr.read(&mut buffer).await {
        tail.extend_from_slice(&buffer[..read]);
        if tail.len() > 2 * STDERR_TAIL_BYTES {
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
        }
    }
    let start = tail.len().saturating_sub(STDERR_TAIL_BYTES);
    String::from_utf8_lossy(&tail[start..]).into_owned()
}

/// When this process was started as a SQL worker, runs the job on stdin and returns the exit
/// code; otherwise `None`. Call it first thing in `main`, before anything reads the environment
/// or starts a thread.
pub fn run_if_requested() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new(WORKER_ARG)) {
        return None;
    }
    let sandboxed = args.next().as_deref() != Some(OsStr::new(NO_SANDBOX_ARG));
    Some(worker_main(sandboxed))
}

fn worker_main(sandboxed: bool) -> ExitCode {
    let answer = if sandboxed && let Err(error) = forbid_network() {
        Answer::Failed(format!(
            "the SQL worker could not forbid itself network access ({error}); db refuses to run queries \
             unsandboxed unless started with --db-sandbox off"
        ))
    } else {
        match read_job() {
            Ok(job) => {
                crate::heap_limit::set_limit(usize::try_from(job.memory_bytes).unwrap_or(usize::MAX));
                match execute(&job) {
                    Ok(output) => Answer::Rows(output),
                    Err(message) => Answer::Failed(message),
                }
            }
            Err(message) => Answer::Failed(message),
        }
    };
    let mut stdout = std::io::stdout().lock();
    match serde_json::to_writer(&mut stdout, &answer).and_then(|()| stdout.flush().map_err(serde_json::Error::io)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn read_job() -> Result<Job, String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_JOB_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("the SQL worker could not read its job: {error}"))?;
    serde_json::from_slice(&bytes).map_err(|error| format!("the SQL worker got a malformed job: {error}"))
}

/// Runs one query (in the worker process).
fn execute(job: &Job) -> Result<QueryOutput, String> {
    let names: Vec<String> = job.tables.iter().map(|table| table.name.clone()).collect();
    let checked = policy::check(&job.sql, &names).map_err(|refused| refused.0)?;
    let context = polars_sql::SQLContext::new();
    for table in job.tables.iter().filter(|table| checked.tables.contains(&table.name)) {
        let frame = match &table.delta {
            Some(plan) => datasets::delta::scan(plan),
            None => datasets::scan(table.format, &table.path, &table.files, table.dialect),
        }
        .map_err(|error| error.to_string())?;
        context.register(&table.name, frame);
    }
    let mut context = context;
    let limit = u32::try_from(job.limit).unwrap_or(u32::MAX - 1);
    let frame = context.execute(&checked.sql).map_err(|error| error.to_string())?.limit(limit + 1);
    let frame = match frame.collect_with_engine(Engine::Streaming).map_err(|error| error.to_string())? {
        QueryResult::Single(frame) => frame,
        QueryResult::Multiple(mut frames) => frames.pop().unwrap_or_default(),
    };
    let truncated = frame.height() > job.limit;
    let frame = frame.head(Some(job.limit));
    let columns = frame
        .columns()
        .iter()
        .map(|column| Column { name: column.name().to_string(), dtype: column.dtype().to_string() })
        .collect();
    let rows = datasets::rows_of(&frame);
    let mut text = format!("{frame}");
    if truncated {
        text.push_str(&format!("\n(first {} rows; more exist: raise `limit` or aggregate)", job.limit));
    }
    Ok(QueryOutput { columns, rows, truncated, text })
}

/// Makes every later attempt of this process (all its threads, present and future) to open a
/// network socket fail with EACCES: the SQL worker's sandbox, applied before it reads its job.
/// Irreversible; only for a process that has nothing else to do.
pub fn forbid_network() -> Result<(), String> {
    sandbox::forbid_network()
}

#[cfg(target_os = "linux")]
mod sandbox {
    use std::collections::BTreeMap;

    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule};

    /// Makes `socket`, `connect` and `io_uring_setup` fail with EACCES in this process and every
    /// thread it starts from now on.
    pub(super) fn forbid_network() -> Result<(), String> {
        let rules: BTreeMap<i64, Vec<SeccompRule>> =
            [libc::SYS_socket, libc::SYS_connect, libc::SYS_io_uring_setup].into_iter().map(|n| (n, vec![])).collect();
        let arch = std::env::consts::ARCH.try_into().map_err(|error| format!("seccomp: {error:?}"))?;
        let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EACCES as u32), arch)
            .map_err(|error| format!("seccomp filter: {error}"))?;
        let program: BpfProgram = filter.try_into().map_err(|error| format!("seccomp program: {error:?}"))?;
        seccompiler::apply_filter_all_threads(&program).map_err(|error| format!("seccomp: {error}"))
    }
}

#[cfg(not(target_os = "linux"))]
mod sandbox {
    pub(super) fn forbid_network() -> Result<(), String> {
        Err("seccomp is only available on Linux".to_owned())
    }
}
