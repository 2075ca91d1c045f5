//! `weightgate token create|list|revoke --store DIR|s3://BUCKET/PREFIX`: the write tokens the
//! gate's upload routes accept. A token is printed once, when created; the store keeps only
//! its SHA-256, so every gate over the store knows it and removing it revokes it.

use clap::{Args, Subcommand};

use crate::Exit;
use crate::terminal::say;
use weightgate_verifier::gate::store::{self, StoreOptions};
use weightgate_verifier::gate::upload::tokens;

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a write token and print it (once; it is not stored).
    Create(CreateArgs),
    /// List the tokens: name, what each may write, when it was created (never the token).
    List(StoreArg),
    /// Revoke a token by name: gates over the store refuse it from their next request.
    Revoke(RevokeArgs),
}

#[derive(Args, Debug)]
pub struct StoreArg {
    /// The gate's store: a folder, or s3://BUCKET/PREFIX (AWS_* environment variables).
    #[arg(long, value_name = "DIR|URL")]
    pub store: String,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The token's name: what logs and `whoami` show for it.
    #[arg(long)]
    pub name: String,
    /// A namespace it may write: ORG (every repository of the organisation) or ORG/NAME.
    #[arg(long, value_name = "ORG[/NAME]", required = true)]
    pub write: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// The name the token was created with (`token list` shows them).
    #[arg(long)]
    pub name: String,
}

pub fn run(args: TokenArgs) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match args.command {
            TokenCommand::Create(a) => {
                let store = store::open(&a.store.store, StoreOptions::default()).await?;
                let now = jiff::Timestamp::now().as_second();
                let token = tokens::create(store.as_ref(), &a.name, &a.write, now).await?;
                say!("{token}");
            }
            TokenCommand::List(a) => {
                let store = store::open(&a.store, StoreOptions::default()).await?;
                for (_, r) in tokens::list(store.as_ref()).await? {
                    let created = jiff::Timestamp::from_second(r.created_at)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    say!("{}  write {}  created {created}", r.name, r.write.join(","));
                }
            }
            TokenCommand::Revoke(a) => {
                let store = store::open(&a.store.store, StoreOptions::default()).await?;
                tokens::revoke(store.as_ref(), &a.name).await?;
                say!("revoked {}", a.name);
            }
        }
        Ok(Exit::Ok)
    })
}
