//! Extraction tests on archives built here with the tar crate (raw header bytes for the names its
//! Builder refuses to write). Every extraction runs next to a canary directory that must come out
//! untouched, and must leave no staging directory behind.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha512};

use crate::aci::{import, read_image, render, render_chain, ChainImage};
use crate::compression::{compress, Compression, ALL};
use crate::errors::{Code, Error};
use crate::extract::{Limits, Options, Stats};
use crate::treehash::tree_hash;
use crate::whiteout::{render_layers, render_layers_within};

const MANIFEST: &[u8] =
    br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/test"}"#;

/// An archive under construction. Names go into the header bytes as given, so hostile names survive.
struct Tar {
    builder: tar::Builder<Vec<u8>>,
    owner: (u64, u64),
}

impl Tar {
    fn new() -> Self {
        Tar {
            builder: tar::Builder::new(Vec::new()),
            owner: (0, 0),
        }
    }

    /// Owner of the entries added next.
    fn owner(&mut self, uid: u64, gid: u64) -> &mut Self {
        self.owner = (uid, gid);
        self
    }

    /// An ACI skeleton: manifest and the rootfs directory.
    fn aci() -> Self {
        let mut t = Tar::new();
        t.file("manifest", MANIFEST, 0o644);
        t.dir("rootfs", 0o755);
        t
    }

    fn entry(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        data: &[u8],
        link: Option<&str>,
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        let field = &mut h.as_old_mut().name;
        assert!(name.len() < field.len(), "test names must fit the header");
        field[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            let field = &mut h.as_old_mut().linkname;
            field[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(self.owner.0);
        h.set_gid(self.owner.1);
        h.set_size(data.len() as u64);
        h.set_mtime(1_000_000);
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        self.entry(name, tar::EntryType::Regular, mode, data, None)
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        self.entry(name, tar::EntryType::Directory, mode, b"", None)
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Symlink, 0o777, b"", Some(target))
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, tar::EntryType::Link, 0o644, b"", Some(target))
    }

    fn device(&mut self, name: &str, kind: tar::EntryType, major: u32, minor: u32) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_mode(0o666);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.builder.append(&h, &b""[..]).unwrap();
        self
    }

    fn bytes(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.builder, tar::Builder::new(Vec::new()))
            .into_inner()
            .unwrap()
    }
}

/// A temp dir holding `canary/file` and room for archives and destinations.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("canary")).unwrap();
        fs::write(dir.path().join("canary/file"), "untouched").unwrap();
        fs::create_dir(dir.path().join("store")).unwrap();
        Sandbox { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn canary(&self) -> String {
        self.path("canary").display().to_string()
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, data).unwrap();
        p
    }

    fn render(&self, aci: Vec<u8>, options: Options) -> Result<(String, Stats), Error> {
        let image = self.write("image.aci", &aci);
        render(&image, &self.path("store/rootfs"), options)
    }

    fn layers(&self, layers: Vec<Vec<u8>>) -> Result<Stats, Error> {
        let paths: Vec<PathBuf> = layers
            .into_iter()
            .enumerate()
            .map(|(i, l)| self.write(&format!("layer{i}.tar"), &l))
            .collect();
        render_layers(&paths, &self.path("store/rootfs"), Options::default())
    }

    /// The canary is as created, and the store holds nothing but (maybe) the finished tree.
    fn assert_contained(&self) {
        let canary: Vec<_> = fs::read_dir(self.path("canary"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            canary,
            vec!["file"],
            "something was written into the canary dir"
        );
        assert_eq!(
            fs::read_to_string(self.path("canary/file")).unwrap(),
            "untouched"
        );
        for e in fs::read_dir(self.path("store")).unwrap() {
            assert_eq!(
                e.unwrap().file_name(),
                "rootfs",
                "a staging directory was left behind"
            );
        }
    }

    fn assert_refused(
        &self,
        result: Result<impl std::fmt::Debug, Error>,
        code: Code,
        mentions: &str,
    ) {
        let e = result.expect_err("the archive should have been refused");
        assert_eq!(e.code, code, "{e}");
        assert!(
            e.message.contains(mentions),
            "{e} should mention {mentions:?}"
        );
        assert!(
            !self.path("store/rootfs").exists(),
            "a refused archive left a tree"
        );
        self.assert_contained();
    }
}

fn image_id(data: &[u8]) -> String {
    format!("sha512-{}", hex::encode(Sha512::digest(data)))
}

fn busybox_like() -> Tar {
    let mut t = Tar::aci();
    t.dir("rootfs/bin", 0o755)
        .file("rootfs/bin/busybox", b"\x7fELF pretend", 0o755)
        .symlink("rootfs/bin/sh", "busybox")
        .hardlink("rootfs/bin/ls", "rootfs/bin/busybox")
        .dir("rootfs/tmp", 0o1777)
        .file("rootfs/bin/su", b"suid", 0o4755)
        .file("rootfs/etc/motd", b"hello\n", 0o644);
    t
}

#[test]
fn the_five_compressions_give_one_image_id() {
    let sandbox = Sandbox::new();
    let tar = busybox_like().bytes();
    for c in ALL {
        let path = sandbox.write(&format!("image.{}", c.name()), &compress(c, &tar));
        let info = read_image(&path, Limits::default()).unwrap();
        assert_eq!(info.id, image_id(&tar), "{}", c.name());
        assert_eq!(info.key, info.id[..71]);
        assert_eq!(info.compression, c);
        assert_eq!(info.size, tar.len() as u64);
        assert_eq!(info.manifest.as_bytes(), MANIFEST);
    }
}

/// An image with more data than one message to the side thread, in an order that is not the tree
/// hash's walk order (`z` before `a`, files before their directory's entry, a hardlink to a later name).
fn unsorted() -> Tar {
    let mut t = busybox_like();
    let big: Vec<u8> = (0..(1 << 20) as u32).map(|i| (i * 7 / 3) as u8).collect();
    t.file("rootfs/z/big", &big, 0o600)
        .owner(1000, 100)
        .file("rootfs/a/b/c", b"c", 0o640)
        .dir("rootfs/a", 0o700)
        .hardlink("rootfs/a/link-to-big", "rootfs/z/big")
        .symlink("rootfs/a/b/up", "../../z");
    t
}

#[test]
fn an_import_reads_the_image_once_for_the_id_the_tree_its_hash_and_the_copy() {
    let tar = unsorted().bytes();
    for c in ALL {
        let sandbox = Sandbox::new();
        let data = compress(c, &tar);
        let path = sandbox.write("image", &data);
        let tree = sandbox.path("imported");
        fs::create_dir(&tree).unwrap();
        let copy = sandbox.path("copy");
        let imported = import(
            &path,
            &tree,
            Some(&copy),
            Options::default(),
            Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", c.name()));
        // The same values the separate passes give: the id read alone, the tree hash of a tree
        // rendered alone and walked afterwards.
        let info = read_image(&path, Limits::default()).unwrap();
        assert_eq!(imported.image.id, image_id(&tar), "{}", c.name());
        assert_eq!(imported.image.id, info.id);
        assert_eq!(imported.image.key, info.key);
        assert_eq!(imported.image.size, info.size);
        assert_eq!(imported.image.compression, c);
        assert_eq!(imported.image.manifest, info.manifest);
        let walked = sandbox.path("walked");
        fs::create_dir(&walked).unwrap();
        let (_, stats) = render(&path, &walked.join("rootfs"), Options::default()).unwrap();
        assert_eq!(
            imported.tree_hash,
            tree_hash(&walked).unwrap(),
            "{}",
            c.name()
        );
        assert_eq!(imported.tree_hash, tree_hash(&tree).unwrap());
        assert_eq!(imported.stats, stats);
        assert_eq!(
            fs::read(&copy).unwrap(),
            data,
            "the copy is the file as read"
        );
        assert_eq!(
            names(&tree),
            vec!["rootfs"],
            "the tree holds its rootfs only"
        );
    }
}

#[test]
fn an_import_without_a_copy_and_a_refused_import() {
    let sandbox = Sandbox::new();
    let tar = unsorted().bytes();
    let path = sandbox.write("image.aci", &tar);
    let tree = sandbox.path("store");
    let imported = import(&path, &tree, None, Options::default(), Limits::default()).unwrap();
    assert_eq!(imported.image.id, image_id(&tar));
    fs::remove_dir_all(tree.join("rootfs")).unwrap();
    let mut hostile = Tar::aci();
    hostile
        .symlink("rootfs/etc", &sandbox.canary())
        .file("rootfs/etc/passwd", b"x", 0o644);
    let path = sandbox.write("hostile.aci", &hostile.bytes());
    let copy = sandbox.path("copy");
    let limits = Limits::default();
    let result = import(&path, &tree, Some(&copy), Options::default(), limits);
    sandbox.assert_refused(result, Code::HostileArchive, "symlink escape");
    let small = Limits {
        layer: 4096,
        ..Limits::default()
    };
    let path = sandbox.write("image.aci", &tar);
    let result = import(&path, &tree, None, Options::default(), small);
    sandbox.assert_refused(result, Code::TooLarge, "layer size limit");
}

#[test]
fn truncated_archives_are_reported_as_truncated() {
    let sandbox = Sandbox::new();
    let tar = busybox_like().bytes();
    // Mid-data, at an entry boundary without the end-of-archive block, and inside a header.
    let mut cuts = vec![tar.len() / 2, 512 * 6];
    cuts.push(512 * 2 + 100);
    for cut in cuts {
        let path = sandbox.write("cut.aci", &tar[..cut]);
        let e = read_image(&path, Limits::default()).unwrap_err();
        assert_eq!(e.code, Code::Truncated, "cut at {cut}: {e}");
    }
    for c in ALL.into_iter().skip(1) {
        let data = compress(c, &tar);
        let path = sandbox.write("cut.aci", &data[..data.len() / 2]);
        let e = read_image(&path, Limits::default()).unwrap_err();
        assert_eq!(e.code, Code::Truncated, "{}: {e}", c.name());
        sandbox.assert_refused(
            sandbox.render(data[..data.len() / 2].to_vec(), Options::default()),
            Code::Truncated,
            "",
        );
    }
}

#[test]
fn unknown_compression_is_refused() {
    let sandbox = Sandbox::new();
    let mut data = b"PK\x03\x04".to_vec();
    data.extend_from_slice(&[0u8; 600]);
    let e = read_image(&sandbox.write("x.aci", &data), Limits::default()).unwrap_err();
    assert_eq!(e.code, Code::Compression);
    assert!(e.message.contains("unknown compression"), "{e}");
}

#[test]
fn bad_manifests_are_refused() {
    let sandbox = Sandbox::new();
    let cases: [(Vec<u8>, &str); 4] = [
        (b"{not json".to_vec(), "not JSON"),
        (
            br#"{"acKind":"PodManifest","acVersion":"0.8.11"}"#.to_vec(),
            "acKind is \"PodManifest\"",
        ),
        (br#"{"acVersion":"0.8.11"}"#.to_vec(), "no acKind"),
        (
            vec![b' '; (1 << 20) + 1],
            "manifest is 1048577 bytes, larger than",
        ),
    ];
    for (manifest, mentions) in cases {
        let mut t = Tar::new();
        t.file("manifest", &manifest, 0o644).dir("rootfs", 0o755);
        let e = read_image(&sandbox.write("m.aci", &t.bytes()), Limits::default()).unwrap_err();
        assert_eq!(e.code, Code::BadManifest, "{e}");
        assert!(
            e.message.contains(mentions),
            "{e} should mention {mentions}"
        );
    }
    let mut t = Tar::new();
    t.dir("rootfs", 0o755);
    let e = read_image(&sandbox.write("m.aci", &t.bytes()), Limits::default()).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (Code::BadManifest, "the image has no manifest")
    );
}

#[test]
fn layout_violations_name_the_offending_path() {
    let sandbox = Sandbox::new();
    let mut extra = Tar::aci();
    extra.file("README", b"hi", 0o644);
    let mut dup = Tar::aci();
    dup.file("rootfs/a", b"1", 0o644)
        .file("./rootfs/a", b"2", 0o644);
    let mut manifest_dir = Tar::new();
    manifest_dir.dir("manifest", 0o755).dir("rootfs", 0o755);
    let mut no_rootfs = Tar::new();
    no_rootfs.file("manifest", MANIFEST, 0o644);
    let cases = [
        (extra.bytes(), "unexpected entry \"README\""),
        (dup.bytes(), "duplicate entry \"./rootfs/a\""),
        (manifest_dir.bytes(), "manifest is a Directory"),
        (no_rootfs.bytes(), "no rootfs/"),
    ];
    for (aci, mentions) in cases {
        sandbox.assert_refused(
            sandbox.render(aci.clone(), Options::default()),
            Code::BadLayout,
            mentions,
        );
        let e = read_image(&sandbox.write("l.aci", &aci), Limits::default()).unwrap_err();
        assert_eq!(e.code, Code::BadLayout);
    }
}

#[test]
fn renders_files_links_modes_and_owners() {
    let sandbox = Sandbox::new();
    let mut t = busybox_like();
    t.owner(1234, 5678)
        .file("rootfs/home/owned", b"me", 0o640)
        .owner(0, 0);
    t.entry("rootfs/run/fifo", tar::EntryType::Fifo, 0o600, b"", None);
    let (manifest, stats) = sandbox.render(t.bytes(), Options::default()).unwrap();
    assert_eq!(manifest.as_bytes(), MANIFEST);
    let root = sandbox.path("store/rootfs");
    let meta = |p: &str| fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!(
        fs::read(root.join("bin/busybox")).unwrap(),
        b"\x7fELF pretend"
    );
    assert_eq!(meta("bin/busybox").mode() & 0o7777, 0o755);
    assert_eq!(
        meta("bin/busybox").ino(),
        meta("bin/ls").ino(),
        "ls is a hardlink to busybox"
    );
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(meta("bin/su").mode() & 0o7777, 0o4755, "setuid is kept");
    assert_eq!(meta("tmp").mode() & 0o7777, 0o1777, "sticky is kept");
    assert_eq!(
        meta("bin").mtime(),
        1_000_000,
        "directory mtimes survive their children"
    );
    let owned = meta("home/owned");
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (1234, 5678, 0o640)
    );
    assert!(meta("run/fifo").file_type().is_fifo());
    assert_eq!(
        meta("etc").mode() & 0o7777,
        0o755,
        "implied directories are 0755"
    );
    assert_eq!(meta("").mode() & 0o7777, 0o755);
    assert_eq!(
        (stats.files, stats.symlinks, stats.hardlinks, stats.fifos),
        (4, 1, 1, 1)
    );
    sandbox.assert_contained();
}

#[test]
fn an_existing_destination_is_not_touched() {
    let sandbox = Sandbox::new();
    fs::create_dir(sandbox.path("store/rootfs")).unwrap();
    let e = sandbox
        .render(
            busybox_like().bytes(),
            Options {
                sync: true,
                ..Options::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code, Code::Exists);
    assert_eq!(
        fs::read_dir(sandbox.path("store/rootfs")).unwrap().count(),
        0
    );
}

#[test]
fn traversal_and_absolute_names_are_refused() {
    for name in [
        "rootfs/../../canary/file",
        "../canary/file",
        "/etc/passwd",
        "rootfs/a/../../../x",
    ] {
        let sandbox = Sandbox::new();
        let mut t = Tar::aci();
        t.file(name, b"pwned", 0o644);
        let mentions = if name.starts_with('/') {
            "absolute path"
        } else {
            "`..` component"
        };
        sandbox.assert_refused(
            sandbox.render(t.bytes(), Options::default()),
            Code::HostileArchive,
            mentions,
        );
    }
}

#[test]
fn a_symlink_to_the_host_is_followed_only_inside_the_root() {
    // `escape -> <absolute path of the canary>` then `escape/file`: resolved in the root, the path
    // names <root>/<canary path>, which does not exist, and writing through a dangling link is refused.
    let sandbox = Sandbox::new();
    let mut t = Tar::aci();
    t.symlink("rootfs/escape", &sandbox.canary())
        .file("rootfs/escape/file", b"pwned", 0o644);
    sandbox.assert_refused(
        sandbox.render(t.bytes(), Options::default()),
        Code::HostileArchive,
        "symlink escape",
    );

    let mut t = Tar::aci();
    t.symlink("rootfs/up", "../../../../../../..")
        .file("rootfs/up/canary-file", b"pwned", 0o644);
    sandbox.render(t.bytes(), Options::default()).unwrap();
    assert_eq!(
        fs::read(sandbox.path("store/rootfs/canary-file")).unwrap(),
        b"pwned",
        "`..` stops at the root"
    );
    sandbox.assert_contained();
}

#[test]
fn writing_below_a_symlink_loop_is_refused() {
    let sandbox = Sandbox::new();
    let mut t = Tar::aci();
    t.symlink("rootfs/a", "b")
        .symlink("rootfs/b", "a")
        .file("rootfs/a/x", b"x", 0o644);
    sandbox.assert_refused(
        sandbox.render(t.bytes(), Options::default()),
        Code::HostileArchive,
        "symlink loop",
    );
}

#[test]
fn a_symlink_swapped_in_for_a_directory_writes_into_the_root() {
    // `etc` exists in the image; `a -> /etc` then `a/passwd` lands in the image's own /etc.
    let sandbox = Sandbox::new();
    let mut t = Tar::aci();
    t.dir("rootfs/etc", 0o755).symlink("rootfs/a", "/etc").file(
        "rootfs/a/passwd",
        b"root::0:0::/:/bin/sh\n",
        0o644,
    );
    sandbox.render(t.bytes(), Options::default()).unwrap();
    let root = sandbox.path("store/rootfs");
    assert_eq!(
        fs::read(root.join("etc/passwd")).unwrap(),
        b"root::0:0::/:/bin/sh\n"
    );
    assert!(fs::symlink_metadata(root.join("a"))
        .unwrap()
        .file_type()
        .is_symlink());
    sandbox.assert_contained();
}

#[test]
fn hardlink_escapes_are_refused() {
    let sandbox = Sandbox::new();
    let canary_file = format!("{}/file", sandbox.canary());
    let cases = [
        ("../canary/file", "`..` component"),
        (canary_file.as_str(), "absolute path"),
        ("rootfs/not-yet", "not a file already extracted"),
        ("manifest", "outside rootfs/"),
        ("rootfs", "outside rootfs/"),
    ];
    for (target, mentions) in cases {
        let mut t = Tar::aci();
        t.hardlink("rootfs/link", target)
            .file("rootfs/not-yet", b"late", 0o644);
        sandbox.assert_refused(
            sandbox.render(t.bytes(), Options::default()),
            Code::HostileArchive,
            mentions,
        );
    }
    assert_eq!(
        fs::metadata(sandbox.path("canary/file")).unwrap().nlink(),
        1
    );
}

#[test]
fn a_hardlink_through_a_symlinked_directory_stays_inside() {
    let sandbox = Sandbox::new();
    let mut t = Tar::aci();
    t.symlink("rootfs/c", &sandbox.canary())
        .hardlink("rootfs/link", "rootfs/c/file");
    sandbox.assert_refused(
        sandbox.render(t.bytes(), Options::default()),
        Code::HostileArchive,
        "hardlink",
    );
    assert_eq!(
        fs::metadata(sandbox.path("canary/file")).unwrap().nlink(),
        1
    );
}

#[test]
fn devices_are_skipped_unless_allowed() {
    let sandbox = Sandbox::new();
    let mut t = Tar::aci();
    t.device("rootfs/dev/null", tar::EntryType::Char, 1, 3)
        .device("rootfs/dev/sda", tar::EntryType::Block, 8, 0);
    let aci = t.bytes();
    let (_, stats) = sandbox.render(aci.clone(), Options::default()).unwrap();
    assert_eq!((stats.devices, stats.skipped_devices), (0, 2));
    assert!(!sandbox.path("store/rootfs/dev/null").exists());
    fs::remove_dir_all(sandbox.path("store/rootfs")).unwrap();

    let (_, stats) = sandbox
        .render(
            aci,
            Options {
                allow_devices: true,
                sync: false,
            },
        )
        .unwrap();
    assert_eq!(stats.devices, 2);
    let null = fs::symlink_metadata(sandbox.path("store/rootfs/dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (
            rustix::fs::major(null.rdev()),
            rustix::fs::minor(null.rdev())
        ),
        (1, 3)
    );
    assert_eq!(
        null.permissions().mode() & 0o7777,
        0o666,
        "the umask does not apply"
    );
    sandbox.assert_contained();
}

#[test]
fn the_root_cannot_be_replaced_by_a_file() {
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.file("./", b"", 0o644);
    let e = sandbox.layers(vec![t.bytes()]).unwrap_err();
    assert_eq!(e.code, Code::HostileArchive, "{e}");
    sandbox.assert_contained();
}

fn lower_layer() -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("etc", 0o755)
        .file("etc/motd", b"lower motd", 0o644)
        .file("etc/passwd", b"lower passwd", 0o644)
        .dir("etc/sub", 0o755)
        .file("etc/sub/x", b"x", 0o644)
        .dir("bin", 0o755)
        .file("bin/cat", b"cat", 0o755)
        .file("bin/ls", b"ls", 0o755);
    t.bytes()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn whiteouts_remove_lower_files_in_either_order() {
    for whiteout_first in [true, false] {
        let sandbox = Sandbox::new();
        let mut upper = Tar::new();
        if whiteout_first {
            upper
                .file("etc/.wh.motd", b"", 0o644)
                .file("etc/motd", b"upper motd", 0o644);
        } else {
            upper
                .file("etc/motd", b"upper motd", 0o644)
                .file("etc/.wh.motd", b"", 0o644);
        }
        upper.file("bin/.wh.cat", b"", 0o644);
        sandbox.layers(vec![lower_layer(), upper.bytes()]).unwrap();
        let root = sandbox.path("store/rootfs");
        assert_eq!(
            fs::read(root.join("etc/motd")).unwrap(),
            b"upper motd",
            "whiteout first: {whiteout_first}"
        );
        assert_eq!(names(&root.join("bin")), ["ls"]);
        assert_eq!(names(&root.join("etc")), ["motd", "passwd", "sub"]);
        sandbox.assert_contained();
    }
}

#[test]
fn an_opaque_directory_keeps_only_its_own_layers_entries_in_either_order() {
    for marker_first in [true, false] {
        let sandbox = Sandbox::new();
        let mut upper = Tar::new();
        if marker_first {
            upper
                .file("etc/.wh..wh..opq", b"", 0o644)
                .dir("etc", 0o700)
                .file("etc/hostname", b"pod", 0o644);
        } else {
            upper
                .dir("etc", 0o700)
                .file("etc/hostname", b"pod", 0o644)
                .file("etc/.wh..wh..opq", b"", 0o644);
        }
        sandbox.layers(vec![lower_layer(), upper.bytes()]).unwrap();
        let root = sandbox.path("store/rootfs");
        assert_eq!(
            names(&root.join("etc")),
            ["hostname"],
            "marker first: {marker_first}"
        );
        assert_eq!(
            fs::metadata(root.join("etc")).unwrap().mode() & 0o7777,
            0o700
        );
        assert_eq!(names(&root.join("bin")), ["cat", "ls"]);
        sandbox.assert_contained();
    }
}

#[test]
fn whiteouts_cannot_reach_outside_their_directory() {
    let sandbox = Sandbox::new();
    for (name, mentions) in [
        ("../.wh.canary", "`..` component"),
        ("etc/.wh...", "names no file"),
        ("etc/.wh..", "names no file"),
    ] {
        let mut upper = Tar::new();
        upper.file(name, b"", 0o644);
        sandbox.assert_refused(
            sandbox.layers(vec![lower_layer(), upper.bytes()]),
            Code::HostileArchive,
            mentions,
        );
    }
}

/// Plain and opaque whiteouts follow one rule below a symlinked directory: followed inside the root
/// when it leads somewhere, nothing done (and nothing created) when it leads nowhere.
#[test]
fn whiteouts_below_a_symlink_follow_it_inside_the_root_or_do_nothing() {
    for opaque in [false, true] {
        let sandbox = Sandbox::new();
        let mut lower = Tar::new();
        lower
            .dir("usr", 0o755)
            .dir("usr/lib", 0o755)
            .file("usr/lib/a", b"a", 0o644)
            .file("usr/lib/b", b"b", 0o644)
            .symlink("lib", "/usr/lib")
            .symlink("gone", "/nowhere")
            .symlink("out", &sandbox.canary());
        let mut upper = Tar::new();
        if opaque {
            upper
                .file("lib/.wh..wh..opq", b"", 0o644)
                .file("gone/.wh..wh..opq", b"", 0o644)
                .file("out/.wh..wh..opq", b"", 0o644);
        } else {
            upper
                .file("lib/.wh.a", b"", 0o644)
                .file("gone/.wh.x", b"", 0o644)
                .file("out/.wh.file", b"", 0o644);
        }
        sandbox.layers(vec![lower.bytes(), upper.bytes()]).unwrap();
        let root = sandbox.path("store/rootfs");
        let left: &[&str] = if opaque { &[] } else { &["b"] };
        assert_eq!(names(&root.join("usr/lib")), left, "opaque: {opaque}");
        assert_eq!(
            names(&root),
            ["gone", "lib", "out", "usr"],
            "opaque: {opaque}"
        );
        for link in ["lib", "gone", "out"] {
            assert!(fs::symlink_metadata(root.join(link)).unwrap().is_symlink());
        }
        assert!(!root.join("nowhere").exists(), "opaque: {opaque}");
        sandbox.assert_contained();
    }
}

/// Layers of zeros, gzipped: each 4 MiB of file data compresses to a few KiB.
fn zero_layers(sandbox: &Sandbox, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let mut t = Tar::new();
            t.file(&format!("zeros{i}"), &vec![0; 4 << 20], 0o644);
            sandbox.write(
                &format!("bomb{i}.tar.gz"),
                &compress(Compression::Gzip, &t.bytes()),
            )
        })
        .collect()
}

#[test]
fn layers_past_a_size_limit_are_refused_while_they_unpack() {
    let sandbox = Sandbox::new();
    let layers = zero_layers(&sandbox, 2);
    let dest = sandbox.path("store/rootfs");
    let unlimited = Limits::default();
    let cases = [
        (
            Limits {
                layer: 1 << 20,
                ..unlimited
            },
            "bomb0",
            "the layer size limit",
        ),
        (
            Limits {
                image: 6 << 20,
                ..unlimited
            },
            "bomb1",
            "the image size limit",
        ),
        (
            Limits {
                ratio: 100,
                ratio_floor: 1 << 20,
                ..unlimited
            },
            "bomb0",
            "compression bomb",
        ),
    ];
    for (limits, layer, mentions) in cases {
        let result = render_layers_within(&layers, &dest, Options::default(), limits);
        sandbox.assert_refused(result, Code::TooLarge, mentions);
        let e = render_layers_within(&layers, &dest, Options::default(), limits).unwrap_err();
        assert!(e.message.contains(layer), "{e} should name {layer}");
    }
    let stats = render_layers_within(
        &layers,
        &dest,
        Options::default(),
        Limits {
            layer: 5 << 20,
            image: 9 << 20,
            ..unlimited
        },
    )
    .unwrap();
    assert_eq!(stats.bytes, 8 << 20);
    assert!(
        stats.unpacked > stats.bytes && stats.unpacked < 9 << 20,
        "{stats:?}"
    );
    sandbox.assert_contained();
}

#[test]
fn an_aci_past_a_size_limit_is_refused_by_the_check_and_the_render() {
    let sandbox = Sandbox::new();
    let mut aci = Tar::aci();
    aci.file("rootfs/zeros", &vec![0; 4 << 20], 0o644);
    let path = sandbox.write("bomb.aci.gz", &compress(Compression::Gzip, &aci.bytes()));
    let dest = sandbox.path("store/rootfs");
    let chain = [ChainImage {
        path: path.clone(),
        path_whitelist: Vec::new(),
        level: 0,
    }];
    let unlimited = Limits::default();
    for (limits, mentions) in [
        (
            Limits {
                image: 1 << 20,
                ..unlimited
            },
            "the image size limit (1048576 bytes)",
        ),
        (
            Limits {
                ratio: 100,
                ratio_floor: 1 << 20,
                ..unlimited
            },
            "compression bomb",
        ),
    ] {
        let e = read_image(&path, limits).unwrap_err();
        assert_eq!(e.code, Code::TooLarge, "{e}");
        assert!(
            e.message.contains(mentions),
            "{e} should mention {mentions:?}"
        );
        sandbox.assert_refused(
            render_chain(&chain, &dest, Options::default(), limits),
            Code::TooLarge,
            mentions,
        );
    }
    assert!(read_image(
        &path,
        Limits {
            image: 5 << 20,
            ..unlimited
        }
    )
    .is_ok());
}

#[test]
fn an_upper_layer_replaces_a_symlink_instead_of_writing_through_it() {
    let sandbox = Sandbox::new();
    let mut lower = Tar::new();
    lower.symlink("target", &format!("{}/file", sandbox.canary()));
    let mut upper = Tar::new();
    upper.file("target", b"pwned", 0o644);
    sandbox.layers(vec![lower.bytes(), upper.bytes()]).unwrap();
    let root = sandbox.path("store/rootfs");
    assert!(fs::symlink_metadata(root.join("target")).unwrap().is_file());
    assert_eq!(fs::read(root.join("target")).unwrap(), b"pwned");
    sandbox.assert_contained();
}

#[test]
fn a_directory_replaced_by_a_symlink_gets_no_deferred_metadata() {
    // The tar 0.4.44 bug: a directory's mode applied late, through a symlink that replaced it.
    let sandbox = Sandbox::new();
    let mut t = Tar::new();
    t.dir("d", 0o777).symlink("d", &sandbox.canary());
    sandbox.layers(vec![t.bytes()]).unwrap();
    assert_eq!(
        fs::metadata(sandbox.path("canary")).unwrap().mode() & 0o7777,
        0o755
    );
    sandbox.assert_contained();
}

#[test]
fn the_tree_hash_is_stable_and_sees_changes() {
    let sandbox = Sandbox::new();
    let aci = busybox_like().bytes();
    let tree_a = sandbox.path("store/a");
    let tree_b = sandbox.path("store/b");
    fs::create_dir_all(&tree_a).unwrap();
    fs::create_dir_all(&tree_b).unwrap();
    let image = sandbox.write("image.aci", &aci);
    render(&image, &tree_a.join("rootfs"), Options::default()).unwrap();
    render(&image, &tree_b.join("rootfs"), Options::default()).unwrap();
    fs::write(
        tree_a.join("manifest"),
        "written by the tree store, not hashed",
    )
    .unwrap();
    let hash = tree_hash(&tree_a).unwrap();
    assert!(hash.starts_with("sha512-") && hash.len() == 71, "{hash}");
    assert_eq!(hash, tree_hash(&tree_b).unwrap());

    fs::write(tree_b.join("rootfs/etc/motd"), "changed\n").unwrap();
    let changed = tree_hash(&tree_b).unwrap();
    assert_ne!(hash, changed);
    fs::write(tree_b.join("rootfs/etc/motd"), "hello\n").unwrap();
    assert_eq!(hash, tree_hash(&tree_b).unwrap(), "contents restored");
    fs::set_permissions(
        tree_b.join("rootfs/etc/motd"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert_ne!(hash, tree_hash(&tree_b).unwrap(), "modes count");
}

fn chain_image(path: PathBuf, whitelist: &[&str], level: u32) -> ChainImage {
    ChainImage {
        path,
        path_whitelist: whitelist.iter().map(|s| s.to_string()).collect(),
        level,
    }
}

#[test]
fn a_dependency_chain_renders_upper_first_with_path_whitelists() {
    let sandbox = Sandbox::new();
    let mut top = Tar::aci();
    top.dir("rootfs/etc", 0o700)
        .file("rootfs/etc/motd", b"top motd", 0o644)
        .file(
            "rootfs/bin",
            b"a file where the base has a directory",
            0o644,
        );
    let mut base = Tar::new();
    base.file(
        "manifest",
        br#"{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/base"}"#,
        0o644,
    )
    .dir("rootfs", 0o755)
    .dir("rootfs/etc", 0o755)
    .file("rootfs/etc/motd", b"base motd", 0o644)
    .file("rootfs/etc/passwd", b"root:x:0:0::/:/bin/sh", 0o644)
    .file("rootfs/etc/shadow", b"not whitelisted", 0o600)
    .dir("rootfs/bin", 0o755)
    .file("rootfs/bin/sh", b"below a file of the top image", 0o755);
    let top = sandbox.write("top.aci", &top.bytes());
    let base = sandbox.write("base.aci", &base.bytes());
    let images = [
        chain_image(top, &[], 0),
        chain_image(base, &["/etc/motd", "/etc/passwd", "/bin/sh"], 1),
    ];
    let dest = sandbox.path("store/rootfs");
    let (manifest, _) =
        render_chain(&images, &dest, Options::default(), Limits::default()).unwrap();
    assert!(
        manifest.contains("example.com/test"),
        "the top image's manifest: {manifest}"
    );
    assert_eq!(fs::read(dest.join("etc/motd")).unwrap(), b"top motd");
    assert_eq!(
        fs::read(dest.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/:/bin/sh"
    );
    assert!(
        !dest.join("etc/shadow").exists(),
        "left out by the whitelist"
    );
    assert!(dest.join("bin").is_file(), "the top image's file stays");
    assert_eq!(
        fs::metadata(dest.join("etc")).unwrap().permissions().mode() & 0o777,
        0o700,
        "the top image's directory metadata wins"
    );
    sandbox.assert_contained();
}

#[test]
fn an_upper_whitelist_limits_what_the_images_below_it_add() {
    let sandbox = Sandbox::new();
    let mut top = Tar::aci();
    top.file("rootfs/app", b"app", 0o755);
    let mut middle = Tar::aci();
    middle.file("rootfs/lib.so", b"lib", 0o644);
    let mut bottom = Tar::aci();
    bottom
        .file("rootfs/lib.so", b"bottom lib", 0o644)
        .file("rootfs/extra", b"extra", 0o644);
    let images = [
        chain_image(sandbox.write("top.aci", &top.bytes()), &[], 0),
        chain_image(
            sandbox.write("middle.aci", &middle.bytes()),
            &["/lib.so"],
            1,
        ),
        chain_image(sandbox.write("bottom.aci", &bottom.bytes()), &[], 2),
    ];
    let dest = sandbox.path("store/rootfs");
    render_chain(&images, &dest, Options::default(), Limits::default()).unwrap();
    assert_eq!(names(&dest), ["app", "lib.so"]);
    assert_eq!(fs::read(dest.join("lib.so")).unwrap(), b"lib");
    sandbox.assert_contained();
}

#[test]
fn a_symlink_escape_within_one_image_of_a_chain_is_refused() {
    let sandbox = Sandbox::new();
    let mut top = Tar::aci();
    top.symlink("rootfs/escape", "../canary")
        .file("rootfs/escape/pwned", b"x", 0o644);
    let images = [chain_image(sandbox.write("top.aci", &top.bytes()), &[], 0)];
    let result = render_chain(
        &images,
        &sandbox.path("store/rootfs"),
        Options::default(),
        Limits::default(),
    );
    sandbox.assert_refused(result, Code::HostileArchive, "symlink escape");
}

#[test]
fn a_hostile_dependency_is_refused_naming_it() {
    let sandbox = Sandbox::new();
    let mut top = Tar::aci();
    top.file("rootfs/app", b"app", 0o755);
    let mut bad = Tar::aci();
    bad.file("rootfs/../../canary/pwned", b"x", 0o644);
    let images = [
        chain_image(sandbox.write("top.aci", &top.bytes()), &[], 0),
        chain_image(sandbox.write("bad.aci", &bad.bytes()), &[], 1),
    ];
    let result = render_chain(
        &images,
        &sandbox.path("store/rootfs"),
        Options::default(),
        Limits::default(),
    );
    sandbox.assert_refused(result, Code::HostileArchive, "bad.aci");
}

/// Every entry below `root`: path, kind, mode, owner, and content or link target.
fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let m = fs::symlink_metadata(&path).unwrap();
        let what = if m.is_symlink() {
            format!("-> {}", fs::read_link(&path).unwrap().display())
        } else if m.is_file() {
            String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned()
        } else {
            for e in fs::read_dir(&path).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
            String::from("dir")
        };
        let mode = if m.is_symlink() { 0 } else { m.mode() & 0o7777 };
        out.push(format!(
            "{} {mode:o} {}:{} {what}",
            rel.display(),
            m.uid(),
            m.gid()
        ));
    }
    out.sort();
    out
}

/// Layers applied one by one into overlayfs-form trees and stacked give the tree that applying them
/// all into one directory gives, and the stored upper of a layer holds only that layer's changes.
#[test]
fn layers_stacked_as_overlay_lowers_equal_the_flattened_render() {
    use crate::layer::{in_private_mount_namespace, overlay_options, render_layer};
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: rendering layers through an overlay needs root");
        return;
    }
    let sandbox = Sandbox::new();
    let mut base = Tar::new();
    base.dir("usr", 0o755)
        .dir("usr/lib", 0o755)
        .file("usr/lib/a", b"a", 0o644)
        .file("usr/lib/b", b"b", 0o644)
        .symlink("lib", "/usr/lib")
        .dir("etc", 0o755)
        .file("etc/motd", b"lower motd", 0o644)
        .dir("etc/sub", 0o755)
        .file("etc/sub/x", b"x", 0o644)
        .dir("var", 0o755)
        .file("var/keep", b"k", 0o644);
    let mut second = Tar::new();
    second
        .file("lib/.wh.a", b"", 0o644)
        .file("lib/c", b"c via the symlink", 0o644)
        .file("etc/.wh..wh..opq", b"", 0o644)
        .dir("etc", 0o700)
        .file("etc/hostname", b"pod", 0o644)
        .owner(65534, 65534)
        .file("var/keep", b"changed", 0o4755);
    let mut third = Tar::new();
    third
        .file("etc/.wh.hostname", b"", 0o644)
        .file("new", b"n", 0o600);
    let layers: Vec<PathBuf> = [base.bytes(), second.bytes(), third.bytes()]
        .into_iter()
        .enumerate()
        .map(|(i, l)| sandbox.write(&format!("layer{i}.tar"), &l))
        .collect();
    render_layers(&layers, &sandbox.path("store/rootfs"), Options::default()).unwrap();
    let flat = listing(&sandbox.path("store/rootfs"));

    let dir = sandbox.path("layers");
    fs::create_dir(&dir).unwrap();
    let keys: Vec<String> = (0..3).map(|i| format!("{i:032x}")).collect();
    for (i, layer) in layers.iter().enumerate() {
        let lowers: Vec<String> = keys[..i].iter().rev().cloned().collect();
        render_layer(
            layer,
            &dir,
            &keys[i],
            &lowers,
            Options::default(),
            Limits::default(),
            0,
        )
        .unwrap();
    }
    // The second layer's upper: its own files, and whiteouts (an opaque directory's lower entries
    // are whited out one by one).
    let second_upper = dir.join(&keys[1]).join("rootfs");
    for p in ["usr/lib/a", "etc/motd", "etc/sub"] {
        let m = fs::symlink_metadata(second_upper.join(p)).unwrap();
        assert!(
            m.file_type().is_char_device() && m.rdev() == 0,
            "{p} is a whiteout"
        );
    }
    assert_eq!(
        fs::read(second_upper.join("usr/lib/c")).unwrap(),
        b"c via the symlink"
    );
    assert!(
        !second_upper.join("usr/lib/b").exists(),
        "only changes are stored"
    );
    assert_eq!(names(&dir), keys, "no staging directory is left");
    let mut marks = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(p) = stack.pop() {
        let mut buf = vec![0u8; 4096];
        let n = rustix::fs::llistxattr(&p, &mut buf[..]).unwrap();
        for name in buf[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
            marks.push(format!("{} {}", p.display(), String::from_utf8_lossy(name)));
        }
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert!(
        marks.iter().all(|m| m.ends_with("trusted.overlay.opaque")),
        "{marks:?}"
    );

    let merged = sandbox.path("merged");
    fs::create_dir(&merged).unwrap();
    let stacked = in_private_mount_namespace(|| {
        let lowers: Vec<String> = keys
            .iter()
            .rev()
            .map(|k| dir.join(k).join("rootfs").display().to_string())
            .collect();
        let data = overlay_options(&lowers, "", "")?;
        // Read-only: lowers only, no upper (the options' empty upper and work are dropped).
        let data = data.to_str().unwrap().replace(",upperdir=,workdir=", "");
        rustix::mount::mount(
            "overlay",
            &merged,
            "overlay",
            rustix::mount::MountFlags::RDONLY,
            std::ffi::CString::new(data).unwrap().as_c_str(),
        )
        .unwrap();
        Ok(listing(&merged))
    })
    .unwrap();
    assert_eq!(stacked, flat);
    sandbox.assert_contained();
}
