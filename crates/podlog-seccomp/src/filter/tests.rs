//! The exported programs, run through a classic-BPF interpreter the way the kernel runs
//! them, so that each filter's verdicts are checked without loading it.

use super::*;
use crate::policy::{REMOVE_SET, RETAIN_SET};

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// Runs `prog` on a `struct seccomp_data` of `arch`, `nr` and first argument `arg0`.
fn run(prog: &[libc::sock_filter], arch: u32, nr: i64, arg0: u64) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(nr as u32).to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    data[16..24].copy_from_slice(&arg0.to_ne_bytes());
    let word = |off: u32| {
        let o = off as usize;
        u32::from_ne_bytes(data[o..o + 4].try_into().expect("an aligned load"))
    };
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        let code = u32::from(i.code);
        let src = if code & 0x08 == libc::BPF_X { x } else { i.k };
        match code & 0x07 {
            libc::BPF_LD => match code & 0xe0 {
                libc::BPF_ABS => a = word(i.k),
                libc::BPF_IMM => a = i.k,
                libc::BPF_MEM => a = mem[i.k as usize],
                m => panic!("load mode {m:#x}"),
            },
            libc::BPF_LDX => match code & 0xe0 {
                libc::BPF_IMM => x = i.k,
                libc::BPF_MEM => x = mem[i.k as usize],
                m => panic!("ldx mode {m:#x}"),
            },
            libc::BPF_ST => mem[i.k as usize] = a,
            libc::BPF_STX => mem[i.k as usize] = x,
            libc::BPF_ALU => {
                a = match code & 0xf0 {
                    libc::BPF_AND => a & src,
                    libc::BPF_OR => a | src,
                    libc::BPF_ADD => a.wrapping_add(src),
                    libc::BPF_SUB => a.wrapping_sub(src),
                    libc::BPF_RSH => a >> src,
                    libc::BPF_LSH => a << src,
                    op => panic!("alu op {op:#x}"),
                }
            }
            libc::BPF_JMP => {
                let cond = match code & 0xf0 {
                    libc::BPF_JA => {
                        pc += i.k as usize;
                        continue;
                    }
                    libc::BPF_JEQ => a == src,
                    libc::BPF_JGT => a > src,
                    libc::BPF_JGE => a >= src,
                    libc::BPF_JSET => a & src != 0,
                    op => panic!("jump op {op:#x}"),
                };
                pc += usize::from(if cond { i.jt } else { i.jf });
            }
            libc::BPF_RET => return i.k,
            libc::BPF_MISC => match code & 0xf8 {
                libc::BPF_TAX => x = a,
                libc::BPF_TXA => a = x,
                m => panic!("misc {m:#x}"),
            },
            c => panic!("class {c:#x}"),
        }
    }
}

fn nr(name: &str) -> i64 {
    i64::from(resolve(name).expect(name).as_raw_syscall())
}

fn program(policy: &Policy, early: bool) -> Vec<libc::sock_filter> {
    compile(policy, early).expect("compiles").expect("a filter")
}

/// What `prog` does with the syscall `name` (first argument 0).
fn verdict(prog: &[libc::sock_filter], name: &str) -> u32 {
    run(prog, AUDIT_ARCH, nr(name), 0)
}

/// The program of one seccomp isolator.
fn isolated(isolator: &str, value: serde_json::Value, early: bool) -> Vec<libc::sock_filter> {
    program(&of(isolator, value), early)
}

fn of(isolator: &str, value: serde_json::Value) -> Policy {
    Policy::from_isolators([(isolator, &value)]).expect("a valid isolator")
}

#[test]
fn default_denies_dockers_blacklist_and_allows_the_rest() {
    let p = program(&Policy::Default, false);
    for name in [
        "keyctl",
        "add_key",
        "request_key",
        "mount",
        "umount2",
        "pivot_root",
        "kexec_load",
        "kexec_file_load",
        "unshare",
        "setns",
        "bpf",
        "perf_event_open",
        "init_module",
        "reboot",
        "swapon",
        "syslog",
        "userfaultfd",
        "open_by_handle_at",
        "io_uring_setup",
        "move_pages",
        "sethostname",
        "clock_settime",
        "acct",
        "kcmp",
    ] {
        assert_eq!(verdict(&p, name), EPERM, "{name}");
    }
    for name in [
        "read",
        "write",
        "execve",
        "mkdir",
        "ptrace",
        "process_vm_readv",
        "chroot",
        "socket",
        "clock_adjtime",
        "setresuid",
        "capset",
    ] {
        assert_eq!(verdict(&p, name), ALLOW, "{name}");
    }
}

#[test]
fn default_allows_clone_without_namespaces_only() {
    let p = program(&Policy::Default, false);
    let clone = nr("clone");
    let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
    assert_eq!(run(&p, AUDIT_ARCH, clone, thread), ALLOW);
    assert_eq!(run(&p, AUDIT_ARCH, clone, libc::SIGCHLD as u64), ALLOW);
    for flag in CLONE_NS_FLAGS {
        assert_eq!(
            run(&p, AUDIT_ARCH, clone, (flag | libc::SIGCHLD) as u64),
            EPERM,
            "{flag:#x}"
        );
    }
    assert_eq!(verdict(&p, "clone3"), ENOSYS);
}

#[test]
fn another_architecture_is_killed() {
    for p in [
        program(&Policy::Default, false),
        isolated(RETAIN_SET, serde_json::json!({"set": ["read"]}), false),
    ] {
        assert_eq!(run(&p, 0x4000_0003, 1, 0), KILL); // AUDIT_ARCH_I386
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            run(&p, AUDIT_ARCH, 0x4000_0000 | nr("read"), 0),
            KILL,
            "x32 read"
        );
    }
}

#[test]
fn remove_set_denies_its_set_with_its_errno_or_eperm() {
    let p = isolated(
        REMOVE_SET,
        serde_json::json!({"set": ["mkdir", "mkdirat"]}),
        false,
    );
    assert_eq!(verdict(&p, "mkdir"), EPERM, "no errno named");
    assert_eq!(verdict(&p, "mount"), ALLOW, "not the default filter");
    assert_eq!(verdict(&p, "clone3"), ALLOW);
    let p = isolated(
        REMOVE_SET,
        serde_json::json!({"set": ["mkdirat"], "errno": "ENOSYS"}),
        false,
    );
    assert_eq!(verdict(&p, "mkdirat"), ENOSYS);
    assert_eq!(verdict(&p, "read"), ALLOW);
}

#[test]
fn retain_set_allows_its_set_and_what_stage1_needs() {
    let value = serde_json::json!({"set": ["@podlog/default-whitelist"], "errno": "EPERM"});
    let late = isolated(RETAIN_SET, value.clone(), false);
    for name in [
        "read",
        "execve",
        "clone",
        "mkdir",
        "close_range",
        "setresuid",
        "capset",
    ] {
        assert_eq!(verdict(&late, name), ALLOW, "{name}");
    }
    for name in ["keyctl", "mount", "unshare", "kexec_load"] {
        assert_eq!(verdict(&late, name), EPERM, "{name}");
    }
    assert_eq!(verdict(&late, "clone3"), ENOSYS);

    let small = serde_json::json!({"set": ["read", "write"]});
    let late = isolated(RETAIN_SET, small.clone(), false);
    let early = isolated(RETAIN_SET, small, true);
    for name in ["execve", "exit_group", "rt_sigreturn"] {
        assert_eq!(verdict(&late, name), ALLOW, "{name}");
    }
    for name in AFTER_EARLY_LOAD {
        assert_eq!(
            verdict(&late, name),
            if *name == "write" { ALLOW } else { EPERM },
            "{name}"
        );
        assert_eq!(verdict(&early, name), ALLOW, "{name}");
    }
    assert_eq!(verdict(&early, "mkdir"), EPERM);
    assert_eq!(verdict(&early, "clone3"), ENOSYS);
}

#[test]
fn retain_set_with_enosys_and_clone3() {
    let p = isolated(
        RETAIN_SET,
        serde_json::json!({"set": ["read"], "errno": "ENOSYS"}),
        false,
    );
    assert_eq!(verdict(&p, "clone3"), ENOSYS);
    assert_eq!(verdict(&p, "mkdir"), ENOSYS);
    let p = isolated(RETAIN_SET, serde_json::json!({"set": ["clone3"]}), false);
    assert_eq!(verdict(&p, "clone3"), ALLOW);
}

#[test]
fn appc_all() {
    let all = serde_json::json!({"set": ["@appc.io/all"], "errno": "EACCES"});
    assert_eq!(compile(&of(RETAIN_SET, all.clone()), false), Ok(None));
    let p = isolated(REMOVE_SET, all, false);
    assert_eq!(
        verdict(&p, "read"),
        libc::SECCOMP_RET_ERRNO | libc::EACCES as u32
    );
    assert_eq!(verdict(&p, "execve"), ALLOW);
}

#[test]
fn every_group_compiles_both_ways() {
    for (name, _) in crate::groups::GROUPS {
        for early in [false, true] {
            isolated(RETAIN_SET, serde_json::json!({"set": [name]}), early);
        }
        // Early, a remove set of a whitelist would deny what stage1 calls: refused (see below).
        isolated(REMOVE_SET, serde_json::json!({"set": [name]}), false);
    }
}

#[test]
fn unknown_entries_are_named() {
    assert_eq!(
        crate::unknown_entries(&[
            "read",
            "@rkt/default-whitelist",
            "@appc.io/all",
            "nope",
            "@x/y"
        ]),
        ["nope", "@x/y"]
    );
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        crate::unknown_entries(&["chown32", "vm86"]),
        ["chown32", "vm86"]
    );
}

#[test]
fn a_remove_set_of_what_stage1_calls_after_an_early_load_is_refused() {
    let value = serde_json::json!({"set": ["mkdir", "setresuid"]});
    let err = compile(&of(REMOVE_SET, value.clone()), true).unwrap_err();
    assert!(
        err.0.contains("setresuid") && err.0.contains("no-new-privileges"),
        "{err}"
    );
    assert!(
        compile(&of(REMOVE_SET, value), false).is_ok(),
        "loaded last: nothing of stage1's is filtered"
    );
    assert_eq!(
        needed_after_early_load(&["mkdir", "chdir", "@rkt/default-blacklist"]),
        ["chdir"]
    );
}
