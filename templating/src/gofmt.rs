//! Go's `fmt` as templates reach it: `print`, `println`, `printf` and the default way an action
//! prints a value. Byte for byte with Go for strings, ints, floats, bools, nil, lists and maps,
//! including the inline error forms (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA …)`).

use crate::value::Value;

/// Go refuses widths and precisions above this (`%!(BADWIDTH)`); it also bounds padding.
const MAX_WIDTH: usize = 10_000_000;

/// `%v` of a value (fmt.Fprint of one operand).
pub(crate) fn write_value(out: &mut Vec<u8>, v: &Value) {
    let mut f = Formatter::default();
    f.print_value(out, v, 'v');
}

/// fmt.Sprint: spaces between operands when neither side is a string.
pub(crate) fn sprint(args: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            out.push(b' ');
        }
        write_value(&mut out, a);
        prev_string = is_string;
    }
    out
}

/// fmt.Sprintln: spaces between all operands and a final newline.
pub(crate) fn sprintln(args: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_value(&mut out, a);
    }
    out.push(b'\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Formatter {
    /// `%#v`: Go syntax (only strings differ here: they print quoted).
    sharp_v: bool,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

/// fmt.Sprintf.
pub(crate) fn sprintf(format: &[u8], args: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut arg_num = 0usize;
    let mut reordered = false;
    let mut i = 0;
    let end = format.len();
    while i < end {
        let start = i;
        while i < end && format[i] != b'%' {
            i += 1;
        }
        out.extend_from_slice(&format[start..i]);
        if i >= end {
            break;
        }
        i += 1; // '%'
        let mut f = Formatter::default();
        while i < end {
            match format[i] {
                b'#' => f.sharp = true,
                b'0' => f.zero = !f.minus,
                b'+' => f.plus = true,
                b'-' => {
                    f.minus = true;
                    f.zero = false;
                }
                b' ' => f.space = true,
                _ => break,
            }
            i += 1;
        }
        let mut good_arg_num = true;
        // Argument index, width.
        let (n, ni, ok) = arg_number(format, i, arg_num, args.len());
        reordered |= ni != i;
        arg_num = n;
        i = ni;
        if !ok {
            good_arg_num = false;
        }
        if i < end && format[i] == b'*' {
            i += 1;
            match int_from_arg(args, &mut arg_num) {
                Some(w) if w < 0 => {
                    f.minus = true;
                    f.zero = false;
                    f.wid = Some(w.unsigned_abs() as usize);
                }
                Some(w) => f.wid = Some(w as usize),
                None => out.extend_from_slice(b"%!(BADWIDTH)"),
            }
            if f.wid.is_some_and(|w| w > MAX_WIDTH) {
                f.wid = None;
                out.extend_from_slice(b"%!(BADWIDTH)");
            }
        } else {
            let (w, ni) = parse_num(format, i);
            if let Some(w) = w {
                if w > MAX_WIDTH {
                    out.extend_from_slice(b"%!(BADWIDTH)");
                } else {
                    f.wid = Some(w);
                }
            }
            i = ni;
        }
        // Precision.
        if i < end && format[i] == b'.' {
            i += 1;
            let (n, ni, ok) = arg_number(format, i, arg_num, args.len());
            arg_num = n;
            i = ni;
            if !ok {
                good_arg_num = false;
            }
            if i < end && format[i] == b'*' {
                i += 1;
                match int_from_arg(args, &mut arg_num) {
                    Some(p) if p >= 0 && (p as usize) <= MAX_WIDTH => f.prec = Some(p as usize),
                    Some(p) if p < 0 => f.prec = None,
                    _ => out.extend_from_slice(b"%!(BADPREC)"),
                }
            } else {
                let (p, ni) = parse_num(format, i);
                i = ni;
                match p {
                    Some(p) if p > MAX_WIDTH => out.extend_from_slice(b"%!(BADPREC)"),
                    Some(p) => f.prec = Some(p),
                    None => f.prec = Some(0),
                }
            }
        }
        let (n, ni, ok) = arg_number(format, i, arg_num, args.len());
        if ni != i {
            reordered = true;
        }
        arg_num = n;
        i = ni;
        if !ok {
            good_arg_num = false;
        }
        if i >= end {
            out.extend_from_slice(b"%!(NOVERB)");
            break;
        }
        let (verb, size) = decode_rune(&format[i..]);
        i += size;
        if verb == '%' {
            out.push(b'%');
            continue;
        }
        if !good_arg_num {
            out.extend_from_slice(b"%!");
            push_char(&mut out, verb);
            out.extend_from_slice(b"(BADINDEX)");
            continue;
        }
        if arg_num >= args.len() {
            out.extend_from_slice(b"%!");
            push_char(&mut out, verb);
            out.extend_from_slice(b"(MISSING)");
            continue;
        }
        let arg = &args[arg_num];
        arg_num += 1;
        if verb == 'v' {
            // `#` and `+` mean %#v and %+v, not the flags of the element verbs.
            f.sharp_v = std::mem::take(&mut f.sharp);
            f.plus = false;
        }
        if verb == 'w' {
            // Sprintf has no error to wrap.
            out.extend_from_slice(b"%!w(");
            out.extend_from_slice(arg.type_name().as_bytes());
            out.push(b'=');
            write_value(&mut out, arg);
            out.push(b')');
            continue;
        }
        f.print_value(&mut out, arg, verb);
    }
    if !reordered && arg_num < args.len() {
        out.extend_from_slice(b"%!(EXTRA ");
        for (k, a) in args[arg_num..].iter().enumerate() {
            if k > 0 {
                out.extend_from_slice(b", ");
            }
            if matches!(a, Value::Nil) {
                out.extend_from_slice(b"<nil>");
            } else {
                out.extend_from_slice(a.type_name().as_bytes());
                out.push(b'=');
                write_value(&mut out, a);
            }
        }
        out.push(b')');
    }
    out
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Decodes one UTF-8 character; an invalid byte is U+FFFD of length 1, as in Go.
pub(crate) fn decode_rune(b: &[u8]) -> (char, usize) {
    let max = b.len().min(4);
    for len in 1..=max {
        if let Ok(s) = std::str::from_utf8(&b[..len])
            && let Some(c) = s.chars().next()
        {
            return (c, len);
        }
    }
    ('\u{FFFD}', 1)
}

fn parse_num(format: &[u8], mut i: usize) -> (Option<usize>, usize) {
    let start = i;
    let mut n: usize = 0;
    while i < format.len() && format[i].is_ascii_digit() {
        n = n
            .saturating_mul(10)
            .saturating_add((format[i] - b'0') as usize);
        i += 1;
    }
    if i == start { (None, i) } else { (Some(n), i) }
}

/// `[n]` argument indexes: returns (arg_num, new position, ok).
fn arg_number(format: &[u8], i: usize, arg_num: usize, num_args: usize) -> (usize, usize, bool) {
    if i >= format.len() || format[i] != b'[' {
        return (arg_num, i, true);
    }
    for j in i + 1..format.len() {
        if format[j] == b']' {
            let (n, ni) = parse_num(format, i + 1);
            return match n {
                Some(n) if ni == j && n >= 1 && n <= num_args => (n - 1, j + 1, true),
                _ => (arg_num, j + 1, false),
            };
        }
    }
    (arg_num, i, false)
}

fn int_from_arg(args: &[Value], arg_num: &mut usize) -> Option<i64> {
    let v = args.get(*arg_num)?;
    *arg_num += 1;
    match v {
        Value::Int(i) | Value::Int64(i) if i.unsigned_abs() <= MAX_WIDTH as u64 => Some(*i),
        _ => None,
    }
}

impl Formatter {
    fn print_value(&mut self, out: &mut Vec<u8>, v: &Value, verb: char) {
        if verb == 'T' {
            self.pad(out, v.type_name().as_bytes());
            return;
        }
        match v {
            Value::Nil => match verb {
                'v' => self.pad(out, b"<nil>"),
                _ => self.bad_verb(out, v, verb),
            },
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad(out, if *b { b"true" } else { b"false" }),
                _ => self.bad_verb(out, v, verb),
            },
            Value::Int(i) | Value::Int64(i) => self.fmt_int(out, *i, verb, v),
            Value::Float(x) => self.fmt_float_verb(out, *x, verb, v),
            Value::Str(s) => match verb {
                'v' if self.sharp_v => self.fmt_q(out, s),
                'v' | 's' => self.fmt_s(out, s),
                'x' => self.fmt_sx(out, s, b"0123456789abcdef"),
                'X' => self.fmt_sx(out, s, b"0123456789ABCDEF"),
                'q' => self.fmt_q(out, s),
                _ => self.bad_verb(out, v, verb),
            },
            Value::List(items) => {
                out.push(b'[');
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        out.push(b' ');
                    }
                    match item {
                        Value::Nil => self.pad(out, b"<nil>"),
                        other => self.print_value(out, other, verb),
                    }
                }
                out.push(b']');
            }
            Value::Object(o) => match verb {
                'v' | 's' => self.fmt_s(out, &o.display()),
                _ => self.bad_verb(out, v, verb),
            },
            Value::Map(m) => {
                out.extend_from_slice(b"map[");
                for (k, (key, item)) in m.borrow().entries.iter().enumerate() {
                    if k > 0 {
                        out.push(b' ');
                    }
                    self.print_value(out, &Value::str(key.as_bytes()), verb);
                    out.push(b':');
                    match item {
                        Value::Nil => self.pad(out, b"<nil>"),
                        other => self.print_value(out, other, verb),
                    }
                }
                out.push(b']');
            }
        }
    }

    fn bad_verb(&mut self, out: &mut Vec<u8>, v: &Value, verb: char) {
        out.extend_from_slice(b"%!");
        push_char(out, verb);
        out.push(b'(');
        match v {
            Value::Nil => out.extend_from_slice(b"<nil>"),
            _ => {
                out.extend_from_slice(v.type_name().as_bytes());
                out.push(b'=');
                let mut plain = Formatter::default();
                plain.print_value(out, v, 'v');
            }
        }
        out.push(b')');
    }

    /// Pads with spaces (or zeros) to the width, counting characters as Go does.
    fn pad(&self, out: &mut Vec<u8>, b: &[u8]) {
        let Some(wid) = self.wid else {
            out.extend_from_slice(b);
            return;
        };
        let count = String::from_utf8_lossy(b).chars().count();
        if count >= wid {
            out.extend_from_slice(b);
            return;
        }
        let fill = wid - count;
        if self.minus {
            out.extend_from_slice(b);
            out.extend(std::iter::repeat_n(b' ', fill));
        } else {
            let c = if self.zero { b'0' } else { b' ' };
            out.extend(std::iter::repeat_n(c, fill));
            out.extend_from_slice(b);
        }
    }

    fn fmt_s(&self, out: &mut Vec<u8>, s: &[u8]) {
        let s = match self.prec {
            Some(p) => truncate_runes(s, p),
            None => s,
        };
        self.pad(out, s);
    }

    fn fmt_sx(&self, out: &mut Vec<u8>, s: &[u8], digits: &[u8; 16]) {
        let s = match self.prec {
            Some(p) if p < s.len() => &s[..p],
            _ => s,
        };
        let mut buf = Vec::with_capacity(s.len() * 2);
        for (k, c) in s.iter().enumerate() {
            if self.space && k > 0 {
                buf.push(b' ');
            }
            if self.sharp && (self.space || k == 0) {
                buf.push(b'0');
                buf.push(if digits[10] == b'a' { b'x' } else { b'X' });
            }
            buf.push(digits[(c >> 4) as usize]);
            buf.push(digits[(c & 15) as usize]);
        }
        self.pad(out, &buf);
    }

    fn fmt_q(&self, out: &mut Vec<u8>, s: &[u8]) {
        let s = match self.prec {
            Some(p) => truncate_runes(s, p),
            None => s,
        };
        if self.sharp
            && let Ok(text) = std::str::from_utf8(s)
            && can_backquote(text)
        {
            let mut buf = Vec::with_capacity(s.len() + 2);
            buf.push(b'`');
            buf.extend_from_slice(s);
            buf.push(b'`');
            self.pad(out, &buf);
            return;
        }
        let q = quote(s, b'"', self.plus);
        self.pad(out, &q);
    }

    fn fmt_int(&mut self, out: &mut Vec<u8>, i: i64, verb: char, v: &Value) {
        match verb {
            'v' | 'd' => self.fmt_integer(out, i, 10, verb, b"0123456789abcdef"),
            'b' => self.fmt_integer(out, i, 2, verb, b"0123456789abcdef"),
            'o' | 'O' => self.fmt_integer(out, i, 8, verb, b"0123456789abcdef"),
            'x' => self.fmt_integer(out, i, 16, verb, b"0123456789abcdef"),
            'X' => self.fmt_integer(out, i, 16, verb, b"0123456789ABCDEF"),
            'c' => {
                let c = rune_of(i);
                let mut buf = [0u8; 4];
                self.pad(out, c.encode_utf8(&mut buf).as_bytes());
            }
            'q' => {
                let c = rune_of(i);
                let mut buf = [0u8; 4];
                let q = quote(c.encode_utf8(&mut buf).as_bytes(), b'\'', self.plus);
                self.pad(out, &q);
            }
            'U' => {
                let mut s = format!("U+{:04X}", i as u64);
                if self.sharp
                    && let Ok(c) = u32::try_from(i).map(char::from_u32)
                    && let Some(c) = c
                {
                    s.push_str(&format!(" '{c}'"));
                }
                self.pad(out, s.as_bytes());
            }
            _ => self.bad_verb(out, v, verb),
        }
    }

    /// Go's fmtInteger: precision and zero padding as minimum digits, `#` prefixes, signs.
    fn fmt_integer(&mut self, out: &mut Vec<u8>, i: i64, base: u64, verb: char, digits: &[u8]) {
        let negative = i < 0;
        let mut u = i.unsigned_abs();
        let mut prec = 0usize;
        if let Some(p) = self.prec {
            prec = p;
            if p == 0 && u == 0 {
                let saved = self.zero;
                self.zero = false;
                self.pad(out, b"");
                self.zero = saved;
                return;
            }
        } else if self.zero
            && let Some(w) = self.wid
        {
            prec = w;
            if negative || self.plus || self.space {
                prec = prec.saturating_sub(1);
            }
        }
        let mut buf: Vec<u8> = Vec::new();
        loop {
            buf.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while buf.len() < prec {
            buf.push(b'0');
        }
        if self.sharp {
            match base {
                2 => buf.extend_from_slice(b"b0"),
                8 if buf.last() != Some(&b'0') => buf.push(b'0'),
                16 => {
                    buf.push(if digits[10] == b'a' { b'x' } else { b'X' });
                    buf.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            buf.extend_from_slice(b"o0");
        }
        if negative {
            buf.push(b'-');
        } else if self.plus {
            buf.push(b'+');
        } else if self.space {
            buf.push(b' ');
        }
        buf.reverse();
        let saved = self.zero;
        self.zero = false;
        self.pad(out, &buf);
        self.zero = saved;
    }

    fn fmt_float_verb(&mut self, out: &mut Vec<u8>, x: f64, verb: char, v: &Value) {
        match verb {
            'v' => self.fmt_float(out, x, 'g', None),
            'g' | 'G' => self.fmt_float(out, x, verb, None),
            'e' | 'E' | 'f' | 'F' => self.fmt_float(out, x, verb, Some(6)),
            _ => self.bad_verb(out, v, verb),
        }
    }

    fn fmt_float(&mut self, out: &mut Vec<u8>, x: f64, verb: char, default_prec: Option<usize>) {
        let prec = self.prec.or(default_prec);
        let mut num = format_float(x, verb, prec).into_bytes();
        if num[0] != b'-' && num[0] != b'+' {
            num.insert(0, b'+');
        }
        if self.space && num[0] == b'+' && !self.plus {
            num[0] = b' ';
        }
        if num[1] == b'I' || num[1] == b'N' {
            let saved = self.zero;
            self.zero = false;
            if num[1] == b'N' && !self.space && !self.plus {
                num.remove(0);
            }
            self.pad(out, &num);
            self.zero = saved;
            return;
        }
        if self.plus || num[0] != b'+' {
            if self.zero
                && let Some(w) = self.wid
                && w > num.len()
            {
                out.push(num[0]);
                out.extend(std::iter::repeat_n(b'0', w - num.len()));
                out.extend_from_slice(&num[1..]);
                return;
            }
            self.pad(out, &num);
            return;
        }
        self.pad(out, &num[1..]);
    }
}

fn rune_of(i: i64) -> char {
    u32::try_from(i)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}')
}

fn truncate_runes(s: &[u8], n: usize) -> &[u8] {
    let mut pos = 0;
    for _ in 0..n {
        if pos >= s.len() {
            break;
        }
        pos += decode_rune(&s[pos..]).1;
    }
    &s[..pos.min(s.len())]
}

fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !(c < ' ' || c == '\u{7f}')))
}

/// Go's unicode.IsPrint, approximately: graphic characters and the ASCII space.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xD800..=0xDFFF | 0xE000..=0xF8FF
        | 0xFEFF | 0xFFF9..=0xFFFB | 0xFFFE | 0xFFFF | 0xF0000..)
}

/// strconv.Quote (or QuoteToASCII with `ascii`), with `q` as the quote character.
pub(crate) fn quote(s: &[u8], q: u8, ascii: bool) -> Vec<u8> {
    let mut out = vec![q];
    let mut i = 0;
    while i < s.len() {
        let (c, size) = decode_rune(&s[i..]);
        if c == '\u{FFFD}' && size == 1 && !s[i..].starts_with("\u{FFFD}".as_bytes()) {
            out.extend_from_slice(format!("\\x{:02x}", s[i]).as_bytes());
            i += 1;
            continue;
        }
        i += size;
        if c as u32 == q as u32 || c == '\\' {
            out.push(b'\\');
            push_char(&mut out, c);
            continue;
        }
        if (ascii && c.is_ascii() && is_print(c)) || (!ascii && is_print(c)) {
            push_char(&mut out, c);
            continue;
        }
        match c {
            '\u{7}' => out.extend_from_slice(b"\\a"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{b}' => out.extend_from_slice(b"\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.extend_from_slice(format!("\\x{:02x}", c as u32).as_bytes())
            }
            c if (c as u32) < 0x10000 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => out.extend_from_slice(format!("\\U{:08x}", c as u32).as_bytes()),
        }
    }
    out.push(q);
    out
}

/// Decimal digits and decimal-point position of `x` (positive, finite), shortest or rounded
/// to `sig` significant digits. Trailing zeros are dropped, as strconv's decimal does.
fn digits_of(x: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    // An f64 has fewer than 800 significant decimal digits; more are zeros (and Rust's
    // formatter refuses precisions above 65535).
    let s = match sig {
        None => format!("{x:e}"),
        Some(p) => format!("{:.*e}", p.clamp(1, 800) - 1, x),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits == b"0" {
        return (digits, 1);
    }
    (digits, exp + 1)
}

/// strconv.FormatFloat(x, verb, prec, 64) for the verbs e, E, f, F, g, G.
pub(crate) fn format_float(x: f64, verb: char, prec: Option<usize>) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let neg = x.is_sign_negative();
    let a = x.abs();
    let sign = if neg { "-" } else { "" };
    match verb {
        'f' | 'F' => {
            let p = prec.unwrap_or(6);
            let exact = p.min(1100);
            let mut body = match prec {
                Some(_) => format!("{a:.exact$}"),
                None => format!("{a}"),
            };
            body.extend(std::iter::repeat_n('0', p - exact));
            format!("{sign}{body}")
        }
        'e' | 'E' => {
            let (digits, dp) = match prec {
                Some(p) => digits_of(a, Some(p + 1)),
                None => digits_of(a, None),
            };
            let p = prec.unwrap_or(digits.len().saturating_sub(1));
            format!("{sign}{}", fmt_e(&digits, dp, p, verb == 'E'))
        }
        _ => {
            // 'g' / 'G'
            let shortest = prec.is_none();
            let (digits, dp) = match prec {
                None => digits_of(a, None),
                Some(p) => digits_of(a, Some(p.max(1))),
            };
            let nd = digits.len() as i32;
            let mut eprec = match prec {
                None => nd,
                Some(p) => p.max(1) as i32,
            };
            if eprec > nd && nd >= dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = dp - 1;
            let upper = verb == 'G';
            if exp < -4 || exp >= eprec {
                let mut p = prec.map(|p| p.max(1) as i32).unwrap_or(nd);
                if p > nd {
                    p = nd;
                }
                return format!(
                    "{sign}{}",
                    fmt_e(&digits, dp, (p - 1).max(0) as usize, upper)
                );
            }
            let mut p = prec.map(|p| p.max(1) as i32).unwrap_or(nd);
            if p > dp {
                p = nd;
            }
            format!("{sign}{}", fmt_f(&digits, dp, (p - dp).max(0) as usize))
        }
    }
}

fn fmt_e(digits: &[u8], dp: i32, prec: usize, upper: bool) -> String {
    let mut s = String::new();
    s.push(*digits.first().unwrap_or(&b'0') as char);
    if prec > 0 {
        s.push('.');
        for k in 1..=prec {
            s.push(*digits.get(k).unwrap_or(&b'0') as char);
        }
    }
    let exp = if digits == b"0" { 0 } else { dp - 1 };
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        s.push('0');
    }
    s.push_str(&e.to_string());
    s
}

fn fmt_f(digits: &[u8], dp: i32, prec: usize) -> String {
    let mut s = String::new();
    if dp > 0 {
        for k in 0..dp as usize {
            s.push(*digits.get(k).unwrap_or(&b'0') as char);
        }
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        for k in 0..prec as i32 {
            let idx = dp + k;
            let c = if idx < 0 {
                b'0'
            } else {
                *digits.get(idx as usize).unwrap_or(&b'0')
            };
            s.push(c as char);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> String {
        let mut out = Vec::new();
        write_value(&mut out, &Value::Float(x));
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn floats_print_as_go() {
        assert_eq!(f(3.0), "3");
        assert_eq!(f(1e6), "1e+06");
        assert_eq!(f(123456.0), "123456");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(0.00001), "1e-05");
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(-2.25), "-2.25");
        assert_eq!(f(123456789.0), "1.23456789e+08");
        assert_eq!(format_float(1.23456, 'f', Some(2)), "1.23");
        assert_eq!(format_float(1234.5678, 'g', Some(3)), "1.23e+03");
        assert_eq!(format_float(1234.5678, 'e', Some(6)), "1.234568e+03");
        assert_eq!(format_float(0.0, 'e', Some(2)), "0.00e+00");
    }

    #[test]
    fn printf_verbs() {
        let s = |f: &str, a: Vec<Value>| {
            String::from_utf8(sprintf(f.as_bytes(), &a)).unwrap_or_default()
        };
        assert_eq!(s("%s:%s", vec![Value::str("a"), Value::str("b")]), "a:b");
        assert_eq!(
            s(
                "%05d|%-4d|%x|%X|%o|%b",
                vec![
                    Value::Int(42),
                    Value::Int(7),
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(5)
                ]
            ),
            "00042|7   |ff|FF|10|101"
        );
        assert_eq!(s("%d", vec![Value::str("x")]), "%!d(string=x)");
        assert_eq!(s("%s %s", vec![Value::str("x")]), "x %!s(MISSING)");
        assert_eq!(
            s("%s", vec![Value::str("x"), Value::Int(1)]),
            "x%!(EXTRA int=1)"
        );
        assert_eq!(s("%q", vec![Value::str("a\"b\n")]), "\"a\\\"b\\n\"");
        assert_eq!(
            s(
                "%v %v",
                vec![
                    Value::Nil,
                    Value::list(vec![Value::Int(1), Value::str("a")])
                ]
            ),
            "<nil> [1 a]"
        );
        assert_eq!(
            s("%#x %x", vec![Value::Int(255), Value::str("hi")]),
            "0xff 6869"
        );
        assert_eq!(
            s(
                "%6.2f|%t|%c|%U",
                vec![
                    Value::Float(1.23456),
                    Value::Bool(true),
                    Value::Int(65),
                    Value::Int(0x1F600)
                ]
            ),
            "  1.23|true|A|U+1F600"
        );
    }
}
