//! Multi-document YAML with the line each document starts on, so every object can say where
//! it came from and every parse error can name its line.

use serde_json::Value;

mod fast;

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

/// A document's text, its index in the stream and the line it starts on.
struct Chunk {
    index: usize,
    line: usize,
    text: String,
}

/// Split on `---` document markers at column 0 and parse each document. Empty documents
/// (only comments or whitespace, or `null`) are skipped but keep their index. Large streams
/// are parsed on all cores.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    let chunks = split(text);
    let parsed: Vec<Result<Option<Document>, YamlError>> = if chunks.len() < PARALLEL_FROM {
        chunks.iter().map(parse_chunk).collect()
    } else {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = chunks.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = chunks
                .chunks(per_thread)
                .map(|part| scope.spawn(|| part.iter().map(parse_chunk).collect::<Vec<_>>()))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| match w.join() {
                    Ok(results) => results,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    };
    parsed.into_iter().filter_map(Result::transpose).collect()
}

/// Below this many documents, threads cost more than they save.
const PARALLEL_FROM: usize = 200;

fn split(text: &str) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut current = Chunk {
        index: 0,
        line: 1,
        text: String::new(),
    };
    for (n, line) in text.lines().enumerate() {
        if is_separator(line) {
            let next = Chunk {
                index: current.index + 1,
                line: n + 2,
                text: String::new(),
            };
            chunks.push(std::mem::replace(&mut current, next));
            // `--- {a: b}` carries content on the marker line.
            if let Some(rest) = line.strip_prefix("--- ") {
                current.line = n + 1;
                current.text.push_str(rest);
                current.text.push('\n');
            }
            continue;
        }
        current.text.push_str(line);
        current.text.push('\n');
    }
    chunks.push(current);
    chunks
}

fn parse_chunk(chunk: &Chunk) -> Result<Option<Document>, YamlError> {
    let meaningful = chunk.text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    if !meaningful {
        return Ok(None);
    }
    let parsed = match fast::parse(&chunk.text) {
        Some(value) => Ok(value),
        None => serde_saphyr::from_str_with_options(&chunk.text, yaml_12()),
    };
    let value: Value = parsed.map_err(|e| YamlError {
        line: chunk.line
            + e.location()
                .map(|l| l.line() as usize)
                .unwrap_or(1)
                .saturating_sub(1),
        message: first_line(&e.to_string()),
    })?;
    if value.is_null() {
        return Ok(None);
    }
    let source = chunk
        .text
        .lines()
        .find_map(|l| l.strip_prefix("# Source: "))
        .map(str::to_string);
    Ok(Some(Document {
        index: chunk.index,
        line: chunk.line,
        value,
        source,
    }))
}

/// A kustomization file's content. kustomize reads these with sigs.k8s.io/yaml, which is
/// YAML 1.1 (`yes`, `on`, `y` are booleans, unlike in manifests) and where a repeated key is
/// not an error: the last one wins (manifests are stricter).
pub fn parse_kustomization(text: &str) -> Result<Option<Value>, YamlError> {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = false;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    let value: Value =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| YamlError {
            line: e.location().map(|l| l.line() as usize).unwrap_or(1),
            message: first_line(&e.to_string()),
        })?;
    Ok((!value.is_null()).then_some(value))
}

/// One plain scalar as the full parser resolves it in a block mapping.
fn parse_scalar(s: &str) -> Option<Value> {
    let doc: Value = serde_saphyr::from_str_with_options(&format!("k: {s}\n"), yaml_12()).ok()?;
    Some(doc["k"].clone())
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
