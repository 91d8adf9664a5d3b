//! One function per mode of operation. Each reads everything and checks it before writing
//! anything, so a failed run leaves its output file untouched.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use sealing::documents::redact;
use sealing::secret::{sealed_scope, wipe_secret};
use sealing::{Scope, SealSecretOptions, seal_secret};
use zeroize::Zeroizing;

use crate::cli::{Args, Format};
use crate::input::{self, parse_documents, read_input, source_name};
use crate::key_sources::{recovery_keys, sealing_key, sealing_keys};
use crate::merge::{self, Change, Changes, Refusal};
use crate::output::{emit, render_sealed_secret, render_secret, write_atomically};
use crate::remote::{self, Controller, block_on};

pub fn run(args: &Args) -> Result<()> {
    let modes = [
        ("--fetch-cert", args.fetch_cert),
        ("--recovery-unseal", args.recovery_unseal),
        ("--validate", args.validate),
        ("--re-encrypt", args.re_encrypt),
        ("--raw", args.raw),
        ("--merge-into", args.merge_into.is_some()),
        ("--backup-keys", args.backup_keys.is_some()),
    ];
    let chosen: Vec<&str> = modes
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
    if chosen.len() > 1 {
        bail!("{} cannot be used together", chosen.join(" and "));
    }
    if !args.from_file.is_empty() && !args.raw {
        bail!("--from-file is only used with --raw");
    }
    let backup_only = !args.backup_keys_from.is_empty()
        || !args.recipients.is_empty()
        || !args.recipients_files.is_empty();
    if backup_only && args.backup_keys.is_none() {
        bail!(
            "--recipient, --recipients-file and --backup-keys-from are only used with --backup-keys"
        );
    }
    let tree_only = !args.paths.is_empty()
        || !args.include.is_empty()
        || !args.exclude.is_empty()
        || args.dry_run;
    if tree_only && !args.re_encrypt {
        bail!(
            "file and directory arguments, --include, --exclude and --dry-run are only used with --re-encrypt"
        );
    }
    if args.re_encrypt && !args.recovery_private_key.is_empty() && args.paths.is_empty() {
        bail!(
            "--re-encrypt with --recovery-private-key works on files and directories: name them, e.g. kubeseal --re-encrypt --recovery-private-key keys.age deploy/"
        );
    }
    if let (Some(mode), true) = (chosen.first(), args.cert.len() > 1) {
        bail!("--cert can be repeated only to seal Secrets, not with {mode}");
    }
    match chosen.first().copied() {
        Some("--fetch-cert") => fetch_cert(args),
        Some("--recovery-unseal") => recovery_unseal(args),
        Some("--validate") => validate(args),
        Some("--re-encrypt") => re_encrypt(args),
        Some("--raw") => raw(args),
        Some("--merge-into") => merge_into(args),
        Some("--backup-keys") => backup_keys(args),
        _ => seal(args),
    }
}

/// `-w x.yaml` implies YAML output, as in Bitnami's kubeseal.
fn output_format(args: &Args) -> Format {
    let yaml_file = args
        .sealed_secret_file
        .as_ref()
        .and_then(|p| p.extension())
        .is_some_and(|e| e == "yaml" || e == "yml");
    if yaml_file { Format::Yaml } else { args.format }
}

/// Where each certificate's SealedSecrets go: the -w name with `{index}` (from 1) and `{cert}`
/// (the certificate's file name without extension) filled in; `None` is stdout.
fn output_targets(args: &Args) -> Result<Vec<Option<PathBuf>>> {
    let Some(template) = args.sealed_secret_file.as_deref() else {
        if args.cert.len() > 1 {
            bail!(
                "--cert is given {} times, so there is one SealedSecret file per certificate: \
                 name them with -w, e.g. -w 'sealed/{{cert}}.yaml' or -w 'db-{{index}}.yaml'",
                args.cert.len()
            );
        }
        return Ok(vec![None]);
    };
    if args.cert.is_empty() {
        return Ok(vec![Some(template.to_path_buf())]);
    }
    let pattern = template
        .to_str()
        .ok_or_else(|| anyhow!("-w {}: the name is not UTF-8", template.display()))?;
    if args.cert.len() > 1 && !pattern.contains("{index}") && !pattern.contains("{cert}") {
        bail!(
            "--cert is given {} times, so -w {pattern} must name one file per certificate \
             with {{index}} or {{cert}}, e.g. -w 'sealed/{{cert}}.yaml'",
            args.cert.len()
        );
    }
    let mut targets: Vec<Option<PathBuf>> = Vec::new();
    for (index, source) in args.cert.iter().enumerate() {
        let mut name = pattern.replace("{index}", &(index + 1).to_string());
        if name.contains("{cert}") {
            name = name.replace("{cert}", &cert_stem(source)?);
        }
        let target = Some(PathBuf::from(name));
        if targets.contains(&target) {
            bail!(
                "-w {pattern} gives the same file for two certificates ({}); use {{index}}",
                args.cert.join(", ")
            );
        }
        targets.push(target);
    }
    Ok(targets)
}

/// `{cert}` in -w: the last path segment of a --cert path or URL, without its extension.
fn cert_stem(source: &str) -> Result<String> {
    let path = source.split(['?', '#']).next().unwrap_or(source);
    Path::new(path)
        .file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|stem| !stem.is_empty())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("--cert {source} has no file name for {{cert}}; use {{index}}"))
}

fn fetch_cert(args: &Args) -> Result<()> {
    let pem = remote::sealing_cert_pem(args)?;
    sealing::parse_sealing_key(&pem).context("the fetched certificate is not usable")?;
    emit(None, &pem)
}

/// Applies --name, --scope and --namespace to an input Secret, as Bitnami's kubeseal does.
fn prepare_secret(secret: &mut Secret, what: &str, args: &Args) -> Result<()> {
    if let Some(name) = &args.name {
        secret.metadata.name = Some(name.clone());
    }
    if let Some(scope) = args.scope {
        scope.write_annotations(secret.metadata.annotations.get_or_insert_default());
    }
    let scope = Scope::from_annotations(secret.metadata.annotations.as_ref());
    match (&secret.metadata.namespace, &args.namespace) {
        (Some(own), Some(flag)) if !own.is_empty() && own != flag => {
            bail!("{what}: the Secret's namespace {own:?} differs from --namespace {flag:?}")
        }
        (Some(own), _) if !own.is_empty() => {}
        (_, Some(flag)) => secret.metadata.namespace = Some(flag.clone()),
        _ => match remote::kubeconfig_namespace(args) {
            Ok(namespace) => secret.metadata.namespace = Some(namespace),
            Err(e) if scope != Scope::ClusterWide => {
                return Err(e.context(format!(
                    "{what}: the Secret has no namespace; set metadata.namespace or --namespace"
                )));
            }
            Err(_) => {}
        },
    }
    Ok(())
}

/// Seals every input Secret once per certificate; all sealing is done before any file is written.
fn seal(args: &Args) -> Result<()> {
    let targets = output_targets(args)?;
    let keys = sealing_keys(args)?;
    let source = source_name(args.secret_file.as_deref());
    let text = read_input(args.secret_file.as_deref())?;
    let secrets = input::secrets(parse_documents(&text, &source)?, &source)?;
    let options = SealSecretOptions {
        allow_empty_data: args.allow_empty_data,
    };
    let format = output_format(args);
    let mut outs = vec![String::new(); keys.len()];
    for (what, mut secret) in secrets {
        prepare_secret(&mut secret, &what, args)?;
        let sealed: Result<Vec<_>> = keys
            .iter()
            .map(|public| seal_secret(&secret, public, &options).with_context(|| what.clone()))
            .collect();
        wipe_secret(&mut secret);
        for (out, sealed) in outs.iter_mut().zip(sealed?) {
            out.push_str(&render_sealed_secret(&sealed, format)?);
        }
    }
    for (target, out) in targets.iter().zip(&outs) {
        emit(target.as_deref(), out)?;
    }
    Ok(())
}

fn raw(args: &Args) -> Result<()> {
    let value = match args.from_file.as_slice() {
        [] => {
            let mut buf = Zeroizing::new(Vec::new());
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .context("cannot read stdin")?;
            buf
        }
        [spec] => {
            let path = spec.split_once('=').map_or(spec.as_str(), |(_, p)| p);
            Zeroizing::new(std::fs::read(path).with_context(|| format!("cannot read {path}"))?)
        }
        _ => bail!("--raw takes exactly one --from-file"),
    };
    let scope = args.scope.unwrap_or_default();
    let namespace = match (&args.namespace, scope) {
        (Some(ns), _) => ns.clone(),
        (None, Scope::ClusterWide) => String::new(),
        (None, _) => remote::kubeconfig_namespace(args)
            .context("--raw needs --namespace (or a kubeconfig namespace) in this scope")?,
    };
    let name = match (&args.name, scope) {
        (Some(name), _) => name.clone(),
        (None, Scope::Strict) => bail!("--raw needs --name in the strict scope (or use --scope)"),
        (None, _) => String::new(),
    };
    let public = sealing_key(args)?;
    let sealed = sealing::seal_value(&public, &scope.label(&namespace, &name), &value)
        .context("cannot seal the value")?;
    emit(
        args.sealed_secret_file.as_deref(),
        &base64::engine::general_purpose::STANDARD.encode(sealed),
    )
}

fn merge_into(args: &Args) -> Result<()> {
    let target = args
        .merge_into
        .as_deref()
        .ok_or_else(|| anyhow!("--merge-into needs a file"))?;
    let target_name = target.display().to_string();
    let original = std::fs::File::open(target)
        .and_then(sealing::documents::read_bounded)
        .with_context(|| format!("cannot read {target_name}"))?;
    // The file's text is edited in place; what that cannot do is re-serialised (see merge.rs).
    let in_place = match merge::find_target(&original) {
        Ok(found) => Ok(found),
        Err(Refusal::Invalid(e)) => bail!("{target_name}: {e}"),
        Err(Refusal::NotInPlace(why)) => Err(why),
    };
    let not_sealed_secret = |e: &dyn std::fmt::Display| {
        anyhow!(
            "{target_name}: not a SealedSecret: {}",
            redact(&e.to_string())
        )
    };
    let existing: crds::SealedSecret = match &in_place {
        Ok(found) => {
            serde_json::from_value(found.object.clone()).map_err(|e| not_sealed_secret(&e))?
        }
        Err(_) => serde_yaml::from_str(&original).map_err(|e| not_sealed_secret(&e))?,
    };

    let source = source_name(args.secret_file.as_deref());
    let text = read_input(args.secret_file.as_deref())?;
    let mut secrets = input::secrets(parse_documents(&text, &source)?, &source)?;
    if secrets.len() != 1 {
        bail!(
            "{source}: --merge-into takes exactly one Secret, found {}",
            secrets.len()
        );
    }
    let (what, mut secret) = secrets.remove(0);
    // The new values must open under the same label as the file's existing ones.
    secret.metadata.name = existing.metadata.name.clone();
    secret.metadata.namespace = existing.metadata.namespace.clone();
    sealed_scope(&existing).write_annotations(secret.metadata.annotations.get_or_insert_default());
    let options = SealSecretOptions {
        allow_empty_data: args.allow_empty_data,
    };
    let public = sealing_key(args)?;
    let sealed = seal_secret(&secret, &public, &options).with_context(|| what.clone());
    wipe_secret(&mut secret);
    let changes = merge_changes(&sealed?);

    let edited = in_place.and_then(|found| {
        merge::merge(&original, &found, &changes).map_err(|e| match e {
            Refusal::Invalid(why) | Refusal::NotInPlace(why) => why,
        })
    });
    match edited {
        Ok(merged) => write_atomically(target, merged.as_bytes()),
        Err(why) => {
            write_atomically(target, reserialise(&original, &changes)?.as_bytes())?;
            eprintln!(
                "warning: {target_name} was re-serialised, its comments and formatting are not kept: {why}"
            );
            Ok(())
        }
    }
}

/// What merging `sealed` sets: its values, and the template labels and annotations it carries
/// (not the scope annotations, which the file's values were sealed under already).
fn merge_changes(sealed: &crds::SealedSecret) -> Changes {
    let strings = |entries: &mut dyn Iterator<Item = (&String, &String)>| -> Changes {
        entries
            .map(|(key, value)| (key.clone(), Change::Set(value.clone())))
            .collect()
    };
    let mut spec = Changes::new();
    let values = strings(&mut sealed.spec.encrypted_data.iter());
    if !values.is_empty() {
        spec.insert("encryptedData".into(), Change::Merge(values));
    }
    let mut metadata = Changes::new();
    if let Some(meta) = &sealed.spec.template.metadata {
        for (field, entries) in [("labels", &meta.labels), ("annotations", &meta.annotations)] {
            let set = strings(
                &mut entries
                    .iter()
                    .flatten()
                    .filter(|(key, _)| !key.starts_with("sealedsecrets.bitnami.com/")),
            );
            if !set.is_empty() {
                metadata.insert(field.into(), Change::Merge(set));
            }
        }
    }
    if !metadata.is_empty() {
        let template = Changes::from([("metadata".into(), Change::Merge(metadata))]);
        spec.insert("template".into(), Change::Merge(template));
    }
    Changes::from([("spec".into(), Change::Merge(spec))])
}

/// The merge for a file whose text cannot be edited in place (e.g. it uses YAML aliases): parsed,
/// changed and written again, keeping the key order but not comments or formatting.
fn reserialise(original: &str, changes: &Changes) -> Result<String> {
    fn apply(value: &mut serde_yaml::Value, changes: &Changes) {
        if !value.is_mapping() {
            *value = serde_yaml::Value::Mapping(Default::default());
        }
        let serde_yaml::Value::Mapping(map) = value else {
            return;
        };
        for (key, change) in changes {
            let key = serde_yaml::Value::String(key.clone());
            match change {
                Change::Set(new) => {
                    map.insert(key, new.as_str().into());
                }
                Change::Merge(inner) => {
                    apply(map.entry(key).or_insert(serde_yaml::Value::Null), inner)
                }
            }
        }
    }
    let mut document: serde_yaml::Value = serde_yaml::from_str(original)?;
    apply(&mut document, changes);
    Ok(if original.trim_start().starts_with('{') {
        format!("{}\n", serde_json::to_string_pretty(&document)?)
    } else {
        let body = serde_yaml::to_string(&document)?;
        if original.trim_start().starts_with("---") {
            format!("---\n{body}")
        } else {
            body
        }
    })
}

fn recovery_unseal(args: &Args) -> Result<()> {
    if args.recovery_private_key.is_empty() {
        bail!("--recovery-unseal needs --recovery-private-key FILE[,FILE...]");
    }
    let keys = recovery_keys(args)?;
    let key_refs: Vec<&sealing::PrivateKey> = keys.iter().collect();

    let source = source_name(args.secret_file.as_deref());
    let text = read_input(args.secret_file.as_deref())?;
    let format = output_format(args);
    let mut out = Zeroizing::new(String::new());
    for (what, sealed) in input::sealed_secrets(parse_documents(&text, &source)?, &source)? {
        let unsealed = sealing::unseal(&sealed, &key_refs).with_context(|| what.clone())?;
        let mut secret = unsealed.to_secret();
        let rendered = render_secret(&secret, format).map(Zeroizing::new);
        wipe_secret(&mut secret);
        out.push_str(&rendered.with_context(|| format!("{what}: cannot render the Secret"))?);
    }
    emit(args.sealed_secret_file.as_deref(), &out)
}

/// `--backup-keys FILE`: every sealing key, from the cluster or key files, in one age file.
fn backup_keys(args: &Args) -> Result<()> {
    let target = args
        .backup_keys
        .as_deref()
        .ok_or_else(|| anyhow!("--backup-keys needs a file"))?;
    // Recipients first: a typo must not cost a round trip that fetches private keys.
    let mut recipients = Vec::new();
    for (index, recipient) in args.recipients.iter().enumerate() {
        recipients.push(sealing::backup::parse_recipient(
            recipient,
            &format!("--recipient #{}", index + 1),
        )?);
    }
    for path in &args.recipients_files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        recipients.extend(sealing::backup::parse_recipients_file(
            &text,
            &path.display().to_string(),
        )?);
    }
    if recipients.is_empty() {
        return Err(sealing::backup::BackupError::NoRecipients.into());
    }
    let mut secrets = if args.backup_keys_from.is_empty() {
        cluster_key_secrets(args)?
    } else {
        file_key_secrets(args)?
    };
    let document = sealing::backup::backup_document(&secrets);
    secrets.iter_mut().for_each(wipe_secret);
    let armored = sealing::backup::encrypt(document?.as_bytes(), &recipients)?;
    write_atomically(target, armored.as_bytes())?;
    eprintln!(
        "wrote {} sealing key(s) to {}, encrypted to {} recipient(s)",
        secrets.len(),
        target.display(),
        recipients.len()
    );
    Ok(())
}

/// The sealing-key Secrets of the controller's namespace, each checked to hold a usable key.
fn cluster_key_secrets(args: &Args) -> Result<Vec<Secret>> {
    let mut listed = block_on(remote::key_secrets(args))??;
    let namespace = &args.controller_namespace;
    let mut secrets = Vec::new();
    let mut problem = None;
    for secret in &listed {
        let name = secret.metadata.name.as_deref().unwrap_or("");
        match sealing::key_secret::parse_key_secret(secret) {
            Ok(_) => secrets.push(sealing::backup::restorable_key_secret(secret)),
            Err(e) => {
                problem = Some(anyhow!(e).context(format!(
                    "Secret {namespace}/{name} is labelled as a sealing key but holds no usable key"
                )));
                break;
            }
        }
    }
    listed.iter_mut().for_each(wipe_secret);
    if let Some(problem) = problem {
        secrets.iter_mut().for_each(wipe_secret);
        return Err(problem);
    }
    if secrets.is_empty() {
        bail!(
            "no sealing key Secret (label {}) in namespace {namespace}: set --controller-namespace",
            sealing::key_secret::LABEL_SEALING_KEY
        );
    }
    Ok(secrets)
}

/// Key Secrets for the keys of --backup-keys-from, named as in the files where they say so.
fn file_key_secrets(args: &Args) -> Result<Vec<Secret>> {
    let identities = sealing::backup::IdentitySource {
        files: args.recovery_identity.clone(),
    };
    let mut secrets: Vec<Secret> = Vec::new();
    let mut seen = Vec::new();
    for path in &args.backup_keys_from {
        for pair in sealing::backup::load_keys(path, &identities)? {
            let fingerprint = pair.private.public_key().fingerprint();
            if seen.contains(&fingerprint) {
                continue;
            }
            let certificate = pair.certificate.as_ref().ok_or_else(|| {
                anyhow!(
                    "{} ({}): the key has no certificate next to it; back up the key Secret or the keygen directory (tls.key with tls.crt)",
                    path.display(),
                    pair.origin
                )
            })?;
            let name = match pair.origin.strip_prefix("Secret ") {
                Some(name) => name.to_string(),
                None => format!("sealed-secrets-key{}", &fingerprint[..8]),
            };
            secrets.push(sealing::key_secret::key_secret_manifest(
                &pair.private,
                certificate,
                &name,
                &args.controller_namespace,
            )?);
            seen.push(fingerprint);
        }
    }
    Ok(secrets)
}

fn validate(args: &Args) -> Result<()> {
    if let Some(cert) = args.cert.first() {
        return validate_offline(args, cert);
    }
    let source = source_name(args.secret_file.as_deref());
    let text = read_input(args.secret_file.as_deref())?;
    let sealed = input::sealed_secrets(parse_documents(&text, &source)?, &source)?;
    block_on(async {
        let controller = Controller::connect(args).await?;
        for (what, sealed) in &sealed {
            let body = serde_json::to_vec(sealed)?;
            if !controller
                .verify(body)
                .await
                .with_context(|| what.clone())?
            {
                let name = sealed.metadata.name.as_deref().unwrap_or("");
                bail!("unable to decrypt sealed secret: {name} ({what})");
            }
        }
        Ok(())
    })?
}

/// `--validate --cert`: what can be checked without the controller, every problem reported.
fn validate_offline(args: &Args, cert: &str) -> Result<()> {
    let (public, _) = sealing::parse_sealing_key(&remote::read_cert_source(cert)?)
        .context("cannot use the sealing certificate")?;
    let source = source_name(args.secret_file.as_deref());
    let text = read_input(args.secret_file.as_deref())?;
    let mut problems = Vec::new();
    let mut checked = 0;
    for document in sealing::documents::documents(&text) {
        let (index, document) = match document {
            Ok(found) => found,
            Err(e) => {
                problems.push(format!("{source}: {e}"));
                continue;
            }
        };
        let doc = &document.0;
        let name = doc.pointer("/metadata/name").and_then(|n| n.as_str());
        let what = match name {
            Some(name) => format!("{source}: document {index} ({name})"),
            None => format!("{source}: document {index}"),
        };
        let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        if kind != "SealedSecret" {
            problems.push(format!(
                "{what}: expected a SealedSecret, found kind {kind:?}"
            ));
            continue;
        }
        let sealed: crds::SealedSecret = match serde::Deserialize::deserialize(doc) {
            Ok(sealed) => sealed,
            Err(e) => {
                let e: serde_json::Error = e;
                problems.push(format!(
                    "{what}: not a valid SealedSecret: {}",
                    sealing::documents::redact(&e.to_string())
                ));
                continue;
            }
        };
        checked += 1;
        for problem in sealing::check::check_sealed_secret(&sealed, &public) {
            problems.push(format!("{what}: {problem}"));
        }
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    if !problems.is_empty() {
        bail!("{source}: {} problem(s) found", problems.len());
    }
    if checked == 0 {
        bail!("{source}: no SealedSecret found in the input");
    }
    eprintln!(
        "{source}: {checked} SealedSecret(s) well-formed for this certificate (checked offline: whether they decrypt, only the controller can tell)"
    );
    Ok(())
}

fn re_encrypt(args: &Args) -> Result<()> {
    if !args.paths.is_empty() {
        return crate::reencrypt::re_encrypt_paths(args);
    }
    let source = source_name(args.secret_file.as_deref());
    let text = read_input(args.secret_file.as_deref())?;
    let sealed = input::sealed_secrets(parse_documents(&text, &source)?, &source)?;
    let format = output_format(args);
    let out = block_on(async {
        let controller = Controller::connect(args).await?;
        let mut out = String::new();
        for (what, sealed) in &sealed {
            let body = serde_json::to_vec(sealed)?;
            let rotated = controller
                .rotate(body)
                .await
                .with_context(|| what.clone())?;
            let rotated: crds::SealedSecret =
                serde_json::from_slice(&rotated).with_context(|| {
                    format!("{what}: the controller's answer is not a SealedSecret")
                })?;
            out.push_str(&render_sealed_secret(&rotated, format)?);
        }
        Ok::<_, anyhow::Error>(out)
    })??;
    // With only -f, the file is re-encrypted in place (Bitnami's behaviour since #405).
    let target: Option<&Path> = args
        .sealed_secret_file
        .as_deref()
        .or(args.secret_file.as_deref());
    emit(target, &out)
}
