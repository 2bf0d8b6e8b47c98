//! Diagnostics: every configuration error, with the file, line and column it is about.

use std::fmt;

/// A position in the configuration file; line and column are both 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

/// One configuration error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub col: usize,
    /// Stable identifier of the kind of error (`unknown-key`, `cycle`, …), documented in
    /// `docs/config.md`.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error[{}]: {}",
            self.file, self.line, self.col, self.code, self.message
        )
    }
}

/// Every error found in one configuration file, sorted by position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Sorts by (line, column); errors at the same position keep the order they were found in.
    pub(crate) fn sorted(mut v: Vec<Diagnostic>) -> Diagnostics {
        v.sort_by_key(|d| (d.line, d.col));
        Diagnostics(v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v: Vec<&Diagnostic> = self.0.iter().collect();
        v.sort_by_key(|d| (d.line, d.col));
        for (i, d) in v.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics while the configuration is walked.
pub(crate) struct Cx<'a> {
    pub file: &'a str,
    pub diags: Vec<Diagnostic>,
}

impl<'a> Cx<'a> {
    pub fn new(file: &'a str) -> Cx<'a> {
        Cx {
            file,
            diags: Vec::new(),
        }
    }

    pub fn err(&mut self, at: Pos, code: &'static str, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_string(),
            line: at.line,
            col: at.col,
            code,
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        !self.diags.is_empty()
    }
}
