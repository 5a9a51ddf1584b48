//! `/healthz`: the process answers. `/readyz`: the database and the directory both
//! answer, and if not, which one does not. Load balancers poll these.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use super::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let (database, directory) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()),
        tokio::time::timeout(CHECK_TIMEOUT, state.directory.ping()),
    );
    let database_up = matches!(database, Ok(Ok(())));
    let directory_up = matches!(directory, Ok(Ok(())));
    if !database_up {
        tracing::warn!(?database, "readiness: database down");
    }
    if !directory_up {
        tracing::warn!(?directory, "readiness: directory down");
    }
    let word = |up: bool| if up { "up" } else { "down" };
    let ready = database_up && directory_up;
    let down: Vec<&str> = [("database", database_up), ("directory", directory_up)]
        .into_iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| name)
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not ready" },
            "database": word(database_up),
            "directory": word(directory_up),
            "down": down,
        })),
    )
}
