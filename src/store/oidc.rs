//! What the OpenID Connect provider keeps: signing keys, registered clients, codes
//! and tokens. Codes and tokens are single-use or rotating; each use is one
//! conditional UPDATE, so two requests racing with the same value cannot both win.

use sqlx::Row;

use super::{Store, StoreError, StoreTx};
use crate::domain::TokenHash;

/// A signing key as stored. `private_der` is base64 DER (PKCS#1 for RSA, PKCS#8
/// otherwise); it never leaves the process and is never printed.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub private_der: String,
    pub public_jwk: String,
    pub created_at: i64,
    /// When it starts signing: later than its creation when it was published ahead.
    pub signs_from: i64,
    /// When it stops signing (a newer key took over).
    pub retired_at: Option<i64>,
    /// When a retired key leaves the JWKS.
    pub published_until: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A registered client.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientRecord {
    pub client_id: String,
    pub name: String,
    #[serde(skip)]
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub first_party: bool,
    /// A resource server (Dovecot): may introspect other clients' tokens.
    pub introspection: bool,
    pub id_token_alg: String,
    pub created_at: i64,
}

/// An authorization code's grant, as the token endpoint reads it.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub client_id: String,
    pub account_dn: String,
    pub session_hash: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub expires_at: i64,
    /// The credential epoch of the session it came from.
    pub epoch: i64,
}

/// What a presented code is.
#[derive(Debug, Clone)]
pub enum Redemption {
    /// Not used yet: spent when its tokens are stored.
    Redeemable(CodeRecord),
    /// Used before by its client: whatever it issued may be in the wrong hands.
    Replayed,
    /// Never issued, or issued to another client.
    Unknown,
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }

    fn parse(raw: &str) -> Result<TokenKind, StoreError> {
        match raw {
            "access" => Ok(TokenKind::Access),
            "refresh" => Ok(TokenKind::Refresh),
            other => Err(StoreError::Query(format!("unknown token kind {other:?}"))),
        }
    }
}

/// A token's grant.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub kind: TokenKind,
    pub grant_id: String,
    pub client_id: String,
    pub account_dn: String,
    pub session_hash: String,
    pub scope: String,
    pub auth_time: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The credential epoch it was issued under; tokens issued from it carry it on.
    pub epoch: i64,
    /// Whether that epoch is still the account's: a password changed since ends it.
    pub current: bool,
}

impl TokenRecord {
    /// Neither revoked, expired, nor overtaken by a change of password.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now && self.current
    }
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub hash: &'a TokenHash,
    pub kind: TokenKind,
    pub grant_id: &'a str,
    pub client_id: &'a str,
    pub account_dn: &'a str,
    pub session_hash: &'a str,
    pub scope: &'a str,
    pub auth_time: i64,
    pub expires_at: i64,
    pub epoch: i64,
}

fn uris(raw: String) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(&raw).map_err(|e| StoreError::Query(format!("stored URIs: {e}")))
}

impl Store {
    pub async fn add_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        self.write(
            sqlx::query(
                "INSERT INTO oidc_keys (kid, alg, private_der, public_jwk, created_at, signs_from) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.private_der)
            .bind(&key.public_jwk)
            .bind(key.created_at)
            .bind(key.signs_from),
        )
        .await?;
        Ok(())
    }

    /// Replaces a key's stored private part (sealing the keys of an older start).
    pub async fn replace_private_key(
        &self,
        kid: &str,
        private_der: &str,
    ) -> Result<(), StoreError> {
        self.write(
            sqlx::query("UPDATE oidc_keys SET private_der = $1 WHERE kid = $2")
                .bind(private_der)
                .bind(kid),
        )
        .await?;
        Ok(())
    }

    /// Retires the keys of `alg` except `keep` that would sign past `retired_at`:
    /// they stop signing then, and stay published until `published_until`.
    pub async fn retire_keys(
        &self,
        alg: &str,
        keep: &str,
        retired_at: i64,
        published_until: i64,
    ) -> Result<u64, StoreError> {
        let done = self
            .write(
                sqlx::query(
                    "UPDATE oidc_keys SET retired_at = $1, published_until = $2 \
             WHERE alg = $3 AND kid <> $4 AND (retired_at IS NULL OR retired_at > $1)",
                )
                .bind(retired_at)
                .bind(published_until)
                .bind(alg)
                .bind(keep),
            )
            .await?;
        Ok(done.rows_affected())
    }

    /// Active keys (signing or published ahead), and retired ones still
    /// published, newest first.
    pub async fn published_keys(&self, now: i64) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_der, public_jwk, created_at, signs_from, retired_at, \
             published_until FROM oidc_keys \
             WHERE retired_at IS NULL OR published_until > $1 ORDER BY created_at DESC, kid",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredKey {
                    kid: row.try_get("kid")?,
                    alg: row.try_get("alg")?,
                    private_der: row.try_get("private_der")?,
                    public_jwk: row.try_get("public_jwk")?,
                    created_at: row.try_get("created_at")?,
                    signs_from: row.try_get("signs_from")?,
                    retired_at: row.try_get("retired_at")?,
                    published_until: row.try_get("published_until")?,
                })
            })
            .collect()
    }

    pub async fn add_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        let to_json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let done = self.write(sqlx::query(
            "INSERT INTO oidc_clients (client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, \
             backchannel_logout_uri, first_party, id_token_alg, created_at, introspection) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (client_id) DO NOTHING",
        )
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(client.secret_hash.as_deref())
        .bind(to_json(&client.redirect_uris))
        .bind(to_json(&client.post_logout_redirect_uris))
        .bind(client.backchannel_logout_uri.as_deref())
        .bind(i64::from(client.first_party))
        .bind(&client.id_token_alg)
        .bind(client.created_at)
        .bind(i64::from(client.introspection))
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.query_clients("", "").await
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        Ok(self
            .query_clients("WHERE client_id = $1", client_id)
            .await?
            .pop())
    }

    async fn query_clients(
        &self,
        filter: &str,
        value: &str,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let sql = format!(
            "SELECT client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, \
             backchannel_logout_uri, first_party, id_token_alg, created_at, introspection \
             FROM oidc_clients {filter} \
             ORDER BY client_id"
        );
        let mut query = sqlx::query(&sql);
        if !filter.is_empty() {
            query = query.bind(value);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(ClientRecord {
                    client_id: row.try_get("client_id")?,
                    name: row.try_get("name")?,
                    secret_hash: row.try_get("secret_hash")?,
                    redirect_uris: uris(row.try_get("redirect_uris")?)?,
                    post_logout_redirect_uris: uris(row.try_get("post_logout_redirect_uris")?)?,
                    backchannel_logout_uri: row.try_get("backchannel_logout_uri")?,
                    first_party: row.try_get::<i64, _>("first_party")? != 0,
                    introspection: row.try_get::<i64, _>("introspection")? != 0,
                    id_token_alg: row.try_get("id_token_alg")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn remove_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let done = self
            .write(sqlx::query("DELETE FROM oidc_clients WHERE client_id = $1").bind(client_id))
            .await?;
        self.write(sqlx::query(
            "UPDATE oidc_tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
        )
        .bind(super::unix_now())
        .bind(client_id)
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn add_code(
        &self,
        hash: &TokenHash,
        code: &CodeRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(sqlx::query(
            "INSERT INTO oidc_codes (code_hash, client_id, account_dn, session_hash, redirect_uri, scope, nonce, \
             code_challenge, auth_time, created_at, expires_at, epoch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(hash.as_str())
        .bind(&code.client_id)
        .bind(&code.account_dn)
        .bind(&code.session_hash)
        .bind(&code.redirect_uri)
        .bind(&code.scope)
        .bind(code.nonce.as_deref())
        .bind(code.code_challenge.as_deref())
        .bind(code.auth_time)
        .bind(now)
        .bind(code.expires_at)
        .bind(code.epoch)
        )
        .await?;
        Ok(())
    }

    /// The code `client_id` presents: only the client the code was issued to
    /// finds it, so someone else holding a leaked code cannot burn it.
    pub async fn find_code(
        &self,
        hash: &TokenHash,
        client_id: &str,
    ) -> Result<Redemption, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, account_dn, session_hash, redirect_uri, scope, nonce, code_challenge, \
             auth_time, expires_at, epoch, used_at FROM oidc_codes WHERE code_hash = $1 AND client_id = $2",
        )
        .bind(hash.as_str())
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(Redemption::Unknown);
        };
        if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
            return Ok(Redemption::Replayed);
        }
        Ok(Redemption::Redeemable(CodeRecord {
            client_id: row.try_get("client_id")?,
            account_dn: row.try_get("account_dn")?,
            session_hash: row.try_get("session_hash")?,
            redirect_uri: row.try_get("redirect_uri")?,
            scope: row.try_get("scope")?,
            nonce: row.try_get("nonce")?,
            code_challenge: row.try_get("code_challenge")?,
            auth_time: row.try_get("auth_time")?,
            expires_at: row.try_get("expires_at")?,
            epoch: row.try_get("epoch")?,
        }))
    }

    /// Spends a code that gives nothing (expired, presented wrongly): it cannot
    /// be tried again.
    pub async fn spend_code(
        &self,
        hash: &TokenHash,
        client_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        spend_code(self.pool(), hash, client_id, now).await?;
        Ok(())
    }

    pub async fn token(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!(
            "SELECT kind, grant_id, client_id, account_dn, session_hash, scope, auth_time, expires_at, rotated_at, revoked_at, \
             epoch, CASE WHEN {} THEN 1 ELSE 0 END AS current FROM oidc_tokens WHERE token_hash = $1",
            super::sessions::current_epoch("oidc_tokens")
        );
        let row = sqlx::query(&sql)
            .bind(hash.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| {
            Ok(TokenRecord {
                kind: TokenKind::parse(&row.try_get::<String, _>("kind")?)?,
                grant_id: row.try_get("grant_id")?,
                client_id: row.try_get("client_id")?,
                account_dn: row.try_get("account_dn")?,
                session_hash: row.try_get("session_hash")?,
                scope: row.try_get("scope")?,
                auth_time: row.try_get("auth_time")?,
                expires_at: row.try_get("expires_at")?,
                rotated_at: row.try_get("rotated_at")?,
                revoked_at: row.try_get("revoked_at")?,
                epoch: row.try_get("epoch")?,
                current: row.try_get::<i64, _>("current")? == 1,
            })
        })
        .transpose()
    }

    pub async fn revoke_token(&self, hash: &TokenHash, now: i64) -> Result<(), StoreError> {
        self.write(sqlx::query(
            "UPDATE oidc_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(hash.as_str())
        )
        .await?;
        Ok(())
    }

    /// Whether the student agreed to share `scope` (every scope in it) with the client.
    pub async fn has_consent(
        &self,
        account_dn: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<bool, StoreError> {
        let granted: Option<String> = sqlx::query_scalar(
            "SELECT scope FROM oidc_consents WHERE account_dn = $1 AND client_id = $2",
        )
        .bind(account_dn)
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(granted.is_some_and(|granted| {
            let granted: Vec<&str> = granted.split(' ').collect();
            scope.split(' ').all(|s| granted.contains(&s))
        }))
    }

    pub async fn add_consent(
        &self,
        account_dn: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(sqlx::query(
            "INSERT INTO oidc_consents (account_dn, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_dn, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(account_dn)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        )
        .await?;
        Ok(())
    }

    /// Revokes every token of a grant.
    /// Revokes every token of a grant, and marks the grant so that tokens stored
    /// for it afterwards are revoked too ([`Store::grant_is_revoked`]).
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<u64, StoreError> {
        self.write(
            sqlx::query(
                "INSERT INTO oidc_revoked_grants (grant_id, revoked_at) VALUES ($1, $2) \
             ON CONFLICT (grant_id) DO NOTHING",
            )
            .bind(grant_id)
            .bind(now),
        )
        .await?;
        let done = self.write(sqlx::query(
            "UPDATE oidc_tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(grant_id)
        )
        .await?;
        Ok(done.rows_affected())
    }

    /// Whether the grant was revoked by a replay.
    pub async fn grant_is_revoked(&self, grant_id: &str) -> Result<bool, StoreError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT grant_id FROM oidc_revoked_grants WHERE grant_id = $1")
                .bind(grant_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(found.is_some())
    }
}

/// Marks a code used; false if it was already.
async fn spend_code<'c>(
    db: impl sqlx::Executor<'c, Database = sqlx::Any>,
    hash: &TokenHash,
    client_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE oidc_codes SET used_at = $1 WHERE code_hash = $2 AND client_id = $3 AND used_at IS NULL",
    )
    .bind(now)
    .bind(hash.as_str())
    .bind(client_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl StoreTx {
    /// Spends a code as its tokens are stored; false if another redemption
    /// spent it first (a replay, which the caller answers by revoking the grant).
    pub async fn spend_code(
        &mut self,
        hash: &TokenHash,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        spend_code(self.conn(), hash, client_id, now).await
    }

    /// Marks a refresh token rotated; false if it was rotated or revoked already
    /// (a replay, which the caller answers by revoking the grant).
    pub async fn rotate_token(&mut self, hash: &TokenHash, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE oidc_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(hash.as_str())
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn add_token(&mut self, token: &NewToken<'_>, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oidc_tokens (token_hash, kind, grant_id, client_id, account_dn, session_hash, scope, auth_time, \
             created_at, expires_at, epoch) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(token.hash.as_str())
        .bind(token.kind.as_str())
        .bind(token.grant_id)
        .bind(token.client_id)
        .bind(token.account_dn)
        .bind(token.session_hash)
        .bind(token.scope)
        .bind(token.auth_time)
        .bind(now)
        .bind(token.expires_at)
        .bind(token.epoch)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Locks the session's row if it is live and of the current epoch; false if it
    /// is not. Tokens stored in the same transaction are then either seen by a
    /// sign-out that commits later (revoked, their client told), or never committed:
    /// a sign-out racing a code exchange cannot leave the exchange's tokens alive.
    pub async fn hold_session(&mut self, id_hash: &str, now: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE sso_sessions SET last_seen_at = last_seen_at \
             WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2 AND {}",
            super::sessions::current_epoch("sso_sessions")
        );
        let done = sqlx::query(&sql)
            .bind(id_hash)
            .bind(now)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
