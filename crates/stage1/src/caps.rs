//! Capabilities: rkt's default retain set (stage1/init/common/pod.go `appDefaultCapabilities`,
//! the appc ACE default), which is also Docker's and containerd's default set.
//! (`runc spec`/`crun spec` templates keep only AUDIT_WRITE, KILL and NET_BIND_SERVICE.)
//!
//! Raw `capset(2)`, not the `caps` crate: one call sets effective, permitted and
//! inheritable together, so no intermediate state has to satisfy effective ⊆ permitted.

use nix::errno::Errno;

use crate::error::{Context, Result};

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

/// Reduces the calling process (still uid 0, full caps) to the retain set: bounding set,
/// then effective = permitted = retain, inheritable and ambient empty (empty inheritable:
/// runc CVE-2022-29162). Must run before setresuid (dropping the bounding set needs
/// CAP_SETPCAP) and before execve. A later setresuid to a non-zero uid clears permitted and
/// effective, so non-root apps keep only the bounding set, as with rkt and Docker.
pub fn restrict_to_retain_set() -> Result<()> {
    let mask = retain_mask();
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

    #[test]
    fn retain_mask_is_dockers_default() {
        assert_eq!(retain_mask(), 0xa80425fb);
        assert_eq!(retain_mask().count_ones() as usize, RETAIN.len());
    }
}
