//! Rate-limit counters in SQL, so every instance enforces the same limit: one row per
//! bucket and fixed window. A count is taken with a conditional upsert, so parallel
//! attempts can never take more than the limit allows, and a refused attempt adds
//! nothing to it.

use super::{Store, StoreError};

/// What one bucket holds in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub hits: i64,
    /// When the last counted attempt happened (seconds since the epoch).
    pub last_at: i64,
}

impl Store {
    /// Counts one attempt on `bucket` in `window_start`'s window if it holds fewer
    /// than `max`; says whether it did.
    pub async fn take_hit(
        &self,
        bucket: &str,
        window_start: i64,
        max: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.upsert_hit(bucket, window_start, now, "rate_limits.hits < $4", max)
            .await
    }

    /// Counts one attempt if the bucket still holds exactly `seen` (what the caller
    /// read and judged): a concurrent attempt in between makes this one refused.
    pub async fn take_hit_after(
        &self,
        bucket: &str,
        window_start: i64,
        seen: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.upsert_hit(bucket, window_start, now, "rate_limits.hits = $4", seen)
            .await
    }

    async fn upsert_hit(
        &self,
        bucket: &str,
        window_start: i64,
        now: i64,
        condition: &str,
        bound: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO rate_limits (bucket, window_start, hits, last_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (bucket, window_start) DO UPDATE \
             SET hits = rate_limits.hits + 1, last_at = $3 WHERE {condition} \
             RETURNING hits"
        );
        let taken: Option<i64> = sqlx::query_scalar(&sql)
            .bind(bucket)
            .bind(window_start)
            .bind(now)
            .bind(bound)
            .fetch_optional(self.pool())
            .await?;
        Ok(taken.is_some())
    }

    /// What `bucket` holds in `window_start`'s window.
    pub async fn count_hits(&self, bucket: &str, window_start: i64) -> Result<Count, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT hits, last_at FROM rate_limits WHERE bucket = $1 AND window_start = $2",
        )
        .bind(bucket)
        .bind(window_start)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map_or_else(Count::default, |(hits, last_at)| Count { hits, last_at }))
    }

    /// Takes back one counted attempt (one that turned out not to count, such as a
    /// successful sign-in).
    pub async fn give_back_hit(&self, bucket: &str, window_start: i64) -> Result<(), StoreError> {
        self.write(
            sqlx::query(
                "UPDATE rate_limits SET hits = hits - 1 \
             WHERE bucket = $1 AND window_start = $2 AND hits > 0",
            )
            .bind(bucket)
            .bind(window_start),
        )
        .await?;
        Ok(())
    }

    /// Notes a refusal on `bucket`; returns how many the window has seen, this one
    /// included (0 if the bucket has no row).
    pub async fn note_refusal(&self, bucket: &str, window_start: i64) -> Result<i64, StoreError> {
        let refused: Option<i64> = sqlx::query_scalar(
            "UPDATE rate_limits SET refused = refused + 1 \
             WHERE bucket = $1 AND window_start = $2 RETURNING refused",
        )
        .bind(bucket)
        .bind(window_start)
        .fetch_optional(self.pool())
        .await?;
        Ok(refused.unwrap_or(0))
    }

    /// Drops windows that ended before `before`.
    pub async fn forget_hits(&self, before: i64) -> Result<u64, StoreError> {
        let done = self
            .write(sqlx::query("DELETE FROM rate_limits WHERE window_start < $1").bind(before))
            .await?;
        Ok(done.rows_affected())
    }

    /// Trusts the browser `device_hash` for the account `login_digest` until
    /// `expires_at` (a sign-in there succeeded).
    pub async fn trust_device(
        &self,
        device_hash: &str,
        login_digest: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.write(sqlx::query(
            "INSERT INTO trusted_devices (device_hash, login_digest, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (device_hash, login_digest) DO UPDATE SET expires_at = $3",
        )
        .bind(device_hash)
        .bind(login_digest)
        .bind(expires_at)
        )
        .await?;
        Ok(())
    }

    /// Trusts the browser `device_hash` no more, for any account (its cookie was
    /// replaced, or it guessed too often).
    pub async fn forget_device(&self, device_hash: &str) -> Result<(), StoreError> {
        self.write(
            sqlx::query("DELETE FROM trusted_devices WHERE device_hash = $1").bind(device_hash),
        )
        .await?;
        Ok(())
    }

    /// Whether the browser `device_hash` signed in to `login_digest` and is still trusted.
    pub async fn is_trusted_device(
        &self,
        device_hash: &str,
        login_digest: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM trusted_devices \
             WHERE device_hash = $1 AND login_digest = $2 AND expires_at > $3",
        )
        .bind(device_hash)
        .bind(login_digest)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }
}
