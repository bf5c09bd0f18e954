//! What a kernel variant needs and what it costs. Invariant: every variant of every family is
//! described by exactly one `KernelInfo` in its family's `VARIANTS`, and its shape constraint
//! is the variant's `<name>_accepts` function.

/// A kernel variant as kernel selection sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelInfo {
    /// `<family>.<variant>`, e.g. `conv.depthwise3x3`. The variant's functions are
    /// `<variant>` and `<variant>_accepts` in the family's file.
    pub name: &'static str,
    /// The family file this variant lives in (`conv`, `binary`, ...).
    pub family: &'static str,
    /// Element types it computes (`f32`, `i64`, `bool`).
    pub dtypes: &'static [&'static str],
    /// Target features the device must have (`avx2`, `fma`, `avx512f`, `neon`); empty for
    /// portable code.
    pub isa: &'static [&'static str],
    /// The shape constraint in words, for reports (`any`, `depthwise, 3x3 kernel`).
    pub shape: &'static str,
    /// Speed tier: higher is faster on the shapes it accepts. A family's universal variant is 0.
    pub speed: u8,
    /// Machine code bytes of the variant in a release build for x86_64, measured.
    pub code_bytes: u32,
}
