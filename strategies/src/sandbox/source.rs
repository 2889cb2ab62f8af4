//! Telling an ES module from a classic script, and reading QuickJS syntax-error locations.

/// How a strategy source is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// A classic script (sloppy mode, like a browser `<script>`): hooks are global
    /// `function st_init(ctx) {}` declarations (or top-level `var`/`let`/`const` bindings).
    Script,
    /// An ES module (always strict): hooks are `export`ed.
    Module,
}

/// Detect whether `source` is an ES module: true when a top-level (not nested in any bracket)
/// `export` or static `import` token appears outside comments, strings, template literals and
/// regular-expression literals. `import(...)` and `import.meta` do not count. Anything else is a
/// script. The scan is a small lexer, not a parser; on a misdetection the source fails to parse
/// and the resulting syntax error names the offending `export`/`import`.
pub fn detect_kind(source: &str) -> SourceKind {
    let b = source.as_bytes();
    let n = b.len();
    let mut i = 0;
    let mut depth: i64 = 0;
    // Previous significant byte (for telling a regex literal from a division), b'\n' at start.
    let mut prev: u8 = b'\n';
    while i < n {
        let c = b[i];
        match c {
            b'/' if i + 1 < n && b[i + 1] == b'/' => {
                while i < n && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if i + 1 < n && b[i + 1] == b'*' => {
                i += 2;
                while i + 1 < n && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            b'\'' | b'"' | b'`' => {
                i = skip_quoted(b, i, c);
                prev = b'"';
                continue;
            }
            b'/' if !(prev.is_ascii_alphanumeric() || matches!(prev, b'_' | b'$' | b')' | b']' | b'"')) => {
                // A regular-expression literal.
                i += 1;
                let mut in_class = false;
                while i < n && b[i] != b'\n' {
                    match b[i] {
                        b'\\' => i += 1,
                        b'[' => in_class = true,
                        b']' => in_class = false,
                        b'/' if !in_class => break,
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
                prev = b'"';
                continue;
            }
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => depth -= 1,
            _ => {}
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let start = i;
            while i < n && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            let word = &b[start..i];
            if depth == 0 && prev != b'.' {
                let mut j = i;
                while j < n && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let next = b.get(j).copied();
                if word == b"export" {
                    return SourceKind::Module;
                }
                if word == b"import" && !matches!(next, Some(b'(') | Some(b'.')) {
                    return SourceKind::Module;
                }
            }
            prev = b'a';
            continue;
        }
        if !c.is_ascii_whitespace() {
            prev = c;
        }
        i += 1;
    }
    SourceKind::Script
}

/// Index just past the string or template literal opened by `quote` at `start`.
fn skip_quoted(b: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == quote => return i + 1,
            b'\n' if quote != b'`' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// Read `FILE:LINE:COLUMN` from the first frame of a QuickJS parse-error stack, which is exactly
/// `    at FILE:LINE:COLUMN` (runtime frames look like `    at fn (FILE:LINE:COLUMN)`).
/// Returns `None` unless that frame names `file`.
pub fn parse_error_location(stack: &str, file: &str) -> Option<(u32, u32)> {
    let first = stack.lines().next()?.trim();
    let rest = first.strip_prefix("at ")?;
    let rest = rest.strip_prefix(file)?;
    let rest = rest.strip_prefix(':')?;
    let (line, col) = rest.split_once(':')?;
    Some((line.parse().ok()?, col.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_modules_and_scripts() {
        assert_eq!(detect_kind("function st_init(ctx) {}"), SourceKind::Script);
        assert_eq!(detect_kind("export function st_init(ctx) {}"), SourceKind::Module);
        assert_eq!(detect_kind("const x = 1;\nexport const params = {};"), SourceKind::Module);
        assert_eq!(detect_kind("import x from 'y';"), SourceKind::Module);
        assert_eq!(detect_kind("import {x} from 'y';"), SourceKind::Module);
        assert_eq!(detect_kind("// export function f() {}\nfunction f() {}"), SourceKind::Script);
        assert_eq!(detect_kind("/* export */ var s = 'export x';"), SourceKind::Script);
        assert_eq!(detect_kind("var t = `\nexport x`;"), SourceKind::Script);
        assert_eq!(detect_kind("function f() { return import('x'); }"), SourceKind::Script);
        assert_eq!(detect_kind("var o = { export: 1 }; o.export;"), SourceKind::Script);
        assert_eq!(detect_kind("var r = /export/; var d = 4 / 2;"), SourceKind::Script);
    }

    #[test]
    fn parses_parse_error_frames() {
        assert_eq!(parse_error_location("    at a.js:3:7\n", "a.js"), Some((3, 7)));
        assert_eq!(parse_error_location("    at f (a.js:3:7)\n", "a.js"), None);
        assert_eq!(parse_error_location("    at <input>:1:2\n", "a.js"), None);
    }
}
