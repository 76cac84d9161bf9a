//! The SQL worker process (`mcp-gateway __mcp-sql-worker`): the binary built by this package runs
//! real queries, and these tests check what it promises: no network, a memory cap that ends only
//! the worker, and a time limit that kills it.

use std::{
    io::Write as _,
    net::TcpListener,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use mcp_gateway::{
    datasets::Format,
    tools::db::{
        Sandbox, WorkerSettings,
        worker::{self, Job, JobTable},
    },
};
use tokio_util::sync::CancellationToken;

/// The tests count this process's live workers, so they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn settings(memory: u64, sandbox: Sandbox) -> WorkerSettings {
    WorkerSettings::new(PathBuf::from(env!("CARGO_BIN_EXE_mcp-gateway")), memory, 2, sandbox)
}

fn job(sql: &str, tables: Vec<JobTable>) -> Job {
    Job { sql: sql.to_owned(), limit: 100, tables, memory_bytes: 256 << 20 }
}

fn table(name: &str, path: impl Into<PathBuf>) -> JobTable {
    JobTable {
        name: name.to_owned(),
        path: path.into(),
        files: Vec::new(),
        format: Format::Csv,
        dialect: None,
        delta: None,
    }
}

fn csv_file(rows: usize) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap_or_else(|e| panic!("temp file: {e}"));
    let mut text = String::from("id,name\n");
    for i in 0..rows {
        text.push_str(&format!("{i},name {i}\n"));
    }
    file.write_all(text.as_bytes()).unwrap_or_else(|e| panic!("write: {e}"));
    file
}

#[tokio::test]
async fn worker_answers_a_query_over_a_local_file() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let file = csv_file(10);
    let job = job("SELECT count(*) AS n, max(id) AS top FROM t", vec![table("t", file.path())]);
    let output =
        worker::run(&settings(256 << 20, Sandbox::Seccomp), &job, Duration::from_secs(60), &CancellationToken::new())
            .await;
    let output = output.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(output.rows.len(), 1);
    assert_eq!(output.rows[0]["n"], 10);
    assert_eq!(output.rows[0]["top"], 9);
}

/// Connections a listener on 127.0.0.1 receives while `work` runs.
async fn connections_during<F: std::future::Future<Output = T>, T>(work: impl FnOnce(u16) -> F) -> (T, usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|address| address.port()).unwrap_or_default();
    listener.set_nonblocking(true).ok();
    let seen = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let (counter, stop) = (seen.clone(), done.clone());
    let watcher = std::thread::spawn(move || {
        while stop.load(Ordering::Relaxed) == 0 {
            if listener.accept().is_ok() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let result = work(port).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    done.store(1, Ordering::Relaxed);
    watcher.join().ok();
    (result, seen.load(Ordering::Relaxed))
}

/// Regression: a path that is a URL made polars send HEAD and GET requests. The worker refuses
/// anything but an absolute local path before polars sees it, with or without its network
/// sandbox (which `tests/sql_sandbox.rs` tests on its own).
#[tokio::test]
async fn db_worker_never_hands_polars_a_url() {
    let _serial = ONE_AT_A_TIME.lock().await;
    for sandbox in [Sandbox::Seccomp, Sandbox::Off] {
        let (result, connections) = connections_during(|port: u16| async move {
            let url = format!("http://127.0.0.1:{port}/secret.csv");
            let job = job("SELECT * FROM remote", vec![table("remote", url)]);
            worker::run(&settings(256 << 20, sandbox), &job, Duration::from_secs(20), &CancellationToken::new()).await
        })
        .await;
        let error = result.err().map(|error| error.0).unwrap_or_default();
        assert!(error.contains("not an absolute local path"), "{sandbox:?}: {error}");
        assert_eq!(connections, 0, "{sandbox:?}: the worker reached the network");
    }
}

#[tokio::test]
async fn a_query_past_its_memory_cap_ends_its_worker_not_the_server() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let file = csv_file(3);
    let job = Job {
        memory_bytes: 64 << 20,
        ..job("SELECT lpad(name, 1000000000, 'x') AS big FROM t", vec![table("t", file.path())])
    };
    let result =
        worker::run(&settings(64 << 20, Sandbox::Seccomp), &job, Duration::from_secs(60), &CancellationToken::new())
            .await;
    let error = result.err().map(|error| error.0).unwrap_or_default();
    assert!(error.contains("more than 64 MiB of memory"), "{error}");
    // The next query runs as usual.
    let small = worker::run(
        &settings(64 << 20, Sandbox::Seccomp),
        &Job { sql: "SELECT count(*) AS n FROM t".into(), ..job },
        Duration::from_secs(60),
        &CancellationToken::new(),
    )
    .await;
    assert!(small.is_ok(), "{small:?}");
}

/// Workers of this test process still running (zombies have no command line).
fn live_workers() -> usize {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let parent =
                stat.rsplit(") ").next().and_then(|rest| rest.split(' ').nth(1)).unwrap_or_default().to_owned();
            let command = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            parent == me && String::from_utf8_lossy(&command).contains(worker::WORKER_ARG)
        })
        .count()
}

/// Regression: a timed-out query kept running on the blocking pool; now its process is killed.
#[tokio::test]
async fn db_timeout_kills_the_query_instead_of_leaving_it_running() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let file = csv_file(3000);
    let job = job("SELECT count(*) AS n FROM t a CROSS JOIN t b CROSS JOIN t c", vec![table("t", file.path())]);
    let started = Instant::now();
    let result = worker::run(
        &settings(256 << 20, Sandbox::Seccomp),
        &job,
        Duration::from_millis(1500),
        &CancellationToken::new(),
    )
    .await;
    let error = result.err().map(|error| error.0).unwrap_or_default();
    assert!(error.contains("ran longer than"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while live_workers() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(live_workers(), 0, "the worker of the timed-out query is still running");
}

#[tokio::test]
async fn a_cancelled_query_stops_its_worker() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let file = csv_file(3000);
    let job = job("SELECT count(*) AS n FROM t a CROSS JOIN t b CROSS JOIN t c", vec![table("t", file.path())]);
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        canceller.cancel();
    });
    let result = worker::run(&settings(256 << 20, Sandbox::Seccomp), &job, Duration::from_secs(60), &cancel).await;
    let error = result.err().map(|error| error.0).unwrap_or_default();
    assert!(error.contains("cancelled"), "{error}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while live_workers() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(live_workers(), 0);
}

#[tokio::test]
async fn the_worker_checks_the_sql_again() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let file = csv_file(3);
    let job = job("SELECT * FROM read_csv('/etc/passwd') AS t", vec![table("t", file.path())]);
    let result =
        worker::run(&settings(256 << 20, Sandbox::Seccomp), &job, Duration::from_secs(60), &CancellationToken::new())
            .await;
    let error = result.err().map(|error| error.0).unwrap_or_default();
    assert!(error.contains("table function"), "{error}");
}
