//! Sprig's `semver` and `semverCompare` with Masterminds/semver v3 rules (not Cargo's): loose
//! versions ("v1.2"), constraints with `||`, `,`/space for AND, `x`/`*` wildcards, hyphen
//! ranges, `~`, `^`, and pre-releases excluded unless the constraint names one.

use std::cmp::Ordering;
use std::rc::Rc;
use std::sync::OnceLock;

use regex::Regex;

use super::{R, arity, text, wrong_type};
use crate::objects::Version;
use crate::value::{Object, Value};

pub(super) const NAMES: &[&str] = &["semver", "semverCompare"];

/// Masterminds' regular expressions, with Go's ASCII `\s`.
const SV: &str = r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";
const WS: &str = r"[\t\n\f\r ]";

struct Regexes {
    version: Regex,
    constraint: Regex,
    range: Regex,
    find: Regex,
    valid: Regex,
}

fn regexes() -> &'static Regexes {
    static RE: OnceLock<Regexes> = OnceLock::new();
    RE.get_or_init(|| {
        let re = |s: String| Regex::new(&s).unwrap_or_else(|_| unreachable!("fixed pattern"));
        Regexes {
            version: re(format!("^{SV}$")),
            constraint: re(format!("^{WS}*({OPS}){WS}*({CV}){WS}*$")),
            range: re(format!("{WS}*({CV}){WS}+-{WS}+({CV}){WS}*")),
            find: re(format!("({OPS}){WS}*({CV})")),
            valid: re(format!(
                "^({WS}*({OPS}){WS}*({CV}){WS}*)((?:{WS}+|,{WS}*)({OPS}){WS}*({CV}){WS}*)*$"
            )),
        }
    })
}

const NUM: &str = "0123456789";

fn only(s: &str, set: &str) -> bool {
    s.chars().all(|c| set.contains(c))
}

fn allowed(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Version {
    /// Masterminds' NewVersion.
    pub(crate) fn parse(v: &str) -> R<Version> {
        let m = regexes()
            .version
            .captures(v)
            .ok_or("Invalid Semantic Version")?;
        let group = |i: usize| m.get(i).map_or("", |g| g.as_str());
        let seg = |s: &str| -> R<u64> {
            if s.is_empty() {
                return Ok(0);
            }
            s.trim_start_matches('.')
                .parse()
                .map_err(|_| "Error parsing version segment: value out of range".to_string())
        };
        let version = Version {
            major: seg(group(1))?,
            minor: seg(group(2))?,
            patch: seg(group(3))?,
            pre: group(5).to_string(),
            metadata: group(8).to_string(),
            original: v.to_string(),
        };
        for p in version.pre.split('.').filter(|_| !version.pre.is_empty()) {
            if only(p, NUM) {
                if p.len() > 1 && p.starts_with('0') {
                    return Err("Version segment starts with 0".into());
                }
            } else if !allowed(p) {
                return Err("Invalid Prerelease string".into());
            }
        }
        Ok(version)
    }

    pub(crate) fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Major" => Value::Int(self.major as i64),
            "Minor" => Value::Int(self.minor as i64),
            "Patch" => Value::Int(self.patch as i64),
            "Prerelease" => Value::str(self.pre.as_bytes()),
            "Metadata" => Value::str(self.metadata.as_bytes()),
            "Original" => Value::str(self.original.as_bytes()),
            "String" => Value::str(self.to_string()),
            "IncMajor" => self.next(self.major.wrapping_add(1), 0, 0),
            "IncMinor" => self.next(self.major, self.minor.wrapping_add(1), 0),
            // A pre-release increments to its release.
            "IncPatch" if !self.pre.is_empty() => self.next(self.major, self.minor, self.patch),
            "IncPatch" => self.next(self.major, self.minor, self.patch.wrapping_add(1)),
            _ => return None,
        })
    }

    fn next(&self, major: u64, minor: u64, patch: u64) -> Value {
        let mut v = Version {
            major,
            minor,
            patch,
            pre: String::new(),
            metadata: String::new(),
            original: String::new(),
        };
        let prefix = if self.original.starts_with('v') {
            "v"
        } else {
            ""
        };
        v.original = format!("{prefix}{v}");
        Value::Object(Rc::new(Object::Version(v)))
    }

    /// Methods with arguments; None when there is no such method.
    pub(crate) fn method(&self, name: &str, args: &[Value]) -> Option<R<Value>> {
        let other = || -> R<Version> {
            arity(name, args, 1)?;
            match &args[0] {
                Value::Object(o) => match &**o {
                    Object::Version(v) => Ok(v.clone()),
                    _ => Err(wrong_type("*semver.Version", &args[0])),
                },
                _ => Err(wrong_type("*semver.Version", &args[0])),
            }
        };
        Some(match name {
            "Compare" => other().map(|o| Value::Int(self.compare(&o) as i64)),
            "LessThan" => other().map(|o| Value::Bool(self.compare(&o) == Ordering::Less)),
            "GreaterThan" => other().map(|o| Value::Bool(self.compare(&o) == Ordering::Greater)),
            "Equal" => other().map(|o| Value::Bool(self.compare(&o) == Ordering::Equal)),
            _ => return None,
        })
    }

    fn compare(&self, o: &Version) -> Ordering {
        self.major
            .cmp(&o.major)
            .then(self.minor.cmp(&o.minor))
            .then(self.patch.cmp(&o.patch))
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &o.pre),
            })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let (sa, sb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for i in 0..sa.len().max(sb.len()) {
        let d = compare_pre_part(
            sa.get(i).copied().unwrap_or(""),
            sb.get(i).copied().unwrap_or(""),
        );
        if d != Ordering::Equal {
            return d;
        }
    }
    Ordering::Equal
}

fn compare_pre_part(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    match (s.parse::<u64>(), o.parse::<u64>()) {
        (Err(_), Err(_)) => {
            if s > o {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        // Numeric identifiers sort before alphanumeric ones.
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Ok(x), Ok(y)) => {
            if x > y {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

struct Constraint {
    op: Op,
    con: Version,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

fn parse_constraint(c: &str) -> R<Constraint> {
    let improper = || format!("improper constraint: {c}");
    if c.is_empty() {
        return Ok(Constraint {
            op: Op::TildeOrEqual,
            con: Version::parse("0.0.0")?,
            dirty: true,
            minor_dirty: false,
            patch_dirty: false,
        });
    }
    let m = regexes().constraint.captures(c).ok_or_else(improper)?;
    let group = |i: usize| m.get(i).map_or("", |g| g.as_str());
    let op = match group(1) {
        "" | "=" => Op::TildeOrEqual,
        "!=" => Op::NotEqual,
        ">" => Op::Greater,
        "<" => Op::Less,
        ">=" | "=>" => Op::GreaterEqual,
        "<=" | "=<" => Op::LessEqual,
        "~" | "~>" => Op::Tilde,
        _ => Op::Caret,
    };
    let (major, minor, patch, pre) = (group(3), group(4), group(5), group(6));
    let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
    let ver = if is_x(major) || major.is_empty() {
        dirty = true;
        format!("0.0.0{pre}")
    } else if is_x(minor.trim_start_matches('.')) || minor.is_empty() {
        dirty = true;
        minor_dirty = true;
        format!("{major}.0.0{pre}")
    } else if is_x(patch.trim_start_matches('.')) || patch.is_empty() {
        dirty = true;
        patch_dirty = true;
        format!("{major}{minor}.0{pre}")
    } else {
        group(2).to_string()
    };
    let con = Version::parse(&ver).map_err(|_| "constraint Parser Error".to_string())?;
    Ok(Constraint {
        op,
        con,
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

impl Constraint {
    fn check(&self, v: &Version) -> bool {
        let c = &self.con;
        // Pre-releases only match constraints that name one (except a plain `!=`).
        let pre_excluded = !v.pre.is_empty() && c.pre.is_empty();
        if pre_excluded && (self.op != Op::NotEqual || self.dirty) {
            return false;
        }
        let cmp = v.compare(c);
        match self.op {
            Op::NotEqual => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    } else if self.minor_dirty {
                        return false;
                    } else if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    } else if self.patch_dirty {
                        return (!v.pre.is_empty() || !c.pre.is_empty())
                            && compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                    }
                }
                cmp != Ordering::Equal
            }
            Op::Greater => {
                if !self.dirty {
                    return cmp == Ordering::Greater;
                }
                if v.major != c.major {
                    return v.major > c.major;
                }
                if self.minor_dirty {
                    return false;
                }
                if self.patch_dirty {
                    return v.minor > c.minor;
                }
                cmp == Ordering::Greater
            }
            Op::Less => cmp == Ordering::Less,
            Op::GreaterEqual => cmp != Ordering::Less,
            Op::LessEqual => {
                if !self.dirty {
                    return cmp != Ordering::Greater;
                }
                !(v.major > c.major
                    || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            Op::TildeOrEqual if !self.dirty => cmp == Ordering::Equal,
            Op::TildeOrEqual | Op::Tilde => {
                if cmp == Ordering::Less {
                    return false;
                }
                if c.major == 0
                    && c.minor == 0
                    && c.patch == 0
                    && !self.minor_dirty
                    && !self.patch_dirty
                {
                    return true;
                }
                v.major == c.major && (v.minor == c.minor || self.minor_dirty)
            }
            Op::Caret => {
                if cmp == Ordering::Less {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                c.patch == v.patch
            }
        }
    }
}

/// Masterminds' NewConstraint: `||` alternatives of constraints that must all hold.
fn parse_constraints(constraint: &str) -> R<Vec<Vec<Constraint>>> {
    let re = regexes();
    let mut rewritten = constraint.to_string();
    // "1.2 - 1.4" means ">= 1.2, <= 1.4".
    for m in re.range.captures_iter(constraint) {
        let (Some(all), Some(lo), Some(hi)) = (m.get(0), m.get(1), m.get(11)) else {
            continue;
        };
        let with = format!(">= {}, <= {}", lo.as_str(), hi.as_str());
        rewritten = rewritten.replacen(all.as_str(), &with, 1);
    }
    let mut alternatives = Vec::new();
    for or in rewritten.split("||") {
        if !re.valid.is_match(or) {
            return Err(format!("improper constraint: {or}"));
        }
        let found: Vec<&str> = re.find.find_iter(or).map(|m| m.as_str()).collect();
        let parts = if found.is_empty() { vec![or] } else { found };
        alternatives.push(
            parts
                .into_iter()
                .map(parse_constraint)
                .collect::<R<Vec<_>>>()?,
        );
    }
    Ok(alternatives)
}

pub(super) fn call(name: &str, a: Vec<Value>) -> R<Value> {
    match name {
        "semver" => {
            arity(name, &a, 1)?;
            let v = Version::parse(&text(&a[0])?)?;
            Ok(Value::Object(Rc::new(Object::Version(v))))
        }
        "semverCompare" => {
            arity(name, &a, 2)?;
            let (constraint, version) = (text(&a[0])?, text(&a[1])?);
            // Constraints are short; a long one is refused before the regexes see it.
            if constraint.len() > 4096 || version.len() > 1024 {
                return Err("constraint or version longer than Masterminds allows here".into());
            }
            let alternatives = parse_constraints(&constraint)?;
            let v = Version::parse(&version)?;
            Ok(Value::Bool(
                alternatives
                    .iter()
                    .any(|and| and.iter().all(|c| c.check(&v))),
            ))
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}
