//! Glob patterns as Argo CD's directory `include`/`exclude` take them (gobwas/glob without
//! separators): `*` and `?` match any characters *including* `/`, `[...]` classes, and
//! `{a,b}` alternatives (also at the top level, as `{*.yaml,*.json}`).

/// Does `path` (slash-separated, relative) match `pattern`?
pub fn matches(pattern: &str, path: &str) -> bool {
    expand_braces(pattern)
        .iter()
        .any(|p| match_from(p.as_bytes(), path.as_bytes()))
}

/// `a{b,c}d` → `abd`, `acd` (nested braces expand recursively).
fn expand_braces(pattern: &str) -> Vec<String> {
    let bytes = pattern.as_bytes();
    let Some(open) = pattern.find('{') else {
        return vec![pattern.to_string()];
    };
    let mut depth = 0;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![pattern.to_string()];
    };
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alternative = &pattern[w[0] + 1..w[1]];
        for expanded in expand_braces(&format!("{head}{alternative}{tail}")) {
            out.push(expanded);
        }
    }
    out
}

fn match_from(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => {
            let rest = p
                .iter()
                .position(|&c| c != b'*')
                .map_or(&p[p.len()..], |i| &p[i..]);
            (0..=s.len()).any(|i| match_from(rest, &s[i..]))
        }
        Some(b'?') => !s.is_empty() && match_from(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(end) = p.iter().position(|&c| c == b']') else {
                return false;
            };
            let Some(&c) = s.first() else { return false };
            let class = &p[1..end];
            let (negate, class) = match class.first() {
                Some(b'!' | b'^') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && match_from(&p[end + 1..], &s[1..])
        }
        Some(&c) => s.first() == Some(&c) && match_from(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("*.yaml", "a.yaml"));
        assert!(
            matches("*.yaml", "dir/a.yaml"),
            "Argo's globs have no separator"
        );
        assert!(matches("**/*.yaml", "dir/sub/a.yaml"));
        assert!(
            !matches("**/*.yaml", "a.yaml"),
            "gobwas needs the literal slash"
        );
        assert!(matches("{*.yaml,*.json}", "a.json"));
        assert!(matches("config/{dev,prod}/*.yml", "config/prod/x.yml"));
        assert!(!matches("config/{dev,prod}/*.yml", "config/test/x.yml"));
        assert!(matches("file-?.yaml", "file-1.yaml"));
        assert!(matches("[a-c]*.yaml", "b.yaml"));
        assert!(!matches("[!a-c]*.yaml", "b.yaml"));
    }
}
