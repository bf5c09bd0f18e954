//! Cargo-style diagnostics for TOML files (the manifest and device descriptions).
//!
//! Rendering follows rustc and cargo:
//!
//! ```text
//! error: unknown key `profle` in `[target.host]`
//!   --> ExecuTorch.toml:12:1
//!    |
//! 12 | profle = "size"
//!    | ^^^^^^ unknown key
//!    |
//!    = help: did you mean `profile`?
//! ```
//!
//! Invariant: a `Diagnostic` is self-contained (file, position, source line), so diagnostics
//! from several files can be collected into one list and rendered without the files at hand.

use serde::Serialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One error in a TOML file, located by 1-based line and column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file as the user named it (not canonicalized), so messages match what they typed.
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// Text printed after the carets.
    pub label: Option<String>,
    /// A `= help:` line: what to do about it.
    pub help: Option<String>,
    /// The source line the error is on, without its line ending.
    pub source_line: String,
    /// How many characters of `source_line` the carets cover (at least one).
    pub width: usize,
}

/// A list of diagnostics, rendered one after another separated by blank lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

/// A TOML file's text and the name it is reported under.
pub(crate) struct SourceFile<'a> {
    pub display: &'a Path,
    pub text: &'a str,
}

impl SourceFile<'_> {
    /// Builds a diagnostic at a byte span of this file. Spans that run past a line end are cut at
    /// the line end, because the renderer shows one line.
    pub fn diagnostic(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        label: Option<String>,
        help: Option<String>,
    ) -> Diagnostic {
        let text = self.text;
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let source_line = text[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        let width = text[start..end].chars().count().max(1);
        Diagnostic {
            file: self.display.to_path_buf(),
            line,
            column,
            message: message.into(),
            label,
            help,
            source_line,
            width,
        }
    }
}

/// Steps back to a character boundary so that slicing never panics on a span from a parser that
/// counted differently.
fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        writeln!(f, "error: {}", self.message)?;
        writeln!(
            f,
            "{pad}--> {}:{}:{}",
            self.file.display(),
            self.line,
            self.column
        )?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{num} | {}", self.source_line)?;
        // The caret line reuses the source line's own tabs so that carets stay aligned.
        let lead: String = self
            .source_line
            .chars()
            .take(self.column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let carets = "^".repeat(self.width);
        match &self.label {
            Some(label) => write!(f, "{pad} | {lead}{carets} {label}")?,
            None => write!(f, "{pad} | {lead}{carets}")?,
        }
        if let Some(help) = &self.help {
            write!(f, "\n{pad} |\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_cargo() {
        let text = "[target.host]\ndevice = \"host\"\nprofle = \"size\"\n";
        let file = SourceFile {
            display: Path::new("ExecuTorch.toml"),
            text,
        };
        let start = text.find("profle").unwrap();
        let d = file.diagnostic(
            start..start + 6,
            "unknown key `profle` in `[target.host]`",
            Some("unknown key".into()),
            Some("did you mean `profile`?".into()),
        );
        assert_eq!((d.line, d.column, d.width), (3, 1, 6));
        assert_eq!(
            d.to_string(),
            "error: unknown key `profle` in `[target.host]`\n \
             --> ExecuTorch.toml:3:1\n  |\n3 | profle = \"size\"\n  | ^^^^^^ unknown key\n  \
             |\n  = help: did you mean `profile`?"
        );
    }

    #[test]
    fn spans_at_the_end_of_the_text_are_located() {
        let file = SourceFile {
            display: Path::new("a.toml"),
            text: "a = 1",
        };
        let d = file.diagnostic(5..5, "x", None, None);
        assert_eq!((d.line, d.column, d.width), (1, 6, 1));
    }
}
