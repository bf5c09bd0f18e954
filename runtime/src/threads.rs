//! A pool of `std` threads behind the kernels' splitter (`kernels::par`), for crates built with
//! the `std` feature. Invariant: after `set_threads(n)` the installed splitter runs tasks on
//! the caller and at most `n − 1` workers, and every split returns only after all of its tasks
//! finished, so a task never outlives the borrow it was given.
//!
//! Unlike the rest of the runtime this file needs `std` (threads, a condition variable) and
//! allocates when it starts workers; etpkg copies it into a generated crate only under the
//! `std` feature and only when a kept kernel splits work. Executing a program still allocates
//! nothing: a split publishes a job that lives on the caller's stack.
//!
//! The job protocol (publishing a split, claiming tasks, retracting it) is `kernels::par::board`,
//! shared with etpkg's pthread runner. Workers wait for a new job by spinning on the board's
//! generation for a short while (kernels of one program follow each other within
//! microseconds), then sleep on a condition variable.

use super::kernels::par;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The most threads `set_threads` uses, the caller included.
pub const MAX_THREADS: usize = 256;

/// How long a worker spins for the next job before it sleeps: longer than the gap between two
/// inferences of a loop (reading outputs, setting inputs), so that the first op of the next
/// one finds the workers awake; waking a sleeping worker costs tens of microseconds.
const SPIN: Duration = Duration::from_micros(500);

/// Workers asleep on `WAKE` (or about to be).
static SLEEPERS: AtomicUsize = AtomicUsize::new(0);
/// Workers that take jobs: those with an index below it; the others stay asleep.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// How many workers were started; they are never stopped.
static STARTED: Mutex<usize> = Mutex::new(0);
static WAKE: Condvar = Condvar::new();
static WAKE_LOCK: Mutex<()> = Mutex::new(());

/// Runs tasks on up to `n` threads from now on (the caller included; `n` is taken within
/// `1..=MAX_THREADS`). The first call with `n > 1` starts `n − 1` worker threads; a later call
/// with a larger `n` starts more, and one with a smaller `n` leaves the extra workers asleep.
/// `set_threads(1)` makes every kernel run on the caller alone.
pub fn set_threads(n: usize) {
    let n = n.clamp(1, MAX_THREADS);
    if n == 1 {
        par::install(None, 1);
        ACTIVE.store(0, Ordering::SeqCst);
        return;
    }
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    while *started < n - 1 {
        let index = *started;
        let spawned = std::thread::Builder::new()
            .name(std::format!("etpkg-worker-{index}"))
            .spawn(move || worker(index));
        if spawned.is_err() {
            // The system refused another thread: run on the ones there are.
            break;
        }
        *started += 1;
    }
    let workers = (*started).min(n - 1);
    drop(started);
    ACTIVE.store(workers, Ordering::SeqCst);
    if workers == 0 {
        par::install(None, 1);
    } else {
        par::install(Some(split), workers + 1);
    }
}

/// The threads kernels currently split their work over, the caller included.
pub fn threads() -> usize {
    par::threads()
}

/// The installed splitter: the shared job board, with sleeping workers woken and a task's
/// panic on a worker carried back to the caller.
fn split(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    let failed = AtomicBool::new(false);
    let guarded = |i: usize| {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i))).is_err() {
            failed.store(true, Ordering::Relaxed);
        }
    };
    let wake = || {
        if SLEEPERS.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders this notification after a sleeper's check of the
            // generation.
            let _g = WAKE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            WAKE.notify_all();
        }
    };
    par::board::split(tasks, &guarded, &wake, &|done| wait(done));
    if failed.load(Ordering::Relaxed) {
        panic!("a kernel task panicked on a worker thread");
    }
}

/// Waits for the last tasks of a split: spinning first, then yielding the CPU between checks,
/// because on a machine with more runnable threads than cores the thread being waited for may
/// need this core.
fn wait(done: &dyn Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        if spins < 1 << 14 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// A worker's life: wait for a generation change, help with the job if it is active, repeat.
fn worker(index: usize) {
    let mut seen = par::board::generation();
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while par::board::generation() == seen {
            let active = index < ACTIVE.load(Ordering::Relaxed);
            spins = spins.wrapping_add(1);
            if active && (!spins.is_multiple_of(64) || start.elapsed() < SPIN) {
                std::hint::spin_loop();
                continue;
            }
            let mut g = WAKE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            SLEEPERS.fetch_add(1, Ordering::SeqCst);
            while par::board::generation() == seen {
                g = WAKE.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            SLEEPERS.fetch_sub(1, Ordering::SeqCst);
        }
        seen = par::board::generation();
        if index < ACTIVE.load(Ordering::Relaxed) {
            par::board::join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_on_the_pool() {
        set_threads(3);
        assert_eq!(threads(), 3);
        for tasks in [0usize, 1, 2, 3, 17, 200] {
            let hits: std::vec::Vec<AtomicUsize> =
                (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..50 {
                par::for_each(tasks, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 50));
        }
        let mut data = std::vec![0f32; 1000];
        par::for_each_chunk_mut(&mut data, 7, &|i, part| part.fill(i as f32));
        assert!(data.iter().enumerate().all(|(j, v)| *v == (j / 7) as f32));
        set_threads(1);
        assert_eq!(threads(), 1);
    }
}
