//! rkt's tree hash (store/treestore/tree.go `Hash`, buildWalker, imageHashWriter): sha512 over a
//! lexical walk of a rendered tree. For every entry it feeds the JSON that Go's encoding/json makes of
//! rkt's `fileInfo` struct (the fields of the tar header Go's `FileInfoHeader` builds), then the file's
//! contents. Mtimes are left out, so two renders of one image hash the same. The top-level files the
//! tree store writes itself (manifest, hash, rendered, image) and sockets are skipped; a hardlink to an
//! inode already seen is typeflag '1' with its first path as link name, size 0 and no contents.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc::{self, SyncSender};
use std::thread;

use rustix::fs::OFlags;
use sha2::{Digest, Sha512};

use crate::errors::{Code, Context, Error, Result};

const SKIPPED_AT_TOP: [&[u8]; 4] = [b"manifest", b"hash", b"rendered", b"image"];

/// Bytes of file content per message to the hashing thread.
const CHUNK: u64 = 256 * 1024;
/// Messages in flight: enough to keep the hashing thread busy while the walker waits on the disk.
const IN_FLIGHT: usize = 32;

/// Walks on the calling thread and hashes on another: sha512 is most of the cost, and reading the
/// next files meanwhile hides the walk's system calls behind it.
pub fn tree_hash(dir: &Path) -> Result<String> {
    let (out, chunks) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
    let hasher = thread::spawn(move || {
        let mut hasher = Sha512::new();
        for chunk in chunks {
            hasher.update(&chunk);
        }
        hasher.finalize()
    });
    let mut walker = Walker {
        out,
        inodes: HashMap::new(),
    };
    let walked = walker.walk_dir(dir, b"");
    // Closing the channel ends the hashing thread's loop.
    drop(walker);
    let digest = hasher
        .join()
        .map_err(|_| Error::new(Code::Io, "the tree hashing thread panicked"))?;
    walked?;
    Ok(format!("sha512-{}", &hex::encode(digest)[..64]))
}

struct Walker {
    out: SyncSender<Vec<u8>>,
    /// First path seen for each inode. Keyed by inode alone, as rkt's tarheader.Populate does.
    inodes: HashMap<u64, Vec<u8>>,
}

struct Header<'a> {
    name: &'a [u8],
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    typeflag: u8,
    linkname: &'a [u8],
    devmajor: u32,
    devminor: u32,
}

impl Walker {
    fn send(&self, bytes: Vec<u8>) -> Result<()> {
        self.out
            .send(bytes)
            .map_err(|_| Error::new(Code::Io, "the tree hashing thread stopped"))
    }

    fn walk_dir(&mut self, dir: &Path, rel: &[u8]) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .context(|| format!("reading {}", dir.display()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .context(|| format!("reading {}", dir.display()))?;
        // filepath.Walk visits names in byte order.
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            if rel.is_empty() && SKIPPED_AT_TOP.contains(&name.as_bytes()) {
                continue;
            }
            let child_rel = if rel.is_empty() {
                name.as_bytes().to_vec()
            } else {
                [rel, b"/", name.as_bytes()].concat()
            };
            self.entry(&dir.join(&name), &child_rel)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, rel: &[u8]) -> Result<()> {
        let meta =
            fs::symlink_metadata(path).context(|| format!("inspecting {}", path.display()))?;
        let ft = meta.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        let target = if ft.is_symlink() {
            fs::read_link(path)
                .context(|| format!("reading link {}", path.display()))?
                .into_os_string()
                .into_vec()
        } else {
            Vec::new()
        };
        let (typeflag, devices) = if ft.is_file() {
            (b'0', false)
        } else if ft.is_dir() {
            (b'5', false)
        } else if ft.is_symlink() {
            (b'2', false)
        } else if ft.is_char_device() {
            (b'3', true)
        } else if ft.is_block_device() {
            (b'4', true)
        } else {
            (b'6', false)
        };
        let first = self.inodes.get(&meta.ino()).cloned();
        if first.is_none() {
            self.inodes.insert(meta.ino(), rel.to_vec());
        }
        let rdev = meta.rdev();
        let header = Header {
            name: rel,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: if ft.is_file() && first.is_none() {
                meta.len()
            } else {
                0
            },
            typeflag: if first.is_some() { b'1' } else { typeflag },
            linkname: first.as_deref().unwrap_or(&target),
            devmajor: if devices { rustix::fs::major(rdev) } else { 0 },
            devminor: if devices { rustix::fs::minor(rdev) } else { 0 },
        };
        self.send(header.to_go_json())?;
        if ft.is_file() && first.is_none() {
            // O_NOFOLLOW: should the tree change under us, a symlink is not followed out of it.
            let mut file: File = OpenOptions::new()
                .read(true)
                .custom_flags(OFlags::NOFOLLOW.bits() as i32)
                .open(path)
                .context(|| format!("opening {}", path.display()))?;
            let mut left = meta.len();
            loop {
                // Sized to what is left, so a small file does not cost a large zeroed buffer.
                let mut chunk = Vec::with_capacity(left.clamp(1, CHUNK) as usize);
                let n = (&mut file)
                    .take(CHUNK)
                    .read_to_end(&mut chunk)
                    .context(|| format!("reading {}", path.display()))?;
                if n == 0 {
                    break;
                }
                left = left.saturating_sub(n as u64);
                self.send(chunk)?;
            }
        }
        if ft.is_dir() {
            self.walk_dir(path, rel)?;
        }
        Ok(())
    }
}

impl Header<'_> {
    /// `json.Marshal(fileInfo{...})`: fields in declaration order, Typeflag (a byte) as a number,
    /// Xattrs always an empty array because rkt's walker never fills them.
    fn to_go_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.name.len() + self.linkname.len());
        out.extend_from_slice(b"{\"Name\":");
        go_string(&mut out, self.name);
        write!(
            out,
            ",\"Mode\":{},\"Uid\":{},\"Gid\":{},\"Size\":{},\"Typeflag\":{},\"Linkname\":",
            self.mode, self.uid, self.gid, self.size, self.typeflag
        )
        .expect("writing to a Vec cannot fail");
        go_string(&mut out, self.linkname);
        write!(
            out,
            ",\"Devmajor\":{},\"Devminor\":{},\"Xattrs\":[]}}",
            self.devmajor, self.devminor
        )
        .expect("writing to a Vec cannot fail");
        out
    }
}

/// A string as Go's encoding/json writes it: `<`, `>` and `&` escaped for HTML, U+2028 and U+2029
/// escaped, each byte of invalid UTF-8 replaced by U+FFFD, and control characters as `\n`, `\r`, `\t`,
/// `\b`, `\f` or `\u00xx` (Go 1.22 and later).
fn go_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                }
                _ => {
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(s: &[u8]) -> String {
        let mut out = Vec::new();
        go_string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_go_does() {
        assert_eq!(encoded(b"rootfs/bin/sh"), "\"rootfs/bin/sh\"");
        assert_eq!(encoded(b"a<b>&\"c\\"), r#""a\u003cb\u003e\u0026\"c\\""#);
        assert_eq!(encoded(b"\x01\n\x7f"), "\"\\u0001\\n\x7f\"");
        assert_eq!(encoded(b"bad\xff\xfeend"), r#""bad\ufffd\ufffdend""#);
        assert_eq!(encoded("\u{2028}é".as_bytes()), "\"\\u2028é\"");
    }

    #[test]
    fn header_json_matches_rkts_field_order() {
        let h = Header {
            name: b"rootfs/bin",
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            typeflag: b'5',
            linkname: b"",
            devmajor: 0,
            devminor: 0,
        };
        assert_eq!(
            String::from_utf8(h.to_go_json()).unwrap(),
            r#"{"Name":"rootfs/bin","Mode":493,"Uid":0,"Gid":0,"Size":0,"Typeflag":53,"Linkname":"","Devmajor":0,"Devminor":0,"Xattrs":[]}"#
        );
    }
}
