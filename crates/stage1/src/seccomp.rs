//! An app's seccomp filter: its isolators' policy (or podlog's default, Docker's effect),
//! compiled by podlog-seccomp with libseccomp in pod PID 1, before any fork; the app's child
//! only hands the program to the kernel (docs/stage1.md, "seccomp").

use nix::errno::Errno;
use podlog_seccomp::Policy;

use crate::error::{Context, Error, Result};
use crate::manifest::Isolator;

/// A compiled program, loaded by each child of the app.
pub struct Filter(Vec<libc::sock_filter>);

/// The filter of an app with `isolators`, None for none (a retain set of `@appc.io/all`).
/// `early`: the child loads it before dropping capabilities and ids (no_new_privs off).
pub fn for_app(isolators: &[Isolator], early: bool) -> Result<Option<Filter>> {
    let policy = Policy::from_isolators(isolators.iter().map(|i| (i.name.as_str(), &i.value)))
        .map_err(|e| Error::msg(e.to_string()))?;
    let program = podlog_seccomp::compile(&policy, early).map_err(|e| Error::msg(e.to_string()))?;
    Ok(program.map(Filter))
}

impl Filter {
    /// Installs the filter on the calling thread. Without no_new_privs the caller needs
    /// CAP_SYS_ADMIN (in its user namespace).
    pub fn install(&self) -> Result<()> {
        let prog = libc::sock_fprog {
            len: u16::try_from(self.0.len())
                .map_err(|_| Error::msg("the seccomp filter is longer than 65535 instructions"))?,
            filter: self.0.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: the kernel copies `prog.len` instructions from `prog.filter`, which
        // points into self.0, alive for the duration of the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            )
        };
        Errno::result(r).ctx("install seccomp filter")?;
        Ok(())
    }
}
