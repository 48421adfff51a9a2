//! A located problem in a catalog file, printed the way compilers and editors expect
//! (`path:line:column: message`), so CI annotations and terminals both point at the spot.

use std::fmt;

/// One problem found in a catalog repository file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// File path relative to the repository root, with `/` separators.
    pub path: String,
    /// 1-based line; 0 when the problem concerns the file as a whole.
    pub line: u32,
    /// 1-based column; 0 when unknown.
    pub column: u32,
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        path: impl Into<String>,
        line: u32,
        column: u32,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            path: path.into(),
            line,
            column,
            message: message.into(),
        }
    }

    /// A problem with the file as a whole (size, encoding, reading it).
    pub fn file(path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic::new(path, 1, 1, message)
    }

    /// GitHub Actions workflow command, so the error shows on the pull request's diff.
    pub fn github_annotation(&self) -> String {
        let escape = |s: &str| {
            s.replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A")
        };
        let path = escape(&self.path).replace(',', "%2C").replace(':', "%3A");
        format!(
            "::error file={path},line={},col={}::{}",
            self.line.max(1),
            self.column.max(1),
            escape(&self.message)
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path,
            self.line.max(1),
            self.column.max(1),
            self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_a_compiler() {
        let d = Diagnostic::new("environments/dev/a.yaml", 3, 7, "bad");
        assert_eq!(d.to_string(), "environments/dev/a.yaml:3:7: bad");
        assert_eq!(
            d.github_annotation(),
            "::error file=environments/dev/a.yaml,line=3,col=7::bad"
        );
    }
}
