//! Capabilities: rkt's default retain set (stage1/init/common/pod.go `appDefaultCapabilities`,
//! the appc ACE default), which is also Docker's and containerd's default set.
//! (`runc spec`/`crun spec` templates keep only AUDIT_WRITE, KILL and NET_BIND_SERVICE.)
//!
//! Raw `capset(2)`, not the `caps` crate: one call sets effective, permitted and
//! inheritable together, so no intermediate state has to satisfy effective ⊆ permitted.

use nix::errno::Errno;

use crate::error::{bail, Context, Result};
use crate::manifest::Isolator;

/// linux/capability.h's names, by number (0..=40).
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub const RETAIN_SET: &str = "os/linux/capabilities-retain-set";
pub const REMOVE_SET: &str = "os/linux/capabilities-remove-set";

/// The mask of a capability isolator's `{"set": [NAME, ...]}`.
fn set_mask(isolator: &Isolator) -> Result<u64> {
    let Some(set) = isolator.value.get("set").and_then(|s| s.as_array()) else {
        bail!("isolator {}: its value has no list \"set\"", isolator.name);
    };
    let mut mask = 0u64;
    for name in set {
        let name = name.as_str().unwrap_or_default();
        match NAMES.iter().position(|n| *n == name) {
            Some(bit) => mask |= 1 << bit,
            None => bail!("isolator {}: unknown capability {name:?}", isolator.name),
        }
    }
    Ok(mask)
}

/// An app's capabilities: its retain set, or the default set less its remove set, or the
/// default set (the appc isolators `os/linux/capabilities-retain-set` and `-remove-set`).
pub fn app_mask(isolators: &[Isolator]) -> Result<u64> {
    let retain = isolators.iter().find(|i| i.name == RETAIN_SET);
    let remove = isolators.iter().find(|i| i.name == REMOVE_SET);
    match (retain, remove) {
        (Some(_), Some(_)) => bail!("{RETAIN_SET} and {REMOVE_SET} cannot both be set for one app"),
        (Some(r), None) => set_mask(r),
        (None, Some(r)) => Ok(retain_mask() & !set_mask(r)?),
        (None, None) => Ok(retain_mask()),
    }
}

/// Capability numbers from linux/capability.h.
pub const RETAIN: [u32; 14] = [
    29, // CAP_AUDIT_WRITE
    0,  // CAP_CHOWN
    1,  // CAP_DAC_OVERRIDE
    4,  // CAP_FSETID
    3,  // CAP_FOWNER
    5,  // CAP_KILL
    27, // CAP_MKNOD
    13, // CAP_NET_RAW
    10, // CAP_NET_BIND_SERVICE
    7,  // CAP_SETUID
    6,  // CAP_SETGID
    8,  // CAP_SETPCAP
    31, // CAP_SETFCAP
    18, // CAP_SYS_CHROOT
];

/// The retain set as the bit mask /proc/PID/status prints (`CapBnd: 00000000a80425fb`).
pub const fn retain_mask() -> u64 {
    let mut mask = 0u64;
    let mut i = 0;
    while i < RETAIN.len() {
        mask |= 1 << RETAIN[i];
        i += 1;
    }
    mask
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Reduces the calling process (still uid 0, full caps) to `mask` (`app_mask`): bounding set,
/// then effective = permitted = mask, inheritable and ambient empty (empty inheritable:
/// runc CVE-2022-29162). Must run before setresuid (dropping the bounding set needs
/// CAP_SETPCAP) and before execve. A later setresuid to a non-zero uid clears permitted and
/// effective, so non-root apps keep only the bounding set, as with rkt and Docker.
pub fn restrict_to(mask: u64) -> Result<()> {
    for cap in 0..64u32 {
        if mask & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r != 0 {
            match Errno::last() {
                // Past the kernel's last capability.
                Errno::EINVAL => break,
                e => return Err(e).ctx(format!("drop capability {cap} from the bounding set")),
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    Errno::result(r).ctx("clear ambient capabilities")?;
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: mask as u32,
            permitted: mask as u32,
            inheritable: 0,
        },
        CapData {
            effective: (mask >> 32) as u32,
            permitted: (mask >> 32) as u32,
            inheritable: 0,
        },
    ];
    // SAFETY: capset reads one header and, for version 3, two data structs; both live
    // on this stack frame and have the kernel's layout (repr(C), u32 fields).
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    Errno::result(r).ctx("capset")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn isolator(name: &str, set: &[&str]) -> Isolator {
        Isolator {
            name: name.into(),
            value: serde_json::json!({ "set": set }),
        }
    }

    #[test]
    fn retain_and_remove_sets() {
        assert_eq!(app_mask(&[]).unwrap(), retain_mask());
        let bind = isolator(RETAIN_SET, &["CAP_NET_BIND_SERVICE"]);
        assert_eq!(app_mask(std::slice::from_ref(&bind)).unwrap(), 1 << 10);
        let chown = isolator(REMOVE_SET, &["CAP_CHOWN", "CAP_SYS_ADMIN"]);
        assert_eq!(
            app_mask(std::slice::from_ref(&chown)).unwrap(),
            retain_mask() & !1
        );
        assert!(app_mask(&[bind, chown]).is_err());
        let e = app_mask(&[isolator(RETAIN_SET, &["CAP_FLY"])]).unwrap_err();
        assert!(
            e.to_string().contains("unknown capability \"CAP_FLY\""),
            "{e}"
        );
        assert_eq!(NAMES[40], "CAP_CHECKPOINT_RESTORE");
    }

    #[test]
    fn retain_mask_is_dockers_default() {
        assert_eq!(retain_mask(), 0xa80425fb);
        assert_eq!(retain_mask().count_ones() as usize, RETAIN.len());
    }
}
