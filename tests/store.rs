//! The SQL store on both backends: the same migrations, the same queries.

mod common;

use common::{Backend, TestDatabase};
use guichet::config::Settings;
use guichet::store::{Store, StoreError};

async fn connect(database: &TestDatabase) -> Store {
    let text = common::settings_text(
        "ldapi://%2Ftmp%2Fnone",
        &database.url,
        std::path::Path::new("/tmp"),
        "paris-cite",
    );
    let settings = Settings::from_toml(&text).unwrap();
    Store::connect(&settings.database).await.unwrap()
}

async fn migrations_create_the_schema_and_can_run_again(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = connect(&database).await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    for table in ["one_time_tokens", "outbox", "rate_limits", "audit_events"] {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(store.pool())
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        assert_eq!(count, 0);
    }
    // `$n` placeholders work on both backends.
    sqlx::query("INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, $3)")
        .bind("ip:192.0.2.1")
        .bind(1_700_000_000_i64)
        .bind(1_i64)
        .execute(store.pool())
        .await
        .unwrap();
    let hits: i64 = sqlx::query_scalar("SELECT hits FROM rate_limits WHERE bucket = $1")
        .bind("ip:192.0.2.1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(hits, 1);
    store.close().await;
}

async fn a_second_instance_sees_the_same_schema(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let (first, second) = (connect(&database).await, connect(&database).await);
    // Two instances starting at once both migrate; neither fails.
    let (a, b) = tokio::join!(first.migrate(), second.migrate());
    a.unwrap();
    b.unwrap();
    second.ping().await.unwrap();
}

async fn ping_reports_an_unreachable_database(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = connect(&database).await;
    store.ping().await.unwrap();
    match backend {
        Backend::Postgres => database.drop_postgres_now().await,
        Backend::Sqlite => store.close().await,
    }
    let error = store.ping().await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

both_backends!(
    migrations_create_the_schema_and_can_run_again,
    a_second_instance_sees_the_same_schema,
    ping_reports_an_unreachable_database,
);

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_start_error() {
    let text = common::settings_text(
        "ldapi://%2Ftmp%2Fnone",
        "postgres://postgres@127.0.0.1:1/nothing",
        std::path::Path::new("/tmp"),
        "paris-cite",
    );
    let settings = Settings::from_toml(&text).unwrap();
    let error = Store::connect(&settings.database).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}
