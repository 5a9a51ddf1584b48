//! Rate-limit counters in SQL, so every instance enforces the same limit: one row per
//! key and fixed window, incremented with an upsert.

use super::{Store, StoreError};

impl Store {
    /// Counts one hit on `bucket` in the window containing `now`; returns the count
    /// including this hit.
    pub async fn hit(&self, bucket: &str, window_secs: i64, now: i64) -> Result<i64, StoreError> {
        let window_start = now - now.rem_euclid(window_secs.max(1));
        let hits: i64 = sqlx::query_scalar(
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
             ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1 \
             RETURNING hits",
        )
        .bind(bucket)
        .bind(window_start)
        .fetch_one(self.pool())
        .await?;
        Ok(hits)
    }

    /// Takes back one hit on `bucket` in the window containing `now` (an attempt
    /// that turned out not to count, such as a successful sign-in).
    pub async fn unhit(&self, bucket: &str, window_secs: i64, now: i64) -> Result<(), StoreError> {
        let window_start = now - now.rem_euclid(window_secs.max(1));
        sqlx::query(
            "UPDATE rate_limits SET hits = hits - 1 \
             WHERE bucket = $1 AND window_start = $2 AND hits > 0",
        )
        .bind(bucket)
        .bind(window_start)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Drops windows that ended before `before`.
    pub async fn forget_hits(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
