//! The appc seccomp isolators, `os/linux/seccomp-retain-set` and `-remove-set`:
//! `{"set": ["@group" or "syscall", ...], "errno"?: "EPERM"}`, at most one per app.

use serde_json::Value;

use crate::groups;
use crate::Error;

pub const RETAIN_SET: &str = "os/linux/seccomp-retain-set";
pub const REMOVE_SET: &str = "os/linux/seccomp-remove-set";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Only the set is allowed.
    Retain,
    /// The set is denied, everything else allowed.
    Remove,
}

/// What an app's filter is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// No seccomp isolator: podlog's default deny-list (docs/stage1.md).
    Default,
    /// A retain set with `@appc.io/all`: no filter, as in rkt.
    Unconfined,
    Set {
        mode: Mode,
        /// Syscall names, with the groups expanded (unknown names of a group included:
        /// the compiler skips them).
        syscalls: Vec<String>,
        /// The errno a denied call fails with; None: EPERM (see filter.rs).
        errno: Option<i32>,
    },
}

impl Policy {
    /// The policy of an app's isolators, given as (name, value); other isolators are ignored.
    pub fn from_isolators<'a>(
        isolators: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> Result<Policy, Error> {
        let mut found = None;
        for (name, value) in isolators {
            let mode = match name {
                RETAIN_SET => Mode::Retain,
                REMOVE_SET => Mode::Remove,
                _ => continue,
            };
            if let Some((first, _, _)) = found {
                return Err(Error(format!(
                    "isolators {first} and {name}: an app has at most one seccomp isolator"
                )));
            }
            found = Some((name, mode, value));
        }
        let Some((name, mode, value)) = found else {
            return Ok(Policy::Default);
        };
        let bad = |what: &str| Error(format!("isolator {name}: {what}"));
        let set = value
            .get("set")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("its value has no list \"set\""))?;
        let entries = set
            .iter()
            .map(|e| e.as_str().filter(|s| !s.is_empty()))
            .collect::<Option<Vec<&str>>>()
            .ok_or_else(|| bad("\"set\" must hold non-empty strings"))?;
        if entries.is_empty() {
            return Err(bad("\"set\" is empty"));
        }
        let unknown = crate::unknown_entries(&entries);
        if !unknown.is_empty() {
            return Err(bad(&format!(
                "unknown on this architecture: {}",
                unknown.join(", ")
            )));
        }
        let errno = match value.get("errno") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => {
                Some(errno_by_name(s).ok_or_else(|| bad(&format!("unknown errno {s:?}")))?)
            }
            Some(_) => return Err(bad("\"errno\" must be a string")),
        };
        if entries.contains(&groups::APPC_ALL) {
            return Ok(match mode {
                Mode::Retain => Policy::Unconfined,
                // Everything denied: a retain set of nothing.
                Mode::Remove => Policy::Set {
                    mode: Mode::Retain,
                    syscalls: vec![],
                    errno,
                },
            });
        }
        let syscalls = entries
            .iter()
            .flat_map(|e| match groups::group(e) {
                Some(list) => list.to_vec(),
                None => vec![*e],
            })
            .map(str::to_string)
            .collect();
        Ok(Policy::Set {
            mode,
            syscalls,
            errno,
        })
    }
}

/// An upper-case errno name (`EPERM`, `ENOSYS`, ...) as its number, with the usual aliases.
pub fn errno_by_name(name: &str) -> Option<i32> {
    let name = match name {
        "ENOTSUP" => "EOPNOTSUPP",
        "EWOULDBLOCK" => "EAGAIN",
        "EDEADLOCK" => "EDEADLK",
        n => n,
    };
    if !name.starts_with('E') {
        return None;
    }
    // nix's Errno is an enum of the C names: its Debug output is the name.
    (1..4096).find(|&n| format!("{:?}", nix::errno::Errno::from_raw(n)) == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(name: &str, value: Value) -> Result<Policy, Error> {
        Policy::from_isolators([(name, &value)])
    }

    #[test]
    fn no_isolator_is_the_default() {
        let other = json!(3);
        assert_eq!(
            Policy::from_isolators([("os/linux/oom-score-adj", &other)]),
            Ok(Policy::Default)
        );
    }

    #[test]
    fn groups_are_expanded_and_errno_read() {
        let p = of(
            REMOVE_SET,
            json!({"set": ["mkdir", "@rkt/default-blacklist"], "errno": "ENOSYS"}),
        )
        .unwrap();
        let Policy::Set {
            mode,
            syscalls,
            errno,
        } = p
        else {
            panic!("not a set: {p:?}")
        };
        assert_eq!(mode, Mode::Remove);
        assert_eq!(errno, Some(libc::ENOSYS));
        assert_eq!(syscalls[0], "mkdir");
        assert!(syscalls.iter().any(|s| s == "kexec_load"));
        assert!(
            syscalls.iter().any(|s| s == "vm86old"),
            "kept for the compiler to skip"
        );
        let p = of(RETAIN_SET, json!({"set": ["read"], "errno": ""})).unwrap();
        assert!(matches!(p, Policy::Set { errno: None, .. }));
    }

    #[test]
    fn appc_all() {
        assert_eq!(
            of(RETAIN_SET, json!({"set": ["@appc.io/all"]})),
            Ok(Policy::Unconfined)
        );
        assert_eq!(
            of(
                REMOVE_SET,
                json!({"set": ["@appc.io/all"], "errno": "EPERM"})
            ),
            Ok(Policy::Set {
                mode: Mode::Retain,
                syscalls: vec![],
                errno: Some(libc::EPERM)
            })
        );
    }

    #[test]
    fn refusals() {
        let msg = |r: Result<Policy, Error>| r.unwrap_err().0;
        assert_eq!(
            msg(of(RETAIN_SET, json!({"set": ["read", "nosuchcall", "@rkt/nope"]}))),
            "isolator os/linux/seccomp-retain-set: unknown on this architecture: nosuchcall, @rkt/nope"
        );
        assert!(
            msg(of(RETAIN_SET, json!({"set": ["read"], "errno": "EWHAT"})))
                .ends_with("unknown errno \"EWHAT\"")
        );
        assert!(msg(of(RETAIN_SET, json!({"set": []}))).ends_with("\"set\" is empty"));
        assert!(msg(of(RETAIN_SET, json!({"set": [1]}))).ends_with("non-empty strings"));
        assert!(msg(of(RETAIN_SET, json!(["read"]))).ends_with("has no list \"set\""));
        let v = json!({"set": ["read"]});
        assert!(Policy::from_isolators([(RETAIN_SET, &v), (REMOVE_SET, &v)])
            .unwrap_err()
            .0
            .ends_with("an app has at most one seccomp isolator"));
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_by_name("EPERM"), Some(libc::EPERM));
        assert_eq!(errno_by_name("EACCES"), Some(libc::EACCES));
        assert_eq!(errno_by_name("ENOTSUP"), Some(libc::EOPNOTSUPP));
        assert_eq!(errno_by_name("eperm"), None);
        assert_eq!(errno_by_name("UnknownErrno"), None);
    }
}
