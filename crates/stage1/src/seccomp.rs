//! The default seccomp filter: a deny-list in the spirit of Docker's default profile and
//! rkt's `@rkt/default-blacklist` (module loading, kexec, reboot, swap, clock setting, the
//! mount API, namespace creation, keyrings, bpf, perf, io_uring, userfaultfd, ...): denied
//! calls fail with EPERM. `clone` is allowed unless it asks for a new namespace; `clone3`
//! gets ENOSYS so that libc falls back to `clone`, whose flags a filter can see.
//! `ptrace` stays allowed (safe with seccomp since Linux 4.8, as Docker decided).
//!
//! A hand-built classic BPF program rather than `seccompiler`: seccompiler 0.5 gives every
//! rule of a filter the same action, and this filter needs two (EPERM and ENOSYS); the
//! program is ~60 instructions, built without allocation-heavy compilation, and the unit
//! tests run it through an interpreter.

use nix::errno::Errno;

use crate::error::{Context, Result};

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// x32 syscalls share AUDIT_ARCH_X86_64 and are told apart by this bit of the number.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

use libc::c_long;

const DENY: &[c_long] = &[
    libc::SYS_acct,
    libc::SYS_add_key,
    libc::SYS_bpf,
    libc::SYS_clock_adjtime,
    libc::SYS_clock_settime,
    libc::SYS_delete_module,
    libc::SYS_fanotify_init,
    libc::SYS_finit_module,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fsopen,
    libc::SYS_fspick,
    libc::SYS_init_module,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_io_uring_setup,
    libc::SYS_kcmp,
    libc::SYS_kexec_file_load,
    libc::SYS_kexec_load,
    libc::SYS_keyctl,
    libc::SYS_lookup_dcookie,
    libc::SYS_migrate_pages,
    libc::SYS_mount,
    libc::SYS_mount_setattr,
    libc::SYS_move_mount,
    libc::SYS_move_pages,
    libc::SYS_open_by_handle_at,
    libc::SYS_open_tree,
    libc::SYS_perf_event_open,
    libc::SYS_pivot_root,
    libc::SYS_quotactl,
    libc::SYS_quotactl_fd,
    libc::SYS_reboot,
    libc::SYS_request_key,
    libc::SYS_setns,
    libc::SYS_settimeofday,
    libc::SYS_swapoff,
    libc::SYS_swapon,
    libc::SYS_syslog,
    libc::SYS_umount2,
    libc::SYS_unshare,
    libc::SYS_userfaultfd,
    #[cfg(target_arch = "x86_64")]
    libc::SYS__sysctl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_nfsservctl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ustat,
];

/// Namespace flags that `clone` may not carry (CLONE_NEWTIME shares its bit with the exit
/// signal in clone(2) and exists only for clone3/unshare, both denied).
const CLONE_NS_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;

// offsetof(struct seccomp_data, ...)
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
#[cfg(target_endian = "little")]
const OFF_ARG0_LOW: u32 = 16;
#[cfg(target_endian = "big")]
const OFF_ARG0_LOW: u32 = 20;

const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
#[cfg(target_arch = "x86_64")]
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

#[derive(Clone, Copy, PartialEq)]
enum To {
    Next,
    Allow,
    Eperm,
    Enosys,
    Kill,
    CloneCheck,
}

/// A compiled filter, built once in pod PID 1 and installed by every app child.
pub struct Filter(Vec<libc::sock_filter>);

pub fn default_filter() -> Filter {
    let mut p: Vec<(u16, To, To, u32)> = vec![
        (LD_ABS, To::Next, To::Next, OFF_ARCH),
        (JEQ, To::Next, To::Kill, AUDIT_ARCH),
        (LD_ABS, To::Next, To::Next, OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    p.push((JGE, To::Eperm, To::Next, X32_SYSCALL_BIT));
    p.push((JEQ, To::Enosys, To::Next, libc::SYS_clone3 as u32));
    p.push((JEQ, To::CloneCheck, To::Next, libc::SYS_clone as u32));
    for &nr in DENY {
        p.push((JEQ, To::Eperm, To::Next, nr as u32));
    }
    p.push((RET, To::Next, To::Next, libc::SECCOMP_RET_ALLOW));
    let clone_check = p.len();
    p.push((LD_ABS, To::Next, To::Next, OFF_ARG0_LOW));
    p.push((JSET, To::Eperm, To::Allow, CLONE_NS_FLAGS));
    let allow = p.len();
    p.push((RET, To::Next, To::Next, libc::SECCOMP_RET_ALLOW));
    let eperm = p.len();
    p.push((
        RET,
        To::Next,
        To::Next,
        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
    ));
    let enosys = p.len();
    p.push((
        RET,
        To::Next,
        To::Next,
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
    ));
    let kill = p.len();
    p.push((RET, To::Next, To::Next, libc::SECCOMP_RET_KILL_PROCESS));

    let resolve = |i: usize, t: To| -> u8 {
        let target = match t {
            To::Next => i + 1,
            To::Allow => allow,
            To::Eperm => eperm,
            To::Enosys => enosys,
            To::Kill => kill,
            To::CloneCheck => clone_check,
        };
        u8::try_from(target - (i + 1)).expect("BPF jumps are at most 255 instructions")
    };
    Filter(
        p.iter()
            .enumerate()
            .map(|(i, &(code, jt, jf, k))| libc::sock_filter {
                code,
                jt: resolve(i, jt),
                jf: resolve(i, jf),
                k,
            })
            .collect(),
    )
}

impl Filter {
    /// Installs the filter on the calling thread. Needs no_new_privs (the apps have no
    /// CAP_SYS_ADMIN by then); runs last before execve so stage1's own calls are unfiltered.
    pub fn install(&self) -> Result<()> {
        let prog = libc::sock_fprog {
            len: self.0.len() as u16,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program the way the kernel would, for the instructions it uses.
    fn run(f: &Filter, arch: u32, nr: u32, arg0: u64) -> u32 {
        let mut pc = 0usize;
        let mut acc = 0u32;
        loop {
            let ins = f.0[pc];
            pc += 1;
            let jump = |cond: bool| {
                if cond {
                    ins.jt as usize
                } else {
                    ins.jf as usize
                }
            };
            match ins.code {
                LD_ABS => {
                    acc = match ins.k {
                        OFF_NR => nr,
                        OFF_ARCH => arch,
                        OFF_ARG0_LOW => arg0 as u32,
                        other => panic!("unexpected load offset {other}"),
                    }
                }
                JEQ => pc += jump(acc == ins.k),
                #[cfg(target_arch = "x86_64")]
                JGE => pc += jump(acc >= ins.k),
                JSET => pc += jump(acc & ins.k != 0),
                RET => return ins.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    #[test]
    fn denies_the_list_and_allows_the_rest() {
        let f = default_filter();
        for &nr in DENY {
            assert_eq!(run(&f, AUDIT_ARCH, nr as u32, 0), EPERM, "syscall {nr}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_execve,
            libc::SYS_ptrace,
            libc::SYS_chroot,
        ] {
            assert_eq!(run(&f, AUDIT_ARCH, nr as u32, 0), ALLOW, "syscall {nr}");
        }
    }

    #[test]
    fn clone_without_namespaces_only() {
        let f = default_filter();
        let clone = libc::SYS_clone as u32;
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(run(&f, AUDIT_ARCH, clone, thread), ALLOW);
        assert_eq!(run(&f, AUDIT_ARCH, clone, libc::SIGCHLD as u64), ALLOW);
        assert_eq!(
            run(&f, AUDIT_ARCH, clone, libc::CLONE_NEWUSER as u64),
            EPERM
        );
        assert_eq!(
            run(
                &f,
                AUDIT_ARCH,
                clone,
                (libc::CLONE_NEWNET | libc::SIGCHLD) as u64
            ),
            EPERM
        );
        assert_eq!(run(&f, AUDIT_ARCH, libc::SYS_clone3 as u32, 0), ENOSYS);
    }

    #[test]
    fn foreign_arch_is_killed() {
        let f = default_filter();
        assert_eq!(run(&f, 0x4000_0003, 1, 0), libc::SECCOMP_RET_KILL_PROCESS);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_is_denied() {
        let f = default_filter();
        assert_eq!(
            run(&f, AUDIT_ARCH, X32_SYSCALL_BIT | libc::SYS_read as u32, 0),
            EPERM
        );
    }
}
