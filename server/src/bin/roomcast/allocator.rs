//! The server's memory allocator: mimalloc 2 (without transparent huge pages), told to give
//! freed pages back to the system at once.
//!
//! Measured in docs/performance.md ("A connection storm"): after 15,000 connections open at
//! once, sit idle and leave, glibc's malloc keeps ~125 MB it no longer uses (8 KB per idle
//! connection while they were there); mimalloc with its defaults keeps its freed pages until a
//! later allocation on the same thread purges them, which an idle server does not make; with a
//! purge delay of 0, and each idle worker collecting its heap, the server returns to within 20%
//! of where it started, at 1.6 KB per idle connection. The library crates pick no allocator:
//! docs/operations.md says what an application embedding roomcast can do.

use std::cell::Cell;
use std::time::{Duration, Instant};

use libmimalloc_sys::mi_option_t;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc 2's `mi_option_purge_delay` (its place in `mi_option_e`; libmimalloc-sys does not
/// name it). The test below checks that it is the option it means to be.
const PURGE_DELAY: mi_option_t = 15;

/// The environment variable by which an operator sets the purge delay instead.
const PURGE_DELAY_VAR: &str = "MIMALLOC_PURGE_DELAY";

/// Purges freed memory at once, unless the operator chose a delay in `MIMALLOC_PURGE_DELAY`
/// (mimalloc reads it at start-up). Call first thing in `main`.
pub(crate) fn configure() {
    if std::env::var_os(PURGE_DELAY_VAR).is_some() {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_set` stores a value in mimalloc's table of options; it takes any option
    // and value, at any time, from any thread. Memory safety does not depend on the value.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// How often an idle worker thread has mimalloc collect its heap, at most.
const COLLECT_EVERY: Duration = Duration::from_secs(1);

/// Called by each tokio worker thread when it parks (has nothing to do): once per
/// [`COLLECT_EVERY`] at most, mimalloc collects the thread's heap, freeing the pages it retired
/// and returning what is free. Without it, pages a storm emptied stay with a thread that stays
/// idle (mimalloc collects on allocation): ~1 MB after 15,000 connections left.
pub(crate) fn on_park() {
    thread_local! {
        static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    let now = Instant::now();
    if LAST.get().is_some_and(|last| now.duration_since(last) < COLLECT_EVERY) {
        return;
    }
    LAST.set(Some(now));
    #[allow(unsafe_code)]
    // SAFETY: `mi_collect` works on the calling thread's own heap (and, forced, the segments
    // other threads abandoned), under mimalloc's own synchronization; it frees no live block.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

/// mimalloc's current value of `option`.
#[cfg(test)]
fn option(option: mi_option_t) -> std::os::raw::c_long {
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_get` only reads mimalloc's table of options.
    unsafe {
        libmimalloc_sys::mi_option_get(option)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Option 15 is `purge_delay` in mimalloc 2: its neighbours hold their documented defaults
    /// (`eager_commit_delay` 1 just before it, `use_numa_nodes` 0 just after), and after
    /// `configure` it is 0.
    #[test]
    fn configure_sets_mimallocs_purge_delay_to_zero() {
        assert_eq!(option(PURGE_DELAY - 1), 1, "eager_commit_delay");
        assert_eq!(option(PURGE_DELAY + 1), 0, "use_numa_nodes");
        if std::env::var_os(PURGE_DELAY_VAR).is_none() {
            assert_eq!(option(PURGE_DELAY), 10, "mimalloc 2's default purge delay");
            configure();
            assert_eq!(option(PURGE_DELAY), 0);
        }
    }
}
