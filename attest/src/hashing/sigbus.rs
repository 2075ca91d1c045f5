//! Turning SIGBUS from a file truncated under its mapping into an error instead of a crash.
//!
//! Reading a mapped page past the end of a file that another process shrank raises SIGBUS,
//! which ends the process. A process-wide handler (installed once, chaining to the previous
//! one) checks whether the faulting address lies in a mapping registered here; if so, it maps
//! anonymous zero pages over the rest of that mapping, marks it truncated and returns, so the
//! read completes with zeros and the caller reports the file as changed. Faults anywhere else
//! go to the previous handler (Rust's stack-overflow reporter, or the default action).
//! The handler only touches atomics and calls mmap(2).
//!
//! This is the one signal handler a weightgate library installs: it is part of the hashing
//! engine's correctness (mapping files others can change), not process policy, which belongs to
//! the program (docs/decisions.md).

use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const SLOTS: usize = 1024;

struct Slot {
    /// 0 when free; set last when registering, cleared first when releasing.
    start: AtomicUsize,
    len: AtomicUsize,
    claimed: AtomicBool,
    truncated: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    claimed: AtomicBool::new(false),
    truncated: AtomicBool::new(false),
};
static SLOTS_TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
static mut PREVIOUS: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::uninit();

/// A mapping watched for truncation; released on drop.
pub(crate) struct Watch {
    slot: Option<usize>,
}

impl Watch {
    /// Whether a read past the file's end was caught in this mapping.
    pub fn truncated(&self) -> bool {
        self.slot
            .is_some_and(|i| SLOTS_TABLE[i].truncated.load(Ordering::Acquire))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let s = &SLOTS_TABLE[i];
            s.start.store(0, Ordering::Release);
            s.len.store(0, Ordering::Release);
            s.truncated.store(false, Ordering::Release);
            s.claimed.store(false, Ordering::Release);
        }
    }
}

/// Watches `len` bytes of a file mapping at `start`. Without a free slot (more than 1024 files
/// mapped at once) or a handler, the mapping is unwatched and a truncation still crashes.
pub(crate) fn watch(start: *const u8, len: usize) -> Watch {
    INSTALL.call_once(install);
    if !INSTALLED.load(Ordering::Acquire) || len == 0 {
        return Watch { slot: None };
    }
    for (i, s) in SLOTS_TABLE.iter().enumerate() {
        if s.claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            s.truncated.store(false, Ordering::Release);
            s.len.store(len, Ordering::Release);
            s.start.store(start as usize, Ordering::Release);
            return Watch { slot: Some(i) };
        }
    }
    Watch { slot: None }
}

fn install() {
    // SAFETY: sysconf and sigaction with valid pointers; PREVIOUS is written once, here,
    // before the handler that reads it can run.
    unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE);
        if page > 0 {
            PAGE.store(page as usize, Ordering::Release);
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        let previous = &raw mut PREVIOUS;
        if libc::sigaction(libc::SIGBUS, &action, (*previous).as_mut_ptr()) == 0 {
            INSTALLED.store(true, Ordering::Release);
        }
    }
}

extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Acquire);
    for s in &SLOTS_TABLE {
        let start = s.start.load(Ordering::Acquire);
        let len = s.len.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= start + len {
            continue;
        }
        let from = addr & !(page - 1);
        let end = (start + len).div_ceil(page) * page;
        // SAFETY: replaces pages of a read-only file mapping we own (registered above) with
        // anonymous zero pages; mmap is async-signal-safe in practice on Linux.
        let mapped = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped != libc::MAP_FAILED {
            s.truncated.store(true, Ordering::Release);
            return;
        }
    }
    // Not ours: hand over to the previous disposition.
    // SAFETY: PREVIOUS was initialised by `install` before this handler was installed.
    unsafe {
        let previous: *const libc::sigaction = (&raw const PREVIOUS).cast();
        let previous = &*previous;
        let f = previous.sa_sigaction;
        if f == libc::SIG_DFL || f == libc::SIG_IGN {
            // Restore it and return: the faulting access repeats and gets the default action.
            libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut());
        } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(f);
            f(signal, info, context);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(f);
            f(signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_truncated_under_its_mapping_reads_as_zeros_and_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.bin");
        std::fs::write(&p, vec![7u8; 1 << 20]).unwrap();
        let file = std::fs::File::open(&p).unwrap();
        // SAFETY: a private read-only mapping of a file this test owns.
        let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
        let w = watch(map.as_ptr(), map.len());
        assert!(!w.truncated());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(4096)
            .unwrap();
        // Past the new end: would be SIGBUS without the handler.
        let sum: u64 = map.iter().map(|&b| u64::from(b)).sum();
        assert!(w.truncated());
        assert_eq!(sum, 7 * 4096, "pages past the end read as zeros");
        drop(w);
        drop(map);
    }
}
