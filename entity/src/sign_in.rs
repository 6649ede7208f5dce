//! Passwords and sessions (see `docs/webhooks.md`, "Who sees what"): Argon2id hashes with a
//! salt of their own, at least 10 characters; a wrong e-mail and a wrong password cost the
//! same time and get the same answer; failures per e-mail are slowed down and then locked
//! for a while (counted in the database, so every server process sees them); a session
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
    values,
};

pub const MIN_PASSWORD_LEN: usize = 10;
const MAX_PASSWORD_LEN: usize = 1024;
/// How long a session lasts.
pub const SESSION_TTL_MS: i64 = 7 * 24 * 3_600_000;
/// Failures after which each further attempt waits a quarter second more (at most 2 s).
const SLOW_AFTER: i32 = 3;
/// Failures after which the e-mail is locked for [`LOCK_MS`].
const LOCK_AFTER: i32 = 10;
const LOCK_MS: i64 = 15 * 60_000;

/// Why a sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown e-mail or wrong password: the same answer for both.
    BadCredentials,
    /// Too many failures for this e-mail; try again after this many minutes.
    Locked { minutes: i64 },
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

/// How long the caller waits before answering a failed attempt (slowing guessers down).
pub fn delay_after(failures: i32) -> std::time::Duration {
    let extra = (failures - SLOW_AFTER).clamp(0, 8) as u64;
    std::time::Duration::from_millis(250 * extra)
}

/// Signs in: the user and a new session, or why not (with the failures counted so far).
pub async fn login(
    db: &impl ConnectionTrait,
    email: &str,
    password: &str,
) -> DomainResult<Result<(user::Model, session::Model), (Refusal, i32)>> {
    let now = now_ms();
    let key = email.trim().to_lowercase();
    if let Some(locked) = locked_minutes(db, &key, now).await? {
        return Ok(Err((Refusal::Locked { minutes: locked }, LOCK_AFTER)));
    }
    let candidates = match values::email("email", email) {
        Ok(email) => {
            user::Entity::find()
                .filter(user::Column::Email.eq(email.as_str()))
                .all(db)
                .await?
        }
        Err(_) => Vec::new(),
    };
    let found = candidates.into_iter().find(|u| {
        u.password_hash
            .as_deref()
            .is_some_and(|hash| matches(hash, password))
    });
    let Some(user) = found else {
        // The same work as a real check, whatever the e-mail.
        let _ = matches(&DUMMY_HASH, password);
        let failures = count_failure(db, &key, now).await?;
        return Ok(Err((Refusal::BadCredentials, failures)));
    };
    forget_failures(db, &key).await?;
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

async fn locked_minutes(
    db: &impl ConnectionTrait,
    key: &str,
    now: i64,
) -> DomainResult<Option<i64>> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT locked_until FROM login_failures WHERE email = $1",
        _ => "SELECT locked_until FROM login_failures WHERE email = ?",
    };
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [key.into()]))
        .await?;
    let until: Option<i64> = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => None,
    };
    Ok(until
        .filter(|until| *until > now)
        .map(|until| (until - now + 59_999) / 60_000))
}

/// Counts a failure for `key`; locks it at [`LOCK_AFTER`]. The failures so far.
async fn count_failure(db: &impl ConnectionTrait, key: &str, now: i64) -> DomainResult<i32> {
    let backend = db.get_database_backend();
    let (upsert, read) = match backend {
        DbBackend::Postgres => (
            "INSERT INTO login_failures (email, failures, last_failed_at) VALUES ($1, 1, $2) \
             ON CONFLICT (email) DO UPDATE SET failures = login_failures.failures + 1, \
             last_failed_at = $2",
            "SELECT failures FROM login_failures WHERE email = $1",
        ),
        _ => (
            "INSERT INTO login_failures (email, failures, last_failed_at) VALUES (?1, 1, ?2) \
             ON CONFLICT (email) DO UPDATE SET failures = login_failures.failures + 1, \
             last_failed_at = ?2",
            "SELECT failures FROM login_failures WHERE email = ?",
        ),
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        upsert,
        [key.into(), now.into()],
    ))
    .await?;
    let failures: i32 = db
        .query_one_raw(Statement::from_sql_and_values(backend, read, [key.into()]))
        .await?
        .map_or(Ok(1), |row| row.try_get_by_index(0))?;
    if failures >= LOCK_AFTER {
        let lock = match backend {
            DbBackend::Postgres => {
                "UPDATE login_failures SET locked_until = $2, failures = 0 WHERE email = $1"
            }
            _ => "UPDATE login_failures SET locked_until = ?2, failures = 0 WHERE email = ?1",
        };
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            lock,
            [key.into(), (now + LOCK_MS).into()],
        ))
        .await?;
    }
    Ok(failures)
}

async fn forget_failures(db: &impl ConnectionTrait, key: &str) -> DomainResult<()> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "DELETE FROM login_failures WHERE email = $1",
        _ => "DELETE FROM login_failures WHERE email = ?",
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [key.into()]))
        .await?;
    Ok(())
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
pub async fn change_password(
    db: &impl ConnectionTrait,
    caller: &Caller,
    session_id: Option<&str>,
    current: &str,
    new: &str,
) -> DomainResult<()> {
    let me = find_scoped::<user::Entity>(db, caller, &caller.user_id).await?;
    let right = me
        .password_hash
        .as_deref()
        .is_some_and(|hash| matches(hash, current));
    if !right {
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
    let mut model = me.into_active_model();
    model.password_hash = Set(Some(hash));
    model.update(db).await?;
    revoke_sessions(db, &caller.user_id, session_id).await
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
