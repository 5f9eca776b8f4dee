//! Process hardening of the enclave server, applied before any key exists.
//!
//! - No core dumps: `RLIMIT_CORE` 0 and `PR_SET_DUMPABLE` 0 (which also keeps other non-root
//!   processes from attaching a debugger or reading `/proc/<pid>/mem`).
//! - Memory locked (`mlockall(MCL_CURRENT | MCL_FUTURE)`) so that key material is never
//!   written to swap, but only where `RLIMIT_MEMLOCK` is unlimited: with a finite limit,
//!   `MCL_FUTURE` would make later allocations fail once it is reached. A Nitro Enclave has no
//!   swap device, so there this is belt and braces; in dev mode it is usually skipped.
//!
//! Plaintext keys are also zeroized on every path ([`nitro_wallet_eth::PrivateKey`] on drop,
//! KMS plaintexts in `Zeroizing` buffers).

use rustix::mm::{mlockall, MlockAllFlags};
use rustix::process::{
    getrlimit, set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit,
};

/// What [`apply`] achieved, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    /// Core dumps are off (both the limit and the dumpable flag).
    pub no_core_dumps: bool,
    /// Memory is locked; otherwise why not.
    pub memory_locked: Result<(), String>,
}

/// Applies the hardening; never fails the start (each step reports its own result).
pub fn apply() -> Hardening {
    let no_limit = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .is_ok();
    let not_dumpable = set_dumpable_behavior(DumpableBehavior::NotDumpable).is_ok();
    let memory_locked = match getrlimit(Resource::Memlock).current {
        None => mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE)
            .map_err(|e| format!("mlockall: {e}")),
        Some(limit) => Err(format!(
            "RLIMIT_MEMLOCK is {limit} bytes, not unlimited (raise it, e.g. LimitMEMLOCK=infinity)"
        )),
    };
    Hardening {
        no_core_dumps: no_limit && not_dumpable,
        memory_locked,
    }
}
