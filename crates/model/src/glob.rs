//! The glob patterns Argo CD accepts in project sources and destinations, RBAC policies,
//! resource kinds, ignoreDifferences and health-script keys — gobwas/glob without
//! separators: `*` matches any run of characters (including `/`), `?` one character,
//! `[abc]`, `[a-z]` and `[!abc]` a class, `{a,b}` alternatives, and `\` escapes the next
//! character. A malformed pattern (an unclosed `[` or `{`) matches only itself.

/// Whether `value` matches `pattern`.
pub fn matches(pattern: &str, value: &str) -> bool {
    if !pattern.contains(['*', '?', '[', '{', '\\']) {
        return pattern == value;
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    match_at(&p, &v).unwrap_or(pattern == value)
}

/// None when the pattern is malformed.
fn match_at(p: &[char], v: &[char]) -> Option<bool> {
    let Some((&first, rest)) = p.split_first() else {
        return Some(v.is_empty());
    };
    match first {
        '*' => {
            for i in 0..=v.len() {
                if match_at(rest, &v[i..])? {
                    return Some(true);
                }
            }
            Some(false)
        }
        '?' => match v.split_first() {
            Some((_, tail)) => match_at(rest, tail),
            None => Some(false),
        },
        '\\' => {
            let (&escaped, rest) = rest.split_first()?;
            match v.split_first() {
                Some((&c, tail)) if c == escaped => match_at(rest, tail),
                _ => Some(false),
            }
        }
        '[' => {
            let close = rest.iter().position(|&c| c == ']')?;
            let (class, after) = (&rest[..close], &rest[close + 1..]);
            let (negate, class) = match class.split_first() {
                Some(('!', tail)) => (true, tail),
                _ => (false, class),
            };
            let Some((&c, tail)) = v.split_first() else {
                return Some(false);
            };
            let mut inside = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    inside |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    inside |= class[i] == c;
                    i += 1;
                }
            }
            if inside != negate {
                match_at(after, tail)
            } else {
                Some(false)
            }
        }
        '{' => {
            // The alternatives up to the matching `}` (nested braces allowed).
            let mut depth = 0;
            let mut end = None;
            let mut starts = vec![0];
            for (i, &c) in rest.iter().enumerate() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        end = Some(i);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => starts.push(i + 1),
                    _ => {}
                }
            }
            let end = end?;
            let after = &rest[end + 1..];
            let mut bounds = starts.clone();
            bounds.push(end + 1);
            for w in bounds.windows(2) {
                let alternative = &rest[w[0]..w[1] - 1];
                let mut candidate: Vec<char> = alternative.to_vec();
                candidate.extend_from_slice(after);
                if match_at(&candidate, v)? {
                    return Some(true);
                }
            }
            Some(false)
        }
        c => match v.split_first() {
            Some((&x, tail)) if x == c => match_at(rest, tail),
            _ => Some(false),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_match_any_run() {
        assert!(matches("*", ""));
        assert!(matches(
            "https://github.com/myorg/*",
            "https://github.com/myorg/a/b"
        ));
        assert!(matches("*.example.com_*", "a.example.com_Widget"));
        assert!(matches("team-*-prod", "team-a-prod"));
        assert!(!matches("team-*-prod", "team-a-dev"));
        assert!(!matches("apps", "apps2"));
    }

    #[test]
    fn classes_alternatives_and_escapes() {
        assert!(matches("web-?", "web-1"));
        assert!(!matches("web-?", "web-12"));
        assert!(matches("team-{a,b}/*", "team-b/api"));
        assert!(!matches("team-{a,b}/*", "team-c/api"));
        assert!(matches("{prod-{eu,us},staging}", "prod-us"));
        assert!(matches("v[0-9]", "v7"));
        assert!(!matches("v[!0-9]", "v7"));
        assert!(matches("a\\*b", "a*b"));
        assert!(!matches("a\\*b", "axb"));
        // Malformed: only itself.
        assert!(matches("[oops", "[oops"));
        assert!(!matches("[oops", "o"));
    }
}
