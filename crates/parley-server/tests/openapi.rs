//! `docs/openapi.json` against the router: every route the gateway registers is documented
//! with the right methods, and the document names no route the gateway lacks.
//!
//! Routes are read from the source with a plain text scan of `.route("…", …)` calls:
//! `crates/parley-gateway/src/rest.rs` (nested under `/api/v1`) and the top-level router in
//! `crates/parley-gateway/src/lib.rs` (`/healthz`, `/readyz`, `/metrics`; `/ws` is the
//! WebSocket upgrade, documented in `docs/protocol.md`, not in OpenAPI).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

fn workspace_file(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn openapi() -> serde_json::Value {
    serde_json::from_str(&workspace_file("docs/openapi.json"))
        .expect("docs/openapi.json is valid JSON")
}

/// The text of every `.route( … )` call, up to its matching parenthesis.
fn route_calls(source: &str) -> Vec<&str> {
    let mut calls = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find(".route(") {
        let body = &rest[start + ".route(".len()..];
        let mut depth = 1usize;
        let mut in_string = false;
        let mut escaped = false;
        let mut end = body.len();
        for (index, character) in body.char_indices() {
            if in_string {
                match character {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match character {
                '"' => in_string = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = index;
                        break;
                    }
                }
                _ => {}
            }
        }
        calls.push(&body[..end]);
        rest = &body[end..];
    }
    calls
}

/// `(path, methods)` of one `.route` call: the first string literal and every
/// `get(`/`post(`/`patch(`/`delete(`/`put(` that is not part of a longer identifier.
fn parse_route(call: &str) -> (String, BTreeSet<String>) {
    let open = call.find('"').expect("a .route call starts with its path");
    let close = open + 1 + call[open + 1..].find('"').expect("closing quote");
    let path = call[open + 1..close].to_owned();
    let mut methods = BTreeSet::new();
    let bytes = call.as_bytes();
    for method in METHODS {
        let needle = format!("{method}(");
        let mut from = close;
        while let Some(found) = call[from..].find(&needle) {
            let at = from + found;
            let before = at.checked_sub(1).map(|index| bytes[index]);
            let standalone =
                !matches!(before, Some(byte) if byte.is_ascii_alphanumeric() || byte == b'_');
            if standalone {
                methods.insert((*method).to_owned());
            }
            from = at + needle.len();
        }
    }
    assert!(!methods.is_empty(), "no method found in .route({call})");
    (path, methods)
}

/// Every HTTP route of the gateway, full path → methods.
fn gateway_routes() -> BTreeMap<String, BTreeSet<String>> {
    let mut routes = BTreeMap::new();
    let rest = workspace_file("crates/parley-gateway/src/rest.rs");
    for call in route_calls(&rest) {
        let (path, methods) = parse_route(call);
        let previous = routes.insert(format!("/api/v1{path}"), methods);
        assert!(previous.is_none(), "route {path} registered twice");
    }
    let lib = workspace_file("crates/parley-gateway/src/lib.rs");
    for call in route_calls(&lib) {
        let (path, methods) = parse_route(call);
        if path == "/ws" {
            continue;
        }
        routes.insert(path, methods);
    }
    routes
}

fn documented_routes(document: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    let paths = document["paths"]
        .as_object()
        .expect("the document has `paths`");
    paths
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("a path item is an object")
                .keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[test]
fn the_scanner_finds_the_known_routes() {
    let routes = gateway_routes();
    assert!(routes.len() >= 18, "suspiciously few routes: {routes:?}");
    let me = &routes["/api/v1/users/me"];
    assert!(me.contains("get") && me.contains("patch"), "{me:?}");
    assert!(routes["/api/v1/conversations/{conversation_id}/members/{user_id}"].contains("delete"));
    assert!(routes.contains_key("/healthz"));
    assert!(!routes.contains_key("/ws"));
}

#[test]
fn every_route_is_documented_with_its_methods() {
    let document = openapi();
    let documented = documented_routes(&document);
    let mut problems = Vec::new();
    for (path, methods) in gateway_routes() {
        match documented.get(&path) {
            None => problems.push(format!("{path} ({methods:?}) is not in docs/openapi.json")),
            Some(documented_methods) if documented_methods != &methods => problems.push(format!(
                "{path}: the router has {methods:?}, the document {documented_methods:?}"
            )),
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_documented_route_exists() {
    let routes = gateway_routes();
    let extra: Vec<String> = documented_routes(&openapi())
        .into_keys()
        .filter(|path| !routes.contains_key(path))
        .collect();
    assert!(
        extra.is_empty(),
        "documented but not routed: {extra:?} (routes: {:?})",
        routes.keys().collect::<Vec<_>>()
    );
}

fn collect_refs<'a>(value: &'a serde_json::Value, refs: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", serde_json::Value::String(target)) => refs.push(target),
                    _ => collect_refs(child, refs),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let document = openapi();
    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(!refs.is_empty());
    for target in refs {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{target} is not a local reference"));
        assert!(
            document.pointer(pointer).is_some(),
            "{target} does not resolve"
        );
    }
}

#[test]
fn api_errors_use_the_error_schema() {
    let document = openapi();
    for (path, item) in document["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1") {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let responses = operation["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} has no responses"));
            for (status, response) in responses {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                let response = match response["$ref"].as_str() {
                    Some(target) => document.pointer(target.trim_start_matches('#')).unwrap(),
                    None => response,
                };
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status} does not answer the Error schema"
                );
            }
        }
    }
}

#[test]
fn documented_enums_are_the_wire_names() {
    let document = openapi();
    let schemas = &document["components"]["schemas"];
    let codes = schemas["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode is an enum");
    let source = workspace_file("crates/parley-proto/src/error.rs");
    let declared = source
        .split("pub enum ErrorCode {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("ErrorCode declaration")
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("//") && line.ends_with(','))
        .count();
    assert_eq!(codes.len(), declared, "ErrorCode has {declared} variants");
    for code in codes {
        let parsed: parley_proto::ErrorCode = serde_json::from_value(code.clone())
            .unwrap_or_else(|error| panic!("{code} is not an ErrorCode: {error}"));
        assert_eq!(parsed.as_str(), code.as_str().unwrap());
    }
    for role in schemas["Role"]["enum"].as_array().expect("Role enum") {
        serde_json::from_value::<parley_proto::Role>(role.clone()).expect("a Role");
    }
    for kind in schemas["ConversationType"]["enum"]
        .as_array()
        .expect("ConversationType enum")
    {
        serde_json::from_value::<parley_proto::ConversationType>(kind.clone())
            .expect("a ConversationType");
    }
}
