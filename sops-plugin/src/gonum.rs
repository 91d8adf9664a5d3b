//! Go's number formatting and parsing (`strconv`, `encoding/json`) as sops' stores and value
//! encryption need them: the same value must print and hash exactly as sops prints it. A leaf
//! module: it depends on nothing else in the crate.

/// Go `strconv.ParseFloat` with the specials sops writes.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Go `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, never an exponent.
pub(crate) fn format_float_f(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{f}")
    }
}

/// Go `strconv.FormatFloat(f, 'g', -1, 64)` with YAML's spellings of the specials.
pub(crate) fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (neg, digits, exp) = shortest_digits(f);
    let nd = digits.len() as i32;
    let mut eprec = 6;
    let dp = exp + 1;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if exp < -4 || exp >= eprec {
        s.push_str(&go_e_format(&digits, exp));
    } else {
        s.push_str(&format!("{}", f.abs()));
    }
    s
}

/// Shortest round-trip decimal digits and the decimal exponent (d.ddd × 10^exp).
fn shortest_digits(f: f64) -> (bool, String, i32) {
    let e = format!("{:e}", f.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    (f.is_sign_negative(), digits, exp.parse().unwrap_or(0))
}

/// Go's `%e` form of shortest digits: `d.ddde+XX` (at least two exponent digits).
fn go_e_format(digits: &str, exp: i32) -> String {
    let mut s = String::new();
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    s.push('e');
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
    s
}

/// Go `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) =
        if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, d)
        } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, d)
        } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, d)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = i128::from_str_radix(digits, radix).ok()?;
    let v = if neg { -mag } else { mag };
    i64::try_from(v).ok()
}

/// Go `encoding/json` float formatting.
pub(crate) fn go_json_float(f: f64) -> String {
    if !f.is_finite() {
        // Go refuses these; write null rather than invalid JSON.
        return "null".into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let (neg, digits, exp) = shortest_digits(f);
        let mut s = go_e_format(&digits, exp);
        // Go trims "e-07" to "e-7".
        if let Some(p) = s.find("e-0") {
            s.remove(p + 2);
        }
        if neg { format!("-{s}") } else { s }
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_format_matches_go() {
        assert_eq!(format_float_f(1000.0), "1000");
        assert_eq!(format_float_f(1e21), "1000000000000000000000");
        assert_eq!(format_float_f(2.71), "2.71");
        assert_eq!(format_float_f(3.0), "3");
    }

    #[test]
    fn go_floats() {
        assert_eq!(go_json_float(1e21), "1e+21");
        assert_eq!(go_json_float(2.5), "2.5");
        assert_eq!(go_json_float(3.0), "3");
        assert_eq!(go_json_float(1e-7), "1e-7");
    }

    #[test]
    fn floats_like_go() {
        assert_eq!(format_float_g(1000.0), "1000");
        assert_eq!(format_float_g(1.234568e9), "1.234568e+09");
        assert_eq!(format_float_g(2.71), "2.71");
        assert_eq!(format_float_g(1e21), "1e+21");
        assert_eq!(format_float_g(0.0001), "0.0001");
        assert_eq!(format_float_g(0.00001), "1e-05");
    }
}
