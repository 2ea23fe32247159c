//! The `*` wildcard Argo CD accepts in project sources and destinations, resource kinds,
//! ignoreDifferences and health-script keys: `*` matches any run of characters (including `/`).

/// Whether `value` matches `pattern`.
pub fn matches(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((prefix, rest)) => {
            let Some(tail) = value.strip_prefix(prefix) else {
                return false;
            };
            rest.is_empty()
                || (0..=tail.len())
                    .filter(|i| tail.is_char_boundary(*i))
                    .any(|i| matches(rest, &tail[i..]))
        }
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
}
