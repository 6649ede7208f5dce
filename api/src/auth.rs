//! Bearer tokens: HS256 JWTs with issuer `checkout-crm` and a required `exp`.
//! A token is only as good as the user it names: the user must still exist in the
//! account, and the role comes from the database, not the token.

use std::time::Duration;

use entity::{Caller, Role, database::Database, tenants, users};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

pub const ISSUER: &str = "checkout-crm";
/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub account: String,
    pub role: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    /// The session a `login` token belongs to; it must still be live. Tokens made by the
    /// CLI have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the token's user no longer exists")]
    UnknownUser,
    #[error("the session has ended: sign in again")]
    SessionEnded,
    #[error("authentication is unavailable: {0}")]
    Unavailable(String),
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn mint(&self, user_id: &str, account_id: &str, role: Role, ttl: Duration) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            account: account_id.to_owned(),
            role: role.as_str().to_owned(),
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            sid: None,
        };
        self.sign(&claims)
    }

    /// A token for a signed-in session, expiring with it.
    pub fn mint_session(&self, session: &entity::tables::session::Model, role: Role) -> String {
        let claims = Claims {
            sub: session.user_id.clone(),
            account: session.account_id.clone(),
            role: role.as_str().to_owned(),
            iss: ISSUER.to_owned(),
            iat: session.created_at / 1000,
            exp: session.expires_at / 1000,
            sid: Some(session.id.clone()),
        };
        self.sign(&claims)
    }

    fn sign(&self, claims: &Claims) -> String {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of in-memory claims cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = LEEWAY_SECS;
        // A token that says it is not valid yet is refused too.
        validation.validate_nbf = true;
        decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|err| {
                // The library's detail (JSON paths, base64 errors) goes to the log only.
                tracing::debug!(error = %err, "token refused");
                AuthError::Invalid(reason(err.kind()).to_owned())
            })
    }
}

/// A short reason for a refused token, in the client's words.
fn reason(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet",
        ErrorKind::InvalidSignature => "the token's signature does not match",
        ErrorKind::InvalidIssuer => "the token was not issued by this server",
        ErrorKind::InvalidAlgorithm => "the token's algorithm is not accepted",
        ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
        _ => "the token is malformed",
    }
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(token.trim())
}

/// Verifies a token and loads the caller it names.
pub async fn authenticate(
    db: &Database,
    keys: &TokenKeys,
    token: &str,
) -> Result<Caller, AuthError> {
    caller_of(db, &keys.verify(token)?).await
}

/// The session a request's token belongs to (none for CLI tokens), for `logout` and
/// `changePassword`.
#[derive(Debug, Clone)]
pub struct SessionId(pub String);

/// Like [`authenticate`], with the token's session.
pub async fn authenticate_session(
    db: &Database,
    keys: &TokenKeys,
    token: &str,
) -> Result<(Caller, Option<SessionId>), AuthError> {
    let claims = keys.verify(token)?;
    let caller = caller_of(db, &claims).await?;
    Ok((caller, claims.sid.map(SessionId)))
}

/// The caller that verified claims name: the user must still exist; the role is the
/// database's.
pub async fn caller_of(db: &Database, claims: &Claims) -> Result<Caller, AuthError> {
    let user = tenants::find_user(&db.conn, &claims.account, &claims.sub)
        .await
        .map_err(|err| AuthError::Unavailable(err.to_string()))?
        .ok_or(AuthError::UnknownUser)?;
    let revoked_after_issue = user
        .tokens_revoked_at
        .is_some_and(|revoked| claims.iat * 1000 < revoked);
    if claims.sid.is_none() && revoked_after_issue {
        return Err(AuthError::SessionEnded);
    }
    if let Some(sid) = &claims.sid {
        let live = entity::sign_in::session_is_live(&db.conn, sid, &user.id)
            .await
            .map_err(|err| AuthError::Unavailable(err.to_string()))?;
        if !live {
            return Err(AuthError::SessionEnded);
        }
    }
    Ok(Caller {
        role: users::role_of(&user),
        user_id: user.id,
        account_id: user.account_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(Some("bearer  abc ")).unwrap(), "abc");
        assert!(bearer(None).is_err());
        assert!(bearer(Some("Basic abc")).is_err());
        assert!(bearer(Some("Bearer ")).is_err());
    }

    #[test]
    fn minted_tokens_verify_and_foreign_ones_do_not() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        let token = keys.mint("u1", "a1", Role::Admin, Duration::from_secs(60));
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.account.as_str()), ("u1", "a1"));
        let other = TokenKeys::new(b"another-secret-another-secret-xx");
        assert!(other.verify(&token).is_err());
    }
}
