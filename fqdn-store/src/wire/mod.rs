//! The DNS wire format: a zero-copy, allocation-free view of one message.
//!
//! [`Message::parse`] validates everything once; afterwards names, questions
//! and records are read from the borrowed bytes without further checks or
//! copies. [`crate::resolution`] builds the name-to-address mapping on top.

pub mod header;
pub mod message;
pub mod name;

pub use header::{CLASS_IN, Header, Rcode, RecordType};
pub use message::{Message, Question, Record, RecordData, Records};
pub use name::{Labels, MAX_NAME_TEXT_LEN, MAX_NAME_WIRE_LEN, Name, NameText};
