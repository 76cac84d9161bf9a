//! `db`: read-only SQL over the datasets under the data root, with polars' SQL engine and its
//! streaming executor (a query over a file larger than memory still answers).

use std::time::Duration;

use polars::prelude::{AnyValue, DataFrame, Engine};
use polars::sql::SQLContext;
use polars_core::query_result::QueryResult;
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlparser::{ast::Statement, dialect::GenericDialect, parser::Parser, tokenizer::Token};

use crate::{
    datasets::{self, Dataset},
    registry::{CallContext, Output, ToolError, TypedTool},
    storage::Storage,
};

/// Limits of the `db` tool.
#[derive(Debug, Clone, Copy)]
pub struct DbLimits {
    /// Rows returned when the call does not say (default 100).
    pub default_rows: usize,
    /// The most rows one call may ask for.
    pub max_rows: usize,
    /// How long a query may run.
    pub timeout: Duration,
}

impl Default for DbLimits {
    fn default() -> Self {
        Self { default_rows: 100, max_rows: 10_000, timeout: Duration::from_secs(60) }
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
    /// List the tables: every CSV/TSV/Parquet/NDJSON file (and partitioned Parquet folder).
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
}

/// A column of a table or result.
#[derive(Debug, Serialize, JsonSchema)]
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
        files under the data root. Each file is a table named after its path (`sales/orders.csv` → \
        `sales_orders`). action=tables lists them, action=describe shows a table's columns, \
        action=query runs one SELECT/WITH statement and returns at most `limit` rows.";

    fn annotations(&self) -> ToolAnnotations {
        ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false)
    }

    fn timeout(&self) -> Duration {
        self.limits.timeout + Duration::from_secs(5)
    }

    async fn run(&self, input: DbInput, context: CallContext) -> Result<Output<DbOutput>, ToolError> {
        let tables = datasets::discover(&self.storage).await?;
        match input.action {
            DbAction::Tables => {
                let text = if tables.is_empty() {
                    "no tables: the data root has no CSV, TSV, Parquet or NDJSON files".to_owned()
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
                let path = datasets::local_path(&self.storage, dataset).await?;
                let dataset = dataset.clone();
                let schema = datasets::blocking(move || {
                    let mut frame = datasets::scan(&dataset, &path, None)?;
                    Ok(frame.collect_schema()?)
                })
                .await?;
                let columns: Vec<Column> = schema
                    .iter()
                    .map(|(name, dtype)| Column { name: name.to_string(), dtype: dtype.to_string() })
                    .collect();
                let text = columns.iter().map(|c| format!("{}: {}", c.name, c.dtype)).collect::<Vec<_>>().join("\n");
                Ok(Output { structured: DbOutput { columns: Some(columns), ..DbOutput::default() }, text })
            }
            DbAction::Query => {
                let sql = input.sql.as_deref().ok_or_else(|| ToolError::new("action=query needs `sql`"))?;
                let limit = input.limit.unwrap_or(self.limits.default_rows);
                if limit == 0 || limit > self.limits.max_rows {
                    return Err(ToolError::new(format!("limit must be between 1 and {}", self.limits.max_rows)));
                }
                check_read_only(sql)?;
                let used = referenced_tables(sql, &tables);
                if used.is_empty() {
                    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
                    return Err(ToolError::new(format!(
                        "the query names no known table; tables are: {}",
                        names.join(", ")
                    )));
                }
                context.progress.report(0.0, None, "preparing tables").await;
                let mut registrations = Vec::new();
                for dataset in used {
                    let path = datasets::local_path(&self.storage, dataset).await?;
                    registrations.push((dataset.clone(), path));
                }
                context.progress.report(1.0, None, "running the query").await;
                let sql = sql.to_owned();
                let run = datasets::blocking(move || {
                    let mut ctx = SQLContext::new();
                    for (dataset, path) in &registrations {
                        ctx.register(&dataset.name, datasets::scan(dataset, path, None)?);
                    }
                    let frame = ctx.execute(&sql)?.limit(limit as u32 + 1);
                    match frame.collect_with_engine(Engine::Streaming)? {
                        QueryResult::Single(frame) => Ok(frame),
                        QueryResult::Multiple(mut frames) => Ok(frames.pop().unwrap_or_default()),
                    }
                });
                let frame = tokio::time::timeout(self.limits.timeout, run).await.map_err(|_| {
                    ToolError::new(format!(
                        "the query ran longer than {} s; add filters or a LIMIT, or raise --db-timeout",
                        self.limits.timeout.as_secs()
                    ))
                })??;
                let truncated = frame.height() > limit;
                let frame = frame.head(Some(limit));
                let columns = frame
                    .columns()
                    .iter()
                    .map(|c| Column { name: c.name().to_string(), dtype: c.dtype().to_string() })
                    .collect();
                let rows = rows_of(&frame);
                let mut text = format!("{frame}");
                if truncated {
                    text.push_str(&format!("\n(first {limit} rows; more exist: raise `limit` or aggregate)"));
                }
                let structured = DbOutput {
                    columns: Some(columns),
                    rows: Some(rows),
                    truncated: Some(truncated),
                    ..DbOutput::default()
                };
                Ok(Output { structured, text })
            }
        }
    }
}

/// Refuses anything but one SELECT/WITH query.
fn check_read_only(sql: &str) -> Result<(), ToolError> {
    let statements = Parser::parse_sql(&GenericDialect {}, sql)
        .map_err(|error| ToolError::new(format!("SQL syntax error: {error}")))?;
    match statements.as_slice() {
        [Statement::Query(_)] => Ok(()),
        [] => Err(ToolError::new("the SQL is empty; give one SELECT or WITH query")),
        [_] => Err(ToolError::new(
            "only read-only queries are allowed: one SELECT or WITH statement (no INSERT, UPDATE, DELETE, CREATE, DROP, COPY, ...)",
        )),
        _ => Err(ToolError::new("give exactly one statement (one SELECT or WITH query)")),
    }
}

/// The datasets whose names appear as identifiers in `sql`.
fn referenced_tables<'a>(sql: &str, tables: &'a [Dataset]) -> Vec<&'a Dataset> {
    let words: Vec<String> = sqlparser::tokenizer::Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|token| match token {
            Token::Word(word) => Some(word.value.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    tables.iter().filter(|table| words.contains(&table.name)).collect()
}

/// The frame as JSON objects, one per row.
pub fn rows_of(frame: &DataFrame) -> Vec<Map<String, Value>> {
    let columns = frame.columns();
    (0..frame.height())
        .map(|row| {
            columns
                .iter()
                .map(|column| {
                    let value = column.get(row).map(|value| json_value(&value)).unwrap_or(Value::Null);
                    (column.name().to_string(), value)
                })
                .collect()
        })
        .collect()
}

/// One polars value as JSON: numbers and booleans as such, temporal values and everything else
/// as their display text.
pub fn json_value(value: &AnyValue<'_>) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::String(s) => Value::String((*s).to_owned()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::UInt8(n) => (*n).into(),
        AnyValue::UInt16(n) => (*n).into(),
        AnyValue::UInt32(n) => (*n).into(),
        AnyValue::UInt64(n) => (*n).into(),
        AnyValue::Int8(n) => (*n).into(),
        AnyValue::Int16(n) => (*n).into(),
        AnyValue::Int32(n) => (*n).into(),
        AnyValue::Int64(n) => (*n).into(),
        AnyValue::Float32(x) => serde_json::Number::from_f64(f64::from(*x)).map_or(Value::Null, Value::Number),
        AnyValue::Float64(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        other => Value::String(other.to_string().trim_matches('"').to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_select_or_with_is_allowed() {
        assert!(check_read_only("SELECT 1").is_ok());
        assert!(check_read_only("WITH a AS (SELECT 1 AS x) SELECT x FROM a").is_ok());
        for bad in [
            "DELETE FROM t",
            "DROP TABLE t",
            "INSERT INTO t VALUES (1)",
            "CREATE TABLE t (a INT)",
            "UPDATE t SET a = 1",
            "SELECT 1; DROP TABLE t",
            "COPY t TO 'x'",
            "",
        ] {
            assert!(check_read_only(bad).is_err(), "{bad} was allowed");
        }
        let error = check_read_only("DROP TABLE t").err().map(|e| e.0).unwrap_or_default();
        assert!(error.contains("one SELECT or WITH"), "{error}");
    }
}
