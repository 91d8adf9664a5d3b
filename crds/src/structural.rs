//! What the API server and kubectl demand of a CRD's OpenAPI schema, checked offline.
//!
//! The API server refuses a `apiextensions.k8s.io/v1` CRD whose schemas are not *structural*
//! (Kubernetes docs, "Specifying a structural schema"), and kubectl's client-side validation
//! (used against servers without server-side field validation, and by kubeconform-style tools)
//! rejects values that contradict the schema, such as `null` among the `enum` values of a
//! `type: string` field. [`normalize`] fixes what schema generation gets wrong; [`problems`]
//! lists every rule a schema breaks, so a test can hold every generated CRD to them.

use serde_json::{Map, Value};

const TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean"];
const JUNCTORS: &[&str] = &["allOf", "anyOf", "oneOf", "not"];
/// Keywords `apiextensions.k8s.io/v1` does not accept in a schema.
const FORBIDDEN: &[&str] = &[
    "$ref",
    "$schema",
    "definitions",
    "id",
    "patternProperties",
    "dependencies",
    "additionalItems",
];
/// Keywords a structural schema may not set inside a junctor.
const NOT_IN_JUNCTORS: &[&str] = &[
    "description",
    "type",
    "default",
    "additionalProperties",
    "nullable",
];

/// Removes `null` from every `enum`: schema generation lists it for `Option<enum>` fields, but
/// `nullable: true` already admits null and kubectl rejects a `null` enum value.
pub fn normalize(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            for value in map.values_mut() {
                normalize(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// Every rule `schema` (an `openAPIV3Schema`) breaks, each naming the JSON path.
pub fn problems(schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    check(schema, "", false, true, &mut found);
    if let Some(metadata) = schema.pointer("/properties/metadata") {
        let allowed = ["type", "properties", "description"];
        if let Some(map) = metadata.as_object() {
            for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
                found.push(format!(".metadata: {key} is not allowed on metadata"));
            }
        }
        if let Some(props) = metadata.get("properties").and_then(Value::as_object) {
            for key in props
                .keys()
                .filter(|k| !matches!(k.as_str(), "name" | "generateName"))
            {
                found.push(format!(
                    ".metadata.{key}: only name and generateName may be restricted"
                ));
            }
        }
    }
    found
}

fn type_matches(value: &Value, ty: &str) -> bool {
    match ty {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => true,
    }
}

fn flag(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).and_then(Value::as_bool) == Some(true)
}

fn check(schema: &Value, path: &str, in_junctor: bool, needs_type: bool, found: &mut Vec<String>) {
    let at = if path.is_empty() { "." } else { path };
    let Some(map) = schema.as_object() else {
        found.push(format!("{at}: a schema must be an object"));
        return;
    };
    let int_or_string = flag(map, "x-kubernetes-int-or-string");
    let preserve = flag(map, "x-kubernetes-preserve-unknown-fields");
    let ty = map.get("type").and_then(Value::as_str);

    for key in FORBIDDEN.iter().filter(|k| map.contains_key(**k)) {
        found.push(format!("{at}: {key} is not allowed in a CRD schema"));
    }
    if in_junctor {
        for key in NOT_IN_JUNCTORS.iter().filter(|k| map.contains_key(**k)) {
            found.push(format!(
                "{at}: {key} is not allowed inside allOf/anyOf/oneOf/not"
            ));
        }
    } else if needs_type && ty.is_none() && !int_or_string && !preserve {
        found.push(format!("{at}: type is missing"));
    }
    match (map.get("type"), ty) {
        (Some(_), Some(t)) if !TYPES.contains(&t) => {
            found.push(format!("{at}: type {t:?} is not a valid type"))
        }
        (Some(v), None) => found.push(format!("{at}: type must be a string, not {v}")),
        _ => {}
    }
    if int_or_string && ty.is_some() {
        found.push(format!(
            "{at}: x-kubernetes-int-or-string must not set a type"
        ));
    }
    if map.get("nullable").is_some_and(|v| !v.is_boolean()) {
        found.push(format!("{at}: nullable must be a boolean"));
    }
    for key in [
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
        "x-kubernetes-embedded-resource",
    ] {
        match map.get(key) {
            None | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) if key == "x-kubernetes-embedded-resource" => {}
            Some(other) => found.push(format!("{at}: {key} must be true or absent, not {other}")),
        }
    }
    if flag(map, "x-kubernetes-embedded-resource") {
        if ty != Some("object") {
            found.push(format!(
                "{at}: x-kubernetes-embedded-resource needs type object"
            ));
        }
        if !map.contains_key("properties") && !preserve {
            found.push(format!("{at}: x-kubernetes-embedded-resource needs properties or x-kubernetes-preserve-unknown-fields"));
        }
    }
    if let Some(list_type) = map.get("x-kubernetes-list-type") {
        if ty != Some("array") {
            found.push(format!("{at}: x-kubernetes-list-type needs type array"));
        }
        match list_type.as_str() {
            Some("atomic" | "set") => {}
            Some("map") => {
                let keys = map
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if keys.is_empty() {
                    found.push(format!(
                        "{at}: x-kubernetes-list-type map needs x-kubernetes-list-map-keys"
                    ));
                }
                let item_props = map
                    .get("items")
                    .and_then(|i| i.get("properties"))
                    .and_then(Value::as_object);
                for key in keys.iter().filter_map(Value::as_str) {
                    if item_props.is_none_or(|p| !p.contains_key(key)) {
                        found.push(format!(
                            "{at}: list map key {key:?} is not a property of the items"
                        ));
                    }
                }
            }
            _ => found.push(format!(
                "{at}: x-kubernetes-list-type must be atomic, set or map"
            )),
        }
    } else if map.contains_key("x-kubernetes-list-map-keys") {
        found.push(format!(
            "{at}: x-kubernetes-list-map-keys needs x-kubernetes-list-type map"
        ));
    }
    if let Some(map_type) = map.get("x-kubernetes-map-type") {
        if ty != Some("object") {
            found.push(format!("{at}: x-kubernetes-map-type needs type object"));
        }
        if !matches!(map_type.as_str(), Some("granular" | "atomic")) {
            found.push(format!(
                "{at}: x-kubernetes-map-type must be granular or atomic"
            ));
        }
    }
    if map.get("uniqueItems") == Some(&Value::Bool(true)) {
        found.push(format!("{at}: uniqueItems: true is not allowed"));
    }
    if map.get("additionalProperties") == Some(&Value::Bool(false)) {
        found.push(format!("{at}: additionalProperties: false is not allowed"));
    }
    if map.contains_key("properties") && map.contains_key("additionalProperties") {
        found.push(format!(
            "{at}: properties and additionalProperties are mutually exclusive"
        ));
    }
    if let Some(values) = map.get("enum") {
        match values.as_array() {
            Some(values) => {
                for value in values {
                    if value.is_null() {
                        found.push(format!("{at}: enum contains null"));
                    } else if let Some(t) = ty.filter(|t| !type_matches(value, t)) {
                        found.push(format!("{at}: enum value {value} is not of type {t}"));
                    }
                }
            }
            None => found.push(format!("{at}: enum must be a list")),
        }
    }
    if let (Some(default), Some(t)) = (map.get("default"), ty)
        && !(default.is_null() && flag(map, "nullable"))
        && !type_matches(default, t)
    {
        found.push(format!("{at}: default {default} is not of type {t}"));
    }
    if ty == Some("array") && !map.contains_key("items") && !in_junctor {
        found.push(format!("{at}: an array needs items"));
    }

    if let Some(props) = map.get("properties") {
        match props.as_object() {
            Some(props) => {
                for (name, sub) in props {
                    check(sub, &format!("{path}.{name}"), in_junctor, true, found);
                }
            }
            None => found.push(format!("{at}: properties must be an object")),
        }
    }
    match map.get("additionalProperties") {
        Some(sub @ Value::Object(_)) => check(sub, &format!("{path}.*"), in_junctor, true, found),
        Some(Value::Bool(_)) | None => {}
        Some(other) => found.push(format!(
            "{at}: additionalProperties must be a schema or a boolean, not {other}"
        )),
    }
    match map.get("items") {
        Some(sub @ Value::Object(_)) => check(sub, &format!("{path}[]"), in_junctor, true, found),
        Some(Value::Array(_)) => found.push(format!("{at}: items must be one schema, not a list")),
        Some(other) => found.push(format!("{at}: items must be a schema, not {other}")),
        None => {}
    }
    for junctor in JUNCTORS {
        let branches: Vec<&Value> = match map.get(*junctor) {
            Some(Value::Array(list)) => list.iter().collect(),
            Some(single @ Value::Object(_)) => vec![single],
            Some(_) => {
                found.push(format!("{at}: {junctor} is malformed"));
                continue;
            }
            None => continue,
        };
        for (i, branch) in branches.into_iter().enumerate() {
            let branch_path = format!("{path}.{junctor}[{i}]");
            check(branch, &branch_path, true, false, found);
            // Fields named inside a junctor must also be specified outside it.
            if let Some(props) = branch.get("properties").and_then(Value::as_object) {
                for name in props.keys() {
                    let outside = map.get("properties").and_then(|p| p.get(name)).is_some();
                    if !outside {
                        found.push(format!(
                            "{branch_path}: property {name} is not specified outside {junctor}"
                        ));
                    }
                }
            }
            if branch.get("items").is_some() && map.get("items").is_none() {
                found.push(format!(
                    "{branch_path}: items are not specified outside {junctor}"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_rule_is_reported() {
        let bad = json!({
            "type": "object",
            "properties": {
                "untyped": {"description": "no type"},
                "nullEnum": {"type": "string", "nullable": true, "enum": ["A", null]},
                "wrongEnum": {"type": "string", "enum": [1]},
                "both": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
                "list": {"type": "array"},
                "preserve": {"type": "object", "x-kubernetes-preserve-unknown-fields": false},
                "listType": {"type": "object", "x-kubernetes-list-type": "set"},
                "junctor": {"type": "object", "anyOf": [{"type": "object", "properties": {"hidden": {"type": "string"}}}]},
                "ref": {"$ref": "#/definitions/x"}
            }
        });
        let found = problems(&bad).join("\n");
        for expected in [
            ".untyped: type is missing",
            ".nullEnum: enum contains null",
            ".wrongEnum: enum value 1 is not of type string",
            ".both: properties and additionalProperties are mutually exclusive",
            ".list: an array needs items",
            ".preserve: x-kubernetes-preserve-unknown-fields must be true or absent",
            ".listType: x-kubernetes-list-type needs type array",
            ".junctor.anyOf[0]: type is not allowed inside",
            ".junctor.anyOf[0]: property hidden is not specified outside anyOf",
            ".ref: $ref is not allowed",
        ] {
            assert!(found.contains(expected), "{expected:?} not in\n{found}");
        }
    }

    #[test]
    fn normalize_drops_null_from_enums_only() {
        let mut schema =
            json!({"type": "string", "nullable": true, "enum": ["A", null, "B"], "default": null});
        normalize(&mut schema);
        assert_eq!(
            schema,
            json!({"type": "string", "nullable": true, "enum": ["A", "B"], "default": null})
        );
        assert!(problems(&schema).is_empty(), "{:?}", problems(&schema));
    }
}
