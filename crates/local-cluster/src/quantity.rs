//! Resource quantities in canonical form, as the API server rewrites them on the way in
//! (`1000m` → `1`, `1024Mi` → `1Gi`, `0.5` → `500m`, `2000` → `2k`).

/// Canonical form of a quantity string, or None when it is not a valid quantity.
pub fn canonicalize(input: &str) -> Option<String> {
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() {
        return None;
    }
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .chars()
        .chain(frac_part.chars())
        .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // value = mantissa × 10^exp10 × 2^exp2
    let mantissa: i128 = format!("{int_part}{frac_part}").parse().ok()?;
    let mut exp10: i32 = -(frac_part.len() as i32);
    let (binary, exp2, suffix_exp10) = match suffix {
        "Ki" => (true, 10, 0),
        "Mi" => (true, 20, 0),
        "Gi" => (true, 30, 0),
        "Ti" => (true, 40, 0),
        "Pi" => (true, 50, 0),
        "Ei" => (true, 60, 0),
        "n" => (false, 0, -9),
        "u" => (false, 0, -6),
        "m" => (false, 0, -3),
        "" => (false, 0, 0),
        "k" => (false, 0, 3),
        "M" => (false, 0, 6),
        "G" => (false, 0, 9),
        "T" => (false, 0, 12),
        "P" => (false, 0, 15),
        "E" => (false, 0, 18),
        other => {
            let e = other.strip_prefix(['e', 'E'])?.parse::<i32>().ok()?;
            (false, 0, e)
        }
    };
    exp10 += suffix_exp10;
    if mantissa == 0 {
        return Some("0".to_string());
    }
    let sign = if negative { "-" } else { "" };

    if binary {
        // Exact value in bytes needs mantissa × 2^exp2 / 10^-exp10 to be an integer.
        let mut value = mantissa.checked_mul(1i128 << exp2)?;
        let mut e = exp10;
        while e < 0 {
            if value % 10 != 0 {
                return Some(format!("{sign}{}", decimal(mantissa, exp10, exp2)?));
            }
            value /= 10;
            e += 1;
        }
        for _ in 0..e {
            value = value.checked_mul(10)?;
        }
        let mut unit = 0;
        while unit < 6 && value % 1024 == 0 && value >= 1024 {
            value /= 1024;
            unit += 1;
        }
        if unit == 0 && value >= 1024 {
            // Not a whole number of KiB: the server falls back to decimal.
            return Some(format!("{sign}{}", decimal(value, 0, 0)?));
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][unit];
        return Some(format!("{sign}{value}{suffix}"));
    }
    Some(format!("{sign}{}", decimal(mantissa, exp10, 0)?))
}

/// Decimal SI form: the largest multiple-of-3 exponent that keeps the mantissa whole.
fn decimal(mantissa: i128, exp10: i32, exp2: u32) -> Option<String> {
    let mut m = mantissa.checked_mul(1i128 << exp2)?;
    let mut e = exp10;
    while m % 10 == 0 && m != 0 {
        m /= 10;
        e += 1;
    }
    // Round the exponent down to a multiple of 3 (at least nano).
    let target = e.div_euclid(3) * 3;
    let target = target.clamp(-9, 18);
    for _ in 0..(e - target) {
        m = m.checked_mul(10)?;
    }
    if e < -9 {
        // Finer than nano: the server rounds up to 1n granularity.
        return Some(format!("{}n", m.max(1)));
    }
    let suffix = match target {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => return None,
    };
    Some(format!("{m}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::canonicalize;

    #[test]
    fn canonical_forms_match_the_api_server() {
        let cases = [
            ("1000m", "1"),
            ("1024Mi", "1Gi"),
            ("0.5", "500m"),
            ("100m", "100m"),
            ("64Mi", "64Mi"),
            ("2000", "2k"),
            ("1.5Gi", "1536Mi"),
            ("1500m", "1500m"),
            ("1", "1"),
            ("0", "0"),
            ("128974848", "128974848"),
            ("1e3", "1k"),
            ("512Ki", "512Ki"),
            ("1.5", "1500m"),
            ("250M", "250M"),
        ];
        for (input, want) in cases {
            assert_eq!(canonicalize(input).as_deref(), Some(want), "{input}");
        }
        assert_eq!(canonicalize("abc"), None);
        assert_eq!(canonicalize("1Qi"), None);
    }
}
