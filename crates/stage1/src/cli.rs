//! Command-line parsing. Hand-written: a dozen subcommands and a dozen flags do not justify a
//! parser crate's size and start-up cost in a binary that is spawned once per pod.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{bail, Result};
use crate::etc::{self, Hosts, Resolv, ResolvConf};
use crate::userns::IdRange;

pub const USAGE: &str = "\
usage: podlog-stage1 init  --pod-dir DIR --tree-store DIR [--hostname NAME] [--net none|host|netns]
                           [--dns default|host|none] [--dns-server IP]... [--dns-search DOMAIN]...
                           [--dns-opt OPTION]... [--dns-domain DOMAIN] [--hosts default|host]
                           [--hosts-entry IP=NAME[,NAME...]]... [--stop-grace SECONDS] [--debug]
                           [--ready-fd FD] [--parent-pid PID] [--interactive]
                           [--private-users SHIFT:COUNT:idmap|chown] [--disable-capabilities-restriction]
                           [--disable-paths] [--disable-seccomp] [--mutable]
       podlog-stage1 enter --pod-dir DIR --app NAME [--disable-capabilities-restriction]
                           [--disable-seccomp] [--] [CMD ARG...]
       podlog-stage1 stop  --pod-dir DIR [--force]
       podlog-stage1 gc    --pod-dir DIR
       podlog-stage1 netns --pod-dir DIR create|remove
       podlog-stage1 idmap-probe --dir DIR
       podlog-stage1 export --pod-dir DIR --tree-store DIR --app NAME --manifest FILE --out FILE
       podlog-stage1 app-add   --pod-dir DIR --tree-store DIR --app NAME
       podlog-stage1 app-start --pod-dir DIR --app NAME
       podlog-stage1 app-stop  --pod-dir DIR --app NAME [--force]
       podlog-stage1 app-rm    --pod-dir DIR --app NAME
       podlog-stage1 --version";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// A new network namespace with only loopback, up.
    None,
    /// The host's network namespace.
    Host,
    /// The namespace `netns create` keeps at `<pod>/netns`, which stage0 attached networks to.
    Netns,
}

#[derive(Debug, PartialEq)]
pub struct InitOpts {
    pub pod_dir: PathBuf,
    pub tree_store: PathBuf,
    pub hostname: Option<String>,
    pub net: NetMode,
    pub resolv: Resolv,
    pub hosts: Hosts,
    pub stop_grace: Duration,
    pub debug: bool,
    /// An inherited pipe or socket: the pod's PID 1 host pid is written to it once the pod is
    /// up, or it is closed empty if the pod never comes up.
    pub ready_fd: Option<i32>,
    /// The process that spawned stage1: the pod dies with it (PR_SET_PDEATHSIG).
    pub parent_pid: Option<i32>,
    /// The pod's one app runs on a pseudo-terminal, relayed to stage1's own stdio (pty.rs).
    pub interactive: bool,
    /// The apps run in a user namespace with this range (userns.rs).
    pub private_users: Option<IdRange>,
    /// rkt's --insecure-options for the run: what stage1 leaves unconfined.
    pub insecure: Insecure,
    /// A sandbox: no app runs until `app-add` and `app-start` (mutable.rs).
    pub mutable: bool,
}

/// rkt's `--disable-capabilities-restriction`, `--disable-paths`, `--disable-seccomp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Insecure {
    /// The apps keep PID 1's capabilities (all of them).
    pub capabilities: bool,
    /// No read-only or masked kernel files.
    pub paths: bool,
    /// No seccomp filter.
    pub seccomp: bool,
}

#[derive(Debug, PartialEq)]
pub struct EnterOpts {
    pub pod_dir: PathBuf,
    pub app: String,
    pub cmd: Vec<String>,
    /// What the pod's run left unconfined, so that a command entered is no more confined.
    pub insecure: Insecure,
}

#[derive(Debug, PartialEq)]
pub struct StopOpts {
    pub pod_dir: PathBuf,
    pub force: bool,
}

#[derive(Debug, PartialEq)]
pub struct GcOpts {
    pub pod_dir: PathBuf,
}

/// `export`: an ACI of an exited pod's app root (export.rs).
#[derive(Debug, PartialEq)]
pub struct ExportOpts {
    pub pod_dir: PathBuf,
    pub tree_store: PathBuf,
    pub app: String,
    /// The app's image manifest, which becomes the ACI's `manifest`.
    pub manifest: PathBuf,
    /// The ACI to write; it must not exist.
    pub out: PathBuf,
}

/// `app-add`, `app-start`, `app-stop`, `app-rm`: one app of a running mutable pod (app.rs).
#[derive(Debug, PartialEq)]
pub struct AppCommand {
    pub pod_dir: PathBuf,
    pub app: String,
    pub verb: AppVerb,
}

#[derive(Debug, PartialEq)]
pub enum AppVerb {
    /// Mounts the app's root in the pod; its tree is in this tree store.
    Add {
        tree_store: PathBuf,
    },
    Start,
    /// `force`: SIGKILL at once.
    Stop {
        force: bool,
    },
    Rm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetnsAction {
    Create,
    Remove,
}

#[derive(Debug, PartialEq)]
pub struct NetnsOpts {
    pub pod_dir: PathBuf,
    pub action: NetnsAction,
}

#[derive(Debug, PartialEq)]
pub enum Command {
    Init(InitOpts),
    Enter(EnterOpts),
    Stop(StopOpts),
    Gc(GcOpts),
    Netns(NetnsOpts),
    Export(ExportOpts),
    App(AppCommand),
    /// Whether the file system of a directory supports idmapped mounts (stage0 asks before it
    /// prepares a pod with --private-users).
    IdmapProbe(PathBuf),
    Help,
    Version,
}

pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// Splits `--name=value` / `--name value` pairs; anything after `--` (or the first non-flag,
/// for `enter`) is positional.
struct Args {
    items: std::vec::IntoIter<String>,
}

impl Args {
    fn value(&mut self, flag: &str, inline: Option<String>) -> Result<String> {
        match inline.or_else(|| self.items.next()) {
            Some(v) => Ok(v),
            None => bail!("{flag} needs a value"),
        }
    }
}

pub fn parse(argv: Vec<String>) -> Result<Command> {
    let mut it = argv.into_iter();
    let sub = match it.next() {
        Some(s) => s,
        None => bail!("missing subcommand\n{USAGE}"),
    };
    let mut args = Args { items: it };
    let mut pod_dir = None;
    let mut tree_store = None;
    let mut hostname = None;
    let mut net = NetMode::None;
    let mut dns = Resolv::Default;
    let mut resolv_conf = ResolvConf::default();
    let mut hosts = Hosts::Default;
    let mut hosts_entries: Vec<(IpAddr, Vec<String>)> = Vec::new();
    let mut stop_grace = DEFAULT_STOP_GRACE;
    let mut debug = false;
    let mut interactive = false;
    let mut private_users = None;
    let mut insecure = Insecure::default();
    let mut dir = None;
    let mut ready_fd = None;
    let mut parent_pid = None;
    let mut app = None;
    let mut force = false;
    let mut mutable = false;
    let mut manifest = None;
    let mut out = None;
    let mut rest = Vec::new();

    if matches!(sub.as_str(), "-h" | "--help" | "help") {
        return Ok(Command::Help);
    }
    if matches!(sub.as_str(), "--version" | "version") {
        return Ok(Command::Version);
    }
    if !matches!(
        sub.as_str(),
        "init"
            | "enter"
            | "stop"
            | "gc"
            | "netns"
            | "idmap-probe"
            | "export"
            | "app-add"
            | "app-start"
            | "app-stop"
            | "app-rm"
    ) {
        bail!("unknown subcommand {sub:?}\n{USAGE}");
    }
    while let Some(arg) = args.items.next() {
        if arg == "--" {
            rest.extend(args.items.by_ref());
            break;
        }
        if !arg.starts_with("--") {
            if sub == "enter" {
                rest.push(arg);
                rest.extend(args.items.by_ref());
                break;
            }
            if sub == "netns" {
                rest.push(arg);
                continue;
            }
            bail!("unexpected argument {arg:?}\n{USAGE}");
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let allowed = match sub.as_str() {
            "init" => &[
                "--pod-dir",
                "--tree-store",
                "--hostname",
                "--net",
                "--dns",
                "--dns-server",
                "--dns-search",
                "--dns-opt",
                "--dns-domain",
                "--hosts",
                "--hosts-entry",
                "--stop-grace",
                "--debug",
                "--ready-fd",
                "--parent-pid",
                "--interactive",
                "--private-users",
                "--disable-capabilities-restriction",
                "--disable-paths",
                "--disable-seccomp",
                "--mutable",
            ][..],
            "enter" => &[
                "--pod-dir",
                "--app",
                "--disable-capabilities-restriction",
                "--disable-seccomp",
            ][..],
            "stop" => &["--pod-dir", "--force"][..],
            "idmap-probe" => &["--dir"][..],
            "export" => &["--pod-dir", "--tree-store", "--app", "--manifest", "--out"][..],
            "app-add" => &["--pod-dir", "--tree-store", "--app"][..],
            "app-start" | "app-rm" => &["--pod-dir", "--app"][..],
            "app-stop" => &["--pod-dir", "--app", "--force"][..],
            _ => &["--pod-dir"][..],
        };
        if !allowed.contains(&name.as_str()) {
            bail!("{sub}: unknown flag {name}\n{USAGE}");
        }
        match name.as_str() {
            "--pod-dir" => pod_dir = Some(PathBuf::from(args.value(&name, inline)?)),
            "--dir" => dir = Some(PathBuf::from(args.value(&name, inline)?)),
            "--private-users" => private_users = Some(IdRange::parse(&args.value(&name, inline)?)?),
            "--tree-store" => tree_store = Some(PathBuf::from(args.value(&name, inline)?)),
            "--hostname" => hostname = Some(args.value(&name, inline)?),
            "--app" => app = Some(args.value(&name, inline)?),
            "--manifest" => manifest = Some(PathBuf::from(args.value(&name, inline)?)),
            "--out" => out = Some(PathBuf::from(args.value(&name, inline)?)),
            "--net" => {
                net = match args.value(&name, inline)?.as_str() {
                    "none" | "default" => NetMode::None,
                    "host" => NetMode::Host,
                    "netns" => NetMode::Netns,
                    other => bail!("--net: expected none, host or netns, got {other:?}"),
                }
            }
            "--dns" => {
                dns = match args.value(&name, inline)?.as_str() {
                    "default" => Resolv::Default,
                    "host" => Resolv::Host,
                    "none" => Resolv::None,
                    other => bail!("--dns: expected default, host or none, got {other:?}"),
                }
            }
            "--dns-server" => resolv_conf
                .servers
                .push(ip(&name, &args.value(&name, inline)?)?),
            "--dns-search" => resolv_conf
                .search
                .push(dns_name(&name, args.value(&name, inline)?)?),
            "--dns-domain" => {
                resolv_conf.domain = Some(dns_name(&name, args.value(&name, inline)?)?)
            }
            "--dns-opt" => {
                let opt = args.value(&name, inline)?;
                if !etc::is_resolv_option(&opt) {
                    bail!("--dns-opt: {opt:?} is not a resolv.conf option (ndots:2, rotate, ...)");
                }
                resolv_conf.options.push(opt);
            }
            "--hosts" => {
                hosts = match args.value(&name, inline)?.as_str() {
                    "default" => Hosts::Default,
                    "host" => Hosts::Host,
                    other => bail!("--hosts: expected default or host, got {other:?}"),
                }
            }
            "--hosts-entry" => hosts_entries.push(hosts_entry(&args.value(&name, inline)?)?),
            "--stop-grace" => stop_grace = parse_seconds(&args.value(&name, inline)?)?,
            "--ready-fd" => ready_fd = Some(parse_positive(&name, &args.value(&name, inline)?)?),
            "--parent-pid" => {
                parent_pid = Some(parse_positive(&name, &args.value(&name, inline)?)?)
            }
            "--debug"
            | "--force"
            | "--interactive"
            | "--disable-capabilities-restriction"
            | "--disable-paths"
            | "--disable-seccomp"
            | "--mutable" => {
                if inline.is_some() {
                    bail!("{name} takes no value");
                }
                match name.as_str() {
                    "--debug" => debug = true,
                    "--force" => force = true,
                    "--disable-capabilities-restriction" => insecure.capabilities = true,
                    "--disable-paths" => insecure.paths = true,
                    "--disable-seccomp" => insecure.seccomp = true,
                    "--mutable" => mutable = true,
                    _ => interactive = true,
                }
            }
            _ => unreachable!("flag list and match arms agree"),
        }
    }
    if sub == "idmap-probe" {
        let Some(dir) = dir else {
            bail!("idmap-probe: --dir is required\n{USAGE}");
        };
        return Ok(Command::IdmapProbe(dir));
    }
    let Some(pod_dir) = pod_dir else {
        bail!("{sub}: --pod-dir is required\n{USAGE}");
    };
    if !rest.is_empty() && !matches!(sub.as_str(), "enter" | "netns") {
        bail!("{sub}: unexpected arguments {rest:?}");
    }
    Ok(match sub.as_str() {
        "init" => {
            let Some(tree_store) = tree_store else {
                bail!("init: --tree-store is required\n{USAGE}");
            };
            Command::Init(InitOpts {
                pod_dir,
                tree_store,
                hostname,
                net,
                resolv: resolv_of(dns, resolv_conf)?,
                hosts: hosts_of(hosts, hosts_entries)?,
                stop_grace,
                debug,
                ready_fd,
                parent_pid,
                interactive,
                private_users,
                insecure,
                mutable,
            })
        }
        "enter" => {
            let Some(app) = app else {
                bail!("enter: --app is required\n{USAGE}");
            };
            Command::Enter(EnterOpts {
                pod_dir,
                app,
                cmd: rest,
                insecure,
            })
        }
        "stop" => Command::Stop(StopOpts { pod_dir, force }),
        "export" => {
            let (Some(tree_store), Some(app), Some(manifest), Some(out)) =
                (tree_store, app, manifest, out)
            else {
                bail!("export: --tree-store, --app, --manifest and --out are required\n{USAGE}");
            };
            Command::Export(ExportOpts {
                pod_dir,
                tree_store,
                app,
                manifest,
                out,
            })
        }
        "app-add" | "app-start" | "app-stop" | "app-rm" => {
            let Some(app) = app else {
                bail!("{sub}: --app is required\n{USAGE}");
            };
            let verb = match sub.as_str() {
                "app-add" => match tree_store {
                    Some(tree_store) => AppVerb::Add { tree_store },
                    None => bail!("app-add: --tree-store is required\n{USAGE}"),
                },
                "app-start" => AppVerb::Start,
                "app-stop" => AppVerb::Stop { force },
                _ => AppVerb::Rm,
            };
            Command::App(AppCommand { pod_dir, app, verb })
        }
        "netns" => Command::Netns(NetnsOpts {
            pod_dir,
            action: match rest.as_slice() {
                [a] if a == "create" => NetnsAction::Create,
                [a] if a == "remove" => NetnsAction::Remove,
                _ => bail!("netns: expected one action, create or remove, got {rest:?}\n{USAGE}"),
            },
        }),
        _ => Command::Gc(GcOpts { pod_dir }),
    })
}

/// rkt's rule: name servers, searches, options or a domain are written into the file, which
/// neither `host` (the host's file) nor `none` (the image's) can be combined with.
fn resolv_of(mode: Resolv, conf: ResolvConf) -> Result<Resolv> {
    match mode {
        _ if conf == ResolvConf::default() => Ok(mode),
        Resolv::Default => Ok(Resolv::Written(conf)),
        _ => bail!(
            "--dns {}: cannot be combined with --dns-server, --dns-search, --dns-opt or --dns-domain",
            if mode == Resolv::Host { "host" } else { "none" }
        ),
    }
}

fn hosts_of(mode: Hosts, entries: Vec<(IpAddr, Vec<String>)>) -> Result<Hosts> {
    match mode {
        _ if entries.is_empty() => Ok(mode),
        Hosts::Default => Ok(Hosts::Entries(entries)),
        _ => bail!("--hosts host: cannot be combined with --hosts-entry"),
    }
}

fn ip(flag: &str, s: &str) -> Result<IpAddr> {
    match s.parse() {
        Ok(ip) => Ok(ip),
        Err(_) => bail!("{flag}: {s:?} is not an IP address"),
    }
}

fn dns_name(flag: &str, s: String) -> Result<String> {
    if !etc::is_dns_name(&s) {
        bail!("{flag}: {s:?} is not a DNS name (labels of letters, digits and inner dashes, joined by dots)");
    }
    Ok(s)
}

/// `IP=NAME[,NAME...]`.
fn hosts_entry(s: &str) -> Result<(IpAddr, Vec<String>)> {
    let Some((addr, names)) = s.split_once('=') else {
        bail!("--hosts-entry: {s:?} is not IP=NAME[,NAME...]");
    };
    let names = names
        .split(',')
        .map(|n| dns_name("--hosts-entry", n.to_string()))
        .collect::<Result<Vec<_>>>()?;
    Ok((ip("--hosts-entry", addr)?, names))
}

/// Seconds as a decimal ("10", "0.5"): tests need sub-second grace periods.
fn parse_seconds(s: &str) -> Result<Duration> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(Duration::from_secs_f64(v)),
        _ => bail!("--stop-grace: expected seconds between 0 and 86400, got {s:?}"),
    }
}

/// A descriptor number or a pid: a decimal integer above 0.
fn parse_positive(flag: &str, s: &str) -> Result<i32> {
    match s.parse::<i32>() {
        Ok(v) if v > 0 => Ok(v),
        _ => bail!("{flag}: expected a positive decimal number, got {s:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn init_defaults() {
        let c = parse(argv("init --pod-dir /p --tree-store=/t")).unwrap();
        assert_eq!(
            c,
            Command::Init(InitOpts {
                pod_dir: "/p".into(),
                tree_store: "/t".into(),
                hostname: None,
                net: NetMode::None,
                resolv: Resolv::Default,
                hosts: Hosts::Default,
                stop_grace: DEFAULT_STOP_GRACE,
                debug: false,
                ready_fd: None,
                parent_pid: None,
                interactive: false,
                private_users: None,
                insecure: Insecure::default(),
                mutable: false,
            })
        );
    }

    #[test]
    fn init_all_flags() {
        let c = parse(argv(
            "init --pod-dir /p --tree-store /t --hostname h --net=host --dns host --stop-grace 0.5 --debug --ready-fd 4 --parent-pid=77 --interactive --private-users 524288:65536:chown --disable-paths --disable-seccomp --mutable",
        ))
        .unwrap();
        let Command::Init(o) = c else { panic!() };
        assert_eq!(o.hostname.as_deref(), Some("h"));
        assert_eq!(o.net, NetMode::Host);
        assert_eq!(o.resolv, Resolv::Host);
        assert_eq!(o.stop_grace, Duration::from_millis(500));
        assert!(o.debug);
        assert_eq!(o.ready_fd, Some(4));
        assert_eq!(o.parent_pid, Some(77));
        assert!(o.interactive);
        assert!(o.mutable);
        assert_eq!(
            o.private_users.map(|r| (r.shift, r.count)),
            Some((524288, 65536))
        );
        assert_eq!(
            o.insecure,
            Insecure {
                capabilities: false,
                paths: true,
                seccomp: true
            }
        );
        assert_eq!(
            parse(argv("idmap-probe --dir /d")).unwrap(),
            Command::IdmapProbe("/d".into())
        );
        let Command::Init(o) =
            parse(argv("init --pod-dir /p --tree-store /t --net netns")).unwrap()
        else {
            panic!()
        };
        assert_eq!(o.net, NetMode::Netns);
    }

    #[test]
    fn enter_takes_the_rest_as_command() {
        let c = parse(argv("enter --pod-dir /p --app a -- sh -c --app")).unwrap();
        assert_eq!(
            c,
            Command::Enter(EnterOpts {
                pod_dir: "/p".into(),
                app: "a".into(),
                cmd: argv("sh -c --app"),
                insecure: Insecure::default(),
            })
        );
        let c = parse(argv("enter --pod-dir /p --app a id -u")).unwrap();
        let Command::Enter(o) = c else { panic!() };
        assert_eq!(o.cmd, argv("id -u"));
        let c = parse(argv("enter --pod-dir /p --app a --disable-seccomp id")).unwrap();
        let Command::Enter(o) = c else { panic!() };
        assert_eq!(
            (o.insecure, o.cmd),
            (
                Insecure {
                    seccomp: true,
                    ..Insecure::default()
                },
                argv("id")
            )
        );
        assert!(parse(argv("enter --pod-dir /p --app a --disable-paths")).is_err());
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "run --pod-dir /p",
            "init --tree-store /t",
            "init --pod-dir /p",
            "init --pod-dir /p --tree-store /t --net bridge",
            "init --pod-dir /p --tree-store /t --stop-grace -1",
            "init --pod-dir /p --tree-store /t --force",
            "init --pod-dir /p --tree-store /t --ready-fd",
            "init --pod-dir /p --tree-store /t --ready-fd -1",
            "init --pod-dir /p --tree-store /t --ready-fd four",
            "init --pod-dir /p --tree-store /t --parent-pid 0",
            "init --pod-dir /p --tree-store /t --parent-pid=",
            "stop --pod-dir /p --parent-pid 1",
            "stop --pod-dir /p extra",
            "stop --pod-dir",
            "gc --pod-dir /p --debug=1",
            "enter --pod-dir /p",
            "init --pod-dir /p --tree-store /t --private-users 0:65536:idmap",
            "idmap-probe",
            "idmap-probe --pod-dir /p",
            "netns --pod-dir /p",
            "netns create",
            "netns --pod-dir /p make",
            "netns --pod-dir /p create remove",
            "netns --pod-dir /p create --force",
            "gc --pod-dir /p create",
        ] {
            assert!(parse(argv(bad)).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn dns_and_hosts() {
        let init = |flags: &str| parse(argv(&format!("init --pod-dir /p --tree-store /t {flags}")));
        let Command::Init(o) = init(
            "--dns-server 192.0.2.1 --dns-server=2001:db8::1 --dns-search a.example --dns-search b \
             --dns-opt ndots:2 --dns-opt rotate --dns-domain example.org --hosts-entry 192.0.2.9=db,db.local \
             --hosts-entry ::1=six",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            o.resolv,
            Resolv::Written(ResolvConf {
                servers: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
                search: vec!["a.example".into(), "b".into()],
                options: vec!["ndots:2".into(), "rotate".into()],
                domain: Some("example.org".into()),
            })
        );
        assert_eq!(
            o.hosts,
            Hosts::Entries(vec![
                (
                    "192.0.2.9".parse().unwrap(),
                    vec!["db".into(), "db.local".into()]
                ),
                ("::1".parse().unwrap(), vec!["six".into()]),
            ])
        );
        let Command::Init(o) = init("--dns none --hosts host").unwrap() else {
            panic!()
        };
        assert_eq!((o.resolv, o.hosts), (Resolv::None, Hosts::Host));
        for bad in [
            "--dns host --dns-server 192.0.2.1",
            "--dns none --dns-search example.org",
            "--dns-server 300.1.1.1",
            "--dns-server example.org",
            "--dns-search a..b",
            "--dns-search -a",
            "--dns-opt =",
            "--dns-opt Rotate",
            "--hosts host --hosts-entry 192.0.2.1=a",
            "--hosts-entry 192.0.2.1",
            "--hosts-entry 192.0.2.1=",
            "--hosts-entry 192.0.2.1=a,,b",
            "--hosts-entry db=192.0.2.1",
            "--hosts stage0",
        ] {
            assert!(init(bad).is_err(), "{bad:?} should fail");
        }
        // A value with a newline (argv can carry one) would add a line to the file.
        let mut nl = argv("init --pod-dir /p --tree-store /t --dns-search");
        nl.push("a\nnameserver 6.6.6.6".into());
        assert!(parse(nl).is_err());
    }

    #[test]
    fn stop_and_gc() {
        assert_eq!(
            parse(argv("stop --pod-dir /p --force")).unwrap(),
            Command::Stop(StopOpts {
                pod_dir: "/p".into(),
                force: true
            })
        );
        assert_eq!(
            parse(argv("gc --pod-dir=/p")).unwrap(),
            Command::Gc(GcOpts {
                pod_dir: "/p".into()
            })
        );
    }

    #[test]
    fn export_needs_every_flag() {
        assert_eq!(
            parse(argv(
                "export --pod-dir /p --tree-store=/t --app web --manifest /m --out /o.aci"
            ))
            .unwrap(),
            Command::Export(ExportOpts {
                pod_dir: "/p".into(),
                tree_store: "/t".into(),
                app: "web".into(),
                manifest: "/m".into(),
                out: "/o.aci".into(),
            })
        );
        for bad in [
            "export --pod-dir /p --tree-store /t --app web --manifest /m",
            "export --pod-dir /p --tree-store /t --manifest /m --out /o",
            "export --tree-store /t --app web --manifest /m --out /o",
            "export --pod-dir /p --tree-store /t --app web --manifest /m --out /o --force",
            "export --pod-dir /p --tree-store /t --app web --manifest /m --out /o extra",
            "init --pod-dir /p --tree-store /t --out /o",
        ] {
            assert!(parse(argv(bad)).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn app_verbs() {
        let app = |verb| {
            Command::App(AppCommand {
                pod_dir: "/p".into(),
                app: "web".into(),
                verb,
            })
        };
        assert_eq!(
            parse(argv("app-add --pod-dir /p --tree-store=/t --app web")).unwrap(),
            app(AppVerb::Add {
                tree_store: "/t".into()
            })
        );
        assert_eq!(
            parse(argv("app-start --app=web --pod-dir /p")).unwrap(),
            app(AppVerb::Start)
        );
        assert_eq!(
            parse(argv("app-stop --pod-dir /p --app web")).unwrap(),
            app(AppVerb::Stop { force: false })
        );
        assert_eq!(
            parse(argv("app-stop --pod-dir /p --app web --force")).unwrap(),
            app(AppVerb::Stop { force: true })
        );
        assert_eq!(
            parse(argv("app-rm --pod-dir /p --app web")).unwrap(),
            app(AppVerb::Rm)
        );
        for bad in [
            "app-add --pod-dir /p --app web",
            "app-add --pod-dir /p --tree-store /t",
            "app-add --tree-store /t --app web",
            "app-start --pod-dir /p",
            "app-start --pod-dir /p --app web --force",
            "app-start --pod-dir /p --app web --tree-store /t",
            "app-rm --pod-dir /p --app web extra",
            "app-stop --pod-dir /p --app web --force=1",
            "app-stop --pod-dir /p --app",
            "stop --pod-dir /p --mutable",
        ] {
            assert!(parse(argv(bad)).is_err(), "{bad:?} should fail");
        }
        for verb in ["app-add", "app-start", "app-stop", "app-rm"] {
            assert!(USAGE.contains(&format!("podlog-stage1 {verb} ")), "{verb}");
        }
    }

    #[test]
    fn netns_takes_its_action_before_or_after_the_flags() {
        assert_eq!(
            parse(argv("netns --pod-dir /p create")).unwrap(),
            Command::Netns(NetnsOpts {
                pod_dir: "/p".into(),
                action: NetnsAction::Create
            })
        );
        assert_eq!(
            parse(argv("netns remove --pod-dir=/p")).unwrap(),
            Command::Netns(NetnsOpts {
                pod_dir: "/p".into(),
                action: NetnsAction::Remove
            })
        );
        assert!(USAGE.contains("podlog-stage1 netns --pod-dir DIR create|remove"));
    }
}
