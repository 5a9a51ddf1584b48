//! The OIDC client both OIDC benches register and the authorization request they
//! make: one confidential, first-party client `bench`, RS256, whose redirect URI
//! is never visited (the code is read from the `Location` header).

use guichet::oidc::clients::{NewClient, register};
use guichet::store::{Store, unix_now};

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// Registers `bench` in `store`; its secret.
pub async fn register_bench(store: &Store) -> String {
    let client = NewClient {
        client_id: "bench".to_owned(),
        name: "Bench".to_owned(),
        public: false,
        redirect_uris: vec![REDIRECT.to_owned()],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        first_party: true,
        introspection: false,
        id_token_alg: "RS256".to_owned(),
    };
    register(store, client, unix_now())
        .await
        .expect("register")
        .expect("secret")
}

/// The authorization request of `bench` for `scope` at the Guichet at `base`.
pub fn authorize_url(base: &str, scope: &str) -> String {
    authorize_at(&format!("{base}/authorize"), scope)
}

/// The authorization request of `bench` for `scope` at `endpoint` (any provider's).
pub fn authorize_at(endpoint: &str, scope: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", "bench")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "s")
        .append_pair("nonce", "n")
        .finish();
    format!("{endpoint}?{query}")
}
