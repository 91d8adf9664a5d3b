//! The function table: Go's builtins, the Sprig functions ESO keeps, and ESO's own.
//! Every call is charged to the run's budget and its result is bounded in size and depth.

mod builtin;
mod crypto;
mod date;
mod pkcs12;
mod pki;
mod semver;
mod sprig;
mod url;

/// The Sprig families kept outside sprig.rs, each with its names.
const FAMILIES: [&[&str]; 4] = [date::NAMES, semver::NAMES, crypto::NAMES, url::NAMES];

use crate::budget::Budget;
use crate::value::{Object, Value};

pub(crate) type R<T> = Result<T, String>;

pub(crate) use pki::NOT_IMPLEMENTED;

pub(crate) fn exists(name: &str) -> bool {
    name == "and"
        || name == "or"
        || builtin::NAMES.contains(&name)
        || sprig::NAMES.contains(&name)
        || pki::NAMES.contains(&name)
        || pkcs12::NAMES.contains(&name)
        || FAMILIES.iter().any(|f| f.contains(&name))
}

/// Names of every function a template may call.
pub fn names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = ["and", "or"]
        .into_iter()
        .chain(builtin::NAMES.iter().copied())
        .chain(sprig::NAMES.iter().copied())
        .chain(pki::NAMES.iter().copied())
        .chain(pkcs12::NAMES.iter().copied())
        .chain(FAMILIES.iter().flat_map(|f| f.iter().copied()))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

pub(crate) fn call(name: &str, args: Vec<Value>, budget: &mut Budget) -> R<Value> {
    budget.step(1)?;
    let cap = budget.limits.max_output_bytes;
    let depth = budget.limits.max_depth;
    // Strings by their bytes, collections by their elements: what a function walks. Not the
    // bytes nested inside (an `index` into large secret data costs no more than a small one).
    let input: usize = args
        .iter()
        .map(|a| match a {
            Value::Str(s) => s.len(),
            Value::List(l) => l.len(),
            Value::Map(m) => m.borrow().entries.len(),
            _ => 1,
        })
        .fold(0, usize::saturating_add);
    budget.charge_bytes(input)?;
    let result = if builtin::NAMES.contains(&name) {
        builtin::call(name, args, budget)
    } else if pki::NAMES.contains(&name) {
        pki::call(name, args, budget)
    } else if pkcs12::NAMES.contains(&name) {
        pkcs12::call(name, args, budget)
    } else if date::NAMES.contains(&name) {
        date::call(name, args, budget)
    } else if semver::NAMES.contains(&name) {
        semver::call(name, args)
    } else if crypto::NAMES.contains(&name) {
        crypto::call(name, args, budget)
    } else if url::NAMES.contains(&name) {
        url::call(name, args)
    } else {
        sprig::call(name, args, budget)
    }
    .map_err(|e| {
        if e.starts_with("wrong number of args") || e.contains("limit of") {
            e
        } else {
            format!("error calling {name}: {e}")
        }
    })?;
    let (size, deepest) = result.measure(cap, depth);
    budget.fits(name, size)?;
    if deepest > depth {
        return Err(format!(
            "{name}: result nested deeper than the limit of {depth}"
        ));
    }
    budget.charge_bytes(size)?;
    Ok(result)
}

/// A method with arguments on a Go value a function returned (a time, a version).
pub(crate) fn call_method(
    object: &Object,
    name: &str,
    args: Vec<Value>,
    budget: &mut Budget,
) -> R<Value> {
    budget.step(1)?;
    let result = match object {
        Object::Time(t) => t.method(name, &args, budget),
        Object::Version(v) => v.method(name, &args),
        Object::Certificate { .. } => None,
    }
    .unwrap_or_else(|| {
        Err(format!(
            "can't evaluate field {name} in type {}",
            object.type_name()
        ))
    })
    .map_err(|e| format!("error calling {name}: {e}"))?;
    let (size, _) = result.measure(budget.limits.max_output_bytes, budget.limits.max_depth);
    budget.fits(name, size)?;
    budget.charge_bytes(size)?;
    Ok(result)
}

// Argument helpers shared by the function families.

pub(crate) fn arity(name: &str, args: &[Value], n: usize) -> R<()> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

pub(crate) fn at_least(name: &str, args: &[Value], n: usize) -> R<()> {
    if args.len() < n {
        return Err(format!(
            "wrong number of args for {name}: want at least {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

/// The error of a parameter of Go type `expected` given a value of another type.
pub(crate) fn wrong_type(expected: &str, got: &Value) -> String {
    format!(
        "wrong type for value; expected {expected}; got {}",
        got.type_name()
    )
}

/// A `string` parameter.
pub(crate) fn string(v: &Value) -> R<&[u8]> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

/// A `string` parameter used as text (Go strings are bytes; invalid UTF-8 is replaced).
pub(crate) fn text(v: &Value) -> R<String> {
    Ok(String::from_utf8_lossy(string(v)?).into_owned())
}

/// An `int` parameter.
pub(crate) fn int(v: &Value) -> R<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

/// A non-negative `int` that sizes an allocation: refused when the result could not fit.
pub(crate) fn count(v: &Value, budget: &Budget, what: &str, unit: usize) -> R<usize> {
    let n = int(v)?;
    let n = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
    budget.fits(what, n.saturating_mul(unit))?;
    Ok(n)
}
