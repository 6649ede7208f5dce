//! Passwords and sessions (see `docs/auth.md`): Argon2id hashes with a salt of their own,
//! at least 10 characters; a wrong e-mail and a wrong password cost one Argon2 check each
//! and get the same answer; attempts are counted before the check and held back per
//! (e-mail, client address) and per client address (see [`crate::throttle`]); a session
//! can be revoked, and a token naming a revoked session is refused.

use std::sync::LazyLock;

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel,
    QueryFilter, Set, Statement, sea_query::Expr,
};

use crate::{
    Caller, DomainError, DomainResult, new_id, now_ms,
    scope::find_scoped,
    tables::{session, user},
    throttle, values,
};

pub const MIN_PASSWORD_LEN: usize = 10;
const MAX_PASSWORD_LEN: usize = 1024;
/// How long a session lasts.
pub const SESSION_TTL_MS: i64 = 7 * 24 * 3_600_000;
/// Failures after which each further attempt waits a quarter second more (at most 2 s).
const SLOW_AFTER: i32 = 3;

/// Why a sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown e-mail or wrong password: the same answer for both.
    BadCredentials,
    /// Too many attempts from this client address (for this e-mail, or for any); try again
    /// after this many seconds.
    Held { seconds: i64 },
}
/// A password's Argon2id hash (PHC string, its own random salt).
pub fn hash(password: &str) -> DomainResult<String> {
    check(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| DomainError::Internal(format!("cannot hash a password: {err}")))
}

/// A new password's rules.
pub fn check(password: &str) -> DomainResult<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(DomainError::bad_input(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters long"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(DomainError::bad_input("password", "is too long"));
    }
    Ok(())
}

fn matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Checked when the e-mail is unknown, so that it costs what a wrong password costs.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash("not-a-password-of-anyone").expect("hashing a constant"));

/// Computes the hash checked for unknown e-mails now, so the first sign-in costs no more.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

/// How long the caller waits before answering a failed attempt (slowing guessers down).
pub fn delay_after(failures: i32) -> std::time::Duration {
    let extra = (failures - SLOW_AFTER).clamp(0, 8) as u64;
    std::time::Duration::from_millis(250 * extra)
}

/// The index of the hash `password` matches, and how many Argon2 checks were made: one
/// per stored hash, and one against a dummy hash when there is none, so a known e-mail
/// and an unknown one cost the same.
pub fn check_hashes(hashes: &[&str], password: &str) -> (Option<usize>, usize) {
    if hashes.is_empty() {
        let _ = matches(&DUMMY_HASH, password);
        return (None, 1);
    }
    let found = hashes.iter().position(|hash| matches(hash, password));
    (found, found.map_or(hashes.len(), |at| at + 1))
}

/// The e-mail of a sign-in, normalised as users' are; refused before anything is written.
fn sign_in_email(email: &str) -> DomainResult<String> {
    let email = values::email("email", email)?;
    if email.matches('@').count() != 1 {
        return Err(DomainError::bad_input("email", "is not an e-mail address"));
    }
    Ok(email)
}

/// Counts an attempt for `key`: `Err` with the refusal when the key is held. A hold
/// that starts on an e-mail's key (`locks`) is recorded in the audit log of each account
/// with a user of that e-mail.
async fn count_attempt(
    db: &impl ConnectionTrait,
    key: &str,
    limit: throttle::Limit,
    now: i64,
    locks: Option<&str>,
) -> DomainResult<Result<i32, (Refusal, i32)>> {
    Ok(match throttle::attempt(db, key, limit, now).await? {
        throttle::Attempt::Allowed { attempts } => Ok(attempts),
        throttle::Attempt::Held {
            retry_after_ms,
            started,
        } => {
            let seconds = (retry_after_ms + 999) / 1000;
            if let (true, Some(email)) = (started, locks) {
                record_lockout(db, email, seconds).await?;
            }
            Err((Refusal::Held { seconds }, limit.attempts))
        }
    })
}

async fn record_lockout(db: &impl ConnectionTrait, email: &str, seconds: i64) -> DomainResult<()> {
    let users = user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .all(db)
        .await?;
    for u in users {
        let change = crate::audit::Change::new("user.locked_out", "user", &u.id)
            .with(serde_json::json!({"holdSeconds": seconds}));
        crate::audit::record(db, &u.account_id, crate::audit::Actor::System, change).await?;
    }
    Ok(())
}

/// Signs in from `client_address`: the user and a new session, or why not (with the
/// attempts counted so far). The attempt is counted before the password is checked.
pub async fn login(
    db: &impl ConnectionTrait,
    email: &str,
    password: &str,
    client_address: &str,
) -> DomainResult<Result<(user::Model, session::Model), (Refusal, i32)>> {
    let email = sign_in_email(email)?;
    if password.len() > MAX_PASSWORD_LEN {
        return Err(DomainError::bad_input("password", "is too long"));
    }
    let now = now_ms();
    let address_key = throttle::address_key(client_address);
    let email_key = throttle::email_key(&email, client_address);
    if let Err(held) = count_attempt(db, &address_key, throttle::PER_ADDRESS, now, None).await? {
        return Ok(Err(held));
    }
    let limit = throttle::PER_EMAIL_AND_ADDRESS;
    let attempts = match count_attempt(db, &email_key, limit, now, Some(&email)).await? {
        Ok(attempts) => attempts,
        Err(held) => return Ok(Err(held)),
    };
    let candidates: Vec<user::Model> = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .filter(user::Column::PasswordHash.is_not_null())
        .all(db)
        .await?;
    let hashes: Vec<&str> = candidates
        .iter()
        .filter_map(|u| u.password_hash.as_deref())
        .collect();
    let Some(at) = check_hashes(&hashes, password).0 else {
        return Ok(Err((Refusal::BadCredentials, attempts)));
    };
    let user = candidates
        .into_iter()
        .nth(at)
        .expect("a matching candidate");
    throttle::clear(db, &email_key).await?;
    throttle::forgive_one(db, &address_key).await?;
    let session = session::ActiveModel {
        id: Set(new_id()),
        account_id: Set(user.account_id.clone()),
        user_id: Set(user.id.clone()),
        created_at: Set(now),
        expires_at: Set(now + SESSION_TTL_MS),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(Ok((user, session)))
}

/// Whether the session is live: not revoked, not expired, and the user's.
pub async fn session_is_live(
    db: &impl ConnectionTrait,
    session_id: &str,
    user_id: &str,
) -> DomainResult<bool> {
    Ok(session::Entity::find_by_id(session_id.to_owned())
        .one(db)
        .await?
        .is_some_and(|s| s.user_id == user_id && s.revoked_at.is_none() && s.expires_at > now_ms()))
}

/// Ends a session.
pub async fn logout(db: &impl ConnectionTrait, session_id: &str) -> DomainResult<bool> {
    let ended = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::val(now_ms()))
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(ended.rows_affected == 1)
}

/// Ends every session of `user_id` but `keep`.
async fn revoke_sessions(
    db: &impl ConnectionTrait,
    user_id: &str,
    keep: Option<&str>,
) -> DomainResult<()> {
    let mut update = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::val(now_ms()))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        update = update.filter(session::Column::Id.ne(keep));
    }
    update.exec(db).await?;
    Ok(())
}

/// The caller's own password: the current one must match; every other session ends.
/// Attempts are counted outside the change's transaction (a wrong guess must stay
/// counted); the change, the sessions' end and the audit entry commit together.
pub async fn change_password<C: ConnectionTrait + sea_orm::TransactionTrait>(
    db: &C,
    caller: &Caller,
    session_id: Option<&str>,
    current: &str,
    new: &str,
) -> DomainResult<()> {
    let me = find_scoped::<user::Entity>(db, caller, &caller.user_id).await?;
    if current.len() > MAX_PASSWORD_LEN {
        return Err(DomainError::bad_input("currentPassword", "is too long"));
    }
    let key = throttle::password_change_key(&caller.user_id);
    let limit = throttle::PER_PASSWORD_CHANGE;
    if let throttle::Attempt::Held { retry_after_ms, .. } =
        throttle::attempt(db, &key, limit, now_ms()).await?
    {
        return Err(DomainError::bad_input(
            "currentPassword",
            format!(
                "too many wrong attempts: try again in {} seconds",
                (retry_after_ms + 999) / 1000
            ),
        ));
    }
    let right = me
        .password_hash
        .as_deref()
        .is_some_and(|hash| matches(hash, current));
    if right {
        throttle::clear(db, &key).await?;
    } else {
        return Err(DomainError::bad_input(
            "currentPassword",
            "is not the current password",
        ));
    }
    let hash = hash(new).map_err(|_| {
        DomainError::bad_input(
            "newPassword",
            format!("must be at least {MIN_PASSWORD_LEN} characters long"),
        )
    })?;
    let txn = db.begin().await?;
    let mut model = me.into_active_model();
    model.password_hash = Set(Some(hash));
    model.update(&txn).await?;
    revoke_sessions(&txn, &caller.user_id, session_id).await?;
    let change = crate::audit::Change::new("user.password_changed", "user", &caller.user_id);
    crate::audit::by(&txn, caller, change).await?;
    sea_orm::TransactionSession::commit(txn).await?;
    Ok(())
}

/// An admin sets a user's password; the user's sessions end.
pub async fn set_password(
    db: &impl ConnectionTrait,
    caller: &Caller,
    user_id: &str,
    password: &str,
) -> DomainResult<user::Model> {
    caller.require_admin()?;
    let user = find_scoped::<user::Entity>(db, caller, user_id).await?;
    let updated = set_password_of(db, user, password).await?;
    Ok(updated)
}

/// Sets a user's password (the CLI, the first start); the user's sessions end.
pub async fn set_password_of(
    db: &impl ConnectionTrait,
    user: user::Model,
    password: &str,
) -> DomainResult<user::Model> {
    let hash = hash(password)?;
    let user_id = user.id.clone();
    let mut model = user.into_active_model();
    model.password_hash = Set(Some(hash));
    let updated = model.update(db).await?;
    revoke_sessions(db, &user_id, None).await?;
    Ok(updated)
}

/// Ended sessions and old failure counts are kept for a day, then deleted (a guesser
/// trying many e-mails leaves rows behind).
const KEEP_MS: i64 = 24 * 3_600_000;

/// Deletes sessions that ended and failure counts that no longer matter; how many rows.
pub async fn prune(db: &impl ConnectionTrait) -> DomainResult<u64> {
    let cutoff = now_ms() - KEEP_MS;
    let sessions = session::Entity::delete_many()
        .filter(
            sea_orm::Condition::any()
                .add(session::Column::ExpiresAt.lt(cutoff))
                .add(session::Column::RevokedAt.lt(cutoff)),
        )
        .exec(db)
        .await?
        .rows_affected;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "DELETE FROM login_failures WHERE last_failed_at < $1 \
             AND (locked_until IS NULL OR locked_until < $1)"
        }
        _ => {
            "DELETE FROM login_failures WHERE last_failed_at < ?1 \
             AND (locked_until IS NULL OR locked_until < ?1)"
        }
    };
    let failures = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [cutoff.into()],
        ))
        .await?
        .rows_affected();
    Ok(sessions + failures)
}
