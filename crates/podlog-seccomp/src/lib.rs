//! podlog's seccomp policies, shared by stage1 (which compiles and loads them) and the addon
//! (which stage0 asks to check an isolator's names at prepare): rkt's named groups
//! ([`groups`]), the appc isolators ([`policy`]), and filters compiled by libseccomp into
//! the classic BPF program the kernel loads ([`filter`]).

pub mod filter;
pub mod groups;
pub mod policy;

pub use filter::{compile, needed_after_early_load};
pub use policy::{Mode, Policy};

/// A policy that cannot be compiled: the message names the isolator or the syscall.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The entries of an isolator's set that this machine's architecture does not know:
/// syscall names libseccomp cannot resolve for it, and unknown `@` groups.
pub fn unknown_entries<S: AsRef<str>>(entries: &[S]) -> Vec<String> {
    entries
        .iter()
        .map(AsRef::as_ref)
        .filter(|e| match e.strip_prefix('@') {
            Some(_) => *e != groups::APPC_ALL && groups::group(e).is_none(),
            None => filter::resolve(e).is_none(),
        })
        .map(str::to_string)
        .collect()
}
