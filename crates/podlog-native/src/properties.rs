//! Property tests of archive reading and extraction, run as root like podlog itself. Archives are
//! generated entry by entry (names with `..`, absolute paths, long names, links pointing anywhere,
//! devices, whiteouts, duplicates, odd entry types and owners), and honest ones are cut, corrupted
//! and compressed. Each is extracted into `<tmp>/x/root` beside `<tmp>/outside`, and afterwards:
//! nothing panicked, nothing outside the root was created or changed (the outside directory, the
//! destination's parent, the host's own directories, and no file inside has a link outside), and a
//! refusal carries a code that names what is wrong with the archive. Honest archives come out exactly
//! as written, in every compression.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRunner};

use crate::aci::{read_image, render};
use crate::compression::{compress, Compression};
use crate::errors::{Code, Error};
use crate::extract::{Limits, Options, Stats};
use crate::whiteout::render_layers;

const MANIFEST: &[u8] =
    br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/generated"}"#;

/// Stands for the outside directory's absolute path in generated names and link targets.
const OUT: &str = "@OUT";

/// Names the generated entries use, so that an escape to the host would be found by name.
const NAMES: [&str; 4] = ["pp-a", "pp-b", "pp-c", "pp-d"];

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(Config {
        cases,
        // A failure found here becomes a named unit test in tests.rs, not a file beside the source.
        failure_persistence: None,
        // ChaCha, the default, costs more than a small case in a debug build.
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

// ---- Generated archives ----

#[derive(Debug, Clone)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
    /// Any other type byte, with any data: pax and GNU extension headers, sparse files, volumes...
    Raw(u8, Vec<u8>),
}

/// How a name too long for the header's 100 bytes is written.
#[derive(Debug, Clone, Copy)]
enum Long {
    Gnu,
    Pax,
    /// Cut to 100 bytes, as a careless writer would.
    Cut,
}

#[derive(Debug, Clone)]
struct Gen {
    name: Vec<u8>,
    kind: Kind,
    mode: u32,
    owner: (u64, u64),
    mtime: u64,
    xattrs: Vec<(&'static str, &'static [u8])>,
    ustar: bool,
    long: Long,
}

impl Gen {
    /// An entry as any tool writes it: the ACI skeleton's manifest and rootfs/.
    fn plain(name: &str, kind: Kind) -> Gen {
        Gen {
            name: bytes(name),
            kind,
            mode: 0o755,
            owner: (0, 0),
            mtime: 0,
            xattrs: vec![],
            ustar: false,
            long: Long::Gnu,
        }
    }
}

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// Name components: mostly plain names (whose collisions make duplicates, and links through each
/// other), some harmless spellings, and now and then one that no extractor may follow.
fn component() -> impl Strategy<Value = Vec<u8>> {
    let harmless = vec![
        ".",
        "",
        "\u{e9}t\u{e9}",
        ".wh.pp-a",
        ".wh.pp-b",
        ".wh..wh..opq",
        ".wh..wh.plnk",
        "rootfs",
        "manifest",
    ];
    let hostile = vec!["..", ".wh.", ".wh..", OUT];
    prop_oneof![
        24 => select(NAMES.to_vec()).prop_map(bytes),
        2 => select(harmless).prop_map(bytes),
        1 => select(hostile).prop_map(bytes),
        1 => Just(vec![0xff, b'x']),
        1 => (90usize..300).prop_map(|n| vec![b'l'; n]),
    ]
}

/// An entry name: components under one of the ways archives start their names (`rootfs/` mostly,
/// for an ACI).
fn name(aci: bool) -> impl Strategy<Value = Vec<u8>> {
    let (usual, odd) = if aci {
        ("rootfs/", vec!["./rootfs/", "/rootfs/", "", "rootfs/../"])
    } else {
        ("", vec!["./", "/", "../"])
    };
    let prefix = prop_oneof![12 => Just(usual), 1 => select(odd)];
    let comps = prop_oneof![12 => vec(component(), 1..4), 1 => Just(vec![])];
    (prefix, comps, any::<bool>()).prop_map(|(prefix, comps, slash)| {
        let mut name = bytes(prefix);
        name.extend(comps.join(&b'/'));
        if slash {
            name.push(b'/');
        }
        name
    })
}

fn target(aci: bool) -> impl Strategy<Value = Vec<u8>> {
    let fixed = vec![
        "pp-a",
        "pp-a/pp-b",
        ".",
        "",
        "..",
        "../..",
        "../../../..",
        "/",
        "/etc",
        "/pp-a",
        "/proc/self/root",
        OUT,
        "@OUT/file",
        "rootfs/pp-a",
        "rootfs/pp-a/pp-b",
        "rootfs/..",
        "rootfs/../..",
    ];
    prop_oneof![select(fixed).prop_map(bytes), name(aci)]
}

fn kind(aci: bool) -> impl Strategy<Value = Kind> {
    let raw_types = vec![
        b'g', b'x', b'L', b'K', b'S', b'V', b'M', b'N', b'7', b'D', b'I', b'Z',
    ];
    let raw_data = prop_oneof![
        vec(any::<u8>(), 0..64),
        select(vec![
            "20 path=../../pp-a\n",
            "17 linkpath=/etc\n",
            "13 path=/pp-a\n",
            "9 size=9\n",
            "../../pp-a\0",
        ])
        .prop_map(bytes),
    ];
    prop_oneof![
        6 => vec(any::<u8>(), 0..64).prop_map(Kind::File),
        4 => Just(Kind::Dir),
        3 => target(aci).prop_map(Kind::Symlink),
        3 => target(aci).prop_map(Kind::Hardlink),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Kind::Char(a, b)),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Kind::Block(a, b)),
        1 => Just(Kind::Fifo),
        1 => (select(raw_types), raw_data).prop_map(|(t, d)| Kind::Raw(t, d)),
    ]
}

fn entry(aci: bool) -> impl Strategy<Value = Gen> {
    let modes = prop_oneof![
        select(vec![0o644, 0o755, 0o4755, 0o2755, 0o1777, 0, 0o7777]),
        0u32..0o10000,
        Just(0o177777),
    ];
    let ids = prop_oneof![
        20 => select(vec![0u64, 1, 1000, 65534]),
        1 => select(vec![u64::from(u32::MAX) - 1, u64::from(u32::MAX), 1 << 32]),
    ];
    let xattrs = vec(
        select(vec![
            ("user.pp", &b"v"[..]),
            ("trusted.overlay.opaque", b"y"),
            ("trusted.overlay.redirect", b"/etc"),
        ]),
        0..2,
    );
    let long = select(vec![Long::Gnu, Long::Pax, Long::Cut]);
    (
        name(aci),
        kind(aci),
        modes,
        (ids.clone(), ids),
        prop_oneof![
            Just(0u64),
            any::<u32>().prop_map(u64::from),
            Just(u64::MAX >> 1)
        ],
        xattrs,
        (any::<bool>(), long),
    )
        .prop_map(
            |(name, kind, mode, owner, mtime, xattrs, (ustar, long))| Gen {
                name,
                kind,
                mode,
                owner,
                mtime,
                xattrs,
                ustar,
                long,
            },
        )
}

/// `@OUT` in generated bytes becomes the outside directory's path.
fn expand(b: &[u8], outside: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut rest = b;
    while let Some(at) = rest.windows(OUT.len()).position(|w| w == OUT.as_bytes()) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(outside.as_bytes());
        rest = &rest[at + OUT.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = [format!(" {key}=").as_bytes(), value, b"\n"].concat();
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len = len.to_string().len() + body.len();
    }
    [len.to_string().as_bytes(), &body].concat()
}

/// A tar stream written block by block, so that any name, link and type goes in as generated.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn block(&mut self, header: &mut tar::Header, data: &[u8]) {
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.0.extend_from_slice(header.as_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(512), 0);
    }

    fn extension(&mut self, kind: u8, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(tar::EntryType::new(kind));
        self.block(&mut h, data);
    }

    fn add(&mut self, e: &Gen, outside: &str) {
        let name = expand(&e.name, outside);
        let link = match &e.kind {
            Kind::Symlink(t) | Kind::Hardlink(t) => Some(expand(t, outside)),
            _ => None,
        };
        let mut pax = Vec::new();
        for (key, value) in &e.xattrs {
            pax.extend(pax_record(&format!("SCHILY.xattr.{key}"), value));
        }
        for (field, value, gnu) in [
            ("path", Some(&name), b'L'),
            ("linkpath", link.as_ref(), b'K'),
        ] {
            match value {
                Some(v) if v.len() > 100 => match e.long {
                    Long::Gnu => self.extension(gnu, &[v.as_slice(), b"\0"].concat()),
                    Long::Pax => pax.extend(pax_record(field, v)),
                    Long::Cut => {}
                },
                _ => {}
            }
        }
        if !pax.is_empty() {
            let mut h = tar::Header::new_ustar();
            h.as_old_mut().name[..9].copy_from_slice(b"PaxHeader");
            h.set_entry_type(tar::EntryType::XHeader);
            self.block(&mut h, &pax);
        }
        let mut h = if e.ustar {
            tar::Header::new_ustar()
        } else {
            tar::Header::new_gnu()
        };
        let old = h.as_old_mut();
        let n = name.len().min(100);
        old.name[..n].copy_from_slice(&name[..n]);
        if let Some(link) = &link {
            let n = link.len().min(100);
            old.linkname[..n].copy_from_slice(&link[..n]);
        }
        h.set_mode(e.mode);
        h.set_uid(e.owner.0);
        h.set_gid(e.owner.1);
        h.set_mtime(e.mtime);
        let (kind, data): (u8, &[u8]) = match &e.kind {
            Kind::File(d) => (b'0', d),
            Kind::Dir => (b'5', b""),
            Kind::Symlink(_) => (b'2', b""),
            Kind::Hardlink(_) => (b'1', b""),
            Kind::Char(..) => (b'3', b""),
            Kind::Block(..) => (b'4', b""),
            Kind::Fifo => (b'6', b""),
            Kind::Raw(t, d) => (*t, d),
        };
        h.set_entry_type(tar::EntryType::new(kind));
        if let Kind::Char(major, minor) | Kind::Block(major, minor) = e.kind {
            // Large numbers do not fit the octal fields: the header then carries none.
            let _ = h.set_device_major(major);
            let _ = h.set_device_minor(minor);
        }
        self.block(&mut h, data);
    }

    fn finish(mut self, end_block: bool) -> Vec<u8> {
        if end_block {
            self.0.extend([0; 1024]);
        }
        self.0
    }
}

#[derive(Debug, Clone)]
struct GenAci {
    /// The manifest entry first (a valid one, or other bytes), or none.
    manifest: Option<Vec<u8>>,
    rootfs_dir: bool,
    entries: Vec<Gen>,
    end_block: bool,
    allow_devices: bool,
}

fn aci() -> impl Strategy<Value = GenAci> {
    let manifest = prop_oneof![
        8 => Just(Some(MANIFEST.to_vec())),
        1 => Just(None),
        1 => select(vec![&b"{}"[..], b"not json", b"\xff\xfe", br#"{"acKind":"PodManifest"}"#])
            .prop_map(|m| Some(m.to_vec())),
    ];
    (
        manifest,
        prop::bool::weighted(0.9),
        vec(entry(true), 0..10),
        prop::bool::weighted(0.95),
        any::<bool>(),
    )
        .prop_map(
            |(manifest, rootfs_dir, entries, end_block, allow_devices)| GenAci {
                manifest,
                rootfs_dir,
                entries,
                end_block,
                allow_devices,
            },
        )
}

impl GenAci {
    fn bytes(&self, outside: &str) -> Vec<u8> {
        let mut w = Writer::default();
        if let Some(m) = &self.manifest {
            w.add(&Gen::plain("manifest", Kind::File(m.clone())), outside);
        }
        if self.rootfs_dir {
            w.add(&Gen::plain("rootfs", Kind::Dir), outside);
        }
        for e in &self.entries {
            w.add(e, outside);
        }
        w.finish(self.end_block)
    }
}

// ---- The sandbox and what must hold after every extraction ----

/// `<tmp>/outside` (a file and a directory that nothing may touch), `<tmp>/in` (the archives) and
/// `<tmp>/x`, the destination's parent: after an extraction it holds `root` or nothing.
struct Sandbox {
    dir: tempfile::TempDir,
    outside_before: Vec<(PathBuf, Snapshot)>,
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    mode: u32,
    owner: (u32, u32),
    nlink: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn snapshot(path: &Path) -> Snapshot {
    let m = fs::symlink_metadata(path).unwrap();
    Snapshot {
        mode: m.mode(),
        owner: (m.uid(), m.gid()),
        nlink: m.nlink(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    }
}

/// Every path below `root` (not following symlinks), with its metadata, root first.
fn walk(root: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let mut out = vec![(root.to_path_buf(), fs::symlink_metadata(root).unwrap())];
    let mut i = 0;
    while i < out.len() {
        if out[i].1.is_dir() {
            let mut children: Vec<_> = fs::read_dir(&out[i].0)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            children.sort();
            for c in children {
                let m = fs::symlink_metadata(&c).unwrap();
                out.push((c, m));
            }
        }
        i += 1;
    }
    out
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in ["outside", "outside/dir", "in", "x"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        fs::write(dir.path().join("outside/file"), "untouched").unwrap();
        let mut sandbox = Sandbox {
            dir,
            outside_before: vec![],
        };
        sandbox.outside_before = sandbox.outside_now();
        sandbox
    }

    fn outside(&self) -> String {
        self.dir.path().join("outside").display().to_string()
    }

    fn dest(&self) -> PathBuf {
        self.dir.path().join("x/root")
    }

    fn outside_now(&self) -> Vec<(PathBuf, Snapshot)> {
        walk(&self.dir.path().join("outside"))
            .into_iter()
            .map(|(p, _)| {
                let s = snapshot(&p);
                (p, s)
            })
            .collect()
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.dir.path().join("in").join(name);
        fs::write(&p, data).unwrap();
        p
    }

    /// Checks what must hold after any extraction, and removes the tree for the next case.
    fn check<T>(&self, result: &Result<T, Error>) -> Result<(), TestCaseError> {
        prop_assert_eq!(names_in(self.dir.path()), ["in", "outside", "x"]);
        prop_assert_eq!(&self.outside_now(), &self.outside_before);
        for dir in ["/", "/etc", "/tmp", "/root"] {
            for name in NAMES {
                let p = Path::new(dir).join(name);
                prop_assert!(
                    fs::symlink_metadata(&p).is_err(),
                    "{} was created on the host",
                    p.display()
                );
            }
        }
        let left = names_in(&self.dir.path().join("x"));
        match result {
            Err(_) => prop_assert!(left.is_empty(), "a refused archive left {left:?}"),
            Ok(_) => {
                prop_assert_eq!(left, ["root"]);
                let tree = walk(&self.dest());
                // A hard link is inside the root only if all the names of its inode are.
                let mut links: HashMap<(u64, u64), u64> = HashMap::new();
                for (_, m) in tree.iter().filter(|(_, m)| !m.is_dir()) {
                    *links.entry((m.dev(), m.ino())).or_default() += 1;
                }
                for (p, m) in tree.iter().filter(|(_, m)| !m.is_dir()) {
                    prop_assert_eq!(
                        m.nlink(),
                        links[&(m.dev(), m.ino())],
                        "{} has links outside the root",
                        p.display()
                    );
                }
                fs::remove_dir_all(self.dest()).unwrap();
            }
        }
        Ok(())
    }
}

/// The codes that say what is wrong with an archive (rather than with the machine).
const ARCHIVE_CODES: [Code; 6] = [
    Code::HostileArchive,
    Code::BadArchive,
    Code::BadLayout,
    Code::BadManifest,
    Code::Truncated,
    Code::Compression,
];

/// A refusal carries an archive's code: a cause in the archive is never reported as a system error.
fn assert_archive_refusal<T>(result: &Result<T, Error>) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(ARCHIVE_CODES.contains(&e.code), "refused with {e}");
    }
    Ok(())
}

#[test]
fn generated_images_stay_inside_their_root() {
    let sandbox = Sandbox::new();
    run(2_000, aci(), |gen| {
        let image = sandbox.write("image.aci", &gen.bytes(&sandbox.outside()));
        let options = Options {
            allow_devices: gen.allow_devices,
            sync: false,
        };
        let result = render(&image, &sandbox.dest(), options);
        sandbox.check(&result)?;
        assert_archive_refusal(&result)
    });
}

#[test]
fn generated_layers_stay_inside_their_root() {
    let sandbox = Sandbox::new();
    let layers = vec((vec(entry(false), 0..8), prop::bool::weighted(0.95)), 1..4);
    run(2_000, (layers, any::<bool>()), |(layers, allow_devices)| {
        let paths: Vec<PathBuf> = layers
            .iter()
            .enumerate()
            .map(|(i, (entries, end_block))| {
                let mut w = Writer::default();
                for e in entries {
                    w.add(e, &sandbox.outside());
                }
                sandbox.write(&format!("layer{i}"), &w.finish(*end_block))
            })
            .collect();
        let options = Options {
            allow_devices,
            sync: false,
        };
        let result = render_layers(&paths, &sandbox.dest(), options);
        sandbox.check(&result)?;
        assert_archive_refusal(&result)
    });
}

// ---- Honest archives ----

/// A tree as an honest tool writes it: no duplicates, nothing below a non-directory, hard links
/// to files already written, parents implied or listed before or after their children.
#[derive(Debug, Clone)]
struct HonestTree {
    /// Files, directories, symlinks and hard links, named by their path in the tree.
    entries: Vec<Gen>,
    /// Directories no entry lists: the extractor creates them, 0755 and owned by root.
    implied: Vec<Vec<u8>>,
}

fn honest_tree() -> impl Strategy<Value = HonestTree> {
    let comp = select(vec![
        bytes("pp-a"),
        bytes("pp-b"),
        bytes("pp-c"),
        bytes("\u{e9}"),
        vec![b'l'; 120],
        vec![b'm'; 250],
    ]);
    let targets = select(vec![
        bytes("pp-a"),
        bytes("../../etc/passwd"),
        bytes("/etc"),
        bytes("/"),
        vec![b't'; 150],
    ]);
    let raw = (
        vec(comp, 1..4),
        (0u8..4, vec(any::<u8>(), 0..100), targets, any::<Index>()),
        (
            0u32..0o10000,
            select(vec![0u64, 1, 1000, 65534]),
            select(vec![0u64, 100, 65534]),
        ),
        any::<u32>(),
        select(vec![Long::Gnu, Long::Pax]),
    );
    vec(raw, 0..16).prop_map(|raw| {
        let mut entries: Vec<Gen> = Vec::new();
        let mut implied: Vec<Vec<u8>> = Vec::new();
        for (comps, (kind, data, target, pick), (mode, uid, gid), mtime, long) in raw {
            let path = comps.join(&b'/');
            let listed = |p: &[u8]| entries.iter().find(|e| e.name == p);
            let parents: Vec<Vec<u8>> = (1..comps.len()).map(|n| comps[..n].join(&b'/')).collect();
            if parents
                .iter()
                .any(|p| listed(p).is_some_and(|e| !matches!(e.kind, Kind::Dir)))
            {
                continue;
            }
            let files: Vec<&Vec<u8>> = entries
                .iter()
                .filter(|e| matches!(e.kind, Kind::File(_)))
                .map(|e| &e.name)
                .collect();
            let kind = match kind {
                0 => Kind::File(data),
                1 => Kind::Dir,
                2 => Kind::Symlink(target),
                _ if files.is_empty() => continue,
                _ => Kind::Hardlink(pick.get(&files).to_vec()),
            };
            let was_implied = implied.contains(&path);
            if listed(&path).is_some() || (was_implied && !matches!(kind, Kind::Dir)) {
                continue;
            }
            implied.retain(|p| *p != path);
            for p in parents {
                if listed(&p).is_none() && !implied.contains(&p) {
                    implied.push(p);
                }
            }
            entries.push(Gen {
                name: path,
                kind,
                mode,
                owner: (uid, gid),
                mtime: u64::from(mtime),
                xattrs: vec![],
                ustar: false,
                long,
            });
        }
        HonestTree { entries, implied }
    })
}

impl HonestTree {
    /// The tar, its names under `prefix` (`rootfs/` in an ACI).
    fn tar(&self, prefix: &str, manifest: bool) -> Vec<u8> {
        let mut w = Writer::default();
        if manifest {
            w.add(&Gen::plain("manifest", Kind::File(MANIFEST.to_vec())), "");
            w.add(&Gen::plain("rootfs", Kind::Dir), "");
        }
        let under = |p: &[u8]| [prefix.as_bytes(), p].concat();
        for e in &self.entries {
            let kind = match &e.kind {
                Kind::Hardlink(t) => Kind::Hardlink(under(t)),
                other => other.clone(),
            };
            let name = under(&e.name);
            w.add(
                &Gen {
                    name,
                    kind,
                    ..e.clone()
                },
                "",
            );
        }
        w.finish(true)
    }

    /// The extracted tree is exactly the archive's: the same paths, types, contents, link targets,
    /// modes, owners and times, hard links sharing their file, and the counts to match.
    fn assert_extracted(&self, root: &Path, stats: &Stats) -> Result<(), TestCaseError> {
        let path = |p: &[u8]| root.join(std::str::from_utf8(p).unwrap());
        let mut want: HashSet<PathBuf> = self.entries.iter().map(|e| path(&e.name)).collect();
        want.extend(self.implied.iter().map(|p| path(p)));
        want.insert(root.to_path_buf());
        let found: HashSet<PathBuf> = walk(root).into_iter().map(|(p, _)| p).collect();
        prop_assert_eq!(&found, &want);
        for p in &self.implied {
            let m = fs::symlink_metadata(path(p)).unwrap();
            prop_assert!(m.is_dir());
            prop_assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o755, 0, 0));
        }
        for e in &self.entries {
            let p = path(&e.name);
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            match &e.kind {
                Kind::File(data) => {
                    prop_assert!(ft.is_file());
                    prop_assert_eq!(&fs::read(&p).unwrap(), data);
                }
                Kind::Dir => prop_assert!(ft.is_dir()),
                Kind::Symlink(t) => {
                    prop_assert!(ft.is_symlink());
                    let link = fs::read_link(&p).unwrap();
                    prop_assert_eq!(link.as_os_str().as_bytes(), &t[..]);
                }
                Kind::Hardlink(t) => {
                    let target = fs::symlink_metadata(path(t)).unwrap();
                    prop_assert_eq!((m.dev(), m.ino()), (target.dev(), target.ino()));
                    continue;
                }
                other => unreachable!("an honest tree holds no {other:?}"),
            }
            let owner = (u64::from(m.uid()), u64::from(m.gid()));
            prop_assert_eq!(owner, e.owner, "owner of {}", p.display());
            prop_assert_eq!(m.mtime() as u64, e.mtime, "mtime of {}", p.display());
            if !ft.is_symlink() {
                prop_assert_eq!(m.mode() & 0o7777, e.mode, "mode of {}", p.display());
            }
        }
        let count =
            |f: fn(&Kind) -> bool| self.entries.iter().filter(|e| f(&e.kind)).count() as u32;
        prop_assert_eq!(stats.files, count(|k| matches!(k, Kind::File(_))));
        prop_assert_eq!(stats.symlinks, count(|k| matches!(k, Kind::Symlink(_))));
        prop_assert_eq!(stats.hardlinks, count(|k| matches!(k, Kind::Hardlink(_))));
        let data: usize = self
            .entries
            .iter()
            .map(|e| match &e.kind {
                Kind::File(d) => d.len(),
                _ => 0,
            })
            .sum();
        prop_assert_eq!(stats.bytes, data as u64);
        Ok(())
    }
}

/// Mostly plain tars, so that many cases stay cheap; every compression now and then.
fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        8 => Just(Compression::None),
        1 => Just(Compression::Gzip),
        1 => Just(Compression::Bzip2),
        1 => Just(Compression::Xz),
        1 => Just(Compression::Zstd),
    ]
}

#[test]
fn honest_images_extract_as_written() {
    let sandbox = Sandbox::new();
    run(1_000, (honest_tree(), compression()), |(tree, c)| {
        let tar = tree.tar("rootfs/", true);
        let image = sandbox.write("image.aci", &compress(c, &tar));
        let info = read_image(&image, Limits::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(info.manifest.as_bytes(), MANIFEST);
        prop_assert_eq!(info.size, tar.len() as u64);
        prop_assert_eq!(info.compression, c);
        let result = render(&image, &sandbox.dest(), Options::default());
        let (manifest, stats) = result
            .as_ref()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(manifest.as_bytes(), MANIFEST);
        tree.assert_extracted(&sandbox.dest(), stats)?;
        sandbox.check(&result)
    });
}

#[test]
fn honest_layers_extract_as_written() {
    let sandbox = Sandbox::new();
    run(1_000, (honest_tree(), compression()), |(tree, c)| {
        let layer = sandbox.write("layer", &compress(c, &tree.tar("", false)));
        let result = render_layers(&[layer], &sandbox.dest(), Options::default());
        let stats = result
            .as_ref()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        tree.assert_extracted(&sandbox.dest(), stats)?;
        sandbox.check(&result)
    });
}

// ---- Honest archives, damaged ----

#[derive(Debug, Clone)]
enum Damage {
    Cut(Index),
    /// Bytes set to new values, in the tar or in its compressed form.
    Set(Vec<(Index, u8)>, bool),
    /// One 512-byte block of the tar copied over another: a repeated header, data where a header
    /// should be, or a header in the middle of a file.
    CopyBlock(Index, Index),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<Index>().prop_map(Damage::Cut),
        (vec((any::<Index>(), any::<u8>()), 1..8), any::<bool>())
            .prop_map(|(at, compressed)| Damage::Set(at, compressed)),
        (any::<Index>(), any::<Index>()).prop_map(|(from, to)| Damage::CopyBlock(from, to)),
    ]
}

fn damaged(tar: Vec<u8>, c: Compression, d: &Damage) -> Vec<u8> {
    let set = |mut data: Vec<u8>, at: &[(Index, u8)]| {
        for (i, b) in at {
            let i = i.index(data.len());
            data[i] = *b;
        }
        data
    };
    match d {
        Damage::Cut(at) => {
            let data = compress(c, &tar);
            let n = at.index(data.len());
            data[..n].to_vec()
        }
        Damage::Set(at, true) => set(compress(c, &tar), at),
        Damage::Set(at, false) => compress(c, &set(tar, at)),
        Damage::CopyBlock(from, to) => {
            let mut tar = tar;
            let blocks = tar.len() / 512;
            let (from, to) = (from.index(blocks) * 512, to.index(blocks) * 512);
            tar.copy_within(from..from + 512, to);
            compress(c, &tar)
        }
    }
}

#[test]
fn damaged_images_are_refused_or_stay_inside_their_root() {
    let sandbox = Sandbox::new();
    let strategy = (honest_tree(), compression(), damage());
    run(2_000, strategy, |(tree, c, d)| {
        let image = sandbox.write("image.aci", &damaged(tree.tar("rootfs/", true), c, &d));
        let result = render(&image, &sandbox.dest(), Options::default());
        sandbox.check(&result)?;
        assert_archive_refusal(&result)?;
        // Reading and extracting see the same stream: where extraction met a broken stream,
        // reading meets it too, and what both accept has the same manifest.
        let read = read_image(&image, Limits::default());
        assert_archive_refusal(&read)?;
        match (&result, &read) {
            (Err(e), read) if matches!(e.code, Code::Truncated | Code::Compression) => {
                prop_assert_eq!(read.as_ref().err().map(|e| e.code), Some(e.code), "{}", e);
            }
            (Ok((manifest, _)), Ok(info)) => prop_assert_eq!(manifest, &info.manifest),
            _ => {}
        }
        Ok(())
    });
}

#[test]
fn damaged_layers_are_refused_or_stay_inside_their_root() {
    let sandbox = Sandbox::new();
    let strategy = (honest_tree(), compression(), damage());
    run(1_500, strategy, |(tree, c, d)| {
        let layer = sandbox.write("layer", &damaged(tree.tar("", false), c, &d));
        let result = render_layers(&[layer], &sandbox.dest(), Options::default());
        sandbox.check(&result)?;
        assert_archive_refusal(&result)
    });
}

// ---- The checks themselves ----

/// Each check above fails when what it guards against happens.
#[test]
fn the_checks_see_every_way_out_of_the_root() {
    let refused: Result<(), Error> = Err(Error::new(Code::BadArchive, "refused"));
    type Escape = fn(&Sandbox);
    let escapes: [(&str, Escape); 4] = [
        ("a file next to the root", |s| {
            fs::write(s.dir.path().join("x/.root.podlog-tmp-1"), "").unwrap()
        }),
        ("a file in the outside directory", |s| {
            fs::write(s.dir.path().join("outside/dir/new"), "").unwrap()
        }),
        ("the outside file's mode", |s| {
            fs::set_permissions(
                s.dir.path().join("outside/file"),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap()
        }),
        ("a file next to the sandbox's directories", |s| {
            fs::write(s.dir.path().join("new"), "").unwrap()
        }),
    ];
    for (what, escape) in escapes {
        let sandbox = Sandbox::new();
        escape(&sandbox);
        assert!(sandbox.check(&refused).is_err(), "{what} went unseen");
    }
    // Linked to a file that no other check watches.
    let sandbox = Sandbox::new();
    fs::create_dir(sandbox.dest()).unwrap();
    fs::hard_link(sandbox.write("archive", b""), sandbox.dest().join("link")).unwrap();
    assert!(
        sandbox.check(&Ok(())).is_err(),
        "a hard link to a file outside the root went unseen"
    );
}
