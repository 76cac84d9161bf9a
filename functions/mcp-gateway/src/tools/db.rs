//! `db`: read-only SQL over the datasets under the data root, with polars' SQL engine and its
//! streaming executor (a query over a file larger than memory still answers).
//!
//! A query is checked first (`policy`: only the datasets of the root, by table name), then run in
//! a sandboxed child process (`worker`) that is killed when the query runs out of time.

pub mod policy;
pub mod worker;

use std::time::Duration;

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    datasets::{self, Dataset, Format, delta::TimeTravel},
    registry::{CallContext, Output, ToolError, TypedTool},
    storage::Storage,
};

pub use worker::{Sandbox, WorkerSettings};

/// Limits of the `db` tool.
#[derive(Debug, Clone)]
pub struct DbLimits {
    /// Rows returned when the call does not say (default 100).
    pub default_rows: usize,
    /// The most rows one call may ask for.
    pub max_rows: usize,
    /// How long a query may run.
    pub timeout: Duration,
    /// Where and how queries run.
    pub worker: WorkerSettings,
}

impl DbLimits {
    /// The default limits, with queries run by `worker`.
    pub fn new(worker: WorkerSettings) -> Self {
        Self { default_rows: 100, max_rows: 10_000, timeout: Duration::from_secs(60), worker }
    }
}

/// The `db` tool over one data root.
#[derive(Debug, Clone)]
pub struct DbTool {
    storage: Storage,
    limits: DbLimits,
}

impl DbTool {
    /// A `db` tool over `storage`.
    pub fn new(storage: Storage, limits: DbLimits) -> Self {
        Self { storage, limits }
    }
}

/// What to do.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DbAction {
    /// List the tables: every CSV/TSV/Parquet/NDJSON file, partitioned Parquet folder and Delta
    /// table.
    Tables,
    /// Column names and types of one table.
    Describe,
    /// Run one read-only SQL query (SELECT or WITH).
    Query,
}

/// Arguments of `db`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbInput {
    /// `tables`, `describe` or `query`.
    pub action: DbAction,
    /// `describe`: the table name (see `tables`).
    pub table: Option<String>,
    /// `query`: one SELECT or WITH statement; tables are named after their paths, e.g.
    /// `sales/orders.csv` is `sales_orders`.
    pub sql: Option<String>,
    /// `query`: the most rows to return (default 100).
    pub limit: Option<usize>,
    /// `describe`/`query`: read the Delta tables at this version (time travel).
    pub version: Option<u64>,
    /// `describe`/`query`: read the Delta tables as of this time: the newest version committed
    /// at or before it (RFC 3339, e.g. `2026-01-31T12:00:00Z`, or a date).
    pub as_of: Option<String>,
}

/// A column of a table or result.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// polars data type, e.g. `i64`, `str`, `date`.
    pub dtype: String,
}

/// Result of `db`.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct DbOutput {
    /// `tables`: the tables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables: Option<Vec<Dataset>>,
    /// `describe`/`query`: the columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<Column>>,
    /// `query`: the rows, one object per row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<Map<String, Value>>>,
    /// `query`: whether more rows exist than were returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
}

impl TypedTool for DbTool {
    type Input = DbInput;
    type Output = DbOutput;
    const NAME: &'static str = "db";
    const TITLE: &'static str = "SQL over the data files";
    const DESCRIPTION: &'static str = "Read-only SQL (polars dialect) over the CSV, TSV, Parquet and NDJSON \
        files and Delta Lake tables under the data root. Each file (or Delta table folder) is a table \
        named after its path (`sales/orders.csv` → `sales_orders`). action=tables lists them, \
        action=describe shows a table's columns, action=query runs one SELECT/WITH statement and \
        returns at most `limit` rows. Delta tables are read at their latest version, or at `version` \
        or `as_of` (time travel). Only these tables can be read: no table functions (read_csv, ...), \
        file paths or URLs.";

    fn annotations(&self) -> ToolAnnotations {
        ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false)
    }

    fn timeout(&self) -> Duration {
        self.limits.timeout + Duration::from_secs(5)
    }

    async fn run(&self, input: DbInput, context: CallContext) -> Result<Output<DbOutput>, ToolError> {
        let tables = datasets::discover(&self.storage).await?;
        let at = TimeTravel::from_args(input.version, input.as_of.as_deref()).map_err(ToolError::new)?;
        // Time travel must apply to something.
        let travels = |delta: bool| match at {
            Some(_) if !delta => {
                Err(ToolError::new("`version` and `as_of` apply to Delta tables; this call reads none"))
            }
            _ => Ok(()),
        };
        match input.action {
            DbAction::Tables => {
                let text = if tables.is_empty() {
                    "no tables: the data root has no CSV, TSV, Parquet or NDJSON files or Delta tables".to_owned()
                } else {
                    tables
                        .iter()
                        .map(|t| format!("{}\t{}\t{:?}\t{} bytes", t.name, t.path, t.format, t.size))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                Ok(Output { structured: DbOutput { tables: Some(tables), ..DbOutput::default() }, text })
            }
            DbAction::Describe => {
                let name = input.table.as_deref().ok_or_else(|| ToolError::new("action=describe needs `table`"))?;
                let dataset = tables
                    .iter()
                    .find(|t| t.name.eq_ignore_ascii_case(name))
                    .ok_or_else(|| ToolError::from(datasets::DatasetError::UnknownTable(name.to_owned())))?;
                travels(dataset.format == Format::Delta)?;
                let columns: Vec<Column> = if dataset.format == Format::Delta {
                    // The snapshot's schema is the scan's: no data file needs fetching.
                    let snapshot = datasets::delta::load(&self.storage, dataset, at).await?;
                    let columns = snapshot.columns.iter();
                    columns.map(|c| Column { name: c.name.clone(), dtype: c.dtype.to_string() }).collect()
                } else {
                    let file = datasets::local_path(&self.storage, dataset).await?;
                    let dialect = datasets::csv_dialect(&self.storage, dataset).await?;
                    let format = dataset.format;
                    let schema =
                        datasets::blocking(move |_cancel| Ok(file.scan(format, dialect)?.collect_schema()?)).await?;
                    schema
                        .iter()
                        .map(|(name, dtype)| Column { name: name.to_string(), dtype: dtype.to_string() })
                        .collect()
                };
                let text = columns.iter().map(|c| format!("{}: {}", c.name, c.dtype)).collect::<Vec<_>>().join("\n");
                Ok(Output { structured: DbOutput { columns: Some(columns), ..DbOutput::default() }, text })
            }
            DbAction::Query => {
                let sql = input.sql.as_deref().ok_or_else(|| ToolError::new("action=query needs `sql`"))?;
                let limit = input.limit.unwrap_or(self.limits.default_rows);
                if limit == 0 || limit > self.limits.max_rows {
                    return Err(ToolError::new(format!("limit must be between 1 and {}", self.limits.max_rows)));
                }
                let names: Vec<String> = tables.iter().map(|table| table.name.clone()).collect();
                let checked = policy::check(sql, &names).map_err(|refused| ToolError::new(refused.0))?;
                travels(
                    tables.iter().any(|table| checked.tables.contains(&table.name) && table.format == Format::Delta),
                )?;
                context.progress.report(0.0, None, "preparing tables").await;
                let mut files = Vec::new();
                let mut job_tables = Vec::new();
                for dataset in tables.iter().filter(|table| checked.tables.contains(&table.name)) {
                    let file = datasets::open(&self.storage, dataset, at).await?;
                    job_tables.push(worker::JobTable {
                        name: dataset.name.clone(),
                        path: file.path().to_owned(),
                        files: file.files().to_vec(),
                        format: dataset.format,
                        dialect: datasets::csv_dialect(&self.storage, dataset).await?,
                        delta: file.delta().cloned(),
                    });
                    files.push(file);
                }
                context.progress.report(1.0, None, "running the query").await;
                let job = worker::Job {
                    sql: checked.sql,
                    limit,
                    tables: job_tables,
                    memory_bytes: self.limits.worker.memory_bytes,
                };
                let output = worker::run(&self.limits.worker, &job, self.limits.timeout, &context.cancel).await?;
                drop(files);
                let structured = DbOutput {
                    columns: Some(output.columns),
                    rows: Some(output.rows),
                    truncated: Some(output.truncated),
                    ..DbOutput::default()
                };
                Ok(Output { structured, text: output.text })
            }
        }
    }
}
