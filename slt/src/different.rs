//! The "deliberately different" list (`slt/different.txt`): corpus records
//! that cascade answers differently on purpose, each with a reason.
//!
//! Such a record is neither a pass nor a plain refusal: the runner counts it
//! as its own outcome, **different**, when cascade answers it with the error
//! code the list gives; the report groups them by reason. A listed record
//! that passes, or fails with another code, is **stale**: the corpus gate
//! fails until its line is removed (the list must say what cascade really
//! does).
//!
//! The file's lines (blank lines and `#` comments aside):
//!
//! ```text
//! reason <key> <text of the reason, to the end of the line>
//! <file relative to the corpus folder>:<line> <MySQL error code> <reason key>
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One listed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The file, relative to the corpus folder.
    pub file: PathBuf,
    /// The record's line.
    pub line: usize,
    /// The error code cascade answers it with.
    pub code: u16,
    /// The key of its reason.
    pub reason: String,
}

/// The parsed list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Different {
    /// Reasons by key.
    pub reasons: BTreeMap<String, String>,
    /// Entries by line (several files may list the same line).
    by_line: BTreeMap<usize, Vec<Entry>>,
}

impl Different {
    /// Parses the list; an error names the line.
    pub fn parse(text: &str) -> Result<Different, String> {
        let mut d = Different::default();
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("reason ") {
                let (key, why) = rest
                    .trim()
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| format!("line {n}: `reason <key> <text>`"))?;
                d.reasons.insert(key.to_string(), why.trim().to_string());
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(at), Some(code), Some(reason), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                return Err(format!("line {n}: `<file>:<line> <code> <reason>`"));
            };
            let (file, rec) = at
                .rsplit_once(':')
                .ok_or_else(|| format!("line {n}: `{at}` is not <file>:<line>"))?;
            let rec: usize = rec
                .parse()
                .map_err(|_| format!("line {n}: `{rec}` is not a line number"))?;
            let code: u16 = code
                .parse()
                .map_err(|_| format!("line {n}: `{code}` is not an error code"))?;
            entries.push((
                n,
                Entry {
                    file: PathBuf::from(file),
                    line: rec,
                    code,
                    reason: reason.to_string(),
                },
            ));
        }
        for (n, e) in entries {
            if !d.reasons.contains_key(&e.reason) {
                return Err(format!("line {n}: no `reason {}` line", e.reason));
            }
            d.by_line.entry(e.line).or_default().push(e);
        }
        Ok(d)
    }

    /// The list in `slt/different.txt`.
    pub fn load() -> Result<Different, String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("different.txt");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Different::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The entry for the record at `line` of the file `path` (whose path
    /// ends with the entry's file).
    pub fn lookup(&self, path: &Path, line: usize) -> Option<&Entry> {
        self.by_line
            .get(&line)?
            .iter()
            .find(|e| path.ends_with(&e.file))
    }

    /// Number of listed records.
    pub fn len(&self) -> usize {
        self.by_line.values().map(Vec::len).sum()
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.by_line.is_empty()
    }

    /// Every listed record.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_line.values().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_looks_up_by_file_suffix_and_line() {
        let d = Different::parse(
            "# c\nreason r1 because\n\nrandom/g.test:12 1055 r1\nother.test:12 1064 r1\n",
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.reasons["r1"], "because");
        let e = d.lookup(Path::new("/x/corpus/random/g.test"), 12).unwrap();
        assert_eq!((e.code, e.reason.as_str()), (1055, "r1"));
        assert_eq!(
            d.lookup(Path::new("/x/corpus/other.test"), 12)
                .unwrap()
                .code,
            1064
        );
        assert!(d.lookup(Path::new("/x/corpus/random/g.test"), 13).is_none());
        assert!(d.lookup(Path::new("/x/g.test"), 12).is_none());
    }

    #[test]
    fn bad_lines_are_errors_naming_the_line() {
        for (text, want) in [
            ("a.test:1 1055 nope\n", "line 1: no `reason nope`"),
            ("reason r x\na.test 1055 r\n", "line 2"),
            ("reason r x\na.test:x 1055 r\n", "line 2"),
            ("reason r x\na.test:1 code r\n", "line 2"),
            ("reason r\n", "line 1"),
        ] {
            let e = Different::parse(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
