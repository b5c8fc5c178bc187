//! The OpenAPI 3.1 document of a runner, built at start from the algorithms it hosts: one
//! `POST /run/{name}` path per algorithm, with that algorithm's payload schema.
//!
//! schemars puts nested types under the schema's own `$defs` and refers to them as
//! `#/$defs/Name`; OpenAPI tools resolve references against the whole document, so each
//! algorithm's schema and definitions move to `components/schemas` (namespaced by algorithm,
//! since two algorithms may name different types alike) and their references are rewritten.

use serde_json::{Map, Value, json};

/// What the document is built from.
pub(crate) struct ApiDescription<'a> {
    /// (name, payload schema) of every hosted algorithm.
    pub(crate) algorithms: Vec<(&'a str, &'a Value)>,
    pub(crate) default_algorithm: Option<&'a str>,
    /// Whether calls need a bearer token, so the docs page offers to send one.
    pub(crate) token_required: bool,
}

const ERROR_BODY: &str = "ErrorBody";

pub(crate) fn document(description: &ApiDescription) -> Value {
    let mut components = Map::new();
    components.insert(
        ERROR_BODY.into(),
        json!({
            "type": "object",
            "required": ["message"],
            "properties": {
                "message": {"type": "string", "description": "What went wrong."},
                "error": {"type": "string", "description": "Detail of an internal error."}
            }
        }),
    );
    let mut paths = Map::new();
    for (name, schema) in &description.algorithms {
        move_into_components(name, schema, &mut components);
        let summary = format!("Run the `{name}` algorithm");
        let run = operation(
            name,
            &format!("run_{name}"),
            &summary,
            description.token_required,
        );
        paths.insert(format!("/run/{name}"), json!({"post": run}));
        if description.default_algorithm == Some(name) {
            let summary = format!("Run the default algorithm, `{name}` (the series' `POST /`)");
            let run = operation(name, "run_default", &summary, description.token_required);
            paths.insert("/".into(), json!({"post": run}));
        }
    }
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Switchyard runner",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Algorithms hosted by this runner. Each takes its payload as the JSON body \
                and answers `{\"result\": ...}`, or `{\"message\": ...}` with an error status."
        },
        "paths": paths,
        "components": {"schemas": components}
    });
    if description.token_required {
        document["components"]["securitySchemes"] =
            json!({"bearer": {"type": "http", "scheme": "bearer"}});
    }
    document
}

fn operation(algorithm: &str, operation_id: &str, summary: &str, token_required: bool) -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{ERROR_BODY}")}}}
        })
    };
    let mut responses = json!({
        "200": {
            "description": "The algorithm's result.",
            "content": {"application/json": {"schema": {
                "type": "object",
                "required": ["result"],
                "properties": {"result": {"description": "What the algorithm returned."}}
            }}}
        },
        "400": error("The body is not JSON or does not fit the payload schema; the message names the field."),
        "413": error("The body is larger than the runner accepts."),
        "500": error("The algorithm failed (`message` is \"Internal error\", `error` the detail)."),
        "503": error("The algorithm is loading or saturated: retry after `Retry-After` seconds.")
    });
    if token_required {
        responses["401"] = error("Missing or wrong bearer token.");
    }
    let mut operation = json!({
        "operationId": operation_id,
        "summary": summary,
        "requestBody": {
            "required": true,
            "content": {"application/json": {"schema": {"$ref": component_ref(algorithm, None)}}}
        },
        "responses": responses
    });
    if token_required {
        operation["security"] = json!([{"bearer": []}]);
    }
    operation
}

/// Adds `schema` as component `{algorithm}` and each of its `$defs` as `{algorithm}.{def}`,
/// references rewritten to match.
fn move_into_components(algorithm: &str, schema: &Value, components: &mut Map<String, Value>) {
    let mut schema = schema.clone();
    let defs = schema.as_object_mut().and_then(|object| {
        // OpenAPI's dialect is fixed by the document; a per-schema dialect would confuse tools.
        object.remove("$schema");
        object.remove("$defs")
    });
    rewrite_refs(algorithm, &mut schema);
    components.insert(algorithm.to_string(), schema);
    if let Some(Value::Object(defs)) = defs {
        for (def, mut def_schema) in defs {
            rewrite_refs(algorithm, &mut def_schema);
            components.insert(format!("{algorithm}.{def}"), def_schema);
        }
    }
}

fn rewrite_refs(algorithm: &str, value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                match child {
                    Value::String(reference) if key == "$ref" => {
                        if let Some(rewritten) = rewrite_ref(algorithm, reference) {
                            *reference = rewritten;
                        }
                    }
                    _ => rewrite_refs(algorithm, child),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_refs(algorithm, item)),
        _ => {}
    }
}

/// `#/$defs/Name/rest` -> `#/components/schemas/{algorithm}.Name/rest`; `#` (the payload
/// itself, in a recursive type) -> `#/components/schemas/{algorithm}`. Other references
/// (absolute URLs) are left alone.
fn rewrite_ref(algorithm: &str, reference: &str) -> Option<String> {
    if reference == "#" {
        return Some(component_ref(algorithm, None));
    }
    let rest = reference.strip_prefix("#/$defs/")?;
    let (def, tail) = rest
        .split_once('/')
        .map_or((rest, ""), |(def, tail)| (def, tail));
    let mut rewritten = component_ref(algorithm, Some(def));
    if !tail.is_empty() {
        rewritten.push('/');
        rewritten.push_str(tail);
    }
    Some(rewritten)
}

fn component_ref(algorithm: &str, def: Option<&str>) -> String {
    match def {
        Some(def) => format!("#/components/schemas/{algorithm}.{def}"),
        None => format!("#/components/schemas/{algorithm}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "CropPayload",
            "type": "object",
            "properties": {
                "box": {"$ref": "#/$defs/Box"},
                "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}
            },
            "$defs": {"Box": {"type": "object", "properties": {"corner": {"$ref": "#/$defs/Point"}}},
                      "Point": {"type": "array"}}
        })
    }

    #[test]
    fn moves_definitions_into_components_and_rewrites_references() {
        let schema = nested_schema();
        let doc = document(&ApiDescription {
            algorithms: vec![("crop", &schema)],
            default_algorithm: None,
            token_required: false,
        });
        let components = &doc["components"]["schemas"];
        assert_eq!(
            components["crop"]["properties"]["box"]["$ref"],
            "#/components/schemas/crop.Box"
        );
        assert_eq!(
            components["crop"]["properties"]["next"]["anyOf"][0]["$ref"],
            "#/components/schemas/crop"
        );
        assert_eq!(
            components["crop.Box"]["properties"]["corner"]["$ref"],
            "#/components/schemas/crop.Point"
        );
        assert!(
            components["crop"].get("$defs").is_none()
                && components["crop"].get("$schema").is_none()
        );
        let body = &doc["paths"]["/run/crop"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert_eq!(body["$ref"], "#/components/schemas/crop");
        assert!(doc["paths"].get("/").is_none());
        assert_no_dangling_refs(&doc, &doc);
    }

    #[test]
    fn the_default_algorithm_and_the_token_show_in_the_document() {
        let schema = nested_schema();
        let doc = document(&ApiDescription {
            algorithms: vec![("crop", &schema)],
            default_algorithm: Some("crop"),
            token_required: true,
        });
        assert_eq!(
            doc["paths"]["/"]["post"]["requestBody"],
            doc["paths"]["/run/crop"]["post"]["requestBody"]
        );
        assert_eq!(doc["paths"]["/"]["post"]["operationId"], "run_default");
        assert_eq!(
            doc["paths"]["/run/crop"]["post"]["security"],
            json!([{"bearer": []}])
        );
        assert!(
            doc["paths"]["/run/crop"]["post"]["responses"]
                .get("401")
                .is_some()
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn a_reference_path_below_a_definition_keeps_its_tail() {
        assert_eq!(
            rewrite_ref("a", "#/$defs/X/properties/y"),
            Some("#/components/schemas/a.X/properties/y".into())
        );
        assert_eq!(rewrite_ref("a", "https://example.com/s.json"), None);
    }

    /// Every internal reference in `value` points at something in `doc`.
    fn assert_no_dangling_refs(doc: &Value, value: &Value) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(reference)) = object.get("$ref") {
                    let pointer = reference.strip_prefix('#').expect("internal reference");
                    assert!(doc.pointer(pointer).is_some(), "dangling {reference}");
                }
                object
                    .values()
                    .for_each(|child| assert_no_dangling_refs(doc, child));
            }
            Value::Array(items) => items
                .iter()
                .for_each(|item| assert_no_dangling_refs(doc, item)),
            _ => {}
        }
    }
}
