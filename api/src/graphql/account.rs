//! The caller, the account's users and labels.

use async_graphql::{Context, ID, InputObject, Object};
use entity::{labels, users};

use super::{
    context::ContextExt,
    error::ApiResult,
    types::{Label, Role, User},
};

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<User> {
        Ok(User(users::me(&ctx.app().db.conn, ctx.caller()?).await?))
    }

    async fn users(&self, ctx: &Context<'_>) -> ApiResult<Vec<User>> {
        let rows = users::list(&ctx.app().db.conn, ctx.caller()?).await?;
        Ok(rows.into_iter().map(User).collect())
    }

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
        let new_user = users::NewUser {
            name: &input.name,
            email: &input.email,
            role: input.role.into(),
        };
        Ok(User(
            users::create(&ctx.app().db.conn, ctx.caller()?, new_user).await?,
        ))
    }

    async fn create_label(&self, ctx: &Context<'_>, input: CreateLabelInput) -> ApiResult<Label> {
        let label = labels::create(
            &ctx.app().db.conn,
            ctx.caller()?,
            &input.name,
            input.color.as_deref(),
        )
        .await?;
        Ok(Label(label))
    }

    async fn delete_label(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        Ok(labels::delete(&ctx.app().db.conn, ctx.caller()?, &id).await?)
    }
}
