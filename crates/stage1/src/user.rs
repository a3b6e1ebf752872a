//! appc user and group resolution against the *image's* /etc/passwd and /etc/group:
//! a name is looked up first, then a decimal number is taken as is (appc's order).
//! Pure: callers pass the files' contents.

use crate::error::{bail, Result};

#[derive(Debug, PartialEq)]
pub struct PasswdEntry<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub home: &'a str,
}

/// Lines of `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped, as libc does.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry<'_>> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 || f[0].is_empty() {
                return None;
            }
            Some(PasswdEntry {
                name: f[0],
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5],
            })
        })
        .collect()
}

/// Lines of `name:password:gid:members` as `(name, gid)`.
pub fn parse_group(text: &str) -> Vec<(&str, u32)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 || f[0].is_empty() {
                return None;
            }
            Some((f[0], f[2].parse().ok()?))
        })
        .collect()
}

pub fn resolve_user(spec: &str, passwd: Option<&str>) -> Result<u32> {
    if let Some(e) = passwd.and_then(|t| parse_passwd(t).into_iter().find(|e| e.name == spec)) {
        return Ok(e.uid);
    }
    match spec.parse::<u32>() {
        Ok(uid) => Ok(uid),
        Err(_) if passwd.is_none() => bail!("user {spec:?}: the image has no /etc/passwd"),
        Err(_) => bail!("user {spec:?} not found in the image's /etc/passwd"),
    }
}

pub fn resolve_group(spec: &str, group: Option<&str>) -> Result<u32> {
    if let Some((_, gid)) = group.and_then(|t| parse_group(t).into_iter().find(|(n, _)| *n == spec))
    {
        return Ok(gid);
    }
    match spec.parse::<u32>() {
        Ok(gid) => Ok(gid),
        Err(_) if group.is_none() => bail!("group {spec:?}: the image has no /etc/group"),
        Err(_) => bail!("group {spec:?} not found in the image's /etc/group"),
    }
}

/// `$HOME` for a uid: its passwd entry's home, else `/`.
pub fn home_of(uid: u32, passwd: Option<&str>) -> String {
    passwd
        .and_then(|t| {
            parse_passwd(t)
                .into_iter()
                .find(|e| e.uid == uid && !e.home.is_empty())
                .map(|e| e.home.to_string())
        })
        .unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        broken line\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        user:x:1000:1000::/home/user:/bin/sh\n\
        42:x:4242:4242::/:/bin/sh\n\
        bad:x:notanumber:1::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnobody:x:65534:\nuser:x:1000:user\nwheel::10:root,user\n";

    #[test]
    fn parses_passwd() {
        let e = parse_passwd(PASSWD);
        assert_eq!(e.len(), 4);
        assert_eq!(
            e[2],
            PasswdEntry {
                name: "user",
                uid: 1000,
                gid: 1000,
                home: "/home/user"
            }
        );
    }

    #[test]
    fn parses_group() {
        assert_eq!(
            parse_group(GROUP),
            [
                ("root", 0),
                ("nobody", 65534),
                ("user", 1000),
                ("wheel", 10)
            ]
        );
    }

    #[test]
    fn names_first_then_numbers() {
        assert_eq!(resolve_user("user", Some(PASSWD)).unwrap(), 1000);
        assert_eq!(resolve_user("nobody", Some(PASSWD)).unwrap(), 65534);
        assert_eq!(resolve_user("42", Some(PASSWD)).unwrap(), 4242);
        assert_eq!(resolve_user("7", Some(PASSWD)).unwrap(), 7);
        assert_eq!(resolve_user("0", None).unwrap(), 0);
        assert_eq!(resolve_group("wheel", Some(GROUP)).unwrap(), 10);
        assert_eq!(resolve_group("1000", None).unwrap(), 1000);
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = resolve_user("alice", Some(PASSWD)).unwrap_err().to_string();
        assert_eq!(e, "user \"alice\" not found in the image's /etc/passwd");
        assert!(resolve_user("alice", None)
            .unwrap_err()
            .to_string()
            .contains("no /etc/passwd"));
        assert!(resolve_group("staff", Some(GROUP)).is_err());
        assert!(resolve_user("-1", Some(PASSWD)).is_err());
    }

    #[test]
    fn home() {
        assert_eq!(home_of(1000, Some(PASSWD)), "/home/user");
        assert_eq!(home_of(5, Some(PASSWD)), "/");
        assert_eq!(home_of(0, None), "/");
    }
}
