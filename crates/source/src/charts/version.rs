//! Chart versions and the constraints `targetRevision` may hold, as Helm reads them
//! (Masterminds semver): an exact version (`1.16.2`, `v1.16.2`), a wildcard (`1.16.x`, `*`),
//! comparisons joined by spaces or commas (`>=1.2 <2`), caret and tilde ranges, hyphen ranges
//! (`1.2 - 1.4`) and alternatives (`^1 || ^2`). Pre-releases match only a constraint that
//! names one, and the highest matching version wins.

use semver::{Version, VersionReq};

/// A version as chart indexes write them: a leading `v` and missing minor or patch parts are
/// tolerated (`v1.2` is 1.2.0).
pub fn parse(text: &str) -> Option<Version> {
    let text = text.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    if let Ok(v) = Version::parse(text) {
        return Some(v);
    }
    // `1.2` or `1` with an optional pre-release/build suffix: pad the numeric core.
    let split = text.find(['-', '+']).unwrap_or(text.len());
    let (core, rest) = text.split_at(split);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() < 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        let mut padded = parts.join(".");
        for _ in parts.len()..3 {
            padded.push_str(".0");
        }
        return Version::parse(&format!("{padded}{rest}")).ok();
    }
    None
}

/// What a `targetRevision` asks of a chart.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// One exact version (also how it is asked for in an OCI registry, without listing tags).
    Exact(Version),
    /// Any of these ranges; empty means "the latest release".
    Ranges(Vec<VersionReq>),
}

impl Constraint {
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let text = text.trim();
        if text.is_empty() || text == "*" || text == "latest" || text == "HEAD" {
            return Ok(Constraint::Ranges(Vec::new()));
        }
        let full_version = {
            let t = text.strip_prefix('v').unwrap_or(text);
            t.split(['-', '+'])
                .next()
                .unwrap_or_default()
                .split('.')
                .count()
                == 3
        };
        if full_version && let Some(v) = parse(text).filter(|_| !text.contains(' ')) {
            return Ok(Constraint::Exact(v));
        }
        text.split("||")
            .map(|alternative| range(alternative.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map(Constraint::Ranges)
    }

    pub fn matches(&self, version: &Version) -> bool {
        match self {
            Constraint::Exact(v) => v == version,
            Constraint::Ranges(ranges) if ranges.is_empty() => version.pre.is_empty(),
            Constraint::Ranges(ranges) => ranges.iter().any(|r| r.matches(version)),
        }
    }

    /// The highest of `versions` this allows (the text as written there).
    pub fn select<'a>(&self, versions: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        versions
            .into_iter()
            .filter_map(|text| parse(text).map(|v| (v, text)))
            .filter(|(v, _)| self.matches(v))
            .max_by(|(a, _), (b, _)| a.cmp(b))
            .map(|(_, text)| text)
    }
}

/// One alternative: comparators separated by spaces or commas, or a hyphen range.
fn range(text: &str) -> Result<VersionReq, String> {
    let comparators: Vec<String> = if let Some((low, high)) = text.split_once(" - ") {
        vec![format!(">={}", bare(low)), format!("<={}", bare(high))]
    } else {
        let mut out: Vec<String> = Vec::new();
        let mut pending_operator = String::new();
        for token in text.split([' ', ',']).filter(|t| !t.is_empty()) {
            if token.bytes().all(|b| b"<>=!~^".contains(&b)) {
                pending_operator = token.to_string();
                continue;
            }
            let token = format!("{}{token}", std::mem::take(&mut pending_operator));
            out.push(comparator(&token));
        }
        out
    };
    if comparators.is_empty() {
        return Err(format!("{text:?} is not a version constraint"));
    }
    VersionReq::parse(&comparators.join(", "))
        .map_err(|e| format!("{text:?} is not a version constraint: {e}"))
}

/// One comparator in the semver crate's syntax. A bare version means equality in Helm's
/// (`1.2` is any 1.2.x), where the semver crate would read a caret.
fn comparator(token: &str) -> String {
    let split = token
        .find(|c: char| c.is_ascii_alphanumeric() || c == '*')
        .unwrap_or(token.len());
    let (operator, version) = token.split_at(split);
    let version = bare(version);
    if version == "*" || version.eq_ignore_ascii_case("x") {
        return "*".to_string();
    }
    match operator {
        "" => {
            if version.contains(['x', 'X', '*']) {
                version
            } else {
                format!("={version}")
            }
        }
        "==" => format!("={version}"),
        "=>" => format!(">={version}"),
        "=<" => format!("<={version}"),
        op => format!("{op}{version}"),
    }
}

fn bare(version: &str) -> String {
    let v = version.trim();
    v.strip_prefix('v').unwrap_or(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(constraint: &str, versions: &[&'static str]) -> Option<&'static str> {
        Constraint::parse(constraint)
            .unwrap()
            .select(versions.iter().copied())
    }

    const VERSIONS: &[&str] = &[
        "1.15.3",
        "1.16.0",
        "1.16.2",
        "v1.16.10",
        "1.17.0-rc.1",
        "1.17.0",
        "2.0.0",
        "2.1.0-beta",
    ];

    #[test]
    fn exact_versions_and_wildcards() {
        assert_eq!(pick("1.16.2", VERSIONS), Some("1.16.2"));
        assert_eq!(pick("v1.16.2", VERSIONS), Some("1.16.2"));
        assert_eq!(pick("1.16.10", VERSIONS), Some("v1.16.10"));
        assert_eq!(pick("1.16.5", VERSIONS), None);
        assert_eq!(pick("1.16.x", VERSIONS), Some("v1.16.10"));
        assert_eq!(pick("1.16.*", VERSIONS), Some("v1.16.10"));
        assert_eq!(pick("1.16", VERSIONS), Some("v1.16.10"));
        assert_eq!(pick("1.x", VERSIONS), Some("1.17.0"));
        assert_eq!(pick("*", VERSIONS), Some("2.0.0"));
        assert_eq!(pick("", VERSIONS), Some("2.0.0"));
        assert_eq!(pick("1.17.0-rc.1", VERSIONS), Some("1.17.0-rc.1"));
    }

    #[test]
    fn ranges_as_helm_writes_them() {
        assert_eq!(pick("^1.15", VERSIONS), Some("1.17.0"));
        assert_eq!(pick("~1.16.0", VERSIONS), Some("v1.16.10"));
        assert_eq!(pick(">=1.16.0 <1.17.0", VERSIONS), Some("v1.16.10"));
        assert_eq!(pick(">= 1.16, < 1.17", VERSIONS), Some("v1.16.10"));
        assert_eq!(pick("1.15 - 1.16.2", VERSIONS), Some("1.16.2"));
        assert_eq!(pick("<1.16 || >=2", VERSIONS), Some("2.0.0"));
        assert_eq!(pick(">3", VERSIONS), None);
        assert!(Constraint::parse(">=").is_err());
        assert!(Constraint::parse("banana").is_err());
    }

    #[test]
    fn lenient_versions() {
        assert_eq!(parse("v1.2"), Version::parse("1.2.0").ok());
        assert_eq!(parse("3"), Version::parse("3.0.0").ok());
        assert_eq!(parse("1.2-rc1"), Version::parse("1.2.0-rc1").ok());
        assert_eq!(parse("latest"), None);
    }
}
