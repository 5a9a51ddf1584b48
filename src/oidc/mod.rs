//! The OpenID Connect provider: signing keys, registered clients, claims, and the
//! endpoints the ENT, Moodle and webmail use. Its pages (login) are Guichet's own,
//! and it shares Guichet's session.

mod authorize;
pub mod claims;
pub mod clients;
mod error;
mod introspect;
pub mod keys;
pub mod logout;
mod token;
mod userinfo;

use axum::Router;
use axum::routing::get;

pub use error::OAuthError;
pub use token::sid;

use crate::web::AppState;

/// The issuer: the public URL without its trailing slash.
pub fn issuer(state: &AppState) -> String {
    state
        .settings
        .server
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

/// The OIDC endpoints. No CSRF layer: clients post to the token endpoint from their
/// back ends, and the authorization endpoint only reads the session.
pub fn routes(state: AppState) -> Router<AppState> {
    // The end-session page may ask the student to confirm, with a protected form.
    let end_session = Router::new()
        .route("/end_session", get(logout::get).post(logout::post))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::web::csrf::provide,
        ));
    Router::new()
        .merge(end_session)
        .route(
            "/.well-known/openid-configuration",
            get(userinfo::discovery),
        )
        .route("/jwks.json", get(userinfo::jwks))
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route("/token", axum::routing::post(token::token))
        .route("/userinfo", get(userinfo::get).post(userinfo::post))
        .route("/introspect", axum::routing::post(introspect::introspect))
        .route("/revoke", axum::routing::post(introspect::revoke))
}
