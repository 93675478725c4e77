//! `remora tokens …`: list, create (the secret printed once) and revoke API tokens.

use crate::client::{enc, Api, Reply};
use crate::render::{ago, emit, opt_time, table, Human, Output, View};
use crate::responses::{TokenCreated, TokenList};
use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum TokensCmd {
    /// List tokens (never their secrets).
    #[command(after_help = "Example:\n  remora tokens list")]
    List,
    /// Create a token; its secret is printed once.
    #[command(after_help = "Example:\n  remora tokens create ci --role operator")]
    Create {
        name: String,
        /// admin, operator or viewer (read-only).
        #[arg(long, default_value = "operator")]
        role: String,
    },
    /// Revoke a token.
    #[command(after_help = "Example:\n  remora tokens revoke 0199…")]
    Revoke { id: String },
}

pub async fn run(api: &Api, out: Output, c: TokensCmd) -> Result<i32> {
    match c {
        TokensCmd::List => {
            let r: Reply<TokenList> = api.get_as("/api/v1/tokens").await?;
            emit(out, &r.raw, &r.body);
        }
        TokensCmd::Create { name, role } => {
            let r: Reply<TokenCreated> = api
                .post_as("/api/v1/tokens", &json!({ "name": name, "role": role }))
                .await?;
            emit(out, &r.raw, &r.body);
        }
        TokensCmd::Revoke { id } => {
            api.delete(&format!("/api/v1/tokens/{}", enc(&id))).await?;
            emit(
                out,
                &json!({ "revoked": id }),
                &Human::line(format!("token {id} revoked")),
            );
        }
    }
    Ok(0)
}

impl View for TokenList {
    fn human(&self) -> Human {
        let mut t = table(&["ID", "NAME", "ROLE", "CREATED", "REVOKED"]);
        for k in &self.tokens {
            t.add_row(vec![
                k.id.clone(),
                k.name.clone(),
                k.role.clone(),
                ago(k.created_at),
                opt_time(k.revoked_at),
            ]);
        }
        Human::table(t)
    }
}

/// The secret alone on stdout (for `$(…)`), the explanation on stderr.
impl View for TokenCreated {
    fn human(&self) -> Human {
        Human::line(&self.token).note(format!(
            "token `{}` ({}) created; the secret above is shown only once",
            self.name, self.role
        ))
    }
}
