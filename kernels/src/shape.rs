//! Shapes, element types and the broadcast row walker that the element-wise, reduction and
//! layout kernels share. Invariant: every offset a walker hands out lies inside the tensor
//! whose shape and strides it was built from.
//!
//! The walker coalesces dimensions before it walks: size-1 dims vanish and neighbouring dims
//! that every operand steps through contiguously merge into one. Same-shape operands thus
//! become one long row, a scalar operand a row with stride 0, and a per-channel operand of an
//! `[N, C, H, W]` output three dims whose innermost row has stride 0 for the channel operand.

// Kernels index several arrays with one loop counter; iterator chains would hide that.
#![allow(clippy::needless_range_loop)]

/// The highest rank a kernel handles; the generator refuses programs with higher ranks.
pub const MAX_RANK: usize = 8;

/// The element types kernels compute with. Bool is stored as one byte holding 0 or 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    I64,
    Bool,
}

/// An element type kernels can move and convert, with PyTorch's conversion rules: float to
/// integer truncates toward zero (saturating, NaN to 0, as Rust's `as` does), anything to bool
/// is `!= 0`, bool to a number is 0 or 1.
pub trait Elem: Copy + PartialEq + Default {
    const DTYPE: DType;
    fn to_f32(self) -> f32;
    fn to_i64(self) -> i64;
    fn to_bool(self) -> bool;
    fn from_f32(v: f32) -> Self;
    fn from_i64(v: i64) -> Self;
    fn from_bool(v: bool) -> Self;
    /// Converts a Python scalar the way PyTorch does (a fill value, a pad value).
    fn from_f64(v: f64) -> Self;
    /// Converts to another element type; after monomorphization this is a single conversion.
    #[inline(always)]
    fn cast<U: Elem>(self) -> U {
        match Self::DTYPE {
            DType::F32 => U::from_f32(self.to_f32()),
            DType::I64 => U::from_i64(self.to_i64()),
            DType::Bool => U::from_bool(self.to_bool()),
        }
    }
}

impl Elem for f32 {
    const DTYPE: DType = DType::F32;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn to_bool(self) -> bool {
        self != 0.0
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn from_bool(v: bool) -> Self {
        v as u8 as f32
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Elem for i64 {
    const DTYPE: DType = DType::I64;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self
    }
    #[inline(always)]
    fn to_bool(self) -> bool {
        self != 0
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v as i64
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v
    }
    #[inline(always)]
    fn from_bool(v: bool) -> Self {
        v as i64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as i64
    }
}

impl Elem for u8 {
    const DTYPE: DType = DType::Bool;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        (self != 0) as u8 as f32
    }
    #[inline(always)]
    fn to_i64(self) -> i64 {
        (self != 0) as i64
    }
    #[inline(always)]
    fn to_bool(self) -> bool {
        self != 0
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        (v != 0.0) as u8
    }
    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        (v != 0) as u8
    }
    #[inline(always)]
    fn from_bool(v: bool) -> Self {
        v as u8
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        (v != 0.0) as u8
    }
}

/// A read-only input of any element type, or `InOut`: the operand lives in the output buffer
/// (the memory planner ran the op in place), has the output's shape and dtype, and is read
/// at each position just before that position is written.
#[derive(Clone, Copy, Debug)]
pub enum Src<'a> {
    F32(&'a [f32]),
    I64(&'a [i64]),
    Bool(&'a [u8]),
    InOut,
}

impl Src<'_> {
    /// The element type, or None for `InOut` (which has the output's).
    pub fn dtype(&self) -> Option<DType> {
        match self {
            Src::F32(_) => Some(DType::F32),
            Src::I64(_) => Some(DType::I64),
            Src::Bool(_) => Some(DType::Bool),
            Src::InOut => None,
        }
    }
}

/// An output buffer of any element type.
#[derive(Debug)]
pub enum Dst<'a> {
    F32(&'a mut [f32]),
    I64(&'a mut [i64]),
    Bool(&'a mut [u8]),
}

impl Dst<'_> {
    pub fn dtype(&self) -> DType {
        match self {
            Dst::F32(_) => DType::F32,
            Dst::I64(_) => DType::I64,
            Dst::Bool(_) => DType::Bool,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Dst::F32(v) => v.len(),
            Dst::I64(v) => v.len(),
            Dst::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A typed operand of a single-dtype kernel: a slice, or the output buffer itself (see
/// [`Src::InOut`]).
#[derive(Clone, Copy, Debug)]
pub enum Operand<'a, T> {
    Slice(&'a [T]),
    InOut,
}

/// A static shape of rank at most [`MAX_RANK`]; dims past `rank` are 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub dims: [usize; MAX_RANK],
    pub rank: usize,
}

impl Shape {
    /// The 0-d shape (one element).
    pub const SCALAR: Shape = Shape {
        dims: [1; MAX_RANK],
        rank: 0,
    };

    /// The shape with these dims, or None when the rank exceeds [`MAX_RANK`].
    pub fn new(dims: &[usize]) -> Option<Shape> {
        if dims.len() > MAX_RANK {
            return None;
        }
        let mut s = Shape::SCALAR;
        s.dims[..dims.len()].copy_from_slice(dims);
        s.rank = dims.len();
        Some(s)
    }

    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    /// Row-major strides in elements (entries past `rank` are 0).
    pub fn strides(&self) -> [usize; MAX_RANK] {
        let mut s = [0; MAX_RANK];
        let mut acc = 1;
        for d in (0..self.rank).rev() {
            s[d] = acc;
            acc *= self.dims[d];
        }
        s
    }
}

/// The right-aligned numpy broadcast of two shapes, or None when they do not broadcast.
pub fn broadcast_shapes(a: &Shape, b: &Shape) -> Option<Shape> {
    let rank = a.rank.max(b.rank);
    let mut out = Shape::SCALAR;
    out.rank = rank;
    for i in 0..rank {
        let da = if i < rank - a.rank {
            1
        } else {
            a.dims[i - (rank - a.rank)]
        };
        let db = if i < rank - b.rank {
            1
        } else {
            b.dims[i - (rank - b.rank)]
        };
        out.dims[i] = if da == 1 {
            db
        } else if db == 1 || db == da {
            da
        } else {
            return None;
        };
    }
    Some(out)
}

/// Strides, indexed by the dims of `to`, that read a contiguous tensor of shape `from`
/// broadcast (right-aligned) to `to`: a stretched size-1 dim or a missing leading dim steps by
/// 0. None when `from` does not broadcast to `to`.
pub fn broadcast_strides(from: &Shape, to: &Shape) -> Option<[usize; MAX_RANK]> {
    if from.rank > to.rank {
        return None;
    }
    let off = to.rank - from.rank;
    let fs = from.strides();
    let mut s = [0; MAX_RANK];
    for i in 0..from.rank {
        let d = from.dims[i];
        if d == to.dims[off + i] {
            s[off + i] = if d == 1 { 0 } else { fs[i] };
        } else if d != 1 {
            return None;
        }
    }
    Some(s)
}

/// A walk over a contiguous output of some shape, with `N` operands read through their own
/// strides, one innermost row at a time.
#[derive(Clone, Copy, Debug)]
pub struct Rows<const N: usize> {
    /// Coalesced dims, outermost first; the last one is the row.
    dims: [usize; MAX_RANK],
    strides: [[usize; MAX_RANK]; N],
    rank: usize,
    empty: bool,
}

impl<const N: usize> Rows<N> {
    /// Builds the walk over `out` with each operand's strides indexed by `out`'s dims.
    pub fn new(out: &Shape, strides: [[usize; MAX_RANK]; N]) -> Rows<N> {
        let mut r = Rows {
            dims: [1; MAX_RANK],
            strides: [[0; MAX_RANK]; N],
            rank: 0,
            empty: out.numel() == 0,
        };
        for d in 0..out.rank {
            let size = out.dims[d];
            if size == 1 {
                continue;
            }
            // Merge into the previous kept dim when every operand steps through both as one.
            if r.rank > 0 {
                let p = r.rank - 1;
                if (0..N).all(|k| r.strides[k][p] == strides[k][d] * size) {
                    r.dims[p] *= size;
                    for k in 0..N {
                        r.strides[k][p] = strides[k][d];
                    }
                    continue;
                }
            }
            r.dims[r.rank] = size;
            for k in 0..N {
                r.strides[k][r.rank] = strides[k][d];
            }
            r.rank += 1;
        }
        r
    }

    /// The length of every row (1 for a 0-d output).
    pub fn row_len(&self) -> usize {
        if self.rank == 0 {
            1
        } else {
            self.dims[self.rank - 1]
        }
    }

    /// Each operand's stride along the row.
    pub fn row_strides(&self) -> [usize; N] {
        let mut s = [0; N];
        if self.rank > 0 {
            for (k, v) in s.iter_mut().enumerate() {
                *v = self.strides[k][self.rank - 1];
            }
        }
        s
    }

    /// The number of coalesced dims (0 for a single-element walk).
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The coalesced dims, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    /// Calls `f(out_offset, operand_offsets)` for the start of every row, in row-major order.
    /// Never calls it for an empty output.
    pub fn for_each_row(&self, mut f: impl FnMut(usize, [usize; N])) {
        if self.empty {
            return;
        }
        let outer = self.rank.saturating_sub(1);
        let row = self.row_len();
        let mut idx = [0usize; MAX_RANK];
        let mut offs = [0usize; N];
        let mut out = 0;
        loop {
            f(out, offs);
            out += row;
            // Advance the outer multi-index like an odometer, keeping offsets incremental.
            let mut d = outer;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                for (k, o) in offs.iter_mut().enumerate() {
                    *o += self.strides[k][d];
                }
                if idx[d] < self.dims[d] {
                    break;
                }
                for (k, o) in offs.iter_mut().enumerate() {
                    *o -= self.strides[k][d] * self.dims[d];
                }
                idx[d] = 0;
            }
        }
    }
}

/// A row-major walk over the multi-indices of a shape without allocation.
#[derive(Clone, Copy, Debug)]
pub struct MultiIndex {
    shape: Shape,
    idx: [usize; MAX_RANK],
    done: bool,
}

impl MultiIndex {
    /// Starts at the all-zero index; an empty shape yields nothing, a 0-d shape one index.
    pub fn new(shape: &Shape) -> MultiIndex {
        MultiIndex {
            shape: *shape,
            idx: [0; MAX_RANK],
            done: shape.numel() == 0,
        }
    }

    /// The current index, or None when the walk is over; then advances.
    pub fn next_index(&mut self) -> Option<[usize; MAX_RANK]> {
        if self.done {
            return None;
        }
        let cur = self.idx;
        let mut d = self.shape.rank;
        loop {
            if d == 0 {
                self.done = true;
                break;
            }
            d -= 1;
            self.idx[d] += 1;
            if self.idx[d] < self.shape.dims[d] {
                break;
            }
            self.idx[d] = 0;
        }
        Some(cur)
    }
}

/// Splits `shape` around `axis` into (outer, len, inner): element `(o, k, n)` sits at flat
/// index `(o · len + k) · inner + n`. The caller guarantees `axis < shape.rank`.
pub fn split_at_axis(shape: &Shape, axis: usize) -> (usize, usize, usize) {
    let d = shape.dims();
    (
        d[..axis].iter().product(),
        d[axis],
        d[axis + 1..].iter().product(),
    )
}

/// The chunk length element-wise kernels convert operands in: long enough to amortize the
/// per-chunk dtype dispatch, short enough for the buffers to live on the stack.
pub const CHUNK: usize = 64;

/// Fills `buf` with elements `base, base + stride, ...` of `src` converted to `T`; an
/// `InOut` operand is read (and converted) from `out_chunk`, the output positions `buf`
/// stands for.
#[inline]
pub fn load<O: Elem, T: Elem>(
    src: &Src<'_>,
    base: usize,
    stride: usize,
    out_chunk: &[O],
    buf: &mut [T],
) {
    match src {
        Src::F32(v) => load_strided(v, base, stride, buf),
        Src::I64(v) => load_strided(v, base, stride, buf),
        Src::Bool(v) => load_strided(v, base, stride, buf),
        Src::InOut => load_strided(out_chunk, 0, 1, buf),
    }
}

#[inline]
fn load_strided<S: Elem, T: Elem>(v: &[S], base: usize, stride: usize, buf: &mut [T]) {
    match stride {
        1 => {
            let n = buf.len();
            for (d, &s) in buf.iter_mut().zip(&v[base..base + n]) {
                *d = s.cast();
            }
        }
        0 => buf.fill(v[base].cast()),
        _ => {
            for (i, d) in buf.iter_mut().enumerate() {
                *d = v[base + i * stride].cast();
            }
        }
    }
}

/// The strides of an operand that broadcasts to `out`; an `InOut` operand has `out`'s own.
/// None when the shape does not broadcast.
pub fn operand_strides(src: &Src<'_>, shape: &Shape, out: &Shape) -> Option<[usize; MAX_RANK]> {
    match src {
        Src::InOut if shape == out => Some(out.strides()),
        Src::InOut => None,
        _ => broadcast_strides(shape, out),
    }
}
