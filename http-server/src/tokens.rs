//! [`BearerTokens`]: the tokens a listener accepts in `Authorization:
//! Bearer TOKEN`, from a file, compared in constant time.
//!
//! The file holds one token per line; blank lines and lines starting with
//! `#` are skipped, and surrounding white space is not part of a token. A
//! file that cannot be read or holds no token is an error naming it, so a
//! server never starts open by mistake. The presented token and every
//! accepted one are hashed (SHA-256) and the digests compared with
//! `subtle`, against every token without stopping at a match: the time
//! taken says nothing about a token's bytes or length, nor which token
//! matched. [`BearerTokens::reload_if_changed`] reads the file again when
//! it was rewritten (a rotation); a rewrite that is unreadable or empty
//! keeps the tokens in use and is reported to the caller.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

use crate::HeaderMap;

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// It could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// It holds no token.
    #[error("{}: no token in the file", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

type Digest = [u8; 32];

/// The tokens' digests and the file's modification time and size when read.
type Held = (Vec<Digest>, Option<(SystemTime, u64)>);

/// Accepted bearer tokens (see the module docs). Safe to share.
#[derive(Debug)]
pub struct BearerTokens {
    path: PathBuf,
    state: RwLock<Held>,
}

fn hash(token: &[u8]) -> Digest {
    let mut out = [0; 32];
    out.copy_from_slice(digest(&SHA256, token).as_ref());
    out
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read(path: &Path) -> Result<Vec<Digest>, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_owned(),
        source,
    })?;
    let tokens: Vec<Digest> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|token| hash(token.as_bytes()))
        .collect();
    if tokens.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(tokens)
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme in any
/// case, RFC 7235).
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(http::header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| token.trim_ascii())
}

impl BearerTokens {
    /// Reads the tokens of `path`.
    ///
    /// # Errors
    /// [`TokenError`] naming the file.
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        let stamp = stamp(path);
        let tokens = read(path)?;
        Ok(Self {
            path: path.to_owned(),
            state: RwLock::new((tokens, stamp)),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .len()
    }

    /// Whether no token is accepted (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `headers` carry an accepted bearer token.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let presented = hash(bearer(headers).unwrap_or_default());
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut accepted = subtle::Choice::from(0);
        for token in &state.0 {
            accepted |= presented.ct_eq(token);
        }
        bool::from(accepted)
    }

    /// Whether `headers` carry a token of the file as it is now: a
    /// rewritten file is read again first, and one that cannot be used is
    /// logged and leaves the tokens in use (what every listener's check
    /// wants).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        if let Err(error) = self.reload_if_changed() {
            tracing::warn!(%error, "the rewritten token file cannot be used; keeping the tokens in use");
        }
        self.accepts(headers)
    }

    /// Reads the file again if it changed since the last read: `Ok(true)`
    /// when new tokens are in use, `Ok(false)` when it had not changed.
    ///
    /// # Errors
    /// [`TokenError`] when the rewrite cannot be used; the tokens in use
    /// stay.
    pub fn reload_if_changed(&self) -> Result<bool, TokenError> {
        let now = stamp(&self.path);
        if now
            == self
                .state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .1
        {
            return Ok(false);
        }
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.1 = now;
        state.0 = read(&self.path)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            authorization.parse().expect("a header value"),
        );
        headers
    }

    #[test]
    fn tokens_from_a_file_are_accepted_and_others_are_not() {
        let dir = std::env::temp_dir().join(format!("edgewise-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        std::fs::write(&path, "# agents\n  first-token \n\nsecond\n").unwrap();
        let tokens = BearerTokens::load(&path).unwrap();
        assert_eq!(tokens.len(), 2);
        assert!(tokens.accepts(&with("Bearer first-token")));
        assert!(tokens.accepts(&with("bearer second")));
        assert!(!tokens.accepts(&with("Bearer first")));
        assert!(!tokens.accepts(&with("Basic second")));
        assert!(!tokens.accepts(&HeaderMap::new()));
        assert!(!tokens.accepts(&with("Bearer # agents")));

        // A rotation is taken; an empty rewrite keeps the tokens in use.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, "third\n").unwrap();
        assert!(tokens.reload_if_changed().unwrap());
        assert!(tokens.accepts(&with("Bearer third")));
        assert!(!tokens.accepts(&with("Bearer second")));
        std::fs::write(&path, "# nothing\n").unwrap();
        let error = tokens.reload_if_changed().unwrap_err().to_string();
        assert!(error.contains("no token"), "{error}");
        assert!(tokens.accepts(&with("Bearer third")));

        std::fs::remove_file(&path).unwrap();
        let error = BearerTokens::load(&path).unwrap_err().to_string();
        assert!(error.starts_with(&path.display().to_string()), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
