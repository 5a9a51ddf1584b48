//! `guichet dev`: the demo on localhost.

use super::CliError;
use crate::dev::{self, DevError, DevOptions};
use crate::{server, telemetry};

pub async fn run(options: DevOptions) -> Result<(), CliError> {
    // slapadd and slapd start-up block; they take well under a second.
    let (env, settings) =
        tokio::task::block_in_place(|| dev::prepare(&options)).map_err(|e| match e {
            DevError::Config(e) => CliError::Config(e),
            other => CliError::failed(other),
        })?;
    telemetry::init(&settings.log);
    let listen = settings.server.listen;
    let listener = server::bind(listen)
        .await
        .map_err(|e| CliError::Failed(format!("{e} (choose another with --port)")))?;
    let addr = listener.local_addr().unwrap_or(listen);
    let state = server::prepare_to_serve(settings)
        .await
        .map_err(CliError::failed)?;
    crate::web::dev_app::register_client(&state)
        .await
        .map_err(|e| CliError::Failed(format!("demo client: {e}")))?;
    crate::web::dev_cas_app::register_service(&state)
        .await
        .map_err(|e| CliError::Failed(format!("demo CAS service: {e}")))?;
    let shutdown = server::shutdown_signal();
    println!("{}", dev::banner(&env, addr));
    let result = server::run(listener, state, shutdown).await;
    // The private slapd stops only once the server has.
    drop(env);
    result.map_err(CliError::failed)
}
