//! Behaviour under load: the key warm-up and load shedding.

use crate::support::{InProcess, TOKEN};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use nitro_wallet::{
    api::{self, Limits},
    config::Config,
    server, warmup,
};
use std::{sync::Arc, sync::Mutex, time::Duration};
use tower::ServiceExt;

/// The system in process and a copy of its configuration, to build more state over the same
/// enclave and key store.
async fn system() -> (InProcess, Config) {
    let saved = Arc::new(Mutex::new(None));
    let sys = InProcess::with_config(256 * 1024, {
        let saved = saved.clone();
        move |config, _| *saved.lock().unwrap() = Some(config.clone())
    })
    .await;
    let config = saved.lock().unwrap().take().unwrap();
    (sys, config)
}

#[tokio::test]
async fn warm_up_sends_every_stored_key_to_the_enclave() {
    let (sys, config) = system().await;
    for _ in 0..3 {
        let (status, _) = sys.authed("POST", "/v1/keys", "{}").await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let state = server::state(&config).await.unwrap();
    assert!(state.enclave.readiness().await.ready);
    let pass = warmup::warm(&state.enclave, state.store.as_ref(), 2)
        .await
        .unwrap();
    assert_eq!(
        pass,
        warmup::Pass {
            loaded: 3,
            failed: 0
        }
    );
}

#[tokio::test]
async fn requests_beyond_the_limit_are_shed_with_503_and_retry_after() {
    let (_sys, config) = system().await;
    let state = server::state(&config).await.unwrap();
    let limits = |max_concurrent| Limits {
        body_bytes: 1024,
        request_timeout: Duration::from_secs(5),
        max_concurrent,
    };
    let get = || {
        Request::get("/v1/keys")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap()
    };
    // No slot at all: every request is refused at once, never queued.
    let full = api::router(state.clone(), limits(0));
    let response = full.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "overloaded");
    // A free slot serves.
    let open = api::router(state, limits(1));
    assert_eq!(open.oneshot(get()).await.unwrap().status(), StatusCode::OK);
}
