//! The console's session in cookies, so that no script can read it.
//!
//! `login` over HTTP sets two cookies beside the token it returns: the session token in
//! `crm_session` (`HttpOnly`, `SameSite=Strict`, `Secure` when `PUBLIC_URL` is https) and
//! a random CSRF value in `crm_csrf` (readable by the console's own script). A GraphQL
//! request without an `Authorization` header is authenticated by the session cookie only
//! when it also carries the CSRF value in the `X-CSRF-Token` header (double submit: a
//! page of another site can make the browser send the cookies, never read the value).
//! A websocket uses the session cookie only when its `Origin` is the server's own host.
//! `logout` clears both. Bearer tokens keep working as before for every other client.

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

/// The cookie holding the session token.
pub const SESSION: &str = "crm_session";
/// The cookie holding the CSRF value the console repeats in [`CSRF_HEADER`].
pub const CSRF: &str = "crm_csrf";
/// The header a cookie-authenticated request repeats the CSRF value in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// What the session cookie says about a request without an `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum CookieSession<'a> {
    /// No session cookie.
    None,
    /// A session cookie with the matching CSRF header: its token.
    Token(&'a str),
    /// A session cookie without the CSRF header, or with another value.
    CsrfMismatch,
}

/// The request's cookie session, checked against its CSRF header in constant time.
pub fn session(headers: &HeaderMap) -> CookieSession<'_> {
    let Some(token) = get(headers, SESSION) else {
        return CookieSession::None;
    };
    let expected = get(headers, CSRF).unwrap_or_default();
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let matches: bool = expected.as_bytes().ct_eq(presented.as_bytes()).into();
    if matches && !expected.is_empty() {
        CookieSession::Token(token)
    } else {
        CookieSession::CsrfMismatch
    }
}

/// The request's session cookie without its CSRF check: only for reads a link opens (a
/// file download), which change nothing and whose answer another site's page cannot read.
pub fn session_for_reading(headers: &HeaderMap) -> Option<&str> {
    get(headers, SESSION)
}

/// The two `Set-Cookie` values of a new session lasting `max_age_secs`.
pub fn set(token: &str, max_age_secs: i64, public_url: &str) -> [String; 2] {
    let csrf = entity::secrets::random_token(24);
    let secure = secure_suffix(public_url);
    let age = max_age_secs.max(0);
    [
        format!("{SESSION}={token}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict{secure}"),
        format!("{CSRF}={csrf}; Path=/; Max-Age={age}; SameSite=Strict{secure}"),
    ]
}

/// The two `Set-Cookie` values that end the cookie session.
pub fn clear(public_url: &str) -> [String; 2] {
    let secure = secure_suffix(public_url);
    [
        format!("{SESSION}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"),
        format!("{CSRF}=; Path=/; Max-Age=0; SameSite=Strict{secure}"),
    ]
}

fn secure_suffix(public_url: &str) -> &'static str {
    if public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

/// Whether a websocket upgrade comes from a page of this server (its `Origin` names the
/// request's `Host`), so its cookies may stand for the session.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (host, origin) {
        (Some(host), Some(origin)) => origin
            .split_once("://")
            .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest == host),
        _ => false,
    }
}
