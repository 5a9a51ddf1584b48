//! The endpoints clients call from their back ends: token, introspection,
//! revocation. Each answers JSON, refusals included.

use axum::Json;
use axum::extract::{Form, FromRequest, Request, State};
use axum::http::header::{AUTHORIZATION, PRAGMA};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::no_store;
use crate::oidc::OAuthError;
use crate::oidc::protocol::{ClientRequest, Params};
use crate::oidc::provider::Provider;
use crate::web::client::Client;
use crate::web::{AppState, Frame};

/// A form body, or the JSON `invalid_request` an OAuth client expects (RFC 6749
/// §5.2) rather than axum's plain-text 415 or 422.
pub struct OAuthForm(Params);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Form::<Params>::from_request(request, state)
            .await
            .map(|Form(params)| OAuthForm(params))
            .map_err(|rejection| {
                tracing::debug!(%rejection, "token endpoint body refused");
                OAuthError::invalid_request(
                    "the body must be an application/x-www-form-urlencoded form",
                )
            })
    }
}

/// The form and the `Authorization` header; a header that is not text is kept
/// empty, so that it is refused rather than ignored.
fn client_request(headers: &HeaderMap, params: Params) -> ClientRequest {
    let authorization = headers
        .get(AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    ClientRequest {
        params,
        authorization,
    }
}

pub async fn token(
    State(state): State<AppState>,
    peer: Client,
    frame: Frame,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    let provider = Provider::new(&state.app, frame.origin(peer));
    match provider.token(&client_request(&headers, params)).await {
        Ok(tokens) => {
            let mut response = no_store(Json(tokens));
            response
                .headers_mut()
                .insert(PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => error.into_response(),
    }
}

pub async fn introspect(
    State(state): State<AppState>,
    peer: Client,
    frame: Frame,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    let provider = Provider::new(&state.app, frame.origin(peer));
    match provider.introspect(&client_request(&headers, params)).await {
        Ok(answer) => no_store(Json(answer)),
        Err(error) => error.into_response(),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    peer: Client,
    frame: Frame,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    let provider = Provider::new(&state.app, frame.origin(peer));
    match provider.revoke(&client_request(&headers, params)).await {
        Ok(()) => Json(json!({})).into_response(),
        Err(error) => error.into_response(),
    }
}
