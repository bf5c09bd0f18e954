//! Reading and writing numpy `.npy` files as interpreter tensors. Invariant: no header number is
//! used to index or allocate until it has been checked against the bytes actually present.
//!
//! Users hand etpkg `.npy` files as model inputs and expected outputs, so the reader treats them
//! as untrusted: every malformed file is an `NpyError` naming the file, never a panic. The writer
//! produces the same bytes as `numpy.save`, so files round-trip through numpy unchanged.

use crate::interp::{Data, Tensor};
use crate::ir::{DType, TensorType};
use std::path::Path;
use thiserror::Error;

/// What went wrong with a `.npy` file. Every message starts with the file's name.
#[derive(Debug, Error)]
pub enum NpyError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: cannot write: {source}")]
    Write {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: not a .npy file: {reason}")]
    NotNpy { file: String, reason: String },
    #[error(
        "{file}: .npy format version {major}.{minor} is not supported (etpkg reads 1.0, 2.0 \
         and 3.0)"
    )]
    Version { file: String, major: u8, minor: u8 },
    #[error("{file}: malformed .npy header: {reason}")]
    Header { file: String, reason: String },
    #[error(
        "{file}: dtype `{descr}` ({name}) is not supported; etpkg reads float32 (`<f4`), int64 \
         (`<i8`) and bool (`|b1`): {fix}"
    )]
    DType {
        file: String,
        descr: String,
        name: String,
        fix: String,
    },
    #[error(
        "{file}: dtype `{descr}` is big-endian; etpkg reads little-endian data only: save it \
         with `.astype('{little}')`"
    )]
    BigEndian {
        file: String,
        descr: String,
        little: String,
    },
    #[error("{file}: shape {shape} has more elements than fit in memory")]
    ShapeOverflow { file: String, shape: String },
    #[error(
        "{file}: {ty} needs {expected} data bytes after the header, but the file has {actual}"
    )]
    DataLength {
        file: String,
        ty: TensorType,
        expected: usize,
        actual: usize,
    },
}

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Headers are padded so that the data starts at a multiple of this many bytes.
const ALIGN: usize = 64;

/// numpy leaves room for the leading dim to grow to this many digits without rewriting the
/// file, by adding spaces to the header.
const GROWTH_DIGITS: usize = 21;

/// Deepest nesting of brackets the header parser follows; real headers nest at most twice, and
/// the limit keeps a hostile header from exhausting the stack.
const MAX_DEPTH: usize = 8;

/// Reads the `.npy` file at `path` into a tensor.
pub fn read(path: &Path) -> Result<Tensor, NpyError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| NpyError::Read {
        file: file.clone(),
        source,
    })?;
    read_bytes(&bytes, &file)
}

/// Parses the contents of a `.npy` file; `name` identifies it in errors.
pub fn read_bytes(bytes: &[u8], name: &str) -> Result<Tensor, NpyError> {
    let file = name.to_string();
    let not_npy = |reason: String| NpyError::NotNpy {
        file: file.clone(),
        reason,
    };
    if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
        return Err(not_npy(format!(
            "the file ends after {} bytes, inside the magic string",
            bytes.len()
        )));
    }
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(not_npy(
            "it does not start with the magic bytes \\x93NUMPY".into(),
        ));
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(&[major, minor]) => (major, minor),
        _ => return Err(not_npy("the file ends inside the version number".into())),
    };
    let len_size = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => return Err(NpyError::Version { file, major, minor }),
    };
    let header_start = 8 + len_size;
    let len_bytes = bytes
        .get(8..header_start)
        .ok_or_else(|| not_npy("the file ends inside the header length".into()))?;
    let header_len = len_bytes
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let rest = &bytes[header_start..];
    if header_len > rest.len() {
        return Err(NpyError::Header {
            file,
            reason: format!(
                "the header length is {header_len} bytes, but only {} bytes follow it",
                rest.len()
            ),
        });
    }
    let (header, data) = rest.split_at(header_len);
    let header = Header::parse(header).map_err(|reason| NpyError::Header {
        file: file.clone(),
        reason,
    })?;
    let dtype = descr_dtype(&header.descr, &file)?;

    let shape_text = || shape_repr(&header.shape);
    let overflow = || NpyError::ShapeOverflow {
        file: file.clone(),
        shape: shape_text(),
    };
    // Even a shape with a 0 dim must have a representable product of its other dims, or strides
    // computed from it downstream would overflow.
    header
        .shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let numel: usize = header.shape.iter().product();
    let expected = numel.checked_mul(dtype.size()).ok_or_else(overflow)?;
    let ty = TensorType::new(dtype, header.shape.clone());
    if data.len() != expected {
        return Err(NpyError::DataLength {
            file,
            ty,
            expected,
            actual: data.len(),
        });
    }
    let tensor = Tensor::from_le_bytes(&ty, data).map_err(|e| NpyError::Header {
        file: file.clone(),
        reason: e.to_string(),
    })?;
    Ok(if header.fortran_order {
        fortran_to_c(tensor)
    } else {
        tensor
    })
}

/// Writes `t` to `path` exactly as `numpy.save` would.
pub fn write(path: &Path, t: &Tensor) -> Result<(), NpyError> {
    std::fs::write(path, to_bytes(t)).map_err(|source| NpyError::Write {
        file: path.display().to_string(),
        source,
    })
}

/// The bytes `numpy.save` writes for `t`: format 1.0 (2.0 if the header outgrows it), C order.
pub fn to_bytes(t: &Tensor) -> Vec<u8> {
    let descr = t.dtype().npy_descr();
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}",
        shape_repr(&t.shape)
    );
    if let Some(first) = t.shape.first() {
        let digits = first.to_string().len();
        header.push_str(&" ".repeat(GROWTH_DIGITS.saturating_sub(digits)));
    }
    // numpy always pads, so an already aligned header gets a whole extra block of spaces.
    let pad_for = |prefix: usize| ALIGN - (prefix + header.len() + 1) % ALIGN;
    let (version, len_size) = if header.len() + 1 + pad_for(10) <= usize::from(u16::MAX) {
        (1u8, 2)
    } else {
        (2u8, 4)
    };
    let pad = pad_for(8 + len_size);
    let total_header = header.len() + pad + 1;
    let data = t.to_le_bytes();

    let mut out = Vec::with_capacity(8 + len_size + total_header + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    out.extend_from_slice(&total_header.to_le_bytes()[..len_size]);
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + pad, b' ');
    out.push(b'\n');
    out.extend_from_slice(&data);
    out
}

/// Python's `repr` of a shape tuple: `()`, `(5,)`, `(2, 3)`.
fn shape_repr(shape: &[usize]) -> String {
    match shape {
        [] => "()".into(),
        [d] => format!("({d},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// Maps a numpy `descr` onto the interpreter's dtypes, or says how to convert the array.
fn descr_dtype(descr: &str, file: &str) -> Result<DType, NpyError> {
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    // For one-byte types the byte order is meaningless and numpy writes `|`.
    let supported = match code {
        "f4" => Some(DType::F32),
        "i8" => Some(DType::I64),
        "b1" | "?" => Some(DType::Bool),
        _ => None,
    };
    match supported {
        Some(d) if d.size() == 1 || order == '<' || order == '|' => Ok(d),
        Some(_) if order == '>' => Err(NpyError::BigEndian {
            file: file.to_string(),
            descr: descr.to_string(),
            little: format!("<{code}"),
        }),
        // `=` means the byte order of the machine that wrote the file, which cannot be known.
        Some(_) => Err(NpyError::Header {
            file: file.to_string(),
            reason: format!(
                "dtype `{descr}` does not say its byte order; save it with an explicit `<`"
            ),
        }),
        None => {
            let (name, fix) = describe_descr(code);
            Err(NpyError::DType {
                file: file.to_string(),
                descr: descr.to_string(),
                name,
                fix,
            })
        }
    }
}

/// A readable name for a numpy type code, and how to save the array in a supported dtype.
fn describe_descr(code: &str) -> (String, String) {
    let kind = code.chars().next().unwrap_or(' ');
    let bits = code[kind.len_utf8().min(code.len())..]
        .parse::<usize>()
        .ok()
        .map(|bytes| bytes * 8);
    let name = match (kind, bits) {
        ('f', Some(b)) => format!("float{b}"),
        ('i', Some(b)) => format!("int{b}"),
        ('u', Some(b)) => format!("uint{b}"),
        ('c', Some(b)) => format!("complex{b}"),
        ('b', Some(b)) => format!("bool{b}"),
        ('U', _) => "unicode string".into(),
        ('S', _) => "byte string".into(),
        ('O', _) => "Python objects".into(),
        ('V', _) => "raw bytes".into(),
        ('M', _) => "datetime".into(),
        ('m', _) => "timedelta".into(),
        _ => "unknown".into(),
    };
    let fix = match kind {
        'f' | 'c' => "save it with `.astype(np.float32)`".into(),
        'i' | 'u' => "save it with `.astype(np.int64)`".into(),
        'b' => "save it with `.astype(np.bool_)`".into(),
        _ => "convert it to float32, int64 or bool before saving".into(),
    };
    (name, fix)
}

/// Reorders Fortran-order (column-major) elements into C order.
fn fortran_to_c(t: Tensor) -> Tensor {
    fn reorder<T: Copy>(v: &[T], shape: &[usize]) -> Vec<T> {
        // The element at C multi-index (i0, i1, ...) sits at i0 + i1·d0 + i2·d0·d1 + ... in
        // Fortran order. Walk the C order with an odometer and track that offset incrementally.
        let mut fstride = vec![1usize; shape.len()];
        for i in 1..shape.len() {
            fstride[i] = fstride[i - 1] * shape[i - 1];
        }
        let mut index = vec![0usize; shape.len()];
        let mut offset = 0usize;
        let mut out = Vec::with_capacity(v.len());
        for _ in 0..v.len() {
            out.push(v[offset]);
            for d in (0..shape.len()).rev() {
                index[d] += 1;
                offset += fstride[d];
                if index[d] < shape[d] {
                    break;
                }
                offset -= fstride[d] * shape[d];
                index[d] = 0;
            }
        }
        out
    }
    let data = match &t.data {
        Data::F32(v) => Data::F32(reorder(v, &t.shape)),
        Data::I64(v) => Data::I64(reorder(v, &t.shape)),
        Data::Bool(v) => Data::Bool(reorder(v, &t.shape)),
    };
    Tensor {
        shape: t.shape,
        data,
    }
}

/// The three fields of a `.npy` header.
#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// A Python literal, as far as `.npy` headers use them.
#[derive(Debug, PartialEq)]
enum Lit {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

impl Lit {
    fn kind(&self) -> &'static str {
        match self {
            Lit::Str(_) => "a string",
            Lit::Int(_) => "an integer",
            Lit::Bool(_) => "a bool",
            Lit::None => "None",
            Lit::Tuple(_) => "a tuple",
            Lit::List(_) => "a list",
            Lit::Dict(_) => "a dict",
        }
    }
}

impl Header {
    /// Parses the header text (a Python dict literal followed by padding).
    fn parse(raw: &[u8]) -> Result<Header, String> {
        let text = std::str::from_utf8(raw).map_err(|e| {
            format!(
                "it is not valid UTF-8 (byte {} is invalid)",
                e.valid_up_to()
            )
        })?;
        let mut p = Parser { s: text, pos: 0 };
        let lit = p.value(0)?;
        p.skip_ws();
        if p.pos != text.len() {
            return Err(format!("unexpected text after the dict at byte {}", p.pos));
        }
        let Lit::Dict(entries) = lit else {
            return Err(format!("it is {}, not a dict", lit.kind()));
        };
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        for (key, value) in entries {
            let Lit::Str(key) = key else {
                return Err(format!("a key is {}, not a string", key.kind()));
            };
            let slot = match key.as_str() {
                "descr" => &mut descr,
                "fortran_order" => &mut fortran_order,
                "shape" => &mut shape,
                _ => return Err(format!("unexpected key '{key}'")),
            };
            if slot.replace(value).is_some() {
                return Err(format!("key '{key}' appears twice"));
            }
        }
        let missing = |k: &str| format!("key '{k}' is missing");
        let descr = match descr.ok_or_else(|| missing("descr"))? {
            Lit::Str(s) => s,
            Lit::List(_) => {
                return Err("structured dtypes (a list of fields) are not supported".into())
            }
            other => return Err(format!("'descr' is {}, not a string", other.kind())),
        };
        let fortran_order = match fortran_order.ok_or_else(|| missing("fortran_order"))? {
            Lit::Bool(b) => b,
            other => return Err(format!("'fortran_order' is {}, not a bool", other.kind())),
        };
        let shape = match shape.ok_or_else(|| missing("shape"))? {
            Lit::Tuple(items) => items
                .into_iter()
                .map(|item| match item {
                    Lit::Int(n) => usize::try_from(n)
                        .map_err(|_| format!("shape entry {n} is not a valid size")),
                    other => Err(format!("a shape entry is {}, not an integer", other.kind())),
                })
                .collect::<Result<Vec<usize>, String>>()?,
            other => return Err(format!("'shape' is {}, not a tuple", other.kind())),
        };
        Ok(Header {
            descr,
            fortran_order,
            shape,
        })
    }
}

/// A recursive-descent parser for the Python literals in `.npy` headers.
struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Lit, String> {
        if depth > MAX_DEPTH {
            return Err(format!("brackets nest deeper than {MAX_DEPTH} levels"));
        }
        self.skip_ws();
        match self.peek() {
            None => Err("it ends where a value should be".into()),
            Some(q @ (b'\'' | b'"')) => self.string(q),
            Some(b'(') => self.sequence(b')', depth).map(|(items, trailing_comma)| {
                // `(x)` is just x in Python; only `(x,)` is a one-element tuple.
                if items.len() == 1 && !trailing_comma {
                    items.into_iter().next().expect("length checked")
                } else {
                    Lit::Tuple(items)
                }
            }),
            Some(b'[') => self
                .sequence(b']', depth)
                .map(|(items, _)| Lit::List(items)),
            Some(b'{') => self.dict(depth),
            Some(b'-' | b'0'..=b'9') => self.int(),
            Some(_) => self.word(),
        }
    }

    fn string(&mut self, quote: u8) -> Result<Lit, String> {
        let start = self.pos + 1;
        let len = self.s[start..]
            .bytes()
            .position(|b| b == quote || b == b'\\')
            .ok_or_else(|| format!("the string starting at byte {} is not closed", self.pos))?;
        let end = start + len;
        if self.s.as_bytes()[end] == b'\\' {
            return Err(format!("escape sequences (byte {end}) are not supported"));
        }
        self.pos = end + 1;
        Ok(Lit::Str(self.s[start..end].to_string()))
    }

    fn int(&mut self) -> Result<Lit, String> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut value: i128 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(c - b'0')))
                .ok_or_else(|| format!("the integer at byte {start} is too large"))?;
            self.pos += 1;
        }
        if self.pos == digits_start {
            return Err(format!("expected a digit at byte {}", self.pos));
        }
        // Python 2 wrote long integers with an `L` suffix.
        if matches!(self.peek(), Some(b'L' | b'l')) {
            self.pos += 1;
        }
        Ok(Lit::Int(if negative { -value } else { value }))
    }

    fn word(&mut self) -> Result<Lit, String> {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'0'..=b'9')
        ) {
            self.pos += 1;
        }
        match &self.s[start..self.pos] {
            "True" => Ok(Lit::Bool(true)),
            "False" => Ok(Lit::Bool(false)),
            "None" => Ok(Lit::None),
            "" => Err(format!("unexpected character at byte {start}")),
            w => Err(format!("unexpected name `{w}` at byte {start}")),
        }
    }

    /// Parses comma-separated values up to `close`; also reports whether a comma came last.
    fn sequence(&mut self, close: u8, depth: usize) -> Result<(Vec<Lit>, bool), String> {
        self.pos += 1;
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, trailing_comma));
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    trailing_comma = true;
                }
                Some(c) if c == close => trailing_comma = false,
                _ => {
                    return Err(format!(
                        "expected `,` or `{}` at byte {}",
                        close as char, self.pos
                    ))
                }
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Lit, String> {
        self.pos += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(Lit::Dict(entries));
            }
            let key = self.value(depth + 1)?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(format!(
                    "expected `:` after a dict key at byte {}",
                    self.pos
                ));
            }
            self.pos += 1;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected `,` or `}}` at byte {}", self.pos)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of a fixture that numpy wrote (see `tests/fixtures/npy`).
    macro_rules! fixture {
        ($name:literal) => {
            &include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/npy/",
                $name,
                ".npy"
            ))[..]
        };
    }

    /// The tensors the numpy-written fixtures hold, with their fixture bytes.
    fn fixtures() -> Vec<(&'static str, &'static [u8], Tensor)> {
        vec![
            ("f32_0d", fixture!("f32_0d"), Tensor::f32(vec![], vec![1.5])),
            (
                "f32_1d",
                fixture!("f32_1d"),
                Tensor::f32(vec![5], vec![-1.0, 0.5, 2.25, -0.0, 3e38]),
            ),
            (
                "f32_3d",
                fixture!("f32_3d"),
                Tensor::f32(vec![2, 1, 3], vec![-0.5, -0.25, 0.0, 0.25, 0.5, 0.75]),
            ),
            ("i64_0d", fixture!("i64_0d"), Tensor::i64(vec![], vec![-7])),
            (
                "i64_1d",
                fixture!("i64_1d"),
                Tensor::i64(vec![5], vec![0, 1, -1, 1 << 62, i64::MIN]),
            ),
            (
                "i64_3d",
                fixture!("i64_3d"),
                Tensor::i64(vec![2, 1, 3], vec![-3, -2, -1, 0, 1, 2]),
            ),
            (
                "bool_0d",
                fixture!("bool_0d"),
                Tensor::bool(vec![], vec![true]),
            ),
            (
                "bool_1d",
                fixture!("bool_1d"),
                Tensor::bool(vec![5], vec![true, false, false, true, true]),
            ),
            (
                "bool_3d",
                fixture!("bool_3d"),
                Tensor::bool(vec![2, 1, 3], vec![true, false, true, true, false, false]),
            ),
            // A header that is already 64-aligned: numpy still pads it by a whole block.
            (
                "f32_pad_boundary",
                fixture!("f32_pad_boundary"),
                Tensor::f32(vec![0, 1000, 100, 100, 100, 100, 100, 100, 100], vec![]),
            ),
        ]
    }

    #[test]
    fn writes_exactly_what_numpy_writes() {
        for (name, bytes, t) in fixtures() {
            let ours = to_bytes(&t);
            assert_eq!(
                ours,
                bytes,
                "{name}: ours {:?} vs numpy {:?}",
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn reads_what_numpy_writes() {
        for (name, bytes, t) in fixtures() {
            let got = read_bytes(bytes, name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got, t, "{name}");
            // Equality treats -0.0 as 0.0; the bytes do not.
            assert_eq!(got.to_le_bytes(), t.to_le_bytes(), "{name}");
        }
    }

    #[test]
    fn reads_fortran_order_and_later_versions() {
        let t = read_bytes(fixture!("f32_fortran"), "f32_fortran.npy").unwrap();
        assert_eq!(
            t,
            Tensor::f32(vec![2, 3], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
        );
        let t = read_bytes(fixture!("i64_v2"), "i64_v2.npy").unwrap();
        assert_eq!(t, Tensor::i64(vec![2, 2], vec![0, 1, 2, 3]));
        let t = read_bytes(fixture!("bool_v3"), "bool_v3.npy").unwrap();
        assert_eq!(t, Tensor::bool(vec![3], vec![false, true, true]));
    }

    #[test]
    fn fortran_reorder_of_rank_3() {
        // Column-major [2, 3, 2]: element (i, j, k) is stored at i + 2j + 6k.
        let shape = vec![2, 3, 2];
        let mut fortran = vec![0i64; 12];
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..2 {
                    fortran[i + 2 * j + 6 * k] = (100 * i + 10 * j + k) as i64;
                }
            }
        }
        let c = fortran_to_c(Tensor::i64(shape.clone(), fortran));
        let want: Vec<i64> = (0..2)
            .flat_map(|i| (0..3).flat_map(move |j| (0..2).map(move |k| 100 * i + 10 * j + k)))
            .collect();
        assert_eq!(c, Tensor::i64(shape, want));
    }

    /// A unique path in the system temp dir, so parallel tests do not collide.
    fn temp_path(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("etpkg-npy-{}-{tag}.npy", std::process::id()))
    }

    #[test]
    fn round_trips_through_files() {
        let cases = vec![
            Tensor::f32(
                vec![2, 2],
                vec![f32::NAN, f32::INFINITY, -0.0, f32::MIN_POSITIVE],
            ),
            Tensor::f32(vec![0], vec![]),
            Tensor::i64(vec![2, 0, 3], vec![]),
            Tensor::i64(vec![1], vec![i64::MAX]),
            Tensor::bool(vec![3, 1], vec![false, true, false]),
            Tensor::f32((1..=7).collect(), vec![0.5; 5040]),
        ];
        for (i, t) in cases.into_iter().enumerate() {
            let path = temp_path(&format!("round-trip-{i}"));
            write(&path, &t).unwrap();
            let back = read(&path);
            std::fs::remove_file(&path).unwrap();
            let back = back.unwrap();
            assert_eq!(back.shape, t.shape);
            assert_eq!(back.dtype(), t.dtype());
            assert_eq!(back.to_le_bytes(), t.to_le_bytes());
            let bytes = to_bytes(&t);
            let header_end = bytes.len() - t.to_le_bytes().len();
            assert_eq!(header_end % ALIGN, 0, "data of case {i} is not aligned");
        }
    }

    #[test]
    fn io_errors_name_the_file() {
        let missing = temp_path("does-not-exist");
        let err = read(&missing).unwrap_err();
        assert!(matches!(err, NpyError::Read { .. }));
        assert!(err.to_string().starts_with(&missing.display().to_string()));

        let bad_dir = temp_path("no-such-dir").join("out.npy");
        let err = write(&bad_dir, &Tensor::f32(vec![], vec![1.0])).unwrap_err();
        assert!(matches!(err, NpyError::Write { .. }));
        assert!(err.to_string().contains(&bad_dir.display().to_string()));
    }

    #[test]
    fn unsupported_dtypes_say_how_to_fix() {
        let msg = read_bytes(fixture!("f64_1d"), "f64_1d.npy")
            .unwrap_err()
            .to_string();
        for needle in [
            "f64_1d.npy",
            "`<f8` (float64)",
            "save it with `.astype(np.float32)`",
        ] {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
        let msg = read_bytes(fixture!("f32_be"), "f32_be.npy")
            .unwrap_err()
            .to_string();
        for needle in ["f32_be.npy", "`>f4` is big-endian", ".astype('<f4')"] {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
        let cases = [
            ("<i4", "`<i4` (int32)", "`.astype(np.int64)`"),
            ("|u1", "`|u1` (uint8)", "`.astype(np.int64)`"),
            ("<f2", "`<f2` (float16)", "`.astype(np.float32)`"),
            ("<c8", "`<c8` (complex64)", "`.astype(np.float32)`"),
            (
                "<U3",
                "`<U3` (unicode string)",
                "convert it to float32, int64 or bool",
            ),
            ("|O", "`|O` (Python objects)", "convert it"),
            (">i8", "`>i8` is big-endian", ".astype('<i8')"),
            ("", "`` (unknown)", "convert it"),
        ];
        for (descr, what, fix) in cases {
            let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}");
            let msg = read_bytes(&npy(1, header.as_bytes(), &[0; 8]), "t.npy")
                .unwrap_err()
                .to_string();
            assert!(msg.starts_with("t.npy: "), "{msg:?}");
            assert!(msg.contains(what), "{msg:?} lacks {what:?}");
            assert!(msg.contains(fix), "{msg:?} lacks {fix:?}");
        }
    }

    /// Builds a `.npy` file of format `major`.0 around an arbitrary header and data.
    fn npy(major: u8, header: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[major, 0]);
        if major == 1 {
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header);
        out.extend_from_slice(data);
        out
    }

    /// An f32 file whose header is `{'descr': '<f4', 'fortran_order': False, 'shape': SHAPE}`.
    fn f32_npy(shape: &str, data: &[u8]) -> Vec<u8> {
        let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}\n");
        npy(1, header.as_bytes(), data)
    }

    #[test]
    fn tolerates_what_numpy_accepts() {
        let cases: Vec<(Vec<u8>, Tensor)> = vec![
            (
                f32_npy("(2,)", &[0, 0, 128, 63, 0, 0, 0, 64]),
                Tensor::f32(vec![2], vec![1.0, 2.0]),
            ),
            // Python 2 wrote long integers with an `L`.
            (
                f32_npy("(1L,)", &[0, 0, 128, 63]),
                Tensor::f32(vec![1], vec![1.0]),
            ),
            (
                npy(
                    1,
                    br#"{"shape": (1, 1), "fortran_order": True, "descr": "<b1"}"#,
                    &[1],
                ),
                Tensor::bool(vec![1, 1], vec![true]),
            ),
            (
                npy(
                    3,
                    "{'descr':'<i8','fortran_order':False,'shape':()}".as_bytes(),
                    &[5, 0, 0, 0, 0, 0, 0, 0],
                ),
                Tensor::i64(vec![], vec![5]),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(read_bytes(&bytes, "ok.npy").unwrap(), want);
        }
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        let valid = fixture!("f32_1d");
        let mut bad_magic = valid.to_vec();
        bad_magic[1] = b'X';
        let mut v4 = valid.to_vec();
        v4[6] = 4;
        let mut v11 = valid.to_vec();
        v11[7] = 1;
        let mut long_header = valid.to_vec();
        long_header[8..10].copy_from_slice(&500u16.to_le_bytes());
        let mut v2_huge = MAGIC.to_vec();
        v2_huge.extend_from_slice(&[2, 0, 0xff, 0xff, 0xff, 0xff, b'{']);
        let deep = format!("{}1{}", "(".repeat(100), ",)".repeat(100));
        let four = [0u8; 4];
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "empty",
                vec![],
                "ends after 0 bytes, inside the magic string",
            ),
            ("cut magic", b"\x93NUM".to_vec(), "inside the magic string"),
            (
                "bad magic",
                bad_magic,
                "does not start with the magic bytes",
            ),
            ("no version", MAGIC.to_vec(), "inside the version number"),
            (
                "half version",
                [&MAGIC[..], &[1]].concat(),
                "inside the version number",
            ),
            (
                "no length",
                [&MAGIC[..], &[1, 0, 5]].concat(),
                "inside the header length",
            ),
            ("version 4", v4, "version 4.0 is not supported"),
            ("version 1.1", v11, "version 1.1 is not supported"),
            (
                "long header",
                long_header,
                "header length is 500 bytes, but only",
            ),
            (
                "huge v2 header",
                v2_huge,
                "header length is 4294967295 bytes, but only 1",
            ),
            (
                "not a dict",
                npy(1, b"[1, 2]", &[]),
                "it is a list, not a dict",
            ),
            (
                "empty header",
                npy(1, b"   ", &[]),
                "ends where a value should be",
            ),
            (
                "no shape",
                npy(1, b"{'descr': '<f4', 'fortran_order': False}", &[]),
                "key 'shape' is missing",
            ),
            (
                "extra key",
                npy(
                    1,
                    b"{'descr': '<f4', 'fortran_order': False, 'shape': (), 'extra': 1}",
                    &four,
                ),
                "unexpected key 'extra'",
            ),
            (
                "duplicate key",
                npy(
                    1,
                    b"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",
                    &four,
                ),
                "key 'descr' appears twice",
            ),
            (
                "int key",
                npy(1, b"{1: 2}", &[]),
                "a key is an integer, not a string",
            ),
            (
                "non-UTF-8",
                npy(
                    1,
                    b"{'descr': '<f4\xff', 'fortran_order': False, 'shape': ()}",
                    &four,
                ),
                "not valid UTF-8 (byte 14 is invalid)",
            ),
            (
                "product overflow",
                f32_npy("(4294967296, 4294967296, 4294967296)", &[]),
                "shape (4294967296, 4294967296, 4294967296) has more elements than fit in memory",
            ),
            (
                "overflow beside a zero",
                f32_npy("(0, 1099511627776, 1099511627776)", &[]),
                "more elements than fit in memory",
            ),
            (
                "byte count overflow",
                f32_npy("(4611686018427387904,)", &[]),
                "more elements than fit in memory",
            ),
            (
                "data too short",
                f32_npy("(2,)", &[0; 7]),
                "f32[2] needs 8 data bytes after the header, but the file has 7",
            ),
            (
                "data too long",
                f32_npy("(2,)", &[0; 9]),
                "needs 8 data bytes after the header, but the file has 9",
            ),
            ("no data", f32_npy("(2, 3)", &[]), "the file has 0"),
            (
                "negative dim",
                f32_npy("(-1,)", &[]),
                "shape entry -1 is not a valid size",
            ),
            (
                "huge literal",
                f32_npy("(1000000000000000000000000000000000000000000,)", &[]),
                "is too large",
            ),
            (
                "deep nesting",
                f32_npy(&deep, &[]),
                "nest deeper than 8 levels",
            ),
            (
                "shape list",
                f32_npy("[2]", &[0; 8]),
                "'shape' is a list, not a tuple",
            ),
            (
                "shape int",
                f32_npy("(2)", &[0; 8]),
                "'shape' is an integer, not a tuple",
            ),
            (
                "shape str",
                f32_npy("('2',)", &[]),
                "a shape entry is a string, not an integer",
            ),
            ("shape sep", f32_npy("(2 3)", &[]), "expected `,` or `)`"),
            (
                "fortran not bool",
                npy(
                    1,
                    b"{'descr': '<f4', 'fortran_order': 0, 'shape': ()}",
                    &four,
                ),
                "'fortran_order' is an integer, not a bool",
            ),
            (
                "structured",
                npy(
                    1,
                    b"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': ()}",
                    &four,
                ),
                "structured dtypes",
            ),
            (
                "descr int",
                npy(
                    1,
                    b"{'descr': 4, 'fortran_order': False, 'shape': ()}",
                    &four,
                ),
                "'descr' is an integer",
            ),
            (
                "native order",
                npy(
                    1,
                    b"{'descr': '=f4', 'fortran_order': False, 'shape': ()}",
                    &four,
                ),
                "does not say its byte order",
            ),
            ("open string", npy(1, b"{'descr: 1}", &[]), "is not closed"),
            ("escape", npy(1, b"{'de\\scr': 1}", &[]), "escape sequences"),
            (
                "bare name",
                npy(1, b"{'descr': f4}", &[]),
                "unexpected name `f4`",
            ),
            (
                "stray char",
                npy(1, b"{'descr': @}", &[]),
                "unexpected character at byte 10",
            ),
            ("no colon", npy(1, b"{'descr' '<f4'}", &[]), "expected `:`"),
            (
                "no comma",
                npy(1, b"{'descr': '<f4' 'shape': ()}", &[]),
                "expected `,` or `}`",
            ),
            ("lone minus", f32_npy("(-,)", &[]), "expected a digit"),
            (
                "trailing text",
                npy(
                    1,
                    b"{'descr': '<f4', 'fortran_order': False, 'shape': ()} x",
                    &four,
                ),
                "unexpected text after the dict",
            ),
        ];
        for (label, bytes, needle) in cases {
            match read_bytes(&bytes, "hostile.npy") {
                Ok(t) => panic!("{label}: read {t:?} instead of failing"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with("hostile.npy: "),
                        "{label}: {msg:?} does not name the file"
                    );
                    assert!(msg.contains(needle), "{label}: {msg:?} lacks {needle:?}");
                }
            }
        }
    }

    /// Every prefix of a valid file is truncated somewhere and must fail cleanly.
    #[test]
    fn every_truncation_fails_cleanly() {
        for (name, bytes, _) in fixtures() {
            for cut in 0..bytes.len() {
                if let Ok(t) = read_bytes(&bytes[..cut], name) {
                    // Only a zero-element array can survive losing its (empty) data.
                    assert_eq!(t.numel(), 0, "{name} cut at {cut} read as {t:?}");
                }
            }
        }
    }
}
