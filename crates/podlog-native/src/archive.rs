//! Walks the entries of an image or layer tar. Every uncompressed byte passes a tap that can hash it
//! (the image id is the sha512 of the uncompressed tar) and that records how the stream ended, so a
//! failure is reported as what it is: a truncated file, a corrupt compressed stream or a malformed tar.

use std::cell::RefCell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use sha2::{Digest, Sha512};

use crate::compression::{self, Compression};
use crate::errors::{Code, Error, Result};

#[derive(Default)]
struct TapState {
    hasher: Option<Sha512>,
    size: u64,
    eof: bool,
    failure: Option<(io::ErrorKind, String)>,
    budget: Option<Budget>,
    /// Why the budget stopped the stream: the error every later read reports.
    refusal: Option<Error>,
}

/// How far a stream may inflate. Checked on every read, so a bomb is stopped as it crosses a limit,
/// with at most one read buffer more of it on disk, never after it has filled the disk.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Uncompressed bytes the stream may yield.
    pub max: u64,
    /// The limit `max` comes from, as the refusal names it.
    pub limit: String,
    /// Past `ratio_floor` uncompressed bytes, the stream may yield at most `ratio` times its
    /// compressed size (`compressed`).
    pub ratio: u64,
    pub ratio_floor: u64,
    pub compressed: u64,
}

impl Budget {
    fn check(&self, size: u64) -> Option<Error> {
        if size > self.max {
            return Some(Error::new(
                Code::TooLarge,
                format!(
                    "it unpacks to more than {} bytes, the {}",
                    self.max, self.limit
                ),
            ));
        }
        if size > self.ratio_floor && size > self.ratio.saturating_mul(self.compressed) {
            return Some(Error::new(
                Code::TooLarge,
                format!(
                    "it unpacks to more than {} times its {} compressed bytes (past {} bytes): a compression bomb",
                    self.ratio, self.compressed, self.ratio_floor
                ),
            ));
        }
        None
    }
}

pub struct Tap {
    inner: Box<dyn Read>,
    state: Rc<RefCell<TapState>>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        let mut state = self.state.borrow_mut();
        match &result {
            Ok(0) if !buf.is_empty() => state.eof = true,
            Ok(n) => {
                state.size += *n as u64;
                if let Some(h) = state.hasher.as_mut() {
                    h.update(&buf[..*n]);
                }
                if let Some(refusal) = state.budget.as_ref().and_then(|b| b.check(state.size)) {
                    state.refusal = Some(refusal);
                    return Err(io::Error::other("size limit"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => state.failure = Some((e.kind(), e.to_string())),
        }
        result
    }
}

/// Turns a read error seen anywhere in the walk into the code an operator can act on.
#[derive(Clone)]
pub struct Diagnosis {
    state: Rc<RefCell<TapState>>,
    compression: Compression,
}

impl Diagnosis {
    pub fn read_error(&self, e: io::Error) -> Error {
        let state = self.state.borrow();
        if let Some(refusal) = &state.refusal {
            return refusal.clone();
        }
        let format = self.compression.name();
        match &state.failure {
            Some((io::ErrorKind::UnexpectedEof, msg)) => Error::new(
                Code::Truncated,
                format!("the {format} stream ends early: {msg}"),
            ),
            Some((_, msg)) => {
                Error::new(Code::Compression, format!("corrupt {format} stream: {msg}"))
            }
            None if state.eof || e.kind() == io::ErrorKind::UnexpectedEof => Error::new(
                Code::Truncated,
                format!("the archive is truncated after {} bytes: {e}", state.size),
            ),
            None => Error::new(Code::BadArchive, format!("malformed tar: {e}")),
        }
    }

    /// Copies an entry's data, failing (rather than writing a short file) if the archive ends early.
    pub fn copy_data(
        &self,
        entry: &mut dyn Read,
        expected: u64,
        buf: &mut [u8],
        mut write: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let n = match entry.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            };
            write(&buf[..n])?;
            total += n as u64;
        }
        if total != expected {
            return Err(self.read_error(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("entry data ends after {total} of {expected} bytes"),
            )));
        }
        Ok(total)
    }
}

pub type Entry<'a> = tar::Entry<'a, Tap>;

pub struct Stream {
    archive: tar::Archive<Tap>,
    diagnosis: Diagnosis,
}

pub struct End {
    pub compression: Compression,
    /// sha512 of the whole uncompressed stream, trailing padding included, when hashing was asked for.
    pub sha512: Option<[u8; 64]>,
    pub size: u64,
}

impl Stream {
    pub fn open(path: &Path, hash: bool) -> Result<Stream> {
        let (compression, inner) = compression::open(path)?;
        let state = Rc::new(RefCell::new(TapState {
            hasher: hash.then(Sha512::new),
            ..TapState::default()
        }));
        let tap = Tap {
            inner,
            state: state.clone(),
        };
        Ok(Stream {
            archive: tar::Archive::new(tap),
            diagnosis: Diagnosis { state, compression },
        })
    }

    /// Refuses, from now on, to read past `budget`.
    pub fn limit(&mut self, budget: Budget) {
        self.diagnosis.state.borrow_mut().budget = Some(budget);
    }

    /// Calls `visit` for every entry in order. An archive must end with its end-of-archive block: one
    /// that just stops at an entry boundary has lost entries, and would otherwise pass as complete.
    pub fn for_each(
        &mut self,
        mut visit: impl FnMut(&mut Entry<'_>, &Diagnosis) -> Result<()>,
    ) -> Result<()> {
        let diagnosis = self.diagnosis.clone();
        let entries = self
            .archive
            .entries()
            .map_err(|e| diagnosis.read_error(e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| diagnosis.read_error(e))?;
            // A pax global header (git archive writes one) describes the archive, not a file.
            if entry.header().entry_type() != tar::EntryType::XGlobalHeader {
                visit(&mut entry, &diagnosis)?;
            }
        }
        let state = diagnosis.state.borrow();
        if state.eof {
            return Err(Error::new(
                Code::Truncated,
                format!(
                    "the archive ends after {} bytes without its end-of-archive block",
                    state.size
                ),
            ));
        }
        Ok(())
    }

    /// Reads what follows the end-of-archive block (it counts in the image id) and returns the digest.
    pub fn finish(self) -> Result<End> {
        let diagnosis = self.diagnosis;
        let mut tap = self.archive.into_inner();
        io::copy(&mut tap, &mut io::sink()).map_err(|e| diagnosis.read_error(e))?;
        let mut state = diagnosis.state.borrow_mut();
        Ok(End {
            compression: diagnosis.compression,
            sha512: state.hasher.take().map(|h| h.finalize().into()),
            size: state.size,
        })
    }
}

/// Splits an entry name into path components. `.` and empty components go (`./a//b` is `a/b`); a name
/// that is only `/` or `./` is the archive root. `..` components and absolute names are refused:
/// a tar written to be unpacked somewhere has no honest use for either.
pub fn components(name: &[u8]) -> Result<Vec<&[u8]>> {
    let hostile = |why: &str| Error::new(Code::HostileArchive, format!("{} {why}", show(name)));
    if name.contains(&0) {
        return Err(hostile("contains a NUL byte"));
    }
    let comps: Vec<&[u8]> = name
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if comps.iter().any(|c| *c == b"..") {
        return Err(hostile("has a `..` component (path traversal)"));
    }
    if name.starts_with(b"/") && !comps.is_empty() {
        return Err(hostile("is an absolute path"));
    }
    Ok(comps)
}

pub fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

/// A name as shown in messages: quoted, with non-UTF-8 bytes and control characters escaped.
pub fn show(name: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_normalise_harmless_spellings() {
        assert_eq!(
            components(b"./rootfs//bin/./sh").unwrap(),
            vec![&b"rootfs"[..], b"bin", b"sh"]
        );
        assert_eq!(components(b"rootfs/").unwrap(), vec![&b"rootfs"[..]]);
        assert!(components(b"./").unwrap().is_empty());
        assert!(components(b"/").unwrap().is_empty());
    }

    #[test]
    fn components_refuse_traversal_and_absolute_names() {
        for name in [
            &b"../etc/passwd"[..],
            b"rootfs/../../x",
            b"/etc/passwd",
            b"a\0b",
        ] {
            let e = components(name).unwrap_err();
            assert_eq!(e.code, Code::HostileArchive, "{e}");
        }
    }
}
