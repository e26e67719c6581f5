//! Fuzz target for `open` and every read path after it (contract D5, E3):
//! the same drive as `tests/corrupt_files_proptest.rs`, over inputs that
//! libFuzzer evolves.
//!
//! Input: byte 0 selects the mode. Even: the rest of the input is the whole
//! file. Odd: byte 1 picks one of the valid base files, the rest is a list of
//! damage records of 10 bytes (kind, offset as u32, value as u32, spare),
//! and bit 1 of byte 0 asks for every checksum to be recomputed after the
//! damage, so that it reaches the checks behind the checksums. Odd with bit 2
//! set: the records of 10 bytes set root counts instead (copy, field, value
//! as u64; see `ROOT_COUNTS`), every checksum is recomputed, the file is made
//! as long as its roots claim (sparse) up to `MAX_SPARSE_LEN`, and both
//! readers run on it; a reader that sizes memory from such a count trips
//! libFuzzer's memory limit.

#![no_main]

#[path = "../../tests/support/corrupt/mod.rs"]
mod corrupt_support;

use std::path::PathBuf;
use std::sync::OnceLock;

use corrupt_support::{
    build_bases, claimed_len, damage, exercise_bytes, exercise_crafted, fix_checksums,
    set_root_count, Damage, PS,
};
use libfuzzer_sys::fuzz_target;

/// The longest file a crafted case is made: 2^30 pages of 1 KiB. A valid
/// root of a longer file needs bitmaps (two bits per page) that would trip
/// libFuzzer's memory limit by right; past it, the file stays short and open
/// reports it truncated.
const MAX_SPARSE_LEN: u64 = 1 << 40;

struct Scratch {
    file: PathBuf,
    bases: Vec<Vec<u8>>,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let root = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = root.join(format!("mappedpages-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let bases = build_bases(&dir);
        Scratch {
            file: dir.join("case.bin"),
            bases,
        }
    })
}

fn decode_damage(record: &[u8]) -> Damage {
    let at = u32::from_le_bytes(record[1..5].try_into().unwrap()) as usize;
    let value = u32::from_le_bytes(record[5..9].try_into().unwrap());
    // Half the offsets land in the metadata pages (superblock, roots, trees).
    let at = if record[9] & 1 == 0 {
        at % (8 * PS)
    } else {
        at
    };
    match record[0] % 7 {
        0 => Damage::Flip {
            at,
            bit: value as u8,
        },
        1 => Damage::Set {
            at,
            byte: value as u8,
        },
        2 => Damage::SetU64 {
            at,
            value: u64::from(value) | (u64::from(record[9]) << 56),
        },
        3 => Damage::Zero {
            at,
            len: value as usize,
        },
        4 => Damage::Truncate {
            len: value as usize,
        },
        5 => Damage::Extend {
            len: value as usize,
        },
        _ => Damage::CopyPage {
            from: value as usize,
            to: at / PS,
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let scratch = scratch();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let Some((&base, records)) = rest.split_first() else {
            return;
        };
        let mut file = scratch.bases[base as usize % scratch.bases.len()].clone();
        if mode & 4 != 0 {
            for record in records.chunks_exact(10) {
                let value = u64::from_le_bytes(record[2..10].try_into().unwrap());
                set_root_count(&mut file, record[0] as usize, record[1] as usize, value);
            }
            fix_checksums(&mut file);
            let len = claimed_len(&file)
                .filter(|&len| len <= MAX_SPARSE_LEN)
                .unwrap_or(0);
            if let Err(broken) = exercise_crafted(&scratch.file, &file, len) {
                panic!("{broken}");
            }
            return;
        }
        for record in records.chunks_exact(10) {
            damage(&mut file, &decode_damage(record));
        }
        if mode & 2 != 0 {
            fix_checksums(&mut file);
        }
        file
    };
    if let Err(broken) = exercise_bytes(&scratch.file, &file) {
        panic!("{broken}");
    }
});
