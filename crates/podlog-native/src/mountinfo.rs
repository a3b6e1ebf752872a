//! /proc/self/mountinfo (proc(5)): which mounts sit at or below a path, for gc and leak checks.

use std::path::Path;

use crate::errors::{Code, Context, Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u32,
    pub parent_id: u32,
    pub major_minor: String,
    pub root: String,
    pub mount_point: String,
    pub options: String,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
}

/// The kernel writes space, tab, newline and backslash in paths as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, b| acc.wrapping_mul(8) + (b - b'0')),
                );
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let mut pre = before.split(' ');
    let mut post = after.split(' ');
    Some(Mount {
        id: pre.next()?.parse().ok()?,
        parent_id: pre.next()?.parse().ok()?,
        major_minor: pre.next()?.to_string(),
        root: unescape(pre.next()?),
        mount_point: unescape(pre.next()?),
        options: pre.next()?.to_string(),
        fs_type: unescape(post.next()?),
        source: unescape(post.next()?),
        super_options: post.next().unwrap_or("").to_string(),
    })
}

pub fn parse(text: &str) -> Result<Vec<Mount>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            parse_line(l)
                .ok_or_else(|| Error::new(Code::Io, format!("unreadable mountinfo line: {l:?}")))
        })
        .collect()
}

/// Mounts whose mount point is `path` or below it, in mountinfo order (parents before children;
/// unmount in reverse). `path` is compared as written, trailing slashes aside.
pub fn under(mounts: Vec<Mount>, path: &str) -> Vec<Mount> {
    let base = path.trim_end_matches('/');
    mounts
        .into_iter()
        .filter(|m| {
            base.is_empty()
                || m.mount_point == base
                || m.mount_point
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .collect()
}

pub fn mounts_under(path: &Path) -> Result<Vec<Mount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .context(|| "reading /proc/self/mountinfo")?;
    Ok(under(parse(&text)?, &path.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
40 22 0:35 / /var/lib/pod\\040dir rw master:3 - tmpfs tmp\\134fs rw,size=65536k
41 40 0:36 /sub /var/lib/pod\\040dir/a rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
42 22 0:37 / /var/lib/pod\\040dirt rw - tmpfs tmpfs rw
";

    #[test]
    fn parses_fields_and_octal_escapes() {
        let mounts = parse(SAMPLE).unwrap();
        assert_eq!(mounts.len(), 5);
        let m = &mounts[2];
        assert_eq!((m.id, m.parent_id), (40, 22));
        assert_eq!(m.mount_point, "/var/lib/pod dir");
        assert_eq!(m.source, "tmp\\fs");
        assert_eq!(m.fs_type, "tmpfs");
        assert_eq!(m.options, "rw");
        assert_eq!(mounts[3].root, "/sub");
        assert_eq!(
            mounts[3].super_options,
            "rw,lowerdir=/l,upperdir=/u,workdir=/w"
        );
    }

    #[test]
    fn under_matches_whole_components_only() {
        let found: Vec<u32> = under(parse(SAMPLE).unwrap(), "/var/lib/pod dir/")
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(found, vec![40, 41]);
        assert_eq!(under(parse(SAMPLE).unwrap(), "/").len(), 5);
    }

    #[test]
    fn finds_this_machines_proc() {
        let found = mounts_under(Path::new("/proc")).unwrap();
        assert!(
            found
                .iter()
                .any(|m| m.mount_point == "/proc" && m.fs_type == "proc"),
            "{found:?}"
        );
    }
}
