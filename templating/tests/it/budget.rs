//! Issue 8 item 2: tenant templates run within a budget. Each case used to abort, panic or
//! grow without bound; now it fails that one template with an error naming the limit.

use std::collections::BTreeMap;

use templating::{Limits, TemplateError, render, render_with_limits};
use zeroize::Zeroizing;

const CANARY: &str = "CANARY-7c1d";

fn data() -> BTreeMap<String, Zeroizing<Vec<u8>>> {
    BTreeMap::from([
        (
            "secret".to_string(),
            Zeroizing::new(CANARY.as_bytes().to_vec()),
        ),
        ("x".to_string(), Zeroizing::new(b"x".to_vec())),
    ])
}

fn fails_naming(template: &str, limit_words: &str) -> TemplateError {
    let e = render(template, &data()).unwrap_err();
    assert!(e.to_string().contains(limit_words), "{template}: {e}");
    assert!(!e.to_string().contains(CANARY), "{template}: {e}");
    e
}

#[test]
fn huge_indent_fails_instead_of_aborting() {
    fails_naming(r#"{{ indent 4000000000 "x" }}"#, "limit of 1048576 bytes");
    fails_naming(
        r#"{{ .secret | nindent 4000000000 }}"#,
        "limit of 1048576 bytes",
    );
}

#[test]
fn indent_of_u64_max_fails_instead_of_panicking() {
    // As in Go, the constant does not fit an int.
    fails_naming(r#"{{ indent 18446744073709551615 "x" }}"#, "overflows int");
    fails_naming(
        r#"{{ nindent 18446744073709551615 .secret }}"#,
        "overflows int",
    );
    // The largest int does, and meets the output limit.
    fails_naming(r#"{{ indent 9223372036854775807 "x" }}"#, "limit of");
    fails_naming(r#"{{ repeat 9223372036854775807 .secret }}"#, "limit of");
    fails_naming(r#"{{ until 9223372036854775807 }}"#, "limit of");
}

#[test]
fn exponential_replace_chain_fails_cleanly() {
    let mut t = String::from("{{ .secret");
    for _ in 0..40 {
        t.push_str(r#" | replace "x" "xxxxxxxxxx""#);
    }
    t.push_str(" }}");
    // The canary has no `x`: seed the growth with the `x` key instead.
    let t = t.replace(".secret", ".x");
    fails_naming(&t, "limit of 1048576 bytes");
    // Go's empty pattern inserts between every character: also bounded.
    let mut t = String::from("{{ .x");
    for _ in 0..40 {
        t.push_str(r#" | replace "" "ab""#);
    }
    t.push_str(" }}");
    fails_naming(&t, "limit of 1048576 bytes");
}

#[test]
fn output_accumulated_over_actions_is_bounded() {
    let small = Limits {
        max_output_bytes: 64,
        ..Limits::default()
    };
    let t = "{{ .secret }}".repeat(10);
    let e = render_with_limits(&t, &data(), &small).unwrap_err();
    assert!(e.to_string().contains("limit of 64 bytes"), "{e}");
    assert!(!e.to_string().contains(CANARY), "{e}");
    // Within the limit the same template renders.
    let ok = render_with_limits(&"{{ .secret }}".repeat(5), &data(), &small).unwrap();
    assert_eq!(ok.len(), 5 * CANARY.len());
}

#[test]
fn steps_are_bounded() {
    let tight = Limits {
        max_steps: 50,
        ..Limits::default()
    };
    let t = "{{ .x | upper }}".repeat(100);
    let e = render_with_limits(&t, &data(), &tight).unwrap_err();
    assert!(e.to_string().contains("limit of 50 steps"), "{e}");
    assert!(render_with_limits(&"{{ .x }}".repeat(10), &data(), &tight).is_ok());
}

#[test]
fn deep_nesting_fails_instead_of_overflowing_the_stack() {
    let depth = 200_000;
    let t = format!("{{{{ {}.x{} }}}}", "(".repeat(depth), ")".repeat(depth));
    fails_naming(&t, "nested deeper than the limit of 100");
    // Within the limit, nesting works.
    let t = format!("{{{{ {}.x{} }}}}", "(".repeat(20), ")".repeat(20));
    assert_eq!(&*render(&t, &data()).unwrap(), b"x");
}

#[test]
fn growth_through_other_functions_fails_cleanly() {
    for t in [
        r#"{{ $s := .x }}{{ range until 64 }}{{ $s = print $s $s }}{{ end }}{{ $s }}"#,
        r#"{{ $s := .x }}{{ range until 64 }}{{ $s = repeat 2 $s }}{{ end }}{{ $s }}"#,
        r#"{{ $l := list .x }}{{ range until 64 }}{{ $l = concat $l $l }}{{ end }}{{ len $l }}"#,
        r#"{{ $l := list .x }}{{ range until 64 }}{{ $l = list $l $l }}{{ end }}{{ len $l }}"#,
        r#"{{ $s := .x }}{{ range until 64 }}{{ $s = printf "%s%s" $s $s }}{{ end }}{{ $s }}"#,
        r#"{{ $s := .x }}{{ range until 64 }}{{ $s = regexReplaceAll "x" $s "xx" }}{{ end }}{{ $s }}"#,
        r#"{{ $s := .x }}{{ range until 64 }}{{ $s = toJson (list $s $s) }}{{ end }}{{ $s }}"#,
    ] {
        let e = render(t, &data()).unwrap_err();
        assert!(e.to_string().contains("limit of"), "{t}: {e}");
    }
}

#[test]
fn loops_and_recursion_are_bounded() {
    let e = render(
        r#"{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}"#,
        &data(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("steps"), "{e}");
    let e = render(
        r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#,
        &data(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("nested deeper than the limit"),
        "{e}"
    );
    // A dict cannot be made to contain itself (printing it would never end).
    let e = render(
        r#"{{ $d := dict }}{{ $_ := set $d "self" $d }}{{ $d }}"#,
        &data(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("cannot contain itself"), "{e}");
    let e = render(
        r#"{{ $l := list }}{{ range until 500 }}{{ $l = list $l }}{{ end }}{{ $l }}"#,
        &data(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("nested deeper than the limit"),
        "{e}"
    );
}

#[test]
fn arithmetic_and_slicing_never_panic() {
    for t in [
        r#"{{ div 1 0 }}"#,
        r#"{{ mod 1 0 }}"#,
        r#"{{ substr 5 2 "abc" }}"#,
        r#"{{ slice "héllo" 0 99 }}"#,
        r#"{{ slice (list 1 2) 0 99 }}"#,
        r#"{{ slice (list 1 2) 2 1 }}"#,
        r#"{{ index "abc" -1 }}"#,
        r#"{{ chunk 0 (list 1) }}"#,
    ] {
        assert!(render(t, &data()).is_err(), "{t}");
    }
    for t in [
        r#"{{ add 9223372036854775807 1 }}"#,
        r#"{{ mul 9223372036854775807 9223372036854775807 }}"#,
        r#"{{ div -9223372036854775808 -1 }}"#,
        r#"{{ sub -9223372036854775808 1 }}"#,
        r#"{{ slice "héllo" 1 2 }}"#,
        r#"{{ trunc -100 "abc" }}"#,
        r#"{{ abbrevboth 5 10 "é12345678é12345678" }}"#,
        r#"{{ wrapWith 1 "
" "ééé ééé" }}"#,
        r#"{{ printf "%.1000000f" 1.5 }}"#,
        r#"{{ round 1.5 1000 }}"#,
    ] {
        let _ = render(t, &data());
    }
}

#[test]
fn large_data_does_not_eat_the_budget_of_small_lookups() {
    // 2,000 lookups into 900 KiB of data stay far below the step limit.
    let mut d = data();
    d.insert("big".to_string(), Zeroizing::new(vec![b'a'; 900 * 1024]));
    let t = r#"{{ index . "x" }}"#.repeat(2000);
    assert_eq!(render(&t, &d).unwrap().len(), 2000);
}

#[test]
fn a_number_followed_by_a_multibyte_character_is_a_clear_error() {
    // Found by the fuzz smoke test: the error message sliced inside the character and panicked.
    let e = render("{{ 1é }}", &data()).unwrap_err();
    assert!(e.to_string().contains("bad number syntax"), "{e}");
}
