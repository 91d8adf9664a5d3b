//! Round trips against the real Go sops, both ways, on all five formats.

use crate::common;

use std::path::Path;

use common::*;

/// Plaintext inputs: (file name, type, content).
fn samples() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let read = |p: &str| std::fs::read(fx(p)).unwrap();
    vec![
        ("types.yaml", "yaml", read("plain/types.yaml")),
        ("multidoc.yaml", "yaml", read("plain/multidoc.yaml")),
        ("comments.yaml", "yaml", read("expected/rewrapped-example.yaml")),
        (
            "k8s.yaml",
            "yaml",
            b"# a Secret\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db # inline\n  labels:\n    app: x\ntype: Opaque\nstringData:\n  # the password\n  password: \"hunter2\"\n  tls.crt: |\n    -----BEGIN-----\n    abc\n  port: \"5432\"\n  list:\n  - a\n  # between\n  - b: 1\n    c: [1, 2.5, true, null]\n  empty: \"\"\n  yes: no\n".to_vec(),
        ),
        ("types.json", "json", read("plain/types.json")),
        ("app.env", "dotenv", read("expected/native-app.env")),
        ("app.ini", "ini", read("plain/app.ini")),
        ("blob.bin", "binary", read("expected/native-blob.bin")),
        ("torture.yaml", "yaml", std::fs::read(fx("../torture.yaml")).unwrap()),
        ("torture-comments.yaml", "yaml", std::fs::read(fx("../torture-comments.yaml")).unwrap()),
        ("torture.json", "json", std::fs::read(fx("../torture.json")).unwrap()),
        ("torture.ini", "ini", std::fs::read(fx("../torture.ini")).unwrap()),
        ("torture2.ini", "ini", std::fs::read(fx("../torture2.ini")).unwrap()),
        ("torture.env", "dotenv", std::fs::read(fx("../torture.env")).unwrap()),
        ("text.bin", "binary", read("expected/native-text.bin")),
    ]
}

fn types(t: &str) -> [String; 4] {
    [
        "--input-type".into(),
        t.into(),
        "--output-type".into(),
        t.into(),
    ]
}

#[test]
fn sops_encrypts_we_decrypt_identically() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, t, content) in samples() {
        let plain = d.join(name);
        std::fs::write(&plain, &content).unwrap();
        let ty = types(t);
        let mut args: Vec<&str> = vec!["encrypt", "--age", &format!("{R1},{R2}")]
            .into_iter()
            .map(|s| Box::leak(s.to_string().into_boxed_str()) as &str)
            .collect();
        args.extend(ty.iter().map(String::as_str));
        args.push(name);
        let enc = sops_ok(d, &args);
        let enc_path = d.join(format!("sops-{name}"));
        std::fs::write(&enc_path, &enc).unwrap();
        let enc_name = format!("sops-{name}");
        let mut dargs: Vec<&str> = vec!["decrypt"];
        dargs.extend(ty.iter().map(String::as_str));
        dargs.push(&enc_name);
        let theirs = sops_ok(d, &dargs);
        let mine = ours_ok(d, &dargs);
        assert_eq!(
            String::from_utf8_lossy(&mine),
            String::from_utf8_lossy(&theirs),
            "{name}: our decryption of sops' file differs from sops'"
        );
        assert_eq!(mine, theirs, "{name}: bytes differ");
    }
}

#[test]
fn we_encrypt_sops_decrypts_identically() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, t, content) in samples() {
        std::fs::write(d.join(name), &content).unwrap();
        let ty = types(t);
        let recips = format!("{R1},{R2}");
        let mut eargs: Vec<&str> = vec!["encrypt", "--age", &recips];
        eargs.extend(ty.iter().map(String::as_str));
        eargs.push(name);
        let ours_enc = ours_ok(d, &eargs);
        let sops_enc = sops_ok(d, &eargs);
        std::fs::write(d.join(format!("ours-{name}")), &ours_enc).unwrap();
        std::fs::write(d.join(format!("sops-{name}")), &sops_enc).unwrap();
        let decrypt = |file: String| {
            let mut a: Vec<String> = vec!["decrypt".into()];
            a.extend(ty.iter().cloned());
            a.push(file);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            sops_ok(d, &a)
        };
        let theirs_of_ours = decrypt(format!("ours-{name}"));
        let theirs_of_theirs = decrypt(format!("sops-{name}"));
        assert_eq!(
            String::from_utf8_lossy(&theirs_of_ours),
            String::from_utf8_lossy(&theirs_of_theirs),
            "{name}: sops decrypts our file to something else than its own"
        );
        assert_eq!(theirs_of_ours, theirs_of_theirs, "{name}: bytes differ");
        // Same layout as sops for what is encrypted (metadata aside: its stanzas are random).
        let shape = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .lines()
                .take_while(|l| {
                    !l.starts_with("sops:")
                        && !l.contains("\"sops\":")
                        && !l.starts_with("sops_")
                        && *l != "[sops]"
                })
                .map(|l| match l.find("ENC[") {
                    Some(p) => format!("{}ENC", &l[..p]),
                    None => l.to_string(),
                })
                .collect::<Vec<_>>()
        };
        if t != "binary" {
            assert_eq!(
                shape(&ours_enc),
                shape(&sops_enc),
                "{name}: encrypted layout differs from sops'"
            );
        }
    }
}

#[test]
fn json_integers_stay_exact_as_in_sops_3_13() {
    // sops 3.11 reads JSON numbers as float64; 3.13.2 (and we) keep integers exact, and the
    // `int` type we write decrypts exactly with 3.11 too.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "i.json",
        "{\"i\": 9007199254740993, \"n\": -9223372036854775808}",
    );
    let enc = ours_ok(d, &["encrypt", "--age", R1, "i.json"]);
    std::fs::write(d.join("e.json"), &enc).unwrap();
    assert!(String::from_utf8_lossy(&enc).contains("type:int]"));
    let out = sops_ok(d, &["decrypt", "e.json"]);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\n\t\"i\": 9007199254740993,\n\t\"n\": -9223372036854775808\n}\n"
    );
}

fn write(d: &Path, name: &str, content: &str) {
    std::fs::write(d.join(name), content).unwrap();
}

#[test]
fn creation_rules_selectors_and_shamir_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: secret\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: >-\n      {R1},\n      {R2}\n  - path_regex: macs\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    mac_only_encrypted: true\n    age: [{R1}]\n  - path_regex: shamir\\.yaml$\n    shamir_threshold: 2\n    key_groups:\n      - age: [{R1}]\n      - age: [{R2}]\n  - path_regex: suffix\\.yaml$\n    unencrypted_suffix: _clear\n    age: {R2}\n"
        ),
    );
    let body = "apiVersion: v1\nkind: Secret\nmetadata:\n    name: app\nstringData:\n    password: hunter2\n    token_clear: abc\n";
    for name in ["secret.yaml", "macs.yaml", "shamir.yaml", "suffix.yaml"] {
        write(d, name, body);
        let ours_enc = ours_ok(d, &["encrypt", name]);
        let sops_enc = sops_ok(d, &["encrypt", name]);
        write(
            d,
            &format!("o-{name}"),
            std::str::from_utf8(&ours_enc).unwrap(),
        );
        write(
            d,
            &format!("s-{name}"),
            std::str::from_utf8(&sops_enc).unwrap(),
        );
        let a = sops_ok(d, &["decrypt", &format!("o-{name}")]);
        let b = ours_ok(d, &["decrypt", &format!("s-{name}")]);
        let c = ours_ok(d, &["decrypt", &format!("o-{name}")]);
        assert_eq!(String::from_utf8_lossy(&a), body, "{name}: sops on ours");
        assert_eq!(String::from_utf8_lossy(&b), body, "{name}: ours on sops'");
        assert_eq!(String::from_utf8_lossy(&c), body, "{name}: ours on ours");
        let text = String::from_utf8_lossy(&ours_enc).to_string();
        match name {
            "secret.yaml" => {
                assert!(text.contains("name: app") && text.contains("encrypted_regex"))
            }
            "macs.yaml" => assert!(text.contains("mac_only_encrypted: true")),
            "shamir.yaml" => {
                assert!(text.contains("key_groups:") && text.contains("shamir_threshold: 2"))
            }
            _ => assert!(text.contains("token_clear: abc")),
        }
    }
    // A Shamir file opens only when both groups' keys are there.
    let out = ours(d, &["decrypt", "o-shamir.yaml"], Some("identity1.txt"));
    assert_eq!(out.status.code(), Some(128));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needed 2 of 2 key groups"));
}

#[test]
fn set_unset_updatekeys_rotate_stay_readable_by_sops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        ".sops.yaml",
        &format!("creation_rules:\n  - age: {R1},{R2}\n"),
    );
    write(
        d,
        "s.yaml",
        "# head\na: 1\nb:\n    c: old\nlist:\n    - x\n",
    );
    std::fs::write(d.join("s.yaml"), ours_ok(d, &["encrypt", "s.yaml"])).unwrap();
    let before = std::fs::read_to_string(d.join("s.yaml")).unwrap();
    ours_ok(d, &["set", "s.yaml", r#"["b"]["c"]"#, r#""new""#]);
    ours_ok(d, &["set", "s.yaml", r#"["b"]["d"] {"e": 5}"#]);
    ours_ok(d, &["unset", "s.yaml", r#"["list"]"#]);
    let after = std::fs::read_to_string(d.join("s.yaml")).unwrap();
    // The unchanged value keeps its ciphertext (IV reuse, as sops does).
    let a_line = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("a: "))
            .unwrap()
            .to_string()
    };
    assert_eq!(a_line(&before), a_line(&after));
    let expect = "# head\na: 1\nb:\n    c: new\n    d:\n        e: 5\n";
    assert_eq!(
        String::from_utf8_lossy(&sops_ok(d, &["decrypt", "s.yaml"])),
        expect
    );
    // updatekeys to one recipient: identity2 alone no longer opens it.
    write(
        d,
        ".sops.yaml",
        &format!("creation_rules:\n  - age: [{R1}]\n"),
    );
    ours_ok(d, &["updatekeys", "s.yaml"]);
    assert_eq!(
        ours(d, &["decrypt", "s.yaml"], Some("identity2.txt"))
            .status
            .code(),
        Some(128)
    );
    assert_eq!(
        String::from_utf8_lossy(&sops_ok(d, &["decrypt", "s.yaml"])),
        expect
    );
    let key_before = std::fs::read_to_string(d.join("s.yaml")).unwrap();
    ours_ok(d, &["rotate", "s.yaml"]);
    let key_after = std::fs::read_to_string(d.join("s.yaml")).unwrap();
    assert_ne!(a_line(&key_before), a_line(&key_after));
    assert_eq!(
        String::from_utf8_lossy(&sops_ok(d, &["decrypt", "s.yaml"])),
        expect
    );
}

#[test]
fn format_conversions_match_sops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        ("native/types.enc.yaml", "json"),
        ("native/types.enc.json", "yaml"),
        ("native/app.enc.env", "json"),
        ("native/app.enc.ini", "yaml"),
        ("native/app.enc.ini", "json"),
        ("native/multidoc.enc.yaml", "json"),
        ("rewrapped/example.enc.yaml", "json"),
        ("rewrapped/format.enc.yaml", "dotenv"),
        ("rewrapped/format.enc.json", "ini"),
    ];
    for (file, out_type) in cases {
        let path = fx(file).display().to_string();
        let args = ["decrypt", "--output-type", out_type, path.as_str()];
        let theirs = sops(d, &args, "keys.txt");
        let mine = ours(d, &args, Some("keys.txt"));
        assert_eq!(
            theirs.status.success(),
            mine.status.success(),
            "{file} -> {out_type}: {}",
            String::from_utf8_lossy(&mine.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&mine.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "{file} -> {out_type}"
        );
    }
}

#[test]
fn other_key_types_are_kept_and_groups_can_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A file that also carries a PGP stanza (no PGP key here): age alone opens it, and
    // rewriting it keeps the PGP stanza verbatim.
    let src = std::fs::read_to_string(fx("rewrapped/format.enc.yaml")).unwrap();
    let pgp = "    pgp:\n        - created_at: \"2019-08-29T21:52:32Z\"\n          enc: |-\n            -----BEGIN PGP MESSAGE-----\n            wcBMAyUpShfNkFB/AQgAlvI\n            -----END PGP MESSAGE-----\n          fp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4\n";
    let mixed = src.replacen("    lastmodified:", &format!("{pgp}    lastmodified:"), 1);
    assert_ne!(mixed, src);
    std::fs::write(d.join("m.yaml"), &mixed).unwrap();
    assert_eq!(
        sops_ok(d, &["decrypt", "m.yaml"]),
        ours_ok(d, &["decrypt", "m.yaml"])
    );
    ours_ok(d, &["set", "m.yaml", r#"["foo"]"#, r#""baz""#]);
    let after = std::fs::read_to_string(d.join("m.yaml")).unwrap();
    assert!(
        after.contains("fp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"),
        "{after}"
    );
    assert!(after.contains("wcBMAyUpShfNkFB/AQgAlvI"));
    assert_eq!(
        String::from_utf8_lossy(&sops_ok(d, &["decrypt", "m.yaml"])),
        "foo: baz\n"
    );
    // updatekeys from one group to two Shamir groups: both keys are then needed.
    std::fs::write(
        d.join(".sops.yaml"),
        format!("creation_rules:\n  - key_groups:\n      - age: [{R1}]\n      - age: [{R2}]\n"),
    )
    .unwrap();
    std::fs::write(d.join("g.yaml"), "x: 1\n").unwrap();
    std::fs::write(
        d.join("g.yaml"),
        ours_ok(d, &["encrypt", "--age", R1, "g.yaml"]),
    )
    .unwrap();
    ours_ok(d, &["updatekeys", "g.yaml"]);
    let text = std::fs::read_to_string(d.join("g.yaml")).unwrap();
    assert!(
        text.contains("key_groups:") && text.contains("shamir_threshold: 2"),
        "{text}"
    );
    assert_eq!(sops_ok(d, &["decrypt", "g.yaml"]), b"x: 1\n");
    assert_eq!(
        ours(d, &["decrypt", "g.yaml"], Some("identity1.txt"))
            .status
            .code(),
        Some(128)
    );
    ours_ok(d, &["rotate", "g.yaml"]);
    assert_eq!(sops_ok(d, &["decrypt", "g.yaml"]), b"x: 1\n");
}

#[test]
fn comment_regex_selectors_match_sops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let body = "a: 1\n# sops:enc\nb:\n    # inner\n    c: secret\n    d: two\ne: clear\nlist:\n    # sops:enc\n    - x\n    - y\n# sops:clear\nf: plain\ng: 3\n";
    std::fs::write(d.join("c.yaml"), body).unwrap();
    for (flag, regex) in [
        ("encrypted_comment_regex", "sops:enc"),
        ("unencrypted_comment_regex", "sops:clear"),
    ] {
        std::fs::write(
            d.join(".sops.yaml"),
            format!("creation_rules:\n  - age: {R1}\n    {flag}: {regex}\n"),
        )
        .unwrap();
        let args = ["encrypt", "c.yaml"];
        let ours_enc = ours_ok(d, &args);
        let sops_enc = sops_ok(d, &args);
        let shape = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .lines()
                .take_while(|l| !l.starts_with("sops:"))
                .map(|l| match l.find("ENC[") {
                    Some(p) => format!("{}ENC", &l[..p]),
                    None => l.to_string(),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shape(&ours_enc),
            shape(&sops_enc),
            "{flag}: which values are encrypted"
        );
        std::fs::write(d.join("o.yaml"), &ours_enc).unwrap();
        std::fs::write(d.join("s.yaml"), &sops_enc).unwrap();
        assert_eq!(
            sops_ok(d, &["decrypt", "o.yaml"]),
            sops_ok(d, &["decrypt", "s.yaml"]),
            "{flag}"
        );
        assert_eq!(
            ours_ok(d, &["decrypt", "s.yaml"]),
            sops_ok(d, &["decrypt", "s.yaml"]),
            "{flag}"
        );
    }
}

#[test]
fn extract_prints_like_sops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        ("native/types.enc.yaml", r#"["string"]"#),
        ("native/types.enc.yaml", r#"["int"]"#),
        ("native/types.enc.yaml", r#"["nested"]"#),
        ("native/types.enc.yaml", r#"["nested"]["list"]"#),
        ("native/types.enc.yaml", r#"["nested"]["list"][1]"#),
        ("native/types.enc.yaml", r#"["float_exp"]"#),
        ("native/types.enc.yaml", r#"["null_value"]"#),
        ("native/types.enc.json", r#"["int"]"#),
        ("native/types.enc.json", r#"["bool"]"#),
        ("native/types.enc.json", r#"["nested"]["deep"]"#),
        ("native/types.enc.json", r#"["nested"]["list"]"#),
        ("native/app.enc.env", r#"["DB_PASSWORD"]"#),
        ("native/app.enc.ini", r#"["database"]["port"]"#),
    ];
    for (file, path) in cases {
        let f = fx(file).display().to_string();
        let args = ["decrypt", "--extract", path, f.as_str()];
        let theirs = sops_ok(d, &args);
        let mine = ours_ok(d, &args);
        assert_eq!(
            String::from_utf8_lossy(&mine),
            String::from_utf8_lossy(&theirs),
            "{file} {path}"
        );
    }
    let f = fx("native/types.enc.yaml").display().to_string();
    assert!(
        !ours(
            d,
            &["decrypt", "--extract", r#"["nope"]"#, &f],
            Some("keys.txt")
        )
        .status
        .success()
    );
}

#[test]
fn comment_placement_matches_go_yaml() {
    // Where a comment lands decides its additional data: sops must read our files' comments
    // back, and print them where it prints its own.
    let cases = [
        "a:\n  b:\n    c: 1\n  # cmt\ne: 3\n",
        "a:\n  b:\n    - 1\n  # cmt\ne: 3\n",
        "a:\n  b:\n    c: 1\n# cmt\ne: 3\n",
        "a:\n  - b:\n      c: 1\n    # cmt\n  - d\n",
        "a:\n  b:\n    c: 1\n\n  # cmt\ne: 3\n",
        "a:\n  b:\n    c: 1\n  # cmt\n  d: 2\n",
        "list:\n  - a: 1\n  # cmt\nother: x\n",
        "a:\n  b:\n    c: 1\n  # c1\n  # c2\ne: 3\n",
        "a:\n  b:\n    c: 1\n    # deep\n  # mid\ne: 3\n",
        "a:\n  b:\n    c: 1\n  # mid\n    # deeper-after\ne: 3\n",
        "# top\na:\n  b: 1\n  # x\n# y\nc: 2\n",
        "k: v # trailing\nl: [1, 2] # on flow\nm:\n  - n: 1 # on item map\n  - 2 # on item\n",
        "a: \"\"   # after empty quoted\nb: 'it''s' # after single quoted\n",
        // Found in a sweep over real-world files (CI configs, app manifests):
        "env:\n  matrix:\n  # first\n    - a: 1\n      b: 2\n  # second\n    - a: 3\n",
        "jobs:\n  build:\n    steps:\n    - name: s\n      uses: u # v4\n      with:\n        n: p\n\n  other:\n    x: 1\n",
        "handlers:\n- url: /a\n  script: b\n# [END handlers]\n",
        "a:\n  b:\n    c: 1\n\n  # trailing block after a blank line\n  # at the end of the file\n",
        "m:\n  rust: [ 1.85 ] # keep in sync\n  os: x\nt: [\n  \"x\", # cx\n  # full\n  \"y\", # cy\n  ]\n",
        "users: &users\n  - id: 2\n    roles:\n      - viewer\n\n# next section\nmetadata:\n  project: x\n",
        "a:\n  attrs:\n  - &loc\n    name: l\n    fall:\n    # copied with the alias\n    - hook: h\nb:\n  attrs:\n  - *loc\n  - name: j\n",
    ];
    let long = "k".repeat(130);
    let edge = format!(
        "{long}: v\n{}: w\nnested:\n  {long}:\n    a: 1\n  l:\n  - x\n\"x\\ny\": 1\n",
        "j".repeat(128)
    );
    let cases: Vec<&str> = cases
        .iter()
        .copied()
        .chain(std::iter::once(edge.as_str()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (i, case) in cases.iter().enumerate() {
        let name = format!("c{i}.yaml");
        std::fs::write(d.join(&name), case).unwrap();
        let o = ours_ok(d, &["encrypt", "--age", R1, &name]);
        let s = sops_ok(d, &["encrypt", "--age", R1, &name]);
        std::fs::write(d.join("o.yaml"), &o).unwrap();
        std::fs::write(d.join("s.yaml"), &s).unwrap();
        let via_sops = sops(d, &["decrypt", "o.yaml"], "keys.txt");
        assert!(
            !String::from_utf8_lossy(&via_sops.stderr).contains("unencrypted comment"),
            "case {i}: sops cannot read one of our comments back:\n{case}"
        );
        assert_eq!(
            String::from_utf8_lossy(&via_sops.stdout),
            String::from_utf8_lossy(&sops_ok(d, &["decrypt", "s.yaml"])),
            "case {i}:\n{case}"
        );
        assert_eq!(
            ours_ok(d, &["decrypt", "s.yaml"]),
            sops_ok(d, &["decrypt", "s.yaml"]),
            "case {i}"
        );
    }
}
