//! The daemon's JSON-lines output: each record as one line, beginning with
//! the schema tag, the node and the time in RFC 3339
//! (`schemas/record.schema.json`), then the record's own fields.
//!
//! The envelope's constant part (tag and node, JSON-escaped) is made once
//! per output; a line is put together in a buffer the output keeps (the
//! envelope, the time, then the record's fields, `crate::append_fields`)
//! and written with one call: one serialization, no allocation once the
//! buffer has grown.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use edgewise_pipeline::Record;

use super::DaemonError;
use crate::FileError;

/// The JSON-lines output (standard output, a file, any writer), keeping
/// the first write error.
pub struct Output {
    out: Box<dyn Write + Send>,
    /// `{"schema":"edgewise.record/v1","node":NODE,"time":"`
    prefix: Vec<u8>,
    /// The line being written.
    line: Vec<u8>,
    error: Option<io::Error>,
}

impl Output {
    /// Opens `path` (`-` or none: standard output) for the records of
    /// `node`.
    ///
    /// # Errors
    /// [`DaemonError::File`] when the file cannot be created.
    pub fn open(path: Option<&Path>, node: &str) -> Result<Self, DaemonError> {
        let out: Box<dyn Write + Send> = match path {
            Some(path) if path.as_os_str() != "-" => Box::new(BufWriter::new(
                File::create(path).map_err(FileError::at(path))?,
            )),
            _ => Box::new(BufWriter::new(io::stdout())),
        };
        Ok(Self::new(out, node))
    }

    /// The records of `node` written to `out`.
    pub fn new(out: Box<dyn Write + Send>, node: &str) -> Self {
        let mut prefix = br#"{"schema":""#.to_vec();
        prefix.extend_from_slice(edgewise_pipeline::RECORD_SCHEMA.as_bytes());
        prefix.extend_from_slice(br#"","node":"#);
        // A string always serializes.
        let _ = serde_json::to_writer(&mut prefix, node);
        prefix.extend_from_slice(br#","time":""#);
        Self {
            out,
            prefix,
            line: Vec::with_capacity(1024),
            error: None,
        }
    }

    /// Writes one record as a line.
    pub fn write(&mut self, record: &Record) {
        if self.error.is_some() {
            return;
        }
        self.line.clear();
        if fill_line(&mut self.line, &self.prefix, record) {
            self.line.push(b'\n');
            self.error = self.out.write_all(&self.line).err();
        }
    }

    /// One record as its JSON line, without the newline (`None` for a
    /// record that does not serialize, which none does today).
    pub fn to_line(&self, record: &Record) -> Option<String> {
        let mut line = Vec::with_capacity(1024);
        if !fill_line(&mut line, &self.prefix, record) {
            return None;
        }
        String::from_utf8(line).ok()
    }

    /// Writes a record already made into JSON as a line.
    pub fn write_line(&mut self, line: &str) {
        if self.error.is_some() {
            return;
        }
        let written = self
            .out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"));
        self.error = written.err();
    }

    /// Flushes what was written.
    ///
    /// # Errors
    /// [`DaemonError::Output`] with the first write error; a closed pipe
    /// is not one.
    pub fn flush(&mut self) -> Result<(), DaemonError> {
        let flushed = self.out.flush();
        match self.error.take().map_or(flushed, Err) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(DaemonError::Output(e)),
            _ => Ok(()),
        }
    }
}

/// The envelope, then the record's fields (see the module docs); false,
/// and the line left unfinished, when the record does not serialize as an
/// object.
fn fill_line(line: &mut Vec<u8>, prefix: &[u8], record: &Record) -> bool {
    line.extend_from_slice(prefix);
    // RFC 3339, UTC, with as many fraction digits as the time needs:
    // `2026-11-30T09:00:00.5Z`. Every u64 of nanoseconds is a valid time,
    // and writing to a Vec cannot fail.
    if let Ok(time) = jiff::Timestamp::from_nanosecond(i128::from(record.time_ns())) {
        let _ = write!(line, "{time}");
    }
    line.push(b'"');
    crate::append_fields(line, record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewise_pipeline::records::StatsRecord;

    #[test]
    fn a_line_is_the_envelope_then_the_record_s_fields() {
        let record = Record::Stats(StatsRecord::default());
        let output = Output::new(Box::new(io::sink()), "node \"7\"");
        let line = output.to_line(&record).unwrap();
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(
            line.starts_with(r#"{"schema":"edgewise.record/v1","node":"node \"7\"","time":"1970-01-01T00:00:00Z","type":"stats""#),
            "{line}"
        );
        assert_eq!(value["node"], "node \"7\"");
        let bare = serde_json::to_value(&record).unwrap();
        for (key, field) in bare.as_object().unwrap() {
            assert_eq!(&value[key], field, "{key}");
        }
    }
}
