//! Errors in the TOML files people write (claims, policies): each names the file, the line
//! where the parser kept one, and the key.

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;

/// A problem in a TOML file: `FILE:LINE: KEY: PROBLEM` (`FILE: KEY: PROBLEM` without a line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{}: {key}: {problem}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TomlError {
    pub source_name: String,
    /// 1-based.
    pub line: Option<usize>,
    /// The dotted key (`model.name`); `TOML` for a syntax or shape error, `file` when the file
    /// cannot be read.
    pub key: String,
    pub problem: String,
}

/// A TOML text and the name its errors give it.
#[derive(Debug, Clone, Copy)]
pub struct TomlSource<'a> {
    pub text: &'a str,
    pub name: &'a str,
}

impl TomlSource<'_> {
    /// The error about `key`, at `span` (byte offsets into the text) when known.
    pub fn error(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        problem: impl Into<String>,
    ) -> TomlError {
        TomlError {
            source_name: self.name.to_string(),
            line: span.map(|s| self.line_of(s.start)),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    /// Deserializes the whole text; a syntax or shape error names its line, and the dotted key
    /// whose value it is about when there is one (`compute.inputs.params_active`).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, TomlError> {
        toml::from_str(self.text).map_err(|e| {
            let key = e
                .span()
                .and_then(|span| self.key_at(&span))
                .unwrap_or_else(|| "TOML".into());
            self.error(e.span(), &key, e.message())
        })
    }

    /// The dotted key of the innermost value whose text holds `span`, when the text parses.
    fn key_at(&self, span: &Range<usize>) -> Option<String> {
        use toml::de::{DeTable, DeValue};
        // Table spans cover only their headers, so every table is searched for the value.
        fn find(table: &DeTable, span: &Range<usize>, path: &mut Vec<String>) -> bool {
            for (k, v) in table {
                path.push(k.get_ref().to_string());
                let found = match v.get_ref() {
                    DeValue::Table(inner) => find(inner, span, path),
                    _ => v.span().start <= span.start && span.end <= v.span().end,
                };
                if found {
                    return true;
                }
                path.pop();
            }
            false
        }
        let root = DeTable::parse(self.text).ok()?;
        let mut path = Vec::new();
        find(root.get_ref(), span, &mut path).then(|| path.join("."))
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }
}

/// Reads a TOML file of at most [`crate::io::MAX_CONFIG_FILE_LEN`] bytes.
pub fn read_toml_file(path: &Path) -> Result<String, TomlError> {
    crate::io::read_capped_to_string(path, crate::io::MAX_CONFIG_FILE_LEN).map_err(|e| TomlError {
        source_name: path.display().to_string(),
        line: None,
        key: "file".into(),
        problem: format!("cannot read: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::{TomlSource, read_toml_file};

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let source = TomlSource {
            text: "name = \"a\"\n\nsurprise = 1\n",
            name: "x.toml",
        };
        let e = source.parse::<Doc>().unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(3), "TOML"));
        assert!(
            e.to_string()
                .starts_with("x.toml:3: TOML: unknown field `surprise`")
        );

        let typed = TomlSource {
            text: "[a.b]\nname = 1\n",
            name: "y.toml",
        };
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            a: std::collections::BTreeMap<String, Doc>,
        }
        let e = typed.parse::<Outer>().unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(2), "a.b.name"), "{e}");

        let e = source.error(Some(4..5), "name", "too short");
        assert_eq!(e.to_string(), "x.toml:1: name: too short");
        // A span past the end (from a stale text) still gives a line, not a panic.
        assert_eq!(source.error(Some(999..1000), "k", "p").line, Some(4));
        assert_eq!(source.error(None, "k", "p").to_string(), "x.toml: k: p");
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let e = read_toml_file(std::path::Path::new("/nonexistent/weightgate.toml")).unwrap_err();
        assert_eq!(e.key, "file");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/weightgate.toml: file: cannot read:")
        );
    }
}
