//! Where Delta Lake tables are in a listing: a folder holding `_delta_log/` is one table. Layout
//! only, no reading: the `file` tool marks tables with it in every build, and `datasets::delta`
//! (the reader, with the `data` feature) finds the tables it reads with it.

use super::Entry;

/// The folder that makes a folder a Delta table.
pub const LOG_FOLDER: &str = "_delta_log";

/// The outermost Delta table folders among `entries` (folders holding `_delta_log/`; never the
/// root) that `keep` accepts, sorted; a table inside another one is part of it.
pub fn table_folders(entries: &[Entry], keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut roots: Vec<String> = entries
        .iter()
        .filter_map(|entry| {
            let at = entry.path.split('/').position(|segment| segment == LOG_FOLDER).filter(|&at| at > 0)?;
            Some(entry.path.split('/').take(at).collect::<Vec<_>>().join("/"))
        })
        .filter(|root| keep(root))
        .collect();
    roots.sort();
    roots.dedup();
    let all = roots.clone();
    roots.retain(|root| !all.iter().any(|outer| root.starts_with(&format!("{outer}/"))));
    roots
}
