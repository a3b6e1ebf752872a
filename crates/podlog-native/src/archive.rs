//! Walks the entries of an image or layer tar. Every uncompressed byte passes a tap that records how
//! the stream ended, so a failure is reported as what it is: a truncated file, a corrupt compressed
//! stream or a malformed tar. What else the bytes are for (the image id, the sha512 of the
//! uncompressed tar; a copy of the file as read) is done beside the walk, on a thread of its own, so
//! that it costs the walk one copy of each byte and the archive is read once for everything.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use sha2::{Digest, Sha512};

use crate::compression::{self, Compression};
use crate::errors::{Code, Context, Error, Result};

/// What a walk has done beside it with the bytes it reads.
#[derive(Debug, Default, Clone, Copy)]
pub struct Beside<'a> {
    /// The sha512 of the uncompressed stream, trailing padding included: the image id.
    pub hash: bool,
    /// A copy of the file's bytes as read, written to this new file: stored, it is the very archive
    /// that was checked, without a read of its own.
    pub copy_to: Option<&'a Path>,
}

/// Bytes per message to the side thread.
const SIDE_CHUNK: usize = 256 * 1024;
/// Messages in flight (64 to 128 MiB): past that the walk waits for the side thread. sha512 is slower
/// than an extraction to a page cache, and the tree hash, which waits for the walk's end, is the
/// longer path: the walk runs ahead as far as this allows, so the tree hash starts that much sooner.
const SIDE_IN_FLIGHT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Copy,
    Hash,
    /// A plain tar's bytes are both the file's and the uncompressed stream's.
    Both,
}

/// Bytes read, gathered into messages for the side thread; what is gathered is sent when dropped.
struct Feed {
    used: Use,
    pending: Vec<u8>,
    out: SyncSender<(Use, Vec<u8>)>,
}

impl Feed {
    fn take(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= SIDE_CHUNK {
            self.send();
        }
    }

    fn send(&mut self) {
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(SIDE_CHUNK));
        // A side thread that is gone failed, and says why when it is joined.
        let _ = self.out.send((self.used, chunk));
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.send();
        }
    }
}

/// The raw bytes of a compressed file, fed to the copy as the decoder reads them.
struct Tee {
    inner: Box<dyn Read>,
    feed: Feed,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.feed.take(&buf[..n]);
        Ok(n)
    }
}

/// The side thread. Dropped, it is waited for: nothing writes the copy once the walk has returned.
pub struct SideThread(Option<JoinHandle<Result<Option<[u8; 64]>>>>);

impl SideThread {
    fn start(
        receiver: Receiver<(Use, Vec<u8>)>,
        hash: bool,
        mut copy: Option<(File, PathBuf)>,
    ) -> SideThread {
        SideThread(Some(thread::spawn(move || {
            let mut hasher = Sha512::new();
            let mut failure = None;
            for (used, chunk) in receiver {
                if used != Use::Hash && failure.is_none() {
                    if let Some((file, _)) = copy.as_mut() {
                        failure = file.write_all(&chunk).err();
                    }
                }
                if used != Use::Copy {
                    hasher.update(&chunk);
                }
            }
            if let (Some(e), Some((_, path))) = (failure, copy) {
                return Err(Error::io(format!("writing {}", path.display()), &e));
            }
            Ok(hash.then(|| hasher.finalize().into()))
        })))
    }

    /// Waits for the side work to be done: the copy written, the sha512 when it was asked for.
    fn wait(&mut self) -> Result<Option<[u8; 64]>> {
        match self.0.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| Error::new(Code::Io, "the archive hashing thread panicked"))?,
            None => Ok(None),
        }
    }
}

impl Drop for SideThread {
    fn drop(&mut self) {
        // An error here was the walk's to report, and it has failed already for a reason of its own.
        let _ = self.wait();
    }
}

#[derive(Default)]
struct TapState {
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
    feed: Option<Feed>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        let mut state = self.state.borrow_mut();
        match &result {
            Ok(0) if !buf.is_empty() => state.eof = true,
            Ok(n) => {
                state.size += *n as u64;
                if let Some(feed) = self.feed.as_mut() {
                    feed.take(&buf[..*n]);
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
    // Dropped in this order: the archive's feeds, then the side thread they feed (waited for).
    archive: tar::Archive<Tap>,
    diagnosis: Diagnosis,
    side: SideThread,
}

pub struct End {
    pub compression: Compression,
    pub size: u64,
    side: SideThread,
}

impl End {
    /// Waits for what was done beside the walk: the copy written, and the sha512 of the whole
    /// uncompressed stream, trailing padding included, when hashing was asked for.
    pub fn wait(&mut self) -> Result<Option<[u8; 64]>> {
        self.side.wait()
    }
}

impl Stream {
    pub fn open(path: &Path, beside: Beside<'_>) -> Result<Stream> {
        let (compression, raw) = compression::open_raw(path)?;
        let copy = match beside.copy_to {
            Some(to) => Some((
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(to)
                    .context(|| format!("creating {}", to.display()))?,
                to.to_path_buf(),
            )),
            None => None,
        };
        let plain = compression == Compression::None;
        let tap_use = match (beside.hash, copy.is_some() && plain) {
            (true, true) => Some(Use::Both),
            (true, false) => Some(Use::Hash),
            (false, true) => Some(Use::Copy),
            (false, false) => None,
        };
        let (raw, feed, side): (Box<dyn Read>, _, _) = if tap_use.is_none() && copy.is_none() {
            (raw, None, SideThread(None))
        } else {
            let (out, receiver) = mpsc::sync_channel(SIDE_IN_FLIGHT);
            let feed = |used| Feed {
                used,
                pending: Vec::with_capacity(SIDE_CHUNK),
                out: out.clone(),
            };
            let raw: Box<dyn Read> = if copy.is_some() && !plain {
                Box::new(Tee {
                    inner: raw,
                    feed: feed(Use::Copy),
                })
            } else {
                raw
            };
            let tap_feed = tap_use.map(feed);
            (
                raw,
                tap_feed,
                SideThread::start(receiver, beside.hash, copy),
            )
        };
        let inner = compression::decoder(compression, raw, path)?;
        let state = Rc::new(RefCell::new(TapState::default()));
        let tap = Tap {
            inner,
            state: state.clone(),
            feed,
        };
        Ok(Stream {
            archive: tar::Archive::new(tap),
            diagnosis: Diagnosis { state, compression },
            side,
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

    /// Reads what follows the end-of-archive block (it counts in the image id, and is part of the
    /// copy). The side work may still be going on: End::wait waits for it.
    pub fn finish(self) -> Result<End> {
        let Stream {
            archive,
            diagnosis,
            side,
        } = self;
        let mut tap = archive.into_inner();
        io::copy(&mut tap, &mut io::sink()).map_err(|e| diagnosis.read_error(e))?;
        // Sends the last bytes gathered; the side thread ends once it has them.
        drop(tap);
        let size = diagnosis.state.borrow().size;
        Ok(End {
            compression: diagnosis.compression,
            size,
            side,
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
