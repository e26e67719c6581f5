//! The published 0.2 release of this crate (`mappedpages_seed`), whose
//! design this one replaced: two syncs per allocation, three per protected
//! commit, and a file that stops growing near 2^14 pages of 4 KiB.

use std::path::Path;
use std::time::Instant;

use super::{Engine, Work};
use crate::support::stats::ns;
use crate::support::PAGE;
use crate::{Op, R};

pub struct Seed;

/// A pager whose file already holds `pages` pages, so that no timed call
/// includes a growth.
fn create(dir: &Path, pages: usize) -> R<mappedpages_seed::Pager<PAGE>> {
    let mut pager = mappedpages_seed::Pager::<PAGE>::create(dir.join("seed.pages"))?;
    let ids: Vec<mappedpages_seed::PageId<PAGE>> = pager.alloc_bulk(pages)?;
    pager.free_bulk(ids)?;
    Ok(pager)
}

impl Engine for Seed {
    fn id(&self) -> &'static str {
        "seed"
    }

    fn label(&self, _work: Work) -> String {
        self.name().into()
    }

    fn name(&self) -> &'static str {
        "mappedpages 0.2"
    }

    fn op(&self, work: Work, dir: &Path, cap: usize) -> R<Op> {
        match work {
            Work::Alloc { sync: true } => {
                let mut p = create(dir, cap + 64)?;
                Ok(Box::new(move |_| {
                    let start = Instant::now();
                    let id: mappedpages_seed::PageId<PAGE> = p.alloc()?;
                    let t = ns(start.elapsed());
                    std::hint::black_box(id);
                    Ok(t)
                }))
            }
            Work::Overwrite { sync: true } => {
                let data = vec![0xA5u8; PAGE];
                let mut p = create(dir, 64)?;
                let id: mappedpages_seed::ProtectedPageId<PAGE> = p.alloc_protected()?;
                Ok(Box::new(move |i| {
                    let start = Instant::now();
                    let mut w = id.get_mut(&mut p)?;
                    let page = w.page_mut().as_bytes_mut();
                    page.copy_from_slice(&data);
                    page[0] = i as u8;
                    w.commit()?;
                    Ok(ns(start.elapsed()))
                }))
            }
            _ => Err(format!("no system seed in {work:?}").into()),
        }
    }

    fn bulk(&self, path: &Path, count: usize) -> R<(f64, usize)> {
        let mut p = mappedpages_seed::Pager::<PAGE>::create(path)?;
        let start = Instant::now();
        let ids: Vec<mappedpages_seed::PageId<PAGE>> = p.alloc_bulk(count)?;
        Ok((ns(start.elapsed()), ids.len()))
    }

    fn build_small_pages(&self, path: &Path, count: u64) -> R<()> {
        let mut p = mappedpages_seed::Pager::<1024>::create(path)?;
        let ids: Vec<mappedpages_seed::PageId<1024>> = p.alloc_bulk(count as usize)?;
        std::hint::black_box(ids);
        Ok(())
    }

    fn open_small_pages(&self, path: &Path) -> R<f64> {
        let start = Instant::now();
        let p = mappedpages_seed::Pager::<1024>::open(path)?;
        let t = ns(start.elapsed());
        drop(p);
        Ok(t)
    }
}
