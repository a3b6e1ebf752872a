//! The crate's one error type. JS sees `"<CODE>: <message>"`; `src/native.ts` lifts the code into
//! `PodlogError.code`, so the codes are an API: event-log failure events and tests key on them.

use std::fmt;
use std::io;

use rustix::io::Errno;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    NoEntry,
    Exists,
    HostileArchive,
    BadManifest,
    BadLayout,
    BadArchive,
    Compression,
    Truncated,
    TooLarge,
    Locked,
    Busy,
    NoProcess,
    InvalidArgument,
    Io,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NoEntry => "ENOENT",
            Code::Exists => "EEXIST",
            Code::HostileArchive => "EHOSTILE_ARCHIVE",
            Code::BadManifest => "EBADMANIFEST",
            Code::BadLayout => "EBADLAYOUT",
            Code::BadArchive => "EBADARCHIVE",
            Code::Compression => "ECOMPRESSION",
            Code::Truncated => "ETRUNCATED",
            Code::TooLarge => "ETOO_LARGE",
            Code::Locked => "ELOCKED",
            Code::Busy => "EBUSY",
            Code::NoProcess => "ESRCH",
            Code::InvalidArgument => "EINVAL",
            Code::Io => "EIO",
        }
    }

    /// The codes a caller can act on get their own name; every other system error is `EIO`.
    fn of_io(e: &io::Error) -> Code {
        match Errno::from_io_error(e) {
            Some(Errno::NOENT) => Code::NoEntry,
            Some(Errno::EXIST) => Code::Exists,
            Some(Errno::WOULDBLOCK) => Code::Locked,
            Some(Errno::BUSY) => Code::Busy,
            Some(Errno::SRCH) => Code::NoProcess,
            Some(Errno::INVAL) => Code::InvalidArgument,
            _ => Code::Io,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    pub code: Code,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn io(what: impl fmt::Display, e: &io::Error) -> Self {
        Error::new(Code::of_io(e), format!("{what}: {e}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for napi::Error {
    fn from(e: Error) -> Self {
        napi::Error::new(napi::Status::GenericFailure, e.to_string())
    }
}

/// Adds what was being done to a system error, keeping its errno-derived code.
pub trait Context<T> {
    fn context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error::io(what(), &e))
    }
}

impl<T> Context<T> for std::result::Result<T, rustix::io::Errno> {
    fn context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error::io(what(), &e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_errors_keep_their_meaningful_codes() {
        let missing = io::Error::from(Errno::NOENT);
        assert_eq!(Error::io("opening x", &missing).code, Code::NoEntry);
        let busy = io::Error::from(Errno::WOULDBLOCK);
        assert_eq!(
            Error::io("locking x", &busy).to_string().split(':').next(),
            Some("ELOCKED")
        );
        let other = io::Error::other("disk on fire");
        assert_eq!(
            Error::io("writing x", &other).to_string(),
            "EIO: writing x: disk on fire"
        );
    }
}
