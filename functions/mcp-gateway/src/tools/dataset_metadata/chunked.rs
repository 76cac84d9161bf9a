//! Bounded-memory statistics for CSV/TSV/NDJSON: the file is read in chunks of whole records
//! (quote-aware), each chunk is parsed by polars with the schema of the first, and per-column
//! accumulators are merged. Memory is one chunk plus the accumulators, whatever the file size.

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io::{BufRead, BufReader, Cursor},
    path::Path,
};

use polars::prelude::{
    CsvParseOptions, CsvReadOptions, DataFrame, DataType, JsonFormat, JsonReader, SchemaRef, SerReader as _, Series,
};
use polars_utils::aliases::{PlSeedableRandomStateQuality, SeedableFromU64SeedExt as _};
use serde_json::{Map, Value};

use super::{ColumnStats, TopValue};
use crate::datasets::{Cancelled, CsvDialect, DatasetError, Format, json_less, json_value, rows_of};

/// Bytes of records parsed at once.
const CHUNK_BYTES: usize = 4 << 20;
/// Distinct values counted exactly (as 64-bit hashes) before switching to HyperLogLog.
const EXACT_DISTINCT_LIMIT: usize = 250_000;
/// Text values whose counts are tracked for `top_values`; past it the rarest are dropped.
const TOP_TRACKED: usize = 20_000;

/// What one pass over a file yields.
#[derive(Debug)]
pub(super) struct Scan {
    /// Number of records.
    pub(super) rows: u64,
    /// Per-column statistics.
    pub(super) columns: Vec<ColumnStats>,
    /// The first records.
    pub(super) sample: Vec<Map<String, Value>>,
}

/// Scans a CSV/TSV (with `dialect`) or NDJSON file at `path` in bounded memory, stopping between
/// chunks once `cancelled` is set.
pub(super) fn scan(
    path: &Path,
    format: Format,
    dialect: Option<CsvDialect>,
    sample_rows: usize,
    top: usize,
    cancelled: &Cancelled,
) -> Result<Scan, DatasetError> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let dialect = dialect.unwrap_or(CsvDialect { separator: b',', has_header: true });
    let csv = format != Format::Ndjson;
    let header = if csv && dialect.has_header { read_record(&mut reader)? } else { Vec::new() };
    let mut schema: Option<SchemaRef> = None;
    let mut accumulators: Vec<Accumulator> = Vec::new();
    let mut sample = Vec::new();
    let mut rows = 0u64;
    loop {
        cancelled.check()?;
        let mut chunk = header.clone();
        let mut records = 0usize;
        while chunk.len() < CHUNK_BYTES {
            let record = read_record(&mut reader)?;
            if record.is_empty() {
                break;
            }
            if !record.iter().all(u8::is_ascii_whitespace) {
                chunk.extend_from_slice(&record);
                records += 1;
            }
        }
        if records == 0 {
            break;
        }
        let frame = if csv { parse_csv(chunk, dialect, schema.clone())? } else { parse_ndjson(chunk, schema.clone())? };
        if schema.is_none() {
            schema = Some(frame.schema().clone());
            accumulators = frame.columns().iter().map(|c| Accumulator::new(c.name().as_str(), c.dtype())).collect();
            sample = rows_of(&frame.head(Some(sample_rows)));
        }
        rows += frame.height() as u64;
        for (accumulator, column) in accumulators.iter_mut().zip(frame.columns()) {
            accumulator.add(column.as_materialized_series())?;
        }
    }
    let columns = accumulators.into_iter().map(|a| a.finish(top)).collect();
    Ok(Scan { rows, columns, sample })
}

/// One record: a line, or several when a quoted field holds line breaks. Empty at the end.
fn read_record(reader: &mut impl BufRead) -> Result<Vec<u8>, DatasetError> {
    let mut record = Vec::new();
    loop {
        let before = record.len();
        if reader.read_until(b'\n', &mut record)? == 0 {
            return Ok(record);
        }
        let quotes = record.iter().filter(|&&b| b == b'"').count();
        if quotes % 2 == 0 || record.len() == before {
            if !record.ends_with(b"\n") {
                record.push(b'\n');
            }
            return Ok(record);
        }
    }
}

fn parse_csv(chunk: Vec<u8>, dialect: CsvDialect, schema: Option<SchemaRef>) -> Result<DataFrame, DatasetError> {
    let parse = CsvParseOptions::default().with_separator(dialect.separator).with_try_parse_dates(true);
    let mut options = CsvReadOptions::default()
        .with_has_header(dialect.has_header)
        .with_infer_schema_length(Some(100_000))
        .with_parse_options(parse);
    if let Some(schema) = schema {
        options = options.with_schema(Some(schema));
    }
    Ok(options.into_reader_with_file_handle(Cursor::new(chunk)).finish()?)
}

fn parse_ndjson(chunk: Vec<u8>, schema: Option<SchemaRef>) -> Result<DataFrame, DatasetError> {
    let mut reader = JsonReader::new(Cursor::new(chunk)).with_json_format(JsonFormat::JsonLines);
    if let Some(schema) = schema {
        reader = reader.with_schema(schema);
    }
    Ok(reader.finish()?)
}

/// Running statistics of one column.
struct Accumulator {
    name: String,
    dtype: DataType,
    nulls: u64,
    /// Count, mean and sum of squared deviations of the non-null numbers (Chan et al.).
    moments: (u64, f64, f64),
    min: Option<Value>,
    max: Option<Value>,
    distinct: Distinct,
    top: Option<TopCounts>,
    hashes: Vec<u64>,
}

impl Accumulator {
    fn new(name: &str, dtype: &DataType) -> Self {
        Self {
            name: name.to_owned(),
            dtype: dtype.clone(),
            nulls: 0,
            moments: (0, 0.0, 0.0),
            min: None,
            max: None,
            distinct: Distinct::Exact(HashSet::new()),
            top: matches!(dtype, DataType::String).then(TopCounts::default),
            hashes: Vec::new(),
        }
    }

    fn add(&mut self, series: &Series) -> Result<(), DatasetError> {
        self.nulls += series.null_count() as u64;
        if self.dtype.is_primitive_numeric() {
            let floats = series.cast(&DataType::Float64)?;
            let count = (floats.len() - floats.null_count()) as u64;
            if count > 0 {
                let mean = floats.mean().unwrap_or(0.0);
                let m2 = floats.var(0).unwrap_or(0.0) * count as f64;
                self.moments = merge_moments(self.moments, (count, mean, m2));
            }
        }
        if self.dtype.is_primitive_numeric() || self.dtype.is_temporal() || self.dtype == DataType::String {
            let low = json_value(&series.min_reduce()?.as_any_value());
            let high = json_value(&series.max_reduce()?.as_any_value());
            if !low.is_null() && self.min.as_ref().is_none_or(|old| json_less(&low, old)) {
                self.min = Some(low);
            }
            if !high.is_null() && self.max.as_ref().is_none_or(|old| json_less(old, &high)) {
                self.max = Some(high);
            }
        }
        self.hashes.clear();
        series.vec_hash(PlSeedableRandomStateQuality::seed_from_u64(0x6d63_705f_6777), &mut self.hashes)?;
        for &hash in &self.hashes {
            self.distinct.insert(hash);
        }
        if let (Some(top), Ok(strings)) = (self.top.as_mut(), series.str()) {
            for value in strings.iter().flatten() {
                top.add(value);
            }
        }
        Ok(())
    }

    fn finish(self, top: usize) -> ColumnStats {
        let (count, mean, m2) = self.moments;
        let numeric = self.dtype.is_primitive_numeric() && count > 0;
        ColumnStats {
            name: self.name,
            dtype: self.dtype.to_string(),
            null_count: Some(self.nulls),
            distinct_is_approximate: matches!(self.distinct, Distinct::Estimated(_)),
            distinct_count: Some(self.distinct.count()),
            min: self.min,
            max: self.max,
            mean: numeric.then_some(mean),
            std: (numeric && count > 1).then(|| (m2 / (count - 1) as f64).sqrt()),
            top_values: self.top.filter(|_| top > 0).map(|counts| counts.top(top)),
        }
    }
}

fn merge_moments(a: (u64, f64, f64), b: (u64, f64, f64)) -> (u64, f64, f64) {
    let (na, mean_a, m2_a) = a;
    let (nb, mean_b, m2_b) = b;
    if na == 0 {
        return b;
    }
    let n = na + nb;
    let delta = mean_b - mean_a;
    let mean = mean_a + delta * nb as f64 / n as f64;
    let m2 = m2_a + m2_b + delta * delta * (na as f64) * (nb as f64) / n as f64;
    (n, mean, m2)
}

/// Distinct values: exact (hash set) up to a limit, then a HyperLogLog estimate.
enum Distinct {
    Exact(HashSet<u64>),
    Estimated(Box<HyperLogLog>),
}

impl Distinct {
    fn insert(&mut self, hash: u64) {
        match self {
            Self::Exact(set) => {
                set.insert(hash);
                if set.len() > EXACT_DISTINCT_LIMIT {
                    let mut sketch = Box::new(HyperLogLog::new());
                    set.iter().for_each(|&h| sketch.insert(h));
                    *self = Self::Estimated(sketch);
                }
            }
            Self::Estimated(sketch) => sketch.insert(hash),
        }
    }

    fn count(&self) -> u64 {
        match self {
            Self::Exact(set) => set.len() as u64,
            Self::Estimated(sketch) => sketch.estimate(),
        }
    }
}

/// HyperLogLog with 2^14 registers (standard error about 0.8 %).
struct HyperLogLog {
    registers: Vec<u8>,
}

impl HyperLogLog {
    const P: u32 = 14;

    fn new() -> Self {
        Self { registers: vec![0; 1 << Self::P] }
    }

    fn insert(&mut self, hash: u64) {
        let hash = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (hash >> 29);
        let index = (hash >> (64 - Self::P)) as usize;
        let rest = (hash << Self::P) | (1 << (Self::P - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(register) = self.registers.get_mut(index) {
            *register = (*register).max(rank);
        }
    }

    fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self.registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
        estimate.round() as u64
    }
}

/// Counts of text values, bounded: past [`TOP_TRACKED`] values the rarer half is dropped, so
/// counts of very frequent values stay exact while the long tail is approximate.
#[derive(Default)]
struct TopCounts {
    counts: HashMap<String, u64>,
}

impl TopCounts {
    fn add(&mut self, value: &str) {
        if let Some(count) = self.counts.get_mut(value) {
            *count += 1;
            return;
        }
        if self.counts.len() >= TOP_TRACKED {
            let mut tallies: Vec<u64> = self.counts.values().copied().collect();
            let middle = tallies.len() / 2;
            let (_, &mut threshold, _) = tallies.select_nth_unstable(middle);
            self.counts.retain(|_, &mut count| count > threshold);
        }
        self.counts.insert(value.to_owned(), 1);
    }

    fn top(self, n: usize) -> Vec<TopValue> {
        let mut counts: Vec<(String, u64)> = self.counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts.into_iter().take(n).map(|(value, count)| TopValue { value: Value::String(value), count }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a timed-out `dataset_metadata` call kept reading on the blocking pool; the scan
    /// now stops at the next chunk once its caller has gone.
    #[test]
    fn dataset_metadata_scan_stops_once_its_caller_has_gone() {
        let file = tempfile::NamedTempFile::new().unwrap_or_else(|error| panic!("{error}"));
        std::fs::write(file.path(), "a,b\n1,2\n").ok();
        let cancelled = Cancelled::default();
        let running = scan(file.path(), Format::Csv, None, 5, 5, &cancelled);
        assert!(running.is_ok_and(|scan| scan.rows == 1));
        cancelled.cancel();
        let stopped = scan(file.path(), Format::Csv, None, 5, 5, &cancelled);
        assert!(matches!(stopped, Err(DatasetError::Cancelled)), "{stopped:?}");
    }

    #[test]
    fn records_keep_quoted_line_breaks_together() {
        let mut input = Cursor::new(b"a,b\n1,\"two\nlines\"\n3,4".to_vec());
        assert_eq!(read_record(&mut input).ok(), Some(b"a,b\n".to_vec()));
        assert_eq!(read_record(&mut input).ok(), Some(b"1,\"two\nlines\"\n".to_vec()));
        assert_eq!(read_record(&mut input).ok(), Some(b"3,4\n".to_vec()));
        assert_eq!(read_record(&mut input).ok(), Some(Vec::new()));
    }

    #[test]
    fn merged_moments_equal_one_pass() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i) * 0.37 - 50.0).collect();
        let moments = |xs: &[f64]| {
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            (xs.len() as u64, mean, xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>())
        };
        let (n, mean, m2) = merge_moments(moments(&values[..300]), moments(&values[300..]));
        let (n1, mean1, m21) = moments(&values);
        assert_eq!(n, n1);
        assert!((mean - mean1).abs() < 1e-9 && (m2 - m21).abs() < 1e-6);
    }

    #[test]
    fn hyperloglog_is_within_two_percent() {
        let mut sketch = HyperLogLog::new();
        let build = PlSeedableRandomStateQuality::seed_from_u64(7);
        for i in 0..200_000u64 {
            sketch.insert(std::hash::BuildHasher::hash_one(&build, i));
        }
        let estimate = sketch.estimate() as f64;
        assert!((estimate / 200_000.0 - 1.0).abs() < 0.02, "{estimate}");
    }

    #[test]
    fn top_counts_keep_frequent_values_exact() {
        let mut counts = TopCounts::default();
        for i in 0..100_000 {
            counts.add(if i % 3 == 0 { "common" } else { "x" });
            counts.add(&format!("rare-{i}"));
        }
        let top = counts.top(2);
        assert_eq!(top[0].value, "x");
        assert_eq!(top[0].count, 66_666);
        assert_eq!(top[1].count, 33_334);
    }
}
