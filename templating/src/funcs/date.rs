//! Sprig's date functions over Go's `time.Time`: Go's layout strings ("2006-01-02 15:04:05"),
//! Go's duration syntax ("1h30m"), and IANA zones from the bundled tz database (the controller's
//! image has no /usr/share/zoneinfo). The process-local zone is UTC, as in ESO's container.

use std::sync::OnceLock;

use super::{R, arity, int, text, wrong_type};
use crate::budget::Budget;
use crate::objects::GoTime;
use crate::value::{Object, Value};

pub(super) const NAMES: &[&str] = &[
    "now",
    "ago",
    "date",
    "dateInZone",
    "date_in_zone",
    "dateModify",
    "date_modify",
    "mustDateModify",
    "must_date_modify",
    "duration",
    "durationRound",
    "htmlDate",
    "htmlDateInZone",
    "toDate",
    "mustToDate",
    "unixEpoch",
];

const NANOS: i128 = 1_000_000_000;

impl GoTime {
    fn utc(secs: i64, nanos: u32) -> GoTime {
        GoTime {
            secs,
            nanos,
            offset: 0,
            zone: "UTC".into(),
        }
    }

    fn now() -> GoTime {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        GoTime::utc(
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        )
    }

    /// Go's zero time, January 1, year 1, 00:00:00 UTC (what toDate gives on bad input).
    fn zero() -> GoTime {
        GoTime::utc(days_from_civil(1, 1, 1) * 86_400, 0)
    }

    fn total_nanos(&self) -> i128 {
        i128::from(self.secs) * NANOS + i128::from(self.nanos)
    }

    fn from_total_nanos(n: i128, like: &GoTime) -> R<GoTime> {
        let secs = i64::try_from(n.div_euclid(NANOS)).map_err(|_| "time out of range")?;
        Ok(GoTime {
            secs,
            nanos: n.rem_euclid(NANOS) as u32,
            offset: like.offset,
            zone: like.zone.clone(),
        })
    }

    /// The same instant shown in `zone` (an IANA name, "UTC" or "Local"); unknown names are UTC.
    fn in_zone(&self, zone: &str) -> GoTime {
        let mut t = GoTime::utc(self.secs, self.nanos);
        if zone.is_empty() || zone == "UTC" || zone == "Local" {
            return t;
        }
        static DB: OnceLock<jiff::tz::TimeZoneDatabase> = OnceLock::new();
        let db = DB.get_or_init(jiff::tz::TimeZoneDatabase::bundled);
        // Past jiff's range (years ±9999) the zone's rules at the edge apply.
        let secs = self.secs.clamp(
            jiff::Timestamp::MIN.as_second(),
            jiff::Timestamp::MAX.as_second(),
        );
        let (Ok(tz), Ok(ts)) = (db.get(zone), jiff::Timestamp::from_second(secs)) else {
            return t;
        };
        // Go finds zones by file name, so case matters: "europe/berlin" is unknown, i.e. UTC.
        if tz.iana_name() != Some(zone) {
            return t;
        }
        let info = tz.to_offset_info(ts);
        t.offset = info.offset().seconds();
        t.zone = info.abbreviation().to_string();
        t
    }

    fn civil(&self) -> Civil {
        // Saturating: `date` takes any int as seconds, far past the years Go can print.
        let local = self.secs.saturating_add(i64::from(self.offset));
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (sod / 3600) as u32,
            minute: (sod / 60 % 60) as u32,
            second: (sod % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as usize,
            yday: (days - days_from_civil(year, 1, 1) + 1) as u32,
        }
    }

    pub(crate) fn format(&self, layout: &str) -> String {
        let c = self.civil();
        let mut out = String::with_capacity(layout.len() + 10);
        let mut rest = layout;
        while !rest.is_empty() {
            let (prefix, std, suffix) = next_std_chunk(rest);
            out.push_str(prefix);
            let Some(std) = std else { break };
            rest = suffix;
            self.format_one(&mut out, std, &c);
        }
        out
    }

    fn format_one(&self, out: &mut String, std: Std, c: &Civil) {
        use std::fmt::Write as _;
        match std {
            Std::Year => pad(out, c.year.rem_euclid(100), 2),
            Std::LongYear => pad(out, c.year, 4),
            Std::Month => out.push_str(&MONTHS[c.month as usize - 1][..3]),
            Std::LongMonth => out.push_str(MONTHS[c.month as usize - 1]),
            Std::NumMonth => pad(out, i64::from(c.month), 0),
            Std::ZeroMonth => pad(out, i64::from(c.month), 2),
            Std::WeekDay => out.push_str(&DAYS[c.weekday][..3]),
            Std::LongWeekDay => out.push_str(DAYS[c.weekday]),
            Std::Day => pad(out, i64::from(c.day), 0),
            Std::UnderDay => {
                if c.day < 10 {
                    out.push(' ');
                }
                pad(out, i64::from(c.day), 0)
            }
            Std::ZeroDay => pad(out, i64::from(c.day), 2),
            Std::UnderYearDay => {
                if c.yday < 100 {
                    out.push(' ');
                    if c.yday < 10 {
                        out.push(' ');
                    }
                }
                pad(out, i64::from(c.yday), 0)
            }
            Std::ZeroYearDay => pad(out, i64::from(c.yday), 3),
            Std::Hour => pad(out, i64::from(c.hour), 2),
            Std::Hour12 | Std::ZeroHour12 => {
                let h = match c.hour % 12 {
                    0 => 12,
                    h => h,
                };
                pad(out, i64::from(h), if std == Std::Hour12 { 0 } else { 2 })
            }
            Std::Minute => pad(out, i64::from(c.minute), 0),
            Std::ZeroMinute => pad(out, i64::from(c.minute), 2),
            Std::Second => pad(out, i64::from(c.second), 0),
            Std::ZeroSecond => pad(out, i64::from(c.second), 2),
            Std::PM => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
            Std::Tz(z) => {
                if z.iso && self.offset == 0 {
                    out.push('Z');
                    return;
                }
                let mut zone = self.offset / 60;
                let mut abs = self.offset;
                if zone < 0 {
                    out.push('-');
                    zone = -zone;
                    abs = -abs;
                } else {
                    out.push('+');
                }
                pad(out, i64::from(zone / 60), 2);
                if z.colon {
                    out.push(':');
                }
                if !z.short {
                    pad(out, i64::from(zone % 60), 2);
                }
                if z.seconds {
                    if z.colon {
                        out.push(':');
                    }
                    pad(out, i64::from(abs % 60), 2);
                }
            }
            Std::ZoneName => {
                if !self.zone.is_empty() {
                    out.push_str(&self.zone);
                    return;
                }
                let mut zone = self.offset / 60;
                if zone < 0 {
                    out.push('-');
                    zone = -zone;
                } else {
                    out.push('+');
                }
                pad(out, i64::from(zone / 60), 2);
                pad(out, i64::from(zone % 60), 2);
            }
            Std::Frac { digits, trim, sep } => {
                let all = format!("{:09}", self.nanos);
                let mut n = digits.min(9);
                if trim {
                    while n > 0 && all.as_bytes()[n - 1] == b'0' {
                        n -= 1;
                    }
                    if n == 0 {
                        return;
                    }
                }
                let _ = write!(out, "{sep}{}", &all[..n]);
            }
        }
    }

    /// encoding/json's form: RFC 3339 with nanoseconds, trailing zeros dropped.
    pub(crate) fn rfc3339(&self) -> String {
        self.format("2006-01-02T15:04:05.999999999Z07:00")
    }

    pub(crate) fn field(&self, name: &str) -> Option<Value> {
        let c = self.civil();
        Some(match name {
            "Year" => Value::Int(c.year),
            "Month" => Value::str(MONTHS[c.month as usize - 1]),
            "Day" => Value::Int(i64::from(c.day)),
            "Hour" => Value::Int(i64::from(c.hour)),
            "Minute" => Value::Int(i64::from(c.minute)),
            "Second" => Value::Int(i64::from(c.second)),
            "Nanosecond" => Value::Int(i64::from(self.nanos)),
            "YearDay" => Value::Int(i64::from(c.yday)),
            "Weekday" => Value::str(DAYS[c.weekday]),
            "Unix" => Value::Int64(self.secs),
            "UnixMilli" => {
                Value::Int64(i64::try_from(self.total_nanos() / 1_000_000).unwrap_or(i64::MAX))
            }
            "UnixNano" => Value::Int64(i64::try_from(self.total_nanos()).unwrap_or(i64::MAX)),
            "IsZero" => Value::Bool(*self == GoTime::zero()),
            "String" => Value::str(self.to_string()),
            "UTC" | "Local" => time_value(GoTime::utc(self.secs, self.nanos)),
            _ => return None,
        })
    }
}

impl GoTime {
    /// Methods with arguments; None when there is no such method.
    pub(crate) fn method(
        &self,
        name: &str,
        args: &[Value],
        budget: &mut Budget,
    ) -> Option<R<Value>> {
        let other = |a: &[Value]| -> R<GoTime> {
            arity(name, a, 1)?;
            time_arg(&a[0])
        };
        Some(match name {
            "Format" => (|| {
                arity(name, args, 1)?;
                let layout = text(&args[0])?;
                budget.fits(name, layout.len().saturating_mul(10))?;
                Ok(Value::str(self.format(&layout)))
            })(),
            "AddDate" => (|| {
                arity(name, args, 3)?;
                let (y, m, d) = (int(&args[0])?, int(&args[1])?, int(&args[2])?);
                self.add_date(y, m, d).map(time_value)
            })(),
            "Before" => other(args).map(|o| Value::Bool(self.total_nanos() < o.total_nanos())),
            "After" => other(args).map(|o| Value::Bool(self.total_nanos() > o.total_nanos())),
            "Equal" => other(args).map(|o| Value::Bool(self.total_nanos() == o.total_nanos())),
            _ => return None,
        })
    }

    /// Go's AddDate: years, months and days added to the wall clock, then normalised
    /// (October 31 plus one month is December 1).
    fn add_date(&self, years: i64, months: i64, days: i64) -> R<GoTime> {
        let c = self.civil();
        let overflow = || "date out of range".to_string();
        let month_index = c
            .year
            .checked_add(years)
            .and_then(|y| y.checked_mul(12))
            .and_then(|m| m.checked_add(i64::from(c.month) - 1))
            .and_then(|m| m.checked_add(months))
            .filter(|m| m.abs() < 12 * 1_000_000_000)
            .ok_or_else(overflow)?;
        let (year, month) = (
            month_index.div_euclid(12),
            month_index.rem_euclid(12) as u32 + 1,
        );
        let day_number = days_from_civil(year, month, 1)
            .checked_add(i64::from(c.day) - 1)
            .and_then(|d| d.checked_add(days))
            .filter(|d| d.abs() < 366 * 1_000_000_000)
            .ok_or_else(overflow)?;
        let local = day_number * 86_400
            + i64::from(c.hour) * 3600
            + i64::from(c.minute) * 60
            + i64::from(c.second);
        Ok(GoTime {
            secs: local - i64::from(self.offset),
            ..self.clone()
        })
    }
}

impl std::fmt::Display for GoTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.format("2006-01-02 15:04:05.999999999 -0700 MST"))
    }
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Sunday.
    weekday: usize,
    yday: u32,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in(month: u32, year: i64) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's appendInt: zero-padded to `width`, sign first.
fn pad(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    let digits = v.unsigned_abs().to_string();
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(&digits);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TzStyle {
    /// "Z07:00" and friends: "Z" for UTC.
    iso: bool,
    colon: bool,
    /// Hours only ("-07").
    short: bool,
    seconds: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    Year,
    LongYear,
    Month,
    LongMonth,
    NumMonth,
    ZeroMonth,
    WeekDay,
    LongWeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    PM,
    Pm,
    Tz(TzStyle),
    ZoneName,
    Frac {
        digits: usize,
        trim: bool,
        sep: char,
    },
}

/// Go's nextStdChunk: the literal text before the first layout element, the element, the rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let lower_at = |j: usize| b.get(j).is_some_and(u8::is_ascii_lowercase);
    for i in 0..b.len() {
        let at = |s: &str| layout[i..].starts_with(s);
        let hit = |std: Std, len: usize| (&layout[..i], Some(std), &layout[i + len..]);
        match b[i] {
            b'J' if at("Jan") => {
                if at("January") {
                    return hit(Std::LongMonth, 7);
                }
                if !lower_at(i + 3) {
                    return hit(Std::Month, 3);
                }
            }
            b'M' => {
                if at("Mon") {
                    if at("Monday") {
                        return hit(Std::LongWeekDay, 6);
                    }
                    if !lower_at(i + 3) {
                        return hit(Std::WeekDay, 3);
                    }
                }
                if at("MST") {
                    return hit(Std::ZoneName, 3);
                }
            }
            b'0' => {
                if let Some(c @ b'1'..=b'6') = b.get(i + 1) {
                    let std = [
                        Std::ZeroMonth,
                        Std::ZeroDay,
                        Std::ZeroHour12,
                        Std::ZeroMinute,
                        Std::ZeroSecond,
                        Std::Year,
                    ][usize::from(c - b'1')];
                    return hit(std, 2);
                }
                if at("002") {
                    return hit(Std::ZeroYearDay, 3);
                }
            }
            b'1' => {
                if at("15") {
                    return hit(Std::Hour, 2);
                }
                return hit(Std::NumMonth, 1);
            }
            b'2' => {
                if at("2006") {
                    return hit(Std::LongYear, 4);
                }
                return hit(Std::Day, 1);
            }
            b'_' => {
                if at("_2") {
                    if at("_2006") {
                        return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
                    }
                    return hit(Std::UnderDay, 2);
                }
                if at("__2") {
                    return hit(Std::UnderYearDay, 3);
                }
            }
            b'3' => return hit(Std::Hour12, 1),
            b'4' => return hit(Std::Minute, 1),
            b'5' => return hit(Std::Second, 1),
            b'P' if at("PM") => return hit(Std::PM, 2),
            b'p' if at("pm") => return hit(Std::Pm, 2),
            b'-' | b'Z' => {
                let iso = b[i] == b'Z';
                let tz = |colon, short, seconds| {
                    Std::Tz(TzStyle {
                        iso,
                        colon,
                        short,
                        seconds,
                    })
                };
                let s = &layout[i + 1..];
                for (pat, colon, short, seconds) in [
                    ("070000", false, false, true),
                    ("07:00:00", true, false, true),
                    ("0700", false, false, false),
                    ("07:00", true, false, false),
                    ("07", false, true, false),
                ] {
                    if s.starts_with(pat) {
                        return hit(tz(colon, short, seconds), pat.len() + 1);
                    }
                }
            }
            b'.' | b',' => {
                if let Some(&ch @ (b'0' | b'9')) = b.get(i + 1) {
                    let mut j = i + 1;
                    while b.get(j) == Some(&ch) {
                        j += 1;
                    }
                    // Only a fraction when the digits are not followed by more digits.
                    if !b.get(j).is_some_and(u8::is_ascii_digit) {
                        let std = Std::Frac {
                            digits: j - i - 1,
                            trim: ch == b'9',
                            sep: char::from(b[i]),
                        };
                        return (&layout[..i], Some(std), &layout[j..]);
                    }
                }
            }
            _ => {}
        }
    }
    (layout, None, "")
}

/// Go's time.ParseInLocation with the local zone UTC.
fn parse(layout: &str, value: &str) -> R<GoTime> {
    let orig_value = value;
    let bad = |elem: &str, rest: &str| {
        format!("parsing time {orig_value:?} as {layout:?}: cannot parse {rest:?} as {elem:?}")
    };
    let range = |what: &str| format!("parsing time {orig_value:?}: {what} out of range");
    let mut rest = layout;
    let mut value = value;
    let (mut year, mut month, mut day) = (1i64, 1u32, 1u32);
    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut yday: Option<u32> = None;
    let (mut pm, mut am) = (false, false);
    let mut zone_offset: Option<i32> = None;
    let mut zone_name: Option<String> = None;
    let mut utc = false;
    loop {
        let (prefix, std, suffix) = next_std_chunk(rest);
        let elem = &rest[prefix.len()..rest.len() - suffix.len()];
        value = skip(value, prefix).ok_or_else(|| bad(prefix, value))?;
        let Some(std) = std else {
            if !value.is_empty() {
                return Err(format!(
                    "parsing time {orig_value:?}: extra text: {value:?}"
                ));
            }
            break;
        };
        rest = suffix;
        let hold = value;
        let fail = || bad(elem, hold);
        match std {
            Std::Year => {
                let (v, r) = fixed_digits(value, 2).ok_or_else(fail)?;
                year = if v >= 69 { v + 1900 } else { v + 2000 };
                value = r;
            }
            Std::LongYear => {
                let (v, r) = fixed_digits(value, 4).ok_or_else(fail)?;
                year = v;
                value = r;
            }
            Std::Month | Std::LongMonth => {
                let names: Vec<&str> = if std == Std::Month {
                    MONTHS.iter().map(|m| &m[..3]).collect()
                } else {
                    MONTHS.to_vec()
                };
                let (i, r) = lookup(&names, value).ok_or_else(fail)?;
                month = i as u32 + 1;
                value = r;
            }
            Std::NumMonth | Std::ZeroMonth => {
                let (v, r) = num(value, std == Std::ZeroMonth).ok_or_else(fail)?;
                if !(1..=12).contains(&v) {
                    return Err(range("month"));
                }
                month = v as u32;
                value = r;
            }
            Std::WeekDay | Std::LongWeekDay => {
                let names: Vec<&str> = if std == Std::WeekDay {
                    DAYS.iter().map(|d| &d[..3]).collect()
                } else {
                    DAYS.to_vec()
                };
                let (_, r) = lookup(&names, value).ok_or_else(fail)?;
                value = r;
            }
            Std::Day | Std::UnderDay | Std::ZeroDay => {
                if std == Std::UnderDay && value.starts_with(' ') {
                    value = &value[1..];
                }
                let (v, r) = num(value, std == Std::ZeroDay).ok_or_else(fail)?;
                // Checked against the month below.
                day = u32::try_from(v).unwrap_or(0);
                value = r;
            }
            Std::UnderYearDay | Std::ZeroYearDay => {
                let mut v = value;
                if std == Std::UnderYearDay {
                    for _ in 0..2 {
                        v = v.strip_prefix(' ').unwrap_or(v);
                    }
                }
                let (n, r) = num3(v, std == Std::ZeroYearDay).ok_or_else(fail)?;
                if !(1..=366).contains(&n) {
                    return Err(range("day-of-year"));
                }
                yday = Some(n as u32);
                value = r;
            }
            Std::Hour => {
                let (v, r) = num(value, false).ok_or_else(fail)?;
                if v > 23 {
                    return Err(range("hour"));
                }
                hour = v as u32;
                value = r;
            }
            Std::Hour12 | Std::ZeroHour12 => {
                let (v, r) = num(value, std == Std::ZeroHour12).ok_or_else(fail)?;
                if v > 12 {
                    return Err(range("hour"));
                }
                hour = v as u32;
                value = r;
            }
            Std::Minute | Std::ZeroMinute => {
                let (v, r) = num(value, std == Std::ZeroMinute).ok_or_else(fail)?;
                if v > 59 {
                    return Err(range("minute"));
                }
                minute = v as u32;
                value = r;
            }
            Std::Second | Std::ZeroSecond => {
                let (v, r) = num(value, std == Std::ZeroSecond).ok_or_else(fail)?;
                if v > 59 {
                    return Err(range("second"));
                }
                second = v as u32;
                value = r;
                // A fraction after the seconds is accepted even when the layout has none.
                let vb = value.as_bytes();
                if vb.len() >= 2
                    && (vb[0] == b'.' || vb[0] == b',')
                    && vb[1].is_ascii_digit()
                    && !matches!(next_std_chunk(rest).1, Some(Std::Frac { .. }))
                {
                    let n = 1 + vb[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    nanos = nanoseconds(&value[1..n]);
                    value = &value[n..];
                }
            }
            Std::PM | Std::Pm => {
                let (p, a) = if std == Std::PM {
                    ("PM", "AM")
                } else {
                    ("pm", "am")
                };
                if let Some(r) = value.strip_prefix(p) {
                    pm = true;
                    value = r;
                } else if let Some(r) = value.strip_prefix(a) {
                    am = true;
                    value = r;
                } else {
                    return Err(fail());
                }
            }
            Std::Tz(z) => {
                if z.iso && value.starts_with('Z') {
                    value = &value[1..];
                    utc = true;
                    continue;
                }
                let (off, r) = parse_offset(value, z).ok_or_else(fail)?;
                zone_offset = Some(off);
                value = r;
            }
            Std::ZoneName => {
                if let Some(r) = value.strip_prefix("UTC") {
                    value = r;
                    utc = true;
                    continue;
                }
                let n = zone_name_len(value).ok_or_else(fail)?;
                zone_name = Some(value[..n].to_string());
                value = &value[n..];
            }
            Std::Frac { digits, trim, .. } => {
                let vb = value.as_bytes();
                if trim {
                    if vb.len() < 2 || !(vb[0] == b'.' || vb[0] == b',') || !vb[1].is_ascii_digit()
                    {
                        continue;
                    }
                    let n = 1 + vb[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    nanos = nanoseconds(&value[1..n]);
                    value = &value[n..];
                } else {
                    let n = digits + 1;
                    if vb.len() < n
                        || !(vb[0] == b'.' || vb[0] == b',')
                        || !vb[1..n].iter().all(u8::is_ascii_digit)
                    {
                        return Err(fail());
                    }
                    nanos = nanoseconds(&value[1..n]);
                    value = &value[n..];
                }
            }
        }
    }
    if pm && hour < 12 {
        hour += 12;
    } else if am && hour == 12 {
        hour = 0;
    }
    if let Some(yd) = yday {
        let leap = days_in(2, year) == 29;
        if yd > 365 && !leap {
            return Err(range("day-of-year"));
        }
        let (_, m, d) = civil_from_days(days_from_civil(year, 1, 1) + i64::from(yd) - 1);
        month = m;
        day = d;
    }
    if day < 1 || day > days_in(month, year) {
        return Err(range("day"));
    }
    let secs = days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second);
    let mut t = GoTime::utc(secs, nanos);
    if utc {
        return Ok(t);
    }
    if let Some(off) = zone_offset {
        t.secs -= i64::from(off);
        if off != 0 {
            t.offset = off;
            t.zone = String::new();
        }
        return Ok(t);
    }
    if let Some(name) = zone_name {
        // Only UTC is known locally: Go reads the clock as UTC and shows it in a zone of that
        // name, with a zero offset, or the hours of a "GMT+3" style name.
        let off = name
            .strip_prefix("GMT")
            .filter(|h| !h.is_empty())
            .and_then(|h| h.parse::<i32>().ok())
            .map_or(0, |h| h * 3600);
        t.offset = off;
        t.zone = name;
    }
    Ok(t)
}

fn skip<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    // Go lets a space in the layout match any run of spaces in the value.
    let mut value = value;
    let mut p = prefix;
    while let Some(c) = p.chars().next() {
        if c == ' ' {
            if !value.is_empty() && !value.starts_with(' ') {
                return None;
            }
            p = p.trim_start_matches(' ');
            value = value.trim_start_matches(' ');
            continue;
        }
        value = value.strip_prefix(c)?;
        p = &p[c.len_utf8()..];
    }
    Some(value)
}

fn fixed_digits(value: &str, n: usize) -> Option<(i64, &str)> {
    let digits = value.get(..n)?;
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, &value[n..]))
}

/// Go's getnum: one or two digits, exactly two when `fixed`.
fn num(value: &str, fixed: bool) -> Option<(i64, &str)> {
    let b = value.as_bytes();
    if !b.first()?.is_ascii_digit() {
        return None;
    }
    if !b.get(1).is_some_and(u8::is_ascii_digit) {
        if fixed {
            return None;
        }
        return Some((i64::from(b[0] - b'0'), &value[1..]));
    }
    Some((i64::from((b[0] - b'0') * 10 + b[1] - b'0'), &value[2..]))
}

fn num3(value: &str, fixed: bool) -> Option<(i64, &str)> {
    let n = value.bytes().take(3).take_while(u8::is_ascii_digit).count();
    if n == 0 || (fixed && n != 3) {
        return None;
    }
    Some((value[..n].parse().ok()?, &value[n..]))
}

fn lookup<'a>(names: &[&str], value: &'a str) -> Option<(usize, &'a str)> {
    names.iter().enumerate().find_map(|(i, n)| {
        let head = value.get(..n.len())?;
        head.eq_ignore_ascii_case(n).then(|| (i, &value[n.len()..]))
    })
}

fn parse_offset(value: &str, z: TzStyle) -> Option<(i32, &str)> {
    let b = value.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut pos = 1;
    let two = |pos: &mut usize| -> Option<i32> {
        let d = value.get(*pos..*pos + 2)?;
        if !d.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *pos += 2;
        d.parse().ok()
    };
    let hh = two(&mut pos)?;
    let mut mm = 0;
    let mut ss = 0;
    if !z.short {
        if z.colon {
            (b.get(pos) == Some(&b':')).then_some(())?;
            pos += 1;
        }
        mm = two(&mut pos)?;
        if z.seconds {
            if z.colon {
                (b.get(pos) == Some(&b':')).then_some(())?;
                pos += 1;
            }
            ss = two(&mut pos)?;
        }
    }
    if hh > 24 || mm > 60 || ss > 60 {
        return None;
    }
    Some((sign * (hh * 3600 + mm * 60 + ss), &value[pos..]))
}

/// Go's parseTimeZone, simplified: three to five upper-case letters, or GMT with an offset.
fn zone_name_len(value: &str) -> Option<usize> {
    let b = value.as_bytes();
    if value.starts_with("GMT") {
        let mut n = 3;
        if let Some(b'+' | b'-') = b.get(3) {
            let digits = b[4..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0 {
                n = 4 + digits;
            }
        }
        return Some(n);
    }
    let n = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    (3..=5).contains(&n).then_some(n)
}

fn nanoseconds(digits: &str) -> u32 {
    let mut n = 0u32;
    for (i, c) in digits.bytes().take(9).enumerate() {
        n += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
    }
    n
}

/// Go's time.ParseDuration, in nanoseconds.
fn parse_duration(s: &str) -> R<i64> {
    let invalid = || format!("time: invalid duration {s:?}");
    let mut rest = s;
    let neg = rest.starts_with('-');
    if let Some(r) = rest.strip_prefix(['-', '+']) {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &r[..n];
            rest = &r[n..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            u => return Err(format!("time: unknown unit {u:?} in duration {s:?}")),
        };
        rest = &rest[unit_len..];
        let overflow = || format!("time: invalid duration {s:?}");
        let whole: u64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| overflow())?
        };
        let mut v = whole.checked_mul(unit).ok_or_else(overflow)?;
        if !frac_part.is_empty() {
            // Go scales the fraction in floating point.
            let f: f64 = format!("0.{frac_part}").parse().unwrap_or(0.0);
            v = v.saturating_add((f * unit as f64) as u64);
        }
        total = total.checked_add(v).ok_or_else(overflow)?;
        if total > 1 << 63 || (!neg && total == 1 << 63) {
            return Err(overflow());
        }
    }
    Ok(if neg {
        (total as i64).wrapping_neg()
    } else {
        total as i64
    })
}

/// Go's Duration.String: "1h2m3.5s", "1.5ms", "0s".
fn format_duration(d: i64) -> String {
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        if u == 0 {
            return "0s".into();
        }
        let (unit, scale) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac(u, scale));
        out.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let h = secs / 3600;
        let m = secs / 60 % 60;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac(u % 60_000_000_000, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / scale` with the remainder as a decimal fraction, trailing zeros dropped.
fn frac(v: u64, scale: u64) -> String {
    let whole = v / scale;
    let rem = v % scale;
    if rem == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

fn time_arg(v: &Value) -> R<GoTime> {
    match v {
        Value::Object(o) => match &**o {
            Object::Time(t) => Ok(t.clone()),
            _ => Err(wrong_type("time.Time", v)),
        },
        _ => Err(wrong_type("time.Time", v)),
    }
}

/// Sprig's date argument: a time, or seconds since the epoch; anything else means now.
fn date_arg(v: &Value) -> GoTime {
    match v {
        Value::Object(o) => match &**o {
            Object::Time(t) => t.clone(),
            _ => GoTime::now(),
        },
        Value::Int(secs) | Value::Int64(secs) => GoTime::utc(*secs, 0),
        _ => GoTime::now(),
    }
}

fn time_value(t: GoTime) -> Value {
    Value::Object(std::rc::Rc::new(Object::Time(t)))
}

fn since(t: &GoTime) -> i64 {
    let d = GoTime::now().total_nanos() - t.total_nanos();
    d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

pub(super) fn call(name: &str, a: Vec<Value>, budget: &mut Budget) -> R<Value> {
    match name {
        "now" => {
            arity(name, &a, 0)?;
            Ok(time_value(GoTime::now()))
        }
        "ago" => {
            arity(name, &a, 1)?;
            let d = since(&date_arg(&a[0]));
            // Rounded to whole seconds, halves away from zero.
            let r =
                (i128::from(d) + if d < 0 { -500_000_000 } else { 500_000_000 }) / NANOS * NANOS;
            Ok(Value::str(format_duration(r as i64)))
        }
        "date" | "htmlDate" | "dateInZone" | "date_in_zone" | "htmlDateInZone" => {
            let (layout, date, zone) = match name {
                "date" => {
                    arity(name, &a, 2)?;
                    (text(&a[0])?, &a[1], "Local".to_string())
                }
                "htmlDate" => {
                    arity(name, &a, 1)?;
                    ("2006-01-02".to_string(), &a[0], "Local".to_string())
                }
                "htmlDateInZone" => {
                    arity(name, &a, 2)?;
                    ("2006-01-02".to_string(), &a[0], text(&a[1])?)
                }
                _ => {
                    arity(name, &a, 3)?;
                    (text(&a[0])?, &a[1], text(&a[2])?)
                }
            };
            // Each layout element writes a bounded amount: the output is linear in the layout.
            budget.fits(name, layout.len().saturating_mul(10))?;
            Ok(Value::str(date_arg(date).in_zone(&zone).format(&layout)))
        }
        "dateModify" | "date_modify" | "mustDateModify" | "must_date_modify" => {
            arity(name, &a, 2)?;
            let d = parse_duration(&text(&a[0])?);
            let t = time_arg(&a[1])?;
            match d {
                Ok(d) => Ok(time_value(GoTime::from_total_nanos(
                    t.total_nanos() + i128::from(d),
                    &t,
                )?)),
                Err(e) if name.starts_with("must") => Err(e),
                Err(_) => Ok(time_value(t)),
            }
        }
        "duration" => {
            arity(name, &a, 1)?;
            // Sprig reads strings and int64 only; a template's integer constant is an int.
            let secs = match &a[0] {
                Value::Int64(n) => *n,
                Value::Str(s) => std::str::from_utf8(s)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0),
                _ => 0,
            };
            Ok(Value::str(format_duration(
                secs.wrapping_mul(1_000_000_000),
            )))
        }
        "durationRound" => {
            arity(name, &a, 1)?;
            let d: i64 = match &a[0] {
                Value::Str(s) => parse_duration(&String::from_utf8_lossy(s)).unwrap_or(0),
                Value::Int64(n) => *n,
                Value::Object(o) => match &**o {
                    Object::Time(t) => since(t),
                    _ => 0,
                },
                _ => 0,
            };
            Ok(Value::str(round_duration(d)))
        }
        "toDate" | "mustToDate" => {
            arity(name, &a, 2)?;
            let (layout, value) = (text(&a[0])?, text(&a[1])?);
            budget.charge_bytes(layout.len().saturating_mul(layout.len().min(64)))?;
            match parse(&layout, &value) {
                Ok(t) => Ok(time_value(t)),
                Err(e) if name == "mustToDate" => Err(e),
                Err(_) => Ok(time_value(GoTime::zero())),
            }
        }
        "unixEpoch" => {
            arity(name, &a, 1)?;
            Ok(Value::str(time_arg(&a[0])?.secs.to_string()))
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// Sprig's durationRound: the largest whole unit, a month being 30 days and a year 365.
fn round_duration(d: i64) -> String {
    let u = d.unsigned_abs();
    let second = 1_000_000_000u64;
    let units = [
        (second * 86_400 * 365, "y"),
        (second * 86_400 * 30, "mo"),
        (second * 86_400, "d"),
        (second * 3600, "h"),
        (second * 60, "m"),
        (second, "s"),
    ];
    for (size, suffix) in units {
        if u > size {
            return format!("{}{suffix}", u / size);
        }
    }
    "0s".into()
}
