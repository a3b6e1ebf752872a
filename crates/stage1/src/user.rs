//! User and group resolution against the *image's* /etc/passwd and /etc/group, as runc
//! does it for OCI images (see `resolve`). Pure: callers pass the files' contents.

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

/// A line of `name:password:gid:member,member,...`.
#[derive(Debug, PartialEq)]
pub struct GroupEntry<'a> {
    pub name: &'a str,
    pub gid: u32,
    pub members: Vec<&'a str>,
}

pub fn parse_group(text: &str) -> Vec<GroupEntry<'_>> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 || f[0].is_empty() {
                return None;
            }
            Some(GroupEntry {
                name: f[0],
                gid: f[2].parse().ok()?,
                members: f.get(3).map_or(vec![], |m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .collect()
                }),
            })
        })
        .collect()
}

/// What an app runs as. `groups` are the supplementary groups found in /etc/group, to which
/// the caller adds the manifest's `supplementaryGIDs`.
#[derive(Debug, PartialEq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// runc's `GetExecUser` with the defaults runc, crun (through umoci), containerd and Docker
/// use (uid 0, gid 0, home `/`), but appc's order for the user (a name first, then a number):
/// - the user's passwd entry, by name or else by uid, gives the uid, home and primary gid;
/// - a decimal uid without an entry runs with that uid and gid 0 (runc's rule, not gid = uid);
/// - with a group given, it is the primary gid and /etc/group adds no supplementary groups;
/// - without one, the primary gid is the entry's and the supplementary groups are those
///   that list the user's name as a member.
pub fn resolve(
    user: &str,
    group: Option<&str>,
    passwd: Option<&str>,
    group_file: Option<&str>,
) -> Result<Credentials> {
    let entries = passwd.map(parse_passwd).unwrap_or_default();
    let number = user.parse::<u32>().ok();
    let entry = entries
        .iter()
        .find(|e| e.name == user)
        .or_else(|| entries.iter().find(|e| Some(e.uid) == number));
    let mut c = match (entry, number) {
        (Some(e), _) => Credentials {
            uid: e.uid,
            gid: e.gid,
            groups: vec![],
            home: if e.home.is_empty() { "/" } else { e.home }.to_string(),
        },
        (None, Some(uid)) => Credentials {
            uid,
            gid: 0,
            groups: vec![],
            home: "/".to_string(),
        },
        (None, None) if passwd.is_none() => bail!("user {user:?}: the image has no /etc/passwd"),
        (None, None) => bail!("user {user:?} not found in the image's /etc/passwd"),
    };
    match (group, entry) {
        (Some(g), _) => c.gid = resolve_group(g, group_file)?,
        (None, Some(e)) => {
            c.groups = group_file
                .map(parse_group)
                .unwrap_or_default()
                .iter()
                .filter(|g| g.members.contains(&e.name))
                .map(|g| g.gid)
                .collect();
        }
        (None, None) => {}
    }
    Ok(c)
}

fn resolve_group(spec: &str, group: Option<&str>) -> Result<u32> {
    if let Some(g) = group.and_then(|t| parse_group(t).into_iter().find(|g| g.name == spec)) {
        return Ok(g.gid);
    }
    match spec.parse::<u32>() {
        Ok(gid) => Ok(gid),
        Err(_) if group.is_none() => bail!("group {spec:?}: the image has no /etc/group"),
        Err(_) => bail!("group {spec:?} not found in the image's /etc/group"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        broken line\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        user:x:1000:1000::/home/user:/bin/sh\n\
        www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
        42:x:4242:4242::/:/bin/sh\n\
        nohome:x:5:6:::/bin/sh\n\
        bad:x:notanumber:1::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnobody:x:65534:\nuser:x:1000:user\nwheel::10:root, user\n\
        audio:x:29:www-data,user\nempty:x:11\n";

    fn creds(uid: u32, gid: u32, groups: &[u32], home: &str) -> Credentials {
        Credentials {
            uid,
            gid,
            groups: groups.to_vec(),
            home: home.to_string(),
        }
    }

    fn run(user: &str, group: Option<&str>) -> Credentials {
        resolve(user, group, Some(PASSWD), Some(GROUP)).unwrap()
    }

    #[test]
    fn parses_passwd() {
        let e = parse_passwd(PASSWD);
        assert_eq!(e.len(), 6);
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
        let got: Vec<(&str, u32, Vec<&str>)> = parse_group(GROUP)
            .into_iter()
            .map(|g| (g.name, g.gid, g.members))
            .collect();
        assert_eq!(
            got,
            [
                ("root", 0, vec![]),
                ("nobody", 65534, vec![]),
                ("user", 1000, vec!["user"]),
                ("wheel", 10, vec!["root", "user"]),
                ("audio", 29, vec!["www-data", "user"]),
                ("empty", 11, vec![]),
            ]
        );
    }

    #[test]
    fn without_a_group_passwd_gives_the_primary_group_and_group_the_others() {
        assert_eq!(
            run("nobody", None),
            creds(65534, 65534, &[], "/nonexistent")
        );
        assert_eq!(run("65534", None), creds(65534, 65534, &[], "/nonexistent"));
        assert_eq!(run("www-data", None), creds(33, 33, &[29], "/var/www"));
        assert_eq!(
            run("user", None),
            creds(1000, 1000, &[1000, 10, 29], "/home/user")
        );
        assert_eq!(run("nohome", None), creds(5, 6, &[], "/"));
        assert_eq!(run("root", None), creds(0, 0, &[10], "/root"));
    }

    #[test]
    fn an_unknown_uid_gets_gid_0_as_in_runc() {
        assert_eq!(run("7", None), creds(7, 0, &[], "/"));
        assert_eq!(
            resolve("7", None, None, None).unwrap(),
            creds(7, 0, &[], "/")
        );
    }

    #[test]
    fn a_given_group_wins_and_adds_no_supplementary_groups() {
        assert_eq!(
            run("user", Some("wheel")),
            creds(1000, 10, &[], "/home/user")
        );
        assert_eq!(
            run("nobody", Some("0")),
            creds(65534, 0, &[], "/nonexistent")
        );
        assert_eq!(run("7", Some("8")), creds(7, 8, &[], "/"));
        assert_eq!(resolve("0", Some("1000"), None, None).unwrap().gid, 1000);
    }

    #[test]
    fn names_first_then_numbers() {
        assert_eq!(run("42", None).uid, 4242);
        assert_eq!(run("4242", None).uid, 4242);
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = resolve("alice", None, Some(PASSWD), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "user \"alice\" not found in the image's /etc/passwd"
        );
        let e = resolve("alice", None, None, None).unwrap_err();
        assert!(e.to_string().contains("no /etc/passwd"));
        let e = resolve("user", Some("staff"), Some(PASSWD), Some(GROUP)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "group \"staff\" not found in the image's /etc/group"
        );
        assert!(resolve("0", Some("staff"), None, None).is_err());
        assert!(resolve("-1", None, Some(PASSWD), None).is_err());
    }
}
