//! Checkpoints of a stream, consistent across the cluster. At the end of a checkpoint round
//! every worker of every process writes its state for epoch `e` (its aggregates' groups, the
//! positions its readers reached, its counts) to `e<e>/w<worker>` in the state directory and
//! makes it durable; once every worker has, worker 0 records `e` in the manifest (written
//! atomically: temporary file, fsync, rename). Only then are the epoch's sink files published.
//!
//! The state directory must be one every process sees (a shared volume). When any process
//! dies, every process is restarted and goes on from the epoch the manifest records; a restart
//! with another number of workers or processes gives every worker the groups its key hashes
//! to now and the files it owns now.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::run::{RunError, Stat};

/// Where a source has been read to: per file, the offset and line count.
pub type Positions = BTreeMap<String, (u64, u64)>;

/// The form operator state takes in checkpoints. 2: timestamps, dates and non-finite doubles
/// of Thrift structs in state are numbers (they were text before, which some of them could not
/// be read back from). 3: `count_distinct` of strings keeps a group's first values in one
/// buffer (`agg::DistinctStrs`), which a checkpoint of format 2 would be misread as.
pub const FORMAT: u32 = 3;

/// The last complete checkpoint of the cluster.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub pipeline: String,
    pub epoch: u64,
    /// Workers in the cluster that wrote it.
    pub workers: usize,
    /// [`FORMAT`] when it was written (a manifest of format 1 has no such field, and does not
    /// read).
    pub format: u32,
}

/// One worker's part of a checkpoint.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct WorkerState {
    pub operators: Vec<u8>,
    pub stats: Vec<Stat>,
    /// The cluster's watermark at the end of the checkpoint's round.
    pub watermark: i64,
    /// Per source (by name), the positions of the files this worker read.
    pub positions: Vec<(String, Positions)>,
    /// Per source (by name), which file each followed file name held (inode, first bytes).
    pub marks: Vec<(String, crate::connectors::files::Marks)>,
}

const MANIFEST: &str = "manifest";

/// Reads the manifest, if a checkpoint was ever completed.
pub fn load_manifest(dir: &Path) -> Result<Option<Manifest>, RunError> {
    let path = dir.join(MANIFEST);
    match std::fs::read(&path) {
        Ok(bytes) => postcard::from_bytes(&bytes).map(Some).map_err(|e| {
            RunError::Setup(format!(
                "{}: not a checkpoint manifest this runtime wrote ({e}); a checkpoint of an older pipec starts over with --reset",
                path.display()
            ))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RunError::Io(e)),
    }
}

fn worker_path(dir: &Path, epoch: u64, worker: usize) -> PathBuf {
    dir.join(format!("e{epoch}")).join(format!("w{worker}"))
}

/// Writes a file so that a crash at any moment leaves either the old one or the new one.
fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let at = |e: io::Error, op: &str, p: &Path| io::Error::new(e.kind(), format!("cannot {op} `{}`: {e}", p.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| at(e, "create", dir))?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| at(e, "create", &tmp))?;
        f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| at(e, "write", &tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| at(e, "move into place", path))?;
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes one worker's state for `epoch`.
pub fn save_worker(dir: &Path, epoch: u64, worker: usize, state: &WorkerState) -> io::Result<()> {
    let bytes = postcard::to_stdvec(state).map_err(io::Error::other)?;
    write_durably(&worker_path(dir, epoch, worker), &bytes)
}

/// Reads every worker's state of the checkpoint the manifest records.
pub fn load_workers(dir: &Path, m: &Manifest) -> Result<Vec<WorkerState>, RunError> {
    (0..m.workers)
        .map(|w| {
            let path = worker_path(dir, m.epoch, w);
            let bytes = std::fs::read(&path).map_err(|e| RunError::Setup(format!("{}: {e}", path.display())))?;
            postcard::from_bytes(&bytes)
                .map_err(|e| RunError::Setup(format!("{}: not a checkpoint this pipeline wrote ({e})", path.display())))
        })
        .collect()
}

/// Records `m` as the last complete checkpoint and removes the states of older epochs.
pub fn commit(dir: &Path, m: &Manifest) -> io::Result<()> {
    let bytes = postcard::to_stdvec(m).map_err(io::Error::other)?;
    write_durably(&dir.join(MANIFEST), &bytes)?;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = name.strip_prefix('e').and_then(|n| n.parse::<u64>().ok()).is_some_and(|e| e < m.epoch);
            if old {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(())
}

/// Removes states of epochs after the manifest's (written by a run that died before it could
/// complete them).
/// Forgets every checkpoint in `dir` (`--reset`): the next run starts from the beginning.
pub fn clear(dir: &Path) -> io::Result<()> {
    discard_after(dir, None);
    match std::fs::remove_file(dir.join(MANIFEST)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub fn discard_after(dir: &Path, committed: Option<u64>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(e) = name.strip_prefix('e').and_then(|n| n.parse::<u64>().ok()) {
                if committed.is_none_or(|c| e > c) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_of_an_older_format_is_refused_with_the_way_out() {
        let dir = std::env::temp_dir().join(format!("pipe-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        // The manifest of format 1, which had no `format`.
        #[derive(serde::Serialize)]
        struct Old {
            pipeline: String,
            epoch: u64,
            workers: usize,
        }
        let old = Old { pipeline: "p".into(), epoch: 3, workers: 2 };
        std::fs::write(dir.join(MANIFEST), postcard::to_stdvec(&old).expect("bytes")).expect("write");
        let err = load_manifest(&dir).expect_err("format 1");
        assert!(err.to_string().contains("--reset"), "{err}");
        let now = Manifest { pipeline: "p".into(), epoch: 4, workers: 2, format: FORMAT };
        commit(&dir, &now).expect("commit");
        let back = load_manifest(&dir).expect("reads").expect("a manifest");
        assert_eq!((back.epoch, back.format), (4, FORMAT));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
