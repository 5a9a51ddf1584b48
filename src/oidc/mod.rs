//! The OpenID Connect provider: signing keys, registered clients, claims, and the
//! endpoints the ENT, Moodle and webmail use. Its pages (login) are Guichet's own,
//! and it shares Guichet's session.

mod authorize;
pub(crate) mod backchannel;
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

/// The OIDC endpoints. Clients post to the token endpoint from their back ends, so
/// only the student's own answers (consent) go through the CSRF check.
pub fn routes(state: AppState) -> Router<AppState> {
    // These pages may ask the student something (sign out? share?) with a form.
    let asking = Router::new()
        .route("/end_session", get(logout::get).post(logout::post))
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::web::csrf::provide,
        ));
    let answering = Router::new()
        .route(
            "/authorize/consent",
            axum::routing::post(authorize::consent),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::web::csrf::protect,
        ));
    Router::new()
        .merge(asking)
        .merge(answering)
        .route(
            "/.well-known/openid-configuration",
            get(userinfo::discovery),
        )
        .route("/jwks.json", get(userinfo::jwks))
        .route("/token", axum::routing::post(token::token))
        .route("/userinfo", get(userinfo::get).post(userinfo::post))
        .route("/introspect", axum::routing::post(introspect::introspect))
        .route("/revoke", axum::routing::post(introspect::revoke))
}
