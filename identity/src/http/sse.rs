//! Server-sent events (the `text/event-stream` format of the HTML living
//! standard), as far as edgewise's streams use them: `id:`, `event:` and
//! `data:` fields, `:` comments (heartbeats), an event dispatched at a
//! blank line. Lines end
//! in LF, CRLF or CR-LF; a line longer than the limit, or an event whose
//! `data` lines add up past the same limit (endless `data:` lines without
//! the blank line that ends an event), is an error rather than unbounded
//! memory: the caller drops the connection.

use std::io::{self, BufRead, Write};

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Event {
    /// Its `id` (empty when it had none).
    pub id: String,
    /// Its `event` type (empty: the default, `message`).
    pub event: String,
    /// Its `data` lines, joined by newlines.
    pub data: String,
}

/// Reads events from `reader`; lines above `max_line` bytes are an error.
pub struct EventReader<R> {
    reader: R,
    max_line: usize,
    line: Vec<u8>,
}

impl<R: BufRead> EventReader<R> {
    /// Events of `reader`, each line and each event's data at most
    /// `max_line` bytes.
    pub fn new(reader: R, max_line: usize) -> Self {
        Self {
            reader,
            max_line,
            line: Vec::new(),
        }
    }

    /// The next event; `None` at the end of the stream.
    ///
    /// # Errors
    /// The reader's error, or [`io::ErrorKind::InvalidData`] for a line or
    /// an event past the limit.
    pub fn next_event(&mut self) -> io::Result<Option<Event>> {
        let mut event = Event::default();
        let mut has_data = false;
        loop {
            self.line.clear();
            let limit = u64::try_from(self.max_line).unwrap_or(u64::MAX) + 2;
            let read = io::Read::take(&mut self.reader, limit).read_until(b'\n', &mut self.line)?;
            if read == 0 {
                return Ok(None);
            }
            if self.line.last() != Some(&b'\n') && read as u64 == limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("an event line longer than {} bytes", self.max_line),
                ));
            }
            let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                if has_data || !event.event.is_empty() || !event.id.is_empty() {
                    return Ok(Some(event));
                }
                continue;
            }
            if line.starts_with(b":") {
                continue;
            }
            let text = String::from_utf8_lossy(line);
            let (field, value) = text.split_once(':').unwrap_or((&text, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => value.clone_into(&mut event.id),
                "event" => value.clone_into(&mut event.event),
                "data" => {
                    if event.data.len() + value.len() + 1 > self.max_line {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("an event larger than {} bytes", self.max_line),
                        ));
                    }
                    if has_data {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                    has_data = true;
                }
                _ => {}
            }
        }
    }
}

/// Writes one event (`data` must hold no newline: a JSON line never does).
pub(crate) fn write_event(out: &mut impl Write, event: &str, data: &str) -> io::Result<()> {
    write!(out, "event: {event}\ndata: {data}\n\n")?;
    out.flush()
}

/// Writes a heartbeat comment.
pub(crate) fn write_heartbeat(out: &mut impl Write) -> io::Result<()> {
    out.write_all(b": keepalive\n\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_comments_and_line_endings() {
        let input = b": hello\n\nevent: hello\ndata: {\"a\":1}\n\r\nevent: delta\r\nid: 7\r\ndata: x\r\ndata: y\r\n\r\n: keepalive\n\ndata: last\n\n";
        let mut reader = EventReader::new(&input[..], 64);
        let events: Vec<Event> = std::iter::from_fn(|| reader.next_event().unwrap()).collect();
        assert_eq!(
            events,
            [
                Event {
                    id: String::new(),
                    event: "hello".into(),
                    data: "{\"a\":1}".into()
                },
                Event {
                    id: "7".into(),
                    event: "delta".into(),
                    data: "x\ny".into()
                },
                Event {
                    id: String::new(),
                    event: String::new(),
                    data: "last".into()
                },
            ]
        );
        let mut out = Vec::new();
        write_event(&mut out, "delta", "{}").unwrap();
        assert_eq!(
            EventReader::new(&out[..], 64)
                .next_event()
                .unwrap()
                .unwrap()
                .data,
            "{}"
        );
    }

    #[test]
    fn endless_data_lines_are_an_error_not_memory() {
        let mut input = String::new();
        for _ in 0..1_000 {
            input.push_str("data: xxxxxxxx\n");
        }
        let mut reader = EventReader::new(input.as_bytes(), 256);
        let error = reader.next_event().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("an event larger than 256 bytes"));
    }

    #[test]
    fn a_line_over_the_limit_is_an_error() {
        let input = format!("data: {}\n\n", "x".repeat(100));
        let mut reader = EventReader::new(input.as_bytes(), 32);
        assert_eq!(
            reader.next_event().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
