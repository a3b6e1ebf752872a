//! podlog-stage1: the per-pod runtime binary spawned by podlog's stage0 (see docs/stage1.md).
//! All namespace, mount and credential work of podlog happens here, in a single-threaded
//! process, never in Node.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by `init --debug`: progress lines on stderr.
static DEBUG: AtomicBool = AtomicBool::new(false);

macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::DEBUG.load(std::sync::atomic::Ordering::Relaxed) {
            // Monotonic time, comparable across the supervisor, PID 1 and other tools.
            let (s, ns) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
                .map_or((0, 0), |t| (t.tv_sec(), t.tv_nsec()));
            eprintln!(
                "podlog-stage1[{}] {}.{:06}: {}",
                std::process::id(),
                s,
                ns / 1000,
                format_args!($($arg)*)
            );
        }
    };
}

mod app;
mod caps;
mod cgroups;
mod cli;
mod control;
mod dev;
mod enter;
mod error;
mod etc;
mod export;
mod fdpass;
mod fsutil;
mod gc;
mod init;
mod lock;
mod lowers;
mod manifest;
mod mounts;
mod mutable;
mod namespaces;
mod netns;
mod process;
mod pty;
mod ready;
mod reaper;
mod rootfs;
mod seccomp;
mod stop;
mod sys;
mod user;
mod userns;
mod volumes;

/// What this stage1 does for a pod, as `podlog version` lists it.
const FEATURES: [&str; 8] = [
    "+namespaces(mount,pid,uts,ipc,net,user)",
    "+cgroup2",
    "+seccomp",
    "+capabilities",
    "+overlay",
    "+idmapped-mounts",
    "+mutable-pods",
    "+hooks",
];

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match cli::parse(argv.clone()) {
        Ok(cli::Command::Help) => {
            println!("{}", cli::USAGE);
            0
        }
        Ok(cli::Command::Version) => {
            println!("podlog-stage1 {}", env!("CARGO_PKG_VERSION"));
            println!("features: {}", FEATURES.join(" "));
            0
        }
        Ok(cmd) => {
            let r = match cmd {
                cli::Command::Init(o) => {
                    DEBUG.store(o.debug, Ordering::Relaxed);
                    init::run(o, &argv)
                }
                cli::Command::Enter(o) => enter::run(o),
                cli::Command::Stop(o) => stop::run(o),
                cli::Command::Gc(o) => gc::run(o),
                cli::Command::Netns(o) => netns::run(o),
                cli::Command::Export(o) => export::run(o),
                cli::Command::App(o) => app::run(o),
                cli::Command::IdmapProbe(dir) => userns::probe_idmap(&dir).map(|r| match r {
                    Ok(()) => {
                        println!("idmap");
                        0
                    }
                    Err(why) => {
                        println!("chown: {why}");
                        0
                    }
                }),
                cli::Command::Help | cli::Command::Version => Ok(0),
            };
            r.unwrap_or_else(|e| {
                eprintln!("podlog-stage1: {e}");
                error::STAGE1_FAILURE
            })
        }
        Err(e) => {
            eprintln!("podlog-stage1: {e}");
            error::STAGE1_FAILURE
        }
    };
    std::process::exit(code)
}
