//! The `checkout-crm` command line.

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use entity::{
    DomainError,
    audit::{self, Actor, Change},
    database::Database,
    tenants, users,
};
use sea_orm::TransactionTrait;
use tokio::net::TcpListener;

use crate::{
    app::{self, AppError},
    auth::TokenKeys,
    config::{Config, ConfigArgs},
    graphql,
};

#[derive(Debug, Parser)]
#[command(
    name = "checkout-crm",
    version,
    about = "CRM back end for checkout-platform events (Hotmart)"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// HTTP server and background workers (the default).
    Serve {
        /// Serve HTTP only; run workers as separate `worker` processes.
        #[arg(long)]
        no_workers: bool,
    },
    /// Background workers only.
    Worker,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Print a token for a user (`token revoke` ends the user's earlier ones).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Token {
        #[command(subcommand)]
        action: Option<TokenCommand>,
        #[arg(long, required = true)]
        email: Option<String>,
        /// The account id, when the e-mail exists in several accounts.
        #[arg(long)]
        account: Option<String>,
        /// Days until the token expires.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
    },
    /// Manage accounts (one installation can host several companies).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// End every token made by the CLI for a user until now (`data/admin.jwt` included);
    /// sessions of signed-in people are not affected.
    Revoke {
        #[arg(long)]
        email: String,
        /// The account id, when the e-mail exists in several accounts.
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Set a user's password, read from standard input (never from the command line);
    /// the user's sessions end.
    SetPassword {
        #[arg(long)]
        email: String,
        /// The account id, when the e-mail exists in several accounts.
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account with its admin, and print the admin's token.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long)]
        admin_name: Option<String>,
    },
}

/// Token lifetime for `account create`.
const ACCOUNT_ADMIN_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub async fn run(cli: Cli) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Serve { no_workers: false });
    if let Command::Schema = command {
        print!("{}", graphql::sdl());
        return ExitCode::SUCCESS;
    }
    let config = match cli.config.resolve() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    match execute(&config, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(config: &Config, command: Command) -> Result<(), AppError> {
    let db = app::open_database(config).await?;
    match command {
        Command::Migrate => {
            println!("database is up to date");
        }
        Command::Serve { no_workers } => serve(config, db, no_workers).await?,
        Command::Worker => {
            tracing::info!("worker started");
            let metrics = tokio::spawn({
                let (config, db) = (config.clone(), db.clone());
                async move { app::serve_metrics(&config, db, shutdown_signal()).await }
            });
            let worked = jobs::workers::run(
                db,
                config.workers.clone(),
                config.secret_keys(),
                config.hotmart_endpoints(),
                config.telemetry.clone(),
                shutdown_signal(),
            )
            .await;
            let _ = metrics.await;
            worked.map_err(|err| AppError::Worker(err.to_string()))?;
        }
        Command::Token {
            action,
            email,
            account,
            days,
        } => token(config, &db, action, email, account, days).await?,
        Command::Account {
            command:
                AccountCommand::Create {
                    name,
                    admin_email,
                    admin_name,
                },
        } => create_account(config, &db, &name, &admin_email, admin_name.as_deref()).await?,
        Command::User {
            command: UserCommand::SetPassword { email, account },
        } => {
            let user = tenants::find_user_by_email(&db.conn, &email, account.as_deref()).await?;
            let password = read_password()?;
            let txn = db.conn.begin().await.map_err(DomainError::from)?;
            let user = entity::sign_in::set_password_of(&txn, user, &password).await?;
            let change = Change::new("user.password_set", "user", &user.id);
            audit::record(&txn, &user.account_id, Actor::Cli, change).await?;
            txn.commit().await.map_err(DomainError::from)?;
            eprintln!("Password set for {email}.");
        }
        Command::Schema => unreachable!("handled before configuration"),
    }
    Ok(())
}

/// `serve`: the HTTP server (and, unless `no_workers`, the workers) until a signal.
async fn serve(config: &Config, db: Database, no_workers: bool) -> Result<(), AppError> {
    if let Some(path) = app::first_start(config, &db).await? {
        println!("Created the first account. Admin token: {}", path.display());
        println!(
            "Sign in with {} and the password in {}",
            std::env::var("ADMIN_EMAIL").unwrap_or_else(|_| "admin@example.com".to_owned()),
            config.data_dir.join("admin-password").display()
        );
    }
    let listener = TcpListener::bind(&config.bind)
        .await
        .map_err(|source| AppError::Io {
            context: format!("cannot listen on {}", config.bind),
            source,
        })?;
    let address = listener.local_addr().map_err(|source| AppError::Io {
        context: "listener".into(),
        source,
    })?;
    println!("Console: http://{address}/");
    println!("GraphQL: http://{address}/graphql");
    println!("Token:   {}", config.data_dir.join("admin.jwt").display());
    let workers = (!no_workers).then(|| {
        tokio::spawn(jobs::workers::run(
            db.clone(),
            config.workers.clone(),
            config.secret_keys(),
            config.hotmart_endpoints(),
            config.telemetry.clone(),
            shutdown_signal(),
        ))
    });
    app::serve(config, db, listener, shutdown_signal())
        .await
        .map_err(|source| AppError::Io {
            context: "server".into(),
            source,
        })?;
    if let Some(workers) = workers {
        let _ = workers.await;
    }
    Ok(())
}

/// `account create`: a new account and its admin; the admin's token on standard output.
async fn create_account(
    config: &Config,
    db: &Database,
    name: &str,
    admin_email: &str,
    admin_name: Option<&str>,
) -> Result<(), AppError> {
    let txn = db.conn.begin().await.map_err(DomainError::from)?;
    let tenant = tenants::create_account(&txn, name, admin_email, admin_name).await?;
    let (account, admin) = (&tenant.account.id, &tenant.admin.id);
    let created = Change::new("account.created", "account", account)
        .with(serde_json::json!({"name": tenant.account.name}));
    audit::record(&txn, account, Actor::Cli, created).await?;
    let user =
        Change::new("user.created", "user", admin).with(serde_json::json!({"role": "ADMIN"}));
    audit::record(&txn, account, Actor::Cli, user).await?;
    txn.commit().await.map_err(DomainError::from)?;
    let token = TokenKeys::new(&config.jwt_secret).mint(
        &tenant.admin.id,
        &tenant.account.id,
        entity::Role::Admin,
        ACCOUNT_ADMIN_TOKEN_TTL,
    );
    eprintln!(
        "Created account {} ({}) with admin {}",
        tenant.account.name, tenant.account.id, tenant.admin.email
    );
    println!("{token}");
    Ok(())
}

/// A password from standard input: its first line, without the line ending.
fn read_password() -> Result<String, AppError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|source| AppError::Io {
            context: "cannot read the password from standard input".into(),
            source,
        })?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// `token` (print a new token) and `token revoke` (end the earlier ones).
async fn token(
    config: &Config,
    db: &entity::database::Database,
    action: Option<TokenCommand>,
    email: Option<String>,
    account: Option<String>,
    days: u32,
) -> Result<(), AppError> {
    if let Some(TokenCommand::Revoke { email, account }) = action {
        let user = tenants::find_user_by_email(&db.conn, &email, account.as_deref()).await?;
        let txn = db.conn.begin().await.map_err(DomainError::from)?;
        let change = Change::new("user.tokens_revoked", "user", &user.id);
        audit::record(&txn, &user.account_id, Actor::Cli, change).await?;
        entity::users::revoke_cli_tokens(&txn, user).await?;
        txn.commit().await.map_err(DomainError::from)?;
        println!("tokens made until now for {email} no longer work");
        return Ok(());
    }
    let email = email.unwrap_or_default();
    let user = tenants::find_user_by_email(&db.conn, &email, account.as_deref()).await?;
    let change =
        Change::new("user.token_created", "user", &user.id).with(serde_json::json!({"days": days}));
    audit::record(&db.conn, &user.account_id, Actor::Cli, change).await?;
    let token = TokenKeys::new(&config.jwt_secret).mint(
        &user.id,
        &user.account_id,
        users::role_of(&user),
        Duration::from_secs(u64::from(days) * 24 * 3600),
    );
    println!("{token}");
    Ok(())
}
