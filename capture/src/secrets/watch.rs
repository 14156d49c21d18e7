//! [`MountTable`]: a mount table kept open, told when it changes (the
//! kernel signals `POLLPRI` on `/proc/PID/mountinfo` when a mount comes or
//! goes), so that a new pod's secret volume reaches the kernel filter
//! before its containers start, without reading the table all the time.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::{SecretVolume, secret_volumes};
use crate::sys;

/// A mount table, open.
#[derive(Debug)]
pub struct MountTable {
    path: PathBuf,
    file: File,
}

impl MountTable {
    /// Opens `path` (such as `/proc/self/mountinfo`).
    ///
    /// # Errors
    /// The open's error.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            file: File::open(path)?,
        })
    }

    /// The table's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a mount came or went since the table was last read.
    ///
    /// # Errors
    /// The `poll` error.
    pub fn changed(&self) -> io::Result<bool> {
        sys::priority_event(self.file.as_fd())
    }

    /// The table's text now (reading it clears [`Self::changed`]).
    ///
    /// # Errors
    /// A read error.
    pub fn read(&mut self) -> io::Result<String> {
        self.file.seek(SeekFrom::Start(0))?;
        let mut text = String::new();
        self.file.read_to_string(&mut text)?;
        Ok(text)
    }

    /// The secret volumes mounted now.
    ///
    /// # Errors
    /// A read error.
    pub fn secret_volumes(&mut self) -> io::Result<Vec<SecretVolume>> {
        Ok(secret_volumes(&self.read()?))
    }
}
