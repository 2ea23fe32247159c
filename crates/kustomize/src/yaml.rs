//! Multi-document YAML with the line each document starts on, so every object can say where
//! it came from and every parse error can name its line.

use serde_json::Value;

/// One parsed document and the 1-based line its first line is on.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub index: usize,
    pub line: usize,
    pub value: Value,
    /// The template a `helm template` document came from (its `# Source:` comment).
    pub source: Option<String>,
}

/// A YAML syntax error at a line of the whole file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

fn is_separator(line: &str) -> bool {
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t") || line == "..."
}

/// Split on `---` document markers at column 0 and parse each document. Empty documents
/// (only comments or whitespace, or `null`) are skipped but keep their index.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    let mut docs = Vec::new();
    let mut chunk = String::new();
    let mut chunk_start = 1;
    let mut index = 0;
    let mut flush = |chunk: &mut String,
                     start: usize,
                     index: &mut usize|
     -> Result<(), YamlError> {
        let meaningful = chunk.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        });
        if meaningful {
            let value: Value =
                serde_saphyr::from_str_with_options(chunk, yaml_12()).map_err(|e| YamlError {
                    line: start
                        + e.location()
                            .map(|l| l.line() as usize)
                            .unwrap_or(1)
                            .saturating_sub(1),
                    message: first_line(&e.to_string()),
                })?;
            if !value.is_null() {
                let source = chunk
                    .lines()
                    .find_map(|l| l.strip_prefix("# Source: "))
                    .map(str::to_string);
                docs.push(Document {
                    index: *index,
                    line: start,
                    value,
                    source,
                });
            }
        }
        *index += 1;
        chunk.clear();
        Ok(())
    };
    for (n, line) in text.lines().enumerate() {
        if is_separator(line) {
            flush(&mut chunk, chunk_start, &mut index)?;
            chunk_start = n + 2;
            // `--- {a: b}` carries content on the marker line.
            if let Some(rest) = line.strip_prefix("--- ") {
                chunk_start = n + 1;
                chunk.push_str(rest);
                chunk.push('\n');
            }
            continue;
        }
        chunk.push_str(line);
        chunk.push('\n');
    }
    flush(&mut chunk, chunk_start, &mut index)?;
    Ok(docs)
}

/// kustomize reads YAML 1.2 (go-yaml v3): `y`, `no`, `on` are strings, not booleans.
fn yaml_12() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_start_lines() {
        let text = "# leading comment\na: 1\n---\n# empty\n---\nb: 2\n\n---\nc: [\n";
        let err = parse_documents(text).unwrap_err();
        assert_eq!(err.line, 9, "{err}");
        let docs = parse_documents("a: 1\n---\n# empty\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].index, docs[0].line), (0, 1));
        assert_eq!((docs[1].index, docs[1].line), (2, 5));
    }

    #[test]
    fn yaml_11_booleans_are_strings() {
        let docs = parse_documents("a: y\nb: no\nc: true\nd: on\n").unwrap();
        assert_eq!(
            docs[0].value,
            serde_json::json!({"a": "y", "b": "no", "c": true, "d": "on"})
        );
    }

    #[test]
    fn block_scalars_with_dashes_are_not_separators() {
        let docs = parse_documents("data:\n  x: |\n    ---\n    y\n").unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].value["data"]["x"], "---\ny\n");
    }
}
