//! How the process uses memory: set once at start by the binary, and by the benches that
//! measure what the daemon costs, so that their figures are the daemon's.

/// Transparent huge pages off, and freed memory given back to the system within 1 ms.
///
/// No transparent huge pages: mimalloc asks for them on its arenas, and a 2 MiB page is
/// resident as a whole however little of it is used. With a thousand sources the idle daemon
/// held 92 MiB with them and 51 MiB without (docs/decisions/0002).
///
/// mimalloc v3 keeps freed pages for a second before it gives them back (`purge_delay`); a
/// daemon that reviews an incident every few seconds then always holds the last second's
/// garbage on top of what it uses: 5 to 8 MiB of the hour-long soak's RSS (BENCHMARKS.md,
/// 2026-12-07). 0 (at once) cost the review 11 % (pages faulted in again for the next one);
/// 10 ms held about 5 MiB more than 0 in the soak; 1 ms holds what 0 holds and costs the
/// review about 5 %. An operator's own `MIMALLOC_PURGE_DELAY` wins.
pub fn configure() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    #[cfg(feature = "mimalloc")]
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        set_purge_delay(PURGE_DELAY_MS);
    }
}

/// How long freed memory stays resident (see [`configure`]).
#[cfg(feature = "mimalloc")]
const PURGE_DELAY_MS: std::ffi::c_long = 1;

/// mimalloc's option `purge_delay`: the 16th in `mi_option_e` (mimalloc.h of v3, the version the
/// `mimalloc` crate builds). The `libmimalloc-sys` bindings do not name it; a test checks it.
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)]
fn set_purge_delay(ms: std::ffi::c_long) {
    // SAFETY: `mi_option_set` only stores the value in mimalloc's option table; mimalloc reads
    // the option each time it decides whether to purge. Valid with or without mimalloc as the
    // global allocator (the library links it either way when the feature is on).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) }
}

#[cfg(all(test, feature = "mimalloc"))]
mod tests {
    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_option_is_the_one_named() {
        // mimalloc v3 documents purge_delay's default as 1000 ms; no other option has it. If a
        // new mimalloc renumbers its options, this fails instead of `configure` setting another.
        // SAFETY: reads mimalloc's option table.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        let expected = std::env::var("MIMALLOC_PURGE_DELAY").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
        assert_eq!(delay, expected);
    }
}
