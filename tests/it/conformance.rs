//! The OpenID Foundation's four OP plans (Basic, Config, RP-Initiated Logout,
//! Back-Channel Logout), played by the `conformance/` runner against a real
//! Guichet on a real slapd, on both SQL backends. Every module passes, and the
//! only skips are the features Guichet does not offer.

use crate::common::oidc::{confidential, issuer, registered};
use crate::common::{ACTIVE_UID, Backend, DEMO_PASSWORD, TestApp, both_backends};
use guichet::oidc::clients::NewClient;
use guichet_conformance::{Client, Plan, Receiver, Target, Verdict, run};

/// A running Guichet with the runner's two clients registered.
async fn target(backend: Backend) -> (TestApp, Receiver, Target) {
    let app = TestApp::start_published(backend).await;
    let receiver = Receiver::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut clients = Vec::new();
    for id in ["conformance", "conformance-2"] {
        let new = NewClient {
            post_logout_redirect_uris: vec![receiver.post_logout_redirect_uri()],
            backchannel_logout_uri: Some(receiver.backchannel_logout_uri()),
            ..confidential(id, &receiver.redirect_uri())
        };
        let secret = registered(&app, new)
            .await
            .expect("a confidential client has a secret");
        clients.push(Client {
            id: id.to_owned(),
            secret,
        });
    }
    let target = Target {
        issuer: issuer(&app),
        client2: clients.pop().unwrap(),
        client: clients.pop().unwrap(),
        login: ACTIVE_UID.to_owned(),
        password: DEMO_PASSWORD.to_owned(),
    };
    (app, receiver, target)
}

async fn the_four_oidf_op_plans_pass(backend: Backend) {
    let (app, receiver, target) = target(backend).await;
    let report = run(&target, &receiver, &Plan::ALL, |outcome| {
        println!("{outcome}")
    })
    .await;
    println!("{}", report.summary());
    let failures: Vec<String> = report
        .outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Fail(_)))
        .map(ToString::to_string)
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    let skipped: Vec<&str> = report
        .outcomes
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Skip(_)))
        .map(|o| o.module)
        .collect();
    assert_eq!(
        skipped,
        [
            "oidcc-scope-address",
            "oidcc-scope-phone",
            "oidcc-idtoken-unsigned"
        ],
        "only what Guichet does not offer is skipped"
    );
    assert_eq!(report.passed(), 52 - 3);
    app.shutdown().await;
}

/// The runner is no rubber stamp: with a wrong client secret every module that
/// redeems a code fails, naming the provider's refusal, while discovery passes.
async fn the_runner_fails_a_provider_that_refuses_the_client(backend: Backend) {
    let (app, receiver, mut target) = target(backend).await;
    target.client.secret = "not-the-secret".to_owned();
    let report = run(&target, &receiver, &[Plan::Basic, Plan::Config], |_| {}).await;
    let verdict = |module: &str| {
        report
            .outcomes
            .iter()
            .find(|o| o.module == module)
            .map(|o| o.verdict.clone())
            .unwrap()
    };
    match verdict("oidcc-server") {
        Verdict::Fail(why) => assert!(why.contains("invalid_client"), "{why}"),
        other => panic!("oidcc-server: {other:?}"),
    }
    assert!(matches!(verdict("oidcc-refresh-token"), Verdict::Fail(_)));
    assert_eq!(
        verdict("oidcc-discovery-endpoint-verification"),
        Verdict::Pass
    );
    // Errors that never reach the token endpoint still pass.
    assert_eq!(
        verdict("oidcc-ensure-registered-redirect-uri"),
        Verdict::Pass
    );
    assert!(report.failed() >= 25, "{}", report.summary());
    app.shutdown().await;
}

both_backends!(
    the_four_oidf_op_plans_pass,
    the_runner_fails_a_provider_that_refuses_the_client
);
