//! How the process uses memory: set once at start by the binary, and by the benches that
//! measure what the daemon costs, so that their figures are the daemon's.

/// Transparent huge pages off, and freed memory given back to the system within 10 ms.
///
/// No transparent huge pages: mimalloc asks for them on its arenas, and a 2 MiB page is
/// resident as a whole however little of it is used. With a thousand sources the idle daemon
/// held 92 MiB with them and 51 MiB without (docs/decisions/0002).
///
/// mimalloc v3 keeps freed pages for a second before it gives them back (`purge_delay`); a
/// daemon that reviews an incident every few seconds then always holds the last second's
/// garbage on top of what it uses: 5 to 8 MiB of the hour-long soak's RSS (BENCHMARKS.md,
/// 2026-12-07). 0 (at once) cost the review 11 % (pages faulted in again for the next one);
/// 10 ms cost nothing measurable. An operator's own `MIMALLOC_PURGE_DELAY` wins.
///
/// mimalloc purges what is due only when some thread allocates; after a burst every worker
/// may go idle with the last 10 ms of freed pages still resident (4.6 MiB more than a delay of
/// 0 in the soak). A sweeper thread asks it once a second to purge what is due.
pub fn configure() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    #[cfg(feature = "mimalloc")]
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        set_purge_delay(PURGE_DELAY_MS);
    }
    #[cfg(feature = "mimalloc")]
    start_sweeper();
}

/// How often the sweeper asks mimalloc to purge freed pages that are due.
#[cfg(feature = "mimalloc")]
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One detached thread for the life of the process; a second call starts none.
#[cfg(feature = "mimalloc")]
fn start_sweeper() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new().name("hindsight-purge".into()).spawn(|| {
            loop {
                std::thread::sleep(SWEEP_EVERY);
                purge_due();
            }
        });
        // Without the thread memory is still purged, only later: not a reason to stop.
        if let Err(error) = spawned {
            tracing::debug!(%error, "memory sweeper not started");
        }
    });
}

#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)]
fn purge_due() {
    // SAFETY: `mi_collect(false)` frees this thread's empty pages and purges the arenas' ranges
    // whose purge delay has passed (program-wide, one thread at a time under mimalloc's own
    // guard); it takes no pointer and is safe to call from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

/// How long freed memory stays resident (see [`configure`]).
#[cfg(feature = "mimalloc")]
const PURGE_DELAY_MS: std::ffi::c_long = 10;

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
    // One test, not several: the option and the sweeper are the process's, and tests of one
    // binary run in one process.
    #[test]
    #[allow(unsafe_code)]
    fn configure_sets_the_purge_delay_and_starts_one_sweeper() {
        // SAFETY: reads mimalloc's option table.
        let get = || unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        // mimalloc v3 documents purge_delay's default as 1000 ms; no other option has it. If a
        // new mimalloc renumbers its options, this fails instead of `configure` setting another.
        let operator: Option<std::ffi::c_long> =
            std::env::var("MIMALLOC_PURGE_DELAY").ok().and_then(|v| v.parse().ok());
        assert_eq!(get(), operator.unwrap_or(1000));
        super::configure();
        super::configure();
        assert_eq!(get(), operator.unwrap_or(super::PURGE_DELAY_MS));
        #[cfg(target_os = "linux")]
        {
            let sweepers = || {
                std::fs::read_dir("/proc/self/task")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|t| {
                        std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "hindsight-purge")
                    })
                    .count()
            };
            // A new thread names itself once it runs: wait for that, then for a second one.
            let named = std::time::Instant::now();
            while sweepers() == 0 && named.elapsed() < std::time::Duration::from_secs(5) {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(sweepers(), 1, "threads named hindsight-purge");
        }
    }
}
