//! Compiling a [`Policy`] with libseccomp, exported as the classic BPF program the kernel
//! loads: stage1 compiles it in pod PID 1 and the app's child only hands it to seccomp(2),
//! so nothing is allocated or generated between fork and execve.

use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use crate::groups;
use crate::policy::{Mode, Policy};
use crate::Error;

type Scmp<T> = Result<T, libseccomp::error::SeccompError>;

/// What a retain set always allows, as systemd (rkt's stage1) did: the call that starts
/// the app and those that end a process or return from a signal handler.
const ALWAYS_RETAINED: &[&str] = &["execve", "exit", "exit_group", "rt_sigreturn", "sigreturn"];

/// What stage1's child calls after loading a filter that it loads early, while it still has
/// CAP_SYS_ADMIN (no_new_privs off): dropping capabilities and ids, the working directory,
/// close-on-exec, and reporting a failure.
const AFTER_EARLY_LOAD: &[&str] = &[
    "capget",
    "capset",
    "prctl",
    "setresuid",
    "setresgid",
    "chdir",
    "close_range",
    "write",
];

/// The entries of a remove set (syscalls or groups) that stage1 calls after a filter it loads
/// early: such a set can only be had with no_new_privs.
pub fn needed_after_early_load<S: AsRef<str>>(entries: &[S]) -> Vec<String> {
    entries
        .iter()
        .flat_map(|e| groups::group(e.as_ref()).map_or_else(|| vec![e.as_ref()], <[&str]>::to_vec))
        .filter(|s| AFTER_EARLY_LOAD.contains(s))
        .map(str::to_string)
        .collect()
}

/// Namespace flags `clone` may not carry under the default filter (CLONE_NEWTIME shares
/// its bit with the exit signal in clone(2) and exists only for clone3 and unshare).
const CLONE_NS_FLAGS: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
];

/// The syscall `name` on this architecture; None for a name libseccomp does not know here
/// (its negative pseudo-numbers stand for calls of other architectures).
pub fn resolve(name: &str) -> Option<ScmpSyscall> {
    ScmpSyscall::from_name_by_arch(name, ScmpArch::native())
        .ok()
        .filter(|s| s.as_raw_syscall() >= 0)
}

/// The program for `policy`, None for no filter. `early`: the child loads it before it
/// drops capabilities and ids (no_new_privs off), so a retain set also allows what it calls
/// until execve.
pub fn compile(policy: &Policy, early: bool) -> Result<Option<Vec<libc::sock_filter>>, Error> {
    let ctx = match policy {
        Policy::Unconfined => return Ok(None),
        Policy::Default => default_filter(),
        Policy::Set {
            mode: Mode::Retain,
            syscalls,
            errno,
        } => {
            let extra = if early { AFTER_EARLY_LOAD } else { &[] };
            let names = syscalls.iter().map(String::as_str);
            retain(
                names
                    .chain(ALWAYS_RETAINED.iter().copied())
                    .chain(extra.iter().copied()),
                action(*errno),
            )
        }
        Policy::Set {
            mode: Mode::Remove,
            syscalls,
            errno,
        } => {
            let needed = if early {
                needed_after_early_load(syscalls)
            } else {
                vec![]
            };
            if !needed.is_empty() {
                return Err(Error(format!(
                    "a seccomp remove set of {} needs os/linux/no-new-privileges: without it the \
                     filter is loaded before stage1 drops the app's privileges, which calls them",
                    needed.join(", ")
                )));
            }
            remove(syscalls.iter().map(String::as_str), action(*errno))
        }
    }
    .map_err(|e| Error(format!("compile the seccomp filter: {e}")))?;
    export(&ctx).map(Some)
}

/// A denied call fails with EPERM unless the set names its errno (Docker's and containerd's
/// default action; rkt killed the process with SIGSYS, which an app cannot handle or report).
fn action(errno: Option<i32>) -> ScmpAction {
    ScmpAction::Errno(errno.unwrap_or(libc::EPERM))
}

fn context(default: ScmpAction) -> Scmp<ScmpFilterContext> {
    let mut ctx = ScmpFilterContext::new(default)?;
    // Another architecture's calls (i386's int 0x80, x32) are not what the rules name.
    ctx.set_act_badarch(ScmpAction::KillProcess)?;
    Ok(ctx)
}

/// Only `names` allowed, everything else `deny`. `clone3` gets ENOSYS unless allowed, so
/// that glibc, which falls back to `clone` on ENOSYS only, still makes threads.
fn retain<'a>(names: impl Iterator<Item = &'a str>, deny: ScmpAction) -> Scmp<ScmpFilterContext> {
    let mut ctx = context(deny)?;
    let mut clone3_allowed = false;
    for sys in names.filter_map(resolve) {
        clone3_allowed |= Some(sys) == resolve("clone3");
        ctx.add_rule(ScmpAction::Allow, sys)?;
    }
    let enosys = ScmpAction::Errno(libc::ENOSYS);
    if let (false, Some(clone3)) = (clone3_allowed || deny == enosys, resolve("clone3")) {
        ctx.add_rule(enosys, clone3)?;
    }
    Ok(ctx)
}

/// `names` get `deny`, everything else is allowed.
fn remove<'a>(names: impl Iterator<Item = &'a str>, deny: ScmpAction) -> Scmp<ScmpFilterContext> {
    let mut ctx = context(ScmpAction::Allow)?;
    for sys in names.filter_map(resolve) {
        ctx.add_rule(deny, sys)?;
    }
    Ok(ctx)
}

/// Docker's default profile for a container with the default capabilities, as a deny-list:
/// its blacklist and [`groups::DEFAULT_DENY_EXTRA`] fail with EPERM, `clone` too when it
/// asks for a namespace, and `clone3`, whose flags a filter cannot read, with ENOSYS.
fn default_filter() -> Scmp<ScmpFilterContext> {
    let blacklist = groups::group("@docker/default-blacklist").expect("a group of groups.rs");
    let deny = blacklist.iter().chain(groups::DEFAULT_DENY_EXTRA).copied();
    let eperm = ScmpAction::Errno(libc::EPERM);
    let mut ctx = remove(deny, eperm)?;
    if let Some(clone) = resolve("clone") {
        for flag in CLONE_NS_FLAGS {
            let flag = flag as u64;
            let cmp = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(flag), flag);
            ctx.add_rule_conditional(eperm, clone, &[cmp])?;
        }
    }
    if let Some(clone3) = resolve("clone3") {
        ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), clone3)?;
    }
    Ok(ctx)
}

/// The program libseccomp would load, read back through a memfd (libseccomp 2.5 exports to
/// a file descriptor only).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, Error> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error(format!("export the seccomp filter: {what}: {e}"))
    };
    // SAFETY: a constant NUL-terminated name and flags; the result is checked before use.
    let fd = unsafe { libc::memfd_create(c"podlog-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(fail("memfd_create", &std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just created and is owned by nothing else.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&file)
        .map_err(|e| fail("seccomp_export_bpf", &e))?;
    let mut raw = Vec::new();
    file.rewind()
        .and_then(|()| file.read_to_end(&mut raw))
        .map_err(|e| fail("read", &e))?;
    Ok(raw
        .chunks_exact(8)
        .map(|i| libc::sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect())
}

#[cfg(test)]
mod tests;
