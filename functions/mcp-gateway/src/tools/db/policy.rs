//! What SQL `db` runs: one read-only SELECT/WITH query whose every table is a dataset under the
//! data root (or a CTE of the query), named by its plain table name. Table functions
//! (`read_csv('/etc/passwd')`), qualified names, `SELECT … INTO` and every other table source
//! are refused, wherever they appear (subqueries, CTEs, joins, `IN (…)`, any case or quoting).
//!
//! The check walks the AST that polars itself will run: the same sqlparser (0.62), the same
//! dialect (`GenericDialect`) and the same parser options as `polars_sql::SQLContext::execute`.

use std::{collections::BTreeSet, ops::ControlFlow};

use sqlparser::{
    ast::{ObjectName, ObjectNamePart, Query, Select, Statement, TableFactor, Visit, Visitor},
    dialect::GenericDialect,
    parser::{Parser, ParserOptions},
};

/// The longest SQL text accepted.
pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// What is allowed, said in every refusal.
pub const ALLOWED: &str = "db runs one read-only SELECT or WITH query over the datasets under the data \
    root, each named by its table name (action=tables lists them, e.g. `sales_orders`); table functions \
    (read_csv, read_parquet, ...), file paths and URLs are refused";

/// A query that passed the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedQuery {
    /// The SQL, unchanged (polars parses it again, with the same parser).
    pub sql: String,
    /// The datasets the query reads, by table name (lowercase, sorted).
    pub tables: Vec<String>,
}

/// Why a query was refused; the message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Refused {
    fn because(what: impl std::fmt::Display) -> Self {
        Self(format!("{what}; {ALLOWED}"))
    }
}

/// Checks `sql` against the policy; `datasets` are the table names of the data root (lowercase).
pub fn check(sql: &str, datasets: &[String]) -> Result<CheckedQuery, Refused> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Refused(format!("the SQL is {} bytes; the limit is {MAX_SQL_BYTES}", sql.len())));
    }
    let statements = Parser::new(&GenericDialect)
        .with_options(ParserOptions { trailing_commas: true, ..ParserOptions::default() })
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|error| Refused(format!("SQL syntax error: {error}")))?;
    let statement = match statements.as_slice() {
        [statement @ Statement::Query(_)] => statement,
        [] => return Err(Refused::because("the SQL is empty")),
        [_] => {
            return Err(Refused::because(
                "only read-only queries are allowed (no INSERT, UPDATE, DELETE, CREATE, DROP, COPY, ...)",
            ));
        }
        _ => return Err(Refused::because("give exactly one statement")),
    };
    let mut ctes = CteNames::default();
    let _ = statement.visit(&mut ctes);
    let mut tables = Tables { datasets, ctes: &ctes.0, used: BTreeSet::new() };
    if let ControlFlow::Break(refusal) = statement.visit(&mut tables) {
        return Err(refusal);
    }
    Ok(CheckedQuery { sql: sql.to_owned(), tables: tables.used.into_iter().collect() })
}

/// The names of every CTE in the statement, lowercase.
#[derive(Default)]
struct CteNames(BTreeSet<String>);

impl Visitor for CteNames {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        for cte in query.with.iter().flat_map(|with| &with.cte_tables) {
            self.0.insert(cte.alias.name.value.to_ascii_lowercase());
        }
        ControlFlow::Continue(())
    }
}

/// Checks every table source; collects the datasets read.
struct Tables<'a> {
    datasets: &'a [String],
    ctes: &'a BTreeSet<String>,
    used: BTreeSet<String>,
}

impl Visitor for Tables<'_> {
    type Break = Refused;

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<Refused> {
        if select.into.is_some() {
            return ControlFlow::Break(Refused::because("SELECT ... INTO writes a table"));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Refused> {
        match factor {
            TableFactor::Table { name, args: Some(_), .. } => {
                ControlFlow::Break(Refused::because(format!("`{name}(...)` is a table function")))
            }
            TableFactor::Table { name, .. } => match self.table(name) {
                Ok(()) => ControlFlow::Continue(()),
                Err(refusal) => ControlFlow::Break(refusal),
            },
            // Subqueries, parenthesised joins and UNNEST of literal arrays read nothing by
            // themselves; what they contain is visited in turn.
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } | TableFactor::UNNEST { .. } => {
                ControlFlow::Continue(())
            }
            other => {
                let text = other.to_string();
                let shown: String = text.chars().take(60).collect();
                ControlFlow::Break(Refused::because(format!("`{shown}` is not a table")))
            }
        }
    }
}

impl Tables<'_> {
    fn table(&mut self, name: &ObjectName) -> Result<(), Refused> {
        let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
            return Err(Refused::because(format!("`{name}` is a qualified or computed name; use a plain table name")));
        };
        let lower = ident.value.to_ascii_lowercase();
        if self.ctes.contains(&lower) {
            return Ok(());
        }
        if self.datasets.contains(&lower) {
            self.used.insert(lower);
            return Ok(());
        }
        let shown: String = ident.value.chars().take(80).collect();
        Err(Refused::because(format!("`{shown}` is not a table here")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datasets() -> Vec<String> {
        vec!["sales_orders".to_owned(), "events".to_owned()]
    }

    fn refusal(sql: &str) -> String {
        match check(sql, &datasets()) {
            Ok(checked) => panic!("{sql:?} was allowed: {checked:?}"),
            Err(Refused(message)) => message,
        }
    }

    #[test]
    fn queries_over_datasets_and_ctes_pass_and_name_their_tables() {
        let tables = |sql: &str| check(sql, &datasets()).map(|checked| checked.tables);
        assert_eq!(tables("SELECT * FROM sales_orders"), Ok(vec!["sales_orders".to_owned()]));
        assert_eq!(tables("select count(*) from SALES_ORDERS"), Ok(vec!["sales_orders".to_owned()]));
        assert_eq!(
            tables("WITH t AS (SELECT * FROM events) SELECT * FROM t JOIN sales_orders s ON t.id = s.id"),
            Ok(vec!["events".to_owned(), "sales_orders".to_owned()])
        );
        assert_eq!(tables("SELECT 1 AS one"), Ok(vec![]));
        assert_eq!(tables("SELECT * FROM (SELECT * FROM events) AS e"), Ok(vec!["events".to_owned()]));
        assert_eq!(tables("SELECT * FROM UNNEST([1, 2, 3]) AS t(x)"), Ok(vec![]));
        assert_eq!(tables("SELECT a, b, FROM events"), Ok(vec!["events".to_owned()]), "trailing commas, as polars");
    }

    /// Regression: `SELECT * FROM read_csv('/outside.csv') AS sales_orders` returned the rows of a
    /// file outside the data root, and `read_csv('http://...')` made the server fetch the URL.
    #[test]
    fn db_table_functions_reading_outside_the_root_are_refused() {
        for sql in [
            "SELECT * FROM read_csv('/etc/passwd') AS sales_orders",
            "SELECT * FROM read_csv('http://169.254.169.254/latest/meta-data/') AS sales_orders",
            "select * from READ_PARQUET('s3://other-bucket/x.parquet')",
            "SELECT * FROM \"read_csv\"('/x.csv')",
            "SELECT * FROM read_json('/x.ndjson')",
            "SELECT * FROM read_ipc('/x.arrow')",
            "SELECT * FROM sales_orders WHERE id IN (SELECT id FROM read_csv('/x.csv'))",
            "WITH x AS (SELECT * FROM read_csv('/x.csv')) SELECT * FROM sales_orders",
            "SELECT * FROM sales_orders JOIN read_csv('/x.csv') AS r ON true",
            "SELECT * FROM sales_orders WHERE EXISTS (SELECT 1 FROM read_parquet('/x'))",
            "SELECT (SELECT max(a) FROM read_csv('/x.csv')) FROM sales_orders",
            "SELECT * FROM (SELECT * FROM (SELECT * FROM read_csv('/x.csv')))",
            "SELECT * FROM sales_orders UNION ALL SELECT * FROM read_csv('/x.csv')",
            "SELECT * FROM read_csv()",
        ] {
            let message = refusal(sql);
            assert!(message.contains("table function"), "{sql}: {message}");
            assert!(message.contains("action=tables"), "the refusal says what is allowed: {message}");
        }
    }

    #[test]
    fn other_table_sources_and_unknown_names_are_refused() {
        for (sql, why) in [
            ("SELECT * FROM \"/etc/passwd\"", "not a table here"),
            ("SELECT * FROM '/etc/passwd'", "not a table here"),
            ("SELECT * FROM passwd", "not a table here"),
            ("SELECT * FROM main.sales_orders", "qualified"),
            ("SELECT * FROM sales_orders.x", "qualified"),
            ("SELECT * FROM TABLE(read_csv('/x'))", "not a table"),
            ("SELECT * INTO copy FROM sales_orders", "INTO"),
            ("INSERT INTO sales_orders VALUES (1)", "only read-only queries"),
            ("COPY sales_orders TO '/tmp/x'", "only read-only queries"),
            ("CREATE TABLE x AS SELECT * FROM read_csv('/x')", "only read-only queries"),
            ("DROP TABLE sales_orders", "only read-only queries"),
            ("SELECT 1; SELECT 2", "exactly one statement"),
            ("", "empty"),
        ] {
            let message = refusal(sql);
            assert!(message.contains(why), "{sql}: {message}");
        }
        assert!(refusal(&format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES))).contains("limit"));
    }

    /// The second layer: polars-sql is built without its table functions, so even SQL that got
    /// past the check could not name a file or URL.
    #[test]
    fn polars_sql_has_no_table_functions_compiled_in() {
        for function in ["read_csv", "read_parquet", "read_json", "read_ipc"] {
            let sql = format!("SELECT * FROM {function}('/etc/passwd')");
            let error = polars_sql::SQLContext::new().execute(&sql).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("not a supported table function"), "{function}: {error}");
        }
    }
}
