//! The OpenAPI document: what `GET /openapi.json` serves is `docs/openapi.json` byte for byte,
//! and it documents every route of the router, no more, no fewer.
//!
//! `UPDATE_OPENAPI=1 cargo test -p nitro-wallet --test it openapi` rewrites the checked-in
//! file from the code (then review the diff and commit it).

use crate::support::InProcess;
use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};
use tower::ServiceExt;

fn checked_in() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .ancestors()
        .nth(2)
        .expect("crates/host is two levels down");
    root.join("docs/openapi.json")
}

#[tokio::test]
async fn the_served_document_is_the_checked_in_one() {
    let sys = InProcess::start().await;
    let request = Request::get("/openapi.json").body(Body::empty()).unwrap();
    let response = sys.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "served without a token");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let served = String::from_utf8(bytes.to_vec()).unwrap();
    let path = checked_in();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &served).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let file = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        file == served,
        "{} differs from the served document: regenerate it with \
         `UPDATE_OPENAPI=1 cargo test -p nitro-wallet --test it openapi` and review the diff",
        path.display()
    );
    let document: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// `(METHOD, /path/{param})` of every operation the document describes.
fn documented() -> BTreeSet<(String, String)> {
    let document: serde_json::Value =
        serde_json::from_str(nitro_wallet::api::openapi::document()).unwrap();
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

/// `(METHOD, /path/{param})` of every route the router serves, read from the source of
/// `api/mod.rs` and `api/rpc.rs`: axum cannot list a router's routes, and reading the source
/// catches a route added without its documentation.
fn routed() -> BTreeSet<(String, String)> {
    let api = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut routes = BTreeSet::new();
    for file in ["mod.rs", "rpc.rs"] {
        let source = std::fs::read_to_string(api.join(file)).unwrap();
        routes.extend(routes_in(&source));
    }
    routes
}

/// The routes of one file: each `.route("path", method(…).method(…))`, prefixed with the
/// `.nest("prefix", router)` of the `let router = Router::new()…;` it is declared in.
fn routes_in(source: &str) -> Vec<(String, String)> {
    let nested: Vec<(&str, &str)> = find_all(source, ".nest(\"")
        .filter_map(|at| {
            let rest = &source[at + ".nest(\"".len()..];
            let (prefix, rest) = rest.split_once('"')?;
            let name = rest.trim_start_matches([',', ' ']).split(')').next()?;
            Some((name.trim(), prefix))
        })
        .collect();
    let prefix_at = |at: usize| -> &str {
        nested
            .iter()
            .find(|(name, _)| {
                let start = source.find(&format!("let {name} = Router::new()"));
                start.is_some_and(|s| s < at && !source[s..at].contains(';'))
            })
            .map_or("", |(_, prefix)| prefix)
    };
    let mut routes = Vec::new();
    for at in find_all(source, ".route(") {
        let args = balanced(&source[at + ".route(".len()..]);
        let path = args
            .trim_start()
            .strip_prefix('"')
            .and_then(|p| p.split('"').next())
            .expect("a route path literal");
        let methods = ["get", "post", "put", "patch", "delete"]
            .into_iter()
            .filter(|m| {
                find_all(args, &format!("{m}(")).any(|i| {
                    i == 0
                        || !args.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && args.as_bytes()[i - 1] != b'_'
                })
            })
            .collect::<Vec<_>>();
        assert!(!methods.is_empty(), "no method found for route {path}");
        for method in methods {
            routes.push((method.to_uppercase(), format!("{}{path}", prefix_at(at))));
        }
    }
    routes
}

fn find_all<'a>(haystack: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    haystack.match_indices(needle).map(|(i, _)| i)
}

/// The text up to the parenthesis that closes an opened one.
fn balanced(text: &str) -> &str {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after .route(");
}

#[test]
fn every_route_is_documented_and_every_operation_routed() {
    let routed = routed();
    let documented = documented();
    // Sanity: the source reading finds what is known to be there.
    assert!(routed.contains(&("PUT".into(), "/v1/keys/{address}/policy".into())));
    assert!(routed.contains(&("GET".into(), "/v1/keys".into())));
    assert!(routed.contains(&("POST".into(), "/rpc/{token}".into())));
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes without documentation: {undocumented:?}; documented but not routed: \
         {unrouted:?} (add #[utoipa::path] to the handler and list it in api/openapi.rs)"
    );
}
