//! The commit body `huggingface_hub` sends (`POST /api/models/{repo}/commit/{rev}`): NDJSON,
//! one `{"key": ..., "value": {...}}` per line, a `header` first. Every line an uploader
//! sends is checked here, before anything is looked up: unknown keys, paths that escape or
//! repeat, base64 that does not decode, oids that are not SHA-256.

use base64::Engine as _;
use serde::Deserialize;
use weightgate_attest::reading::check_relative_path;

use crate::gate::store::is_sha256_hex;

/// One line of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitLine {
    Header {
        parent_commit: Option<String>,
    },
    /// A small file, its bytes in the commit.
    File {
        path: String,
        content: Vec<u8>,
    },
    /// A file uploaded before (LFS or Xet), named by its SHA-256; copies may omit the size.
    LfsFile {
        path: String,
        oid: String,
        size: Option<u64>,
    },
    DeletedFile {
        path: String,
    },
    DeletedFolder {
        path: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    key: String,
    value: serde_json::Value,
}

#[derive(Deserialize)]
struct HeaderValue {
    #[serde(rename = "parentCommit")]
    parent_commit: Option<String>,
}

#[derive(Deserialize)]
struct FileValue {
    path: String,
    content: String,
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct LfsValue {
    path: String,
    algo: Option<String>,
    oid: String,
    size: Option<u64>,
}

#[derive(Deserialize)]
struct PathValue {
    path: String,
}

/// Parses a commit body of at most `max_files` file lines.
pub fn parse_commit(body: &[u8], max_files: usize) -> Result<Vec<CommitLine>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let mut out = Vec::new();
    let mut paths = std::collections::HashSet::new();
    for (n, raw) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = |what: String| format!("line {}: {what}", n + 1);
        let line: Line = serde_json::from_str(raw).map_err(|e| at(e.to_string()))?;
        let value = |v: serde_json::Value| v;
        let parsed = match line.key.as_str() {
            "header" => {
                if !out.is_empty() {
                    return Err(at("the header must be the first line, and only one".into()));
                }
                let h: HeaderValue =
                    serde_json::from_value(value(line.value)).map_err(|e| at(e.to_string()))?;
                CommitLine::Header {
                    parent_commit: h.parent_commit,
                }
            }
            "file" => {
                let f: FileValue =
                    serde_json::from_value(line.value).map_err(|e| at(e.to_string()))?;
                if f.encoding.as_deref().is_some_and(|e| e != "base64") {
                    return Err(at(format!("{}: encoding must be base64", f.path)));
                }
                let content = base64::engine::general_purpose::STANDARD
                    .decode(f.content.as_bytes())
                    .map_err(|e| at(format!("{}: content is not base64: {e}", f.path)))?;
                CommitLine::File {
                    path: f.path,
                    content,
                }
            }
            "lfsFile" => {
                let f: LfsValue =
                    serde_json::from_value(line.value).map_err(|e| at(e.to_string()))?;
                if f.algo.as_deref().is_some_and(|a| a != "sha256") {
                    return Err(at(format!("{}: algo must be sha256", f.path)));
                }
                if !is_sha256_hex(&f.oid) {
                    return Err(at(format!("{}: oid `{}` is not a SHA-256", f.path, f.oid)));
                }
                CommitLine::LfsFile {
                    path: f.path,
                    oid: f.oid,
                    size: f.size,
                }
            }
            "deletedFile" | "deletedFolder" => {
                let p: PathValue =
                    serde_json::from_value(line.value).map_err(|e| at(e.to_string()))?;
                if line.key == "deletedFile" {
                    CommitLine::DeletedFile { path: p.path }
                } else {
                    CommitLine::DeletedFolder { path: p.path }
                }
            }
            other => return Err(at(format!("unknown key `{other}`"))),
        };
        if out.is_empty() && !matches!(parsed, CommitLine::Header { .. }) {
            return Err(at("the first line must be the header".into()));
        }
        let path = match &parsed {
            CommitLine::Header { .. } => None,
            CommitLine::File { path, .. }
            | CommitLine::LfsFile { path, .. }
            | CommitLine::DeletedFile { path } => Some(path.as_str()),
            CommitLine::DeletedFolder { path } => Some(path.trim_end_matches('/')),
        };
        if let Some(path) = path {
            check_relative_path(path).map_err(|e| at(format!("`{path}`: {e}")))?;
            if !paths.insert(path.to_string()) {
                return Err(at(format!("`{path}` appears twice")));
            }
            if paths.len() > max_files {
                return Err(at(format!("more than {max_files} files in one commit")));
            }
        }
        out.push(parsed);
    }
    if out.is_empty() {
        return Err("the body is empty (a header line is required)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> String {
        r#"{"key":"header","value":{"summary":"s","description":""}}"#.to_string()
    }

    #[test]
    fn the_client_s_lines_parse() {
        let oid = "a".repeat(64);
        let body = format!(
            "{}\n{}\n{}\n{}\n{}\n",
            header(),
            r#"{"key":"file","value":{"content":"aGk=","path":"config.json","encoding":"base64"}}"#,
            format_args!(
                r#"{{"key":"lfsFile","value":{{"path":"m.safetensors","algo":"sha256","oid":"{oid}","size":5}}}}"#
            ),
            r#"{"key":"deletedFile","value":{"path":"old.bin"}}"#,
            r#"{"key":"deletedFolder","value":{"path":"logs/"}}"#,
        );
        let lines = parse_commit(body.as_bytes(), 10).unwrap();
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[1],
            CommitLine::File {
                path: "config.json".into(),
                content: b"hi".to_vec()
            }
        );
        assert_eq!(
            lines[2],
            CommitLine::LfsFile {
                path: "m.safetensors".into(),
                oid,
                size: Some(5)
            }
        );
    }

    #[test]
    fn bad_lines_are_named() {
        let file = |path: &str| {
            format!(
                r#"{{"key":"file","value":{{"content":"aGk=","path":"{path}","encoding":"base64"}}}}"#
            )
        };
        let cases = [
            ("not json".to_string(), "line 1"),
            (file("a"), "first line must be the header"),
            (format!("{}\n{}", header(), header()), "only one"),
            (
                format!("{}\n{}", header(), file("../etc/passwd")),
                "`../etc/passwd`",
            ),
            (format!("{}\n{}", header(), file("/abs")), "`/abs`"),
            (
                format!("{}\n{}\n{}", header(), file("a"), file("a")),
                "appears twice",
            ),
            (
                format!(
                    "{}\n{}",
                    header(),
                    r#"{"key":"file","value":{"content":"!!","path":"a"}}"#
                ),
                "not base64",
            ),
            (
                format!(
                    "{}\n{}",
                    header(),
                    r#"{"key":"lfsFile","value":{"path":"a","oid":"xyz","size":1}}"#
                ),
                "is not a SHA-256",
            ),
            (
                format!("{}\n{}", header(), r#"{"key":"rename","value":{}}"#),
                "unknown key",
            ),
            (
                format!("{}\n{}\n{}", header(), file("a"), file("b")),
                "more than 1 files",
            ),
            (String::new(), "empty"),
        ];
        for (body, want) in cases {
            let e = parse_commit(body.as_bytes(), 1).unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
