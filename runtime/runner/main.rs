//! etpkg's runner: loads a program, runs it on `.npy` inputs, writes `.npy` outputs and, when
//! asked, times repeated runs. Invariant: it uses only the generated runtime's general API and
//! the C library, so its size is the runtime's plus a few kilobytes of glue.
//!
//! It is `no_std` and `no_main` on purpose: the standard library would add several hundred
//! kilobytes that say nothing about the runtime, and the runner's size is what `etpkg bench`
//! reports as the cost of a deployed model. The C library (always present where etpkg runs)
//! provides files, memory and a clock through the few `extern "C"` functions declared below.
//!
//! Usage: `runner PROGRAM.pte OUT_DIR ITERATIONS WARMUP INPUT.npy...`
//!
//! With `ITERATIONS = 0` it runs once and writes `OUT_DIR/output_<k>.npy`. Otherwise it also
//! runs `WARMUP` untimed and `ITERATIONS` timed runs and prints, one per line on stdout,
//! `run <nanoseconds>` for each run and `op <instruction> <name> <nanoseconds>` for each
//! instruction of each run. Each timed run is followed by an observed one that gives the
//! instructions' times, so the run times carry no per-instruction clock reads.
//!
//! Built with its `threads` feature it also starts `ETPKG_THREADS − 1` pthread workers and
//! splits the kernels' work over them (see `pool`).
#![no_std]
#![no_main]

use core::ffi::{c_char, c_int, c_long, c_void};
use core::fmt::{self, Write};
use rt::exec::{Method, Observer, ALIGN};
use rt::ops::{DType, TensorMeta};
use rt::step::Step;

#[repr(C)]
struct Timespec {
    sec: c_long,
    nsec: c_long,
}

#[link(name = "c")]
extern "C" {
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn read(fd: c_int, buf: *mut c_void, n: usize) -> isize;
    fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
    fn close(fd: c_int) -> c_int;
    fn lseek(fd: c_int, offset: i64, whence: c_int) -> i64;
    fn aligned_alloc(align: usize, size: usize) -> *mut c_void;
    #[cfg(target_os = "linux")]
    fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    fn clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int;
    fn exit(code: c_int) -> !;
}

const O_RDONLY: c_int = 0;
const O_WRONLY_CREAT_TRUNC: c_int = 0o1 | 0o100 | 0o1000;
const SEEK_END: c_int = 2;
const SEEK_SET: c_int = 0;
const CLOCK_MONOTONIC: c_int = 1;
/// The most model inputs the runner takes.
const MAX_INPUTS: usize = 64;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let _ = Out(2).write_str("runner: internal error\n");
    // SAFETY: exit never returns and takes a plain integer.
    unsafe { exit(3) }
}

/// The unwinding personality routine. With `panic = "abort"` nothing unwinds, so nothing calls
/// it, but the prebuilt `compiler_builtins` keeps a reference to the symbol in its unwind
/// tables, which a `no_std` binary must satisfy for the linker.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// A file descriptor that `core::fmt` can write to.
struct Out(c_int);

impl Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_all(self.0, s.as_bytes()).map_err(|_| fmt::Error)
    }
}

fn write_all(fd: c_int, mut b: &[u8]) -> Result<(), ()> {
    while !b.is_empty() {
        // SAFETY: the pointer and length come from a live slice.
        let n = unsafe { write(fd, b.as_ptr().cast(), b.len()) };
        if n <= 0 {
            return Err(());
        }
        b = &b[n as usize..];
    }
    Ok(())
}

fn fail(args: fmt::Arguments<'_>) -> ! {
    let mut e = Out(2);
    let _ = e.write_str("error: ");
    let _ = e.write_fmt(args);
    let _ = e.write_str("\n");
    // SAFETY: exit never returns and takes a plain integer.
    unsafe { exit(1) }
}

/// Buffers from this size up (the program with its weights, and the arena) are backed by
/// transparent huge pages where the OS has them (Linux's `madvise(MADV_HUGEPAGE)`; with THP in
/// its common `madvise` mode, nothing else gets them). With 4 KiB pages, mobilenet_v2's 14 MB
/// of weights span 3,500 pages, more than Zen 3's 2,048-entry L2 TLB covers; in most runs
/// alternating with and without, mobilenet_v2 took 0.85–0.93 of the time at one thread.
const HUGE_PAGE: usize = 2 << 20;
/// `MADV_HUGEPAGE`.
#[cfg(target_os = "linux")]
const MADV_HUGEPAGE: c_int = 14;

/// A zeroed buffer from the C heap, `ALIGN`-aligned (whole huge pages from `HUGE_PAGE` bytes
/// up, on Linux), never freed (the process is short-lived).
fn buffer(len: usize) -> &'static mut [u8] {
    // Only where `madvise` backs it: elsewhere the 2 MB alignment would only waste memory.
    let huge = cfg!(target_os = "linux") && len >= HUGE_PAGE;
    let align = if huge { HUGE_PAGE } else { ALIGN };
    let size = len.div_ceil(align).max(1) * align;
    // SAFETY: aligned_alloc with a size that is a multiple of the alignment; the result is
    // checked for null, zeroed before it is read, and never freed, so the 'static slice stays
    // valid. `madvise` only advises on pages of that allocation; its failure changes nothing.
    unsafe {
        let p = aligned_alloc(align, size) as *mut u8;
        if p.is_null() {
            fail(format_args!("out of memory ({size} bytes)"));
        }
        #[cfg(target_os = "linux")]
        if huge {
            madvise(p.cast(), size, MADV_HUGEPAGE);
        }
        core::ptr::write_bytes(p, 0, size);
        core::slice::from_raw_parts_mut(p, len)
    }
}

/// A NUL-terminated C string as a `&str` (arguments are paths and numbers).
fn arg(p: *const c_char) -> &'static str {
    // SAFETY: argv entries are NUL-terminated strings that live for the whole process.
    let bytes = unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes();
    core::str::from_utf8(bytes).unwrap_or_else(|_| fail(format_args!("an argument is not UTF-8")))
}

/// A path as a NUL-terminated string in a fixed buffer.
struct CPath([u8; 4096]);

impl CPath {
    fn new(parts: &[&str]) -> CPath {
        let mut b = [0u8; 4096];
        let mut at = 0;
        for p in parts {
            if at + p.len() >= b.len() {
                fail(format_args!("path too long"));
            }
            b[at..at + p.len()].copy_from_slice(p.as_bytes());
            at += p.len();
        }
        CPath(b)
    }
}

fn read_file(path: &str) -> &'static mut [u8] {
    let c = CPath::new(&[path]);
    // SAFETY: `c` is NUL-terminated; the descriptor is checked and closed; `read` writes only
    // into the buffer's bounds.
    unsafe {
        let fd = open(c.0.as_ptr().cast(), O_RDONLY);
        if fd < 0 {
            fail(format_args!("{path}: cannot open"));
        }
        let len = lseek(fd, 0, SEEK_END);
        if len < 0 || lseek(fd, 0, SEEK_SET) != 0 {
            fail(format_args!("{path}: cannot read"));
        }
        let buf = buffer(len as usize);
        let mut at = 0;
        while at < buf.len() {
            let n = read(fd, buf[at..].as_mut_ptr().cast(), buf.len() - at);
            if n <= 0 {
                fail(format_args!("{path}: cannot read"));
            }
            at += n as usize;
        }
        close(fd);
        buf
    }
}

fn create_file(dir: &str, name: &str, parts: &[&[u8]]) {
    let c = CPath::new(&[dir, "/", name]);
    // SAFETY: `c` is NUL-terminated; the mode argument is the variadic `mode_t`.
    let fd = unsafe { open(c.0.as_ptr().cast(), O_WRONLY_CREAT_TRUNC, 0o644 as c_int) };
    if fd < 0 {
        fail(format_args!("{dir}/{name}: cannot create"));
    }
    for p in parts {
        if write_all(fd, p).is_err() {
            fail(format_args!("{dir}/{name}: cannot write"));
        }
    }
    // SAFETY: `fd` is a descriptor this function opened.
    unsafe { close(fd) };
}

fn now_ns() -> u64 {
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec.
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut t) };
    t.sec as u64 * 1_000_000_000 + t.nsec as u64
}

fn descr(d: DType) -> &'static str {
    match d {
        DType::F32 => "<f4",
        DType::I64 => "<i8",
        DType::Bool => "|b1",
    }
}

/// The `.npy` (version 1) payload of `bytes`, checked against the input's dtype and shape.
fn npy_payload<'b>(path: &str, bytes: &'b [u8], want: &TensorMeta) -> &'b [u8] {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        fail(format_args!("{path}: not a .npy file"));
    }
    let (start, hlen) = match bytes[6] {
        1 => (10, u16::from_le_bytes([bytes[8], bytes[9]]) as usize + 10),
        2 | 3 if bytes.len() >= 12 => (
            12,
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize + 12,
        ),
        _ => fail(format_args!("{path}: unsupported .npy version")),
    };
    if hlen > bytes.len() {
        fail(format_args!("{path}: truncated header"));
    }
    let header = core::str::from_utf8(&bytes[start..hlen]).unwrap_or("");
    if !contains(header, descr(want.dtype)) || contains(header, "'fortran_order': True") {
        fail(format_args!(
            "{path}: expected a C-ordered array of {}",
            descr(want.dtype)
        ));
    }
    let mut sbuf = Fixed::<128>::new();
    let _ = write!(sbuf, "{}", ShapeText(want));
    if !contains(header, sbuf.as_str()) {
        fail(format_args!(
            "{path}: expected shape {}, the file's header is {header}",
            sbuf.as_str()
        ));
    }
    &bytes[hlen..]
}

/// Whether `needle` occurs in `hay`. A plain window scan: `str::contains` brings in the two-way
/// search (about 2 KB of code), which is too much for the few short patterns of a `.npy` header
/// when the runner's size is what `etpkg bench` reports.
fn contains(hay: &str, needle: &str) -> bool {
    needle.is_empty()
        || hay
            .as_bytes()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

/// `'shape': (d0, d1, ...)` as numpy writes it in a `.npy` header.
struct ShapeText<'m>(&'m TensorMeta);

impl fmt::Display for ShapeText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims = self.0.shape.dims();
        f.write_str("'shape': (")?;
        for (i, d) in dims.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        if dims.len() == 1 {
            f.write_str(",")?;
        }
        f.write_str(")")
    }
}

/// A small text buffer on the stack.
struct Fixed<const N: usize> {
    b: [u8; N],
    len: usize,
}

impl<const N: usize> Fixed<N> {
    fn new() -> Self {
        Fixed { b: [0; N], len: 0 }
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.b[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Write for Fixed<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > N {
            return Err(fmt::Error);
        }
        self.b[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn write_npy(dir: &str, k: usize, meta: &TensorMeta, data: &[u8]) {
    let mut h = Fixed::<256>::new();
    let _ = write!(
        h,
        "{{'descr': '{}', 'fortran_order': False, {}, }}",
        descr(meta.dtype),
        ShapeText(meta)
    );
    // numpy pads the header with spaces so that the data starts on a 64-byte boundary, and
    // ends it with a newline.
    let total = (10 + h.len + 1).div_ceil(64) * 64;
    while 10 + h.len + 1 < total {
        let _ = h.write_str(" ");
    }
    let _ = h.write_str("\n");
    let hl = (h.len as u16).to_le_bytes();
    let pre = [0x93, b'N', b'U', b'M', b'P', b'Y', 1, 0, hl[0], hl[1]];
    let mut name = Fixed::<32>::new();
    let _ = write!(name, "output_{k}.npy");
    create_file(dir, name.as_str(), &[&pre, &h.b[..h.len], data]);
}

/// Records each instruction's time into its slot of this run's row.
struct Timer<'t> {
    start: u64,
    /// This run's slot for each instruction.
    times: &'t mut [u64],
}

impl Observer for Timer<'_> {
    fn before(&mut self, _: usize, _: &Step) {
        self.start = now_ns();
    }
    fn after(&mut self, i: usize, _: &Step) {
        let t = now_ns() - self.start;
        if let Some(slot) = self.times.get_mut(i) {
            *slot = t;
        }
    }
}

fn number(s: &str) -> usize {
    s.parse()
        .unwrap_or_else(|_| fail(format_args!("`{s}` is not a number")))
}

/// A pthread pool behind the kernels' splitter, built only with the runner's `threads`
/// feature (`etpkg bench --threads N`, N > 1), so that the default runner does not carry it.
/// Invariant: a split returns only after every task finished and every worker left the job.
///
/// Its workers spin for the next job, then nap briefly between checks instead of blocking: the
/// runner exists to time programs, and a worker blocked in the OS would add its wake-up latency
/// to every split, while one that spun forever would take the CPU from the program's thread on
/// a busy machine.
#[cfg(feature = "threads")]
mod pool {
    use core::ffi::{c_char, c_int, c_void};
    use rt::kernels::par;

    #[link(name = "pthread")]
    extern "C" {
        fn pthread_create(
            thread: *mut usize,
            attr: *const c_void,
            start: extern "C" fn(*mut c_void) -> *mut c_void,
            arg: *mut c_void,
        ) -> c_int;
        fn getenv(name: *const c_char) -> *const c_char;
        fn sched_yield() -> c_int;
        fn nanosleep(req: *const super::Timespec, rem: *mut super::Timespec) -> c_int;
    }

    /// Pause-spins this many times before each wait starts yielding the CPU between checks:
    /// on a machine with more runnable threads than cores, a pure spinner would take the core
    /// from the very thread it waits for.
    const SPINS: u32 = 1 << 14;

    /// How long an idle worker spins before it naps: longer than the gap between two runs
    /// (reading the output, setting the inputs), so that the first op of a run finds it awake.
    /// With 2048 pause-spins instead (about 25 µs on this machine's cores) the worker napped
    /// between runs and joined the first convolution of each run late.
    const SPIN_NS: u64 = 500_000;

    /// After this long without a job the worker naps `LONG_NAP_NS` between checks instead of
    /// `NAP_NS`: on vit, whose ops never split, 20 µs naps forever made 5 of 8 two-thread
    /// medians take about 73 instead of 50 µs (1 of 8 at one thread); with the long naps, 3 of
    /// 10 at either thread count.
    const LONG_IDLE_NS: u64 = 5_000_000;
    /// The naps, in nanoseconds.
    const NAP_NS: core::ffi::c_long = 20_000;
    const LONG_NAP_NS: core::ffi::c_long = 500_000;

    /// Waits for a new job: spinning for `SPIN_NS` (the next op of a run follows within
    /// microseconds), then napping between checks (`LONG_IDLE_NS`), so that an idle worker
    /// leaves the CPU to the thread running the program. A split does not wait for a napping
    /// worker: the caller claims the tasks the worker has not.
    fn idle(done: impl Fn() -> bool) {
        let start = super::now_ns();
        let mut spins = 0u32;
        while !done() {
            spins = spins.wrapping_add(1);
            // The clock is read once every 64 spins: it costs more than a pause.
            if !spins.is_multiple_of(64) {
                core::hint::spin_loop();
                continue;
            }
            let waited = super::now_ns() - start;
            if waited < SPIN_NS {
                core::hint::spin_loop();
                continue;
            }
            let nap = super::Timespec {
                sec: 0,
                nsec: if waited < LONG_IDLE_NS { NAP_NS } else { LONG_NAP_NS },
            };
            // SAFETY: `nap` is a valid timespec; the remaining time is not wanted.
            unsafe { nanosleep(&nap, core::ptr::null_mut()) };
        }
    }

    /// Waits until `done()` holds: spinning first, then yielding between checks.
    fn wait(done: &dyn Fn() -> bool) {
        let mut spins = 0u32;
        while !done() {
            if spins < SPINS {
                spins += 1;
                core::hint::spin_loop();
            } else {
                // SAFETY: sched_yield takes no arguments and cannot fail in a harmful way.
                unsafe { sched_yield() };
            }
        }
    }

    /// The splitter: the kernels' job board; workers poll it, so there is nothing to wake.
    fn split(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        par::board::split(tasks, f, &|| {}, &|done| wait(done));
    }

    extern "C" fn worker(_: *mut c_void) -> *mut c_void {
        let mut seen = par::board::generation();
        loop {
            idle(|| par::board::generation() != seen);
            seen = par::board::generation();
            par::board::join();
        }
    }

    /// Starts `ETPKG_THREADS − 1` workers (at most 255) and installs the splitter; with the
    /// variable unset or below 2 the kernels stay on the main thread.
    pub fn start() {
        // SAFETY: the name is NUL-terminated; the result is null or a NUL-terminated string.
        let v = unsafe { getenv(c"ETPKG_THREADS".as_ptr()) };
        if v.is_null() {
            return;
        }
        // SAFETY: as above, not null.
        let text = unsafe { core::ffi::CStr::from_ptr(v) }.to_bytes();
        let n = core::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<usize>().ok())
            .unwrap_or(1)
            .clamp(1, 256);
        let mut started = 1;
        while started < n {
            let mut id = 0usize;
            // SAFETY: `worker` matches the start routine's C signature and ignores its argument.
            if unsafe { pthread_create(&mut id, core::ptr::null(), worker, core::ptr::null_mut()) }
                != 0
            {
                break;
            }
            started += 1;
        }
        if started > 1 {
            par::install(Some(split), started);
        }
    }
}

#[no_mangle]
pub extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    #[cfg(feature = "threads")]
    pool::start();
    let argc = argc as usize;
    if argc < 5 {
        fail(format_args!(
            "usage: runner PROGRAM.pte OUT_DIR ITERATIONS WARMUP INPUT.npy..."
        ));
    }
    // SAFETY: argv holds argc valid pointers.
    let argv = unsafe { core::slice::from_raw_parts(argv, argc) };
    let program = arg(argv[1]);
    let out_dir = arg(argv[2]);
    let iterations = number(arg(argv[3]));
    let warmup = number(arg(argv[4]));

    let blob = read_file(program);
    let need = Method::arena_bytes(blob).unwrap_or_else(|e| fail(format_args!("{program}: {e}")));
    let arena = buffer(need);
    let mut m = Method::load(blob, arena).unwrap_or_else(|e| fail(format_args!("{program}: {e}")));

    let given = argc - 5;
    if given != m.inputs() {
        fail(format_args!(
            "{program}: the program takes {} input(s), {given} were given",
            m.inputs()
        ));
    }
    // The inputs' payloads stay loaded: the memory plan may reuse an input's bytes once the
    // program has consumed it, so every run sets its inputs again.
    if given > MAX_INPUTS {
        fail(format_args!("too many inputs"));
    }
    let mut payloads: [&[u8]; MAX_INPUTS] = [&[]; MAX_INPUTS];
    for (k, slot) in payloads.iter_mut().enumerate().take(given) {
        let path = arg(argv[5 + k]);
        let meta = m
            .input_meta(k)
            .unwrap_or_else(|| fail(format_args!("{program}: input {k} is not a tensor")));
        let file = read_file(path);
        *slot = npy_payload(path, file, &meta);
    }
    let payloads = &payloads[..given];
    let set_inputs = |m: &mut Method<'_>| {
        for (k, data) in payloads.iter().enumerate() {
            if let Err(e) = m.set_input(k, data) {
                fail(format_args!("input {k}: {e}"));
            }
        }
    };

    set_inputs(&mut m);
    m.execute()
        .unwrap_or_else(|e| fail(format_args!("{program}: {e}")));
    for k in 0..m.outputs() {
        let meta = m
            .output_meta(k)
            .unwrap_or_else(|| fail(format_args!("{program}: output {k} is not a tensor")));
        let data = m
            .output(k)
            .unwrap_or_else(|e| fail(format_args!("{program}: {e}")));
        write_npy(out_dir, k, &meta, data);
    }

    if iterations > 0 {
        for _ in 0..warmup {
            set_inputs(&mut m);
            m.execute()
                .unwrap_or_else(|e| fail(format_args!("{program}: {e}")));
        }
        let n = m.instructions();
        // One row per run: its plain run's time, then each instruction's observed time.
        let row = n + 1;
        let times = buffer(iterations * row * 8);
        // SAFETY: `buffer` returns ALIGN-aligned, zeroed memory of at least this many bytes,
        // and zero is a valid u64.
        let times: &mut [u64] = unsafe {
            core::slice::from_raw_parts_mut(times.as_mut_ptr().cast(), iterations * row)
        };
        // Nothing is printed until every run is done, so that `etpkg bench` does not wake to
        // read the pipe while a run is timed (in `perf` of a two-thread vit run, its pipe
        // reads and the runner's writes were 7% and 5% of the samples).
        for run in 0..iterations {
            // The run is timed without the observer, whose two clock reads per instruction
            // would otherwise count; the observed run after it gives the per-instruction times.
            set_inputs(&mut m);
            let t0 = now_ns();
            m.execute()
                .unwrap_or_else(|e| fail(format_args!("{program}: {e}")));
            times[run * row] = now_ns() - t0;
            let mut t = Timer {
                start: 0,
                times: &mut times[run * row + 1..(run + 1) * row],
            };
            set_inputs(&mut m);
            m.execute_observed(&mut t)
                .unwrap_or_else(|e| fail(format_args!("{program}: {e}")));
        }
        let mut out = Out(1);
        for run in 0..iterations {
            let _ = writeln!(out, "run {}", times[run * row]);
        }
        for run in 0..iterations {
            for i in 0..n {
                let name = m.instruction_name(i);
                if let Some(name) = name {
                    let _ = writeln!(out, "op {i} {name} {}", times[run * row + 1 + i]);
                }
            }
        }
    }
    0
}
