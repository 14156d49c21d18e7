//! A small DNS message writer for tests: names (with or without
//! compression), questions and records in any section.

#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, Ipv6Addr};

use edgewise_time::UnixNanos;

pub const A: u16 = 1;
pub const CNAME: u16 = 5;
pub const MX: u16 = 15;
pub const TXT: u16 = 16;
pub const AAAA: u16 = 28;
pub const IN: u16 = 1;

/// A standard response, recursion desired and available, NOERROR.
pub const RESPONSE: u16 = 0x8180;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

#[derive(Clone, Copy)]
pub enum Data<'a> {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(&'a str),
    Raw(&'a [u8]),
}

pub struct Builder {
    bytes: Vec<u8>,
    counts: [u16; 4],
    /// (suffix in lowercase text, offset) for compression.
    suffixes: Vec<(String, usize)>,
    pub compress: bool,
}

impl Builder {
    pub fn new(id: u16, flags: u16) -> Self {
        let mut bytes = vec![0; 12];
        bytes[..2].copy_from_slice(&id.to_be_bytes());
        bytes[2..4].copy_from_slice(&flags.to_be_bytes());
        Self {
            bytes,
            counts: [0; 4],
            suffixes: Vec::new(),
            compress: true,
        }
    }

    pub fn response(question: &str, qtype: u16) -> Self {
        let mut builder = Self::new(0x4242, RESPONSE);
        builder.question(question, qtype);
        builder
    }

    pub fn name(&mut self, name: &str) {
        let labels: Vec<&str> = name
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
            .collect();
        for index in 0..labels.len() {
            let suffix = labels[index..].join(".").to_ascii_lowercase();
            if self.compress {
                if let Some((_, offset)) = self.suffixes.iter().find(|(known, _)| *known == suffix)
                {
                    let pointer = 0xc000 | u16::try_from(*offset).unwrap();
                    self.bytes.extend_from_slice(&pointer.to_be_bytes());
                    return;
                }
                if self.bytes.len() < 0x3fff {
                    self.suffixes.push((suffix, self.bytes.len()));
                }
            }
            self.bytes.push(u8::try_from(labels[index].len()).unwrap());
            self.bytes.extend_from_slice(labels[index].as_bytes());
        }
        self.bytes.push(0);
    }

    pub fn question(&mut self, name: &str, qtype: u16) -> &mut Self {
        self.name(name);
        self.bytes.extend_from_slice(&qtype.to_be_bytes());
        self.bytes.extend_from_slice(&IN.to_be_bytes());
        self.counts[0] += 1;
        self
    }

    pub fn record(&mut self, section: Section, name: &str, ttl: u32, data: Data<'_>) -> &mut Self {
        self.record_with_class(section, name, IN, ttl, data)
    }

    pub fn answer(&mut self, name: &str, ttl: u32, data: Data<'_>) -> &mut Self {
        self.record(Section::Answer, name, ttl, data)
    }

    pub fn record_with_class(
        &mut self,
        section: Section,
        name: &str,
        class: u16,
        ttl: u32,
        data: Data<'_>,
    ) -> &mut Self {
        self.name(name);
        let rtype = match data {
            Data::A(_) => A,
            Data::Aaaa(_) => AAAA,
            Data::Cname(_) => CNAME,
            Data::Raw(_) => TXT,
        };
        self.raw_record_header(rtype, class, ttl);
        let length_at = self.bytes.len();
        self.bytes.extend_from_slice(&[0, 0]);
        match data {
            Data::A(ip) => self.bytes.extend_from_slice(&ip.octets()),
            Data::Aaaa(ip) => self.bytes.extend_from_slice(&ip.octets()),
            Data::Cname(target) => self.name(target),
            Data::Raw(raw) => self.bytes.extend_from_slice(raw),
        }
        let length = u16::try_from(self.bytes.len() - length_at - 2).unwrap();
        self.bytes[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
        self.counts[match section {
            Section::Answer => 1,
            Section::Authority => 2,
            Section::Additional => 3,
        }] += 1;
        self
    }

    /// A record of any type with raw data, in the answer section.
    pub fn typed_answer(&mut self, name: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> &mut Self {
        self.name(name);
        self.raw_record_header(rtype, IN, ttl);
        self.bytes
            .extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
        self.bytes.extend_from_slice(rdata);
        self.counts[1] += 1;
        self
    }

    fn raw_record_header(&mut self, rtype: u16, class: u16, ttl: u32) {
        self.bytes.extend_from_slice(&rtype.to_be_bytes());
        self.bytes.extend_from_slice(&class.to_be_bytes());
        self.bytes.extend_from_slice(&ttl.to_be_bytes());
    }

    pub fn finish(&self) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        for (index, count) in self.counts.iter().enumerate() {
            bytes[4 + 2 * index..6 + 2 * index].copy_from_slice(&count.to_be_bytes());
        }
        bytes
    }
}

/// The store's instant `seconds` after the epoch.
pub fn secs(seconds: u64) -> UnixNanos {
    UnixNanos::from_secs(seconds)
}
