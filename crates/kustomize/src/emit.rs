//! YAML output exactly as `kubectl kustomize` prints it (go-yaml v2 marshalling a JSON-like
//! map): keys in go-yaml's natural order, block style, compact sequences, go-yaml's scalar
//! quoting rules, plain and single-quoted scalars folded past column 80, literal blocks for
//! multi-line strings.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

const BEST_WIDTH: usize = 80;

/// One document (no `---`), ending with a newline.
pub fn document(value: &Value) -> String {
    let mut out = Out {
        text: String::new(),
        column: 0,
    };
    match value {
        Value::Object(m) if !m.is_empty() => out.mapping(m, 0),
        Value::Array(a) if !a.is_empty() => out.sequence(a, 0),
        other => {
            out.scalar(other, 0, false);
            out.newline();
        }
    }
    out.text
}

/// Documents separated by `---`.
pub fn stream(values: &[Value]) -> String {
    values
        .iter()
        .map(document)
        .collect::<Vec<_>>()
        .join("---\n")
}

struct Out {
    text: String,
    column: usize,
}

impl Out {
    fn write(&mut self, s: &str) {
        self.text.push_str(s);
        match s.rfind('\n') {
            Some(i) => self.column = s.len() - i - 1,
            None => self.column += s.chars().count(),
        }
    }

    fn newline(&mut self) {
        self.text.push('\n');
        self.column = 0;
    }

    fn indent(&mut self, n: usize) {
        for _ in 0..n {
            self.text.push(' ');
        }
        self.column = n;
    }

    /// A mapping at `indent`; the cursor is at the start of a line or right after `- `.
    fn mapping(&mut self, map: &Map<String, Value>, indent: usize) {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by(|a, b| natural_cmp(a, b));
        for (i, key) in keys.into_iter().enumerate() {
            if i > 0 || self.column == 0 {
                if self.column != 0 {
                    self.newline();
                }
                self.indent(indent);
            }
            self.string(key, indent, true);
            self.write(":");
            self.value(&map[key], indent);
        }
    }

    /// The value after `key:`, written on the same line when it is a scalar or empty.
    fn value(&mut self, value: &Value, indent: usize) {
        match value {
            Value::Object(m) if !m.is_empty() => {
                self.newline();
                self.mapping(m, indent + 2);
            }
            Value::Array(a) if !a.is_empty() => {
                self.newline();
                self.sequence(a, indent);
            }
            other => {
                self.write(" ");
                self.scalar(other, indent + 2, false);
                if !self.text.ends_with('\n') {
                    self.newline();
                }
            }
        }
        if !self.text.ends_with('\n') {
            self.newline();
        }
    }

    /// A sequence at `indent`; when the cursor is right after a `- ` (a sequence directly
    /// inside a sequence item) the first item goes on that line.
    fn sequence(&mut self, items: &[Value], indent: usize) {
        for item in items {
            if self.column != 0 && !self.text.ends_with("- ") {
                self.newline();
            }
            if self.column == 0 {
                self.indent(indent);
            }
            self.write("- ");
            match item {
                Value::Object(m) if !m.is_empty() => self.mapping(m, indent + 2),
                Value::Array(a) if !a.is_empty() => self.sequence(a, indent + 2),
                other => {
                    self.scalar(other, indent + 2, false);
                    self.newline();
                }
            }
            if self.column != 0 {
                self.newline();
            }
        }
    }

    fn scalar(&mut self, value: &Value, indent: usize, is_key: bool) {
        match value {
            Value::Null => self.write("null"),
            Value::Bool(b) => self.write(if *b { "true" } else { "false" }),
            Value::Number(n) => self.write(&number(n)),
            Value::Object(_) => self.write("{}"),
            Value::Array(_) => self.write("[]"),
            Value::String(s) => self.string(s, indent, is_key),
        }
    }

    fn string(&mut self, s: &str, indent: usize, is_key: bool) {
        let analysis = analyze(s);
        let multiline = s.contains('\n');
        if multiline && !is_key && analysis.block_allowed {
            return self.literal(s, indent);
        }
        if !multiline && resolves_to_string(s) && analysis.plain_allowed {
            return self.plain(s, indent, !is_key);
        }
        if !multiline && !resolves_to_string(s) {
            return self.double_quoted(s, indent, !is_key);
        }
        if analysis.single_allowed && !multiline {
            return self.single_quoted(s, indent, !is_key);
        }
        self.double_quoted(s, indent, !is_key)
    }

    fn plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.folded_words(s, indent, allow_breaks);
    }

    fn single_quoted(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.write("'");
        self.folded_words(&s.replace('\'', "''"), indent, allow_breaks);
        self.write("'");
    }

    /// Write words, breaking the line at a single space once past column 80.
    fn folded_words(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        if !allow_breaks || !s.contains(' ') {
            self.write(s);
            return;
        }
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, b) in bytes.iter().enumerate() {
            let single_space = *b == b' '
                && i > 0
                && bytes[i - 1] != b' '
                && bytes.get(i + 1).is_some_and(|n| *n != b' ');
            if !single_space {
                continue;
            }
            self.write(&s[start..i]);
            if self.column > BEST_WIDTH {
                self.newline();
                self.indent(indent);
            } else {
                self.write(" ");
            }
            start = i + 1;
        }
        self.write(&s[start..]);
    }

    /// A double-quoted scalar, folded as go-yaml folds it: past column 80, a single space
    /// (not the first or last character) becomes a line break and indentation — and a space
    /// that follows such a break is kept by writing `\` before it.
    fn double_quoted(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.write("\"");
        let chars: Vec<char> = s.chars().collect();
        let mut after_space = false;
        for (i, &c) in chars.iter().enumerate() {
            let escaped = match c {
                '"' => Some("\\\"".to_string()),
                '\\' => Some("\\\\".to_string()),
                '\n' => Some("\\n".to_string()),
                '\t' => Some("\\t".to_string()),
                '\r' => Some("\\r".to_string()),
                '\0' => Some("\\0".to_string()),
                c if (c as u32) < 0x20 || c == '\u{7f}' => Some(format!("\\x{:02X}", c as u32)),
                _ => None,
            };
            if let Some(text) = escaped {
                self.write(&text);
                after_space = false;
            } else if c == ' ' {
                let fold = allow_breaks
                    && !after_space
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i != chars.len() - 1;
                if fold {
                    self.newline();
                    self.indent(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.write("\\");
                    }
                } else {
                    self.write(" ");
                }
                after_space = true;
            } else {
                let mut buf = [0u8; 4];
                self.write(c.encode_utf8(&mut buf));
                after_space = false;
            }
        }
        self.write("\"");
    }

    fn literal(&mut self, s: &str, indent: usize) {
        let trailing = s.len() - s.trim_end_matches('\n').len();
        let chomp = match trailing {
            0 => "-",
            1 => "",
            _ => "+",
        };
        let indicator = if s.starts_with(' ') || s.starts_with('\n') {
            "2"
        } else {
            ""
        };
        self.write(&format!("|{indicator}{chomp}"));
        let body = if trailing > 0 { &s[..s.len() - 1] } else { s };
        for line in body.split('\n') {
            self.newline();
            if !line.is_empty() {
                self.indent(indent);
                self.write(line);
            }
        }
        self.newline();
    }
}

/// What go-yaml's emitter allows for a scalar.
struct Analysis {
    plain_allowed: bool,
    single_allowed: bool,
    block_allowed: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            plain_allowed: false,
            single_allowed: true,
            block_allowed: false,
        };
    }
    // Most scalars are ASCII: look at their bytes rather than collecting chars.
    if s.is_ascii() {
        analyze_chars(s.as_bytes())
    } else {
        analyze_chars(&s.chars().collect::<Vec<char>>())
    }
}

fn analyze_chars<C: Copy + Into<char>>(text: &[C]) -> Analysis {
    let at = |i: usize| text.get(i).map(|c| (*c).into());
    let chars = |i: usize| -> char { text[i].into() };
    let blank = |c: Option<char>| c.is_none_or(|c| c == ' ' || c == '\t' || c == '\n' || c == '\r');
    let mut block_indicators = false;
    let mut special = false;
    let mut line_breaks = false;
    let mut space_break = false;
    let mut break_space = false;
    let first = chars(0);
    if "#,[]{}&*!|>'\"%@`".contains(first) {
        block_indicators = true;
    }
    if (first == '?' || first == ':' || first == '-') && blank(at(1)) {
        block_indicators = true;
    }
    for i in 0..text.len() {
        let c = chars(i);
        if i > 0 {
            if c == ':' && blank(at(i + 1)) {
                block_indicators = true;
            }
            if c == '#' && blank(at(i - 1)) {
                block_indicators = true;
            }
        }
        let printable = c == '\n' || c == '\t' || !(c.is_control() || c == '\u{feff}');
        if !printable || c == '\t' {
            special = true;
        }
        if c == '\n' {
            line_breaks = true;
            if i > 0 && chars(i - 1) == ' ' {
                space_break = true;
            }
            if at(i + 1) == Some(' ') {
                break_space = true;
            }
        }
    }
    let leading_space = first == ' ';
    let last = chars(text.len() - 1);
    let trailing_space = last == ' ';
    let leading_break = first == '\n';
    let trailing_break = last == '\n';
    let mut plain = !(leading_space
        || leading_break
        || trailing_space
        || trailing_break
        || block_indicators
        || special);
    if space_break || break_space || line_breaks {
        plain = false;
    }
    let single = !(special || space_break || break_space);
    let block = !(special || trailing_space || space_break);
    Analysis {
        plain_allowed: plain,
        single_allowed: single,
        block_allowed: block,
    }
}

/// Would go-yaml (YAML 1.1 rules) read this plain scalar as a string?
fn resolves_to_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN", "<<",
    ];
    if SPECIAL.contains(&s) {
        return false;
    }
    // Numbers, timestamps and sexagesimals start with a digit, sign or dot.
    if s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) {
        return true;
    }
    !(is_int(s) || is_float(s) || is_timestamp(s) || is_base60(s))
}

fn is_int(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s).replace('_', "");
    if t.is_empty() {
        return false;
    }
    if let Some(b) = t.strip_prefix("0b") {
        return !b.is_empty() && b.chars().all(|c| c == '0' || c == '1');
    }
    if let Some(h) = t.strip_prefix("0x") {
        return !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit());
    }
    t.chars().all(|c| c.is_ascii_digit())
}

fn is_float(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s).replace('_', "");
    if t.is_empty() || t == "." {
        return false;
    }
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t.as_str(), None),
    };
    let digits_ok = !mantissa.is_empty()
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
        && mantissa.matches('.').count() <= 1
        && mantissa.chars().any(|c| c.is_ascii_digit());
    let exp_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    digits_ok && exp_ok && (mantissa.contains('.') || exponent.is_some())
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[4] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
}

fn is_base60(s: &str) -> bool {
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut parts = t.split(':');
    let Some(first) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && !first.is_empty()
        && first.chars().all(|c| c.is_ascii_digit())
        && rest.iter().all(|p| {
            p.len() <= 2 && !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
}

fn number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    go_format_g(f)
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`.
fn go_format_g(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) || exp >= 21 {
        let sign = if exp < 0 { "-" } else { "+" };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let plain = format!("{f}");
    plain
        .strip_suffix(".0")
        .map(str::to_string)
        .unwrap_or(plain)
}

/// go-yaml's key order: runs of digits compare as numbers, non-letters before letters.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    // Keys are almost always ASCII: compare bytes then, without collecting chars.
    if a.is_ascii() && b.is_ascii() {
        natural_cmp_in(a.as_bytes(), b.as_bytes())
    } else {
        natural_cmp_in(
            &a.chars().collect::<Vec<_>>(),
            &b.chars().collect::<Vec<_>>(),
        )
    }
}

fn natural_cmp_in<T: Copy + Into<char>>(a: &[T], b: &[T]) -> Ordering {
    let at = |i: usize| -> char { a[i].into() };
    let bt = |i: usize| -> char { b[i].into() };
    let mut i = 0;
    while i < a.len() && i < b.len() {
        let (ac, bc) = (at(i), bt(i));
        if ac == bc {
            i += 1;
            continue;
        }
        let (al, bl) = (ac.is_alphabetic(), bc.is_alphabetic());
        if al && bl {
            return ac.cmp(&bc);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ac == '0' || bc == '0' {
            let mut j = i;
            while j > 0 && at(j - 1).is_ascii_digit() {
                if at(j - 1) != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
                j -= 1;
            }
        }
        let mut ai = i;
        while ai < a.len() && at(ai).is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(i64::from(at(ai) as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < b.len() && bt(bi).is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(i64::from(bt(bi) as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ac.cmp(&bc);
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_are_quoted_as_kubectl_kustomize_quotes_them() {
        let doc = json!({"data": {
            "at": "@x", "bool": "true", "colon": "a: b", "dash": "- x", "dq": "say \"hi\"", "empty": "",
            "hash": "#x", "num": "123", "octal": "0755", "percent": "%x", "quote": "it's", "spaces": "  lead",
            "star": "*", "tab": "a\tb", "tilde": "~", "unicode": "héllo", "version": "1.0", "null_word": "null",
            "yes1": "yes", "y1": "y", "q": "?x", "eq": "=", "sq": "'x'", "trail": "x ", "colonnospace": "a:b",
            "date": "2001-12-14", "exp": "1e3", "hex": "0x1F", "dot5": ".5", "plus": "+1", "neg": "-1",
        }});
        let expected = "data:\n  at: '@x'\n  bool: \"true\"\n  colon: 'a: b'\n  colonnospace: a:b\n  dash: '- x'\n  date: \"2001-12-14\"\n  dot5: \".5\"\n  dq: say \"hi\"\n  empty: \"\"\n  eq: =\n  exp: \"1e3\"\n  hash: '#x'\n  hex: \"0x1F\"\n  neg: \"-1\"\n  null_word: \"null\"\n  num: \"123\"\n  octal: \"0755\"\n  percent: '%x'\n  plus: \"+1\"\n  q: ?x\n  quote: it's\n  spaces: '  lead'\n  sq: '''x'''\n  star: '*'\n  tab: \"a\\tb\"\n  tilde: \"~\"\n  trail: 'x '\n  unicode: héllo\n  version: \"1.0\"\n  y1: \"y\"\n  yes1: \"yes\"\n";
        assert_eq!(document(&doc), expected);
    }

    #[test]
    fn keys_multiline_folding_and_collections() {
        let doc = json!({
            "a10": "x", "a2": "y", "a.b": "z", "ab": "w", "A": "v", "_u": "u", "1": "n", "x1y": "q", "x01y": "r",
            "long2": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb cccccccccc dddddd",
            "lead": " x\ny", "trailnl": "a\n\n", "multi": "line one\nline two\n", "nl": "x\n",
            "list": ["--a", "-b"], "objs": [{"name": "c", "ports": [{"containerPort": 80}]}],
            "em": {}, "el": [], "n": null, "f": 1.5, "fl": 1.0, "big": 12345678901234i64, "b": true,
        });
        let expected = "_u: u\n\"1\": \"n\"\nA: v\na.b: z\na2: \"y\"\na10: x\nab: w\nb: true\nbig: 12345678901234\nel: []\nem: {}\nf: 1.5\nfl: 1\nlead: |2-\n   x\n  y\nlist:\n- --a\n- -b\nlong2: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n  cccccccccc dddddd\nmulti: |\n  line one\n  line two\n\"n\": null\nnl: |\n  x\nobjs:\n- name: c\n  ports:\n  - containerPort: 80\ntrailnl: |+\n  a\n\nx1y: q\nx01y: r\n";
        assert_eq!(document(&doc), expected);
    }
}
