//! The agent's spool: encoded uploads waiting for the collector, one file
//! each in a directory, so that they outlive a restart of the agent.
//!
//! - A file is `SEQ.slice.gz` (the sequence number zero-padded, so names
//!   sort in sending order), written to a temporary name, synced and
//!   renamed: a crash leaves a whole file or none. Leftover temporary
//!   files are removed at open.
//! - The next sequence number is kept in `next-seq` (written the same
//!   way), so numbers keep growing across restarts even when the spool
//!   was empty.
//! - The spool holds at most `max_bytes`: pushing past it removes the
//!   oldest files first, each counted in [`Spool::dropped`]; the file just
//!   pushed always stays, so a slice larger than the bound is still sent.

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::TrailError;

const SUFFIX: &str = ".slice.gz";
const NEXT_SEQ: &str = "next-seq";

/// A spooled upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    /// Its sequence number.
    pub seq: u64,
    /// Its file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
}

/// The spool (see the module docs).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    files: VecDeque<Spooled>,
    bytes: u64,
    next_seq: u64,
    dropped: u64,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> TrailError + '_ {
    move |source| TrailError::Spool {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrailError> {
    let temporary = path.with_extension("tmp");
    let mut file = fs::File::create(&temporary).map_err(at(&temporary))?;
    file.write_all(bytes).map_err(at(&temporary))?;
    file.sync_all().map_err(at(&temporary))?;
    fs::rename(&temporary, path).map_err(at(path))
}

impl Spool {
    /// Opens (creating) the spool in `dir`, bounded by `max_bytes`.
    ///
    /// # Errors
    /// [`TrailError::Spool`] naming the directory or file that failed.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, TrailError> {
        fs::create_dir_all(dir).map_err(at(dir))?;
        let mut files = Vec::new();
        let mut next_seq = 0;
        for entry in fs::read_dir(dir).map_err(at(dir))? {
            let entry = entry.map_err(at(dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.extension().is_some_and(|ext| ext == "tmp") {
                fs::remove_file(&path).map_err(at(&path))?;
            } else if let Some(seq) = name.strip_suffix(SUFFIX).and_then(|s| s.parse().ok()) {
                let bytes = entry.metadata().map_err(at(&path))?.len();
                files.push(Spooled { seq, path, bytes });
            }
        }
        files.sort_by_key(|file| file.seq);
        if let Some(last) = files.last() {
            next_seq = last.seq + 1;
        }
        let recorded = dir.join(NEXT_SEQ);
        match fs::read_to_string(&recorded) {
            Ok(text) => {
                if let Ok(seq) = text.trim().parse::<u64>() {
                    next_seq = next_seq.max(seq);
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(at(&recorded)(error)),
        }
        let bytes = files.iter().map(|file| file.bytes).sum();
        Ok(Self {
            dir: dir.to_owned(),
            max_bytes,
            files: files.into(),
            bytes,
            next_seq,
            dropped: 0,
        })
    }

    /// The sequence number for the next upload (recorded on disk before
    /// it is handed out).
    ///
    /// # Errors
    /// [`TrailError::Spool`] when `next-seq` cannot be written.
    pub fn take_seq(&mut self) -> Result<u64, TrailError> {
        let seq = self.next_seq;
        write_atomically(&self.dir.join(NEXT_SEQ), (seq + 1).to_string().as_bytes())?;
        self.next_seq = seq + 1;
        Ok(seq)
    }

    /// Adds the encoded upload numbered `seq`, then removes the oldest
    /// files while the spool is over its bound.
    ///
    /// # Errors
    /// [`TrailError::Spool`]; the spool is as it was.
    pub fn push(&mut self, seq: u64, encoded: &[u8]) -> Result<(), TrailError> {
        let path = self.dir.join(format!("{seq:020}{SUFFIX}"));
        write_atomically(&path, encoded)?;
        let bytes = encoded.len() as u64;
        self.files.push_back(Spooled { seq, path, bytes });
        self.bytes += bytes;
        while self.bytes > self.max_bytes && self.files.len() > 1 {
            self.remove_oldest()?;
            self.dropped += 1;
        }
        Ok(())
    }

    /// The oldest upload, next to send.
    pub fn oldest(&self) -> Option<&Spooled> {
        self.files.front()
    }

    /// Reads a spooled upload.
    ///
    /// # Errors
    /// [`TrailError::Spool`].
    pub fn read(&self, spooled: &Spooled) -> Result<Vec<u8>, TrailError> {
        fs::read(&spooled.path).map_err(at(&spooled.path))
    }

    /// Removes the oldest upload (sent, or refused for good).
    ///
    /// # Errors
    /// [`TrailError::Spool`] when its file cannot be removed.
    pub fn remove_oldest(&mut self) -> Result<(), TrailError> {
        if let Some(file) = self.files.pop_front() {
            self.bytes -= file.bytes;
            match fs::remove_file(&file.path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(at(&file.path)(error)),
            }
        }
        Ok(())
    }

    /// Uploads waiting.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// None waiting.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Uploads removed unsent to keep the bound, since open.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporary(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("edgewise-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn uploads_come_back_in_order_after_a_restart() {
        let dir = temporary("order");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        for body in [b"a", b"b", b"c"] {
            let seq = spool.take_seq().unwrap();
            spool.push(seq, body).unwrap();
        }
        spool.remove_oldest().unwrap();
        fs::write(dir.join("00000000000000000009.slice.tmp"), b"half").unwrap();
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        let oldest = spool.oldest().unwrap().clone();
        assert_eq!(
            (oldest.seq, spool.read(&oldest).unwrap()),
            (1, b"b".to_vec())
        );
        assert_eq!(spool.len(), 2);
        assert_eq!(spool.take_seq().unwrap(), 3, "numbers keep growing");
        assert!(!dir.join("00000000000000000009.slice.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sequence_numbers_survive_an_empty_spool() {
        let dir = temporary("seq");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        let seq = spool.take_seq().unwrap();
        spool.push(seq, b"x").unwrap();
        spool.remove_oldest().unwrap();
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        assert_eq!(spool.take_seq().unwrap(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_oldest_go_first_when_full_and_are_counted() {
        let dir = temporary("full");
        let mut spool = Spool::open(&dir, 10).unwrap();
        for _ in 0..5 {
            let seq = spool.take_seq().unwrap();
            spool.push(seq, b"0123").unwrap();
        }
        assert_eq!((spool.len(), spool.bytes(), spool.dropped()), (2, 8, 3));
        assert_eq!(spool.oldest().unwrap().seq, 3);
        let seq = spool.take_seq().unwrap();
        spool.push(seq, &[0; 64]).unwrap();
        assert_eq!(spool.len(), 1, "a slice over the bound still stays");
        fs::remove_dir_all(&dir).unwrap();
    }
}
