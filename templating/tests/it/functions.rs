//! The Sprig and ESO functions, against the outputs Sprig's and ESO's documentation give and,
//! for PEM material, against the openssl CLI.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use templating::{Limits, NOT_IMPLEMENTED, function_names, render, render_with_limits};
use zeroize::Zeroizing;

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Zeroizing<Vec<u8>>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Zeroizing::new(v.as_bytes().to_vec())))
        .collect()
}

fn r(t: &str, d: &[(&str, &str)]) -> String {
    match render(t, &data(d)) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => panic!("{t}: {e}"),
    }
}

fn table(cases: &[(&str, &str)]) {
    let d = [
        ("user", "admin"),
        ("password", "s3cr3t"),
        ("registryName", "registry.example.com"),
        (
            "json",
            r#"{"a":{"b":"deep"},"n":3,"f":1.5,"l":["x","y"],"t":true,"z":null}"#,
        ),
        ("empty", ""),
    ];
    let mut failures = Vec::new();
    for (t, want) in cases {
        match render(t, &data(&d)) {
            Ok(got) if got.as_slice() == want.as_bytes() => {}
            Ok(got) => failures.push(format!(
                "{t}\n  got:  {:?}\n  want: {want:?}",
                String::from_utf8_lossy(&got)
            )),
            Err(e) => failures.push(format!("{t}\n  error: {e}\n  want:  {want:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn eso_documented_recipes() {
    table(&[
        // docs/guides/common-k8s-secret-types.md: dockerconfigjson
        (
            r#"{"auths":{"{{ .registryName }}":{"username":"{{ .user }}","password":"{{ .password }}","auth":"{{ printf "%s:%s" .user .password | b64enc }}"}}}"#,
            r#"{"auths":{"registry.example.com":{"username":"admin","password":"s3cr3t","auth":"YWRtaW46czNjcjN0"}}}"#,
        ),
        // docs/snippets/helm-template-v2-escape-sequence.yaml
        (r#"{{ printf "{{ .password }}" }}"#, "{{ .password }}"),
        // templating guide: ranges over the data, joins, toJson
        (
            r#"{{ range $k, $v := . }}{{ if eq $k "user" }}{{ $k }}={{ $v }}{{ end }}{{ end }}"#,
            "user=admin",
        ),
        (r#"{{ list .user .password | join "," }}"#, "admin,s3cr3t"),
        (r#"{{ dict "u" .user | toJson }}"#, r#"{"u":"admin"}"#),
        (
            r#"{{ .json | fromJson | toYaml }}"#,
            "a:\n  b: deep\nf: 1.5\nl:\n- x\n- y\nn: 3\nt: true\nz: null",
        ),
        (r#"{{ (.json | fromJson).l | toJson }}"#, r#"["x","y"]"#),
    ]);
}

#[test]
fn sprig_strings() {
    table(&[
        (r#"{{ trim "   hello    " }}"#, "hello"),
        (r#"{{ trimAll "$" "$5.00" }}"#, "5.00"),
        (r#"{{ trimSuffix "-" "hello-" }}"#, "hello"),
        (r#"{{ trimPrefix "-" "-hello" }}"#, "hello"),
        (r#"{{ upper "hello" }}"#, "HELLO"),
        (r#"{{ lower "HELLO" }}"#, "hello"),
        (r#"{{ title "hello world" }}"#, "Hello World"),
        (r#"{{ untitle "Hello World" }}"#, "hello world"),
        (r#"{{ repeat 3 "hello" }}"#, "hellohellohello"),
        (r#"{{ substr 0 5 "hello world" }}"#, "hello"),
        (r#"{{ nospace "hello w o r l d" }}"#, "helloworld"),
        (r#"{{ trunc 5 "hello world" }}"#, "hello"),
        (r#"{{ trunc -5 "hello world" }}"#, "world"),
        (r#"{{ abbrev 5 "hello world" }}"#, "he..."),
        (r#"{{ abbrevboth 5 10 "1234 5678 9123" }}"#, "...5678..."),
        (r#"{{ initials "First Try" }}"#, "FT"),
        (r#"{{ wrap 80 "short" }}"#, "short"),
        (r#"{{ wrapWith 5 "\t" "Hello World" }}"#, "Hello\tWorld"),
        (r#"{{ contains "cat" "catch" }}"#, "true"),
        (r#"{{ hasPrefix "cat" "catch" }}"#, "true"),
        (r#"{{ hasSuffix "cat" "catch" }}"#, "false"),
        (r#"{{ quote "a" "b" }}"#, r#""a" "b""#),
        (r#"{{ squote "a" }}"#, "'a'"),
        (
            r#"{{ cat "hello" "beautiful" "world" }}"#,
            "hello beautiful world",
        ),
        (r#"{{ indent 4 "a\nb" }}"#, "    a\n    b"),
        (r#"{{ nindent 4 "a" }}"#, "\n    a"),
        (
            r#"{{ "I Am Henry VIII" | replace " " "-" }}"#,
            "I-Am-Henry-VIII",
        ),
        (
            r#"{{ len .user | plural "one anchovy" "many anchovies" }}"#,
            "many anchovies",
        ),
        (r#"{{ snakecase "FirstName" }}"#, "first_name"),
        (r#"{{ camelcase "http_server" }}"#, "HttpServer"),
        (r#"{{ kebabcase "FirstName" }}"#, "first-name"),
        (r#"{{ swapcase "This Is A.Test" }}"#, "tHIS iS a.tEST"),
        (r#"{{ len (randAlphaNum 12) }}"#, "12"),
        (
            r#"{{ "hello" | sha256sum }}"#,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        ),
        (
            r#"{{ "hello" | sha1sum }}"#,
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
        ),
        (r#"{{ adler32sum "hello" }}"#, "103547413"),
        (r#"{{ toString 42 }}"#, "42"),
    ]);
}

#[test]
fn sprig_lists_dicts_and_conversions() {
    table(&[
        (
            r#"{{ splitList "$" "foo$bar$baz" | toJson }}"#,
            r#"["foo","bar","baz"]"#,
        ),
        (r#"{{ (split "$" "foo$bar$baz")._1 }}"#, "bar"),
        (r#"{{ (splitn "$" 2 "foo$bar$baz")._1 }}"#, "bar$baz"),
        (r#"{{ list "c" "a" "b" | sortAlpha | join "," }}"#, "a,b,c"),
        (r#"{{ list 1 2 3 | join "-" }}"#, "1-2-3"),
        (r#"{{ list 1 2 3 | first }}{{ list 1 2 3 | last }}"#, "13"),
        (
            r#"{{ list 1 2 3 | rest | toJson }}{{ list 1 2 3 | initial | toJson }}"#,
            "[2,3][1,2]",
        ),
        (r#"{{ append (list 1 2) 3 | toJson }}"#, "[1,2,3]"),
        (r#"{{ prepend (list 1 2) 0 | toJson }}"#, "[0,1,2]"),
        (r#"{{ list 1 1 2 | uniq | toJson }}"#, "[1,2]"),
        (r#"{{ without (list 1 2 3) 2 | toJson }}"#, "[1,3]"),
        (r#"{{ has 2 (list 1 2 3) }}"#, "true"),
        (r#"{{ list 1 2 3 | reverse | toJson }}"#, "[3,2,1]"),
        (r#"{{ compact (list 1 "" 0 "a") | toJson }}"#, r#"[1,"a"]"#),
        (r#"{{ concat (list 1) (list 2 3) | toJson }}"#, "[1,2,3]"),
        (r#"{{ chunk 2 (list 1 2 3) | toJson }}"#, "[[1,2],[3]]"),
        (
            r#"{{ until 3 | toJson }}{{ untilStep 0 10 4 | toJson }}"#,
            "[0,1,2][0,4,8]",
        ),
        (r#"{{ seq 3 }}|{{ seq 2 -2 }}"#, "1 2 3|2 1 0 -1 -2"),
        (
            r#"{{ $d := dict "a" 1 "b" "x" }}{{ $_ := set $d "c" true }}{{ toJson $d }}"#,
            r#"{"a":1,"b":"x","c":true}"#,
        ),
        (
            r#"{{ $d := dict "a" 1 }}{{ $_ := unset $d "a" }}{{ toJson $d }}"#,
            "{}",
        ),
        (
            r#"{{ get (dict "a" "x") "a" }}{{ hasKey (dict "a" 1) "b" }}"#,
            "xfalse",
        ),
        (
            r#"{{ keys (dict "b" 1 "a" 2) | sortAlpha | join "," }}"#,
            "a,b",
        ),
        (
            r#"{{ pick (dict "a" 1 "b" 2) "a" | toJson }}{{ omit (dict "a" 1 "b" 2) "a" | toJson }}"#,
            r#"{"a":1}{"b":2}"#,
        ),
        (
            r#"{{ pluck "a" (dict "a" 1) (dict "a" 2) (dict "b" 3) | toJson }}"#,
            "[1,2]",
        ),
        (
            r#"{{ merge (dict "a" 1) (dict "a" 2 "b" 3) | toJson }}"#,
            r#"{"a":1,"b":3}"#,
        ),
        (
            r#"{{ mergeOverwrite (dict "a" 1) (dict "a" 2 "b" 3) | toJson }}"#,
            r#"{"a":2,"b":3}"#,
        ),
        (
            r#"{{ dig "a" "b" "none" (.json | fromJson) }}|{{ dig "a" "x" "none" (.json | fromJson) }}"#,
            "deep|none",
        ),
        (r#"{{ values (dict "a" 1 "b" 2) | toJson }}"#, "[1,2]"),
        (
            r#"{{ atoi "42" | add 1 }}{{ int "12" }}{{ int64 3.9 }}{{ float64 "1.5" }}"#,
            "431231.5",
        ),
        (
            r#"{{ add 1 2 3 }} {{ sub 5 2 }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ mod 7 2 }} {{ add1 1 }}"#,
            "6 3 24 3 1 2",
        ),
        (
            r#"{{ max 1 5 3 }} {{ min 4 2 8 }} {{ floor 1.7 }} {{ ceil 1.2 }} {{ round 3.14159 2 }}"#,
            "5 2 1 2 3.14",
        ),
        (
            r#"{{ addf 0.1 0.2 }} {{ mulf 1.5 2 }} {{ subf 1 0.1 }} {{ divf 1 4 }}"#,
            "0.3 3 0.9 0.25",
        ),
        (r#"{{ toDecimal "0777" }}"#, "511"),
    ]);
}

#[test]
fn sprig_defaults_encoding_regex_paths() {
    table(&[
        (
            r#"{{ .empty | default "foo" }}{{ default "foo" .user }}"#,
            "fooadmin",
        ),
        (r#"{{ empty .empty }}{{ empty .user }}"#, "truefalse"),
        (r#"{{ coalesce .empty "" "x" }}"#, "x"),
        (
            r#"{{ all .user .empty }}{{ any .user .empty }}"#,
            "falsetrue",
        ),
        (r#"{{ ternary "yes" "no" true }}"#, "yes"),
        (
            r#"{{ "<a>" | toJson }}{{ "<a>" | toRawJson }}"#,
            r#""\u003ca\u003e""<a>""#,
        ),
        (
            r#"{{ dict "a" (list 1 2) | toPrettyJson }}"#,
            "{\n  \"a\": [\n    1,\n    2\n  ]\n}",
        ),
        (
            r#"{{ (.json | fromJson).n }} {{ (.json | fromJson).f }} {{ (.json | fromJson).z }}"#,
            "3 1.5 <no value>",
        ),
        (r#"{{ "not json" | fromJson }}"#, "<no value>"),
        (
            r#"{{ "hello" | b64enc }}|{{ "aGVsbG8=" | b64dec }}"#,
            "aGVsbG8=|hello",
        ),
        (
            r#"{{ "hello" | b32enc }}|{{ "NBSWY3DP" | b32dec }}"#,
            "NBSWY3DP|hello",
        ),
        (
            r#"{{ "!!" | b64dec }}"#,
            "illegal base64 data at input byte 0",
        ),
        (
            r#"{{ "a: 1\nb: [x]" | fromYaml | toJson }}"#,
            r#"{"a":1,"b":["x"]}"#,
        ),
        (
            r#"{{ regexMatch "^[a-z]+$" "abc" }}{{ regexMatch "^[a-z]+$" "ab1" }}"#,
            "truefalse",
        ),
        (
            r#"{{ regexFindAll "[2,4,6,8]" "123456789" -1 | toJson }}"#,
            r#"["2","4","6","8"]"#,
        ),
        (r#"{{ regexFind "[a-zA-Z][1-9]" "abcd1234" }}"#, "d1"),
        (
            r#"{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}"#,
            "-W-xxW-",
        ),
        (
            r#"{{ regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" }}"#,
            "-${1}-${1}-",
        ),
        (
            r#"{{ regexSplit "z+" "pizza" -1 | toJson }}"#,
            r#"["pi","a"]"#,
        ),
        (r#"{{ regexQuoteMeta "1.2.3" }}"#, r"1\.2\.3"),
        (
            r#"{{ base "foo/bar/baz" }} {{ dir "foo/bar/baz" }} {{ clean "foo/bar/../baz" }} {{ ext "foo.bar" }} {{ isAbs "/x" }}"#,
            "baz foo/bar foo/baz .bar true",
        ),
        (
            r#"{{ typeOf 1 }} {{ kindOf (list) }} {{ kindIs "map" (dict) }} {{ deepEqual (list 1) (list 1) }}"#,
            "int slice true true",
        ),
        (r#"{{ hexdec "6869" }}"#, "hi"),
        (r#"{{ uuidv4 | len }}"#, "36"),
    ]);
}

#[test]
fn fail_and_not_implemented_functions_are_clear_errors() {
    let d = data(&[("secret", "CANARY-d41d8cd9")]);
    let e = render(r#"{{ fail "the template says no" }}"#, &d).unwrap_err();
    assert!(e.to_string().contains("the template says no"), "{e}");
    // A template cannot smuggle a value into an error (errors reach status conditions).
    let e = render(r#"{{ fail .secret }}"#, &d).unwrap_err();
    assert!(!e.to_string().contains("CANARY"), "{e}");
    for name in NOT_IMPLEMENTED {
        assert!(function_names().contains(name));
        let e = render(&format!("{{{{ {name} .secret }}}}"), &d).unwrap_err();
        assert!(e.to_string().contains("not implemented"), "{name}: {e}");
    }
    for excluded in ["env", "expandenv", "getHostByName"] {
        let e = render(&format!("{{{{ {excluded} \"HOME\" }}}}"), &d).unwrap_err();
        assert!(e.to_string().contains("not defined"), "{excluded}: {e}");
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A root → intermediate → leaf chain made by openssl, the leaf with DNS, IP, email and URI SANs.
fn openssl_chain(dir: &Path) -> Option<()> {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: openssl is not installed (scripts/install-peers.sh installs it)");
        return None;
    }
    let ext = "[ca]\nbasicConstraints=critical,CA:TRUE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n\
               [leaf]\nbasicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n\
               subjectAltName=DNS:app.example.com,DNS:www.example.com,IP:10.0.0.1,IP:2001:db8::1,email:ops@example.com,URI:spiffe://example.com/app\n";
    std::fs::write(dir.join("ext.cnf"), ext).unwrap();
    for (name, subj) in [
        ("root", "/CN=Root"),
        ("inter", "/CN=Intermediate"),
        ("leaf", "/CN=app.example.com"),
    ] {
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &format!("{name}.key"),
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                subj,
                "-out",
                &format!("{name}.csr"),
            ],
        );
    }
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "root.csr",
            "-signkey",
            "root.key",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "ca",
            "-out",
            "root.pem",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "inter.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "ca",
            "-out",
            "inter.pem",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "inter.pem",
            "-CAkey",
            "inter.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "leaf",
            "-out",
            "leaf.pem",
        ],
    );
    Some(())
}

#[test]
fn pem_functions_agree_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    if openssl_chain(dir.path()).is_none() {
        return;
    }
    let canonical = |f: &str| {
        String::from_utf8(openssl(dir.path(), &["x509", "-in", f, "-outform", "PEM"])).unwrap()
    };
    let (root, inter, leaf) = (
        canonical("root.pem"),
        canonical("inter.pem"),
        canonical("leaf.pem"),
    );
    let key = std::fs::read_to_string(dir.path().join("leaf.key")).unwrap();
    // Shuffled, with a key and junk around: the functions order and filter as ESO does.
    let bundle = format!("junk before\n{inter}{key}{root}{leaf}");
    let certs = format!("junk before\n{inter}{root}{leaf}");
    let d = [
        ("bundle", bundle.as_str()),
        ("certs", certs.as_str()),
        ("leafonly", leaf.as_str()),
    ];
    assert_eq!(r(r#"{{ .certs | filterCertChain "leaf" }}"#, &d), leaf);
    assert_eq!(
        r(r#"{{ .certs | filterCertChain "intermediate" }}"#, &d),
        inter
    );
    assert_eq!(r(r#"{{ .certs | filterCertChain "root" }}"#, &d), root);
    // As ESO: every block must be a certificate.
    assert!(render(r#"{{ .bundle | filterCertChain "leaf" }}"#, &data(&d)).is_err());
    assert_eq!(r(r#"{{ .bundle | filterPEM "PRIVATE KEY" }}"#, &d), key);
    assert_eq!(
        r(r#"{{ .bundle | filterPEM "CERTIFICATE" }}"#, &d),
        format!("{inter}{root}{leaf}")
    );
    assert_eq!(
        r(r#"{{ .leafonly | certSANs | toJson }}"#, &d),
        r#"["app.example.com","www.example.com","10.0.0.1","2001:db8::1","ops@example.com","spiffe://example.com/app"]"#
    );
    // The root is self-signed with an authority key id equal to its subject key id.
    let chain_with_root = format!("{leaf}{inter}{root}");
    let d = [("chain", chain_with_root.as_str())];
    assert_eq!(r(r#"{{ .chain | filterCertChain "root" }}"#, &d), root);
    // What filterPEM returns, openssl reads back as the same certificate.
    let out = r(r#"{{ .chain | filterCertChain "leaf" }}"#, &d);
    std::fs::write(dir.path().join("out.pem"), &out).unwrap();
    let subject = openssl(
        dir.path(),
        &["x509", "-in", "out.pem", "-noout", "-subject"],
    );
    assert!(String::from_utf8_lossy(&subject).contains("app.example.com"));
    let e = render(
        r#"{{ "not pem" | filterPEM "CERTIFICATE" }}"#,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("found junk"), "{e}");
}

/// The hex fields `openssl pkey -text` prints (modulus, prime1, priv, pub, …).
fn openssl_fields(text: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("    ") {
            if let Some(name) = &current {
                let bytes = line
                    .trim()
                    .trim_end_matches(':')
                    .split(':')
                    .map(|h| u8::from_str_radix(h, 16).unwrap());
                out.entry(name.clone()).or_default().extend(bytes);
            }
        } else if let Some(name) = line.strip_suffix(':') {
            current = Some(name.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("publicExponent: ") {
            let e: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
            out.insert("publicExponent".into(), e.to_be_bytes().to_vec());
            current = None;
        } else {
            current = None;
        }
    }
    out
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(trimmed)
}

#[test]
fn jwk_functions_agree_with_openssl() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: openssl is not installed (scripts/install-peers.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    openssl(
        p,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "rsa.pem",
        ],
    );
    openssl(
        p,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
    );
    let rsa = openssl_fields(
        &String::from_utf8(openssl(p, &["pkey", "-in", "rsa.pem", "-text", "-noout"])).unwrap(),
    );
    let ec = openssl_fields(
        &String::from_utf8(openssl(p, &["pkey", "-in", "ec.pem", "-text", "-noout"])).unwrap(),
    );
    let rsa_jwk = format!(
        r#"{{"kty":"RSA","n":"{}","e":"{}","d":"{}","p":"{}","q":"{}","dp":"{}","dq":"{}","qi":"{}"}}"#,
        b64url(&rsa["modulus"]),
        b64url(&rsa["publicExponent"]),
        b64url(&rsa["privateExponent"]),
        b64url(&rsa["prime1"]),
        b64url(&rsa["prime2"]),
        b64url(&rsa["exponent1"]),
        b64url(&rsa["exponent2"]),
        b64url(&rsa["coefficient"]),
    );
    let point = &ec["pub"];
    let ec_jwk = format!(
        r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}","d":"{}"}}"#,
        b64url(&point[1..33]),
        b64url(&point[33..65]),
        b64url(&ec["priv"]),
    );
    for (file, jwk) in [("rsa.pem", rsa_jwk), ("ec.pem", ec_jwk)] {
        let d = [("jwk", jwk.as_str())];
        // The public key is byte for byte what openssl derives.
        let want_pub = String::from_utf8(openssl(p, &["pkey", "-in", file, "-pubout"])).unwrap();
        assert_eq!(r("{{ .jwk | jwkPublicKeyPem }}", &d), want_pub, "{file}");
        // The private key is the same key for openssl.
        std::fs::write(p.join("ours.pem"), r("{{ .jwk | jwkPrivateKeyPem }}", &d)).unwrap();
        assert_eq!(
            openssl(p, &["pkey", "-in", "ours.pem", "-text", "-noout"]),
            openssl(p, &["pkey", "-in", file, "-text", "-noout"]),
            "{file}"
        );
    }
    let e = render("{{ jwkPublicKeyPem \"{}\" }}", &BTreeMap::new()).unwrap_err();
    assert!(e.to_string().contains("JWK"), "{e}");
}

#[test]
fn rsa_decrypt_opens_what_openssl_encrypts() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: openssl is not installed (scripts/install-peers.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    openssl(
        p,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ],
    );
    openssl(p, &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"]);
    openssl(
        p,
        &["rsa", "-in", "key.pem", "-traditional", "-out", "pkcs1.pem"],
    );
    std::fs::write(p.join("msg"), b"the plaintext").unwrap();
    for (hash, md) in [
        ("SHA256", "sha256"),
        ("SHA1", "sha1"),
        ("SHA512", "sha512"),
        ("None", "sha256"),
    ] {
        openssl(
            p,
            &[
                "pkeyutl",
                "-encrypt",
                "-pubin",
                "-inkey",
                "pub.pem",
                "-in",
                "msg",
                "-out",
                "ct",
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                &format!("rsa_oaep_md:{md}"),
                "-pkeyopt",
                &format!("rsa_mgf1_md:{md}"),
            ],
        );
        for key in ["key.pem", "pkcs1.pem"] {
            let mut d = BTreeMap::new();
            d.insert(
                "ct".to_string(),
                Zeroizing::new(std::fs::read(p.join("ct")).unwrap()),
            );
            d.insert(
                "key".to_string(),
                Zeroizing::new(std::fs::read(p.join(key)).unwrap()),
            );
            let t = format!(r#"{{{{ rsaDecrypt "RSA-OAEP" "{hash}" .ct .key }}}}"#);
            let out = render(&t, &d).unwrap_or_else(|e| panic!("{hash} {key}: {e}"));
            assert_eq!(out.as_slice(), b"the plaintext", "{hash} {key}");
        }
    }
    let d = data(&[("x", "abc")]);
    assert_eq!(
        r(r#"{{ rsaDecrypt "None" "SHA256" "abc" "" }}"#, &[]),
        "abc"
    );
    let e = render(r#"{{ rsaDecrypt "RSA-OAEP" "SHA256" .x "not a key" }}"#, &d).unwrap_err();
    assert!(e.to_string().contains("PEM"), "{e}");
}

/// Renders with binary values.
fn render_bytes(t: &str, values: &[(&str, &[u8])], limits: &Limits) -> Result<Vec<u8>, String> {
    let d: BTreeMap<String, Zeroizing<Vec<u8>>> = values
        .iter()
        .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_vec())))
        .collect();
    render_with_limits(t, &d, limits)
        .map(|v| v.to_vec())
        .map_err(|e| e.to_string())
}

/// ESO's PKCS#12 functions against `openssl pkcs12`: we read what openssl writes (its modern
/// default, 3DES/SHA-1 and, where the legacy provider exists, RC2-40), openssl reads what we
/// write, and key derivations are charged to the budget.
#[test]
fn pkcs12_functions_agree_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    if openssl_chain(dir.path()).is_none() {
        return;
    }
    let p = dir.path();
    let canonical =
        |f: &str| String::from_utf8(openssl(p, &["x509", "-in", f, "-outform", "PEM"])).unwrap();
    let (root, inter, leaf) = (
        canonical("root.pem"),
        canonical("inter.pem"),
        canonical("leaf.pem"),
    );
    std::fs::write(p.join("ca.pem"), format!("{root}{inter}")).unwrap();
    let key = String::from_utf8(openssl(p, &["pkey", "-in", "leaf.key"])).unwrap();
    let limits = Limits::default();
    let export = |out: &str, pass: &str, extra: &[&str]| {
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            "leaf.key",
            "-in",
            "leaf.pem",
            "-certfile",
            "ca.pem",
            "-passout",
        ];
        let pass_arg = format!("pass:{pass}");
        args.push(&pass_arg);
        args.extend_from_slice(&["-out", out]);
        args.extend_from_slice(extra);
        Command::new("openssl")
            .current_dir(p)
            .args(&args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let chain = format!("{leaf}{inter}{root}");
    let mut variants = vec![("modern.p12", vec![])];
    variants.push((
        "3des.p12",
        vec![
            "-certpbe",
            "PBE-SHA1-3DES",
            "-keypbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
        ],
    ));
    if export("probe.p12", "x", &["-legacy"]) {
        variants.push(("legacy.p12", vec!["-legacy"]));
    } else {
        eprintln!("openssl has no legacy provider: RC2-40 files not checked");
    }
    for (file, extra) in &variants {
        assert!(export(file, "pw", extra), "openssl export {file}");
        let p12 = std::fs::read(p.join(file)).unwrap();
        let values = [("p12", p12.as_slice())];
        let got = render_bytes(r#"{{ .p12 | pkcs12keyPass "pw" }}"#, &values, &limits).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), key, "{file}");
        let got = render_bytes(r#"{{ .p12 | pkcs12certPass "pw" }}"#, &values, &limits).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), chain, "{file}");
        let e = render_bytes(r#"{{ .p12 | pkcs12keyPass "nope" }}"#, &values, &limits).unwrap_err();
        assert!(e.contains("unable to decode pkcs12 with password"), "{e}");
        assert!(!e.contains("BEGIN"), "{e}");
    }
    // Without a password.
    assert!(export("nopass.p12", "", &[]));
    let p12 = std::fs::read(p.join("nopass.p12")).unwrap();
    let got = render_bytes("{{ .p12 | pkcs12key }}", &[("p12", &p12)], &limits).unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), key);

    // Hostile iteration counts fail on the budget before the derivation runs.
    assert!(export("slow.p12", "pw", &["-iter", "60000"]));
    let p12 = std::fs::read(p.join("slow.p12")).unwrap();
    let tight = Limits {
        max_steps: 100_000,
        ..Limits::default()
    };
    let e = render_bytes(
        r#"{{ .p12 | pkcs12keyPass "pw" }}"#,
        &[("p12", &p12)],
        &tight,
    )
    .unwrap_err();
    assert!(e.contains("limit of 100000 steps"), "{e}");

    // openssl reads what we write: key and full chain, with and without a password; the
    // SEC1 ("EC PRIVATE KEY") form of the key works too.
    openssl(p, &["ec", "-in", "leaf.key", "-out", "leaf-sec1.pem"]);
    let sec1 = std::fs::read(p.join("leaf-sec1.pem")).unwrap();
    let ca = format!("{root}{inter}");
    let values = [
        ("cert", chain.as_bytes()),
        ("key", key.as_bytes()),
        ("sec1", sec1.as_slice()),
        ("ca", ca.as_bytes()),
    ];
    let pub_of = |f: &str| openssl(p, &["pkey", "-in", f, "-pubout"]);
    let leaf_pub = pub_of("leaf.key");
    for (template, pass, certs) in [
        (r#"{{ fullPemToPkcs12Pass .cert .key "pw" }}"#, "pw", 3),
        ("{{ fullPemToPkcs12 .cert .sec1 }}", "", 3),
        (r#"{{ pemToPkcs12Pass .cert .key "pw" }}"#, "pw", 1),
        ("{{ pemToPkcs12 .cert .key }}", "", 1),
    ] {
        let b64 = render_bytes(template, &values, &limits).unwrap();
        let der = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .unwrap();
        std::fs::write(p.join("ours.p12"), &der).unwrap();
        let pass_arg = format!("pass:{pass}");
        openssl(
            p,
            &[
                "pkcs12", "-in", "ours.p12", "-passin", &pass_arg, "-nodes", "-out", "all.pem",
            ],
        );
        let text = std::fs::read_to_string(p.join("all.pem")).unwrap();
        assert_eq!(
            text.matches("BEGIN CERTIFICATE").count(),
            certs,
            "{template}"
        );
        assert!(text.contains(leaf.lines().nth(1).unwrap()), "{template}");
        assert_eq!(pub_of("all.pem"), leaf_pub, "{template}");
        // And we read it back.
        let back = render_bytes(
            &format!(r#"{{{{ .p12 | pkcs12certPass "{pass}" }}}}"#),
            &[("p12", &der)],
            &limits,
        )
        .unwrap();
        let expected = if certs == 3 {
            chain.clone()
        } else {
            leaf.clone()
        };
        assert_eq!(String::from_utf8(back).unwrap(), expected, "{template}");
    }
    let b64 = render_bytes(
        r#"{{ pemTruststoreToPKCS12Pass .ca "pw" }}"#,
        &values,
        &limits,
    )
    .unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .unwrap();
    std::fs::write(p.join("trust.p12"), &der).unwrap();
    let out = openssl(
        p,
        &[
            "pkcs12",
            "-in",
            "trust.p12",
            "-passin",
            "pass:pw",
            "-nokeys",
        ],
    );
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(text.contains(root.lines().nth(1).unwrap()));
    // Bad input: clear errors, no panic.
    for t in [
        "{{ pkcs12key .key }}",
        "{{ pemToPkcs12 .key .key }}",
        "{{ pemToPkcs12 .cert .cert }}",
        "{{ pemTruststoreToPKCS12 .key }}",
    ] {
        assert!(render_bytes(t, &values, &limits).is_err(), "{t}");
    }
}

/// Sprig's date functions, with Go's layouts and the bundled tz database. Expected values are
/// what Sprig 3.2 prints with the process zone UTC (as in ESO's container).
#[test]
fn sprig_dates() {
    table(&[
        (
            r#"{{ date "2006-01-02" (toDate "2006-01-02" "2024-03-05") }}"#,
            "2024-03-05",
        ),
        (
            r#"{{ toDate "2006-01-02" "2024-03-05" }}"#,
            "2024-03-05 00:00:00 +0000 UTC",
        ),
        (
            r#"{{ toDate "2006-01-02T15:04:05Z07:00" "2024-03-05T10:00:00+02:00" }}"#,
            "2024-03-05 10:00:00 +0200 +0200",
        ),
        // Unparseable input: toDate gives Go's zero time, mustToDate an error (below).
        (
            r#"{{ toDate "2006-01-02" "yesterday" }}"#,
            "0001-01-01 00:00:00 +0000 UTC",
        ),
        (
            r#"{{ date "Mon Jan _2 15:04:05.000 MST 2006 PM -07:00" (toDate "2006-01-02 15:04:05.999" "2024-07-04 21:05:07.12") }}"#,
            "Thu Jul  4 21:05:07.120 UTC 2024 PM +00:00",
        ),
        (
            r#"{{ date "2006-01-02 15:04:05" 1700000000 }}"#,
            "2023-11-14 22:13:20",
        ),
        (r#"{{ htmlDate 86400 }}"#, "1970-01-02"),
        (
            r#"{{ htmlDateInZone (toDate "2006-01-02 15:04" "2021-12-31 23:30") "Asia/Tokyo" }}"#,
            "2022-01-01",
        ),
        // Daylight saving time from the zone database, abbreviation included.
        (
            r#"{{ dateInZone "2006-01-02 15:04 MST -0700" (toDate "2006-01-02" "2024-07-05") "Europe/Berlin" }}"#,
            "2024-07-05 02:00 CEST +0200",
        ),
        (
            r#"{{ dateInZone "15:04 MST" (toDate "2006-01-02" "2024-01-05") "Europe/Berlin" }}"#,
            "01:00 CET",
        ),
        (
            r#"{{ date_in_zone "15:04 -07:00" (toDate "2006-01-02" "2024-07-05") "Asia/Kolkata" }}"#,
            "05:30 +05:30",
        ),
        // An unknown zone falls back to UTC, as Sprig does.
        (
            r#"{{ dateInZone "15:04 MST" (toDate "2006-01-02" "2024-07-05") "Mars/Olympus" }}"#,
            "00:00 UTC",
        ),
        (
            r#"{{ dateModify "-1.5h" (toDate "2006-01-02" "2024-03-05") }}"#,
            "2024-03-04 22:30:00 +0000 UTC",
        ),
        (
            r#"{{ dateModify "soon" (toDate "2006-01-02" "2024-03-05") | htmlDate }}"#,
            "2024-03-05",
        ),
        (
            r#"{{ must_date_modify "24h" (toDate "2006-01-02" "2024-02-28") | htmlDate }}"#,
            "2024-02-29",
        ),
        (
            r#"{{ unixEpoch (toDate "2006-01-02" "2024-03-05") }}"#,
            "1709596800",
        ),
        (
            r#"{{ duration "95" }} {{ duration "90061" }} {{ duration "x" }}"#,
            "1m35s 25h1m1s 0s",
        ),
        (
            r#"{{ durationRound "2h10m" }} {{ durationRound "400h" }} {{ durationRound "9000h" }} {{ durationRound "-3m" }} {{ durationRound "1h" }}"#,
            "2h 16d 1y 3m 60m",
        ),
        (
            r#"{{ toDate "2006-01-02" "2024-03-05" | toJson }}"#,
            r#""2024-03-05T00:00:00Z""#,
        ),
        (
            r#"{{ $t := toDate "2006-01-02 15:04:05" "2024-03-05 10:20:30" }}{{ $t.Year }} {{ $t.YearDay }} {{ $t.Unix }}"#,
            "2024 65 1709634030",
        ),
        (
            r#"{{ now | typeOf }} {{ now | date "2006" | len }}"#,
            "time.Time 4",
        ),
        // time.Time methods: AddDate normalises as Go does (January 31 + 1 month = March 2).
        (
            r#"{{ $t := toDate "2006-01-02" "2024-01-31" }}{{ $t.Format "Jan 2" }} {{ $t.AddDate 0 1 0 | htmlDate }} {{ $t.Before now }}"#,
            "Jan 31 2024-03-02 true",
        ),
        (r#"{{ ago (dateModify "-90s" now) }}"#, "1m30s"),
    ]);
    let d = data(&[]);
    for t in [
        r#"{{ mustToDate "2006-01-02" "yesterday" }}"#,
        r#"{{ mustToDate "2006-01-02" "2023-02-29" }}"#,
        r#"{{ mustDateModify "soon" now }}"#,
        r#"{{ dateModify "1h" "2024-01-01" }}"#,
        r#"{{ unixEpoch "2024-01-01" }}"#,
    ] {
        assert!(render(t, &d).is_err(), "{t}");
    }
}

/// semverCompare with Masterminds' constraint rules (the tables of its README).
#[test]
fn sprig_semver() {
    let check = |constraint: &str, version: &str| {
        r(
            &format!("{{{{ semverCompare {constraint:?} {version:?} }}}}"),
            &[],
        ) == "true"
    };
    let yes = [
        ("1.2.3", "1.2.3"),
        ("!=1.2.3", "1.2.4"),
        (">1.2", "1.3.0"),
        (">= 1.2, < 1.3", "1.2.9"),
        (">=1.0 <2.0", "1.9.9"),
        ("1.2 - 1.4.5", "1.4.5"),
        ("<1.2 || >=1.2.3", "1.2.3"),
        ("1.2.x", "1.2.99"),
        ("*", "1.2.3"),
        ("~1.2.3", "1.2.9"),
        ("~1", "1.9.0"),
        ("~>1.2", "1.2.5"),
        ("^1.2.3", "1.9.9"),
        ("^0.2.3", "0.2.9"),
        ("^0.0.3", "0.0.3"),
        ("^1.x", "1.5.0"),
        (">=1.2.0-0", "1.2.3-beta.2"),
        ("^1.2.0-alpha", "1.2.3-beta"),
        (">=v1.20", "v1.24.3"),
    ];
    let no = [
        ("!=1.2.3", "1.2.3"),
        (">1.2", "1.2.9"),
        ("1.2 - 1.4.5", "1.4.6"),
        ("~1.2.3", "1.3.0"),
        ("^1.2.3", "2.0.0"),
        ("^0.2.3", "0.3.0"),
        ("^0.0.3", "0.0.4"),
        // Pre-releases match only constraints that name one.
        (">=1.2.0", "1.2.3-beta.2"),
        ("*", "1.0.0-rc.1"),
        ("<1.0.0-beta.11", "1.0.0-beta.11"),
    ];
    for (c, v) in yes {
        assert!(check(c, v), "{c} should accept {v}");
    }
    for (c, v) in no {
        assert!(!check(c, v), "{c} should reject {v}");
    }
    table(&[
        (
            r#"{{ $v := semver "v1.2.3-rc.1+build.5" }}{{ $v }} {{ $v.Major }} {{ $v.Minor }} {{ $v.Patch }} {{ $v.Prerelease }} {{ $v.Metadata }} {{ $v.Original }}"#,
            "1.2.3-rc.1+build.5 1 2 3 rc.1 build.5 v1.2.3-rc.1+build.5",
        ),
        (
            r#"{{ semver "1.2" }} {{ semver "1" | toJson }}"#,
            r#"1.2.0 "1.0.0""#,
        ),
        // Version methods, as on Masterminds' *Version: numeric, not string, order.
        (
            r#"{{ $a := semver "1.2.3" }}{{ $a.LessThan (semver "1.10.0") }} {{ $a.Compare (semver "1.2.3+meta") }} {{ $a.IncMinor }}"#,
            "true 0 1.3.0",
        ),
    ]);
    let d = data(&[]);
    for t in [
        r#"{{ semver "1.2.3.4" }}"#,
        r#"{{ semver "1.2.3-01" }}"#,
        r#"{{ semverCompare "abc" "1.2.3" }}"#,
        r#"{{ semverCompare ">1" "one" }}"#,
    ] {
        assert!(render(t, &d).is_err(), "{t}");
    }
}

#[test]
fn sprig_urls() {
    let url = "https://bob:p%40ss@registry.example.com:5000/v2/a%20b/?x=1&y=2#frag";
    assert_eq!(
        r("{{ urlParse .url | toJson }}", &[("url", url)]),
        r#"{"fragment":"frag","host":"registry.example.com:5000","hostname":"registry.example.com","opaque":"","path":"/v2/a b/","query":"x=1\u0026y=2","scheme":"https","userinfo":"bob:p%40ss"}"#
    );
    assert_eq!(r("{{ urlParse .url | urlJoin }}", &[("url", url)]), url);
    table(&[
        (
            r#"{{ urlJoin (dict "scheme" "http" "host" "x" "path" "/a b" "query" "x=1") }}"#,
            "http://x/a%20b?x=1",
        ),
        (
            r#"{{ urlJoin (dict "scheme" "https" "host" "h" "userinfo" "u%20s:p%40ss" "path" "/") }}"#,
            "https://u%20s:p%40ss@h/",
        ),
        (
            r#"{{ urlJoin (dict "scheme" "mailto" "opaque" "x@y") }}"#,
            "mailto:x@y",
        ),
        (
            r#"{{ (urlParse "mailto:someone@example.com").opaque }}"#,
            "someone@example.com",
        ),
    ]);
    let d = data(&[]);
    for t in [
        r#"{{ urlParse "http://x/%zz" }}"#,
        r#"{{ urlParse "http://x:port/" }}"#,
        r#"{{ urlJoin (dict "host" 1) }}"#,
    ] {
        assert!(render(t, &d).is_err(), "{t}");
    }
}

/// derivePassword against Sprig's own output, decryptAES against ciphertexts Sprig made,
/// bcrypt/htpasswd checked by a bcrypt implementation, random functions by shape.
#[test]
fn sprig_crypto() {
    table(&[
        (
            r#"{{ derivePassword 1 "long" "password" "user" "example.com" }}"#,
            "ZedaFaxcZaso9*",
        ),
        (
            r#"{{ derivePassword 1 "huge" "p" "u" "s" }}"#,
            "cannot find password template huge",
        ),
        // Made by Sprig's encryptAES (random IV in front, base64).
        (
            r#"{{ decryptAES "secretkey" "OFMjb5/rbIpFA9bbcp0JURiWHUbl7M3D39iXHlixryI=" }}"#,
            "hello from go",
        ),
        // Keys longer than 32 bytes are cut; a full block of padding is stripped.
        (
            r#"{{ decryptAES "0123456789abcdef0123456789abcdef" "57SBIZ71pCQnSUId8T2f/F3mzV1oTjI7kjMHnH/fT3NLvF9smsWIeupTdkuXDJVS" }}"#,
            "a sixteen-byte!!",
        ),
        (
            r#"{{ encryptAES "k" "round trip" | decryptAES "k" }}"#,
            "round trip",
        ),
        (r#"[{{ encryptAES "k" "" }}]"#, "[]"),
        (r#"{{ randBytes 24 | b64dec | len }}"#, "24"),
        (r#"{{ randInt 5 6 }}"#, "5"),
        (r#"{{ genPrivateKey "foo" }}"#, "Unknown type foo"),
        (r#"{{ htpasswd "a:b" "p" }}"#, "invalid username: a:b"),
    ]);
    let hash = r("{{ bcrypt .password }}", &[("password", "s3cr3t")]);
    assert!(hash.starts_with("$2a$10$") && hash.len() == 60, "{hash}");
    assert!(bcrypt::verify("s3cr3t", &hash).unwrap());
    let line = r(
        "{{ htpasswd .user .password }}",
        &[("user", "admin"), ("password", "s3cr3t")],
    );
    let (user, hash) = line.split_once(':').unwrap();
    assert_eq!(user, "admin");
    assert!(bcrypt::verify("s3cr3t", hash).unwrap());
    assert!(!bcrypt::verify("other", hash).unwrap());
    let d = data(&[]);
    for t in [
        r#"{{ randInt 5 5 }}"#,
        r#"{{ randBytes -1 }}"#,
        r#"{{ decryptAES "k" "***" }}"#,
        r#"{{ decryptAES "k" "AAAA" }}"#,
        r#"{{ derivePassword -1 "long" "p" "u" "s" }}"#,
    ] {
        assert!(render(t, &d).is_err(), "{t}");
    }
}

/// Key and certificate generation is bounded by the run's budget, like every other function.
#[test]
fn sprig_generators_are_bounded() {
    let small = Limits {
        max_steps: 100_000,
        ..Limits::default()
    };
    let d = data(&[]);
    let e = render_with_limits(
        r#"{{ range until 50 }}{{ bcrypt "x" }}{{ end }}"#,
        &d,
        &small,
    )
    .unwrap_err();
    assert!(e.to_string().contains("limit of 100000 steps"), "{e}");
    let e = render_with_limits(r#"{{ genPrivateKey "rsa" }}"#, &d, &small).unwrap_err();
    assert!(e.to_string().contains("steps"), "{e}");
    let e = render(r#"{{ randBytes 100000000 }}"#, &d).unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
    let e = render(r#"{{ range until 100 }}{{ genCA "x" 1 }}{{ end }}"#, &d).unwrap_err();
    assert!(e.to_string().contains("steps"), "{e}");
}

/// The certificate generators, read back by openssl: subject, SANs, CA flag, usages,
/// validity, the key matching the certificate, and a signed leaf verifying against its CA.
#[test]
fn sprig_certificates_agree_with_openssl() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: openssl is not installed (scripts/install-peers.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ec_key = r(r#"{{ genPrivateKey "ecdsa" }}"#, &[]);
    assert!(
        ec_key.starts_with("-----BEGIN EC PRIVATE KEY-----\n"),
        "{ec_key}"
    );
    let ed_key = r(r#"{{ genPrivateKey "ed25519" }}"#, &[]);
    assert!(
        ed_key.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{ed_key}"
    );
    let rsa_key = r(r#"{{ genPrivateKey "rsa" }}"#, &[]);
    assert!(
        rsa_key.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
        "{rsa_key}"
    );
    std::fs::write(p.join("ec.key"), &ec_key).unwrap();
    std::fs::write(p.join("ed.key"), &ed_key).unwrap();
    std::fs::write(p.join("rsa.key"), &rsa_key).unwrap();
    let rsa_text = String::from_utf8(openssl(
        p,
        &["rsa", "-in", "rsa.key", "-check", "-noout", "-text"],
    ))
    .unwrap();
    assert!(rsa_text.contains("4096 bit"), "{rsa_text}");
    openssl(p, &["ec", "-in", "ec.key", "-check", "-noout"]);
    openssl(p, &["pkey", "-in", "ed.key", "-noout"]);

    let out = r(
        r#"{{ $ca := genCA "test-ca" 30 }}{{ $leaf := genSignedCert "leaf.example" (list "10.0.0.1" "::1") (list "leaf.example" "alt.example") 7 $ca }}{{ $ca.Cert }}|{{ $ca.Key }}|{{ $leaf.Cert }}|{{ $leaf.Key }}|{{ $self := genSelfSignedCertWithKey "self" nil (list "self.example") 1 .key }}{{ $self.Cert }}|{{ $self.Key }}"#,
        &[("key", &ec_key)],
    );
    let parts: Vec<&str> = out.split('|').collect();
    let files = [
        "ca.pem", "ca.key", "leaf.pem", "leaf.key", "self.pem", "self.key",
    ];
    for (f, body) in files.iter().zip(&parts) {
        std::fs::write(p.join(f), body).unwrap();
    }
    let text =
        |f: &str| String::from_utf8(openssl(p, &["x509", "-in", f, "-noout", "-text"])).unwrap();
    let ca = text("ca.pem");
    assert!(
        ca.contains("Subject: CN = test-ca") || ca.contains("Subject: CN=test-ca"),
        "{ca}"
    );
    assert!(ca.contains("CA:TRUE"), "{ca}");
    assert!(ca.contains("Certificate Sign"), "{ca}");
    assert!(parts[1].starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    let leaf = text("leaf.pem");
    for want in [
        "CA:FALSE",
        "Digital Signature, Key Encipherment",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "DNS:leaf.example",
        "DNS:alt.example",
        "IP Address:10.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
        "Issuer: CN = test-ca",
    ] {
        assert!(leaf.contains(want), "{want} missing:\n{leaf}");
    }
    let verify =
        String::from_utf8(openssl(p, &["verify", "-CAfile", "ca.pem", "leaf.pem"])).unwrap();
    assert!(verify.contains("leaf.pem: OK"), "{verify}");
    // Seven days of validity.
    let end = String::from_utf8(openssl(
        p,
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-checkend",
            &(6 * 86_400).to_string(),
        ],
    ))
    .unwrap();
    assert!(end.contains("will not expire"), "{end}");
    assert!(
        Command::new("openssl")
            .current_dir(p)
            .args([
                "x509",
                "-in",
                "leaf.pem",
                "-noout",
                "-checkend",
                &(8 * 86_400).to_string()
            ])
            .status()
            .map(|s| !s.success())
            .unwrap(),
        "the leaf should expire within 8 days"
    );
    // Each certificate carries the public half of the key returned with it.
    for (cert, key) in [
        ("ca.pem", "ca.key"),
        ("leaf.pem", "leaf.key"),
        ("self.pem", "self.key"),
    ] {
        assert_eq!(
            openssl(p, &["x509", "-in", cert, "-noout", "-pubkey"]),
            openssl(p, &["pkey", "-in", key, "-pubout"]),
            "{cert}"
        );
    }
    // The WithKey variant keeps the caller's key.
    assert_eq!(parts[5], ec_key);
    let selfc = text("self.pem");
    assert!(
        selfc.contains("DNS:self.example") && selfc.contains("CA:FALSE"),
        "{selfc}"
    );

    // buildCustomCert takes base64 PEM and gives the same certificate back.
    let b64 = base64::engine::general_purpose::STANDARD;
    let rebuilt = r(
        "{{ (buildCustomCert .cert .key).Cert }}",
        &[
            ("cert", &b64.encode(parts[2])),
            ("key", &b64.encode(parts[3])),
        ],
    );
    assert_eq!(rebuilt, parts[2]);
    let d = data(&[]);
    for t in [
        r#"{{ genSelfSignedCert "x" (list "not-an-ip") nil 1 }}"#,
        r#"{{ genSelfSignedCert "x" (list 1) nil 1 }}"#,
        r#"{{ genSignedCert "x" nil nil 1 "ca" }}"#,
        r#"{{ genCAWithKey "x" 1 "nope" }}"#,
        r#"{{ buildCustomCert "***" "***" }}"#,
    ] {
        assert!(render(t, &d).is_err(), "{t}");
    }
}

/// docs/external-secrets.md has one table of the functions: it names every function a
/// template may call, and nothing else.
#[test]
fn the_documented_function_table_is_complete() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/external-secrets.md"),
    )
    .unwrap();
    let start = doc.find("| Family | Functions |").unwrap();
    let mut documented = std::collections::BTreeSet::new();
    for row in doc[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
    {
        if row.starts_with("| Not defined") {
            continue;
        }
        // Names are the backticked words; `.Major` style fields are not functions.
        for (i, part) in row.split('`').enumerate() {
            if i % 2 == 1 && !part.starts_with('.') {
                documented.insert(part.to_string());
            }
        }
    }
    let implemented: std::collections::BTreeSet<String> =
        function_names().iter().map(|n| n.to_string()).collect();
    let undocumented: Vec<_> = implemented.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&implemented).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "not in the table: {undocumented:?}; in the table but not implemented: {unknown:?}"
    );
}

/// Sprig's arithmetic gives int64, which Go keeps apart from int (see the Sprig corpus).
#[test]
fn sprig_arithmetic_gives_int64_as_go_does() {
    table(&[
        (
            r#"{{ typeOf (add 1 2) }} {{ typeOf (len "ab") }} {{ add 1 2 }} {{ eq (add 1 2) 3 }} {{ deepEqual (add 1 2) 3 }}"#,
            "int64 int 3 true false",
        ),
        (
            r#"{{ duration (mul 60 2) }} {{ duration 95 }} {{ until (int (add 1 2)) }}"#,
            "2m0s 0s [0 1 2]",
        ),
    ]);
    let e = render("{{ until (add 1 2) }}", &data(&[])).unwrap_err();
    assert!(e.to_string().contains("expected int; got int64"), "{e}");
}
