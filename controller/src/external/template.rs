//! `spec.target.template` as ESO applies it (`ApplyTemplate` and the templating parser):
//! which ConfigMaps and Secrets `templateFrom` reads ([`sources`]), and how the provider data,
//! `mergePolicy`, `templateFrom` (ConfigMap, Secret, literal; `templateAs`; `target`), `data`
//! and templated `metadata` become the Secret's data, labels and annotations ([`apply`]).
//! Pure functions: the reconciler reads the sources and passes them in.

use std::collections::BTreeMap;

use crds::external_secrets::{
    ExternalSecret, ExternalSecretTemplate, TemplateMergePolicy, TemplateRef, TemplateScope,
};
use templating::{Options, render_with};
use zeroize::Zeroizing;

use super::data::SecretMap;

/// Why a template could not be applied. Messages name places and keys, never values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    #[error("template at {place}: {source}")]
    Template {
        place: String,
        #[source]
        source: templating::TemplateError,
    },
    #[error("templateFrom: {kind} {name:?} not found in the ExternalSecret's namespace")]
    SourceMissing { kind: SourceKind, name: String },
    #[error("templateFrom: {kind} {name:?} has no key {key:?}")]
    SourceKey {
        kind: SourceKind,
        name: String,
        key: String,
    },
    #[error("templateFrom target {0:?} is not supported (Data, Annotations or Labels)")]
    Target(String),
    #[error("template at {place} does not render to a YAML map of strings")]
    KeysAndValues { place: String },
    #[error("template engineVersion {0:?} is not supported (only v2)")]
    EngineVersion(String),
}

/// The kind of object a `templateFrom` entry reads templates from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    ConfigMap,
    Secret,
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceKind::ConfigMap => "ConfigMap",
            SourceKind::Secret => "Secret",
        })
    }
}

/// A ConfigMap or Secret in the ExternalSecret's namespace that `templateFrom` names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceRef {
    pub kind: SourceKind,
    pub name: String,
}

/// What the reconciler read for each [`SourceRef`]: the object's data (ConfigMap `data`,
/// Secret `data`), or `None` when it does not exist.
pub type Sources = BTreeMap<SourceRef, Option<SecretMap>>;

/// The objects `templateFrom` reads, each once, in a stable order.
pub fn sources(es: &ExternalSecret) -> Vec<SourceRef> {
    let Some(t) = &es.spec.target.template else {
        return Vec::new();
    };
    let mut refs: Vec<SourceRef> = t
        .template_from
        .iter()
        .flat_map(|tf| {
            let cm = tf.config_map.as_ref().map(|r| SourceRef {
                kind: SourceKind::ConfigMap,
                name: r.name.clone(),
            });
            let secret = tf.secret.as_ref().map(|r| SourceRef {
                kind: SourceKind::Secret,
                name: r.name.clone(),
            });
            cm.into_iter().chain(secret)
        })
        .collect();
    refs.sort();
    refs.dedup();
    refs
}

/// What the template produced for the target Secret.
#[derive(Debug, Default, PartialEq)]
pub struct Rendered {
    pub data: SecretMap,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Where a `templateFrom` result goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Data,
    Annotations,
    Labels,
}

impl Target {
    /// ESO compares the target case-insensitively; paths into other fields only exist for
    /// generic (non-Secret) targets, which this controller does not write.
    fn parse(text: Option<&str>) -> Result<Target, ApplyError> {
        match text.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("data") => Ok(Target::Data),
            Some("annotations") => Ok(Target::Annotations),
            Some("labels") => Ok(Target::Labels),
            Some(_) => Err(ApplyError::Target(text.unwrap_or_default().into())),
        }
    }
}

impl Rendered {
    fn put(&mut self, target: Target, key: String, value: Zeroizing<Vec<u8>>) {
        match target {
            Target::Data => {
                self.data.insert(key, value);
            }
            Target::Annotations => {
                self.annotations
                    .insert(key, String::from_utf8_lossy(&value).into_owned());
            }
            Target::Labels => {
                self.labels
                    .insert(key, String::from_utf8_lossy(&value).into_owned());
            }
        }
    }
}

/// The provider data and how to run templates over it.
struct Engine<'a> {
    data: &'a SecretMap,
    options: &'a Options,
}

impl Engine<'_> {
    /// Renders `text`; `place` names the template in errors.
    fn run(&self, place: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, ApplyError> {
        render_with(text, self.data, self.options).map_err(|source| ApplyError::Template {
            place: place.to_string(),
            source,
        })
    }

    /// One template in one scope, its result put into `target`.
    fn apply_one(
        &self,
        out: &mut Rendered,
        place: &str,
        key: &str,
        text: &str,
        scope: TemplateScope,
        target: Target,
    ) -> Result<(), ApplyError> {
        let value = self.run(place, text)?;
        match scope {
            TemplateScope::Values => out.put(target, key.to_string(), value),
            TemplateScope::KeysAndValues => {
                for (k, v) in keys_and_values(place, &value)? {
                    out.put(target, k, v);
                }
            }
        }
        Ok(())
    }

    /// The items of one ConfigMap or Secret source.
    fn apply_source(
        &self,
        out: &mut Rendered,
        index: usize,
        source: SourceRef,
        r: &TemplateRef,
        target: Target,
        sources: &Sources,
    ) -> Result<(), ApplyError> {
        let Some(Some(contents)) = sources.get(&source) else {
            return Err(ApplyError::SourceMissing {
                kind: source.kind,
                name: source.name,
            });
        };
        for item in &r.items {
            let Some(text) = contents.get(&item.key) else {
                return Err(ApplyError::SourceKey {
                    kind: source.kind,
                    name: source.name,
                    key: item.key.clone(),
                });
            };
            let place = format!(
                "templateFrom[{index}] {} {:?} key {:?}",
                source.kind, source.name, item.key
            );
            let text = String::from_utf8_lossy(text);
            self.apply_one(out, &place, &item.key, &text, item.template_as, target)?;
        }
        Ok(())
    }
}

/// A `KeysAndValues` template's output: a YAML map of keys to string values.
fn keys_and_values(
    place: &str,
    rendered: &[u8],
) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, ApplyError> {
    if rendered.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    let map: BTreeMap<String, String> =
        serde_yaml::from_slice(rendered).map_err(|_| ApplyError::KeysAndValues {
            place: place.to_string(),
        })?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, Zeroizing::new(v.into_bytes())))
        .collect())
}

/// The Secret's data, labels and annotations, in ESO's order of precedence (later wins):
/// provider data (without a template, with `mergePolicy: Merge`, or when the template has
/// neither `data` nor `templateFrom`), `templateFrom` entries in order, `data`, then the
/// templated `metadata`. Without a template the ExternalSecret's own labels and annotations
/// are copied, as ESO does.
pub fn apply(
    es: &ExternalSecret,
    fetched: SecretMap,
    sources: &Sources,
    options: &Options,
) -> Result<Rendered, ApplyError> {
    let Some(t) = es.spec.target.template.as_ref() else {
        return Ok(Rendered {
            data: fetched,
            labels: es.metadata.labels.clone().unwrap_or_default(),
            annotations: es.metadata.annotations.clone().unwrap_or_default(),
        });
    };
    apply_template(t, fetched, sources, options)
}

fn apply_template(
    t: &ExternalSecretTemplate,
    fetched: SecretMap,
    sources: &Sources,
    options: &Options,
) -> Result<Rendered, ApplyError> {
    if t.engine_version != "v2" {
        return Err(ApplyError::EngineVersion(t.engine_version.clone()));
    }
    let engine = Engine {
        data: &fetched,
        options,
    };
    let mut out = Rendered::default();
    let no_data_templates = t.data.is_empty() && t.template_from.is_empty();
    if t.merge_policy == TemplateMergePolicy::Merge || no_data_templates {
        out.data
            .extend(fetched.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for (index, tf) in t.template_from.iter().enumerate() {
        let target = Target::parse(tf.target.as_deref())?;
        for (kind, r) in [
            (SourceKind::ConfigMap, &tf.config_map),
            (SourceKind::Secret, &tf.secret),
        ] {
            if let Some(r) = r {
                let source = SourceRef {
                    kind,
                    name: r.name.clone(),
                };
                engine.apply_source(&mut out, index, source, r, target, sources)?;
            }
        }
        if let Some(literal) = &tf.literal {
            let place = format!("templateFrom[{index}] literal");
            let scope = TemplateScope::KeysAndValues;
            engine.apply_one(&mut out, &place, "", literal, scope, target)?;
        }
    }
    for (key, text) in &t.data {
        let value = engine.run(&format!("data key {key:?}"), text)?;
        out.put(Target::Data, key.clone(), value);
    }
    if let Some(meta) = &t.metadata {
        for (target, what, map) in [
            (Target::Labels, "label", &meta.labels),
            (Target::Annotations, "annotation", &meta.annotations),
        ] {
            for (key, text) in map {
                let value = engine.run(&format!("metadata {what} {key:?}"), text)?;
                out.put(target, key.clone(), value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn es(template: &str) -> ExternalSecret {
        serde_yaml::from_str(&format!(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: es1, namespace: ns, labels: {{team: a}}, annotations: {{note: n}}}}\nspec:\n  secretStoreRef: {{name: s}}\n  target:\n    template:\n{template}"
        ))
        .unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> SecretMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.as_bytes().to_vec())))
            .collect()
    }

    fn text(m: &SecretMap) -> BTreeMap<String, String> {
        m.iter()
            .map(|(k, v)| (k.clone(), String::from_utf8(v.to_vec()).unwrap()))
            .collect()
    }

    fn fetched() -> SecretMap {
        map(&[("user", "admin"), ("pass", "pw")])
    }

    fn go(e: &ExternalSecret, sources: &Sources) -> Result<Rendered, ApplyError> {
        apply(e, fetched(), sources, &Options::default())
    }

    fn cm(name: &str, pairs: &[(&str, &str)]) -> (SourceRef, Option<SecretMap>) {
        (
            SourceRef {
                kind: SourceKind::ConfigMap,
                name: name.into(),
            },
            Some(map(pairs)),
        )
    }

    #[test]
    fn no_template_copies_data_and_the_external_secrets_metadata() {
        let mut e = es("      type: Opaque\n");
        e.spec.target.template = None;
        let r = go(&e, &Sources::new()).unwrap();
        assert_eq!(text(&r.data).len(), 2);
        assert_eq!(r.labels["team"], "a");
        assert_eq!(r.annotations["note"], "n");
    }

    #[test]
    fn metadata_is_templated_and_without_data_templates_provider_data_passes() {
        let e = es(
            "      metadata:\n        labels: {owner: '{{ .user | upper }}'}\n        annotations: {a: 'x-{{ .user }}'}\n",
        );
        let r = go(&e, &Sources::new()).unwrap();
        assert_eq!(r.labels["owner"], "ADMIN");
        assert_eq!(r.annotations["a"], "x-admin");
        assert!(
            !r.labels.contains_key("team"),
            "template metadata replaces the ES's"
        );
        assert_eq!(text(&r.data)["pass"], "pw");
    }

    #[test]
    fn merge_policy_replace_and_merge() {
        let e = es("      data: {url: 'https://{{ .user }}@h'}\n");
        let r = go(&e, &Sources::new()).unwrap();
        assert_eq!(text(&r.data).keys().collect::<Vec<_>>(), ["url"]);
        let e = es(
            "      mergePolicy: Merge\n      data: {url: 'https://{{ .user }}@h', user: templated}\n",
        );
        let r = go(&e, &Sources::new()).unwrap();
        let d = text(&r.data);
        assert_eq!(d.len(), 3);
        assert_eq!(d["user"], "templated", "templates override provider keys");
    }

    #[test]
    fn config_map_items_as_values_and_keys_and_values() {
        let e = es(r#"      templateFrom:
      - configMap:
          name: tpl
          items:
          - key: config.yaml
          - {key: multi, templateAs: KeysAndValues}
"#);
        let sources: Sources = [cm(
            "tpl",
            &[
                ("config.yaml", "user: {{ .user }}\n"),
                ("multi", "a: '{{ .user }}'\nb: \"{{ .pass }}\"\n"),
                ("unused", "{{ .nope }}"),
            ],
        )]
        .into();
        assert_eq!(
            super::sources(&e),
            sources.keys().cloned().collect::<Vec<_>>()
        );
        let d = text(&go(&e, &sources).unwrap().data);
        assert_eq!(d["config.yaml"], "user: admin\n");
        assert_eq!((d["a"].as_str(), d["b"].as_str()), ("admin", "pw"));
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn secret_source_targets_and_precedence() {
        let e = es(r#"      data: {k: from-data}
      metadata:
        labels: {l: from-metadata}
      templateFrom:
      - secret:
          name: tpl-secret
          items: [{key: k}]
      - target: Labels
        literal: "l: from-literal\nl2: '{{ .user }}'"
      - target: annotations
        configMap:
          name: tpl
          items: [{key: ann}]
"#);
        let sources: Sources = [
            cm("tpl", &[("ann", "{{ .pass | b64enc }}")]),
            (
                SourceRef {
                    kind: SourceKind::Secret,
                    name: "tpl-secret".into(),
                },
                Some(map(&[("k", "from-secret")])),
            ),
        ]
        .into();
        let r = go(&e, &sources).unwrap();
        assert_eq!(text(&r.data)["k"], "from-data");
        assert_eq!(r.labels["l"], "from-metadata");
        assert_eq!(r.labels["l2"], "admin");
        assert_eq!(r.annotations["ann"], "cHc=");
    }

    #[test]
    fn clear_errors_for_missing_sources_keys_targets_and_bad_maps() {
        let e = es("      templateFrom:\n      - configMap: {name: tpl, items: [{key: x}]}\n");
        let err = go(&e, &[(cm("tpl", &[]).0, None)].into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "templateFrom: ConfigMap \"tpl\" not found in the ExternalSecret's namespace"
        );
        let err = go(&e, &Sources::new()).unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        let err = go(&e, &[cm("tpl", &[("y", "")])].into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "templateFrom: ConfigMap \"tpl\" has no key \"x\""
        );
        let err = go(&e, &[cm("tpl", &[("x", "{{ .missing }}")])].into()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("template at templateFrom[0] ConfigMap \"tpl\" key \"x\": "),
            "{err}"
        );
        let e = es("      templateFrom:\n      - {target: spec.x, literal: 'a: b'}\n");
        assert!(matches!(
            go(&e, &Sources::new()),
            Err(ApplyError::Target(t)) if t == "spec.x"
        ));
        let e = es("      templateFrom:\n      - literal: '[{{ .pass }}]'\n");
        let err = go(&e, &Sources::new()).unwrap_err().to_string();
        assert_eq!(
            err,
            "template at templateFrom[0] literal does not render to a YAML map of strings"
        );
        assert!(!err.contains("pw"));
        let e = es("      engineVersion: v1\n      data: {a: b}\n");
        assert!(matches!(
            go(&e, &Sources::new()),
            Err(ApplyError::EngineVersion(_))
        ));
    }

    #[test]
    fn delimiters_come_from_the_options() {
        let e = es("      data: {a: '<< .user >> {{ x }}'}\n");
        let options = Options {
            left_delim: "<<".into(),
            right_delim: ">>".into(),
            ..Options::default()
        };
        let r = apply(&e, fetched(), &Sources::new(), &options).unwrap();
        assert_eq!(text(&r.data)["a"], "admin {{ x }}");
    }
}
