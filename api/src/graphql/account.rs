//! The caller, the account's users and labels.

use async_graphql::{Context, ID, InputObject, Object};
use entity::{audit::Change, labels, sign_in, users};
use serde_json::json;

use super::{
    audited::Audited,
    context::ContextExt,
    error::{ApiError, ApiResult},
    types::{Label, Role, User},
};
use crate::auth::SessionId;

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<User> {
        Ok(User(users::me(&ctx.app().db.conn, ctx.caller()?).await?))
    }

    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn users(&self, ctx: &Context<'_>) -> ApiResult<Vec<User>> {
        let rows = users::list(&ctx.app().db.conn, ctx.caller()?).await?;
        Ok(rows.into_iter().map(User).collect())
    }

    #[graphql(complexity = "super::UNPAGED_LIST * child_complexity + 1")]
    async fn labels(&self, ctx: &Context<'_>) -> ApiResult<Vec<Label>> {
        let rows = labels::list(&ctx.app().db.conn, ctx.caller()?).await?;
        Ok(rows.into_iter().map(Label).collect())
    }
}

#[derive(InputObject)]
pub struct CreateUserInput {
    pub name: String,
    pub email: String,
    pub role: Role,
    /// An initial password (at least 10 characters); without one the user cannot sign in
    /// until an admin sets it.
    pub password: Option<String>,
}

/// A signed-in session: its token goes in `Authorization: Bearer …`.
#[derive(async_graphql::SimpleObject)]
pub struct Session {
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub user: User,
}

#[derive(InputObject)]
pub struct CreateLabelInput {
    pub name: String,
    pub color: Option<String>,
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> ApiResult<User> {
        if let Some(password) = &input.password {
            sign_in::check(password)?;
        }
        let role: entity::Role = input.role.into();
        let new_user = users::NewUser {
            name: &input.name,
            email: &input.email,
            role,
        };
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let user = users::create(tx.db(), caller, new_user).await?;
        let user = match &input.password {
            Some(password) => sign_in::set_password_of(tx.db(), user, password).await?,
            None => user,
        };
        let details = json!({"role": role.as_str(), "passwordSet": input.password.is_some()});
        let change = Change::new("user.created", "user", &user.id).with(details);
        tx.commit(caller, change).await?;
        Ok(User(user))
    }

    /// Signs in with an e-mail and a password (no token needed).
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> ApiResult<Session> {
        let app = ctx.app();
        let client = ctx
            .data_opt::<crate::client::ClientAddress>()
            .map_or("unknown", |c| c.0.as_str());
        match sign_in::login(&app.db.conn, &email, &password, client).await? {
            Ok((user, session)) => {
                let token = app.tokens.mint_session(&session, users::role_of(&user));
                let age = (session.expires_at - entity::now_ms()) / 1000;
                for cookie in crate::cookie::set(&token, age, &app.public_url) {
                    ctx.append_http_header(axum::http::header::SET_COOKIE, cookie);
                }
                Ok(Session {
                    token,
                    expires_at: super::types::time(session.expires_at),
                    user: User(user),
                })
            }
            Err((refusal, failures)) => {
                // Repeated failures wait longer before the answer.
                tokio::time::sleep(sign_in::delay_after(failures)).await;
                Err(match refusal {
                    sign_in::Refusal::BadCredentials => {
                        ApiError::new("UNAUTHENTICATED", "wrong e-mail or password")
                    }
                    sign_in::Refusal::Held { seconds } => ApiError::new(
                        "UNAUTHENTICATED",
                        format!(
                            "too many failed sign-ins from this address: try again in {}",
                            wait_in_words(seconds)
                        ),
                    ),
                })
            }
        }
    }

    /// Ends the session of the token this request carries (`false` for a token that
    /// belongs to no session, such as one made by the CLI).
    async fn logout(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        ctx.caller()?;
        for cookie in crate::cookie::clear(&ctx.app().public_url) {
            ctx.append_http_header(axum::http::header::SET_COOKIE, cookie);
        }
        match ctx.data_opt::<SessionId>() {
            Some(session) => {
                let ended = sign_in::logout(&ctx.app().db.conn, &session.0).await?;
                ctx.app().live.session_ended(&session.0).await;
                Ok(ended)
            }
            None => Ok(false),
        }
    }

    /// Changes the caller's password; the caller's other sessions end.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> ApiResult<bool> {
        let session = ctx.data_opt::<SessionId>().map(|s| s.0.as_str());
        sign_in::change_password(
            &ctx.app().db.conn,
            ctx.caller()?,
            session,
            &current_password,
            &new_password,
        )
        .await?;
        Ok(true)
    }

    /// Sets a user's password (admins); the user's sessions end.
    async fn set_user_password(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        password: String,
    ) -> ApiResult<User> {
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let user = sign_in::set_password(tx.db(), caller, &user_id, &password).await?;
        tx.commit(caller, Change::new("user.password_set", "user", &user.id))
            .await?;
        Ok(User(user))
    }

    /// Changes a user's role (admins); the account's last admin stays an admin.
    async fn set_user_role(&self, ctx: &Context<'_>, user_id: ID, role: Role) -> ApiResult<User> {
        let role: entity::Role = role.into();
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let user = users::set_role(tx.db(), caller, &user_id, role).await?;
        let change =
            Change::new("user.role_changed", "user", &user.id).with(json!({"role": role.as_str()}));
        tx.commit(caller, change).await?;
        Ok(User(user))
    }

    async fn create_label(&self, ctx: &Context<'_>, input: CreateLabelInput) -> ApiResult<Label> {
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let label = labels::create(tx.db(), caller, &input.name, input.color.as_deref()).await?;
        let change =
            Change::new("label.created", "label", &label.id).with(json!({"name": label.name}));
        tx.commit(caller, change).await?;
        Ok(Label(label))
    }

    async fn delete_label(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let caller = ctx.caller()?;
        let tx = Audited::begin(ctx).await?;
        let deleted = labels::delete(tx.db(), caller, &id).await?;
        tx.commit(caller, Change::new("label.deleted", "label", &id))
            .await?;
        Ok(deleted)
    }
}

/// "42 seconds", "3 minutes".
fn wait_in_words(seconds: i64) -> String {
    match seconds {
        ..=1 => "1 second".to_owned(),
        2..60 => format!("{seconds} seconds"),
        60 => "1 minute".to_owned(),
        _ => format!("{} minutes", (seconds + 59) / 60),
    }
}
