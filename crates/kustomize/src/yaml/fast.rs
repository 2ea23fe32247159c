//! A fast path for the YAML manifests are usually written in: block mappings and sequences
//! (indentless ones too), one-line plain, quoted and flow scalars, and `|` literal blocks.
//! It answers `None` the moment it meets anything else — anchors, tags, folded or
//! multi-line scalars, tabs, duplicate keys, odd indentation — and the caller parses the
//! document with the full parser instead. Where it answers, the value is the full parser's:
//! `tests::agrees_with_the_full_parser` checks that on every manifest under `tests/trees`.
//!
//! Why: parsing is most of a build's time, and this path is several times faster.

use serde_json::{Map, Number, Value};

/// Parse one document, or `None` if it uses YAML this path does not handle.
pub fn parse(text: &str) -> Option<Value> {
    if text.contains(['\t', '\r']) {
        return None;
    }
    let lines = text
        .lines()
        .map(|l| {
            let content = l.trim_start_matches(' ');
            (l.len() - content.len(), content)
        })
        .collect();
    let mut p = Parser { lines, pos: 0 };
    let (indent, first) = p.peek()?;
    if indent != 0 || first.starts_with(['%', '&', '*', '!', '?']) {
        return None;
    }
    let value = p.block(0)?;
    // Everything must have been read.
    p.peek().is_none().then_some(value)
}

struct Parser<'a> {
    /// `(indentation, content)` per line; a compact `- key: v` line is rewritten in place
    /// to its mapping's indentation and content.
    lines: Vec<(usize, &'a str)>,
    pos: usize,
}

fn is_comment_or_blank(content: &str) -> bool {
    content.is_empty() || content.starts_with('#')
}

fn is_sequence_entry(content: &str) -> bool {
    content == "-" || content.starts_with("- ")
}

impl<'a> Parser<'a> {
    /// The next line that is not blank or a comment, without consuming it.
    fn peek(&mut self) -> Option<(usize, &'a str)> {
        while let Some(&(indent, content)) = self.lines.get(self.pos) {
            if !is_comment_or_blank(content) {
                return Some((indent, content));
            }
            self.pos += 1;
        }
        None
    }

    /// A block node whose lines are indented by at least `min`.
    fn block(&mut self, min: usize) -> Option<Value> {
        let (indent, content) = self.peek()?;
        if indent < min {
            return None;
        }
        if is_sequence_entry(content) {
            self.sequence(indent)
        } else {
            self.mapping(indent)
        }
    }

    fn sequence(&mut self, indent: usize) -> Option<Value> {
        let mut items = Vec::new();
        while let Some((i, content)) = self.peek() {
            if i != indent || !is_sequence_entry(content) {
                if i > indent {
                    return None;
                }
                break;
            }
            let rest = content[1..].trim_start_matches(' ');
            let rest_indent = indent + (content.len() - rest.len());
            if is_comment_or_blank(rest) {
                self.pos += 1;
                items.push(self.nested(indent, false)?);
            } else if is_sequence_entry(rest) {
                return None;
            } else if key_end(rest).is_some() {
                // `- key: value`: a mapping at the column the key starts in.
                self.lines[self.pos] = (rest_indent, rest);
                items.push(self.mapping(rest_indent)?);
            } else {
                self.pos += 1;
                items.push(self.inline(rest, indent)?);
            }
        }
        Some(Value::Array(items))
    }

    fn mapping(&mut self, indent: usize) -> Option<Value> {
        let mut map = Map::new();
        while let Some((i, content)) = self.peek() {
            if i < indent || (i == indent && is_sequence_entry(content)) {
                break;
            }
            if i > indent {
                return None;
            }
            let end = key_end(content)?;
            let key = key(&content[..end])?;
            let rest = content[end + 1..].trim_start_matches(' ');
            self.pos += 1;
            let value = if is_comment_or_blank(rest) {
                self.nested(indent, true)?
            } else {
                self.inline(rest, indent)?
            };
            if map.insert(key, value).is_some() {
                return None;
            }
        }
        Some(Value::Object(map))
    }

    /// What follows a key or dash with nothing after it on its line: a more indented block,
    /// a sequence at the key's own indentation (`key:\n- a`), or null.
    fn nested(&mut self, indent: usize, indentless_ok: bool) -> Option<Value> {
        match self.peek() {
            Some((i, _)) if i > indent => self.block(i),
            Some((i, content)) if i == indent && indentless_ok && is_sequence_entry(content) => {
                self.sequence(indent)
            }
            _ => Some(Value::Null),
        }
    }

    /// A value on the rest of a line; `indent` is its key's (or dash's) indentation. A
    /// plain scalar continued on the next line is beyond this path.
    fn inline(&mut self, text: &'a str, indent: usize) -> Option<Value> {
        if let Some(header) = text.strip_prefix('|') {
            return self.literal(header, indent);
        }
        let (value, rest) = match text.as_bytes()[0] {
            b'"' => {
                let (s, rest) = double_quoted(text)?;
                (Value::String(s), rest)
            }
            b'\'' => {
                let (s, rest) = single_quoted(text)?;
                (Value::String(s), rest)
            }
            b'{' | b'[' => {
                let mut flow = Flow { text, pos: 0 };
                let v = flow.node()?;
                (v, &text[flow.pos..])
            }
            _ => {
                let plain = match text.find(" #") {
                    Some(i) => &text[..i],
                    None => text,
                };
                (plain_scalar(plain.trim_end_matches(' '))?, "")
            }
        };
        let rest = rest.trim_start_matches(' ');
        if !is_comment_or_blank(rest) {
            return None;
        }
        match self.peek() {
            Some((i, _)) if i > indent => None,
            _ => Some(value),
        }
    }

    /// A `|`, `|-` or `|+` literal block after a key at `indent`.
    fn literal(&mut self, header: &str, indent: usize) -> Option<Value> {
        let (chomp, comment) = match header.as_bytes().first() {
            Some(b'-') => ('-', &header[1..]),
            Some(b'+') => ('+', &header[1..]),
            _ => ('=', header),
        };
        if !is_comment_or_blank(comment.trim_start_matches(' ')) {
            return None;
        }
        // The first line decides the block's indentation; leading blank lines are beyond
        // this path.
        let &(content_indent, first) = self.lines.get(self.pos)?;
        if first.is_empty() || content_indent <= indent {
            return None;
        }
        let mut text = String::new();
        let mut trailing_breaks = 0;
        while let Some(&(i, content)) = self.lines.get(self.pos) {
            if content.is_empty() {
                if i > content_indent {
                    return None;
                }
                trailing_breaks += 1;
            } else if i < content_indent {
                break;
            } else {
                for _ in 0..trailing_breaks {
                    text.push('\n');
                }
                trailing_breaks = 0;
                for _ in content_indent..i {
                    text.push(' ');
                }
                text.push_str(content);
                text.push('\n');
            }
            self.pos += 1;
        }
        match chomp {
            '-' => {
                text.pop();
            }
            '+' => (0..trailing_breaks).for_each(|_| text.push('\n')),
            _ => {}
        }
        Some(Value::String(text))
    }
}

/// Where a block mapping key ends (its `:`), if the line is `key: value` or `key:`.
fn key_end(content: &str) -> Option<usize> {
    if content.starts_with(['"', '\'']) {
        let close = content[1..].find(content.as_bytes()[0] as char)? + 1;
        return (content[close + 1..].starts_with(": ") || &content[close + 1..] == ":")
            .then_some(close + 1);
    }
    let end = match content.find(": ") {
        Some(i) => i,
        None => content.strip_suffix(':').map(str::len)?,
    };
    // A comment before the colon means this was no key at all.
    (!content[..end].contains(" #")).then_some(end)
}

/// A mapping key: a plain word that reads as a string, or a simple quoted one.
fn key(raw: &str) -> Option<String> {
    // `key : value` is left to the full parser.
    if raw.ends_with(' ') {
        return None;
    }
    match raw.as_bytes().first()? {
        b'"' => double_quoted(raw)
            .filter(|(_, rest)| rest.is_empty())
            .map(|(s, _)| s),
        b'\'' => single_quoted(raw)
            .filter(|(_, rest)| rest.is_empty())
            .map(|(s, _)| s),
        // `<<` merges, and keys that resolve to anything but a string, need the full parser.
        _ => match plain_scalar(raw)? {
            Value::String(s) if s != "<<" => Some(s),
            _ => None,
        },
    }
}

/// Resolve a plain scalar as YAML 1.2's core schema (with strict booleans) does, for the
/// spellings this path is sure of; anything number-like that is not a simple integer goes
/// to the full parser.
fn plain_scalar(s: &str) -> Option<Value> {
    let first = *s.as_bytes().first()?;
    if matches!(
        first,
        b'&' | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'%'
            | b'@'
            | b'`'
            | b'{'
            | b'}'
            | b'['
            | b']'
            | b','
            | b'#'
            | b'"'
            | b'\''
    ) || ((first == b'-' || first == b'?' || first == b':')
        && s.as_bytes().get(1).is_none_or(|b| *b == b' '))
        || s.contains(": ")
        || s.ends_with(':')
    {
        return None;
    }
    match s {
        "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        let simple_int = s.bytes().all(|b| b.is_ascii_digit())
            && (s.len() == 1 || first != b'0')
            && s.len() <= 18;
        if simple_int {
            return s
                .parse::<u64>()
                .ok()
                .map(|n| Value::Number(Number::from(n)));
        }
        // Only characters numbers (`0x1F`, `1_000`, `-.inf`, `1e3`) are written with: let the
        // full parser decide.
        let number_like = s.bytes().all(|b| {
            b.is_ascii_hexdigit()
                || matches!(
                    b,
                    b'.' | b'_'
                        | b'+'
                        | b'-'
                        | b':'
                        | b'x'
                        | b'X'
                        | b'o'
                        | b'O'
                        | b'i'
                        | b'I'
                        | b'n'
                        | b'N'
                )
        });
        if number_like {
            return super::parse_scalar(s);
        }
    }
    Some(Value::String(s.to_string()))
}

/// A `"..."` scalar closed on this line, and the text after it.
fn double_quoted(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &text[i + 2..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    '\\' | '"' | '/' => out.push(e),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    ' ' => out.push(' '),
                    'u' | 'x' | 'U' => {
                        let digits = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut code = 0u32;
                        for _ in 0..digits {
                            code = code * 16 + chars.next()?.1.to_digit(16)?;
                        }
                        out.push(char::from_u32(code)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// A `'...'` scalar closed on this line (`''` is a quote), and the text after it.
fn single_quoted(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let bytes = text.as_bytes();
    let mut i = 1;
    let mut start = 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            out.push_str(&text[start..i]);
            if bytes.get(i + 1) == Some(&b'\'') {
                out.push('\'');
                i += 2;
                start = i;
                continue;
            }
            return Some((out, &text[i + 1..]));
        }
        i += 1;
    }
    None
}

/// A flow collection (`{a: b, c: [d]}`) closed on its line.
struct Flow<'a> {
    text: &'a str,
    pos: usize,
}

impl Flow<'_> {
    fn skip_spaces(&mut self) {
        while self.text.as_bytes().get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }

    fn node(&mut self) -> Option<Value> {
        self.skip_spaces();
        let rest = &self.text[self.pos..];
        match rest.as_bytes().first()? {
            b'{' => self.collection(b'}', true),
            b'[' => self.collection(b']', false),
            b'"' | b'\'' => {
                let (s, after) = if rest.starts_with('"') {
                    double_quoted(rest)?
                } else {
                    single_quoted(rest)?
                };
                self.pos = self.text.len() - after.len();
                Some(Value::String(s))
            }
            _ => {
                let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
                let raw = rest[..end].trim_end_matches(' ');
                // `a: b` inside a sequence, `#`, and flow indicators are beyond this path.
                if raw.contains(['#', '{', '[']) || raw.contains(": ") {
                    return None;
                }
                self.pos += end;
                plain_scalar(raw)
            }
        }
    }

    fn collection(&mut self, close: u8, is_map: bool) -> Option<Value> {
        self.pos += 1;
        let mut map = Map::new();
        let mut items = Vec::new();
        loop {
            self.skip_spaces();
            if self.text.as_bytes().get(self.pos) == Some(&close) {
                self.pos += 1;
                break;
            }
            if is_map {
                let rest = &self.text[self.pos..];
                let colon = rest.find(": ")?;
                let raw = rest[..colon].trim_end_matches(' ');
                if raw.contains([',', '{', '}', '[', ']', '#']) {
                    return None;
                }
                let key = key(raw)?;
                self.pos += colon + 2;
                let value = self.node()?;
                if map.insert(key, value).is_some() {
                    return None;
                }
            } else {
                items.push(self.node()?);
            }
            self.skip_spaces();
            match self.text.as_bytes().get(self.pos)? {
                b',' => self.pos += 1,
                b if *b == close => {}
                _ => return None,
            }
        }
        Some(if is_map {
            Value::Object(map)
        } else {
            Value::Array(items)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full(text: &str) -> Value {
        serde_saphyr::from_str_with_options(text, super::super::yaml_12()).unwrap()
    }

    #[test]
    fn parses_common_manifest_shapes() {
        let text = "apiVersion: apps/v1\nkind: Deployment # c\nmetadata:\n  name: web\n  labels: {app: web, 'x': \"y\"}\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n      - name: a\n        args: [\"--x\", '1', 2]\n        env:\n          - name: B\n            value: \"1\"\n      - image: x\n  script: |\n    echo hi\n\n      indented\n  empty:\n  list:\n  - a\n  -\n    b: c\n";
        let fast = parse(text).expect("fast path");
        assert_eq!(fast, full(text));
        assert_eq!(fast["spec"]["script"], json!("echo hi\n\n  indented\n"));
    }

    #[test]
    fn scalars_resolve_like_the_full_parser() {
        for s in [
            "80",
            "0",
            "007",
            "1.5",
            "-3",
            "+4",
            "1e3",
            "0x1F",
            "0o17",
            ".5",
            "1_000",
            "100m",
            "128Mi",
            "1.27.3",
            "12:30",
            "yes",
            "no",
            "on",
            "y",
            "n",
            "true",
            "False",
            "null",
            "~",
            "nan",
            "inf",
            ".inf",
            "-.inf",
            "2024-01-01",
            "v1",
            "a b",
            "a#b",
        ] {
            let text = format!("k: {s}\n");
            let expected =
                serde_saphyr::from_str_with_options::<Value>(&text, super::super::yaml_12()).ok();
            assert_eq!(parse(&text), expected, "{s}");
        }
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: >\n  folded\n",
            "a: plain\n  continued\n",
            "a: 1\na: 2\n",
            "a:\n\tb: 1\n",
            "? complex\n: key\n",
            "a: {b: [c, {d: e}\n",
            "1: one\n",
            "a: |2\n   x\n",
            "key : spaced\n",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    /// Random documents from pieces manifests are made of (and some they are not): wherever
    /// the fast path answers, it answers what the full parser does.
    #[test]
    fn agrees_with_the_full_parser_on_random_documents() {
        const SCALARS: &[&str] = &[
            "web",
            "80",
            "0",
            "08",
            "1.5",
            "-1",
            "true",
            "no",
            "null",
            "~",
            "",
            "'quoted'",
            "\"dq \\\" \\u00e9\"",
            "'it''s'",
            "a b  c",
            "x # comment",
            "x#y",
            "{a: 1, b: [c, d]}",
            "[1, 'two', {k: v}]",
            "[]",
            "{}",
            "&anchor v",
            "*alias",
            "!!str 5",
            "|\n  lit\n  eral",
            "|-\n  keep\n\n  gap",
            ">\n  folded",
            "http://host:80/p",
            "a: b",
            ">-",
            "- x",
            "?",
            "1e3",
            ".inf",
            "0x1F",
            "@at",
            "`tick",
            "%pct",
            "v1.2.3",
            "\"unterminated",
            "12:30",
        ];
        const KEYS: &[&str] = &[
            "name",
            "app.kubernetes.io/name",
            "$patch",
            "'quoted key'",
            "\"dq\"",
            "1",
            "true",
            "<<",
            "key ",
            "x-y_z",
            "null",
            "a#b",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut answered, mut total) = (0, 0);
        for _ in 0..5000 {
            let mut doc = String::new();
            let mut lines = vec![(0usize, false)];
            for _ in 0..(1 + next(8)) {
                let (indent, in_seq) = lines[next(lines.len())];
                let pad = " ".repeat(indent);
                let key = KEYS[next(KEYS.len())];
                match next(6) {
                    0 => {
                        doc.push_str(&format!("{pad}{key}:\n"));
                        lines.push((indent + 2, false));
                    }
                    1 => {
                        doc.push_str(&format!("{pad}{key}:\n"));
                        let dash = if next(2) == 0 { indent } else { indent + 2 };
                        doc.push_str(&format!(
                            "{}- {}\n",
                            " ".repeat(dash),
                            SCALARS[next(SCALARS.len())]
                        ));
                        lines.push((dash + 2, true));
                    }
                    2 if in_seq => {
                        doc.push_str(&format!(
                            "{}- {key}: {}\n",
                            " ".repeat(indent.saturating_sub(2)),
                            SCALARS[next(SCALARS.len())]
                        ));
                    }
                    3 => doc.push_str(&format!("{pad}# a comment\n")),
                    _ => {
                        let value = SCALARS[next(SCALARS.len())].replace('\n', &format!("\n{pad}"));
                        doc.push_str(&format!("{pad}{key}: {value}\n"));
                    }
                }
            }
            total += 1;
            let expected =
                serde_saphyr::from_str_with_options::<Value>(&doc, super::super::yaml_12()).ok();
            if let Some(fast) = parse(&doc) {
                answered += 1;
                assert_eq!(Some(&fast), expected.as_ref(), "{doc}");
            }
        }
        // Most random documents use something only the full parser handles; enough must not.
        assert!(answered * 20 >= total, "{answered} of {total} answered");
    }

    #[test]
    fn agrees_with_the_full_parser_on_every_tree() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trees");
        let mut files = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    files.push(path);
                }
            }
        }
        let (mut fast_docs, mut all_docs) = (0, 0);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for doc in text.split("\n---\n") {
                let Ok(expected) =
                    serde_saphyr::from_str_with_options::<Value>(doc, super::super::yaml_12())
                else {
                    continue;
                };
                all_docs += 1;
                if let Some(fast) = parse(doc) {
                    fast_docs += 1;
                    assert_eq!(fast, expected, "{}:\n{doc}", file.display());
                }
            }
        }
        // The fast path must actually be the common path.
        assert!(fast_docs * 10 >= all_docs * 8, "{fast_docs} of {all_docs}");
    }
}
