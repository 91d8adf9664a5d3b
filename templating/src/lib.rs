//! Go's text/template as ESO runs it (engine v2, `missingkey=error`), for SealedSecret
//! `spec.template.data` and ExternalSecret `spec.target.template`: the whole language
//! (actions, pipelines, variables, if/else, range, with, define/template/block, comments,
//! trim markers, raw strings, char constants), Go's builtins (`and or not len index print
//! printf println eq ne lt le gt ge html js urlquery call`), the Sprig functions ESO keeps
//! (Sprig's `slice` replaces Go's, as in ESO's function map), and ESO's PEM helpers. Values are
//! byte strings as ESO passes them: binary data survives.
//!
//! Templates come from tenants, so every run has a budget ([`Limits`]) and errors name keys,
//! functions and limits, never values: they end up in status conditions.
//!
//! Modules, in the order a template runs through them:
//! - `lex`, `parse`: text to tree, with Go's parse-time checks.
//! - `exec`: walking the tree against the data, within the budget (`budget`).
//! - `value`: the values a template sees (Go's types as ESO passes them); `objects`: the Go
//!   structs among them (`time.Time`, `*semver.Version`).
//! - `funcs`: the function table (Go builtins, Sprig, ESO), each call charged to the budget.
//! - `gofmt`: Go's `fmt` printing; `json`: Go's encoding/json and ESO's YAML helpers.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

mod budget;
mod exec;
mod funcs;
mod gofmt;
mod json;
mod lex;
mod objects;
mod parse;
mod value;

pub use funcs::names as function_names;

/// ESO's template functions this engine does not implement; calling one is a clear error.
pub const NOT_IMPLEMENTED: &[&str] = funcs::NOT_IMPLEMENTED;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

/// What one template run may consume. Templates come from tenants: a run that exceeds any
/// bound fails with an error naming the bound, and the process and other objects carry on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of output, and of any single intermediate value. A Secret holds at most 1 MiB.
    pub max_output_bytes: usize,
    /// Evaluation steps: one per node, command, argument and function call, plus one per KiB
    /// a function reads or writes, so CPU time follows the budget.
    pub max_steps: u64,
    /// Nesting of parentheses, control structures, template calls and values.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_output_bytes: 1 << 20,
            max_steps: 1_000_000,
            max_depth: 100,
        }
    }
}

/// How to run a template: the budget and the action delimiters (ESO's
/// `--template-left-delimiter` / `--template-right-delimiter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub limits: Limits,
    pub left_delim: String,
    pub right_delim: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            left_delim: "{{".into(),
            right_delim: "}}".into(),
        }
    }
}

/// Renders `template` with `data` as `.`, within the default [`Limits`].
pub fn render(
    template: &str,
    data: &BTreeMap<String, Zeroizing<Vec<u8>>>,
) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    render_with(template, data, &Options::default())
}

/// Renders `template` with `data` as `.`, failing once the run exceeds `limits`.
pub fn render_with_limits(
    template: &str,
    data: &BTreeMap<String, Zeroizing<Vec<u8>>>,
    limits: &Limits,
) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    render_with(
        template,
        data,
        &Options {
            limits: *limits,
            ..Options::default()
        },
    )
}

/// Renders `template` with `data` as `.` under `options`.
pub fn render_with(
    template: &str,
    data: &BTreeMap<String, Zeroizing<Vec<u8>>>,
    options: &Options,
) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    let result = parse_and_run(template, data, options);
    result.map_err(|e| withhold_values(e, data))
}

fn parse_and_run(
    template: &str,
    data: &BTreeMap<String, Zeroizing<Vec<u8>>>,
    options: &Options,
) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    let left = if options.left_delim.is_empty() {
        "{{"
    } else {
        &options.left_delim
    };
    let right = if options.right_delim.is_empty() {
        "}}"
    } else {
        &options.right_delim
    };
    let tokens = lex::lex(template, left, right)?;
    let tree = parse::parse(tokens, options.limits.max_depth, &funcs::exists)?;
    exec::execute(&tree, data, options.limits)
}

/// A template can put data into an error (`fail`, messages quoting input): such a message is
/// replaced, since errors reach status conditions and logs.
fn withhold_values(e: TemplateError, data: &BTreeMap<String, Zeroizing<Vec<u8>>>) -> TemplateError {
    let msg = e.0.as_bytes();
    let leaks = data
        .values()
        .filter(|v| v.len() >= 4)
        .any(|v| msg.windows(v.len()).any(|w| w == &v[..]));
    if leaks {
        return TemplateError(
            "the error message is withheld because it contains a secret value".into(),
        );
    }
    e
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Zeroizing<Vec<u8>>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.as_bytes().to_vec())))
            .collect()
    }

    fn r(t: &str, d: &[(&str, &str)]) -> Result<String, TemplateError> {
        render(t, &data(d)).map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn fields_text_and_pipes() {
        let d = [("user", "admin"), ("pass", "s3cr3t"), ("my-key", "v")];
        assert_eq!(
            r("postgres://{{ .user }}:{{ .pass }}@db:5432", &d).unwrap(),
            "postgres://admin:s3cr3t@db:5432"
        );
        assert_eq!(r("{{ .user | upper }}", &d).unwrap(), "ADMIN");
        assert_eq!(r("{{ .user | upper | lower }}", &d).unwrap(), "admin");
        assert_eq!(r(r#"{{ index . "my-key" }}"#, &d).unwrap(), "v");
        assert_eq!(r("{{- .user -}}  \n x", &d).unwrap(), "adminx");
        assert_eq!(r("a  {{- .user }}", &d).unwrap(), "aadmin");
        assert_eq!(r("{{/* comment */}}x", &d).unwrap(), "x");
        assert_eq!(r("no actions", &d).unwrap(), "no actions");
    }

    #[test]
    fn sprig_functions() {
        let d = [
            ("v", " Hello World "),
            ("b", "aGVsbG8="),
            ("j", r#"{"a":{"b":"deep"},"n":3,"l":["x","y"]}"#),
            ("empty", ""),
        ];
        assert_eq!(r("{{ .v | trim }}", &d).unwrap(), "Hello World");
        assert_eq!(r("{{ .b | b64dec }}", &d).unwrap(), "hello");
        assert_eq!(r("{{ .b | b64dec | b64enc }}", &d).unwrap(), "aGVsbG8=");
        assert_eq!(r("{{ .v | trim | quote }}", &d).unwrap(), "\"Hello World\"");
        assert_eq!(r("{{ .v | trim | squote }}", &d).unwrap(), "'Hello World'");
        assert_eq!(
            r(r#"{{ .v | trim | replace " " "-" }}"#, &d).unwrap(),
            "Hello-World"
        );
        assert_eq!(r(r#"{{ .empty | default "dflt" }}"#, &d).unwrap(), "dflt");
        assert_eq!(r(r#"{{ default "dflt" .b }}"#, &d).unwrap(), "aGVsbG8=");
        assert_eq!(r(r#"{{ (.j | fromJson).a.b }}"#, &d).unwrap(), "deep");
        assert_eq!(
            r(r#"{{ index (.j | fromJson) "a" "b" }}"#, &d).unwrap(),
            "deep"
        );
        assert_eq!(r(r#"{{ index (.j | fromJson) "n" }}"#, &d).unwrap(), "3");
        assert_eq!(r(r#"{{ index (fromJson .j) "l" 1 }}"#, &d).unwrap(), "y");
        assert_eq!(
            r(r#"{{ (.j | fromJson).a | toJson }}"#, &d).unwrap(),
            r#"{"b":"deep"}"#
        );
        assert_eq!(r("{{ .b | toJson }}", &d).unwrap(), "\"aGVsbG8=\"");
        assert_eq!(
            r(
                r#"{{ "x" | trimPrefix "x" }}{{ "ab" | trimSuffix "b" }}"#,
                &d
            )
            .unwrap(),
            "a"
        );
        assert_eq!(r("{{ .b | nindent 2 }}", &d).unwrap(), "\n  aGVsbG8=");
    }

    #[test]
    fn errors_are_clear_and_never_contain_values() {
        let d = [("canary", "CANARY-VALUE-123"), ("bad", "not base64!")];
        let e = r("{{ .canary | nosuchfunction }}", &d).unwrap_err();
        assert!(
            e.0.contains("function \"nosuchfunction\" not defined"),
            "{e}"
        );
        let e = r("{{ .missing }}", &d).unwrap_err();
        assert!(e.0.contains("no entry for key \"missing\""), "{e}");
        let e = r("{{ if .canary }}x{{ end }}{{ end }}", &d).unwrap_err();
        assert!(e.0.contains("unexpected {{end}}"), "{e}");
        for t in [
            "{{ .canary | mustFromJson }}",
            "{{ .canary.x }}",
            "{{ .canary ",
            "{{ .canary | upper 1 2 }}",
            "{{ range .canary }}{{ end }}",
            "{{ eq .canary 1 }}",
            "{{ index .canary 99 }}",
            "{{ fail .canary }}",
            "{{ fail (printf \"%s!\" .canary) }}",
            "{{ eq (list .canary) (list .canary) }}",
            "{{ .bad | b64dec | fail }}",
        ] {
            let e = r(t, &d).unwrap_err();
            assert!(!e.0.contains("CANARY"), "{t}: {e}");
            assert!(!e.0.contains("base64!"), "{t}: {e}");
        }
    }

    #[test]
    fn binary_values_pass_through() {
        let mut d = BTreeMap::new();
        d.insert("bin".to_string(), Zeroizing::new(vec![0u8, 159, 146, 150]));
        assert_eq!(
            render("{{ .bin }}", &d).unwrap().to_vec(),
            vec![0u8, 159, 146, 150]
        );
        assert_eq!(
            String::from_utf8(render("{{ .bin | b64enc }}", &d).unwrap().to_vec()).unwrap(),
            "AJ+Slg=="
        );
    }
}
