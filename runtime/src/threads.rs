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
//! Workers wait for a new job by spinning on a generation counter for a short while (kernels
//! of one program follow each other within microseconds), then sleep on a condition variable.
//! Tasks are claimed with an atomic counter, and the caller claims them too.

use super::kernels::par;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The most threads `set_threads` uses, the caller included.
pub const MAX_THREADS: usize = 256;

/// How long a worker spins for the next job before it sleeps.
const SPIN: Duration = Duration::from_micros(100);

/// One split: the tasks and how far they got. It lives on the splitting caller's stack.
struct Job {
    /// The caller's closure with its lifetime erased; valid until the caller's `split` returns,
    /// which it does only once no worker can still reach the job (see `split`).
    f: *const (dyn Fn(usize) + Sync + 'static),
    tasks: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    /// Set when a task panicked on a worker; the caller then panics too.
    failed: AtomicBool,
}

impl Job {
    /// Claims and runs tasks until none is left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.tasks {
                return;
            }
            // SAFETY: `f` points to the closure of the `split` call that owns this job, and that
            // call waits for `done == tasks` and for every worker to leave the job before it
            // returns, so the closure is alive here.
            let f = unsafe { &*self.f };
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(i)));
            if ran.is_err() {
                self.failed.store(true, Ordering::Relaxed);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// The current job, or null between splits.
static JOB: AtomicPtr<Job> = AtomicPtr::new(std::ptr::null_mut());
/// Workers currently between reading `JOB` and leaving it.
static IN_JOB: AtomicUsize = AtomicUsize::new(0);
/// Bumped once per split, so that waiting workers notice a new job.
static GENERATION: AtomicUsize = AtomicUsize::new(0);
/// Workers asleep on `WAKE` (or about to be).
static SLEEPERS: AtomicUsize = AtomicUsize::new(0);
/// Workers that take jobs: those with an index below it; the others stay asleep.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// Set while a split runs: a second caller (another thread running another program) runs its
/// tasks inline instead of waiting for the pool.
static BUSY: AtomicBool = AtomicBool::new(false);
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

/// The installed splitter: publishes a job, works on it, and waits until every task is done
/// and no worker still holds the job.
fn split(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    if BUSY.swap(true, Ordering::Acquire) {
        (0..tasks).for_each(f);
        return;
    }
    // SAFETY: only the lifetime is erased. The job (and so the pointer) is unreachable once
    // this function returns: it clears `JOB` and waits for `IN_JOB` to drop to zero first.
    let f: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(f) };
    let job = Job {
        f: f as *const _,
        tasks,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
    };
    JOB.store(&job as *const Job as *mut Job, Ordering::SeqCst);
    GENERATION.fetch_add(1, Ordering::SeqCst);
    if SLEEPERS.load(Ordering::SeqCst) > 0 {
        // Taking the lock orders this notification after a sleeper's check of the generation.
        let _g = WAKE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        WAKE.notify_all();
    }
    job.work();
    wait(|| job.done.load(Ordering::Acquire) >= tasks);
    JOB.store(std::ptr::null_mut(), Ordering::SeqCst);
    // A worker that saw the job before it was cleared has registered in `IN_JOB` first.
    wait(|| IN_JOB.load(Ordering::SeqCst) == 0);
    BUSY.store(false, Ordering::Release);
    if job.failed.load(Ordering::Relaxed) {
        panic!("a kernel task panicked on a worker thread");
    }
}

/// Waits for the last tasks of a split: spinning first, then yielding the CPU between checks,
/// because on a machine with more runnable threads than cores the thread being waited for may
/// need this core.
fn wait(done: impl Fn() -> bool) {
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
    let mut seen = GENERATION.load(Ordering::SeqCst);
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while GENERATION.load(Ordering::SeqCst) == seen {
            let active = index < ACTIVE.load(Ordering::Relaxed);
            spins = spins.wrapping_add(1);
            if active && (!spins.is_multiple_of(64) || start.elapsed() < SPIN) {
                std::hint::spin_loop();
                continue;
            }
            let mut g = WAKE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            SLEEPERS.fetch_add(1, Ordering::SeqCst);
            while GENERATION.load(Ordering::SeqCst) == seen {
                g = WAKE.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            SLEEPERS.fetch_sub(1, Ordering::SeqCst);
        }
        seen = GENERATION.load(Ordering::SeqCst);
        if index >= ACTIVE.load(Ordering::Relaxed) {
            continue;
        }
        IN_JOB.fetch_add(1, Ordering::SeqCst);
        let p = JOB.load(Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: the job's owner clears `JOB` and then waits for `IN_JOB` to reach zero
            // before its stack frame ends; this worker registered in `IN_JOB` before reading a
            // non-null pointer, so the job outlives this use.
            unsafe { &*p }.work();
        }
        IN_JOB.fetch_sub(1, Ordering::SeqCst);
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
