//! `readers`: the reader table of a file, as `mdb_stat -r` shows LMDB's.

use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use mappedpages::inspect::Inspector;
use mappedpages::{LiveReader, MappedPageError, ReaderInfo};

use crate::json::Json;

/// Lists the readers registered in the reader table of `path`.
pub(crate) fn readers(path: &Path, json: bool) -> Result<ExitCode, MappedPageError> {
    let page_size = Inspector::open(path)?.superblock().page_size;
    let listed = list(path, page_size)?;
    let now = SystemTime::now();
    let age_ms = |reader: &ReaderInfo| {
        now.duration_since(reader.since)
            .map_or(0, |age| age.as_millis() as u64)
    };
    if json {
        let entries = listed
            .iter()
            .map(|reader| {
                Json::Obj(vec![
                    ("slot", reader.slot.into()),
                    ("process_id", reader.process_id.into()),
                    ("generation", reader.generation.into()),
                    ("behind", reader.behind.into()),
                    ("pages", reader.pages.into()),
                    ("reading_for_ms", age_ms(reader).into()),
                ])
            })
            .collect();
        println!(
            "{}",
            Json::Obj(vec![
                ("file", path.display().to_string().into()),
                ("readers", Json::Arr(entries)),
            ])
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("file        {}", path.display());
    println!("readers     {}", listed.len());
    if !listed.is_empty() {
        println!(
            "{:>6} {:>10} {:>12} {:>8} {:>12} {:>12}",
            "slot", "process", "generation", "behind", "pages", "reading for"
        );
    }
    for reader in &listed {
        println!(
            "{:>6} {:>10} {:>12} {:>8} {:>12} {:>10.1} s",
            reader.slot,
            reader.process_id,
            reader.generation,
            reader.behind,
            reader.pages,
            age_ms(reader) as f64 / 1000.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

type Lister = fn(&Path) -> Result<Vec<ReaderInfo>, MappedPageError>;

/// The readers, through a `LiveReader` of the file's page size.
fn list(path: &Path, page_size: u64) -> Result<Vec<ReaderInfo>, MappedPageError> {
    let list =
        for_page_size!(page_size, list_of as Lister).ok_or(MappedPageError::InvalidPageSize)?;
    list(path)
}

fn list_of<const P: usize>(path: &Path) -> Result<Vec<ReaderInfo>, MappedPageError> {
    LiveReader::<P>::open(path)?.readers()
}
