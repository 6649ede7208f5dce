//! Throttling of password checks (see `docs/auth.md`, "Sign-in limits").
//!
//! Each attempt is counted **before** the password is checked, in one atomic statement, so
//! parallel guesses cannot all pass the count. A key that passes its limit is held back
//! for a while; each hold lasts twice the one before (up to an hour), and one attempt is
//! allowed when a hold ends. A success clears the key. Keys are per (e-mail, client
//! address), per client address and per user changing a password — never per e-mail
//! alone, so nobody can lock someone else out of their account from another address.
//! Counts are kept in the database (every server process sees them) and pruned a day after
//! their last attempt.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::DomainResult;

/// A key's limit: attempts counted before a hold, and the first hold's length.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub attempts: i32,
    pub first_hold_ms: i64,
}

/// One e-mail from one client address: ten attempts, then holds from one minute.
pub const PER_EMAIL_AND_ADDRESS: Limit = Limit {
    attempts: 10,
    first_hold_ms: 60_000,
};
/// One client address, whatever the e-mails: fifty attempts, then holds from one minute
/// (this also bounds the rows one address can make others write).
pub const PER_ADDRESS: Limit = Limit {
    attempts: 50,
    first_hold_ms: 60_000,
};
/// A signed-in user's checks of the current password (`changePassword`).
pub const PER_PASSWORD_CHANGE: Limit = Limit {
    attempts: 5,
    first_hold_ms: 60_000,
};
/// The longest hold.
pub const MAX_HOLD_MS: i64 = 3_600_000;
/// Attempts older than this no longer count (unless the key is held).
const WINDOW_MS: i64 = 3_600_000;

/// Whether an attempt may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted; `attempts` so far in the window, this one included.
    Allowed { attempts: i32 },
    /// Held back for this many more milliseconds; `started` when this attempt began
    /// the hold (a lockout to record).
    Held { retry_after_ms: i64, started: bool },
}

/// The hold after `holds` earlier ones.
pub fn hold_ms(limit: Limit, holds: i32) -> i64 {
    let doublings = holds.clamp(0, 16) as u32;
    limit
        .first_hold_ms
        .saturating_mul(1_i64 << doublings)
        .min(MAX_HOLD_MS)
}

fn sql(backend: DbBackend, postgres: &'static str) -> String {
    match backend {
        DbBackend::Postgres => postgres.to_owned(),
        // The same statements with `?N` placeholders.
        _ => postgres.replace('$', "?"),
    }
}

/// Counts an attempt for `key`, or says for how long it is held.
pub async fn attempt(
    db: &impl ConnectionTrait,
    key: &str,
    limit: Limit,
    now: i64,
) -> DomainResult<Attempt> {
    let backend = db.get_database_backend();
    // A held key keeps its count; an old count starts again.
    let count = sql(
        backend,
        "INSERT INTO login_failures (email, failures, last_failed_at, holds) \
         VALUES ($1, 1, $2, 0) ON CONFLICT (email) DO UPDATE SET \
         failures = CASE \
           WHEN login_failures.locked_until > $2 THEN login_failures.failures \
           WHEN login_failures.last_failed_at < $3 AND login_failures.locked_until IS NULL THEN 1 \
           ELSE login_failures.failures + 1 END, \
         last_failed_at = $2 \
         RETURNING failures, locked_until, holds",
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            count,
            [key.into(), now.into(), (now - WINDOW_MS).into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(Attempt::Allowed { attempts: 1 });
    };
    let attempts: i32 = row.try_get_by_index(0)?;
    let held_until: Option<i64> = row.try_get_by_index(1)?;
    let holds: i32 = row.try_get_by_index(2)?;
    if let Some(until) = held_until.filter(|until| *until > now) {
        return Ok(Attempt::Held {
            retry_after_ms: until - now,
            started: false,
        });
    }
    if attempts <= limit.attempts {
        return Ok(Attempt::Allowed { attempts });
    }
    let hold = hold_ms(limit, holds);
    let started = start_hold(db, key, limit, now, hold).await?;
    Ok(Attempt::Held {
        retry_after_ms: hold,
        started,
    })
}

/// Holds `key` back for `hold` ms. One attempt is allowed when the hold ends; only the
/// first of parallel attempts sets it (and is told so).
async fn start_hold(
    db: &impl ConnectionTrait,
    key: &str,
    limit: Limit,
    now: i64,
    hold: i64,
) -> DomainResult<bool> {
    let backend = db.get_database_backend();
    let statement = sql(
        backend,
        "UPDATE login_failures SET locked_until = $2, holds = holds + 1, failures = $3 \
         WHERE email = $1 AND (locked_until IS NULL OR locked_until <= $4)",
    );
    let started = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            statement,
            [
                key.into(),
                (now + hold).into(),
                (limit.attempts - 1).into(),
                now.into(),
            ],
        ))
        .await?;
    Ok(started.rows_affected() > 0)
}

/// Clears `key` after a success.
pub async fn clear(db: &impl ConnectionTrait, key: &str) -> DomainResult<()> {
    let backend = db.get_database_backend();
    let statement = sql(backend, "DELETE FROM login_failures WHERE email = $1");
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        statement,
        [key.into()],
    ))
    .await?;
    Ok(())
}

/// Takes back one attempt of `key` (a success from an address counts as no failure).
pub async fn forgive_one(db: &impl ConnectionTrait, key: &str) -> DomainResult<()> {
    let backend = db.get_database_backend();
    let statement = sql(
        backend,
        "UPDATE login_failures SET failures = failures - 1 WHERE email = $1 AND failures > 0",
    );
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        statement,
        [key.into()],
    ))
    .await?;
    Ok(())
}

/// The key of a client address: an IPv6 address counts by its /64 (one subscriber's
/// network), anything else as given.
pub fn address_key(address: &str) -> String {
    match address.parse::<std::net::Ipv6Addr>() {
        Ok(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("a:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(v6) => format!("a:{}", v6.to_ipv4_mapped().expect("mapped")),
        Err(_) => format!("a:{address}"),
    }
}

/// The key of one (normalised) e-mail from one client address.
pub fn email_key(email: &str, address: &str) -> String {
    format!("e:{email}|{}", &address_key(address)[2..])
}

/// The key of a user's password checks.
pub fn password_change_key(user_id: &str) -> String {
    format!("c:{user_id}")
}
