//! Process-wide work splitting for the kernels. Invariant: `for_each(tasks, f)` and
//! `for_each_chunk_mut` run every task exactly once and return only after all of them finished,
//! whatever splitter is installed; with none installed they run the tasks in order on the
//! caller's thread.
//!
//! The library itself never starts threads (it is `no_std`): a host that has them installs a
//! `Splitter` (the generated crate's `threads` module, or etpkg's runner built for several
//! threads), and the kernels ask `threads()` how many ways an op is worth splitting. Splitting is
//! by disjoint blocks of outputs, each computed exactly as the single-thread code computes it,
//! so results do not depend on the thread count.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Runs `f(0)`, ..., `f(tasks − 1)`, possibly on several threads, and returns when all are done.
/// A splitter that runs a task twice or not at all costs time, never memory safety:
/// `for_each_chunk_mut` hands out each chunk once and runs what is left itself.
pub type Splitter = fn(tasks: usize, f: &(dyn Fn(usize) + Sync));

/// The installed splitter as its address; 0 when none is.
static SPLITTER: AtomicUsize = AtomicUsize::new(0);
/// The installed splitter's thread count, the caller included; 1 when none is.
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Installs `s` (or removes the splitter, with `None`) for the whole process; `threads` is how
/// many threads it runs tasks on, the caller's included (taken as at least 1).
pub fn install(s: Option<Splitter>, threads: usize) {
    match s {
        Some(s) => {
            THREADS.store(threads.max(1), Ordering::Relaxed);
            SPLITTER.store(s as usize, Ordering::Release);
        }
        None => {
            SPLITTER.store(0, Ordering::Release);
            THREADS.store(1, Ordering::Relaxed);
        }
    }
}

/// How many threads the installed splitter runs tasks on; 1 when none is installed.
pub fn threads() -> usize {
    if SPLITTER.load(Ordering::Acquire) == 0 {
        1
    } else {
        THREADS.load(Ordering::Relaxed).max(1)
    }
}

fn installed() -> Option<Splitter> {
    let raw = SPLITTER.load(Ordering::Acquire);
    if raw == 0 {
        return None;
    }
    // SAFETY: the only non-zero values `SPLITTER` ever holds are `Splitter` function pointers
    // cast to `usize` by `install`, and a function pointer round-trips through `usize`
    // unchanged on every target Rust supports (they have the same size there).
    Some(unsafe { core::mem::transmute::<usize, Splitter>(raw) })
}

/// Runs `f(i)` for every `i < tasks`: inline and in order when no splitter is installed or
/// there is at most one task, otherwise through the splitter.
pub fn for_each(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    match installed() {
        Some(split) if tasks > 1 => split(tasks, f),
        _ => (0..tasks).for_each(f),
    }
}

/// Most contiguous ranges a split's blocks are dealt in; past it, threads share ranges.
const MAX_RANGES: usize = 16;

/// Runs `f(i)` once for every block `i < blocks`, dealing the blocks out in contiguous ranges,
/// one per thread: the caller takes the first range and each worker that joins the next one,
/// then a thread that finished its own range takes what is left of the others'. Ops that split
/// the same way in turn thus find their inputs in the cache of the core that wrote them (the
/// first part of a plane stays on one core from layer to layer), which a single shared counter
/// (blocks handed out alternately) lost. Every block is claimed through its range's counter, so
/// it runs exactly once whatever the splitter does; what a splitter left unclaimed runs on the
/// caller before this returns.
fn for_each_block(blocks: usize, f: &(dyn Fn(usize) + Sync)) {
    let ranges = threads().min(blocks).clamp(1, MAX_RANGES);
    let first = |r: usize| r * blocks / ranges;
    let cursors: [AtomicUsize; MAX_RANGES] =
        core::array::from_fn(|r| AtomicUsize::new(if r < ranges { first(r) } else { 0 }));
    let work = |own: usize| {
        for k in 0..ranges {
            let r = (own + k) % ranges;
            let end = first(r + 1);
            loop {
                let i = cursors[r].fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                f(i);
            }
        }
    };
    if ranges > 1 {
        for_each(ranges, &work);
    }
    // Whatever a splitter did not run is claimed here, on the caller.
    work(0);
}

/// The width, a multiple of `align`, of the blocks that `len` columns (or rows) are best cut
/// into for `for_each_col_block_mut` or `for_each_chunk_mut` on the installed threads: among
/// the widths that give each thread 1 to `2·per_thread` blocks, the one whose heaviest
/// contiguous range (see `for_each_block`) is lightest, so that threads finish together, and
/// of those the narrowest, so that a thread the OS runs less leaves blocks to the others.
/// `len` itself (one block) when there is one thread.
pub fn block_width(len: usize, align: usize, per_thread: usize) -> usize {
    let t = threads();
    let align = align.max(1);
    if t <= 1 || len <= align {
        return len.max(1);
    }
    let units = len.div_ceil(align);
    let mut best = (usize::MAX, units);
    for per in 1..=2 * per_thread.max(1) {
        let width = units.div_ceil(t * per).max(1);
        let blocks = units.div_ceil(width);
        let ranges = t.min(blocks).min(MAX_RANGES);
        let heaviest = (0..ranges)
            .map(|r| {
                let (first, end) = (r * blocks / ranges, (r + 1) * blocks / ranges);
                (end * width).min(units) - first * width
            })
            .max()
            .unwrap_or(units);
        if heaviest < best.0 || (heaviest == best.0 && width < best.1) {
            best = (heaviest, width);
        }
    }
    best.1 * align
}

/// Blocks per thread of a split of a feature map's pixels: a thread that finished its own
/// takes the others' last blocks, so a thread the OS (or a busy virtual machine's host) runs
/// less holds up the op by at most one block, an eighth of its share.
const PIXEL_BLOCKS_PER_THREAD: usize = 8;
/// Fewest pixels per thread for a split by pixels: four GEMM tiles' widths (64 columns).
const MIN_PIXELS_PER_THREAD: usize = 4 * 64;

/// The alignment of column blocks of rows `ld` floats long: whole cache lines (16 floats)
/// when rows start on cache lines, so that no line is written by two threads; otherwise rows
/// straddle lines anyway, and groups of 4 balance the threads better.
pub fn column_align(ld: usize) -> usize {
    if ld.is_multiple_of(16) {
        16
    } else {
        4
    }
}

/// The column blocks a `pixels`-wide plane splits into across the installed threads, or `None`
/// when it should split by channels instead: it splits by pixels when each thread gets
/// `MIN_PIXELS_PER_THREAD` of them, in up to `PIXEL_BLOCKS_PER_THREAD` blocks. Every op that
/// splits a feature map by pixels asks here, so consecutive ops cut a plane at the same columns
/// and each thread finds its part in its own cache. Narrower planes (14×14 and below) split
/// channels: cut into two 98-pixel halves, their AVX-512 1×1 convolutions ran partial tiles and
/// shared a cache line per row between the threads, and were slower. (The AVX2 1×1 convolution
/// still splits them by pixels when they have too few channels for two blocks a thread; see
/// `conv::pointwise_simd`.)
pub fn pixel_blocks(pixels: usize) -> Option<usize> {
    let t = threads();
    (t > 1 && pixels >= MIN_PIXELS_PER_THREAD * t)
        .then(|| block_width(pixels, column_align(pixels), PIXEL_BLOCKS_PER_THREAD))
}

/// Rows per block when `rows` rows computed in `align`-row tiles split into at most `tasks`
/// blocks: whole tiles (a partial tile costs as much as a whole one: blocks of 8 rows ran a
/// 6-row and a 2-row GEMM tile, a third of the work wasted), as many a block as balances the
/// installed threads best (see `block_width`). All rows when `tasks` is 1.
pub fn tile_rows(rows: usize, align: usize, tasks: usize) -> usize {
    let align = align.max(1);
    let tiles = rows.div_ceil(align);
    if tasks <= 1 || tiles <= 1 {
        return rows.max(1);
    }
    // At most `tasks` blocks, rounded up to a whole number per thread: three blocks of 8
    // tiles left one of two threads twice the other's work.
    let t = threads();
    let per_thread = (tasks / t).max(1);
    block_width(tiles, 1, per_thread).max(tiles.div_ceil(tasks.next_multiple_of(t))) * align
}

/// The base of a slice shared among tasks that each take a disjoint part of it.
struct Base(*mut f32);

// SAFETY: `Base` is only read to build the sub-slices of one claimed chunk or column block,
// and every one is claimed by exactly one task (see `for_each_chunk_mut` and
// `for_each_col_block_mut`), so no two threads ever reach the same element through it.
unsafe impl Sync for Base {}

/// Runs `f(i, chunk_i)` for every chunk of `data` (`chunk` elements each, the last one shorter),
/// possibly on several threads. Each chunk is claimed through an atomic counter, so it is handed
/// out exactly once even if the splitter calls a task more than once, and what the splitter
/// left unclaimed runs on the caller before this returns.
pub fn for_each_chunk_mut(data: &mut [f32], chunk: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    let chunk = chunk.max(1);
    let len = data.len();
    let tasks = len.div_ceil(chunk);
    if tasks <= 1 || installed().is_none() {
        for (i, c) in data.chunks_mut(chunk).enumerate() {
            f(i, c);
        }
        return;
    }
    let base = Base(data.as_mut_ptr());
    for_each_block(tasks, &|i| {
        // Borrowing the whole `Base` (not its field) keeps the closure `Sync`.
        let base = &base;
        let start = i * chunk;
        let n = chunk.min(len - start);
        // SAFETY: `for_each_block` runs block `i < tasks` exactly once (each block is claimed
        // through one counter that hands out each value once), so `start..start + n` lies
        // inside `data` and no other task touches it; `data` stays mutably borrowed by this
        // function until every block has returned.
        let part = unsafe { core::slice::from_raw_parts_mut(base.0.add(start), n) };
        f(i, part);
    });
}

/// Columns `start..end` of every row of a row-major matrix, handed to one task by
/// `for_each_col_block_mut`; no other task holds any of these columns.
pub struct ColBlock<'a> {
    base: *mut f32,
    ld: usize,
    rows: usize,
    start: usize,
    end: usize,
    _data: core::marker::PhantomData<&'a mut [f32]>,
}

impl ColBlock<'_> {
    /// The first column of the block.
    pub fn start(&self) -> usize {
        self.start
    }

    /// One past the last column of the block.
    pub fn end(&self) -> usize {
        self.end
    }

    /// How many rows the matrix has.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The matrix's row stride.
    pub fn ld(&self) -> usize {
        self.ld
    }

    /// The matrix's first element (row 0, column 0) for kernels that write the block through a
    /// pointer: they may write only columns `start..end` of rows `0..rows` through it, and only
    /// while this `&mut` borrow lasts.
    pub fn as_mut_ptr(&mut self) -> *mut f32 {
        self.base
    }

    /// The block's part of row `r`: columns `start..end`. Panics when `r` is not a row.
    pub fn row(&mut self, r: usize) -> &mut [f32] {
        assert!(
            r < self.rows,
            "par::ColBlock::row: row {r} of {}",
            self.rows
        );
        // SAFETY: `r < rows` and `start <= end <= ld`, so the range lies inside the matrix
        // `for_each_col_block_mut` borrowed mutably; only this block owns columns
        // `start..end`, and the `&mut self` borrow keeps one row of it alive at a time.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.base.add(r * self.ld + self.start),
                self.end - self.start,
            )
        }
    }
}

/// Runs `f(i, block_i)` for every block of `block` columns (the last one narrower) of the
/// row-major matrix `data` with row stride `ld` (its `data.len() / ld` whole rows), possibly on
/// several threads. Like `for_each_chunk_mut`, each block is claimed exactly once and what a
/// splitter leaves unclaimed runs on the caller before this returns.
pub fn for_each_col_block_mut(
    data: &mut [f32],
    ld: usize,
    block: usize,
    f: &(dyn Fn(usize, &mut ColBlock<'_>) + Sync),
) {
    if ld == 0 {
        return;
    }
    let block = block.max(1);
    let rows = data.len() / ld;
    let tasks = ld.div_ceil(block);
    let base = Base(data.as_mut_ptr());
    for_each_block(tasks, &|i| {
        // Borrowing the whole `Base` (not its field) keeps the closure `Sync`.
        let base = &base;
        let start = i * block;
        let mut cols = ColBlock {
            base: base.0,
            ld,
            rows,
            start,
            end: (start + block).min(ld),
            _data: core::marker::PhantomData,
        };
        f(i, &mut cols);
    });
}

/// The job board that a thread pool's splitter and its workers share, so that the generated
/// crate's `std` pool and etpkg's pthread runner differ only in how their threads start, wait and
/// wake. A pool's splitter calls `split`; each worker, whenever `generation()` changes, calls
/// `join`.
pub mod board {
    use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

    /// One split, on the splitting caller's stack.
    struct Job {
        /// The caller's closure with its lifetime erased; alive until `split` returns.
        f: *const (dyn Fn(usize) + Sync + 'static),
        tasks: usize,
        next: AtomicUsize,
        done: AtomicUsize,
    }

    impl Job {
        /// Claims and runs tasks until none is left.
        fn work(&self) {
            loop {
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                if i >= self.tasks {
                    return;
                }
                // SAFETY: `split` keeps the closure alive until every task is done and every
                // worker has left the job.
                unsafe { (*self.f)(i) };
                self.done.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// The current job, or null between splits.
    static JOB: AtomicPtr<Job> = AtomicPtr::new(core::ptr::null_mut());
    /// Workers currently between reading `JOB` and leaving it.
    static IN_JOB: AtomicUsize = AtomicUsize::new(0);
    /// Bumped once per split, so that waiting workers notice a new job.
    static GENERATION: AtomicUsize = AtomicUsize::new(0);
    /// Set while a split runs: a split started inside a task, or by a second thread running
    /// another program, runs its tasks inline instead of waiting for the pool.
    static BUSY: AtomicBool = AtomicBool::new(false);

    /// Changes whenever a job is published; a worker waits for it to differ from what it saw.
    pub fn generation() -> usize {
        GENERATION.load(Ordering::SeqCst)
    }

    /// Runs `f(0)`, ..., `f(tasks − 1)` on the caller and on the workers that `join` meanwhile:
    /// publishes the job, calls `wake` once the generation changed, works on the job, waits
    /// (through `wait`, which returns once its condition holds) until every task is done, then
    /// retracts the job and waits until no worker holds it, so no task outlives `f`.
    pub fn split(
        tasks: usize,
        f: &(dyn Fn(usize) + Sync),
        wake: &dyn Fn(),
        wait: &dyn Fn(&dyn Fn() -> bool),
    ) {
        if BUSY.swap(true, Ordering::Acquire) {
            (0..tasks).for_each(f);
            return;
        }
        // SAFETY: only the lifetime is erased. The job (and so the pointer) is unreachable once
        // this function returns: it clears `JOB` and waits for `IN_JOB` to drop to zero first.
        let f: &'static (dyn Fn(usize) + Sync) = unsafe { core::mem::transmute(f) };
        let job = Job {
            f: f as *const _,
            tasks,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        };
        JOB.store(&job as *const Job as *mut Job, Ordering::SeqCst);
        GENERATION.fetch_add(1, Ordering::SeqCst);
        wake();
        job.work();
        wait(&|| job.done.load(Ordering::Acquire) >= tasks);
        JOB.store(core::ptr::null_mut(), Ordering::SeqCst);
        // A worker that saw the job before it was cleared has registered in `IN_JOB` first.
        wait(&|| IN_JOB.load(Ordering::SeqCst) == 0);
        BUSY.store(false, Ordering::Release);
    }

    /// A worker's turn after it saw a new generation: helps with the current job, if one is
    /// still published.
    pub fn join() {
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
    extern crate std;
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::sync::Mutex;
    use std::vec::Vec;

    /// Tests that install splitters share the process-wide slot, so they run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// A splitter on scoped threads: three threads, tasks dealt round-robin.
    fn scoped(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        std::thread::scope(|s| {
            for t in 0..3 {
                s.spawn(move || (t..tasks).step_by(3).for_each(f));
            }
        });
    }

    /// A broken splitter that runs every task twice, once on each of two threads.
    fn twice(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        std::thread::scope(|s| {
            s.spawn(|| (0..tasks).for_each(f));
            s.spawn(|| (0..tasks).for_each(f));
        });
    }

    /// A broken splitter that runs nothing.
    fn lazy(_: usize, _: &(dyn Fn(usize) + Sync)) {}

    fn counts(tasks: usize) -> Vec<u32> {
        let hits: Vec<AtomicU32> = (0..tasks).map(|_| AtomicU32::new(0)).collect();
        for_each(tasks, &|i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
        });
        hits.iter().map(|h| h.load(Ordering::Relaxed)).collect()
    }

    #[test]
    fn every_task_runs_once_with_and_without_a_splitter() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        install(None, 8);
        assert_eq!(threads(), 1);
        assert_eq!(counts(7), std::vec![1; 7]);
        install(Some(scoped), 3);
        assert_eq!(threads(), 3);
        for tasks in [0, 1, 2, 5, 64] {
            assert_eq!(counts(tasks), std::vec![1; tasks]);
        }
        install(None, 3);
        assert_eq!(threads(), 1);
    }

    /// Fills chunk i with i + 1 and checks every element was written once by the right chunk.
    fn check_chunks(len: usize, chunk: usize) {
        let mut data = std::vec![0f32; len];
        let calls = AtomicU32::new(0);
        for_each_chunk_mut(&mut data, chunk, &|i, part| {
            calls.fetch_add(1, Ordering::Relaxed);
            assert!(part.len() == chunk.max(1) || (i + 1) * chunk.max(1) >= len);
            for v in part.iter_mut() {
                *v += (i + 1) as f32;
            }
        });
        let chunk = chunk.max(1);
        for (j, v) in data.iter().enumerate() {
            assert_eq!(*v, (j / chunk + 1) as f32, "len {len} chunk {chunk} at {j}");
        }
        assert_eq!(calls.load(Ordering::Relaxed) as usize, len.div_ceil(chunk));
    }

    /// Writes `i + 1` into every element of column block i; checks coverage and disjointness.
    fn check_col_blocks(rows: usize, ld: usize, block: usize) {
        let mut data = std::vec![0f32; rows * ld];
        for_each_col_block_mut(&mut data, ld, block, &|i, cols| {
            assert_eq!(cols.start(), i * block.max(1));
            for r in 0..rows {
                for v in cols.row(r).iter_mut() {
                    *v += (i + 1) as f32;
                }
            }
        });
        for (j, v) in data.iter().enumerate() {
            assert_eq!(
                *v,
                ((j % ld) / block.max(1) + 1) as f32,
                "{rows}x{ld} by {block}"
            );
        }
    }

    #[test]
    fn column_blocks_are_disjoint_and_cover_the_matrix() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        for s in [None, Some(scoped as Splitter), Some(twice), Some(lazy)] {
            install(s, 3);
            for (rows, ld, block) in [(0, 4, 2), (3, 10, 4), (5, 16, 16), (7, 9, 1), (2, 5, 0)] {
                check_col_blocks(rows, ld, block);
            }
        }
        install(None, 1);
    }

    /// The heaviest contiguous range (see `for_each_block`) of `len` cut into `width` blocks.
    fn heaviest(len: usize, width: usize, threads: usize) -> usize {
        let blocks = len.div_ceil(width);
        let ranges = threads.min(blocks).min(MAX_RANGES);
        (0..ranges)
            .map(|r| {
                let (first, end) = (r * blocks / ranges, (r + 1) * blocks / ranges);
                (end * width).min(len) - first * width
            })
            .max()
            .unwrap()
    }

    #[test]
    fn block_widths_are_aligned_and_balance_the_threads() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        install(None, 1);
        assert_eq!(block_width(784, 16, 4), 784, "one thread takes one block");
        install(Some(scoped), 2);
        // 28×28 pixels in vectors of 16: 7 blocks of 112 would leave one thread 448 pixels;
        // the chosen width leaves at most one vector more than half.
        let w = block_width(784, 16, 4);
        assert_eq!(w % 16, 0);
        assert!(heaviest(784, w, 2) <= 392 + 16, "width {w}");
        // 14×14 pixels in groups of 4 split nearly evenly (100 and 96).
        let w = block_width(196, 4, 2);
        assert!(heaviest(196, w, 2) <= 100, "width {w}");
        // Rows of a 28-row plane: 14 each.
        assert_eq!(heaviest(28, block_width(28, 1, 4), 2), 14);
        for len in [1, 5, 17, 100, 1000, 12544] {
            for align in [1, 4, 16] {
                let w = block_width(len, align, 4);
                assert!(
                    w >= 1 && (w.is_multiple_of(align) || w == len),
                    "{len} {align}: {w}"
                );
                // Never worse than cutting into equal aligned parts per thread.
                let even = len.div_ceil(2).div_ceil(align) * align;
                assert!(
                    heaviest(len, w, 2) <= heaviest(len, even, 2),
                    "{len} {align}: {w}"
                );
            }
        }
        install(None, 1);
    }

    #[test]
    fn tile_rows_are_whole_tiles_balanced_over_the_threads() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        install(None, 1);
        assert!(
            tile_rows(64, 6, 8) >= 64,
            "one thread takes every row in one block"
        );
        install(Some(scoped), 2);
        assert!(tile_rows(64, 6, 1) >= 64, "one task takes every row");
        // 64 rows are 11 tiles of 6: blocks of whole tiles, at most 8 of them, the busier
        // thread holding 6 tiles (36 rows), where blocks of 8 rows ran 8 tiles a thread.
        let per = tile_rows(64, 6, 8);
        assert_eq!(per % 6, 0, "{per}");
        assert!(64usize.div_ceil(per) <= 8, "{per}");
        assert!(heaviest(64, per, 2) <= 36, "{per}");
        // 24 tiles of 8 channels in at most 3 tasks: rounded to two blocks a thread, not 8 + 16.
        let per = tile_rows(192, 8, 3);
        assert_eq!(per % 8, 0);
        assert_eq!(heaviest(192, per, 2), 96, "{per}");
        install(None, 1);
    }

    #[test]
    fn pixel_blocks_only_for_planes_of_64_columns_a_block() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        install(None, 1);
        assert_eq!(pixel_blocks(12544), None, "one thread");
        install(Some(scoped), 2);
        assert_eq!(pixel_blocks(196), None, "14×14 splits channels");
        let w = pixel_blocks(784).expect("28×28 splits pixels");
        assert_eq!(w % 16, 0, "whole cache lines on 16-aligned rows");
        assert!(heaviest(784, w, 2) <= 400, "{w}");
        install(None, 1);
    }

    #[test]
    fn chunks_are_disjoint_and_cover_the_slice() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        for s in [None, Some(scoped as Splitter), Some(twice), Some(lazy)] {
            install(s, 3);
            for (len, chunk) in [(0, 4), (1, 4), (10, 3), (12, 3), (100, 7), (5, 0), (9, 9)] {
                check_chunks(len, chunk);
            }
        }
        install(None, 1);
    }
}
